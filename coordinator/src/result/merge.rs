//! The exact merge of one repetition: what arrived from its jobs
//! ([`Collected`]) into a [`RepResult`]. Counters are summed and histograms added
//! bucket by bucket; percentiles are read from the sums.

use super::cpu::{cpu_cost, interval_node_cores, interval_sender_cores};
use super::delay::one_way_delay;
use super::health::{health_flags, interval_health, rep_health};
use super::{
    CpuCost, Endpoint, IntervalResult, Percentiles, Quantile, RepResult, Requests, Status,
    UdpResult, encode_b64,
};
use cnibench_proto::clock::ClockEstimate;
use cnibench_proto::hist;
use cnibench_proto::msg::{
    Counters, CpuUsage, HealthCounters, IntervalReport, Role, ScheduleStats, UdpStats,
};
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
    /// Datapath health counters in the same idle window.
    pub baseline_health: Option<Box<HealthCounters>>,
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
    send_lag: Histogram<u64>,
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
            send_lag: hist::new_latency(),
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
            (&r.send_lag, &mut s.send_lag, "send-lag"),
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

/// Net datagram loss: gaps opened minus gaps later filled, and what was expected
/// (received plus that).
pub fn net_loss(u: &UdpStats) -> (u64, u64) {
    let lost = u.lost.saturating_sub(u.reordered);
    (lost, u.received + lost)
}

/// Net datagram loss in percent of what was expected.
fn loss_pct(u: &UdpStats) -> Option<f64> {
    let (lost, expected) = net_loss(u);
    (expected > 0).then(|| lost as f64 * 100.0 / expected as f64)
}

/// The headline rate of one side's interval report, for live views: goodput
/// received by the server (stream kinds) or transactions per second completed
/// by the client (the other kinds); `None` from the other side or for an empty
/// interval.
pub fn live_rate(traffic: Traffic, side: Role, r: &IntervalReport) -> Option<f64> {
    let len_ns = r.t_end_ns.saturating_sub(r.t_start_ns);
    let per_s = |x: u64| (len_ns > 0).then(|| x as f64 / secs(len_ns));
    match (traffic.is_stream(), side) {
        (true, Role::Server) => per_s(r.counters.bytes_received * 8),
        (false, Role::Client) => per_s(r.counters.transactions),
        _ => None,
    }
}

/// Open-loop operations per second a client side achieved, in the unit of the
/// plan's rate (requests, datagrams or bits): requests completed successfully.
pub fn achieved_rate(spec: &ScenarioSpec, client: &Counters, d: f64) -> f64 {
    match spec.rate {
        Rate::BitsPerSecond(_) => client.bytes_sent as f64 * 8.0 / d,
        _ if spec.traffic == Traffic::UdpStream => {
            client.bytes_sent as f64 / spec.message_size.0 as f64 / d
        }
        _ => client.transactions as f64 / d,
    }
}

/// What a client side offered, per second, in the unit of the plan's rate:
/// requests sent, whatever became of them (what keeping up with a schedule is
/// judged against); as [`achieved_rate`] for the other kinds.
pub fn attempted_rate(spec: &ScenarioSpec, client: &Counters, d: f64) -> f64 {
    if spec.traffic.is_stream() {
        achieved_rate(spec, client, d)
    } else {
        client.attempts as f64 / d
    }
}

/// Share of failed requests, percent, above which a repetition of a scenario
/// without an `error_rate` objective is flagged (see [`rep_result`]).
pub const DEFAULT_ERROR_PCT: f64 = 1.0;

/// Failed requests over requests with an outcome, percent (request/response
/// kinds, the clients' counts).
fn error_pct(traffic: Traffic, client: &Counters) -> Option<f64> {
    let done = client.transactions + client.failed;
    (!traffic.is_stream() && done > 0).then(|| client.failed as f64 * 100.0 / done as f64)
}

/// Requests that got no answer in time.
fn timed_out(c: &Counters) -> u64 {
    ["timeout", "lost"]
        .iter()
        .filter_map(|k| c.errors.get(*k))
        .sum()
}

/// Build one repetition's result from what was collected, step by step:
/// `completeness`, `merge_intervals` (both sides of every interval), the
/// rates, `udp_result` (with `lost_at_end`), the CPU cost, `judge` (status
/// and validity, failed requests among them), `lag_share`, and what became of
/// every request (`requests`, checked by `unbalanced`). Failures are counted
/// once: the clients' for request/response kinds, the receivers' for streams.
/// The scenario's objectives are left to [`crate::slo::check`].
pub fn rep_result(spec: &ScenarioSpec, repetition: u32, mut c: Collected) -> RepResult {
    let mut flags = c.failures.clone();
    let missing = completeness(&mut c.jobs, spec.interval_count());
    let mut incomplete = !c.failures.is_empty() || !missing.is_empty();
    flags.extend(missing);
    let m = merge_intervals(spec, &c, &mut flags);
    incomplete |= m.corrupt;
    let t = &m.totals;
    let measured_any = t.duration_ns > 0;
    let rate = |x: u64| measured_any.then(|| x as f64 / secs(t.duration_ns));
    let reported = |role: Role| {
        c.jobs
            .iter()
            .any(|j| j.role == role && !j.reports.is_empty())
    };
    let throughput_bps = (reported(Role::Client) && reported(Role::Server))
        .then(|| rate((t.client.bytes_received + t.server.bytes_received) * 8))
        .flatten();
    let requests_per_s = if spec.traffic.is_stream() {
        None
    } else {
        rate(t.client.transactions)
    };
    let connections_per_s = if spec.traffic.connects_per_transaction() {
        rate(t.client.connections)
    } else {
        None
    };
    let cpu = cpu_cost(spec, &c, throughput_bps, requests_per_s, connections_per_s);
    let health = rep_health(&c);
    flags.extend(health.as_ref().map(health_flags).unwrap_or_default());
    let mut verdict = judge(spec, &c.jobs, t, cpu.as_ref(), incomplete);
    verdict.flags.extend(lag_share(&m.send_lag, &m.latency));
    let requests = requests(spec, &c.jobs);
    if !incomplete {
        verdict.flags.extend(requests.as_ref().and_then(unbalanced));
    }
    let errors = if spec.traffic.is_stream() {
        t.server.error_total()
    } else {
        t.client.error_total()
    };
    flags.extend(verdict.flags);
    RepResult {
        repetition,
        started_at_unix_ns: None,
        status: verdict.status,
        client_saturated: verdict.client_saturated,
        flags,
        duration_s: secs(t.duration_ns),
        throughput_bps,
        requests_per_s,
        error_pct: error_pct(spec.traffic, &t.client),
        errors: Some(errors),
        connections_per_s,
        latency_ns: Percentiles::of(&m.latency),
        service_ns: Percentiles::of(&m.service),
        send_lag_ns: Percentiles::of(&m.send_lag),
        histogram: encode_b64(&m.latency),
        udp: udp_result(
            spec.traffic,
            t,
            (!incomplete).then(|| lost_at_end(spec, &c.jobs)).flatten(),
        ),
        one_way_delay: one_way_delay(&c, &m.transit, t.transit_negative),
        cpu,
        health,
        schedule: t.schedule,
        requests,
        endpoints: if spec.via_service() {
            endpoints(&c.jobs)
        } else {
            Vec::new()
        },
        client: m.totals.client,
        server: m.totals.server,
        intervals: m.intervals,
        slo: Vec::new(),
    }
}

