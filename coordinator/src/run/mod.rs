//! Running a plan: connect to every worker, place every scenario before any
//! traffic flows, then run scenarios and repetitions in order (or, for a soak,
//! windows in turns) and assemble the result. Each repetition prepares the
//! servers first (they bind and report their ports), then the clients, starts
//! them all at one instant (translated into each worker's clock), waits for the
//! clients' `Done`, stops the servers and merges what arrived. A failure is
//! recorded in the repetition and the run goes on with what is left.
//!
//! Layout: `connect` reaches the workers; `placement` decides, as a pure
//! function, which workers play which role; the `Orchestrator` here runs the
//! repetitions and `assemble` builds the result.

mod assemble;
mod connect;
mod placement;

use crate::link::{Event, Link};
use crate::result::{self, Collected, JobData, RepResult, RunResult, WorkerEnv};
use crate::soak::SoakOptions;
use cnibench_proto::msg::{IntervalReport, Job, Msg, Role};
use cnibench_proto::plan::{Plan, ScenarioSpec};
use cnibench_worker::job::unix_now_ns;
use placement::{Placement, Seat, rate_share};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Time between the `Start` message and the start instant: covers sending it to
/// all, and is the idle window whose CPU use is the baseline.
const START_LEAD: Duration = Duration::from_millis(500);
/// How long a worker may take to prepare a job.
const PREPARE_TIMEOUT: Duration = Duration::from_secs(10);
/// Slack past a client's expected end before it is declared lost.
const FINISH_SLACK: Duration = Duration::from_secs(5);

/// A run that could not start or finish, with the exit code it deserves.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The plan does not fit the workers, or a flag cannot be used (exit 64).
    #[error("{0}")]
    Usage(String),
    /// A worker could not be reached or refused us (exit 69).
    #[error("{0:#}")]
    Unavailable(anyhow::Error),
}

/// Progress output for one repetition.
pub trait Progress {
    /// A repetition starts.
    fn rep_started(&mut self, scenario: &ScenarioSpec, rep: u32, index: usize, total: usize);
    /// A repetition ended.
    fn rep_finished(&mut self, scenario: &ScenarioSpec, rep: &RepResult);
    /// An interval report arrived from the client (`Role::Client`) or server side.
    fn interval(&mut self, _scenario: &ScenarioSpec, _side: Role, _report: &IntervalReport) {}
    /// A scenario was placed; `cni` is its CNI label.
    fn placed(&mut self, _scenario: &str, _cni: &str) {}
    /// A worker's control connection came up or went down.
    fn worker(&mut self, _addr: &str, _node: &str, _up: bool) {}
}

/// Several progress outputs at once (the terminal and `--metrics`).
#[derive(Debug)]
pub struct Tee<A, B>(pub A, pub B);

impl<A: Progress, B: Progress> Progress for Tee<A, B> {
    fn rep_started(&mut self, s: &ScenarioSpec, rep: u32, index: usize, total: usize) {
        self.0.rep_started(s, rep, index, total);
        self.1.rep_started(s, rep, index, total);
    }
    fn rep_finished(&mut self, s: &ScenarioSpec, r: &RepResult) {
        self.0.rep_finished(s, r);
        self.1.rep_finished(s, r);
    }
    fn interval(&mut self, s: &ScenarioSpec, side: Role, r: &IntervalReport) {
        self.0.interval(s, side, r);
        self.1.interval(s, side, r);
    }
    fn placed(&mut self, scenario: &str, cni: &str) {
        self.0.placed(scenario, cni);
        self.1.placed(scenario, cni);
    }
    fn worker(&mut self, addr: &str, node: &str, up: bool) {
        self.0.worker(addr, node, up);
        self.1.worker(addr, node, up);
    }
}

/// What to do with the plan.
#[derive(Debug, Clone, Copy)]
pub enum Mode {
    /// Each scenario's repetitions (or sweep), once.
    Plan,
    /// The scenarios in turns of one window each until the duration is up.
    Soak(SoakOptions),
}

