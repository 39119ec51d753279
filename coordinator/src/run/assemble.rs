//! Building the result from what the run placed and measured: one
//! [`ScenarioResult`] per scenario (where it ran, its repetitions and their
//! summary) and the [`RunResult`] around them (run id, environment, overall
//! verdicts). Pure apart from the clock, the host's description and the run id's
//! random suffix.

use super::placement::{Placement, Seat};
use crate::result::{
    self, Environment, Machine, RepResult, RunResult, ScenarioResult, SoakResult, Status,
    SweepResult, WorkerEnv,
};
use cnibench_proto::clock::unix_now_ns;
use cnibench_proto::plan::{Plan, ScenarioSpec};

/// What one scenario measured: its repetitions (for a sweep: the best step) and
/// its sweep, if it had one.
pub(super) type Measured = (Vec<RepResult>, Option<SweepResult>);

/// One scenario's result. An external target is its own "node".
pub(super) fn scenario_result(
    spec: &ScenarioSpec,
    p: &Placement,
    seats: &[Seat<'_>],
    cni: String,
    (reps, sweep): Measured,
) -> ScenarioResult {
    let addrs = |ws: &[usize]| ws.iter().map(|&w| seats[w].addr.to_string()).collect();
    let (server_node, server_workers) = match (p.servers.first(), spec.target) {
        (Some(&s), _) => (seats[s].node.to_string(), addrs(&p.servers)),
        (None, t) => (
            "external".to_string(),
            t.iter().map(ToString::to_string).collect(),
        ),
    };
    ScenarioResult {
        name: spec.name.clone(),
        traffic: spec.traffic,
        path: spec.path,
        cni,
        client_node: p.clients.first().map_or("", |&c| seats[c].node).to_string(),
        server_node,
        client_workers: addrs(&p.clients),
        server_workers,
        summary: result::summarize(&reps),
        repetitions: reps,
        sweep,
    }
}

/// Who and when: what identifies a run in every result written of it.
pub(super) struct RunId<'a> {
    /// The plan file as given.
    pub plan_file: &'a str,
    /// The start, unix ns.
    pub started_ns: i64,
    /// The run id ([`run_id`]).
    pub id: &'a str,
}

/// The run's result, as of now. A soak too short to reach a scenario did not
/// run it: that scenario is left out (and the run is not `ok`). `incomplete`
/// says how far a run still going has got (then it is not `ok` either).
pub(super) fn run_result(
    id: &RunId<'_>,
    plan: Plan,
    workers: Vec<WorkerEnv>,
    mut scenarios: Vec<ScenarioResult>,
    soak: Option<SoakResult>,
    incomplete: Option<String>,
) -> RunResult {
    scenarios.retain(|s| !s.repetitions.is_empty() || s.sweep.is_some() || soak.is_none());
    let ok = incomplete.is_none()
        && scenarios.len() == plan.scenarios.len()
        && scenarios.iter().all(|s| {
            !s.repetitions.is_empty() && s.repetitions.iter().all(|r| r.status == Status::Ok)
        });
    RunResult {
        schema_version: result::SCHEMA_VERSION,
        tool: format!("cnibench {}", crate::VERSION),
        run_id: id.id.to_string(),
        plan_file: id.plan_file.to_string(),
        started_at_unix_ns: id.started_ns,
        finished_at_unix_ns: unix_now_ns(),
        environment: Environment {
            coordinator: local_machine(),
            workers,
        },
        plan,
        slo_ok: crate::slo::all_held(&scenarios),
        soak,
        scenarios,
        ok,
        incomplete,
    }
}

fn local_machine() -> Machine {
    use cnibench_net::sysinfo;
    Machine {
        host: sysinfo::hostname(),
        kernel: sysinfo::kernel(),
        cpu_model: sysinfo::cpu_model(),
        cpus: sysinfo::cpus(),
    }
}

