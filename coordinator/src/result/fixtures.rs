//! Inputs of the merge for unit tests: a scenario, interval reports and jobs.
#![allow(clippy::unwrap_used)]

use super::merge::JobData;
use cnibench_proto::hist;
use cnibench_proto::msg::{Counters, IntervalReport, Role, ScheduleStats};
use cnibench_proto::plan::{self, ScenarioSpec};

/// A tcp-rr scenario of 1 s warm-up and 2 s measured, in 1 s intervals.
pub(crate) fn spec() -> ScenarioSpec {
    plan::load(
        "t.yaml",
        "name: t\ndefaults: {duration: 2s, warmup: 1s, interval: 1s}\nscenarios:\n  - {name: s, traffic: tcp-rr, path: pod-to-pod-cross-node}\n",
    )
    .unwrap()
    .scenarios
    .remove(0)
}

/// Interval `seq` of one second with `values` as latency samples, one
/// request sent and completed and one received byte each.
pub(crate) fn report(seq: u32, values: &[u64], warmup: bool) -> IntervalReport {
    let mut h = hist::new_latency();
    for v in values {
        hist::record(&mut h, *v);
    }
    IntervalReport {
        job: 1,
        seq,
        warmup,
        t_start_ns: u64::from(seq) * 1_000_000_000,
        t_end_ns: u64::from(seq + 1) * 1_000_000_000,
        latency: hist::encode(&h),
        service: Vec::new(),
        transit: Vec::new(),
        send_lag: Vec::new(),
        counters: Counters {
            transactions: values.len() as u64,
            attempts: values.len() as u64,
            bytes_received: values.len() as u64,
            ..Default::default()
        },
        schedule: ScheduleStats::default(),
        udp: None,
        cpu: None,
        health: None,
    }
}

/// A job of `role` that sent `reports` and, when `done`, said how many.
pub(crate) fn job(role: Role, reports: Vec<IntervalReport>, done: Option<u32>) -> JobData {
    JobData {
        role,
        worker: format!("{role:?}"),
        reports,
        done,
        baseline: None,
        baseline_health: None,
        machine: None,
        cpus: 2,
        clock: None,
    }
}

/// A job of `role` that reported `n` intervals without traffic (the first one
/// warm-up) and finished.
pub(crate) fn idle(role: Role, n: u32) -> JobData {
    job(
        role,
        (0..n).map(|q| report(q, &[], q == 0)).collect(),
        Some(n),
    )
}
