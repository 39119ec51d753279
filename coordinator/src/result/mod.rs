//! The result model written to `result.json` (schema in the README), and the
//! exact merge that builds it from interval reports: histograms are added bucket
//! by bucket and percentiles are read from the sum, never averaged.
//!
//! This file is the schema alone: every type `result.json` holds, including
//! what rate sweeps, soaks and objectives record (their logic lives in
//! [`crate::sweep`], [`crate::soak`] and [`crate::slo`], which build these
//! types; this module depends on none of them). The rest of the folder:
//!
//! - [`merge`]: what arrived from the workers ([`Collected`]) into one
//!   repetition ([`rep_result`]), step by step: completeness, the per-interval
//!   merge of both sides, the datagram accounting, the validity judgement (the
//!   caller then checks the objectives with [`crate::slo::check`]);
//! - `cpu`: the CPU cost of a repetition (node-wide, per machine once, and the
//!   worker processes');
//! - `delay`: one-way delay, when the clocks allow it;
//! - `health`: datapath health ([`Health`]) from the workers' kernel counters,
//!   each network namespace and machine counted once, and its flags;
//! - [`summary`]: statistics over repetitions ([`Stat`], [`Percentiles`],
//!   [`summarize`]), the one definition the reports' aggregates build on.

mod cpu;
mod delay;
mod health;
pub mod merge;
pub mod summary;

#[cfg(test)]
pub(crate) mod fixtures;

pub use health::{HEALTH_MEASURES, HealthMeasure, health_stat};
pub use merge::{
    Collected, DEFAULT_ERROR_PCT, JobData, achieved_rate, attempted_rate, live_rate, net_loss,
    rep_result,
};
pub use summary::summarize;

use base64::Engine as _;
use cnibench_proto::clock::ClockEstimate;
use cnibench_proto::hist;
use cnibench_proto::msg::{Counters, ScheduleStats, WorkerInfo};
use cnibench_proto::plan::{PathKind, Plan, Traffic};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Bumped on incompatible changes to `result.json`: 2 counts each failure
/// once (`errors`), judges status on failed requests, and reports jitter and
/// datagram loss as iperf3 does, end of run included (README, Results).
pub const SCHEMA_VERSION: u32 = 2;

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
    pub soak: Option<SoakResult>,
    /// True when every service-level objective held (also when there are none).
    #[serde(default = "yes")]
    pub slo_ok: bool,
    /// Set while the run is still going: the result is rewritten after every
    /// repetition (and soak window), so a coordinator that died (killed, out of
    /// memory) leaves what it had finished, saying how far it got. Absent in a
    /// finished run's result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incomplete: Option<String>,
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

/// Outcome of one repetition, ordered by severity: `Ok < Partial < Failed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
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

    /// The most severe of `all`; `Failed` when there is none (nothing ran).
    pub fn worst(all: impl IntoIterator<Item = Status>) -> Status {
        all.into_iter().max().unwrap_or(Status::Failed)
    }
}

