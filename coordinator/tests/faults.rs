//! Faults injected for real: processes killed with SIGKILL, frozen with
//! SIGSTOP or told to stop with SIGTERM mid-run.

#![allow(clippy::unwrap_used)] // tests fail by panicking

mod common;

use common::*;
use std::process::Command;
use std::time::{Duration, Instant};

/// user+system CPU ticks of a process so far.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = &stat[stat.rfind(')').unwrap() + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

/// Send `sig` (`-9`, `-TERM`) to `pid` with kill(1).
fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig} {pid}");
}

#[test]
fn worker_killed_mid_run_is_partial_and_nothing_measured_is_lost() {
    let plan = "\
name: kill-worker
defaults: { warmup: 200ms, interval: 500ms }
scenarios:
  - { name: before, traffic: tcp-rr, path: pod-to-pod-cross-node, duration: 1s }
  - { name: victim, traffic: tcp-stream, path: pod-to-pod-cross-node, duration: 20s }
  - { name: after, traffic: tcp-rr, path: pod-to-pod-cross-node, duration: 1s }
";
    let (dir, token, plan) = setup("killw", plan);
    let w1 = start_worker("127.0.0.2", "node-a", &token);
    let mut w2 = start_worker("127.0.0.3", "node-b", &token);
    let out = dir.join("out");
    let started = Instant::now();
    let child = spawn_run(&plan, &token, &[&w1, &w2], &out, false);
    // `before` takes ~2 s; kill the server worker ~3 s into `victim`.
    std::thread::sleep(Duration::from_secs(5));
    let killed_at = Instant::now();
    w2.child.kill().unwrap();
    let o = child.wait_with_output().unwrap();
    let noticed = killed_at.elapsed();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        noticed < Duration::from_secs(5),
        "coordinator took {noticed:?} after the kill"
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "the run did not wait out the 20 s scenario"
    );
    assert_eq!(o.status.code(), Some(1), "degraded run exits 1: {stderr}");
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("result.json")).unwrap()).unwrap();
    assert_eq!(r["ok"], false);
    let before = &scenario(&r, "before")["repetitions"][0];
    assert_eq!(
        before["status"], "ok",
        "earlier results are kept: {}",
        before["flags"]
    );
    let victim = &scenario(&r, "victim")["repetitions"][0];
    assert_eq!(victim["status"], "partial", "{}", victim["flags"]);
    assert!(
        victim["flags"].to_string().contains("lost"),
        "{}",
        victim["flags"]
    );
    // What was measured before the kill is in the result.
    let measured = victim["intervals"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["warmup"] == false)
        .count();
    assert!(measured >= 3, "{measured} intervals kept");
    assert!(f(&victim["throughput_bps"]) > 0.0);
    let after = &scenario(&r, "after")["repetitions"][0];
    assert_eq!(after["status"], "failed");
    assert!(
        after["flags"].to_string().contains("lost earlier"),
        "{}",
        after["flags"]
    );
}

