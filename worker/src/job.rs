//! The life of one job on a worker: prepared (a server is already accepting), started
//! at an agreed instant, reported in intervals, finished by its deadline (clients) or
//! by the coordinator's `Stop` (servers, once their clients are done).
//!
//! Interval boundaries are the same for both roles: a warm-up interval (seq 0, when
//! warm-up is non-zero), then one every `interval` until the end of the measured
//! time. A server's last interval stretches until `Stop`, so bytes still in flight at
//! the client's deadline are counted. Every interval carries its measured start and
//! end, not the nominal ones.

use crate::engine::{self, Ctx, Engine};
use crate::{cpu, health};
use cnibench_proto::clock::unix_now_ns;
use cnibench_proto::hist;
use cnibench_proto::msg::{IntervalReport, Job, Msg, Role};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How long before its end a server stops counting connection teardown (resets,
/// EOFs) as failures.
const DRAIN_EARLY: Duration = Duration::from_millis(50);
/// How long a server keeps serving past its clients' deadline without a `Stop`.
const SERVER_GRACE: Duration = Duration::from_secs(30);
/// A start instant further away than this is refused (clock confusion or bad input).
const MAX_START_DELAY: Duration = Duration::from_secs(60);

/// A prepared job.
pub struct Prepared {
    job: Job,
    engine: Box<dyn Engine>,
    ctx: Ctx,
    server: Option<JoinHandle<()>>,
    /// The data interface, whose statistics the health counters read.
    interface: Option<String>,
    /// Cancelled by `Stop`: end the job early (clients) or at all (servers).
    pub finish: CancellationToken,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("job", &self.job.id)
            .finish()
    }
}

/// Set a job up: servers bind on `data_ip` and start accepting. Returns the bound
/// port and the certificate clients must trust (TLS kinds, else empty).
pub fn prepare(
    job: Job,
    data_ip: IpAddr,
    session: &CancellationToken,
) -> Result<(Prepared, u16, Vec<u8>), String> {
    let engine = engine::for_traffic(job.scenario.traffic);
    let mut ctx = Ctx::new(job.scenario.clone(), session.child_token());
    ctx.server_cert = Arc::new(job.server_cert.clone());
    ctx.clock_correction_ns = job.clock_correction_ns;
    ctx.client_index = job.client_index;
    let (server, port, cert) = match job.role {
        Role::Server => {
            // A server's peers are its clients (none: any source).
            ctx.clients = Arc::new(job.peers.iter().map(|ip| ip.to_canonical()).collect());
            let served = engine.serve(data_ip, ctx.clone()).map_err(|e| {
                format!(
                    "cannot bind a {} server on {data_ip}: {e}",
                    job.scenario.traffic
                )
            })?;
            (Some(tokio::spawn(served.task)), served.port, served.cert)
        }
        Role::Client => {
            if job.target.is_none() {
                return Err("client job without a target".into());
            }
            // To a server worker: send from the address it knows as a client's.
            if job.scenario.target.is_none() && !job.scenario.via_service() {
                ctx.local_ip = Some(data_ip);
            }
            (None, 0, Vec::new())
        }
    };
    let finish = session.child_token();
    Ok((
        Prepared {
            job,
            engine,
            ctx,
            server,
            interface: cnibench_net::sysinfo::iface_of(data_ip),
            finish,
        },
        port,
        cert,
    ))
}

/// Start the job at `at_unix_ns` (this worker's clock); reports go to `out`.
/// The returned task ends after `Done` (or silently if the session is gone).
pub fn start(
    p: Prepared,
    at_unix_ns: i64,
    out: mpsc::Sender<Msg>,
) -> Result<JoinHandle<()>, String> {
    let delay_ns = at_unix_ns.saturating_sub(unix_now_ns()).max(0);
    let delay = Duration::from_nanos(delay_ns as u64);
    if delay > MAX_START_DELAY {
        return Err(format!(
            "start time is {delay:?} away (more than {MAX_START_DELAY:?})"
        ));
    }
    let idle_from = (
        cpu::Snapshot::take(&[]),
        health::Snapshot::take(p.interface.as_deref()),
    );
    Ok(tokio::spawn(drive(
        p,
        Instant::now() + delay,
        idle_from,
        out,
    )))
}

