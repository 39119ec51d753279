//! The result model written to `result.json` (schema in the README) and the exact
//! merge that builds it from interval reports: histograms are added bucket by
//! bucket and percentiles are read from the sum, never averaged.

use base64::Engine as _;
use cnibench_proto::clock::ClockEstimate;
use cnibench_proto::hist;
use cnibench_proto::msg::{
    Counters, CpuUsage, IntervalReport, Role, ScheduleStats, UdpStats, WorkerInfo,
};
use cnibench_proto::plan::{Plan, ScenarioSpec, Traffic};
use cnibench_proto::units::Rate;
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
    /// What a soak (`cnibench soak`) did: windows and events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soak: Option<crate::soak::SoakResult>,
    /// True when every service-level objective held (also when there are none).
    #[serde(default = "yes")]
    pub slo_ok: bool,
}

fn yes() -> bool {
    true
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

impl Status {
    /// The lower-case word, as in result.json.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Partial => "partial",
            Status::Failed => "failed",
        }
    }
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
    /// Control addresses of the client workers.
    pub client_workers: Vec<String>,
    /// Control addresses of the server workers (the client's own for a same-node
    /// path when no other worker shares its node).
    pub server_workers: Vec<String>,
    /// Each repetition (for a sweep: the step at the highest rate that held).
    pub repetitions: Vec<RepResult>,
    /// Across repetitions.
    pub summary: Summary,
    /// The steps of a rate sweep and what it found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep: Option<crate::sweep::SweepResult>,
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
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RepResult {
    /// 1-based.
    pub repetition: u32,
    /// Ok, partial or failed.
    pub status: Status,
    /// The generator could not keep its schedule: the numbers describe the client
    /// as much as the path (see `flags`).
    pub client_saturated: bool,
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
    /// Latency of completed transactions (open loop: from the intended send time
    /// whenever a request had to wait, i.e. corrected for coordinated omission).
    pub latency_ns: Option<Percentiles>,
    /// Service time (from the actual send), open loop only.
    pub service_ns: Option<Percentiles>,
    /// The merged latency histogram, HdrHistogram V2 compressed, base64.
    pub histogram: Option<String>,
    /// Datagram loss and jitter (udp kinds).
    pub udp: Option<UdpResult>,
    /// One-way delay (udp-stream), when the clocks allow it.
    pub one_way_delay: Option<OneWayDelay>,
    /// CPU cost, from the same intervals as the throughput.
    pub cpu: Option<CpuCost>,
    /// Open-loop schedule keeping over the measured intervals (client side).
    pub schedule: ScheduleStats,
    /// Client counters over the measured intervals (all client workers).
    pub client: Counters,
    /// Server counters over the measured intervals.
    pub server: Counters,
    /// Per interval, including warm-up (marked).
    pub intervals: Vec<IntervalResult>,
    /// The scenario's service-level objectives checked on this repetition.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub slo: Vec<crate::slo::SloCheck>,
}

/// One interval of one repetition, both sides merged.
#[derive(Debug, Clone, Serialize, Deserialize)]
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
    /// Transactions completed (client side).
    #[serde(default)]
    pub transactions: u64,
    /// Median latency of this interval.
    pub p50_ns: Option<u64>,
    /// 99th percentile latency of this interval.
    pub p99_ns: Option<u64>,
    /// 99th percentile service time of this interval (open loop).
    pub service_p99_ns: Option<u64>,
    /// Net datagram loss, percent (udp-stream).
    pub loss_pct: Option<f64>,
    /// RFC 3550 jitter at the end of the interval, ns (udp-stream), as iperf3 reports it.
    pub jitter_ns: Option<u64>,
    /// Node-wide busy cores in this interval (machines counted once, no baseline
    /// subtracted).
    pub node_cores: Option<f64>,
    /// Failures of any kind, both sides.
    pub errors: u64,
    /// Both sides reported and neither made progress (a stall).
    #[serde(default)]
    pub stalled: bool,
    /// This interval's client latency histogram, HdrHistogram V2 compressed, base64
    /// (what `.hlog` files are written from).
    pub histogram: Option<String>,
}

