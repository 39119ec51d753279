//! HTTP engines on hyper: HTTP/1.1 keep-alive (`http1`) and HTTP/2 over cleartext
//! with prior knowledge (`http2`, h2c).
//!
//! # Client
//!
//! Pacing, timing, coordinated-omission correction, error counting and back-off
//! belong to the shared request/response driver ([`rr_clients`]); this module only
//! says how one exchange is done ([`Lane`]): send the request, read the whole
//! response body, classify the status. A *lane* is one sequence of exchanges.
//!
//! * `http1`: `connections` lanes, one per connection. HTTP/1.1 carries one request
//!   at a time, so each lane owns its connection.
//! * `http2`: `connections` TCP connections each multiplexing `streams` concurrent
//!   streams, so `connections × streams` lanes. The lanes of one group share one
//!   connection ([`H2Dial`]) by cloning its `SendRequest` handle: the first lane
//!   that needs the connection opens it while the group's other lanes wait, and
//!   when it dies, the next lane that needs it opens a new one for the group.
//!
//! No pooled client (hyper-util's `Client` adds a lock, a checkout and a host
//! lookup to every request and decides by itself how many connections to open,
//! while a load generator must open exactly the connections the plan asks for
//! and keep every lane on its own). An HTTP/1.1 lane writes its request, one
//! buffer prepared once, and parses the response itself with httparse, hyper's
//! own parser ([`H1Conn`]): under wrk's load profile hyper's client machinery
//! (request and header maps per request, dispatcher, body channel) took a third
//! of the client's CPU. Responses may be framed by Content-Length, chunked, or
//! by closing the connection; a connection the server closed while it was idle
//! is replaced without counting an error. An HTTP/2 connection, shared by its
//! group, uses hyper's low-level connection API (`hyper::client::conn`) and runs
//! in a task of its own (`SendRequest` hands requests to it over a channel). Nothing is spawned per request, and request bodies are
//! `Bytes` clones of one buffer.
//!
//! A response with a non-2xx status is a completed exchange but not a successful
//! transaction: its class (`status`) and its error kind (`http-4xx`, `http-5xx`...)
//! are counted together, and it fails as [`TxError::Counted`], keeping the
//! connection. hyper
//! errors are counted under the stable I/O kinds (`connect-refused`, `reset`,
//! `eof`, `timeout`...) when they come from the socket or the connection closing,
//! else as `http2-reset`, `http2-goaway` or `http-protocol`.
//!
//! Requests are `GET /` when `request_size` is 1 byte (the minimum: no body) and
//! `POST /` with a `request_size` body otherwise; payload byte counts are body
//! bytes.
//!
//! # Server
//!
//! One task per connection, serving HTTP/1.1 keep-alive or h2c (hyper runs each
//! HTTP/2 stream in a task of its own). Each request's body is read and discarded,
//! the server waits [`Ctx::server_pause`], counts the request as served and
//! answers 200 with `response_size` bytes: one preallocated buffer shared by all
//! responses.

use super::{Ctx, Engine, Exchange, RETRY_PAUSE, Served, Task, TxError, rr_clients, tcp};
use bytes::Bytes;
use cnibench_proto::plan::ScenarioSpec;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http2 as client2;
use hyper::header::{HOST, HeaderValue};
use hyper::server::conn::{http1 as server1, http2 as server2};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode, Uri};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::error::Error as StdError;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::sync::Mutex;

/// Request and response bodies: one buffer, cloned.
type Body = Full<Bytes>;

/// The server accepts at least this many concurrent streams per HTTP/2 connection
/// (more when the plan's `streams` asks for more).
const H2_MIN_STREAMS: u32 = 256;

/// HTTP/1.1 keep-alive requests.
#[derive(Debug)]
pub struct Http1;

impl Engine for Http1 {
    fn serve(&self, ip: IpAddr, ctx: Ctx) -> io::Result<Served> {
        let mut b = server1::Builder::new();
        // Our own clients are not slowloris attackers; without a header timeout
        // the server needs no timer either.
        b.header_read_timeout(None);
        // A client that goes away mid-request (as clients do when they stop) is
        // noticed when the response is written, as with tcp-rr, not at once: at the
        // end of a run, that is after the server has begun draining.
        b.half_close(true);
        // Head and body in one buffer, one write(2) per response: cheaper than
        // writev(2) of two small pieces (profile under wrk), at the cost of copying
        // the body (responses here are usually small).
        b.writev(false);
        serve(ip, ctx, ServerConn::H1(b))
    }

