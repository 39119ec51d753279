//! The test plan: what traffic to run, over which path, for how long.
//!
//! A plan is YAML written by a person, so every error names the file, line, column
//! and field. Parsing happens in two steps: [`load`] deserializes the raw document
//! (serde reports syntax errors, unknown fields and bad values with their position),
//! then validation resolves defaults into fully specified [`ScenarioSpec`]s and checks
//! what serde cannot (unique names, interval not longer than duration, ...), again
//! pointing at the offending scenario.
//!
//! ```
//! let plan = cnibench_proto::plan::load("demo.yaml", "
//! name: demo
//! scenarios:
//!   - { name: rr, traffic: tcp-rr, path: pod-to-pod-cross-node }
//! ").unwrap();
//! assert_eq!(plan.scenarios[0].connections, 1);
//! ```

use crate::pacing::Arrival;
use crate::slo::Slo;
use crate::units::{Dur, Rate, RateOrSweep, Size, Sweep};
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;
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
    /// A request without a response after this long counts as lost (udp-rr).
    pub timeout: Dur,
    /// Measured time, after warm-up.
    pub duration: Dur,
    /// Time run before measuring; its interval is reported but excluded from results.
    pub warmup: Dur,
    /// Reporting interval.
    pub interval: Dur,
    /// How many times the scenario is repeated.
    pub repetitions: u32,
}

impl ScenarioSpec {
    /// Offsets from the start at which intervals close, before the final one that
    /// closes at the end (`warmup + duration`). With warm-up, the first closes at
    /// the end of warm-up; then every `interval`.
    pub fn interval_bounds(&self) -> Vec<Duration> {
        let (warmup, step) = (self.warmup.0, self.interval.0);
        let end = warmup + self.duration.0;
        let mut b = if warmup.is_zero() { step } else { warmup };
        let mut out = Vec::new();
        while b < end && !step.is_zero() {
            out.push(b);
            b += step;
        }
        out
    }

    /// Number of intervals each side reports (the bounds plus the final one).
    pub fn interval_count(&self) -> u32 {
        self.interval_bounds().len() as u32 + 1
    }
}

