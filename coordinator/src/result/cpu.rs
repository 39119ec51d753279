//! CPU cost of a repetition, from the same measured intervals as its
//! throughput: the worker processes' own cores, and node-wide busy cores above
//! the idle baseline with every machine counted once (one job per machine speaks
//! for it, by kernel boot id).

use super::CpuCost;
use super::merge::{Collected, JobData};
use cnibench_proto::msg::{CpuUsage, Role};
use cnibench_proto::plan::ScenarioSpec;

/// Busy (user, system, irq, softirq) and softirq ns of a node sample.
fn busy_ns(u: &CpuUsage) -> Option<(u64, u64)> {
    u.node.map(|n| {
        (
            n.user_ns + n.system_ns + n.irq_ns + n.softirq_ns,
            n.softirq_ns,
        )
    })
}

/// Compute the CPU cost from the same measured intervals as the throughput.
pub(super) fn cpu_cost(
    spec: &ScenarioSpec,
    c: &Collected,
    throughput_bps: Option<f64>,
    rps: Option<f64>,
    cps: Option<f64>,
) -> Option<CpuCost> {
    let cores = |ns: u64, window: u64| (window > 0).then(|| ns as f64 / window as f64);
    let process = |role: Role| -> Option<f64> {
        let per_job: Vec<f64> = c
            .jobs
            .iter()
            .filter(|j| j.role == role)
            .filter_map(JobData::process_cores)
            .collect();
        (!per_job.is_empty()).then(|| per_job.iter().sum())
    };
    // Node counters: one job per machine speaks for it.
    let mut machines: Vec<&str> = Vec::new();
    let (mut node, mut softirq, mut base) = (None::<f64>, None::<f64>, None::<f64>);
    // Node busy time less the cnibench processes' user time: the kernel's
    // network work (softirq included) without the generator's own.
    let mut datapath = Some(0.0);
    let mut node_unavailable = None;
    for j in &c.jobs {
        let key = j.machine_key();
        if machines.contains(&key) {
            continue;
        }
        let m = j.measured_cpu();
        let window: u64 = m.iter().map(|u| u.window_ns).sum();
        let sums = m
            .iter()
            .map(busy_ns)
            .try_fold((0u64, 0u64), |(b, s), x| x.map(|(xb, xs)| (b + xb, s + xs)))
            .filter(|_| !m.is_empty());
        let Some((busy, soft)) = sums else { continue };
        let Some(busy_cores) = cores(busy, window) else {
            continue;
        };
        machines.push(key);
        let idle_busy = j
            .baseline
            .and_then(|b| busy_ns(&b).and_then(|(x, _)| cores(x, b.window_ns)))
            .unwrap_or(0.0);
        // The workers' own CPU on this machine is part of its busy time, so the
        // net cost cannot be lower; a busy or noisy baseline makes it so.
        let own: f64 = c
            .jobs
            .iter()
            .filter(|o| o.machine_key() == key)
            .filter_map(JobData::process_cores)
            .sum();
        let net = busy_cores - idle_busy;
        // Each worker process once (one process may run several jobs).
        let mut processes: Vec<&str> = Vec::new();
        let mut user = Some(0.0);
        for o in c.jobs.iter().filter(|o| o.machine_key() == key) {
            if !processes.contains(&o.worker.as_str()) {
                processes.push(&o.worker);
                user = user.zip(o.user_cores()).map(|(a, b)| a + b);
            }
        }
        datapath = datapath.zip(user).map(|(d, u)| d + (net - u).max(0.0));
        if idle_busy > 0.5 * f64::from(j.cpus.max(1)) || net < 0.5 * own {
            node_unavailable = Some(format!(
                "node CPU of {key}: idle baseline {idle_busy:.2} cores busy, {busy_cores:.2} during traffic, workers' own {own:.2}: something else loaded the machine, node cost not computed"
            ));
        }
        let add = |acc: &mut Option<f64>, v: f64| *acc = Some(acc.unwrap_or(0.0) + v);
        add(&mut node, net.max(0.0));
        add(&mut softirq, cores(soft, window).unwrap_or(0.0));
        add(&mut base, idle_busy);
    }
    if node_unavailable.is_some() || node.is_none() {
        node = None;
        datapath = None;
    }
    let client_process_cores = process(Role::Client);
    let server_process_cores = process(Role::Server);
    if node.is_none() && client_process_cores.is_none() && server_process_cores.is_none() {
        return None;
    }
    let measured: Vec<u32> = c
        .jobs
        .iter()
        .filter(|j| j.role == Role::Client)
        .flat_map(|j| j.reports.iter().filter(|r| !r.warmup).map(|r| r.seq))
        .collect::<std::collections::BTreeSet<u32>>()
        .into_iter()
        .collect();
    let busiest: Vec<f64> = measured
        .iter()
        .filter_map(|&seq| interval_sender_cores(c, seq))
        .collect();
    let sender_thread_cores =
        (!busiest.is_empty()).then(|| busiest.iter().sum::<f64>() / busiest.len() as f64);
    let per_of = |cores: Option<f64>, unit: Option<f64>, scale: f64| match (cores, unit) {
        (Some(n), Some(u)) if u > 0.0 => Some(n / (u / scale)),
        _ => None,
    };
    let per = |unit: Option<f64>, scale: f64| per_of(node, unit, scale);
    let stream = spec.traffic.is_stream();
    let gbps = throughput_bps.filter(|_| stream);
    let rps = rps.filter(|_| !spec.traffic.connects_per_transaction());
    let client_users: Vec<f64> = c
        .jobs
        .iter()
        .filter(|j| j.role == Role::Client)
        .filter_map(JobData::user_cores)
        .collect();
    Some(CpuCost {
        client_process_cores,
        server_process_cores,
        node_cores: node,
        node_softirq_cores: softirq,
        node_unavailable,
        baseline_node_cores: base,
        shared_machine: machines.len() < c.jobs.len()
            || c.jobs.windows(2).any(|w| w[0].worker == w[1].worker),
        sender_thread_cores,
        cores_per_gbps: per(gbps, 1e9),
        cores_per_10k_rps: per(rps, 1e4),
        cores_per_1k_cps: per(cps, 1e3),
        generator_user_cores: (!client_users.is_empty()).then(|| client_users.iter().sum()),
        datapath_cores: datapath,
        datapath_cores_per_gbps: per_of(datapath, gbps, 1e9),
        datapath_cores_per_10k_rps: per_of(datapath, rps, 1e4),
        datapath_cores_per_1k_cps: per_of(datapath, cps, 1e3),
    })
}

