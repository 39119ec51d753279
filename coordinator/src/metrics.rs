//! Live Prometheus metrics of a run or soak (`--metrics ADDR`), in the
//! OpenMetrics text format at `http://ADDR/metrics`.
//!
//! Gauges follow the last interval of each scenario (throughput, request rate,
//! latency quantiles of the client histogram, loss); counters add up errors and
//! repetitions; CPU cost and objectives are set when a repetition (or soak
//! window) ends. Every series carries the scenario, its traffic kind and its CNI
//! label, so runs on several CNIs land side by side in one dashboard
//! (`manifests/grafana/cnibench-dashboard.json`).

use crate::result::{Percentiles, Quantile, RepResult, live_rate, net_loss};
use crate::run::Progress;
use anyhow::Context as _;
use cnibench_proto::hist;
use cnibench_proto::msg::{IntervalReport, Role};
use cnibench_proto::plan::ScenarioSpec;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

type FloatGauge = Gauge<f64, AtomicU64>;

/// Labels of a scenario's series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ScenarioLabels {
    scenario: String,
    traffic: String,
    cni: String,
}

/// A scenario's labels and one more.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QuantileLabels {
    #[prometheus(flatten)]
    of: ScenarioLabels,
    quantile: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    #[prometheus(flatten)]
    of: ScenarioLabels,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ObjectiveLabels {
    #[prometheus(flatten)]
    of: ScenarioLabels,
    objective: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DropLabels {
    #[prometheus(flatten)]
    of: ScenarioLabels,
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WorkerLabels {
    worker: String,
    node: String,
}

/// The metric families; cheap to clone (each family is shared).
#[derive(Clone, Debug, Default)]
struct Families {
    throughput: Family<ScenarioLabels, FloatGauge>,
    requests: Family<ScenarioLabels, FloatGauge>,
    latency: Family<QuantileLabels, FloatGauge>,
    loss: Family<ScenarioLabels, FloatGauge>,
    errors: Family<ScenarioLabels, Counter>,
    repetitions: Family<StatusLabels, Counter>,
    cores_per_gbps: Family<ScenarioLabels, FloatGauge>,
    cores_per_10k: Family<ScenarioLabels, FloatGauge>,
    client_saturated: Family<ScenarioLabels, Gauge>,
    slo_ok: Family<ObjectiveLabels, Gauge>,
    worker_up: Family<WorkerLabels, Gauge>,
    retransmit: Family<ScenarioLabels, FloatGauge>,
    drops: Family<DropLabels, Counter>,
}

/// Names of every metric exposed (the `_total` suffix of counters included),
/// for the dashboard check.
pub const NAMES: [&str; 13] = [
    "cnibench_throughput_bits_per_second",
    "cnibench_requests_per_second",
    "cnibench_latency_seconds",
    "cnibench_udp_loss_ratio",
    "cnibench_errors_total",
    "cnibench_repetitions_total",
    "cnibench_cpu_cores_per_gbps",
    "cnibench_cpu_cores_per_10k_requests",
    "cnibench_client_saturated",
    "cnibench_slo_ok",
    "cnibench_worker_up",
    "cnibench_tcp_retransmit_ratio",
    "cnibench_datapath_drops_total",
];

/// Live metrics: a [`Progress`] that updates them, and the HTTP endpoint.
#[derive(Debug)]
pub struct Metrics {
    f: Families,
    registry: Arc<Registry>,
    cni: HashMap<String, String>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Register every family.
    pub fn new() -> Metrics {
        let f = Families::default();
        let mut r = Registry::default();
        r.register(
            "cnibench_throughput_bits_per_second",
            "Goodput received in the last interval",
            f.throughput.clone(),
        );
        r.register(
            "cnibench_requests_per_second",
            "Transactions completed in the last interval, per second",
            f.requests.clone(),
        );
        r.register(
            "cnibench_latency_seconds",
            "Latency quantiles of the last client interval (from intended send time in open loop)",
            f.latency.clone(),
        );
        r.register(
            "cnibench_udp_loss_ratio",
            "Datagram loss in the last interval (0..1)",
            f.loss.clone(),
        );
        r.register(
            "cnibench_errors",
            "Failed transactions and connections, both sides",
            f.errors.clone(),
        );
        r.register(
            "cnibench_repetitions",
            "Repetitions (soak windows, sweep steps) finished, by status",
            f.repetitions.clone(),
        );
        r.register(
            "cnibench_cpu_cores_per_gbps",
            "Node CPU cores per Gbit/s of the last repetition",
            f.cores_per_gbps.clone(),
        );
        r.register(
            "cnibench_cpu_cores_per_10k_requests",
            "Node CPU cores per 10k requests/s of the last repetition",
            f.cores_per_10k.clone(),
        );
        r.register(
            "cnibench_client_saturated",
            "1 when the last repetition's generator could not keep its schedule",
            f.client_saturated.clone(),
        );
        r.register(
            "cnibench_slo_ok",
            "1 when the objective held in the last repetition, 0 when it broke",
            f.slo_ok.clone(),
        );
        r.register(
            "cnibench_worker_up",
            "1 while the worker's control connection is up",
            f.worker_up.clone(),
        );
        r.register(
            "cnibench_tcp_retransmit_ratio",
            "TCP segments retransmitted over segments sent in the client's network namespace, last interval (0..1)",
            f.retransmit.clone(),
        );
        r.register(
            "cnibench_datapath_drops",
            "Packets dropped at the workers: kind interface, softnet, rcvbuf (full receive socket buffer), conntrack",
            f.drops.clone(),
        );
        Metrics {
            f,
            registry: Arc::new(r),
            cni: HashMap::new(),
        }
    }

    /// The exposition text.
    pub fn encode(&self) -> String {
        encode(&self.registry)
    }

    /// Serve `GET /metrics` on `addr` until the process ends; returns the bound
    /// address (`addr` may have port 0).
    pub async fn serve(&self, addr: &str) -> anyhow::Result<SocketAddr> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("--metrics {addr}: cannot listen"))?;
        let bound = listener.local_addr()?;
        let registry = self.registry.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let registry = registry.clone();
                let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let registry = registry.clone();
                    async move { Ok::<_, std::convert::Infallible>(respond(&req, &registry)) }
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc),
                );
            }
        });
        Ok(bound)
    }

    fn labels(&self, s: &ScenarioSpec) -> ScenarioLabels {
        ScenarioLabels {
            scenario: s.name.clone(),
            traffic: s.traffic.to_string(),
            cni: self.cni.get(&s.name).cloned().unwrap_or_default(),
        }
    }
}

