//! Sleeps precise to tens of microseconds, for delays that are part of what is
//! measured (the plan's `server_delay`, the end of a `server_stall`), and
//! [`block_until`] for threads that pace their own sends (UDP streams).
//!
//! tokio's timer wheel has 1 ms granularity and rounds deadlines up, so a 2 ms
//! sleep takes about 3.1 ms. Here a wait spends all but its last 2 ms on tokio's
//! cheap timer, then hands the deadline to one dedicated thread that sleeps on a
//! condition variable (the kernel's high-resolution timers, ~50 µs slack) until
//! 150 µs before it, spins the rest, and wakes each waiter through a oneshot
//! channel.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// The part of a wait left to the precise thread.
const PRECISE_TAIL: Duration = Duration::from_millis(2);
/// The part of that the thread spins instead of sleeping.
const SPIN_TAIL: Duration = Duration::from_micros(150);

struct Entry {
    at: Instant,
    seq: u64,
    wake: oneshot::Sender<()>,
}

impl PartialEq for Entry {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Entry {
    /// Reversed, so the max-heap pops the earliest deadline.
    fn cmp(&self, o: &Self) -> Ordering {
        (o.at, o.seq).cmp(&(self.at, self.seq))
    }
}

#[derive(Default)]
struct Queue {
    heap: BinaryHeap<Entry>,
    seq: u64,
}

struct Timer {
    queue: Mutex<Queue>,
    changed: Condvar,
}

fn timer() -> &'static Timer {
    static TIMER: OnceLock<&'static Timer> = OnceLock::new();
    TIMER.get_or_init(|| {
        let t: &'static Timer = Box::leak(Box::new(Timer {
            queue: Mutex::default(),
            changed: Condvar::new(),
        }));
        std::thread::Builder::new()
            .name("cnibench-timer".into())
            .spawn(move || run(t))
            .unwrap_or_else(|e| panic!("cannot start the timer thread: {e}"));
        t
    })
}

fn run(t: &Timer) {
    let mut q = t.queue.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        let now = Instant::now();
        while q.heap.peek().is_some_and(|e| e.at <= now) {
            if let Some(e) = q.heap.pop() {
                let _ = e.wake.send(());
            }
        }
        q = match q.heap.peek().map(|e| e.at - now) {
            // Sleep until just before the deadline (timer slack and wake-up
            // latency are tens of microseconds), then spin the rest out with the
            // lock released, so the wait ends within a few microseconds of it.
            Some(wait) if wait > SPIN_TAIL => {
                t.changed
                    .wait_timeout(q, wait - SPIN_TAIL)
                    .unwrap_or_else(|p| p.into_inner())
                    .0
            }
            Some(_) => {
                drop(q);
                std::thread::yield_now();
                t.queue.lock().unwrap_or_else(|p| p.into_inner())
            }
            None => t.changed.wait(q).unwrap_or_else(|p| p.into_inner()),
        };
    }
}

/// Sleep until `deadline` (tokio instant), precisely.
pub async fn sleep_until(deadline: tokio::time::Instant) {
    let now = tokio::time::Instant::now();
    if deadline <= now {
        return;
    }
    if deadline - now > PRECISE_TAIL {
        tokio::time::sleep_until(deadline - PRECISE_TAIL).await;
    }
    let (wake, woken) = oneshot::channel();
    let t = timer();
    {
        let mut q = t.queue.lock().unwrap_or_else(|p| p.into_inner());
        q.seq += 1;
        let seq = q.seq;
        q.heap.push(Entry {
            at: deadline.into_std(),
            seq,
            wake,
        });
    }
    t.changed.notify_one();
    let _ = woken.await;
}

/// Sleep for `d`, precisely.
pub async fn sleep(d: Duration) {
    sleep_until(tokio::time::Instant::now() + d).await;
}

/// Timer slack of a pacing thread: how late the kernel may end its sleeps to
/// group wake-ups (the default is 50 µs).
const PACING_SLACK_NS: u64 = 1_000;
/// A pacing thread wakes at most this often; what falls due in between leaves
/// together at the next wake-up.
pub const PACING_GRAIN: Duration = Duration::from_micros(50);