/// Cores of the busiest sending thread of any client in interval `seq`.
pub(super) fn interval_sender_cores(c: &Collected, seq: u32) -> Option<f64> {
    c.jobs
        .iter()
        .filter(|j| j.role == Role::Client)
        .filter_map(|j| j.reports.iter().find(|r| r.seq == seq)?.cpu)
        .filter(|u| u.window_ns > 0)
        .filter_map(|u| Some(u.busiest_sender_ns? as f64 / u.window_ns as f64))
        .max_by(f64::total_cmp)
}

/// Node busy cores in interval `seq`, each machine counted once.
pub(super) fn interval_node_cores(c: &Collected, seq: u32) -> Option<f64> {
    let mut seen: Vec<&str> = Vec::new();
    let mut total = None;
    for j in &c.jobs {
        let key = j.machine_key();
        let Some(u) = j.reports.iter().find(|r| r.seq == seq).and_then(|r| r.cpu) else {
            continue;
        };
        if seen.contains(&key) || u.window_ns == 0 {
            continue;
        }
        if let Some((busy, _)) = busy_ns(&u) {
            seen.push(key);
            total = Some(total.unwrap_or(0.0) + busy as f64 / u.window_ns as f64);
        }
    }
    total
}

impl JobData {
    /// Which machine's node counters this job reads (workers without a boot id
    /// count as machines of their own).
    fn machine_key(&self) -> &str {
        self.machine.as_deref().unwrap_or(self.worker.as_str())
    }

    /// CPU samples of the measured (non-warm-up) intervals.
    fn measured_cpu(&self) -> Vec<CpuUsage> {
        self.reports
            .iter()
            .filter(|r| !r.warmup)
            .filter_map(|r| r.cpu)
            .collect()
    }

    /// User-space cores of this worker process over the measured intervals.
    fn user_cores(&self) -> Option<f64> {
        let m = self.measured_cpu();
        let ns: u64 = m.iter().map(|u| u.process_user_ns).sum::<Option<u64>>()?;
        let window: u64 = m.iter().map(|u| u.window_ns).sum();
        (window > 0).then(|| ns as f64 / window as f64)
    }

