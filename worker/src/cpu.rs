//! CPU accounting for the cost of a datapath: node-wide time by state from
//! `/proc/stat` (softirq is where much of the network datapath runs, so it is kept
//! apart), this process's user+system time from `/proc/self/stat`, and its cgroup's
//! usage from `cpu.stat` (cgroup v2) or `cpuacct.usage` (v1) when present; and,
//! per thread from `/proc/self/task/TID/stat`, the time of the threads that send
//! a job's traffic (they register with its recorder:
//! [`Recorder::sending_thread`](crate::recorder::Recorder::sending_thread)), of
//! which the busiest is reported: one lane runs on one thread, and a thread at a
//! whole core is a generator that cannot go faster.
//!
//! Parsing is pure (tested on fixed text); [`Snapshot::take`] reads the files, and
//! [`usage`] turns two snapshots into a [`CpuUsage`] in nanoseconds. `/proc` times
//! are in USER_HZ ticks, which the kernel fixes at 100 per second for this interface.

use cnibench_proto::msg::{CpuUsage, NodeCpu};
use std::path::PathBuf;
use std::time::Instant;

/// Nanoseconds per USER_HZ tick (USER_HZ = 100 on every Linux architecture's /proc ABI).
const NS_PER_TICK: u64 = 10_000_000;

/// Node-wide cumulative ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NodeTicks {
    user: u64,
    system: u64,
    idle: u64,
    irq: u64,
    softirq: u64,
    steal: u64,
}

/// Parse the aggregate `cpu` line of /proc/stat.
pub fn parse_proc_stat(text: &str) -> Option<NodeTicks> {
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    let at = |i: usize| v.get(i).copied().unwrap_or(0);
    // user nice system idle iowait irq softirq steal guest guest_nice; guest time is
    // already included in user.
    Some(NodeTicks {
        user: at(0) + at(1),
        system: at(2),
        idle: at(3) + at(4),
        irq: at(5),
        softirq: at(6),
        steal: at(7),
    })
}

/// Parse user+system ticks from /proc/PID/stat (the command name may contain
/// spaces and parentheses, so fields are counted after the last `)`).
pub fn parse_pid_stat(text: &str) -> Option<u64> {
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields after the name start at `state` (field 3); utime and stime are 14 and 15.
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// User ticks from /proc/PID/stat (field 14).
pub fn parse_pid_user(text: &str) -> Option<u64> {
    let rest = &text[text.rfind(')')? + 1..];
    rest.split_whitespace().nth(11)?.parse().ok()
}

/// User+system ticks of the calling thread.
pub fn this_thread_ticks() -> Option<u64> {
    parse_pid_stat(&std::fs::read_to_string("/proc/thread-self/stat").ok()?)
}

/// One sending thread at a snapshot: its id, ticks, and ticks when it began
/// to send.
type ThreadTicks = (i32, u64, u64);

/// User+system ticks of the sending threads `senders` (id, ticks when it began
/// to send) that still run.
fn thread_ticks(senders: &[(i32, u64)]) -> Vec<ThreadTicks> {
    senders
        .iter()
        .filter_map(|&(tid, since)| {
            let text = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok()?;
            Some((tid, parse_pid_stat(&text)?, since))
        })
        .collect()
}

/// The most ticks any sending thread in `to` used since `from` (or since it
/// began to send, if that was later); `None` without sending threads.
fn busiest_sender(from: &[ThreadTicks], to: &[ThreadTicks]) -> Option<u64> {
    to.iter()
        .map(|&(tid, t, since)| {
            let before = from.iter().find(|f| f.0 == tid).map_or(since, |f| f.1);
            t.saturating_sub(before)
        })
        .max()
}

/// `usage_usec` from a cgroup v2 cpu.stat, in ns.
pub fn parse_cgroup_v2(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("usage_usec "))?;
    line.split_whitespace()
        .nth(1)?
        .parse::<u64>()
        .ok()
        .map(|us| us * 1000)
}

