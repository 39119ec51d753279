//! Reports from real short runs: two worker processes on 127.0.0.2 and 127.0.0.3,
//! the real `cnibench` binary. Checks report.md, report.html and the .hlog files
//! of a run (every .hlog read back must add up exactly to its repetition's
//! histogram in result.json), then `cnibench compare` over two runs labelled with
//! different CNIs. With `CNIBENCH_BROWSER_TEST=1`, both report.html files are
//! rendered by headless Chromium through `scripts/check-report.sh`.

#![allow(clippy::unwrap_used)] // tests fail by panicking

mod common;

use cnibench_coordinator::result::{self, RunResult};
use cnibench_proto::hist;
use common::{cnibench, setup, start_worker_with, tmpdir};
use hdrhistogram::Histogram;
use hdrhistogram::serialization::Deserializer;
use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;

const PLAN: &str = "\
name: report-test
defaults: { duration: 1s, warmup: 200ms, interval: 250ms, repetitions: 2 }
scenarios:
  - { name: stream, traffic: tcp-stream, path: pod-to-pod-cross-node }
  - { name: rr, traffic: tcp-rr, path: pod-to-pod-cross-node, connections: 2, request_size: 100, response_size: 1KiB }
";

/// `cnibench ARGS`, asserting exit 0.
fn cnibench_ok(args: &[&str]) -> Output {
    let o = cnibench(args);
    assert_eq!(
        o.status.code(),
        Some(0),
        "cnibench {args:?}\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// Run the plan on two fresh workers reporting `cni`; returns the output directory.
fn run(cni: &str) -> PathBuf {
    let (dir, token, plan) = setup(&format!("report-{cni}"), PLAN);
    let label = ["--cni", cni];
    let w1 = start_worker_with("127.0.0.2", "node-a", &token, &label);
    let w2 = start_worker_with("127.0.0.3", "node-b", &token, &label);
    let out = dir.join(cni);
    let o = cnibench_ok(&[
        "run",
        plan.to_str().unwrap(),
        "--workers",
        &format!("{},{}", w1.addr, w2.addr),
        "--token-file",
        token.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("report.html"), "{stdout}");
    // Not a terminal: plain start/end lines only, never a carriage return.
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!stderr.contains('\r'), "{stderr:?}");
    out
}

/// The first run (CNI label `loopback`), shared by the tests.
fn run_a() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| run("loopback"))
}

/// `cnibench compare` of the first run and a second one labelled `other`.
fn compared() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let a = run_a();
        let b = run("other");
        let out = a.parent().unwrap().join("compare");
        cnibench_ok(&[
            "compare",
            a.to_str().unwrap(),
            b.to_str().unwrap(),
            "--baseline",
            "loopback",
            "--out",
            out.to_str().unwrap(),
        ]);
        out
    })
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn result_of(dir: &Path) -> RunResult {
    serde_json::from_str(&read(&dir.join("result.json"))).unwrap()
}

/// The table row of a Markdown report whose first cell is `label`, after `heading`.
fn md_row<'a>(md: &'a str, heading: &str, label: &str) -> Vec<&'a str> {
    let section = md
        .split(heading)
        .nth(1)
        .unwrap_or_else(|| panic!("no `{heading}` in:\n{md}"));
    let line = section
        .lines()
        .find(|l| l.starts_with(&format!("| {label} |")))
        .unwrap_or_else(|| panic!("no row `{label}` under `{heading}`"));
    line.trim_matches('|').split(" | ").map(str::trim).collect()
}

/// A self-contained page: no scripts, no external resources.
fn assert_self_contained(html: &str) {
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.trim_end().ends_with("</html>"));
    for bad in [
        "<script", "<link", "<img", "<iframe", "@import", "url(", "src=", "href=",
    ] {
        assert!(!html.contains(bad), "report.html contains `{bad}`");
    }
    let external = html
        .match_indices("http")
        .filter(|(i, _)| !html[*i..].starts_with("http://www.w3.org/2000/svg\""))
        .count();
    assert_eq!(external, 0, "only the SVG namespace may name a URL");
}

