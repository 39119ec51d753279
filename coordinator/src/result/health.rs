//! Datapath health of a repetition and of each interval, from the workers'
//! kernel counters ([`HealthCounters`]), and the flags operators alert on.
//!
//! Workers in one network namespace read the same TCP, UDP, conntrack and
//! interface counters, and workers on one machine the same softnet ones (as
//! they read the same node CPU, [`super::cpu`]): each namespace and machine is
//! counted once. The clients' own sockets (TCP_INFO) are each client's own.
//! A repetition's counters are those of its measured intervals minus the idle
//! baseline's rate over as long; an interval's are raw.

use super::merge::{Collected, JobData};
use super::{Health, RepResult, Stat};
use cnibench_proto::msg::{HealthCounters, Role};

/// Retransmitted over sent TCP segments above which a repetition is flagged,
/// percent (what operators alert on).
pub const RETRANSMIT_ALERT_PCT: f64 = 1.0;
/// Conntrack fill above which a repetition is flagged, percent.
pub const CONNTRACK_ALERT_PCT: f64 = 90.0;

/// A health figure the summaries show: its column name and its value.
#[derive(Debug, Clone, Copy)]
pub struct HealthMeasure {
    /// Column name in summary.csv; label in the reports.
    pub name: &'static str,
    /// Its value in a repetition's [`Health`].
    pub of: fn(&Health) -> Option<f64>,
    /// Decimals shown.
    pub digits: usize,
}

/// What summary.csv, the reports and `cnibench compare` show of [`Health`], in
/// column order (append, never reorder).
pub const HEALTH_MEASURES: [HealthMeasure; 8] = [
    HealthMeasure {
        name: "tcp_retransmit_pct",
        of: |h| h.tcp_retransmit_pct,
        digits: 3,
    },
    HealthMeasure {
        name: "tcp_retransmits",
        of: |h| h.tcp_retransmits.map(|v| v as f64),
        digits: 0,
    },
    HealthMeasure {
        name: "tcp_timeouts",
        of: |h| h.tcp_timeouts.map(|v| v as f64),
        digits: 0,
    },
    HealthMeasure {
        name: "udp_rcvbuf_errors",
        of: |h| h.udp_rcvbuf_errors.map(|v| v as f64),
        digits: 0,
    },
    HealthMeasure {
        name: "conntrack_fill_pct",
        of: |h| h.conntrack_fill_pct,
        digits: 1,
    },
    HealthMeasure {
        name: "conntrack_insert_failed",
        of: |h| h.conntrack_insert_failed.map(|v| v as f64),
        digits: 0,
    },
    HealthMeasure {
        name: "if_dropped",
        of: |h| match (h.if_rx_dropped, h.if_tx_dropped) {
            (None, None) => None,
            (a, b) => Some((a.unwrap_or(0) + b.unwrap_or(0)) as f64),
        },
        digits: 0,
    },
    HealthMeasure {
        name: "softnet_dropped",
        of: |h| h.softnet_dropped.map(|v| v as f64),
        digits: 0,
    },
];

/// `m` over the repetitions that have it (median, spread).
pub fn health_stat<'a>(
    reps: impl IntoIterator<Item = &'a RepResult>,
    m: &HealthMeasure,
) -> Option<Stat> {
    Stat::of(reps.into_iter().map(|r| r.health.as_ref().and_then(m.of)))
}

