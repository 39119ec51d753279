//! What a worker agrees to do, whoever holds the token: where it may send traffic
//! and how much. A job outside these limits is refused with a message naming the
//! rule, before anything is sent.
//!
//! Targets: with `--allow CIDR` (repeatable) the target must lie in one of those
//! networks; without, it must be one of the run's workers (`Job::peers`), so a
//! plan mistake cannot aim load at anything but the benchmark's own pods.
//!
//! Rates: each client job is converted to both a request (or datagram, or write)
//! rate and a bitrate, from its sizes ([`Load::of`]: this worker's share of the
//! scenario's rate, times request + response size for request/response kinds or
//! the message size for stream kinds), and both are checked against
//! `--max-rate` and `--max-bitrate`, whichever unit the plan wrote its rate in.
//! The caps hold for the worker's total over its concurrent jobs ([`Committed`]),
//! not per job.

use cnibench_proto::msg::{Job, Role};
use cnibench_proto::plan::PathKind;
use cnibench_proto::units::Rate;
use std::collections::HashMap;
use std::net::IpAddr;
use std::str::FromStr;
use std::time::Duration;

/// An IP network, `10.244.0.0/16` or `::1/128`; a bare address is a /32 or /128.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (a, p) = s.split_once('/').unwrap_or((s, ""));
        let addr: IpAddr = a
            .parse()
            .map_err(|_| format!("`{s}`: not an IP address or CIDR"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = if p.is_empty() {
            max
        } else {
            p.parse().map_err(|_| format!("`{s}`: bad prefix length"))?
        };
        if prefix > max {
            return Err(format!("`{s}`: prefix longer than {max}"));
        }
        Ok(Cidr { addr, prefix })
    }
}

impl Cidr {
    /// Whether `ip` is inside this network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let bits = |a: IpAddr| -> (u128, u8) {
            match a {
                IpAddr::V4(v) => (u128::from(u32::from(v)) << 96, 32),
                IpAddr::V6(v) => (u128::from(v), 128),
            }
        };
        let ((net, w1), (x, w2)) = (bits(self.addr), bits(ip));
        if w1 != w2 {
            return false;
        }
        let mask = if self.prefix == 0 {
            0
        } else {
            u128::MAX << (128 - u32::from(self.prefix))
        };
        net & mask == x & mask
    }
}

/// Operator limits, from the worker's flags.
#[derive(Debug, Clone, Default)]
pub struct Limits {
    /// Networks targets must be in; empty = the run's own workers only.
    pub allow: Vec<Cidr>,
    /// Highest request, datagram or write rate (per second), over all jobs.
    pub max_rate: Option<f64>,
    /// Highest bitrate (bit/s), over all jobs.
    pub max_bitrate: Option<f64>,
    /// Longest job (warm-up plus duration).
    pub max_duration: Option<Duration>,
}

impl Limits {
    /// `Err` names the rule a job breaks.
    pub fn check(&self, job: &Job) -> Result<(), String> {
        let s = &job.scenario;
        if let Some(max) = self.max_duration
            && s.warmup.0 + s.duration.0 > max
        {
            return Err(format!(
                "scenario `{}` runs {:?}, above this worker's --max-duration {max:?}",
                s.name,
                s.warmup.0 + s.duration.0
            ));
        }
        if job.role == Role::Server {
            return Ok(());
        }
        if (self.max_rate.is_some() || self.max_bitrate.is_some()) && s.rate == Rate::Max {
            return Err(format!(
                "scenario `{}` is closed loop (rate: max), but this worker caps its rate (--max-rate/--max-bitrate)",
                s.name
            ));
        }
        self.admitted_by(job).map(drop)
    }

