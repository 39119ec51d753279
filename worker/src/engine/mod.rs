//! Traffic engines. Every traffic kind implements [`Engine`]: the server side binds
//! first (so the coordinator can tell clients where to go) and serves until stopped;
//! the client side generates load at a target until stopped.
//!
//! Request/response kinds only say how to do one exchange ([`Exchange`]); the
//! shared [`rr_clients`] driver owns everything else: open- or closed-loop pacing,
//! latency from the intended send time when a request had to wait for the previous
//! one (coordinated-omission correction) and service time from the actual send,
//! schedule keeping, error counting and back-off. Stream kinds pace their writes
//! with [`Ctx::pacer`]. Servers honour the plan's delay and stall through
//! [`Ctx::server_pause`].

mod http;
mod quic;
mod tcp;
pub mod timer;
mod udp;

use crate::recorder::Recorder;
use cnibench_proto::pacing::{self, Pacer};
use cnibench_proto::plan::{ScenarioSpec, Traffic};
use cnibench_proto::units::Rate;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// A boxed task future.
pub type Task = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// What an engine's tasks share.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// The scenario being run (for clients, `rate` is this worker's share).
    pub spec: Arc<ScenarioSpec>,
    /// Where measurements go.
    pub rec: Arc<Recorder>,
    /// Cancelled when the engine must stop.
    pub stop: CancellationToken,
    /// The job's start instant, set when it starts.
    pub t0: Arc<OnceLock<Instant>>,
    /// Certificate (DER) the server reported (QUIC): the only one a client trusts.
    pub server_cert: Arc<Vec<u8>>,
    /// This worker's clock minus the sender's (UDP receivers' one-way delay).
    pub clock_correction_ns: i64,
}

impl Ctx {
    /// A fresh context for `spec`, stopped by `stop`.
    pub fn new(spec: ScenarioSpec, stop: CancellationToken) -> Ctx {
        Ctx {
            spec: Arc::new(spec),
            rec: Arc::new(Recorder::new(stop.clone())),
            stop,
            t0: Arc::new(OnceLock::new()),
            server_cert: Arc::new(Vec::new()),
            clock_correction_ns: 0,
        }
    }

    /// The start instant (now, if the job has not started: servers before `Start`).
    pub fn start(&self) -> Instant {
        *self.t0.get().unwrap_or(&Instant::now())
    }

    /// The pacer for lane `lane` of `lanes` parallel ones, or `None` in closed loop.
    /// `unit_bits` converts a bitrate into operations (bits per operation).
    pub fn pacer(&self, lane: u32, lanes: u32, unit_bits: u64) -> Option<Pacer> {
        let ops = match self.spec.rate {
            Rate::Max => return None,
            Rate::PerSecond(r) => r,
            Rate::BitsPerSecond(b) => b / unit_bits.max(1) as f64,
        };
        let seed =
            u64::from(lane).wrapping_mul(0x2545_f491_4f6c_dd1d) ^ self.spec.name.len() as u64;
        Some(Pacer::new(
            pacing::share(ops, lanes),
            self.spec.arrival,
            f64::from(lane) / f64::from(lanes.max(1)),
            seed,
        ))
    }

    /// Wait until `pacer`'s next intended time. `free_since` is when the lane
    /// finished its previous operation. Returns the intended time and whether the
    /// lane was still busy then (queueing behind a slow peer, not generator lag).
    pub async fn pace(&self, pacer: &mut Pacer, free_since: Instant) -> Option<(Instant, bool)> {
        let due = self.start() + Duration::from_nanos(pacer.next_ns());
        let queued = due < free_since;
        if due > Instant::now() {
            tokio::select! {
                _ = self.stop.cancelled() => return None,
                _ = tokio::time::sleep_until(due) => {}
            }
        }
        let lag = Instant::now().saturating_duration_since(due);
        self.rec.scheduled(queued, lag);
        Some((due, queued))
    }

