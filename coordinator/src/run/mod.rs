//! Running a plan: connect to every worker, place every scenario before any
//! traffic flows, then run scenarios and repetitions in order (or, for a soak,
//! windows in turns) and assemble the result. Each repetition prepares the
//! servers first (they bind and report their ports), then the clients, starts
//! them all at one instant (translated into each worker's clock), waits for the
//! clients' `Done`, stops the servers and merges what arrived. A failure is
//! recorded in the repetition and the run goes on with what is left.
//!
//! Layout: `connect` reaches the workers; `placement` decides, as a pure
//! function, which workers play which role; `repetition` is one repetition as a
//! state machine without I/O, fed events and the time; the `Orchestrator` here
//! drives it (the channel I/O and the sends) and `assemble` builds the result.

mod assemble;
mod connect;
mod placement;
mod repetition;

use crate::link::{Event, Link};
use crate::result::{self, Collected, RepResult, RunResult, WorkerEnv};
use crate::soak::SoakOptions;
use cnibench_proto::clock::{ClockEstimate, unix_now_ns};
use cnibench_proto::msg::{IntervalReport, Msg, Role, WorkerInfo};
use cnibench_proto::plan::{Plan, ScenarioSpec};
use placement::{Placement, Seat};
use repetition::{Action, Notice, Now, Repetition, Workers};
use std::collections::HashSet;
use std::net::IpAddr;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

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
    /// How many workers play each side of a scenario: the interval reports of
    /// one interval that make it whole.
    fn sides(&mut self, _scenario: &str, _clients: usize, _servers: usize) {}
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
    fn sides(&mut self, scenario: &str, clients: usize, servers: usize) {
        self.0.sides(scenario, clients, servers);
        self.1.sides(scenario, clients, servers);
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

/// Connect to all workers (concurrently) and run the plan. `checkpoint` gets
/// the result so far, marked `incomplete`, after every repetition, sweep and
/// soak window (the caller writes it, so that a coordinator that dies keeps
/// what it finished); the finished result is returned.
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
    checkpoint: &mut dyn FnMut(RunResult),
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
    for ((spec, cni), p) in plan.scenarios.iter().zip(&cnis).zip(&placements) {
        progress.placed(&spec.name, cni);
        progress.sides(&spec.name, p.clients.len(), p.servers.len());
    }
    let run_id = assemble::run_id(started);
    let id = assemble::RunId {
        plan_file,
        started_ns: started,
        id: &run_id,
    };
    // The result of what was measured so far (a prefix of the scenarios).
    let result_of = |measured: Vec<assemble::Measured>,
                     soak: Option<result::SoakResult>,
                     incomplete: Option<String>| {
        let placed = plan.scenarios.iter().zip(&placements).zip(&cnis);
        let scenarios = placed
            .zip(measured)
            .map(|(((spec, p), cni), m)| assemble::scenario_result(spec, p, &seats, cni.clone(), m))
            .collect();
        let workers = links
            .iter()
            .map(|l| WorkerEnv {
                addr: l.addr.clone(),
                info: l.info.clone(),
                clock: l.clock(),
            })
            .collect();
        assemble::run_result(&id, plan.clone(), workers, scenarios, soak, incomplete)
    };

    let mut orch = Orchestrator {
        progress,
        links: &links,
        events: &mut ev_rx,
        last_job: 1,
        dead: HashSet::new(),
        interrupt,
    };
    let mut soak = None;
    let measured: Vec<assemble::Measured> = match mode {
        Mode::Plan => {
            let total: usize = plan.scenarios.iter().map(|s| s.repetitions as usize).sum();
            let mut save = |so_far: &[assemble::Measured]| {
                let done: usize = so_far.iter().map(|m| m.0.len()).sum();
                let why = format!(
                    "written during the run, after {done} of {total} repetitions: \
                     a coordinator that stopped here (killed, out of memory) left it so"
                );
                checkpoint(result_of(so_far.to_vec(), None, Some(why)));
            };
            orch.plan(&plan, &placements, &mut save).await
        }
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
                |reps: &[Vec<RepResult>], account: &result::SoakResult| {
                    let why = format!(
                        "written during the soak, after {} windows: a coordinator \
                         that stopped here (killed, out of memory) left it so",
                        account.windows.len()
                    );
                    let so_far = reps.iter().map(|r| (r.clone(), None)).collect();
                    checkpoint(result_of(so_far, Some(account.clone()), Some(why)));
                },
            )
            .await;
            soak = Some(account);
            reps.into_iter().map(|r| (r, None)).collect()
        }
    };
    let finished = result_of(measured, soak, None);
    for l in &links {
        let _ = l
            .send(Msg::Abort {
                reason: "run finished".into(),
            })
            .await;
    }
    Ok(finished)
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

