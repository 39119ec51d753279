//! What serde cannot check: one function per rule, each given a fully resolved
//! [`ScenarioSpec`] and answering with the field it is about and what is wrong.
//!
//! [`scenario`] applies the rules of a single scenario in a fixed order, the
//! first broken one wins; the plan loader adds the rules that need the whole
//! plan (a name, at least one scenario, at most
//! [`MAX_SCENARIOS`] once matrices are expanded, unique
//! scenario names) and applies the single-scenario rules to every point of a
//! matrix. A worker calls
//! [`job`] on every job it receives, so a hand-made `Prepare` is held to the
//! same rules as a plan, except those about repeating a scenario (soak windows
//! and sweep steps are jobs the coordinator derives from one).
//!
//! ```
//! use cnibench_proto::plan::{self, validate};
//! let mut spec = plan::load("p.yaml", "
//! name: p
//! scenarios:
//!   - { name: rr, traffic: tcp-rr, path: pod-to-pod-cross-node }
//! ").unwrap().scenarios.remove(0);
//! assert!(validate::scenario(&spec).is_ok());
//! spec.connections = 0;
//! assert_eq!(validate::scenario(&spec).unwrap_err().field, "connections");
//! ```

use super::matrix::{self, Axis};
use super::raw::RawPlan;
use super::{
    MAX_CLIENT_BUFFERS, MAX_CLIENTS, MAX_INTERVALS, MAX_PARALLEL, MAX_PAYLOAD, MAX_REPETITIONS,
    MAX_RUN, MAX_SCENARIOS, MAX_THREADS, MAX_TIMEOUT, PathKind, Plan, PlanError, ScenarioSpec,
    Traffic, UDP_HEADER, UDP_MAX,
};
use crate::units::{Rate, Size};
use std::time::Duration;

/// A broken rule: the field it is about and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field `{field}`: {message}")]
pub struct Invalid {
    /// The plan field the rule is about.
    pub field: &'static str,
    /// What is wrong (naming the scenario, when there is one).
    pub message: String,
}

fn broken(field: &'static str, message: String) -> Result<(), Invalid> {
    Err(Invalid { field, message })
}

/// One rule about a single scenario.
type Rule = fn(&ScenarioSpec) -> Result<(), Invalid>;

/// Whom a rule concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// Any run of the scenario: a worker checks these on every job it receives.
    Job,
    /// How the plan runs it (repetitions, sweeps): the coordinator derives jobs
    /// that need not follow them (a soak's windows count past 1000).
    Plan,
}

/// The rules of a single scenario, in the order they are checked.
const RULES: &[(Scope, Rule)] = &[
    (Scope::Job, named),
    (Scope::Job, rate_fits_traffic),
    (Scope::Job, slo_measurable),
    (Scope::Plan, sweep_runs_once),
    (Scope::Job, udp_payloads),
    (Scope::Job, server_delay),
    (Scope::Job, server_stall),
    (Scope::Job, timeout),
    (Scope::Job, path_implemented),
    (Scope::Job, external_target),
    (Scope::Job, service_address),
    (Scope::Job, nodeport),
    (Scope::Job, target_port),
    (Scope::Job, clients),
    (Scope::Job, servers),
    (Scope::Job, threads),
    (Scope::Job, parallelism),
    (Scope::Job, payload_sizes),
    (Scope::Job, buffers),
    (Scope::Job, duration),
    (Scope::Job, run_length),
    (Scope::Job, interval),
    (Scope::Job, intervals_per_repetition),
    (Scope::Plan, repetitions),
];

/// Check one scenario of a plan against every rule that does not need the rest
/// of the plan; the first broken rule is the error.
pub fn scenario(spec: &ScenarioSpec) -> Result<(), Invalid> {
    RULES.iter().try_for_each(|(_, rule)| rule(spec))
}

/// Check a scenario a worker was asked to run: the rules of [`scenario`] that
/// are about one run of it (sizes, counts, durations, buffers), not the ones
/// about how a plan repeats it.
pub fn job(spec: &ScenarioSpec) -> Result<(), Invalid> {
    RULES
        .iter()
        .filter(|(scope, _)| *scope == Scope::Job)
        .try_for_each(|(_, rule)| rule(spec))
}

