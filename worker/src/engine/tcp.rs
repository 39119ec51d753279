//! TCP engines: bulk stream, request/response on persistent connections (rr) and
//! connect-request-response-close (crr, the server closes first, as netperf's
//! TCP_CRR does, so TIME_WAIT lands on the server side and client ports recycle).

use super::{Ctx, Engine, RETRY_PAUSE, Task, fan_out};
use socket2::{Domain, Protocol, Socket, Type};
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Bind a listener on `ip:0` with a backlog large enough for connection storms.
fn listen(ip: IpAddr) -> io::Result<TcpListener> {
    let addr = SocketAddr::new(ip, 0);
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    s.set_reuse_address(true)?;
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    s.listen(4096)?;
    TcpListener::from_std(s.into())
}

async fn connect(target: SocketAddr, ctx: &Ctx) -> io::Result<TcpStream> {
    let s = TcpStream::connect(target).await?;
    s.set_nodelay(true)?;
    ctx.rec.connection();
    Ok(s)
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

/// One try at a client's work: returns on error (or, for crr, after each transaction).
trait Attempt: Send + 'static {
    fn run(&mut self, ctx: &Ctx) -> impl Future<Output = io::Result<()>> + Send;
}

/// Run `a` until stopped; on an error, count it, pause and try again.
async fn until_stopped(ctx: Ctx, mut a: impl Attempt) {
    while !ctx.stop.is_cancelled() {
        tokio::select! {
            _ = ctx.stop.cancelled() => return,
            r = a.run(&ctx) => if let Err(e) = r {
                ctx.rec.io_error(&e);
                tokio::select! {
                    _ = ctx.stop.cancelled() => return,
                    _ = tokio::time::sleep(RETRY_PAUSE) => {}
                }
            },
        }
    }
}

/// `n` parallel attempt loops, each with its own state from `make`.
fn clients<A: Attempt>(n: u32, ctx: Ctx, make: impl Fn(&Ctx) -> A) -> Task {
    let loops: Vec<_> = (0..n)
        .map(|_| until_stopped(ctx.clone(), make(&ctx)))
        .collect();
    Box::pin(fan_out(loops))
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

/// Bulk transfer: clients write `message_size` chunks on `streams` connections;
/// the server counts what it reads (goodput at the receiver).
#[derive(Debug)]
pub struct Stream;

impl Engine for Stream {
    fn serve(&self, ip: IpAddr, ctx: Ctx) -> io::Result<(u16, Task)> {
        let l = listen(ip)?;
        let port = l.local_addr()?.port();
        let task = accept_loop(l, ctx, |mut s, ctx| async move {
            let mut buf = vec![0u8; 256 << 10];
            loop {
                let n = s.read(&mut buf).await?;
                if n == 0 {
                    return Ok(());
                }
                ctx.rec.received(n as u64);
            }
        });
        Ok((port, task))
    }

    fn client(&self, target: SocketAddr, ctx: Ctx) -> Task {
        clients(ctx.spec.streams, ctx, |ctx| StreamClient {
            target,
            buf: vec![0x5a; ctx.spec.message_size.0 as usize],
        })
    }
}

struct StreamClient {
    target: SocketAddr,
    buf: Vec<u8>,
}

impl Attempt for StreamClient {
    async fn run(&mut self, ctx: &Ctx) -> io::Result<()> {
        let mut s = connect(self.target, ctx).await?;
        loop {
            s.write_all(&self.buf).await?;
            ctx.rec.sent(self.buf.len() as u64);
        }
    }
}

/// Request/response on persistent connections.
#[derive(Debug)]
pub struct Rr;

impl Engine for Rr {
    fn serve(&self, ip: IpAddr, ctx: Ctx) -> io::Result<(u16, Task)> {
        let l = listen(ip)?;
        let port = l.local_addr()?.port();
        let task = accept_loop(l, ctx, |mut s, ctx| async move {
            let mut req = vec![0u8; ctx.spec.request_size.0 as usize];
            let resp = vec![0xa5_u8; ctx.spec.response_size.0 as usize];
            while read_message(&mut s, &mut req).await? {
                s.write_all(&resp).await?;
                ctx.rec.served(req.len() as u64, resp.len() as u64);
            }
            Ok(())
        });
        Ok((port, task))
    }

    fn client(&self, target: SocketAddr, ctx: Ctx) -> Task {
        clients(ctx.spec.connections, ctx, |ctx| RrClient::new(target, ctx))
    }
}

/// Buffers of one request/response client connection.
struct RrClient {
    target: SocketAddr,
    req: Vec<u8>,
    resp: Vec<u8>,
}

impl RrClient {
    fn new(target: SocketAddr, ctx: &Ctx) -> Self {
        RrClient {
            target,
            req: vec![0x5a; ctx.spec.request_size.0 as usize],
            resp: vec![0; ctx.spec.response_size.0 as usize],
        }
    }

    /// Send a request and read the whole response on `s`.
    async fn exchange(&mut self, s: &mut TcpStream) -> io::Result<()> {
        s.write_all(&self.req).await?;
        if read_message(s, &mut self.resp).await? {
            Ok(())
        } else {
            Err(io::ErrorKind::UnexpectedEof.into())
        }
    }

    fn record(&self, ctx: &Ctx, t0: Instant) {
        ctx.rec
            .transaction(t0.elapsed(), self.req.len() as u64, self.resp.len() as u64);
    }
}

impl Attempt for RrClient {
    async fn run(&mut self, ctx: &Ctx) -> io::Result<()> {
        let mut s = connect(self.target, ctx).await?;
        loop {
            let t0 = Instant::now();
            self.exchange(&mut s).await?;
            self.record(ctx, t0);
        }
    }
}

/// Connect, request, response, close: one transaction per connection.
#[derive(Debug)]
pub struct Crr;

impl Engine for Crr {
    fn serve(&self, ip: IpAddr, ctx: Ctx) -> io::Result<(u16, Task)> {
        let l = listen(ip)?;
        let port = l.local_addr()?.port();
        let task = accept_loop(l, ctx, |mut s, ctx| async move {
            let mut req = vec![0u8; ctx.spec.request_size.0 as usize];
            if read_message(&mut s, &mut req).await? {
                let resp = vec![0xa5_u8; ctx.spec.response_size.0 as usize];
                s.write_all(&resp).await?;
                ctx.rec.served(req.len() as u64, resp.len() as u64);
            }
            Ok(())
        });
        Ok((port, task))
    }

    fn client(&self, target: SocketAddr, ctx: Ctx) -> Task {
        clients(ctx.spec.connections, ctx, |ctx| {
            CrrClient(RrClient::new(target, ctx))
        })
    }
}

struct CrrClient(RrClient);

impl Attempt for CrrClient {
    async fn run(&mut self, ctx: &Ctx) -> io::Result<()> {
        let t0 = Instant::now();
        let mut s = connect(self.0.target, ctx).await?;
        self.0.exchange(&mut s).await?;
        // Wait for the server's close, so the transaction includes teardown.
        let mut one = [0u8; 1];
        if s.read(&mut one).await? != 0 {
            return Err(io::Error::other("server sent more than the response"));
        }
        self.0.record(ctx, t0);
        Ok(())
    }
}
