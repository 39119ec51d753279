//! End to end: two real worker processes on 127.0.0.2 and 127.0.0.3, the real
//! `cnibench` binary, real sockets.

#![allow(clippy::unwrap_used)] // tests fail by panicking

mod common;

use common::*;
use serde_json::Value;
use std::time::{Duration, Instant};

const PLAN: &str = "\
name: e2e
defaults: { duration: 2s, warmup: 500ms, interval: 500ms }
scenarios:
  - { name: stream, traffic: tcp-stream, path: pod-to-pod-cross-node, streams: 2 }
  - { name: rr, traffic: tcp-rr, path: pod-to-pod-cross-node, connections: 2, request_size: 100, response_size: 1KiB }
  - { name: crr, traffic: tcp-crr, path: pod-to-pod-cross-node, connections: 2 }
";

#[test]
fn tcp_scenarios_end_to_end() {
    let (dir, token, plan) = setup("main", PLAN);
    let w1 = start_worker("127.0.0.2", "node-a", &token);
    let w2 = start_worker("127.0.0.3", "node-b", &token);
    let out = dir.join("out");
    let workers = format!("{},{}", w1.addr, w2.addr);
    let o = run(&plan, &token, &workers, &out);
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(
        o.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stdout.contains("stream") && stdout.contains("crr"),
        "{stdout}"
    );

    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("result.json")).unwrap()).unwrap();
    assert_eq!(r["schema_version"], 2);
    assert_eq!(r["ok"], true);
    // The binary that wrote it, with the revision it was built from.
    assert_eq!(
        r["tool"],
        format!("cnibench {}", cnibench_coordinator::VERSION)
    );
    assert!(
        r["tool"].as_str().unwrap().contains("(git "),
        "{}",
        r["tool"]
    );
    let workers = r["environment"]["workers"].as_array().unwrap();
    assert_eq!(workers.len(), 2);
    assert!(
        workers
            .iter()
            .all(|w| w["kernel"].as_str().is_some_and(|k| !k.is_empty()))
    );
    let sc = r["scenarios"].as_array().unwrap();
    assert_eq!(sc.len(), 3);
    for s in sc {
        let name = s["name"].as_str().unwrap();
        assert_eq!(s["client_node"], "node-a", "{name}");
        assert_eq!(
            s["server_node"], "node-b",
            "cross-node means the other worker: {name}"
        );
        let rep = &s["repetitions"][0];
        assert_eq!(rep["status"], "ok", "{name}: {}", rep["flags"]);
        assert!(f(&rep["throughput_bps"]) > 0.0, "{name}: goodput");
        // Each repetition records when it started, within the run.
        let started = rep["started_at_unix_ns"].as_i64().unwrap();
        assert!(
            (r["started_at_unix_ns"].as_i64().unwrap()
                ..=r["finished_at_unix_ns"].as_i64().unwrap())
                .contains(&started),
            "{name}: {started}"
        );
        // 1 warm-up + 4 measured intervals of 500ms.
        assert_eq!(rep["intervals"].as_array().unwrap().len(), 5, "{name}");
        assert!(
            (f(&rep["duration_s"]) - 2.0).abs() < 0.1,
            "{name}: {}",
            rep["duration_s"]
        );
        let cpu = &rep["cpu"];
        assert!(f(&cpu["client_process_cores"]) > 0.0, "{name}: {cpu}");
        assert_eq!(cpu["shared_machine"], true, "{name}: {cpu}");
        // Node cost is a positive number, or absent with the reason (this test may
        // share the machine with other tests, which a baseline cannot subtract).
        let node_ok = cpu["node_cores"].as_f64().is_some_and(|c| c > 0.0);
        assert!(
            node_ok || cpu["node_unavailable"].is_string(),
            "{name}: {cpu}"
        );
        // The generator's user time apart, and the datapath's cost without it.
        assert!(f(&cpu["generator_user_cores"]) > 0.0, "{name}: {cpu}");
        if node_ok {
            let d = f(&cpu["datapath_cores"]);
            assert!(d >= 0.0 && d < f(&cpu["node_cores"]), "{name}: {cpu}");
        } else {
            assert!(cpu["datapath_cores"].is_null(), "{name}: {cpu}");
        }
        // Datapath health from the kernel's counters: the workers share a
        // namespace (counted once) and their data interface is lo.
        // The repetition's figures have the idle window's rate taken off
        // (the other tests of this file send on lo at the same time, so they
        // may come out 0); each interval's are the kernel's own deltas.
        let h = &rep["health"];
        assert!(h["tcp_segments_out"].is_u64(), "{name}: {h}");
        assert!(h["if_tx_packets"].is_u64(), "{name}: {h}");
        let intervals = rep["intervals"].as_array().unwrap();
        let sum = |k: &str| -> f64 { intervals.iter().map(|i| f(&i["health"][k])).sum() };
        assert!(sum("tcp_segments_out") > 0.0, "{name}: {intervals:?}");
        assert!(sum("if_tx_packets") > 0.0, "{name}: {intervals:?}");
        if name == "stream" {
            assert!(!node_ok || f(&cpu["cores_per_gbps"]) > 0.0, "{cpu}");
            // Goodput is what the server received.
            let bps = f(&rep["throughput_bps"]);
            let recv = f(&rep["server"]["bytes_received"]) * 8.0 / f(&rep["duration_s"]);
            assert!((bps - recv).abs() / bps < 1e-9);
            assert!(rep["latency_ns"].is_null());
            continue;
        }
        let l = &rep["latency_ns"];
        let (p50, p99, max) = (f(&l["p50"]), f(&l["p99"]), f(&l["max"]));
        assert!(p50 > 0.0 && p50 <= p99 && p99 <= max, "{name}: {l}");
        let client = f(&rep["client"]["transactions"]);
        let server = f(&rep["server"]["transactions"]);
        assert!(client > 100.0, "{name}: {client} transactions");
        assert_eq!(
            f(&l["count"]),
            client,
            "{name}: one latency sample per transaction"
        );
        // Both sides count the same transactions, up to those in flight at the
        // interval edges (the two workers cut intervals independently).
        let slack = 2.0 + client * 0.01;
        assert!(
            (client - server).abs() <= slack,
            "{name}: client {client} vs server {server}"
        );
        assert!(f(&rep["requests_per_s"]) > 0.0);
        if name == "crr" {
            assert!(
                (f(&rep["connections_per_s"]) - f(&rep["requests_per_s"])).abs()
                    / f(&rep["requests_per_s"])
                    < 0.02
            );
        }
    }
    let csv = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    assert!(csv.starts_with("cni,scenario,traffic,path,"));
    assert_eq!(csv.lines().count(), 4);
    // The health columns, appended: a tcp-stream always sent segments.
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let col = header
        .iter()
        .position(|c| *c == "tcp_retransmit_pct")
        .unwrap();
    assert_eq!(header.len(), col + 8, "{header:?}");
    let stream = csv.lines().find(|l| l.contains(",stream,")).unwrap();
    let fields: Vec<&str> = stream.rsplitn(9, ',').collect();
    assert!(fields[7].parse::<f64>().is_ok(), "{stream}");
}

