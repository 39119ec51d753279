//! The test plan: what traffic to run, over which path, for how long.
//!
//! A plan is YAML written by a person, so every error names the file, line, column
//! and field. Parsing happens in two steps: [`load`] deserializes the raw document
//! (serde reports syntax errors, unknown fields and bad values with their position),
//! then validation resolves defaults into fully specified [`ScenarioSpec`]s and checks
//! what serde cannot (unique names, interval not longer than duration, ...), again
//! pointing at the offending scenario.
//!
//! The pieces, in the order a plan goes through them:
//!
//! - `raw` (private): the YAML as written, and defaults resolved
//!   into [`ScenarioSpec`]s;
//! - [`matrix`]: fields written as lists, expanded into one scenario per
//!   value (the cross product for several lists), each keeping its
//!   [`MatrixPoint`];
//! - [`validate`]: one function per rule; [`validate::scenario`] applies the
//!   rules of a single scenario, and [`validate::job`] those a worker holds
//!   every job it receives to;
//! - `location` (private): [`PlanError`] and how a serde error is turned into a
//!   file, line, column and field;
//! - [`slo`]: the objectives a scenario may set;
//! - `yaml` (private): [`Plan::to_yaml`], a plan written back as YAML that
//!   loads to the same plan.
//!
//! ```
//! let plan = cnibench_proto::plan::load("demo.yaml", "
//! name: demo
//! scenarios:
//!   - { name: rr, traffic: tcp-rr, path: pod-to-pod-cross-node }
//! ").unwrap();
//! assert_eq!(plan.scenarios[0].connections, 1);
//! ```

mod location;
pub mod matrix;
mod raw;
mod service;
pub mod slo;
pub mod validate;
mod yaml;

pub use location::PlanError;
pub use matrix::{MAX_SCENARIOS, MatrixParam, MatrixPoint};
pub use service::{NodePort, NodeportVia, ServiceAddr};

use crate::pacing::Arrival;
use crate::units::{Dur, Rate, Size, Sweep};
use serde::{Deserialize, Serialize};
use slo::Slo;
use std::fmt;
use std::time::Duration;

/// Kind of traffic a scenario generates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Traffic {
    /// Bulk TCP streams; goodput counted at the receiver.
    TcpStream,
    /// TCP request/response on persistent connections.
    TcpRr,
    /// TCP connect + request + response + close per transaction.
    TcpCrr,
    /// Sequence-numbered UDP datagrams.
    UdpStream,
    /// UDP request/response.
    UdpRr,
    /// HTTP/1.1 keep-alive requests.
    Http1,
    /// HTTP/2 requests.
    Http2,
    /// QUIC bulk streams.
    QuicStream,
    /// QUIC request/response.
    QuicRr,
}

impl Traffic {
    /// The plan spelling of this kind.
    pub fn as_str(self) -> &'static str {
        match self {
            Traffic::TcpStream => "tcp-stream",
            Traffic::TcpRr => "tcp-rr",
            Traffic::TcpCrr => "tcp-crr",
            Traffic::UdpStream => "udp-stream",
            Traffic::UdpRr => "udp-rr",
            Traffic::Http1 => "http1",
            Traffic::Http2 => "http2",
            Traffic::QuicStream => "quic-stream",
            Traffic::QuicRr => "quic-rr",
        }
    }

    /// Bulk kinds measure goodput; the others measure transactions and latency.
    pub fn is_stream(self) -> bool {
        matches!(
            self,
            Traffic::TcpStream | Traffic::UdpStream | Traffic::QuicStream
        )
    }

    /// Kinds that open a new connection for every transaction.
    pub fn connects_per_transaction(self) -> bool {
        matches!(self, Traffic::TcpCrr)
    }

    /// Datagram kinds (payload sizes bounded by a UDP datagram).
    pub fn is_udp(self) -> bool {
        matches!(self, Traffic::UdpStream | Traffic::UdpRr)
    }
}