/// How a Service spread the load over its endpoints: each server job's
/// requests and bytes over its measured (not warm-up) intervals, adding up to
/// the repetition's `server` counters, and its connections over all its
/// intervals (long-lived ones open in the warm-up), with shares of both.
fn endpoints(jobs: &[JobData]) -> Vec<Endpoint> {
    let served: Vec<(&str, u64, Counters)> = jobs
        .iter()
        .filter(|j| j.role == Role::Server)
        .map(|j| {
            let mut c = Counters::default();
            for r in j.reports.iter().filter(|r| !r.warmup) {
                c.add(&r.counters);
            }
            let conns = j.reports.iter().map(|r| r.counters.connections).sum();
            (j.worker.as_str(), conns, c)
        })
        .collect();
    let share = |x: u64, total: u64| (total > 0).then(|| x as f64 / total as f64);
    let conns: u64 = served.iter().map(|s| s.1).sum();
    let bytes: u64 = served.iter().map(|s| s.2.bytes_received).sum();
    served
        .into_iter()
        .map(|(worker, connections, c)| Endpoint {
            worker: worker.to_string(),
            connections,
            requests: c.transactions,
            bytes_received: c.bytes_received,
            share: share(connections, conns),
            bytes_share: share(c.bytes_received, bytes),
        })
        .collect()
}

/// Put each job's reports in order, drop duplicates, and say which jobs lack
/// intervals (fewer than `expected`, or fewer than their `Done` announced). No
/// flag means complete.
fn completeness(jobs: &mut [JobData], expected: u32) -> Vec<String> {
    let mut flags = Vec::new();
    for j in jobs {
        j.reports.sort_by_key(|r| r.seq);
        j.reports.dedup_by_key(|r| r.seq);
        let got = j.reports.len() as u32;
        let side = if j.role == Role::Client {
            "client"
        } else {
            "server"
        };
        if got < expected {
            flags.push(format!(
                "{side} {}: {} of {expected} intervals missing",
                j.worker,
                expected - got
            ));
        }
        if let Some(n) = j.done
            && n != got
        {
            flags.push(format!(
                "{side} {}: reported {n} intervals, {got} arrived",
                j.worker
            ));
        }
    }
    flags
}

/// What became of the requests of all client jobs, over every interval they
/// reported (request/response kinds).
fn requests(spec: &ScenarioSpec, jobs: &[JobData]) -> Option<Requests> {
    if spec.traffic.is_stream() {
        return None;
    }
    let (mut c, mut s) = (Counters::default(), ScheduleStats::default());
    for r in jobs
        .iter()
        .filter(|j| j.role == Role::Client)
        .flat_map(|j| &j.reports)
    {
        c.add(&r.counters);
        s.add(&r.schedule);
    }
    Some(Requests {
        intended: (spec.rate != Rate::Max).then_some(s.intended),
        attempted: c.attempts,
        completed: c.transactions,
        failed: c.failed,
        timed_out: timed_out(&c),
        unfinished: c.unfinished,
        unsent: s.unsent,
    })
}

/// Every request sent is completed, failed or unfinished, and every intended
/// one sent or unsent: when they do not add up, say so.
fn unbalanced(r: &Requests) -> Option<String> {
    let outcomes = r.completed + r.failed + r.unfinished;
    let sent = r.intended.map(|i| i.saturating_sub(r.unsent));
    if outcomes == r.attempted && sent.is_none_or(|s| s == r.attempted) {
        return None;
    }
    Some(format!(
        "requests do not add up: {} sent = {} completed + {} failed + {} unfinished{}",
        r.attempted,
        r.completed,
        r.failed,
        r.unfinished,
        r.intended
            .map(|i| format!(
                "; {i} intended = {} sent + {} never sent",
                r.attempted, r.unsent
            ))
            .unwrap_or_default()
    ))
}

/// The measured (not warm-up) intervals of a repetition added up.
#[derive(Debug, Default)]
struct Totals {
    /// Client counters, all client workers.
    client: Counters,
    /// Server counters.
    server: Counters,
    /// Open-loop schedule keeping at the clients.
    schedule: ScheduleStats,
    /// Datagram counters at the receivers (udp-stream).
    udp: Option<UdpStats>,
    /// RFC 3550 jitter at the end of each interval, ns.
    jitters: Vec<u64>,
    /// Datagrams that arrived before they were sent by the corrected clocks.
    transit_negative: u64,
    /// Client time measured, ns.
    duration_ns: u64,
}