/// Where this process's cgroup CPU usage can be read, from /proc/self/cgroup.
fn cgroup_usage_path(cgroup: &str) -> Option<(PathBuf, bool)> {
    for line in cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let path = path.trim_start_matches('/');
        if controllers.is_empty() {
            let p = PathBuf::from("/sys/fs/cgroup").join(path).join("cpu.stat");
            if p.exists() {
                return Some((p, true));
            }
        } else if controllers.split(',').any(|c| c == "cpuacct") {
            for dir in ["cpu,cpuacct", "cpuacct"] {
                let p = PathBuf::from("/sys/fs/cgroup")
                    .join(dir)
                    .join(path)
                    .join("cpuacct.usage");
                if p.exists() {
                    return Some((p, false));
                }
            }
        }
    }
    None
}

/// Cumulative CPU counters at one instant.
#[derive(Debug, Clone)]
pub struct Snapshot {
    at: Instant,
    node: Option<NodeTicks>,
    process_ticks: Option<u64>,
    process_user_ticks: Option<u64>,
    cgroup_ns: Option<u64>,
    /// Ticks of the sending threads.
    senders: Vec<ThreadTicks>,
}

impl Snapshot {
    /// Read the counters now, with those of the threads `senders` (a job's
    /// sending threads: id, ticks when each began to send). Missing files give
    /// `None` fields, never an error.
    pub fn take(senders: &[(i32, u64)]) -> Snapshot {
        let read = |p: &str| std::fs::read_to_string(p).ok();
        let cgroup_ns = read("/proc/self/cgroup")
            .and_then(|c| cgroup_usage_path(&c))
            .and_then(|(p, v2)| {
                let text = std::fs::read_to_string(p).ok()?;
                if v2 {
                    parse_cgroup_v2(&text)
                } else {
                    text.trim().parse().ok()
                }
            });
        let own = read("/proc/self/stat");
        Snapshot {
            at: Instant::now(),
            node: read("/proc/stat").as_deref().and_then(parse_proc_stat),
            process_ticks: own.as_deref().and_then(parse_pid_stat),
            process_user_ticks: own.as_deref().and_then(parse_pid_user),
            cgroup_ns,
            senders: thread_ticks(senders),
        }
    }
}