    /// [`Ctx::pace`] for a sender on a thread of its own (not a runtime thread):
    /// blocks through `waits` until the intended time, to tens of microseconds
    /// instead of tokio's 1 ms timer ticks, so operations are not sent in bursts.
    /// `None` once stopped.
    pub fn pace_blocking(
        &self,
        pacer: &mut Pacer,
        waits: &mut timer::Pacing,
        free_since: std::time::Instant,
    ) -> Option<(std::time::Instant, bool)> {
        let due = self.start().into_std() + Duration::from_nanos(pacer.next_ns());
        let queued = due < free_since;
        if !waits.wait_until(due, &self.stop) {
            return None;
        }
        let lag = std::time::Instant::now().saturating_duration_since(due);
        self.rec.scheduled(queued, lag);
        Some((due, queued))
    }

    /// Server side: wait the plan's `server_delay`, and out a stall window. These
    /// delays are part of what is measured, so they use the precise timer.
    pub async fn server_pause(&self) {
        if let Some(stall) = self.spec.server_stall
            && let Some(t0) = self.t0.get()
        {
            let (from, to) = (*t0 + stall.at.0, *t0 + stall.at.0 + stall.length.0);
            let now = Instant::now();
            if now >= from && now < to {
                timer::sleep_until(to).await;
            }
        }
        if !self.spec.server_delay.0.is_zero() {
            timer::sleep(self.spec.server_delay.0).await;
        }
    }
}

/// A bound server.
pub struct Served {
    /// Port chosen by the kernel.
    pub port: u16,
    /// Certificate (DER) clients must trust, for kinds that use TLS; else empty.
    pub cert: Vec<u8>,
    /// Serves until `ctx.stop`.
    pub task: Task,
}

impl Served {
    /// A plain (no TLS) server.
    pub fn plain(port: u16, task: Task) -> Served {
        Served {
            port,
            cert: Vec::new(),
            task,
        }
    }
}

impl std::fmt::Debug for Served {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Served")
            .field("port", &self.port)
            .field("cert_len", &self.cert.len())
            .finish()
    }
}

/// One traffic kind.
pub trait Engine: Send + Sync {
    /// Bind the server on `ip` (port chosen by the kernel); it serves until `ctx.stop`.
    fn serve(&self, ip: IpAddr, ctx: Ctx) -> io::Result<Served>;
    /// The client task: load against `target` until `ctx.stop`.
    fn client(&self, target: SocketAddr, ctx: Ctx) -> Task;
}

/// The engine for a traffic kind.
pub fn for_traffic(t: Traffic) -> Box<dyn Engine> {
    match t {
        Traffic::TcpStream => Box::new(tcp::Stream),
        Traffic::TcpRr => Box::new(tcp::Rr),
        Traffic::TcpCrr => Box::new(tcp::Crr),
        Traffic::UdpStream => Box::new(udp::Stream),
        Traffic::UdpRr => Box::new(udp::Rr),
        Traffic::Http1 => Box::new(http::Http1),
        Traffic::Http2 => Box::new(http::Http2),
        Traffic::QuicStream => Box::new(quic::Stream),
        Traffic::QuicRr => Box::new(quic::Rr),
    }
}

/// Pause after a failed attempt so a dead target is not hammered.
pub(crate) const RETRY_PAUSE: Duration = Duration::from_millis(20);

/// Why one exchange failed.
#[derive(Debug)]
pub enum TxError {
    /// The connection failed; it is dropped and the next exchange reconnects
    /// after a short pause.
    Io(io::Error),
    /// No response within the plan's timeout (datagram kinds): counted as lost.
    Lost,
    /// A failure the exchange has already classified (an HTTP error status, a
    /// protocol error): counted under its kind, without the back-off pause.
    Failed(&'static str),
    /// A failure the exchange has counted itself (an HTTP error status, counted
    /// with its class in one step): nothing left to count, no back-off.
    Counted,
}

impl From<io::Error> for TxError {
    fn from(e: io::Error) -> Self {
        TxError::Io(e)
    }
}

/// One request/response exchange of a traffic kind. Implementations connect
/// lazily and keep their connection between calls.
pub trait Exchange: Send + 'static {
    /// Do one exchange; returns payload bytes (sent, received).
    fn exchange(&mut self, ctx: &Ctx) -> impl Future<Output = Result<(u64, u64), TxError>> + Send;
}