/// Every interval of a repetition with both sides merged, and the sums over the
/// measured ones.
#[derive(Debug)]
struct Merged {
    /// One row per interval that either side reported, warm-up included.
    intervals: Vec<IntervalResult>,
    /// Counters over the measured intervals.
    totals: Totals,
    /// Client latency over the measured intervals.
    latency: Histogram<u64>,
    /// Client service time over the measured intervals.
    service: Histogram<u64>,
    /// Receiver transit times over the measured intervals.
    transit: Histogram<u64>,
    /// The clients' send lag over the measured intervals.
    send_lag: Histogram<u64>,
    /// Some histogram could not be decoded (its flag says which).
    corrupt: bool,
}

impl Merged {
    /// Add a measured interval's sides to the sums.
    fn add(&mut self, cl: Option<&Side>, sv: Option<&Side>) {
        let t = &mut self.totals;
        if let Some(r) = cl {
            t.client.add(&r.counters);
            t.schedule.add(&r.schedule);
            t.duration_ns += r.len_ns;
            let _ = self.latency.add(&r.latency);
            let _ = self.service.add(&r.service);
            let _ = self.send_lag.add(&r.send_lag);
        }
        if let Some(r) = sv {
            t.server.add(&r.counters);
            let _ = self.transit.add(&r.transit);
            if let Some(u) = r.udp {
                t.transit_negative += u.transit_negative;
                t.udp.get_or_insert_with(UdpStats::default).add(&u);
                t.jitters.extend(u.jitter_ns);
            }
        }
    }
}

/// Merge every interval of the plan: each side over its workers, then both
/// sides into the interval's row; flags corrupt histograms and stalls.
fn merge_intervals(spec: &ScenarioSpec, c: &Collected, flags: &mut Vec<String>) -> Merged {
    let has_servers = c.jobs.iter().any(|j| j.role == Role::Server);
    let mut m = Merged {
        intervals: Vec::new(),
        totals: Totals::default(),
        latency: hist::new_latency(),
        service: hist::new_latency(),
        transit: hist::new_latency(),
        send_lag: hist::new_latency(),
        corrupt: false,
    };
    for seq in 0..spec.interval_count() {
        let mut corrupt = Vec::new();
        let cl = merge_side(c, Role::Client, seq, &mut corrupt);
        let sv = merge_side(c, Role::Server, seq, &mut corrupt);
        m.corrupt |= !corrupt.is_empty();
        flags.extend(corrupt);
        let Some(iv) = interval_result(spec.traffic, seq, cl.as_ref(), sv.as_ref(), has_servers)
        else {
            continue;
        };
        if iv.stalled {
            flags.push(format!("interval {seq}: no progress (stall)"));
        }
        if !iv.warmup {
            m.add(cl.as_ref(), sv.as_ref());
        }
        m.intervals.push(IntervalResult {
            node_cores: interval_node_cores(c, seq),
            sender_thread_cores: interval_sender_cores(c, seq),
            health: interval_health(c, seq),
            ..iv
        });
    }
    m
}

/// Interval `seq` from its client and server sides (`None` when neither
/// reported it). Node CPU is left to the caller.
fn interval_result(
    traffic: Traffic,
    seq: u32,
    cl: Option<&Side>,
    sv: Option<&Side>,
    has_servers: bool,
) -> Option<IntervalResult> {
    let base = cl.or(sv)?;
    let counters = |s: Option<&Side>, f: fn(&Counters) -> u64| s.map_or(0, |s| f(&s.counters));
    let received = counters(cl, |c| c.bytes_received) + counters(sv, |c| c.bytes_received);
    let transactions = counters(cl, |c| c.transactions);
    let stream = traffic.is_stream();
    // Counted once: where every request's outcome is known (the client), or
    // where a stream arrives (the receiver).
    let errors = if stream {
        counters(sv, Counters::error_total)
    } else {
        counters(cl, Counters::error_total)
    };
    let per_s = |x: u64| (base.len_ns > 0).then(|| x as f64 / secs(base.len_ns));
    // Answers of any kind are progress (an error answered at once is no
    // stall); a timeout is no answer.
    let answered = counters(cl, |c| {
        c.transactions + c.failed.saturating_sub(timed_out(c))
    });
    let progress = if stream { received } else { answered };
    // Only both sides' reports can show a stall (the client's alone against an
    // external server); a missing side is reported as missing, not as zero
    // progress.
    let stalled = !base.warmup && progress == 0 && cl.is_some() && (sv.is_some() || !has_servers);
    let lat = cl.map(|s| &s.latency);
    let at = |h: Option<&Histogram<u64>>, q: f64| {
        h.filter(|h| !h.is_empty()).map(|h| h.value_at_quantile(q))
    };
    let udp = sv.and_then(|s| s.udp);
    Some(IntervalResult {
        seq,
        warmup: base.warmup,
        t_start_s: secs(base.t_start_ns),
        t_end_s: secs(base.t_end_ns),
        throughput_bps: (cl.is_some() && sv.is_some())
            .then(|| per_s(received * 8))
            .flatten(),
        requests_per_s: if stream {
            None
        } else {
            cl.and(per_s(transactions))
        },
        transactions,
        attempts: counters(cl, |c| c.attempts),
        failed: counters(cl, |c| c.failed),
        p50_ns: at(lat, Quantile::P50.q),
        p99_ns: at(lat, Quantile::P99.q),
        service_p99_ns: at(cl.map(|s| &s.service), Quantile::P99.q),
        send_lag_p99_ns: at(cl.map(|s| &s.send_lag), Quantile::P99.q),
        send_lag_max_ns: at(cl.map(|s| &s.send_lag), 1.0),
        loss_pct: udp.as_ref().and_then(loss_pct),
        jitter_ns: udp.and_then(|u| u.jitter_ns),
        node_cores: None,
        sender_thread_cores: None,
        health: None,
        errors,
        stalled,
        histogram: lat.and_then(encode_b64),
    })
}