#[test]
fn bad_plan_exits_64_with_location() {
    let (_dir, token, plan) = setup("badplan", &PLAN.replace("streams: 2", "streems: 2"));
    let o = run(
        &plan,
        &token,
        "127.0.0.2:1",
        std::path::Path::new("/tmp/unused"),
    );
    assert_eq!(o.status.code(), Some(64));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("plan.yaml:4:"), "{err}");
    assert!(err.contains("streems"), "{err}");
}

#[test]
fn unreachable_worker_is_named_and_does_not_hang() {
    let (dir, token, plan) = setup("unreach", PLAN);
    let w1 = start_worker("127.0.0.2", "node-a", &token);
    // Nothing listens on 127.0.0.3:9 (discard port, not served here).
    let t = Instant::now();
    let o = run(
        &plan,
        &token,
        &format!("{},127.0.0.3:9", w1.addr),
        &dir.join("o"),
    );
    assert!(t.elapsed() < Duration::from_secs(10));
    assert_eq!(o.status.code(), Some(69));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("127.0.0.3:9"), "{err}");
}

#[test]
fn wrong_token_is_refused() {
    let (dir, token, plan) = setup("token", PLAN);
    let w1 = start_worker("127.0.0.2", "node-a", &token);
    let wrong = dir.join("wrong");
    std::fs::write(&wrong, "not-the-token").unwrap();
    let o = run(&plan, &wrong, &w1.addr, &dir.join("o"));
    assert_eq!(o.status.code(), Some(69));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("authentication failed"), "{err}");
}

