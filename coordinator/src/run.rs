//! Running a plan: connect to every worker, check placement for every scenario
//! before any traffic flows, then run scenarios and repetitions in order. Each
//! repetition prepares the server first (it binds and reports its port), then the
//! client, starts both at one instant (translated into each worker's clock), waits
//! for the client's `Done`, stops the server and merges what arrived. A failure is
//! recorded in the repetition and the run goes on with what is left.

use crate::link::{Event, Link};
use crate::result::{
    self, Collected, Environment, Machine, RepResult, RunResult, ScenarioResult, Status, WorkerEnv,
};
use anyhow::anyhow;
use cnibench_proto::msg::{IntervalReport, Job, Msg, Role};
use cnibench_proto::plan::{Plan, ScenarioSpec};
use cnibench_worker::job::unix_now_ns;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Time between the `Start` message and the start instant: covers sending it to all.
const START_LEAD: Duration = Duration::from_millis(300);
/// How long a worker may take to prepare a job.
const PREPARE_TIMEOUT: Duration = Duration::from_secs(10);
/// Slack past a client's expected end before it is declared lost.
const FINISH_SLACK: Duration = Duration::from_secs(5);

/// A run that could not start or finish, with the exit code it deserves.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The plan does not fit the workers (exit 64).
    #[error("{0}")]
    Placement(String),
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
}

/// Connect to all workers (concurrently) and run the plan.
pub async fn run(
    plan_file: &str,
    plan: Plan,
    workers: &[String],
    token: &[u8],
    interrupt: CancellationToken,
    progress: &mut dyn Progress,
) -> Result<RunResult, RunError> {
    let started = unix_now_ns();
    let (ev_tx, mut ev_rx) = mpsc::channel(4096);
    let mut pending = tokio::task::JoinSet::new();
    for (i, w) in workers.iter().enumerate() {
        let (w, token, tx) = (w.clone(), token.to_vec(), ev_tx.clone());
        pending.spawn(async move { (i, Link::connect(i, &w, &token, tx).await) });
    }
    let mut links: Vec<Option<Link>> = (0..workers.len()).map(|_| None).collect();
    let mut errors = Vec::new();
    while let Some(r) = pending.join_next().await {
        match r {
            Ok((i, Ok(l))) => links[i] = Some(l),
            Ok((_, Err(e))) => errors.push(format!("{e:#}")),
            Err(e) => errors.push(format!("worker task: {e}")),
        }
    }
    if !errors.is_empty() {
        errors.sort();
        return Err(RunError::Unavailable(anyhow!(errors.join("; "))));
    }
    let links: Vec<Link> = links.into_iter().flatten().collect();
    let placements = plan
        .scenarios
        .iter()
        .map(|s| place(s, &links))
        .collect::<Result<Vec<_>, _>>()
        .map_err(RunError::Placement)?;

    let mut orch = Orchestrator {
        progress,
        links: &links,
        events: &mut ev_rx,
        next_job: 1,
        dead: HashSet::new(),
        interrupt,
    };
    let total: usize = plan.scenarios.iter().map(|s| s.repetitions as usize).sum();
    let mut index = 0;
    let mut scenarios = Vec::new();
    for (spec, &(ci, si)) in plan.scenarios.iter().zip(&placements) {
        let mut reps = Vec::new();
        for rep in 1..=spec.repetitions {
            index += 1;
            orch.progress.rep_started(spec, rep, index, total);
            let collected = orch.repetition(spec, ci, si).await;
            let r = result::rep_result(spec, rep, collected);
            orch.progress.rep_finished(spec, &r);
            reps.push(r);
            if orch.interrupt.is_cancelled() {
                break;
            }
        }
        let cni = cni_label(&plan.cni, &links[ci], &links[si]);
        scenarios.push(ScenarioResult {
            name: spec.name.clone(),
            traffic: spec.traffic.to_string(),
            path: spec.path.to_string(),
            cni,
            client_node: links[ci].info.node.clone(),
            server_node: links[si].info.node.clone(),
            client_worker: links[ci].addr.clone(),
            server_worker: links[si].addr.clone(),
            summary: result::summarize(&reps),
            repetitions: reps,
        });
        if orch.interrupt.is_cancelled() {
            break;
        }
    }
    for l in &links {
        let _ = l
            .send(Msg::Abort {
                reason: "run finished".into(),
            })
            .await;
    }
    let ok = scenarios.len() == plan.scenarios.len()
        && scenarios
            .iter()
            .all(|s| s.repetitions.iter().all(|r| r.status == Status::Ok));
    Ok(RunResult {
        schema_version: result::SCHEMA_VERSION,
        tool: format!("cnibench {}", env!("CARGO_PKG_VERSION")),
        run_id: run_id(started),
        plan_file: plan_file.to_string(),
        started_at_unix_ns: started,
        finished_at_unix_ns: unix_now_ns(),
        environment: Environment {
            coordinator: local_machine(),
            workers: links
                .iter()
                .map(|l| WorkerEnv {
                    addr: l.addr.clone(),
                    info: l.info.clone(),
                    clock: l.clock(),
                })
                .collect(),
        },
        plan,
        scenarios,
        ok,
    })
}

fn local_machine() -> Machine {
    use cnibench_worker::sysinfo;
    Machine {
        host: sysinfo::hostname(),
        kernel: sysinfo::kernel(),
        cpu_model: sysinfo::cpu_model(),
        cpus: sysinfo::cpus(),
    }
}

fn run_id(started_ns: i64) -> String {
    let suffix: u32 = rand::random();
    format!("{}-{suffix:08x}", started_ns / 1_000_000_000)
}