    /// Cores this worker process used over the measured intervals.
    fn process_cores(&self) -> Option<f64> {
        let m = self.measured_cpu();
        let ns: u64 = m.iter().map(|u| u.process_ns).sum::<Option<u64>>()?;
        let window: u64 = m.iter().map(|u| u.window_ns).sum();
        (window > 0).then(|| ns as f64 / window as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::result::fixtures::{job, report};
    use cnibench_proto::msg::NodeCpu;

    /// A sample of one second with `busy_ms` busy on the node (half of it softirq)
    /// and `process_ms` in the worker.
    fn sample(busy_ms: u64, process_ms: u64) -> CpuUsage {
        CpuUsage {
            window_ns: 1_000_000_000,
            node: Some(NodeCpu {
                user_ns: busy_ms * 500_000,
                softirq_ns: busy_ms * 500_000,
                ..NodeCpu::default()
            }),
            process_ns: Some(process_ms * 1_000_000),
            process_user_ns: Some(process_ms * 500_000),
            cgroup_ns: None,
            busiest_sender_ns: None,
        }
    }

    #[test]
    fn the_busiest_sending_thread_per_interval_and_over_them() {
        // Two clients; in interval 1 the first's busiest thread is at 0.5 core,
        // the second's at 0.9; in interval 2 at 1.0 and 0.2.
        let client = |busy_ms: [u64; 2]| {
            let mut reports = vec![report(0, &[], true)];
            for (i, ms) in busy_ms.into_iter().enumerate() {
                let mut r = report(i as u32 + 1, &[], false);
                r.cpu = Some(CpuUsage {
                    busiest_sender_ns: Some(ms * 1_000_000),
                    ..sample(1000, 1000)
                });
                reports.push(r);
            }
            job(Role::Client, reports, Some(3))
        };
        let c = Collected {
            jobs: vec![client([500, 1000]), client([900, 200])],
            failures: vec![],
        };
        assert_eq!(interval_sender_cores(&c, 1), Some(0.9));
        assert_eq!(interval_sender_cores(&c, 2), Some(1.0));
        assert_eq!(interval_sender_cores(&c, 0), None, "warm-up: none reported");
        let cost = cpu_cost(&crate::result::fixtures::spec(), &c, None, None, None).unwrap();
        assert_eq!(cost.sender_thread_cores, Some(0.95));
    }

    #[test]
    fn a_machine_counts_once_and_the_baseline_is_subtracted() {
        let with_cpu = |busy_ms, process_ms| {
            (0..3)
                .map(|q| {
                    let mut r = report(q, &[], q == 0);
                    r.cpu = Some(sample(busy_ms, process_ms));
                    r
                })
                .collect()
        };
        let mut c = Collected {
            jobs: vec![
                job(Role::Client, with_cpu(1500, 400), Some(3)),
                job(Role::Server, with_cpu(1500, 300), Some(3)),
            ],
            failures: vec![],
        };
        for j in &mut c.jobs {
            j.machine = Some("boot-1".into());
            j.baseline = Some(sample(100, 0));
        }
        // Both jobs read the same node counters: 1.5 busy cores, once.
        assert_eq!(interval_node_cores(&c, 1), Some(1.5));
        let cost = cpu_cost(&crate::result::fixtures::spec(), &c, None, Some(1e4), None).unwrap();
        assert!(cost.shared_machine);
        assert_eq!(cost.node_cores, Some(1.4), "1.5 busy minus 0.1 idle");
        assert_eq!(cost.node_softirq_cores, Some(0.75));
        assert_eq!(cost.client_process_cores, Some(0.4));
        assert_eq!(cost.cores_per_10k_rps, Some(1.4));
        // The generator's user time apart (half its process time here), and
        // the datapath: 1.4 minus both processes' user time (0.2 + 0.15).
        assert_eq!(cost.generator_user_cores, Some(0.2));
        let d = cost.datapath_cores.unwrap();
        assert!((d - 1.05).abs() < 1e-9, "{d}");
        assert!((cost.datapath_cores_per_10k_rps.unwrap() - 1.05).abs() < 1e-9);
        assert_eq!(cost.datapath_cores_per_gbps, None, "not a stream");
        assert_eq!(
            cost.sender_thread_cores, None,
            "no sending threads reported"
        );
        // On two machines, each counts.
        c.jobs[1].machine = Some("boot-2".into());
        assert_eq!(interval_node_cores(&c, 1), Some(3.0));
    }
}
