//! Parameter matrices and bundles end to end: a matrix plan run twice on real
//! worker processes (127.0.0.2 and 127.0.0.3, CNI labels `loopback` and
//! `other`), compared, and bundled with the real `cnibench` binary. The
//! reports group the matrix and plot it against its parameter; the bundle
//! unpacks, its checksums verify, `cnibench report` on the unpacked runs
//! writes the very same bytes, `cnibench compare` on them gives the same
//! numbers, and bad arguments exit 64.

#![allow(clippy::unwrap_used)] // tests fail by panicking

mod common;

use cnibench_coordinator::bundle::sha256_hex;
use cnibench_coordinator::result::RunResult;
use cnibench_proto::plan;
use common::{cnibench, setup, start_worker_with, tmpdir};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;

const PLAN: &str = "\
name: bundle-test
defaults: { duration: 400ms, warmup: 100ms, interval: 200ms, repetitions: 1 }
scenarios:
  - { name: stream, traffic: tcp-stream, path: pod-to-pod-cross-node, message_size: [4KiB, 64KiB] }
  - { name: rr, traffic: tcp-rr, path: pod-to-pod-cross-node, request_size: [1, 16KiB], connections: [1, 2] }
";

/// `cnibench ARGS` in `cwd` (or here), asserting exit 0.
fn cnibench_ok_in(cwd: Option<&Path>, args: &[&str]) -> Output {
    let mut c = common::cnibench_cmd();
    if let Some(d) = cwd {
        c.current_dir(d);
    }
    let o = c.args(args).output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "cnibench {args:?}\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Run the plan on two fresh workers reporting `cni`; returns the output directory.
fn run(cni: &str) -> PathBuf {
    let (dir, token, plan) = setup(&format!("bundle-{cni}"), PLAN);
    let label = ["--cni", cni];
    let w1 = start_worker_with("127.0.0.2", "node-a", &token, &label);
    let w2 = start_worker_with("127.0.0.3", "node-b", &token, &label);
    let out = dir.join(cni);
    cnibench_ok_in(
        None,
        &[
            "run",
            s(&plan),
            "--workers",
            &format!("{},{}", w1.addr, w2.addr),
            "--token-file",
            s(&token),
            "--out",
            s(&out),
        ],
    );
    out
}

/// Both runs and their comparison: (run dirs, compare dir).
fn compared() -> &'static (Vec<PathBuf>, PathBuf) {
    static DIRS: OnceLock<(Vec<PathBuf>, PathBuf)> = OnceLock::new();
    DIRS.get_or_init(|| {
        let runs = vec![run("loopback"), run("other")];
        let out = tmpdir("bundle-compare").join("cmp");
        cnibench_ok_in(
            None,
            &[
                "compare",
                s(&runs[0]),
                s(&runs[1]),
                "--baseline",
                "loopback",
                "--out",
                s(&out),
            ],
        );
        (runs, out)
    })
}

/// The bundle of the comparison (its runs come along).
fn bundled() -> &'static Path {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| {
        let (_, cmp) = compared();
        let out = tmpdir("bundle-out").join("published.tar.gz");
        let o = cnibench_ok_in(None, &["bundle", s(cmp), "--out", s(&out)]);
        let stdout = String::from_utf8_lossy(&o.stdout);
        assert!(stdout.contains("2 run(s) and a comparison"), "{stdout}");
        out
    })
}

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn text(p: &Path) -> String {
    String::from_utf8(read(p)).unwrap()
}

/// Unpack `archive` into a fresh directory; returns the bundle's directory.
fn unpack(archive: &Path, tag: &str) -> PathBuf {
    let dest = tmpdir(tag);
    let gz = flate2::read::GzDecoder::new(std::fs::File::open(archive).unwrap());
    tar::Archive::new(gz).unpack(&dest).unwrap();
    dest.join("published")
}

