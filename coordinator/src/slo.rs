//! Checking a scenario's service-level objectives (`slo:` in the plan) on one
//! repetition, soak window or sweep step.
//!
//! The verdict is on the whole repetition: its merged p99 against the p99
//! objective, its error share against `error_rate`, and so on. The measured
//! intervals in which an objective did not hold are listed with it, to say when
//! it broke. An objective that could not be measured (no samples, a failed
//! repetition) is broken, never passed by default.

use crate::fmt;
use crate::result::{IntervalResult, RepResult, ScenarioResult, SloCheck, decode_b64};
use cnibench_proto::slo::Slo;
use cnibench_proto::units::Rate;

#[derive(Clone, Copy)]
enum Bound {
    /// The measured value must not exceed the limit.
    AtMost,
    /// The measured value must reach the limit.
    AtLeast,
}

/// How an objective reads a value from a repetition and from an interval.
struct Objective {
    name: &'static str,
    limit: f64,
    bound: Bound,
    rep: fn(&RepResult) -> Option<f64>,
    interval: fn(&IntervalResult) -> Option<f64>,
}

fn error_rate(errors: u64, transactions: u64) -> Option<f64> {
    let total = errors + transactions;
    (total > 0).then(|| errors as f64 * 100.0 / total as f64)
}

fn objectives(slo: &Slo) -> Vec<Objective> {
    let ns = |d: cnibench_proto::units::Dur| d.0.as_nanos() as f64;
    let mut out = Vec::new();
    if let Some(d) = slo.p50 {
        out.push(Objective {
            name: "p50",
            limit: ns(d),
            bound: Bound::AtMost,
            rep: |r| r.latency_ns.as_ref().map(|l| l.p50 as f64),
            interval: |i| i.p50_ns.map(|v| v as f64),
        });
    }
    if let Some(d) = slo.p99 {
        out.push(Objective {
            name: "p99",
            limit: ns(d),
            bound: Bound::AtMost,
            rep: |r| r.latency_ns.as_ref().map(|l| l.p99 as f64),
            interval: |i| i.p99_ns.map(|v| v as f64),
        });
    }
    if let Some(d) = slo.p999 {
        out.push(Objective {
            name: "p999",
            limit: ns(d),
            bound: Bound::AtMost,
            rep: |r| r.latency_ns.as_ref().map(|l| l.p999 as f64),
            interval: |i| {
                let h = decode_b64(i.histogram.as_deref()?)?;
                (!h.is_empty()).then(|| h.value_at_quantile(0.999) as f64)
            },
        });
    }
    if let Some(p) = slo.error_rate {
        out.push(Objective {
            name: "error_rate",
            limit: p.0,
            bound: Bound::AtMost,
            rep: |r| error_rate(r.errors(), r.client.transactions),
            interval: |i| error_rate(i.errors, i.transactions),
        });
    }
    if let Some(p) = slo.loss {
        out.push(Objective {
            name: "loss",
            limit: p.0,
            bound: Bound::AtMost,
            rep: |r| r.udp.as_ref().and_then(|u| u.loss_pct),
            interval: |i| i.loss_pct,
        });
    }
    match slo.min_throughput {
        Some(Rate::BitsPerSecond(b)) => out.push(Objective {
            name: "min_throughput",
            limit: b,
            bound: Bound::AtLeast,
            rep: |r| r.throughput_bps,
            interval: |i| i.throughput_bps,
        }),
        Some(Rate::PerSecond(n)) => out.push(Objective {
            name: "min_throughput",
            limit: n,
            bound: Bound::AtLeast,
            rep: |r| r.requests_per_s,
            interval: |i| i.requests_per_s,
        }),
        Some(Rate::Max) | None => {}
    }
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
            let measured = (o.rep)(rep);
            let ok = measured.is_some_and(|v| holds(o.bound, o.limit, v));
            let excess_pct = measured.filter(|_| o.limit > 0.0).map(|v| match o.bound {
                Bound::AtMost => (v - o.limit) * 100.0 / o.limit,
                Bound::AtLeast => (o.limit - v) * 100.0 / o.limit,
            });
            let intervals = rep
                .intervals
                .iter()
                .filter(|i| !i.warmup)
                .filter(|i| (o.interval)(i).is_some_and(|v| !holds(o.bound, o.limit, v)))
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
        "p50" | "p99" | "p999" => fmt::ns(v as u64),
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
    use super::*;

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
