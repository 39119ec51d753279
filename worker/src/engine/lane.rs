//! Client lanes: a *lane* is one sequence of operations on one connection (or
//! one stream of a multiplexed connection). Two drivers own everything but the
//! protocol: [`rr_clients`] for request/response kinds, which say how to do one
//! [`Exchange`], and [`stream_clients`] for bulk kinds, which say how to connect
//! and write one message ([`Writer`]). Both pace open-loop lanes with
//! [`Ctx::pace`], count failures by kind and pause [`RETRY_PAUSE`] before a
//! lane reconnects. A request/response lane gives every request the plan's
//! `timeout` and accounts for each: sent (an attempt), then completed, failed
//! or unfinished at the stop; in open loop also those due but never sent.

use super::{Ctx, RETRY_PAUSE, Task, fan_out};
use crate::recorder::error_kind;
use cnibench_proto::pacing::Pacer;
use std::future::Future;
use std::io;
use tokio::time::Instant;

/// Why one exchange (or a stream lane's connect or write) failed.
#[derive(Debug)]
pub enum TxError {
    /// The connection failed; it is dropped and the next exchange reconnects
    /// after a short pause.
    Io(io::Error),
    /// A failure the exchange has already classified (a protocol error):
    /// counted under its kind, without the back-off pause.
    Failed(&'static str),
    /// An HTTP response with an error status: its class (`5xx`) and error kind
    /// (`http-5xx`) are counted together, and the connection is kept.
    Status {
        /// Status class.
        class: &'static str,
        /// Error kind.
        kind: &'static str,
    },
    /// A failure that retrying cannot cure (a certificate the client does not
    /// trust): counted once, and the lane sends nothing more (an open-loop
    /// lane's due requests are counted as never sent at the end).
    Fatal(&'static str),
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

    /// The exchange did not finish within the plan's `timeout` and was
    /// abandoned wherever it was: put the lane back in step (a byte stream
    /// stopped in the middle of a response must be dropped and dialled again; a
    /// multiplexed stream is reset by dropping it), and say what the failure
    /// counts as (`timeout`; `lost` for a datagram).
    fn timed_out(&mut self) -> &'static str;
}

/// Run `lanes` concurrent lanes of `make(lane)` exchanges until stopped (one lane
/// per connection, or per stream for multiplexing kinds); the rate is split
/// evenly over the lanes.
pub fn rr_clients<E: Exchange>(ctx: Ctx, lanes: u32, make: impl Fn(u32) -> E) -> Task {
    let loops: Vec<_> = (0..lanes)
        .map(|lane| rr_lane(ctx.clone(), lane, lanes, make(lane)))
        .collect();
    Box::pin(async move { fan_out(&ctx, loops).await })
}

/// One lane until stopped. Every request it sends is an attempt that ends as a
/// transaction, a failure (by kind; `timeout` when no answer came within the
/// plan's `timeout`), or unfinished when the job stopped; in open loop, what
/// was due by the end but never sent is counted too.
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
                None => break,
                Some((due, queued)) => queued.then_some(due),
            },
        };
        let sent = Instant::now();
        ctx.rec.attempt();
        let r = tokio::select! {
            _ = ctx.stop.cancelled() => {
                ctx.rec.unfinished();
                break;
            }
            r = tokio::time::timeout(ctx.spec.timeout.0, ex.exchange(&ctx)) => r,
        };
        free_since = Instant::now();
        match r {
            Ok(Ok((tx, rx))) => {
                let done = Instant::now();
                let service = done - sent;
                match (pacer.is_some(), intended) {
                    (false, _) => ctx.rec.transaction(service, None, tx, rx),
                    (true, Some(due)) => ctx.rec.transaction(done - due, Some(service), tx, rx),
                    (true, None) => ctx.rec.transaction(service, Some(service), tx, rx),
                }
            }
            Ok(Err(e)) => {
                if !attempt_failed(&ctx, e).await {
                    break;
                }
            }
            Err(_) => ctx.rec.failed(ex.timed_out()),
        }
    }
    if let Some(p) = pacer.as_mut() {
        ctx.count_unsent(p, None);
    }
}

