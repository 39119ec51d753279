//! Clients against a server that is not a cnibench worker (`path:
//! pod-to-external`): here a plain hyper HTTP/1.1 and HTTP/2 server written for
//! the test, on 127.0.0.4, which the client worker must be allowed to target.

#![allow(clippy::unwrap_used)] // tests fail by panicking

mod common;

use common::*;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// An HTTP server answering every request with a 5-byte body; returns its
/// address and its count of requests served. It lives as long as the test.
fn http_server(h2: bool) -> (SocketAddr, Arc<AtomicU64>) {
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
                    async {
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"hello"))))
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