/// One scenario across its repetitions.
#[derive(Debug, Serialize, Deserialize)]
pub struct ScenarioResult {
    /// Scenario name.
    pub name: String,
    /// Traffic kind.
    pub traffic: Traffic,
    /// Path.
    pub path: PathKind,
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
    pub sweep: Option<SweepResult>,
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

/// A latency percentile that result.json records: where it is in
/// [`Percentiles`] and in an [`IntervalResult`], and its names.
#[derive(Debug, Clone, Copy)]
pub struct Quantile {
    /// Its name in result.json and in `slo:`: `p50`, `p999`.
    pub name: &'static str,
    /// For people: `p50`, `p99.9`.
    pub label: &'static str,
    /// The quantile: 0.5, 0.999.
    pub q: f64,
    /// Its value in a [`Percentiles`].
    pub of: fn(&Percentiles) -> u64,
    /// Its field in an [`IntervalResult`], when the interval has one (others
    /// are read from the interval's histogram).
    interval: Option<fn(&IntervalResult) -> Option<u64>>,
}

impl Quantile {
    /// The median.
    pub const P50: Quantile = Quantile {
        name: "p50",
        label: "p50",
        q: 0.5,
        of: |p| p.p50,
        interval: Some(|i| i.p50_ns),
    };
    /// The 90th percentile.
    pub const P90: Quantile = Quantile {
        name: "p90",
        label: "p90",
        q: 0.9,
        of: |p| p.p90,
        interval: None,
    };
    /// The 99th percentile.
    pub const P99: Quantile = Quantile {
        name: "p99",
        label: "p99",
        q: 0.99,
        of: |p| p.p99,
        interval: Some(|i| i.p99_ns),
    };
    /// The 99.9th percentile.
    pub const P999: Quantile = Quantile {
        name: "p999",
        label: "p99.9",
        q: 0.999,
        of: |p| p.p999,
        interval: None,
    };
    /// Every percentile of [`Percentiles`], in order (min, mean and max apart).
    pub const ALL: [Quantile; 4] = [Quantile::P50, Quantile::P90, Quantile::P99, Quantile::P999];
}

/// One repetition of one scenario.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RepResult {
    /// 1-based.
    pub repetition: u32,
    /// When the repetition started (coordinator clock, unix ns): `compare`
    /// orders repetitions in time with it (trend per column, columns measured
    /// far apart). Absent in results written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at_unix_ns: Option<i64>,
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
    /// Failed requests over requests with an outcome (completed or failed),
    /// percent, at the clients (request/response kinds).
    #[serde(default)]
    pub error_pct: Option<f64>,
    /// Failures counted once: the clients' for request/response kinds (every
    /// request's outcome), the receivers' for stream kinds (a reset both ends
    /// see counts once). Absent in results of schema 1, which added both sides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<u64>,
    /// New connections per second at the client.
    pub connections_per_s: Option<f64>,
    /// Latency of completed transactions (open loop: from the intended send time
    /// whenever a request had to wait, i.e. corrected for coordinated omission).
    pub latency_ns: Option<Percentiles>,
    /// Service time (from the actual send), open loop only.
    pub service_ns: Option<Percentiles>,
    /// Open loop: how late the generator sent, from when it could have (the
    /// intended time, or when the connection came free if later); every send.
    #[serde(default)]
    pub send_lag_ns: Option<Percentiles>,
    /// The merged latency histogram, HdrHistogram V2 compressed, base64.
    pub histogram: Option<String>,
    /// Datagram loss and jitter (udp kinds).
    pub udp: Option<UdpResult>,
    /// One-way delay (udp-stream), when the clocks allow it.
    pub one_way_delay: Option<OneWayDelay>,
    /// CPU cost, from the same intervals as the throughput.
    pub cpu: Option<CpuCost>,
    /// Datapath health over the measured intervals, idle baseline subtracted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<Health>,
    /// Open-loop schedule keeping over the measured intervals (client side).
    pub schedule: ScheduleStats,
    /// What became of every request (request/response kinds), over the whole
    /// run.
    #[serde(default)]
    pub requests: Option<Requests>,
    /// Behind a Service (`pod-to-service`, `pod-to-nodeport`): how the
    /// connections, requests and bytes were spread over its
    /// endpoints (the server workers), one entry each; empty on other paths.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<Endpoint>,
    /// Client counters over the measured intervals (all client workers).
    pub client: Counters,
    /// Server counters over the measured intervals.
    pub server: Counters,
    /// Per interval, including warm-up (marked).
    pub intervals: Vec<IntervalResult>,
    /// The scenario's service-level objectives checked on this repetition.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub slo: Vec<SloCheck>,
}

impl RepResult {
    /// Failures counted once (see [`RepResult::errors`](#structfield.errors));
    /// both sides added for results of schema 1.
    pub fn errors(&self) -> u64 {
        self.errors
            .unwrap_or_else(|| self.client.error_total() + self.server.error_total())
    }
}

/// What became of every request of a repetition at its clients
/// (request/response kinds), over the whole run, warm-up included: a request
/// sent in one interval and answered in the next is counted once. Every
/// request sent is completed, failed or unfinished; in open loop every
/// One endpoint of a Service (a server worker): what it served over the
/// measured intervals, and its share of the connections.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Endpoint {
    /// The server worker's address.
    pub worker: String,
    /// Connections it accepted (TCP, HTTP, QUIC; 0 for UDP kinds), over the
    /// whole job, warm-up included (long-lived connections open there).
    pub connections: u64,
    /// Requests it answered (request/response kinds; 0 for streams).
    pub requests: u64,
    /// Payload bytes it received.
    pub bytes_received: u64,
    /// Its share of all endpoints' connections (0 to 1); `null` when no
    /// endpoint accepted any.
    pub share: Option<f64>,
    /// Its share of all endpoints' received bytes (0 to 1), measured
    /// intervals; `null` when none received any.
    pub bytes_share: Option<f64>,
}