    /// The rule that admits a client's target, for the worker's log (`None`
    /// without one: a server job), or why it is refused.
    ///
    /// Behind a Service the target must be the plan's Service (its ClusterIP
    /// and port, or a node of the run at its NodePort), and inside `--allow`
    /// when the operator gave networks; without `--allow` the plan's Service is
    /// admitted.
    pub fn admitted_by(&self, job: &Job) -> Result<Option<String>, String> {
        let Some(target) = job.target else {
            return Ok(None);
        };
        let ip = target.ip();
        let inside = self.allow.iter().find(|c| c.contains(ip));
        let s = &job.scenario;
        let service = match s.path {
            PathKind::PodToService => Some(s.service.as_ref().and_then(|v| v.addr())),
            PathKind::PodToNodeport => Some(
                s.nodeport
                    .filter(|n| n.port == u32::from(target.port()) && job.peers.contains(&ip))
                    .map(|_| target),
            ),
            _ => None,
        };
        if let Some(service) = service {
            if service != Some(target) {
                return Err(format!(
                    "target {target} is not the plan's {} ({})",
                    if s.path == PathKind::PodToService {
                        "Service"
                    } else {
                        "NodePort on a node of the run"
                    },
                    s.service.as_ref().map_or_else(
                        || format!("nodeport {:?}", s.nodeport.map(|n| n.port)),
                        ToString::to_string
                    )
                ));
            }
            return match (self.allow.is_empty(), inside) {
                (true, _) => Ok(Some(format!(
                    "the plan's Service {target} (no --allow: the plan's Service is admitted)"
                ))),
                (false, Some(c)) => Ok(Some(format!(
                    "the plan's Service {target}, inside --allow {c}"
                ))),
                (false, None) => Err(format!(
                    "target {target} (the plan's Service) is outside this worker's --allow networks"
                )),
            };
        }
        let allowed = if self.allow.is_empty() {
            job.peers.contains(&ip)
        } else {
            inside.is_some()
        };
        if allowed {
            Ok(Some(match inside {
                Some(c) => format!("{ip} inside --allow {c}"),
                None => format!("{ip} is one of the run's workers"),
            }))
        } else if self.allow.is_empty() {
            Err(format!(
                "target {ip} is not one of the run's workers (start the worker with --allow CIDR to permit it)"
            ))
        } else {
            Err(format!(
                "target {ip} is outside this worker's --allow networks"
            ))
        }
    }
}

/// What a client job offers from this worker, in both units.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Load {
    /// Requests, datagrams or writes per second.
    pub per_s: f64,
    /// Bits per second (payload: requests and their responses, or messages).
    pub bits_per_s: f64,
}

impl Load {
    /// This worker's share of a client job's rate in both units; zero for
    /// servers (their traffic is their clients' load) and closed loop (refused
    /// by [`Limits::check`] when capped).
    pub fn of(job: &Job) -> Load {
        let s = &job.scenario;
        if job.role == Role::Server {
            return Load::default();
        }
        // Bytes per request, datagram or write.
        let bytes = if s.traffic.is_stream() {
            s.message_size.0 as f64
        } else {
            s.request_size.0 as f64 + s.response_size.0 as f64
        };
        let bits = (bytes * 8.0).max(1.0);
        let share = |total| cnibench_proto::pacing::share(total, s.clients);
        match s.rate {
            Rate::Max => Load::default(),
            Rate::PerSecond(r) => Load {
                per_s: share(r),
                bits_per_s: share(r) * bits,
            },
            Rate::BitsPerSecond(b) => Load {
                per_s: share(b) / bits,
                bits_per_s: share(b),
            },
        }
    }
}

/// The loads of this worker's admitted jobs, until each ends.
#[derive(Debug, Default)]
pub struct Committed {
    jobs: HashMap<u64, Load>,
}

impl Committed {
    /// The sum over the admitted jobs.
    pub fn total(&self) -> Load {
        self.jobs.values().fold(Load::default(), |a, l| Load {
            per_s: a.per_s + l.per_s,
            bits_per_s: a.bits_per_s + l.bits_per_s,
        })
    }

    /// Admit `job` if the total with it stays within both caps; `Err` names the
    /// cap, the job's load in both units and what is already committed.
    pub fn admit(&mut self, limits: &Limits, job: &Job) -> Result<(), String> {
        let load = Load::of(job);
        let before = self.total();
        let (rate, bits) = (
            before.per_s + load.per_s,
            before.bits_per_s + load.bits_per_s,
        );
        let what = || {
            let size = if job.scenario.traffic.is_stream() {
                job.scenario.message_size.0
            } else {
                job.scenario.request_size.0 + job.scenario.response_size.0
            };
            let mut w = format!(
                "scenario `{}` offers {:.0}/s = {} from this worker ({size} B each)",
                job.scenario.name,
                load.per_s,
                bitrate(load.bits_per_s),
            );
            if !self.jobs.is_empty() {
                w += &format!(
                    ", {rate:.0}/s = {} with the {} job(s) it already runs",
                    bitrate(bits),
                    self.jobs.len()
                );
            }
            w
        };
        if let Some(m) = limits.max_rate
            && rate > m
        {
            return Err(format!("{}: above this worker's --max-rate {m}/s", what()));
        }
        if let Some(m) = limits.max_bitrate
            && bits > m
        {
            return Err(format!(
                "{}: above this worker's --max-bitrate {}",
                what(),
                bitrate(m)
            ));
        }
        self.jobs.insert(job.id, load);
        Ok(())
    }

