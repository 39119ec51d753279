//! A framed control connection over any byte stream (TCP in production,
//! `tokio::io::duplex` in tests). Reading loops decode/read on an internal buffer; a
//! clean EOF between frames is `Ok(None)`, an EOF inside a frame is an error.
//!
//! This is the I/O half of `cnibench_proto::codec`: the worker's control server and
//! the coordinator's worker links both speak through it. Handshake frames are
//! plain; once both sides are proven, [`Connection::secure`] switches both
//! directions to sealed frames, and a frame that fails authentication is an error
//! (the caller closes the connection).

use bytes::BytesMut;
use cnibench_proto::auth::{Opener, Sealer};
use cnibench_proto::codec::{self, DecodeError, EncodeError};
use cnibench_proto::msg::Msg;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Why a control connection failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    /// Socket error.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The peer sent bytes that are not a valid frame.
    #[error("{0}")]
    Decode(#[from] DecodeError),
    /// A message could not be encoded.
    #[error("{0}")]
    Encode(#[from] EncodeError),
    /// The peer closed the connection in the middle of a frame.
    #[error("connection closed in the middle of a frame")]
    Truncated,
}

/// One framed connection.
#[derive(Debug)]
pub struct Connection<S> {
    stream: S,
    rbuf: BytesMut,
    wbuf: BytesMut,
    keys: Option<(Sealer, Opener)>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<S> {
    /// Wrap a connected stream.
    pub fn new(stream: S) -> Self {
        Connection {
            stream,
            rbuf: BytesMut::with_capacity(16 << 10),
            wbuf: BytesMut::with_capacity(16 << 10),
            keys: None,
        }
    }

    /// From now on, seal every frame written and check every frame read with the
    /// session's keys (`cnibench_proto::auth::session`).
    pub fn secure(&mut self, seal: Sealer, open: Opener) {
        self.keys = Some((seal, open));
    }

    /// Next message; `Ok(None)` on a clean close. Cancel-safe: no bytes are lost if
    /// the future is dropped (the buffer keeps partial frames).
    pub async fn read_msg(&mut self) -> Result<Option<Msg>, ConnError> {
        loop {
            let msg = match &mut self.keys {
                Some((_, open)) => codec::decode_sealed(&mut self.rbuf, open)?,
                None => codec::decode(&mut self.rbuf)?,
            };
            if let Some(msg) = msg {
                return Ok(Some(msg));
            }
            if self.stream.read_buf(&mut self.rbuf).await? == 0 {
                return if self.rbuf.is_empty() {
                    Ok(None)
                } else {
                    Err(ConnError::Truncated)
                };
            }
        }
    }

    /// Send one message and flush it.
    pub async fn write_msg(&mut self, msg: &Msg) -> Result<(), ConnError> {
        self.wbuf.clear();
        match &mut self.keys {
            Some((seal, _)) => codec::encode_sealed(msg, seal, &mut self.wbuf)?,
            None => codec::encode(msg, &mut self.wbuf)?,
        }
        self.stream.write_all(&self.wbuf).await?;
        self.stream.flush().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn eof_between_and_inside_frames() {
        let (a, mut b) = tokio::io::duplex(64);
        let mut ca = Connection::new(a);
        let mut buf = BytesMut::new();
        codec::encode(&Msg::Stop { job: 1 }, &mut buf).unwrap();
        b.write_all(&buf).await.unwrap();
        b.write_all(&buf[..2]).await.unwrap();
        drop(b);
        assert_eq!(ca.read_msg().await.unwrap(), Some(Msg::Stop { job: 1 }));
        assert!(matches!(ca.read_msg().await, Err(ConnError::Truncated)));

        let (a, b) = tokio::io::duplex(64);
        drop(b);
        assert!(Connection::new(a).read_msg().await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_secured_connection_refuses_a_tampered_frame() {
        use cnibench_proto::auth::{Side, session};
        let k = |side| session(b"t", &[1; 32], &[2; 32], &[3; 32], side);
        let (a, mut b) = tokio::io::duplex(4096);
        let mut ca = Connection::new(a);
        let (seal, open) = k(Side::Worker);
        ca.secure(seal, open);
        let (mut seal, _) = k(Side::Coordinator);
        let mut buf = BytesMut::new();
        codec::encode_sealed(&Msg::Stop { job: 1 }, &mut seal, &mut buf).unwrap();
        codec::encode_sealed(&Msg::Stop { job: 2 }, &mut seal, &mut buf).unwrap();
        let last = buf.len() - 1;
        buf[last] ^= 0x80;
        b.write_all(&buf).await.unwrap();
        assert_eq!(ca.read_msg().await.unwrap(), Some(Msg::Stop { job: 1 }));
        assert!(matches!(
            ca.read_msg().await,
            Err(ConnError::Decode(DecodeError::Unauthenticated))
        ));
    }
}
