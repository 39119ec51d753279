//! Helpers shared by the integration tests: real worker processes on 127.0.0.x and
//! the real `cnibench` binary.

#![allow(dead_code, clippy::unwrap_used)] // each test binary uses a subset; tests panic on failure

use serde_json::Value;
use std::io::{BufRead, BufReader};
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

/// A running worker process, killed on drop.
pub struct Worker {
    pub child: Child,
    pub addr: String,
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn tmpdir(tag: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let d = std::env::temp_dir().join(format!("cnb-test-{tag}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Start a worker listening on `ip:0` for node `node`, with extra flags.
pub fn start_worker_with(ip: &str, node: &str, token: &Path, extra: &[&str]) -> Worker {
    let mut child = Command::new(worker_bin())
        .args([
            "--listen",
            &format!("{ip}:0"),
            "--node",
            node,
            "--token-file",
        ])
        .arg(token)
        .args(extra)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let addr = first
        .split("listening on ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("unexpected first line: {first}"))
        .to_string();
    let node = node.to_string();
    std::thread::spawn(move || {
        for l in lines.map_while(Result::ok) {
            eprintln!("[{node}] {l}");
        }
    });
    Worker { child, addr }
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
    let token = dir.join("token");
    std::fs::write(&token, "e2e-shared-token\n").unwrap();
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
