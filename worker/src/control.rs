//! The worker's control server: accepts coordinator connections, authenticates
//! them, and runs one session at a time. The dead-man rule lives here: when the
//! session ends for any reason (connection closed, no ping within `dead_man`,
//! protocol error), every job of that session is cancelled, so traffic never
//! outlives the coordinator that ordered it.

use crate::job::{self, Prepared};
use cnibench_net::conn::Connection;
use cnibench_proto::auth::{self, Side};
use cnibench_proto::clock::unix_now_ns;
use cnibench_proto::msg::{Msg, NONCE_LEN, PROTO_VERSION, WorkerInfo};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Worker settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Shared secret; never sent on the wire.
    pub token: Vec<u8>,
    /// What this worker reports about itself; `data_ip` is where servers bind.
    pub info: WorkerInfo,
    /// Stop all traffic when nothing arrives from the coordinator for this long.
    pub dead_man: Duration,
    /// Where this worker may send traffic, and how much.
    pub limits: crate::limits::Limits,
}

/// Time allowed for a connecting peer to finish the handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

fn log(msg: impl std::fmt::Display) {
    eprintln!("cnibench-worker: {msg}");
}

/// Serve control connections on `listener` until `shutdown` is cancelled.
pub async fn serve(listener: TcpListener, cfg: Arc<Config>, shutdown: CancellationToken) {
    let busy = Arc::new(Mutex::new(()));
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    log(format_args!("accept failed: {e}"));
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let (cfg, busy, shutdown) = (cfg.clone(), busy.clone(), shutdown.clone());
        tokio::spawn(async move {
            match handle(stream, peer, cfg, busy, shutdown).await {
                Ok(()) => log(format_args!("session with {peer} ended")),
                Err(e) => log(format_args!("connection from {peer}: {e}")),
            }
        });
    }
}

async fn handle(
    stream: TcpStream,
    peer: SocketAddr,
    cfg: Arc<Config>,
    busy: Arc<Mutex<()>>,
    shutdown: CancellationToken,
) -> Result<(), String> {
    let mut conn = Connection::new(stream);
    let guard = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake(&mut conn, &cfg, &busy))
        .await
        .map_err(|_| "handshake timed out".to_string())??;
    log(format_args!("coordinator {peer} authenticated"));
    let r = session(conn, &cfg, shutdown).await;
    drop(guard);
    r
}

/// Worker side of the handshake; returns the session slot on success. The
/// worker proves itself first; the coordinator's proof must cover the worker's
/// (see `cnibench_proto::auth`), then both directions are sealed.
async fn handshake(
    conn: &mut Connection<TcpStream>,
    cfg: &Config,
    busy: &Arc<Mutex<()>>,
) -> Result<tokio::sync::OwnedMutexGuard<()>, String> {
    let nonce_w: [u8; NONCE_LEN] = rand::random();
    send(
        conn,
        &Msg::Challenge {
            proto_version: PROTO_VERSION,
            nonce: nonce_w,
        },
    )
    .await?;
    let (version, nonce_c) = match conn.read_msg().await {
        Ok(Some(Msg::Auth {
            proto_version,
            nonce,
        })) => (proto_version, nonce),
        Ok(Some(other)) => return Err(format!("expected Auth, got {}", name(&other))),
        Ok(None) => return Err("closed during handshake".into()),
        Err(e) => {
            return Err(format!(
                "{e} (a coordinator of another protocol version? this worker speaks {PROTO_VERSION})"
            ));
        }
    };
    if version != PROTO_VERSION {
        return refuse(
            conn,
            format!("protocol version {version} not supported (worker speaks {PROTO_VERSION})"),
        )
        .await;
    }
    // Refuse a second coordinator at once, before proving anything; the slot is
    // taken only once the coordinator has proved itself (a stranger cannot hold it).
    if busy.try_lock().is_err() {
        return refuse(conn, "busy: serving another coordinator".into()).await;
    }
    let proof_w = auth::worker_proof(
        &cfg.token,
        &nonce_w,
        &nonce_c,
        &auth::info_digest(&cfg.info),
    );
    send(
        conn,
        &Msg::Hello {
            info: cfg.info.clone(),
            proof: proof_w,
        },
    )
    .await?;
    let proof_c = match conn.read_msg().await.map_err(|e| e.to_string())? {
        Some(Msg::Welcome { proof }) => proof,
        Some(Msg::Reject { reason }) => return Err(format!("coordinator refused us: {reason}")),
        Some(other) => return Err(format!("expected Welcome, got {}", name(&other))),
        None => return Err("closed during handshake".into()),
    };
    if !auth::verify_coordinator(&cfg.token, &nonce_w, &nonce_c, &proof_w, &proof_c) {
        return refuse(conn, "authentication failed (wrong token?)".into()).await;
    }
    let (seal, open) = auth::session(&cfg.token, &nonce_w, &nonce_c, &proof_w, Side::Worker);
    conn.secure(seal, open);
    let Ok(guard) = busy.clone().try_lock_owned() else {
        // Another coordinator proved itself in the meantime.
        return refuse(conn, "busy: serving another coordinator".into()).await;
    };
    Ok(guard)
}

