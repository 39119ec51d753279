//! The result model written to `result.json` (schema in the README) and the exact
//! merge that builds it from interval reports: histograms are added bucket by
//! bucket and percentiles are read from the sum, never averaged.

use base64::Engine as _;
use cnibench_proto::clock::ClockEstimate;
use cnibench_proto::hist;
use cnibench_proto::msg::{Counters, IntervalReport, WorkerInfo};
use cnibench_proto::plan::{Plan, ScenarioSpec};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Bumped on incompatible changes to `result.json`.
pub const SCHEMA_VERSION: u32 = 1;

/// Everything one `cnibench run` produced.
#[derive(Debug, Serialize, Deserialize)]
pub struct RunResult {
    /// `result.json` schema version.
    pub schema_version: u32,
    /// Tool name and version.
    pub tool: String,
    /// Unique id of this run.
    pub run_id: String,
    /// Plan file as given.
    pub plan_file: String,
    /// Run start, unix ns (coordinator clock).
    pub started_at_unix_ns: i64,
    /// Run end, unix ns.
    pub finished_at_unix_ns: i64,
    /// The validated plan, defaults applied.
    pub plan: Plan,
    /// Where it ran.
    pub environment: Environment,
    /// One entry per scenario, in plan order.
    pub scenarios: Vec<ScenarioResult>,
    /// True when every repetition of every scenario is `ok`.
    pub ok: bool,
}

/// Coordinator and workers.
#[derive(Debug, Serialize, Deserialize)]
pub struct Environment {
    /// The machine the coordinator ran on.
    pub coordinator: Machine,
    /// Every worker, in `--workers` order.
    pub workers: Vec<WorkerEnv>,
}

/// A machine description.
#[derive(Debug, Serialize, Deserialize)]
pub struct Machine {
    /// Host name.
    pub host: String,
    /// Kernel release.
    pub kernel: String,
    /// CPU model.
    pub cpu_model: String,
    /// CPUs.
    pub cpus: u32,
}

/// One worker as it reported itself, plus its clock offset.
#[derive(Debug, Serialize, Deserialize)]
pub struct WorkerEnv {
    /// Address as given.
    pub addr: String,
    /// Its `Hello`.
    #[serde(flatten)]
    pub info: WorkerInfo,
    /// Worker clock minus coordinator clock, with error bound.
    pub clock: Option<ClockEstimate>,
}

/// Outcome of one repetition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Complete and trustworthy.
    Ok,
    /// Some intervals or one side are missing: numbers cover what was measured.
    Partial,
    /// Nothing usable was measured.
    Failed,
}

/// One scenario across its repetitions.
#[derive(Debug, Serialize, Deserialize)]
pub struct ScenarioResult {
    /// Scenario name.
    pub name: String,
    /// Traffic kind.
    pub traffic: String,
    /// Path.
    pub path: String,
    /// CNI / datapath label.
    pub cni: String,
    /// Node of the client worker.
    pub client_node: String,
    /// Node of the server worker.
    pub server_node: String,
    /// Control address of the client worker.
    pub client_worker: String,
    /// Control address of the server worker (the client's own for a same-node
    /// path when no other worker shares its node).
    pub server_worker: String,
    /// Each repetition.
    pub repetitions: Vec<RepResult>,
    /// Across repetitions.
    pub summary: Summary,
}

/// Latency distribution read from a merged histogram, ns.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Percentiles {
    /// Samples.
    pub count: u64,
    /// Smallest.
    pub min: u64,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest.
    pub max: u64,
}

impl Percentiles {
    /// Read from a histogram; `None` when it holds no samples.
    pub fn of(h: &Histogram<u64>) -> Option<Percentiles> {
        (!h.is_empty()).then(|| Percentiles {
            count: h.len(),
            min: h.min(),
            mean: h.mean(),
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        })
    }
}