#[test]
fn worker_frozen_mid_run_is_lost_and_the_run_goes_on_without_it() {
    // A frozen worker keeps its connection open: only its silence shows.
    let plan = "\
name: freeze-worker
defaults: { warmup: 200ms, interval: 500ms }
scenarios:
  - { name: before, traffic: tcp-rr, path: pod-to-pod-cross-node, duration: 1s }
  - { name: victim, traffic: tcp-stream, path: pod-to-pod-cross-node, duration: 30s }
  - { name: after, traffic: tcp-rr, path: pod-to-pod-cross-node, duration: 1s }
  - { name: others, traffic: tcp-rr, path: pod-to-pod-same-node, duration: 1s }
";
    let (dir, token, plan) = setup("freezew", plan);
    let w1 = start_worker("127.0.0.2", "node-a", &token);
    let w2 = start_worker("127.0.0.3", "node-b", &token);
    // The same-node scenario runs on w1 and w3 only.
    let w3 = start_worker("127.0.0.4", "node-a", &token);
    let out = dir.join("out");
    let started = Instant::now();
    let child = spawn_run(&plan, &token, &[&w1, &w2, &w3], &out, false);
    // `before` takes ~2 s; freeze the server worker ~3 s into `victim`.
    std::thread::sleep(Duration::from_secs(5));
    signal(w2.child.id(), "-STOP");
    let o = child.wait_with_output();
    // Woken up, it finds its coordinator gone and stops (then it is killed).
    signal(w2.child.id(), "-CONT");
    let o = o.unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    // Without the silence rule the run waits out the 30 s scenario and 10 s
    // more to prepare `after` on the frozen worker.
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "the run waited {:?} for the frozen worker: {stderr}",
        started.elapsed()
    );
    assert_eq!(o.status.code(), Some(1), "degraded run exits 1: {stderr}");
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("result.json")).unwrap()).unwrap();
    // Measured before and after: their status is the machine's business (a
    // loaded one may stall an interval), but they ran, without the lost worker.
    let ran = |name: &str| {
        let rep = &scenario(&r, name)["repetitions"][0];
        assert_ne!(rep["status"], "failed", "{name}: {}", rep["flags"]);
        assert!(
            !rep["flags"].to_string().contains("lost"),
            "{name}: {}",
            rep["flags"]
        );
        assert!(f(&rep["requests_per_s"]) > 0.0, "{name}");
    };
    ran("before");
    let victim = &scenario(&r, "victim")["repetitions"][0];
    assert_eq!(victim["status"], "partial", "{}", victim["flags"]);
    let flags = victim["flags"].to_string();
    let named = format!("worker {} lost: no answer", w2.addr);
    assert!(flags.contains(&named), "{flags}");
    assert!(
        f(&victim["throughput_bps"]) > 0.0,
        "what was measured is kept"
    );
    let after = &scenario(&r, "after")["repetitions"][0];
    assert_eq!(after["status"], "failed");
    assert!(
        after["flags"].to_string().contains("lost earlier"),
        "{}",
        after["flags"]
    );
    ran("others");
}

#[test]
fn coordinator_frozen_workers_stop_traffic_by_themselves() {
    let plan_long = "\
name: freeze-coordinator
scenarios:
  - { name: long, traffic: tcp-stream, path: pod-to-pod-cross-node, duration: 30s, warmup: 0s }
";
    let (dir, token, plan) = setup("freezec", plan_long);
    let dead_man = ["--cni", "loopback", "--dead-man", "2s"];
    let w1 = start_worker_with("127.0.0.2", "node-a", &token, &dead_man);
    let w2 = start_worker_with("127.0.0.3", "node-b", &token, &dead_man);
    let mut coord = spawn_run(&plan, &token, &[&w1, &w2], &dir.join("o1"), true);
    std::thread::sleep(Duration::from_secs(3));
    let busy_ticks = || {
        let (c1, c2) = (cpu_ticks(w1.child.id()), cpu_ticks(w2.child.id()));
        std::thread::sleep(Duration::from_secs(1));
        cpu_ticks(w1.child.id()) - c1 + cpu_ticks(w2.child.id()) - c2
    };
    let busy = busy_ticks();
    // Frozen, the coordinator keeps its connections open but sends no pings.
    signal(coord.id(), "-STOP");
    // Past the dead-man time both workers are idle of their own accord.
    std::thread::sleep(Duration::from_secs(4));
    let idle = busy_ticks();
    signal(coord.id(), "-9");
    let _ = coord.wait();
    assert!(
        busy >= 10,
        "workers should be busy generating traffic: {busy} ticks in 1 s"
    );
    assert!(
        idle <= 3,
        "workers still busy 4 s after the coordinator froze (dead-man 2 s): {idle} ticks in 1 s"
    );
}