/// Resolve the defaults of a raw plan, expand its matrices and check it: the
/// plan's own rules, then each scenario in order, the first broken rule being
/// the error, located at its scenario (or at the list element it is about).
pub(super) fn plan(
    file: &str,
    raw: RawPlan,
    mut resolve: Option<&mut Resolver<'_>>,
) -> Result<Plan, PlanError> {
    let located = |at: Option<&serde_saphyr::Location>, e: Invalid| PlanError {
        file: file.to_string(),
        line: at.map(|l| l.line()),
        column: at.map(|l| l.column()),
        field: Some(e.field.to_string()),
        message: e.message,
    };
    let defaults = raw.defaults.unwrap_or_default().resolve();
    plan_named(&raw.name).map_err(|e| located(None, e))?;
    has_scenarios(raw.scenarios.len()).map_err(|e| located(None, e))?;
    let mut out: Vec<ScenarioSpec> = Vec::with_capacity(raw.scenarios.len());
    for sp in raw.scenarios {
        let at = sp.referenced;
        let axes = sp
            .value
            .axes()
            .map_err(|(el, e)| located(Some(el.as_ref().unwrap_or(&at)), e))?;
        let service_at = sp.value.service_at();
        let mut base = sp.value.resolve(&defaults);
        // Once per scenario, before a matrix copies it.
        if let Some(resolve) = resolve.as_deref_mut() {
            resolve_service(&mut base, resolve)
                .map_err(|e| located(Some(service_at.as_ref().unwrap_or(&at)), e))?;
        }
        // The name before expansion: `/streams=2` would not be empty.
        named(&base)
            .and_then(|()| within_limit(&base.name, &axes, out.len()))
            .map_err(|e| located(Some(&at), e))?;
        for (spec, elements) in matrix::expand(&base, &axes) {
            // Uniqueness before the scenario's own rules: an empty name cannot be a
            // duplicate (the earlier one would have been refused), so `named` still
            // decides first for it.
            unique_name(&spec, &out)
                .and_then(|()| scenario(&spec))
                .map_err(|e| {
                    let el = elements.iter().find(|(f, _)| *f == e.field);
                    located(Some(el.map_or(&at, |(_, l)| l)), e)
                })?;
            out.push(spec);
        }
    }
    Ok(Plan {
        name: raw.name,
        cni: raw.cni.unwrap_or_else(|| "auto".into()),
        scenarios: out,
    })
}

/// Turns a Service's DNS name and port into its virtual IP (the coordinator's
/// lookup), or says why it cannot.
pub type Resolver<'a> = dyn FnMut(&str, u16) -> Result<std::net::IpAddr, String> + 'a;

/// A `service: dns:NAME:PORT` resolved to its address.
fn resolve_service(spec: &mut ScenarioSpec, resolve: &mut Resolver<'_>) -> Result<(), Invalid> {
    let Some(svc) = spec.service.as_mut() else {
        return Ok(());
    };
    let (Some(name), None) = (&svc.name, svc.ip) else {
        return Ok(());
    };
    match resolve(name, svc.port) {
        Ok(ip) => {
            svc.ip = Some(ip);
            Ok(())
        }
        Err(why) => broken(
            "service",
            format!("scenario `{}`: cannot resolve {name}: {why}", spec.name),
        ),
    }
}

fn plan_named(name: &str) -> Result<(), Invalid> {
    if name.trim().is_empty() {
        return broken("name", "plan name must not be empty".into());
    }
    Ok(())
}

fn has_scenarios(count: usize) -> Result<(), Invalid> {
    if count == 0 {
        return broken("scenarios", "plan has no scenarios".into());
    }
    Ok(())
}

/// The scenarios `axes` expand to, after the `before` already in the plan,
/// stay within [`MAX_SCENARIOS`]; the error names the longest list.
fn within_limit(name: &str, axes: &[Axis], before: usize) -> Result<(), Invalid> {
    let n = matrix::count(axes);
    if before.saturating_add(n) <= MAX_SCENARIOS {
        return Ok(());
    }
    let Some(longest) = axes.iter().rev().max_by_key(|a| a.values.len()) else {
        return broken(
            "name",
            format!("scenario `{name}`: the plan holds more than {MAX_SCENARIOS} scenarios"),
        );
    };
    let fields: Vec<&str> = axes.iter().map(|a| a.field).collect();
    let lens: Vec<String> = axes.iter().map(|a| a.values.len().to_string()).collect();
    broken(
        longest.field,
        format!(
            "scenario `{name}`: {} = {} expands to {n} scenarios; with the {before} before it the plan would hold {}, more than {MAX_SCENARIOS} scenarios per plan",
            fields.join(" x "),
            lens.join(" x "),
            before.saturating_add(n)
        ),
    )
}