/// The CNI label of a scenario: the plan's, or what its workers report.
fn cni_label(plan_cni: &str, client: &Link, server: &Link) -> String {
    if plan_cni != "auto" {
        return plan_cni.to_string();
    }
    let label = |i: &cnibench_proto::msg::WorkerInfo| match &i.cni_mode {
        Some(mode) => format!("{}-{mode}", i.cni),
        None => i.cni.clone(),
    };
    let (c, s) = (label(&client.info), label(&server.info));
    if c == s { c } else { format!("{c}/{s}") }
}

/// Choose (client, server) worker indexes for a scenario. The first worker runs
/// the client. Same-node paths prefer another worker on the client's node (two
/// pods on one node) and fall back to the client's own worker; cross-node paths
/// need a worker that reports a different node name.
fn place(spec: &ScenarioSpec, links: &[Link]) -> Result<(usize, usize), String> {
    let client = &links[0];
    let others = || links[1..].iter();
    let server = if spec.path.cross_node() {
        others().find(|l| l.info.node != client.info.node).ok_or_else(|| {
            let nodes: Vec<String> = links
                .iter()
                .map(|l| format!("{} on node `{}`", l.addr, l.info.node))
                .collect();
            format!(
                "scenario `{}` (path {}) needs a client and a server on different nodes, but the workers are: {}",
                spec.name,
                spec.path,
                nodes.join(", ")
            )
        })?
    } else {
        others()
            .find(|l| l.info.node == client.info.node)
            .unwrap_or(client)
    };
    Ok((0, server.index))
}

struct Orchestrator<'a> {
    progress: &'a mut dyn Progress,
    links: &'a [Link],
    events: &'a mut mpsc::Receiver<(usize, Event)>,
    next_job: u64,
    dead: HashSet<usize>,
    interrupt: CancellationToken,
}

/// Per-repetition bookkeeping of what arrived.
struct RepState {
    client: (usize, u64),
    server: (usize, u64),
    port: Option<u16>,
    client_ready: bool,
    c: Collected,
}

impl RepState {
    fn failed(&self) -> bool {
        !self.c.failures.is_empty()
    }
}

impl Orchestrator<'_> {
    async fn repetition(&mut self, spec: &ScenarioSpec, ci: usize, si: usize) -> Collected {
        let mut st = RepState {
            client: (ci, self.job_id()),
            server: (si, self.job_id()),
            port: None,
            client_ready: false,
            c: Collected::default(),
        };
        for w in [ci, si] {
            if self.dead.contains(&w) {
                st.c.failures.push(format!(
                    "worker {} was lost earlier in the run",
                    self.links[w].addr
                ));
                return st.c;
            }
        }
        let server_job = Job {
            id: st.server.1,
            role: Role::Server,
            scenario: spec.clone(),
            target: None,
        };
        self.send(si, Msg::Prepare(server_job), &mut st).await;
        self.pump(
            spec,
            &mut st,
            Instant::now() + PREPARE_TIMEOUT,
            "server prepare",
            |s| s.port.is_some(),
        )
        .await;
        if let Some(port) = st.port.filter(|_| !st.failed()) {
            let target = SocketAddr::new(self.links[si].info.data_ip, port);
            let client_job = Job {
                id: st.client.1,
                role: Role::Client,
                scenario: spec.clone(),
                target: Some(target),
            };
            self.send(ci, Msg::Prepare(client_job), &mut st).await;
            self.pump(
                spec,
                &mut st,
                Instant::now() + PREPARE_TIMEOUT,
                "client prepare",
                |s| s.client_ready,
            )
            .await;
        }
        if !st.failed() {
            let at = unix_now_ns() + START_LEAD.as_nanos() as i64;
            for (w, job) in [st.server, st.client] {
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
            self.pump(spec, &mut st, end, "client run", |s| {
                s.c.client_done.is_some()
            })
            .await;
        }
        // Stop the server (and the client, if it is still running after a failure).
        let stops = if st.failed() {
            vec![st.client, st.server]
        } else {
            vec![st.server]
        };
        for (w, job) in stops {
            self.send(w, Msg::Stop { job }, &mut st).await;
        }
        self.pump(
            spec,
            &mut st,
            Instant::now() + FINISH_SLACK,
            "server stop",
            |s| s.c.server_done.is_some(),
        )
        .await;
        st.c
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
                    if w == st.client.0 || w == st.server.0 {
                        st.c.failures.push(format!("worker {addr} lost: {why}"));
                        return;
                    }
                }
                Event::Msg(m) => {
                    let side = |job: u64| {
                        if (w, job) == st.client {
                            Some(Role::Client)
                        } else if (w, job) == st.server {
                            Some(Role::Server)
                        } else {
                            None
                        }
                    };
                    match m {
                        Msg::Ready { job, port } => match side(job) {
                            Some(Role::Server) => st.port = Some(port),
                            Some(Role::Client) => st.client_ready = true,
                            None => {}
                        },
                        Msg::Interval(r) => match side(r.job) {
                            Some(Role::Client) => {
                                self.progress.interval(spec, Role::Client, &r);
                                st.c.client.push(r);
                            }
                            Some(Role::Server) => {
                                self.progress.interval(spec, Role::Server, &r);
                                st.c.server.push(r);
                            }
                            None => {}
                        },
                        Msg::Done { job, intervals } => match side(job) {
                            Some(Role::Client) => st.c.client_done = Some(intervals),
                            Some(Role::Server) => st.c.server_done = Some(intervals),
                            None => {}
                        },
                        Msg::Failed { job, error } if side(job).is_some() => {
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
