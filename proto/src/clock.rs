//! Clock offset between coordinator and worker, NTP style, from Ping/Pong samples.
//!
//! For one probe: coordinator sends at t1, worker receives at t2 and answers at t3,
//! coordinator receives at t4. offset = ((t2 - t1) + (t3 - t4)) / 2 (worker minus
//! coordinator), delay = (t4 - t1) - (t3 - t2). The sample with the smallest delay
//! is the least disturbed by queueing; its offset is wrong by at most delay / 2.
//!
//! [`unix_now_ns`] reads the wall clock both sides stamp probes and start times
//! with; the estimator itself takes timestamps in and never reads a clock.

use serde::{Deserialize, Serialize};
use std::time::{SystemTime, UNIX_EPOCH};

/// Unix time now, ns (0 before 1970, `i64::MAX` after 2262).
pub fn unix_now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// One Ping/Pong exchange (unix ns; t1, t4 coordinator clock; t2, t3 worker clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    /// Coordinator send.
    pub t1: i64,
    /// Worker receive.
    pub t2: i64,
    /// Worker send.
    pub t3: i64,
    /// Coordinator receive.
    pub t4: i64,
}

/// Offset estimate with its error bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockEstimate {
    /// Worker clock minus coordinator clock, ns.
    pub offset_ns: i64,
    /// The true offset lies within offset ± bound (half the round trip of the best probe).
    pub bound_ns: i64,
    /// Round-trip time of the best probe, ns.
    pub rtt_ns: i64,
    /// Probes considered.
    pub samples: u32,
}

/// Minimum-delay filter over probes; `None` if there are no usable probes.
pub fn estimate(probes: &[Probe]) -> Option<ClockEstimate> {
    let usable = probes
        .iter()
        .map(|p| (p, (p.t4 - p.t1) - (p.t3 - p.t2)))
        .filter(|(p, d)| *d >= 0 && p.t3 >= p.t2 && p.t4 >= p.t1);
    let (best, delay) = usable.min_by_key(|(_, d)| *d)?;
    let offset = ((best.t2 - best.t1) + (best.t3 - best.t4)) / 2;
    Some(ClockEstimate {
        offset_ns: offset,
        bound_ns: delay / 2 + 1,
        rtt_ns: delay,
        samples: probes.len() as u32,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_min_delay_and_bounds_error() {
        // Worker is 1000 ns ahead. Probe A: symmetric 100 ns each way.
        // Probe B: 5000 ns queueing on the way back (asymmetric, larger delay).
        let a = Probe {
            t1: 0,
            t2: 1100,
            t3: 1150,
            t4: 250,
        };
        let b = Probe {
            t1: 10_000,
            t2: 11_100,
            t3: 11_150,
            t4: 15_250,
        };
        let e = estimate(&[b, a]).unwrap();
        assert_eq!(e.offset_ns, 1000);
        assert_eq!(e.rtt_ns, 200);
        assert!((e.offset_ns - 1000).abs() <= e.bound_ns);
        assert!(estimate(&[]).is_none());
        // Garbage timestamps (negative delay) are ignored, not trusted.
        assert!(
            estimate(&[Probe {
                t1: 100,
                t2: 0,
                t3: 0,
                t4: 0
            }])
            .is_none()
        );
    }

    #[test]
    fn now_is_after_2020_and_does_not_run_backwards_much() {
        let a = unix_now_ns();
        let b = unix_now_ns();
        assert!(a > 1_577_836_800_000_000_000, "{a}");
        assert!(b >= a - 1_000_000_000, "{a} then {b}");
    }
}