/// Run `lanes` concurrent lanes of `make(lane)` exchanges until stopped (one lane
/// per connection, or per stream for multiplexing kinds); the rate is split
/// evenly over the lanes.
pub fn rr_clients<E: Exchange>(ctx: Ctx, lanes: u32, make: impl Fn(u32) -> E) -> Task {
    let loops: Vec<_> = (0..lanes)
        .map(|lane| rr_lane(ctx.clone(), lane, lanes, make(lane)))
        .collect();
    Box::pin(fan_out(ctx.spec.threads, loops))
}

async fn rr_lane(ctx: Ctx, lane: u32, lanes: u32, mut ex: impl Exchange) {
    let mut pacer = ctx.pacer(lane, lanes, 1);
    let mut free_since = ctx.start();
    while !ctx.stop.is_cancelled() {
        // Open loop: latency counts from the intended time only when the request
        // had to wait for the previous one; the generator's own timer slop is
        // tracked as lag instead (see `Recorder::scheduled`).
        let intended = match pacer.as_mut() {
            None => None,
            Some(p) => match ctx.pace(p, free_since).await {
                None => return,
                Some((due, queued)) => queued.then_some(due),
            },
        };
        let sent = Instant::now();
        let r = tokio::select! {
            _ = ctx.stop.cancelled() => return,
            r = ex.exchange(&ctx) => r,
        };
        free_since = Instant::now();
        match r {
            Ok((tx, rx)) => {
                let done = Instant::now();
                let service = done - sent;
                match (pacer.is_some(), intended) {
                    (false, _) => ctx.rec.transaction(service, None, tx, rx),
                    (true, Some(due)) => ctx.rec.transaction(done - due, Some(service), tx, rx),
                    (true, None) => ctx.rec.transaction(service, Some(service), tx, rx),
                }
            }
            Err(TxError::Lost) => ctx.rec.error("lost"),
            Err(TxError::Failed(kind)) => ctx.rec.error(kind),
            Err(TxError::Counted) => {}
            Err(TxError::Io(e)) => {
                ctx.rec.io_error(&e);
                tokio::select! {
                    _ = ctx.stop.cancelled() => return,
                    _ = tokio::time::sleep(RETRY_PAUSE) => {}
                }
            }
        }
    }
}

/// Run futures concurrently until all finish, spread over the scenario's
/// `threads` (default one per CPU; at most one per future), each thread with a
/// single-threaded runtime: a
/// lane stays on its thread, so its socket wakes it where it runs, as in wrk's
/// or h2load's event loops. (On tokio's work-stealing runtime the same HTTP/1.1
/// client needed twice the CPU per request, most of it in cross-thread
/// wake-ups.) Falls back to tasks on the current runtime if a thread cannot be
/// started, and stays there when that runtime is single-threaded already.
pub(crate) async fn fan_out<F>(threads: Option<u32>, futs: Vec<F>)
where
    F: Future<Output = ()> + Send + 'static,
{
    // Already on a single-threaded runtime (a test's, with simulated time):
    // run here.
    if tokio::runtime::Handle::current().runtime_flavor()
        == tokio::runtime::RuntimeFlavor::CurrentThread
    {
        return join_all(futs).await;
    }
    let threads = match threads {
        Some(t) => t as usize,
        None => std::thread::available_parallelism().map_or(1, usize::from),
    }
    .clamp(1, futs.len().max(1));
    let mut groups: Vec<Vec<F>> = (0..threads).map(|_| Vec::new()).collect();
    for (i, f) in futs.into_iter().enumerate() {
        groups[i % threads].push(f);
    }
    let mut running = Vec::new();
    let mut local = Vec::new();
    for (i, group) in groups.into_iter().enumerate() {
        // The thread takes its group out of the slot once its runtime runs and
        // says so; if the thread or its runtime cannot start, the group runs
        // here instead.
        let slot = Arc::new(std::sync::Mutex::new(Some(group)));
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<bool>();
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        let theirs = slot.clone();
        let started = std::thread::Builder::new()
            .name(format!("cnibench-lanes-{i}"))
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                let group = match rt {
                    Ok(_) => theirs.lock().ok().and_then(|mut g| g.take()),
                    Err(_) => None,
                };
                let (Ok(rt), Some(group)) = (rt, group) else {
                    let _ = ready_tx.send(false);
                    return;
                };
                let _ = ready_tx.send(true);
                rt.block_on(join_all(group));
                let _ = done_tx.send(());
            });
        let ok = match started {
            Ok(_) => matches!(ready_rx.await, Ok(true)),
            Err(_) => false,
        };
        if ok {
            running.push(done_rx);
        } else {
            local.extend(
                slot.lock()
                    .ok()
                    .and_then(|mut g| g.take())
                    .into_iter()
                    .flatten(),
            );
        }
    }
    join_all(local).await;
    for rx in running {
        let _ = rx.await;
    }
}

