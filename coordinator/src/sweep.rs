//! Rate sweeps (`rate: sweep(1000/s..100000/s, x2)`): find the highest offered
//! load a scenario holds, and the latency knee.
//!
//! Steps grow by the sweep's factor until one does not hold, then the gap between
//! the last step that held and the first that did not is halved until it is
//! within [`PRECISION`] of the rate (at most [`MAX_REFINE`] more steps). A step
//! holds when its repetition is `ok`, the client kept its schedule, the achieved
//! rate is within 5% of the offered one, and every objective in `slo:` held. A
//! step whose requests failed too often (see `result::DEFAULT_ERROR_PCT`) does
//! not hold because of `errors`, which is said first: the server or path
//! failing at that load is a finding about them, and the search goes on. A
//! client that saturates ends the search: past that point the numbers describe
//! the generator, not the path, and the result says so.
//!
//! The knee is the highest offered rate whose p99 stays within [`KNEE_FACTOR`]
//! times the p99 at the lightest step: beyond it, queueing dominates.

use crate::result::{DEFAULT_ERROR_PCT, RepResult, Status, SweepResult, SweepStep, achieved_rate};
use cnibench_proto::plan::ScenarioSpec;
use cnibench_proto::units::{Rate, Sweep};

/// Refine until the bracket is narrower than this share of the rate.
pub const PRECISION: f64 = 0.1;
/// Most refinement steps after the geometric ones.
pub const MAX_REFINE: usize = 5;
/// p99 growth over the lightest step that marks the knee.
pub const KNEE_FACTOR: f64 = 2.0;
/// Shortfall of the achieved rate, relative to the offered one, that fails a step.
const KEEP_UP: f64 = 0.95;

/// Why a step failed on its requests' errors (more than `slo: error_rate`,
/// else [`DEFAULT_ERROR_PCT`], failed), if it did.
fn errors(spec: &ScenarioSpec, r: &RepResult) -> Option<String> {
    let limit = spec.slo.error_rate.map_or(DEFAULT_ERROR_PCT, |p| p.0);
    let pct = r.error_pct.filter(|p| *p > limit)?;
    // The merge's flag names the kinds.
    Some(
        r.flags
            .iter()
            .find(|f| f.starts_with("errors: "))
            .cloned()
            .unwrap_or_else(|| format!("errors: {pct:.1}% of requests failed")),
    )
}

/// Judge a step: `None` when it held, else why not. Too many failed requests
/// are said first: a server answering errors at a load is not a slow
/// generator.
fn judge(spec: &ScenarioSpec, offered: f64, r: &RepResult) -> (Option<f64>, Option<String>) {
    let achieved = (r.duration_s > 0.0).then(|| achieved_rate(spec, &r.client, r.duration_s));
    let why = if let Some(why) = errors(spec, r) {
        Some(why)
    } else if r.status != Status::Ok {
        Some(format!("repetition {:?}: {}", r.status, r.flags.join("; ")))
    } else if r.client_saturated {
        Some("client saturated".to_string())
    } else if achieved.is_none_or(|a| a < KEEP_UP * offered) {
        Some(format!(
            "achieved {:.0} of {offered:.0}",
            achieved.unwrap_or(0.0)
        ))
    } else {
        let broken: Vec<String> = r
            .slo
            .iter()
            .filter(|c| !c.ok)
            .map(crate::slo::describe)
            .collect();
        (!broken.is_empty()).then(|| broken.join("; "))
    };
    (achieved, why)
}

