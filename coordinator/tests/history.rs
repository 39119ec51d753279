//! The run history end to end: runs recorded in SQLite, `cnibench history`,
//! and `cnibench check` telling a regression from an equal run.

#![allow(clippy::unwrap_used)] // tests fail by panicking

mod common;

use common::*;
use std::path::Path;

fn plan(delay: &str) -> String {
    format!(
        "\
name: hist
defaults: {{ duration: 1500ms, warmup: 500ms, repetitions: 3 }}
scenarios:
  - {{ name: rr, traffic: tcp-rr, path: pod-to-pod-cross-node, connections: 64, rate: 500/s, server_delay: {delay} }}
"
    )
}

/// `cnibench run` with `--db`; returns the run id.
fn run_into(
    db: &Path,
    dir: &Path,
    name: &str,
    plan_text: &str,
    token: &Path,
    workers: &[&Worker],
) -> String {
    let plan_path = dir.join(format!("{name}.yaml"));
    std::fs::write(&plan_path, plan_text).unwrap();
    let list: Vec<&str> = workers.iter().map(|w| w.addr.as_str()).collect();
    let out = dir.join(name);
    let o = cnibench(&[
        "run",
        plan_path.to_str().unwrap(),
        "--workers",
        &list.join(","),
        "--token-file",
        token.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--db",
        db.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("history: run "), "{stdout}");
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("result.json")).unwrap()).unwrap();
    r["run_id"].as_str().unwrap().to_string()
}

fn check(db: &Path, run: &str, baseline: &str) -> (Option<i32>, String) {
    let o = cnibench(&[
        "check",
        run,
        "--baseline",
        baseline,
        "--db",
        db.to_str().unwrap(),
    ]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.code(), text)
}

#[test]
fn a_stored_regression_is_detected_and_an_equal_run_is_not() {
    let (dir, token, _) = setup("history", "unused");
    let db = dir.join("history.db");
    let w1 = start_worker("127.0.0.2", "node-a", &token);
    let w2 = start_worker("127.0.0.3", "node-b", &token);
    let ws = [&w1, &w2];

    // No earlier good run yet: a usage error, not a pass.
    let base = run_into(&db, &dir, "base", &plan("0s"), &token, &ws);
    let (code, text) = check(&db, dir.join("base").to_str().unwrap(), "last-good");
    assert_eq!(code, Some(64), "{text}");
    assert!(
        text.contains("no earlier good run of plan `hist`"),
        "{text}"
    );

    // The same plan again: within the noise of the baseline's repetitions.
    // (The baseline by id: on a loaded machine a repetition may have a
    // saturated client, which keeps its run from being `last-good`; that
    // choice is tested in last_good_is_a_run_of_the_same_cni.)
    let same = run_into(&db, &dir, "same", &plan("0s"), &token, &ws);
    let (code, text) = check(&db, dir.join("same").to_str().unwrap(), &base);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains(&format!("against baseline {base}")), "{text}");
    assert!(text.contains("no regression"), "{text}");

    // A 100 ms server delay (far above what a loaded machine adds to p99):
    // p99 regresses, the open-loop rate does not.
    let slow = run_into(&db, &dir, "slow", &plan("100ms"), &token, &ws);
    let (code, text) = check(&db, &slow, &base);
    assert_eq!(code, Some(1), "{text}");
    let p99 = text
        .lines()
        .find(|l| l.starts_with("| rr | p99 |"))
        .unwrap();
    assert!(p99.contains("REGRESSION"), "{text}");
    let rps = text
        .lines()
        .find(|l| l.starts_with("| rr | req/s |"))
        .unwrap();
    assert!(rps.contains("within noise"), "{text}");
    // Against the equal run it flags the same.
    let (code, text) = check(&db, &slow, &same);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains(&format!("against baseline {same}")), "{text}");

    // The list, newest first; a filter that matches nothing says so.
    let o = cnibench(&["history", "--db", db.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&o.stdout);
    let ids: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("| "))
        .filter_map(|l| l.split(" |").next())
        .filter(|id| id.contains('-'))
        .collect();
    assert_eq!(
        ids,
        vec![slow.as_str(), same.as_str(), base.as_str()],
        "{text}"
    );
    let o = cnibench(&[
        "history",
        "--scenario",
        "nope",
        "--db",
        db.to_str().unwrap(),
    ]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("no runs recorded with scenario `nope`"));
    // A baseline that does not exist is a usage error naming it.
    let (code, text) = check(&db, &slow, "no-such-run");
    assert_eq!(code, Some(64), "{text}");
    assert!(text.contains("--baseline no-such-run"), "{text}");
}

#[test]
fn last_good_is_a_run_of_the_same_cni() {
    let (dir, token, _) = setup("history-cni", "unused");
    let db = dir.join("history.db");
    let w1 = start_worker("127.0.0.2", "node-a", &token);
    let w2 = start_worker("127.0.0.3", "node-b", &token);
    let o1 = start_worker_with("127.0.0.4", "node-a", &token, &["--cni", "other"]);
    let o2 = start_worker_with("127.0.0.5", "node-b", &token, &["--cni", "other"]);
    let text = plan("0s").replace("repetitions: 3", "repetitions: 1");
    let base = run_into(&db, &dir, "base", &text, &token, &[&w1, &w2]);
    // A newer good run of the same plan on another datapath.
    let other = run_into(&db, &dir, "other", &text, &token, &[&o1, &o2]);
    run_into(&db, &dir, "cand", &text, &token, &[&w1, &w2]);
    let (code, out) = check(&db, dir.join("cand").to_str().unwrap(), "last-good");
    assert!(!out.contains(&other), "a run of another CNI: {out}");
    let saturated = |name: &str| {
        let r: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join(name).join("result.json")).unwrap(),
        )
        .unwrap();
        r["scenarios"][0]["repetitions"][0]["client_saturated"] == true
    };
    if saturated("base") {
        // A loaded machine saturated the client: not a good baseline either.
        assert_eq!(code, Some(64), "{out}");
        assert!(out.contains("no saturated client"), "{out}");
    } else {
        assert_eq!(code, Some(0), "{out}");
        assert!(out.contains(&format!("against baseline {base}")), "{out}");
    }
}