/// Count a failed attempt by its kind; after an I/O failure, pause before the
/// lane goes on. `false` when the lane is done: stopped during the pause, or a
/// fatal failure (then once the job stops).
async fn attempt_failed(ctx: &Ctx, e: TxError) -> bool {
    match e {
        TxError::Failed(kind) => ctx.rec.failed(kind),
        TxError::Status { class, kind } => ctx.rec.failed_status(class, kind),
        TxError::Fatal(kind) => {
            ctx.rec.failed(kind);
            ctx.stop.cancelled().await;
            return false;
        }
        TxError::Io(e) => {
            ctx.rec.failed(error_kind(&e));
            return pause(ctx).await;
        }
    }
    true
}

/// The back-off after an I/O failure; `false` when stopped during it.
async fn pause(ctx: &Ctx) -> bool {
    tokio::select! {
        _ = ctx.stop.cancelled() => false,
        _ = tokio::time::sleep(RETRY_PAUSE) => true,
    }
}

/// How a bulk-transfer lane connects and writes; [`stream_clients`] does the rest.
pub trait Writer: Send + 'static {
    /// What is written to: a socket, a stream.
    type Conn: Send;
    /// Open a connection, counting it.
    fn connect(&mut self, ctx: &Ctx) -> impl Future<Output = Result<Self::Conn, TxError>> + Send;
    /// Write one message; returns its payload bytes.
    fn write(
        &mut self,
        conn: &mut Self::Conn,
        ctx: &Ctx,
    ) -> impl Future<Output = Result<u64, TxError>> + Send;
}

/// Run `lanes` concurrent lanes of `make(lane)` writers until stopped; a rate
/// (a bitrate: each message is `unit_bits`) is split evenly over the lanes.
pub fn stream_clients<W: Writer>(
    ctx: Ctx,
    lanes: u32,
    unit_bits: u64,
    make: impl Fn(u32) -> W,
) -> Task {
    let loops: Vec<_> = (0..lanes)
        .map(|lane| stream_lane(ctx.clone(), ctx.pacer(lane, lanes, unit_bits), make(lane)))
        .collect();
    Box::pin(async move { fan_out(&ctx, loops).await })
}

