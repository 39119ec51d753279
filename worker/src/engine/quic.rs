//! QUIC engines (quinn, rustls with the ring provider).
//!
//! Trust goes through the control plane, not a PKI: when a server binds, it makes
//! a fresh self-signed certificate for [`SERVER_NAME`] and reports its DER in
//! [`Served::cert`]; the coordinator hands it to the clients ([`Ctx::server_cert`]),
//! and a client trusts exactly that certificate: a root store holding only it,
//! verified for [`SERVER_NAME`], ALPN [`ALPN`], TLS 1.3. Nothing skips verification.
//! A client given no certificate, or another one, fails its handshakes; that is
//! counted as `tls`, once per lane, and the lane stops trying (the certificate cannot
//! change during a job, so retrying cannot help).
//!
//! Flows: every client connection has its own endpoint (UDP socket), so a QUIC
//! client opens as many UDP flows (5-tuples) as the TCP kinds open connections, and
//! the datapath (RSS, ECMP, conntrack, encapsulation) sees the same flow count.
//!
//! `quic-stream`: one connection per stream lane (`streams` of them per client), each
//! carrying one unidirectional stream that the client writes `message_size` chunks to
//! (paced for a bitrate target); the server counts what it reads (goodput at the
//! receiver). One connection per lane rather than `streams` streams on one
//! connection: a connection is one flow, one congestion controller and one task on
//! each side, so multiplexing would measure quinn's stream scheduler rather than the
//! path, and would not compare with `tcp-stream`. (The server serves any number of
//! streams per connection all the same.)
//!
//! `quic-rr`: `connections` connections, one lane each. Every exchange is a new
//! bidirectional stream: the client writes the request and finishes its side; the
//! server reads it to the end, pauses as the plan says, writes the response and
//! finishes; the client reads the response to the end. After a failure the lane
//! reconnects lazily (after the driver's back-off).
//!
//! Transport (both sides): flow-control windows (stream and connection receive
//! windows, send window) of 16 MiB per connection (quinn's defaults are sized for
//! 100 Mbit/s at 100 ms), less when a side carries many connections: they share a
//! 128 MiB budget, at least 64 KiB each, since quinn buffers in the process and a
//! worker pod has little memory. 4 MiB socket buffers (the UDP engines' sockets,
//! `udp::bind`). Idle timeout 10 s with keep-alives every 2 s, so slowly paced
//! lanes keep their connections; handshakes give up after 3 s (QUIC ignores ICMP, so a missing server shows as `timeout`).
//! Path MTU discovery as quinn does it (1200 bytes up to 1452), congestion control
//! Cubic, GSO/GRO where the kernel has them.
//!
//! Error kinds: QUIC failures are reported as I/O errors whose kinds name them in the
//! results (see [`Recorder::io_error`](crate::recorder::Recorder::io_error)):
//! `timeout` (idle or handshake), `reset` (stateless reset; stream reset or stopped by
//! the peer), `aborted` (the peer closed the connection), `eof` (short response),
//! `io-other` (protocol violation and the like); plus `tls` as above. On a server, a
//! client closing its connection is the normal end, not an error.

use super::{
    Ctx, Engine, Exchange, Served, Task, TxError, Writer, rr_clients, stream_clients, udp,
};
use bytes::Bytes;
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use quinn::rustls::{self, pki_types};
use quinn::{Connection, ConnectionError, Endpoint, RecvStream, SendStream, VarInt};
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;

/// Name in the server certificate, which clients verify.
pub const SERVER_NAME: &str = "cnibench-worker";
/// ALPN protocol both sides insist on.
pub const ALPN: &[u8] = b"cnibench";

/// Flow-control window of a connection, at most and at least.
const MAX_WINDOW: u64 = 16 << 20;
const MIN_WINDOW: u64 = 64 << 10;
/// What the windows of all connections of one side add up to, at most (above the
/// minimum): the memory quinn may buffer each way.
const WINDOW_BUDGET: u64 = 128 << 20;
const IDLE_TIMEOUT_MS: u32 = 10_000;
const KEEP_ALIVE: Duration = Duration::from_secs(2);
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(3);
/// Application close code of a side that is done (client at its deadline, server
/// stopping).
const DONE: VarInt = VarInt::from_u32(0);
/// Chunks taken from a stream per read (zero copy).
const READ_CHUNKS: usize = 32;

