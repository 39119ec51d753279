//! Reaching the workers: resolve `--workers` ([`crate::discovery`]), connect to
//! all of them at once, and retry those that cannot be reached yet (pods still
//! starting) for up to `--wait-workers`. A refusal (wrong token, busy) is final at
//! once; the run needs every worker, so any worker missing fails the run with
//! every error.

use super::RunError;
use crate::link::{Event, Link};
use anyhow::anyhow;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Connect to every worker concurrently; each forwards its events to `events`
/// tagged with its index in the list.
pub(super) async fn connect_all(
    workers: &[String],
    token: &[u8],
    wait: Duration,
    events: &mpsc::Sender<(usize, Event)>,
) -> Result<Vec<Link>, RunError> {
    let workers = crate::discovery::resolve(workers)
        .await
        .map_err(RunError::Unavailable)?;
    let mut pending = tokio::task::JoinSet::new();
    for (i, w) in workers.iter().enumerate() {
        let (w, token, tx) = (w.clone(), token.to_vec(), events.clone());
        pending.spawn(async move { (i, connect_waiting(i, &w, &token, tx, wait).await) });
    }
    let mut links: Vec<Option<Link>> = (0..workers.len()).map(|_| None).collect();
    let mut errors = Vec::new();
    while let Some(r) = pending.join_next().await {
        match r {
            Ok((i, Ok(l))) => links[i] = Some(l),
            Ok((_, Err(e))) => errors.push(format!("{e:#}")),
            Err(e) => errors.push(format!("worker task: {e}")),
        }
    }
    if !errors.is_empty() {
        errors.sort();
        return Err(RunError::Unavailable(anyhow!(errors.join("; "))));
    }
    Ok(links.into_iter().flatten().collect())
}

/// Connect to a worker, retrying for up to `wait` while it cannot be reached
/// (pods still starting); a refusal (wrong token, busy) is final at once.
async fn connect_waiting(
    i: usize,
    addr: &str,
    token: &[u8],
    events: mpsc::Sender<(usize, Event)>,
    wait: Duration,
) -> anyhow::Result<Link> {
    let until = Instant::now() + wait;
    loop {
        match Link::connect(i, addr, token, events.clone()).await {
            Ok(l) => return Ok(l),
            Err(e) if Instant::now() < until && unreachable(&e) => {
                tokio::time::sleep(Duration::from_secs(1).min(until - Instant::now())).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Whether a connection error means "not there (yet)" rather than a refusal.
fn unreachable(e: &anyhow::Error) -> bool {
    use std::io::ErrorKind::*;
    let io = e
        .chain()
        .find_map(|c| c.downcast_ref::<std::io::Error>())
        .map(|io| io.kind());
    matches!(
        io,
        Some(ConnectionRefused | TimedOut | HostUnreachable | NetworkUnreachable | ConnectionReset)
    ) || format!("{e:#}").contains("no answer within")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use anyhow::Context;
    use std::io;

    fn io_error(kind: io::ErrorKind) -> anyhow::Error {
        Err::<(), _>(io::Error::from(kind))
            .context("cannot connect")
            .context("worker 10.0.0.1:7000")
            .unwrap_err()
    }

    #[test]
    fn not_there_yet_is_retried_a_refusal_is_not() {
        assert!(unreachable(&io_error(io::ErrorKind::ConnectionRefused)));
        assert!(unreachable(&io_error(io::ErrorKind::HostUnreachable)));
        assert!(unreachable(&anyhow!(
            "worker 10.0.0.1:7000: no answer within 5s"
        )));
        assert!(!unreachable(&io_error(io::ErrorKind::PermissionDenied)));
        assert!(!unreachable(&anyhow!(
            "worker 10.0.0.1:7000: refused: busy with another coordinator"
        )));
    }

    #[tokio::test]
    async fn every_worker_that_cannot_be_reached_is_named() {
        // Bound but not listening: connecting is refused, and the ports stay ours.
        let mut addrs = Vec::new();
        let mut sockets = Vec::new();
        for _ in 0..2 {
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
            addrs.push(socket.local_addr().unwrap().to_string());
            sockets.push(socket);
        }
        let (tx, _rx) = mpsc::channel(1);
        let e = connect_all(&addrs, b"t", Duration::ZERO, &tx)
            .await
            .unwrap_err();
        let RunError::Unavailable(e) = e else {
            panic!("{e}")
        };
        let e = format!("{e:#}");
        let parts: Vec<&str> = e.split("; ").collect();
        assert_eq!(parts.len(), 2, "{e}");
        assert!(parts.is_sorted(), "{e}");
        for a in &addrs {
            assert!(e.contains(&format!("worker {a}: cannot connect")), "{e}");
        }
    }
}