/// One repetition of one scenario.
#[derive(Debug, Serialize, Deserialize)]
pub struct RepResult {
    /// 1-based.
    pub repetition: u32,
    /// Ok, partial or failed.
    pub status: Status,
    /// Why the numbers may not be what they seem (missing intervals, stalls, failures).
    pub flags: Vec<String>,
    /// Measured time (client intervals after warm-up), seconds.
    pub duration_s: f64,
    /// Goodput counted at the receivers, bit/s.
    pub throughput_bps: Option<f64>,
    /// Completed transactions per second (request/response kinds).
    pub requests_per_s: Option<f64>,
    /// New connections per second at the client.
    pub connections_per_s: Option<f64>,
    /// Latency of completed transactions.
    pub latency_ns: Option<Percentiles>,
    /// The merged latency histogram, HdrHistogram V2 compressed, base64.
    pub histogram: Option<String>,
    /// Client counters over the measured intervals.
    pub client: Counters,
    /// Server counters over the measured intervals.
    pub server: Counters,
    /// Per interval, including warm-up (marked).
    pub intervals: Vec<IntervalResult>,
}

/// One interval of one repetition, both sides merged.
#[derive(Debug, Serialize, Deserialize)]
pub struct IntervalResult {
    /// Interval number.
    pub seq: u32,
    /// Warm-up interval (excluded from totals).
    pub warmup: bool,
    /// Start, seconds since the repetition's start (client clock).
    pub t_start_s: f64,
    /// End, seconds.
    pub t_end_s: f64,
    /// Goodput at the receivers, bit/s.
    pub throughput_bps: Option<f64>,
    /// Transactions per second.
    pub requests_per_s: Option<f64>,
    /// Median latency of this interval.
    pub p50_ns: Option<u64>,
    /// 99th percentile latency of this interval.
    pub p99_ns: Option<u64>,
    /// Failures of any kind, both sides.
    pub errors: u64,
    /// This interval's client latency histogram, HdrHistogram V2 compressed, base64
    /// (what `.hlog` files are written from).
    pub histogram: Option<String>,
}

/// Median and spread over repetitions.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Stat {
    /// Median.
    pub median: f64,
    /// Smallest.
    pub min: f64,
    /// Largest.
    pub max: f64,
    /// Values counted.
    pub n: usize,
}

impl Stat {
    /// Over the values present; `None` when there are none.
    pub fn of(values: impl IntoIterator<Item = Option<f64>>) -> Option<Stat> {
        let mut v: Vec<f64> = values
            .into_iter()
            .flatten()
            .filter(|x| x.is_finite())
            .collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Some(Stat {
            median,
            min: v[0],
            max: v[n - 1],
            n,
        })
    }
}

/// A scenario across repetitions.
#[derive(Debug, Serialize, Deserialize)]
pub struct Summary {
    /// Worst status of any repetition.
    pub status: Status,
    /// Goodput over repetitions that measured anything.
    pub throughput_bps: Option<Stat>,
    /// Transactions per second.
    pub requests_per_s: Option<Stat>,
    /// Connections per second.
    pub connections_per_s: Option<Stat>,
    /// Latency of all repetitions' histograms merged.
    pub latency_ns: Option<Percentiles>,
    /// Failures of any kind over all repetitions.
    pub errors: u64,
}

/// What the coordinator collected for one repetition.
#[derive(Debug, Default)]
pub struct Collected {
    /// Client interval reports.
    pub client: Vec<IntervalReport>,
    /// Server interval reports.
    pub server: Vec<IntervalReport>,
    /// `Done.intervals` from the client, if it finished.
    pub client_done: Option<u32>,
    /// `Done.intervals` from the server, if it finished.
    pub server_done: Option<u32>,
    /// Failures (worker `Failed`, lost connections, timeouts), in order.
    pub failures: Vec<String>,
}

/// Base64 of the V2 compressed encoding; `None` for an empty histogram.
pub fn encode_b64(h: &Histogram<u64>) -> Option<String> {
    (!h.is_empty()).then(|| base64::engine::general_purpose::STANDARD.encode(hist::encode(h)))
}

/// Inverse of [`encode_b64`].
pub fn decode_b64(s: &str) -> Option<Histogram<u64>> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(s).ok()?;
    hist::decode(&bytes).ok()
}

fn secs(ns: u64) -> f64 {
    ns as f64 / 1e9
}