#[test]
fn run_writes_markdown_html_and_hlogs() {
    let dir = run_a();
    let r = result_of(dir);
    let md = read(&dir.join("report.md"));
    for want in [
        "# cnibench run: report-test",
        "## Environment",
        "node-a",
        "node-b",
        "loopback",
        "## Plan",
        "streams 1, message 128KiB",
        "connections 2, request 100, response 1KiB",
        "### stream: tcp-stream, pod-to-pod-cross-node",
        "### rr: tcp-rr, pod-to-pod-cross-node",
        "| repetition | reps | status | Gbit/s | req/s |",
        "rr.rep1.hlog, rr.rep2.hlog",
    ] {
        assert!(md.contains(want), "report.md lacks `{want}`:\n{md}");
    }
    // Stream traffic has no latency: null in result.json, "-" in the table, never 0.
    let stream = &r.scenarios[0].repetitions[0];
    assert!(stream.latency_ns.is_none() && stream.requests_per_s.is_none());
    let row = md_row(&md, "### stream:", "1");
    // One stream at max rate may well keep its sending thread at a whole
    // core: then the status says so (the status cell follows the result).
    let status = if stream.client_saturated {
        "ok, saturated"
    } else {
        "ok"
    };
    assert_eq!(row[2], status, "{row:?}");
    // A flagged repetition's numbers carry superscript note marks.
    let gbps: f64 = row[3]
        .trim_end_matches(|c| "⁰¹²³⁴⁵⁶⁷⁸⁹,".contains(c))
        .parse()
        .unwrap();
    let want = stream.throughput_bps.unwrap() / 1e9;
    assert!((gbps - want).abs() < 0.001, "{row:?} vs {want}");
    assert_eq!(
        &row[4..10],
        ["-"; 6],
        "req/s and latency are not measured: {row:?}"
    );
    // The merged row of rr: latency from both repetitions' histograms merged.
    let all = md_row(&md, "### rr:", "**all**");
    let merged = r.scenarios[1].summary.latency_ns.as_ref().unwrap();
    assert_eq!(all[1], "**2**");
    assert!(
        all[7].contains(&cnibench_coordinator::fmt::ns(merged.p99)),
        "{all:?}"
    );

    let html = read(&dir.join("report.html"));
    assert_self_contained(&html);
    // The CPU chart: bars when the workers measured CPU, else a placeholder.
    let cpu = r.scenarios[1].repetitions[0]
        .cpu
        .as_ref()
        .is_some_and(|c| c.client_process_cores.is_some());
    let want_cpu = if cpu {
        "rr: CPU cost (bar: median"
    } else {
        "CPU not measured"
    };
    for want in [
        want_cpu,
        "rr: CPU cost",
        "50%",
        "99.99%",
        "req/s per interval",
        "repetition 2",
    ] {
        assert!(html.contains(want), "report.html lacks `{want}`");
    }
    // Timeline and CPU chart per scenario, and a spectrum for rr (stream has no latency).
    assert_eq!(html.matches("<svg").count(), 5);
    // Interval logs for the latency scenario only.
    for (name, rep, exists) in [("rr", 1, true), ("rr", 2, true), ("stream", 1, false)] {
        let p = dir.join(format!("{name}.rep{rep}.hlog"));
        assert_eq!(p.exists(), exists, "{}", p.display());
    }
}

