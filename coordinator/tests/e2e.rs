//! End to end: two real worker processes on 127.0.0.2 and 127.0.0.3, the real
//! `cnibench` binary, real sockets.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const CNIBENCH: &str = env!("CARGO_BIN_EXE_cnibench");

/// The worker binary sits next to ours (cargo builds it for the worker's own tests).
fn worker_bin() -> PathBuf {
    let p = Path::new(CNIBENCH).with_file_name("cnibench-worker");
    assert!(
        p.exists(),
        "{} missing: run `cargo test --workspace`",
        p.display()
    );
    p
}

struct Worker {
    child: Child,
    addr: String,
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tmpdir(tag: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let d = std::env::temp_dir().join(format!("cnb-e2e-{tag}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn start_worker(ip: &str, node: &str, token: &Path) -> Worker {
    let mut child = Command::new(worker_bin())
        .args([
            "--listen",
            &format!("{ip}:0"),
            "--node",
            node,
            "--cni",
            "loopback",
            "--token-file",
        ])
        .arg(token)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let addr = first
        .split("listening on ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("unexpected first line: {first}"))
        .to_string();
    let node = node.to_string();
    std::thread::spawn(move || {
        for l in lines.map_while(Result::ok) {
            eprintln!("[{node}] {l}");
        }
    });
    Worker { child, addr }
}

fn cnibench(args: &[&str]) -> Output {
    Command::new(CNIBENCH).args(args).output().unwrap()
}

fn setup(tag: &str, plan: &str) -> (PathBuf, PathBuf, PathBuf) {
    let dir = tmpdir(tag);
    let token = dir.join("token");
    std::fs::write(&token, "e2e-shared-token\n").unwrap();
    let plan_path = dir.join("plan.yaml");
    std::fs::write(&plan_path, plan).unwrap();
    (dir, token, plan_path)
}

const PLAN: &str = "\
name: e2e
defaults: { duration: 2s, warmup: 500ms, interval: 500ms }
scenarios:
  - { name: stream, traffic: tcp-stream, path: pod-to-pod-cross-node, streams: 2 }
  - { name: rr, traffic: tcp-rr, path: pod-to-pod-cross-node, connections: 2, request_size: 100, response_size: 1KiB }
  - { name: crr, traffic: tcp-crr, path: pod-to-pod-cross-node, connections: 2 }
";

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
fn tcp_scenarios_end_to_end() {
    let (dir, token, plan) = setup("main", PLAN);
    let w1 = start_worker("127.0.0.2", "node-a", &token);
    let w2 = start_worker("127.0.0.3", "node-b", &token);
    let out = dir.join("out");
    let workers = format!("{},{}", w1.addr, w2.addr);
    let o = cnibench(&[
        "run",
        plan.to_str().unwrap(),
        "--workers",
        &workers,
        "--token-file",
        token.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
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
    assert_eq!(r["schema_version"], 1);
    assert_eq!(r["ok"], true);
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
        // 1 warm-up + 4 measured intervals of 500ms.
        assert_eq!(rep["intervals"].as_array().unwrap().len(), 5, "{name}");
        assert!(
            (f(&rep["duration_s"]) - 2.0).abs() < 0.1,
            "{name}: {}",
            rep["duration_s"]
        );
        if name == "stream" {
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
}

#[test]
fn bad_plan_exits_64_with_location() {
    let (_dir, token, plan) = setup("badplan", &PLAN.replace("streams: 2", "streems: 2"));
    let o = cnibench(&[
        "run",
        plan.to_str().unwrap(),
        "--workers",
        "127.0.0.2:1",
        "--token-file",
        token.to_str().unwrap(),
        "--out",
        "/tmp/unused",
    ]);
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
    let o = cnibench(&[
        "run",
        plan.to_str().unwrap(),
        "--workers",
        &format!("{},127.0.0.3:9", w1.addr),
        "--token-file",
        token.to_str().unwrap(),
        "--out",
        dir.join("o").to_str().unwrap(),
    ]);
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
    let o = cnibench(&[
        "run",
        plan.to_str().unwrap(),
        "--workers",
        &w1.addr,
        "--token-file",
        wrong.to_str().unwrap(),
        "--out",
        dir.join("o").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(69));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("authentication failed"), "{err}");
}

#[test]
fn cross_node_refused_when_both_workers_share_a_node() {
    let (dir, token, plan) = setup("samenode", PLAN);
    let w1 = start_worker("127.0.0.2", "same", &token);
    let w2 = start_worker("127.0.0.3", "same", &token);
    let o = cnibench(&[
        "run",
        plan.to_str().unwrap(),
        "--workers",
        &format!("{},{}", w1.addr, w2.addr),
        "--token-file",
        token.to_str().unwrap(),
        "--out",
        dir.join("o").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(64));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("different nodes"), "{err}");
}