/// Build one repetition's result from what was collected.
pub fn rep_result(spec: &ScenarioSpec, repetition: u32, mut c: Collected) -> RepResult {
    let mut flags = c.failures.clone();
    let expected = spec.interval_count();
    for (side, reports, done) in [
        ("client", &mut c.client, c.client_done),
        ("server", &mut c.server, c.server_done),
    ] {
        reports.sort_by_key(|r| r.seq);
        reports.dedup_by_key(|r| r.seq);
        let got = reports.len() as u32;
        if got < expected {
            flags.push(format!(
                "{side}: {} of {expected} intervals missing",
                expected - got
            ));
        }
        if let Some(n) = done
            && n != got
        {
            flags.push(format!("{side}: reported {n} intervals, {got} arrived"));
        }
    }
    let mut hist_all = hist::new_latency();
    let (mut client, mut server) = (Counters::default(), Counters::default());
    let mut duration_ns = 0u64;
    let mut intervals = Vec::new();
    for seq in 0..expected {
        let cl = c.client.iter().find(|r| r.seq == seq);
        let sv = c.server.iter().find(|r| r.seq == seq);
        let Some(base) = cl.or(sv) else { continue };
        let h = match cl.map(|r| hist::decode(&r.latency)).transpose() {
            Ok(h) => h.unwrap_or_else(hist::new_latency),
            Err(e) => {
                flags.push(format!("interval {seq}: corrupt histogram: {e}"));
                hist::new_latency()
            }
        };
        let len_ns = base.t_end_ns.saturating_sub(base.t_start_ns);
        let received = cl.map_or(0, |r| r.counters.bytes_received)
            + sv.map_or(0, |r| r.counters.bytes_received);
        let transactions = cl.map_or(0, |r| r.counters.transactions);
        let errors =
            cl.map_or(0, |r| r.counters.error_total()) + sv.map_or(0, |r| r.counters.error_total());
        let per_s = |x: u64| (len_ns > 0).then(|| x as f64 / secs(len_ns));
        let measured = !base.warmup;
        if measured {
            let progress = if spec.traffic.is_stream() {
                received
            } else {
                transactions
            };
            if progress == 0 {
                flags.push(format!("interval {seq}: no progress (stall)"));
            }
            if let Some(r) = cl {
                client.add(&r.counters);
                duration_ns += len_ns;
            }
            if let Some(r) = sv {
                server.add(&r.counters);
            }
            let _ = hist_all.add(&h);
        }
        intervals.push(IntervalResult {
            seq,
            warmup: base.warmup,
            t_start_s: secs(base.t_start_ns),
            t_end_s: secs(base.t_end_ns),
            throughput_bps: (cl.is_some() && sv.is_some())
                .then(|| per_s(received * 8))
                .flatten(),
            requests_per_s: if spec.traffic.is_stream() {
                None
            } else {
                cl.and(per_s(transactions))
            },
            p50_ns: (!h.is_empty()).then(|| h.value_at_quantile(0.5)),
            p99_ns: (!h.is_empty()).then(|| h.value_at_quantile(0.99)),
            errors,
            histogram: encode_b64(&h),
        });
    }
    let measured_any = duration_ns > 0;
    let both_sides = !c.client.is_empty() && !c.server.is_empty();
    let status = if !measured_any {
        Status::Failed
    } else if flags.iter().any(|f| !f.contains("(stall)")) {
        Status::Partial
    } else {
        Status::Ok
    };
    let d = secs(duration_ns);
    let rate = |x: u64| (measured_any).then(|| x as f64 / d);
    RepResult {
        repetition,
        status,
        flags,
        duration_s: d,
        throughput_bps: both_sides
            .then(|| rate((client.bytes_received + server.bytes_received) * 8))
            .flatten(),
        requests_per_s: if spec.traffic.is_stream() {
            None
        } else {
            rate(client.transactions)
        },
        connections_per_s: if spec.traffic.connects_per_transaction() {
            rate(client.connections)
        } else {
            None
        },
        latency_ns: Percentiles::of(&hist_all),
        histogram: encode_b64(&hist_all),
        client,
        server,
        intervals,
    }
}