/// CPU cost of a repetition over its measured intervals, in cores (CPU seconds
/// per second).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CpuCost {
    /// Client worker processes (all client workers).
    pub client_process_cores: Option<f64>,
    /// Server worker process.
    pub server_process_cores: Option<f64>,
    /// Node-wide busy time (user, system, irq, softirq) above the idle baseline,
    /// summed over the distinct machines involved.
    pub node_cores: Option<f64>,
    /// The softirq part of it (much of the network datapath).
    pub node_softirq_cores: Option<f64>,
    /// Busy cores measured in the idle window before the traffic (subtracted).
    pub baseline_node_cores: Option<f64>,
    /// Client and server ran on one machine: node CPU covers both ends, once.
    pub shared_machine: bool,
    /// Why `node_cores` (and the normalized costs) are missing, if they are.
    pub node_unavailable: Option<String>,
    /// node_cores per Gbit/s of goodput (stream kinds).
    pub cores_per_gbps: Option<f64>,
    /// node_cores per 10k requests/s (request/response kinds).
    pub cores_per_10k_rps: Option<f64>,
    /// node_cores per 1k connections/s (crr).
    pub cores_per_1k_cps: Option<f64>,
}

fn busy_ns(u: &CpuUsage) -> Option<(u64, u64)> {
    u.node.map(|n| {
        (
            n.user_ns + n.system_ns + n.irq_ns + n.softirq_ns,
            n.softirq_ns,
        )
    })
}

/// Compute the CPU cost from the same measured intervals as the throughput.
fn cpu_cost(
    spec: &ScenarioSpec,
    c: &Collected,
    throughput_bps: Option<f64>,
    rps: Option<f64>,
    cps: Option<f64>,
) -> Option<CpuCost> {
    let cores = |ns: u64, window: u64| (window > 0).then(|| ns as f64 / window as f64);
    let process = |role: Role| -> Option<f64> {
        let per_job: Vec<f64> = c
            .jobs
            .iter()
            .filter(|j| j.role == role)
            .filter_map(JobData::process_cores)
            .collect();
        (!per_job.is_empty()).then(|| per_job.iter().sum())
    };
    // Node counters: one job per machine speaks for it.
    let mut machines: Vec<&str> = Vec::new();
    let (mut node, mut softirq, mut base) = (None::<f64>, None::<f64>, None::<f64>);
    let mut node_unavailable = None;
    for j in &c.jobs {
        let key = j.machine_key();
        if machines.contains(&key) {
            continue;
        }
        let m = j.measured_cpu();
        let window: u64 = m.iter().map(|u| u.window_ns).sum();
        let sums = m
            .iter()
            .map(busy_ns)
            .try_fold((0u64, 0u64), |(b, s), x| x.map(|(xb, xs)| (b + xb, s + xs)))
            .filter(|_| !m.is_empty());
        let Some((busy, soft)) = sums else { continue };
        let Some(busy_cores) = cores(busy, window) else {
            continue;
        };
        machines.push(key);
        let idle_busy = j
            .baseline
            .and_then(|b| busy_ns(&b).and_then(|(x, _)| cores(x, b.window_ns)))
            .unwrap_or(0.0);
        // The workers' own CPU on this machine is part of its busy time, so the
        // net cost cannot be lower; a busy or noisy baseline makes it so.
        let own: f64 = c
            .jobs
            .iter()
            .filter(|o| o.machine_key() == key)
            .filter_map(JobData::process_cores)
            .sum();
        let net = busy_cores - idle_busy;
        if idle_busy > 0.5 * f64::from(j.cpus.max(1)) || net < 0.5 * own {
            node_unavailable = Some(format!(
                "node CPU of {key}: idle baseline {idle_busy:.2} cores busy, {busy_cores:.2} during traffic, workers' own {own:.2}: something else loaded the machine, node cost not computed"
            ));
        }
        let add = |acc: &mut Option<f64>, v: f64| *acc = Some(acc.unwrap_or(0.0) + v);
        add(&mut node, net.max(0.0));
        add(&mut softirq, cores(soft, window).unwrap_or(0.0));
        add(&mut base, idle_busy);
    }
    if node_unavailable.is_some() {
        node = None;
    }
    let client_process_cores = process(Role::Client);
    let server_process_cores = process(Role::Server);
    if node.is_none() && client_process_cores.is_none() && server_process_cores.is_none() {
        return None;
    }
    let per = |unit: Option<f64>, scale: f64| match (node, unit) {
        (Some(n), Some(u)) if u > 0.0 => Some(n / (u / scale)),
        _ => None,
    };
    let stream = spec.traffic.is_stream();
    Some(CpuCost {
        client_process_cores,
        server_process_cores,
        node_cores: node,
        node_softirq_cores: softirq,
        node_unavailable,
        baseline_node_cores: base,
        shared_machine: machines.len() < c.jobs.len()
            || c.jobs.windows(2).any(|w| w[0].worker == w[1].worker),
        cores_per_gbps: per(throughput_bps.filter(|_| stream), 1e9),
        cores_per_10k_rps: per(
            rps.filter(|_| !spec.traffic.connects_per_transaction()),
            1e4,
        ),
        cores_per_1k_cps: per(cps, 1e3),
    })
}

