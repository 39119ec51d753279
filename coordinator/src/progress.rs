//! Progress on stderr during `cnibench run`.
//!
//! On a terminal, each repetition gets one line that is redrawn in place (`\r`)
//! on every interval report: elapsed / total seconds, the live rate (Gbit/s
//! received by the server for stream kinds, client transactions per second
//! otherwise) and the p99 of the last client interval; when the repetition ends
//! the line is replaced by its result. Otherwise (a file, a pipe, CI logs) there
//! are only plain lines at the start and end of each repetition.

use crate::fmt;
use crate::result::{Percentiles, RepResult, Status, live_rate};
use crate::run::Progress;
use cnibench_proto::hist;
use cnibench_proto::msg::{IntervalReport, Role};
use cnibench_proto::plan::ScenarioSpec;
use std::io::{IsTerminal as _, Stderr, Write};

/// Longest scenario name shown on the live line (keeps it within 80 columns).
const NAME_WIDTH: usize = 24;

/// Progress output: live lines on a terminal, start/end lines elsewhere.
#[derive(Debug)]
pub struct LiveProgress<W: Write> {
    out: W,
    live: bool,
    current: Option<Current>,
}

/// What the live line of the running repetition shows.
#[derive(Debug)]
struct Current {
    prefix: String,
    total_s: f64,
    elapsed_s: f64,
    warmup: bool,
    rate: Option<String>,
    p99_ns: Option<u64>,
}

impl LiveProgress<Stderr> {
    /// On stderr; live lines when stderr is a terminal.
    pub fn stderr() -> Self {
        let live = std::io::stderr().is_terminal();
        LiveProgress::new(std::io::stderr(), live)
    }
}

fn status_word(s: Status) -> &'static str {
    match s {
        Status::Ok => "ok",
        Status::Partial => "PARTIAL",
        Status::Failed => "FAILED",
    }
}

/// "12.345 Gbit/s, 1234 req/s, p50 .. p99 .." of a finished repetition.
fn summary(s: &ScenarioSpec, r: &RepResult) -> String {
    let mut parts = Vec::new();
    if let Some(t) = r.throughput_bps.filter(|_| s.traffic.is_stream()) {
        parts.push(fmt::gbit_s(t));
    }
    if let Some(q) = r.requests_per_s {
        parts.push(fmt::req_s(q));
    }
    if let Some(l) = &r.latency_ns {
        parts.push(format!("p50 {} p99 {}", fmt::ns(l.p50), fmt::ns(l.p99)));
    }
    parts.join(", ")
}

impl Current {
    fn line(&self) -> String {
        let mut line = format!(
            "{}  {:.1}/{:.1}s",
            self.prefix, self.elapsed_s, self.total_s
        );
        if self.warmup {
            line.push_str(" warm-up");
        }
        if let Some(rate) = &self.rate {
            line.push_str("  ");
            line.push_str(rate);
        }
        if let Some(p99) = self.p99_ns {
            line.push_str("  p99 ");
            line.push_str(&fmt::ns(p99));
        }
        line
    }
}

impl<W: Write> LiveProgress<W> {
    /// Write to `out`; `live` redraws one line per repetition in place.
    pub fn new(out: W, live: bool) -> Self {
        LiveProgress {
            out,
            live,
            current: None,
        }
    }

    /// Redraw the live line (carriage return, erase to end of line).
    fn redraw(&mut self) {
        if let Some(c) = &self.current {
            let _ = write!(self.out, "\r\x1b[K{}", c.line());
            let _ = self.out.flush();
        }
    }
}

impl<W: Write> Progress for LiveProgress<W> {
    fn rep_started(&mut self, s: &ScenarioSpec, rep: u32, index: usize, total: usize) {
        if !self.live {
            let _ = writeln!(
                self.out,
                "[{index}/{total}] {} ({}, {}) repetition {rep}/{}: {} + {} warm-up",
                s.name, s.traffic, s.path, s.repetitions, s.duration, s.warmup
            );
            return;
        }
        let name: String = s.name.chars().take(NAME_WIDTH).collect();
        self.current = Some(Current {
            prefix: format!("[{index}/{total}] {name} rep {rep}/{}", s.repetitions),
            total_s: (s.warmup.0 + s.duration.0).as_secs_f64(),
            elapsed_s: 0.0,
            warmup: !s.warmup.0.is_zero(),
            rate: None,
            p99_ns: None,
        });
        self.redraw();
    }

