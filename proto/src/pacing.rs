//! Open-loop pacing without I/O: a [`Pacer`] yields the intended time of each
//! operation (ns since the job's start), uniformly spaced or as a Poisson process.
//! The caller sleeps until that time; the intended time is what latency is measured
//! from when the request had to wait for the previous one (coordinated-omission
//! correction, as wrk2 does). Tests drive it with plain numbers, no clock.

use serde::{Deserialize, Serialize};

/// How arrivals are spaced in open loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Arrival {
    /// Evenly spaced.
    #[default]
    Uniform,
    /// Exponential gaps (a Poisson process), like independent users.
    Poisson,
}

/// Intended times of successive operations at a fixed mean rate.
#[derive(Debug, Clone)]
pub struct Pacer {
    period_ns: f64,
    arrival: Arrival,
    next_ns: f64,
    rng: u64,
}

impl Pacer {
    /// `rate` operations per second; `phase` in [0, 1) shifts the first operation by
    /// that fraction of a period (so N pacers sharing a rate interleave evenly);
    /// `seed` makes Poisson gaps reproducible.
    pub fn new(rate: f64, arrival: Arrival, phase: f64, seed: u64) -> Pacer {
        let period_ns = if rate > 0.0 {
            1e9 / rate
        } else {
            f64::INFINITY
        };
        Pacer {
            period_ns,
            arrival,
            next_ns: period_ns * phase.clamp(0.0, 1.0),
            rng: seed ^ 0x9e37_79b9_7f4a_7c15,
        }
    }

    /// Intended time of the next operation, ns since start.
    pub fn next_ns(&mut self) -> u64 {
        let at = self.next_ns;
        let gap = match self.arrival {
            Arrival::Uniform => self.period_ns,
            Arrival::Poisson => -self.uniform_open().ln() * self.period_ns,
        };
        self.next_ns += gap;
        at.min(u64::MAX as f64) as u64
    }

    /// Skip every operation due at or before `t_ns`: how many there were. At the
    /// end of a run, what was due but never sent. Poisson gaps are drawn for up
    /// to [`SKIP_DRAWS`] operations; beyond that the rest is counted at the mean
    /// rate (a lane stuck that long is reported, not replayed).
    pub fn skip_until(&mut self, t_ns: u64) -> u64 {
        let t = t_ns as f64;
        let mut n = 0;
        if self.arrival == Arrival::Poisson {
            while self.next_ns <= t && n < SKIP_DRAWS {
                self.next_ns();
                n += 1;
            }
        }
        if self.next_ns <= t && self.period_ns.is_finite() {
            let rest = ((t - self.next_ns) / self.period_ns).floor() + 1.0;
            self.next_ns += rest * self.period_ns;
            n += rest.min(u64::MAX as f64) as u64;
        }
        n
    }

    /// Uniform in (0, 1] from SplitMix64.
    fn uniform_open(&mut self) -> f64 {
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        ((z >> 11) as f64 + 1.0) / (1u64 << 53) as f64
    }
}

/// Most Poisson gaps [`Pacer::skip_until`] draws one by one.
pub const SKIP_DRAWS: u64 = 1 << 20;

/// Split a total rate over `parts` pacers: the rate each gets.
pub fn share(total: f64, parts: u32) -> f64 {
    total / f64::from(parts.max(1))
}

/// Where one pacer sits among all the pacers of a scenario: lane `lane` of the
/// `lanes` of client worker `client` of `clients`. All client workers start at
/// one instant, so their pacers must be told apart: the phases of every lane of
/// every client interleave (uniform arrivals), and every lane has a seed of its
/// own (Poisson).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// This client worker, 0-based.
    pub client: u32,
    /// Client workers of the scenario.
    pub clients: u32,
    /// This lane of the worker, 0-based.
    pub lane: u32,
    /// Lanes of each client worker.
    pub lanes: u32,
}

impl Slot {
    /// This pacer's place among all of them, and how many there are: lane by
    /// lane, the workers in turn (with one lane each, worker `c` is place `c`).
    fn place(self) -> (u64, u64) {
        let clients = u64::from(self.clients.max(1));
        let client = self.client.min(self.clients.saturating_sub(1));
        let place = u64::from(self.lane) * clients + u64::from(client);
        (place, u64::from(self.lanes.max(1)) * clients)
    }