/// Summarize repetitions; latency is the merge of every repetition's histogram.
pub fn summarize(reps: &[RepResult]) -> Summary {
    let mut all = hist::new_latency();
    for r in reps {
        if let Some(h) = r.histogram.as_deref().and_then(decode_b64) {
            let _ = all.add(&h);
        }
    }
    let worst = reps
        .iter()
        .map(|r| r.status)
        .max_by_key(|s| match s {
            Status::Ok => 0,
            Status::Partial => 1,
            Status::Failed => 2,
        })
        .unwrap_or(Status::Failed);
    Summary {
        status: worst,
        throughput_bps: Stat::of(reps.iter().map(|r| r.throughput_bps)),
        requests_per_s: Stat::of(reps.iter().map(|r| r.requests_per_s)),
        connections_per_s: Stat::of(reps.iter().map(|r| r.connections_per_s)),
        latency_ns: Percentiles::of(&all),
        errors: reps
            .iter()
            .map(|r| r.client.error_total() + r.server.error_total())
            .sum(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cnibench_proto::plan;

    fn spec() -> ScenarioSpec {
        plan::load(
            "t.yaml",
            "name: t\ndefaults: {duration: 2s, warmup: 1s, interval: 1s}\nscenarios:\n  - {name: s, traffic: tcp-rr, path: pod-to-pod-cross-node}\n",
        )
        .unwrap()
        .scenarios
        .remove(0)
    }

    fn report(seq: u32, values: &[u64], warmup: bool) -> IntervalReport {
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
            counters: Counters {
                transactions: values.len() as u64,
                bytes_received: values.len() as u64,
                ..Default::default()
            },
        }
    }

    #[test]
    fn merge_is_exact_not_averaged() {
        // Interval 1: 99 fast samples; interval 2: 1 slow sample. Averaging the
        // per-interval p99s would give ~5ms; the exact merged p99 is the fast value.
        let fast = vec![100_000u64; 99];
        let c = Collected {
            client: vec![
                report(0, &[1], true),
                report(1, &fast, false),
                report(2, &[10_000_000], false),
            ],
            server: vec![
                report(0, &[], true),
                report(1, &[], false),
                report(2, &[], false),
            ],
            client_done: Some(3),
            server_done: Some(3),
            failures: vec![],
        };
        let r = rep_result(&spec(), 1, c);
        assert_eq!(r.status, Status::Ok, "{:?}", r.flags);
        let p = r.latency_ns.unwrap();
        assert_eq!(p.count, 100, "warm-up sample excluded");
        assert!((99_000..=101_000).contains(&p.p99), "{}", p.p99);
        assert!(p.max >= 9_990_000);
        assert_eq!(r.requests_per_s, Some(50.0));
        assert_eq!(r.intervals.len(), 3);
    }

    #[test]
    fn missing_interval_is_partial_and_stall_is_flagged() {
        let c = Collected {
            client: vec![report(0, &[1], true), report(1, &[], false)],
            server: vec![
                report(0, &[], true),
                report(1, &[], false),
                report(2, &[], false),
            ],
            client_done: None,
            server_done: Some(3),
            failures: vec!["worker lost".into()],
        };
        let r = rep_result(&spec(), 1, c);
        assert_eq!(r.status, Status::Partial);
        assert!(
            r.flags
                .iter()
                .any(|f| f.contains("1 of 3 intervals missing")),
            "{:?}",
            r.flags
        );
        assert!(r.flags.iter().any(|f| f.contains("stall")), "{:?}", r.flags);
        // Nothing measured is reported as absent, not as zero.
        assert!(r.latency_ns.is_none());
        let empty = rep_result(&spec(), 2, Collected::default());
        assert_eq!(empty.status, Status::Failed);
        assert_eq!(empty.requests_per_s, None);
        assert_eq!(summarize(&[r, empty]).status, Status::Failed);
    }

    #[test]
    fn stat_median() {
        let s = Stat::of([Some(3.0), None, Some(1.0), Some(2.0), Some(f64::NAN)]).unwrap();
        assert_eq!((s.median, s.min, s.max, s.n), (2.0, 1.0, 3.0, 3));
        assert!(Stat::of([None]).is_none());
    }
}
