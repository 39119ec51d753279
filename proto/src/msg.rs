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
pub const PROTO_VERSION: u32 = 2;

/// Length of handshake nonces and proofs.
pub const NONCE_LEN: usize = 32;

/// One control message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Msg {
    /// Worker -> coordinator, first frame: its protocol version and a fresh nonce.
    Challenge {
        /// Worker's protocol version.
        proto_version: u32,
        /// Fresh random nonce.
        nonce: [u8; NONCE_LEN],
    },
    /// Coordinator -> worker: its own fresh nonce; nothing derived from the token
    /// until the worker has proved itself.
    Auth {
        /// Coordinator's protocol version.
        proto_version: u32,
        /// Coordinator's fresh random nonce.
        nonce: [u8; NONCE_LEN],
    },
    /// Worker -> coordinator: who it is, and its proof over both nonces and that
    /// description (`auth::worker_proof`).
    Hello {
        /// What the worker knows about its node and datapath.
        info: WorkerInfo,
        /// HMAC-SHA256(token, "worker to coordinator" | nonce_w | nonce_c | SHA-256(info)).
        proof: [u8; NONCE_LEN],
    },
    /// Coordinator -> worker: the worker's proof is good, and the coordinator's
    /// own (`auth::coordinator_proof`); every later frame is authenticated.
    Welcome {
        /// HMAC-SHA256(token, "coordinator to worker" | nonce_w | nonce_c | worker's proof).
        proof: [u8; NONCE_LEN],
    },
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
        /// DER certificate the server presents (QUIC), empty otherwise; the
        /// coordinator hands it to the clients, which trust exactly this one.
        cert: Vec<u8>,
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
    /// Worker -> coordinator: CPU use in the idle window between `Start` and the
    /// start instant, before this job's traffic (the baseline to subtract).
    Baseline {
        /// Job id.
        job: u64,
        /// CPU use in the window.
        cpu: CpuUsage,
        /// Datapath health counters in the window.
        #[serde(default)]
        health: Option<Box<HealthCounters>>,
    },
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
    /// Kernel boot id: workers with the same one share a machine (and its clock
    /// and node CPU counters).
    pub boot_id: Option<String>,
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
    /// Certificate the server reported in `Ready` (QUIC), for the client to trust.
    pub server_cert: Vec<u8>,
    /// Receivers of timestamped datagrams: this worker's clock minus the
    /// sender's, as the coordinator estimates it (0 when both share a clock).
    pub clock_correction_ns: i64,
    /// Data-plane addresses of the run's workers: without an operator allow-list,
    /// a client only sends to these. Servers: those of the job's clients, the
    /// only sources a udp-rr server answers (empty: any, as behind a Service).
    pub peers: Vec<IpAddr>,
    /// Clients: this worker's place among the scenario's `clients` client
    /// workers (0-based), so that their pacers interleave instead of sending in
    /// lockstep ([`crate::pacing::Slot`]); 0 for servers.
    pub client_index: u32,
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
    /// Requests a client sent (request/response kinds; datagrams for
    /// udp-stream): what its keeping up with a rate is judged against.
    pub attempts: u64,
    /// Of the attempts, those that failed (an error status, a failed connection,
    /// no answer within `timeout`); each is counted in `errors` by kind too.
    pub failed: u64,
    /// Attempts still in flight when the job stopped: neither completed nor
    /// failed.
    pub unfinished: u64,
    /// Connections established.
    pub connections: u64,
    /// Failures by kind (`connect-refused`, `reset`, `timeout`, `http-5xx`, ...).
    pub errors: BTreeMap<String, u64>,
    /// HTTP responses by status class (`2xx`, `3xx`, `4xx`, `5xx`).
    pub status: BTreeMap<String, u64>,
    /// Histogram samples above the highest trackable value (100 s), recorded
    /// as that value.
    pub clamped: u64,
}

