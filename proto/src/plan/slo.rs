//! Service-level objectives of a scenario, as written in the plan:
//!
//! ```yaml
//! slo: { p99: 2ms, p999: 10ms, error_rate: 0.1%, loss: 0.5%, min_throughput: 5000/s }
//! ```
//!
//! Every objective is optional. The coordinator checks them on each repetition
//! (and each soak window, and each sweep step); this module only holds them and
//! says which ones a traffic kind can measure.

use super::Traffic;
use crate::units::{Dur, Percent, Rate};
use serde::{Deserialize, Serialize};

/// The objectives; `None` means "not an objective".
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Slo {
    /// Highest acceptable median latency.
    #[serde(default)]
    pub p50: Option<Dur>,
    /// Highest acceptable 99th percentile latency.
    #[serde(default)]
    pub p99: Option<Dur>,
    /// Highest acceptable 99.9th percentile latency.
    #[serde(default)]
    pub p999: Option<Dur>,
    /// Highest acceptable share of failed transactions.
    #[serde(default)]
    pub error_rate: Option<Percent>,
    /// Highest acceptable datagram loss (UDP kinds).
    #[serde(default)]
    pub loss: Option<Percent>,
    /// Lowest acceptable throughput: a bitrate (goodput) or `N/s` (transactions).
    #[serde(default)]
    pub min_throughput: Option<Rate>,
}

impl Slo {
    /// Whether no objective is set.
    pub fn is_empty(&self) -> bool {
        *self == Slo::default()
    }

    /// The first objective `traffic` cannot measure: `(field, why)`.
    pub fn unmeasurable(&self, traffic: Traffic) -> Option<(&'static str, String)> {
        let latency = [("p50", self.p50), ("p99", self.p99), ("p999", self.p999)];
        if traffic.is_stream()
            && let Some((field, _)) = latency.iter().find(|(_, v)| v.is_some())
        {
            return Some((field, format!("{traffic} measures no latency")));
        }
        if traffic.is_stream() && self.error_rate.is_some() {
            return Some((
                "error_rate",
                format!("{traffic} has no transactions to fail; use a request/response kind"),
            ));
        }
        if !traffic.is_udp() && self.loss.is_some() {
            return Some(("loss", format!("{traffic} does not measure datagram loss")));
        }
        match self.min_throughput {
            Some(Rate::Max) => Some((
                "min_throughput",
                "`max` is not a throughput: write e.g. `1Gbit/s` or `5000/s`".into(),
            )),
            Some(Rate::PerSecond(_)) if traffic.is_stream() => Some((
                "min_throughput",
                format!("{traffic} counts bits, not transactions: write e.g. `1Gbit/s`"),
            )),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_each_kind_can_measure() {
        let p99 = Slo {
            p99: Some("2ms".parse().unwrap()),
            ..Slo::default()
        };
        assert!(p99.unmeasurable(Traffic::TcpRr).is_none());
        assert_eq!(p99.unmeasurable(Traffic::TcpStream).unwrap().0, "p99");
        let loss = Slo {
            loss: Some(Percent(1.0)),
            ..Slo::default()
        };
        assert!(loss.unmeasurable(Traffic::UdpStream).is_none());
        assert_eq!(loss.unmeasurable(Traffic::Http1).unwrap().0, "loss");
        let rps = Slo {
            min_throughput: Some(Rate::PerSecond(10.0)),
            ..Slo::default()
        };
        assert!(rps.unmeasurable(Traffic::Http2).is_none());
        assert!(rps.unmeasurable(Traffic::TcpStream).is_some());
        assert!(Slo::default().is_empty() && !rps.is_empty());
    }
}
