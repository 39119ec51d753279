//! Embeds the git revision the coordinator is built from as `CNIBENCH_GIT_REV`
//! (`cnibench --version`, and the bundles `cnibench bundle` writes): the
//! environment variable of that name if set (scripts, or a `docker build
//! --build-arg` where the context has no `.git`), else `git rev-parse HEAD`,
//! else `unknown` (no git, or not a checkout). Cargo sets no such variable.

use std::process::Command;

/// `git ARGS` in this package's directory, its trimmed output if it succeeded.
fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!s.is_empty()).then_some(s)
}

fn main() {
    println!("cargo:rerun-if-env-changed=CNIBENCH_GIT_REV");
    let given = std::env::var("CNIBENCH_GIT_REV")
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty());
    let rev = given.or_else(|| {
        let rev = git(&["rev-parse", "HEAD"])?;
        // Build again when HEAD moves: a commit or a checkout changes HEAD or
        // the branch it points to.
        let mut watched = vec!["HEAD".to_string()];
        watched.extend(git(&["symbolic-ref", "-q", "HEAD"]));
        for name in watched {
            if let Some(path) = git(&["rev-parse", "--git-path", &name]) {
                println!("cargo:rerun-if-changed={path}");
            }
        }
        Some(rev)
    });
    let rev = rev.unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=CNIBENCH_GIT_REV={rev}");
}