/// Tell the peer why, then fail the handshake.
async fn refuse<T>(conn: &mut Connection<TcpStream>, reason: String) -> Result<T, String> {
    let _ = conn
        .write_msg(&Msg::Reject {
            reason: reason.clone(),
        })
        .await;
    Err(reason)
}

async fn send(conn: &mut Connection<TcpStream>, m: &Msg) -> Result<(), String> {
    conn.write_msg(m).await.map_err(|e| e.to_string())
}

/// Message name for logs.
fn name(m: &Msg) -> String {
    let d = format!("{m:?}");
    d.split(['{', '(', ' ']).next().unwrap_or("?").to_string()
}

/// Whether this worker takes a job: the plan's rules first (a hand-made
/// `Prepare` is held to them too: a 0-byte request would have a tcp-rr server
/// spin), then the operator's limits.
fn admit(limits: &crate::limits::Limits, job: &cnibench_proto::msg::Job) -> Result<(), String> {
    cnibench_proto::plan::validate::job(&job.scenario).map_err(|e| e.to_string())?;
    limits.check(job)
}

/// Run an authenticated session until the coordinator leaves, falls silent, or
/// the worker shuts down.
async fn session(
    mut conn: Connection<TcpStream>,
    cfg: &Config,
    shutdown: CancellationToken,
) -> Result<(), String> {
    let mut jobs_token = CancellationToken::new();
    let (out_tx, mut out_rx) = mpsc::channel::<Msg>(1024);
    let mut prepared: HashMap<u64, Prepared> = HashMap::new();
    let mut running: HashMap<u64, CancellationToken> = HashMap::new();
    // The rate caps hold over every job this session has admitted until it ends.
    let mut committed = crate::limits::Committed::default();
    let mut last_heard = Instant::now();
    let result = loop {
        let silence = tokio::time::sleep_until(last_heard + cfg.dead_man);
        let msg = tokio::select! {
            r = conn.read_msg() => match r {
                Ok(Some(m)) => m,
                Ok(None) => break Ok(()),
                Err(e) => break Err(format!("control connection: {e}")),
            },
            Some(m) = out_rx.recv() => {
                if let Msg::Done { job, .. } | Msg::Failed { job, .. } = &m {
                    committed.release(*job);
                }
                if let Err(e) = conn.write_msg(&m).await {
                    break Err(format!("control connection: {e}"));
                }
                continue;
            }
            _ = silence => break Err(format!(
                "no message from the coordinator for {:?}: dead-man stop", cfg.dead_man)),
            _ = shutdown.cancelled() => {
                let _ = conn.write_msg(&Msg::Reject { reason: "worker shutting down".into() }).await;
                break Ok(());
            }
        };
        let received = unix_now_ns();
        last_heard = Instant::now();
        let reply = match msg {
            Msg::Ping { seq, t1 } => Some(Msg::Pong {
                seq,
                t1,
                t2: received,
                t3: unix_now_ns(),
            }),
            Msg::Prepare(j) => {
                let id = j.id;
                if prepared.contains_key(&id) || running.contains_key(&id) {
                    Some(Msg::Failed {
                        job: id,
                        error: "duplicate job id".into(),
                    })
                } else if let Err(error) =
                    admit(&cfg.limits, &j).and_then(|()| committed.admit(&cfg.limits, &j))
                {
                    log(format_args!("refused job {id}: {error}"));
                    Some(Msg::Failed {
                        job: id,
                        error: format!("refused: {error}"),
                    })
                } else {
                    if let Ok(Some(rule)) = cfg.limits.admitted_by(&j) {
                        log(format_args!("job {id}: target admitted: {rule}"));
                    }
                    match job::prepare(j, cfg.info.data_ip, &jobs_token) {
                        Ok((p, port, cert)) => {
                            prepared.insert(id, p);
                            Some(Msg::Ready {
                                job: id,
                                port,
                                cert,
                            })
                        }
                        Err(error) => {
                            committed.release(id);
                            Some(Msg::Failed { job: id, error })
                        }
                    }
                }
            }
            Msg::Start {
                job: id,
                at_unix_ns,
            } => match prepared.remove(&id) {
                Some(p) => {
                    let finish = p.finish.clone();
                    match job::start(p, at_unix_ns, out_tx.clone()) {
                        Ok(_) => {
                            running.insert(id, finish);
                            None
                        }
                        Err(error) => {
                            committed.release(id);
                            Some(Msg::Failed { job: id, error })
                        }
                    }
                }
                None => Some(Msg::Failed {
                    job: id,
                    error: "start of an unknown job".into(),
                }),
            },
            Msg::Stop { job: id } => {
                if let Some(t) = running.get(&id) {
                    t.cancel();
                } else if let Some(p) = prepared.remove(&id) {
                    p.finish.cancel();
                    committed.release(id);
                }
                None
            }
            Msg::Abort { reason } => {
                log(format_args!("abort: {reason}"));
                jobs_token.cancel();
                jobs_token = CancellationToken::new();
                prepared.clear();
                running.clear();
                committed.clear();
                None
            }
            other => break Err(format!("unexpected message {} in session", name(&other))),
        };
        if let Some(r) = reply
            && let Err(e) = conn.write_msg(&r).await
        {
            break Err(format!("control connection: {e}"));
        }
    };
    // Dead-man: nothing this session started may keep running.
    jobs_token.cancel();
    if result.is_err() && !running.is_empty() {
        log("stopping all traffic of this session");
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use cnibench_proto::msg::{Job, Role};
    use cnibench_proto::plan;
    use cnibench_proto::units::Size;

    #[test]
    fn a_job_breaking_a_plan_rule_is_refused() {
        let text =
            "name: t\nscenarios:\n  - { name: rr, traffic: tcp-rr, path: pod-to-pod-cross-node }\n";
        let mut job = Job {
            id: 1,
            role: Role::Server,
            scenario: plan::load("t.yaml", text).unwrap().scenarios.remove(0),
            target: None,
            server_cert: vec![],
            clock_correction_ns: 0,
            peers: vec![],
            client_index: 0,
        };
        let limits = crate::limits::Limits::default();
        assert_eq!(admit(&limits, &job), Ok(()));
        // A hand-made Prepare: a tcp-rr server would loop on 0-byte requests.
        job.scenario.request_size = Size(0);
        let e = admit(&limits, &job).unwrap_err();
        assert!(e.contains("request_size") && e.contains("rr"), "{e}");
        // Would overflow warm-up + duration in the limits' own check.
        job.scenario.request_size = Size(1);
        job.scenario.duration.0 = std::time::Duration::MAX;
        let limits = crate::limits::Limits {
            max_duration: Some(std::time::Duration::from_secs(60)),
            ..limits
        };
        let e = admit(&limits, &job).unwrap_err();
        assert!(e.contains("duration"), "{e}");
    }
}