/// intended one was sent or never sent (`unsent`). The merge checks that these
/// add up and flags them when they do not.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct Requests {
    /// Due by the schedule (open loop; `null` in closed loop).
    pub intended: Option<u64>,
    /// Sent.
    pub attempted: u64,
    /// Answered successfully.
    pub completed: u64,
    /// Failed: an error status, a failed connection, no answer in time.
    pub failed: u64,
    /// Of those, without an answer within `timeout` (`timeout`, `lost`).
    pub timed_out: u64,
    /// In flight when the run stopped.
    pub unfinished: u64,
    /// Due by the end but never sent: their connection was still busy.
    pub unsent: u64,
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
    /// Requests sent (client side).
    #[serde(default)]
    pub attempts: u64,
    /// Requests that failed (client side; timeouts included).
    #[serde(default)]
    pub failed: u64,
    /// Median latency of this interval.
    pub p50_ns: Option<u64>,
    /// 99th percentile latency of this interval.
    pub p99_ns: Option<u64>,
    /// 99th percentile service time of this interval (open loop).
    pub service_p99_ns: Option<u64>,
    /// 99th percentile of the generator's send lag in this interval (open loop).
    #[serde(default)]
    pub send_lag_p99_ns: Option<u64>,
    /// Largest send lag in this interval (open loop).
    #[serde(default)]
    pub send_lag_max_ns: Option<u64>,
    /// Net datagram loss, percent (udp-stream).
    pub loss_pct: Option<f64>,
    /// RFC 3550 jitter at the end of the interval, ns (udp-stream), as iperf3 reports it.
    pub jitter_ns: Option<u64>,
    /// Node-wide busy cores in this interval (machines counted once, no baseline
    /// subtracted).
    pub node_cores: Option<f64>,
    /// The busiest sending thread of the clients in this interval, in cores.
    #[serde(default)]
    pub sender_thread_cores: Option<f64>,
    /// Datapath health in this interval (no baseline subtracted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<Health>,
    /// Failures counted once: the client's for request/response kinds, the
    /// receiver's for stream kinds.
    pub errors: u64,
    /// Both sides reported and nothing happened: no bytes arrived (stream
    /// kinds), or no request was answered, successfully or not (a timeout is
    /// no answer).
    #[serde(default)]
    pub stalled: bool,
    /// This interval's client latency histogram, HdrHistogram V2 compressed, base64
    /// (what `.hlog` files are written from).
    pub histogram: Option<String>,
}

impl IntervalResult {
    /// This interval's client latency at `q`, ns: its field when it has one,
    /// else read from its histogram; `None` without samples.
    pub fn latency_ns(&self, q: Quantile) -> Option<u64> {
        if let Some(field) = q.interval {
            return field(self);
        }
        let h = decode_b64(self.histogram.as_deref()?)?;
        (!h.is_empty()).then(|| h.value_at_quantile(q.q))
    }
}

/// CPU cost of a repetition over its measured intervals, in cores (CPU seconds
/// per second).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
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
    /// The busiest sending thread of the clients (a lane thread, or a paced
    /// UDP sender), in cores: over the measured intervals, the mean of each
    /// interval's busiest. Near 1, the generator could not send faster.
    #[serde(default)]
    pub sender_thread_cores: Option<f64>,
    /// Why `node_cores` (and the normalized costs) are missing, if they are.
    pub node_unavailable: Option<String>,
    /// node_cores per Gbit/s of goodput (stream kinds).
    pub cores_per_gbps: Option<f64>,
    /// node_cores per 10k requests/s (request/response kinds).
    pub cores_per_10k_rps: Option<f64>,
    /// node_cores per 1k connections/s (crr).
    pub cores_per_1k_cps: Option<f64>,
    /// User-space time of the client worker processes (the load generator's
    /// own work), in cores.
    #[serde(default)]
    pub generator_user_cores: Option<f64>,
    /// `node_cores` less the cnibench processes' user time on those machines:
    /// the kernel's network work (softirq included), idle baseline
    /// subtracted. Unlike `node_cores` it does not grow with the generator's
    /// own cost, so CNI-to-CNI ratios of it are not diluted.
    #[serde(default)]
    pub datapath_cores: Option<f64>,
    /// datapath_cores per Gbit/s of goodput (stream kinds).
    #[serde(default)]
    pub datapath_cores_per_gbps: Option<f64>,
    /// datapath_cores per 10k requests/s (request/response kinds).
    #[serde(default)]
    pub datapath_cores_per_10k_rps: Option<f64>,
    /// datapath_cores per 1k connections/s (crr).
    #[serde(default)]
    pub datapath_cores_per_1k_cps: Option<f64>,
}