/// udp-stream: datagrams sent that no receiver saw the end of, from both
/// sides' counts over the whole run (warm-up included): what the senders sent
/// minus what arrived minus the gaps the receivers saw. Those lost after the
/// last datagram that arrived leave no gap; only the sender's count shows them.
fn lost_at_end(spec: &ScenarioSpec, jobs: &[JobData]) -> Option<u64> {
    if spec.traffic != Traffic::UdpStream {
        return None;
    }
    let reports = |role: Role| {
        jobs.iter()
            .filter(move |j| j.role == role)
            .flat_map(|j| &j.reports)
    };
    let sent: u64 = reports(Role::Client).map(|r| r.counters.attempts).sum();
    let mut seen = UdpStats::default();
    for u in reports(Role::Server).filter_map(|r| r.udp.as_ref()) {
        seen.add(u);
    }
    let (lost, _) = net_loss(&seen);
    Some(sent.saturating_sub(seen.received + lost))
}

/// Datagram accounting: net loss (with what was lost at the end, `at_end`),
/// late arrivals and duplicates at the receivers and the final jitter
/// (udp-stream), or requests left unanswered within the timeout (udp-rr, which
/// the client counts as `lost` errors).
fn udp_result(traffic: Traffic, t: &Totals, at_end: Option<u64>) -> Option<UdpResult> {
    match (&t.udp, traffic) {
        (Some(u), _) => {
            let at_end = at_end.unwrap_or(0);
            let lost = net_loss(u).0 + at_end;
            let expected = u.received + lost;
            Some(UdpResult {
                received: u.received,
                lost,
                lost_at_end: at_end,
                reordered: u.reordered,
                duplicates: u.duplicates,
                loss_pct: (expected > 0).then(|| lost as f64 * 100.0 / expected as f64),
                jitter_ns: t.jitters.last().map(|j| *j as f64),
            })
        }
        (None, Traffic::UdpRr) if t.duration_ns > 0 => {
            let lost = t.client.errors.get("lost").copied().unwrap_or(0);
            let total = t.client.transactions + lost;
            Some(UdpResult {
                received: t.client.transactions,
                lost,
                lost_at_end: 0,
                reordered: 0,
                duplicates: 0,
                loss_pct: (total > 0).then(|| lost as f64 * 100.0 / total as f64),
                jitter_ns: None,
            })
        }
        _ => None,
    }
}

/// Status and validity of a repetition, and the flags that say why.
#[derive(Debug, PartialEq)]
struct Verdict {
    /// Failed when nothing was measured, partial when something is missing.
    status: Status,
    /// The generator, not the path, limited the numbers.
    client_saturated: bool,
    /// Why, in order: schedule lag, a missed target rate, node CPU not
    /// computed, clamped samples, clients out of CPU, failed requests.
    flags: Vec<String>,
}

/// Judge a repetition: its status from what arrived (and how many requests
/// failed), and whether the client could keep up: an open-loop schedule it
/// fell behind, a target rate it missed while its connections were free, a
/// sending thread at a whole core, or all the CPU its lanes can use.
fn judge(
    spec: &ScenarioSpec,
    jobs: &[JobData],
    t: &Totals,
    cpu: Option<&CpuCost>,
    incomplete: bool,
) -> Verdict {
    let measured_any = t.duration_ns > 0;
    let mut flags = Vec::new();
    let lag = lagged(&t.schedule);
    let mut client_saturated = lag.is_some();
    flags.extend(lag);
    let busy = cpu_bound(spec, jobs, cpu);
    if measured_any && let Some((saturated, why)) = below_target(spec, t) {
        // A lag already said it; a shortfall from queueing is no saturation,
        // unless the client was out of CPU (then the shortfall is its own,
        // which the CPU flag says).
        if !(saturated && client_saturated) && busy.is_none() {
            flags.push(why);
        }
        client_saturated |= saturated;
    }
    flags.extend(cpu.and_then(|x| x.node_unavailable.clone()));
    flags.extend(clamped(t));
    if let Some(why) = busy {
        if !client_saturated {
            flags.push(why);
        }
        client_saturated = true;
    }
    let mut status = if !measured_any {
        Status::Failed
    } else if incomplete {
        Status::Partial
    } else {
        Status::Ok
    };
    if let Some((worse, why)) = failed_requests(spec, &t.client) {
        status = status.max(worse);
        flags.push(why);
    }
    Verdict {
        status,
        client_saturated,
        flags,
    }
}

/// Too many failed requests: more than the scenario's `error_rate` objective
/// allows, or [`DEFAULT_ERROR_PCT`] without one. The figures then describe the
/// requests that succeeded: `partial`; or none did: `failed`.
fn failed_requests(spec: &ScenarioSpec, client: &Counters) -> Option<(Status, String)> {
    let pct = error_pct(spec.traffic, client)?;
    let limit = spec.slo.error_rate.map_or(DEFAULT_ERROR_PCT, |p| p.0);
    if pct <= limit {
        return None;
    }
    let mut kinds: Vec<(&String, &u64)> = client.errors.iter().collect();
    kinds.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let kinds: Vec<String> = kinds.iter().map(|(k, n)| format!("{k} {n}")).collect();
    let status = if client.transactions == 0 {
        Status::Failed
    } else {
        Status::Partial
    };
    Some((
        status,
        format!(
            "errors: {pct:.1}% of {} requests failed ({}), above the {}% allowed",
            client.transactions + client.failed,
            kinds.join(", "),
            limit
        ),
    ))
}

/// Samples beyond the histograms' range: recorded as its highest value, so the
/// maximum (and the percentiles that reach them) are lower bounds.
fn clamped(t: &Totals) -> Option<String> {
    let n = t.client.clamped + t.server.clamped;
    let s = hist::HIGHEST_NS / 1_000_000_000;
    (n > 0).then(|| {
        format!("{n} samples above {s}s were recorded as {s}s: the maximum is at least that")
    })
}

/// The send lag's p99 above this share of the latency's p99 is flagged: the
/// load that reached the path was not the one planned.
pub const LAG_SHARE: f64 = 0.1;

/// The generator's send lag is a noticeable share of the latency it measured
/// (p99 against p99, above [`LAG_SHARE`]): sends left bunched or late by more
/// than the scale of what is measured, so the latency describes another load
/// than the one planned (a burstier one, typically: tokio's timer wakes a
/// lane on 1 ms ticks).
fn lag_share(lag: &Histogram<u64>, latency: &Histogram<u64>) -> Option<String> {
    if lag.is_empty() || latency.is_empty() {
        return None;
    }
    let (l, p) = (lag.value_at_quantile(0.99), latency.value_at_quantile(0.99));
    (l as f64 > LAG_SHARE * p as f64).then(|| {
        format!(
            "send lag: p99 {} is {:.0}% of the latency p99 {} (max {}): the sends left off their schedule by more than a tenth of what was measured",
            crate::fmt::ns(l),
            l as f64 * 100.0 / p.max(1) as f64,
            crate::fmt::ns(p),
            crate::fmt::ns(lag.max())
        )
    })
}