/// The waits of a thread that paces its own operations (not a runtime thread).
///
/// It sleeps, not spins: each wait ends within the thread's timer slack (lowered
/// to `PACING_SLACK_NS`) plus the scheduler's wake-up latency, a few to tens of
/// microseconds. It wakes at most once per [`PACING_GRAIN`], and sends what fell
/// due since at once, so each operation leaves within about 50 µs of its own
/// intended time (tokio's timer: up to 1 ms, in bursts) without a busy core for
/// high packet rates.
#[derive(Debug)]
pub struct Pacing {
    last_wake: Option<Instant>,
}

impl Pacing {
    /// Waits for the calling thread; lowers its timer slack.
    pub fn for_this_thread() -> std::io::Result<Pacing> {
        nix::sys::prctl::set_timerslack(PACING_SLACK_NS as _).map_err(std::io::Error::from)?;
        Ok(Pacing { last_wake: None })
    }

    /// Block until `deadline`, or later when the last wake-up is less than a grain
    /// ago; returns false, early, once `stop` is cancelled.
    pub fn wait_until(
        &mut self,
        deadline: Instant,
        stop: &tokio_util::sync::CancellationToken,
    ) -> bool {
        if deadline > Instant::now() {
            let at = match self.last_wake {
                Some(w) => deadline.max(w + PACING_GRAIN),
                None => deadline,
            };
            if !block_until(at, stop) {
                return false;
            }
            self.last_wake = Some(Instant::now());
        }
        !stop.is_cancelled()
    }
}

/// Longest single sleep of [`block_until`], so a stop is noticed this soon.
const STOP_CHECK: Duration = Duration::from_millis(10);

/// Block this (non-runtime) thread until `deadline`, sleeping; returns false,
/// early, once `stop` is cancelled.
pub fn block_until(deadline: Instant, stop: &tokio_util::sync::CancellationToken) -> bool {
    loop {
        if stop.is_cancelled() {
            return false;
        }
        let now = Instant::now();
        if now >= deadline {
            return true;
        }
        std::thread::sleep((deadline - now).min(STOP_CHECK));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sleeps_are_never_early() {
        for _ in 0..20 {
            let t0 = Instant::now();
            sleep(Duration::from_millis(2)).await;
            assert!(
                t0.elapsed() >= Duration::from_millis(2),
                "{:?}",
                t0.elapsed()
            );
        }
    }

    /// How precise: a claim about a quiet machine, so a benchmark rather than a
    /// test (`scripts/bench-timer.sh` runs it).
    #[tokio::test]
    #[ignore = "a benchmark: needs a quiet machine (scripts/bench-timer.sh)"]
    async fn precision() {
        let mut late = Vec::new();
        for _ in 0..200 {
            let t0 = Instant::now();
            sleep(Duration::from_millis(2)).await;
            late.push(t0.elapsed() - Duration::from_millis(2));
        }
        late.sort();
        let (p50, p99) = (late[100], late[198]);
        println!("timer: 2 ms sleeps overshoot by {p50:?} (median), {p99:?} (p99)");
        // tokio's own timer overshoots a 2 ms sleep by ~1.1 ms.
        assert!(p50 < Duration::from_micros(400), "median overshoot {p50:?}");
    }

    #[test]
    fn pacing_waits_are_never_early_and_stop() {
        let stop = tokio_util::sync::CancellationToken::new();
        let mut p = Pacing::for_this_thread().unwrap();
        let t0 = Instant::now();
        for i in 1..=20u32 {
            let due = t0 + Duration::from_micros(37) * i;
            assert!(p.wait_until(due, &stop));
            assert!(Instant::now() >= due);
        }
        stop.cancel();
        assert!(!p.wait_until(t0 + Duration::from_secs(3600), &stop));
    }

    #[tokio::test]
    async fn many_waiters_wake_in_order() {
        let t0 = tokio::time::Instant::now();
        let tasks: Vec<_> = (0..20u64)
            .map(|i| {
                tokio::spawn(async move {
                    sleep_until(t0 + Duration::from_micros(500 * (20 - i))).await;
                    t0.elapsed()
                })
            })
            .collect();
        for (i, t) in tasks.into_iter().enumerate() {
            let woke = t.await.unwrap();
            assert!(
                woke >= Duration::from_micros(500 * (20 - i as u64)),
                "waiter {i} woke early: {woke:?}"
            );
        }
    }
}