/// Node busy cores in interval `seq`, each machine counted once.
fn interval_node_cores(c: &Collected, seq: u32) -> Option<f64> {
    let mut seen: Vec<&str> = Vec::new();
    let mut total = None;
    for j in &c.jobs {
        let key = j.machine_key();
        let Some(u) = j.reports.iter().find(|r| r.seq == seq).and_then(|r| r.cpu) else {
            continue;
        };
        if seen.contains(&key) || u.window_ns == 0 {
            continue;
        }
        if let Some((busy, _)) = busy_ns(&u) {
            seen.push(key);
            total = Some(total.unwrap_or(0.0) + busy as f64 / u.window_ns as f64);
        }
    }
    total
}

/// One-way delay of datagrams (udp-stream), corrected for the clock offset
/// between sender and receiver. Published only when the offset's error bound is
/// small next to the delay itself; otherwise `available` is false with a reason.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OneWayDelay {
    /// Whether the numbers below are trustworthy.
    pub available: bool,
    /// Why not, when they are not.
    pub reason: Option<String>,
    /// Error bound of the clock correction, ns (0 when both ends share a clock).
    pub bound_ns: Option<i64>,
    /// Median, ns.
    pub p50_ns: Option<i64>,
    /// 99th percentile, ns.
    pub p99_ns: Option<i64>,
    /// Largest, ns.
    pub max_ns: Option<i64>,
}

/// One-way delay from the receiver's transit histogram (already corrected by the
/// clock offset the coordinator gave the receiver) and that correction's bound.
fn one_way_delay(c: &Collected, transit: &Histogram<u64>, negative: u64) -> Option<OneWayDelay> {
    if transit.is_empty() && negative == 0 {
        return None;
    }
    let unavailable = |reason: String| OneWayDelay {
        available: false,
        reason: Some(reason),
        bound_ns: None,
        p50_ns: None,
        p99_ns: None,
        max_ns: None,
    };
    let server = c.jobs.iter().find(|j| j.role == Role::Server)?;
    let clients: Vec<&JobData> = c.jobs.iter().filter(|j| j.role == Role::Client).collect();
    let [client] = clients[..] else {
        return Some(unavailable("more than one sender".into()));
    };
    // The same kernel means the same clock: no correction and no error.
    let same_clock = client.machine.is_some() && client.machine == server.machine;
    let bound = if same_clock {
        0
    } else {
        match (client.clock, server.clock) {
            (Some(cc), Some(sc)) => sc.bound_ns + cc.bound_ns,
            _ => return Some(unavailable("no clock offset estimate for both ends".into())),
        }
    };
    let total = transit.len() + negative;
    if negative * 100 > total {
        return Some(unavailable(format!(
            "{negative} of {total} datagrams arrived before they were sent by the corrected clocks"
        )));
    }
    let p50 = transit.value_at_quantile(0.5) as i64;
    if bound > p50 / 10 {
        return Some(unavailable(format!(
            "clock offset bound ±{} exceeds 10% of the median delay {}",
            crate::output::fmt_ns(bound as u64),
            crate::output::fmt_ns(p50 as u64)
        )));
    }
    Some(OneWayDelay {
        available: true,
        reason: None,
        bound_ns: Some(bound),
        p50_ns: Some(p50),
        p99_ns: Some(transit.value_at_quantile(0.99) as i64),
        max_ns: Some(transit.max() as i64),
    })
}