impl fmt::Display for Traffic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where client and server sit relative to each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PathKind {
    /// Client and server pods on the same node (bridge path).
    PodToPodSameNode,
    /// Client and server pods on different nodes (the CNI's inter-node datapath).
    PodToPodCrossNode,
    /// Client pod to a ClusterIP service in front of the server (kube-proxy path).
    PodToService,
    /// Client pod to a node's address at a NodePort (kube-proxy path, plus a
    /// hop to the endpoint's node when the client targets another node).
    PodToNodeport,
    /// Both ends in the host network namespace of different nodes (baseline).
    HostToHost,
    /// Clients against a server that is not a cnibench worker (`target:`), e.g.
    /// nginx behind an ingress; HTTP kinds only, client-side measurements only.
    PodToExternal,
}

impl PathKind {
    /// The plan spelling of this path.
    pub fn as_str(self) -> &'static str {
        match self {
            PathKind::PodToPodSameNode => "pod-to-pod-same-node",
            PathKind::PodToPodCrossNode => "pod-to-pod-cross-node",
            PathKind::PodToService => "pod-to-service",
            PathKind::PodToNodeport => "pod-to-nodeport",
            PathKind::HostToHost => "host-to-host",
            PathKind::PodToExternal => "pod-to-external",
        }
    }

    /// Whether client and server must run on different nodes.
    pub fn cross_node(self) -> bool {
        !matches!(self, PathKind::PodToPodSameNode | PathKind::PodToExternal)
    }
}

impl fmt::Display for PathKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A plan after validation: every scenario fully specified.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Name of the experiment.
    pub name: String,
    /// CNI label for the results, or `auto` to use what the workers report.
    pub cni: String,
    /// Scenarios, run in order.
    pub scenarios: Vec<ScenarioSpec>,
}

/// One scenario with defaults applied; this is also what workers receive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioSpec {
    /// Unique name within the plan.
    pub name: String,
    /// Traffic kind.
    pub traffic: Traffic,
    /// Placement of client and server.
    pub path: PathKind,
    /// The server of a `pod-to-external` path.
    pub target: Option<std::net::SocketAddr>,
    /// The Service clients send to on a `pod-to-service` path.
    #[serde(default)]
    pub service: Option<ServiceAddr>,
    /// The NodePort clients send to on a `pod-to-nodeport` path.
    #[serde(default)]
    pub nodeport: Option<NodePort>,
    /// The port server workers listen on behind a Service or NodePort (the
    /// Service's `targetPort`); `None`: the Service port, or the node port.
    #[serde(default)]
    pub target_port: Option<u32>,
    /// Client workers generating load together (the rate is split between them).
    pub clients: u32,
    /// Server workers; client i sends to server i mod `servers`.
    pub servers: u32,
    /// Parallel bulk streams per client worker (stream kinds).
    pub streams: u32,
    /// Parallel connections (request/response kinds).
    pub connections: u32,
    /// Threads each client worker spreads its connections or streams over;
    /// `None`: one per CPU of the worker.
    pub threads: Option<u32>,
    /// Request payload size (request/response kinds).
    pub request_size: Size,
    /// Response payload size (request/response kinds).
    pub response_size: Size,
    /// Size of each write (stream kinds).
    pub message_size: Size,
    /// Offered load (with a sweep: the first step's).
    pub rate: Rate,
    /// Offered-load search: run steps of increasing rate instead of `rate`.
    pub sweep: Option<Sweep>,
    /// Spacing of arrivals in open loop.
    pub arrival: Arrival,
    /// Time the server waits before each response.
    pub server_delay: Dur,
    /// Fault injection: the server answers nothing during this window.
    pub server_stall: Option<Stall>,
    /// Objectives each repetition must meet.
    pub slo: Slo,
    /// A request without a whole response after this long fails as `timeout`
    /// (request/response kinds; udp-rr: `lost`).
    pub timeout: Dur,
    /// Measured time, after warm-up.
    pub duration: Dur,
    /// Time run before measuring; its interval is reported but excluded from results.
    pub warmup: Dur,
    /// Reporting interval.
    pub interval: Dur,
    /// How many times the scenario is repeated.
    pub repetitions: u32,
    /// The point of a parameter matrix this scenario is, when the plan wrote
    /// some of its fields as lists; `None` for a plain scenario.
    #[serde(default)]
    pub matrix: Option<MatrixPoint>,
}

