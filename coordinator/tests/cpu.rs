//! CPU cost is measured, not assumed: a CPU-burning process started in the middle
//! of a scenario raises the node CPU of the intervals after it by about one core.

#![allow(clippy::unwrap_used)] // tests fail by panicking

mod common;

use common::*;
use std::process::Command;
use std::time::Duration;

const PLAN: &str = "\
name: cpu
defaults: { duration: 4s, warmup: 500ms, interval: 500ms }
scenarios:
  - { name: light, traffic: tcp-rr, path: pod-to-pod-cross-node, rate: 200/s }
";

#[test]
fn burner_shows_up_as_one_core() {
    let (dir, token, plan) = setup("cpu", PLAN);
    let w1 = start_worker("127.0.0.2", "node-a", &token);
    let w2 = start_worker("127.0.0.3", "node-b", &token);
    // Start burning ~2.5 s after the run begins (0.5 s lead + 0.5 s warm-up + ~1.5 s
    // measured), for longer than the run; kill it afterwards.
    let burner = std::thread::spawn(|| {
        std::thread::sleep(Duration::from_millis(2500));
        let mut child = Command::new("sh")
            .args(["-c", "while :; do :; done"])
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(3500));
        let _ = child.kill();
        let _ = child.wait();
    });
    let r = run_ok(&plan, &token, &[&w1, &w2], &dir.join("out"));
    burner.join().unwrap();
    let rep = &scenario(&r, "light")["repetitions"][0];
    let iv: Vec<(f64, f64)> = rep["intervals"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["warmup"] == false)
        .map(|i| (f(&i["t_start_s"]), f(&i["node_cores"])))
        .collect();
    // Before the burner (measured time 0.5..1.5 s) and well after it started (3..4.5 s).
    let mean = |lo: f64, hi: f64| {
        let v: Vec<f64> = iv
            .iter()
            .filter(|(t, _)| *t >= lo && *t < hi)
            .map(|(_, c)| *c)
            .collect();
        assert!(!v.is_empty(), "no intervals in {lo}..{hi}: {iv:?}");
        v.iter().sum::<f64>() / v.len() as f64
    };
    let before = mean(0.5, 1.5);
    let after = mean(3.0, 4.5);
    let raise = after - before;
    assert!(
        (0.75..=1.25).contains(&raise),
        "node cores before {before:.2}, after {after:.2}: {iv:?}"
    );
    // The normalized cost uses the same intervals as the request rate.
    let cpu = &rep["cpu"];
    let expect = f(&cpu["node_cores"]) / (f(&rep["requests_per_s"]) / 1e4);
    assert!(
        (f(&cpu["cores_per_10k_rps"]) - expect).abs() < 1e-9,
        "{cpu}"
    );
}
