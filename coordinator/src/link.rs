//! One authenticated control connection to a worker. A background task owns the
//! socket: it writes what the coordinator sends, pings every [`PING_EVERY`] (the
//! worker's dead-man rule depends on it; the answers feed the clock estimate), and
//! forwards everything else the worker says as an [`Event`] tagged with the worker's
//! index, so the orchestrator waits on one channel for all workers.

use anyhow::{Context, anyhow, bail};
use cnibench_net::conn::Connection;
use cnibench_proto::auth::{self, Side};
use cnibench_proto::clock::{self, ClockEstimate, Probe, unix_now_ns};
use cnibench_proto::msg::{Msg, NONCE_LEN, PROTO_VERSION, WorkerInfo};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// Ping period; also the probe rate for clock estimation.
pub const PING_EVERY: Duration = Duration::from_millis(500);
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
    let theirs = match conn.read_msg().await? {
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
    let ours: [u8; NONCE_LEN] = rand::random();
    let proof = auth::prove(token, Side::Coordinator, &theirs, &ours);
    conn.write_msg(&Msg::Auth {
        proto_version: PROTO_VERSION,
        nonce: ours,
        proof,
    })
    .await?;
    match conn.read_msg().await? {
        Some(Msg::Hello { info, proof }) => {
            if !auth::verify(token, Side::Worker, &ours, &theirs, &proof) {
                let reason = "worker failed authentication".to_string();
                let _ = conn
                    .write_msg(&Msg::Reject {
                        reason: reason.clone(),
                    })
                    .await;
                bail!(reason);
            }
            conn.write_msg(&Msg::Welcome).await?;
            Ok((conn, info))
        }
        Some(Msg::Reject { reason }) => bail!("refused: {reason}"),
        Some(_) => bail!("unexpected message during the handshake"),
        None => bail!("closed the connection during the handshake (wrong token?)"),
    }
}

async fn io_task(
    index: usize,
    mut conn: Connection<TcpStream>,
    mut rx: mpsc::Receiver<Msg>,
    events: mpsc::Sender<(usize, Event)>,
    probes: Arc<Mutex<Vec<Probe>>>,
) {
    let mut ping = tokio::time::interval(PING_EVERY);
    let mut seq = 0u64;
    let lost = loop {
        tokio::select! {
            r = conn.read_msg() => match r {
                Ok(Some(Msg::Pong { t1, t2, t3, .. })) => {
                    let t4 = unix_now_ns();
                    let mut p = probes.lock().unwrap_or_else(|p| p.into_inner());
                    if p.len() == MAX_PROBES {
                        p.remove(0);
                    }
                    p.push(Probe { t1, t2, t3, t4 });
                }
                Ok(Some(m)) => {
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
                seq += 1;
                if let Err(e) = conn.write_msg(&Msg::Ping { seq, t1: unix_now_ns() }).await {
                    break e.to_string();
                }
            }
        }
    };
    let _ = events.send((index, Event::Lost(lost))).await;
}