/// Datagram accounting of a repetition.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct UdpResult {
    /// Datagrams (udp-stream) or responses (udp-rr) received.
    pub received: u64,
    /// Net datagrams lost (gaps minus late arrivals), or requests unanswered
    /// within the timeout (udp-rr).
    pub lost: u64,
    /// Late arrivals.
    pub reordered: u64,
    /// Duplicates.
    pub duplicates: u64,
    /// `lost` over expected, percent.
    pub loss_pct: Option<f64>,
    /// Median over intervals of the RFC 3550 jitter, ns.
    pub jitter_ns: Option<f64>,
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
    /// Datagram loss over repetitions, percent.
    pub loss_pct: Option<Stat>,
    /// Jitter over repetitions, ns.
    pub jitter_ns: Option<Stat>,
    /// Some repetition's generator could not keep its schedule.
    pub client_saturated: bool,
    /// Node cores above the idle baseline over repetitions.
    pub node_cores: Option<Stat>,
    /// Node cores per Gbit/s over repetitions (stream kinds).
    pub cores_per_gbps: Option<Stat>,
    /// Node cores per 10k requests/s over repetitions.
    pub cores_per_10k_rps: Option<Stat>,
    /// Node cores per 1k connections/s over repetitions (crr).
    pub cores_per_1k_cps: Option<Stat>,
    /// Failures of any kind over all repetitions.
    pub errors: u64,
}

/// What arrived from one job (one worker's side of a repetition).
#[derive(Debug)]
pub struct JobData {
    /// Client or server.
    pub role: Role,
    /// Worker address.
    pub worker: String,
    /// Interval reports, in arrival order.
    pub reports: Vec<IntervalReport>,
    /// `Done.intervals`, if the job finished.
    pub done: Option<u32>,
    /// CPU use in the idle window before the job's traffic.
    pub baseline: Option<CpuUsage>,
    /// Machine identity (kernel boot id): jobs with the same one share node CPU.
    pub machine: Option<String>,
    /// CPUs of the worker's machine.
    pub cpus: u32,
    /// The worker's clock offset to the coordinator when the repetition started.
    pub clock: Option<ClockEstimate>,
}

impl JobData {
    /// Which machine's node counters this job reads (workers without a boot id
    /// count as machines of their own).
    fn machine_key(&self) -> &str {
        self.machine.as_deref().unwrap_or(self.worker.as_str())
    }

    /// CPU samples of the measured (non-warm-up) intervals.
    fn measured_cpu(&self) -> Vec<CpuUsage> {
        self.reports
            .iter()
            .filter(|r| !r.warmup)
            .filter_map(|r| r.cpu)
            .collect()
    }

    /// Cores this worker process used over the measured intervals.
    fn process_cores(&self) -> Option<f64> {
        let m = self.measured_cpu();
        let ns: u64 = m.iter().map(|u| u.process_ns).sum::<Option<u64>>()?;
        let window: u64 = m.iter().map(|u| u.window_ns).sum();
        (window > 0).then(|| ns as f64 / window as f64)
    }
}