/// Bulk transfer: one unidirectional stream per connection, `streams` connections.
#[derive(Debug)]
pub struct Stream;

impl Engine for Stream {
    fn serve(&self, ip: IpAddr, ctx: Ctx) -> io::Result<Served> {
        let lanes = ctx.spec.streams;
        serve(ip, ctx, lanes, |conn, ctx| {
            serve_streams(
                conn,
                ctx,
                |c| async move { c.accept_uni().await },
                |mut recv, ctx| async move {
                    read_to_end(&mut recv, |n| ctx.rec.received(n)).await?;
                    Ok(())
                },
            )
        })
    }

    fn client(&self, target: SocketAddr, ctx: Ctx) -> Task {
        let streams = ctx.spec.streams;
        let dialer = Dialer::new(target, &ctx, streams);
        let size = ctx.spec.message_size.0;
        let chunk = Bytes::from(vec![0x5a_u8; size as usize]);
        stream_clients(ctx, streams, size * 8, |_| StreamWriter {
            dialer: dialer.clone(),
            chunk: chunk.clone(),
        })
    }
}

/// One bulk-transfer lane: writes `chunk` after `chunk` on the one stream of
/// its connection.
struct StreamWriter {
    dialer: Dialer,
    chunk: Bytes,
}

impl Writer for StreamWriter {
    /// The stream, and its connection (kept open by this handle).
    type Conn = (Connection, SendStream);

    async fn connect(&mut self, ctx: &Ctx) -> Result<Self::Conn, TxError> {
        let open = async {
            let conn = self.dialer.connect(ctx).await?;
            let send = conn.open_uni().await?;
            Ok::<_, Failure>((conn, send))
        };
        open.await.map_err(Failure::into_tx)
    }

    async fn write(&mut self, (_, send): &mut Self::Conn, _ctx: &Ctx) -> Result<u64, TxError> {
        // Zero copy: quinn keeps a reference to the shared buffer.
        match send.write_chunk(self.chunk.clone()).await {
            Ok(()) => Ok(self.chunk.len() as u64),
            Err(e) => Err(Failure::from(e).into_tx()),
        }
    }
}

/// Request/response: one bidirectional stream per exchange, `connections` lanes.
#[derive(Debug)]
pub struct Rr;

impl Engine for Rr {
    fn serve(&self, ip: IpAddr, ctx: Ctx) -> io::Result<Served> {
        let response = Bytes::from(vec![0xa5_u8; ctx.spec.response_size.0 as usize]);
        let lanes = ctx.spec.connections;
        serve(ip, ctx, lanes, move |conn, ctx| {
            let response = response.clone();
            serve_streams(
                conn,
                ctx,
                |c| async move { c.accept_bi().await },
                move |(send, recv), ctx| answer(send, recv, ctx, response.clone()),
            )
        })
    }

    fn client(&self, target: SocketAddr, ctx: Ctx) -> Task {
        let lanes = ctx.spec.connections;
        let dialer = Dialer::new(target, &ctx, lanes);
        let request = Bytes::from(vec![0x5a_u8; ctx.spec.request_size.0 as usize]);
        let response_size = ctx.spec.response_size.0;
        rr_clients(ctx, lanes, move |_| RrClient {
            dialer: dialer.clone(),
            conn: None,
            request: request.clone(),
            response_size,
        })
    }
}

/// Server side of one exchange.
async fn answer(
    mut send: SendStream,
    mut recv: RecvStream,
    ctx: Ctx,
    response: Bytes,
) -> Result<(), Failure> {
    let got = read_to_end(&mut recv, |_| {}).await?;
    ctx.server_pause().await;
    let sent = response.len() as u64;
    send.write_chunk(response).await?;
    send.finish()?;
    ctx.rec.served(got, sent);
    Ok(())
}

