//! The HTTP server, both versions: one task per connection (hyper runs each
//! HTTP/2 stream in a task of its own).

use super::super::{Ctx, Served, tcp};
use super::lane::{Failure, classify};
use super::{Body, read_body};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::{http1 as server1, http2 as server2};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::io;
use std::net::IpAddr;
use std::sync::Arc;
use tokio::net::TcpStream;

/// How the server speaks on each connection.
#[derive(Debug)]
pub(super) enum ServerConn {
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

pub(super) fn serve(ip: IpAddr, ctx: Ctx, conn: ServerConn) -> io::Result<Served> {
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
