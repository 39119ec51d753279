//! An HTTP/1.1 response decoder without I/O: fed the bytes received so far, it
//! says what they hold, and the connection (the HTTP engine's `h1_conn`) reads
//! more when it asks for more.
//!
//! Each call to [`Decoder::decode`] looks at the bytes not consumed yet and
//! returns a [`Step`]: how many of them it consumed and what they were
//! ([`Event`]): a response head, body bytes, the end of the message, or "need
//! more" (after consuming what it could). Nothing is copied or allocated: the
//! head is parsed in place with httparse (hyper's parser), once it is all there;
//! body bytes are only counted.
//!
//! Bodies are framed by Content-Length, by chunked transfer coding, or by the
//! end of the connection ([`Decoder::eof`]); 1xx, 204 and 304 responses have
//! none. Chunked bodies go through a byte-at-a-time state machine in the style
//! of hyper's `ChunkedState` (chunk extensions skipped, trailers read and
//! dropped), so a message split at any byte decodes exactly as it does whole.
//! Malformed input is an [`Error`], never a panic; lines (head, chunk-size line,
//! trailers) are bounded by [`MAX_HEAD`] bytes.
//!
//! ```
//! use cnibench_worker::engine::h1::{Decoder, Event};
//! let wire = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello";
//! let (mut dec, mut at, mut body) = (Decoder::new(), 0, 0);
//! loop {
//!     let step = dec.decode(&wire[at..]).unwrap();
//!     at += step.consumed;
//!     match step.event {
//!         Event::Head(h) => assert_eq!(h.status.as_u16(), 200),
//!         Event::Body(n) => body += n,
//!         Event::Done => break,
//!         Event::NeedMore => unreachable!("all of it is there"),
//!     }
//! }
//! assert_eq!((at, body), (wire.len(), 5));
//! ```

use hyper::StatusCode;

/// Largest response head accepted; also the longest chunk-size line and the
/// most trailer bytes after a chunked body.
pub const MAX_HEAD: usize = 64 << 10;
/// Most headers in a response head.
pub const MAX_HEADERS: usize = 64;

/// What a response head says that matters to a client that drops the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// The status code.
    pub status: StatusCode,
    /// The server closes the connection after this response (`Connection:
    /// close`, or HTTP/1.0 without keep-alive).
    pub close: bool,
}

/// What the consumed bytes were.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Nothing more can be decoded until more bytes arrive (or the connection
    /// ends: [`Decoder::eof`]).
    NeedMore,
    /// A response head; its body follows.
    Head(Head),
    /// This many body bytes (the last ones consumed).
    Body(usize),
    /// The message is complete; the next bytes are the next response's head.
    Done,
}

/// The result of one [`Decoder::decode`] call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// Bytes of the input consumed: the caller drops them before the next call.
    pub consumed: usize,
    /// What they were.
    pub event: Event,
}

/// Why a response cannot be decoded; the connection is of no further use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The head is not HTTP/1.x (httparse's reason).
    #[error("malformed response head: {0}")]
    Head(httparse::Error),
    /// The head is larger than [`MAX_HEAD`].
    #[error("response head larger than {MAX_HEAD} bytes")]
    HeadTooLarge,
    /// The status code is not one.
    #[error("invalid status code")]
    Status,
    /// Content-Length is not a number.
    #[error("invalid content-length")]
    ContentLength,
    /// A chunk-size line is malformed, or its size does not fit in 64 bits.
    #[error("invalid chunk size line")]
    ChunkSize,
    /// Chunk data is not followed by CRLF.
    #[error("chunk data not followed by CRLF")]
    ChunkEnd,
    /// A trailer line does not end in CRLF.
    #[error("malformed trailer")]
    Trailer,
    /// A chunk-size line, or the trailers, are longer than [`MAX_HEAD`].
    #[error("chunk-size line or trailers longer than {MAX_HEAD} bytes")]
    LineTooLong,
    /// The connection ended before the response did.
    #[error("connection closed before the end of the response")]
    Eof,
}

/// Where the decoder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for a whole response head.
    Head,
    /// A Content-Length body: this many bytes left.
    Length(u64),
    /// A body that ends with the connection.
    UntilClose,
    /// A chunked body.
    Chunked(Chunk),
}

/// Where a chunked body is, byte by byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Hex digits of the chunk size.
    Size,
    /// Blanks after the size.
    SizeLws,
    /// A chunk extension (`;name=value`), skipped.
    Extension,
    /// The LF ending the size line.
    SizeLf,
    /// Chunk data; `Decoder::left` bytes of it to go.
    Data,
    /// The CR after the data.
    DataCr,
    /// The LF after the data.
    DataLf,
    /// The start of a trailer line, or of the final empty line.
    TrailerStart,
    /// Within a trailer line.
    Trailer,
    /// The LF ending a trailer line.
    TrailerLf,
    /// The LF ending the final empty line.
    EndLf,
}

