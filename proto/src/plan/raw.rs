//! The plan as written in YAML, before validation: every field optional that a
//! plan may leave out, and how the defaults fill them in to give a fully
//! specified [`ScenarioSpec`].

use super::matrix::{self, Axis, Misplaced, OneOrList, Value};
use super::service::{NodePort, NodeportVia, ServiceText};
use super::slo::Slo;
use super::{PathKind, ScenarioSpec, Stall, Traffic, UDP_HEADER};
use crate::pacing::Arrival;
use crate::units::{Dur, Rate, RateOrSweep, Size};
use serde::Deserialize;
use serde_saphyr::Spanned;
use std::time::Duration;

/// A plan as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPlan {
    pub(super) name: String,
    #[serde(default)]
    pub(super) cni: Option<String>,
    #[serde(default)]
    pub(super) defaults: Option<RawDefaults>,
    pub(super) scenarios: Vec<Spanned<RawScenario>>,
}

/// The plan's `defaults:`, as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDefaults {
    duration: Option<Dur>,
    warmup: Option<Dur>,
    interval: Option<Dur>,
    repetitions: Option<u32>,
    slo: Option<Slo>,
}

/// A scenario as written: whatever is left out comes from the defaults; the
/// fields of [`matrix::FIELDS`] may be lists.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawScenario {
    name: String,
    traffic: Traffic,
    path: PathKind,
    target: Option<std::net::SocketAddr>,
    service: Option<Spanned<ServiceText>>,
    nodeport: Option<u32>,
    nodeport_via: Option<NodeportVia>,
    target_port: Option<u32>,
    clients: Option<u32>,
    servers: Option<u32>,
    streams: Option<OneOrList<u32>>,
    connections: Option<OneOrList<u32>>,
    threads: Option<u32>,
    request_size: Option<OneOrList<Size>>,
    response_size: Option<OneOrList<Size>>,
    message_size: Option<OneOrList<Size>>,
    rate: Option<OneOrList<RateOrSweep>>,
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

/// The plan-wide defaults with the built-in ones filled in.
pub(super) struct Defaults {
    duration: Dur,
    warmup: Dur,
    interval: Dur,
    repetitions: u32,
    slo: Option<Slo>,
}

impl RawDefaults {
    /// What a scenario that leaves these fields out gets.
    pub(super) fn resolve(self) -> Defaults {
        Defaults {
            duration: self.duration.unwrap_or(Dur(Duration::from_secs(10))),
            warmup: self.warmup.unwrap_or(Dur(Duration::from_secs(2))),
            interval: self.interval.unwrap_or(Dur(Duration::from_secs(1))),
            repetitions: self.repetitions.unwrap_or(1),
            slo: self.slo,
        }
    }
}

impl RawScenario {
    /// The fields written as lists, in [`matrix::FIELDS`] order, or what is
    /// wrong with one of them.
    pub(super) fn axes(&self) -> Result<Vec<Axis>, Misplaced> {
        let name = self.name.trim();
        let mut axes = Vec::new();
        let count = |v: u32| Ok(Value::Count(v));
        let size = |v: Size| Ok(Value::Size(v));
        let a = &mut axes;
        matrix::push_axis(a, name, "connections", self.connections.as_ref(), count)?;
        matrix::push_axis(a, name, "message_size", self.message_size.as_ref(), size)?;
        matrix::push_axis(a, name, "rate", self.rate.as_ref(), matrix::fixed_rate)?;
        matrix::push_axis(a, name, "request_size", self.request_size.as_ref(), size)?;
        matrix::push_axis(a, name, "response_size", self.response_size.as_ref(), size)?;
        matrix::push_axis(a, name, "streams", self.streams.as_ref(), count)?;
        Ok(axes)
    }

    /// Where the scenario's `service:` value is written, if it has one.
    pub(super) fn service_at(&self) -> Option<serde_saphyr::Location> {
        self.service.as_ref().map(|s| s.referenced)
    }