/// Connect to all workers (concurrently) and run the plan.
#[allow(clippy::too_many_arguments)] // two call sites, each argument distinct
pub async fn run(
    plan_file: &str,
    plan: Plan,
    mode: Mode,
    workers: &[String],
    token: &[u8],
    wait: Duration,
    interrupt: CancellationToken,
    progress: &mut dyn Progress,
) -> Result<RunResult, RunError> {
    let started = unix_now_ns();
    let (ev_tx, mut ev_rx) = mpsc::channel(4096);
    let links = connect::connect_all(workers, token, wait, &ev_tx).await?;
    let seats = seats(&links);
    let placements = plan
        .scenarios
        .iter()
        .map(|s| placement::place(s, &seats))
        .collect::<Result<Vec<_>, _>>()
        .map_err(RunError::Usage)?;
    for l in &links {
        progress.worker(&l.addr, &l.info.node, true);
    }
    let cnis: Vec<String> = placements
        .iter()
        .map(|p| {
            let server = p.servers.first().map(|&s| &links[s].info);
            placement::cni_label(&plan.cni, &links[p.clients[0]].info, server)
        })
        .collect();
    for (spec, cni) in plan.scenarios.iter().zip(&cnis) {
        progress.placed(&spec.name, cni);
    }

    let mut orch = Orchestrator {
        progress,
        links: &links,
        events: &mut ev_rx,
        next_job: 1,
        dead: HashSet::new(),
        interrupt,
    };
    let mut soak = None;
    let measured: Vec<assemble::Measured> = match mode {
        Mode::Plan => orch.plan(&plan, &placements).await,
        Mode::Soak(opts) => {
            let interrupt = orch.interrupt.clone();
            let (reps, account) = crate::soak::run(
                &plan,
                opts,
                async |i: usize, s: &ScenarioSpec, window: u32| {
                    orch.measure(
                        s,
                        window,
                        window as usize,
                        s.repetitions as usize,
                        &placements[i],
                    )
                    .await
                },
                || interrupt.is_cancelled(),
                |e| {
                    eprintln!(
                        "soak event at {:.1}s: {} window {}: {:?}: {}",
                        e.at_s, e.scenario, e.window, e.kind, e.detail
                    );
                },
            )
            .await;
            soak = Some(account);
            reps.into_iter().map(|r| (r, None)).collect()
        }
    };
    let placed = plan.scenarios.iter().zip(&placements).zip(cnis);
    let scenarios = placed
        .zip(measured)
        .map(|(((spec, p), cni), m)| assemble::scenario_result(spec, p, &seats, cni, m))
        .collect();
    for l in &links {
        let _ = l
            .send(Msg::Abort {
                reason: "run finished".into(),
            })
            .await;
    }
    let workers = links
        .iter()
        .map(|l| WorkerEnv {
            addr: l.addr.clone(),
            info: l.info.clone(),
            clock: l.clock(),
        })
        .collect();
    Ok(assemble::run_result(
        plan_file, plan, started, workers, scenarios, soak,
    ))
}

/// What placement knows of each worker.
fn seats(links: &[Link]) -> Vec<Seat<'_>> {
    links
        .iter()
        .map(|l| Seat {
            index: l.index,
            addr: &l.addr,
            node: &l.info.node,
        })
        .collect()
}

struct Orchestrator<'a> {
    progress: &'a mut dyn Progress,
    links: &'a [Link],
    /// Every worker's events, tagged with its index.
    events: &'a mut mpsc::Receiver<(usize, Event)>,
    next_job: u64,
    /// Workers whose connection is gone.
    dead: HashSet<usize>,
    interrupt: CancellationToken,
}

/// Per-repetition bookkeeping: `keys[i]` = (worker, job id) of `c.jobs[i]`;
/// the first `servers` entries are the servers, the rest the clients.
struct RepState {
    keys: Vec<(usize, u64)>,
    servers: usize,
    ready: Vec<Option<(u16, Vec<u8>)>>,
    c: Collected,
}

impl RepState {
    fn failed(&self) -> bool {
        !self.c.failures.is_empty()
    }

    fn clients(&self) -> std::ops::Range<usize> {
        self.servers..self.keys.len()
    }

    fn clients_done(&self) -> bool {
        self.clients().all(|i| self.c.jobs[i].done.is_some())
    }

    fn servers_ready(&self) -> bool {
        self.ready[..self.servers].iter().all(Option::is_some)
    }
}

