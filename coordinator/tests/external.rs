//! Clients against a server that is not a cnibench worker (`path:
//! pod-to-external`): here a plain hyper HTTP/1.1 and HTTP/2 server written for
//! the test, on 127.0.0.4, which the client worker must be allowed to target.

#![allow(clippy::unwrap_used)] // tests fail by panicking

mod common;

use common::*;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// An HTTP server answering every request with a 5-byte body; returns its
/// address and its count of requests served. It lives as long as the test.
fn http_server(h2: bool) -> (SocketAddr, Arc<AtomicU64>) {
    http_server_answering(h2, StatusCode::OK)
}

/// [`http_server`] answering every request with `status`.
fn http_server_answering(h2: bool, status: StatusCode) -> (SocketAddr, Arc<AtomicU64>) {
    let served = Arc::new(AtomicU64::new(0));
    let count = served.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let l = tokio::net::TcpListener::bind("127.0.0.4:0").await.unwrap();
            tx.send(l.local_addr().unwrap()).unwrap();
            loop {
                let (s, _) = l.accept().await.unwrap();
                let count = count.clone();
                let svc = hyper::service::service_fn(move |_req: Request<Incoming>| {
                    count.fetch_add(1, Ordering::Relaxed);
                    async move {
                        let mut r = Response::new(Full::new(Bytes::from_static(b"hello")));
                        *r.status_mut() = status;
                        Ok::<_, Infallible>(r)
                    }
                });
                let io = TokioIo::new(s);
                if h2 {
                    tokio::spawn(
                        hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                            .serve_connection(io, svc),
                    );
                } else {
                    tokio::spawn(
                        hyper::server::conn::http1::Builder::new().serve_connection(io, svc),
                    );
                }
            }
        });
    });
    (rx.recv().unwrap(), served)
}

#[test]
fn http_clients_measure_an_external_server() {
    let (h1, served1) = http_server(false);
    let (h2, served2) = http_server(true);
    let plan = format!(
        "\
name: external
defaults: {{ duration: 1500ms, warmup: 0s }}
scenarios:
  - {{ name: h1, traffic: http1, path: pod-to-external, target: {h1}, connections: 4, rate: 400/s }}
  - {{ name: h2, traffic: http2, path: pod-to-external, target: {h2}, connections: 2, streams: 4, rate: 400/s }}
"
    );
    let (dir, token, plan_path) = setup("external", &plan);
    let w = start_worker_with(
        "127.0.0.2",
        "node-a",
        &token,
        &["--cni", "loopback", "--allow", "127.0.0.4/32"],
    );
    let r = run_ok(&plan_path, &token, &[&w], &dir.join("out"));
    for (name, target, served) in [("h1", h1, &served1), ("h2", h2, &served2)] {
        let s = scenario(&r, name);
        assert_eq!(s["server_node"], "external", "{s}");
        assert_eq!(s["server_workers"][0], target.to_string());
        let rep = &s["repetitions"][0];
        assert_eq!(rep["status"], "ok", "{}", rep["flags"]);
        let rps = f(&rep["requests_per_s"]);
        assert!((rps / 400.0 - 1.0).abs() < 0.05, "{name}: {rps}/s");
        let n = f(&rep["client"]["transactions"]);
        assert_eq!(f(&rep["latency_ns"]["count"]), n);
        assert_eq!(
            f(&rep["client"]["bytes_received"]),
            n * 5.0,
            "5-byte bodies"
        );
        assert_eq!(rep["client"]["status"]["2xx"], n);
        // Every request the client completed reached our server.
        let got = served.load(Ordering::Relaxed) as f64;
        assert!(
            got >= n && got <= n + 8.0,
            "{name}: served {got}, client {n}"
        );
        // No server worker: no server-side figures, and nothing pretends otherwise.
        assert!(rep["throughput_bps"].is_null(), "{}", rep["throughput_bps"]);
        assert_eq!(f(&rep["server"]["transactions"]), 0.0);
    }
}

