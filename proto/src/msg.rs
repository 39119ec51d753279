//! Control-plane messages between coordinator and workers.
//!
//! Every frame carries one [`Msg`]. The conversation on one connection is:
//! `Challenge` (worker) -> `Auth` (coordinator) -> `Hello` (worker) -> `Welcome` or
//! `Reject` (coordinator); then calls `Prepare`/`Ready`, `Start`, `Stop`, `Ping`/`Pong`,
//! and the worker's stream of `Interval` reports ending in `Done` or `Failed` per job.
//! See `proto/README.md` for the full sequence.

use crate::plan::ScenarioSpec;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

/// Bumped on any incompatible change to [`Msg`] or its payloads.
pub const PROTO_VERSION: u32 = 1;

/// Length of handshake nonces and proofs.
pub const NONCE_LEN: usize = 32;

/// One control message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Msg {
    /// Worker -> coordinator, first frame: a fresh nonce the coordinator must sign.
    Challenge {
        /// Worker's protocol version.
        proto_version: u32,
        /// Fresh random nonce.
        nonce: [u8; NONCE_LEN],
    },
    /// Coordinator -> worker: proof of the shared token over the worker's nonce.
    Auth {
        /// Coordinator's protocol version.
        proto_version: u32,
        /// Coordinator's own fresh nonce, for the worker's proof.
        nonce: [u8; NONCE_LEN],
        /// HMAC-SHA256(token, "coordinator" | worker nonce | coordinator nonce).
        proof: [u8; NONCE_LEN],
    },
    /// Worker -> coordinator: who it is, and its proof over the coordinator's nonce.
    Hello {
        /// What the worker knows about its node and datapath.
        info: WorkerInfo,
        /// HMAC-SHA256(token, "worker" | coordinator nonce | worker nonce).
        proof: [u8; NONCE_LEN],
    },
    /// Coordinator -> worker: handshake complete.
    Welcome,
    /// Either side: the handshake or a request is refused; the connection closes.
    Reject {
        /// Why, for the other side's log.
        reason: String,
    },
    /// Coordinator -> worker: set up one job (a server binds here, before any client starts).
    Prepare(Job),
    /// Worker -> coordinator: job prepared; servers report their bound port.
    Ready {
        /// Job id from `Prepare`.
        job: u64,
        /// Bound data-plane port (servers), 0 for clients.
        port: u16,
    },
    /// Coordinator -> worker: start the job at this instant of the worker's wall clock.
    Start {
        /// Job id.
        job: u64,
        /// Unix time in ns on the worker's clock (coordinator time corrected by the offset).
        at_unix_ns: i64,
    },
    /// Coordinator -> worker: finish the job now (servers after their clients are done).
    Stop {
        /// Job id.
        job: u64,
    },
    /// Coordinator -> worker: liveness and clock probe.
    Ping {
        /// Probe number.
        seq: u64,
        /// Coordinator send time (unix ns).
        t1: i64,
    },
    /// Worker -> coordinator: answer to `Ping`.
    Pong {
        /// Probe number.
        seq: u64,
        /// Echo of the coordinator send time.
        t1: i64,
        /// Worker receive time (unix ns).
        t2: i64,
        /// Worker send time (unix ns).
        t3: i64,
    },
    /// Worker -> coordinator: one measurement interval of one job.
    Interval(IntervalReport),
    /// Worker -> coordinator: the job finished; `intervals` reports were sent.
    Done {
        /// Job id.
        job: u64,
        /// Number of `Interval` reports sent for this job, to detect losses.
        intervals: u32,
    },
    /// Worker -> coordinator: the job failed.
    Failed {
        /// Job id.
        job: u64,
        /// What went wrong.
        error: String,
    },
    /// Coordinator -> worker: stop all traffic now.
    Abort {
        /// Why.
        reason: String,
    },
}

/// What a worker reports about itself in `Hello`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerInfo {
    /// Worker software version.
    pub version: String,
    /// Node name (Kubernetes node, or host name).
    pub node: String,
    /// Pod IP, when known.
    pub pod_ip: Option<IpAddr>,
    /// Host IP, when known.
    pub host_ip: Option<IpAddr>,
    /// Address its data-plane servers bind to and clients should target.
    pub data_ip: IpAddr,
    /// CNI name or label (`flannel`, `calico`, `host-gw`, ...).
    pub cni: String,
    /// CNI mode when known (`vxlan`, `host-gw`, ...).
    pub cni_mode: Option<String>,
    /// MTU of the data interface, when known.
    pub mtu: Option<u32>,
    /// Kernel release.
    pub kernel: String,
    /// CPU model name.
    pub cpu_model: String,
    /// Online CPUs.
    pub cpus: u32,
}

/// Which end of the traffic a worker plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Role {
    /// Generates load and measures latency.
    Client,
    /// Accepts load and counts goodput.
    Server,
}

/// One unit of work for one worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// Unique within a coordinator session.
    pub id: u64,
    /// Client or server.
    pub role: Role,
    /// What to run.
    pub scenario: ScenarioSpec,
    /// Where a client sends its traffic (a server's `data_ip` and bound port).
    pub target: Option<SocketAddr>,
}

/// Counters of one interval.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Counters {
    /// Payload bytes written.
    pub bytes_sent: u64,
    /// Payload bytes read (goodput at this end).
    pub bytes_received: u64,
    /// Completed transactions (client) or served requests (server).
    pub transactions: u64,
    /// Connections established.
    pub connections: u64,
    /// Failures by kind (`connect-refused`, `reset`, `timeout`, ...).
    pub errors: BTreeMap<String, u64>,
}

impl Counters {
    /// Add another interval's counters to these.
    pub fn add(&mut self, o: &Counters) {
        self.bytes_sent += o.bytes_sent;
        self.bytes_received += o.bytes_received;
        self.transactions += o.transactions;
        self.connections += o.connections;
        for (k, v) in &o.errors {
            *self.errors.entry(k.clone()).or_default() += v;
        }
    }

    /// Total failures of all kinds.
    pub fn error_total(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// One interval of one job, as measured by one worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntervalReport {
    /// Job id.
    pub job: u64,
    /// 0-based interval number; with warm-up, interval 0 is the warm-up.
    pub seq: u32,
    /// This interval is warm-up and excluded from results.
    pub warmup: bool,
    /// Start, ns since the job's start instant.
    pub t_start_ns: u64,
    /// End, ns since the job's start instant.
    pub t_end_ns: u64,
    /// Latency histogram (ns), HdrHistogram V2 compressed; empty when no samples.
    pub latency: Vec<u8>,
    /// Counters.
    pub counters: Counters,
}