/// Run a sweep: `step(spec)` runs one repetition of `spec` (whose rate is set
/// for the step) and returns its result; `stop()` says the run was interrupted.
pub async fn search(
    spec: &ScenarioSpec,
    sw: Sweep,
    mut step: impl AsyncFnMut(&ScenarioSpec) -> RepResult,
    stop: impl Fn() -> bool,
) -> SweepResult {
    let mut steps: Vec<SweepStep> = Vec::new();
    let mut run = async |r: f64, steps: &mut Vec<SweepStep>| -> bool {
        let s = ScenarioSpec {
            rate: sw.rate(r),
            sweep: None,
            ..spec.clone()
        };
        let mut result = step(&s).await;
        result.repetition = steps.len() as u32 + 1;
        let (achieved, why) = judge(&s, r, &result);
        let holds = why.is_none();
        steps.push(SweepStep {
            offered: r,
            achieved,
            holds,
            why,
            result,
        });
        holds
    };
    let (mut good, mut bad) = (None::<f64>, None::<f64>);
    for r in sw.steps() {
        if stop() {
            break;
        }
        if run(r, &mut steps).await {
            good = Some(r);
        } else {
            bad = Some(r);
            break;
        }
    }
    // A step that failed on errors ended on the server's doing, whatever the
    // client's state.
    let saturated = steps
        .last()
        .is_some_and(|s| s.result.client_saturated && errors(spec, &s.result).is_none());
    if let (Some(mut g), Some(mut b)) = (good, bad)
        && !saturated
    {
        for _ in 0..MAX_REFINE {
            if (b - g) <= PRECISION * g || stop() {
                break;
            }
            let mid = (g + b) / 2.0;
            if run(mid, &mut steps).await {
                g = mid;
            } else {
                b = mid;
            }
        }
        good = Some(g);
    }
    let limited_by = if saturated {
        Some(format!(
            "the client saturated at {:.0}: the path's capacity is at least the last rate that held",
            steps.last().map_or(0.0, |s| s.offered)
        ))
    } else if bad.is_none() && !steps.is_empty() && !stop() {
        Some("every step held: the capacity is above the sweep's highest rate".to_string())
    } else {
        None
    };
    SweepResult {
        sweep: sw.to_string(),
        unit: match sw.from {
            Rate::BitsPerSecond(_) => "bit/s".into(),
            _ => "1/s".into(),
        },
        knee_rate: knee(&steps),
        max_rate: good,
        steps,
        limited_by,
    }
}

/// Highest offered rate whose p99 is within [`KNEE_FACTOR`] of the lightest
/// step's p99 (only steps that kept up count).
fn knee(steps: &[SweepStep]) -> Option<f64> {
    let mut by_rate: Vec<(f64, u64)> = steps
        .iter()
        .filter(|s| s.result.status == Status::Ok && !s.result.client_saturated)
        .filter_map(|s| Some((s.offered, s.result.latency_ns.as_ref()?.p99)))
        .collect();
    by_rate.sort_by(|a, b| a.0.total_cmp(&b.0));
    let base = by_rate.first()?.1 as f64;
    by_rate
        .iter()
        .take_while(|(_, p99)| *p99 as f64 <= KNEE_FACTOR * base)
        .last()
        .map(|(r, _)| *r)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::result::fixtures::spec;
    use crate::result::{Collected, rep_result};

    /// A step whose every request failed at once, on a client that (this
    /// machine being busy) also fell behind its schedule.
    fn all_failed() -> RepResult {
        let mut r = rep_result(&spec(), 1, Collected::default());
        r.status = Status::Failed;
        r.client_saturated = true;
        r.duration_s = 1.0;
        r.error_pct = Some(100.0);
        r.client.attempts = 100;
        r.client.failed = 100;
        r.flags = vec![
            "client saturated: 5 of 100 sends left more than 5ms late on a free connection (max lag 9.00ms)".into(),
            "errors: 100.0% of 100 requests failed (http-5xx 100), above the 1% allowed".into(),
        ];
        r
    }

    #[tokio::test]
    async fn a_step_that_failed_on_errors_says_errors_not_client_saturated() {
        let sw: Sweep = "sweep(100/s..400/s, x2)".parse().unwrap();
        let r = search(&spec(), sw, async |_| all_failed(), || false).await;
        assert_eq!(r.steps.len(), 1);
        let why = r.steps[0].why.as_deref().unwrap();
        assert!(
            why.starts_with("errors: 100.0% of 100 requests failed"),
            "{why}"
        );
        assert_eq!((r.max_rate, r.limited_by), (None, None));
    }
}
