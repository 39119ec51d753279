//! Client lanes: a *lane* is one sequence of operations on one connection (or
//! one stream of a multiplexed connection). Two drivers own everything but the
//! protocol: [`rr_clients`] for request/response kinds, which say how to do one
//! [`Exchange`], and [`stream_clients`] for bulk kinds, which say how to connect
//! and write one message ([`Writer`]). Both pace open-loop lanes with
//! [`Ctx::pace`], count failures by kind and pause [`RETRY_PAUSE`] before a
//! lane reconnects.

use super::{Ctx, RETRY_PAUSE, Task, fan_out};
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
            Err(e) => {
                if !failed(&ctx, e).await {
                    return;
                }
            }
        }
    }
}

/// Count a failure by its kind; after an I/O failure, pause before the lane goes
/// on. `false` when stopped during the pause.
async fn failed(ctx: &Ctx, e: TxError) -> bool {
    match e {
        TxError::Lost => ctx.rec.error("lost"),
        TxError::Failed(kind) => ctx.rec.error(kind),
        TxError::Counted => {}
        TxError::Io(e) => {
            ctx.rec.io_error(&e);
            tokio::select! {
                _ = ctx.stop.cancelled() => return false,
                _ = tokio::time::sleep(RETRY_PAUSE) => {}
            }
        }
    }
    true
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
    Box::pin(fan_out(ctx.spec.threads, loops))
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
        if let Err(e) = r
            && !failed(&ctx, e).await
        {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_ctx;
    use super::*;
    use crate::recorder::Window;
    use std::time::Duration;

    /// An exchange that takes a fixed time, as a server with a fixed delay would.
    struct Fixed(Duration);

    impl Exchange for Fixed {
        async fn exchange(&mut self, _ctx: &Ctx) -> Result<(u64, u64), TxError> {
            tokio::time::sleep(self.0).await;
            Ok((1, 1))
        }
    }

    /// Run 2 lanes of `Fixed(service)` at `rate` for 1 s (of simulated time).
    async fn open_loop(rate: &str, service: Duration) -> Window {
        let c = test_ctx(&format!("traffic: tcp-rr, connections: 2, rate: {rate}"));
        c.t0.set(Instant::now()).unwrap();
        let task = rr_clients(c.clone(), 2, |_| Fixed(service));
        let stop = c.stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            stop.cancel();
        });
        task.await;
        c.rec.take()
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