impl Counters {
    /// Add another interval's counters to these.
    pub fn add(&mut self, o: &Counters) {
        self.bytes_sent += o.bytes_sent;
        self.bytes_received += o.bytes_received;
        self.transactions += o.transactions;
        self.attempts += o.attempts;
        self.failed += o.failed;
        self.unfinished += o.unfinished;
        self.connections += o.connections;
        for (k, v) in &o.errors {
            *self.errors.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &o.status {
            *self.status.entry(k.clone()).or_default() += v;
        }
        self.clamped += o.clamped;
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
    /// In open loop it is measured from the intended send time.
    pub latency: Vec<u8>,
    /// Service time (from the actual send), open loop only; empty otherwise.
    pub service: Vec<u8>,
    /// UDP receivers: one-way transit per datagram, receive time (this worker's
    /// clock) minus send time (the sender's clock) minus `Job::clock_correction_ns`;
    /// empty otherwise. Samples that come out negative are counted in
    /// `UdpStats::transit_negative`, not recorded.
    pub transit: Vec<u8>,
    /// Open loop, clients: how late each send left after it could have (its
    /// intended time, or when its connection came free if later), ns; empty
    /// otherwise.
    pub send_lag: Vec<u8>,
    /// Counters.
    pub counters: Counters,
    /// How well the client kept its open-loop schedule.
    pub schedule: ScheduleStats,
    /// Datagram accounting at a UDP receiver.
    pub udp: Option<UdpStats>,
    /// CPU use during the interval.
    pub cpu: Option<CpuUsage>,
    /// Datapath health counters during the interval (this worker's network
    /// namespace and node).
    #[serde(default)]
    /// (Boxed: most messages are far smaller.)
    pub health: Option<Box<HealthCounters>>,
}

/// Open-loop schedule keeping of one interval (all zero in closed loop).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ScheduleStats {
    /// Operations whose intended time came: those the lanes reached in this
    /// interval, and in a job's last one also those due by its end that were
    /// never sent (`unsent`).
    pub intended: u64,
    /// Of those, due while the connection still waited for the previous response
    /// (queueing caused by the server or network: latency counts from the
    /// intended time); the unsent ones among them.
    pub queued: u64,
    /// Of those, sent more than the lag bound after their time although the
    /// connection was free: the generator itself fell behind.
    pub late: u64,
    /// Largest such generator lag, ns.
    pub max_lag_ns: u64,
    /// Due by the end of the job but never sent: their lane was still busy
    /// (waiting for a response, or reconnecting) when the job stopped.
    pub unsent: u64,
}

impl ScheduleStats {
    /// Add another interval's stats.
    pub fn add(&mut self, o: &ScheduleStats) {
        self.intended += o.intended;
        self.queued += o.queued;
        self.late += o.late;
        self.max_lag_ns = self.max_lag_ns.max(o.max_lag_ns);
        self.unsent += o.unsent;
    }
}

/// Datagrams seen by a receiver in one interval (the quantities iperf3 reports).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct UdpStats {
    /// Datagrams received (excluding duplicates).
    pub received: u64,
    /// Datagrams missing (sequence gaps; a late arrival is taken back out).
    pub lost: u64,
    /// Datagrams that arrived after a higher sequence number.
    pub reordered: u64,
    /// Datagrams received more than once.
    pub duplicates: u64,
    /// RFC 3550 interarrival jitter at the end of the interval, ns: each
    /// sender's at its last datagram in the interval, averaged over the senders
    /// that sent in it (`flows`), as iperf3 averages its streams'; `None`
    /// before a sender's second datagram.
    pub jitter_ns: Option<u64>,
    /// Senders whose jitter `jitter_ns` averages.
    pub flows: u32,
    /// Datagrams whose clock-corrected transit came out negative (a sign that
    /// the clock correction is off).
    pub transit_negative: u64,
}

impl UdpStats {
    /// Add another receiver's or interval's counts; jitter is averaged over
    /// both's senders.
    pub fn add(&mut self, o: &UdpStats) {
        self.received += o.received;
        self.lost += o.lost;
        self.reordered += o.reordered;
        self.duplicates += o.duplicates;
        self.transit_negative += o.transit_negative;
        self.jitter_ns = match (self.jitter_ns, o.jitter_ns) {
            (Some(a), Some(b)) => {
                let (fa, fb) = (u64::from(self.flows.max(1)), u64::from(o.flows.max(1)));
                Some((a.saturating_mul(fa) + b.saturating_mul(fb)) / (fa + fb))
            }
            (a, b) => a.or(b),
        };
        self.flows += o.flows;
    }
}

/// CPU time used during a window, ns; cores used = time / window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CpuUsage {
    /// Length of the window, ns.
    pub window_ns: u64,
    /// Node-wide, from /proc/stat.
    pub node: Option<NodeCpu>,
    /// This worker process (user + system).
    pub process_ns: Option<u64>,
    /// Of it, user time: the load generator's own work, as opposed to the
    /// kernel's network work on its behalf.
    #[serde(default)]
    pub process_user_ns: Option<u64>,
    /// The worker's cgroup (cpu.stat usage), when present.
    pub cgroup_ns: Option<u64>,
    /// Clients: the busiest of the threads that send (lane threads, paced UDP
    /// senders), user + system; `None` without such threads. One thread near a
    /// whole core cannot send any faster, however idle the others are.
    pub busiest_sender_ns: Option<u64>,
}