/// What is wrong with a scenario's `target:` / `pod-to-external` combination.
fn external_problem(spec: &ScenarioSpec) -> Option<String> {
    let external = spec.path == PathKind::PodToExternal;
    match (external, spec.target) {
        (false, None) => None,
        (false, Some(_)) => Some("`target:` needs `path: pod-to-external`".into()),
        (true, None) => Some("path pod-to-external needs `target: IP:PORT`".into()),
        (true, Some(_)) if !matches!(spec.traffic, Traffic::Http1 | Traffic::Http2) => {
            Some(format!(
                "an external server speaks HTTP: use http1 or http2, not {}",
                spec.traffic
            ))
        }
        (true, Some(_)) if spec.servers != 1 => {
            Some("an external target is one server: remove `servers`".into())
        }
        (true, Some(_)) if !spec.server_delay.0.is_zero() || spec.server_stall.is_some() => {
            Some("server_delay and server_stall need a cnibench server, not an external one".into())
        }
        (true, Some(_)) => None,
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

/// A plan error, located in its file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}{}: {}{message}", location(*.line, *.column), field.as_ref().map(|f| format!("field `{f}`: ")).unwrap_or_default())]
pub struct PlanError {
    /// File name as given by the user.
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<u64>,
    /// 1-based column, when known.
    pub column: Option<u64>,
    /// The field the error is about, when known.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

fn location(line: Option<u64>, column: Option<u64>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(":{l}:{c}"),
        (Some(l), None) => format!(":{l}"),
        _ => String::new(),
    }
}

const MAX_PARALLEL: u32 = 10_000;
const MAX_REPETITIONS: u32 = 1_000;
const MAX_CLIENTS: u32 = 1_000;
const MAX_THREADS: u32 = 1_024;
const MAX_PAYLOAD: u64 = 64 << 20;
/// Sequence number and send timestamp carried by every datagram.
pub const UDP_HEADER: u64 = 16;
/// Largest UDP payload over IPv4.
pub const UDP_MAX: u64 = 65_507;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlan {
    name: String,
    #[serde(default)]
    cni: Option<String>,
    #[serde(default)]
    defaults: Option<RawDefaults>,
    scenarios: Vec<Spanned<RawScenario>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDefaults {
    duration: Option<Dur>,
    warmup: Option<Dur>,
    interval: Option<Dur>,
    repetitions: Option<u32>,
    slo: Option<Slo>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    name: String,
    traffic: Traffic,
    path: PathKind,
    target: Option<std::net::SocketAddr>,
    clients: Option<u32>,
    servers: Option<u32>,
    streams: Option<u32>,
    connections: Option<u32>,
    threads: Option<u32>,
    request_size: Option<Size>,
    response_size: Option<Size>,
    message_size: Option<Size>,
    rate: Option<RateOrSweep>,
    arrival: Option<Arrival>,
    server_delay: Option<Dur>,
    server_stall: Option<Stall>,
    slo: Option<Slo>,
    timeout: Option<Dur>,
    duration: Option<Dur>,
    warmup: Option<Dur>,
    interval: Option<Dur>,
    repetitions: Option<u32>,
}

/// Parse and validate a plan; `file` is only used in error messages.
pub fn load(file: &str, text: &str) -> Result<Plan, PlanError> {
    let raw: RawPlan = serde_saphyr::from_str(text).map_err(|e| {
        let loc = e.location();
        let line = loc.map(|l| l.line());
        PlanError {
            file: file.to_string(),
            line,
            column: loc.map(|l| l.column()),
            field: line.and_then(|l| key_on_line(text, l, loc.map(|x| x.column()))),
            message: first_line(&e.without_snippet().to_string()),
        }
    })?;
    validate(file, raw)
}

/// serde-saphyr prefixes messages with "error: line N column M: " (and may end
/// them with " at line N, column M"); we print our own location.
fn first_line(msg: &str) -> String {
    let msg = msg.lines().next().unwrap_or(msg);
    let msg = msg.strip_prefix("error: ").unwrap_or(msg);
    let msg = match msg.find(": ") {
        Some(i) if msg[..i].starts_with("line ") => &msg[i + 2..],
        _ => msg,
    };
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// The mapping key that the position (`line`, `column`) belongs to: on
/// `    rate: fast` it is `rate`, and in a flow mapping
/// `{ name: a, rate: fast }` the last key before the column.
fn key_on_line(text: &str, line: u64, column: Option<u64>) -> Option<String> {
    let l = text
        .lines()
        .nth(usize::try_from(line).ok()?.checked_sub(1)?)?;
    let upto = column
        .and_then(|c| usize::try_from(c).ok())
        .and_then(|c| l.char_indices().nth(c.saturating_sub(1)).map(|(i, _)| i))
        .unwrap_or(l.len());
    let is_key = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    // Every `key:` on the line up to the column; the last one wins, the first
    // one if the column points before any.
    let mut keys = Vec::new();
    for (i, _) in l.match_indices(':') {
        let before = l[..i].trim_end();
        let start = before
            .char_indices()
            .rev()
            .find(|&(_, c)| !is_key(c))
            .map_or(0, |(p, c)| p + c.len_utf8());
        let key = &before[start..];
        if !key.is_empty() && key.chars().all(is_key) {
            keys.push((start, key.to_string()));
        }
    }
    keys.iter()
        .rev()
        .find(|(start, _)| *start < upto)
        .or(keys.first())
        .map(|(_, k)| k.clone())
}

fn validate(file: &str, raw: RawPlan) -> Result<Plan, PlanError> {
    let err = |at: Option<&serde_saphyr::Location>, field: &str, message: String| PlanError {
        file: file.to_string(),
        line: at.map(|l| l.line()),
        column: at.map(|l| l.column()),
        field: Some(field.to_string()),
        message,
    };
    let d = raw.defaults.unwrap_or_default();
    let d_duration = d.duration.unwrap_or(Dur(Duration::from_secs(10)));
    let d_warmup = d.warmup.unwrap_or(Dur(Duration::from_secs(2)));
    let d_interval = d.interval.unwrap_or(Dur(Duration::from_secs(1)));
    let d_reps = d.repetitions.unwrap_or(1);
    if raw.name.trim().is_empty() {
        return Err(err(None, "name", "plan name must not be empty".into()));
    }
    if raw.scenarios.is_empty() {
        return Err(err(None, "scenarios", "plan has no scenarios".into()));
    }
    let mut out: Vec<ScenarioSpec> = Vec::with_capacity(raw.scenarios.len());
    for sp in raw.scenarios {
        let at = Some(&sp.referenced);
        let s = sp.value;
        let spec = ScenarioSpec {
            name: s.name.trim().to_string(),
            traffic: s.traffic,
            path: s.path,
            target: s.target,
            clients: s.clients.unwrap_or(1),
            servers: s.servers.unwrap_or(1),
            streams: s.streams.unwrap_or(1),
            connections: s.connections.unwrap_or(1),
            threads: s.threads,
            // Datagrams carry a sequence number and a timestamp.
            request_size: s.request_size.unwrap_or(Size(if s.traffic.is_udp() {
                UDP_HEADER
            } else {
                1
            })),
            response_size: s.response_size.unwrap_or(Size(if s.traffic.is_udp() {
                UDP_HEADER
            } else {
                1
            })),
            message_size: s.message_size.unwrap_or(if s.traffic.is_udp() {
                // Fits the smallest common pod MTU (VXLAN 1450) without fragmenting.
                Size(1400)
            } else {
                Size(128 << 10)
            }),
            rate: match s.rate {
                Some(RateOrSweep::Rate(r)) => r,
                Some(RateOrSweep::Sweep(sw)) => sw.from,
                None => Rate::default(),
            },
            sweep: match s.rate {
                Some(RateOrSweep::Sweep(sw)) => Some(sw),
                _ => None,
            },
            arrival: s.arrival.unwrap_or_default(),
            server_delay: s.server_delay.unwrap_or_default(),
            server_stall: s.server_stall,
            slo: s.slo.or(d.slo).unwrap_or_default(),
            timeout: s.timeout.unwrap_or(Dur(Duration::from_secs(1))),
            duration: s.duration.unwrap_or(d_duration),
            warmup: s.warmup.unwrap_or(d_warmup),
            interval: s.interval.unwrap_or(d_interval),
            repetitions: s.repetitions.unwrap_or(d_reps),
        };
        let name = &spec.name;
        if name.is_empty() {
            return Err(err(at, "name", "scenario name must not be empty".into()));
        }
        if out.iter().any(|o| &o.name == name) {
            return Err(err(at, "name", format!("duplicate scenario name `{name}`")));
        }
        match (spec.rate, spec.traffic) {
            (Rate::PerSecond(_), Traffic::TcpStream | Traffic::QuicStream) => {
                return Err(err(
                    at,
                    "rate",
                    format!(
                        "scenario `{name}`: a {} rate is a bitrate, e.g. `5Gbit/s`",
                        spec.traffic
                    ),
                ));
            }
            (Rate::BitsPerSecond(_), t) if !t.is_stream() => {
                return Err(err(
                    at,
                    "rate",
                    format!("scenario `{name}`: a {t} rate is in requests, e.g. `20000/s`"),
                ));
            }
            _ => {}
        }
        if let Some((field, why)) = spec.slo.unmeasurable(spec.traffic) {
            return Err(err(
                at,
                field,
                format!("scenario `{name}`: slo {field}: {why}"),
            ));
        }
        if spec.sweep.is_some() && spec.repetitions != 1 {
            return Err(err(
                at,
                "repetitions",
                format!(
                    "scenario `{name}`: a rate sweep runs each step once; remove repetitions (or set it to 1)"
                ),
            ));
        }
        if spec.traffic.is_udp() {
            let sizes = match spec.traffic {
                Traffic::UdpStream => vec![("message_size", spec.message_size)],
                _ => vec![
                    ("request_size", spec.request_size),
                    ("response_size", spec.response_size),
                ],
            };
            let too_big = sizes
                .into_iter()
                .find(|(_, v)| !(UDP_HEADER..=UDP_MAX).contains(&v.0));
            if let Some((field, v)) = too_big {
                return Err(err(
                    at,
                    field,
                    format!(
                        "scenario `{name}`: a UDP payload must be {UDP_HEADER}..={UDP_MAX} bytes, got {v}"
                    ),
                ));
            }
        }
        if spec.server_delay.0 > Duration::from_secs(10) {
            return Err(err(
                at,
                "server_delay",
                format!("scenario `{name}`: server_delay must be at most 10s"),
            ));
        }
        if spec.timeout.0 < Duration::from_millis(1) {
            return Err(err(
                at,
                "timeout",
                format!("scenario `{name}`: timeout must be at least 1ms"),
            ));
        }
        if !matches!(
            spec.path,
            PathKind::PodToPodCrossNode | PathKind::PodToPodSameNode | PathKind::PodToExternal
        ) {
            return Err(err(
                at,
                "path",
                format!(
                    "scenario `{name}`: path `{}` is not implemented by this version (available: pod-to-pod-cross-node, pod-to-pod-same-node, pod-to-external)",
                    spec.path
                ),
            ));
        }
        if let Some(why) = external_problem(&spec) {
            let field = if spec.target.is_none() {
                "path"
            } else {
                "target"
            };
            return Err(err(at, field, format!("scenario `{name}`: {why}")));
        }
        if spec.clients == 0 || spec.clients > MAX_CLIENTS {
            return Err(err(
                at,
                "clients",
                format!("scenario `{name}`: clients must be 1..={MAX_CLIENTS}"),
            ));
        }
        if spec.servers == 0 || spec.servers > spec.clients {
            return Err(err(
                at,
                "servers",
                format!(
                    "scenario `{name}`: servers must be 1..=clients ({})",
                    spec.clients
                ),
            ));
        }
        if spec.threads.is_some_and(|t| t == 0 || t > MAX_THREADS) {
            return Err(err(
                at,
                "threads",
                format!("scenario `{name}`: threads must be 1..={MAX_THREADS}"),
            ));
        }
        for (field, v) in [("streams", spec.streams), ("connections", spec.connections)] {
            if v == 0 || v > MAX_PARALLEL {
                return Err(err(
                    at,
                    field,
                    format!("scenario `{name}`: {field} must be 1..={MAX_PARALLEL}, got {v}"),
                ));
            }
        }
        for (field, v, min) in [
            ("request_size", spec.request_size, 1),
            ("response_size", spec.response_size, 1),
            ("message_size", spec.message_size, 1),
        ] {
            if v.0 < min || v.0 > MAX_PAYLOAD {
                return Err(err(
                    at,
                    field,
                    format!("scenario `{name}`: {field} must be 1 byte..64MiB, got {v}"),
                ));
            }
        }
        if spec.duration.0 < Duration::from_millis(100) {
            return Err(err(
                at,
                "duration",
                format!("scenario `{name}`: duration must be at least 100ms"),
            ));
        }
        if spec.interval.0 < Duration::from_millis(10) || spec.interval > spec.duration {
            return Err(err(
                at,
                "interval",
                format!(
                    "scenario `{name}`: interval must be between 10ms and the duration ({})",
                    spec.duration
                ),
            ));
        }
        if spec.repetitions == 0 || spec.repetitions > MAX_REPETITIONS {
            return Err(err(
                at,
                "repetitions",
                format!("scenario `{name}`: repetitions must be 1..={MAX_REPETITIONS}"),
            ));
        }
        out.push(spec);
    }
    Ok(Plan {
        name: raw.name,
        cni: raw.cni.unwrap_or_else(|| "auto".into()),
        scenarios: out,
    })
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