/// Datapath health from the kernel counters of the workers involved: each
/// network namespace counted once (TCP, UDP, conntrack, the data interface),
/// each machine once (softnet), the clients' own sockets apart. `null` is "not
/// available" (the kernel or namespace has no such counter), never 0.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Health {
    /// TCP segments sent (Tcp OutSegs).
    pub tcp_segments_out: Option<u64>,
    /// TCP segments retransmitted (Tcp RetransSegs).
    pub tcp_retransmits: Option<u64>,
    /// `tcp_retransmits` over `tcp_segments_out`, percent (flagged above 1%).
    pub tcp_retransmit_pct: Option<f64>,
    /// Retransmission timeouts (TcpExt TCPTimeouts).
    pub tcp_timeouts: Option<u64>,
    /// Retransmissions lost again (TCPLostRetransmit).
    pub tcp_lost_retransmits: Option<u64>,
    /// SYNs retransmitted (TCPSynRetrans).
    pub tcp_syn_retransmits: Option<u64>,
    /// Accept queue overflows (ListenOverflows).
    pub tcp_listen_overflows: Option<u64>,
    /// SYNs dropped by a listener (ListenDrops).
    pub tcp_listen_drops: Option<u64>,
    /// UDP datagrams that reached no socket (Udp InErrors).
    pub udp_in_errors: Option<u64>,
    /// Datagrams dropped by a full receive socket buffer (Udp RcvbufErrors):
    /// local drops, not path loss (flagged).
    pub udp_rcvbuf_errors: Option<u64>,
    /// Datagrams not sent for lack of send buffer (Udp SndbufErrors).
    pub udp_sndbuf_errors: Option<u64>,
    /// Conntrack entries of the fullest namespace, at its fullest.
    pub conntrack_entries: Option<u64>,
    /// Conntrack table size of that namespace.
    pub conntrack_max: Option<u64>,
    /// `conntrack_entries` over `conntrack_max`, percent (flagged above 90%).
    pub conntrack_fill_pct: Option<f64>,
    /// Conntrack insertions that failed (flagged).
    pub conntrack_insert_failed: Option<u64>,
    /// Packets conntrack dropped (flagged).
    pub conntrack_drop: Option<u64>,
    /// Entries conntrack evicted early to make room.
    pub conntrack_early_drop: Option<u64>,
    /// Packets received on the data interfaces.
    pub if_rx_packets: Option<u64>,
    /// Packets sent on the data interfaces.
    pub if_tx_packets: Option<u64>,
    /// Receive drops on the data interfaces (flagged).
    pub if_rx_dropped: Option<u64>,
    /// Send drops on the data interfaces (flagged).
    pub if_tx_dropped: Option<u64>,
    /// Receive errors on the data interfaces.
    pub if_rx_errors: Option<u64>,
    /// Send errors on the data interfaces.
    pub if_tx_errors: Option<u64>,
    /// Packets the softnet backlog dropped (flagged).
    pub softnet_dropped: Option<u64>,
    /// Times the receive softirq ran out of budget with work left.
    pub softnet_squeezed: Option<u64>,
    /// Retransmissions of the clients' own TCP connections (TCP_INFO), free of
    /// other traffic on the node.
    pub socket_retransmits: Option<u64>,
    /// Smoothed RTT of the clients' own TCP connections (TCP_INFO), µs: the
    /// mean of each interval's.
    pub socket_rtt_us: Option<f64>,
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

/// Datagram accounting of a repetition.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct UdpResult {
    /// Datagrams (udp-stream) or responses (udp-rr) received.
    pub received: u64,
    /// Net datagrams lost (gaps minus late arrivals, plus `lost_at_end`), or
    /// requests unanswered within the timeout (udp-rr).
    pub lost: u64,
    /// udp-stream: datagrams the senders sent that no receiver saw the end of
    /// (lost after the last one that arrived, so no later one showed the gap):
    /// sent minus received minus the gaps, over the whole run, from both sides'
    /// counts; 0 when some interval of either side is missing.
    #[serde(default)]
    pub lost_at_end: u64,
    /// Late arrivals.
    pub reordered: u64,
    /// Duplicates.
    pub duplicates: u64,
    /// `lost` over expected, percent.
    pub loss_pct: Option<f64>,
    /// RFC 3550 jitter, ns, as iperf3 reports it: each sender's final value
    /// (at its last datagram in the last measured interval), the mean over
    /// senders.
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
    /// Failures over all repetitions, each counted once ([`RepResult::errors`]).
    pub errors: u64,
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