    /// A job ended (done, failed, stopped before it started, or aborted).
    pub fn release(&mut self, job: u64) {
        self.jobs.remove(&job);
    }

    /// Every job ended.
    pub fn clear(&mut self) {
        self.jobs.clear();
    }
}

/// A bitrate for messages.
fn bitrate(b: f64) -> String {
    if b >= 1e9 {
        format!("{:.2} Gbit/s", b / 1e9)
    } else {
        format!("{:.2} Mbit/s", b / 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cnibench_proto::plan;

    fn job(rate: &str, target: &str, peers: &[&str]) -> Job {
        let text = format!(
            "name: t\nscenarios:\n  - {{name: s, traffic: tcp-rr, path: pod-to-pod-cross-node, rate: {rate}, duration: 10s, warmup: 1s}}\n"
        );
        Job {
            id: 1,
            role: Role::Client,
            scenario: plan::load("t.yaml", &text).unwrap().scenarios.remove(0),
            target: Some(target.parse().unwrap()),
            server_cert: vec![],
            clock_correction_ns: 0,
            peers: peers.iter().map(|p| p.parse().unwrap()).collect(),
            client_index: 0,
        }
    }

    /// A client job through the Service of `fields` (a pod-to-service or
    /// pod-to-nodeport scenario), sending to `target`.
    fn service_job(fields: &str, target: &str, peers: &[&str]) -> Job {
        let text = format!("name: t\nscenarios:\n  - {{name: s, traffic: tcp-crr, {fields}}}\n");
        Job {
            scenario: plan::load("t.yaml", &text).unwrap().scenarios.remove(0),
            ..job("max", target, peers)
        }
    }

    #[test]
    fn a_service_target_must_be_the_plans_service() {
        let svc = "path: pod-to-service, service: 10.96.0.10:80";
        let none = Limits::default();
        let j = service_job(svc, "10.96.0.10:80", &["10.244.2.2"]);
        let rule = none.admitted_by(&j).unwrap().unwrap();
        assert!(rule.contains("the plan's Service 10.96.0.10:80"), "{rule}");
        assert!(none.check(&j).is_ok());
        // Another address or port than the plan's Service.
        for other in ["10.96.0.11:80", "10.96.0.10:81"] {
            let e = none
                .check(&service_job(svc, other, &["10.244.2.2"]))
                .unwrap_err();
            assert!(
                e.contains("is not the plan's Service (10.96.0.10:80)"),
                "{e}"
            );
        }
        // With --allow, the Service must be inside it too.
        let pods = Limits {
            allow: vec!["10.244.0.0/16".parse().unwrap()],
            ..Limits::default()
        };
        let e = pods.check(&j).unwrap_err();
        assert!(e.contains("outside this worker's --allow"), "{e}");
        let services = Limits {
            allow: vec!["10.96.0.0/12".parse().unwrap()],
            ..Limits::default()
        };
        let rule = services.admitted_by(&j).unwrap().unwrap();
        assert!(rule.contains("inside --allow 10.96.0.0/12"), "{rule}");
        // A NodePort: the plan's port on a node of the run.
        let np = "path: pod-to-nodeport, nodeport: 30080";
        let peers = ["10.244.2.2", "172.31.255.2"];
        assert!(
            none.check(&service_job(np, "172.31.255.2:30080", &peers))
                .is_ok()
        );
        assert!(
            none.check(&service_job(np, "172.31.255.2:30081", &peers))
                .is_err()
        );
        assert!(
            none.check(&service_job(np, "172.31.255.9:30080", &peers))
                .is_err()
        );
    }

    #[test]
    fn cidrs() {
        let c: Cidr = "10.244.0.0/16".parse().unwrap();
        assert!(c.contains("10.244.9.1".parse().unwrap()));
        assert!(!c.contains("10.245.0.1".parse().unwrap()));
        assert!(!c.contains("::1".parse().unwrap()));
        assert!(
            "::1"
                .parse::<Cidr>()
                .unwrap()
                .contains("::1".parse().unwrap())
        );
        assert!(
            "0.0.0.0/0"
                .parse::<Cidr>()
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("ten/8".parse::<Cidr>().is_err());
    }

    #[test]
    fn targets_must_be_peers_or_allowed() {
        let none = Limits::default();
        assert!(
            none.check(&job("max", "10.0.0.2:80", &["10.0.0.2"]))
                .is_ok()
        );
        let e = none
            .check(&job("max", "10.0.0.9:80", &["10.0.0.2"]))
            .unwrap_err();
        assert!(e.contains("not one of the run's workers"), "{e}");
        let allow = Limits {
            allow: vec!["10.96.0.0/12".parse().unwrap()],
            ..Limits::default()
        };
        assert!(
            allow
                .check(&job("max", "10.96.0.10:80", &["10.0.0.2"]))
                .is_ok()
        );
        assert!(
            allow
                .check(&job("max", "10.0.0.2:80", &["10.0.0.2"]))
                .unwrap_err()
                .contains("--allow")
        );
    }

    #[test]
    fn rate_and_duration_caps() {
        let l = Limits {
            max_rate: Some(1000.0),
            max_duration: Some(Duration::from_secs(5)),
            ..Limits::default()
        };
        let e = l
            .check(&job("500/s", "10.0.0.2:80", &["10.0.0.2"]))
            .unwrap_err();
        assert!(e.contains("--max-duration"), "{e}");
        let l = Limits {
            max_duration: None,
            ..l
        };
        assert!(l.check(&job("500/s", "10.0.0.2:80", &["10.0.0.2"])).is_ok());
        let e = Committed::default()
            .admit(&l, &job("2000/s", "10.0.0.2:80", &["10.0.0.2"]))
            .unwrap_err();
        assert!(e.contains("--max-rate"), "{e}");
        assert!(
            l.check(&job("max", "10.0.0.2:80", &["10.0.0.2"]))
                .unwrap_err()
                .contains("closed loop")
        );
    }

    fn job_of(text: &str) -> Job {
        let text =
            format!("name: t\nscenarios:\n  - {{name: s, path: pod-to-pod-cross-node, {text}}}\n");
        Job {
            scenario: plan::load("t.yaml", &text).unwrap().scenarios.remove(0),
            ..job("max", "10.0.0.2:80", &["10.0.0.2"])
        }
    }

    fn caps(rate: Option<f64>, bits: Option<f64>) -> Limits {
        Limits {
            max_rate: rate,
            max_bitrate: bits,
            ..Limits::default()
        }
    }

    #[test]
    fn every_job_is_checked_in_both_units() {
        let gbit = caps(None, Some(1e9));
        // A datagram rate over a bitrate cap: 1M x 1400 B = 11.2 Gbit/s.
        let pps = job_of("traffic: udp-stream, rate: 1000000pps, message_size: 1400");
        assert_eq!(Load::of(&pps).bits_per_s, 1e6 * 1400.0 * 8.0);
        let e = Committed::default().admit(&gbit, &pps).unwrap_err();
        assert!(
            e.contains("--max-bitrate") && e.contains("11.20 Gbit/s"),
            "{e}"
        );
        // Requests with large bodies: 100000/s x 64 MiB.
        let rr = job_of("traffic: tcp-rr, rate: 100000/s, request_size: 64MiB");
        let e = Committed::default().admit(&gbit, &rr).unwrap_err();
        assert!(e.contains("--max-bitrate"), "{e}");
        // A bitrate over a datagram-rate cap: 10 Gbit/s of 1400 B datagrams is ~893k/s.
        let bits = job_of("traffic: udp-stream, rate: 10Gbit/s, message_size: 1400");
        let e = Committed::default()
            .admit(&caps(Some(100_000.0), None), &bits)
            .unwrap_err();
        assert!(e.contains("--max-rate"), "{e}");
        // Within both.
        let small = job_of("traffic: udp-stream, rate: 10000pps, message_size: 1400");
        assert_eq!(
            Committed::default().admit(&caps(Some(1e5), Some(1e9)), &small),
            Ok(())
        );
        // A server's traffic is its clients' load.
        let server = Job {
            role: Role::Server,
            ..pps
        };
        assert_eq!(Committed::default().admit(&gbit, &server), Ok(()));
    }

    #[test]
    fn caps_hold_over_concurrent_jobs_and_a_share_of_the_rate() {
        let l = caps(Some(1000.0), None);
        let mut c = Committed::default();
        // 2000/s over 2 client workers: 1000/s from this one.
        let shared = job_of("traffic: tcp-rr, rate: 2000/s, clients: 2");
        assert_eq!(Load::of(&shared).per_s, 1000.0);
        let a = Job {
            id: 1,
            ..job_of("traffic: tcp-rr, rate: 600/s")
        };
        let b = Job { id: 2, ..a.clone() };
        assert_eq!(c.admit(&l, &a), Ok(()));
        let e = c.admit(&l, &b).unwrap_err();
        assert!(e.contains("1200/s") && e.contains("1 job(s)"), "{e}");
        // Once the first ends, the second fits.
        c.release(1);
        assert_eq!(c.admit(&l, &b), Ok(()));
        c.clear();
        assert_eq!(c.total(), Load::default());
        assert_eq!(c.admit(&l, &shared), Ok(()));
    }
}