/// Every file under `dir`, relative, sorted.
fn tree(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, d: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.push(p.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Check SHA256SUMS against the files of `dir`: every other file listed once
/// (what `cnibench compare` wrote into `rerendered/` apart), every hash right.
fn verify_checksums(dir: &Path) {
    let sums = text(&dir.join("SHA256SUMS"));
    let mut listed = Vec::new();
    for line in sums.lines() {
        let (hash, path) = line.split_once("  ").unwrap();
        assert_eq!(sha256_hex(&read(&dir.join(path))), hash, "{path}");
        listed.push(path.to_string());
    }
    let mut files = tree(dir);
    files.retain(|f| f != "SHA256SUMS" && !f.starts_with("rerendered/"));
    assert_eq!(listed, files);
}

#[test]
fn matrix_points_run_and_are_plotted_against_their_parameter() {
    let (runs, cmp) = compared();
    let r: RunResult = serde_json::from_slice(&read(&runs[0].join("result.json"))).unwrap();
    let names: Vec<&str> = r.scenarios.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "stream/message_size=4KiB",
            "stream/message_size=64KiB",
            "rr/connections=1,request_size=1",
            "rr/connections=1,request_size=16KiB",
            "rr/connections=2,request_size=1",
            "rr/connections=2,request_size=16KiB",
        ]
    );
    let m = r.plan.scenarios[3].matrix.as_ref().unwrap();
    assert_eq!(
        (m.group.as_str(), m.label().as_str()),
        ("rr", "connections=1,request_size=16KiB")
    );
    assert_eq!(r.plan.scenarios[3].request_size.0, 16 << 10);
    assert!(
        r.scenarios[3].repetitions[0]
            .requests_per_s
            .is_some_and(|v| v > 0.0)
    );

    let md = text(&runs[0].join("report.md"));
    for want in [
        "## Parameter matrices",
        "### stream: message_size",
        "### rr: connections x request_size",
        "| connections | request_size | req/s | p50 | p99 |",
        "| 2 | 16KiB |",
        "stream: Gbit/s by message_size",
        "rr: p50 by request_size",
        "### rr/connections=2,request_size=16KiB: tcp-rr, pod-to-pod-cross-node",
    ] {
        assert!(md.contains(want), "report.md lacks `{want}`:\n{md}");
    }
    let html = text(&runs[0].join("report.html"));
    for want in [
        "request_size, bytes (log scale)",
        "connections=1",
        "16KiB",
        "message_size, bytes (log scale)",
    ] {
        assert!(html.contains(want), "report.html lacks `{want}`");
    }
    // The comparison: one chart per other parameter, a line per CNI.
    let md = text(&cmp.join("report.md"));
    for want in [
        "## Parameter matrices",
        "| connections | request_size | req/s loopback | req/s other |",
        "rr: p99 by request_size (connections=2), per CNI",
        "stream: Gbit/s by message_size, per CNI",
    ] {
        assert!(md.contains(want), "compare report.md lacks `{want}`:\n{md}");
    }
    let html = text(&cmp.join("report.html"));
    assert!(
        html.contains(">other<") && html.contains(">loopback<"),
        "legend per CNI"
    );
}

