//! QUIC end to end: two real worker processes on 127.0.0.2 and 127.0.0.3, the real
//! `cnibench` binary; the server's certificate travels through the coordinator.

#![allow(clippy::unwrap_used)] // tests fail by panicking

mod common;

use common::*;

const PLAN: &str = "\
name: quic
defaults: { duration: 1500ms, warmup: 500ms, interval: 500ms }
scenarios:
  - { name: stream, traffic: quic-stream, path: pod-to-pod-cross-node, streams: 2 }
  - { name: rr, traffic: quic-rr, path: pod-to-pod-cross-node, connections: 2, request_size: 100, response_size: 1KiB }
";

#[test]
fn quic_scenarios_end_to_end() {
    let (dir, token, plan) = setup("quic", PLAN);
    let w1 = start_worker("127.0.0.2", "node-a", &token);
    let w2 = start_worker("127.0.0.3", "node-b", &token);
    let r = run_ok(&plan, &token, &[&w1, &w2], &dir.join("out"));
    assert_eq!(r["ok"], true);

    let stream = scenario(&r, "stream");
    let rep = &stream["repetitions"][0];
    assert_eq!(rep["status"], "ok", "stream: {}", rep["flags"]);
    let bps = f(&rep["throughput_bps"]);
    assert!(bps > 0.0, "stream: goodput");
    // Goodput is what the server received.
    let received = f(&rep["server"]["bytes_received"]) * 8.0 / f(&rep["duration_s"]);
    assert!((bps - received).abs() / bps < 1e-9);
    assert!(rep["latency_ns"].is_null());
    eprintln!("quic-stream: {:.2} Gbit/s", bps / 1e9);

    let rr = scenario(&r, "rr");
    let rep = &rr["repetitions"][0];
    assert_eq!(rep["status"], "ok", "rr: {}", rep["flags"]);
    assert!(f(&rep["throughput_bps"]) > 0.0, "rr: goodput");
    let l = &rep["latency_ns"];
    let (p50, p99, max) = (f(&l["p50"]), f(&l["p99"]), f(&l["max"]));
    assert!(p50 > 0.0 && p50 <= p99 && p99 <= max, "rr: {l}");
    let client = f(&rep["client"]["transactions"]);
    let server = f(&rep["server"]["transactions"]);
    assert!(client > 100.0, "rr: {client} transactions");
    assert_eq!(f(&l["count"]), client, "one latency sample per transaction");
    // Both sides count the same transactions, up to those in flight at the interval
    // edges (the two workers cut intervals independently).
    let slack = 2.0 + client * 0.01;
    assert!(
        (client - server).abs() <= slack,
        "rr: client {client} vs server {server}"
    );
    assert!(f(&rep["requests_per_s"]) > 0.0);
    eprintln!(
        "quic-rr: {:.0} req/s, p50 {:.0} us, p99 {:.0} us",
        f(&rep["requests_per_s"]),
        p50 / 1e3,
        p99 / 1e3
    );
    // No errors on either side (clients close their connections at the deadline,
    // which is the normal end for a server).
    for s in [&stream, &rr] {
        let rep = &s["repetitions"][0];
        for side in ["client", "server"] {
            let errors = &rep[side]["errors"];
            assert!(
                errors.as_object().is_none_or(|e| e.is_empty()),
                "{} {side}: {errors}",
                s["name"]
            );
        }
    }
}