/// Node-wide CPU time by state, summed over CPUs, ns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NodeCpu {
    /// User (including nice).
    pub user_ns: u64,
    /// System.
    pub system_ns: u64,
    /// Software interrupts (much of the network datapath).
    pub softirq_ns: u64,
    /// Hardware interrupts.
    pub irq_ns: u64,
    /// Stolen by the hypervisor.
    pub steal_ns: u64,
    /// Idle (including iowait).
    pub idle_ns: u64,
}

/// Datapath health counters over a window at one worker: differences of the
/// kernel's cumulative counters, except the conntrack fill (`conntrack_entries`,
/// `conntrack_max`), read at the window's end. `None` is "not available" here
/// (no such file in this kernel or namespace), never 0.
///
/// All but softnet are per network namespace (`netns`): workers in one
/// namespace read the same counters; softnet is per machine (`boot_id`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HealthCounters {
    /// Network namespace the counters come from (`net:[inode]`).
    pub netns: Option<String>,
    /// The data interface whose statistics `if_*` are.
    pub interface: Option<String>,
    /// TCP segments sent (`/proc/net/snmp` Tcp OutSegs).
    pub tcp_out_segs: Option<u64>,
    /// TCP segments retransmitted (Tcp RetransSegs).
    pub tcp_retrans_segs: Option<u64>,
    /// Retransmission timeouts (`/proc/net/netstat` TcpExt TCPTimeouts).
    pub tcp_timeouts: Option<u64>,
    /// Retransmissions lost again (TCPLostRetransmit).
    pub tcp_lost_retransmit: Option<u64>,
    /// SYN retransmissions (TCPSynRetrans).
    pub tcp_syn_retrans: Option<u64>,
    /// Accept queue overflows (ListenOverflows).
    pub tcp_listen_overflows: Option<u64>,
    /// SYNs dropped at a listener (ListenDrops).
    pub tcp_listen_drops: Option<u64>,
    /// UDP datagrams not delivered to a socket (Udp InErrors).
    pub udp_in_errors: Option<u64>,
    /// Of those, dropped because a socket's receive buffer was full (Udp
    /// RcvbufErrors): local drops, not path loss.
    pub udp_rcvbuf_errors: Option<u64>,
    /// Datagrams not sent for lack of send buffer (Udp SndbufErrors).
    pub udp_sndbuf_errors: Option<u64>,
    /// Conntrack entries at the end (`nf_conntrack_count`).
    pub conntrack_entries: Option<u64>,
    /// Conntrack table size (`nf_conntrack_max`).
    pub conntrack_max: Option<u64>,
    /// Conntrack insertions that failed (`/proc/net/stat/nf_conntrack`).
    pub conntrack_insert_failed: Option<u64>,
    /// Packets conntrack dropped (table full, no entry could be made).
    pub conntrack_drop: Option<u64>,
    /// Entries evicted early to make room.
    pub conntrack_early_drop: Option<u64>,
    /// Data interface packets received (`/sys/class/net/IF/statistics`).
    pub if_rx_packets: Option<u64>,
    /// Data interface packets sent.
    pub if_tx_packets: Option<u64>,
    /// Data interface receive drops.
    pub if_rx_dropped: Option<u64>,
    /// Data interface send drops.
    pub if_tx_dropped: Option<u64>,
    /// Data interface receive errors.
    pub if_rx_errors: Option<u64>,
    /// Data interface send errors.
    pub if_tx_errors: Option<u64>,
    /// Packets the softnet backlog dropped, all CPUs (`/proc/net/softnet_stat`).
    pub softnet_dropped: Option<u64>,
    /// Times the receive softirq ran out of budget with work left.
    pub softnet_squeezed: Option<u64>,
    /// Clients: retransmissions of this job's own TCP connections in the
    /// window (`TCP_INFO` tcpi_total_retrans), unpolluted by other traffic.
    pub sock_retrans: Option<u64>,
    /// Clients: smoothed RTT of this job's own TCP connections at the end of
    /// the window (`TCP_INFO` tcpi_rtt), the mean over them, µs.
    pub sock_rtt_us: Option<u64>,
}
