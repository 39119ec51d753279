//! HTTP engines on hyper: HTTP/1.1 keep-alive (`http1`) and HTTP/2 over cleartext
//! with prior knowledge (`http2`, h2c).
//!
//! # Client
//!
//! Pacing, timing, coordinated-omission correction, error counting and back-off
//! belong to the shared request/response driver ([`rr_clients`]); this module
//! only says how one exchange is done ([`Lane`](lane::Lane)): send the request,
//! read the whole response body, classify the status. A *lane* is one sequence
//! of exchanges.
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
//! buffer prepared once, in one write, and decodes the response itself
//! ([`h1`]: the head parsed in place with httparse, hyper's own parser, the body
//! framed by a state machine; [`h1_conn`] feeds it what the socket gives):
//! under wrk's load profile hyper's client machinery (request and header maps
//! per request, dispatcher, body channel) took a third of the client's CPU.
//! Responses may be framed by Content-Length, chunked, or by closing the
//! connection; a connection the server closed while it was idle is replaced
//! without counting an error. An HTTP/2 connection, shared by its group, uses
//! hyper's low-level connection API (`hyper::client::conn`) and runs in a task
//! of its own (`SendRequest` hands requests to it over a channel). Nothing is
//! spawned per request, and request bodies are `Bytes` clones of one buffer.
//!
//! A response with a non-2xx status is a completed exchange but not a successful
//! transaction: it fails as [`TxError::Status`](super::TxError::Status), whose
//! class (`status`) and error kind (`http-4xx`, `http-5xx`...) the driver
//! counts together, and the connection is kept. A request without a whole
//! response within the plan's `timeout` fails as `timeout`: an HTTP/1.1
//! connection is then closed (its byte stream is out of step) and the next
//! request dials a new one; an HTTP/2 stream is reset and the connection kept.
//! hyper
//! errors are counted under the stable I/O kinds
//! (`connect-refused`, `reset`, `eof`, `timeout`...) when they come from the
//! socket or the connection closing, else as `http2-reset`, `http2-goaway` or
//! `http-protocol`; so is a response the HTTP/1.1 decoder refuses.
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
//!
//! # Layout
//!
//! * this file: the two engines and what their requests look like;
//! * [`lane`]: a lane's exchange, shared by both versions: a connection's
//!   [`Sender`](lane::Sender), where a lane gets one ([`Dial`](lane::Dial)),
//!   and how failures are counted;
//! * [`h1`]: the HTTP/1.1 response decoder, without I/O;
//! * [`h1_conn`]: an HTTP/1.1 connection, which writes requests, reads from
//!   its socket and feeds the decoder;
//! * [`h2_conn`]: HTTP/2 connections shared by groups of lanes;
//! * [`server`]: the server, both versions.

pub mod h1;
mod h1_conn;
mod h2_conn;
mod lane;
mod server;

use super::{Ctx, Engine, Served, Task, rr_clients};
use bytes::Bytes;
use cnibench_proto::plan::ScenarioSpec;
use h1_conn::H1Dial;
use h2_conn::H2Dial;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HOST, HeaderValue};
use hyper::server::conn::{http1 as server1, http2 as server2};
use hyper::{Method, Request, Uri};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use lane::Lane;
use server::{ServerConn, serve};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// The least time the HTTP/1.1 server gives a request head to arrive.
const MIN_HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// The most (a day): a sane deadline even for an absurdly slow plan.
const MAX_HEADER_TIMEOUT: Duration = Duration::from_secs(86_400);

