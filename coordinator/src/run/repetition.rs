//! One repetition as a state machine without I/O, in the manner of quinn-proto.
//! The driver feeds it what workers say ([`Repetition::handle_event`]), failed
//! sends, the end of a wait and interrupts, and asks it what to do next
//! ([`Repetition::poll`], given the current time): send this message to that
//! worker, wait for events until this instant, or finished. Tests drive whole
//! repetitions with synthetic events, without sockets or clocks.
//!
//! The phases, in order, each a wait with a deadline:
//! - "server prepare": the servers bind and report their ports (`Ready`);
//! - "client prepare": each client learns its server (client i goes to server i
//!   mod M) and the certificate to trust, and reports `Ready`;
//! - "client run": everyone is told to start at one instant, [`START_LEAD`] from
//!   now, translated into each worker's clock; the wait ends with the clients'
//!   `Done`;
//! - "server stop": the servers are stopped (and the clients too after a
//!   failure); the wait ends with the `Done` of the servers still connected.
//!
//! A worker's `Failed`, a `Reject`, the loss of one of this repetition's workers,
//! the deadline or an interrupt ends the phase and is recorded as a failure; after
//! a failure no traffic is started, but the stop phase still runs, so that what
//! was measured arrives and the run goes on with what is left.

use super::placement::{Placement, rate_share};
use crate::link::Event;
use crate::result::{Collected, JobData};
use cnibench_proto::clock::ClockEstimate;
use cnibench_proto::msg::{IntervalReport, Job, Msg, Role, WorkerInfo};
use cnibench_proto::plan::{NodeportVia, PathKind, ScenarioSpec};
use std::collections::{HashSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::time::Duration;
use tokio::time::Instant;

/// Time between the `Start` message and the start instant: covers sending it to
/// all, and is the idle window whose CPU use is the baseline.
const START_LEAD: Duration = Duration::from_millis(500);
/// How long a worker may take to prepare a job.
const PREPARE_TIMEOUT: Duration = Duration::from_secs(10);
/// Slack past a client's expected end before it is declared lost.
const FINISH_SLACK: Duration = Duration::from_secs(5);

/// The run's workers as a repetition sees them, by index. The connections answer
/// in the run; tests answer from a table.
pub(super) trait Workers {
    /// Control address as given.
    fn addr(&self, w: usize) -> &str;
    /// What the worker said in `Hello`.
    fn info(&self, w: usize) -> &WorkerInfo;
    /// The current estimate of its clock offset (it improves as the run goes on).
    fn clock(&self, w: usize) -> Option<ClockEstimate>;
    /// Data-plane addresses of every worker: a client's peers.
    fn data_ips(&self) -> Vec<IpAddr>;
}

/// The time on both clocks the machine reads.
#[derive(Debug, Clone, Copy)]
pub(super) struct Now {
    /// Monotonic, for deadlines.
    pub instant: Instant,
    /// Wall clock (unix ns), for the start instant.
    pub unix_ns: i64,
}

/// What the driver does next.
#[derive(Debug, PartialEq)]
#[allow(clippy::large_enum_variant)] // returned by value and used at once; a Box would allocate per send
pub(super) enum Action {
    /// Send this message to this worker (and report an error with
    /// [`Repetition::send_failed`]).
    Send(usize, Msg),
    /// Wait for events until this deadline (then [`Repetition::handle_timeout`]).
    Wait(Instant),
    /// Nothing more to send or wait for: [`Repetition::finish`].
    Finished,
}

/// Something the driver shows as progress.
#[derive(Debug, PartialEq)]
pub(super) enum Notice<'a> {
    /// An interval report of one of this repetition's jobs arrived.
    Interval(Role, &'a IntervalReport),
    /// This worker's connection is gone.
    Lost(usize),
}

/// Where a repetition is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// Servers bind and report their ports.
    ServerPrepare,
    /// Clients learn their targets and get ready.
    ClientPrepare,
    /// Everyone started; waiting for the clients to finish.
    ClientRun,
    /// Servers told to stop; waiting for their last reports.
    ServerStop,
    /// Over.
    Finished,
}

impl Phase {
    /// The name failures use.
    pub fn name(self) -> &'static str {
        match self {
            Phase::ServerPrepare => "server prepare",
            Phase::ClientPrepare => "client prepare",
            Phase::ClientRun => "client run",
            Phase::ServerStop => "server stop",
            Phase::Finished => "finished",
        }
    }
}

/// One repetition of a scenario on its placement.
pub(super) struct Repetition<'a, W: ?Sized> {
    spec: &'a ScenarioSpec,
    placement: &'a Placement,
    workers: &'a W,
    /// `keys[i]` = (worker, job id) of `c.jobs[i]`; the first `servers` entries
    /// are the servers, the rest the clients.
    keys: Vec<(usize, u64)>,
    servers: usize,
    /// What each job's `Ready` said: port and certificate.
    ready: Vec<Option<(u16, Vec<u8>)>>,
    c: Collected,
    /// Workers whose connection is gone, in this and earlier repetitions.
    dead: HashSet<usize>,
    phase: Phase,
    /// The current phase's wait was cut short (a failure, the deadline, an
    /// interrupt, no more events).
    cut: bool,
    /// The end of the current phase's wait; set when the wait begins, after the
    /// phase's messages are sent.
    deadline: Option<Instant>,
    outbox: VecDeque<(usize, Msg)>,
}

