//! TCP engines: bulk stream, request/response on persistent connections (rr) and
//! connect-request-response-close (crr, the server closes first, as netperf's
//! TCP_CRR does, so TIME_WAIT lands on the server side and client ports recycle).

use super::{
    Ctx, Engine, Exchange, RETRY_PAUSE, Served, Task, TxError, Writer, rr_clients, stream_clients,
};
use bytes::Bytes;
use cnibench_proto::plan::ScenarioSpec;
use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::{IpAddr, SocketAddr};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Bind a listener on `ip:0` with a backlog large enough for connection storms.
#[cfg(test)]
pub(super) fn listen(ip: IpAddr) -> io::Result<TcpListener> {
    listen_on(SocketAddr::new(ip, 0))
}

/// [`listen`] on a given address (a Service's target port).
fn listen_on(addr: SocketAddr) -> io::Result<TcpListener> {
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    s.set_reuse_address(true)?;
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    s.listen(4096)?;
    TcpListener::from_std(s.into())
}

/// Connect with Nagle off, counting the connection.
pub(super) async fn connect(target: SocketAddr, ctx: &Ctx) -> io::Result<TcpStream> {
    let s = TcpStream::connect(target).await?;
    s.set_nodelay(true)?;
    ctx.rec.connection();
    Ok(s)
}

/// Listen on `ip` (any free port, or behind a Service its target port) and
/// serve until stopped, running `handle` for each connection.
pub(super) fn serve<F, Fut>(ip: IpAddr, ctx: Ctx, handle: F) -> io::Result<Served>
where
    F: Fn(TcpStream, Ctx) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = io::Result<()>> + Send + 'static,
{
    let l = listen_on(SocketAddr::new(ip, ctx.spec.listen_port()))?;
    let port = l.local_addr()?.port();
    Ok(Served::plain(port, accept_loop(l, ctx, handle)))
}

/// Accept until stopped, running `handle` for each connection; connection tasks are
/// stopped together with the listener.
fn accept_loop<F, Fut>(listener: TcpListener, ctx: Ctx, handle: F) -> Task
where
    F: Fn(TcpStream, Ctx) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = io::Result<()>> + Send + 'static,
{
    Box::pin(async move {
        let mut conns = tokio::task::JoinSet::new();
        loop {
            tokio::select! {
                _ = ctx.stop.cancelled() => break,
                r = listener.accept() => match r {
                    Ok((s, _)) => {
                        let _ = s.set_nodelay(true);
                        ctx.rec.connection();
                        let c = ctx.clone();
                        let fut = handle(s, c.clone());
                        conns.spawn(async move {
                            tokio::select! {
                                _ = c.stop.cancelled() => {}
                                r = fut => if let Err(e) = r { c.rec.io_error(&e) },
                            }
                        });
                    }
                    // Out of file descriptors and the like: count, pause, go on.
                    Err(e) => {
                        ctx.rec.io_error(&e);
                        tokio::time::sleep(RETRY_PAUSE).await;
                    }
                },
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
            }
        }
        conns.shutdown().await;
    })
}

/// Read exactly `buf.len()` bytes; `Ok(false)` on a clean EOF before the first byte.
async fn read_message(s: &mut TcpStream, buf: &mut [u8]) -> io::Result<bool> {
    let mut got = 0;
    while got < buf.len() {
        let n = s.read(&mut buf[got..]).await?;
        if n == 0 {
            return if got == 0 {
                Ok(false)
            } else {
                Err(io::ErrorKind::UnexpectedEof.into())
            };
        }
        got += n;
    }
    Ok(true)
}

/// Bulk transfer: clients write `message_size` chunks on `streams` connections
/// (paced for a bitrate target); the server counts what it reads (goodput at the
/// receiver).
#[derive(Debug)]
pub struct Stream;

impl Engine for Stream {
    fn serve(&self, ip: IpAddr, ctx: Ctx) -> io::Result<Served> {
        serve(ip, ctx, |mut s, ctx| async move {
            let mut buf = vec![0u8; 256 << 10];
            loop {
                let n = s.read(&mut buf).await?;
                if n == 0 {
                    return Ok(());
                }
                ctx.rec.received(n as u64);
            }
        })
    }

    fn client(&self, target: SocketAddr, ctx: Ctx) -> Task {
        let size = ctx.spec.message_size.0;
        let chunk = Bytes::from(vec![0x5a; size as usize]);
        let streams = ctx.spec.streams;
        stream_clients(ctx, streams, size * 8, |_| StreamWriter {
            target,
            chunk: chunk.clone(),
        })
    }
}

/// One bulk-transfer lane: writes `chunk` after `chunk` on its connection.
struct StreamWriter {
    target: SocketAddr,
    chunk: Bytes,
}

impl Writer for StreamWriter {
    type Conn = TcpStream;

    async fn connect(&mut self, ctx: &Ctx) -> Result<TcpStream, TxError> {
        Ok(connect(self.target, ctx).await?)
    }

    async fn write(&mut self, s: &mut TcpStream, _ctx: &Ctx) -> Result<u64, TxError> {
        s.write_all(&self.chunk).await?;
        Ok(self.chunk.len() as u64)
    }
}

/// How many requests a request/response server answers on a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Requests {
    /// One, then it closes the connection (crr).
    One,
    /// Any number, until the client closes it (rr).
    Many,
}

