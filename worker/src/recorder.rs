//! Per-job measurement window: a latency histogram and counters that engine tasks
//! add to, and that the interval reporter swaps out once per interval. Swapping
//! under one short lock keeps each interval's histogram and counters consistent
//! with each other.

use cnibench_proto::hist;
use cnibench_proto::msg::{Counters, ScheduleStats, UdpStats};
use hdrhistogram::Histogram;
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// What one interval accumulates.
#[derive(Debug)]
pub struct Window {
    /// Latency (from the intended send time in open loop).
    pub latency: Histogram<u64>,
    /// Service time (from the actual send), open loop only.
    pub service: Histogram<u64>,
    /// One-way transit (receiver clock - sender clock + shift), UDP receivers.
    pub transit: Histogram<u64>,
    /// Open loop: how late each send left, from when it could have (its
    /// intended time, or when its lane came free if that was later).
    pub send_lag: Histogram<u64>,
    /// Counters.
    pub counters: Counters,
    /// Open-loop schedule keeping.
    pub schedule: ScheduleStats,
    /// Datagram accounting (UDP receivers).
    pub udp: Option<UdpStats>,
    /// UDP receivers: each sender's RFC 3550 jitter at its last datagram in
    /// this window, ns (averaged into `udp` when the window is taken).
    pub flow_jitter: HashMap<SocketAddr, u64>,
}

impl Window {
    fn new() -> Self {
        Window {
            latency: hist::new_latency(),
            service: hist::new_latency(),
            transit: hist::new_latency(),
            send_lag: hist::new_latency(),
            counters: Counters::default(),
            schedule: ScheduleStats::default(),
            udp: None,
            flow_jitter: HashMap::new(),
        }
    }
}

/// Shared by all tasks of one job.
#[derive(Debug)]
pub struct Recorder {
    window: Mutex<Window>,
    draining: AtomicBool,
    /// The job's stop token: once cancelled, failures are teardown (connections
    /// dropped on purpose, connection tasks ending on the same token), not data.
    stopped: CancellationToken,
    /// The threads sending this job's traffic right now: thread id, and its
    /// CPU ticks when it began to.
    senders: Mutex<Vec<(i32, u64)>>,
}

/// A thread registered as sending a job's traffic, until dropped.
#[derive(Debug)]
pub struct Sending<'a> {
    rec: &'a Recorder,
    tid: i32,
}

impl Drop for Sending<'_> {
    fn drop(&mut self) {
        let mut s = self.rec.senders.lock().unwrap_or_else(|p| p.into_inner());
        s.retain(|(t, _)| *t != self.tid);
    }
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new(CancellationToken::new())
    }
}