/// Decodes the responses of one connection, one after the other.
#[derive(Debug, Clone)]
pub struct Decoder {
    state: State,
    /// Chunked: the size being read, then the chunk's data bytes left.
    left: u64,
    /// Chunked: the size line has a digit.
    digits: bool,
    /// Chunked: bytes of the current size line, or of the trailers so far.
    line: usize,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder {
    /// A decoder waiting for a response head.
    pub fn new() -> Self {
        Decoder {
            state: State::Head,
            left: 0,
            digits: false,
            line: 0,
        }
    }

    /// Whether the decoder is between messages or within a head (no byte of
    /// the current response has been consumed).
    pub fn at_head(&self) -> bool {
        self.state == State::Head
    }

    /// Decode from `buf`, the bytes received and not consumed yet.
    pub fn decode(&mut self, buf: &[u8]) -> Result<Step, Error> {
        match self.state {
            State::Head => self.head(buf),
            State::Length(0) => {
                self.state = State::Head;
                Ok(step(0, Event::Done))
            }
            State::Length(left) => {
                let n = left.min(buf.len() as u64);
                self.state = State::Length(left - n);
                Ok(body(n as usize))
            }
            State::UntilClose => Ok(body(buf.len())),
            State::Chunked(c) => self.chunked(c, buf),
        }
    }

    /// The connection ended (after a [`Event::NeedMore`]). Completes a body
    /// framed by the end of the connection; anything else is cut short.
    pub fn eof(&mut self) -> Result<(), Error> {
        match self.state {
            State::UntilClose => {
                self.state = State::Head;
                Ok(())
            }
            _ => Err(Error::Eof),
        }
    }

    fn head(&mut self, buf: &[u8]) -> Result<Step, Error> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut r = httparse::Response::new(&mut headers);
        let n = match r.parse(buf).map_err(Error::Head)? {
            // A head larger than the limit is refused however it arrived, so
            // that the result does not depend on how the bytes were split.
            httparse::Status::Complete(n) if n <= MAX_HEAD => n,
            httparse::Status::Partial if buf.len() < MAX_HEAD => {
                return Ok(step(0, Event::NeedMore));
            }
            _ => return Err(Error::HeadTooLarge),
        };
        let code = r.code.unwrap_or(0);
        let status = StatusCode::from_u16(code).map_err(|_| Error::Status)?;
        let mut state = State::UntilClose;
        let mut close = r.version == Some(0);
        for h in r.headers.iter() {
            if h.name.eq_ignore_ascii_case("content-length") {
                let n = std::str::from_utf8(h.value)
                    .ok()
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .ok_or(Error::ContentLength)?;
                state = State::Length(n);
            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                if h.value.eq_ignore_ascii_case(b"chunked") {
                    state = State::Chunked(Chunk::Size);
                }
            } else if h.name.eq_ignore_ascii_case("connection") {
                close = h.value.eq_ignore_ascii_case(b"close");
            }
        }
        if code == 204 || code == 304 || (100..200).contains(&code) {
            state = State::Length(0);
        }
        self.state = state;
        (self.left, self.digits, self.line) = (0, false, 0);
        Ok(step(n, Event::Head(Head { status, close })))
    }

