//! `cnibench soak PLAN --duration 6h --window 5m`: run the plan's scenarios
//! continuously, one window at a time, until the duration is up.
//!
//! Each window is one repetition of a scenario lasting `window` (scenarios take
//! turns; with one scenario it runs back to back, with a new connection set-up
//! and CPU baseline between windows). Memory stays bounded: a window's interval
//! reports are merged into the window's result and dropped, so a soak keeps one
//! merged histogram and a few counters per window, not every interval.
//!
//! Events are what a person watching would want to know about, with the time
//! since the soak started: an interval without progress (`stall`), a window that
//! failed or was partial (`failure`), an objective that broke (`slo`), and the
//! headline figures drifting from the first windows' reference (`drift`, then
//! `recovered`).

use crate::result::{
    EventKind, IntervalResult, RepResult, SoakEvent, SoakResult, SoakWindow, Status,
};
use cnibench_proto::plan::{Plan, ScenarioSpec};
use cnibench_proto::units::Dur;
use std::time::Duration;
use tokio::time::Instant;

/// Windows that form a scenario's reference for drift.
pub const REFERENCE_WINDOWS: usize = 3;
/// Drift: the rate fell below this share of the reference median.
pub const DRIFT_RATE: f64 = 0.9;
/// Drift: p99 rose above this multiple of the reference median ...
pub const DRIFT_P99: f64 = 1.5;
/// ... and by at least this much (scheduling noise on small latencies).
pub const DRIFT_P99_FLOOR_NS: f64 = 100_000.0;
/// A remaining time shorter than this ends the soak rather than run a stub window.
const MIN_WINDOW: Duration = Duration::from_millis(500);
/// Time from asking for a window to its traffic starting (the start lead).
const START_LEAD_S: f64 = 0.5;

/// How long and in what slices.
#[derive(Debug, Clone, Copy)]
pub struct SoakOptions {
    /// Total soak time.
    pub duration: Duration,
    /// Length of each window.
    pub window: Duration,
}

/// Reference and state of one scenario's drift detection.
#[derive(Debug, Default)]
struct Drift {
    reference: Vec<(Option<f64>, Option<f64>)>,
    drifting: bool,
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(v[v.len() / 2])
}

impl Drift {
    /// Feed an ok window's (rate, p99); returns an event text when the state changes.
    fn feed(&mut self, rate: Option<f64>, p99: Option<f64>) -> Option<(EventKind, String)> {
        if self.reference.len() < REFERENCE_WINDOWS {
            self.reference.push((rate, p99));
            return None;
        }
        let ref_rate = median(self.reference.iter().filter_map(|r| r.0).collect());
        let ref_p99 = median(self.reference.iter().filter_map(|r| r.1).collect());
        let mut why = Vec::new();
        if let (Some(r), Some(base)) = (rate, ref_rate)
            && r < DRIFT_RATE * base
        {
            why.push(format!(
                "rate {r:.0} vs reference {base:.0} ({:+.1}%)",
                (r / base - 1.0) * 100.0
            ));
        }
        if let (Some(p), Some(base)) = (p99, ref_p99)
            && p > DRIFT_P99 * base
            && p - base > DRIFT_P99_FLOOR_NS
        {
            why.push(format!(
                "p99 {} vs reference {} ({:+.0}%)",
                crate::fmt::ns(p as u64),
                crate::fmt::ns(base as u64),
                (p / base - 1.0) * 100.0
            ));
        }
        match (why.is_empty(), self.drifting) {
            (false, false) => {
                self.drifting = true;
                Some((EventKind::Drift, why.join("; ")))
            }
            (true, true) => {
                self.drifting = false;
                Some((
                    EventKind::Recovered,
                    "back within the reference band".into(),
                ))
            }
            _ => None,
        }
    }
}