    fn client(&self, target: SocketAddr, ctx: Ctx) -> Task {
        let req = RequestTemplate::new(
            &ctx.spec,
            Uri::from_static("/"),
            // A socket address is always a valid Host.
            HeaderValue::try_from(target.to_string()).ok(),
        );
        let lanes = ctx.spec.connections;
        rr_clients(ctx, lanes, |_| Lane::new(H1Dial(target), req.clone()))
    }
}

/// HTTP/2 requests over cleartext (h2c, prior knowledge), several streams per
/// connection.
#[derive(Debug)]
pub struct Http2;

impl Engine for Http2 {
    fn serve(&self, ip: IpAddr, ctx: Ctx) -> io::Result<Served> {
        let mut b = server2::Builder::new(TokioExecutor::new());
        b.max_concurrent_streams(ctx.spec.streams.max(H2_MIN_STREAMS));
        serve(ip, ctx, ServerConn::H2(b))
    }

    fn client(&self, target: SocketAddr, ctx: Ctx) -> Task {
        // HTTP/2 names the target in the :scheme and :authority pseudo-headers,
        // taken from an absolute URI (a socket address is always a valid one).
        let uri = Uri::try_from(format!("http://{target}/")).unwrap_or_default();
        let req = RequestTemplate::new(&ctx.spec, uri, None);
        let (conns, streams) = (ctx.spec.connections, ctx.spec.streams);
        let groups: Vec<H2Dial> = (0..conns).map(|_| H2Dial::new(target, streams)).collect();
        rr_clients(ctx, conns.saturating_mul(streams), |lane| {
            Lane::new(groups[(lane / streams) as usize].clone(), req.clone())
        })
    }
}

// ----- client -----

/// What every request of a client looks like; building one copies no payload.
#[derive(Debug, Clone)]
struct RequestTemplate {
    method: Method,
    uri: Uri,
    host: Option<HeaderValue>,
    body: Bytes,
    /// The whole HTTP/1.1 request, head and body, as written on the wire.
    wire: Bytes,
}

impl RequestTemplate {
    fn new(spec: &ScenarioSpec, uri: Uri, host: Option<HeaderValue>) -> Self {
        let (method, body) = match spec.request_size.0 {
            // 1 byte is the smallest size a plan accepts: it means no body.
            0 | 1 => (Method::GET, Bytes::new()),
            n => (Method::POST, Bytes::from(vec![0x5a; n as usize])),
        };
        let mut wire = format!("{method} {uri} HTTP/1.1\r\n").into_bytes();
        if let Some(h) = &host {
            wire.extend_from_slice(b"host: ");
            wire.extend_from_slice(h.as_bytes());
            wire.extend_from_slice(b"\r\n");
        }
        if !body.is_empty() {
            wire.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
        }
        wire.extend_from_slice(b"\r\n");
        wire.extend_from_slice(&body);
        RequestTemplate {
            method,
            uri,
            host,
            body,
            wire: Bytes::from(wire),
        }
    }

    fn build(&self) -> Request<Body> {
        let mut r = Request::new(Full::new(self.body.clone()));
        *r.method_mut() = self.method.clone();
        *r.uri_mut() = self.uri.clone();
        if let Some(h) = &self.host {
            r.headers_mut().insert(HOST, h.clone());
        }
        r
    }
}

/// One connection's request side: does whole exchanges.
trait Sender: Send + 'static {
    /// The connection has ended.
    fn is_closed(&mut self) -> bool;
    /// Send one request and read the whole response: its status and body length.
    fn round_trip(
        &mut self,
        req: &RequestTemplate,
    ) -> impl Future<Output = Result<(StatusCode, u64), Failure>> + Send;
}

/// Largest response head accepted.
const MAX_HEAD: usize = 64 << 10;
/// Most headers in a response head.
const MAX_HEADERS: usize = 64;

/// An HTTP/1.1 connection owned by one lane: the request is written as
/// prepared, the response parsed here (see the module documentation).
struct H1Conn {
    stream: TcpStream,
    /// Received bytes not consumed yet.
    buf: Vec<u8>,
    /// A response completed on this connection (so an EOF before any byte of
    /// the next one means the server closed it while idle).
    used: bool,
    /// The server ended the connection (`Connection: close`, or a body framed by
    /// the close).
    closed: bool,
}

/// How a response body is framed.
enum Framing {
    Length(u64),
    Chunked,
    UntilClose,
}