/// One objective checked on one repetition.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SloCheck {
    /// `p50`, `p99`, `p999`, `error_rate`, `loss` or `min_throughput`.
    pub objective: String,
    /// The limit, in the objective's unit (ns, percent, bit/s or 1/s).
    pub limit: f64,
    /// What the repetition measured, same unit; `None` when it measured nothing.
    pub measured: Option<f64>,
    /// Whether the objective held.
    pub ok: bool,
    /// How far past the limit, percent of the limit (positive when broken).
    pub excess_pct: Option<f64>,
    /// Measured intervals (not warm-up) in which the objective did not hold.
    pub intervals: Vec<u32>,
}

/// One step of a sweep.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SweepStep {
    /// Offered rate, in the sweep's unit.
    pub offered: f64,
    /// Achieved rate, same unit.
    pub achieved: Option<f64>,
    /// Whether the step held.
    pub holds: bool,
    /// Why it did not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    /// The step's full result.
    pub result: RepResult,
}

/// What a sweep found.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SweepResult {
    /// The sweep as planned.
    pub sweep: String,
    /// `1/s` or `bit/s`.
    pub unit: String,
    /// Every step, in the order run.
    pub steps: Vec<SweepStep>,
    /// Highest offered rate that held; `None` if even the first did not.
    pub max_rate: Option<f64>,
    /// Highest offered rate before latency grew past the knee.
    pub knee_rate: Option<f64>,
    /// Set when the search could not bracket the capacity, and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limited_by: Option<String>,
}

impl SweepResult {
    /// A rate in this sweep's unit, for people: `1.250 Gbit/s` or `700/s`.
    pub fn show(&self, v: f64) -> String {
        if self.unit == "bit/s" {
            crate::fmt::gbit_s(v)
        } else {
            crate::fmt::per_s(v)
        }
    }

    /// The step at `max_rate`.
    pub fn best(&self) -> Option<&SweepStep> {
        let max = self.max_rate?;
        self.steps.iter().find(|s| s.holds && s.offered == max)
    }
}

/// Kinds of soak events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// An interval with no progress.
    Stall,
    /// A window that failed or was partial.
    Failure,
    /// An objective broke in a window.
    Slo,
    /// The rate or p99 left the reference band.
    Drift,
    /// Back within the reference band after a drift.
    Recovered,
}

/// Something that happened during a soak.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SoakEvent {
    /// Seconds since the soak started.
    pub at_s: f64,
    /// Scenario.
    pub scenario: String,
    /// Window number of that scenario (1-based).
    pub window: u32,
    /// What kind of event.
    pub kind: EventKind,
    /// What happened.
    pub detail: String,
}

/// One window's headline figures, for the over-time view.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SoakWindow {
    /// Scenario.
    pub scenario: String,
    /// Window number of that scenario (1-based; its repetition number).
    pub window: u32,
    /// Seconds since the soak started when the window's traffic started.
    pub started_s: f64,
    /// Ok, partial or failed.
    pub status: Status,
    /// Goodput, bit/s.
    pub throughput_bps: Option<f64>,
    /// Transactions per second.
    pub requests_per_s: Option<f64>,
    /// p99 latency, ns.
    pub p99_ns: Option<u64>,
    /// Failures, each counted once ([`RepResult::errors`]).
    pub errors: u64,
}

/// What a soak did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SoakResult {
    /// Planned duration, seconds.
    pub duration_s: f64,
    /// Window length, seconds.
    pub window_s: f64,
    /// Why it ended: `duration reached`, `interrupted` or `window failed`.
    pub ended: String,
    /// Every window, in order.
    pub windows: Vec<SoakWindow>,
    /// Every event, in order.
    pub events: Vec<SoakEvent>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn traffic_and_path_keep_their_plan_spelling() {
        let json = serde_json::json!({
            "name": "s", "traffic": "udp-stream", "path": "pod-to-service", "cni": "x",
            "client_node": "a", "server_node": "b", "client_workers": [], "server_workers": [],
            "repetitions": [],
            "summary": {"status": "partial", "client_saturated": false, "errors": 0}
        });
        let s: ScenarioResult = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(
            (s.traffic, s.path),
            (Traffic::UdpStream, PathKind::PodToService)
        );
        let back = serde_json::to_value(&s).unwrap();
        assert_eq!(
            (&back["traffic"], &back["path"]),
            (&json["traffic"], &json["path"])
        );
        assert_eq!(back["summary"]["status"], "partial");
    }
}