    /// Go through a chunked body's framing byte by byte, up to data, the end
    /// of the body, or the end of `buf`.
    fn chunked(&mut self, mut c: Chunk, buf: &[u8]) -> Result<Step, Error> {
        let mut at = 0;
        loop {
            if c == Chunk::Data {
                if self.left == 0 {
                    c = Chunk::DataCr;
                    continue;
                }
                let n = self.left.min((buf.len() - at) as u64);
                self.left -= n;
                self.state = State::Chunked(Chunk::Data);
                return Ok(if n == 0 {
                    step(at, Event::NeedMore)
                } else {
                    step(at + n as usize, Event::Body(n as usize))
                });
            }
            let Some(&b) = buf.get(at) else {
                self.state = State::Chunked(c);
                return Ok(step(at, Event::NeedMore));
            };
            at += 1;
            self.line += 1;
            if self.line > MAX_HEAD {
                return Err(Error::LineTooLong);
            }
            c = match (c, b) {
                (Chunk::Size, _) if b.is_ascii_hexdigit() => {
                    let d = u64::from((b as char).to_digit(16).unwrap_or(0));
                    self.left = self
                        .left
                        .checked_mul(16)
                        .and_then(|s| s.checked_add(d))
                        .ok_or(Error::ChunkSize)?;
                    self.digits = true;
                    Chunk::Size
                }
                (Chunk::Size, _) if !self.digits => return Err(Error::ChunkSize),
                (Chunk::Size | Chunk::SizeLws, b' ' | b'\t') => Chunk::SizeLws,
                (Chunk::Size | Chunk::SizeLws | Chunk::Extension, b';') => Chunk::Extension,
                (Chunk::Size | Chunk::SizeLws | Chunk::Extension, b'\r') => Chunk::SizeLf,
                (Chunk::Extension, b'\n') => return Err(Error::ChunkSize),
                (Chunk::Extension, _) => Chunk::Extension,
                (Chunk::SizeLf, b'\n') => {
                    self.line = 0;
                    if self.left == 0 {
                        Chunk::TrailerStart
                    } else {
                        Chunk::Data
                    }
                }
                (Chunk::Size | Chunk::SizeLws | Chunk::SizeLf, _) => {
                    return Err(Error::ChunkSize);
                }
                (Chunk::DataCr, b'\r') => Chunk::DataLf,
                (Chunk::DataLf, b'\n') => {
                    (self.left, self.digits, self.line) = (0, false, 0);
                    Chunk::Size
                }
                (Chunk::DataCr | Chunk::DataLf, _) => return Err(Error::ChunkEnd),
                (Chunk::TrailerStart, b'\r') => Chunk::EndLf,
                (Chunk::Trailer, b'\r') => Chunk::TrailerLf,
                (Chunk::TrailerStart | Chunk::Trailer, _) => Chunk::Trailer,
                (Chunk::TrailerLf, b'\n') => Chunk::TrailerStart,
                (Chunk::EndLf, b'\n') => {
                    self.state = State::Head;
                    return Ok(step(at, Event::Done));
                }
                (Chunk::TrailerLf | Chunk::EndLf, _) => return Err(Error::Trailer),
                // Handled above.
                (Chunk::Data, _) => Chunk::Data,
            };
        }
    }
}

fn step(consumed: usize, event: Event) -> Step {
    Step { consumed, event }
}