impl H1Conn {
    /// Read more; `Ok(0)` at EOF.
    async fn fill(&mut self) -> io::Result<usize> {
        if self.buf.capacity() - self.buf.len() < 4096 {
            self.buf.reserve(16 << 10);
        }
        self.stream.read_buf(&mut self.buf).await
    }

    /// Read at least one more byte; EOF is an error.
    async fn more(&mut self) -> Result<(), Failure> {
        match self.fill().await.map_err(Failure::Io)? {
            0 => Err(Failure::Io(io::ErrorKind::UnexpectedEof.into())),
            _ => Ok(()),
        }
    }

    /// Read until `buf` holds at least `n` bytes; EOF before is an error.
    async fn need(&mut self, n: usize) -> Result<(), Failure> {
        while self.buf.len() < n {
            self.more().await?;
        }
        Ok(())
    }

    /// Drop the next `n` bytes of the stream, reading them as needed.
    async fn skip(&mut self, n: u64) -> Result<(), Failure> {
        let mut left = n;
        loop {
            let take = left.min(self.buf.len() as u64);
            self.buf.drain(..take as usize);
            left -= take;
            if left == 0 {
                return Ok(());
            }
            self.more().await?;
        }
    }

    /// Parse one response head; returns status, framing and whether the server
    /// closes after it. `Failure::Stale` when the connection was closed before
    /// any byte of it arrived on a reused connection.
    async fn head(&mut self) -> Result<(StatusCode, Framing, bool), Failure> {
        loop {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut r = httparse::Response::new(&mut headers);
            match r.parse(&self.buf) {
                Ok(httparse::Status::Complete(n)) => {
                    let code = r.code.unwrap_or(0);
                    let status =
                        StatusCode::from_u16(code).map_err(|_| Failure::Http("http-protocol"))?;
                    let mut framing = Framing::UntilClose;
                    let mut close = r.version == Some(0);
                    for h in r.headers.iter() {
                        if h.name.eq_ignore_ascii_case("content-length") {
                            let n = std::str::from_utf8(h.value)
                                .ok()
                                .and_then(|v| v.trim().parse::<u64>().ok())
                                .ok_or(Failure::Http("http-protocol"))?;
                            framing = Framing::Length(n);
                        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                            if h.value.eq_ignore_ascii_case(b"chunked") {
                                framing = Framing::Chunked;
                            }
                        } else if h.name.eq_ignore_ascii_case("connection") {
                            close = h.value.eq_ignore_ascii_case(b"close");
                        }
                    }
                    if code == 204 || code == 304 || (100..200).contains(&code) {
                        framing = Framing::Length(0);
                    }
                    self.buf.drain(..n);
                    return Ok((status, framing, close));
                }
                Ok(httparse::Status::Partial) if self.buf.len() < MAX_HEAD => {
                    let empty = self.buf.is_empty();
                    match self.fill().await {
                        Ok(0) if empty && self.used => return Err(Failure::Stale),
                        Ok(0) => return Err(Failure::Io(io::ErrorKind::UnexpectedEof.into())),
                        Ok(_) => {}
                        Err(e) if empty && self.used && is_teardown(&e) => {
                            return Err(Failure::Stale);
                        }
                        Err(e) => return Err(Failure::Io(e)),
                    }
                }
                _ => return Err(Failure::Http("http-protocol")),
            }
        }
    }

    /// Read and drop a body; returns its length.
    async fn body(&mut self, framing: Framing) -> Result<u64, Failure> {
        match framing {
            Framing::Length(n) => {
                self.skip(n).await?;
                Ok(n)
            }
            Framing::Chunked => {
                let mut total = 0u64;
                loop {
                    let (at, size) = loop {
                        match httparse::parse_chunk_size(&self.buf) {
                            Ok(httparse::Status::Complete(c)) => break c,
                            Ok(httparse::Status::Partial) if self.buf.len() < MAX_HEAD => {
                                self.more().await?;
                            }
                            _ => return Err(Failure::Http("http-protocol")),
                        }
                    };
                    self.buf.drain(..at);
                    if size == 0 {
                        // Trailers, if any, then the empty line.
                        loop {
                            match self.buf.windows(2).position(|w| w == b"\r\n") {
                                Some(0) => {
                                    self.buf.drain(..2);
                                    return Ok(total);
                                }
                                Some(i) => {
                                    self.buf.drain(..i + 2);
                                }
                                None if self.buf.len() < MAX_HEAD => self.more().await?,
                                None => return Err(Failure::Http("http-protocol")),
                            }
                        }
                    }
                    self.skip(size).await?;
                    self.need(2).await?;
                    if &self.buf[..2] != b"\r\n" {
                        return Err(Failure::Http("http-protocol"));
                    }
                    self.buf.drain(..2);
                    total += size;
                }
            }
            Framing::UntilClose => {
                let mut total = self.buf.len() as u64;
                self.buf.clear();
                loop {
                    match self.fill().await.map_err(Failure::Io)? {
                        0 => {
                            self.closed = true;
                            return Ok(total);
                        }
                        n => {
                            total += n as u64;
                            self.buf.clear();
                        }
                    }
                }
            }
        }
    }
}

