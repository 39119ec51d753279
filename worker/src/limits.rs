//! What a worker agrees to do, whoever holds the token: where it may send traffic
//! and how much. A job outside these limits is refused with a message naming the
//! rule, before anything is sent.
//!
//! Targets: with `--allow CIDR` (repeatable) the target must lie in one of those
//! networks; without, it must be one of the run's workers (`Job::peers`), so a
//! plan mistake cannot aim load at anything but the benchmark's own pods.

use cnibench_proto::msg::{Job, Role};
use cnibench_proto::units::Rate;
use std::net::IpAddr;
use std::str::FromStr;
use std::time::Duration;

/// An IP network, `10.244.0.0/16` or `::1/128`; a bare address is a /32 or /128.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
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
    /// Highest request or datagram rate per job (per second).
    pub max_rate: Option<f64>,
    /// Highest bitrate per job (bit/s).
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
        let capped = self.max_rate.is_some() || self.max_bitrate.is_some();
        match s.rate {
            Rate::Max if capped => {
                return Err(format!(
                    "scenario `{}` is closed loop (rate: max), but this worker caps its rate (--max-rate/--max-bitrate)",
                    s.name
                ));
            }
            Rate::PerSecond(r) if self.max_rate.is_some_and(|m| r > m) => {
                return Err(format!(
                    "scenario `{}`: {r}/s is above this worker's --max-rate",
                    s.name
                ));
            }
            Rate::BitsPerSecond(b) if self.max_bitrate.is_some_and(|m| b > m) => {
                return Err(format!(
                    "scenario `{}`: {b} bit/s is above this worker's --max-bitrate",
                    s.name
                ));
            }
            _ => {}
        }
        let Some(target) = job.target else {
            return Ok(());
        };
        let ip = target.ip();
        let allowed = if self.allow.is_empty() {
            job.peers.contains(&ip)
        } else {
            self.allow.iter().any(|c| c.contains(ip))
        };
        if allowed {
            Ok(())
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
        assert!(
            l.check(&job("2000/s", "10.0.0.2:80", &["10.0.0.2"]))
                .unwrap_err()
                .contains("--max-rate")
        );
        assert!(
            l.check(&job("max", "10.0.0.2:80", &["10.0.0.2"]))
                .unwrap_err()
                .contains("closed loop")
        );
    }
}