/// Run the soak. `measure(i, spec, window)` runs one window of scenario `i`;
/// `stop()` says the soak was interrupted; `on_event` hears each event as it
/// happens; `checkpoint` gets the windows and the account so far after every
/// window (to be written: a soak killed in hour 5 keeps hours 1 to 4). Returns the windows of each scenario (as repetitions, their
/// intervals dropped) and the soak's account.
pub async fn run(
    plan: &Plan,
    opts: SoakOptions,
    mut measure: impl AsyncFnMut(usize, &ScenarioSpec, u32) -> RepResult,
    stop: impl Fn() -> bool,
    mut on_event: impl FnMut(&SoakEvent),
    mut checkpoint: impl FnMut(&[Vec<RepResult>], &SoakResult),
) -> (Vec<Vec<RepResult>>, SoakResult) {
    let start = Instant::now();
    let deadline = start + opts.duration;
    let n = plan.scenarios.len();
    let mut reps: Vec<Vec<RepResult>> = (0..n).map(|_| Vec::new()).collect();
    let mut drift: Vec<Drift> = (0..n).map(|_| Drift::default()).collect();
    let mut out = SoakResult {
        duration_s: opts.duration.as_secs_f64(),
        window_s: opts.window.as_secs_f64(),
        ended: "duration reached".into(),
        windows: Vec::new(),
        events: Vec::new(),
    };
    let planned = (opts.duration.as_secs_f64() / opts.window.as_secs_f64()).ceil() as u32;
    let mut turn = 0usize;
    loop {
        if stop() {
            out.ended = "interrupted".into();
            break;
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining < MIN_WINDOW {
            break;
        }
        let i = turn % n;
        turn += 1;
        let spec = &plan.scenarios[i];
        let number = reps[i].len() as u32 + 1;
        // Whole milliseconds: a clipped last window reads as `1653ms`, not in ns.
        let len = Duration::from_millis(opts.window.min(remaining).as_millis() as u64);
        let w = ScenarioSpec {
            duration: Dur(len),
            warmup: if number == 1 {
                spec.warmup
            } else {
                Dur(Duration::ZERO)
            },
            interval: Dur(spec.interval.0.min(len)),
            repetitions: planned.max(number),
            sweep: None,
            ..spec.clone()
        };
        let started_s = start.elapsed().as_secs_f64() + START_LEAD_S + w.warmup.0.as_secs_f64();
        let mut rep = measure(i, &w, number).await;
        let mut events = Vec::new();
        let mut event = |at_s: f64, kind: EventKind, detail: String| {
            events.push(SoakEvent {
                at_s,
                scenario: spec.name.clone(),
                window: number,
                kind,
                detail,
            });
        };
        // One event per run of consecutive intervals without progress.
        let stalled: Vec<&IntervalResult> = rep.intervals.iter().filter(|iv| iv.stalled).collect();
        for run in stalled.chunk_by(|a, b| b.seq == a.seq + 1) {
            let (first, last) = (run[0], run[run.len() - 1]);
            let seqs = if run.len() == 1 {
                format!("interval {}", first.seq)
            } else {
                format!("intervals {}-{}", first.seq, last.seq)
            };
            event(
                started_s + first.t_start_s,
                EventKind::Stall,
                format!(
                    "no progress for {:.1} s ({seqs})",
                    last.t_end_s - first.t_start_s
                ),
            );
        }
        if rep.status != Status::Ok {
            event(
                started_s,
                EventKind::Failure,
                format!("window {:?}: {}", rep.status, rep.flags.join("; ")),
            );
        }
        for c in rep.slo.iter().filter(|c| !c.ok) {
            event(started_s, EventKind::Slo, crate::slo::describe(c));
        }
        let rate = if spec.traffic.is_stream() {
            rep.throughput_bps
        } else {
            rep.requests_per_s
        };
        let p99 = rep.latency_ns.as_ref().map(|l| l.p99);
        if rep.status == Status::Ok
            && let Some((kind, detail)) = drift[i].feed(rate, p99.map(|p| p as f64))
        {
            event(started_s, kind, detail);
        }
        for e in events {
            on_event(&e);
            out.events.push(e);
        }
        out.windows.push(SoakWindow {
            scenario: spec.name.clone(),
            window: number,
            started_s,
            status: rep.status,
            throughput_bps: rep.throughput_bps,
            requests_per_s: rep.requests_per_s,
            p99_ns: p99,
            errors: rep.errors(),
        });
        // Roll up: the window's histogram and totals stay, its intervals go.
        rep.intervals = Vec::new();
        let failed = rep.status == Status::Failed;
        reps[i].push(rep);
        checkpoint(&reps, &out);
        if failed {
            out.ended = "window failed".into();
            break;
        }
    }
    (reps, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drift_needs_a_reference_then_reports_changes_once() {
        let mut d = Drift::default();
        for _ in 0..REFERENCE_WINDOWS {
            assert!(d.feed(Some(1000.0), Some(1e6)).is_none());
        }
        assert!(
            d.feed(Some(950.0), Some(1.2e6)).is_none(),
            "within the band"
        );
        let (kind, why) = d.feed(Some(800.0), Some(1e6)).unwrap();
        assert_eq!(kind, EventKind::Drift);
        assert!(why.contains("rate 800 vs reference 1000 (-20.0%)"), "{why}");
        assert!(d.feed(Some(800.0), Some(1e6)).is_none(), "still drifting");
        assert_eq!(
            d.feed(Some(1000.0), Some(1e6)).unwrap().0,
            EventKind::Recovered
        );
        let (_, why) = d.feed(Some(1000.0), Some(3e6)).unwrap();
        assert!(why.starts_with("p99 3.00ms vs reference 1.00ms"), "{why}");
    }

    #[test]
    fn small_latencies_do_not_drift_on_noise() {
        let mut d = Drift::default();
        for _ in 0..REFERENCE_WINDOWS {
            d.feed(None, Some(20_000.0));
        }
        // 20 us -> 60 us is 3x, but only 40 us: scheduling noise.
        assert!(d.feed(None, Some(60_000.0)).is_none());
    }
}
