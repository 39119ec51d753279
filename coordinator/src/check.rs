//! `cnibench check RUN --baseline RUN_ID|last-good`: is a run worse than its
//! baseline by more than the baseline's own noise?
//!
//! Per scenario and metric (throughput or requests/s, p99, loss: the metrics
//! `cnibench compare` shows for the traffic kind), the candidate's median over
//! its repetitions is held against the range (min..max) of the baseline's
//! repetitions. A regression is a median outside that range on the bad side by
//! more than the range's own width, the baseline's noise (at least
//! [`TOLERANCE`] of the range's end; for p99 at least [`P99_TOLERANCE`], as
//! tails move by up to 2x between identical runs on a shared machine while the
//! repetitions of one run agree), plus for p99 [`LATENCY_FLOOR_NS`] (timer and
//! scheduling noise on small latencies) and for loss [`LOSS_FLOOR_PCT`].
//! With one baseline repetition the width is zero and only the tolerance
//! protects from noise: give a baseline repetitions. A noisy baseline makes the
//! check less sensitive, never trigger-happy. A scenario of the baseline that
//! the candidate lacks, or that has no ok repetition, is a regression too.

use crate::compare::Metric;
use crate::history::RepRow;
use crate::result::{Stat, Status};
use cnibench_proto::plan::Traffic;
use std::fmt::Write as _;

/// Relative margin beyond the baseline's range before a change counts.
pub const TOLERANCE: f64 = 0.05;
/// The same for p99 latency: a regression more than doubles it.
pub const P99_TOLERANCE: f64 = 1.0;
/// Absolute margin on p99 latency, ns.
pub const LATENCY_FLOOR_NS: f64 = 100_000.0;
/// Absolute margin on loss, percentage points.
pub const LOSS_FLOOR_PCT: f64 = 0.1;

/// The outcome for one scenario and metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Within the baseline's noise.
    Same,
    /// Better beyond the noise.
    Improved,
    /// Worse beyond the noise.
    Regression,
}

/// One scenario and metric compared.
#[derive(Debug, Clone)]
pub struct Finding {
    /// Scenario.
    pub scenario: String,
    /// Metric (`None`: the scenario as a whole, e.g. missing).
    pub metric: Option<Metric>,
    /// Baseline repetitions.
    pub baseline: Option<Stat>,
    /// Candidate repetitions.
    pub candidate: Option<Stat>,
    /// Verdict.
    pub verdict: Verdict,
    /// Why, for people.
    pub why: String,
}

fn higher_is_better(m: Metric) -> bool {
    matches!(m, Metric::ThroughputBps | Metric::RequestsPerS)
}

fn tolerance(m: Metric) -> f64 {
    match m {
        Metric::P99Ns => P99_TOLERANCE,
        _ => TOLERANCE,
    }
}

fn floor(m: Metric) -> f64 {
    match m {
        Metric::P99Ns => LATENCY_FLOOR_NS,
        Metric::LossPct => LOSS_FLOOR_PCT,
        _ => 0.0,
    }
}