#[test]
fn a_worker_refuses_an_external_target_it_was_not_allowed() {
    let (h1, served) = http_server(false);
    let plan = format!(
        "name: external\nscenarios:\n  - {{ name: h1, traffic: http1, path: pod-to-external, target: {h1}, duration: 1s, warmup: 0s }}\n"
    );
    let (dir, token, plan_path) = setup("external-refused", &plan);
    let w = start_worker("127.0.0.2", "node-a", &token);
    let o = run(&plan_path, &token, &w.addr, &dir.join("out"));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("target 127.0.0.4 is not one of the run's workers"),
        "{stdout}"
    );
    assert_eq!(served.load(Ordering::Relaxed), 0, "not one request sent");
}

#[test]
fn a_server_answering_errors_fast_is_errors_not_a_slow_client() {
    // nginx answering 503 to everything at an offered rate once made a run
    // `ok`, 0 req/s, "client saturated" and "no progress (stall)", and a sweep
    // stop on "the client saturated", while the client kept its schedule.
    let (target, served) = http_server_answering(false, StatusCode::SERVICE_UNAVAILABLE);
    let plan = format!(
        "\
name: errors
defaults: {{ duration: 1500ms, warmup: 0s, interval: 500ms }}
scenarios:
  - {{ name: h1, traffic: http1, path: pod-to-external, target: {target}, connections: 4, rate: 400/s }}
  - name: sweep
    traffic: http1
    path: pod-to-external
    target: {target}
    connections: 4
    rate: sweep(100/s..400/s, x2)
"
    );
    let (dir, token, plan_path) = setup("external-errors", &plan);
    let w = start_worker_with(
        "127.0.0.2",
        "node-a",
        &token,
        &["--cni", "loopback", "--allow", "127.0.0.4/32"],
    );
    let out = dir.join("out");
    let o = run(&plan_path, &token, &w.addr, &out);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{stdout}");
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("result.json")).unwrap()).unwrap();
    let s = scenario(&r, "h1");
    let rep = &s["repetitions"][0];
    let flags = rep["flags"].to_string();
    // Nothing succeeded: failed, and why.
    assert_eq!(rep["status"], "failed", "{flags}");
    assert!(flags.contains("errors: 100.0% of"), "{flags}");
    assert!(flags.contains("http-5xx"), "{flags}");
    assert_eq!(rep["client_saturated"], false, "{flags}");
    assert!(
        !flags.contains("saturated") && !flags.contains("stall"),
        "{flags}"
    );
    assert_eq!(f(&rep["error_pct"]), 100.0);
    // The client kept its schedule: 400/s sent, every one failed.
    let c = &rep["client"];
    let attempts = f(&c["attempts"]);
    assert!((attempts / 600.0 - 1.0).abs() < 0.05, "{c}");
    assert_eq!(f(&c["transactions"]), 0.0);
    assert!(f(&c["failed"]) >= attempts - 4.0, "{c}");
    assert_eq!(c["status"]["5xx"], c["failed"]);
    assert_eq!(f(&rep["errors"]), f(&c["failed"]), "counted once");
    assert!(served.load(Ordering::Relaxed) as f64 >= attempts - 4.0);
    // Every request is accounted for.
    let q = &rep["requests"];
    assert_eq!(
        f(&q["attempted"]),
        f(&q["completed"]) + f(&q["failed"]) + f(&q["unfinished"]),
        "{q}"
    );
    assert!(!flags.contains("add up"), "{flags}");
    // The sweep stops on errors.
    let sw = &scenario(&r, "sweep")["sweep"];
    let first = &sw["steps"][0];
    assert_eq!(first["holds"], false, "{sw}");
    let why = first["why"].as_str().unwrap();
    assert!(why.starts_with("errors: 100.0%"), "{why}");
    assert!(sw["max_rate"].is_null(), "{sw}");
    // Not "the client saturated", even if this busy machine made it lag.
    assert!(sw["limited_by"].is_null(), "{sw}");
}
