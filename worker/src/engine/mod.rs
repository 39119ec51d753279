//! Traffic engines. Every traffic kind implements [`Engine`]: the server side binds
//! first (so the coordinator can tell clients where to go) and serves until stopped;
//! the client side generates load at a target until stopped. Engines only move bytes
//! and record into the job's [`Recorder`]; timing, intervals and the job lifecycle
//! live in `job.rs`, so no engine has its own copy of those loops.

mod tcp;

use crate::recorder::Recorder;
use cnibench_proto::plan::{ScenarioSpec, Traffic};
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// A boxed task future.
pub type Task = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// What an engine's tasks share.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// The scenario being run.
    pub spec: Arc<ScenarioSpec>,
    /// Where measurements go.
    pub rec: Arc<Recorder>,
    /// Cancelled when the engine must stop.
    pub stop: CancellationToken,
}

/// One traffic kind.
pub trait Engine: Send + Sync {
    /// Bind the server on `ip` (port chosen by the kernel) and return the bound port
    /// and the task that serves until `ctx.stop`.
    fn serve(&self, ip: IpAddr, ctx: Ctx) -> io::Result<(u16, Task)>;
    /// The client task: load against `target` until `ctx.stop`.
    fn client(&self, target: SocketAddr, ctx: Ctx) -> Task;
}

/// The engine for a traffic kind, if this version implements it.
pub fn for_traffic(t: Traffic) -> Option<Box<dyn Engine>> {
    match t {
        Traffic::TcpStream => Some(Box::new(tcp::Stream)),
        Traffic::TcpRr => Some(Box::new(tcp::Rr)),
        Traffic::TcpCrr => Some(Box::new(tcp::Crr)),
        _ => None,
    }
}

/// Pause after a failed connection attempt so a dead target is not hammered.
pub(crate) const RETRY_PAUSE: Duration = Duration::from_millis(20);

/// Run futures concurrently as tasks until all finish.
pub(crate) async fn fan_out<F>(futs: Vec<F>)
where
    F: Future<Output = ()> + Send + 'static,
{
    let mut set = tokio::task::JoinSet::new();
    for f in futs {
        set.spawn(f);
    }
    while set.join_next().await.is_some() {}
}