/// Run futures as tasks of the current runtime until all finish.
async fn join_all<F>(futs: Vec<F>)
where
    F: Future<Output = ()> + Send + 'static,
{
    let mut set = tokio::task::JoinSet::new();
    for f in futs {
        set.spawn(f);
    }
    while set.join_next().await.is_some() {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use cnibench_proto::plan;

    fn ctx(extra: &str) -> Ctx {
        let text = format!(
            "name: t\nscenarios:\n  - {{name: s, traffic: tcp-rr, path: pod-to-pod-cross-node, connections: 2{extra}}}\n"
        );
        Ctx::new(
            plan::load("t.yaml", &text).unwrap().scenarios.remove(0),
            CancellationToken::new(),
        )
    }

    /// An exchange that takes a fixed time, as a server with a fixed delay would.
    struct Fixed(Duration);

    impl Exchange for Fixed {
        async fn exchange(&mut self, _ctx: &Ctx) -> Result<(u64, u64), TxError> {
            tokio::time::sleep(self.0).await;
            Ok((1, 1))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn open_loop_keeps_rate_and_corrects_for_a_slow_server() {
        // 2 lanes x 100/s for 1 s of simulated time against a 30 ms server: each lane
        // can only do ~33/s, so requests queue and latency grows from the intended time.
        let c = ctx(", rate: 200/s");
        c.t0.set(Instant::now()).unwrap();
        let task = rr_clients(c.clone(), 2, |_| Fixed(Duration::from_millis(30)));
        let stop = c.stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            stop.cancel();
        });
        task.await;
        let w = c.rec.take();
        let n = w.counters.transactions;
        assert!((60..=70).contains(&n), "{n} transactions");
        assert!(
            w.schedule.queued > 0 && w.schedule.late == 0,
            "{:?}",
            w.schedule
        );
        // Service time stays 30 ms; corrected latency includes the queueing.
        assert_eq!(w.service.value_at_quantile(0.99) / 1_000_000, 30);
        assert!(w.latency.max() > 500_000_000, "max {}", w.latency.max());
    }

    #[tokio::test(start_paused = true)]
    async fn open_loop_at_a_fast_server_sends_on_time() {
        // 100/s over 2 lanes (a request every 20 ms per lane) against a 2 ms server:
        // nothing queues, and latency is the service time.
        let c = ctx(", rate: 100/s");
        c.t0.set(Instant::now()).unwrap();
        let task = rr_clients(c.clone(), 2, |_| Fixed(Duration::from_millis(2)));
        let stop = c.stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            stop.cancel();
        });
        task.await;
        let w = c.rec.take();
        assert!(
            (99..=101).contains(&w.counters.transactions),
            "{}",
            w.counters.transactions
        );
        assert_eq!(
            (w.schedule.queued, w.schedule.late),
            (0, 0),
            "{:?}",
            w.schedule
        );
        assert_eq!(w.latency.max() / 1_000_000, 2);
    }

    #[tokio::test]
    async fn server_pause_applies_delay_and_stall() {
        let c = ctx(", server_delay: 2ms, server_stall: { at: 100ms, for: 500ms }");
        let t0 = Instant::now();
        c.t0.set(t0).unwrap();
        c.server_pause().await;
        let d = t0.elapsed();
        assert!(
            d >= Duration::from_millis(2) && d < Duration::from_micros(2_800),
            "{d:?}"
        );
        tokio::time::sleep_until(t0 + Duration::from_millis(200)).await;
        c.server_pause().await;
        let d = t0.elapsed();
        assert!(
            d >= Duration::from_millis(602) && d < Duration::from_millis(604),
            "{d:?}"
        );
    }
}
