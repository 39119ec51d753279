//! HTTP/2 connections (h2c, prior knowledge) shared by groups of lanes: hyper's
//! low-level connection API, each connection driven by a task of its own.

use super::super::{Ctx, TxError, tcp};
use super::lane::{Dial, Failure, Sender, classify, failed};
use super::{Body, RequestTemplate, read_body};
use hyper::StatusCode;
use hyper::client::conn::http2 as client2;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio::sync::Mutex;

impl Sender for client2::SendRequest<Body> {
    fn is_closed(&mut self) -> bool {
        client2::SendRequest::is_closed(self)
    }

    fn survives_abandon(&self) -> bool {
        true
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

/// HTTP/2: the lanes of one group share its connection.
#[derive(Debug, Clone)]
pub(super) struct H2Dial(Arc<H2Group>);

#[derive(Debug)]
struct H2Group {
    target: SocketAddr,
    streams: u32,
    /// The group's connection; the lock is held while (re)connecting, so one lane
    /// connects and the others then share what it opened.
    conn: Mutex<Option<client2::SendRequest<Body>>>,
}

impl H2Dial {
    pub(super) fn new(target: SocketAddr, streams: u32) -> Self {
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