#[test]
fn cross_node_refused_when_both_workers_share_a_node() {
    let (dir, token, plan) = setup("samenode", PLAN);
    let w1 = start_worker("127.0.0.2", "same", &token);
    let w2 = start_worker("127.0.0.3", "same", &token);
    let o = run(
        &plan,
        &token,
        &format!("{},{}", w1.addr, w2.addr),
        &dir.join("o"),
    );
    assert_eq!(o.status.code(), Some(64));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("different nodes"), "{err}");
}

const PLAN_UDP: &str = "\
name: e2e-udp
defaults: { duration: 2s, warmup: 500ms, interval: 500ms }
scenarios:
  - { name: udp-paced, traffic: udp-stream, path: pod-to-pod-cross-node, rate: 200Mbit/s }
  - { name: udp-rr, traffic: udp-rr, path: pod-to-pod-cross-node, connections: 2, timeout: 200ms }
  - { name: rr-two-clients, traffic: tcp-rr, path: pod-to-pod-cross-node, clients: 2, rate: 2000/s, connections: 2 }
";

#[test]
fn udp_open_loop_and_several_clients() {
    let (dir, token, plan) = setup("udp", PLAN_UDP);
    let w1 = start_worker("127.0.0.2", "node-a", &token);
    let w2 = start_worker("127.0.0.3", "node-b", &token);
    let w3 = start_worker("127.0.0.4", "node-a", &token);
    let r = run_ok(&plan, &token, &[&w1, &w2, &w3], &dir.join("out"));
    let sc = |name: &str| scenario(&r, name);

    // A paced UDP stream delivers its target bitrate, and reports loss and jitter.
    let s = sc("udp-paced");
    let rep = &s["repetitions"][0];
    assert_eq!(rep["client_saturated"], false, "{}", rep["flags"]);
    let bps = f(&rep["throughput_bps"]);
    assert!((bps / 200e6 - 1.0).abs() < 0.05, "udp goodput {bps}");
    let udp = &rep["udp"];
    assert!(f(&udp["received"]) > 10_000.0, "{udp}");
    assert!(f(&udp["loss_pct"]) < 5.0, "{udp}");
    // RFC 3550 jitter from kernel receive stamps on loopback: some, and far
    // below a millisecond (a unit slip would be a factor of 1000).
    let jitter = f(&udp["jitter_ns"]);
    assert!(jitter > 0.0 && jitter < 1e6, "{udp}");
    // Every datagram sent was received or counted lost, the end of the run too.
    let sent = f(&rep["client"]["attempts"]);
    assert!(sent > 0.0, "{}", rep["client"]);
    // The paced sender's thread reported its CPU.
    let sender = f(&rep["cpu"]["sender_thread_cores"]);
    assert!(sender > 0.0 && sender < 1.0, "{}", rep["cpu"]);
    assert!(f(&udp["lost_at_end"]) <= f(&udp["lost"]), "{udp}");
    // Both ends share this machine's clock: the one-way delay is exact.
    let owd = &rep["one_way_delay"];
    assert_eq!(owd["available"], true, "{owd}");
    assert_eq!(owd["bound_ns"], 0);
    assert!(
        f(&owd["p50_ns"]) > 0.0 && f(&owd["p50_ns"]) <= f(&owd["p99_ns"]),
        "{owd}"
    );
    // Datagrams of 1400 bytes at 200 Mbit/s for 2 s.
    let expected = 200e6 * 2.0 / (1400.0 * 8.0);
    assert!((f(&udp["received"]) / expected - 1.0).abs() < 0.05, "{udp}");

    let s = sc("udp-rr");
    let rep = &s["repetitions"][0];
    assert!(f(&rep["requests_per_s"]) > 100.0);
    assert!(rep["udp"]["loss_pct"].is_number(), "{}", rep["udp"]);
    let l = &rep["latency_ns"];
    assert!(f(&l["p50"]) <= f(&l["p99"]) && f(&l["p99"]) <= f(&l["max"]));

    // Two client workers on node-a share 2000/s against the server on node-b.
    let s = sc("rr-two-clients");
    assert_eq!(
        s["client_workers"].as_array().unwrap().len(),
        2,
        "{}",
        s["client_workers"]
    );
    assert_eq!(s["server_node"], "node-b");
    let rep = &s["repetitions"][0];
    assert_eq!(rep["status"], "ok", "{}", rep["flags"]);
    assert_eq!(rep["client_saturated"], false, "{}", rep["flags"]);
    let rps = f(&rep["requests_per_s"]);
    assert!((rps / 2000.0 - 1.0).abs() < 0.03, "rps {rps}");
    assert_eq!(
        f(&rep["latency_ns"]["count"]),
        f(&rep["client"]["transactions"])
    );
    assert!(
        rep["service_ns"].is_object(),
        "open loop records service time"
    );
    let sched = &rep["schedule"];
    assert!(f(&sched["intended"]) >= 3900.0, "{sched}");
}