#[test]
fn coordinator_killed_workers_stop_traffic_and_take_the_next_run() {
    let plan_long = "\
name: kill-coordinator
scenarios:
  - { name: long, traffic: tcp-stream, path: pod-to-pod-cross-node, duration: 30s, warmup: 0s }
";
    let (dir, token, plan) = setup("killc", plan_long);
    let w1 = start_worker("127.0.0.2", "node-a", &token);
    let w2 = start_worker("127.0.0.3", "node-b", &token);
    let mut coord = spawn_run(&plan, &token, &[&w1, &w2], &dir.join("o1"), true);
    std::thread::sleep(Duration::from_secs(3));
    // Traffic flows: the workers are busy.
    let (c1, c2) = (cpu_ticks(w1.child.id()), cpu_ticks(w2.child.id()));
    std::thread::sleep(Duration::from_secs(1));
    let busy = cpu_ticks(w1.child.id()) - c1 + cpu_ticks(w2.child.id()) - c2;
    assert!(
        busy >= 10,
        "workers should be busy generating traffic: {busy} ticks in 1 s"
    );
    signal(coord.id(), "-9");
    let _ = coord.wait();
    // Within 3 s both workers are idle (no traffic of their own accord).
    std::thread::sleep(Duration::from_secs(3));
    let (c1, c2) = (cpu_ticks(w1.child.id()), cpu_ticks(w2.child.id()));
    std::thread::sleep(Duration::from_secs(1));
    let idle = cpu_ticks(w1.child.id()) - c1 + cpu_ticks(w2.child.id()) - c2;
    assert!(
        idle <= 3,
        "workers still busy 3 s after the coordinator died: {idle} ticks in 1 s"
    );
    // And they serve the next coordinator.
    let short = dir.join("short.yaml");
    std::fs::write(&short, "name: next\nscenarios:\n  - { name: rr, traffic: tcp-rr, path: pod-to-pod-cross-node, duration: 1s, warmup: 0s }\n").unwrap();
    let r = run_ok(&short, &token, &[&w1, &w2], &dir.join("o2"));
    assert_eq!(r["ok"], true);
}

#[test]
fn worker_refuses_jobs_outside_its_limits() {
    let plan = "\
name: limits
defaults: { duration: 1s, warmup: 0s }
scenarios:
  - { name: closed-loop, traffic: tcp-rr, path: pod-to-pod-cross-node }
  - { name: too-fast, traffic: tcp-rr, path: pod-to-pod-cross-node, rate: 5000/s }
  - { name: fine, traffic: tcp-rr, path: pod-to-pod-cross-node, rate: 500/s }
";
    let (dir, token, plan) = setup("limits", plan);
    let w1 = start_worker_with("127.0.0.2", "node-a", &token, &["--max-rate", "1000/s"]);
    let w2 = start_worker("127.0.0.3", "node-b", &token);
    let out = dir.join("out");
    let o = run(&plan, &token, &format!("{},{}", w1.addr, w2.addr), &out);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("result.json")).unwrap()).unwrap();
    for (name, why) in [("closed-loop", "closed loop"), ("too-fast", "--max-rate")] {
        let rep = &scenario(&r, name)["repetitions"][0];
        assert_eq!(rep["status"], "failed", "{name}");
        assert!(
            rep["flags"].to_string().contains(why),
            "{name}: {}",
            rep["flags"]
        );
    }
    assert_eq!(scenario(&r, "fine")["repetitions"][0]["status"], "ok");
}

const LONG: &str = "\
name: sigterm
defaults: { warmup: 0s, interval: 500ms }
scenarios:
  - { name: long, traffic: tcp-stream, path: pod-to-pod-cross-node, duration: 20s }
  - { name: next, traffic: tcp-rr, path: pod-to-pod-cross-node, duration: 1s }
";

#[test]
fn coordinator_sigterm_stops_workers_and_writes_what_it_measured() {
    let (dir, token, plan) = setup("termc", LONG);
    let w1 = start_worker("127.0.0.2", "node-a", &token);
    let w2 = start_worker("127.0.0.3", "node-b", &token);
    let out = dir.join("out");
    let coord = spawn_run(&plan, &token, &[&w1, &w2], &out, false);
    std::thread::sleep(Duration::from_secs(3));
    let t = Instant::now();
    signal(coord.id(), "-TERM");
    let o = coord.wait_with_output().unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "took {:?} to stop",
        t.elapsed()
    );
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("result.json")).unwrap()).unwrap();
    let rep = &scenario(&r, "long")["repetitions"][0];
    assert_eq!(rep["status"], "partial", "{}", rep["flags"]);
    assert!(
        rep["flags"].to_string().contains("interrupted"),
        "{}",
        rep["flags"]
    );
    assert!(f(&rep["throughput_bps"]) > 0.0, "what was measured is kept");
    assert_eq!(
        r["scenarios"].as_array().unwrap().len(),
        1,
        "the run stops at the interrupted scenario"
    );
    // The workers stopped generating and serve the next run.
    let short = dir.join("short.yaml");
    std::fs::write(&short, "name: next\nscenarios:\n  - { name: rr, traffic: tcp-rr, path: pod-to-pod-cross-node, duration: 1s, warmup: 0s }\n").unwrap();
    assert_eq!(
        run_ok(&short, &token, &[&w1, &w2], &dir.join("o2"))["ok"],
        true
    );
}

