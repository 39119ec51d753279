//! Service paths (`pod-to-service`, `pod-to-nodeport`) as far as they run on
//! loopback: the coordinator resolves a `service: dns:NAME:PORT` before
//! anything is sent, and refuses a name that does not resolve with the plan's
//! file, line, column and field (exit 64). Traffic through a real Service
//! (kube-proxy rules) needs the testbed: `scripts/test-services.sh`.

#![allow(clippy::unwrap_used)] // tests fail by panicking

mod common;

use common::*;

#[test]
fn an_unresolvable_service_name_is_a_plan_error() {
    let plan = "\
name: svc
scenarios:
  - { name: rr, traffic: tcp-rr, path: pod-to-service, service: 'dns:no-such-service.invalid:8080' }
";
    let (dir, token, plan_path) = setup("svc-unresolvable", plan);
    // No worker needed: the plan is refused before any is contacted.
    let o = run(&plan_path, &token, "127.0.0.1:1", &dir.join("out"));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(64), "{stderr}");
    assert!(
        stderr.contains(
            "plan.yaml:3:65: field `service`: scenario `rr`: cannot resolve no-such-service.invalid"
        ),
        "{stderr}"
    );
}

/// A port free on `ip` now (the servers bind it as the Service's target port).
fn free_port(ip: &str) -> u16 {
    std::net::TcpListener::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Every traffic kind with `path: pod-to-service`: the server worker listens on
/// the Service's port, and the client sends to the Service address. On
/// loopback nothing translates it, so the "Service" is the server's own
/// address; `scripts/test-services.sh` runs the same through kube-proxy's
/// rules with two endpoints.
#[test]
fn every_traffic_kind_goes_to_the_service_address() {
    let port = free_port("127.0.0.12");
    let svc = format!("path: pod-to-service, service: 127.0.0.12:{port}");
    let mut plan =
        "name: svc\ndefaults: { duration: 600ms, warmup: 0s, interval: 200ms }\nscenarios:\n"
            .to_string();
    for kind in [
        "tcp-stream",
        "tcp-rr",
        "tcp-crr",
        "udp-stream",
        "udp-rr",
        "http1",
        "http2",
        "quic-stream",
        "quic-rr",
    ] {
        let rate = match kind {
            "udp-stream" | "quic-stream" | "tcp-stream" => "rate: 50Mbit/s",
            _ => "rate: 500/s",
        };
        plan += &format!("  - {{ name: {kind}, traffic: {kind}, {svc}, {rate} }}\n");
    }
    let (dir, token, plan_path) = setup("svc-kinds", &plan);
    let client = start_worker("127.0.0.11", "node-a", &token);
    let server = start_worker("127.0.0.12", "node-b", &token);
    let r = run_ok(&plan_path, &token, &[&client, &server], &dir.join("out"));
    for s in r["scenarios"].as_array().unwrap() {
        let name = s["name"].as_str().unwrap();
        assert_eq!(s["path"], "pod-to-service", "{name}");
        assert_eq!(s["server_node"], "node-b", "{name}");
        let rep = &s["repetitions"][0];
        let (c, sv) = (&rep["client"], &rep["server"]);
        // One endpoint on loopback (nothing translates the address): it has
        // every connection, and the endpoints add up to the server counters.
        let eps = rep["endpoints"].as_array().unwrap();
        assert_eq!(eps.len(), 1, "{name}: {rep}");
        assert_eq!(eps[0]["worker"], server.addr.as_str(), "{name}");
        for (ep, total) in [
            ("connections", "connections"),
            ("requests", "transactions"),
            ("bytes_received", "bytes_received"),
        ] {
            let sum: f64 = eps.iter().map(|e| f(&e[ep])).sum();
            assert_eq!(sum, f(&sv[total]), "{name}: {ep}");
        }
        // A share adds up to 1 where its servers counted any (UDP servers
        // count no connections, HTTP servers no bytes), else it is null.
        let mut known = 0;
        for (key, total) in [("share", "connections"), ("bytes_share", "bytes_received")] {
            if f(&sv[total]) > 0.0 {
                let shares: f64 = eps.iter().map(|e| f(&e[key])).sum();
                assert!((shares - 1.0).abs() < 1e-9, "{name}: {key}: {eps:?}");
                known += 1;
            } else {
                assert!(eps.iter().all(|e| e[key].is_null()), "{name}: {eps:?}");
            }
        }
        assert!(known > 0, "{name}: neither share known: {eps:?}");
        if name.ends_with("stream") {
            assert!(f(&sv["bytes_received"]) > 0.0, "{name}: {sv}");
        } else {
            assert!(f(&c["transactions"]) > 0.0, "{name}: {c}");
            assert!(f(&sv["transactions"]) > 0.0, "{name}: {sv}");
        }
    }
    let report = std::fs::read_to_string(dir.join("out/report.md")).unwrap();
    let line = format!(
        "Endpoints (share of the connections, else of the bytes): repetition 1: {} 100%",
        server.addr
    );
    assert_eq!(report.matches(&line).count(), 9, "{report}");
}

/// A client worker whose `--allow` does not cover the plan's Service refuses
/// the job before sending anything, saying which address and rule.
#[test]
fn a_service_outside_the_allow_list_is_refused_before_any_traffic() {
    let port = free_port("127.0.0.12");
    let plan = format!(
        "name: svc\ndefaults: {{ duration: 500ms, warmup: 0s, interval: 250ms }}\nscenarios:\n  - {{ name: rr, traffic: tcp-rr, path: pod-to-service, service: 127.0.0.12:{port} }}\n"
    );
    let (dir, token, plan_path) = setup("svc-allow", &plan);
    let client = start_worker_with(
        "127.0.0.11",
        "node-a",
        &token,
        &["--cni", "loopback", "--allow", "10.96.0.0/12"],
    );
    let server = start_worker("127.0.0.12", "node-b", &token);
    let o = run(
        &plan_path,
        &token,
        &format!("{},{}", client.addr, server.addr),
        &dir.join("out"),
    );
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert_ne!(o.status.code(), Some(0), "{all}");
    assert!(
        all.contains(&format!(
            "target 127.0.0.12:{port} (the plan's Service) is outside this worker's --allow networks"
        )),
        "{all}"
    );
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("out/result.json")).unwrap())
            .unwrap();
    let rep = &r["scenarios"][0]["repetitions"][0];
    assert_eq!(f(&rep["server"]["bytes_received"]), 0.0, "{rep}");
}
