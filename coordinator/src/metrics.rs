//! Live Prometheus metrics of a run or soak (`--metrics ADDR`), in the
//! OpenMetrics text format at `http://ADDR/metrics`.
//!
//! Gauges follow the last interval of each scenario (throughput, request rate,
//! latency quantiles of the client histogram, loss), merged over the workers of
//! that side as the result merges it: an interval is shown once every client
//! (or server) has reported it, its counters summed and its histograms added
//! (with `clients: 4` the rate is the total, not one client's). Counters add
//! up errors (counted once, as in result.json: the clients' for
//! request/response kinds, the receivers' for streams; warm-up excluded) and
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
    gather: Gather,
}

/// The interval reports of each scenario, side and interval, gathered until
/// every worker of that side has sent its own. Pure: fed reports, gives back
/// whole intervals.
#[derive(Debug, Default)]
struct Gather {
    /// Workers per side, by scenario: (clients, servers).
    sides: HashMap<String, (usize, usize)>,
    pending: HashMap<(String, Role, u32), Vec<IntervalReport>>,
}

impl Gather {
    /// Add one worker's report; the interval merged over the side's workers
    /// once the last of them has reported it.
    fn add(&mut self, scenario: &str, side: Role, r: &IntervalReport) -> Option<IntervalReport> {
        let (clients, servers) = self.sides.get(scenario).copied().unwrap_or((1, 1));
        let expected = if side == Role::Client {
            clients
        } else {
            servers
        };
        if expected <= 1 {
            return Some(r.clone());
        }
        let key = (scenario.to_string(), side, r.seq);
        let got = self.pending.entry(key.clone()).or_default();
        got.push(r.clone());
        if got.len() < expected {
            return None;
        }
        let got = self.pending.remove(&key)?;
        Some(merge(&got))
    }

    /// A new repetition of `scenario`: what is still waiting belongs to an
    /// earlier one (a worker that never reported it).
    fn forget(&mut self, scenario: &str) {
        self.pending.retain(|k, _| k.0 != scenario);
    }
}

/// One interval over several workers: counters and datagram counts summed,
/// latency histograms added (the other histograms are not shown).
fn merge(reports: &[IntervalReport]) -> IntervalReport {
    let mut latency = hist::new_latency();
    let mut out = reports[0].clone();
    out.counters = Default::default();
    out.udp = None;
    out.health = None;
    for r in reports {
        out.counters.add(&r.counters);
        if let Some(u) = &r.udp {
            out.udp.get_or_insert_with(Default::default).add(u);
        }
        if let Ok(h) = hist::decode(&r.latency) {
            let _ = latency.add(&h);
        }
    }
    out.latency = hist::encode(&latency);
    out
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
            "Failed requests and connections, counted once (the clients' for request/response kinds, the receivers' for streams), warm-up excluded",
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
            gather: Gather::default(),
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

    fn sides(&mut self, scenario: &str, clients: usize, servers: usize) {
        self.gather
            .sides
            .insert(scenario.to_string(), (clients, servers));
    }

    fn rep_started(&mut self, s: &ScenarioSpec, _: u32, _: usize, _: usize) {
        self.gather.forget(&s.name);
    }

    fn interval(&mut self, s: &ScenarioSpec, side: Role, r: &IntervalReport) {
        let l = self.labels(s);
        let stream = s.traffic.is_stream();
        // Counted once, as result.json does: where every request's outcome is
        // known (the client), or where a stream arrives (the receiver).
        let counting = if stream { Role::Server } else { Role::Client };
        if side == counting && !r.warmup {
            self.f
                .errors
                .get_or_create(&l)
                .inc_by(r.counters.error_total());
        }
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
        let Some(merged) = self.gather.add(&s.name, side, r) else {
            return;
        };
        let r = &merged;
        let len_s = r.t_end_ns.saturating_sub(r.t_start_ns) as f64 / 1e9;
        if r.warmup || len_s <= 0.0 {
            return;
        }
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

    /// The series line of `name` for scenario `s` (tcp-rr on CNI `c`).
    fn value(m: &Metrics, name: &str) -> Option<f64> {
        let prefix = format!("{name}{{scenario=\"s\",traffic=\"tcp-rr\",cni=\"c\"}} ");
        m.encode()
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .map(|v| v.parse().unwrap())
    }

    #[test]
    fn an_interval_is_shown_merged_over_every_client_and_errors_count_once() {
        // Placed on four clients and two servers.
        let spec = fixtures::spec();
        let mut m = Metrics::new();
        m.placed("s", "c");
        m.sides("s", 4, 2);
        m.rep_started(&spec, 1, 1, 1);
        let failing = |seq: u32, warmup: bool, samples: &[u64]| {
            let mut r = fixtures::report(seq, samples, warmup);
            r.counters.errors.insert("reset".into(), 2);
            r
        };
        // Warm-up: its failures are not counted, its rate not shown.
        for _ in 0..4 {
            m.interval(&spec, Role::Client, &failing(0, true, &[1000; 100]));
        }
        assert_eq!(value(&m, "cnibench_requests_per_second"), None);
        assert_eq!(value(&m, "cnibench_errors_total").unwrap_or(0.0), 0.0);
        // Three of four clients: nothing shown yet (not three quarters).
        let latencies = [1_000, 2_000, 3_000, 400_000];
        for &ns in &latencies[..3] {
            m.interval(&spec, Role::Client, &failing(1, false, &[ns; 100]));
        }
        assert_eq!(value(&m, "cnibench_requests_per_second"), None);
        // The server's view of the same failures does not count them again.
        for _ in 0..2 {
            m.interval(&spec, Role::Server, &failing(1, false, &[]));
        }
        m.interval(
            &spec,
            Role::Client,
            &failing(1, false, &[latencies[3]; 100]),
        );
        assert_eq!(value(&m, "cnibench_requests_per_second"), Some(400.0));
        assert_eq!(value(&m, "cnibench_errors_total"), Some(8.0));
        // The quantiles are the merged histogram's: p99 is the slow client's.
        let p99 = m
            .encode()
            .lines()
            .find_map(|l| {
                l.strip_prefix(
                    "cnibench_latency_seconds{scenario=\"s\",traffic=\"tcp-rr\",cni=\"c\",quantile=\"0.99\"} ",
                )
            })
            .map(|v| v.parse::<f64>().unwrap())
            .unwrap();
        assert!((p99 - 400e-6).abs() < 1e-6, "{p99}");

        // A client that never reported interval 2 holds it back, and a new
        // repetition forgets it.
        for _ in 0..3 {
            m.interval(
                &spec,
                Role::Client,
                &fixtures::report(2, &[1000; 10], false),
            );
        }
        assert_eq!(value(&m, "cnibench_requests_per_second"), Some(400.0));
        m.rep_started(&spec, 2, 2, 2);
        m.interval(
            &spec,
            Role::Client,
            &fixtures::report(2, &[1000; 10], false),
        );
        assert_eq!(value(&m, "cnibench_requests_per_second"), Some(400.0));
        assert!(m.gather.pending.values().all(|v| v.len() == 1));
    }
}
