//! Checking a scenario's service-level objectives (`slo:` in the plan) on one
//! repetition, soak window or sweep step.
//!
//! The verdict is on the whole repetition: its merged p99 against the p99
//! objective, its share of failed requests (`error_pct`, the clients' count:
//! a failure both ends see counts once) against `error_rate`, and so on. The measured
//! intervals in which an objective did not hold are listed with it, to say when
//! it broke. An objective that could not be measured (no samples, a failed
//! repetition) is broken, never passed by default.

use crate::fmt;
use crate::result::{IntervalResult, Quantile, RepResult, ScenarioResult, SloCheck};
use cnibench_proto::slo::Slo;
use cnibench_proto::units::{Dur, Rate};

#[derive(Clone, Copy)]
enum Bound {
    /// The measured value must not exceed the limit.
    AtMost,
    /// The measured value must reach the limit.
    AtLeast,
}

/// What an objective measures, on a repetition and on each of its intervals.
#[derive(Clone, Copy)]
enum Measure {
    /// Client latency at a percentile, ns.
    Latency(Quantile),
    /// Failed requests over failed and completed ones, percent, at the clients
    /// (each failure counted once).
    ErrorRate,
    /// Net datagram loss, percent.
    Loss,
    /// Goodput, bit/s.
    Goodput,
    /// Transactions per second.
    Transactions,
}

impl Measure {
    fn rep(self, r: &RepResult) -> Option<f64> {
        match self {
            Measure::Latency(q) => r.latency_ns.as_ref().map(|l| (q.of)(l) as f64),
            // Results of schema 1 had no error_pct: failures of both sides.
            Measure::ErrorRate => r
                .error_pct
                .or_else(|| error_rate(r.errors(), r.client.transactions)),
            Measure::Loss => r.udp.as_ref().and_then(|u| u.loss_pct),
            Measure::Goodput => r.throughput_bps,
            Measure::Transactions => r.requests_per_s,
        }
    }

    fn interval(self, i: &IntervalResult) -> Option<f64> {
        match self {
            Measure::Latency(q) => i.latency_ns(q).map(|v| v as f64),
            Measure::ErrorRate => error_rate(i.failed, i.transactions),
            Measure::Loss => i.loss_pct,
            Measure::Goodput => i.throughput_bps,
            Measure::Transactions => i.requests_per_s,
        }
    }
}

/// One objective: its name, limit, and which side of the limit holds.
struct Objective {
    name: &'static str,
    limit: f64,
    bound: Bound,
    measure: Measure,
}

fn error_rate(errors: u64, transactions: u64) -> Option<f64> {
    let total = errors + transactions;
    (total > 0).then(|| errors as f64 * 100.0 / total as f64)
}

/// Reads one objective of `slo:`.
type Field = fn(&Slo) -> Option<Dur>;

/// The latency objectives of `slo:` and their percentiles.
const LATENCY: [(Quantile, Field); 3] = [
    (Quantile::P50, |s| s.p50),
    (Quantile::P99, |s| s.p99),
    (Quantile::P999, |s| s.p999),
];

fn objectives(slo: &Slo) -> Vec<Objective> {
    let at_most = |name, limit, measure| Objective {
        name,
        limit,
        bound: Bound::AtMost,
        measure,
    };
    let mut out: Vec<Objective> = LATENCY
        .iter()
        .filter_map(|(q, objective)| {
            let limit = objective(slo)?.0.as_nanos() as f64;
            Some(at_most(q.name, limit, Measure::Latency(*q)))
        })
        .collect();
    out.extend(
        slo.error_rate
            .map(|p| at_most("error_rate", p.0, Measure::ErrorRate)),
    );
    out.extend(slo.loss.map(|p| at_most("loss", p.0, Measure::Loss)));
    let (limit, measure) = match slo.min_throughput {
        Some(Rate::BitsPerSecond(b)) => (b, Measure::Goodput),
        Some(Rate::PerSecond(n)) => (n, Measure::Transactions),
        Some(Rate::Max) | None => return out,
    };
    out.push(Objective {
        name: "min_throughput",
        limit,
        bound: Bound::AtLeast,
        measure,
    });
    out
}

fn holds(bound: Bound, limit: f64, v: f64) -> bool {
    match bound {
        Bound::AtMost => v <= limit,
        Bound::AtLeast => v >= limit,
    }
}

/// Check every objective of `slo` on `rep`.
pub fn check(slo: &Slo, rep: &RepResult) -> Vec<SloCheck> {
    objectives(slo)
        .into_iter()
        .map(|o| {
            let measured = o.measure.rep(rep);
            let ok = measured.is_some_and(|v| holds(o.bound, o.limit, v));
            let excess_pct = measured.filter(|_| o.limit > 0.0).map(|v| match o.bound {
                Bound::AtMost => (v - o.limit) * 100.0 / o.limit,
                Bound::AtLeast => (o.limit - v) * 100.0 / o.limit,
            });
            let intervals = rep
                .intervals
                .iter()
                .filter(|i| !i.warmup)
                .filter(|i| {
                    o.measure
                        .interval(i)
                        .is_some_and(|v| !holds(o.bound, o.limit, v))
                })
                .map(|i| i.seq)
                .collect();
            SloCheck {
                objective: o.name.to_string(),
                limit: o.limit,
                measured,
                ok,
                excess_pct,
                intervals,
            }
        })
        .collect()
}

