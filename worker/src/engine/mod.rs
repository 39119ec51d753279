//! Traffic engines. Every traffic kind implements [`Engine`]: the server side binds
//! first (so the coordinator can tell clients where to go) and serves until stopped;
//! the client side generates load at a target until stopped.
//!
//! Client kinds only say what is protocol-specific; two shared drivers own
//! everything else. Request/response kinds say how to do one exchange
//! ([`Exchange`]) and how to recover from one abandoned at the plan's
//! `timeout`; [`rr_clients`] does open- or closed-loop pacing, latency from
//! the intended send time when a request had to wait for the previous one
//! (coordinated-omission correction) and service time from the actual send,
//! schedule keeping (the generator's send lag; what was due but never sent),
//! the timeout, the outcome of every request (completed, failed by kind,
//! unfinished at the stop) and back-off. (Open-loop udp-rr has lanes of its
//! own, with independent requests: `udp`.) Lanes of different client workers
//! interleave ([`cnibench_proto::pacing::Slot`]). Bulk kinds say how to connect
//! and write one message ([`Writer`]); [`stream_clients`] paces the writes for a
//! bitrate, counts what was sent and reconnects after a failure. Both run their
//! lanes on threads of their own (`fan_out`). Servers honour the plan's delay
//! and stall through [`Ctx::server_pause`].
//!
//! # Layout
//!
//! * this file: the [`Engine`] trait, [`Served`], and which engine runs which
//!   traffic kind ([`for_traffic`]);
//! * `ctx`: [`Ctx`], what an engine's tasks share, with pacing and the servers'
//!   pause;
//! * `lane`: the client drivers, [`rr_clients`] and [`stream_clients`];
//! * `fan_out`: lanes spread over threads, each with a single-threaded runtime;
//! * [`timer`]: precise waits for paced senders and servers' delays;
//! * `tcp`, `udp`, `quic`: those protocols' engines (`tcp` also holds the
//!   listener and accept loop the HTTP server uses);
//! * `http`: HTTP/1.1 and HTTP/2, one module per part, among them the HTTP/1.1
//!   response decoder, public as [`h1`] for the fuzz target.

mod ctx;
mod fan_out;
mod http;
mod lane;
mod quic;
mod tcp;
pub mod timer;
mod udp;

pub use ctx::Ctx;
pub(crate) use fan_out::fan_out;
pub use http::h1;
pub use lane::{Exchange, TxError, Writer, rr_clients, stream_clients};

use cnibench_proto::plan::Traffic;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::time::Duration;

/// A boxed task future.
pub type Task = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

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

/// A context for a test: one scenario with `fields` (YAML flow mapping entries,
/// `traffic` among them).
#[cfg(test)]
pub(crate) fn test_ctx(fields: &str) -> Ctx {
    let text =
        format!("name: t\nscenarios:\n  - {{name: s, path: pod-to-pod-cross-node, {fields}}}\n");
    Ctx::new(
        cnibench_proto::plan::load("t.yaml", &text)
            .unwrap()
            .scenarios
            .remove(0),
        tokio_util::sync::CancellationToken::new(),
    )
}