    /// The pacer of this slot, at the client worker's share `worker_rate` of the
    /// scenario's rate (split evenly over its lanes); `seed` is the scenario's.
    pub fn pacer(self, worker_rate: f64, arrival: Arrival, seed: u64) -> Pacer {
        let (i, n) = self.place();
        Pacer::new(
            share(worker_rate, self.lanes),
            arrival,
            i as f64 / n as f64,
            seed ^ i.wrapping_mul(0x2545_f491_4f6c_dd1d),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_is_evenly_spaced_and_phased() {
        let mut p = Pacer::new(1000.0, Arrival::Uniform, 0.5, 1);
        assert_eq!(p.next_ns(), 500_000);
        assert_eq!(p.next_ns(), 1_500_000);
        assert_eq!(p.next_ns(), 2_500_000);
    }

    #[test]
    fn skipping_counts_what_was_due() {
        let mut p = Pacer::new(1000.0, Arrival::Uniform, 0.5, 1);
        assert_eq!(p.next_ns(), 500_000);
        // Due at 1.5, 2.5, ... 9.5 ms: 9 of them.
        assert_eq!(p.skip_until(10_000_000), 9);
        assert_eq!(p.skip_until(10_000_000), 0);
        assert_eq!(p.next_ns(), 10_500_000);
        assert_eq!(p.skip_until(10_500_000), 0, "already taken");
        assert_eq!(p.skip_until(11_500_000), 1, "due at the instant itself");
        // Poisson: as many as drawing them one by one would give.
        let (mut a, mut b) = (
            Pacer::new(10_000.0, Arrival::Poisson, 0.0, 3),
            Pacer::new(10_000.0, Arrival::Poisson, 0.0, 3),
        );
        let mut drawn = 0;
        while a.next_ns() <= 50_000_000 {
            drawn += 1;
        }
        assert_eq!(b.skip_until(50_000_000), drawn);
        assert!((400..600).contains(&drawn), "{drawn}");
        // A lane stuck for an hour at a million a second: counted, not drawn.
        let mut c = Pacer::new(1e6, Arrival::Poisson, 0.0, 3);
        let n = c.skip_until(3_600_000_000_000);
        assert!((n as f64 / 3.6e9 - 1.0).abs() < 0.01, "{n}");
        assert_eq!(
            Pacer::new(0.0, Arrival::Uniform, 0.0, 1).skip_until(u64::MAX),
            0
        );
    }

    #[test]
    fn interleaved_pacers_reach_the_total_rate() {
        // 4 pacers sharing 20k/s over one simulated second: 20k intended sends.
        let n = 4;
        let mut count = 0;
        for i in 0..n {
            let mut p = Pacer::new(
                share(20_000.0, n),
                Arrival::Uniform,
                f64::from(i) / f64::from(n),
                7,
            );
            while p.next_ns() < 1_000_000_000 {
                count += 1;
            }
        }
        assert_eq!(count, 20_000);
    }

    /// The first `n` intended times of each of `clients` x `lanes` pacers
    /// sharing `total` per second, merged and sorted.
    fn merged(total: f64, arrival: Arrival, clients: u32, lanes: u32, n: usize) -> Vec<u64> {
        let mut all = Vec::new();
        for client in 0..clients {
            for lane in 0..lanes {
                let slot = Slot {
                    client,
                    clients,
                    lane,
                    lanes,
                };
                let mut p = slot.pacer(share(total, clients), arrival, 7);
                all.extend((0..n).map(|_| p.next_ns()));
            }
        }
        all.sort_unstable();
        all
    }

    #[test]
    fn clients_interleave_instead_of_sending_in_lockstep() {
        // 4 client workers x 1 lane at 4000/s in all: one send every 250 us, not
        // bursts of 4 every millisecond.
        let t = merged(4000.0, Arrival::Uniform, 4, 1, 100);
        let gaps: Vec<u64> = t.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(gaps.iter().all(|&g| g == 250_000), "{:?}", &gaps[..8]);
        // 2 workers x 3 lanes: the same 6 slots, evenly spaced.
        let t = merged(6000.0, Arrival::Uniform, 2, 3, 50);
        assert!(
            t.windows(2)
                .all(|w| w[1] - w[0] == 166_666 || w[1] - w[0] == 166_667),
            "{:?}",
            &t[..8]
        );
        // Poisson: every lane of every worker draws its own gaps.
        let t = merged(4000.0, Arrival::Poisson, 4, 1, 1000);
        let same = t.windows(2).filter(|w| w[0] == w[1]).count();
        assert!(same < 10, "{same} coinciding sends");
    }

    #[test]
    fn poisson_has_the_right_mean_and_spread() {
        let mut p = Pacer::new(10_000.0, Arrival::Poisson, 0.0, 42);
        let mut last = p.next_ns();
        let gaps: Vec<f64> = (0..100_000)
            .map(|_| {
                let t = p.next_ns();
                let g = (t - last) as f64;
                last = t;
                g
            })
            .collect();
        let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
        let var = gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / gaps.len() as f64;
        // Exponential: mean 100us, standard deviation equal to the mean.
        assert!((mean - 100_000.0).abs() < 2_000.0, "mean {mean}");
        assert!(
            (var.sqrt() / mean - 1.0).abs() < 0.05,
            "cv {}",
            var.sqrt() / mean
        );
        // Reproducible from the seed.
        let mut a = Pacer::new(10.0, Arrival::Poisson, 0.0, 9);
        let mut b = Pacer::new(10.0, Arrival::Poisson, 0.0, 9);
        assert_eq!((a.next_ns(), a.next_ns()), (b.next_ns(), b.next_ns()));
    }
}