fn unique_name(spec: &ScenarioSpec, earlier: &[ScenarioSpec]) -> Result<(), Invalid> {
    let name = &spec.name;
    if earlier.iter().any(|o| &o.name == name) {
        return broken("name", format!("duplicate scenario name `{name}`"));
    }
    Ok(())
}

fn named(spec: &ScenarioSpec) -> Result<(), Invalid> {
    if spec.name.is_empty() {
        return broken("name", "scenario name must not be empty".into());
    }
    Ok(())
}

fn rate_fits_traffic(spec: &ScenarioSpec) -> Result<(), Invalid> {
    let name = &spec.name;
    match (spec.rate, spec.traffic) {
        (Rate::PerSecond(_), Traffic::TcpStream | Traffic::QuicStream) => broken(
            "rate",
            format!(
                "scenario `{name}`: a {} rate is a bitrate, e.g. `5Gbit/s`",
                spec.traffic
            ),
        ),
        (Rate::BitsPerSecond(_), t) if !t.is_stream() => broken(
            "rate",
            format!("scenario `{name}`: a {t} rate is in requests, e.g. `20000/s`"),
        ),
        _ => Ok(()),
    }
}

fn slo_measurable(spec: &ScenarioSpec) -> Result<(), Invalid> {
    if let Some((field, why)) = spec.slo.unmeasurable(spec.traffic) {
        return broken(
            field,
            format!("scenario `{}`: slo {field}: {why}", spec.name),
        );
    }
    Ok(())
}

fn sweep_runs_once(spec: &ScenarioSpec) -> Result<(), Invalid> {
    if spec.sweep.is_some() && spec.repetitions != 1 {
        return broken(
            "repetitions",
            format!(
                "scenario `{}`: a rate sweep runs each step once; remove repetitions (or set it to 1)",
                spec.name
            ),
        );
    }
    Ok(())
}

fn udp_payloads(spec: &ScenarioSpec) -> Result<(), Invalid> {
    if !spec.traffic.is_udp() {
        return Ok(());
    }
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
        return broken(
            field,
            format!(
                "scenario `{}`: a UDP payload must be {UDP_HEADER}..={UDP_MAX} bytes, got {v}",
                spec.name
            ),
        );
    }
    Ok(())
}

fn server_delay(spec: &ScenarioSpec) -> Result<(), Invalid> {
    if spec.server_delay.0 > Duration::from_secs(10) {
        return broken(
            "server_delay",
            format!("scenario `{}`: server_delay must be at most 10s", spec.name),
        );
    }
    Ok(())
}

fn server_stall(spec: &ScenarioSpec) -> Result<(), Invalid> {
    let Some(stall) = spec.server_stall else {
        return Ok(());
    };
    if stall
        .at
        .0
        .checked_add(stall.length.0)
        .is_none_or(|end| end > MAX_RUN)
    {
        return broken(
            "server_stall",
            format!(
                "scenario `{}`: server_stall must end within 24h (at + for)",
                spec.name
            ),
        );
    }
    Ok(())
}

fn timeout(spec: &ScenarioSpec) -> Result<(), Invalid> {
    if spec.timeout.0 < Duration::from_millis(1) || spec.timeout.0 > MAX_TIMEOUT {
        return broken(
            "timeout",
            format!(
                "scenario `{}`: timeout must be between 1ms and 60s",
                spec.name
            ),
        );
    }
    // Every request would time out waiting for the delay.
    if !spec.traffic.is_stream() && spec.timeout.0 <= spec.server_delay.0 {
        return broken(
            "timeout",
            format!(
                "scenario `{}`: timeout {} must be longer than server_delay {} (every request would time out)",
                spec.name, spec.timeout, spec.server_delay
            ),
        );
    }
    Ok(())
}

