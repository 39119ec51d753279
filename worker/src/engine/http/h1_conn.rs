//! An HTTP/1.1 connection owned by one lane: it writes the prepared request in
//! one write, and feeds what it reads to the response [`Decoder`], which parses
//! in place; the body is counted and dropped.
//!
//! Received bytes stay in one buffer until decoded; the decoder's progress is
//! an offset into it, so nothing is moved while a response is read, and the
//! buffer starts over from its beginning whenever everything in it has been
//! decoded (after every response, in a request/response exchange).

use super::super::{Ctx, TxError, tcp};
use super::RequestTemplate;
use super::h1::{Decoder, Event};
use super::lane::{Dial, Failure, Sender};
use hyper::StatusCode;
use std::io;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// The read buffer's first capacity, and how much it grows by.
const BUFFER: usize = 16 << 10;
/// The room a read gets at least.
const MIN_READ: usize = 4 << 10;

/// An HTTP/1.1 connection owned by one lane (see the module documentation).
pub(super) struct H1Conn {
    stream: TcpStream,
    /// Received bytes; those from `at` on are not decoded yet.
    buf: Vec<u8>,
    at: usize,
    dec: Decoder,
    /// A response completed on this connection (so an EOF before any byte of
    /// the next one means the server closed it while idle).
    used: bool,
    /// The server ended the connection (`Connection: close`, or a body framed by
    /// the close).
    closed: bool,
}

impl H1Conn {
    fn new(stream: TcpStream) -> Self {
        H1Conn {
            stream,
            buf: Vec::with_capacity(BUFFER),
            at: 0,
            dec: Decoder::new(),
            used: false,
            closed: false,
        }
    }

    /// Read more; `Ok(0)` at EOF.
    async fn fill(&mut self) -> io::Result<usize> {
        if self.at == self.buf.len() {
            // All decoded: start over, keeping the allocation.
            self.buf.clear();
            self.at = 0;
        } else if self.buf.capacity() - self.buf.len() < MIN_READ {
            // Move what is left (part of a head, a chunk-size line) to the
            // front; grow only if that does not make room.
            self.buf.drain(..self.at);
            self.at = 0;
            if self.buf.capacity() - self.buf.len() < MIN_READ {
                self.buf.reserve(BUFFER);
            }
        }
        self.stream.read_buf(&mut self.buf).await
    }

    /// Read one response to its end: its status, body length, and whether the
    /// server closes the connection after it. `Failure::Stale` when the
    /// connection was closed before any byte of it arrived on a reused
    /// connection.
    async fn response(&mut self) -> Result<(StatusCode, u64, bool), Failure> {
        let mut head = None;
        let mut body = 0u64;
        loop {
            let step = self.dec.decode(&self.buf[self.at..]).map_err(protocol)?;
            self.at += step.consumed;
            match step.event {
                Event::Head(h) => head = Some(h),
                Event::Body(n) => body += n as u64,
                Event::Done => break,
                Event::NeedMore => {
                    let idle = self.used && self.dec.at_head() && self.at == self.buf.len();
                    match self.fill().await {
                        Ok(0) if idle => return Err(Failure::Stale),
                        Ok(0) => {
                            self.dec.eof().map_err(|_| eof())?;
                            self.closed = true;
                            break;
                        }
                        Ok(_) => {}
                        Err(e) if idle && is_teardown(&e) => return Err(Failure::Stale),
                        Err(e) => return Err(Failure::Io(e)),
                    }
                }
            }
        }
        // The decoder ends no message it has not seen the head of.
        let h = head.ok_or(Failure::Http("http-protocol"))?;
        Ok((h.status, body, h.close))
    }
}

/// A response that cannot be decoded; a connection cut short is an EOF.
fn protocol(e: super::h1::Error) -> Failure {
    match e {
        super::h1::Error::Eof => eof(),
        _ => Failure::Http("http-protocol"),
    }
}

fn eof() -> Failure {
    Failure::Io(io::ErrorKind::UnexpectedEof.into())
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

    fn survives_abandon(&self) -> bool {
        false
    }

    async fn round_trip(&mut self, req: &RequestTemplate) -> Result<(StatusCode, u64), Failure> {
        if self.at != self.buf.len() {
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
            let (status, n, close) = self.response().await?;
            if status.is_informational() {
                continue; // 100 Continue and friends: the real response follows
            }
            self.used = true;
            self.closed |= close;
            return Ok((status, n));
        }
    }
}

/// HTTP/1.1: each lane opens its own connection.
#[derive(Debug)]
pub(super) struct H1Dial(pub(super) SocketAddr);

impl Dial for H1Dial {
    type Sender = H1Conn;

    async fn dial(&self, ctx: &Ctx) -> Result<Self::Sender, TxError> {
        Ok(H1Conn::new(tcp::connect(self.0, ctx).await?))
    }
}

#[cfg(test)]
mod tests {
    use super::super::Http1;
    use super::super::tests::{LOOPBACK, ctx, load};
    use std::net::SocketAddr;
    use std::time::Duration;
    use tokio::io::AsyncWriteExt as _;

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
}
