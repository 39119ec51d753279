//! Per-job measurement window: a latency histogram and counters that engine tasks
//! add to, and that the interval reporter swaps out once per interval. Swapping
//! under one short lock keeps each interval's histogram and counters consistent
//! with each other.

use cnibench_proto::hist;
use cnibench_proto::msg::Counters;
use hdrhistogram::Histogram;
use std::io;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

#[derive(Debug)]
struct Window {
    latency: Histogram<u64>,
    counters: Counters,
}

impl Window {
    fn new() -> Self {
        Window {
            latency: hist::new_latency(),
            counters: Counters::default(),
        }
    }
}

/// Shared by all tasks of one job.
#[derive(Debug)]
pub struct Recorder {
    window: Mutex<Window>,
    draining: AtomicBool,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder {
            window: Mutex::new(Window::new()),
            draining: AtomicBool::new(false),
        }
    }
}

impl Recorder {
    fn with<R>(&self, f: impl FnOnce(&mut Window) -> R) -> R {
        // A poisoned lock only means another task panicked mid-update; the counters
        // are still the best we have.
        let mut w = self.window.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut w)
    }

    /// A completed transaction: its latency and payload bytes each way.
    pub fn transaction(&self, latency: Duration, sent: u64, received: u64) {
        let ns = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        self.with(|w| {
            hist::record(&mut w.latency, ns);
            w.counters.transactions += 1;
            w.counters.bytes_sent += sent;
            w.counters.bytes_received += received;
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
        self.with(|w| *w.counters.errors.entry(kind.to_string()).or_default() += 1);
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

    /// The measured time is over: from now on, connection teardown is expected.
    pub fn drain(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    /// Take this interval's data and start a fresh window.
    pub fn take(&self) -> (Histogram<u64>, Counters) {
        let w = self.with(|w| std::mem::replace(w, Window::new()));
        (w.latency, w.counters)
    }
}

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
    fn take_resets_the_window() {
        let r = Recorder::default();
        r.transaction(Duration::from_micros(50), 10, 20);
        r.error("reset");
        let (h, c) = r.take();
        assert_eq!(h.len(), 1);
        assert_eq!(
            (c.transactions, c.bytes_sent, c.bytes_received),
            (1, 10, 20)
        );
        assert_eq!(c.errors["reset"], 1);
        let (h, c) = r.take();
        assert!(h.is_empty());
        assert_eq!(c, Counters::default());
        r.drain();
        r.io_error(&io::ErrorKind::ConnectionReset.into());
        r.io_error(&io::ErrorKind::ConnectionRefused.into());
        let (_, c) = r.take();
        assert_eq!(c.errors.len(), 1, "only the refusal counts: {:?}", c.errors);
    }
}