fn encode(registry: &Registry) -> String {
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, registry);
    out
}

fn respond(req: &Request<Incoming>, registry: &Registry) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::new()));
    if req.uri().path() != "/metrics" {
        *resp.status_mut() = StatusCode::NOT_FOUND;
        *resp.body_mut() = Full::new(Bytes::from_static(b"try /metrics\n"));
        return resp;
    }
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        ),
    );
    *resp.body_mut() = Full::new(Bytes::from(encode(registry)));
    resp
}

impl Progress for Metrics {
    fn placed(&mut self, scenario: &str, cni: &str) {
        self.cni.insert(scenario.to_string(), cni.to_string());
    }

    fn worker(&mut self, addr: &str, node: &str, up: bool) {
        let l = WorkerLabels {
            worker: addr.to_string(),
            node: node.to_string(),
        };
        self.f.worker_up.get_or_create(&l).set(i64::from(up));
    }

    fn rep_started(&mut self, _: &ScenarioSpec, _: u32, _: usize, _: usize) {}

    fn interval(&mut self, s: &ScenarioSpec, side: Role, r: &IntervalReport) {
        let l = self.labels(s);
        let len_s = r.t_end_ns.saturating_sub(r.t_start_ns) as f64 / 1e9;
        self.f
            .errors
            .get_or_create(&l)
            .inc_by(r.counters.error_total());
        if let Some(h) = r.health.as_deref() {
            let n = |v: Option<u64>| v.unwrap_or(0);
            for (kind, v) in [
                ("interface", n(h.if_rx_dropped) + n(h.if_tx_dropped)),
                ("softnet", n(h.softnet_dropped)),
                ("rcvbuf", n(h.udp_rcvbuf_errors)),
                (
                    "conntrack",
                    n(h.conntrack_drop) + n(h.conntrack_insert_failed),
                ),
            ] {
                let dl = DropLabels {
                    of: l.clone(),
                    kind: kind.to_string(),
                };
                self.f.drops.get_or_create(&dl).inc_by(v);
            }
            if let (Role::Client, Some(out), Some(re)) = (side, h.tcp_out_segs, h.tcp_retrans_segs)
                && out > 0
                && !r.warmup
            {
                self.f
                    .retransmit
                    .get_or_create(&l)
                    .set(re as f64 / out as f64);
            }
        }
        if r.warmup || len_s <= 0.0 {
            return;
        }
        let stream = s.traffic.is_stream();
        if let Some(v) = live_rate(s.traffic, side, r) {
            let family = if stream {
                &self.f.throughput
            } else {
                &self.f.requests
            };
            family.get_or_create(&l).set(v);
        }
        match side {
            Role::Server => {
                if let Some(u) = &r.udp {
                    let (lost, expected) = net_loss(u);
                    if expected > 0 {
                        self.f
                            .loss
                            .get_or_create(&l)
                            .set(lost as f64 / expected as f64);
                    }
                }
            }
            Role::Client => {
                if !stream {
                    // Both directions: what the path carried for the transactions.
                    let bits = (r.counters.bytes_received + r.counters.bytes_sent) as f64 * 8.0;
                    self.f.throughput.get_or_create(&l).set(bits / len_s);
                }
                let Some(p) = hist::decode(&r.latency)
                    .ok()
                    .as_ref()
                    .and_then(Percentiles::of)
                else {
                    return;
                };
                for q in Quantile::ALL {
                    let ql = QuantileLabels {
                        of: l.clone(),
                        quantile: q.q.to_string(),
                    };
                    self.f
                        .latency
                        .get_or_create(&ql)
                        .set((q.of)(&p) as f64 / 1e9);
                }
            }
        }
    }

