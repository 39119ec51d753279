//! The exact merge of one repetition: what arrived from its jobs
//! ([`Collected`]) into a [`RepResult`]. Counters are summed and histograms added
//! bucket by bucket; percentiles are read from the sums.

use super::cpu::{cpu_cost, interval_node_cores};
use super::delay::one_way_delay;
use super::{IntervalResult, Percentiles, RepResult, Stat, Status, UdpResult, encode_b64};
use cnibench_proto::clock::ClockEstimate;
use cnibench_proto::hist;
use cnibench_proto::msg::{Counters, CpuUsage, IntervalReport, Role, ScheduleStats, UdpStats};
use cnibench_proto::plan::{ScenarioSpec, Traffic};
use cnibench_proto::units::Rate;
use hdrhistogram::Histogram;

/// What arrived from one job (one worker's side of a repetition).
#[derive(Debug)]
pub struct JobData {
    /// Client or server.
    pub role: Role,
    /// Worker address.
    pub worker: String,
    /// Interval reports, in arrival order.
    pub reports: Vec<IntervalReport>,
    /// `Done.intervals`, if the job finished.
    pub done: Option<u32>,
    /// CPU use in the idle window before the job's traffic.
    pub baseline: Option<CpuUsage>,
    /// Machine identity (kernel boot id): jobs with the same one share node CPU.
    pub machine: Option<String>,
    /// CPUs of the worker's machine.
    pub cpus: u32,
    /// The worker's clock offset to the coordinator when the repetition started.
    pub clock: Option<ClockEstimate>,
}

/// What the coordinator collected for one repetition.
#[derive(Debug, Default)]
pub struct Collected {
    /// One entry per job (the server and each client).
    pub jobs: Vec<JobData>,
    /// Failures (worker `Failed`, lost connections, timeouts), in order.
    pub failures: Vec<String>,
}

fn secs(ns: u64) -> f64 {
    ns as f64 / 1e9
}

/// One side of one interval, merged over that side's workers.
#[derive(Debug)]
struct Side {
    len_ns: u64,
    t_start_ns: u64,
    t_end_ns: u64,
    warmup: bool,
    counters: Counters,
    schedule: ScheduleStats,
    udp: Option<UdpStats>,
    latency: Histogram<u64>,
    service: Histogram<u64>,
    transit: Histogram<u64>,
}

/// Merge the reports of `role` with sequence number `seq` (exactly: counters are
/// summed, histograms added).
fn merge_side(c: &Collected, role: Role, seq: u32, flags: &mut Vec<String>) -> Option<Side> {
    let mut side: Option<Side> = None;
    for j in c.jobs.iter().filter(|j| j.role == role) {
        let Some(r) = j.reports.iter().find(|r| r.seq == seq) else {
            continue;
        };
        let s = side.get_or_insert_with(|| Side {
            len_ns: r.t_end_ns.saturating_sub(r.t_start_ns),
            t_start_ns: r.t_start_ns,
            t_end_ns: r.t_end_ns,
            warmup: r.warmup,
            counters: Counters::default(),
            schedule: ScheduleStats::default(),
            udp: None,
            latency: hist::new_latency(),
            service: hist::new_latency(),
            transit: hist::new_latency(),
        });
        s.counters.add(&r.counters);
        s.schedule.add(&r.schedule);
        if let Some(u) = &r.udp {
            s.udp.get_or_insert_with(UdpStats::default).add(u);
        }
        for (bytes, into, what) in [
            (&r.latency, &mut s.latency, "latency"),
            (&r.service, &mut s.service, "service-time"),
            (&r.transit, &mut s.transit, "transit"),
        ] {
            match hist::decode(bytes) {
                Ok(h) => {
                    let _ = into.add(&h);
                }
                Err(e) => flags.push(format!(
                    "interval {seq}: corrupt {what} histogram from {}: {e}",
                    j.worker
                )),
            }
        }
    }
    side
}

