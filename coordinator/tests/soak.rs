//! `cnibench soak` end to end on real worker processes: windows, events, and
//! memory that does not grow with the length of the soak.

#![allow(clippy::unwrap_used)] // tests fail by panicking

mod common;

use common::*;
use serde_json::Value;
use std::time::{Duration, Instant};

fn soak_cmd(
    plan: &std::path::Path,
    token: &std::path::Path,
    w: &[&Worker],
    out: &std::path::Path,
    duration: &str,
    window: &str,
) -> std::process::Command {
    let list: Vec<&str> = w.iter().map(|w| w.addr.as_str()).collect();
    let mut c = cnibench_cmd();
    c.args([
        "soak",
        plan.to_str().unwrap(),
        "--duration",
        duration,
        "--window",
        window,
    ])
    .args(["--workers", &list.join(",")])
    .args([
        "--token-file",
        token.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    c
}

fn read(out: &std::path::Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("result.json")).unwrap()).unwrap()
}

#[test]
fn a_soak_reports_windows_and_stalls_as_events() {
    // The server stalls 400 ms into every window: each window has intervals
    // without progress, which must be events, not zeros.
    let plan = "\
name: soak-stall
scenarios:
  - { name: rr, traffic: tcp-rr, path: pod-to-pod-cross-node, rate: 200/s, warmup: 0s, interval: 100ms, server_stall: { at: 700ms, for: 400ms } }
";
    let (dir, token, plan_path) = setup("soak-stall", plan);
    let w1 = start_worker("127.0.0.2", "node-a", &token);
    let w2 = start_worker("127.0.0.3", "node-b", &token);
    let out = dir.join("out");
    let o = soak_cmd(&plan_path, &token, &[&w1, &w2], &out, "7s", "2s")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("ended: duration reached"), "{stdout}");
    assert!(
        stderr.contains("soak event at"),
        "events are printed as they happen: {stderr}"
    );
    let r = read(&out);
    let k = &r["soak"];
    let windows = k["windows"].as_array().unwrap();
    // Windows of 2 s, with about half a second between them to set up.
    assert!((3..=4).contains(&windows.len()), "{k}");
    let starts: Vec<f64> = windows.iter().map(|w| f(&w["started_s"])).collect();
    assert!(starts.windows(2).all(|p| p[1] >= p[0] + 2.0), "{starts:?}");
    assert!(starts.last().unwrap() < &7.0, "{starts:?}");
    let reps = scenario(&r, "rr")["repetitions"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(reps.len(), windows.len());
    let events = k["events"].as_array().unwrap();
    for (i, rep) in reps.iter().enumerate() {
        let w = i + 1;
        let stalls: Vec<&Value> = events
            .iter()
            .filter(|e| e["kind"] == "stall" && e["window"] == w)
            .collect();
        if f(&rep["duration_s"]) < 1.2 {
            continue; // a last, shorter window may end before the stall
        }
        // One event for the 400 ms without progress, 0.7 s into the window.
        assert_eq!(stalls.len(), 1, "window {w}: {stalls:?}");
        let into = f(&stalls[0]["at_s"]) - starts[i];
        assert!(
            (0.6..=0.9).contains(&into),
            "window {w}: stall {into:.2}s in"
        );
        let detail = stalls[0]["detail"].as_str().unwrap();
        assert!(
            detail.starts_with("no progress for 0.4 s")
                || detail.starts_with("no progress for 0.3 s"),
            "{detail}"
        );
        // Rolled up: totals and a histogram, no interval list.
        assert!(rep["intervals"].as_array().unwrap().is_empty());
        assert!(rep["histogram"].is_string());
        assert!(
            f(&rep["requests_per_s"]) > 150.0,
            "{}",
            rep["requests_per_s"]
        );
    }
}

#[test]
fn a_soak_killed_keeps_its_finished_windows() {
    let plan = "\
name: soak-kill
scenarios:
  - { name: rr, traffic: tcp-rr, path: pod-to-pod-cross-node, rate: 200/s, warmup: 0s, interval: 500ms }
";
    let (dir, token, plan_path) = setup("soak-kill", plan);
    let w1 = start_worker("127.0.0.2", "node-a", &token);
    let w2 = start_worker("127.0.0.3", "node-b", &token);
    let out = dir.join("out");
    let mut child = soak_cmd(&plan_path, &token, &[&w1, &w2], &out, "60s", "1s")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    let r = loop {
        assert!(
            t0.elapsed() < Duration::from_secs(50),
            "no 2 windows on disk"
        );
        std::thread::sleep(Duration::from_millis(100));
        if let Ok(text) = std::fs::read_to_string(out.join("result.json")) {
            let r: Value = serde_json::from_str(&text).unwrap();
            if r["soak"]["windows"].as_array().unwrap().len() >= 2 {
                break r;
            }
        }
    };
    child.kill().unwrap();
    let _ = child.wait();
    let windows = r["soak"]["windows"].as_array().unwrap().len();
    let why = r["incomplete"].as_str().unwrap();
    assert!(why.contains(&format!("after {windows} windows")), "{why}");
    assert_eq!(r["ok"], false);
    let reps = r["scenarios"][0]["repetitions"].as_array().unwrap();
    assert_eq!(reps.len(), windows);
    assert!(reps.iter().all(|w| f(&w["requests_per_s"]) > 0.0));
}