#[test]
fn a_bundle_unpacks_verifies_and_re_renders_byte_for_byte() {
    let (runs, cmp) = compared();
    let dir = unpack(bundled(), "bundle-unpacked");
    let files = tree(&dir);
    for want in [
        "README.md",
        "ENVIRONMENT.md",
        "bundle.json",
        "SHA256SUMS",
        "runs/loopback/result.json",
        "runs/loopback/summary.csv",
        "runs/loopback/report.md",
        "runs/loopback/report.html",
        "runs/loopback/plan.yaml",
        "runs/loopback/rr_connections_2_request_size_16KiB.rep1.hlog",
        "runs/other/result.json",
        "compare/compare.json",
        "compare/compare.md",
        "compare/report.html",
    ] {
        assert!(files.iter().any(|f| f == want), "{want} not in {files:?}");
    }
    assert!(!files.iter().any(|f| f.contains("token")), "{files:?}");
    verify_checksums(&dir);

    // Everything shipped is what the runs wrote.
    for (run, name) in runs.iter().zip(["loopback", "other"]) {
        for f in tree(run) {
            if f.ends_with(".json")
                || f.ends_with(".md")
                || f.ends_with(".html")
                || f.ends_with(".hlog")
                || f.ends_with(".csv")
            {
                assert_eq!(
                    read(&run.join(&f)),
                    read(&dir.join("runs").join(name).join(&f)),
                    "{f}"
                );
            }
        }
        // The plan file the run was made from, unchanged.
        let plan_file = run.parent().unwrap().join("plan.yaml");
        assert_eq!(
            read(&dir.join("runs").join(name).join("plan.yaml")),
            read(&plan_file)
        );
    }
    let env = text(&dir.join("ENVIRONMENT.md"));
    for want in [
        "## loopback",
        "## other",
        "node-a",
        "node-b",
        "clock offset",
        "kernel",
    ] {
        assert!(env.contains(want), "ENVIRONMENT.md lacks `{want}`:\n{env}");
    }
    let manifest: serde_json::Value =
        serde_json::from_slice(&read(&dir.join("bundle.json"))).unwrap();
    assert_eq!(manifest["git_revision"], cnibench_coordinator::GIT_REVISION);
    assert_eq!(manifest["runs"][0]["plan_origin"], "file");
    assert_eq!(manifest["compare"]["runs"][1], "runs/other");

    // Re-render as the README says, from the bundle's directory.
    let readme = text(&dir.join("README.md"));
    let commands: Vec<Vec<&str>> = readme
        .lines()
        .filter(|l| {
            l.starts_with("cnibench report ")
                || (l.starts_with("cnibench compare ") && l.contains("rerendered"))
        })
        .map(|l| l.split_whitespace().skip(1).collect())
        .collect();
    assert_eq!(commands.len(), 3, "{readme}");
    for c in &commands {
        cnibench_ok_in(Some(&dir), c);
    }
    // The run reports (and .hlog files) are the same bytes: checksums still hold.
    verify_checksums(&dir);
    for (run, name) in runs.iter().zip(["loopback", "other"]) {
        for f in [
            "report.md",
            "report.html",
            "rr_connections_1_request_size_1.rep1.hlog",
        ] {
            assert!(
                read(&run.join(f)) == read(&dir.join("runs").join(name).join(f)),
                "{name}/{f} re-rendered differently"
            );
        }
    }
    // The comparison of the unpacked runs has the same numbers.
    let rows = |p: &Path| -> serde_json::Value {
        serde_json::from_slice::<serde_json::Value>(&read(&p.join("compare.json"))).unwrap()["rows"]
            .clone()
    };
    assert_eq!(rows(&dir.join("rerendered/compare")), rows(cmp));
    let md = text(&dir.join("rerendered/compare/report.md"));
    assert!(md.contains("## Parameter matrices"), "{md}");
    // And the README's re-run commands name the plans shipped.
    assert!(
        readme.contains("cnibench run runs/loopback/plan.yaml --workers 127.0.0.2:"),
        "{readme}"
    );
    assert!(
        readme.contains("cnibench compare rerun/loopback rerun/other --baseline loopback"),
        "{readme}"
    );
}

#[test]
fn bundling_again_gives_the_same_bytes() {
    let (runs, _) = compared();
    let first = read(bundled());
    let again = tmpdir("bundle-again").join("published.tar.gz");
    cnibench_ok_in(None, &["bundle", s(&compared().1), "--out", s(&again)]);
    assert!(first == read(&again), "deterministic archive");
    // Runs given explicitly (and twice) are bundled once each.
    let runs_only = tmpdir("bundle-runs").join("published.tgz");
    cnibench_ok_in(
        None,
        &[
            "bundle",
            s(&runs[0]),
            s(&runs[1]),
            s(&runs[0].join("result.json")),
            "--out",
            s(&runs_only),
        ],
    );
    let dir = unpack(&runs_only, "bundle-runs-unpacked");
    let files = tree(&dir);
    assert!(
        files.iter().any(|f| f == "runs/other/report.html"),
        "{files:?}"
    );
    assert!(
        !files
            .iter()
            .any(|f| f.starts_with("compare/") || f.starts_with("runs/loopback-2")),
        "{files:?}"
    );
    verify_checksums(&dir);
}