/// The start second and a random suffix: sorts by time, unique in practice.
pub(super) fn run_id(started_ns: i64) -> String {
    let suffix: u32 = rand::random();
    format!("{}-{suffix:08x}", started_ns / 1_000_000_000)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::result::Collected;
    use cnibench_proto::plan;

    fn plan(scenarios: &[&str]) -> Plan {
        let mut text = "name: t\nscenarios:\n".to_string();
        for s in scenarios {
            text.push_str(&format!("  - {{{s}}}\n"));
        }
        plan::load("t.yaml", &text).unwrap()
    }

    const SEATS: [Seat<'static>; 3] = [
        Seat {
            index: 0,
            addr: "w0",
            node: "a",
        },
        Seat {
            index: 1,
            addr: "w1",
            node: "b",
        },
        Seat {
            index: 2,
            addr: "w2",
            node: "b",
        },
    ];

    fn rep(spec: &ScenarioSpec, status: Status) -> RepResult {
        let mut r = result::rep_result(
            spec,
            1,
            Collected {
                jobs: Vec::new(),
                failures: Vec::new(),
            },
        );
        r.status = status;
        r
    }

    #[test]
    fn a_scenario_says_where_it_ran() {
        let p = plan(&[
            "name: s, traffic: tcp-rr, path: pod-to-pod-cross-node, clients: 2, servers: 2",
        ]);
        let spec = &p.scenarios[0];
        let placement = Placement {
            clients: vec![0, 0],
            servers: vec![1, 2],
        };
        let r = scenario_result(
            spec,
            &placement,
            &SEATS,
            "flannel".into(),
            (vec![rep(spec, Status::Ok)], None),
        );
        assert_eq!(
            (r.name.as_str(), r.traffic.as_str(), r.path.as_str()),
            ("s", "tcp-rr", "pod-to-pod-cross-node")
        );
        assert_eq!((r.cni.as_str(), r.client_node.as_str()), ("flannel", "a"));
        assert_eq!(r.server_node, "b");
        assert_eq!(r.client_workers, ["w0", "w0"]);
        assert_eq!(r.server_workers, ["w1", "w2"]);
        assert_eq!(r.repetitions.len(), 1);
    }

    #[test]
    fn an_external_target_is_its_own_node() {
        let p = plan(&["name: e, traffic: http1, path: pod-to-external, target: 192.0.2.1:80"]);
        let placement = Placement {
            clients: vec![1],
            servers: Vec::new(),
        };
        let r = scenario_result(
            &p.scenarios[0],
            &placement,
            &SEATS,
            "c".into(),
            (vec![], None),
        );
        assert_eq!(
            (r.client_node.as_str(), r.server_node.as_str()),
            ("b", "external")
        );
        assert_eq!(r.client_workers, ["w1"]);
        assert_eq!(r.server_workers, ["192.0.2.1:80"]);
    }

    #[test]
    fn the_run_is_ok_only_when_every_repetition_is() {
        let p = plan(&[
            "name: x, traffic: tcp-rr, path: pod-to-pod-cross-node",
            "name: y, traffic: tcp-rr, path: pod-to-pod-cross-node",
        ]);
        let placement = Placement {
            clients: vec![0],
            servers: vec![1],
        };
        let results = |statuses: &[&[Status]]| -> Vec<ScenarioResult> {
            p.scenarios
                .iter()
                .zip(statuses)
                .map(|(spec, st)| {
                    let reps = st.iter().map(|&s| rep(spec, s)).collect();
                    scenario_result(spec, &placement, &SEATS, "c".into(), (reps, None))
                })
                .collect()
        };
        let ok: &[Status] = &[Status::Ok, Status::Ok];
        let started = 1_700_000_000_123_456_789;
        let id = run_id(started);
        let id = RunId {
            plan_file: "p.yaml",
            started_ns: started,
            id: &id,
        };
        let run = |scenarios| run_result(&id, p.clone(), Vec::new(), scenarios, None, None);

        let r = run(results(&[ok, ok]));
        assert!(r.ok);
        assert_eq!((r.plan_file.as_str(), r.scenarios.len()), ("p.yaml", 2));
        let (secs, suffix) = r.run_id.split_once('-').unwrap();
        assert_eq!((secs, suffix.len()), ("1700000000", 8));
        assert!(r.finished_at_unix_ns >= r.started_at_unix_ns);
        assert_eq!(r.incomplete, None);
        // Written while the run goes on: every repetition so far ok, yet the
        // run is not, and the same run id throughout.
        let so_far = Some("after 4 of 5 repetitions".to_string());
        let r2 = run_result(&id, p.clone(), Vec::new(), results(&[ok, ok]), None, so_far);
        assert!(!r2.ok);
        assert_eq!(r2.run_id, r.run_id);

        assert!(!run(results(&[ok, &[Status::Ok, Status::Partial]])).ok);
        assert!(!run(results(&[ok, &[]])).ok);
        // Interrupted before the second scenario.
        let r = run(results(&[ok]));
        assert_eq!((r.scenarios.len(), r.ok), (1, false));
    }

    #[test]
    fn a_soak_leaves_out_the_scenarios_it_did_not_reach() {
        let p = plan(&[
            "name: x, traffic: tcp-rr, path: pod-to-pod-cross-node",
            "name: y, traffic: tcp-rr, path: pod-to-pod-cross-node",
        ]);
        let placement = Placement {
            clients: vec![0],
            servers: vec![1],
        };
        let spec = &p.scenarios[0];
        let scenarios = vec![
            scenario_result(
                spec,
                &placement,
                &SEATS,
                "c".into(),
                (vec![rep(spec, Status::Ok)], None),
            ),
            scenario_result(
                &p.scenarios[1],
                &placement,
                &SEATS,
                "c".into(),
                (vec![], None),
            ),
        ];
        let soak = SoakResult {
            duration_s: 1.0,
            window_s: 1.0,
            ended: "duration reached".into(),
            windows: Vec::new(),
            events: Vec::new(),
        };
        let id = RunId {
            plan_file: "p.yaml",
            started_ns: 0,
            id: "0-0",
        };
        let r = run_result(&id, p.clone(), Vec::new(), scenarios, Some(soak), None);
        let names: Vec<_> = r.scenarios.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["x"]);
        assert!(!r.ok);
        assert!(r.soak.is_some());
    }
}
