//! One authenticated control connection to a worker. A background task owns the
//! socket: it writes what the coordinator sends, pings every [`PING_EVERY`] (the
//! worker's dead-man rule depends on it; the answers feed the clock estimate), and
//! forwards everything else the worker says as an [`Event`] tagged with the worker's
//! index, so the orchestrator waits on one channel for all workers.
//!
//! A worker that says nothing at all (not even a `Pong`) for [`SILENT_LIMIT`]
//! is lost: frozen, partitioned or overloaded, its connection may stay open for
//! minutes, so silence is the only sign. The task closes the connection (a worker
//! that wakes up finds it closed and stops its jobs) and reports [`Event::Lost`],
//! like any other loss: the repetition in flight is cut short, later ones on that
//! worker fail at once.

use anyhow::{Context, anyhow, bail};
use cnibench_net::conn::Connection;
use cnibench_proto::auth::{self, Side};
use cnibench_proto::clock::{self, ClockEstimate, Probe, unix_now_ns};
use cnibench_proto::msg::{Msg, NONCE_LEN, PROTO_VERSION, WorkerInfo};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Ping period; also the probe rate for clock estimation.
pub const PING_EVERY: Duration = Duration::from_millis(500);
/// Silence after which a worker is lost: six ping periods. Well above a
/// pong's round trip on a loaded machine (the worker answers from its control
/// loop, apart from the traffic threads), well below the worker's own dead-man
/// default (10 s), so the coordinator gives up first.
pub const SILENT_LIMIT: Duration = Duration::from_secs(3);
/// Time allowed to connect and authenticate.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Keep the newest probes only.
const MAX_PROBES: usize = 64;

/// Something a worker said, or the loss of its connection.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // almost every event is a Msg; boxing would add an allocation each
pub enum Event {
    /// A message other than `Pong`.
    Msg(Msg),
    /// The connection is gone; no more events will come from this worker.
    Lost(String),
}

/// A connected, authenticated worker.
#[derive(Debug)]
pub struct Link {
    /// Index in the worker list.
    pub index: usize,
    /// Address as given by the user.
    pub addr: String,
    /// What the worker reported in `Hello`.
    pub info: WorkerInfo,
    tx: mpsc::Sender<Msg>,
    probes: Arc<Mutex<Vec<Probe>>>,
}

impl Link {
    /// Connect to `addr`, authenticate with `token`, and start the I/O task that
    /// forwards events to `events`.
    pub async fn connect(
        index: usize,
        addr: &str,
        token: &[u8],
        events: mpsc::Sender<(usize, Event)>,
    ) -> anyhow::Result<Link> {
        let (conn, info) = tokio::time::timeout(CONNECT_TIMEOUT, handshake(addr, token))
            .await
            .map_err(|_| anyhow!("worker {addr}: no answer within {CONNECT_TIMEOUT:?}"))?
            .with_context(|| format!("worker {addr}"))?;
        let (tx, rx) = mpsc::channel(256);
        let probes = Arc::new(Mutex::new(Vec::new()));
        tokio::spawn(io_task(index, conn, rx, events, probes.clone()));
        Ok(Link {
            index,
            addr: addr.to_string(),
            info,
            tx,
            probes,
        })
    }

    /// Send a message; an error means the connection is gone.
    pub async fn send(&self, m: Msg) -> anyhow::Result<()> {
        self.tx
            .send(m)
            .await
            .map_err(|_| anyhow!("worker {}: connection lost", self.addr))
    }