/// Connect, then write (paced, if there is a pacer) and count until stopped;
/// after a failure, reconnect after a pause.
async fn stream_lane(ctx: Ctx, mut pacer: Option<Pacer>, mut w: impl Writer) {
    while !ctx.stop.is_cancelled() {
        let attempt = async {
            let mut conn = w.connect(&ctx).await?;
            let mut free_since = Instant::now();
            loop {
                if let Some(p) = pacer.as_mut()
                    && ctx.pace(p, free_since).await.is_none()
                {
                    return Ok::<(), TxError>(());
                }
                let n = w.write(&mut conn, &ctx).await?;
                free_since = Instant::now();
                ctx.rec.sent(n);
            }
        };
        let r = tokio::select! {
            _ = ctx.stop.cancelled() => return,
            r = attempt => r,
        };
        let go_on = match r {
            Ok(()) => true,
            Err(TxError::Failed(kind) | TxError::Status { kind, .. }) => {
                ctx.rec.error(kind);
                true
            }
            Err(TxError::Fatal(kind)) => {
                ctx.rec.error(kind);
                ctx.stop.cancelled().await;
                false
            }
            Err(TxError::Io(e)) => {
                ctx.rec.io_error(&e);
                pause(&ctx).await
            }
        };
        if !go_on {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_ctx;
    use super::*;
    use crate::recorder::Window;
    use cnibench_proto::msg::ScheduleStats;
    use std::time::Duration;

    /// An exchange that takes a fixed time, as a server with a fixed delay would.
    struct Fixed(Duration);

    impl Exchange for Fixed {
        async fn exchange(&mut self, _ctx: &Ctx) -> Result<(u64, u64), TxError> {
            tokio::time::sleep(self.0).await;
            Ok((1, 1))
        }

        fn timed_out(&mut self) -> &'static str {
            "timeout"
        }
    }

    /// Run lanes of `make(lane)` for `how_long` (of simulated time) with the
    /// scenario's `fields`.
    async fn run<E: Exchange>(fields: &str, how_long: Duration, make: impl Fn(u32) -> E) -> Window {
        let c = test_ctx(&format!("traffic: tcp-rr, {fields}"));
        c.t0.set(Instant::now()).unwrap();
        let task = rr_clients(c.clone(), c.spec.connections, make);
        let stop = c.stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(how_long).await;
            stop.cancel();
        });
        task.await;
        c.rec.take()
    }

    /// Run 2 lanes of `Fixed(service)` at `rate` for 1 s (of simulated time).
    async fn open_loop(rate: &str, service: Duration) -> Window {
        run(
            &format!("connections: 2, rate: {rate}"),
            Duration::from_secs(1),
            |_| Fixed(service),
        )
        .await
    }

    /// A server that answers in 2 ms, except the requests numbered in `hang`
    /// (1-based, counted over the lane), which it never answers.
    struct Hangs {
        n: u32,
        hang: std::ops::RangeInclusive<u32>,
        timeouts: u32,
    }

    impl Exchange for Hangs {
        async fn exchange(&mut self, _ctx: &Ctx) -> Result<(u64, u64), TxError> {
            self.n += 1;
            if self.hang.contains(&self.n) {
                std::future::pending::<()>().await;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
            Ok((1, 1))
        }

        fn timed_out(&mut self) -> &'static str {
            self.timeouts += 1;
            "timeout"
        }
    }

    /// Every request sent is completed, failed or unfinished; in open loop,
    /// every intended one was sent or is counted as never sent.
    fn accounted(w: &Window, open_loop: bool) {
        let (c, s) = (&w.counters, &w.schedule);
        assert_eq!(
            c.attempts,
            c.transactions + c.failed + c.unfinished,
            "{c:?}"
        );
        if open_loop {
            assert_eq!(s.intended, c.attempts + s.unsent, "{s:?} {c:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_without_an_answer_times_out_and_the_lane_goes_on() {
        // 100/s for 1 s; requests 10-12 are never answered: each times out after
        // 100 ms and the lane goes on (what fell due meanwhile queues).
        let w = run(
            "rate: 100/s, timeout: 100ms",
            Duration::from_secs(1),
            |_| Hangs {
                n: 0,
                hang: 10..=12,
                timeouts: 0,
            },
        )
        .await;
        let c = &w.counters;
        assert_eq!((c.failed, c.errors.get("timeout")), (3, Some(&3)), "{c:?}");
        assert!((90..=97).contains(&c.transactions), "{c:?}");
        assert_eq!(w.latency.len(), c.transactions, "timeouts are not latency");
        accounted(&w, true);
    }

    #[tokio::test(start_paused = true)]
    async fn what_a_stuck_lane_could_not_send_is_counted_at_the_end() {
        // From the 50th request on the server answers nothing, and the timeout
        // (10 s) outlasts the run: one request is in flight at the stop and the
        // ~50 due after it were never sent.
        let w = run("rate: 100/s, timeout: 10s", Duration::from_secs(1), |_| {
            Hangs {
                n: 0,
                hang: 50..=u32::MAX,
                timeouts: 0,
            }
        })
        .await;
        let (c, s) = (&w.counters, &w.schedule);
        assert_eq!(
            (c.transactions, c.failed, c.unfinished),
            (49, 0, 1),
            "{c:?}"
        );
        assert!((49..=51).contains(&s.unsent), "{s:?}");
        assert!(s.queued >= s.unsent);
        accounted(&w, true);
        // Closed loop: no schedule, every attempt still accounted for.
        let w = run("timeout: 50ms", Duration::from_millis(500), |_| Hangs {
            n: 0,
            hang: 3..=4,
            timeouts: 0,
        })
        .await;
        assert_eq!(w.counters.failed, 2, "{:?}", w.counters);
        assert_eq!(w.schedule, ScheduleStats::default());
        accounted(&w, false);
    }

    #[tokio::test(start_paused = true)]
    async fn open_loop_keeps_rate_and_corrects_for_a_slow_server() {
        // 2 lanes x 100/s for 1 s of simulated time against a 30 ms server: each lane
        // can only do ~33/s, so requests queue and latency grows from the intended time.
        let w = open_loop("200/s", Duration::from_millis(30)).await;
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
        let w = open_loop("100/s", Duration::from_millis(2)).await;
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
}