/// A repetition sees the workers through their connections.
impl Workers for [Link] {
    fn addr(&self, w: usize) -> &str {
        &self[w].addr
    }
    fn info(&self, w: usize) -> &WorkerInfo {
        &self[w].info
    }
    fn clock(&self, w: usize) -> Option<ClockEstimate> {
        self[w].clock()
    }
    fn data_ips(&self) -> Vec<IpAddr> {
        self.iter().map(|l| l.info.data_ip).collect()
    }
}

/// Runs repetitions: feeds each [`Repetition`] the workers' events, the time
/// and interrupts, and does what it asks (sends, waits).
struct Orchestrator<'a> {
    progress: &'a mut dyn Progress,
    links: &'a [Link],
    /// Every worker's events, tagged with its index.
    events: &'a mut mpsc::Receiver<(usize, Event)>,
    /// The last job id handed out; ids are unique within the run.
    last_job: u64,
    /// Workers whose connection is gone.
    dead: HashSet<usize>,
    interrupt: CancellationToken,
}

impl Orchestrator<'_> {
    /// Run every scenario of the plan in order: its repetitions, or its sweep.
    /// Stops early (returning what it has) when interrupted.
    /// `save` gets what was measured so far after every repetition and sweep.
    async fn plan(
        &mut self,
        plan: &Plan,
        placements: &[Placement],
        save: &mut dyn FnMut(&[assemble::Measured]),
    ) -> Vec<assemble::Measured> {
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
                    if rep < spec.repetitions {
                        out.push((reps.clone(), None));
                        save(&out);
                        out.pop();
                    }
                }
            }
            out.push((reps, sweep));
            save(&out);
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
        let started = unix_now_ns();
        let collected = self.repetition(spec, p).await;
        let mut r = result::rep_result(spec, rep, collected);
        r.started_at_unix_ns = Some(started);
        r.slo = crate::slo::check(&spec.slo, &r);
        self.progress.rep_finished(spec, &r);
        r
    }

    /// Drive one repetition: do what it asks, and feed it events, the end of
    /// its waits and an interrupt.
    async fn repetition(&mut self, spec: &ScenarioSpec, p: &Placement) -> Collected {
        let links = self.links;
        let dead = std::mem::take(&mut self.dead);
        let mut rep = Repetition::new(spec, p, &mut self.last_job, links, dead);
        loop {
            let now = Now {
                instant: Instant::now(),
                unix_ns: unix_now_ns(),
            };
            match rep.poll(now) {
                Action::Send(w, m) => {
                    if let Err(e) = links[w].send(m).await {
                        rep.send_failed(w, format!("{e:#}"));
                    }
                }
                Action::Wait(deadline) => tokio::select! {
                    ev = self.events.recv() => match ev {
                        Some((w, ev)) => match rep.handle_event(w, ev) {
                            Some(Notice::Interval(side, r)) => self.progress.interval(spec, side, r),
                            Some(Notice::Lost(w)) => {
                                self.progress.worker(&links[w].addr, &links[w].info.node, false);
                            }
                            None => {}
                        },
                        None => rep.handle_closed(),
                    },
                    _ = tokio::time::sleep_until(deadline) => rep.handle_timeout(),
                    _ = self.interrupt.cancelled() => rep.handle_interrupt(),
                },
                Action::Finished => break,
            }
        }
        let (collected, dead) = rep.finish();
        self.dead = dead;
        collected
    }
}