/// What the coordinator collected for one repetition.
#[derive(Debug, Default)]
pub struct Collected {
    /// One entry per job (the server and each client).
    pub jobs: Vec<JobData>,
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

/// One side of one interval, merged over that side's workers.
#[derive(Debug)]
struct Side {
    len_ns: u64,
    t_start_ns: u64,
    t_end_ns: u64,
    warmup: bool,
    counters: Counters,
    schedule: ScheduleStats,
    udp: Option<UdpStats>,
    latency: Histogram<u64>,
    service: Histogram<u64>,
    transit: Histogram<u64>,
}

/// Merge the reports of `role` with sequence number `seq` (exactly: counters are
/// summed, histograms added).
fn merge_side(c: &Collected, role: Role, seq: u32, flags: &mut Vec<String>) -> Option<Side> {
    let mut side: Option<Side> = None;
    for j in c.jobs.iter().filter(|j| j.role == role) {
        let Some(r) = j.reports.iter().find(|r| r.seq == seq) else {
            continue;
        };
        let s = side.get_or_insert_with(|| Side {
            len_ns: r.t_end_ns.saturating_sub(r.t_start_ns),
            t_start_ns: r.t_start_ns,
            t_end_ns: r.t_end_ns,
            warmup: r.warmup,
            counters: Counters::default(),
            schedule: ScheduleStats::default(),
            udp: None,
            latency: hist::new_latency(),
            service: hist::new_latency(),
            transit: hist::new_latency(),
        });
        s.counters.add(&r.counters);
        s.schedule.add(&r.schedule);
        if let Some(u) = &r.udp {
            s.udp.get_or_insert_with(UdpStats::default).add(u);
        }
        for (bytes, into, what) in [
            (&r.latency, &mut s.latency, "latency"),
            (&r.service, &mut s.service, "service-time"),
            (&r.transit, &mut s.transit, "transit"),
        ] {
            match hist::decode(bytes) {
                Ok(h) => {
                    let _ = into.add(&h);
                }
                Err(e) => flags.push(format!(
                    "interval {seq}: corrupt {what} histogram from {}: {e}",
                    j.worker
                )),
            }
        }
    }
    side
}

/// Net datagram loss in percent: gaps opened minus gaps later filled, over what
/// was expected.
fn loss_pct(u: &UdpStats) -> Option<f64> {
    let lost = u.lost.saturating_sub(u.reordered);
    let expected = u.received + lost;
    (expected > 0).then(|| lost as f64 * 100.0 / expected as f64)
}

/// Open-loop operations per second a client side achieved, in the unit of the
/// plan's rate (requests, datagrams or bits).
pub fn achieved_rate(spec: &ScenarioSpec, client: &Counters, d: f64) -> f64 {
    match spec.rate {
        Rate::BitsPerSecond(_) => client.bytes_sent as f64 * 8.0 / d,
        _ if spec.traffic == Traffic::UdpStream => {
            client.bytes_sent as f64 / spec.message_size.0 as f64 / d
        }
        _ => client.transactions as f64 / d,
    }
}

/// Build one repetition's result from what was collected.
pub fn rep_result(spec: &ScenarioSpec, repetition: u32, mut c: Collected) -> RepResult {
    let mut flags = c.failures.clone();
    let mut incomplete = !c.failures.is_empty();
    let expected = spec.interval_count();
    for j in &mut c.jobs {
        j.reports.sort_by_key(|r| r.seq);
        j.reports.dedup_by_key(|r| r.seq);
        let got = j.reports.len() as u32;
        let side = if j.role == Role::Client {
            "client"
        } else {
            "server"
        };
        if got < expected {
            incomplete = true;
            flags.push(format!(
                "{side} {}: {} of {expected} intervals missing",
                j.worker,
                expected - got
            ));
        }
        if let Some(n) = j.done
            && n != got
        {
            incomplete = true;
            flags.push(format!(
                "{side} {}: reported {n} intervals, {got} arrived",
                j.worker
            ));
        }
    }
    let corrupt_before = flags.len();
    let mut lat_all = hist::new_latency();
    let mut svc_all = hist::new_latency();
    let mut transit_all = hist::new_latency();
    let mut negative = 0u64;
    let (mut client, mut server) = (Counters::default(), Counters::default());
    let mut schedule = ScheduleStats::default();
    let mut udp: Option<UdpStats> = None;
    let mut jitters = Vec::new();
    let mut duration_ns = 0u64;
    let mut intervals = Vec::new();
    let has_servers = c.jobs.iter().any(|j| j.role == Role::Server);
    for seq in 0..expected {
        let cl = merge_side(&c, Role::Client, seq, &mut flags);
        let sv = merge_side(&c, Role::Server, seq, &mut flags);
        let Some(base) = cl.as_ref().or(sv.as_ref()) else {
            continue;
        };
        let len_ns = base.len_ns;
        let received = cl.as_ref().map_or(0, |r| r.counters.bytes_received)
            + sv.as_ref().map_or(0, |r| r.counters.bytes_received);
        let transactions = cl.as_ref().map_or(0, |r| r.counters.transactions);
        let errors = cl.as_ref().map_or(0, |r| r.counters.error_total())
            + sv.as_ref().map_or(0, |r| r.counters.error_total());
        let per_s = |x: u64| (len_ns > 0).then(|| x as f64 / secs(len_ns));
        let empty = hist::new_latency();
        let lat = cl.as_ref().map_or(&empty, |r| &r.latency);
        let svc = cl.as_ref().map_or(&empty, |r| &r.service);
        let iv_udp = sv.as_ref().and_then(|r| r.udp);
        let mut stalled = false;
        if !base.warmup {
            let progress = if spec.traffic.is_stream() {
                received
            } else {
                transactions
            };
            // Only both sides' reports can show a stall (the client's alone
            // against an external server); a missing side is reported as
            // missing, not as zero progress.
            if progress == 0 && cl.is_some() && (sv.is_some() || !has_servers) {
                flags.push(format!("interval {seq}: no progress (stall)"));
                stalled = true;
            }
            if let Some(r) = &cl {
                client.add(&r.counters);
                schedule.add(&r.schedule);
                duration_ns += len_ns;
            }
            if let Some(r) = &sv {
                server.add(&r.counters);
                let _ = transit_all.add(&r.transit);
            }
            if let Some(u) = iv_udp {
                negative += u.transit_negative;
                udp.get_or_insert_with(UdpStats::default).add(&u);
                jitters.extend(u.jitter_ns);
            }
            let _ = lat_all.add(lat);
            let _ = svc_all.add(svc);
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
                cl.as_ref().and(per_s(transactions))
            },
            transactions,
            p50_ns: (!lat.is_empty()).then(|| lat.value_at_quantile(0.5)),
            p99_ns: (!lat.is_empty()).then(|| lat.value_at_quantile(0.99)),
            service_p99_ns: (!svc.is_empty()).then(|| svc.value_at_quantile(0.99)),
            loss_pct: iv_udp.as_ref().and_then(loss_pct),
            jitter_ns: iv_udp.and_then(|u| u.jitter_ns),
            node_cores: interval_node_cores(&c, seq),
            errors,
            stalled,
            histogram: encode_b64(lat),
        });
    }
    incomplete |= flags.len() > corrupt_before
        && flags[corrupt_before..]
            .iter()
            .any(|f| f.contains("corrupt"));
    let measured_any = duration_ns > 0;
    let both_sides = c
        .jobs
        .iter()
        .any(|j| j.role == Role::Client && !j.reports.is_empty())
        && c.jobs
            .iter()
            .any(|j| j.role == Role::Server && !j.reports.is_empty());
    let d = secs(duration_ns);
    let rate = |x: u64| measured_any.then(|| x as f64 / d);

    // Validity: did the generator keep its schedule?
    let mut client_saturated = false;
    if schedule.intended > 0 && schedule.late * 100 > schedule.intended {
        client_saturated = true;
        flags.push(format!(
            "client saturated: {} of {} sends left more than 5ms late on a free connection (max lag {})",
            schedule.late,
            schedule.intended,
            crate::output::fmt_ns(schedule.max_lag_ns)
        ));
    }
    let target = match spec.rate {
        Rate::Max => None,
        Rate::PerSecond(r) | Rate::BitsPerSecond(r) => Some(r),
    };
    if let Some(target) = target.filter(|_| measured_any) {
        let achieved = achieved_rate(spec, &client, d);
        if achieved < 0.95 * target {
            let queued = schedule.queued as f64 / schedule.intended.max(1) as f64;
            if queued > 0.05 {
                flags.push(format!(
                    "below target rate: {achieved:.0} of {target:.0}/s; {:.0}% of sends waited for the previous one (the server or network is the bottleneck)",
                    queued * 100.0
                ));
            } else if !client_saturated {
                client_saturated = true;
                flags.push(format!(
                    "client saturated: achieved {achieved:.0} of {target:.0}/s"
                ));
            }
        }
    }
    let status = if !measured_any {
        Status::Failed
    } else if incomplete {
        Status::Partial
    } else {
        Status::Ok
    };
    let udp = match (udp, spec.traffic) {
        (Some(u), _) => Some(UdpResult {
            received: u.received,
            lost: u.lost.saturating_sub(u.reordered),
            reordered: u.reordered,
            duplicates: u.duplicates,
            loss_pct: loss_pct(&u),
            jitter_ns: Stat::of(jitters.iter().map(|j| Some(*j as f64))).map(|s| s.median),
        }),
        (None, Traffic::UdpRr) if measured_any => {
            let lost = client.errors.get("lost").copied().unwrap_or(0);
            let total = client.transactions + lost;
            Some(UdpResult {
                received: client.transactions,
                lost,
                reordered: 0,
                duplicates: 0,
                loss_pct: (total > 0).then(|| lost as f64 * 100.0 / total as f64),
                jitter_ns: None,
            })
        }
        _ => None,
    };
    let throughput_bps = both_sides
        .then(|| rate((client.bytes_received + server.bytes_received) * 8))
        .flatten();
    let requests_per_s = if spec.traffic.is_stream() {
        None
    } else {
        rate(client.transactions)
    };
    let connections_per_s = if spec.traffic.connects_per_transaction() {
        rate(client.connections)
    } else {
        None
    };
    let cpu = cpu_cost(spec, &c, throughput_bps, requests_per_s, connections_per_s);
    if let Some(why) = cpu.as_ref().and_then(|x| x.node_unavailable.clone()) {
        flags.push(why);
    }
    // Closed loop has no schedule to fall behind; a client worker using (nearly)
    // all the CPUs it may use (its machine's, or its `threads`) is the sign there.
    if let Some(cores) = cpu.as_ref().and_then(|x| x.client_process_cores) {
        let usable = |j: &JobData| j.cpus.max(1).min(spec.threads.unwrap_or(u32::MAX));
        let cpus: u32 = c
            .jobs
            .iter()
            .filter(|j| j.role == Role::Client)
            .map(usable)
            .sum();
        if cores >= 0.9 * f64::from(cpus) && !client_saturated {
            client_saturated = true;
            let what = if spec.threads.is_some() {
                "threads"
            } else {
                "CPUs"
            };
            flags.push(format!(
                "client saturated: client workers used {cores:.2} of {cpus} {what}"
            ));
        }
    }
    let mut r = RepResult {
        repetition,
        status,
        client_saturated,
        flags,
        duration_s: d,
        throughput_bps,
        requests_per_s,
        connections_per_s,
        latency_ns: Percentiles::of(&lat_all),
        service_ns: Percentiles::of(&svc_all),
        histogram: encode_b64(&lat_all),
        udp,
        one_way_delay: one_way_delay(&c, &transit_all, negative),
        cpu,
        schedule,
        client,
        server,
        intervals,
        slo: Vec::new(),
    };
    r.slo = crate::slo::check(&spec.slo, &r);
    r
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
        loss_pct: Stat::of(reps.iter().map(|r| r.udp.as_ref().and_then(|u| u.loss_pct))),
        jitter_ns: Stat::of(
            reps.iter()
                .map(|r| r.udp.as_ref().and_then(|u| u.jitter_ns)),
        ),
        client_saturated: reps.iter().any(|r| r.client_saturated),
        node_cores: Stat::of(
            reps.iter()
                .map(|r| r.cpu.as_ref().and_then(|c| c.node_cores)),
        ),
        cores_per_gbps: Stat::of(
            reps.iter()
                .map(|r| r.cpu.as_ref().and_then(|c| c.cores_per_gbps)),
        ),
        cores_per_10k_rps: Stat::of(
            reps.iter()
                .map(|r| r.cpu.as_ref().and_then(|c| c.cores_per_10k_rps)),
        ),
        cores_per_1k_cps: Stat::of(
            reps.iter()
                .map(|r| r.cpu.as_ref().and_then(|c| c.cores_per_1k_cps)),
        ),
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
            service: Vec::new(),
            transit: Vec::new(),
            counters: Counters {
                transactions: values.len() as u64,
                bytes_received: values.len() as u64,
                ..Default::default()
            },
            schedule: ScheduleStats::default(),
            udp: None,
            cpu: None,
        }
    }

    fn job(role: Role, reports: Vec<IntervalReport>, done: Option<u32>) -> JobData {
        JobData {
            role,
            worker: format!("{role:?}"),
            reports,
            done,
            baseline: None,
            machine: None,
            cpus: 2,
            clock: None,
        }
    }

    #[test]
    fn one_way_delay_needs_a_good_clock() {
        let mut h = hist::new_latency();
        for _ in 0..100 {
            hist::record(&mut h, 50_000);
        }
        let clock = |offset_ns, bound_ns| {
            Some(ClockEstimate {
                offset_ns,
                bound_ns,
                rtt_ns: 2 * bound_ns,
                samples: 10,
            })
        };
        let mut c = Collected {
            jobs: vec![
                job(Role::Client, vec![], None),
                job(Role::Server, vec![], None),
            ],
            failures: vec![],
        };
        c.jobs[0].clock = clock(0, 2_000);
        c.jobs[1].clock = clock(1_000_000, 2_000);
        let d = one_way_delay(&c, &h, 0).unwrap();
        assert!(d.available, "{d:?}");
        assert_eq!(d.bound_ns, Some(4_000));
        assert!((d.p50_ns.unwrap() - 50_000).abs() < 100, "{d:?}");
        // A loose bound makes it unavailable, never a made-up (or negative) number.
        c.jobs[1].clock = clock(1_000_000, 40_000);
        let d = one_way_delay(&c, &h, 0).unwrap();
        assert!(!d.available && d.p50_ns.is_none(), "{d:?}");
        c.jobs[1].clock = clock(1_000_000, 10);
        assert!(
            !one_way_delay(&c, &h, 50).unwrap().available,
            "negative transits"
        );
        // Same machine: same clock, exact.
        c.jobs[0].machine = Some("boot".into());
        c.jobs[1].machine = Some("boot".into());
        let d = one_way_delay(&c, &h, 0).unwrap();
        assert_eq!((d.available, d.bound_ns), (true, Some(0)));
    }

    #[test]
    fn merge_is_exact_not_averaged() {
        // Interval 1: 99 fast samples; interval 2: 1 slow sample. Averaging the
        // per-interval p99s would give ~5ms; the exact merged p99 is the fast value.
        let fast = vec![100_000u64; 99];
        let c = Collected {
            jobs: vec![
                job(
                    Role::Client,
                    vec![
                        report(0, &[1], true),
                        report(1, &fast, false),
                        report(2, &[10_000_000], false),
                    ],
                    Some(3),
                ),
                job(
                    Role::Server,
                    vec![
                        report(0, &[], true),
                        report(1, &[], false),
                        report(2, &[], false),
                    ],
                    Some(3),
                ),
            ],
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
        assert!(!r.client_saturated);
    }

    #[test]
    fn several_clients_merge_per_interval() {
        let a = vec![
            report(0, &[], true),
            report(1, &[1_000; 10], false),
            report(2, &[1_000; 10], false),
        ];
        let b = vec![
            report(0, &[], true),
            report(1, &[9_000; 10], false),
            report(2, &[9_000; 10], false),
        ];
        let s = vec![
            report(0, &[], true),
            report(1, &[], false),
            report(2, &[], false),
        ];
        let c = Collected {
            jobs: vec![
                job(Role::Client, a, Some(3)),
                job(Role::Client, b, Some(3)),
                job(Role::Server, s, Some(3)),
            ],
            failures: vec![],
        };
        let r = rep_result(&spec(), 1, c);
        assert_eq!(r.status, Status::Ok, "{:?}", r.flags);
        assert_eq!(r.client.transactions, 40);
        // 40 transactions over 2 s of measured time, not 4 s.
        assert_eq!(r.requests_per_s, Some(20.0));
        let p = r.latency_ns.unwrap();
        assert_eq!(p.count, 40);
        assert!(p.p50 < 1_100 && p.max >= 8_990, "{p:?}");
    }

    #[test]
    fn missing_interval_is_partial_and_stall_is_flagged() {
        let c = Collected {
            jobs: vec![
                job(
                    Role::Client,
                    vec![report(0, &[1], true), report(1, &[], false)],
                    None,
                ),
                job(
                    Role::Server,
                    vec![
                        report(0, &[], true),
                        report(1, &[], false),
                        report(2, &[], false),
                    ],
                    Some(3),
                ),
            ],
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
    fn generator_lag_is_saturation_queueing_is_not() {
        let mut sp = spec();
        sp.rate = Rate::PerSecond(100.0);
        let run = |late: u64, queued: u64, per_interval: usize| {
            let mut c = vec![report(0, &[], true)];
            for seq in 1..3 {
                let mut r = report(seq, &vec![1_000; per_interval], false);
                r.schedule = ScheduleStats {
                    intended: 100,
                    queued,
                    late,
                    max_lag_ns: 0,
                };
                c.push(r);
            }
            let s = (0..3).map(|q| report(q, &[], q == 0)).collect();
            rep_result(
                &sp,
                1,
                Collected {
                    jobs: vec![job(Role::Client, c, Some(3)), job(Role::Server, s, Some(3))],
                    failures: vec![],
                },
            )
        };
        assert!(!run(0, 0, 100).client_saturated);
        let lagging = run(10, 0, 100);
        assert!(lagging.client_saturated, "{:?}", lagging.flags);
        // Half the target rate while requests queue behind a slow server: a finding
        // about the server, not about the generator.
        let slow = run(0, 80, 50);
        assert!(!slow.client_saturated, "{:?}", slow.flags);
        assert!(
            slow.flags.iter().any(|f| f.contains("below target rate")),
            "{:?}",
            slow.flags
        );
        assert_eq!(slow.status, Status::Ok);
        // Half the rate with free connections and no lag: the generator could not.
        assert!(run(0, 0, 50).client_saturated);
    }

    #[test]
    fn stat_median() {
        let s = Stat::of([Some(3.0), None, Some(1.0), Some(2.0), Some(f64::NAN)]).unwrap();
        assert_eq!((s.median, s.min, s.max, s.n), (2.0, 1.0, 3.0, 3));
        assert!(Stat::of([None]).is_none());
    }
}
