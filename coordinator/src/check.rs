//! `cnibench check RUN --baseline RUN_ID|last-good`: is a run worse than its
//! baseline by more than the baseline's own noise?
//!
//! Per scenario and metric (throughput or requests/s, p99, loss: the metrics
//! `cnibench compare` shows for the traffic kind), the candidate's ok
//! repetitions are held against the baseline's with the test `compare` uses
//! ([`crate::stats::assess`]): the two-sided exact Mann-Whitney U test and the
//! bootstrap interval of the ratio of medians. A change counts when it is
//! significant (p < 0.05 AND the ratio's interval excludes 1) AND the whole
//! ratio interval lies beyond a practical margin: [`TOLERANCE`], for p99 [`P99_TOLERANCE`] (tails
//! move by up to 2x between identical runs on a shared machine while the
//! repetitions of one run agree, which a test between runs would call
//! significant), plus for p99 [`LATENCY_FLOOR_NS`] and for loss
//! [`LOSS_FLOOR_PCT`] of absolute change. With fewer than
//! [`crate::stats::MIN_REPS`] repetitions on a side the test is over the
//! measured intervals (read from the runs' result.json) and the finding says
//! so; with neither, there is no test and the finding says that. A scenario of
//! the baseline that the candidate lacks, or that has no ok repetition, is a
//! regression too.

use crate::compare::Metric;
use crate::history::RepRow;
use crate::result::{Stat, Status};
use crate::stats::{self, Basis, Sample};
use cnibench_proto::plan::Traffic;
use std::fmt::Write as _;

/// Relative change a significant difference must exceed to count.
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
            let sample = |rows: &[RepRow]| Sample {
                reps: rows.iter().filter_map(|r| m.of(r)).collect(),
                intervals: rows
                    .iter()
                    .flat_map(|r| &r.intervals)
                    .filter_map(|i| m.of_interval(i))
                    .filter(|v| v.is_finite())
                    .collect(),
            };
            let a = stats::assess(&sample(&c), &sample(&b));
            let up = m.higher_is_better();
            let ratio = (bs.median != 0.0).then(|| cs.median / bs.median);
            // Beyond the margin with 95% confidence: the whole ratio interval.
            let tol = tolerance(m);
            let beyond = a
                .ratio_ci
                .is_some_and(|ci| ci.low > 1.0 + tol || ci.high < 1.0 - tol)
                && (cs.median - bs.median).abs() > floor(m);
            let verdict = match (a.significant, ratio) {
                (Some(true), Some(r)) if beyond => {
                    if (r > 1.0) == up {
                        Verdict::Improved
                    } else {
                        Verdict::Regression
                    }
                }
                _ => Verdict::Same,
            };
            let change = ratio.map(|r| (r - 1.0) * 100.0);
            let test = match (a.test, a.ratio_ci) {
                (Some(t), Some(ci)) if a.significant.is_some() => format!(
                    "; ratio interval [{:.2}..{:.2}], Mann-Whitney p={:.3}{}",
                    ci.low,
                    ci.high,
                    t.p_value,
                    match a.basis {
                        Basis::Intervals => format!(
                            " over intervals (fewer than {} repetitions: indicative)",
                            stats::MIN_REPS
                        ),
                        Basis::Repetitions => String::new(),
                    }
                ),
                _ => "; no test possible (one value on a side and no intervals)".into(),
            };
            let why = format!(
                "{} vs baseline {} [{}..{}] over {} repetitions{}{test}",
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
            path: "pod-to-pod-cross-node".into(),
            status: Status::Ok,
            throughput_bps: None,
            requests_per_s: Some(rps),
            p99_ns: Some(p99_us * 1e3),
            loss_pct: None,
            intervals: Vec::new(),
        }
    }

    /// Five repetitions around `rps` and `p99_us` (2% spread).
    fn five(rps: f64, p99_us: f64) -> Vec<RepRow> {
        [-0.02, 0.013, -0.004, 0.019, -0.011]
            .iter()
            .map(|e| row("a", rps * (1.0 + e), p99_us * (1.0 + e)))
            .collect()
    }

    #[test]
    fn within_noise_improved_and_regressed() {
        let base = five(1000.0, 300.0);
        let same = five(1003.0, 310.0);
        assert!(
            check(&base, &same)
                .iter()
                .all(|f| f.verdict == Verdict::Same)
        );
        let slow = five(1000.0, 900.0);
        let f = check(&base, &slow);
        assert_eq!(f[1].metric, Some(Metric::P99Ns));
        assert_eq!(f[1].verdict, Verdict::Regression, "{}", f[1].why);
        assert!(f[1].why.contains("Mann-Whitney p=0.008"), "{}", f[1].why);
        let faster = five(1300.0, 300.0);
        assert_eq!(check(&base, &faster)[0].verdict, Verdict::Improved);
        // Significant but within the practical margin: the same.
        let slightly = five(1030.0, 300.0);
        let f = check(&base, &slightly);
        assert_eq!(f[0].verdict, Verdict::Same, "{}", f[0].why);
    }

    #[test]
    fn one_repetition_falls_back_to_intervals_and_says_so() {
        let with_intervals = |rps: f64| {
            let mut r = row("a", rps, 300.0);
            let c = crate::compare::tests_support::interval(rps);
            r.intervals = (0..6)
                .map(|i| {
                    let mut iv = c.clone();
                    iv.requests_per_s = Some(rps * (1.0 + 0.005 * f64::from(i)));
                    iv
                })
                .collect();
            r
        };
        let f = check(&[with_intervals(1000.0)], &[with_intervals(700.0)]);
        assert_eq!(f[0].verdict, Verdict::Regression, "{}", f[0].why);
        assert!(f[0].why.contains("over intervals"), "{}", f[0].why);
        // Without intervals (database only): no test, said so, no verdict.
        let f = check(&[row("a", 1000.0, 300.0)], &[row("a", 700.0, 300.0)]);
        assert_eq!(f[0].verdict, Verdict::Same);
        assert!(f[0].why.contains("no test possible"), "{}", f[0].why);
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