    fn interval(&mut self, s: &ScenarioSpec, side: Role, r: &IntervalReport) {
        let Some(c) = self.current.as_mut().filter(|_| self.live) else {
            return;
        };
        c.elapsed_s = c.elapsed_s.max(r.t_end_ns as f64 / 1e9);
        c.warmup = r.warmup;
        if let Some(v) = live_rate(s.traffic, side, r) {
            c.rate = Some(if s.traffic.is_stream() {
                format!("{} Gbit/s", fmt::gbps(v, 2))
            } else {
                fmt::req_s(v)
            });
        }
        if side == Role::Client {
            c.p99_ns = hist::decode(&r.latency)
                .ok()
                .as_ref()
                .and_then(Percentiles::of)
                .map(|p| p.p99);
        }
        self.redraw();
    }

    fn rep_finished(&mut self, s: &ScenarioSpec, r: &RepResult) {
        let status = status_word(r.status);
        let result = summary(s, r);
        match self.current.take().filter(|_| self.live) {
            Some(c) => {
                let _ = writeln!(self.out, "\r\x1b[K{}  {status}: {result}", c.prefix);
            }
            None => {
                let _ = writeln!(self.out, "      {status}: {result}");
            }
        }
        for f in &r.flags {
            let _ = writeln!(self.out, "      ! {f}");
        }
        let _ = self.out.flush();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::result::fixtures;
    use cnibench_proto::msg::Counters;
    use cnibench_proto::plan;

    fn spec(traffic: &str) -> ScenarioSpec {
        let text = format!(
            "name: t\ndefaults: {{duration: 2s, warmup: 1s, interval: 1s, repetitions: 2}}\nscenarios:\n  - {{name: s, traffic: {traffic}, path: pod-to-pod-cross-node}}\n"
        );
        plan::load("t.yaml", &text).unwrap().scenarios.remove(0)
    }

    fn report(seq: u32, latency_ns: &[u64], counters: Counters) -> IntervalReport {
        IntervalReport {
            counters,
            ..fixtures::report(seq, latency_ns, seq == 0)
        }
    }

    fn rep(status: Status, flags: &[&str]) -> RepResult {
        let r = crate::result::rep_result(&spec("tcp-rr"), 1, crate::result::Collected::default());
        RepResult {
            status,
            flags: flags.iter().map(|f| f.to_string()).collect(),
            requests_per_s: Some(1234.0),
            ..r
        }
    }

    fn run(live: bool, traffic: &str) -> String {
        let s = spec(traffic);
        let mut p = LiveProgress::new(Vec::new(), live);
        p.rep_started(&s, 1, 1, 2);
        let tx = |n| Counters {
            transactions: n,
            bytes_received: n * 1000,
            ..Counters::default()
        };
        p.interval(&s, Role::Client, &report(0, &[50_000], tx(10)));
        p.interval(&s, Role::Client, &report(1, &[100_000; 100], tx(1500)));
        p.interval(&s, Role::Server, &report(1, &[], tx(125_000)));
        p.rep_finished(
            &s,
            &rep(Status::Partial, &["client: 1 of 3 intervals missing"]),
        );
        String::from_utf8(p.out).unwrap()
    }

    #[test]
    fn terminal_redraws_one_line_per_repetition() {
        let out = run(true, "tcp-rr");
        assert!(
            out.contains("\r\x1b[K[1/2] s rep 1/2  1.0/3.0s warm-up  10 req/s"),
            "{out:?}"
        );
        assert!(out.contains("2.0/3.0s  1500 req/s  p99 100.0us"), "{out:?}");
        let lines: Vec<&str> = out.split('\n').collect();
        assert_eq!(lines.len(), 3, "result line, flag line, end: {out:?}");
        assert!(
            lines[0].ends_with("[1/2] s rep 1/2  PARTIAL: 1234 req/s"),
            "{out:?}"
        );
        assert_eq!(lines[1], "      ! client: 1 of 3 intervals missing");

        let stream = run(true, "tcp-stream");
        assert!(stream.contains("2.0/3.0s  1.00 Gbit/s"), "{stream:?}");
    }

    #[test]
    fn plain_output_has_start_and_end_lines_only() {
        let out = run(false, "tcp-rr");
        assert!(!out.contains('\r'), "{out:?}");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3, "{out:?}");
        assert!(lines[0].starts_with("[1/2] s (tcp-rr, pod-to-pod-cross-node) repetition 1/2"));
        assert_eq!(lines[1], "      PARTIAL: 1234 req/s");
    }
}
