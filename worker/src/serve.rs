//! A traffic engine's server on its own, without a coordinator: for measuring
//! cnibench's servers with other tools' clients (`wrk` against the `http1`
//! server, `h2load` against `http2`, as `scripts/bench-peers.sh` does) and for
//! poking at a datapath by hand.
//!
//! The server is the same one a job runs ([`crate::engine::Engine::serve`]), bound
//! on `ip` with a kernel-chosen port, built from a one-scenario plan so the usual
//! defaults and validation apply. It serves until the duration is over or `stop`
//! is cancelled, then reports what it counted.
//!
//! ```no_run
//! # async fn f() -> anyhow::Result<()> {
//! use cnibench_worker::serve::{Standalone, serve};
//! let s = Standalone::new("http1", "1KiB")?;
//! let stop = tokio_util::sync::CancellationToken::new();
//! let served = serve(s, "127.0.0.1".parse()?, std::time::Duration::from_secs(10), stop,
//!     |port| eprintln!("serving on port {port}")).await?;
//! eprintln!("{} requests", served.counters.transactions);
//! # Ok(()) }
//! ```

use crate::engine::{self, Ctx};
use crate::recorder::Window;
use cnibench_proto::plan::{self, ScenarioSpec};
use std::net::IpAddr;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// What a standalone server serves.
#[derive(Debug, Clone)]
pub struct Standalone {
    spec: ScenarioSpec,
}

impl Standalone {
    /// A server for traffic kind `traffic` (plan spelling, e.g. `http1`) answering
    /// with `response_size` (plan spelling, e.g. `1KiB`) payload bytes.
    pub fn new(traffic: &str, response_size: &str) -> Result<Standalone, plan::PlanError> {
        let text = format!(
            "name: serve\nscenarios:\n  - {{ name: serve, traffic: {traffic}, \
             path: pod-to-pod-cross-node, response_size: {response_size} }}\n"
        );
        let mut p = plan::load("serve", &text)?;
        Ok(Standalone {
            spec: p.scenarios.remove(0),
        })
    }

    /// The scenario the server runs.
    pub fn spec(&self) -> &ScenarioSpec {
        &self.spec
    }
}

/// Serve `what` on `ip` for `duration` (or until `stop`); `bound` is told the port
/// once the server accepts. Returns everything the server counted.
pub async fn serve(
    what: Standalone,
    ip: IpAddr,
    duration: Duration,
    stop: CancellationToken,
    bound: impl FnOnce(u16),
) -> std::io::Result<Window> {
    let traffic = what.spec.traffic;
    let ctx = Ctx::new(what.spec, stop.child_token());
    let _ = ctx.t0.set(Instant::now());
    let served = engine::for_traffic(traffic).serve(ip, ctx.clone())?;
    bound(served.port);
    let task = tokio::spawn(served.task);
    tokio::select! {
        _ = tokio::time::sleep(duration) => {}
        _ = stop.cancelled() => {}
    }
    // Clients still connected at the end are cut off, not failing.
    ctx.rec.drain();
    ctx.stop.cancel();
    let _ = task.await;
    Ok(ctx.rec.take())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn http1_server_answers_a_plain_client() {
        let s = Standalone::new("http1", "5").unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let stop = CancellationToken::new();
        let server = tokio::spawn(serve(
            s,
            "127.0.0.1".parse().unwrap(),
            Duration::from_secs(60),
            stop.clone(),
            move |port| {
                let _ = tx.send(port);
            },
        ));
        let port = rx.await.unwrap();
        let mut c = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        c.write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut resp = Vec::new();
        c.read_to_end(&mut resp).await.unwrap();
        assert!(resp.starts_with(b"HTTP/1.1 200"), "{resp:?}");
        assert!(resp.ends_with(b"\r\n\r\n\xa5\xa5\xa5\xa5\xa5"), "{resp:?}");
        stop.cancel();
        let w = server.await.unwrap().unwrap();
        assert_eq!(w.counters.transactions, 1);
        assert!(w.counters.errors.is_empty(), "{:?}", w.counters.errors);
    }

    #[test]
    fn bad_traffic_is_a_plan_error() {
        assert!(Standalone::new("gopher", "1").is_err());
    }
}