fn path_implemented(spec: &ScenarioSpec) -> Result<(), Invalid> {
    if !matches!(
        spec.path,
        PathKind::PodToPodCrossNode
            | PathKind::PodToPodSameNode
            | PathKind::PodToExternal
            | PathKind::PodToService
            | PathKind::PodToNodeport
    ) {
        return broken(
            "path",
            format!(
                "scenario `{}`: path `{}` is not implemented by this version (available: pod-to-pod-cross-node, pod-to-pod-same-node, pod-to-service, pod-to-nodeport, pod-to-external)",
                spec.name, spec.path
            ),
        );
    }
    Ok(())
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

fn external_target(spec: &ScenarioSpec) -> Result<(), Invalid> {
    if let Some(why) = external_problem(spec) {
        let field = if spec.target.is_none() {
            "path"
        } else {
            "target"
        };
        return broken(field, format!("scenario `{}`: {why}", spec.name));
    }
    Ok(())
}

fn service_address(spec: &ScenarioSpec) -> Result<(), Invalid> {
    let name = &spec.name;
    match (spec.path, &spec.service) {
        (PathKind::PodToService, None) => broken(
            "service",
            format!(
                "scenario `{name}`: path pod-to-service needs `service: IP:PORT` or `service: dns:NAME:PORT`"
            ),
        ),
        (PathKind::PodToService, Some(_)) | (_, None) => Ok(()),
        (path, Some(_)) => broken(
            "service",
            format!("scenario `{name}`: `service:` needs `path: pod-to-service`, not {path}"),
        ),
    }
}

fn nodeport(spec: &ScenarioSpec) -> Result<(), Invalid> {
    let name = &spec.name;
    let port = spec.nodeport.map(|n| n.port);
    match (spec.path, port) {
        (PathKind::PodToNodeport, None | Some(0)) => broken(
            "nodeport",
            format!("scenario `{name}`: path pod-to-nodeport needs `nodeport: PORT`"),
        ),
        (PathKind::PodToNodeport, Some(p)) if p > u32::from(u16::MAX) => broken(
            "nodeport",
            format!("scenario `{name}`: nodeport {p} is out of range (1..=65535)"),
        ),
        (PathKind::PodToNodeport, Some(_)) | (_, None) => Ok(()),
        (path, Some(_)) => broken(
            "nodeport",
            format!(
                "scenario `{name}`: `nodeport:` and `nodeport_via:` need `path: pod-to-nodeport`, not {path}"
            ),
        ),
    }
}

fn target_port(spec: &ScenarioSpec) -> Result<(), Invalid> {
    let name = &spec.name;
    match spec.target_port {
        None => Ok(()),
        Some(_) if !spec.via_service() => broken(
            "target_port",
            format!(
                "scenario `{name}`: `target_port:` (where servers listen behind a Service) needs path pod-to-service or pod-to-nodeport"
            ),
        ),
        Some(p) if p == 0 || p > u32::from(u16::MAX) => broken(
            "target_port",
            format!("scenario `{name}`: target_port {p} is out of range (1..=65535)"),
        ),
        Some(_) => Ok(()),
    }
}

fn clients(spec: &ScenarioSpec) -> Result<(), Invalid> {
    if spec.clients == 0 || spec.clients > MAX_CLIENTS {
        return broken(
            "clients",
            format!(
                "scenario `{}`: clients must be 1..={MAX_CLIENTS}",
                spec.name
            ),
        );
    }
    Ok(())
}

fn servers(spec: &ScenarioSpec) -> Result<(), Invalid> {
    // Behind a Service the servers are its endpoints: any number, each
    // client's connections spread over them.
    if spec.via_service() && (1..=MAX_CLIENTS).contains(&spec.servers) {
        return Ok(());
    }
    if spec.servers == 0 || spec.servers > spec.clients {
        return broken(
            "servers",
            format!(
                "scenario `{}`: servers must be 1..=clients ({})",
                spec.name, spec.clients
            ),
        );
    }
    Ok(())
}

fn threads(spec: &ScenarioSpec) -> Result<(), Invalid> {
    if spec.threads.is_some_and(|t| t == 0 || t > MAX_THREADS) {
        return broken(
            "threads",
            format!(
                "scenario `{}`: threads must be 1..={MAX_THREADS}",
                spec.name
            ),
        );
    }
    Ok(())
}

fn parallelism(spec: &ScenarioSpec) -> Result<(), Invalid> {
    for (field, v) in [("streams", spec.streams), ("connections", spec.connections)] {
        if v == 0 || v > MAX_PARALLEL {
            return broken(
                field,
                format!(
                    "scenario `{}`: {field} must be 1..={MAX_PARALLEL}, got {v}",
                    spec.name
                ),
            );
        }
    }
    Ok(())
}

fn payload_sizes(spec: &ScenarioSpec) -> Result<(), Invalid> {
    for (field, v, min) in [
        ("request_size", spec.request_size, 1),
        ("response_size", spec.response_size, 1),
        ("message_size", spec.message_size, 1),
    ] {
        if v.0 < min || v.0 > MAX_PAYLOAD {
            return broken(
                field,
                format!(
                    "scenario `{}`: {field} must be 1 byte..64MiB, got {v}",
                    spec.name
                ),
            );
        }
    }
    Ok(())
}

/// The buffers one client worker holds for `spec`: the field to blame, how the
/// figure is made up, and the bytes.
fn client_buffers(spec: &ScenarioSpec) -> (&'static str, String, u128) {
    let (c, st) = (spec.connections, spec.streams);
    let rr = u128::from(spec.request_size.0) + u128::from(spec.response_size.0);
    let both = Size(u64::try_from(rr).unwrap_or(u64::MAX));
    match spec.traffic {
        Traffic::Http2 => (
            "streams",
            format!("connections x streams x (request_size + response_size) = {c} x {st} x {both}"),
            u128::from(c) * u128::from(st) * rr,
        ),
        t if t.is_stream() => (
            "streams",
            format!("streams x message_size = {st} x {}", spec.message_size),
            u128::from(st) * u128::from(spec.message_size.0),
        ),
        _ => (
            "connections",
            format!("connections x (request_size + response_size) = {c} x {both}"),
            u128::from(c) * rr,
        ),
    }
}

fn buffers(spec: &ScenarioSpec) -> Result<(), Invalid> {
    let (field, how, bytes) = client_buffers(spec);
    if bytes > u128::from(MAX_CLIENT_BUFFERS) {
        // Display only: the figure is far above 4GiB, a rounded GiB count will do.
        let gib = bytes as f64 / f64::from(1u32 << 30);
        return broken(
            field,
            format!(
                "scenario `{}`: {how} is {gib:.1}GiB of buffers per client worker, above the limit of 4GiB",
                spec.name
            ),
        );
    }
    Ok(())
}

fn duration(spec: &ScenarioSpec) -> Result<(), Invalid> {
    if spec.duration.0 < Duration::from_millis(100) {
        return broken(
            "duration",
            format!("scenario `{}`: duration must be at least 100ms", spec.name),
        );
    }
    Ok(())
}

fn interval(spec: &ScenarioSpec) -> Result<(), Invalid> {
    if spec.interval.0 < Duration::from_millis(10) || spec.interval > spec.duration {
        return broken(
            "interval",
            format!(
                "scenario `{}`: interval must be between 10ms and the duration ({})",
                spec.name, spec.duration
            ),
        );
    }
    Ok(())
}

fn run_length(spec: &ScenarioSpec) -> Result<(), Invalid> {
    let run = spec.warmup.0.checked_add(spec.duration.0);
    if run.is_none_or(|r| r > MAX_RUN) {
        let field = if spec.warmup.0 > MAX_RUN {
            "warmup"
        } else {
            "duration"
        };
        return broken(
            field,
            format!(
                "scenario `{}`: warmup ({}) + duration ({}) must be at most 24h: a soak (`cnibench soak`) is the way to run longer than a day",
                spec.name, spec.warmup, spec.duration
            ),
        );
    }
    Ok(())
}

fn intervals_per_repetition(spec: &ScenarioSpec) -> Result<(), Invalid> {
    let n = spec.intervals();
    if n > u128::from(MAX_INTERVALS) {
        return broken(
            "interval",
            format!(
                "scenario `{}`: an interval of {} makes {n} intervals, more than {MAX_INTERVALS}: use a longer interval",
                spec.name, spec.interval
            ),
        );
    }
    Ok(())
}

fn repetitions(spec: &ScenarioSpec) -> Result<(), Invalid> {
    if spec.repetitions == 0 || spec.repetitions > MAX_REPETITIONS {
        return broken(
            "repetitions",
            format!(
                "scenario `{}`: repetitions must be 1..={MAX_REPETITIONS}",
                spec.name
            ),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::{Dur, Size, Sweep};

    /// A valid scenario of `traffic`, with `extra` fields.
    fn spec(traffic: &str, extra: &str) -> ScenarioSpec {
        let text = format!(
            "name: p\nscenarios:\n  - {{ name: s, traffic: {traffic}, path: pod-to-pod-cross-node{extra} }}\n"
        );
        super::super::load("p.yaml", &text)
            .unwrap()
            .scenarios
            .remove(0)
    }

    /// `rule` passes on `good` and names `field` once `edit` is applied.
    fn check(rule: Rule, good: ScenarioSpec, edit: impl FnOnce(&mut ScenarioSpec), field: &str) {
        assert_eq!(rule(&good), Ok(()));
        let mut bad = good;
        edit(&mut bad);
        let e = rule(&bad).unwrap_err();
        assert_eq!(e.field, field, "{e}");
        assert!(
            e.to_string().starts_with(&format!("field `{field}`: ")),
            "{e}"
        );
    }

    #[test]
    fn every_rule_passes_a_valid_scenario() {
        for traffic in ["tcp-stream", "tcp-rr", "udp-stream", "udp-rr", "http2"] {
            assert_eq!(scenario(&spec(traffic, "")), Ok(()), "{traffic}");
        }
    }

    #[test]
    fn plan_rules() {
        assert!(plan_named("p").is_ok());
        assert_eq!(plan_named(" ").unwrap_err().field, "name");
        assert!(has_scenarios(1).is_ok());
        assert_eq!(has_scenarios(0).unwrap_err().field, "scenarios");
        let s = spec("tcp-rr", "");
        assert!(unique_name(&s, &[]).is_ok());
        let e = unique_name(&s, std::slice::from_ref(&s)).unwrap_err();
        assert!(e.message.contains("duplicate scenario name `s`"), "{e}");
    }

    #[test]
    fn named_rule() {
        check(named, spec("tcp-rr", ""), |s| s.name.clear(), "name");
    }

    #[test]
    fn rate_fits_traffic_rule() {
        let per_s = Rate::PerSecond(10.0);
        check(
            rate_fits_traffic,
            spec("tcp-stream", ""),
            |s| s.rate = per_s,
            "rate",
        );
        check(
            rate_fits_traffic,
            spec("udp-stream", ", rate: 100/s"),
            |s| s.traffic = Traffic::QuicStream,
            "rate",
        );
        let bits = Rate::BitsPerSecond(1e9);
        check(
            rate_fits_traffic,
            spec("tcp-rr", ""),
            |s| s.rate = bits,
            "rate",
        );
    }

    #[test]
    fn slo_measurable_rule() {
        let p99 = Some(Dur(Duration::from_millis(2)));
        check(
            slo_measurable,
            spec("tcp-stream", ""),
            |s| s.slo.p99 = p99,
            "p99",
        );
    }

    #[test]
    fn sweep_runs_once_rule() {
        let sweep: Sweep = "sweep(1/s..4/s, x2)".parse().unwrap();
        let swept = spec("tcp-rr", ", rate: 'sweep(1/s..4/s, x2)'");
        assert_eq!(swept.sweep, Some(sweep));
        check(sweep_runs_once, swept, |s| s.repetitions = 2, "repetitions");
    }

    #[test]
    fn udp_payloads_rule() {
        check(
            udp_payloads,
            spec("udp-rr", ""),
            |s| s.request_size = Size(15),
            "request_size",
        );
        check(
            udp_payloads,
            spec("udp-rr", ""),
            |s| s.response_size = Size(UDP_MAX + 1),
            "response_size",
        );
        check(
            udp_payloads,
            spec("udp-stream", ""),
            |s| s.message_size = Size(64 << 10),
            "message_size",
        );
        // Not a UDP kind: not this rule's business.
        assert!(udp_payloads(&spec("tcp-rr", ", request_size: 64KiB")).is_ok());
    }

    #[test]
    fn server_delay_rule() {
        let long = Dur(Duration::from_millis(10_001));
        check(
            server_delay,
            spec("tcp-rr", ", server_delay: 10s, timeout: 11s"),
            |s| s.server_delay = long,
            "server_delay",
        );
    }

    #[test]
    fn server_stall_rule() {
        let stalled = spec("tcp-rr", ", server_stall: { at: 1s, for: 500ms }");
        let late = Dur(MAX_RUN);
        check(
            server_stall,
            stalled.clone(),
            |s| s.server_stall.as_mut().unwrap().at = late,
            "server_stall",
        );
        let endless = Dur(Duration::MAX);
        check(
            server_stall,
            stalled,
            |s| s.server_stall.as_mut().unwrap().length = endless,
            "server_stall",
        );
    }

    #[test]
    fn timeout_upper_bound() {
        let long = Dur(MAX_TIMEOUT + Duration::from_millis(1));
        check(
            timeout,
            spec("udp-rr", ", timeout: 60s"),
            |s| s.timeout = long,
            "timeout",
        );
    }

    #[test]
    fn timeout_rule() {
        let short = Dur(Duration::from_micros(999));
        check(
            timeout,
            spec("udp-rr", ", timeout: 1ms"),
            |s| s.timeout = short,
            "timeout",
        );
        // Longer than the server's delay, or every request times out.
        let delay = Dur(Duration::from_secs(1));
        check(
            timeout,
            spec("tcp-rr", ", server_delay: 999ms"),
            |s| s.server_delay = delay,
            "timeout",
        );
    }

    #[test]
    fn path_implemented_rule() {
        let host = PathKind::HostToHost;
        check(
            path_implemented,
            spec("tcp-rr", ""),
            |s| s.path = host,
            "path",
        );
    }

    #[test]
    fn service_address_rule() {
        let svc = ScenarioSpec {
            path: PathKind::PodToService,
            service: Some("10.96.0.10:80".parse().unwrap()),
            ..spec("tcp-rr", "")
        };
        check(
            service_address,
            svc.clone(),
            |s| s.service = None,
            "service",
        );
        let e = service_address(&ScenarioSpec {
            path: PathKind::PodToPodCrossNode,
            ..svc
        })
        .unwrap_err();
        assert!(e.message.contains("needs `path: pod-to-service`"), "{e}");
    }

    #[test]
    fn nodeport_rule() {
        let np = ScenarioSpec {
            path: PathKind::PodToNodeport,
            nodeport: Some(super::super::NodePort {
                port: 30080,
                via: super::super::NodeportVia::OtherNode,
            }),
            ..spec("tcp-rr", "")
        };
        check(nodeport, np.clone(), |s| s.nodeport = None, "nodeport");
        check(
            nodeport,
            np.clone(),
            |s| s.nodeport.as_mut().unwrap().port = 65536,
            "nodeport",
        );
        let e = nodeport(&ScenarioSpec {
            path: PathKind::PodToService,
            ..np
        })
        .unwrap_err();
        assert!(e.message.contains("need `path: pod-to-nodeport`"), "{e}");
    }

    #[test]
    fn target_port_rule() {
        let svc = ScenarioSpec {
            path: PathKind::PodToService,
            service: Some("10.96.0.10:80".parse().unwrap()),
            target_port: Some(8080),
            ..spec("tcp-rr", "")
        };
        assert_eq!(svc.listen_port(), 8080);
        check(
            target_port,
            svc.clone(),
            |s| s.target_port = Some(65536),
            "target_port",
        );
        check(
            target_port,
            svc.clone(),
            |s| s.path = PathKind::PodToPodCrossNode,
            "target_port",
        );
        let plain = ScenarioSpec {
            target_port: None,
            ..svc
        };
        assert_eq!(plain.listen_port(), 80);
    }

    #[test]
    fn external_target_rule() {
        let ip = Some("10.0.0.1:80".parse().unwrap());
        check(
            external_target,
            spec("http1", ""),
            |s| s.target = ip,
            "target",
        );
        let ext = PathKind::PodToExternal;
        check(external_target, spec("http1", ""), |s| s.path = ext, "path");
        let good = ScenarioSpec {
            path: ext,
            target: ip,
            ..spec("http1", "")
        };
        check(
            external_target,
            good.clone(),
            |s| s.traffic = Traffic::TcpRr,
            "target",
        );
        let two = ScenarioSpec {
            clients: 2,
            ..good.clone()
        };
        check(external_target, two, |s| s.servers = 2, "target");
        let delay = Dur(Duration::from_millis(1));
        check(external_target, good, |s| s.server_delay = delay, "target");
    }

    #[test]
    fn clients_rule() {
        check(clients, spec("tcp-rr", ""), |s| s.clients = 0, "clients");
        check(
            clients,
            spec("tcp-rr", ""),
            |s| s.clients = MAX_CLIENTS + 1,
            "clients",
        );
    }

    #[test]
    fn servers_rule() {
        check(servers, spec("tcp-rr", ""), |s| s.servers = 0, "servers");
        // Behind a Service, more endpoints than clients.
        let svc = ScenarioSpec {
            path: PathKind::PodToService,
            servers: 2,
            ..spec("tcp-rr", "")
        };
        check(servers, svc, |s| s.servers = 0, "servers");
        check(
            servers,
            spec("tcp-rr", ", clients: 2"),
            |s| s.servers = 3,
            "servers",
        );
    }

    #[test]
    fn threads_rule() {
        check(
            threads,
            spec("tcp-rr", ""),
            |s| s.threads = Some(0),
            "threads",
        );
        check(
            threads,
            spec("tcp-rr", ", threads: 2"),
            |s| s.threads = Some(MAX_THREADS + 1),
            "threads",
        );
    }

    #[test]
    fn parallelism_rule() {
        check(
            parallelism,
            spec("tcp-stream", ""),
            |s| s.streams = 0,
            "streams",
        );
        check(
            parallelism,
            spec("tcp-rr", ""),
            |s| s.connections = MAX_PARALLEL + 1,
            "connections",
        );
    }

    #[test]
    fn payload_sizes_rule() {
        check(
            payload_sizes,
            spec("tcp-rr", ""),
            |s| s.request_size = Size(0),
            "request_size",
        );
        check(
            payload_sizes,
            spec("tcp-rr", ""),
            |s| s.response_size = Size(MAX_PAYLOAD + 1),
            "response_size",
        );
        check(
            payload_sizes,
            spec("tcp-stream", ""),
            |s| s.message_size = Size(0),
            "message_size",
        );
    }

    #[test]
    fn buffers_rule() {
        // 4GiB exactly is allowed: 64 x 64MiB.
        let at_limit = spec(
            "tcp-rr",
            ", connections: 64, request_size: 32MiB, response_size: 32MiB",
        );
        check(buffers, at_limit, |s| s.response_size.0 += 1, "connections");
        let streams = spec("tcp-stream", ", streams: 64, message_size: 64MiB");
        check(buffers, streams, |s| s.streams += 1, "streams");
        let h2 = spec(
            "http2",
            ", connections: 64, streams: 64, request_size: 512KiB, response_size: 512KiB",
        );
        check(buffers, h2, |s| s.streams = 65, "streams");
        let e = buffers(&ScenarioSpec {
            connections: MAX_PARALLEL,
            request_size: Size(MAX_PAYLOAD),
            ..spec("tcp-rr", "")
        })
        .unwrap_err();
        assert!(e.message.contains("10000 x 67108865 is 625.0GiB"), "{e}");
    }

    #[test]
    fn duration_rule() {
        let short = Dur(Duration::from_millis(99));
        check(
            duration,
            spec("tcp-rr", ", duration: 100ms, interval: 100ms"),
            |s| s.duration = short,
            "duration",
        );
    }

    #[test]
    fn interval_rule() {
        let fine = Dur(Duration::from_millis(9));
        check(
            interval,
            spec("tcp-rr", ", interval: 10ms"),
            |s| s.interval = fine,
            "interval",
        );
        let long = Dur(Duration::from_secs(11));
        check(
            interval,
            spec("tcp-rr", ", duration: 10s, interval: 10s"),
            |s| s.interval = long,
            "interval",
        );
    }

    #[test]
    fn run_length_rule() {
        let day = spec("tcp-rr", ", warmup: 1h, duration: 23h, interval: 1s");
        check(
            run_length,
            day.clone(),
            |s| s.duration.0 += Duration::from_nanos(1),
            "duration",
        );
        check(
            run_length,
            day.clone(),
            |s| s.warmup = Dur(Duration::MAX),
            "warmup",
        );
        check(
            run_length,
            day,
            |s| s.duration = Dur(Duration::MAX),
            "duration",
        );
    }

    #[test]
    fn intervals_per_repetition_rule() {
        // Without warm-up, 100,000 intervals of 10ms: 1000s.
        let most = spec("tcp-rr", ", warmup: 0s, duration: 1000s, interval: 10ms");
        assert_eq!(u64::from(most.interval_count()), MAX_INTERVALS);
        check(
            intervals_per_repetition,
            most,
            |s| s.warmup.0 = Duration::from_millis(1),
            "interval",
        );
    }

    #[test]
    fn repetitions_rule() {
        check(
            repetitions,
            spec("tcp-rr", ""),
            |s| s.repetitions = 0,
            "repetitions",
        );
        check(
            repetitions,
            spec("tcp-rr", ", repetitions: 1000"),
            |s| s.repetitions = MAX_REPETITIONS + 1,
            "repetitions",
        );
    }

    #[test]
    fn a_job_is_not_held_to_the_plan_only_rules() {
        // A soak's 2000th window, a sweep step.
        let mut s = spec("tcp-rr", ", rate: 'sweep(1/s..4/s, x2)'");
        s.repetitions = 2000;
        assert_eq!(scenario(&s).unwrap_err().field, "repetitions");
        assert_eq!(job(&s), Ok(()));
        s.request_size = Size(0);
        assert_eq!(job(&s).unwrap_err().field, "request_size");
    }

    #[test]
    fn scenario_applies_the_rules_in_order() {
        // Both the rate and the connections are wrong: the rate rule comes first.
        let mut s = spec("tcp-rr", "");
        s.rate = Rate::BitsPerSecond(1e9);
        s.connections = 0;
        assert_eq!(scenario(&s).unwrap_err().field, "rate");
        s.rate = Rate::Max;
        assert_eq!(scenario(&s).unwrap_err().field, "connections");
    }
}