/// Apply `$f` to every per-namespace counter of `$a` and `$b`.
macro_rules! netns_counters {
    ($a:expr, $b:expr, $f:expr) => {{
        let (a, b, f) = ($a, $b, $f);
        HealthCounters {
            tcp_out_segs: f(a.tcp_out_segs, b.tcp_out_segs),
            tcp_retrans_segs: f(a.tcp_retrans_segs, b.tcp_retrans_segs),
            tcp_timeouts: f(a.tcp_timeouts, b.tcp_timeouts),
            tcp_lost_retransmit: f(a.tcp_lost_retransmit, b.tcp_lost_retransmit),
            tcp_syn_retrans: f(a.tcp_syn_retrans, b.tcp_syn_retrans),
            tcp_listen_overflows: f(a.tcp_listen_overflows, b.tcp_listen_overflows),
            tcp_listen_drops: f(a.tcp_listen_drops, b.tcp_listen_drops),
            udp_in_errors: f(a.udp_in_errors, b.udp_in_errors),
            udp_rcvbuf_errors: f(a.udp_rcvbuf_errors, b.udp_rcvbuf_errors),
            udp_sndbuf_errors: f(a.udp_sndbuf_errors, b.udp_sndbuf_errors),
            conntrack_insert_failed: f(a.conntrack_insert_failed, b.conntrack_insert_failed),
            conntrack_drop: f(a.conntrack_drop, b.conntrack_drop),
            conntrack_early_drop: f(a.conntrack_early_drop, b.conntrack_early_drop),
            if_rx_packets: f(a.if_rx_packets, b.if_rx_packets),
            if_tx_packets: f(a.if_tx_packets, b.if_tx_packets),
            if_rx_dropped: f(a.if_rx_dropped, b.if_rx_dropped),
            if_tx_dropped: f(a.if_tx_dropped, b.if_tx_dropped),
            if_rx_errors: f(a.if_rx_errors, b.if_rx_errors),
            if_tx_errors: f(a.if_tx_errors, b.if_tx_errors),
            ..HealthCounters::default()
        }
    }};
}

/// Sum of two counters: what either has, `None` when neither does.
fn plus(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.saturating_add(b)),
        (a, b) => a.or(b),
    }
}

/// Conntrack fill of a sample, percent.
fn fill(h: &HealthCounters) -> Option<f64> {
    match (h.conntrack_entries, h.conntrack_max) {
        (Some(e), Some(m)) if m > 0 => Some(e as f64 * 100.0 / m as f64),
        _ => None,
    }
}

/// The fuller conntrack table of `a` and `b` (entries and max together).
fn fuller(a: &mut HealthCounters, b: &HealthCounters) {
    let better = match (fill(a), fill(b)) {
        (Some(x), Some(y)) => y > x,
        (None, Some(_)) => true,
        (None, None) => a.conntrack_entries.is_none(),
        (Some(_), None) => false,
    };
    if better {
        a.conntrack_entries = b.conntrack_entries;
        a.conntrack_max = b.conntrack_max;
    }
}

/// Add `b` to `a`: counters of the namespace if `netns`, of the machine if
/// `machine`, always the fullest conntrack table.
fn add(a: &mut HealthCounters, b: &HealthCounters, netns: bool, machine: bool) {
    if netns {
        let sum = netns_counters!(&*a, b, plus);
        *a = HealthCounters {
            softnet_dropped: a.softnet_dropped,
            softnet_squeezed: a.softnet_squeezed,
            conntrack_entries: a.conntrack_entries,
            conntrack_max: a.conntrack_max,
            sock_retrans: a.sock_retrans,
            sock_rtt_us: a.sock_rtt_us,
            netns: a.netns.take(),
            interface: a.interface.take(),
            ..sum
        };
    }
    if machine {
        a.softnet_dropped = plus(a.softnet_dropped, b.softnet_dropped);
        a.softnet_squeezed = plus(a.softnet_squeezed, b.softnet_squeezed);
    }
    fuller(a, b);
}

/// `m` minus the baseline `b` scaled from its window to `m`'s (the idle rate
/// over as long), not below 0; a counter the baseline lacks is kept whole.
fn minus_baseline(m: &HealthCounters, b: &HealthCounters, scale: f64) -> HealthCounters {
    let sub = |x: Option<u64>, y: Option<u64>| {
        let x = x?;
        Some(match y {
            Some(y) => x.saturating_sub((y as f64 * scale).round() as u64),
            None => x,
        })
    };
    HealthCounters {
        softnet_dropped: sub(m.softnet_dropped, b.softnet_dropped),
        softnet_squeezed: sub(m.softnet_squeezed, b.softnet_squeezed),
        conntrack_entries: m.conntrack_entries,
        conntrack_max: m.conntrack_max,
        sock_retrans: m.sock_retrans,
        sock_rtt_us: m.sock_rtt_us,
        netns: m.netns.clone(),
        interface: m.interface.clone(),
        ..netns_counters!(m, b, sub)
    }
}