/// Errors a write or read gets from a connection the peer closed.
fn is_teardown(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionAborted
    )
}

impl Sender for H1Conn {
    fn is_closed(&mut self) -> bool {
        self.closed
    }

    async fn round_trip(&mut self, req: &RequestTemplate) -> Result<(StatusCode, u64), Failure> {
        if !self.buf.is_empty() {
            // Bytes nobody asked for: the connection is out of step.
            return Err(Failure::Http("http-protocol"));
        }
        if let Err(e) = self.stream.write_all(&req.wire).await {
            return Err(if self.used && is_teardown(&e) {
                Failure::Stale
            } else {
                Failure::Io(e)
            });
        }
        loop {
            let (status, framing, close) = self.head().await?;
            let n = self.body(framing).await?;
            if status.is_informational() {
                continue; // 100 Continue and friends: the real response follows
            }
            self.used = true;
            self.closed |= close;
            return Ok((status, n));
        }
    }
}

impl Sender for client2::SendRequest<Body> {
    fn is_closed(&mut self) -> bool {
        client2::SendRequest::is_closed(self)
    }

    async fn round_trip(&mut self, req: &RequestTemplate) -> Result<(StatusCode, u64), Failure> {
        let exchange = async {
            let resp = self.send_request(req.build()).await?;
            let status = resp.status();
            Ok::<_, hyper::Error>((status, read_body(resp.into_body()).await?))
        };
        exchange.await.map_err(|e| classify(&e))
    }
}

/// Where a lane gets a connection when it has none.
trait Dial: Send + 'static {
    type Sender: Sender;
    /// A sender on a live connection.
    fn dial(&self, ctx: &Ctx) -> impl Future<Output = Result<Self::Sender, TxError>> + Send;
}

/// HTTP/1.1: each lane opens its own connection.
#[derive(Debug)]
struct H1Dial(SocketAddr);

impl Dial for H1Dial {
    type Sender = H1Conn;

    async fn dial(&self, ctx: &Ctx) -> Result<Self::Sender, TxError> {
        Ok(H1Conn {
            stream: tcp::connect(self.0, ctx).await?,
            buf: Vec::with_capacity(16 << 10),
            used: false,
            closed: false,
        })
    }
}

/// HTTP/2: the lanes of one group share its connection.
#[derive(Debug, Clone)]
struct H2Dial(Arc<H2Group>);

#[derive(Debug)]
struct H2Group {
    target: SocketAddr,
    streams: u32,
    /// The group's connection; the lock is held while (re)connecting, so one lane
    /// connects and the others then share what it opened.
    conn: Mutex<Option<client2::SendRequest<Body>>>,
}

impl H2Dial {
    fn new(target: SocketAddr, streams: u32) -> Self {
        H2Dial(Arc::new(H2Group {
            target,
            streams,
            conn: Mutex::new(None),
        }))
    }
}

impl Dial for H2Dial {
    type Sender = client2::SendRequest<Body>;

    async fn dial(&self, ctx: &Ctx) -> Result<Self::Sender, TxError> {
        let g = &self.0;
        let mut conn = g.conn.lock().await;
        if let Some(s) = conn
            .as_ref()
            .filter(|s| !client2::SendRequest::is_closed(s))
        {
            return Ok(s.clone());
        }
        *conn = None;
        let io = connect(g.target, ctx).await?;
        let mut b = client2::Builder::new(TokioExecutor::new());
        // Open all of the group's streams at once, before the server's SETTINGS.
        b.initial_max_send_streams(g.streams as usize);
        match b.handshake(io).await {
            Ok((sender, c)) => {
                drive(ctx, c);
                Ok(conn.insert(sender).clone())
            }
            Err(e) => Err(failed(e).await),
        }
    }
}

/// Connect to `target` with Nagle off, counting the connection.
async fn connect(target: SocketAddr, ctx: &Ctx) -> io::Result<TokioIo<TcpStream>> {
    tcp::connect(target, ctx).await.map(TokioIo::new)
}