impl Recorder {
    /// A recorder for a job stopped by `stop`.
    pub fn new(stop: CancellationToken) -> Self {
        Recorder {
            window: Mutex::new(Window::new()),
            draining: AtomicBool::new(false),
            stopped: stop,
            senders: Mutex::new(Vec::new()),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut Window) -> R) -> R {
        // A poisoned lock only means another task panicked mid-update; the counters
        // are still the best we have.
        let mut w = self.window.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut w)
    }

    /// A completed transaction: its latency, its service time when it differs
    /// (open loop), and payload bytes each way.
    pub fn transaction(
        &self,
        latency: Duration,
        service: Option<Duration>,
        sent: u64,
        received: u64,
    ) {
        let ns = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.with(|w| {
            let mut clamped = hist::record(&mut w.latency, ns(latency));
            if let Some(s) = service {
                clamped |= hist::record(&mut w.service, ns(s));
            }
            w.counters.clamped += u64::from(clamped);
            w.counters.transactions += 1;
            w.counters.bytes_sent += sent;
            w.counters.bytes_received += received;
        });
    }

    /// An open-loop operation reached its intended time. `queued`: the connection
    /// was still busy with the previous one; `lag`: how late the generator sent it
    /// after it could have (its intended time, or when the connection came free),
    /// recorded for every send.
    pub fn scheduled(&self, queued: bool, lag: Duration) {
        let lag_ns = u64::try_from(lag.as_nanos()).unwrap_or(u64::MAX);
        self.with(|w| {
            // A lag of 0 is recorded as the histogram's lowest value, 1 ns.
            w.counters.clamped += u64::from(hist::record(&mut w.send_lag, lag_ns));
            let s = &mut w.schedule;
            s.intended += 1;
            if queued {
                s.queued += 1;
            } else {
                s.max_lag_ns = s.max_lag_ns.max(lag_ns);
                if lag > LAG_BOUND {
                    s.late += 1;
                }
            }
        });
    }

    /// Account for one datagram: `payload` bytes of goodput (0 for a duplicate),
    /// its clock-corrected one-way transit (negative if the correction is off:
    /// counted, not recorded), its sender's jitter now (from its second
    /// datagram on), and the loss/reorder accounting in `f`.
    pub fn datagram(
        &self,
        payload: u64,
        transit_ns: Option<i64>,
        jitter: Option<(SocketAddr, u64)>,
        f: impl FnOnce(&mut UdpStats),
    ) {
        self.with(|w| {
            w.counters.bytes_received += payload;
            if let Some((from, j)) = jitter {
                w.flow_jitter.insert(from, j);
            }
            let u = w.udp.get_or_insert_with(UdpStats::default);
            match transit_ns {
                Some(t) if t > 0 => {
                    w.counters.clamped += u64::from(hist::record(&mut w.transit, t as u64));
                }
                Some(_) => u.transit_negative += 1,
                None => {}
            }
            f(u)
        });
    }

    /// A client sends a request (request/response kinds): an attempt, which
    /// ends as a transaction, a failure ([`Recorder::failed`]) or, if the job
    /// stops first, unfinished ([`Recorder::unfinished`]).
    pub fn attempt(&self) {
        self.with(|w| w.counters.attempts += 1);
    }

    /// An attempt failed, counted by kind; once the job is stopped, it is
    /// unfinished instead (its connection was dropped on purpose).
    pub fn failed(&self, kind: &str) {
        self.with(|w| {
            if self.stopped.is_cancelled() {
                w.counters.unfinished += 1;
            } else {
                w.counters.failed += 1;
                *w.counters.errors.entry(kind.to_string()).or_default() += 1;
            }
        });
    }

    /// An attempt was still in flight when the job stopped.
    pub fn unfinished(&self) {
        self.with(|w| w.counters.unfinished += 1);
    }

    /// At the end of an open-loop job: `n` operations were due by its end but
    /// never sent (their lane was busy). They count as intended, and as queued.
    pub fn unsent(&self, n: u64) {
        self.with(|w| {
            let s = &mut w.schedule;
            s.intended += n;
            s.queued += n;
            s.unsent += n;
        });
    }

    /// A served request (server side of request/response kinds).
    pub fn served(&self, received: u64, sent: u64) {
        self.with(|w| {
            w.counters.transactions += 1;
            w.counters.bytes_sent += sent;
            w.counters.bytes_received += received;
        });
    }

    /// A datagram of `n` bytes sent (udp-stream): counted as an attempt too,
    /// for the receivers' end-of-run loss.
    pub fn sent_datagram(&self, n: u64) {
        self.with(|w| {
            w.counters.bytes_sent += n;
            w.counters.attempts += 1;
        });
    }

    /// Payload bytes written (stream kinds).
    pub fn sent(&self, n: u64) {
        self.with(|w| w.counters.bytes_sent += n);
    }

    /// Payload bytes read (stream kinds).
    pub fn received(&self, n: u64) {
        self.with(|w| w.counters.bytes_received += n);
    }

    /// A connection was established.
    pub fn connection(&self) {
        self.with(|w| w.counters.connections += 1);
    }

    /// A failure, counted by kind.
    pub fn error(&self, kind: &str) {
        if self.stopped.is_cancelled() {
            return;
        }
        self.with(|w| *w.counters.errors.entry(kind.to_string()).or_default() += 1);
    }

    /// An HTTP response of status class `class` (`2xx`...).
    pub fn status(&self, class: &str) {
        self.with(|w| *w.counters.status.entry(class.to_string()).or_default() += 1);
    }

    /// An attempt answered with an HTTP response of status class `class` that is
    /// a failure of kind `kind`: counted together, or, like
    /// [`Recorder::failed`], as unfinished once the job is stopped (so the
    /// status, error and failed counts always agree).
    pub fn failed_status(&self, class: &str, kind: &str) {
        self.with(|w| {
            if self.stopped.is_cancelled() {
                w.counters.unfinished += 1;
                return;
            }
            w.counters.failed += 1;
            *w.counters.status.entry(class.to_string()).or_default() += 1;
            *w.counters.errors.entry(kind.to_string()).or_default() += 1;
        });
    }

    /// A failed I/O operation, classified. While draining, the resets and EOFs that
    /// clients cause by dropping connections at their deadline are not failures.
    pub fn io_error(&self, e: &io::Error) {
        let kind = error_kind(e);
        let teardown = matches!(kind, "reset" | "broken-pipe" | "eof" | "aborted");
        if !(teardown && self.draining.load(Ordering::Relaxed)) {
            self.error(kind);
        }
    }

    /// The calling thread sends this job's traffic (a lane thread, a paced UDP
    /// sender) until the guard is dropped: the worker samples its CPU, since a
    /// thread at a whole core is a generator that cannot go faster.
    pub fn sending_thread(&self) -> Sending<'_> {
        let tid = nix::unistd::gettid().as_raw();
        // A pool thread may have worked for someone else before.
        let since = crate::cpu::this_thread_ticks().unwrap_or(0);
        self.senders
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((tid, since));
        Sending { rec: self, tid }
    }

    /// The threads sending this job's traffic now: thread id, and its CPU ticks
    /// when it began to.
    pub fn sending_threads(&self) -> Vec<(i32, u64)> {
        self.senders
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The measured time is over: from now on, connection teardown is expected.
    pub fn drain(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    /// Take this interval's data and start a fresh window. A receiver's jitter
    /// is the mean over the senders it heard from in the window.
    pub fn take(&self) -> Window {
        let mut w = self.with(|w| std::mem::replace(w, Window::new()));
        let n = w.flow_jitter.len() as u64;
        if let Some(u) = w.udp.as_mut()
            && n > 0
        {
            u.jitter_ns = Some(w.flow_jitter.values().sum::<u64>() / n);
            u.flows = n as u32;
        }
        w
    }
}

/// A free connection sent later than this after its intended time means the
/// generator fell behind (well above timer granularity, ~1 ms in tokio).
pub const LAG_BOUND: Duration = Duration::from_millis(5);

/// Short stable names for error kinds, used as keys in results.
pub fn error_kind(e: &io::Error) -> &'static str {
    use io::ErrorKind::*;
    match e.kind() {
        ConnectionRefused => "connect-refused",
        ConnectionReset => "reset",
        ConnectionAborted => "aborted",
        TimedOut => "timeout",
        UnexpectedEof => "eof",
        BrokenPipe => "broken-pipe",
        AddrNotAvailable => "addr-unavailable",
        AddrInUse => "addr-in-use",
        HostUnreachable => "host-unreachable",
        NetworkUnreachable => "network-unreachable",
        _ => "io-other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_is_the_mean_over_the_senders_heard_in_the_window() {
        let r = Recorder::default();
        let (a, b, stray): (SocketAddr, SocketAddr, SocketAddr) = (
            "10.0.0.1:1".parse().unwrap(),
            "10.0.0.2:1".parse().unwrap(),
            "10.9.9.9:1".parse().unwrap(),
        );
        let count = |u: &mut UdpStats| u.received += 1;
        // A stray sender with a huge jitter, in the first window only.
        r.datagram(1, None, Some((stray, 1_000_000)), count);
        r.datagram(1, None, Some((a, 50)), count);
        let w = r.take();
        assert_eq!(
            w.udp.map(|u| (u.jitter_ns, u.flows)),
            Some((Some(500_025), 2))
        );
        // Each sender's last value in the window, then the mean: not the
        // largest of every sender ever seen.
        r.datagram(1, None, Some((a, 20)), count);
        r.datagram(1, None, Some((a, 10)), count);
        r.datagram(1, None, Some((b, 30)), count);
        r.datagram(1, None, None, count);
        let u = r.take().udp.unwrap();
        assert_eq!((u.jitter_ns, u.flows, u.received), (Some(20), 2, 4));
        // A first datagram has no jitter yet.
        r.datagram(1, None, None, count);
        assert_eq!(r.take().udp.unwrap().jitter_ns, None);
    }

    #[test]
    fn take_resets_the_window() {
        let r = Recorder::default();
        r.transaction(
            Duration::from_micros(50),
            Some(Duration::from_micros(20)),
            10,
            20,
        );
        r.error("reset");
        // Beyond the histograms' range: recorded as 100 s, and counted.
        r.transaction(Duration::from_secs(200), None, 0, 0);
        r.scheduled(true, Duration::ZERO);
        r.scheduled(false, Duration::from_millis(6));
        let w = r.take();
        assert_eq!((w.latency.len(), w.service.len()), (2, 1));
        assert!(w.latency.equivalent(w.latency.max(), hist::HIGHEST_NS));
        let c = w.counters;
        assert_eq!(
            (c.transactions, c.bytes_sent, c.bytes_received, c.clamped),
            (2, 10, 20, 1)
        );
        assert_eq!(c.errors["reset"], 1);
        assert_eq!(
            w.schedule,
            ScheduleStats {
                intended: 2,
                queued: 1,
                late: 1,
                max_lag_ns: 6_000_000,
                unsent: 0,
            }
        );
        // Every send's lag: 0 (queued, sent as soon as the lane was free) and 6 ms.
        assert_eq!(w.send_lag.len(), 2);
        assert_eq!(w.send_lag.max() / 1_000_000, 6);
        let w = r.take();
        assert!(w.latency.is_empty() && w.send_lag.is_empty());
        assert_eq!(w.counters, Counters::default());
        r.drain();
        r.io_error(&io::ErrorKind::ConnectionReset.into());
        r.io_error(&io::ErrorKind::ConnectionRefused.into());
        let c = r.take().counters;
        assert_eq!(c.errors.len(), 1, "only the refusal counts: {:?}", c.errors);
        // Once the job is stopped, nothing is a failure any more.
        let stop = CancellationToken::new();
        let r = Recorder::new(stop.clone());
        r.error("http-5xx");
        r.attempt();
        r.failed_status("5xx", "http-5xx");
        r.attempt();
        r.failed("timeout");
        r.attempt();
        stop.cancel();
        r.error("http-5xx");
        r.failed_status("5xx", "http-5xx");
        r.io_error(&io::ErrorKind::ConnectionRefused.into());
        let c = r.take().counters;
        assert_eq!((c.errors["http-5xx"], c.status["5xx"]), (2, 1));
        assert_eq!(c.errors["timeout"], 1);
        // Every attempt is accounted for: failed before the stop, unfinished after.
        assert_eq!((c.attempts, c.failed, c.unfinished), (3, 2, 1));
    }
}