    /// Current clock-offset estimate (worker minus coordinator).
    pub fn clock(&self) -> Option<ClockEstimate> {
        clock::estimate(&self.probes.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

async fn handshake(
    addr: &str,
    token: &[u8],
) -> anyhow::Result<(Connection<TcpStream>, WorkerInfo)> {
    let stream = TcpStream::connect(addr).await.context("cannot connect")?;
    stream.set_nodelay(true)?;
    let mut conn = Connection::new(stream);
    let nonce_w = match conn.read_msg().await? {
        Some(Msg::Challenge {
            proto_version,
            nonce,
        }) => {
            if proto_version != PROTO_VERSION {
                bail!(
                    "worker speaks protocol version {proto_version}, this coordinator {PROTO_VERSION}"
                );
            }
            nonce
        }
        Some(Msg::Reject { reason }) => bail!("refused: {reason}"),
        Some(_) => bail!("not a cnibench worker (unexpected first message)"),
        None => bail!("closed the connection during the handshake"),
    };
    let nonce_c: [u8; NONCE_LEN] = rand::random();
    // Our nonce only: nothing derived from the token before the worker proves itself.
    conn.write_msg(&Msg::Auth {
        proto_version: PROTO_VERSION,
        nonce: nonce_c,
    })
    .await?;
    match conn.read_msg().await? {
        Some(Msg::Hello { info, proof }) => {
            let digest = auth::info_digest(&info);
            if !auth::verify_worker(token, &nonce_w, &nonce_c, &digest, &proof) {
                let reason = "authentication failed: the worker's proof is wrong (a different token on either side?)".to_string();
                let _ = conn
                    .write_msg(&Msg::Reject {
                        reason: reason.clone(),
                    })
                    .await;
                bail!(reason);
            }
            let ours = auth::coordinator_proof(token, &nonce_w, &nonce_c, &proof);
            conn.write_msg(&Msg::Welcome { proof: ours }).await?;
            let (seal, open) = auth::session(token, &nonce_w, &nonce_c, &proof, Side::Coordinator);
            conn.secure(seal, open);
            Ok((conn, info))
        }
        Some(Msg::Reject { reason }) => bail!("refused: {reason}"),
        Some(_) => bail!("unexpected message during the handshake"),
        None => bail!("closed the connection during the handshake"),
    }
}

/// Whether a worker last heard at `last_heard` is lost at `now`: silent for
/// [`SILENT_LIMIT`] or more. Returns why.
fn silence(last_heard: Instant, now: Instant) -> Option<String> {
    let quiet = now.saturating_duration_since(last_heard);
    (quiet >= SILENT_LIMIT).then(|| {
        format!(
            "no answer for {:.1}s to pings every {:?}: frozen, overloaded or cut off",
            quiet.as_secs_f64(),
            PING_EVERY
        )
    })
}

/// Own the connection until it is lost or the link is dropped.
async fn io_task<S: AsyncRead + AsyncWrite + Unpin>(
    index: usize,
    mut conn: Connection<S>,
    mut rx: mpsc::Receiver<Msg>,
    events: mpsc::Sender<(usize, Event)>,
    probes: Arc<Mutex<Vec<Probe>>>,
) {
    let mut ping = tokio::time::interval(PING_EVERY);
    let mut seq = 0u64;
    let mut last_heard = Instant::now();
    let lost = loop {
        // Reading first: a task that was itself starved of CPU takes what the
        // worker said meanwhile before it judges the silence.
        tokio::select! {
            biased;
            r = conn.read_msg() => match r {
                Ok(Some(Msg::Pong { t1, t2, t3, .. })) => {
                    last_heard = Instant::now();
                    let t4 = unix_now_ns();
                    let mut p = probes.lock().unwrap_or_else(|p| p.into_inner());
                    if p.len() == MAX_PROBES {
                        p.remove(0);
                    }
                    p.push(Probe { t1, t2, t3, t4 });
                }
                Ok(Some(m)) => {
                    last_heard = Instant::now();
                    if events.send((index, Event::Msg(m))).await.is_err() {
                        return;
                    }
                }
                Ok(None) => break "worker closed the connection".to_string(),
                Err(e) => break e.to_string(),
            },
            m = rx.recv() => match m {
                Some(m) => if let Err(e) = conn.write_msg(&m).await { break e.to_string() },
                // The coordinator dropped the link: close, which stops the worker's jobs.
                None => return,
            },
            _ = ping.tick() => {
                if let Some(why) = silence(last_heard, Instant::now()) {
                    break why;
                }
                seq += 1;
                if let Err(e) = conn.write_msg(&Msg::Ping { seq, t1: unix_now_ns() }).await {
                    break e.to_string();
                }
            }
        }
    };
    let _ = events.send((index, Event::Lost(lost))).await;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use tokio::io::DuplexStream;

    /// A link task on one end of an in-memory pipe; the test is the worker on
    /// the other end.
    fn link() -> (Connection<DuplexStream>, mpsc::Receiver<(usize, Event)>) {
        let (ours, theirs) = tokio::io::duplex(64 << 10);
        let (events_tx, events) = mpsc::channel(16);
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(async move {
            io_task(7, Connection::new(ours), rx, events_tx, Default::default()).await;
            drop(tx);
        });
        (Connection::new(theirs), events)
    }

    /// Answer pings like a worker until `until`; returns when it last answered.
    async fn answer_until(worker: &mut Connection<DuplexStream>, until: Instant) -> Instant {
        let mut last = Instant::now();
        while let Ok(m) = tokio::time::timeout_at(until, worker.read_msg()).await {
            if let Some(Msg::Ping { seq, t1 }) = m.unwrap() {
                let pong = Msg::Pong {
                    seq,
                    t1,
                    t2: t1,
                    t3: t1,
                };
                worker.write_msg(&pong).await.unwrap();
                last = Instant::now();
            }
        }
        last
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_worker_is_lost_after_the_limit_and_its_connection_closed() {
        let (mut worker, mut events) = link();
        let t0 = Instant::now();
        // Answering keeps it alive, however long.
        let frozen = answer_until(&mut worker, t0 + SILENT_LIMIT * 10).await;
        assert!(
            events.try_recv().is_err(),
            "an answering worker is not lost"
        );
        // Then it freezes: pings pile up unread.
        let (w, ev) = tokio::time::timeout(SILENT_LIMIT * 2, events.recv())
            .await
            .expect("a frozen worker is noticed")
            .unwrap();
        let after = frozen.elapsed();
        assert_eq!(w, 7);
        let Event::Lost(why) = ev else {
            panic!("{ev:?}")
        };
        assert!(why.contains("no answer for 3.0s"), "{why}");
        assert!(
            after >= SILENT_LIMIT && after < SILENT_LIMIT + PING_EVERY,
            "lost {after:?} after it fell silent"
        );
        // A worker that wakes up finds its connection closed (it stops its jobs).
        let mut pings = 0;
        while let Some(m) = worker.read_msg().await.unwrap() {
            assert!(matches!(m, Msg::Ping { .. }), "{m:?}");
            pings += 1;
        }
        assert!((5..=6).contains(&pings), "{pings} pings while frozen");
    }

    #[tokio::test(start_paused = true)]
    async fn any_message_counts_as_an_answer() {
        let (mut worker, mut events) = link();
        // A worker that reports but never pongs (an old or busy one) is alive.
        for seq in 0..20 {
            tokio::time::sleep(SILENT_LIMIT / 2).await;
            worker
                .write_msg(&Msg::Done {
                    job: seq,
                    intervals: 0,
                })
                .await
                .unwrap();
            let (_, ev) = events.recv().await.unwrap();
            assert!(matches!(ev, Event::Msg(Msg::Done { .. })), "{ev:?}");
        }
    }

    #[test]
    fn silence_is_judged_against_the_limit() {
        let t0 = Instant::now();
        assert_eq!(
            silence(t0, t0 + SILENT_LIMIT - Duration::from_millis(1)),
            None
        );
        let why = silence(t0, t0 + Duration::from_millis(4200)).unwrap();
        assert!(
            why.starts_with("no answer for 4.2s to pings every 500ms"),
            "{why}"
        );
        // A clock that seems to go back is not silence.
        assert_eq!(silence(t0 + SILENT_LIMIT, t0), None);
    }
}