/// Run a client connection in a task of its own until it ends or the engine stops.
/// Its errors surface in the lanes' requests, and are counted there.
fn drive<C: Future + Send + 'static>(ctx: &Ctx, conn: C) {
    let stop = ctx.stop.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = stop.cancelled() => {}
            _ = conn => {}
        }
    });
}

/// One lane: a sequence of exchanges on one connection (its own for HTTP/1.1, its
/// group's for HTTP/2), reconnecting lazily after a failure.
struct Lane<D: Dial> {
    dial: D,
    sender: Option<D::Sender>,
    req: RequestTemplate,
}

impl<D: Dial> Lane<D> {
    fn new(dial: D, req: RequestTemplate) -> Self {
        Lane {
            dial,
            sender: None,
            req,
        }
    }
}

impl<D: Dial> Exchange for Lane<D> {
    async fn exchange(&mut self, ctx: &Ctx) -> Result<(u64, u64), TxError> {
        // A connection the server closed while it was idle is replaced, not an error.
        if self.sender.as_mut().is_some_and(Sender::is_closed) {
            self.sender = None;
        }
        let sender = match self.sender.as_mut() {
            Some(s) => s,
            None => self.sender.insert(self.dial.dial(ctx).await?),
        };
        let mut r = sender.round_trip(&self.req).await;
        if matches!(r, Err(Failure::Stale)) {
            let fresh = self.sender.insert(self.dial.dial(ctx).await?);
            r = fresh.round_trip(&self.req).await;
        }
        match r {
            Ok((status, received)) => {
                // Counted after the last await: the driver counts the transaction
                // right after this returns, so both land in the same interval
                // (up to an interval cut between the two).
                let (class, kind) = status_class(status);
                if status.is_success() {
                    ctx.rec.status(class);
                    Ok((self.req.body.len() as u64, received))
                } else {
                    ctx.rec.failed_status(class, kind);
                    Err(TxError::Counted)
                }
            }
            Err(f) => {
                self.sender = None;
                Err(failure(f).await)
            }
        }
    }
}

/// Read a body to its end, dropping the data as it comes (which also returns
/// HTTP/2 flow-control credit); returns its length.
async fn read_body(mut body: Incoming) -> hyper::Result<u64> {
    let mut n = 0;
    while let Some(frame) = body.frame().await {
        if let Some(data) = frame?.data_ref() {
            n += data.len() as u64;
        }
    }
    Ok(n)
}

/// A status's class (`2xx`...) and the error kind it counts as when it is not a
/// success.
fn status_class(s: StatusCode) -> (&'static str, &'static str) {
    match s.as_u16() / 100 {
        1 => ("1xx", "http-1xx"),
        2 => ("2xx", "http-2xx"),
        3 => ("3xx", "http-3xx"),
        4 => ("4xx", "http-4xx"),
        5 => ("5xx", "http-5xx"),
        _ => ("other", "http-status-other"),
    }
}