#[test]
fn worker_sigterm_exits_cleanly_and_the_run_notices() {
    let (dir, token, plan) = setup("termw", LONG);
    let w1 = start_worker("127.0.0.2", "node-a", &token);
    let mut w2 = start_worker("127.0.0.3", "node-b", &token);
    let out = dir.join("out");
    let t0 = Instant::now();
    let coord = spawn_run(&plan, &token, &[&w1, &w2], &out, false);
    std::thread::sleep(Duration::from_secs(3));
    let t = Instant::now();
    signal(w2.child.id(), "-TERM");
    let status = w2.child.wait().unwrap();
    assert!(status.success(), "worker exits 0 on SIGTERM: {status:?}");
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "worker took {:?}",
        t.elapsed()
    );
    let o = coord.wait_with_output().unwrap();
    assert!(
        t0.elapsed() < Duration::from_secs(12),
        "the run did not wait out the 20 s scenario"
    );
    assert_eq!(o.status.code(), Some(1));
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("result.json")).unwrap()).unwrap();
    let rep = &scenario(&r, "long")["repetitions"][0];
    assert_eq!(rep["status"], "partial", "{}", rep["flags"]);
    assert!(
        rep["flags"].to_string().contains("shutting down"),
        "{}",
        rep["flags"]
    );
    assert!(f(&rep["throughput_bps"]) > 0.0);
}

#[test]
fn coordinator_killed_after_a_repetition_keeps_it_and_says_the_run_is_incomplete() {
    let plan = "\
name: kill-after-one
defaults: { warmup: 200ms, interval: 500ms }
scenarios:
  - { name: first, traffic: tcp-rr, path: pod-to-pod-cross-node, duration: 1s, repetitions: 2 }
  - { name: long, traffic: tcp-stream, path: pod-to-pod-cross-node, duration: 30s }
";
    let (dir, token, plan) = setup("killafter", plan);
    let w1 = start_worker("127.0.0.2", "node-a", &token);
    let w2 = start_worker("127.0.0.3", "node-b", &token);
    let out = dir.join("out");
    let mut coord = spawn_run(&plan, &token, &[&w1, &w2], &out, true);
    // Wait for both repetitions of `first` to be on disk (the run is then in
    // `long`), however slow the machine.
    let result = out.join("result.json");
    let started = Instant::now();
    let r = loop {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no result.json with `first` done within 60 s"
        );
        std::thread::sleep(Duration::from_millis(100));
        let Ok(text) = std::fs::read_to_string(&result) else {
            continue;
        };
        // Never a torn file: every version read parses.
        let r: serde_json::Value = serde_json::from_str(&text).unwrap();
        if r["scenarios"][0]["repetitions"].as_array().unwrap().len() == 2 {
            break r;
        }
    };
    signal(coord.id(), "-9");
    let _ = coord.wait();
    assert_eq!(r["ok"], false);
    let why = r["incomplete"].as_str().unwrap();
    assert!(why.contains("after 2 of 3 repetitions"), "{why}");
    // Both repetitions as measured (their status is the machine's business: a
    // loaded one may stall an interval).
    let first = scenario(&r, "first");
    let reps = first["repetitions"].as_array().unwrap();
    let numbers: Vec<_> = reps.iter().map(|rep| rep["repetition"].clone()).collect();
    assert_eq!(numbers, [1, 2]);
    for rep in reps {
        assert!(f(&rep["requests_per_s"]) > 0.0, "{}", rep["flags"]);
    }
    assert_eq!(r["scenarios"].as_array().unwrap().len(), 1);
    let csv = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    assert_eq!(csv.lines().count(), 2, "{csv}");
    let leftovers: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // The report works on it and says so.
    let o = cnibench(&["report", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("incomplete"));
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        md.contains("INCOMPLETE: 2 repetitions of 1 scenarios so far"),
        "{md}"
    );
    assert!(
        md.contains("Not run (not reached when this result was written): long."),
        "{md}"
    );
    // And the history has the run, not ok.
    let o = cnibench(&["history"]);
    let listing = String::from_utf8_lossy(&o.stdout);
    let id = r["run_id"].as_str().unwrap();
    let row = listing.lines().find(|l| l.contains(id));
    assert!(row.is_some_and(|l| l.contains("| NOT OK |")), "{listing}");
}
