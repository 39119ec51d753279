//! Service-level objectives and rate sweeps end to end, on real worker processes
//! with a server whose delay and capacity are known.

#![allow(clippy::unwrap_used)] // tests fail by panicking

mod common;

use common::*;
use serde_json::Value;

fn result(dir: &std::path::Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("out/result.json")).unwrap()).unwrap()
}

#[test]
fn a_broken_objective_fails_the_run_and_says_which_by_how_much_and_when() {
    // A 5 ms server delay: a 50 ms p99 objective holds, a 2 ms one cannot.
    let plan = "\
name: slo
defaults: { duration: 2s, warmup: 500ms, interval: 500ms }
scenarios:
  - { name: holds, traffic: tcp-rr, path: pod-to-pod-cross-node, connections: 4, rate: 200/s, server_delay: 5ms, slo: { p99: 50ms, error_rate: 0.1%, min_throughput: 190/s } }
  - { name: broken, traffic: tcp-rr, path: pod-to-pod-cross-node, connections: 4, rate: 200/s, server_delay: 5ms, slo: { p99: 2ms, error_rate: 0.1% } }
";
    let (dir, token, plan_path) = setup("slo", plan);
    let w1 = start_worker("127.0.0.2", "node-a", &token);
    let w2 = start_worker("127.0.0.3", "node-b", &token);
    let o = run(
        &plan_path,
        &token,
        &format!("{},{}", w1.addr, w2.addr),
        &dir.join("out"),
    );
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{stdout}");
    let broken: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("SLO broken"))
        .collect();
    assert_eq!(broken.len(), 1, "{stdout}");
    let line = broken[0];
    assert!(
        line.contains("scenario `broken` repetition 1: p99"),
        "{line}"
    );
    assert!(line.contains("> 2.00ms (by "), "{line}");
    // All four measured intervals broke it (500 ms each after the warm-up).
    assert!(line.ends_with("in intervals 1-4"), "{line}");

    let r = result(&dir);
    assert_eq!(r["ok"], true, "the measurements themselves are fine");
    assert_eq!(r["slo_ok"], false);
    let checks = |name: &str| scenario(&r, name)["repetitions"][0]["slo"].clone();
    let held = checks("holds");
    assert_eq!(held.as_array().unwrap().len(), 3, "{held}");
    assert!(
        held.as_array().unwrap().iter().all(|c| c["ok"] == true),
        "{held}"
    );
    let p99 = &checks("broken")[0];
    assert_eq!(p99["objective"], "p99");
    assert!(f(&p99["measured"]) >= 5e6, "{p99}");
    assert!(f(&p99["excess_pct"]) > 100.0, "{p99}");
    assert_eq!(
        checks("broken")[1]["ok"],
        true,
        "no errors: error_rate holds"
    );
    let csv = std::fs::read_to_string(dir.join("out/summary.csv")).unwrap();
    assert!(csv.lines().nth(1).unwrap().contains(",held,"), "{csv}");
    assert!(csv.lines().nth(2).unwrap().contains(",broken,"), "{csv}");
}

#[test]
fn a_sweep_finds_a_known_capacity_and_keeps_every_step() {
    // Four connections to a server that takes 5 ms per request, one request at a
    // time per connection: at most 800 requests/s (a little less with the
    // round trip itself).
    let plan = "\
name: sweep
scenarios:
  - name: rr
    traffic: tcp-rr
    path: pod-to-pod-cross-node
    connections: 4
    server_delay: 5ms
    rate: sweep(100/s..6400/s, x2)
    slo: { p99: 25ms }
    duration: 2s
    warmup: 500ms
";
    let (dir, token, plan_path) = setup("sweep", plan);
    let w1 = start_worker("127.0.0.2", "node-a", &token);
    let w2 = start_worker("127.0.0.3", "node-b", &token);
    let r = run_ok(&plan_path, &token, &[&w1, &w2], &dir.join("out"));
    let s = scenario(&r, "rr");
    let sw = &s["sweep"];
    let steps = sw["steps"].as_array().unwrap();
    let offered: Vec<f64> = steps.iter().map(|st| f(&st["offered"])).collect();
    eprintln!(
        "offered {offered:?}, max {}, knee {}",
        sw["max_rate"], sw["knee_rate"]
    );
    assert_eq!(
        &offered[..3],
        &[100.0, 200.0, 400.0],
        "geometric steps first"
    );
    assert!(
        steps.len() > 4,
        "refined past the first failing step: {offered:?}"
    );
    let max = f(&sw["max_rate"]);
    assert!(
        (640.0..=960.0).contains(&max),
        "capacity 800/s, found {max}"
    );
    // The light steps held; some step above the capacity did not, and says why.
    assert!(steps[..3].iter().all(|st| st["holds"] == true));
    let failed: Vec<&Value> = steps.iter().filter(|st| st["holds"] == false).collect();
    assert!(!failed.is_empty());
    assert!(failed.iter().all(|st| f(&st["offered"]) > max));
    assert!(failed.iter().all(|st| st["why"].as_str().is_some()));
    // The knee: latency doubles before the capacity is reached, not after.
    assert!(f(&sw["knee_rate"]) <= max);
    // The scenario's repetition is the step at the capacity found.
    let rep = &s["repetitions"][0];
    assert!(
        (f(&rep["requests_per_s"]) / max - 1.0).abs() < 0.05,
        "{}",
        rep["requests_per_s"]
    );
    let html = std::fs::read_to_string(dir.join("out/report.html")).unwrap();
    assert!(
        html.contains("latency by offered load"),
        "the report plots the sweep"
    );
}