    fn rep_finished(&mut self, s: &ScenarioSpec, r: &RepResult) {
        let l = self.labels(s);
        let sl = StatusLabels {
            of: l.clone(),
            status: r.status.as_str().to_string(),
        };
        self.f.repetitions.get_or_create(&sl).inc();
        self.f
            .client_saturated
            .get_or_create(&l)
            .set(i64::from(r.client_saturated));
        if let Some(c) = &r.cpu {
            if let Some(v) = c.cores_per_gbps {
                self.f.cores_per_gbps.get_or_create(&l).set(v);
            }
            if let Some(v) = c.cores_per_10k_rps {
                self.f.cores_per_10k.get_or_create(&l).set(v);
            }
        }
        for c in &r.slo {
            let ol = ObjectiveLabels {
                of: l.clone(),
                objective: c.objective.clone(),
            };
            self.f.slo_ok.get_or_create(&ol).set(i64::from(c.ok));
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::result::fixtures::{self, job};
    use crate::result::{Collected, CpuCost, rep_result};
    use cnibench_proto::msg::{Counters, UdpStats};

    /// One second of 100 transactions with a client latency of 250 us, and 1%
    /// datagram loss at the server.
    fn report(role: Role) -> IntervalReport {
        let latency: &[u64] = if role == Role::Client {
            &[250_000]
        } else {
            &[]
        };
        IntervalReport {
            counters: Counters {
                transactions: 100,
                bytes_received: 100,
                bytes_sent: 100,
                ..Default::default()
            },
            udp: (role == Role::Server).then(|| UdpStats {
                received: 99,
                lost: 1,
                ..Default::default()
            }),
            health: (role == Role::Client).then(|| {
                Box::new(cnibench_proto::msg::HealthCounters {
                    tcp_out_segs: Some(1000),
                    tcp_retrans_segs: Some(5),
                    softnet_dropped: Some(2),
                    ..Default::default()
                })
            }),
            ..fixtures::report(0, latency, false)
        }
    }

    #[test]
    fn every_documented_name_is_exposed_with_scenario_and_cni_labels() {
        let spec = cnibench_proto::plan::load(
            "t.yaml",
            "name: t\nscenarios:\n  - {name: u, traffic: udp-rr, path: pod-to-pod-cross-node, duration: 1s, warmup: 0s, slo: {p99: 1ms}}\n",
        )
        .unwrap()
        .scenarios
        .remove(0);
        let mut m = Metrics::new();
        m.placed("u", "flannel-vxlan");
        m.worker("127.0.0.2:7000", "node-a", true);
        m.worker("127.0.0.3:7000", "node-b", false);
        let (client, server) = (report(Role::Client), report(Role::Server));
        m.interval(&spec, Role::Client, &client);
        m.interval(&spec, Role::Server, &server);
        let mut rep = rep_result(
            &spec,
            1,
            Collected {
                jobs: vec![
                    job(Role::Server, vec![server], Some(1)),
                    job(Role::Client, vec![client], Some(1)),
                ],
                failures: Vec::new(),
            },
        );
        rep.slo = crate::slo::check(&spec.slo, &rep);
        rep.cpu = Some(CpuCost {
            client_process_cores: None,
            server_process_cores: None,
            node_cores: Some(0.5),
            node_softirq_cores: None,
            baseline_node_cores: None,
            shared_machine: false,
            sender_thread_cores: None,
            node_unavailable: None,
            cores_per_gbps: Some(0.1),
            cores_per_10k_rps: Some(0.2),
            cores_per_1k_cps: None,
            ..Default::default()
        });
        m.rep_finished(&spec, &rep);
        let text = m.encode();
        for name in NAMES {
            let family = name.trim_end_matches("_total");
            assert!(
                text.contains(&format!("# TYPE {family} ")),
                "{name} missing from:\n{text}"
            );
        }
        let labels = "{scenario=\"u\",traffic=\"udp-rr\",cni=\"flannel-vxlan\"";
        for series in [
            format!("cnibench_requests_per_second{labels}}} 100.0"),
            format!("cnibench_udp_loss_ratio{labels}}} 0.01"),
            format!("cnibench_tcp_retransmit_ratio{labels}}} 0.005"),
            format!("cnibench_datapath_drops_total{labels},kind=\"softnet\"}} 2"),
            format!("cnibench_slo_ok{labels},objective=\"p99\"}} 1"),
            format!("cnibench_repetitions_total{labels},status=\"ok\"}} 1"),
            "cnibench_worker_up{worker=\"127.0.0.3:7000\",node=\"node-b\"} 0".to_string(),
        ] {
            assert!(text.contains(&series), "{series} missing from:\n{text}");
        }
    }
}
