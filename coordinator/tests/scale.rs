//! Many workers reporting to one coordinator: 200 workers (in-process control
//! servers of the real worker library, one per port and node name) stream 1 s
//! intervals to one real `cnibench` process. `CNIBENCH_SCALE_WORKERS` changes the
//! count (scripts/bench-scale.sh uses 1,000 and reports coordinator CPU).

#![allow(clippy::unwrap_used)] // tests fail by panicking

mod common;

use cnibench_worker::control::{self, Config};
use common::*;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

fn worker_count() -> usize {
    std::env::var("CNIBENCH_SCALE_WORKERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200)
}

#[test]
fn two_hundred_workers_report_to_one_coordinator() {
    let n = worker_count();
    let clients = n - 1;
    // What is measured is the coordinator's fan-in: a request the one busy
    // server takes seconds to answer is slow, not failed (the default timeout
    // is 1 s).
    let plan = format!(
        "name: scale\nscenarios:\n  - {{ name: fan-in, traffic: tcp-rr, path: pod-to-pod-cross-node, clients: {clients}, rate: {}/s, duration: 3s, warmup: 0s, interval: 1s, timeout: 30s }}\n",
        clients * 10
    );
    let (dir, token, plan) = setup("scale", &plan);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let stop = CancellationToken::new();
    let addrs: Vec<String> = rt.block_on(async {
        let mut addrs = Vec::new();
        for i in 0..n {
            let l = tokio::net::TcpListener::bind("127.0.0.2:0").await.unwrap();
            addrs.push(l.local_addr().unwrap().to_string());
            let info = cnibench_worker::local_info(
                "127.0.0.2".parse().unwrap(),
                &format!("node-{i}"),
                "sim",
            );
            let cfg = Config {
                token: b"e2e-shared-token".to_vec(),
                info,
                dead_man: Duration::from_secs(3),
                limits: Default::default(),
            };
            tokio::spawn(control::serve(l, Arc::new(cfg), stop.clone()));
        }
        addrs
    });
    let out = dir.join("out");
    let child = cnibench_cmd()
        .args(["run", plan.to_str().unwrap(), "--workers", &addrs.join(",")])
        .args([
            "--token-file",
            token.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Coordinator CPU, sampled until it exits (for scripts/bench-scale.sh; printed,
    // not asserted).
    let pid = child.id();
    let sampler = std::thread::spawn(move || {
        let mut ticks = 0u64;
        while let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            let rest = &stat[stat.rfind(')').unwrap() + 1..];
            let f: Vec<&str> = rest.split_whitespace().collect();
            if f.first() == Some(&"Z") {
                break;
            }
            ticks = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
            std::thread::sleep(Duration::from_millis(50));
        }
        ticks
    });
    let o = child.wait_with_output().unwrap();
    let ticks = sampler.join().unwrap();
    stop.cancel();
    // n workers x 3 intervals plus the Done/Ready/Baseline messages.
    let reports = n * 3;
    eprintln!(
        "scale: {n} workers, {reports} interval reports, coordinator CPU {:.2} s = {:.3} ms per report",
        ticks as f64 / 100.0,
        ticks as f64 * 10.0 / reports as f64
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        &stderr[stderr.len().saturating_sub(3000)..]
    );
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("result.json")).unwrap()).unwrap();
    let s = scenario(&r, "fan-in");
    assert_eq!(s["client_workers"].as_array().unwrap().len(), clients);
    let rep = &s["repetitions"][0];
    assert_eq!(rep["status"], "ok", "{}", rep["flags"]);
    // 3 one-second intervals from every client and the server, all merged.
    assert_eq!(rep["intervals"].as_array().unwrap().len(), 3);
    let tx = f(&rep["client"]["transactions"]);
    let expect = clients as f64 * 10.0 * 3.0;
    assert!(
        (tx / expect - 1.0).abs() < 0.05,
        "{tx} transactions, expected about {expect}"
    );
    assert_eq!(f(&rep["latency_ns"]["count"]), tx);
    rt.shutdown_timeout(Duration::from_secs(2));
}