/// Compare `candidate` with `baseline` (stored repetitions of each run).
pub fn check(baseline: &[RepRow], candidate: &[RepRow]) -> Vec<Finding> {
    let mut names: Vec<(&str, Traffic)> = Vec::new();
    for r in baseline {
        if !names.iter().any(|(n, _)| *n == r.scenario) {
            names.push((&r.scenario, r.traffic));
        }
    }
    let mut out = Vec::new();
    for (name, traffic) in names {
        let ok = |rows: &[RepRow]| -> Vec<RepRow> {
            rows.iter()
                .filter(|r| r.scenario == name && r.status == Status::Ok)
                .cloned()
                .collect()
        };
        let (b, c) = (ok(baseline), ok(candidate));
        if c.is_empty() {
            let ran = candidate.iter().any(|r| r.scenario == name);
            out.push(Finding {
                scenario: name.to_string(),
                metric: None,
                baseline: None,
                candidate: None,
                verdict: Verdict::Regression,
                why: if ran {
                    "no repetition ok".into()
                } else {
                    "not run".into()
                },
            });
            continue;
        }
        for &m in Metric::for_traffic(traffic) {
            let (Some(bs), Some(cs)) = (
                Stat::of(b.iter().map(|r| m.of(r))),
                Stat::of(c.iter().map(|r| m.of(r))),
            ) else {
                continue;
            };
            let up = higher_is_better(m);
            let width = bs.max - bs.min;
            let below = bs.min - width.max(tolerance(m) * bs.min.abs()) - floor(m);
            let above = bs.max + width.max(tolerance(m) * bs.max.abs()) + floor(m);
            let (worse, better) = if up {
                (cs.median < below, cs.median > above)
            } else {
                (cs.median > above, cs.median < below)
            };
            let verdict = if worse {
                Verdict::Regression
            } else if better {
                Verdict::Improved
            } else {
                Verdict::Same
            };
            let change = (bs.median != 0.0).then(|| (cs.median / bs.median - 1.0) * 100.0);
            let why = format!(
                "{} vs baseline {} [{}..{}] over {} repetitions{}",
                m.show(cs.median),
                m.show(bs.median),
                m.show(bs.min),
                m.show(bs.max),
                bs.n,
                change.map(|c| format!(" ({c:+.1}%)")).unwrap_or_default()
            );
            out.push(Finding {
                scenario: name.to_string(),
                metric: Some(m),
                baseline: Some(bs),
                candidate: Some(cs),
                verdict,
                why,
            });
        }
    }
    out
}

/// The findings as a Markdown table.
pub fn markdown(findings: &[Finding]) -> String {
    let mut out = String::from("| scenario | metric | verdict | detail |\n|---|---|---|---|\n");
    for f in findings {
        let verdict = match f.verdict {
            Verdict::Same => "within noise",
            Verdict::Improved => "improved",
            Verdict::Regression => "REGRESSION",
        };
        let _ = writeln!(
            out,
            "| {} | {} | {verdict} | {} |",
            f.scenario,
            f.metric.map_or("-", Metric::label),
            f.why
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(scenario: &str, rps: f64, p99_us: f64) -> RepRow {
        RepRow {
            scenario: scenario.into(),
            cni: "x".into(),
            traffic: Traffic::TcpRr,
            status: Status::Ok,
            throughput_bps: None,
            requests_per_s: Some(rps),
            p99_ns: Some(p99_us * 1e3),
            loss_pct: None,
        }
    }

    #[test]
    fn within_noise_improved_and_regressed() {
        let base = [
            row("a", 1000.0, 300.0),
            row("a", 990.0, 350.0),
            row("a", 1010.0, 320.0),
        ];
        let same = [row("a", 995.0, 380.0), row("a", 1000.0, 400.0)];
        assert!(
            check(&base, &same)
                .iter()
                .all(|f| f.verdict == Verdict::Same)
        );
        let slow = [row("a", 1000.0, 900.0), row("a", 1000.0, 950.0)];
        let f = check(&base, &slow);
        assert_eq!(f[1].metric, Some(Metric::P99Ns));
        assert_eq!(f[1].verdict, Verdict::Regression, "{}", f[1].why);
        let faster = [row("a", 1300.0, 340.0)];
        assert_eq!(check(&base, &faster)[0].verdict, Verdict::Improved);
    }

    #[test]
    fn a_missing_or_failed_scenario_is_a_regression() {
        let base = [row("a", 1000.0, 300.0), row("b", 1000.0, 300.0)];
        let mut failed = row("b", 0.0, 0.0);
        failed.status = Status::Failed;
        let f = check(&base, &[row("a", 1000.0, 300.0), failed]);
        let b = f.iter().find(|f| f.scenario == "b").unwrap();
        assert_eq!(
            (b.verdict, b.why.as_str()),
            (Verdict::Regression, "no repetition ok")
        );
        let f = check(&base, &[row("a", 1000.0, 300.0)]);
        assert_eq!(f.last().unwrap().why, "not run");
    }
}