/// `n` body bytes, or a request for more when there are none.
fn body(n: usize) -> Step {
    if n == 0 {
        step(0, Event::NeedMore)
    } else {
        step(n, Event::Body(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A response as a client sees it: its status, whether the server closes
    /// after it, its body length.
    type Response = (u16, bool, u64);

    /// Decode `pieces` arriving one after the other (then EOF, when `eof`), as
    /// a connection does: bytes not consumed stay for the next call. Input
    /// that ends within a message is [`Error::Eof`] either way.
    fn decode_pieces(pieces: &[&[u8]], eof: bool) -> Result<Vec<Response>, Error> {
        let mut dec = Decoder::new();
        let (mut buf, mut at) = (Vec::new(), 0);
        let mut out = Vec::new();
        let mut head = None;
        let mut body = 0u64;
        let mut next = pieces.iter();
        loop {
            let s = dec.decode(&buf[at..])?;
            assert!(at + s.consumed <= buf.len(), "consumed more than given");
            at += s.consumed;
            match s.event {
                Event::Head(h) => {
                    assert!(head.is_none(), "two heads in one message");
                    head = Some(h);
                }
                Event::Body(n) => {
                    assert!(n > 0 && n <= s.consumed, "{s:?}");
                    body += n as u64;
                }
                Event::Done => {
                    let h = head.take().expect("a head before the end");
                    out.push((h.status.as_u16(), h.close, std::mem::take(&mut body)));
                }
                Event::NeedMore => match next.next() {
                    Some(p) => buf.extend_from_slice(p),
                    None if eof => {
                        dec.eof()?;
                        let h = head.take().ok_or(Error::Eof)?;
                        out.push((h.status.as_u16(), h.close, body));
                        return Ok(out);
                    }
                    // The input ended within a message: as good as cut short.
                    None if head.is_some() || at < buf.len() || !dec.at_head() => {
                        return Err(Error::Eof);
                    }
                    None => return Ok(out),
                },
            }
        }
    }

    /// Decode `wire` whole, byte by byte, split at every position and at
    /// every pair of positions (when short enough): every way must give the
    /// same result.
    fn decode_every_way(wire: &[u8], eof: bool) -> Result<Vec<Response>, Error> {
        let whole = decode_pieces(&[wire], eof);
        let bytes: Vec<&[u8]> = wire.chunks(1).collect();
        assert_eq!(decode_pieces(&bytes, eof), whole, "byte by byte");
        for i in 0..=wire.len() {
            let (a, b) = wire.split_at(i);
            assert_eq!(decode_pieces(&[a, b], eof), whole, "split at {i}");
            if wire.len() <= 200 {
                for j in i..=wire.len() {
                    let (b, c) = (&wire[i..j], &wire[j..]);
                    assert_eq!(decode_pieces(&[a, b, c], eof), whole, "split at {i}, {j}");
                }
            }
        }
        whole
    }

    const CHUNKED: &[u8] = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n\
        2\r\nhe\r\n3;x=y\r\nllo\r\nA \t;ext;a=\"b\"\r\n0123456789\r\n0\r\nx-trailer: 1\r\nx-other: 2\r\n\r\n";

    #[test]
    fn every_framing_decodes_the_same_however_split() {
        let cases: [(&[u8], bool, Vec<Response>); 8] = [
            (
                b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello",
                false,
                vec![(200, false, 5)],
            ),
            (CHUNKED, false, vec![(200, false, 15)]),
            // Chunked without trailers, uppercase hex, a zero-size line with an
            // extension.
            (
                b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: CHUNKED\r\n\r\n1F\r\n0123456789012345678901234567890\r\n0;last\r\n\r\n",
                false,
                vec![(404, false, 31)],
            ),
            (
                b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello",
                false,
                vec![(100, false, 0), (200, false, 5)],
            ),
            // Framed by the close.
            (
                b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nhello",
                true,
                vec![(200, true, 5)],
            ),
            (
                b"HTTP/1.0 200 OK\r\n\r\nhello, world",
                true,
                vec![(200, true, 12)],
            ),
            // No body whatever the headers say; keep-alive on HTTP/1.0.
            (
                b"HTTP/1.1 204 No Content\r\ncontent-length: 9\r\n\r\n\
                  HTTP/1.0 304 Not Modified\r\nconnection: keep-alive\r\n\r\n",
                false,
                vec![(204, false, 0), (304, false, 0)],
            ),
            // Pipelined: one of each, back to back, in one buffer.
            (
                b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n\
                  HTTP/1.1 503 Busy\r\ntransfer-encoding: chunked\r\n\r\n4\r\nbusy\r\n0\r\n\r\n\
                  HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok\
                  HTTP/1.1 200 OK\r\n\r\nto the end",
                true,
                vec![(200, false, 0), (503, false, 4), (200, false, 2), (200, false, 10)],
            ),
        ];
        for (wire, eof, want) in cases {
            let text = String::from_utf8_lossy(wire);
            assert_eq!(decode_every_way(wire, eof), Ok(want), "{text}");
        }
    }

    #[test]
    fn malformed_responses_are_errors() {
        let cases: [(&[u8], Error); 14] = [
            (
                b"SSH-2.0-OpenSSH\r\n\r\n",
                Error::Head(httparse::Error::Version),
            ),
            (b"HTTP/1.1 099 Odd\r\n\r\n", Error::Status),
            (
                b"HTTP/1.1 200 OK\r\ncontent-length: five\r\n\r\n",
                Error::ContentLength,
            ),
            (
                b"HTTP/1.1 200 OK\r\ncontent-length: 18446744073709551616\r\n\r\n",
                Error::ContentLength,
            ),
            (
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
                Error::ChunkSize,
            ),
            (
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n\r\n",
                Error::ChunkSize,
            ),
            (
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n 5\r\nhello\r\n",
                Error::ChunkSize,
            ),
            (
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5 x\r\nhello\r\n",
                Error::ChunkSize,
            ),
            (
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\rhello\r\n",
                Error::ChunkSize,
            ),
            (
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5;a\nb\r\nhello\r\n",
                Error::ChunkSize,
            ),
            // 2^64: one hex digit too many.
            (
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n10000000000000000\r\n",
                Error::ChunkSize,
            ),
            (
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhelloXX",
                Error::ChunkEnd,
            ),
            (
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\nx: 1\rx",
                Error::Trailer,
            ),
            (
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\rx",
                Error::Trailer,
            ),
        ];
        for (wire, want) in cases {
            let text = String::from_utf8_lossy(wire);
            assert_eq!(decode_every_way(wire, false), Err(want), "{text}");
        }
        // The largest chunk size there is (16 hex digits) is fine until the
        // data runs out.
        let wire = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nffffffffffffffff\r\nabc";
        assert_eq!(decode_every_way(wire, true), Err(Error::Eof));
    }

    #[test]
    fn responses_cut_short_are_errors_at_eof() {
        let whole = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello";
        for i in 1..whole.len() {
            assert_eq!(
                decode_pieces(&[&whole[..i]], true),
                Err(Error::Eof),
                "cut at {i}"
            );
        }
        for i in 1..CHUNKED.len() {
            assert_eq!(
                decode_pieces(&[&CHUNKED[..i]], true),
                Err(Error::Eof),
                "cut at {i}"
            );
        }
        // Nothing at all: no response either.
        assert_eq!(decode_pieces(&[], true), Err(Error::Eof));
    }

    #[test]
    fn oversized_heads_lines_and_trailers_are_refused() {
        let mut big = b"HTTP/1.1 200 OK\r\nx-big: ".to_vec();
        big.resize(MAX_HEAD + 1, b'a');
        // Incomplete, or complete, it is too large either way.
        let pieces: Vec<&[u8]> = big.chunks(1000).collect();
        assert_eq!(decode_pieces(&pieces, true), Err(Error::HeadTooLarge));
        big.extend_from_slice(b"\r\ncontent-length: 0\r\n\r\n");
        assert_eq!(decode_pieces(&[&big], false), Err(Error::HeadTooLarge));
        // Too many headers.
        let mut many = b"HTTP/1.1 200 OK\r\n".to_vec();
        for _ in 0..=MAX_HEADERS {
            many.extend_from_slice(b"x: y\r\n");
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(
            decode_pieces(&[&many], false),
            Err(Error::Head(httparse::Error::TooManyHeaders))
        );
        // An endless chunk extension, or endless trailers.
        let chunked = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n";
        for (start, filler) in [(&b"5;"[..], &b"a=b;"[..]), (b"0\r\n", b"x: 1\r\n")] {
            let mut wire = chunked.to_vec();
            wire.extend_from_slice(start);
            while wire.len() < chunked.len() + MAX_HEAD + 10 {
                wire.extend_from_slice(filler);
            }
            let pieces: Vec<&[u8]> = wire.chunks(777).collect();
            assert_eq!(decode_pieces(&pieces, true), Err(Error::LineTooLong));
        }
        // Long lines up to the limit are fine.
        let mut wire = chunked.to_vec();
        wire.extend_from_slice(b"0;");
        wire.resize(chunked.len() + MAX_HEAD - 2, b'a');
        wire.extend_from_slice(b"\r\n\r\n");
        assert_eq!(decode_pieces(&[&wire], false), Ok(vec![(200, false, 0)]));
    }

    #[test]
    fn body_bytes_come_without_copies_or_limits() {
        // A large Content-Length body in pieces: every byte is body, counted
        // as it comes; nothing is held back.
        let mut dec = Decoder::new();
        let head = b"HTTP/1.1 200 OK\r\ncontent-length: 1000000\r\n\r\n";
        let s = dec.decode(head).unwrap();
        assert_eq!(s.consumed, head.len());
        let piece = [0u8; 4096];
        let mut total = 0;
        while total < 1_000_000 {
            let s = dec.decode(&piece).unwrap();
            assert_eq!(s.event, Event::Body(s.consumed));
            assert_eq!(s.consumed, piece.len().min(1_000_000 - total));
            total += s.consumed;
        }
        assert_eq!(dec.decode(&piece).unwrap(), step(0, Event::Done));
        assert!(dec.at_head());
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A small xorshift generator: random bytes, and valid responses with
        // random bytes changed, split at random places.
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        let mut rand = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let seeds: [&[u8]; 3] = [
            CHUNKED,
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello",
            b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nhello",
        ];
        let alphabet = b"0123456789abcdefXYZ \t;:=\r\n\r\n";
        for round in 0..3000 {
            let mut wire = seeds[round % seeds.len()].to_vec();
            if round % 7 == 0 {
                wire = (0..rand() % 300).map(|_| rand() as u8).collect();
            }
            for _ in 0..1 + rand() % 4 {
                let i = (rand() % wire.len().max(1) as u64) as usize;
                let b = alphabet[(rand() % alphabet.len() as u64) as usize];
                match rand() % 3 {
                    0 if i < wire.len() => wire[i] = b,
                    1 if i < wire.len() => {
                        wire.remove(i);
                    }
                    _ => wire.insert(i.min(wire.len()), b),
                }
            }
            let cut = (rand() % (wire.len() as u64 + 1)) as usize;
            let (a, b) = wire.split_at(cut);
            let eof = rand() % 2 == 0;
            assert_eq!(
                decode_pieces(&[a, b], eof),
                decode_pieces(&[&wire], eof),
                "{}",
                String::from_utf8_lossy(&wire)
            );
        }
    }
}