/// CPU used between two snapshots.
pub fn usage(from: &Snapshot, to: &Snapshot) -> CpuUsage {
    let ticks = |a: u64, b: u64| b.saturating_sub(a) * NS_PER_TICK;
    let node = match (from.node, to.node) {
        (Some(a), Some(b)) => Some(NodeCpu {
            user_ns: ticks(a.user, b.user),
            system_ns: ticks(a.system, b.system),
            softirq_ns: ticks(a.softirq, b.softirq),
            irq_ns: ticks(a.irq, b.irq),
            steal_ns: ticks(a.steal, b.steal),
            idle_ns: ticks(a.idle, b.idle),
        }),
        _ => None,
    };
    CpuUsage {
        window_ns: u64::try_from(to.at.saturating_duration_since(from.at).as_nanos())
            .unwrap_or(u64::MAX),
        node,
        process_ns: from
            .process_ticks
            .zip(to.process_ticks)
            .map(|(a, b)| ticks(a, b)),
        process_user_ns: from
            .process_user_ticks
            .zip(to.process_user_ticks)
            .map(|(a, b)| ticks(a, b)),
        cgroup_ns: from
            .cgroup_ns
            .zip(to.cgroup_ns)
            .map(|(a, b)| b.saturating_sub(a)),
        busiest_sender_ns: busiest_sender(&from.senders, &to.senders).map(|t| t * NS_PER_TICK),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_stat() {
        let t = "cpu  100 5 50 1000 20 3 7 2 0 0\ncpu0 50 2 25 500 10 1 3 1 0 0\nintr 1\n";
        let n = parse_proc_stat(t).unwrap();
        assert_eq!(
            n,
            NodeTicks {
                user: 105,
                system: 50,
                idle: 1020,
                irq: 3,
                softirq: 7,
                steal: 2
            }
        );
        assert!(parse_proc_stat("garbage").is_none());
        assert!(parse_proc_stat("cpu  1 x 3").is_none());
    }

    #[test]
    fn parses_pid_stat_with_odd_names() {
        let t = "1234 (cnib (x) y) S 1 1234 1234 0 -1 4194560 100 0 0 0 42 8 0 0 20 0 3 0 123 0 0";
        assert_eq!(parse_pid_stat(t), Some(50));
        assert_eq!(parse_pid_user(t), Some(42));
        assert_eq!(parse_pid_stat("1 (x) S 1"), None);
    }

    #[test]
    fn the_busiest_sending_thread() {
        let t = "4242 (cnibench-lanes-) R 1 1234 1234 0 -1 4194560 100 0 0 0 90 7 0 0 20 0 3 0 123";
        assert_eq!(parse_pid_stat(t), Some(97));
        // The busiest sender since the last sample, or since it began to send
        // (a pool thread that worked before); a thread id reused by a younger
        // thread not below zero.
        let from = [(1, 100, 0), (2, 50, 0), (3, 500, 0)];
        let to = [
            (1, 190, 0),
            (2, 60, 0),
            (3, 20, 0),
            (4, 130, 100),
            (5, 80, 0),
        ];
        assert_eq!(busiest_sender(&from, &to), Some(90));
        assert_eq!(busiest_sender(&from, &to[3..]), Some(80));
        assert_eq!(busiest_sender(&from, &[]), None);
    }

    #[test]
    fn measures_a_busy_sending_thread() {
        // A sending thread burns 200 ms of CPU (by its own count, not the
        // clock): the busiest sender has at least that. Other threads do not
        // count.
        let rec = crate::recorder::Recorder::default();
        let a = Snapshot::take(&[]);
        let b = std::thread::scope(|s| {
            s.spawn(|| {
                let _sending = rec.sending_thread();
                let own = || this_thread_ticks().unwrap();
                let (from, start) = (own(), Instant::now());
                let mut x = 0u64;
                while own() < from + 20 {
                    for _ in 0..100_000 {
                        x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                    }
                    assert!(start.elapsed().as_secs() < 60, "no CPU for a minute");
                }
                std::hint::black_box(x);
                // Sampled while the thread still runs (its stat goes with it).
                Snapshot::take(&rec.sending_threads())
            })
            .join()
            .unwrap()
        });
        let u = usage(&a, &b);
        let busiest = u.busiest_sender_ns.unwrap();
        assert!(busiest >= 200_000_000, "{busiest} ns");
        assert!(busiest <= u.process_ns.unwrap(), "{u:?}");
        assert!(rec.sending_threads().is_empty(), "unregistered when done");
        assert_eq!(usage(&a, &Snapshot::take(&[])).busiest_sender_ns, None);
    }

    #[test]
    fn parses_cgroup_v2() {
        assert_eq!(
            parse_cgroup_v2("usage_usec 1500\nuser_usec 1000\n"),
            Some(1_500_000)
        );
        assert_eq!(parse_cgroup_v2("nothing"), None);
    }

    #[test]
    fn measures_own_busy_loop() {
        // Burn until the kernel has charged this process 300 ms of CPU more (by
        // its own account, not by the clock: on a busy machine that takes longer),
        // then check the sampler saw it in the right unit.
        let own_ticks = || {
            std::fs::read_to_string("/proc/self/stat")
                .ok()
                .as_deref()
                .and_then(parse_pid_stat)
                .unwrap()
        };
        let a = Snapshot::take(&[]);
        let (from, start) = (own_ticks(), Instant::now());
        let mut x = 0u64;
        while own_ticks() < from + 30 {
            for _ in 0..100_000 {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
            }
            assert!(start.elapsed().as_secs() < 60, "no CPU for a minute");
        }
        std::hint::black_box(x);
        let u = usage(&a, &Snapshot::take(&[]));
        let own = u.process_ns.unwrap();
        assert!(own >= 300_000_000, "own {own} ns");
        // A busy loop in user space: most of it user time.
        let user = u.process_user_ns.unwrap();
        assert!(user <= own && user >= own / 2, "user {user} of {own} ns");
        // Never beyond the machine's CPUs over the window (a wrong tick unit
        // would be off by a factor of ten or more).
        let cpus = cnibench_net::sysinfo::cpus() as u64;
        assert!(
            own <= (cpus + 1) * u.window_ns,
            "own {own} ns in {} ns on {cpus} CPUs",
            u.window_ns
        );
        // The node counters include this process's time.
        let node = u.node.unwrap();
        let busy = node.user_ns + node.system_ns;
        assert!(busy >= own / 2, "node busy {busy} ns, own {own} ns");
    }
}