impl ScenarioSpec {
    /// Whether clients go through a Service (ClusterIP or NodePort) rather
    /// than straight to a server worker.
    pub fn via_service(&self) -> bool {
        matches!(self.path, PathKind::PodToService | PathKind::PodToNodeport)
    }

    /// The port server workers bind: behind a Service its target port (the
    /// Service port or the node port unless `target_port` says otherwise),
    /// else any free port (0).
    pub fn listen_port(&self) -> u16 {
        let front = match self.path {
            PathKind::PodToService => self.service.as_ref().map(|s| u32::from(s.port)),
            PathKind::PodToNodeport => self.nodeport.map(|n| n.port),
            _ => None,
        };
        self.target_port
            .or(front)
            .and_then(|p| u16::try_from(p).ok())
            .unwrap_or(0)
    }

    /// Offsets from the start at which intervals close, before the final one that
    /// closes at the end (`warmup + duration`). With warm-up, the first closes at
    /// the end of warm-up; then every `interval`. A validated scenario has at
    /// most [`MAX_INTERVALS`] of them.
    pub fn interval_bounds(&self) -> Vec<Duration> {
        let (warmup, step) = (self.warmup.0, self.interval.0);
        let end = warmup.saturating_add(self.duration.0);
        let mut b = if warmup.is_zero() { step } else { warmup };
        let mut out = Vec::new();
        while b < end && !step.is_zero() {
            out.push(b);
            b = b.saturating_add(step);
        }
        out
    }

    /// Number of intervals each side reports (the bounds plus the final one).
    pub fn interval_count(&self) -> u32 {
        u32::try_from(self.intervals()).unwrap_or(u32::MAX)
    }

    /// [`Self::interval_count`] worked out without listing the bounds, so that
    /// a scenario asking for billions of them can be refused.
    fn intervals(&self) -> u128 {
        let step = self.interval.0.as_nanos();
        if step == 0 {
            return 1;
        }
        // Bounds at warmup + k * step (k >= 0) before warmup + duration; without
        // warm-up the one at 0 is not a bound.
        let bounds = self.duration.0.as_nanos().div_ceil(step);
        let bounds = if self.warmup.0.is_zero() {
            bounds.saturating_sub(1)
        } else {
            bounds
        };
        bounds + 1
    }
}

/// A window during which the server stalls (answers nothing), to check that a run
/// shows a stall the way it should (coordinated-omission test).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stall {
    /// Offset from the job's start.
    pub at: Dur,
    /// Length of the stall.
    #[serde(rename = "for")]
    pub length: Dur,
}

const MAX_PARALLEL: u32 = 10_000;
/// Most repetitions of one scenario (a plan, or `cnibench run --repetitions`).
pub const MAX_REPETITIONS: u32 = 1_000;
const MAX_CLIENTS: u32 = 1_000;
const MAX_THREADS: u32 = 1_024;
const MAX_PAYLOAD: u64 = 64 << 20;
/// Longest scenario run, warm-up plus duration. Longer runs are soaks (`cnibench
/// soak` rolls intervals up in windows); a single run keeps every interval of
/// both sides in memory and in `result.json`.
pub const MAX_RUN: Duration = Duration::from_secs(24 * 3600);
/// Most intervals one repetition reports: each carries histograms from every
/// worker, all kept until the result is written (a day at 1s is 86,400).
pub const MAX_INTERVALS: u64 = 100_000;
/// Longest `timeout`: a request unanswered for a minute is lost, and a longer
/// wait would only hold its connection idle.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(60);
/// Most payload buffer memory one client worker may need for a scenario:
/// `connections x (request_size + response_size)` for request/response kinds,
/// `connections x streams x (request_size + response_size)` for http2,
/// `streams x message_size` for stream kinds. Workers run in pods with a few
/// GiB of memory; beyond this a plan mistake would have the kernel or the
/// allocator kill the worker mid-run (and every job on it) instead of the plan
/// being refused up front.
pub const MAX_CLIENT_BUFFERS: u64 = 4 << 30;
/// Sequence number and send timestamp carried by every datagram.
pub const UDP_HEADER: u64 = 16;
/// Largest UDP payload over IPv4.
pub const UDP_MAX: u64 = 65_507;