/// One request/response lane; its connection is kept between exchanges.
struct RrClient {
    dialer: Dialer,
    conn: Option<Connection>,
    request: Bytes,
    response_size: u64,
}

impl RrClient {
    /// One exchange on `conn`; returns the response size.
    async fn request(conn: &Connection, request: Bytes, expected: u64) -> Result<u64, Failure> {
        let (mut send, mut recv) = conn.open_bi().await?;
        send.write_chunk(request).await?;
        send.finish()?;
        let got = read_to_end(&mut recv, |_| {}).await?;
        if got != expected {
            let kind = if got < expected {
                io::ErrorKind::UnexpectedEof
            } else {
                io::ErrorKind::InvalidData
            };
            let msg = format!("response of {got} bytes, expected {expected}");
            return Err(Failure::Io(io::Error::new(kind, msg)));
        }
        Ok(got)
    }
}

impl Exchange for RrClient {
    async fn exchange(&mut self, ctx: &Ctx) -> Result<(u64, u64), TxError> {
        let r = async {
            let conn = match &self.conn {
                Some(c) => c,
                None => self.conn.insert(self.dialer.connect(ctx).await?),
            };
            Self::request(conn, self.request.clone(), self.response_size).await
        }
        .await;
        match r {
            Ok(got) => Ok((self.request.len() as u64, got)),
            Err(f) => {
                self.conn = None;
                Err(f.into_tx())
            }
        }
    }

    /// The exchange's stream is reset when dropped; the connection stays (if
    /// it is dead, its idle timeout ends it and the lane reconnects).
    fn timed_out(&mut self) -> &'static str {
        "timeout"
    }
}

/// Read `recv` to its end, handing the size of every read to `on_read`; returns the
/// total.
async fn read_to_end(recv: &mut RecvStream, mut on_read: impl FnMut(u64)) -> Result<u64, Failure> {
    let mut chunks: [Bytes; READ_CHUNKS] = std::array::from_fn(|_| Bytes::new());
    let mut total = 0;
    while let Some(k) = recv.read_chunks(&mut chunks).await? {
        // Take the chunks out, so received datagrams are not kept alive.
        let n: u64 = chunks[..k]
            .iter_mut()
            .map(|c| std::mem::take(c).len() as u64)
            .sum();
        on_read(n);
        total += n;
    }
    Ok(total)
}

/// Longest a stopped server waits for its connections to drain (3 PTO, a
/// few milliseconds on a healthy path) before it lets go of its socket.
const DRAIN: Duration = Duration::from_secs(2);

