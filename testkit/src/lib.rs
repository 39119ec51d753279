//! Test support for the integration tests of both binaries: real `cnibench-worker`
//! processes on loopback, temp dirs and token files. Only ever a dev-dependency.
//!
//! The worker binary's path is passed in by the caller: each test crate knows its
//! own (`env!("CARGO_BIN_EXE_cnibench-worker")` in the worker's tests; the
//! coordinator's tests find it next to `cnibench`). Helpers panic on failure, as
//! tests do.
//!
//! # Layout
//!
//! - [`Worker`] and [`start_worker`]: a worker process on `IP:0`, its bound control
//!   address read from the "listening on ADDR" line it prints first, killed on drop.
//! - [`tmpdir`] and [`write_token`]: a fresh directory per test and a token file in it.
//!
//! ```no_run
//! use cnibench_testkit::{start_worker, tmpdir, write_token};
//! let token = write_token(&tmpdir("doc"), "secret");
//! let bin = std::path::Path::new("target/debug/cnibench-worker");
//! let w = start_worker(bin, "127.0.0.2", &token, &["--node", "node-a"]);
//! println!("worker on {}", w.addr);
//! ```

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};

/// A running worker process, killed on drop.
#[derive(Debug)]
pub struct Worker {
    /// The process (tests kill or signal it themselves to simulate faults).
    pub child: Child,
    /// Its bound control address, `IP:PORT`.
    pub addr: String,
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start the worker binary `bin` listening on `ip:0` with the token in `token`
/// and `extra` flags. Its stderr after the first line is echoed, prefixed with its
/// address, so a failing test shows what the worker said.
pub fn start_worker(bin: &Path, ip: &str, token: &Path, extra: &[&str]) -> Worker {
    let mut child = Command::new(bin)
        .args(["--listen", &format!("{ip}:0"), "--token-file"])
        .arg(token)
        .args(extra)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
    let stderr = child.stderr.take().expect("stderr is piped");
    // Owned before any check, so a worker that says something else is still killed.
    let mut worker = Worker {
        child,
        addr: String::new(),
    };
    let mut lines = BufReader::new(stderr).lines();
    let first = match lines.next() {
        Some(Ok(l)) => l,
        other => panic!("worker printed no first line: {other:?}"),
    };
    worker.addr = first
        .split("listening on ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("unexpected first line: {first}"))
        .to_string();
    let label = worker.addr.clone();
    std::thread::spawn(move || {
        for l in lines.map_while(Result::ok) {
            eprintln!("[{label}] {l}");
        }
    });
    worker
}

/// A new empty directory under the system temp dir, unique per process and call.
pub fn tmpdir(tag: &str) -> PathBuf {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    let d = std::env::temp_dir().join(format!(
        "cnb-test-{tag}-{}-{nanos}-{seq}",
        std::process::id()
    ));
    std::fs::create_dir_all(&d).unwrap_or_else(|e| panic!("create {}: {e}", d.display()));
    d
}

/// Write `token` to `dir/token` and return that path.
pub fn write_token(dir: &Path, token: &str) -> PathBuf {
    let path = dir.join("token");
    std::fs::write(&path, token).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tmpdirs_are_fresh_and_tokens_written() {
        let (a, b) = (tmpdir("kit"), tmpdir("kit"));
        assert_ne!(a, b);
        assert!(a.is_dir() && b.is_dir());
        let t = write_token(&a, "s3cret\n");
        assert_eq!(t, a.join("token"));
        assert_eq!(
            std::fs::read_to_string(&t).ok().as_deref(),
            Some("s3cret\n")
        );
    }

    #[test]
    #[should_panic(expected = "unexpected first line")]
    fn a_process_that_does_not_listen_is_reported() {
        // `sh --listen ...` complains about the option on stderr and exits.
        let dir = tmpdir("kit-sh");
        let _ = start_worker(Path::new("/bin/sh"), "127.0.0.1", &dir.join("token"), &[]);
    }
}
