//! One-way delay of datagrams (udp-stream): the receiver's transit times are
//! already corrected by the clock offset the coordinator gave it; they are
//! published only when that correction's error bound is small next to them.

use super::OneWayDelay;
use super::merge::{Collected, JobData};
use cnibench_proto::msg::Role;
use hdrhistogram::Histogram;

/// One-way delay from the receiver's transit histogram (already corrected by the
/// clock offset the coordinator gave the receiver) and that correction's bound.
pub(super) fn one_way_delay(
    c: &Collected,
    transit: &Histogram<u64>,
    negative: u64,
) -> Option<OneWayDelay> {
    if transit.is_empty() && negative == 0 {
        return None;
    }
    let unavailable = |reason: String| OneWayDelay {
        available: false,
        reason: Some(reason),
        bound_ns: None,
        p50_ns: None,
        p99_ns: None,
        max_ns: None,
    };
    let server = c.jobs.iter().find(|j| j.role == Role::Server)?;
    let clients: Vec<&JobData> = c.jobs.iter().filter(|j| j.role == Role::Client).collect();
    let [client] = clients[..] else {
        return Some(unavailable("more than one sender".into()));
    };
    // The same kernel means the same clock: no correction and no error.
    let same_clock = client.machine.is_some() && client.machine == server.machine;
    let bound = if same_clock {
        0
    } else {
        match (client.clock, server.clock) {
            (Some(cc), Some(sc)) => sc.bound_ns + cc.bound_ns,
            _ => return Some(unavailable("no clock offset estimate for both ends".into())),
        }
    };
    let total = transit.len() + negative;
    if negative * 100 > total {
        return Some(unavailable(format!(
            "{negative} of {total} datagrams arrived before they were sent by the corrected clocks"
        )));
    }
    let p50 = transit.value_at_quantile(0.5) as i64;
    if bound > p50 / 10 {
        return Some(unavailable(format!(
            "clock offset bound ±{} exceeds 10% of the median delay {}",
            crate::fmt::ns(bound as u64),
            crate::fmt::ns(p50 as u64)
        )));
    }
    Some(OneWayDelay {
        available: true,
        reason: None,
        bound_ns: Some(bound),
        p50_ns: Some(p50),
        p99_ns: Some(transit.value_at_quantile(0.99) as i64),
        max_ns: Some(transit.max() as i64),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::result::fixtures::job;
    use cnibench_proto::clock::ClockEstimate;
    use cnibench_proto::hist;

    #[test]
    fn one_way_delay_needs_a_good_clock() {
        let mut h = hist::new_latency();
        for _ in 0..100 {
            hist::record(&mut h, 50_000);
        }
        let clock = |offset_ns, bound_ns| {
            Some(ClockEstimate {
                offset_ns,
                bound_ns,
                rtt_ns: 2 * bound_ns,
                samples: 10,
            })
        };
        let mut c = Collected {
            jobs: vec![
                job(Role::Client, vec![], None),
                job(Role::Server, vec![], None),
            ],
            failures: vec![],
        };
        c.jobs[0].clock = clock(0, 2_000);
        c.jobs[1].clock = clock(1_000_000, 2_000);
        let d = one_way_delay(&c, &h, 0).unwrap();
        assert!(d.available, "{d:?}");
        assert_eq!(d.bound_ns, Some(4_000));
        assert!((d.p50_ns.unwrap() - 50_000).abs() < 100, "{d:?}");
        // A loose bound makes it unavailable, never a made-up (or negative) number.
        c.jobs[1].clock = clock(1_000_000, 40_000);
        let d = one_way_delay(&c, &h, 0).unwrap();
        assert!(!d.available && d.p50_ns.is_none(), "{d:?}");
        c.jobs[1].clock = clock(1_000_000, 10);
        assert!(
            !one_way_delay(&c, &h, 50).unwrap().available,
            "negative transits"
        );
        // Same machine: same clock, exact.
        c.jobs[0].machine = Some("boot".into());
        c.jobs[1].machine = Some("boot".into());
        let d = one_way_delay(&c, &h, 0).unwrap();
        assert_eq!((d.available, d.bound_ns), (true, Some(0)));
    }
}