    /// The scenario with every field set: its own value, else the plan's
    /// default, else the built-in one; a list gives its first value (each
    /// point of the matrix then sets its own). Nothing is checked here.
    pub(super) fn resolve(self, d: &Defaults) -> ScenarioSpec {
        let s = self;
        let first = |v: Option<OneOrList<Size>>| v.as_ref().and_then(OneOrList::first);
        let rate = s.rate.as_ref().and_then(OneOrList::first);
        ScenarioSpec {
            name: s.name.trim().to_string(),
            traffic: s.traffic,
            path: s.path,
            target: s.target,
            service: s.service.map(|t| t.value.0),
            // `nodeport_via` alone (without `nodeport`) is the validator's to refuse.
            nodeport: match (s.nodeport, s.nodeport_via) {
                (None, None) => None,
                (port, via) => Some(NodePort {
                    port: port.unwrap_or(0),
                    via: via.unwrap_or_default(),
                }),
            },
            target_port: s.target_port,
            clients: s.clients.unwrap_or(1),
            servers: s.servers.unwrap_or(1),
            streams: s.streams.as_ref().and_then(OneOrList::first).unwrap_or(1),
            connections: s
                .connections
                .as_ref()
                .and_then(OneOrList::first)
                .unwrap_or(1),
            threads: s.threads,
            // Datagrams carry a sequence number and a timestamp.
            request_size: first(s.request_size).unwrap_or(Size(if s.traffic.is_udp() {
                UDP_HEADER
            } else {
                1
            })),
            response_size: first(s.response_size).unwrap_or(Size(if s.traffic.is_udp() {
                UDP_HEADER
            } else {
                1
            })),
            message_size: first(s.message_size).unwrap_or(if s.traffic.is_udp() {
                // Fits the smallest common pod MTU (VXLAN 1450) without fragmenting.
                Size(1400)
            } else {
                Size(128 << 10)
            }),
            rate: match rate {
                Some(RateOrSweep::Rate(r)) => r,
                Some(RateOrSweep::Sweep(sw)) => sw.from,
                None => Rate::default(),
            },
            sweep: match rate {
                Some(RateOrSweep::Sweep(sw)) => Some(sw),
                _ => None,
            },
            arrival: s.arrival.unwrap_or_default(),
            server_delay: s.server_delay.unwrap_or_default(),
            server_stall: s.server_stall,
            slo: s.slo.or(d.slo).unwrap_or_default(),
            timeout: s.timeout.unwrap_or(Dur(Duration::from_secs(1))),
            duration: s.duration.unwrap_or(d.duration),
            warmup: s.warmup.unwrap_or(d.warmup),
            interval: s.interval.unwrap_or(d.interval),
            repetitions: s.repetitions.unwrap_or(d.repetitions),
            matrix: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(text: &str) -> RawScenario {
        serde_saphyr::from_str(text).unwrap()
    }

    #[test]
    fn built_in_defaults() {
        let d = RawDefaults::default().resolve();
        let s =
            scenario("{ name: ' a ', traffic: tcp-rr, path: pod-to-pod-cross-node }").resolve(&d);
        assert_eq!(s.name, "a");
        assert_eq!(
            (s.clients, s.servers, s.streams, s.connections),
            (1, 1, 1, 1)
        );
        assert_eq!((s.request_size, s.response_size), (Size(1), Size(1)));
        assert_eq!(s.message_size, Size(128 << 10));
        assert_eq!(s.duration.0, Duration::from_secs(10));
        assert_eq!(s.warmup.0, Duration::from_secs(2));
        assert_eq!(s.interval.0, Duration::from_secs(1));
        assert_eq!(s.timeout.0, Duration::from_secs(1));
        assert_eq!((s.rate, s.sweep, s.repetitions), (Rate::Max, None, 1));
        assert!(s.slo.is_empty());
    }

    #[test]
    fn udp_defaults_fit_a_datagram() {
        let d = RawDefaults::default().resolve();
        let s = scenario("{ name: u, traffic: udp-rr, path: pod-to-pod-cross-node }").resolve(&d);
        assert_eq!(
            (s.request_size, s.response_size),
            (Size(UDP_HEADER), Size(UDP_HEADER))
        );
        let s =
            scenario("{ name: u, traffic: udp-stream, path: pod-to-pod-cross-node }").resolve(&d);
        assert_eq!(s.message_size, Size(1400));
    }

    #[test]
    fn plan_defaults_then_scenario_values() {
        let d: RawDefaults =
            serde_saphyr::from_str("{ duration: 3s, repetitions: 2, slo: { p99: 1ms } }").unwrap();
        let d = d.resolve();
        let s =
            scenario("{ name: a, traffic: tcp-rr, path: pod-to-pod-cross-node, repetitions: 5 }")
                .resolve(&d);
        assert_eq!((s.duration.0, s.repetitions), (Duration::from_secs(3), 5));
        assert!(s.slo.p99.is_some());
        let s = scenario(
            "{ name: a, traffic: tcp-rr, path: pod-to-pod-cross-node, rate: 'sweep(1/s..4/s, x2)' }",
        )
        .resolve(&d);
        assert_eq!(s.rate, Rate::PerSecond(1.0));
        assert!(s.sweep.is_some());
    }
}