/// A value of `objective` in its unit, for people.
pub fn show(objective: &str, v: f64) -> String {
    match objective {
        _ if LATENCY.iter().any(|(q, _)| q.name == objective) => fmt::ns(v as u64),
        "error_rate" | "loss" => fmt::pct(v),
        _ if v >= 1e6 => fmt::gbit_s(v),
        _ => fmt::per_s(v),
    }
}

/// `3, 4, 5, 9` -> `3-5, 9`.
fn ranges(seqs: &[u32]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < seqs.len() {
        let mut j = i;
        while j + 1 < seqs.len() && seqs[j + 1] == seqs[j] + 1 {
            j += 1;
        }
        out.push(if i == j {
            seqs[i].to_string()
        } else {
            format!("{}-{}", seqs[i], seqs[j])
        });
        i = j + 1;
    }
    out.join(", ")
}

/// One line about a broken objective: which, by how much, in which intervals.
pub fn describe(c: &SloCheck) -> String {
    let op = if c.objective == "min_throughput" {
        "<"
    } else {
        ">"
    };
    let what = match c.measured {
        None => format!(
            "{}: not measured (objective {})",
            c.objective,
            show(&c.objective, c.limit)
        ),
        Some(v) => format!(
            "{} {} {op} {}{}",
            c.objective,
            show(&c.objective, v),
            show(&c.objective, c.limit),
            c.excess_pct
                .map(|e| format!(" (by {e:.1}%)"))
                .unwrap_or_default()
        ),
    };
    if c.intervals.is_empty() {
        what
    } else {
        format!("{what}, in intervals {}", ranges(&c.intervals))
    }
}

/// Whether every objective of every repetition held, and every sweep with
/// objectives found a rate that held them: nothing is [`broken`].
pub fn all_held(scenarios: &[ScenarioResult]) -> bool {
    broken(scenarios).is_empty()
}

/// Every broken objective of a run's scenarios, one line each; a sweep with
/// objectives none of whose steps held is one line.
pub fn broken(scenarios: &[ScenarioResult]) -> Vec<String> {
    let mut out = Vec::new();
    for s in scenarios {
        let with_slo = |sw: &&crate::result::SweepResult| {
            sw.max_rate.is_none() && sw.steps.iter().any(|st| !st.result.slo.is_empty())
        };
        if let Some(sw) = s.sweep.as_ref().filter(with_slo) {
            let why = sw.steps.first().and_then(|st| st.why.clone());
            out.push(format!(
                "scenario `{}`: no step of {} held{}",
                s.name,
                sw.sweep,
                why.map(|w| format!(" (first step: {w})"))
                    .unwrap_or_default()
            ));
            continue;
        }
        for rep in &s.repetitions {
            for c in rep.slo.iter().filter(|c| !c.ok) {
                out.push(format!(
                    "scenario `{}` repetition {}: {}",
                    s.name,
                    rep.repetition,
                    describe(c)
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn objectives_read_the_repetition_and_name_the_intervals_that_broke_them() {
        use crate::result::fixtures::{idle, job, report, spec};
        use crate::result::{Collected, rep_result};
        use cnibench_proto::msg::Role;
        use cnibench_proto::units::Percent;
        use std::time::Duration;
        // Interval 1: 100 samples of 10 us; interval 2: 99 of 10 us and one of 5 ms.
        let mut slow = vec![10_000u64; 99];
        slow.push(5_000_000);
        let client = vec![
            report(0, &[], true),
            report(1, &[10_000; 100], false),
            report(2, &slow, false),
        ];
        let rep = rep_result(
            &spec(),
            1,
            Collected {
                jobs: vec![job(Role::Client, client, Some(3)), idle(Role::Server, 3)],
                failures: vec![],
            },
        );
        let us = |n| Some(Dur(Duration::from_micros(n)));
        let slo = Slo {
            p99: us(20),
            p999: us(1000),
            error_rate: Some(Percent(1.0)),
            min_throughput: Some(Rate::PerSecond(150.0)),
            ..Slo::default()
        };
        let checks = check(&slo, &rep);
        let by = |name: &str| checks.iter().find(|c| c.objective == name).unwrap();
        assert_eq!(checks.len(), 4);
        assert!(
            by("p99").ok && by("p99").intervals.is_empty(),
            "{:?}",
            by("p99")
        );
        // The merged p99.9 is the slow sample; only interval 2 held it, read
        // from that interval's histogram.
        let p999 = by("p999");
        assert!(!p999.ok && p999.measured > Some(4.9e6), "{p999:?}");
        assert_eq!(p999.intervals, [2]);
        assert!(by("error_rate").ok);
        let rate = by("min_throughput");
        assert_eq!((rate.ok, rate.measured), (false, Some(100.0)));
        assert_eq!(rate.intervals, [1, 2]);
    }

    #[test]
    fn ranges_compress_runs() {
        assert_eq!(ranges(&[3, 4, 5, 9]), "3-5, 9");
        assert_eq!(ranges(&[1]), "1");
        assert_eq!(ranges(&[]), "");
    }

    #[test]
    fn description_names_objective_excess_and_intervals() {
        let c = SloCheck {
            objective: "p99".into(),
            limit: 2e6,
            measured: Some(3.1e6),
            ok: false,
            excess_pct: Some(55.0),
            intervals: vec![2, 3, 4, 7],
        };
        let d = describe(&c);
        assert!(d.starts_with("p99 3.10ms > 2.00ms (by 55.0%)"), "{d}");
        assert!(d.ends_with("in intervals 2-4, 7"), "{d}");
        let none = SloCheck {
            measured: None,
            excess_pct: None,
            intervals: vec![],
            ..c
        };
        assert!(describe(&none).contains("not measured"));
    }
}