/// Net datagram loss in percent: gaps opened minus gaps later filled, over what
/// was expected.
fn loss_pct(u: &UdpStats) -> Option<f64> {
    let lost = u.lost.saturating_sub(u.reordered);
    let expected = u.received + lost;
    (expected > 0).then(|| lost as f64 * 100.0 / expected as f64)
}

/// Open-loop operations per second a client side achieved, in the unit of the
/// plan's rate (requests, datagrams or bits).
pub fn achieved_rate(spec: &ScenarioSpec, client: &Counters, d: f64) -> f64 {
    match spec.rate {
        Rate::BitsPerSecond(_) => client.bytes_sent as f64 * 8.0 / d,
        _ if spec.traffic == Traffic::UdpStream => {
            client.bytes_sent as f64 / spec.message_size.0 as f64 / d
        }
        _ => client.transactions as f64 / d,
    }
}

/// Build one repetition's result from what was collected.
pub fn rep_result(spec: &ScenarioSpec, repetition: u32, mut c: Collected) -> RepResult {
    let mut flags = c.failures.clone();
    let mut incomplete = !c.failures.is_empty();
    let expected = spec.interval_count();
    for j in &mut c.jobs {
        j.reports.sort_by_key(|r| r.seq);
        j.reports.dedup_by_key(|r| r.seq);
        let got = j.reports.len() as u32;
        let side = if j.role == Role::Client {
            "client"
        } else {
            "server"
        };
        if got < expected {
            incomplete = true;
            flags.push(format!(
                "{side} {}: {} of {expected} intervals missing",
                j.worker,
                expected - got
            ));
        }
        if let Some(n) = j.done
            && n != got
        {
            incomplete = true;
            flags.push(format!(
                "{side} {}: reported {n} intervals, {got} arrived",
                j.worker
            ));
        }
    }
    let corrupt_before = flags.len();
    let mut lat_all = hist::new_latency();
    let mut svc_all = hist::new_latency();
    let mut transit_all = hist::new_latency();
    let mut negative = 0u64;
    let (mut client, mut server) = (Counters::default(), Counters::default());
    let mut schedule = ScheduleStats::default();
    let mut udp: Option<UdpStats> = None;
    let mut jitters = Vec::new();
    let mut duration_ns = 0u64;
    let mut intervals = Vec::new();
    let has_servers = c.jobs.iter().any(|j| j.role == Role::Server);
    for seq in 0..expected {
        let cl = merge_side(&c, Role::Client, seq, &mut flags);
        let sv = merge_side(&c, Role::Server, seq, &mut flags);
        let Some(base) = cl.as_ref().or(sv.as_ref()) else {
            continue;
        };
        let len_ns = base.len_ns;
        let received = cl.as_ref().map_or(0, |r| r.counters.bytes_received)
            + sv.as_ref().map_or(0, |r| r.counters.bytes_received);
        let transactions = cl.as_ref().map_or(0, |r| r.counters.transactions);
        let errors = cl.as_ref().map_or(0, |r| r.counters.error_total())
            + sv.as_ref().map_or(0, |r| r.counters.error_total());
        let per_s = |x: u64| (len_ns > 0).then(|| x as f64 / secs(len_ns));
        let empty = hist::new_latency();
        let lat = cl.as_ref().map_or(&empty, |r| &r.latency);
        let svc = cl.as_ref().map_or(&empty, |r| &r.service);
        let iv_udp = sv.as_ref().and_then(|r| r.udp);
        let mut stalled = false;
        if !base.warmup {
            let progress = if spec.traffic.is_stream() {
                received
            } else {
                transactions
            };
            // Only both sides' reports can show a stall (the client's alone
            // against an external server); a missing side is reported as
            // missing, not as zero progress.
            if progress == 0 && cl.is_some() && (sv.is_some() || !has_servers) {
                flags.push(format!("interval {seq}: no progress (stall)"));
                stalled = true;
            }
            if let Some(r) = &cl {
                client.add(&r.counters);
                schedule.add(&r.schedule);
                duration_ns += len_ns;
            }
            if let Some(r) = &sv {
                server.add(&r.counters);
                let _ = transit_all.add(&r.transit);
            }
            if let Some(u) = iv_udp {
                negative += u.transit_negative;
                udp.get_or_insert_with(UdpStats::default).add(&u);
                jitters.extend(u.jitter_ns);
            }
            let _ = lat_all.add(lat);
            let _ = svc_all.add(svc);
        }
        intervals.push(IntervalResult {
            seq,
            warmup: base.warmup,
            t_start_s: secs(base.t_start_ns),
            t_end_s: secs(base.t_end_ns),
            throughput_bps: (cl.is_some() && sv.is_some())
                .then(|| per_s(received * 8))
                .flatten(),
            requests_per_s: if spec.traffic.is_stream() {
                None
            } else {
                cl.as_ref().and(per_s(transactions))
            },
            transactions,
            p50_ns: (!lat.is_empty()).then(|| lat.value_at_quantile(0.5)),
            p99_ns: (!lat.is_empty()).then(|| lat.value_at_quantile(0.99)),
            service_p99_ns: (!svc.is_empty()).then(|| svc.value_at_quantile(0.99)),
            loss_pct: iv_udp.as_ref().and_then(loss_pct),
            jitter_ns: iv_udp.and_then(|u| u.jitter_ns),
            node_cores: interval_node_cores(&c, seq),
            errors,
            stalled,
            histogram: encode_b64(lat),
        });
    }
    incomplete |= flags.len() > corrupt_before
        && flags[corrupt_before..]
            .iter()
            .any(|f| f.contains("corrupt"));
    let measured_any = duration_ns > 0;
    let both_sides = c
        .jobs
        .iter()
        .any(|j| j.role == Role::Client && !j.reports.is_empty())
        && c.jobs
            .iter()
            .any(|j| j.role == Role::Server && !j.reports.is_empty());
    let d = secs(duration_ns);
    let rate = |x: u64| measured_any.then(|| x as f64 / d);

    // Validity: did the generator keep its schedule?
    let mut client_saturated = false;
    if schedule.intended > 0 && schedule.late * 100 > schedule.intended {
        client_saturated = true;
        flags.push(format!(
            "client saturated: {} of {} sends left more than 5ms late on a free connection (max lag {})",
            schedule.late,
            schedule.intended,
            crate::output::fmt_ns(schedule.max_lag_ns)
        ));
    }
    let target = match spec.rate {
        Rate::Max => None,
        Rate::PerSecond(r) | Rate::BitsPerSecond(r) => Some(r),
    };
    if let Some(target) = target.filter(|_| measured_any) {
        let achieved = achieved_rate(spec, &client, d);
        if achieved < 0.95 * target {
            let queued = schedule.queued as f64 / schedule.intended.max(1) as f64;
            if queued > 0.05 {
                flags.push(format!(
                    "below target rate: {achieved:.0} of {target:.0}/s; {:.0}% of sends waited for the previous one (the server or network is the bottleneck)",
                    queued * 100.0
                ));
            } else if !client_saturated {
                client_saturated = true;
                flags.push(format!(
                    "client saturated: achieved {achieved:.0} of {target:.0}/s"
                ));
            }
        }
    }
    let status = if !measured_any {
        Status::Failed
    } else if incomplete {
        Status::Partial
    } else {
        Status::Ok
    };
    let udp = match (udp, spec.traffic) {
        (Some(u), _) => Some(UdpResult {
            received: u.received,
            lost: u.lost.saturating_sub(u.reordered),
            reordered: u.reordered,
            duplicates: u.duplicates,
            loss_pct: loss_pct(&u),
            jitter_ns: Stat::of(jitters.iter().map(|j| Some(*j as f64))).map(|s| s.median),
        }),
        (None, Traffic::UdpRr) if measured_any => {
            let lost = client.errors.get("lost").copied().unwrap_or(0);
            let total = client.transactions + lost;
            Some(UdpResult {
                received: client.transactions,
                lost,
                reordered: 0,
                duplicates: 0,
                loss_pct: (total > 0).then(|| lost as f64 * 100.0 / total as f64),
                jitter_ns: None,
            })
        }
        _ => None,
    };
    let throughput_bps = both_sides
        .then(|| rate((client.bytes_received + server.bytes_received) * 8))
        .flatten();
    let requests_per_s = if spec.traffic.is_stream() {
        None
    } else {
        rate(client.transactions)
    };
    let connections_per_s = if spec.traffic.connects_per_transaction() {
        rate(client.connections)
    } else {
        None
    };
    let cpu = cpu_cost(spec, &c, throughput_bps, requests_per_s, connections_per_s);
    if let Some(why) = cpu.as_ref().and_then(|x| x.node_unavailable.clone()) {
        flags.push(why);
    }
    // Closed loop has no schedule to fall behind; a client worker using (nearly)
    // all the CPUs it may use (its machine's, or its `threads`) is the sign there.
    if let Some(cores) = cpu.as_ref().and_then(|x| x.client_process_cores) {
        let usable = |j: &JobData| j.cpus.max(1).min(spec.threads.unwrap_or(u32::MAX));
        let cpus: u32 = c
            .jobs
            .iter()
            .filter(|j| j.role == Role::Client)
            .map(usable)
            .sum();
        if cores >= 0.9 * f64::from(cpus) && !client_saturated {
            client_saturated = true;
            let what = if spec.threads.is_some() {
                "threads"
            } else {
                "CPUs"
            };
            flags.push(format!(
                "client saturated: client workers used {cores:.2} of {cpus} {what}"
            ));
        }
    }
    let mut r = RepResult {
        repetition,
        status,
        client_saturated,
        flags,
        duration_s: d,
        throughput_bps,
        requests_per_s,
        connections_per_s,
        latency_ns: Percentiles::of(&lat_all),
        service_ns: Percentiles::of(&svc_all),
        histogram: encode_b64(&lat_all),
        udp,
        one_way_delay: one_way_delay(&c, &transit_all, negative),
        cpu,
        schedule,
        client,
        server,
        intervals,
        slo: Vec::new(),
    };
    r.slo = crate::slo::check(&spec.slo, &r);
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::result::fixtures::{job, report, spec};
    use crate::result::summarize;

    #[test]
    fn merge_is_exact_not_averaged() {
        // Interval 1: 99 fast samples; interval 2: 1 slow sample. Averaging the
        // per-interval p99s would give ~5ms; the exact merged p99 is the fast value.
        let fast = vec![100_000u64; 99];
        let c = Collected {
            jobs: vec![
                job(
                    Role::Client,
                    vec![
                        report(0, &[1], true),
                        report(1, &fast, false),
                        report(2, &[10_000_000], false),
                    ],
                    Some(3),
                ),
                job(
                    Role::Server,
                    vec![
                        report(0, &[], true),
                        report(1, &[], false),
                        report(2, &[], false),
                    ],
                    Some(3),
                ),
            ],
            failures: vec![],
        };
        let r = rep_result(&spec(), 1, c);
        assert_eq!(r.status, Status::Ok, "{:?}", r.flags);
        let p = r.latency_ns.unwrap();
        assert_eq!(p.count, 100, "warm-up sample excluded");
        assert!((99_000..=101_000).contains(&p.p99), "{}", p.p99);
        assert!(p.max >= 9_990_000);
        assert_eq!(r.requests_per_s, Some(50.0));
        assert_eq!(r.intervals.len(), 3);
        assert!(!r.client_saturated);
    }

    #[test]
    fn several_clients_merge_per_interval() {
        let a = vec![
            report(0, &[], true),
            report(1, &[1_000; 10], false),
            report(2, &[1_000; 10], false),
        ];
        let b = vec![
            report(0, &[], true),
            report(1, &[9_000; 10], false),
            report(2, &[9_000; 10], false),
        ];
        let s = vec![
            report(0, &[], true),
            report(1, &[], false),
            report(2, &[], false),
        ];
        let c = Collected {
            jobs: vec![
                job(Role::Client, a, Some(3)),
                job(Role::Client, b, Some(3)),
                job(Role::Server, s, Some(3)),
            ],
            failures: vec![],
        };
        let r = rep_result(&spec(), 1, c);
        assert_eq!(r.status, Status::Ok, "{:?}", r.flags);
        assert_eq!(r.client.transactions, 40);
        // 40 transactions over 2 s of measured time, not 4 s.
        assert_eq!(r.requests_per_s, Some(20.0));
        let p = r.latency_ns.unwrap();
        assert_eq!(p.count, 40);
        assert!(p.p50 < 1_100 && p.max >= 8_990, "{p:?}");
    }

    #[test]
    fn missing_interval_is_partial_and_stall_is_flagged() {
        let c = Collected {
            jobs: vec![
                job(
                    Role::Client,
                    vec![report(0, &[1], true), report(1, &[], false)],
                    None,
                ),
                job(
                    Role::Server,
                    vec![
                        report(0, &[], true),
                        report(1, &[], false),
                        report(2, &[], false),
                    ],
                    Some(3),
                ),
            ],
            failures: vec!["worker lost".into()],
        };
        let r = rep_result(&spec(), 1, c);
        assert_eq!(r.status, Status::Partial);
        assert!(
            r.flags
                .iter()
                .any(|f| f.contains("1 of 3 intervals missing")),
            "{:?}",
            r.flags
        );
        assert!(r.flags.iter().any(|f| f.contains("stall")), "{:?}", r.flags);
        // Nothing measured is reported as absent, not as zero.
        assert!(r.latency_ns.is_none());
        let empty = rep_result(&spec(), 2, Collected::default());
        assert_eq!(empty.status, Status::Failed);
        assert_eq!(empty.requests_per_s, None);
        assert_eq!(summarize(&[r, empty]).status, Status::Failed);
    }

    #[test]
    fn generator_lag_is_saturation_queueing_is_not() {
        let mut sp = spec();
        sp.rate = Rate::PerSecond(100.0);
        let run = |late: u64, queued: u64, per_interval: usize| {
            let mut c = vec![report(0, &[], true)];
            for seq in 1..3 {
                let mut r = report(seq, &vec![1_000; per_interval], false);
                r.schedule = ScheduleStats {
                    intended: 100,
                    queued,
                    late,
                    max_lag_ns: 0,
                };
                c.push(r);
            }
            let s = (0..3).map(|q| report(q, &[], q == 0)).collect();
            rep_result(
                &sp,
                1,
                Collected {
                    jobs: vec![job(Role::Client, c, Some(3)), job(Role::Server, s, Some(3))],
                    failures: vec![],
                },
            )
        };
        assert!(!run(0, 0, 100).client_saturated);
        let lagging = run(10, 0, 100);
        assert!(lagging.client_saturated, "{:?}", lagging.flags);
        // Half the target rate while requests queue behind a slow server: a finding
        // about the server, not about the generator.
        let slow = run(0, 80, 50);
        assert!(!slow.client_saturated, "{:?}", slow.flags);
        assert!(
            slow.flags.iter().any(|f| f.contains("below target rate")),
            "{:?}",
            slow.flags
        );
        assert_eq!(slow.status, Status::Ok);
        // Half the rate with free connections and no lag: the generator could not.
        assert!(run(0, 0, 50).client_saturated);
    }
}