/// How long the HTTP/1.1 server waits for a request head, counted from the
/// end of the previous response on a kept-alive connection (hyper counts idle
/// time too): at least [`MIN_HEADER_TIMEOUT`], four times the request
/// `timeout` and the reporting `interval`, and 50 times the mean gap between
/// requests on one connection in open loop (`clients × connections / rate`;
/// with Poisson arrivals a gap 50 times the mean has probability e^-50). A
/// sweep starts at its lowest rate, which `rate` holds.
fn header_timeout(spec: &ScenarioSpec) -> Duration {
    let lanes = f64::from(spec.clients.max(1)) * f64::from(spec.connections.max(1));
    let gap = match spec.rate {
        cnibench_proto::units::Rate::PerSecond(r) if r > 0.0 => {
            Duration::try_from_secs_f64(50.0 * lanes / r).unwrap_or(MAX_HEADER_TIMEOUT)
        }
        _ => Duration::ZERO,
    };
    MIN_HEADER_TIMEOUT
        .max(spec.timeout.0.saturating_mul(4))
        .max(spec.interval.0.saturating_mul(4))
        .max(gap)
        .min(MAX_HEADER_TIMEOUT)
}

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
        // Slowloris: a connection whose request head does not arrive in time is
        // closed. In hyper 1.x this timer also runs while a kept-alive connection
        // waits for its next request, hence a bound above any legitimate gap.
        b.timer(TokioTimer::new());
        b.header_read_timeout(header_timeout(&ctx.spec));
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

/// What every request of a client looks like; building one copies no payload.
#[derive(Debug, Clone)]
pub(super) struct RequestTemplate {
    method: Method,
    uri: Uri,
    host: Option<HeaderValue>,
    /// The body (empty for a GET).
    pub(super) body: Bytes,
    /// The whole HTTP/1.1 request, head and body, as written on the wire.
    pub(super) wire: Bytes,
}