/// A job's samples, each with where it was taken: (machine, namespace).
fn keys(j: &JobData, h: &HealthCounters) -> (String, String) {
    let machine = j.machine.clone().unwrap_or_else(|| j.worker.clone());
    let netns = format!(
        "{machine}/{}",
        h.netns.clone().unwrap_or_else(|| j.worker.clone())
    );
    (machine, netns)
}

/// Health from one sample per job, each namespace and machine once; the
/// clients' socket figures summed (retransmits) and averaged (RTT).
fn combine<'a>(samples: impl Iterator<Item = (&'a JobData, HealthCounters)>) -> Option<Health> {
    let (mut machines, mut namespaces) = (Vec::new(), Vec::new());
    let mut total: Option<HealthCounters> = None;
    let mut rtts = Vec::new();
    let mut sock_retrans = None;
    for (j, h) in samples {
        let (machine, netns) = keys(j, &h);
        let new_machine = !machines.contains(&machine);
        let new_netns = !namespaces.contains(&netns);
        let t = total.get_or_insert_with(HealthCounters::default);
        add(t, &h, new_netns, new_machine);
        machines.push(machine);
        namespaces.push(netns);
        if j.role == Role::Client {
            sock_retrans = plus(sock_retrans, h.sock_retrans);
            rtts.extend(h.sock_rtt_us);
        }
    }
    let t = total?;
    let pct = |n: Option<u64>, d: Option<u64>| match (n, d) {
        (Some(n), Some(d)) if d > 0 => Some(n as f64 * 100.0 / d as f64),
        _ => None,
    };
    Some(Health {
        tcp_segments_out: t.tcp_out_segs,
        tcp_retransmits: t.tcp_retrans_segs,
        tcp_retransmit_pct: pct(t.tcp_retrans_segs, t.tcp_out_segs),
        tcp_timeouts: t.tcp_timeouts,
        tcp_lost_retransmits: t.tcp_lost_retransmit,
        tcp_syn_retransmits: t.tcp_syn_retrans,
        tcp_listen_overflows: t.tcp_listen_overflows,
        tcp_listen_drops: t.tcp_listen_drops,
        udp_in_errors: t.udp_in_errors,
        udp_rcvbuf_errors: t.udp_rcvbuf_errors,
        udp_sndbuf_errors: t.udp_sndbuf_errors,
        conntrack_entries: t.conntrack_entries,
        conntrack_max: t.conntrack_max,
        conntrack_fill_pct: fill(&t),
        conntrack_insert_failed: t.conntrack_insert_failed,
        conntrack_drop: t.conntrack_drop,
        conntrack_early_drop: t.conntrack_early_drop,
        if_rx_packets: t.if_rx_packets,
        if_tx_packets: t.if_tx_packets,
        if_rx_dropped: t.if_rx_dropped,
        if_tx_dropped: t.if_tx_dropped,
        if_rx_errors: t.if_rx_errors,
        if_tx_errors: t.if_tx_errors,
        softnet_dropped: t.softnet_dropped,
        softnet_squeezed: t.softnet_squeezed,
        socket_retransmits: sock_retrans,
        socket_rtt_us: (!rtts.is_empty())
            .then(|| rtts.iter().sum::<u64>() as f64 / rtts.len() as f64),
    })
}

/// Health in interval `seq` (raw, no baseline subtracted).
pub(super) fn interval_health(c: &Collected, seq: u32) -> Option<Health> {
    combine(c.jobs.iter().filter_map(|j| {
        let r = j.reports.iter().find(|r| r.seq == seq)?;
        Some((j, (**r.health.as_ref()?).clone()))
    }))
}

/// Health over the measured intervals, each job's idle baseline rate
/// subtracted.
pub(super) fn rep_health(c: &Collected) -> Option<Health> {
    combine(c.jobs.iter().filter_map(|j| {
        let mut sum: Option<HealthCounters> = None;
        let mut window = 0u64;
        let mut rtts = Vec::new();
        for r in j.reports.iter().filter(|r| !r.warmup) {
            let Some(h) = r.health.as_deref() else {
                continue;
            };
            window += r.t_end_ns.saturating_sub(r.t_start_ns);
            rtts.extend(h.sock_rtt_us);
            match &mut sum {
                None => sum = Some(h.clone()),
                Some(s) => {
                    add(s, h, true, true);
                    s.sock_retrans = plus(s.sock_retrans, h.sock_retrans);
                }
            }
        }
        let mut sum = sum?;
        sum.sock_rtt_us = (!rtts.is_empty()).then(|| rtts.iter().sum::<u64>() / rtts.len() as u64);
        let base = j.baseline_health.as_deref();
        let base_window = j.baseline.map_or(0, |b| b.window_ns);
        let net = match base {
            Some(b) if base_window > 0 => {
                minus_baseline(&sum, b, window as f64 / base_window as f64)
            }
            _ => sum,
        };
        Some((j, net))
    }))
}

