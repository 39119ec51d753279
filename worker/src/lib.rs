//! cnibench worker: a control server that takes jobs from an authenticated
//! coordinator and runs traffic engines, streaming interval measurements back.
//!
//! # Layout
//!
//! - [`control`]: sessions, the handshake, the dead-man rule; [`job`]: one job's
//!   lifecycle and its interval reports; [`limits`]: allowed targets, rate and
//!   duration caps.
//! - [`engine`] (folder): one trait, the shared client drivers (`ctx`, `lane`,
//!   `fan_out`) and one module per protocol (`tcp`, `udp`, `quic`, `http/` with
//!   the I/O-free HTTP/1.1 response decoder [`engine::h1`]), plus precise timers.
//! - [`recorder`]: per-interval histograms and counters the engines add to;
//!   [`cpu`]: CPU accounting from /proc; [`health`]: datapath health counters
//!   (retransmits, UDP buffer errors, conntrack, interface and softnet drops).
//! - [`serve`]: one engine's server without a coordinator, for other tools' clients.
//! - [`cni`] and [`local_info`]: what the worker reports about its node and datapath.
//!
//! What the coordinator needs too lives outside this crate, so that it links no
//! engines: the framed control connection, local system info and the shutdown
//! signal in `cnibench_net`, the wall clock in `cnibench_proto::clock`.
//!
//! ```no_run
//! # async fn f() -> std::io::Result<()> {
//! use cnibench_worker::control::{self, Config};
//! let listener = tokio::net::TcpListener::bind("127.0.0.2:7000").await?;
//! let info = cnibench_worker::local_info("127.0.0.2".parse().unwrap(), "node-1", "loopback");
//! let cfg = Config {
//!     token: b"secret".to_vec(),
//!     info,
//!     dead_man: std::time::Duration::from_secs(3),
//!     limits: Default::default(),
//! };
//! control::serve(listener, cfg.into(), tokio_util::sync::CancellationToken::new()).await;
//! # Ok(()) }
//! ```

pub mod cni;
pub mod control;
pub mod cpu;
pub mod engine;
pub mod health;
pub mod job;
pub mod limits;
pub mod recorder;
pub mod serve;

use cnibench_net::sysinfo;
use cnibench_proto::msg::WorkerInfo;
use std::net::IpAddr;

/// Describe this worker: node `node`, data plane on `data_ip`, CNI label `cni`.
pub fn local_info(data_ip: IpAddr, node: &str, cni: &str) -> WorkerInfo {
    let env_ip = |k: &str| std::env::var(k).ok().and_then(|v| v.parse().ok());
    WorkerInfo {
        version: env!("CARGO_PKG_VERSION").to_string(),
        node: node.to_string(),
        pod_ip: env_ip("POD_IP"),
        host_ip: env_ip("HOST_IP"),
        data_ip,
        cni: cni.to_string(),
        cni_mode: None,
        mtu: sysinfo::mtu_of(data_ip),
        kernel: sysinfo::kernel(),
        cpu_model: sysinfo::cpu_model(),
        cpus: sysinfo::cpus(),
        boot_id: sysinfo::boot_id(),
    }
}