async fn drive(
    p: Prepared,
    t0: Instant,
    idle_from: (cpu::Snapshot, health::Snapshot),
    out: mpsc::Sender<Msg>,
) {
    let Prepared {
        job,
        engine,
        ctx,
        server,
        interface,
        finish,
    } = p;
    let spec = &job.scenario;
    tokio::select! {
        _ = tokio::time::sleep_until(t0) => {}
        _ = finish.cancelled() => {}
    }
    let _ = ctx.t0.set(t0);
    // The idle window before this job's traffic is the CPU baseline.
    let mut cpu_mark = cpu::Snapshot::take(&ctx.rec.sending_threads());
    let mut health_mark = health::Snapshot::take(interface.as_deref());
    let baseline = cpu::usage(&idle_from.0, &cpu_mark);
    if out
        .send(Msg::Baseline {
            job: job.id,
            cpu: baseline,
            health: Some(Box::new(health::delta(&idle_from.1, &health_mark))),
        })
        .await
        .is_err()
    {
        ctx.stop.cancel();
        return;
    }
    let client = match (job.role, job.target) {
        (Role::Client, Some(target)) => Some(tokio::spawn(engine.client(target, ctx.clone()))),
        _ => None,
    };
    let warmup = spec.warmup.0;
    let end = warmup + spec.duration.0;
    let bounds = spec.interval_bounds();
    let mut seq = 0u32;
    let mut last = Duration::ZERO;
    let mut report = |seq: u32, from: Duration, to: Duration| {
        let w = ctx.rec.take();
        let now = cpu::Snapshot::take(&ctx.rec.sending_threads());
        let cpu = cpu::usage(&cpu_mark, &now);
        cpu_mark = now;
        let health_now = health::Snapshot::take(interface.as_deref());
        let health = health::delta(&health_mark, &health_now);
        health_mark = health_now;
        Msg::Interval(IntervalReport {
            job: job.id,
            seq,
            warmup: !warmup.is_zero() && seq == 0,
            t_start_ns: from.as_nanos() as u64,
            t_end_ns: to.as_nanos() as u64,
            latency: hist::encode(&w.latency),
            service: hist::encode(&w.service),
            transit: hist::encode(&w.transit),
            send_lag: hist::encode(&w.send_lag),
            counters: w.counters,
            schedule: w.schedule,
            udp: w.udp,
            cpu: Some(cpu),
            health: Some(Box::new(health)),
        })
    };
    for &b in &bounds {
        tokio::select! {
            _ = tokio::time::sleep_until(t0 + b) => {}
            _ = finish.cancelled() => break,
        }
        let now = t0.elapsed();
        if out.send(report(seq, last, now)).await.is_err() {
            ctx.stop.cancel();
            return;
        }
        seq += 1;
        last = now;
    }
    // The end: clients at their deadline, servers when told (or after a grace period).
    // A server treats connection teardown as expected from shortly before its
    // end: clients drop their connections at their own deadline, which timer
    // slack and clock offsets can put a little ahead of the server's.
    let until = async |at: Instant| {
        tokio::select! {
            _ = tokio::time::sleep_until(at) => {}
            _ = finish.cancelled() => {}
        }
    };
    if job.role == Role::Server {
        until((t0 + end).checked_sub(DRAIN_EARLY).unwrap_or(t0)).await;
        ctx.rec.drain();
    }
    until(t0 + end).await;
    if job.role == Role::Server {
        until(t0 + end + SERVER_GRACE).await;
    }
    ctx.stop.cancel();
    for h in [client, server].into_iter().flatten() {
        let _ = h.await;
    }
    let session_gone = out.is_closed();
    if !session_gone {
        let now = t0.elapsed();
        let _ = out.send(report(seq, last, now)).await;
        let _ = out
            .send(Msg::Done {
                job: job.id,
                intervals: seq + 1,
            })
            .await;
    }
}