impl<'a, W: Workers + ?Sized> Repetition<'a, W> {
    /// Set up a repetition of `spec` on placement `p`, numbering its jobs from
    /// `last_job + 1` on (servers first, then clients), and queue the servers'
    /// `Prepare`. `dead` are the workers lost earlier in the run: a repetition
    /// that needs one fails at once.
    pub fn new(
        spec: &'a ScenarioSpec,
        p: &'a Placement,
        last_job: &mut u64,
        workers: &'a W,
        dead: HashSet<usize>,
    ) -> Self {
        let keys: Vec<(usize, u64)> = p
            .servers
            .iter()
            .chain(&p.clients)
            .map(|&w| {
                *last_job += 1;
                (w, *last_job)
            })
            .collect();
        let servers = p.servers.len();
        let jobs = keys
            .iter()
            .enumerate()
            .map(|(i, &(w, _))| JobData {
                role: if i < servers {
                    Role::Server
                } else {
                    Role::Client
                },
                worker: workers.addr(w).to_string(),
                reports: Vec::new(),
                done: None,
                baseline: None,
                baseline_health: None,
                machine: workers.info(w).boot_id.clone(),
                cpus: workers.info(w).cpus,
                clock: workers.clock(w),
            })
            .collect();
        let mut rep = Repetition {
            spec,
            placement: p,
            workers,
            ready: vec![None; keys.len()],
            keys,
            servers,
            c: Collected {
                jobs,
                failures: Vec::new(),
            },
            dead,
            phase: Phase::ServerPrepare,
            cut: false,
            deadline: None,
            outbox: VecDeque::new(),
        };
        if let Some(&(w, _)) = rep.keys.iter().find(|k| rep.dead.contains(&k.0)) {
            rep.c.failures.push(format!(
                "worker {} was lost earlier in the run",
                workers.addr(w)
            ));
            rep.phase = Phase::Finished;
            return rep;
        }
        // A client with nowhere to send fails the scenario before anything
        // is prepared, saying why (not a client silently left out).
        if let Err(why) = rep.client_targets() {
            rep.c
                .failures
                .push(format!("scenario `{}`: {why}", spec.name));
            rep.phase = Phase::Finished;
            return rep;
        }
        rep.queue_server_prepares();
        rep
    }

    /// Whether every client's target behind a Service can be worked out.
    fn client_targets(&self) -> Result<(), String> {
        if self.spec.target.is_some() || !self.spec.via_service() {
            return Ok(());
        }
        for (n, i) in self.clients().enumerate() {
            let w = self.keys[i].0;
            let server = self.placement.server_of(n).map(|s| self.keys[s].0);
            self.service_target(w, server).map_err(|why| {
                format!(
                    "client worker {} has no target: {why}",
                    self.workers.addr(w)
                )
            })?;
        }
        Ok(())
    }

    /// What to do next at `now`: a message to send, a wait, or the end. Moves
    /// to the next phase when the current one's wait is over.
    pub fn poll(&mut self, now: Now) -> Action {
        loop {
            while let Some((w, m)) = self.outbox.pop_front() {
                // Earlier sends may have found this worker gone.
                if !self.dead.contains(&w) {
                    return Action::Send(w, m);
                }
            }
            if self.phase == Phase::Finished {
                return Action::Finished;
            }
            if !self.cut && !self.phase_done() {
                let len = self.phase_len();
                return Action::Wait(*self.deadline.get_or_insert(now.instant + len));
            }
            self.advance(now);
        }
    }

    /// Sending to worker `w` failed: its connection is gone.
    pub fn send_failed(&mut self, w: usize, error: String) {
        self.dead.insert(w);
        self.c.failures.push(error);
    }