/// More than 1% of sends left more than 5 ms late on a free connection.
fn lagged(s: &ScheduleStats) -> Option<String> {
    (s.intended > 0 && s.late * 100 > s.intended).then(|| {
        format!(
            "client saturated: {} of {} sends left more than 5ms late on a free connection (max lag {})",
            s.late,
            s.intended,
            crate::fmt::ns(s.max_lag_ns)
        )
    })
}

/// A target rate missed by more than 5%, judged on what the clients sent
/// (requests that failed were sent all the same: their shortfall is errors, see
/// `failed_requests`): with more than 5% of sends queued behind the previous
/// one the server or network is the bottleneck (`false`), otherwise the client
/// could not keep up (`true`).
fn below_target(spec: &ScenarioSpec, t: &Totals) -> Option<(bool, String)> {
    let target = match spec.rate {
        Rate::Max => return None,
        Rate::PerSecond(r) | Rate::BitsPerSecond(r) => r,
    };
    let achieved = attempted_rate(spec, &t.client, secs(t.duration_ns));
    if achieved >= 0.95 * target {
        return None;
    }
    let s = &t.schedule;
    let queued = s.queued as f64 / s.intended.max(1) as f64;
    Some(if queued > 0.05 {
        (
            false,
            format!(
                "below target rate: {achieved:.0} of {target:.0}/s; {:.0}% of sends waited for the previous one (the server or network is the bottleneck)",
                queued * 100.0
            ),
        )
    } else {
        (
            true,
            format!("client saturated: achieved {achieved:.0} of {target:.0}/s"),
        )
    })
}

/// A sending thread this busy, in cores, cannot send faster.
pub const SENDER_BUSY: f64 = 0.9;

/// The threads a client worker with `cpus` CPUs sends from: one per lane at
/// most (a lane stays on its thread), no more than its `threads` or CPUs; a
/// paced UDP stream has a thread of its own.
fn sending_threads(spec: &ScenarioSpec, cpus: u32) -> u32 {
    let lanes = match spec.traffic {
        t if t.is_stream() => spec.streams,
        Traffic::Http2 => spec.connections.saturating_mul(spec.streams),
        _ => spec.connections,
    };
    let threads = match spec.traffic {
        Traffic::UdpStream => lanes,
        _ => spec.threads.unwrap_or(cpus),
    };
    lanes.min(threads).min(cpus).max(1)
}