#[test]
fn n_to_m_clients_and_servers_merge_exactly() {
    let plan = "\
name: n-m
scenarios:
  - { name: rr-2x2, traffic: tcp-rr, path: pod-to-pod-cross-node, clients: 2, servers: 2, rate: 2000/s, duration: 2s, warmup: 0s, interval: 500ms }
";
    let (dir, token, plan) = setup("nm", plan);
    let a1 = start_worker("127.0.0.2", "node-a", &token);
    let b1 = start_worker("127.0.0.3", "node-b", &token);
    let a2 = start_worker("127.0.0.4", "node-a", &token);
    let b2 = start_worker("127.0.0.5", "node-b", &token);
    let r = run_ok(&plan, &token, &[&a1, &b1, &a2, &b2], &dir.join("out"));
    let s = scenario(&r, "rr-2x2");
    assert_eq!(
        s["server_workers"].as_array().unwrap().len(),
        2,
        "{}",
        s["server_workers"]
    );
    assert_eq!(
        s["client_workers"].as_array().unwrap().len(),
        2,
        "{}",
        s["client_workers"]
    );
    let rep = &s["repetitions"][0];
    assert_eq!(rep["status"], "ok", "{}", rep["flags"]);
    let (client, server) = (
        f(&rep["client"]["transactions"]),
        f(&rep["server"]["transactions"]),
    );
    assert!(
        (f(&rep["requests_per_s"]) / 2000.0 - 1.0).abs() < 0.03,
        "{}",
        rep["requests_per_s"]
    );
    assert!(
        (client - server).abs() <= 4.0 + client * 0.01,
        "client {client} vs server {server}"
    );
    // Each client went to its own server: both servers served.
    assert_eq!(f(&rep["server"]["connections"]), 2.0, "{}", rep["server"]);
}

#[test]
fn repetitions_flag_replaces_the_plans() {
    let plan_text = "name: reps\ndefaults: { duration: 300ms, warmup: 100ms, interval: 100ms, repetitions: 3 }\nscenarios:\n  - { name: rr, traffic: tcp-rr, path: pod-to-pod-cross-node }\n";
    let (dir, token, plan) = setup("repsflag", plan_text);
    let w1 = start_worker("127.0.0.2", "node-a", &token);
    let w2 = start_worker("127.0.0.3", "node-b", &token);
    let workers = format!("{},{}", w1.addr, w2.addr);
    let out = dir.join("o");
    let args = |n: &'static str| {
        [
            "run",
            plan.to_str().unwrap(),
            "--workers",
            &workers,
            "--token-file",
            token.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--repetitions",
            n,
        ]
        .map(str::to_string)
    };
    let o = cnibench(&args("0").each_ref().map(String::as_str));
    assert_eq!(o.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--repetitions 0: must be 1..=1000"));
    let o = cnibench(&args("1").each_ref().map(String::as_str));
    assert!(o.status.code().is_some_and(|c| c <= 1), "{o:?}");
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("result.json")).unwrap()).unwrap();
    assert_eq!(
        r["scenarios"][0]["repetitions"].as_array().unwrap().len(),
        1
    );
    assert_eq!(r["plan"]["scenarios"][0]["repetitions"], 1);
}