fn rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

#[test]
fn soak_memory_stays_flat() {
    // Accelerated: 10 ms intervals from both sides (200 reports/s with three
    // histograms each) over 1 s windows for 60 s. Kept, the per-interval
    // results alone grow the coordinator by over 100 KiB a window (measured:
    // about 4 MiB between the two sampling ranges below); rolled up it stays
    // within allocator noise. Writing the reports at the end is not sampled.
    let plan = "\
name: soak-rss
scenarios:
  - { name: rr, traffic: tcp-rr, path: pod-to-pod-cross-node, connections: 4, rate: 2000/s, warmup: 0s, interval: 10ms }
";
    let (dir, token, plan_path) = setup("soak-rss", plan);
    let w1 = start_worker("127.0.0.2", "node-a", &token);
    let w2 = start_worker("127.0.0.3", "node-b", &token);
    let out = dir.join("out");
    let mut child = soak_cmd(&plan_path, &token, &[&w1, &w2], &out, "60s", "1s")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    let mut samples: Vec<(f64, u64)> = Vec::new();
    while child.try_wait().unwrap().is_none() {
        assert!(t0.elapsed() < Duration::from_secs(120), "soak did not end");
        if let Some(kib) = rss_kib(child.id()) {
            samples.push((t0.elapsed().as_secs_f64(), kib));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    // What is measured here is memory: a loaded machine may stall an interval
    // (a window `partial`, exit 1) and stretch the windows (3.5 s each at load
    // 12 on 2 cores), neither of which is this test's business.
    let code = child.wait().unwrap().code();
    assert!(matches!(code, Some(0 | 1)), "{code:?}");
    let r = read(&out);
    assert_eq!(r["incomplete"], Value::Null, "the soak finished");
    let started: Vec<f64> = r["soak"]["windows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| f(&w["started_s"]))
        .collect();
    let windows = started.len();
    // Enough windows between the two sampling ranges for kept intervals to
    // show (over 100 KiB each, against the 1 MiB allowed).
    let between = started
        .iter()
        .filter(|&&t| (20.0..50.0).contains(&t))
        .count();
    assert!(
        between >= 8,
        "{between} windows between the samples: {started:?}"
    );
    let at = |from: f64, to: f64| -> u64 {
        samples
            .iter()
            .filter(|(t, _)| (from..to).contains(t))
            .map(|s| s.1)
            .max()
            .unwrap_or(0)
    };
    let (early, late) = (at(15.0, 25.0), at(45.0, 55.0));
    eprintln!("coordinator RSS: {early} KiB at 15-25 s, {late} KiB at 45-55 s; {windows} windows");
    assert!(early > 0 && late > 0, "{samples:?}");
    assert!(
        late <= early + 1024,
        "RSS grew from {early} KiB to {late} KiB"
    );
}

/// `GET /metrics` over a plain TCP connection.
fn scrape(addr: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    body
}

/// The value of the series starting with `prefix` (name and labels).
fn series(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn live_metrics_during_a_soak() {
    use std::io::BufRead;
    let plan = "\
name: soak-metrics
scenarios:
  - { name: rr, traffic: tcp-rr, path: pod-to-pod-cross-node, rate: 500/s, warmup: 0s, interval: 250ms, slo: { p99: 1s } }
";
    let (dir, token, plan_path) = setup("soak-metrics", plan);
    let w1 = start_worker("127.0.0.2", "node-a", &token);
    let w2 = start_worker("127.0.0.3", "node-b", &token);
    let mut child = soak_cmd(
        &plan_path,
        &token,
        &[&w1, &w2],
        &dir.join("out"),
        "5s",
        "2s",
    )
    .args(["--metrics", "127.0.0.1:0"])
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| {
            l.strip_prefix("metrics: http://")
                .and_then(|r| r.strip_suffix("/metrics"))
                .map(str::to_string)
        })
        .expect("the metrics address is printed");
    std::thread::spawn(move || lines.for_each(drop));
    // Mid-way through the second window: live rate, latency, a finished window.
    std::thread::sleep(Duration::from_millis(3500));
    let text = scrape(&addr);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("application/openmetrics-text"), "{text}");
    let labels = "{scenario=\"rr\",traffic=\"tcp-rr\",cni=\"loopback\"";
    let rps = series(&text, &format!("cnibench_requests_per_second{labels}}}")).unwrap();
    assert!((400.0..=600.0).contains(&rps), "{rps}\n{text}");
    let p99 = series(
        &text,
        &format!("cnibench_latency_seconds{labels},quantile=\"0.99\"}}"),
    )
    .unwrap();
    assert!(p99 > 0.0 && p99 < 1.0, "{p99}");
    assert_eq!(
        series(
            &text,
            &format!("cnibench_repetitions_total{labels},status=\"ok\"}}")
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        series(
            &text,
            &format!("cnibench_slo_ok{labels},objective=\"p99\"}}")
        ),
        Some(1.0)
    );
    assert_eq!(
        series(&text, &format!("cnibench_errors_total{labels}}}")),
        Some(0.0)
    );
    let up: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("cnibench_worker_up{"))
        .collect();
    assert_eq!(up.len(), 2, "{text}");
    assert!(up.iter().all(|l| l.ends_with(" 1")), "{up:?}");
    assert_eq!(child.wait().unwrap().code(), Some(0));
}
