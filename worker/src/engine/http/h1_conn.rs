//! An HTTP/1.1 connection owned by one lane: it writes the prepared request in
//! one write and reads the response, dropping its body.

use super::super::{Ctx, TxError, tcp};
use super::RequestTemplate;
use super::lane::{Dial, Failure, Sender};
use hyper::StatusCode;
use std::io;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Largest response head accepted.
const MAX_HEAD: usize = 64 << 10;
/// Most headers in a response head.
const MAX_HEADERS: usize = 64;

/// An HTTP/1.1 connection owned by one lane: the request is written as
/// prepared, the response parsed here (see the module documentation).
pub(super) struct H1Conn {
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

/// HTTP/1.1: each lane opens its own connection.
#[derive(Debug)]
pub(super) struct H1Dial(pub(super) SocketAddr);

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