/// The rr and crr server: read a request, pause as the plan says, answer; once
/// per connection, or until the client closes it.
fn serve_rr(ip: IpAddr, ctx: Ctx, requests: Requests) -> io::Result<Served> {
    // One response buffer for every connection.
    let resp = Bytes::from(vec![0xa5_u8; ctx.spec.response_size.0 as usize]);
    serve(ip, ctx, move |mut s, ctx| {
        let resp = resp.clone();
        async move {
            let mut req = vec![0u8; ctx.spec.request_size.0 as usize];
            while read_message(&mut s, &mut req).await? {
                ctx.server_pause().await;
                s.write_all(&resp).await?;
                ctx.rec.served(req.len() as u64, resp.len() as u64);
                if requests == Requests::One {
                    break;
                }
            }
            Ok(())
        }
    })
}

/// Request/response on persistent connections.
#[derive(Debug)]
pub struct Rr;

impl Engine for Rr {
    fn serve(&self, ip: IpAddr, ctx: Ctx) -> io::Result<Served> {
        serve_rr(ip, ctx, Requests::Many)
    }

    fn client(&self, target: SocketAddr, ctx: Ctx) -> Task {
        let spec = ctx.spec.clone();
        rr_clients(ctx, spec.connections, |_| RrClient::new(target, &spec))
    }
}

/// One request/response client connection, kept between exchanges.
struct RrClient {
    target: SocketAddr,
    conn: Option<TcpStream>,
    req: Vec<u8>,
    resp: Vec<u8>,
}

impl RrClient {
    fn new(target: SocketAddr, spec: &ScenarioSpec) -> Self {
        RrClient {
            target,
            conn: None,
            req: vec![0x5a; spec.request_size.0 as usize],
            resp: vec![0; spec.response_size.0 as usize],
        }
    }

    /// Send a request and read the whole response on `s`.
    async fn request(s: &mut TcpStream, req: &[u8], resp: &mut [u8]) -> io::Result<()> {
        s.write_all(req).await?;
        if read_message(s, resp).await? {
            Ok(())
        } else {
            Err(io::ErrorKind::UnexpectedEof.into())
        }
    }

    fn sizes(&self) -> (u64, u64) {
        (self.req.len() as u64, self.resp.len() as u64)
    }
}

impl Exchange for RrClient {
    async fn exchange(&mut self, ctx: &Ctx) -> Result<(u64, u64), TxError> {
        let s = match self.conn.as_mut() {
            Some(s) => s,
            None => self.conn.insert(connect(self.target, ctx).await?),
        };
        if let Err(e) = Self::request(s, &self.req, &mut self.resp).await {
            self.conn = None;
            return Err(e.into());
        }
        Ok(self.sizes())
    }

    /// The byte stream stopped somewhere in a request or response: out of step,
    /// so the next exchange dials a new connection.
    fn timed_out(&mut self) -> &'static str {
        self.conn = None;
        "timeout"
    }
}

/// Connect, request, response, close: one transaction per connection.
#[derive(Debug)]
pub struct Crr;

impl Engine for Crr {
    fn serve(&self, ip: IpAddr, ctx: Ctx) -> io::Result<Served> {
        serve_rr(ip, ctx, Requests::One)
    }

    fn client(&self, target: SocketAddr, ctx: Ctx) -> Task {
        let spec = ctx.spec.clone();
        rr_clients(ctx, spec.connections, |_| {
            CrrClient(RrClient::new(target, &spec))
        })
    }
}

struct CrrClient(RrClient);

impl Exchange for CrrClient {
    async fn exchange(&mut self, ctx: &Ctx) -> Result<(u64, u64), TxError> {
        let c = &mut self.0;
        let mut s = connect(c.target, ctx).await?;
        RrClient::request(&mut s, &c.req, &mut c.resp).await?;
        // Wait for the server's close, so the transaction includes teardown.
        let mut one = [0u8; 1];
        if s.read(&mut one).await? != 0 {
            return Err(io::Error::other("server sent more than the response").into());
        }
        Ok(c.sizes())
    }

    /// Its connection was dropped with the exchange.
    fn timed_out(&mut self) -> &'static str {
        "timeout"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::test_ctx;
    use std::time::Duration;
    use tokio::time::Instant;

    #[tokio::test]
    async fn a_request_never_answered_times_out_on_a_new_connection_each_time() {
        // A server that reads requests and never answers.
        let l = listen([127, 0, 0, 1].into()).unwrap();
        let target = l.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 64];
                    while matches!(s.read(&mut buf).await, Ok(n) if n > 0) {}
                });
            }
        });
        let c = test_ctx("traffic: tcp-rr, timeout: 50ms");
        c.t0.set(Instant::now()).unwrap();
        let task = tokio::spawn(Rr.client(target, c.clone()));
        tokio::time::sleep(Duration::from_millis(400)).await;
        c.stop.cancel();
        task.await.unwrap();
        let w = c.rec.take().counters;
        let timeouts = w.errors.get("timeout").copied().unwrap_or(0);
        assert!(timeouts >= 3, "{w:?}");
        assert_eq!(w.errors.len(), 1, "{w:?}");
        // The stream is out of step after a timeout: every request after one
        // goes on a new connection.
        assert!(w.connections > timeouts, "{w:?}");
        assert_eq!((w.transactions, w.failed), (0, timeouts));
        assert_eq!(w.attempts, w.failed + w.unfinished);
    }
}