/// The client out of CPU: its busiest sending thread at a whole core (in any
/// loop and kind: one lane, one stream), or its workers using (nearly) all the
/// CPU their lanes can, the threads they actually run on. This is the sign of
/// saturation in closed loop, which has no schedule to fall behind.
fn cpu_bound(spec: &ScenarioSpec, jobs: &[JobData], cpu: Option<&CpuCost>) -> Option<String> {
    let cpu = cpu?;
    if let Some(t) = cpu.sender_thread_cores.filter(|t| *t >= SENDER_BUSY) {
        return Some(format!(
            "client saturated: its busiest sending thread used {t:.2} cores (one thread sends no faster than one core)"
        ));
    }
    let cores = cpu.client_process_cores?;
    let threads: u32 = jobs
        .iter()
        .filter(|j| j.role == Role::Client)
        .map(|j| sending_threads(spec, j.cpus.max(1)))
        .sum();
    (cores >= SENDER_BUSY * f64::from(threads)).then(|| {
        format!("client saturated: client workers used {cores:.2} cores of the {threads} their lanes can use")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::result::fixtures::{idle, job, report, spec};
    use crate::result::summarize;

    /// Behind a Service each server job is an endpoint: its measured counters
    /// (warm-up left out) and its share of the connections, adding up to the
    /// repetition's server counters; other paths list no endpoints.
    #[test]
    fn endpoints_share_the_measured_connections() {
        let server = |worker: &str, conns: [u64; 3], values: &[u64]| {
            let mut j = job(
                Role::Server,
                (0..3u32)
                    .map(|q| {
                        let mut r = report(q, values, q == 0);
                        r.counters.connections = conns[q as usize];
                        r
                    })
                    .collect(),
                Some(3),
            );
            j.worker = worker.into();
            j
        };
        let jobs = || {
            vec![
                server("10.0.0.2:1", [50, 3, 0], &[1, 2]),
                server("10.0.0.3:1", [0, 1, 0], &[1]),
                idle(Role::Client, 3),
            ]
        };
        let mut svc = spec();
        svc.path = cnibench_proto::plan::PathKind::PodToService;
        let r = rep_result(
            &svc,
            1,
            Collected {
                jobs: jobs(),
                failures: Vec::new(),
            },
        );
        let want = |worker: &str, connections, n, share, bytes_share| Endpoint {
            worker: worker.into(),
            connections,
            requests: n,
            bytes_received: n,
            share: Some(share),
            bytes_share: Some(bytes_share),
        };
        // Connections over every interval (the warm-up's 50 included),
        // requests and bytes over the measured ones.
        assert_eq!(
            r.endpoints,
            [
                want("10.0.0.2:1", 53, 4, 53.0 / 54.0, 4.0 / 6.0),
                want("10.0.0.3:1", 1, 2, 1.0 / 54.0, 2.0 / 6.0)
            ]
        );
        assert_eq!(r.server.connections, 4);
        assert_eq!(r.server.transactions, 6);

        // No connection at all: shares unknown, not 0.
        let none = rep_result(
            &svc,
            1,
            Collected {
                jobs: vec![idle(Role::Server, 3), idle(Role::Client, 3)],
                failures: Vec::new(),
            },
        );
        assert_eq!(none.endpoints.len(), 1);
        assert_eq!(none.endpoints[0].share, None);
        assert_eq!(none.endpoints[0].bytes_share, None);

        let pod = rep_result(
            &spec(),
            1,
            Collected {
                jobs: jobs(),
                failures: Vec::new(),
            },
        );
        assert!(pod.endpoints.is_empty());
    }

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
                idle(Role::Server, 3),
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
        let c = Collected {
            jobs: vec![
                job(Role::Client, a, Some(3)),
                job(Role::Client, b, Some(3)),
                idle(Role::Server, 3),
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
                idle(Role::Server, 3),
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
                    ..ScheduleStats::default()
                };
                c.push(r);
            }
            rep_result(
                &sp,
                1,
                Collected {
                    jobs: vec![job(Role::Client, c, Some(3)), idle(Role::Server, 3)],
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

    #[test]
    fn send_lag_is_reported_and_flagged_when_it_rivals_the_latency() {
        let lag = |ns: u64| {
            let mut h = hist::new_latency();
            for _ in 0..100 {
                hist::record(&mut h, ns);
            }
            hist::encode(&h)
        };
        let run = |lag_ns| {
            let client = (0..3)
                .map(|q| IntervalReport {
                    send_lag: lag(lag_ns),
                    ..report(q, &[100_000; 100], q == 0)
                })
                .collect();
            rep_result(
                &spec(),
                1,
                Collected {
                    jobs: vec![job(Role::Client, client, Some(3)), idle(Role::Server, 3)],
                    failures: vec![],
                },
            )
        };
        // 5 us of lag against 100 us of latency: reported, not flagged.
        let r = run(5_000);
        let l = r.send_lag_ns.as_ref().unwrap();
        assert_eq!((l.count, l.p99 / 1000), (200, 5), "warm-up excluded");
        assert_eq!(r.intervals[1].send_lag_p99_ns.map(|v| v / 1000), Some(5));
        assert_eq!(r.intervals[1].send_lag_max_ns.map(|v| v / 1000), Some(5));
        assert!(r.flags.is_empty(), "{:?}", r.flags);
        // 1 ms of lag against 100 us: the load was not the one planned.
        let r = run(1_000_000);
        assert!(
            r.flags
                .iter()
                .any(|f| f.starts_with("send lag: p99 1.00ms is 1000% of the latency p99 100.0us")),
            "{:?}",
            r.flags
        );
        assert_eq!(r.status, Status::Ok);
    }

    /// A client at 100/s whose requests `fail` of every 100 fail fast with
    /// 503 (and `timeouts` time out), the rest answered in 100 us, against an
    /// idle server, with `slo`.
    fn failing(fail: u64, timeouts: u64, slo: &str) -> RepResult {
        let mut sp = spec();
        sp.rate = Rate::PerSecond(100.0);
        sp.slo = cnibench_proto::plan::load(
            "t.yaml",
            &format!("name: t\nscenarios:\n  - {{name: s, traffic: tcp-rr, path: pod-to-pod-cross-node{slo}}}\n"),
        )
        .unwrap()
        .scenarios[0]
            .slo;
        let client = (0..3)
            .map(|q| {
                let ok = 100 - fail - timeouts;
                let mut r = report(q, &vec![100_000; ok as usize], q == 0);
                r.counters.attempts = 100;
                r.counters.failed = fail + timeouts;
                if fail > 0 {
                    r.counters.errors.insert("http-5xx".into(), fail);
                    r.counters.status.insert("5xx".into(), fail);
                }
                if timeouts > 0 {
                    r.counters.errors.insert("timeout".into(), timeouts);
                }
                r.schedule = ScheduleStats {
                    intended: 100,
                    ..ScheduleStats::default()
                };
                r
            })
            .collect();
        let mut server = idle(Role::Server, 3);
        for r in &mut server.reports {
            // The server sees its resets too: one failure, counted once.
            r.counters.errors.insert("reset".into(), 3);
        }
        rep_result(
            &sp,
            1,
            Collected {
                jobs: vec![job(Role::Client, client, Some(3)), server],
                failures: vec![],
            },
        )
    }

    #[test]
    fn failed_requests_are_errors_not_a_slow_generator() {
        // Every request answered 503 at once: the generator kept its schedule.
        let r = failing(100, 0, "");
        assert_eq!(r.status, Status::Failed, "{:?}", r.flags);
        assert!(!r.client_saturated, "{:?}", r.flags);
        assert!(
            r.flags.iter().any(|f| f
                == "errors: 100.0% of 200 requests failed (http-5xx 200), above the 1% allowed"),
            "{:?}",
            r.flags
        );
        assert!(
            !r.flags
                .iter()
                .any(|f| f.contains("stall") || f.contains("saturated")),
            "{:?}",
            r.flags
        );
        assert_eq!(r.error_pct, Some(100.0));
        // Counted once, at the client: the server's resets are not added.
        assert_eq!(r.errors(), 200);
        assert_eq!(r.requests_per_s, Some(0.0));
        // 5% failed: the numbers cover the rest, so partial; within an
        // objective that allows it, ok.
        let r = failing(5, 0, "");
        assert_eq!(r.status, Status::Partial, "{:?}", r.flags);
        assert!(
            r.flags
                .iter()
                .any(|f| f.starts_with("errors: 5.0% of 200 requests failed")),
            "{:?}",
            r.flags
        );
        let r = failing(5, 0, ", slo: { error_rate: 10% }");
        assert_eq!(r.status, Status::Ok, "{:?}", r.flags);
        assert!(r.flags.is_empty(), "{:?}", r.flags);
        assert_eq!(r.error_pct, Some(5.0));
        // Timeouts are failures, and no answer at all is a stall.
        let r = failing(0, 100, "");
        assert_eq!(r.status, Status::Failed, "{:?}", r.flags);
        assert!(
            r.flags.iter().any(|f| f.contains("(timeout 200)")),
            "{:?}",
            r.flags
        );
        assert!(r.flags.iter().any(|f| f.contains("stall")), "{:?}", r.flags);
    }

    #[test]
    fn requests_are_accounted_for() {
        let r = failing(5, 5, "");
        assert_eq!(
            r.requests,
            Some(Requests {
                intended: Some(300),
                attempted: 300,
                completed: 270,
                failed: 30,
                timed_out: 15,
                unfinished: 0,
                unsent: 0,
            })
        );
        assert!(
            !r.flags.iter().any(|f| f.contains("add up")),
            "{:?}",
            r.flags
        );
        // A request that vanished without an outcome is flagged.
        let mut client = vec![report(0, &[], true), report(1, &[1_000; 10], false)];
        let mut last = report(2, &[1_000; 10], false);
        last.counters.attempts += 1;
        client.push(last);
        let r = rep_result(
            &spec(),
            1,
            Collected {
                jobs: vec![job(Role::Client, client, Some(3)), idle(Role::Server, 3)],
                failures: vec![],
            },
        );
        assert!(
            r.flags
                .iter()
                .any(|f| f
                    == "requests do not add up: 21 sent = 20 completed + 0 failed + 0 unfinished"),
            "{:?}",
            r.flags
        );
        assert_eq!(r.requests.unwrap().intended, None, "closed loop");
    }

    #[test]
    fn samples_beyond_the_histogram_are_flagged() {
        let mut client = vec![report(0, &[], true), report(1, &[1_000], false)];
        client.push(IntervalReport {
            counters: Counters {
                clamped: 2,
                ..report(2, &[hist::HIGHEST_NS], false).counters
            },
            ..report(2, &[hist::HIGHEST_NS], false)
        });
        let r = rep_result(
            &spec(),
            1,
            Collected {
                jobs: vec![job(Role::Client, client, Some(3)), idle(Role::Server, 3)],
                failures: vec![],
            },
        );
        assert_eq!(r.status, Status::Ok);
        assert!(
            r.flags
                .iter()
                .any(|f| f
                    == "2 samples above 100s were recorded as 100s: the maximum is at least that"),
            "{:?}",
            r.flags
        );
    }

    #[test]
    fn completeness_orders_drops_duplicates_and_names_missing_intervals() {
        let mut jobs = vec![
            job(
                Role::Client,
                vec![
                    report(2, &[], false),
                    report(0, &[], true),
                    report(2, &[], false),
                ],
                Some(3),
            ),
            idle(Role::Server, 3),
        ];
        let flags = completeness(&mut jobs, 3);
        let seqs: Vec<u32> = jobs[0].reports.iter().map(|r| r.seq).collect();
        assert_eq!(seqs, [0, 2]);
        assert_eq!(
            flags,
            [
                "client Client: 1 of 3 intervals missing",
                "client Client: reported 3 intervals, 2 arrived"
            ]
        );
        jobs.remove(0);
        assert!(completeness(&mut jobs, 3).is_empty(), "complete");
    }

    fn side(bytes_received: u64, transactions: u64, warmup: bool) -> Side {
        Side {
            len_ns: 1_000_000_000,
            t_start_ns: 0,
            t_end_ns: 1_000_000_000,
            warmup,
            counters: Counters {
                bytes_received,
                transactions,
                ..Counters::default()
            },
            schedule: ScheduleStats::default(),
            udp: None,
            latency: hist::new_latency(),
            service: hist::new_latency(),
            transit: hist::new_latency(),
            send_lag: hist::new_latency(),
        }
    }

    #[test]
    fn an_interval_merges_both_sides_and_stalls_only_on_evidence() {
        let (cl, sv) = (side(10, 0, false), side(990, 0, false));
        let iv = interval_result(Traffic::TcpStream, 3, Some(&cl), Some(&sv), true).unwrap();
        assert_eq!(iv.throughput_bps, Some(8000.0), "goodput of both receivers");
        assert_eq!((iv.requests_per_s, iv.stalled), (None, false));
        // A stream without bytes, both sides reporting: a stall.
        let (cl, sv) = (side(0, 0, false), side(0, 0, false));
        assert!(
            interval_result(Traffic::TcpStream, 3, Some(&cl), Some(&sv), true)
                .unwrap()
                .stalled
        );
        // Only the client's report: missing, not a stall; unless there is no
        // server to report (an external target).
        let rr = interval_result(Traffic::TcpRr, 3, Some(&cl), None, true).unwrap();
        assert!(!rr.stalled && rr.throughput_bps.is_none());
        assert_eq!(rr.requests_per_s, Some(0.0));
        assert!(
            interval_result(Traffic::TcpRr, 3, Some(&cl), None, false)
                .unwrap()
                .stalled
        );
        // Warm-up never stalls; nothing reported is no interval.
        let warm = side(0, 0, true);
        assert!(
            !interval_result(Traffic::TcpRr, 0, Some(&warm), None, false)
                .unwrap()
                .stalled
        );
        assert!(interval_result(Traffic::TcpRr, 0, None, None, true).is_none());
    }

    #[test]
    fn udp_accounting_nets_late_arrivals_and_counts_unanswered_requests() {
        let mut t = Totals {
            udp: Some(UdpStats {
                received: 95,
                lost: 7,
                reordered: 2,
                duplicates: 1,
                ..UdpStats::default()
            }),
            jitters: vec![20, 10, 30],
            duration_ns: 1,
            ..Totals::default()
        };
        let u = udp_result(Traffic::UdpStream, &t, None).unwrap();
        assert_eq!(
            (u.received, u.lost, u.reordered, u.duplicates),
            (95, 5, 2, 1)
        );
        // Jitter: the last interval's, each sender's final value (iperf3's).
        assert_eq!((u.loss_pct, u.jitter_ns), (Some(5.0), Some(30.0)));
        // What the senders sent and no receiver saw the end of.
        let u = udp_result(Traffic::UdpStream, &t, Some(5)).unwrap();
        assert_eq!((u.lost, u.lost_at_end), (10, 5));
        assert!((u.loss_pct.unwrap() - 1000.0 / 105.0).abs() < 1e-9);
        t.udp = None;
        t.client.transactions = 99;
        t.client.errors.insert("lost".into(), 1);
        let u = udp_result(Traffic::UdpRr, &t, None).unwrap();
        assert_eq!((u.received, u.lost, u.loss_pct), (99, 1, Some(1.0)));
        assert!(udp_result(Traffic::TcpRr, &t, None).is_none());
        t.duration_ns = 0;
        assert!(
            udp_result(Traffic::UdpRr, &t, None).is_none(),
            "nothing measured"
        );
    }

    #[test]
    fn udp_stream_loss_at_the_end_of_the_run_counts() {
        // 100 datagrams sent per interval; the receiver got all of warm-up's,
        // 95 of interval 1's (a gap of 5) and 90 of interval 2's: the last 10
        // were lost with no later datagram to show the gap.
        let mut sp = spec();
        sp.traffic = Traffic::UdpStream;
        let client: Vec<IntervalReport> = (0..3)
            .map(|q| {
                let mut r = report(q, &[], q == 0);
                r.counters.attempts = 100;
                r
            })
            .collect();
        let server: Vec<IntervalReport> = [(100, 0), (95, 5), (90, 0)]
            .into_iter()
            .enumerate()
            .map(|(q, (received, lost))| {
                let mut r = report(q as u32, &[], q == 0);
                r.udp = Some(UdpStats {
                    received,
                    lost,
                    ..UdpStats::default()
                });
                r
            })
            .collect();
        let c = || Collected {
            jobs: vec![
                job(Role::Client, client.clone(), Some(3)),
                job(Role::Server, server.clone(), Some(3)),
            ],
            failures: vec![],
        };
        let u = rep_result(&sp, 1, c()).udp.unwrap();
        assert_eq!((u.received, u.lost, u.lost_at_end), (185, 15, 10));
        assert_eq!(u.loss_pct, Some(7.5));
        // Without every interval of both sides there is no telling.
        let mut partial = c();
        partial.jobs[1].reports.pop();
        let u = rep_result(&sp, 1, partial).udp.unwrap();
        assert_eq!((u.lost, u.lost_at_end), (5, 0));
    }

    #[test]
    fn judgement_status_and_closed_loop_cpu_saturation() {
        let mut sp = spec();
        sp.connections = 4;
        let jobs = [
            job(Role::Client, vec![], None),
            job(Role::Server, vec![], None),
        ];
        let t = Totals {
            duration_ns: 1,
            ..Totals::default()
        };
        let cpu = |client: f64, sender: Option<f64>| CpuCost {
            client_process_cores: Some(client),
            server_process_cores: None,
            node_cores: None,
            node_softirq_cores: None,
            baseline_node_cores: None,
            shared_machine: false,
            sender_thread_cores: sender,
            node_unavailable: Some("node CPU of m: not computed".into()),
            cores_per_gbps: None,
            cores_per_10k_rps: None,
            cores_per_1k_cps: None,
            ..Default::default()
        };
        let v = judge(&sp, &jobs, &t, Some(&cpu(1.0, None)), false);
        assert_eq!((v.status, v.client_saturated), (Status::Ok, false));
        assert_eq!(v.flags, ["node CPU of m: not computed"]);
        // The client job's machine has 2 CPUs; 1.9 cores of them is all of it.
        let v = judge(&sp, &jobs, &t, Some(&cpu(1.9, None)), true);
        assert_eq!((v.status, v.client_saturated), (Status::Partial, true));
        assert_eq!(
            v.flags[1],
            "client saturated: client workers used 1.90 cores of the 2 their lanes can use"
        );
        sp.threads = Some(1);
        let v = judge(&sp, &jobs, &t, Some(&cpu(0.95, None)), false);
        assert_eq!(
            v.flags[1],
            "client saturated: client workers used 0.95 cores of the 1 their lanes can use"
        );
        // One lane runs on one thread, however many CPUs there are.
        sp.threads = None;
        sp.connections = 1;
        let v = judge(&sp, &jobs, &t, Some(&cpu(0.95, None)), false);
        assert!(v.client_saturated, "{:?}", v.flags);
        assert_eq!(
            v.flags[1],
            "client saturated: client workers used 0.95 cores of the 1 their lanes can use"
        );
        let none = judge(&sp, &jobs, &Totals::default(), None, false);
        assert_eq!((none.status, none.flags.len()), (Status::Failed, 0));
    }

    #[test]
    fn a_sending_thread_at_a_whole_core_is_a_saturated_client_not_a_slow_server() {
        // A tcp-stream paced at 10 Gbit/s that sent 6: its writes were still
        // going when the next was due (queued), because its one sending thread
        // was busy copying, not because the receiver was slow.
        let mut sp = spec();
        sp.traffic = Traffic::TcpStream;
        sp.streams = 4;
        sp.rate = Rate::BitsPerSecond(10e9);
        let jobs = [
            job(Role::Client, vec![], None),
            job(Role::Server, vec![], None),
        ];
        let t = Totals {
            duration_ns: 1_000_000_000,
            client: Counters {
                bytes_sent: 6_000_000_000 / 8,
                ..Counters::default()
            },
            schedule: ScheduleStats {
                intended: 100,
                queued: 60,
                ..ScheduleStats::default()
            },
            ..Totals::default()
        };
        let cpu = |sender| CpuCost {
            client_process_cores: Some(1.1),
            server_process_cores: None,
            node_cores: None,
            node_softirq_cores: None,
            baseline_node_cores: None,
            shared_machine: false,
            sender_thread_cores: Some(sender),
            node_unavailable: None,
            cores_per_gbps: None,
            cores_per_10k_rps: None,
            cores_per_1k_cps: None,
            ..Default::default()
        };
        let v = judge(&sp, &jobs, &t, Some(&cpu(0.97)), false);
        assert!(v.client_saturated, "{:?}", v.flags);
        assert_eq!(
            v.flags,
            [
                "client saturated: its busiest sending thread used 0.97 cores (one thread sends no faster than one core)"
            ]
        );
        // With the thread half busy it is the receiver or the network.
        let v = judge(&sp, &jobs, &t, Some(&cpu(0.5)), false);
        assert!(!v.client_saturated, "{:?}", v.flags);
        assert!(
            v.flags[0].contains("the server or network is the bottleneck"),
            "{:?}",
            v.flags
        );
    }
}