/// How a hyper error is counted.
#[derive(Debug)]
enum Failure {
    /// The socket failed or the connection closed: an I/O error kind.
    Io(io::Error),
    /// An HTTP-level failure.
    Http(&'static str),
    /// HTTP/1.1: the server had closed the reused connection while it was idle
    /// (its keep-alive timeout); not a failure, the request goes on a new one.
    Stale,
}

fn classify(e: &hyper::Error) -> Failure {
    let mut cause: Option<&(dyn StdError + 'static)> = Some(e);
    while let Some(c) = cause {
        if let Some(io) = c.downcast_ref::<io::Error>() {
            return Failure::Io(io.kind().into());
        }
        if let Some(h2) = c.downcast_ref::<h2::Error>() {
            return Failure::Http(if h2.is_go_away() {
                "http2-goaway"
            } else if h2.is_reset() {
                "http2-reset"
            } else {
                "http-protocol"
            });
        }
        cause = c.source();
    }
    if e.is_timeout() {
        Failure::Io(io::ErrorKind::TimedOut.into())
    } else if e.is_incomplete_message() || e.is_closed() || e.is_canceled() {
        // The connection went away before the response was complete.
        Failure::Io(io::ErrorKind::UnexpectedEof.into())
    } else {
        Failure::Http("http-protocol")
    }
}

/// The exchange error for a failed request. I/O failures get the driver's back-off
/// pause; a peer that breaks the protocol gets the same pause here, before the
/// lane's next connection.
async fn failed(e: hyper::Error) -> TxError {
    failure(classify(&e)).await
}

/// [`failed`] for a failure already classified.
async fn failure(f: Failure) -> TxError {
    match f {
        Failure::Io(io) => TxError::Io(io),
        Failure::Http(kind) => {
            tokio::time::sleep(RETRY_PAUSE).await;
            TxError::Failed(kind)
        }
        // Handled by the lane; should it get here, it is what it looks like.
        Failure::Stale => TxError::Io(io::ErrorKind::UnexpectedEof.into()),
    }
}

// ----- server -----

/// How the server speaks on each connection.
#[derive(Debug)]
enum ServerConn {
    H1(server1::Builder),
    H2(server2::Builder<TokioExecutor>),
}

#[derive(Debug)]
struct Server {
    ctx: Ctx,
    conn: ServerConn,
    /// The response body, cloned (not copied) into every response.
    body: Bytes,
}

fn serve(ip: IpAddr, ctx: Ctx, conn: ServerConn) -> io::Result<Served> {
    let server = Arc::new(Server {
        body: Bytes::from(vec![0xa5; ctx.spec.response_size.0 as usize]),
        ctx: ctx.clone(),
        conn,
    });
    tcp::serve(ip, ctx, move |s, _| server.clone().connection(s))
}

impl Server {
    /// Serve one connection until the client closes it (the accept loop stops it
    /// with the engine). I/O errors go back to the accept loop to be counted.
    async fn connection(self: Arc<Self>, s: TcpStream) -> io::Result<()> {
        let io = TokioIo::new(s);
        let me = self.clone();
        let svc = service_fn(move |req| me.clone().respond(req));
        let r = match &self.conn {
            ServerConn::H1(b) => b.serve_connection(io, svc).await,
            ServerConn::H2(b) => b.serve_connection(io, svc).await,
        };
        match r.map_err(|e| classify(&e)) {
            Ok(()) => Ok(()),
            // Teardown kinds are not counted once the run is over.
            Err(Failure::Io(io)) => Err(io),
            Err(Failure::Http(kind)) => {
                self.ctx.rec.error(kind);
                Ok(())
            }
            // Only a client reports this.
            Err(Failure::Stale) => Ok(()),
        }
    }

    /// One request: read and drop its body, pause as the plan says, answer.
    async fn respond(self: Arc<Self>, req: Request<Incoming>) -> hyper::Result<Response<Body>> {
        let received = read_body(req.into_body()).await?;
        self.ctx.server_pause().await;
        self.ctx.rec.served(received, self.body.len() as u64);
        Ok(Response::new(Full::new(self.body.clone())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recorder::Window;
    use cnibench_proto::plan;
    use std::time::Duration;
    use tokio::time::Instant;
    use tokio_util::sync::CancellationToken;

    const LOOPBACK: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    fn ctx(traffic: &str, extra: &str) -> Ctx {
        let text = format!(
            "name: t\nscenarios:\n  - {{name: s, traffic: {traffic}, path: pod-to-pod-cross-node{extra}}}\n"
        );
        let c = Ctx::new(
            plan::load("t.yaml", &text).unwrap().scenarios.remove(0),
            CancellationToken::new(),
        );
        c.t0.set(Instant::now()).unwrap();
        c
    }

    /// Run `engine`'s client against `target` for `how_long`.
    async fn load(engine: &dyn Engine, target: SocketAddr, c: &Ctx, how_long: Duration) -> Window {
        let task = tokio::spawn(engine.client(target, c.clone()));
        tokio::time::sleep(how_long).await;
        c.stop.cancel();
        task.await.unwrap();
        c.rec.take()
    }

    /// Serve `engine` on loopback and load it for 300 ms: (client, server) windows.
    async fn run(engine: &dyn Engine, traffic: &str, extra: &str) -> (Window, Window) {
        let (sc, cc) = (ctx(traffic, extra), ctx(traffic, extra));
        let served = engine.serve(LOOPBACK, sc.clone()).unwrap();
        let server = tokio::spawn(served.task);
        let target = SocketAddr::new(LOOPBACK, served.port);
        let client = tokio::spawn(engine.client(target, cc.clone()));
        tokio::time::sleep(Duration::from_millis(300)).await;
        // As in a job: the server drains when the client stops (dropping connections
        // with requests in flight), then it finishes what it can.
        sc.rec.drain();
        cc.stop.cancel();
        client.await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        sc.stop.cancel();
        server.await.unwrap();
        (cc.rec.take(), sc.rec.take())
    }

    /// What every successful run must show; `lanes` requests may have been served
    /// but not completed at the client when it stopped.
    fn check(client: &Window, server: &Window, lanes: u64, req: u64, resp: u64) {
        let (c, s) = (&client.counters, &server.counters);
        let n = c.transactions;
        assert!(n > 50, "{n} transactions");
        assert!(c.errors.is_empty(), "client errors {:?}", c.errors);
        assert!(s.errors.is_empty(), "server errors {:?}", s.errors);
        assert_eq!(c.status.get("2xx"), Some(&n), "{:?}", c.status);
        assert_eq!(c.status.len(), 1, "{:?}", c.status);
        assert_eq!((c.bytes_sent, c.bytes_received), (n * req, n * resp));
        assert!(
            (n..=n + lanes).contains(&s.transactions),
            "client {n}, server {}",
            s.transactions
        );
        assert_eq!(
            (s.bytes_received, s.bytes_sent),
            (s.transactions * req, s.transactions * resp)
        );
        assert_eq!(client.latency.len(), n);
    }

    /// A hand-written HTTP/1.1 server: answers each request on a connection with
    /// `responses` in turn (raw bytes), then closes it.
    async fn raw_server(responses: Vec<&'static [u8]>) -> SocketAddr {
        use tokio::io::AsyncBufReadExt as _;
        let l = tokio::net::TcpListener::bind((LOOPBACK, 0)).await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                let responses = responses.clone();
                tokio::spawn(async move {
                    let (r, mut w) = s.into_split();
                    let mut r = tokio::io::BufReader::new(r);
                    for resp in responses {
                        // Read one request head (the client sends GETs).
                        let mut line = String::new();
                        loop {
                            line.clear();
                            if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                                return;
                            }
                            if line == "\r\n" {
                                break;
                            }
                        }
                        if w.write_all(resp).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        addr
    }

    #[tokio::test]
    async fn http1_client_reads_every_framing_and_replaces_closed_connections() {
        // Per connection: a chunked body with a trailer, a Content-Length body
        // after a 100 Continue, a body framed by `Connection: close`... and the
        // next connection the same. Every response is 5 body bytes.
        let addr = raw_server(vec![
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nhe\r\n3;x=y\r\nllo\r\n0\r\nx-trailer: 1\r\n\r\n",
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello",
            b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nhello",
        ])
        .await;
        let c = ctx("http1", ", connections: 1");
        let w = load(&Http1, addr, &c, Duration::from_millis(200)).await;
        let n = w.counters.transactions;
        assert!(n >= 30, "{n} transactions");
        assert!(w.counters.errors.is_empty(), "{:?}", w.counters.errors);
        assert_eq!(w.counters.bytes_received, n * 5);
        assert_eq!(w.counters.status.get("2xx"), Some(&n));
        // Each connection served three responses.
        assert!(w.counters.connections * 3 >= n, "{:?}", w.counters);
    }

    #[tokio::test]
    async fn http1_client_takes_an_idle_close_in_stride_and_counts_garbage() {
        // Two answers, then the server closes the idle connection: the next
        // request goes on a new connection, and is not an error.
        let ok: &'static [u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello";
        let addr = raw_server(vec![ok, ok]).await;
        let c = ctx("http1", ", connections: 1");
        let w = load(&Http1, addr, &c, Duration::from_millis(200)).await;
        assert!(w.counters.transactions >= 20, "{:?}", w.counters);
        assert!(w.counters.errors.is_empty(), "{:?}", w.counters.errors);
        // Not HTTP at all: a protocol error, counted as such.
        let addr = raw_server(vec![b"SSH-2.0-OpenSSH\r\n\r\n"]).await;
        let c = ctx("http1", ", connections: 1");
        let w = load(&Http1, addr, &c, Duration::from_millis(150)).await;
        assert_eq!(w.counters.transactions, 0);
        assert!(
            w.counters
                .errors
                .get("http-protocol")
                .is_some_and(|&n| n >= 1),
            "{:?}",
            w.counters.errors
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn http1_posts_on_keep_alive_connections() {
        let (c, s) = run(
            &Http1,
            "http1",
            ", connections: 2, request_size: 100, response_size: 1KiB",
        )
        .await;
        check(&c, &s, 2, 100, 1024);
        // Keep-alive: one connection per lane, on both sides.
        assert_eq!((c.counters.connections, s.counters.connections), (2, 2));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn http2_multiplexes_lanes_over_shared_connections() {
        // Default request size: GET without a body.
        let (c, s) = run(
            &Http2,
            "http2",
            ", connections: 2, streams: 4, response_size: 100KiB",
        )
        .await;
        check(&c, &s, 8, 0, 100 << 10);
        // 8 lanes, 2 connections.
        assert_eq!((c.counters.connections, s.counters.connections), (2, 2));
    }

    /// A server that answers every request with 503.
    async fn unavailable_server(stop: CancellationToken) -> SocketAddr {
        let l = tcp::listen(LOOPBACK).unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (s, _) = tokio::select! {
                    _ = stop.cancelled() => return,
                    r = l.accept() => r.unwrap(),
                };
                let svc = service_fn(|_req: Request<Incoming>| async {
                    let mut r = Response::new(Full::new(Bytes::from_static(b"busy")));
                    *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
                    Ok::<_, hyper::Error>(r)
                });
                tokio::spawn(server1::Builder::new().serve_connection(TokioIo::new(s), svc));
            }
        });
        addr
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn error_status_is_a_failure_on_a_kept_connection() {
        let c = ctx("http1", "");
        let target = unavailable_server(c.stop.clone()).await;
        let w = load(&Http1, target, &c, Duration::from_millis(200)).await;
        let c = w.counters;
        assert_eq!(c.transactions, 0);
        let failed = c.status.get("5xx").copied().unwrap_or(0);
        assert!(failed > 10, "{:?}", c.status);
        assert_eq!(c.errors.get("http-5xx"), Some(&failed), "{:?}", c.errors);
        // No back-off, no reconnect: the connection is fine.
        assert_eq!(c.connections, 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn http2_lanes_of_a_dead_connection_share_its_replacement() {
        // A server that cuts every connection after 60 ms.
        let c = ctx("http2", ", connections: 2, streams: 4");
        let l = tcp::listen(LOOPBACK).unwrap();
        let target = l.local_addr().unwrap();
        let stop = c.stop.clone();
        tokio::spawn(async move {
            loop {
                let (s, _) = tokio::select! {
                    _ = stop.cancelled() => return,
                    r = l.accept() => r.unwrap(),
                };
                let svc = service_fn(|_req: Request<Incoming>| async {
                    Ok::<_, hyper::Error>(Response::new(Full::new(Bytes::from_static(b"ok"))))
                });
                let conn = server2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(s), svc);
                tokio::spawn(tokio::time::timeout(Duration::from_millis(60), conn));
            }
        });
        let w = load(&Http2, target, &c, Duration::from_millis(400)).await;
        let c = w.counters;
        assert!(c.transactions > 100, "{c:?}");
        assert!(!c.errors.is_empty(), "{c:?}");
        // ~7 connections per group; a reconnect per lane would make ~28.
        assert!((4..=20).contains(&c.connections), "{c:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn refused_connections_are_counted_with_back_off() {
        let port = tcp::listen(LOOPBACK).unwrap().local_addr().unwrap().port();
        for (engine, traffic) in [(&Http1 as &dyn Engine, "http1"), (&Http2, "http2")] {
            let c = ctx(traffic, ", connections: 2");
            let w = load(
                engine,
                SocketAddr::new(LOOPBACK, port),
                &c,
                Duration::from_millis(200),
            )
            .await;
            let refused = w.counters.errors.get("connect-refused").copied();
            // 2 lanes, one attempt per 20 ms pause each.
            assert!(
                refused.is_some_and(|n| (2..=25).contains(&n)),
                "{traffic}: {:?}",
                w.counters.errors
            );
            assert_eq!(w.counters.transactions, 0);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn client_leaving_mid_request_is_noticed_at_the_response() {
        use tokio::io::AsyncWriteExt;
        let sc = ctx("http1", ", server_delay: 100ms");
        let served = Http1.serve(LOOPBACK, sc.clone()).unwrap();
        let server = tokio::spawn(served.task);
        let mut s = TcpStream::connect((LOOPBACK, served.port)).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        // A stopping client drops its connection; the server is still pausing.
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(s);
        tokio::time::sleep(Duration::from_millis(20)).await;
        sc.rec.drain();
        tokio::time::sleep(Duration::from_millis(150)).await;
        sc.stop.cancel();
        server.await.unwrap();
        let c = sc.rec.take().counters;
        assert!(c.errors.is_empty(), "{:?}", c.errors);
        assert_eq!(c.transactions, 1);
    }

    #[test]
    fn status_classes() {
        assert_eq!(status_class(StatusCode::OK).0, "2xx");
        assert_eq!(status_class(StatusCode::NO_CONTENT).0, "2xx");
        assert_eq!(status_class(StatusCode::NOT_FOUND), ("4xx", "http-4xx"));
        assert_eq!(status_class(StatusCode::BAD_GATEWAY), ("5xx", "http-5xx"));
    }
}