impl Orchestrator<'_> {
    /// Run every scenario of the plan in order: its repetitions, or its sweep.
    /// Stops early (returning what it has) when interrupted.
    async fn plan(&mut self, plan: &Plan, placements: &[Placement]) -> Vec<assemble::Measured> {
        let total: usize = plan.scenarios.iter().map(|s| s.repetitions as usize).sum();
        let mut index = 0;
        let mut out = Vec::new();
        for (spec, p) in plan.scenarios.iter().zip(placements) {
            let mut reps = Vec::new();
            let mut sweep = None;
            if let Some(sw) = spec.sweep {
                index += 1;
                let interrupt = self.interrupt.clone();
                let found = crate::sweep::search(
                    spec,
                    sw,
                    async |s: &ScenarioSpec| self.measure(s, 1, index, total, p).await,
                    || interrupt.is_cancelled(),
                )
                .await;
                if let Some(best) = found.best() {
                    reps.push(best.result.clone());
                }
                sweep = Some(found);
            } else {
                for rep in 1..=spec.repetitions {
                    index += 1;
                    reps.push(self.measure(spec, rep, index, total, p).await);
                    if self.interrupt.is_cancelled() {
                        break;
                    }
                }
            }
            out.push((reps, sweep));
            if self.interrupt.is_cancelled() {
                break;
            }
        }
        out
    }

    /// Run one repetition of `spec` (the `index`-th of `total`) with progress output.
    async fn measure(
        &mut self,
        spec: &ScenarioSpec,
        rep: u32,
        index: usize,
        total: usize,
        p: &Placement,
    ) -> RepResult {
        self.progress.rep_started(spec, rep, index, total);
        let collected = self.repetition(spec, p).await;
        let r = result::rep_result(spec, rep, collected);
        self.progress.rep_finished(spec, &r);
        r
    }

    async fn repetition(&mut self, spec: &ScenarioSpec, p: &Placement) -> Collected {
        let mut keys = Vec::new();
        for &w in p.servers.iter().chain(&p.clients) {
            keys.push((w, self.job_id()));
        }
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
                worker: self.links[w].addr.clone(),
                reports: Vec::new(),
                done: None,
                baseline: None,
                machine: self.links[w].info.boot_id.clone(),
                cpus: self.links[w].info.cpus,
                clock: self.links[w].clock(),
            })
            .collect();
        let mut st = RepState {
            ready: vec![None; keys.len()],
            keys,
            servers,
            c: Collected {
                jobs,
                failures: Vec::new(),
            },
        };
        if let Some(&(w, _)) = st.keys.iter().find(|k| self.dead.contains(&k.0)) {
            st.c.failures.push(format!(
                "worker {} was lost earlier in the run",
                self.links[w].addr
            ));
            return st.c;
        }
        // Servers bind first; clients learn where to go (and which certificate to
        // trust). Client i goes to server i mod M.
        let first_client = st.keys[servers].0;
        for i in 0..servers {
            let (si, id) = st.keys[i];
            let job = Job {
                id,
                role: Role::Server,
                scenario: spec.clone(),
                target: None,
                server_cert: Vec::new(),
                clock_correction_ns: self.clock_correction(si, first_client),
                peers: Vec::new(),
            };
            self.send(si, Msg::Prepare(job), &mut st).await;
        }
        self.pump(
            spec,
            &mut st,
            Instant::now() + PREPARE_TIMEOUT,
            "server prepare",
            RepState::servers_ready,
        )
        .await;
        if !st.failed() && st.servers_ready() {
            let share = ScenarioSpec {
                rate: rate_share(spec.rate, spec.clients),
                ..spec.clone()
            };
            let peers: Vec<_> = self.links.iter().map(|l| l.info.data_ip).collect();
            for (n, i) in st.clients().enumerate() {
                let (w, id) = st.keys[i];
                let (target, cert) = match spec.target {
                    Some(external) => (external, Vec::new()),
                    None => {
                        let Some(s) = p.server_of(n) else {
                            continue;
                        };
                        let Some((port, cert)) = st.ready[s].clone() else {
                            continue;
                        };
                        (
                            SocketAddr::new(self.links[st.keys[s].0].info.data_ip, port),
                            cert,
                        )
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
                };
                self.send(w, Msg::Prepare(job), &mut st).await;
            }
            self.pump(
                spec,
                &mut st,
                Instant::now() + PREPARE_TIMEOUT,
                "client prepare",
                |s| s.clients().all(|i| s.ready[i].is_some()),
            )
            .await;
        }
        if !st.failed() {
            let at = unix_now_ns() + START_LEAD.as_nanos() as i64;
            for (w, job) in st.keys.clone() {
                let offset = self.links[w].clock().map_or(0, |c| c.offset_ns);
                self.send(
                    w,
                    Msg::Start {
                        job,
                        at_unix_ns: at + offset,
                    },
                    &mut st,
                )
                .await;
            }
            let end = Instant::now() + START_LEAD + spec.warmup.0 + spec.duration.0 + FINISH_SLACK;
            self.pump(spec, &mut st, end, "client run", RepState::clients_done)
                .await;
        }
        // Stop the servers (and the clients, if they may still run after a failure).
        let stops: Vec<(usize, u64)> = if st.failed() {
            st.keys.clone()
        } else {
            st.keys[..servers].to_vec()
        };
        for (w, job) in stops {
            self.send(w, Msg::Stop { job }, &mut st).await;
        }
        // Dead servers send nothing more: do not wait for them.
        let alive: Vec<usize> = (0..servers)
            .filter(|&i| !self.dead.contains(&st.keys[i].0))
            .collect();
        if !alive.is_empty() {
            self.pump(
                spec,
                &mut st,
                Instant::now() + FINISH_SLACK,
                "server stop",
                |s| alive.iter().all(|&i| s.c.jobs[i].done.is_some()),
            )
            .await;
        }
        st.c
    }

    /// Receiver clock minus sender clock for one-way delay: 0 on one kernel.
    fn clock_correction(&self, receiver: usize, sender: usize) -> i64 {
        let (r, s) = (&self.links[receiver].info, &self.links[sender].info);
        if r.boot_id.is_some() && r.boot_id == s.boot_id {
            return 0;
        }
        let off = |w: usize| self.links[w].clock().map_or(0, |c| c.offset_ns);
        off(receiver) - off(sender)
    }

    fn job_id(&mut self) -> u64 {
        self.next_job += 1;
        self.next_job
    }

    async fn send(&mut self, w: usize, m: Msg, st: &mut RepState) {
        if self.dead.contains(&w) {
            return;
        }
        if let Err(e) = self.links[w].send(m).await {
            self.dead.insert(w);
            st.c.failures.push(format!("{e:#}"));
        }
    }

    /// Handle events until `done(st)`, a failure, the deadline, or an interrupt.
    async fn pump(
        &mut self,
        spec: &ScenarioSpec,
        st: &mut RepState,
        deadline: Instant,
        phase: &str,
        done: impl Fn(&RepState) -> bool,
    ) {
        while !done(st) {
            let ev = tokio::select! {
                ev = self.events.recv() => ev,
                _ = tokio::time::sleep_until(deadline) => {
                    st.c.failures.push(format!("{phase}: timed out"));
                    return;
                }
                _ = self.interrupt.cancelled() => {
                    st.c.failures.push("interrupted".into());
                    return;
                }
            };
            let Some((w, ev)) = ev else { return };
            let addr = &self.links[w].addr;
            match ev {
                Event::Lost(why) => {
                    self.dead.insert(w);
                    self.progress.worker(addr, &self.links[w].info.node, false);
                    if st.keys.iter().any(|k| k.0 == w) {
                        st.c.failures.push(format!("worker {addr} lost: {why}"));
                        return;
                    }
                }
                Event::Msg(m) => {
                    let job_of = |id: u64| st.keys.iter().position(|&k| k == (w, id));
                    match m {
                        Msg::Ready { job, port, cert } => {
                            if let Some(i) = job_of(job) {
                                st.ready[i] = Some((port, cert));
                            }
                        }
                        Msg::Interval(r) => {
                            if let Some(i) = job_of(r.job) {
                                self.progress.interval(spec, st.c.jobs[i].role, &r);
                                st.c.jobs[i].reports.push(r);
                            }
                        }
                        Msg::Baseline { job, cpu } => {
                            if let Some(i) = job_of(job) {
                                st.c.jobs[i].baseline = Some(cpu);
                            }
                        }
                        Msg::Done { job, intervals } => {
                            if let Some(i) = job_of(job) {
                                st.c.jobs[i].done = Some(intervals);
                            }
                        }
                        Msg::Failed { job, error } if job_of(job).is_some() => {
                            st.c.failures.push(format!("worker {addr}: {error}"));
                            return;
                        }
                        Msg::Reject { reason } => {
                            self.dead.insert(w);
                            st.c.failures
                                .push(format!("worker {addr} closed the session: {reason}"));
                            return;
                        }
                        _ => {}
                    }
                }
            }
        }
    }
}
