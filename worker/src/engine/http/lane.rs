//! A lane's exchange, the same for both versions: send the request on the
//! lane's connection (dialling one first when it has none), read the whole
//! response, classify its status; and how failures are counted.

use super::super::{Ctx, Exchange, RETRY_PAUSE, TxError};
use super::RequestTemplate;
use hyper::StatusCode;
use std::error::Error as StdError;
use std::future::Future;
use std::io;

/// One connection's request side: does whole exchanges.
pub(super) trait Sender: Send + 'static {
    /// The connection has ended.
    fn is_closed(&mut self) -> bool;
    /// An exchange abandoned midway (a timeout) leaves the connection usable:
    /// true for a multiplexed one, whose stream is reset when dropped; false
    /// for an HTTP/1.1 byte stream, out of step until closed.
    fn survives_abandon(&self) -> bool;
    /// Send one request and read the whole response: its status and body length.
    fn round_trip(
        &mut self,
        req: &RequestTemplate,
    ) -> impl Future<Output = Result<(StatusCode, u64), Failure>> + Send;
}

/// Where a lane gets a connection when it has none.
pub(super) trait Dial: Send + 'static {
    type Sender: Sender;
    /// A sender on a live connection.
    fn dial(&self, ctx: &Ctx) -> impl Future<Output = Result<Self::Sender, TxError>> + Send;
}

/// One lane: a sequence of exchanges on one connection (its own for HTTP/1.1, its
/// group's for HTTP/2), reconnecting lazily after a failure.
pub(super) struct Lane<D: Dial> {
    dial: D,
    sender: Option<D::Sender>,
    req: RequestTemplate,
}

impl<D: Dial> Lane<D> {
    pub(super) fn new(dial: D, req: RequestTemplate) -> Self {
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
                    Err(TxError::Status { class, kind })
                }
            }
            Err(f) => {
                self.sender = None;
                Err(failure(f).await)
            }
        }
    }

    fn timed_out(&mut self) -> &'static str {
        if !self.sender.as_ref().is_some_and(Sender::survives_abandon) {
            self.sender = None;
        }
        "timeout"
    }
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
pub(super) enum Failure {
    /// The socket failed or the connection closed: an I/O error kind.
    Io(io::Error),
    /// An HTTP-level failure.
    Http(&'static str),
    /// HTTP/1.1: the server had closed the reused connection while it was idle
    /// (its keep-alive timeout); not a failure, the request goes on a new one.
    Stale,
}

pub(super) fn classify(e: &hyper::Error) -> Failure {
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
pub(super) async fn failed(e: hyper::Error) -> TxError {
    failure(classify(&e)).await
}

/// [`failed`] for a failure already classified.
pub(super) async fn failure(f: Failure) -> TxError {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_classes() {
        assert_eq!(status_class(StatusCode::OK).0, "2xx");
        assert_eq!(status_class(StatusCode::NO_CONTENT).0, "2xx");
        assert_eq!(status_class(StatusCode::NOT_FOUND), ("4xx", "http-4xx"));
        assert_eq!(status_class(StatusCode::BAD_GATEWAY), ("5xx", "http-5xx"));
    }
}
