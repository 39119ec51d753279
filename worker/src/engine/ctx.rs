//! What an engine's tasks share ([`Ctx`]): the scenario, the recorder, the stop
//! signal and the start instant; and the timing every engine uses through it:
//! pacing towards intended send times, and the servers' planned delay and stall.

use super::timer;
use crate::recorder::Recorder;
use cnibench_proto::pacing::{Pacer, Slot};
use cnibench_proto::plan::ScenarioSpec;
use cnibench_proto::units::Rate;
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

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
    /// This client worker's place among the scenario's `clients`, for pacing.
    pub client_index: u32,
    /// Servers: the data-plane addresses of the job's clients, the only sources
    /// a udp-rr server answers; empty: any source (behind a Service, where
    /// sources are translated, or a job that names none).
    pub clients: Arc<Vec<IpAddr>>,
    /// Clients on a direct path (to a server worker): the worker's data IP,
    /// which udp-rr sockets send from, so that the server knows them.
    pub local_ip: Option<IpAddr>,
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
            client_index: 0,
            clients: Arc::new(Vec::new()),
            local_ip: None,
        }
    }

    /// Whether a server of this job serves `ip` (see [`Ctx::clients`]).
    pub fn admits(&self, ip: IpAddr) -> bool {
        self.clients.is_empty() || self.clients.contains(&ip.to_canonical())
    }

    /// The start instant (now, if the job has not started: servers before `Start`).
    pub fn start(&self) -> Instant {
        *self.t0.get().unwrap_or(&Instant::now())
    }

    /// The pacer for lane `lane` of `lanes` parallel ones, or `None` in closed loop.
    /// `unit_bits` converts a bitrate into operations (bits per operation). Its
    /// phase and seed depend on this client worker's place among the scenario's
    /// too ([`Slot`]).
    pub fn pacer(&self, lane: u32, lanes: u32, unit_bits: u64) -> Option<Pacer> {
        let ops = match self.spec.rate {
            Rate::Max => return None,
            Rate::PerSecond(r) => r,
            Rate::BitsPerSecond(b) => b / unit_bits.max(1) as f64,
        };
        let slot = Slot {
            client: self.client_index,
            clients: self.spec.clients,
            lane,
            lanes,
        };
        // FNV-1a of the scenario's name: its own arrivals, run after run.
        let seed = self
            .spec
            .name
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
            });
        Some(slot.pacer(ops, self.spec.arrival, seed))
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
        // The generator's own lag: from when it could have sent (the intended
        // time, or when the lane came free if that was later).
        let lag = Instant::now().saturating_duration_since(due.max(free_since));
        self.rec.scheduled(queued, lag);
        Some((due, queued))
    }

    /// At the end of an open-loop lane: count what was due by the end of the
    /// job (or by now, if it stopped early) and never sent: `drawn`, a time the
    /// lane took from `pacer` but did not send at, and what `pacer` still has.
    pub fn count_unsent(&self, pacer: &mut Pacer, drawn: Option<Instant>) {
        let start = self.start();
        let by = Instant::now().min(start + self.spec.warmup.0 + self.spec.duration.0);
        let n = u64::from(drawn.is_some_and(|d| d <= by))
            + pacer.skip_until(
                u64::try_from(by.saturating_duration_since(start).as_nanos()).unwrap_or(u64::MAX),
            );
        if n > 0 {
            self.rec.unsent(n);
        }
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
        let lag = std::time::Instant::now().saturating_duration_since(due.max(free_since));
        self.rec.scheduled(queued, lag);
        Some((due, queued))
    }

    /// Server side: wait the plan's `server_delay`, and out a stall window. These
    /// delays are part of what is measured, so they use the precise timer.
    pub async fn server_pause(&self) {
        if let Some(at) = self.answer_at(Instant::now()) {
            timer::sleep_until(at).await;
        }
    }

    /// When a server answers a request it has at `now`: at the end of the stall
    /// window if `now` falls in it, plus `server_delay`; `None` to answer at once.
    fn answer_at(&self, now: Instant) -> Option<Instant> {
        let mut at = now;
        if let Some(stall) = self.spec.server_stall
            && let Some(t0) = self.t0.get()
        {
            let (from, to) = (*t0 + stall.at.0, *t0 + stall.at.0 + stall.length.0);
            if now >= from && now < to {
                at = to;
            }
        }
        at += self.spec.server_delay.0;
        (at > now).then_some(at)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_ctx;
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_server_answers_after_its_delay_and_after_a_stall() {
        let c =
            test_ctx("traffic: tcp-rr, server_delay: 2ms, server_stall: { at: 100ms, for: 500ms }");
        let ms = |n| Duration::from_millis(n);
        let t0 = Instant::now();
        // Before the job starts there is no stall window, only the delay.
        assert_eq!(c.answer_at(t0 + ms(200)), Some(t0 + ms(202)));
        c.t0.set(t0).unwrap();
        assert_eq!(c.answer_at(t0), Some(t0 + ms(2)));
        assert_eq!(c.answer_at(t0 + ms(99)), Some(t0 + ms(101)));
        // In the window: its end, then the delay, once.
        for into in [100, 200, 599] {
            assert_eq!(c.answer_at(t0 + ms(into)), Some(t0 + ms(602)), "{into}");
        }
        assert_eq!(c.answer_at(t0 + ms(600)), Some(t0 + ms(602)));
        let plain = test_ctx("traffic: tcp-rr");
        plain.t0.set(t0).unwrap();
        assert_eq!(plain.answer_at(t0 + ms(5)), None);
    }

    #[tokio::test]
    async fn server_pause_is_never_early() {
        let c = test_ctx("traffic: tcp-rr, server_delay: 2ms");
        c.t0.set(Instant::now()).unwrap();
        for _ in 0..5 {
            let t = std::time::Instant::now();
            c.server_pause().await;
            assert!(t.elapsed() >= Duration::from_millis(2), "{:?}", t.elapsed());
        }
    }
}