/// Parse and validate a plan; `file` is only used in error messages.
pub fn load(file: &str, text: &str) -> Result<Plan, PlanError> {
    let raw = parse(file, text)?;
    validate::plan(file, raw, None)
}

/// The plan as written, or where serde found it malformed.
fn parse(file: &str, text: &str) -> Result<raw::RawPlan, PlanError> {
    serde_saphyr::from_str(text).map_err(|e| {
        let loc = e.location();
        let line = loc.map(|l| l.line());
        PlanError {
            file: file.to_string(),
            line,
            column: loc.map(|l| l.column()),
            field: line.and_then(|l| location::key_on_line(text, l, loc.map(|x| x.column()))),
            message: location::first_line(&e.without_snippet().to_string()),
        }
    })
}

/// [`load`], with every `service: dns:NAME:PORT` resolved by `resolve` (the
/// coordinator's DNS lookup); a name that does not resolve is an error at its
/// `service:` value.
pub fn load_resolving(
    file: &str,
    text: &str,
    resolve: &mut validate::Resolver<'_>,
) -> Result<Plan, PlanError> {
    let raw: raw::RawPlan = parse(file, text)?;
    validate::plan(file, raw, Some(resolve))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "\
name: cni-compare
cni: auto
defaults: { duration: 3s, warmup: 1s, interval: 1s, repetitions: 2 }
scenarios:
  - name: tcp-throughput
    traffic: tcp-stream
    path: pod-to-pod-cross-node
    streams: 2
  - name: rr
    traffic: tcp-rr
    path: pod-to-pod-same-node
    connections: 4
    request_size: 1KiB
    duration: 5s
";

    #[test]
    fn loads_and_applies_defaults() {
        let p = load("p.yaml", GOOD).unwrap();
        assert_eq!(p.scenarios.len(), 2);
        let s = &p.scenarios[0];
        assert_eq!(s.streams, 2);
        assert_eq!(s.duration.0, Duration::from_secs(3));
        assert_eq!(s.repetitions, 2);
        let r = &p.scenarios[1];
        assert_eq!(r.request_size.0, 1024);
        assert_eq!(r.duration.0, Duration::from_secs(5));
        assert_eq!(r.rate, Rate::Max);
        // 1s warm-up, then 5 x 1s: bounds at 1..=5, final interval at 6s.
        assert_eq!(r.interval_count(), 6);
        assert_eq!(r.interval_bounds()[0], Duration::from_secs(1));
        let mut odd = r.clone();
        odd.warmup = Dur(Duration::ZERO);
        odd.duration = Dur(Duration::from_millis(2500));
        // 1s, 2s, then the final 0.5s interval.
        assert_eq!(
            odd.interval_bounds(),
            vec![Duration::from_secs(1), Duration::from_secs(2)]
        );
    }

    #[test]
    fn unknown_field_names_file_line_and_field() {
        let bad = GOOD.replace("    streams: 2", "    stream: 2");
        let e = load("p.yaml", &bad).unwrap_err();
        assert_eq!(e.line, Some(8), "{e}");
        assert_eq!(e.field.as_deref(), Some("stream"));
        let msg = e.to_string();
        assert!(msg.starts_with("p.yaml:8:"), "{msg}");
        assert!(msg.contains("unknown field"), "{msg}");
    }

    #[test]
    fn bad_value_names_field() {
        let bad = GOOD.replace("request_size: 1KiB", "request_size: lots");
        let e = load("p.yaml", &bad).unwrap_err();
        assert_eq!(e.line, Some(13), "{e}");
        assert_eq!(e.field.as_deref(), Some("request_size"));
        let bad = GOOD.replace("traffic: tcp-rr", "traffic: tcp-rrr");
        let e = load("p.yaml", &bad).unwrap_err();
        assert_eq!(e.line, Some(10), "{e}");
        assert_eq!(e.field.as_deref(), Some("traffic"));
    }

    #[test]
    fn semantic_errors_point_at_scenario() {
        let bad = GOOD.replace("name: rr", "name: tcp-throughput");
        let e = load("p.yaml", &bad).unwrap_err();
        assert!(e.message.contains("duplicate"), "{e}");
        assert_eq!(e.line, Some(9), "{e}");
        let bad = GOOD.replace("connections: 4", "connections: 0");
        let e = load("p.yaml", &bad).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("connections"));
        let bad = GOOD.replace("duration: 5s", "duration: 5s\n    interval: 10s");
        let e = load("p.yaml", &bad).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("interval"));
    }

    #[test]
    fn rates_and_udp_sizes() {
        let p = load(
            "p.yaml",
            &GOOD.replace("    streams: 2", "    rate: 5Gbit/s"),
        )
        .unwrap();
        assert_eq!(p.scenarios[0].rate, Rate::BitsPerSecond(5e9));
        let e = load("p.yaml", &GOOD.replace("    streams: 2", "    rate: 100/s")).unwrap_err();
        assert!(e.message.contains("bitrate"), "{e}");
        let e = load(
            "p.yaml",
            &GOOD.replace("    connections: 4", "    rate: 1Gbit/s"),
        )
        .unwrap_err();
        assert!(e.message.contains("requests"), "{e}");
        let udp = GOOD.replace("traffic: tcp-stream", "traffic: udp-stream");
        assert_eq!(
            load("p.yaml", &udp).unwrap().scenarios[0].message_size.0,
            1400
        );
        let e = load(
            "p.yaml",
            &udp.replace("    streams: 2", "    message_size: 64KiB"),
        )
        .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("message_size"), "{e}");
        let stall = GOOD.replace(
            "    connections: 4",
            "    server_stall: { at: 1s, for: 500ms }\n    arrival: poisson",
        );
        let s = &load("p.yaml", &stall).unwrap().scenarios[1];
        assert_eq!(s.server_stall.unwrap().length.0, Duration::from_millis(500));
        assert_eq!(s.arrival, Arrival::Poisson);
    }

    #[test]
    fn slo_and_sweep() {
        let text = "\
name: s
defaults: { slo: { p99: 2ms } }
scenarios:
  - { name: a, traffic: tcp-rr, path: pod-to-pod-cross-node, rate: 'sweep(1000/s..8000/s, x2)' }
  - { name: b, traffic: udp-stream, path: pod-to-pod-cross-node, slo: { loss: 0.5%, min_throughput: 1Gbit/s } }
";
        let p = load("s.yaml", text).unwrap();
        let (a, b) = (&p.scenarios[0], &p.scenarios[1]);
        assert_eq!(a.slo.p99, Some(Dur(Duration::from_millis(2))));
        assert_eq!(a.rate, Rate::PerSecond(1000.0));
        assert_eq!(a.sweep.unwrap().steps().len(), 4);
        assert_eq!(b.slo.p99, None, "a scenario's own slo replaces the default");
        assert_eq!(b.slo.min_throughput, Some(Rate::BitsPerSecond(1e9)));

        let e = load("s.yaml", &text.replace("loss: 0.5%", "p99: 1ms")).unwrap_err();
        assert_eq!((e.line, e.field.as_deref()), (Some(5), Some("p99")), "{e}");
        assert!(e.to_string().contains("measures no latency"), "{e}");
        let e = load("s.yaml", &text.replace("p99: 2ms", "p98: 2ms")).unwrap_err();
        assert!(e.to_string().contains("unknown field"), "{e}");
        let e = load("s.yaml", &text.replace("x2", "x0.5")).unwrap_err();
        assert_eq!((e.line, e.field.as_deref()), (Some(4), Some("rate")), "{e}");
        let e = load("s.yaml", &text.replace("x2)' }", "x2)', repetitions: 3 }")).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("repetitions"), "{e}");
    }

    #[test]
    fn external_targets() {
        let text = "\
name: x
scenarios:
  - { name: nginx, traffic: http1, path: pod-to-external, target: 10.96.0.10:80, connections: 32 }
";
        let p = load("x.yaml", text).unwrap();
        assert_eq!(
            p.scenarios[0].target,
            Some("10.96.0.10:80".parse().unwrap())
        );
        for (bad, field, says) in [
            ("traffic: http1", "target", "speaks HTTP"),
            (
                "path: pod-to-external",
                "target",
                "needs `path: pod-to-external`",
            ),
            ("target: 10.96.0.10:80", "path", "needs `target: IP:PORT`"),
        ] {
            let replaced = match bad {
                "traffic: http1" => text.replace(bad, "traffic: tcp-rr"),
                "path: pod-to-external" => text.replace(bad, "path: pod-to-pod-cross-node"),
                _ => text.replace(bad, "request_size: 10"),
            };
            let e = load("x.yaml", &replaced).unwrap_err();
            assert_eq!(e.field.as_deref(), Some(field), "{e}");
            assert!(e.to_string().contains(says), "{e}");
        }
        let e = load("x.yaml", &text.replace("10.96.0.10:80", "nginx:80")).unwrap_err();
        assert_eq!(
            (e.line, e.field.as_deref()),
            (Some(3), Some("target")),
            "{e}"
        );
    }

    /// A plan of one scenario of `traffic` with `fields`.
    fn one(traffic: &str, fields: &str) -> Result<Plan, PlanError> {
        load(
            "h.yaml",
            &format!(
                "name: h\nscenarios:\n  - {{ name: s, traffic: {traffic}, path: pod-to-pod-cross-node, {fields} }}\n"
            ),
        )
    }

    #[track_caller]
    fn refused(traffic: &str, fields: &str, field: &str, says: &str) {
        let e = one(traffic, fields).unwrap_err();
        assert_eq!(e.field.as_deref(), Some(field), "{fields}: {e}");
        assert!(e.message.contains(says), "{fields}: {e}");
    }

    #[test]
    fn huge_durations_are_refused_not_run() {
        // Would overflow warm-up + duration, or ask for 3.6e11 interval slots.
        refused(
            "tcp-rr",
            "duration: 10000000000000000000s",
            "duration",
            "soak",
        );
        refused("tcp-rr", "duration: 100000000h", "duration", "24h");
        refused("tcp-rr", "warmup: 10000000000000000000s", "warmup", "24h");
        refused("tcp-rr", "duration: 23h, warmup: 2h", "duration", "soak");
        refused(
            "tcp-rr",
            "duration: 100000000000000000000s",
            "duration",
            "out of range",
        );
        assert!(one("tcp-rr", "duration: 23h, warmup: 1h").is_ok());
        refused(
            "tcp-rr",
            "duration: 24h, warmup: 0s, interval: 100ms",
            "interval",
            "100000",
        );
        refused("udp-rr", "timeout: 100000000h", "timeout", "60s");
        refused(
            "tcp-rr",
            "server_stall: { at: 10000000000000000000s, for: 1s }",
            "server_stall",
            "24h",
        );
        refused(
            "tcp-rr",
            "server_stall: { at: 1s, for: 24h }",
            "server_stall",
            "24h",
        );
    }

    #[test]
    fn buffers_beyond_the_memory_limit_are_refused() {
        refused(
            "tcp-rr",
            "connections: 10000, request_size: 64MiB",
            "connections",
            "4GiB",
        );
        refused(
            "http1",
            "connections: 100, response_size: 64MiB",
            "connections",
            "4GiB",
        );
        refused(
            "tcp-stream",
            "streams: 10000, message_size: 1MiB",
            "streams",
            "4GiB",
        );
        refused(
            "http2",
            "connections: 100, streams: 1000, request_size: 64KiB",
            "streams",
            "4GiB",
        );
        // The defaults at the largest counts fit.
        assert!(one("tcp-stream", "streams: 10000").is_ok());
        assert!(one("tcp-rr", "connections: 10000, request_size: 64KiB").is_ok());
    }

    #[test]
    fn service_paths() {
        let text = "\
name: s
scenarios:
  - { name: vip, traffic: tcp-crr, path: pod-to-service, service: 10.96.0.10:80, servers: 2 }
  - { name: dns, traffic: udp-rr, path: pod-to-service, service: 'dns:cnibench-server.cnibench.svc:8080' }
  - { name: np, traffic: http1, path: pod-to-nodeport, nodeport: 30080, nodeport_via: other-node, target_port: 8080 }
";
        let p = load("s.yaml", text).unwrap();
        let (vip, dns, np) = (&p.scenarios[0], &p.scenarios[1], &p.scenarios[2]);
        assert_eq!(
            vip.service.as_ref().and_then(ServiceAddr::addr),
            Some("10.96.0.10:80".parse().unwrap())
        );
        assert_eq!((vip.servers, vip.listen_port()), (2, 80));
        // Unresolved until the coordinator looks the name up.
        assert_eq!(dns.service.as_ref().unwrap().ip, None);
        assert_eq!(
            np.nodeport,
            Some(NodePort {
                port: 30080,
                via: NodeportVia::OtherNode
            })
        );
        assert_eq!(np.listen_port(), 8080);

        let mut lookups = Vec::new();
        let p = load_resolving("s.yaml", text, &mut |name: &str, port| {
            lookups.push((name.to_string(), port));
            Ok("10.96.0.11".parse().unwrap())
        })
        .unwrap();
        assert_eq!(
            lookups,
            [("cnibench-server.cnibench.svc".to_string(), 8080)]
        );
        assert_eq!(
            p.scenarios[1].service.as_ref().unwrap().addr(),
            Some("10.96.0.11:8080".parse().unwrap())
        );
        let e = load_resolving("s.yaml", text, &mut |_: &str, _| Err("no such host".into()))
            .unwrap_err();
        assert_eq!(
            (e.line, e.column, e.field.as_deref()),
            (Some(4), Some(66), Some("service")),
            "{e}"
        );
        assert!(
            e.message
                .contains("cannot resolve cnibench-server.cnibench.svc: no such host"),
            "{e}"
        );

        // Bad input: each error at its line, naming the field.
        for (from, to, line, field, says) in [
            (
                "service: 10.96.0.10:80",
                "service: 10.96.0.10:70000",
                3,
                "service",
                "out of range",
            ),
            (
                "service: 10.96.0.10:80",
                "service: svc:80",
                3,
                "service",
                "dns:NAME:PORT",
            ),
            (
                "service: 10.96.0.10:80, ",
                "",
                3,
                "service",
                "needs `service: IP:PORT`",
            ),
            (
                "path: pod-to-service, service: 10.96",
                "path: pod-to-pod-cross-node, service: 10.96",
                3,
                "service",
                "needs `path: pod-to-service`",
            ),
            (
                "nodeport: 30080",
                "nodeport: 70000",
                5,
                "nodeport",
                "out of range",
            ),
            (
                "nodeport: 30080, ",
                "",
                5,
                "nodeport",
                "needs `nodeport: PORT`",
            ),
            (
                "target_port: 8080",
                "target_port: 0",
                5,
                "target_port",
                "out of range",
            ),
        ] {
            assert!(text.contains(from), "{from}");
            let e = load("s.yaml", &text.replacen(from, to, 1)).unwrap_err();
            assert_eq!(
                (e.line, e.field.as_deref()),
                (Some(line), Some(field)),
                "{e}"
            );
            assert!(e.column.is_some(), "{e}");
            assert!(e.message.contains(says), "{e}");
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for text in [
            "",
            ":",
            "name: [",
            "- 1\n- 2",
            "name: x\nscenarios: 3",
            "\u{0}\u{1}",
        ] {
            assert!(load("g.yaml", text).is_err(), "{text:?}");
        }
    }
}