    /// Worker `w` said something, or its connection was lost.
    pub fn handle_event(&mut self, w: usize, ev: Event) -> Option<Notice<'_>> {
        let workers = self.workers;
        let addr = workers.addr(w);
        let m = match ev {
            Event::Lost(why) => {
                self.dead.insert(w);
                if self.keys.iter().any(|k| k.0 == w) {
                    self.fail(format!("worker {addr} lost: {why}"));
                }
                return Some(Notice::Lost(w));
            }
            Event::Msg(m) => m,
        };
        let job_of = |id: u64| self.keys.iter().position(|&k| k == (w, id));
        match m {
            Msg::Ready { job, port, cert } => {
                if let Some(i) = job_of(job) {
                    self.ready[i] = Some((port, cert));
                }
            }
            Msg::Interval(r) => {
                if let Some(i) = job_of(r.job) {
                    let job = &mut self.c.jobs[i];
                    job.reports.push(r);
                    return job.reports.last().map(|r| Notice::Interval(job.role, r));
                }
            }
            Msg::Baseline { job, cpu, health } => {
                if let Some(i) = job_of(job) {
                    self.c.jobs[i].baseline = Some(cpu);
                    self.c.jobs[i].baseline_health = health;
                }
            }
            Msg::Done { job, intervals } => {
                if let Some(i) = job_of(job) {
                    self.c.jobs[i].done = Some(intervals);
                }
            }
            Msg::Failed { job, error } if job_of(job).is_some() => {
                self.fail(format!("worker {addr}: {error}"));
            }
            Msg::Reject { reason } => {
                self.dead.insert(w);
                self.fail(format!("worker {addr} closed the session: {reason}"));
            }
            _ => {}
        }
        None
    }

    /// The wait's deadline passed.
    pub fn handle_timeout(&mut self) {
        self.fail(format!("{}: timed out", self.phase.name()));
    }

    /// The run was interrupted.
    pub fn handle_interrupt(&mut self) {
        self.fail("interrupted".into());
    }

    /// No more events can arrive: stop waiting in this phase (what is missing
    /// shows in the result).
    pub fn handle_closed(&mut self) {
        self.cut = true;
    }

    /// What arrived and what failed, and the workers now known to be gone.
    pub fn finish(self) -> (Collected, HashSet<usize>) {
        (self.c, self.dead)
    }

    fn fail(&mut self, why: String) {
        self.c.failures.push(why);
        self.cut = true;
    }

    fn failed(&self) -> bool {
        !self.c.failures.is_empty()
    }

    fn clients(&self) -> Range<usize> {
        self.servers..self.keys.len()
    }

    fn servers_ready(&self) -> bool {
        self.ready[..self.servers].iter().all(Option::is_some)
    }

    /// Whether the current phase has what it waits for.
    fn phase_done(&self) -> bool {
        match self.phase {
            Phase::ServerPrepare => self.servers_ready(),
            Phase::ClientPrepare => self.clients().all(|i| self.ready[i].is_some()),
            Phase::ClientRun => self.clients().all(|i| self.c.jobs[i].done.is_some()),
            // Dead servers send nothing more: do not wait for them.
            Phase::ServerStop => (0..self.servers)
                .filter(|&i| !self.dead.contains(&self.keys[i].0))
                .all(|i| self.c.jobs[i].done.is_some()),
            Phase::Finished => true,
        }
    }

    fn phase_len(&self) -> Duration {
        match self.phase {
            Phase::ServerPrepare | Phase::ClientPrepare => PREPARE_TIMEOUT,
            Phase::ClientRun => {
                START_LEAD + self.spec.warmup.0 + self.spec.duration.0 + FINISH_SLACK
            }
            Phase::ServerStop | Phase::Finished => FINISH_SLACK,
        }
    }

    /// The current phase's wait is over: queue what the next one sends.
    fn advance(&mut self, now: Now) {
        self.phase = match self.phase {
            Phase::ServerPrepare if !self.failed() && self.servers_ready() => {
                self.queue_client_prepares();
                Phase::ClientPrepare
            }
            Phase::ServerPrepare | Phase::ClientPrepare if !self.failed() => {
                self.queue_start(now.unix_ns);
                Phase::ClientRun
            }
            Phase::ServerPrepare | Phase::ClientPrepare | Phase::ClientRun => {
                self.queue_stops();
                Phase::ServerStop
            }
            Phase::ServerStop | Phase::Finished => Phase::Finished,
        };
        self.cut = false;
        self.deadline = None;
    }

    /// Servers bind first. A server receiving timestamped datagrams corrects
    /// for the first client's clock.
    fn queue_server_prepares(&mut self) {
        let first_client = self.keys.get(self.servers).map(|k| k.0);
        // A server's peers are its clients, the only sources a udp-rr server
        // answers; behind a Service sources are translated: none (any).
        let clients: Vec<IpAddr> = if self.spec.via_service() {
            Vec::new()
        } else {
            self.clients()
                .map(|i| self.workers.info(self.keys[i].0).data_ip)
                .collect()
        };
        for &(w, id) in &self.keys[..self.servers] {
            let job = Job {
                id,
                role: Role::Server,
                scenario: self.spec.clone(),
                target: None,
                server_cert: Vec::new(),
                clock_correction_ns: first_client.map_or(0, |c| self.clock_correction(w, c)),
                peers: clients.clone(),
                client_index: 0,
            };
            self.outbox.push_back((w, Msg::Prepare(job)));
        }
    }

    /// Clients learn where to go (and which certificate to trust), each with its
    /// share of the rate and its place among the clients.
    fn queue_client_prepares(&mut self) {
        let share = ScenarioSpec {
            rate: rate_share(self.spec.rate, self.spec.clients),
            ..self.spec.clone()
        };
        let mut peers = self.workers.data_ips();
        if self.spec.path == PathKind::PodToNodeport {
            // Clients send to node addresses: the nodes of the run's workers.
            peers.extend(self.node_ips());
        }
        // Behind a Service a client may reach any server: it trusts them all
        // (QUIC; DER certificates one after another).
        let all_certs: Vec<u8> = (0..self.servers)
            .filter_map(|s| self.ready[s].as_ref())
            .flat_map(|(_, cert)| cert.iter().copied())
            .collect();
        for (n, i) in self.clients().enumerate() {
            let (w, id) = self.keys[i];
            let (target, cert) = match self.spec.target {
                Some(external) => (external, Vec::new()),
                None if self.spec.via_service() => {
                    let server = self.placement.server_of(n).map(|s| self.keys[s].0);
                    // Checked in `new`: a repetition without one fails there.
                    let Ok(target) = self.service_target(w, server) else {
                        continue;
                    };
                    (target, all_certs.clone())
                }
                None => {
                    let Some(s) = self.placement.server_of(n) else {
                        continue;
                    };
                    let Some((port, cert)) = self.ready[s].clone() else {
                        continue;
                    };
                    let ip = self.workers.info(self.keys[s].0).data_ip;
                    (SocketAddr::new(ip, port), cert)
                }
            };
            let job = Job {
                id,
                role: Role::Client,
                scenario: share.clone(),
                target: Some(target),
                server_cert: cert,
                clock_correction_ns: 0,
                peers: peers.clone(),
                // Its place among the clients, for pacers that interleave.
                client_index: n as u32,
            };
            self.outbox.push_back((w, Msg::Prepare(job)));
        }
    }

    /// The node address of worker `w`: its host IP when it reports one (a pod
    /// worker), else its data IP (a hostNetwork worker).
    fn node_ip(&self, w: usize) -> IpAddr {
        let info = self.workers.info(w);
        info.host_ip.unwrap_or(info.data_ip)
    }

    fn node_ips(&self) -> Vec<IpAddr> {
        (0..self.keys.len())
            .map(|k| self.node_ip(self.keys[k].0))
            .collect()
    }

    /// Where client worker `client` sends behind a Service: the ClusterIP, or a
    /// node's address at the NodePort (the node of its `server`, or another
    /// one: its own when it is not the server's, else any other worker's).
    fn service_target(&self, client: usize, server: Option<usize>) -> Result<SocketAddr, String> {
        match self.spec.path {
            PathKind::PodToService => {
                let svc = self
                    .spec
                    .service
                    .as_ref()
                    .ok_or("the plan names no `service:`")?;
                svc.addr().ok_or_else(|| match &svc.name {
                    Some(name) => format!(
                        "service `dns:{name}:{}` was never resolved to an address",
                        svc.port
                    ),
                    None => "the service has no address".into(),
                })
            }
            PathKind::PodToNodeport => {
                let np = self.spec.nodeport.ok_or("the plan names no `nodeport:`")?;
                let port = u16::try_from(np.port)
                    .map_err(|_| format!("nodeport {} is out of range (1..=65535)", np.port))?;
                let server = server.ok_or("no server (endpoint) to reach")?;
                let server_node = &self.workers.info(server).node;
                let ip = match np.via {
                    NodeportVia::ServerNode => self.node_ip(server),
                    NodeportVia::OtherNode => {
                        let other = std::iter::once(client)
                            .chain(self.keys.iter().map(|k| k.0))
                            .find(|&w| &self.workers.info(w).node != server_node)
                            .ok_or_else(|| {
                                format!(
                                    "`nodeport_via: other-node` needs a worker on another node than the server's (`{server_node}`), and every worker of the scenario is on it"
                                )
                            })?;
                        self.node_ip(other)
                    }
                };
                Ok(SocketAddr::new(ip, port))
            }
            other => Err(format!("path {other} has no service target")),
        }
    }

    /// Everyone starts [`START_LEAD`] from now, each in its own clock.
    fn queue_start(&mut self, unix_now_ns: i64) {
        let at = unix_now_ns + START_LEAD.as_nanos() as i64;
        for &(w, job) in &self.keys {
            let offset = self.workers.clock(w).map_or(0, |c| c.offset_ns);
            let at_unix_ns = at + offset;
            self.outbox.push_back((w, Msg::Start { job, at_unix_ns }));
        }
    }

    /// Stop the servers (and the clients, if they may still run after a failure).
    fn queue_stops(&mut self) {
        let stops = if self.failed() {
            &self.keys[..]
        } else {
            &self.keys[..self.servers]
        };
        for &(w, job) in stops {
            self.outbox.push_back((w, Msg::Stop { job }));
        }
    }

    /// Receiver clock minus sender clock for one-way delay: 0 on one kernel.
    fn clock_correction(&self, receiver: usize, sender: usize) -> i64 {
        let (r, s) = (self.workers.info(receiver), self.workers.info(sender));
        if r.boot_id.is_some() && r.boot_id == s.boot_id {
            return 0;
        }
        let off = |w: usize| self.workers.clock(w).map_or(0, |c| c.offset_ns);
        off(receiver) - off(sender)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use cnibench_proto::msg::Counters;
    use cnibench_proto::plan;
    use cnibench_proto::units::Rate;

    /// Workers `w0`, `w1`, ... on the given nodes: data IP 10.0.0.(i+1), one
    /// machine per node, clock offset (i+1) µs.
    struct Table(Vec<(String, WorkerInfo)>);

    fn table(nodes: &[&str]) -> Table {
        let worker = |(i, node): (usize, &&str)| {
            let info = WorkerInfo {
                version: "0".into(),
                node: node.to_string(),
                pod_ip: None,
                host_ip: None,
                data_ip: IpAddr::from([10, 0, 0, i as u8 + 1]),
                cni: "c".into(),
                cni_mode: None,
                mtu: None,
                kernel: String::new(),
                cpu_model: String::new(),
                cpus: 4,
                boot_id: Some(format!("boot-{node}")),
            };
            (format!("w{i}"), info)
        };
        Table(nodes.iter().enumerate().map(worker).collect())
    }

    impl Workers for Table {
        fn addr(&self, w: usize) -> &str {
            &self.0[w].0
        }
        fn info(&self, w: usize) -> &WorkerInfo {
            &self.0[w].1
        }
        fn clock(&self, w: usize) -> Option<ClockEstimate> {
            Some(ClockEstimate {
                offset_ns: (w as i64 + 1) * 1000,
                bound_ns: 10,
                rtt_ns: 20,
                samples: 8,
            })
        }
        fn data_ips(&self) -> Vec<IpAddr> {
            self.0.iter().map(|(_, i)| i.data_ip).collect()
        }
    }

    fn spec(fields: &str) -> ScenarioSpec {
        let text = format!(
            "name: t\ndefaults: {{duration: 2s, warmup: 1s, interval: 1s}}\n\
             scenarios:\n  - {{name: s, {fields}}}\n"
        );
        plan::load("t.yaml", &text).unwrap().scenarios.remove(0)
    }

    /// Two clients on node a (workers 0 and 2), one server on node b (worker 1).
    fn two_to_one() -> (ScenarioSpec, Placement, Table) {
        let spec = spec(
            "traffic: tcp-rr, path: pod-to-pod-cross-node, clients: 2, servers: 1, rate: 1000/s",
        );
        let p = Placement {
            clients: vec![0, 2],
            servers: vec![1],
        };
        (spec, p, table(&["a", "b", "a"]))
    }

    const UNIX0: i64 = 1_700_000_000_000_000_000;

    /// `ms` milliseconds into the test, on both clocks.
    fn at(t0: Instant, ms: u64) -> Now {
        Now {
            instant: t0 + Duration::from_millis(ms),
            unix_ns: UNIX0 + ms as i64 * 1_000_000,
        }
    }

    /// What the repetition sends before it waits or finishes, and then which.
    fn step<W: Workers + ?Sized>(rep: &mut Repetition<'_, W>, now: Now) -> (Vec<String>, Action) {
        let mut sent = Vec::new();
        loop {
            match rep.poll(now) {
                Action::Send(w, m) => sent.push(brief(w, &m)),
                other => return (sent, other),
            }
        }
    }

    fn brief(w: usize, m: &Msg) -> String {
        match m {
            Msg::Prepare(job) => format!("w{w} prepare {}", job.id),
            Msg::Start { job, .. } => format!("w{w} start {job}"),
            Msg::Stop { job } => format!("w{w} stop {job}"),
            m => format!("w{w} {m:?}"),
        }
    }

    fn msg(m: Msg) -> Event {
        Event::Msg(m)
    }

    fn ready(job: u64, port: u16) -> Event {
        msg(Msg::Ready {
            job,
            port,
            cert: vec![port as u8],
        })
    }

    fn done(job: u64) -> Event {
        msg(Msg::Done { job, intervals: 1 })
    }

    fn interval(job: u64, seq: u32) -> IntervalReport {
        IntervalReport {
            job,
            seq,
            warmup: false,
            t_start_ns: 0,
            t_end_ns: 1_000_000_000,
            latency: Vec::new(),
            service: Vec::new(),
            transit: Vec::new(),
            send_lag: Vec::new(),
            counters: Counters::default(),
            schedule: Default::default(),
            udp: None,
            cpu: None,
            health: None,
        }
    }

    fn wait(ms: u64, t0: Instant) -> Action {
        Action::Wait(t0 + Duration::from_millis(ms))
    }

    /// The client jobs `spec` prepares with `p` once every server is ready
    /// (server k on port 5000 + k, its certificate the byte k).
    fn client_jobs(spec: &ScenarioSpec, p: &Placement, workers: &Table) -> Vec<(usize, Job)> {
        let mut last_job = 1;
        let mut rep = Repetition::new(spec, p, &mut last_job, workers, HashSet::new());
        let t0 = Instant::now();
        let _ = step(&mut rep, at(t0, 0));
        for (k, &w) in p.servers.iter().enumerate() {
            rep.handle_event(w, ready(2 + k as u64, 5000 + k as u16));
        }
        let mut jobs = Vec::new();
        while let Action::Send(w, Msg::Prepare(job)) = rep.poll(at(t0, 100)) {
            jobs.push((w, job));
        }
        jobs
    }

    #[test]
    fn behind_a_service_clients_send_to_it_and_trust_every_server() {
        // Client worker 0 on node a; endpoints 1 (node b) and 2 (node a).
        let spec =
            spec("traffic: quic-rr, path: pod-to-service, service: 10.96.0.10:80, servers: 2");
        let p = Placement {
            clients: vec![0],
            servers: vec![1, 2],
        };
        let jobs = client_jobs(&spec, &p, &table(&["a", "b", "a"]));
        assert_eq!(jobs.len(), 1);
        let (w, job) = &jobs[0];
        assert_eq!(*w, 0);
        assert_eq!(job.target, Some("10.96.0.10:80".parse().unwrap()));
        // 5000 and 5001 as bytes: each server's certificate.
        assert_eq!(job.server_cert, [0x88, 0x89]);

        // A NodePort: the server's node, or another node (the client's own).
        let mut workers = table(&["a", "b"]);
        workers.0[0].1.host_ip = Some("172.31.255.1".parse().unwrap());
        workers.0[1].1.host_ip = Some("172.31.255.2".parse().unwrap());
        let p = Placement {
            clients: vec![0],
            servers: vec![1],
        };
        for (via, want) in [
            ("server-node", "172.31.255.2:30080"),
            ("other-node", "172.31.255.1:30080"),
        ] {
            let np = super::tests::spec(&format!(
                "traffic: tcp-crr, path: pod-to-nodeport, nodeport: 30080, nodeport_via: {via}"
            ));
            let jobs = client_jobs(&np, &p, &workers);
            let job = &jobs[0].1;
            assert_eq!(job.target, Some(want.parse().unwrap()), "{via}");
            // The nodes' addresses are peers: the default allow-list admits them.
            assert!(job.peers.contains(&"172.31.255.2".parse().unwrap()));
        }
    }

    /// A client whose target behind a Service cannot be worked out fails the
    /// repetition before anything is sent, naming the scenario and why (it was
    /// silently left unprepared).
    #[test]
    fn a_client_without_a_target_fails_the_scenario_at_once() {
        let t0 = Instant::now();
        let fails = |spec: &ScenarioSpec, p: &Placement, workers: &Table| {
            let mut rep = Repetition::new(spec, p, &mut 1, workers, HashSet::new());
            assert_eq!(rep.poll(at(t0, 0)), Action::Finished, "nothing is sent");
            rep.finish().0.failures
        };
        // Every worker on the server's node: no other node to go through.
        let np = spec(
            "traffic: tcp-crr, path: pod-to-nodeport, nodeport: 30080, nodeport_via: other-node",
        );
        let p = Placement {
            clients: vec![0],
            servers: vec![1],
        };
        assert_eq!(
            fails(&np, &p, &table(&["a", "a"])),
            [
                "scenario `s`: client worker w0 has no target: `nodeport_via: other-node` needs a worker on another node than the server's (`a`), and every worker of the scenario is on it"
            ]
        );
        // A name nobody resolved (a hand-made plan; `run` resolves names first).
        let mut svc = spec("traffic: tcp-rr, path: pod-to-service, service: 10.96.0.10:80");
        if let Some(s) = svc.service.as_mut() {
            s.name = Some("web.default.svc".into());
            s.ip = None;
        }
        assert_eq!(
            fails(&svc, &p, &table(&["a", "b"])),
            [
                "scenario `s`: client worker w0 has no target: service `dns:web.default.svc:80` was never resolved to an address"
            ]
        );
    }

    #[test]
    fn servers_ready_then_clients_prepared_then_start_then_done() {
        let (spec, p, workers) = two_to_one();
        let mut last_job = 1;
        let mut rep = Repetition::new(&spec, &p, &mut last_job, &workers, HashSet::new());
        assert_eq!(last_job, 4, "one job id each, servers first");
        let t0 = Instant::now();

        // The server binds first; it corrects one-way delays for the first
        // client's clock (another machine: offset 2 µs minus 1 µs).
        let Action::Send(1, Msg::Prepare(job)) = rep.poll(at(t0, 0)) else {
            panic!("server prepare first")
        };
        assert_eq!((job.id, job.role, job.target), (2, Role::Server, None));
        assert_eq!((job.clock_correction_ns, &job.scenario), (1000, &spec));
        // The server's peers are its clients (workers 0 and 2).
        let ips = workers.data_ips();
        assert_eq!(job.peers, [ips[0], ips[2]]);
        assert_eq!(step(&mut rep, at(t0, 0)), (vec![], wait(10_000, t0)));
        assert_eq!(rep.phase, Phase::ServerPrepare);

        // Client i goes to server i mod M, with its share of the rate, its place
        // among the clients and the server's certificate; every worker's data IP
        // is a peer.
        assert_eq!(rep.handle_event(1, ready(2, 5001)), None);
        let mut clients = Vec::new();
        while let Action::Send(w, Msg::Prepare(job)) = rep.poll(at(t0, 100)) {
            clients.push((w, job));
        }
        assert_eq!(rep.phase, Phase::ClientPrepare);
        assert_eq!(clients.len(), 2);
        for (i, ((w, job), (want_w, want_id))) in clients.iter().zip([(0, 3), (2, 4)]).enumerate() {
            assert_eq!((*w, job.id, job.role), (want_w, want_id, Role::Client));
            assert_eq!((job.client_index, job.scenario.clients), (i as u32, 2));
            assert_eq!(job.target, Some("10.0.0.2:5001".parse().unwrap()));
            assert_eq!(job.server_cert, [5001u16 as u8]);
            assert_eq!(job.scenario.rate, Rate::PerSecond(500.0));
            assert_eq!(job.peers, workers.data_ips());
            assert_eq!(job.clock_correction_ns, 0);
        }
        // The deadline counts from when the wait begins.
        assert_eq!(step(&mut rep, at(t0, 100)), (vec![], wait(10_100, t0)));

        // A stale Ready (an earlier repetition's job) counts for nothing.
        rep.handle_event(0, ready(1, 0));
        rep.handle_event(0, ready(3, 0));
        assert_eq!(step(&mut rep, at(t0, 200)), (vec![], wait(10_100, t0)));
        rep.handle_event(2, ready(4, 0));

        // Everyone starts START_LEAD from now, in its own clock.
        let now = at(t0, 300);
        let mut starts = Vec::new();
        while let Action::Send(w, Msg::Start { job, at_unix_ns }) = rep.poll(now) {
            starts.push((w, job, at_unix_ns));
        }
        let start = now.unix_ns + START_LEAD.as_nanos() as i64;
        assert_eq!(
            starts,
            [
                (1, 2, start + 2000),
                (0, 3, start + 1000),
                (2, 4, start + 3000)
            ]
        );
        // Until the clients' expected end (lead, warm-up, duration) plus slack.
        assert_eq!(
            step(&mut rep, now),
            (vec![], wait(300 + 500 + 3000 + 5000, t0))
        );
        assert_eq!(rep.phase, Phase::ClientRun);

        // Intervals are kept and shown, by side; another job's are not.
        let got = rep.handle_event(0, msg(Msg::Interval(interval(3, 0))));
        assert_eq!(got, Some(Notice::Interval(Role::Client, &interval(3, 0))));
        let got = rep.handle_event(1, msg(Msg::Interval(interval(2, 0))));
        assert_eq!(got, Some(Notice::Interval(Role::Server, &interval(2, 0))));
        assert_eq!(
            rep.handle_event(1, msg(Msg::Interval(interval(3, 1)))),
            None
        );
        rep.handle_event(
            1,
            msg(Msg::Baseline {
                job: 2,
                cpu: Default::default(),
                health: None,
            }),
        );

        // The clients' Done ends the run; then the servers are stopped.
        rep.handle_event(0, done(3));
        assert_eq!(step(&mut rep, at(t0, 4000)).1, wait(8800, t0));
        rep.handle_event(2, done(4));
        assert_eq!(
            step(&mut rep, at(t0, 4100)),
            (vec!["w1 stop 2".into()], wait(9100, t0))
        );
        assert_eq!(rep.phase, Phase::ServerStop);
        rep.handle_event(1, done(2));
        assert_eq!(step(&mut rep, at(t0, 4200)), (vec![], Action::Finished));

        let (c, dead) = rep.finish();
        assert!(c.failures.is_empty(), "{:?}", c.failures);
        assert!(dead.is_empty());
        let jobs: Vec<_> = c
            .jobs
            .iter()
            .map(|j| (j.role, j.worker.as_str(), j.reports.len(), j.done))
            .collect();
        assert_eq!(
            jobs,
            [
                (Role::Server, "w1", 1, Some(1)),
                (Role::Client, "w0", 1, Some(1)),
                (Role::Client, "w2", 0, Some(1)),
            ]
        );
        assert!(c.jobs[0].baseline.is_some());
        assert_eq!(c.jobs[1].machine.as_deref(), Some("boot-a"));
        assert_eq!(c.jobs[1].clock.map(|c| c.offset_ns), Some(1000));
    }

    /// A repetition of `two_to_one` up to the point where the clients run.
    fn running<'a>(
        spec: &'a ScenarioSpec,
        p: &'a Placement,
        workers: &'a Table,
        t0: Instant,
    ) -> Repetition<'a, Table> {
        let mut rep = Repetition::new(spec, p, &mut 1, workers, HashSet::new());
        step(&mut rep, at(t0, 0));
        rep.handle_event(1, ready(2, 5001));
        step(&mut rep, at(t0, 0));
        rep.handle_event(0, ready(3, 0));
        rep.handle_event(2, ready(4, 0));
        let (sent, _) = step(&mut rep, at(t0, 0));
        assert_eq!(sent, ["w1 start 2", "w0 start 3", "w2 start 4"]);
        rep
    }

    #[test]
    fn a_failed_job_stops_everyone() {
        let (spec, p, workers) = two_to_one();
        let t0 = Instant::now();
        let mut rep = running(&spec, &p, &workers, t0);
        // Another job's failure is not this repetition's.
        let failed = |job| {
            msg(Msg::Failed {
                job,
                error: "connect refused".into(),
            })
        };
        rep.handle_event(0, failed(9));
        assert_eq!(step(&mut rep, at(t0, 1000)).0, Vec::<String>::new());
        rep.handle_event(0, failed(3));
        let (sent, next) = step(&mut rep, at(t0, 1000));
        assert_eq!(sent, ["w1 stop 2", "w0 stop 3", "w2 stop 4"]);
        assert_eq!(next, wait(6000, t0));
        // Only the servers' Done is waited for.
        rep.handle_event(1, done(2));
        assert_eq!(step(&mut rep, at(t0, 1100)).1, Action::Finished);
        let (c, _) = rep.finish();
        assert_eq!(c.failures, ["worker w0: connect refused"]);
    }

    #[test]
    fn a_lost_worker_fails_this_repetition_and_the_next_at_once() {
        let (spec, p, _) = two_to_one();
        // Worker 3 has no job in this repetition.
        let workers = table(&["a", "b", "a", "c"]);
        let t0 = Instant::now();
        let mut rep = Repetition::new(&spec, &p, &mut 1, &workers, HashSet::new());
        step(&mut rep, at(t0, 0));
        let lost = |why: &str| Event::Lost(why.into());
        // Another worker's loss is only shown.
        assert_eq!(rep.handle_event(3, lost("eof")), Some(Notice::Lost(3)));
        assert_eq!(step(&mut rep, at(t0, 10)), (vec![], wait(10_000, t0)));
        assert_eq!(
            rep.handle_event(1, lost("connection reset")),
            Some(Notice::Lost(1))
        );
        // Nothing more goes to the dead server, and it is not waited for.
        let (sent, next) = step(&mut rep, at(t0, 50));
        assert_eq!(sent, ["w0 stop 3", "w2 stop 4"]);
        assert_eq!(next, Action::Finished);
        let (c, dead) = rep.finish();
        assert_eq!(c.failures, ["worker w1 lost: connection reset"]);
        assert_eq!(dead, HashSet::from([1, 3]));

        let mut last_job = 4;
        let mut next = Repetition::new(&spec, &p, &mut last_job, &workers, dead);
        assert_eq!(step(&mut next, at(t0, 100)), (vec![], Action::Finished));
        let (c, dead) = next.finish();
        assert_eq!(c.failures, ["worker w1 was lost earlier in the run"]);
        assert_eq!(dead, HashSet::from([1, 3]));
    }

    #[test]
    fn each_phase_has_a_deadline() {
        let (spec, p, workers) = two_to_one();
        let t0 = Instant::now();
        let failures = |rep: Repetition<'_, Table>| rep.finish().0.failures;

        // No server answers: the stop phase still runs, for everyone.
        let mut rep = Repetition::new(&spec, &p, &mut 1, &workers, HashSet::new());
        assert_eq!(step(&mut rep, at(t0, 0)).1, wait(10_000, t0));
        rep.handle_timeout();
        let (sent, next) = step(&mut rep, at(t0, 10_000));
        assert_eq!(sent, ["w1 stop 2", "w0 stop 3", "w2 stop 4"]);
        assert_eq!(next, wait(15_000, t0));
        rep.handle_timeout();
        assert_eq!(step(&mut rep, at(t0, 15_000)).1, Action::Finished);
        assert_eq!(
            failures(rep),
            ["server prepare: timed out", "server stop: timed out"]
        );

        // A client never gets ready: no start.
        let mut rep = Repetition::new(&spec, &p, &mut 1, &workers, HashSet::new());
        step(&mut rep, at(t0, 0));
        rep.handle_event(1, ready(2, 5001));
        step(&mut rep, at(t0, 0));
        rep.handle_event(0, ready(3, 0));
        rep.handle_timeout();
        let (sent, _) = step(&mut rep, at(t0, 10_000));
        assert_eq!(sent, ["w1 stop 2", "w0 stop 3", "w2 stop 4"]);
        rep.handle_event(1, done(2));
        assert_eq!(step(&mut rep, at(t0, 10_001)).1, Action::Finished);
        assert_eq!(failures(rep), ["client prepare: timed out"]);

        // A client never finishes.
        let mut rep = running(&spec, &p, &workers, t0);
        rep.handle_event(0, done(3));
        rep.handle_timeout();
        let (sent, _) = step(&mut rep, at(t0, 8500));
        assert_eq!(sent, ["w1 stop 2", "w0 stop 3", "w2 stop 4"]);
        rep.handle_event(1, done(2));
        assert_eq!(step(&mut rep, at(t0, 8501)).1, Action::Finished);
        assert_eq!(failures(rep), ["client run: timed out"]);
    }

    #[test]
    fn a_reject_from_any_worker_ends_the_session_with_it() {
        let (spec, p, _) = two_to_one();
        let workers = table(&["a", "b", "a", "c"]);
        let t0 = Instant::now();
        let mut rep = running(&spec, &p, &workers, t0);
        let reject = msg(Msg::Reject {
            reason: "busy".into(),
        });
        assert_eq!(rep.handle_event(3, reject), None);
        let (sent, _) = step(&mut rep, at(t0, 1000));
        assert_eq!(sent, ["w1 stop 2", "w0 stop 3", "w2 stop 4"]);
        rep.handle_interrupt();
        assert_eq!(step(&mut rep, at(t0, 1001)).1, Action::Finished);
        let (c, dead) = rep.finish();
        assert_eq!(
            c.failures,
            ["worker w3 closed the session: busy", "interrupted"]
        );
        assert_eq!(dead, HashSet::from([3]));
    }

    #[test]
    fn an_interrupt_stops_a_running_repetition() {
        let (spec, p, workers) = two_to_one();
        let t0 = Instant::now();
        let mut rep = running(&spec, &p, &workers, t0);
        rep.handle_interrupt();
        let (sent, _) = step(&mut rep, at(t0, 1000));
        assert_eq!(sent, ["w1 stop 2", "w0 stop 3", "w2 stop 4"]);
        rep.handle_event(1, done(2));
        assert_eq!(step(&mut rep, at(t0, 1001)).1, Action::Finished);
        assert_eq!(rep.finish().0.failures, ["interrupted"]);
    }

    #[test]
    fn a_failed_send_marks_the_worker_gone_and_skips_the_rest_to_it() {
        // One worker alone on its node is its own server.
        let spec = spec("traffic: tcp-rr, path: pod-to-pod-same-node");
        let p = Placement {
            clients: vec![0],
            servers: vec![0],
        };
        let workers = table(&["a"]);
        let t0 = Instant::now();
        let mut rep = Repetition::new(&spec, &p, &mut 1, &workers, HashSet::new());
        // Same machine: no clock correction.
        let Action::Send(0, Msg::Prepare(job)) = rep.poll(at(t0, 0)) else {
            panic!("server prepare")
        };
        assert_eq!(job.clock_correction_ns, 0);
        rep.handle_event(0, ready(2, 5001));
        let (sent, _) = step(&mut rep, at(t0, 0));
        assert_eq!(sent, ["w0 prepare 3"]);
        rep.handle_event(0, ready(3, 0));
        let Action::Send(0, Msg::Start { job: 2, .. }) = rep.poll(at(t0, 0)) else {
            panic!("start")
        };
        rep.send_failed(0, "worker w0: connection lost".into());
        // The client's Start is not sent; the wait goes on until an event ends it.
        assert_eq!(rep.poll(at(t0, 0)), wait(8500, t0));
        assert_eq!(
            rep.handle_event(0, Event::Lost("eof".into())),
            Some(Notice::Lost(0))
        );
        assert_eq!(step(&mut rep, at(t0, 1)), (vec![], Action::Finished));
        let (c, dead) = rep.finish();
        assert_eq!(
            c.failures,
            ["worker w0: connection lost", "worker w0 lost: eof"]
        );
        assert_eq!(dead, HashSet::from([0]));
    }

    #[test]
    fn an_external_target_has_only_clients() {
        let spec = spec("traffic: http1, path: pod-to-external, target: 192.0.2.1:80, clients: 2");
        let p = Placement {
            clients: vec![0, 1],
            servers: Vec::new(),
        };
        let workers = table(&["a", "b"]);
        let t0 = Instant::now();
        let mut rep = Repetition::new(&spec, &p, &mut 1, &workers, HashSet::new());
        let mut targets = Vec::new();
        while let Action::Send(w, Msg::Prepare(job)) = rep.poll(at(t0, 0)) {
            targets.push((w, job.id, job.target, job.server_cert));
        }
        let external = Some("192.0.2.1:80".parse().unwrap());
        assert_eq!(
            targets,
            [(0, 2, external, vec![]), (1, 3, external, vec![])]
        );
        rep.handle_event(0, ready(2, 0));
        rep.handle_event(1, ready(3, 0));
        let (sent, _) = step(&mut rep, at(t0, 0));
        assert_eq!(sent, ["w0 start 2", "w1 start 3"]);
        rep.handle_event(0, done(2));
        rep.handle_event(1, done(3));
        // No server to stop.
        assert_eq!(step(&mut rep, at(t0, 4000)), (vec![], Action::Finished));
        assert!(rep.finish().0.failures.is_empty());
    }

    #[test]
    fn without_events_the_phases_run_through_without_waiting() {
        let (spec, p, workers) = two_to_one();
        let t0 = Instant::now();
        let mut rep = Repetition::new(&spec, &p, &mut 1, &workers, HashSet::new());
        step(&mut rep, at(t0, 0));
        rep.handle_closed();
        let (sent, _) = step(&mut rep, at(t0, 0));
        assert_eq!(sent, ["w1 start 2", "w0 start 3", "w2 start 4"]);
        rep.handle_closed();
        let (sent, _) = step(&mut rep, at(t0, 0));
        assert_eq!(sent, ["w1 stop 2"]);
        rep.handle_closed();
        assert_eq!(step(&mut rep, at(t0, 0)).1, Action::Finished);
        assert!(rep.finish().0.failures.is_empty());
    }
}