impl RequestTemplate {
    pub(super) fn new(spec: &ScenarioSpec, uri: Uri, host: Option<HeaderValue>) -> Self {
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

    pub(super) fn build(&self) -> Request<Body> {
        let mut r = Request::new(Full::new(self.body.clone()));
        *r.method_mut() = self.method.clone();
        *r.uri_mut() = self.uri.clone();
        if let Some(h) = &self.host {
            r.headers_mut().insert(HOST, h.clone());
        }
        r
    }
}

/// Read a body to its end, dropping the data as it comes (which also returns
/// HTTP/2 flow-control credit); returns its length.
pub(super) async fn read_body(mut body: Incoming) -> hyper::Result<u64> {
    let mut n = 0;
    while let Some(frame) = body.frame().await {
        if let Some(data) = frame?.data_ref() {
            n += data.len() as u64;
        }
    }
    Ok(n)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::engine::{tcp, test_ctx};
    use crate::recorder::Window;
    use hyper::service::service_fn;
    use hyper::{Response, StatusCode};
    use hyper_util::rt::TokioIo;
    use std::time::Duration;
    use tokio::net::TcpStream;
    use tokio::time::Instant;
    use tokio_util::sync::CancellationToken;

    pub(in crate::engine::http) const LOOPBACK: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    /// A started context for `traffic`, with more scenario fields in `extra`
    /// (", connections: 2").
    pub(in crate::engine::http) fn ctx(traffic: &str, extra: &str) -> Ctx {
        let c = test_ctx(&format!("traffic: {traffic}{extra}"));
        c.t0.set(Instant::now()).unwrap();
        c
    }

    /// Run `engine`'s client against `target` for `how_long`.
    pub(in crate::engine::http) async fn load(
        engine: &dyn Engine,
        target: SocketAddr,
        c: &Ctx,
        how_long: Duration,
    ) -> Window {
        let task = tokio::spawn(engine.client(target, c.clone()));
        tokio::time::sleep(how_long).await;
        c.stop.cancel();
        task.await.unwrap();
        c.rec.take()
    }

    /// A test server on loopback until `stop`: `conn` serves each connection
    /// (in a task of its own).
    async fn test_server<F>(
        stop: CancellationToken,
        conn: impl Fn(TcpStream) -> F + Send + 'static,
    ) -> SocketAddr
    where
        F: Future<Output: Send> + Send + 'static,
    {
        let l = tcp::listen(LOOPBACK).unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (s, _) = tokio::select! {
                    _ = stop.cancelled() => return,
                    r = l.accept() => r.unwrap(),
                };
                tokio::spawn(conn(s));
            }
        });
        addr
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

    #[test]
    fn header_timeout_exceeds_every_legitimate_idle_gap() {
        let t = |extra: &str| header_timeout(&ctx("http1", extra).spec);
        assert_eq!(t(""), MIN_HEADER_TIMEOUT);
        assert_eq!(t(", timeout: 20s"), Duration::from_secs(80));
        // 1 request/s over 4 connections: a mean gap of 4 s per connection.
        assert_eq!(t(", rate: 1/s, connections: 4"), Duration::from_secs(200));
        assert_eq!(t(", rate: 0.000001/s"), MAX_HEADER_TIMEOUT);
    }

    /// Slowloris: a client that sends part of a request head, then trickles a
    /// byte now and then, is cut off once the head is [`header_timeout`] late
    /// (paused time: the clock jumps to each timer while both sides wait).
    #[tokio::test(start_paused = true)]
    async fn http1_server_closes_a_slowloris_connection() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let sc = ctx("http1", "");
        let bound = header_timeout(&sc.spec);
        let served = Http1.serve(LOOPBACK, sc.clone()).unwrap();
        let server = tokio::spawn(served.task);
        let s = TcpStream::connect((LOOPBACK, served.port)).await.unwrap();
        let (mut rd, mut wr) = s.into_split();
        let t = Instant::now();
        wr.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .await
            .unwrap();
        let trickle = tokio::spawn(async move {
            for _ in 0..40 {
                tokio::time::sleep(bound / 8).await;
                if wr.write_all(b"a").await.is_err() {
                    return;
                }
            }
        });
        // Whatever the server writes (an error status or nothing), it closes.
        let mut buf = Vec::new();
        let closed = tokio::time::timeout(bound * 3, rd.read_to_end(&mut buf)).await;
        assert!(closed.is_ok(), "still open after {:?}", t.elapsed());
        let took = t.elapsed();
        assert!(took >= bound && took < bound * 2, "closed after {took:?}");
        trickle.abort();
        sc.stop.cancel();
        server.await.unwrap();
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
        test_server(stop, |s| {
            let svc = service_fn(|_req: Request<Incoming>| async {
                let mut r = Response::new(Full::new(Bytes::from_static(b"busy")));
                *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
                Ok::<_, hyper::Error>(r)
            });
            server1::Builder::new().serve_connection(TokioIo::new(s), svc)
        })
        .await
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

    /// A service that never answers.
    async fn never(_req: Request<Incoming>) -> Result<Response<Body>, hyper::Error> {
        std::future::pending().await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unanswered_requests_time_out_http1_redials_http2_resets_the_stream() {
        let c = ctx("http1", ", timeout: 50ms");
        let target = test_server(c.stop.clone(), |s| {
            server1::Builder::new().serve_connection(TokioIo::new(s), service_fn(never))
        })
        .await;
        let w = load(&Http1, target, &c, Duration::from_millis(400))
            .await
            .counters;
        let timeouts = w.errors.get("timeout").copied().unwrap_or(0);
        assert!(timeouts >= 3 && w.errors.len() == 1, "{w:?}");
        // An HTTP/1.1 connection is out of step after a timeout: a new one each time.
        assert!(w.connections > timeouts, "{w:?}");
        assert_eq!((w.transactions, w.failed), (0, timeouts));

        let c = ctx("http2", ", timeout: 50ms, streams: 2");
        let target = test_server(c.stop.clone(), |s| {
            server2::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(s), service_fn(never))
        })
        .await;
        let w = load(&Http2, target, &c, Duration::from_millis(400))
            .await
            .counters;
        let timeouts = w.errors.get("timeout").copied().unwrap_or(0);
        assert!(timeouts >= 6 && w.errors.len() == 1, "{w:?}");
        // HTTP/2: the stream is reset, the connection kept.
        assert_eq!(w.connections, 1, "{w:?}");
        assert_eq!(w.attempts, w.failed + w.unfinished);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn http2_lanes_of_a_dead_connection_share_its_replacement() {
        // A server that cuts every connection after 60 ms.
        let c = ctx("http2", ", connections: 2, streams: 4");
        let target = test_server(c.stop.clone(), |s| {
            let svc = service_fn(|_req: Request<Incoming>| async {
                Ok::<_, hyper::Error>(Response::new(Full::new(Bytes::from_static(b"ok"))))
            });
            let conn =
                server2::Builder::new(TokioExecutor::new()).serve_connection(TokioIo::new(s), svc);
            tokio::time::timeout(Duration::from_millis(60), conn)
        })
        .await;
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
}
