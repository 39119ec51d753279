//! Helpers shared by the integration tests: real worker processes on 127.0.0.x
//! (through `cnibench_testkit`, with the worker binary found next to ours) and the
//! real `cnibench` binary.

#![allow(dead_code, clippy::unwrap_used)] // each test binary uses a subset; tests panic on failure

pub use cnibench_testkit::{Worker, tmpdir};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

pub const CNIBENCH: &str = env!("CARGO_BIN_EXE_cnibench");

/// The worker binary sits next to ours (cargo builds it for the worker's own tests).
pub fn worker_bin() -> PathBuf {
    let p = Path::new(CNIBENCH).with_file_name("cnibench-worker");
    assert!(
        p.exists(),
        "{} missing: run `cargo test --workspace`",
        p.display()
    );
    p
}

/// Start a worker listening on `ip:0` for node `node`, with extra flags.
pub fn start_worker_with(ip: &str, node: &str, token: &Path, extra: &[&str]) -> Worker {
    let args = [&["--node", node][..], extra].concat();
    cnibench_testkit::start_worker(&worker_bin(), ip, token, &args)
}

/// Start a worker labelled with CNI `loopback`.
pub fn start_worker(ip: &str, node: &str, token: &Path) -> Worker {
    start_worker_with(ip, node, token, &["--cni", "loopback"])
}

/// The `cnibench` binary, with its history database in a directory of the
/// tests' own (never the user's).
pub fn cnibench_cmd() -> Command {
    let mut c = Command::new(CNIBENCH);
    c.env(
        "XDG_DATA_HOME",
        std::env::temp_dir().join(format!("cnb-test-data-{}", std::process::id())),
    );
    c
}

pub fn cnibench(args: &[&str]) -> Output {
    cnibench_cmd().args(args).output().unwrap()
}

/// A temp dir with a token file and `plan` written to plan.yaml.
pub fn setup(tag: &str, plan: &str) -> (PathBuf, PathBuf, PathBuf) {
    let dir = tmpdir(tag);
    let token = cnibench_testkit::write_token(&dir, "e2e-shared-token\n");
    let plan_path = dir.join("plan.yaml");
    std::fs::write(&plan_path, plan).unwrap();
    (dir, token, plan_path)
}

/// `cnibench run` on the workers at `addrs` (comma separated).
pub fn run(plan: &Path, token: &Path, addrs: &str, out: &Path) -> Output {
    cnibench(&[
        "run",
        plan.to_str().unwrap(),
        "--workers",
        addrs,
        "--token-file",
        token.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ])
}

/// `cnibench run` in the background (output captured, or discarded if `quiet`).
pub fn spawn_run(plan: &Path, token: &Path, workers: &[&Worker], out: &Path, quiet: bool) -> Child {
    let list: Vec<&str> = workers.iter().map(|w| w.addr.as_str()).collect();
    let pipe = || if quiet { Stdio::null() } else { Stdio::piped() };
    cnibench_cmd()
        .args(["run", plan.to_str().unwrap(), "--workers", &list.join(",")])
        .args([
            "--token-file",
            token.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .stdout(pipe())
        .stderr(pipe())
        .spawn()
        .unwrap()
}

/// `cnibench run` on `workers`, asserting exit 0; returns the parsed result.json.
pub fn run_ok(plan: &Path, token: &Path, workers: &[&Worker], out: &Path) -> Value {
    let list: Vec<&str> = workers.iter().map(|w| w.addr.as_str()).collect();
    let o = run(plan, token, &list.join(","), out);
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(
        o.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    serde_json::from_str(&std::fs::read_to_string(out.join("result.json")).unwrap()).unwrap()
}

/// A number from result.json.
pub fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// The scenario named `name`.
pub fn scenario(r: &Value, name: &str) -> Value {
    r["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap()
        .clone()
}