/// What operators would alert on in `h`.
pub(super) fn health_flags(h: &Health) -> Vec<String> {
    let mut flags = Vec::new();
    if let Some(pct) = h.tcp_retransmit_pct.filter(|p| *p > RETRANSMIT_ALERT_PCT) {
        flags.push(format!(
            "health: TCP retransmitted {pct:.2}% of segments ({} of {}; alert above {RETRANSMIT_ALERT_PCT}%)",
            h.tcp_retransmits.unwrap_or(0),
            h.tcp_segments_out.unwrap_or(0)
        ));
    }
    if let Some(pct) = h.conntrack_fill_pct.filter(|p| *p > CONNTRACK_ALERT_PCT) {
        flags.push(format!(
            "health: conntrack table {pct:.0}% full ({} of {} entries)",
            h.conntrack_entries.unwrap_or(0),
            h.conntrack_max.unwrap_or(0)
        ));
    }
    let (failed, dropped) = (
        h.conntrack_insert_failed.unwrap_or(0),
        h.conntrack_drop.unwrap_or(0),
    );
    if failed + dropped > 0 {
        flags.push(format!(
            "health: conntrack insertions failed {failed} times, {dropped} packets dropped"
        ));
    }
    let (rx, tx) = (h.if_rx_dropped.unwrap_or(0), h.if_tx_dropped.unwrap_or(0));
    if rx + tx > 0 {
        flags.push(format!(
            "health: the data interfaces dropped {} packets (rx {rx}, tx {tx})",
            rx + tx
        ));
    }
    if let Some(n) = h.softnet_dropped.filter(|n| *n > 0) {
        flags.push(format!(
            "health: the softnet backlog dropped {n} packets (a CPU could not keep up)"
        ));
    }
    if let Some(n) = h.udp_rcvbuf_errors.filter(|n| *n > 0) {
        flags.push(format!(
            "health: {n} datagrams dropped by a full receive socket buffer (local drops at the receiving host, not path loss)"
        ));
    }
    flags
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::result::fixtures::{job, report};
    use cnibench_proto::msg::CpuUsage;

    /// A sample of one interval in namespace `ns`.
    fn sample(ns: &str, out: u64, retrans: u64, softnet: u64) -> HealthCounters {
        HealthCounters {
            netns: Some(ns.into()),
            tcp_out_segs: Some(out),
            tcp_retrans_segs: Some(retrans),
            softnet_dropped: Some(softnet),
            udp_rcvbuf_errors: Some(0),
            ..Default::default()
        }
    }

    fn with_health(role: Role, h: impl Fn(u32) -> HealthCounters) -> JobData {
        let reports = (0..3)
            .map(|q| {
                let mut r = report(q, &[], q == 0);
                r.health = Some(Box::new(h(q)));
                r
            })
            .collect();
        let mut j = job(role, reports, Some(3));
        j.machine = Some("boot-1".into());
        j
    }

    #[test]
    fn each_namespace_and_machine_counts_once() {
        // Client and server in their own namespaces on one machine: TCP counts
        // twice (two namespaces' counters), softnet once (one machine's).
        let c = Collected {
            jobs: vec![
                with_health(Role::Client, |_| sample("net:[1]", 1000, 20, 3)),
                with_health(Role::Server, |_| sample("net:[2]", 500, 0, 3)),
            ],
            failures: vec![],
        };
        let h = interval_health(&c, 1).unwrap();
        assert_eq!(h.tcp_segments_out, Some(1500));
        assert_eq!(h.tcp_retransmits, Some(20));
        assert!((h.tcp_retransmit_pct.unwrap() - 100.0 * 20.0 / 1500.0).abs() < 1e-9);
        assert_eq!(h.softnet_dropped, Some(3));
        // In one namespace, the same counters once.
        let c = Collected {
            jobs: vec![
                with_health(Role::Client, |_| sample("net:[1]", 1000, 20, 3)),
                with_health(Role::Server, |_| sample("net:[1]", 1000, 20, 3)),
            ],
            failures: vec![],
        };
        let h = rep_health(&c).unwrap();
        assert_eq!(h.tcp_segments_out, Some(2000), "two measured intervals");
        assert_eq!(h.tcp_retransmit_pct, Some(2.0));
        let flags = health_flags(&h);
        assert!(flags[0].contains("retransmitted 2.00%"), "{flags:?}");
        assert!(flags[1].contains("softnet backlog dropped 6"), "{flags:?}");
        assert_eq!(flags.len(), 2, "{flags:?}");
        // Nothing reported: no health at all, not zeros.
        let none = Collected {
            jobs: vec![job(Role::Client, vec![report(0, &[], false)], Some(1))],
            failures: vec![],
        };
        assert_eq!(rep_health(&none), None);
        assert_eq!(interval_health(&none, 0), None);
    }

    #[test]
    fn the_idle_baseline_is_subtracted_and_absent_counters_stay_absent() {
        // 1 s idle window with 5 retransmits and 2 softnet drops; two measured
        // 1 s intervals with 10 and 2 each: 20 - 10 and 4 - 4.
        let mut j = with_health(Role::Client, |_| sample("net:[1]", 1000, 10, 2));
        j.baseline = Some(CpuUsage {
            window_ns: 1_000_000_000,
            ..Default::default()
        });
        j.baseline_health = Some(Box::new(sample("net:[1]", 100, 5, 2)));
        let c = Collected {
            jobs: vec![j],
            failures: vec![],
        };
        let h = rep_health(&c).unwrap();
        assert_eq!(h.tcp_retransmits, Some(10));
        assert_eq!(h.tcp_segments_out, Some(1800));
        assert_eq!(h.softnet_dropped, Some(0));
        assert_eq!(h.udp_rcvbuf_errors, Some(0));
        assert_eq!(h.conntrack_entries, None, "no conntrack: not available");
        assert_eq!(h.conntrack_fill_pct, None);
        assert_eq!(h.if_rx_dropped, None);
        assert!(health_flags(&h).is_empty(), "{:?}", health_flags(&h));
    }

    #[test]
    fn conntrack_fill_receiver_drops_and_socket_figures() {
        let c = Collected {
            jobs: vec![
                with_health(Role::Client, |q| HealthCounters {
                    netns: Some("net:[1]".into()),
                    conntrack_entries: Some(100 + u64::from(q)),
                    conntrack_max: Some(1000),
                    sock_retrans: Some(2),
                    sock_rtt_us: Some(100 * u64::from(q)),
                    ..Default::default()
                }),
                with_health(Role::Server, |_| HealthCounters {
                    netns: Some("net:[2]".into()),
                    conntrack_entries: Some(950),
                    conntrack_max: Some(1000),
                    conntrack_insert_failed: Some(1),
                    udp_rcvbuf_errors: Some(7),
                    if_rx_dropped: Some(1),
                    sock_retrans: Some(99),
                    ..Default::default()
                }),
            ],
            failures: vec![],
        };
        let h = rep_health(&c).unwrap();
        assert_eq!(h.conntrack_entries, Some(950), "the fullest namespace");
        assert_eq!(h.conntrack_fill_pct, Some(95.0));
        assert_eq!(h.udp_rcvbuf_errors, Some(14));
        assert_eq!(h.socket_retransmits, Some(4), "the clients' own sockets");
        assert_eq!(h.socket_rtt_us, Some(150.0), "the mean over intervals");
        assert_eq!(h.tcp_retransmit_pct, None, "no segments: not available");
        let flags = health_flags(&h).join("\n");
        for want in [
            "conntrack table 95% full (950 of 1000",
            "conntrack insertions failed 2 times",
            "data interfaces dropped 2 packets (rx 2, tx 0)",
            "14 datagrams dropped by a full receive socket buffer (local drops",
        ] {
            assert!(flags.contains(want), "{want} in {flags}");
        }
    }
}