/// Bind a server endpoint on `ip:0` with a fresh certificate, for `lanes`
/// connections from each client worker; `handle` serves every accepted connection.
/// Connections are closed and their tasks stopped with the server.
fn serve<F, Fut>(ip: IpAddr, ctx: Ctx, lanes: u32, handle: F) -> io::Result<Served>
where
    F: Fn(Connection, Ctx) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), Failure>> + Send + 'static,
{
    let connections = u64::from(lanes) * u64::from(ctx.spec.clients);
    let (config, cert) = server_config(connections)?;
    let ep = endpoint(SocketAddr::new(ip, ctx.spec.listen_port()), Some(config))?;
    let port = ep.local_addr()?.port();
    let handle = Arc::new(handle);
    let task = Box::pin(async move {
        let mut conns = JoinSet::new();
        loop {
            tokio::select! {
                _ = ctx.stop.cancelled() => break,
                incoming = ep.accept() => {
                    let Some(incoming) = incoming else { break };
                    let (ctx, handle) = (ctx.clone(), handle.clone());
                    // The handshake runs in the connection's task, so a slow one does
                    // not hold up the others.
                    conns.spawn(async move {
                        let served = async {
                            let conn = incoming.await?;
                            ctx.rec.connection();
                            handle(conn, ctx.clone()).await
                        };
                        if let Err(f) = served.await {
                            f.count(&ctx);
                        }
                    });
                }
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
            }
        }
        ep.close(DONE, b"server stopped");
        conns.shutdown().await;
        // Until its connections have drained the endpoint keeps its socket:
        // the next job may bind the same port (a Service's target port).
        let _ = tokio::time::timeout(DRAIN, ep.wait_idle()).await;
        let fixed = ctx.spec.listen_port() != 0;
        let addr = ep.local_addr().ok().filter(|_| fixed);
        // The endpoint's driver closes the socket once the last handle is
        // gone, on its own time: wait for it, so that the job is done only
        // when its port is free.
        drop(ep);
        if let Some(addr) = addr {
            let deadline = tokio::time::Instant::now() + DRAIN;
            while std::net::UdpSocket::bind(addr).is_err() && tokio::time::Instant::now() < deadline
            {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    });
    Ok(Served { port, cert, task })
}

/// Serve the streams of `conn` concurrently until it closes: `accept` takes the next
/// one, `handle` serves it. Stream tasks end with the connection's.
async fn serve_streams<S, A, AFut, H, HFut>(
    conn: Connection,
    ctx: Ctx,
    accept: A,
    handle: H,
) -> Result<(), Failure>
where
    A: Fn(Connection) -> AFut,
    AFut: Future<Output = Result<S, ConnectionError>>,
    H: Fn(S, Ctx) -> HFut,
    HFut: Future<Output = Result<(), Failure>> + Send + 'static,
{
    let mut streams = JoinSet::new();
    loop {
        tokio::select! {
            s = accept(conn.clone()) => {
                let (fut, ctx) = (handle(s?, ctx.clone()), ctx.clone());
                streams.spawn(async move {
                    if let Err(f) = fut.await {
                        f.count(&ctx);
                    }
                });
            }
            Some(_) = streams.join_next(), if !streams.is_empty() => {}
        }
    }
}

/// A client's way to its server: the target and the configuration trusting exactly
/// the server's certificate (`None` when there is no usable one).
#[derive(Clone)]
struct Dialer {
    target: SocketAddr,
    config: Option<quinn::ClientConfig>,
}

impl Dialer {
    /// A dialer for `lanes` connections.
    fn new(target: SocketAddr, ctx: &Ctx, lanes: u32) -> Dialer {
        let config = client_config(&ctx.server_cert, u64::from(lanes))
            .inspect_err(|why| {
                eprintln!(
                    "cnibench-worker: {} client: {why}; every connection fails (counted as `tls`)",
                    ctx.spec.traffic
                );
            })
            .ok();
        Dialer { target, config }
    }

    /// A new connection, from a new endpoint (its own UDP socket, so its own flow).
    async fn connect(&self, ctx: &Ctx) -> Result<Connection, Failure> {
        let config = self.config.clone().ok_or(Failure::Tls)?;
        // The endpoint keeps running for as long as its connection does.
        let ep = endpoint(udp::any_local(self.target), None)?;
        let connecting = ep
            .connect_with(config, self.target, SERVER_NAME)
            .map_err(|e| Failure::Io(io::Error::new(io::ErrorKind::InvalidInput, e)))?;
        let conn = tokio::time::timeout(HANDSHAKE_TIMEOUT, connecting)
            .await
            .map_err(|_| Failure::Io(io::ErrorKind::TimedOut.into()))??;
        ctx.rec.connection();
        Ok(conn)
    }
}

/// An endpoint on a UDP socket bound to `addr`, serving if `server` is given.
fn endpoint(addr: SocketAddr, server: Option<quinn::ServerConfig>) -> io::Result<Endpoint> {
    Endpoint::new(
        quinn::EndpointConfig::default(),
        server,
        udp::bind(addr)?,
        Arc::new(quinn::TokioRuntime),
    )
}

/// The flow-control window of each of `connections` connections of one side.
fn window(connections: u64) -> u64 {
    (WINDOW_BUDGET / connections.max(1)).clamp(MIN_WINDOW, MAX_WINDOW)
}

/// Transport settings for a side with `connections` connections.
fn transport(connections: u64) -> Arc<quinn::TransportConfig> {
    let window = window(connections);
    let w = VarInt::from_u64(window).unwrap_or(VarInt::MAX);
    let mut t = quinn::TransportConfig::default();
    t.stream_receive_window(w)
        .receive_window(w)
        .send_window(window)
        .max_idle_timeout(Some(VarInt::from_u32(IDLE_TIMEOUT_MS).into()))
        .keep_alive_interval(Some(KEEP_ALIVE));
    Arc::new(t)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A new self-signed certificate for [`SERVER_NAME`] and a server configuration
/// presenting it, for `connections` connections; returns the certificate's DER too.
fn server_config(connections: u64) -> io::Result<(quinn::ServerConfig, Vec<u8>)> {
    let ck = rcgen::generate_simple_self_signed(vec![SERVER_NAME.to_string()])
        .map_err(io::Error::other)?;
    let cert = ck.cert.der().clone();
    let key = pki_types::PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der());
    let mut tls = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(io::Error::other)?
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key.into())
        .map_err(io::Error::other)?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let crypto = QuicServerConfig::try_from(tls).map_err(io::Error::other)?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    config.transport_config(transport(connections));
    Ok((config, cert.to_vec()))
}

/// A client configuration trusting exactly the certificate `der`, for `connections`
/// connections.
fn client_config(der: &[u8], connections: u64) -> Result<quinn::ClientConfig, String> {
    if der.is_empty() {
        return Err("no server certificate to trust (the coordinator sent none)".into());
    }
    let mut roots = rustls::RootCertStore::empty();
    for cert in der_certificates(der)? {
        roots
            .add(pki_types::CertificateDer::from(cert.to_vec()))
            .map_err(|e| format!("unusable server certificate: {e}"))?;
    }
    let mut tls = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let crypto = QuicClientConfig::try_from(tls).map_err(|e| e.to_string())?;
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    config.transport_config(transport(connections));
    Ok(config)
}

/// The certificates in `der`, DER encodings one after another: behind a
/// Service a client may reach any of the servers, and trusts each one's.
fn der_certificates(mut der: &[u8]) -> Result<Vec<&[u8]>, String> {
    let bad = || "malformed server certificate list".to_string();
    let mut out = Vec::new();
    while !der.is_empty() {
        // A certificate is a SEQUENCE: tag 0x30, then a short or long length.
        let (&tag, rest) = der.split_first().ok_or_else(bad)?;
        let (&first, rest) = rest.split_first().ok_or_else(bad)?;
        if tag != 0x30 {
            return Err(bad());
        }
        let (len, header) = match first {
            0..=0x7f => (usize::from(first), 2),
            0x81..=0x84 => {
                let n = usize::from(first & 0x7f);
                let bytes = rest.get(..n).ok_or_else(bad)?;
                let len = bytes.iter().fold(0usize, |a, &b| (a << 8) | usize::from(b));
                (len, 2 + n)
            }
            _ => return Err(bad()),
        };
        let end = header.checked_add(len).ok_or_else(bad)?;
        let cert = der.get(..end).ok_or_else(bad)?;
        out.push(cert);
        der = &der[end..];
    }
    Ok(out)
}

/// A QUIC failure, classified for the results.
#[derive(Debug)]
enum Failure {
    /// No certificate to trust, or a handshake refused on the certificate or ALPN.
    Tls,
    /// The peer's application closed the connection (or this side did): the normal
    /// end of a server's connection; on a client, an error like any other.
    Closed(io::Error),
    /// Anything else, as an I/O error whose kind names it.
    Io(io::Error),
}

impl Failure {
    /// Server side: count it, unless it is the normal end of a connection.
    fn count(self, ctx: &Ctx) {
        match self {
            Failure::Tls => ctx.rec.error("tls"),
            Failure::Closed(_) => {}
            Failure::Io(e) => ctx.rec.io_error(&e),
        }
    }

    /// Client side: the error for the lane to count. A TLS failure is fatal to
    /// the lane (it waits to be stopped): the certificate cannot change during
    /// the job, so retrying cannot help.
    fn into_tx(self) -> TxError {
        match self {
            Failure::Closed(e) | Failure::Io(e) => TxError::Io(e),
            Failure::Tls => TxError::Fatal("tls"),
        }
    }
}

/// TLS alerts travel as QUIC transport error codes 0x100..=0x1ff.
fn is_crypto(code: quinn::TransportErrorCode) -> bool {
    (0x100..0x200).contains(&u64::from(code))
}

impl From<ConnectionError> for Failure {
    fn from(e: ConnectionError) -> Self {
        match &e {
            ConnectionError::TransportError(t) if is_crypto(t.code) => Failure::Tls,
            ConnectionError::ConnectionClosed(c) if is_crypto(c.error_code) => Failure::Tls,
            ConnectionError::ApplicationClosed(_) | ConnectionError::LocallyClosed => {
                Failure::Closed(e.into())
            }
            // quinn's mapping: TimedOut, ConnectionReset, ConnectionAborted, Other.
            _ => Failure::Io(e.into()),
        }
    }
}

impl From<quinn::WriteError> for Failure {
    fn from(e: quinn::WriteError) -> Self {
        match e {
            quinn::WriteError::ConnectionLost(c) => c.into(),
            // Stopped by the peer: ConnectionReset.
            e => Failure::Io(e.into()),
        }
    }
}

impl From<quinn::ReadError> for Failure {
    fn from(e: quinn::ReadError) -> Self {
        match e {
            quinn::ReadError::ConnectionLost(c) => c.into(),
            // Reset by the peer: ConnectionReset.
            e => Failure::Io(e.into()),
        }
    }
}

impl From<quinn::ClosedStream> for Failure {
    fn from(e: quinn::ClosedStream) -> Self {
        Failure::Io(e.into())
    }
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Self {
        Failure::Io(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::test_ctx;
    use crate::recorder::{Window, error_kind};
    use tokio::time::Instant;

    const RUN: Duration = Duration::from_millis(300);

    /// Serve `engine` on 127.0.0.1 and run a client against it for [`RUN`], the
    /// client trusting `trust` (the server's certificate when `None`); then stop the
    /// client, and the server shortly after, as a job does. Both must stop promptly.
    /// Returns the (client, server) windows and how long the client ran (more than
    /// [`RUN`] on a busy machine).
    async fn run(
        engine: &dyn Engine,
        scenario: &str,
        trust: Option<Vec<u8>>,
    ) -> (Window, Window, Duration) {
        let server = test_ctx(scenario);
        let ip: IpAddr = [127, 0, 0, 1].into();
        let served = engine.serve(ip, server.clone()).unwrap();
        let port = served.port;
        assert!(!served.cert.is_empty());
        let mut client = test_ctx(scenario);
        client.server_cert = Arc::new(trust.unwrap_or(served.cert));
        let t0 = Instant::now();
        server.t0.set(t0).unwrap();
        client.t0.set(t0).unwrap();
        let server_task = tokio::spawn(served.task);
        let client_task = tokio::spawn(engine.client(SocketAddr::new(ip, port), client.clone()));
        tokio::time::sleep(RUN).await;
        client.stop.cancel();
        let ran = t0.elapsed();
        let stopped = tokio::time::timeout(Duration::from_secs(1), client_task).await;
        stopped.expect("client stops").unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        server.rec.drain();
        server.stop.cancel();
        let stopped = tokio::time::timeout(Duration::from_secs(1), server_task).await;
        stopped.expect("server stops").unwrap();
        (client.rec.take(), server.rec.take(), ran)
    }

    fn other_certificate() -> Vec<u8> {
        let ck = rcgen::generate_simple_self_signed(vec![SERVER_NAME.to_string()]).unwrap();
        ck.cert.der().to_vec()
    }

    /// Behind a Service every job binds the same target port: a stopped
    /// server must have let go of it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stopped_server_lets_go_of_its_port() {
        let ip: IpAddr = [127, 0, 0, 1].into();
        let port = std::net::UdpSocket::bind((ip, 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut server = test_ctx("traffic: quic-stream");
        server.spec = Arc::new(cnibench_proto::plan::ScenarioSpec {
            path: cnibench_proto::plan::PathKind::PodToService,
            service: Some(format!("127.0.0.1:{port}").parse().unwrap()),
            ..cnibench_proto::plan::ScenarioSpec::clone(&server.spec)
        });
        let served = Stream.serve(ip, server.clone()).unwrap();
        assert_eq!(served.port, port, "the Service's port");
        let mut client = test_ctx("traffic: quic-stream");
        client.server_cert = Arc::new(served.cert.clone());
        let t0 = Instant::now();
        server.t0.set(t0).unwrap();
        client.t0.set(t0).unwrap();
        let server_task = tokio::spawn(served.task);
        let client_task =
            tokio::spawn(Stream.client(SocketAddr::new(ip, served.port), client.clone()));
        tokio::time::sleep(RUN).await;
        client.stop.cancel();
        let _ = client_task.await;
        server.stop.cancel();
        server_task.await.unwrap();
        std::net::UdpSocket::bind((ip, served.port)).expect("the port is free again");
    }

    #[test]
    fn certificate_lists_split_and_garbage_is_refused() {
        let (a, b) = (other_certificate(), other_certificate());
        let both = [a.clone(), b.clone()].concat();
        assert_eq!(
            der_certificates(&both).unwrap(),
            [a.as_slice(), b.as_slice()]
        );
        assert!(der_certificates(&both[..both.len() - 1]).is_err());
        assert!(der_certificates(&[0x30, 0x85, 1, 1, 1, 1, 1]).is_err());
        assert!(der_certificates(&[0x31, 0]).is_err());
        assert!(der_certificates(&[0x30, 0x82, 0xff]).is_err());
    }

    /// Behind a Service a client trusts every server's certificate: a list with
    /// the one it reaches among others works.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rr_trusts_any_certificate_of_a_list() {
        // Another server's certificate first, the one reached second.
        let server = test_ctx("traffic: quic-rr");
        let ip: IpAddr = [127, 0, 0, 1].into();
        let served = Rr.serve(ip, server.clone()).unwrap();
        let list = [other_certificate(), served.cert.clone()].concat();
        let mut client = test_ctx("traffic: quic-rr");
        client.server_cert = Arc::new(list);
        let t0 = Instant::now();
        server.t0.set(t0).unwrap();
        client.t0.set(t0).unwrap();
        let server_task = tokio::spawn(served.task);
        let client_task = tokio::spawn(Rr.client(SocketAddr::new(ip, served.port), client.clone()));
        tokio::time::sleep(RUN).await;
        client.stop.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(1), client_task).await;
        server.stop.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(1), server_task).await;
        let c = client.rec.take();
        assert!(c.counters.transactions > 0, "{:?}", c.counters.errors);
        assert!(c.counters.errors.is_empty(), "{:?}", c.counters.errors);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stream_goodput_over_loopback() {
        let (c, s, ran) = run(&Stream, "traffic: quic-stream, streams: 2", None).await;
        let (sent, received) = (c.counters.bytes_sent, s.counters.bytes_received);
        eprintln!(
            "quic-stream, 2 streams: {:.2} Gbit/s received",
            received as f64 * 8.0 / ran.as_secs_f64() / 1e9
        );
        assert!(received > 1 << 20, "{received} bytes received");
        // Bytes still buffered at the client's deadline may never arrive.
        assert!(received <= sent, "received {received} > sent {sent}");
        assert_eq!((c.counters.connections, s.counters.connections), (2, 2));
        assert!(c.counters.errors.is_empty(), "{:?}", c.counters.errors);
        assert!(s.counters.errors.is_empty(), "{:?}", s.counters.errors);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stream_keeps_a_bitrate() {
        let (c, _, ran) = run(
            &Stream,
            "traffic: quic-stream, streams: 2, message_size: 16KiB, rate: 200Mbit/s",
            None,
        )
        .await;
        let want = 200e6 / 8.0 * ran.as_secs_f64();
        let sent = c.counters.bytes_sent as f64;
        assert!(
            sent > 0.7 * want && sent < 1.1 * want + 2.0 * 16384.0,
            "sent {sent} bytes in {ran:?}, want about {want}"
        );
        assert!(c.schedule.intended > 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rr_over_loopback() {
        let scenario = "traffic: quic-rr, connections: 2, request_size: 100, response_size: 1KiB";
        let (c, s, _) = run(&Rr, scenario, None).await;
        let (n, served) = (c.counters.transactions, s.counters.transactions);
        eprintln!(
            "quic-rr, 2 connections: {n} transactions, p50 {} us",
            c.latency.value_at_quantile(0.5) / 1000
        );
        assert!(n > 20, "{n} transactions");
        // At most one exchange per lane in flight when the client stopped.
        assert!(
            served >= n && served <= n + 2,
            "client {n}, server {served}"
        );
        assert_eq!(c.latency.len(), n);
        assert_eq!(
            (c.counters.bytes_sent, c.counters.bytes_received),
            (n * 100, n * 1024)
        );
        assert_eq!((c.counters.connections, s.counters.connections), (2, 2));
        assert!(c.counters.errors.is_empty(), "{:?}", c.counters.errors);
        assert!(s.counters.errors.is_empty(), "{:?}", s.counters.errors);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rr_server_delay_shows_in_latency() {
        let (c, ..) = run(&Rr, "traffic: quic-rr, server_delay: 5ms", None).await;
        assert!(c.counters.transactions > 5, "{}", c.counters.transactions);
        assert!(c.latency.min() >= 5_000_000, "min {}", c.latency.min());
    }

    /// A client trusting another certificate (same name), or none, never gets a
    /// connection: one `tls` error per lane, nothing transferred.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn untrusted_or_missing_certificate_fails_as_tls() {
        let engines: [(&dyn Engine, &str); 2] = [
            (&Stream, "traffic: quic-stream, streams: 3"),
            (&Rr, "traffic: quic-rr, connections: 3"),
        ];
        for (engine, scenario) in engines {
            for trust in [other_certificate(), Vec::new()] {
                let missing = trust.is_empty();
                let (c, s, _) = run(engine, scenario, Some(trust)).await;
                let what = format!("{scenario}, missing certificate: {missing}");
                assert_eq!(
                    c.counters.errors.len(),
                    1,
                    "{what}: {:?}",
                    c.counters.errors
                );
                assert_eq!(c.counters.errors["tls"], 3, "{what}");
                assert_eq!(
                    c.counters.transactions + c.counters.connections,
                    0,
                    "{what}"
                );
                assert_eq!(c.counters.bytes_sent, 0, "{what}");
                assert_eq!(
                    s.counters.bytes_received + s.counters.connections,
                    0,
                    "{what}"
                );
                // The server saw the handshakes the client refused.
                let refused = s.counters.errors.get("tls").copied().unwrap_or(0);
                assert_eq!(refused, if missing { 0 } else { 3 }, "{what}");
            }
        }
    }

    #[test]
    fn windows_share_a_budget() {
        assert_eq!(window(2), 16 << 20);
        assert_eq!(window(8), 16 << 20);
        assert_eq!(window(64), 2 << 20);
        assert_eq!(window(10_000), 64 << 10);
    }

    #[test]
    fn connection_errors_get_stable_kinds() {
        let kind = |e: ConnectionError| match Failure::from(e) {
            Failure::Tls => "tls".to_string(),
            Failure::Closed(e) => format!("closed/{}", error_kind(&e)),
            Failure::Io(e) => error_kind(&e).to_string(),
        };
        let closed = |code| {
            ConnectionError::ConnectionClosed(quinn::ConnectionClose {
                error_code: code,
                frame_type: None,
                reason: Bytes::new(),
            })
        };
        let cases = [
            (ConnectionError::TimedOut, "timeout"),
            (ConnectionError::Reset, "reset"),
            (closed(quinn::TransportErrorCode::crypto(0x30)), "tls"),
            (
                closed(quinn::TransportErrorCode::PROTOCOL_VIOLATION),
                "aborted",
            ),
            (
                ConnectionError::ApplicationClosed(quinn::ApplicationClose {
                    error_code: DONE,
                    reason: Bytes::new(),
                }),
                "closed/aborted",
            ),
            (ConnectionError::LocallyClosed, "closed/io-other"),
        ];
        for (e, want) in cases {
            let shown = e.to_string();
            assert_eq!(kind(e), want, "{shown}");
        }
    }
}