#[test]
fn a_plan_file_that_is_gone_is_written_out_from_the_result() {
    let (runs, _) = compared();
    let copy = tmpdir("bundle-moved").join("moved");
    std::fs::create_dir_all(&copy).unwrap();
    let mut r: serde_json::Value =
        serde_json::from_slice(&read(&runs[0].join("result.json"))).unwrap();
    r["plan_file"] = "/nonexistent/plan.yaml".into();
    std::fs::write(
        copy.join("result.json"),
        serde_json::to_vec_pretty(&r).unwrap(),
    )
    .unwrap();
    let out = copy.parent().unwrap().join("published.tar.gz");
    let o = cnibench_ok_in(None, &["bundle", s(&copy), "--out", s(&out)]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("written out from result.json"), "{stderr}");
    let dir = unpack(&out, "bundle-moved-unpacked");
    let yaml = text(&dir.join("runs/moved/plan.yaml"));
    let recorded: RunResult = serde_json::from_slice(&read(&runs[0].join("result.json"))).unwrap();
    assert_eq!(
        plan::load("plan.yaml", &yaml).unwrap(),
        recorded.plan,
        "{yaml}"
    );
    assert!(yaml.contains("request_size: [1, 16KiB]"), "{yaml}");
    let readme = text(&dir.join("README.md"));
    assert!(
        readme.contains("/nonexistent/plan.yaml cannot be read here"),
        "{readme}"
    );
    // Not re-rendered here: the copy has no reports, and the bundle says what it has.
    assert!(!tree(&dir).iter().any(|f| f.ends_with("report.md")));
}

#[test]
fn bad_arguments_exit_64_with_a_message() {
    let dir = tmpdir("bundle-bad");
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let broken = dir.join("broken");
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::write(broken.join("result.json"), "{ \"schema_version\": 1 }").unwrap();
    let (c1, c2) = (dir.join("c1"), dir.join("c2"));
    for c in [&c1, &c2] {
        std::fs::create_dir_all(c).unwrap();
        std::fs::write(
            c.join("compare.json"),
            "{ \"baseline\": \"a\", \"sources\": [\"/nonexistent/x\"] }",
        )
        .unwrap();
    }
    let out = dir.join("b.tar.gz");
    for (args, says) in [
        (vec!["bundle", "--out", s(&out)], "required"),
        (vec!["bundle", s(&empty)], "--out"),
        (
            vec!["bundle", s(&empty), "--out", s(&dir.join("b.zip"))],
            "NAME.tar.gz",
        ),
        (
            vec!["bundle", s(&dir.join("missing")), "--out", s(&out)],
            "no such directory",
        ),
        (
            vec!["bundle", s(&empty), "--out", s(&out)],
            "neither a run directory",
        ),
        (
            vec!["bundle", s(&broken), "--out", s(&out)],
            "not a cnibench result",
        ),
        (
            vec!["bundle", s(&c1), s(&c2), "--out", s(&out)],
            "one comparison per bundle",
        ),
        (
            vec!["bundle", s(&c1), "--out", s(&out)],
            "not found from here",
        ),
    ] {
        let o = cnibench(&args);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(64), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    assert!(!out.exists(), "nothing written");
    assert!(tree(&dir).iter().all(|f| !f.ends_with(".tmp")));
}

#[test]
fn the_version_names_the_git_revision() {
    let o = cnibench(&["--version"]);
    let v = String::from_utf8_lossy(&o.stdout);
    assert!(v.starts_with("cnibench 0.") && v.contains(" (git "), "{v}");
    assert!(!cnibench_coordinator::GIT_REVISION.is_empty());
}