#[test]
fn hlogs_add_up_to_the_result_histograms() {
    let dir = run_a();
    let r = result_of(dir);
    let mut checked = 0;
    for s in &r.scenarios {
        for rep in &s.repetitions {
            let Some(b64) = &rep.histogram else { continue };
            let want = result::decode_b64(b64).unwrap();
            let path = dir.join(format!("{}.rep{}.hlog", s.name, rep.repetition));
            let bytes = std::fs::read(&path).unwrap();
            let text = String::from_utf8(bytes.clone()).unwrap();
            assert!(
                text.contains("#[Histogram log format version 1.3]"),
                "{text}"
            );
            assert!(
                text.contains("\"StartTimestamp\",\"Interval_Length\""),
                "{text}"
            );
            let mut merged = hist::new_latency();
            let mut intervals = Vec::new();
            let mut start = None;
            for entry in IntervalLogIterator::new(&bytes) {
                match entry.unwrap() {
                    LogEntry::StartTime(t) => start = Some(t),
                    LogEntry::BaseTime(_) => panic!("no BaseTime expected"),
                    LogEntry::Interval(i) => {
                        let raw = base64::Engine::decode(
                            &base64::engine::general_purpose::STANDARD,
                            i.encoded_histogram(),
                        )
                        .unwrap();
                        let h: Histogram<u64> =
                            Deserializer::new().deserialize(&mut &raw[..]).unwrap();
                        merged.add(&h).unwrap();
                        intervals.push((i.start_timestamp(), i.duration()));
                    }
                }
            }
            let start = start.expect("StartTime header");
            let run_start = Duration::from_nanos(r.started_at_unix_ns as u64);
            assert!(start.abs_diff(run_start) < Duration::from_millis(1));
            let measured: Vec<_> = rep.intervals.iter().filter(|i| !i.warmup).collect();
            assert_eq!(intervals.len(), measured.len(), "warm-up excluded");
            assert!(
                (intervals[0].0.as_secs_f64() - measured[0].t_start_s).abs() < 0.001,
                "timestamps: seconds since the repetition's start"
            );
            let counts = |h: &Histogram<u64>| -> Vec<(u64, u64)> {
                h.iter_recorded()
                    .map(|v| (v.value_iterated_to(), v.count_at_value()))
                    .collect()
            };
            assert_eq!(merged.len(), want.len(), "{}", path.display());
            assert!(merged.len() > 100);
            assert_eq!(counts(&merged), counts(&want), "{}", path.display());
            checked += 1;
        }
    }
    assert_eq!(checked, 2, "rr has 2 repetitions with latency");
}

#[test]
fn report_command_regenerates_the_same_files() {
    let dir = run_a();
    let copy = tmpdir("report-regenerate");
    std::fs::copy(dir.join("result.json"), copy.join("result.json")).unwrap();
    cnibench_ok(&["report", copy.to_str().unwrap()]);
    for f in ["report.md", "report.html", "rr.rep1.hlog", "rr.rep2.hlog"] {
        assert!(
            std::fs::read(dir.join(f)).unwrap() == std::fs::read(copy.join(f)).unwrap(),
            "{f}: written from result.json alone, so the same"
        );
    }
}

#[test]
fn compare_writes_reports_across_cnis() {
    let dir = compared();
    for f in ["compare.md", "compare.json", "report.md", "report.html"] {
        assert!(dir.join(f).exists(), "{f}");
    }
    let md = read(&dir.join("report.md"));
    for want in [
        "# cnibench comparison: loopback vs other",
        "## Comparison",
        "| scenario | metric | loopback | other |",
        "## Runs",
        "## Environment",
        "### rr: tcp-rr, pod-to-pod-cross-node",
        "| CNI | reps | status |",
    ] {
        assert!(md.contains(want), "report.md lacks `{want}`:\n{md}");
    }
    let other = md_row(&md, "### rr:", "other");
    assert_eq!(other[1], "2", "{other:?}");
    let html = read(&dir.join("report.html"));
    assert_self_contained(&html);
    for want in [
        "latency by percentile, per CNI",
        "req/s per CNI",
        "Gbit/s per CNI",
    ] {
        assert!(html.contains(want), "report.html lacks `{want}`");
    }
    // Bars and CPU chart per scenario, a spectrum for rr; one line or bar per CNI.
    assert_eq!(html.matches("<svg").count(), 5);
    for cni in ["loopback", "other"] {
        assert!(
            html.contains(&format!("\n{cni}\n</text>")),
            "legend or bar label {cni}"
        );
    }
}

#[test]
fn browser_renders_reports() {
    if std::env::var("CNIBENCH_BROWSER_TEST").as_deref() != Ok("1") {
        eprintln!("skipped: set CNIBENCH_BROWSER_TEST=1 to render report.html with Chromium");
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/check-report.sh");
    let check = |target: &Path| {
        Command::new("bash")
            .arg(&script)
            .arg(target)
            .output()
            .unwrap()
    };
    for dir in [run_a(), compared()] {
        let o = check(dir);
        assert!(
            o.status.success(),
            "{}\n{}{}",
            dir.display(),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(dir.join("report-screenshot.png").exists());
    }
    // The check must be able to fail: an empty page is blank.
    let empty = tmpdir("blank");
    std::fs::write(empty.join("report.html"), "").unwrap();
    let o = check(&empty);
    assert!(!o.status.success(), "a blank page must fail the check");
    assert!(String::from_utf8_lossy(&o.stderr).contains("blank"));
}
