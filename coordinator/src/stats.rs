//! Statistics over repetitions for `compare` and `check`, without I/O.
//!
//! - [`median_ci`]: the median with a percentile-bootstrap 95% confidence
//!   interval, and [`ratio_ci`]: the ratio of two medians with its bootstrap
//!   interval (each side resampled on its own). The resampler is ChaCha8
//!   seeded with [`SEED`], so the same data always gives the same interval
//!   and a report re-rendered from result.json is byte-identical.
//! - [`mann_whitney`]: the two-sided Mann-Whitney U test, exact: the p-value
//!   is read from the permutation distribution of the rank sum (ties get
//!   mid-ranks and stay exact), computed by counting, not sampling, up to
//!   [`EXACT_MAX`] values; beyond that the normal approximation with tie
//!   correction.
//! - [`power`]: from the observed spread, how many repetitions per side would
//!   detect a given relative difference, and the smallest difference the
//!   present ones can detect.
//!
//! Intervals of one repetition are not independent samples: callers that fall
//! back to intervals (fewer than [`MIN_REPS`] repetitions) must say so.

use rand::{Rng as _, SeedableRng as _};
use rand_chacha::ChaCha8Rng;

/// Seed of every bootstrap (any fixed value: determinism is what matters).
pub const SEED: u64 = 0x636e_6962_656e_6368; // "cnibench"
/// Bootstrap resamples.
pub const RESAMPLES: usize = 4000;
/// Significance level (two-sided), and 1 minus the confidence level.
pub const ALPHA: f64 = 0.05;
/// Repetitions per side below which a test on repetitions has little power
/// (the smallest exact two-sided p with 4 against 4 is 0.029, with 3 against 3
/// 0.1): callers fall back to intervals and say so.
pub const MIN_REPS: usize = 5;
/// Largest pooled sample for which the exact distribution is counted.
pub const EXACT_MAX: usize = 120;

/// The median (mean of the middle two for an even count); `None` when empty.
pub fn median(v: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = v.to_vec();
    median_in_place(&mut v)
}

fn median_in_place(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// A confidence interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ci {
    /// Lower end.
    pub low: f64,
    /// Upper end.
    pub high: f64,
}

impl Ci {
    /// Whether `x` lies inside (ends included).
    pub fn contains(&self, x: f64) -> bool {
        self.low <= x && x <= self.high
    }
}

/// The `q` quantile of sorted `v` (nearest rank).
fn quantile_sorted(v: &[f64], q: f64) -> f64 {
    let i = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
    v[i]
}

fn percentile_ci(mut est: Vec<f64>) -> Option<Ci> {
    est.retain(|x| x.is_finite());
    if est.is_empty() {
        return None;
    }
    est.sort_by(f64::total_cmp);
    Some(Ci {
        low: quantile_sorted(&est, ALPHA / 2.0),
        high: quantile_sorted(&est, 1.0 - ALPHA / 2.0),
    })
}

/// One bootstrap resample's median of `v`, drawn with `rng` into `buf`.
fn resample_median(v: &[f64], rng: &mut ChaCha8Rng, buf: &mut Vec<f64>) -> f64 {
    buf.clear();
    buf.extend((0..v.len()).map(|_| v[rng.random_range(0..v.len())]));
    median_in_place(buf).unwrap_or(f64::NAN)
}

/// 95% percentile-bootstrap interval of the median of `v`; `None` when empty.
pub fn median_ci(v: &[f64]) -> Option<Ci> {
    if v.is_empty() {
        return None;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(SEED);
    let mut buf = Vec::with_capacity(v.len());
    percentile_ci(
        (0..RESAMPLES)
            .map(|_| resample_median(v, &mut rng, &mut buf))
            .collect(),
    )
}

/// 95% bootstrap interval of `median(a) / median(base)`, each side resampled
/// on its own; `None` when a side is empty or every resampled baseline median
/// is zero.
pub fn ratio_ci(a: &[f64], base: &[f64]) -> Option<Ci> {
    if a.is_empty() || base.is_empty() {
        return None;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(SEED);
    let (mut ba, mut bb) = (Vec::new(), Vec::new());
    percentile_ci(
        (0..RESAMPLES)
            .map(|_| {
                let x = resample_median(a, &mut rng, &mut ba);
                let y = resample_median(base, &mut rng, &mut bb);
                x / y
            })
            .collect(),
    )
}

/// Which distribution a p-value was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Counted exactly over every assignment of the values to the two sides.
    Exact,
    /// Normal approximation with tie correction (large samples).
    Normal,
}

/// A two-sided Mann-Whitney U test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UTest {
    /// U of the first sample: pairs (a, b) with a > b, ties counting one half.
    pub u: f64,
    /// Two-sided p-value.
    pub p_value: f64,
    /// How `p_value` was computed.
    pub method: Method,
}

/// Two-sided Mann-Whitney U test of `a` against `b` (non-finite values
/// dropped); `None` when either side is empty.
///
/// Exact: under the null every choice of `a.len()` of the pooled values is
/// equally likely; the p-value is the share of choices whose rank sum lies at
/// least as far from its mean as the observed one. Ranks are doubled so that
/// mid-ranks of ties are integers and the count is exact.
pub fn mann_whitney(a: &[f64], b: &[f64]) -> Option<UTest> {
    let a: Vec<f64> = a.iter().copied().filter(|x| x.is_finite()).collect();
    let b: Vec<f64> = b.iter().copied().filter(|x| x.is_finite()).collect();
    let (n, m) = (a.len(), b.len());
    if n == 0 || m == 0 {
        return None;
    }
    let mut pooled: Vec<(f64, bool)> = a
        .iter()
        .map(|&x| (x, true))
        .chain(b.iter().map(|&x| (x, false)))
        .collect();
    pooled.sort_by(|x, y| x.0.total_cmp(&y.0));
    let total = n + m;
    // Doubled mid-ranks: a run of ties over 1-based ranks i..=j gets i + j.
    let mut ranks2 = vec![0u64; total];
    let mut tie_term = 0.0; // sum of t^3 - t over tie groups
    let mut i = 0;
    while i < total {
        let mut j = i;
        while j + 1 < total && pooled[j + 1].0 == pooled[i].0 {
            j += 1;
        }
        for r in &mut ranks2[i..=j] {
            *r = (i + 1 + j + 1) as u64;
        }
        let t = (j - i + 1) as f64;
        tie_term += t * t * t - t;
        i = j + 1;
    }
    let w2: u64 = ranks2
        .iter()
        .zip(&pooled)
        .filter(|(_, (_, is_a))| *is_a)
        .map(|(r, _)| r)
        .sum();
    let u = w2 as f64 / 2.0 - (n * (n + 1)) as f64 / 2.0;
    let mean2 = (n * (total + 1)) as i64; // mean of the doubled rank sum
    let dist = (w2 as i64 - mean2).abs();
    if total <= EXACT_MAX {
        // ways[k][s]: choices of k values whose doubled ranks sum to s.
        let max_sum: usize = ranks2.iter().map(|&r| r as usize).sum();
        let mut ways = vec![vec![0f64; max_sum + 1]; n + 1];
        ways[0][0] = 1.0;
        for (idx, &r) in ranks2.iter().enumerate() {
            let r = r as usize;
            for k in (1..=n.min(idx + 1)).rev() {
                let (lo, hi) = ways.split_at_mut(k);
                let (prev, cur) = (&lo[k - 1], &mut hi[0]);
                for s in (r..=max_sum).rev() {
                    if prev[s - r] != 0.0 {
                        cur[s] += prev[s - r];
                    }
                }
            }
        }
        let all: f64 = ways[n].iter().sum();
        let extreme: f64 = ways[n]
            .iter()
            .enumerate()
            .filter(|(s, _)| (*s as i64 - mean2).abs() >= dist)
            .map(|(_, w)| w)
            .sum();
        return Some(UTest {
            u,
            p_value: (extreme / all).min(1.0),
            method: Method::Exact,
        });
    }
    let (nf, mf, tf) = (n as f64, m as f64, total as f64);
    let var = nf * mf / 12.0 * ((tf + 1.0) - tie_term / (tf * (tf - 1.0)));
    let z = if var > 0.0 {
        ((u - nf * mf / 2.0).abs() - 0.5).max(0.0) / var.sqrt()
    } else {
        0.0
    };
    Some(UTest {
        u,
        p_value: (2.0 * normal_sf(z)).min(1.0),
        method: Method::Normal,
    })
}

/// The smallest two-sided p-value an exact test of `n` against `m` distinct
/// values can give: 2 / C(n+m, n).
pub fn min_p_value(n: usize, m: usize) -> f64 {
    let mut c = 1.0;
    for i in 0..n.min(m) {
        c = c * (n + m - i) as f64 / (i + 1) as f64;
    }
    (2.0 / c).min(1.0)
}

/// Upper tail of the standard normal distribution (Abramowitz and Stegun
/// 7.1.26 for erfc; absolute error below 1.5e-7).
pub fn normal_sf(z: f64) -> f64 {
    let x = z.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erfc = poly * (-x * x).exp();
    if z >= 0.0 {
        erfc / 2.0
    } else {
        1.0 - erfc / 2.0
    }
}

/// Benjamini-Hochberg adjusted p-values (q-values), in the order of `p`:
/// controls the expected share of false positives among the cells called
/// significant when many are tested at once.
pub fn benjamini_hochberg(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let mut q = vec![1.0; m];
    let mut running: f64 = 1.0;
    for (rank, &i) in order.iter().enumerate().rev() {
        running = running.min(p[i] * m as f64 / (rank + 1) as f64);
        q[i] = running.min(1.0);
    }
    q
}

/// z for a two-sided 5% test (1.96) plus z for 80% power (0.8416).
const Z_SUM: f64 = 1.959_964 + 0.841_621;

/// What the observed spread allows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Power {
    /// Relative spread: the pooled standard deviation over the pooled mean.
    pub cv: f64,
    /// Repetitions per side that would detect [`Power::target`] (5% two-sided,
    /// 80% power; normal approximation, at least what the exact test needs
    /// to reach p < 0.05 at all).
    pub reps_for_target: usize,
    /// The relative difference `reps_for_target` is for.
    pub target: f64,
    /// The smallest relative difference the present counts detect (same
    /// assumptions); `None` when the exact test cannot reach p < 0.05 with
    /// them at all.
    pub detectable: Option<f64>,
}

/// [`Power`] of a comparison of `a` with `b` for a relative difference of
/// `target` (e.g. 0.05); `None` with fewer than two values on a side or a
/// zero mean.
pub fn power(a: &[f64], b: &[f64], target: f64) -> Option<Power> {
    let (n, m) = (a.len(), b.len());
    if n < 2 || m < 2 {
        return None;
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let ss = |v: &[f64]| {
        let mu = mean(v);
        v.iter().map(|x| (x - mu).powi(2)).sum::<f64>()
    };
    let pooled_sd = ((ss(a) + ss(b)) / (n + m - 2) as f64).sqrt();
    let grand = (a.iter().sum::<f64>() + b.iter().sum::<f64>()) / (n + m) as f64;
    if grand == 0.0 || !grand.is_finite() {
        return None;
    }
    let cv = pooled_sd / grand.abs();
    // Smallest equal count per side whose exact test can reach p < ALPHA.
    let min_reps = (2..).find(|&k| min_p_value(k, k) < ALPHA).unwrap_or(4);
    let need = (2.0 * (Z_SUM * cv / target).powi(2)).ceil() as usize;
    let detectable =
        (min_p_value(n, m) < ALPHA).then(|| Z_SUM * cv * (1.0 / n as f64 + 1.0 / m as f64).sqrt());
    Some(Power {
        cv,
        reps_for_target: need.max(min_reps),
        target,
        detectable,
    })
}

/// What a comparison is based on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// One value per repetition: independent samples.
    Repetitions,
    /// Fewer than [`MIN_REPS`] repetitions on a side: every measured interval
    /// of every repetition. Intervals of one repetition share its conditions,
    /// so the p-value and intervals are indicative only.
    Intervals,
}

/// One side of a comparison: a value per usable repetition, and every
/// measured interval of those repetitions.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// One value per repetition.
    pub reps: Vec<f64>,
    /// Every measured interval's value.
    pub intervals: Vec<f64>,
}

impl Sample {
    /// The values of `basis`.
    pub fn values(&self, basis: Basis) -> &[f64] {
        match basis {
            Basis::Repetitions => &self.reps,
            Basis::Intervals => &self.intervals,
        }
    }
}

/// A column held against the baseline.
#[derive(Debug, Clone, PartialEq)]
pub struct Assessment {
    /// What the test and intervals were computed over.
    pub basis: Basis,
    /// The Mann-Whitney U test.
    pub test: Option<UTest>,
    /// Bootstrap interval of the ratio of medians.
    pub ratio_ci: Option<Ci>,
    /// Significant: p below [`ALPHA`] AND the ratio's interval excludes 1.
    /// Both must hold so that neither a small p on a negligible shift nor a
    /// narrow interval from few values makes a verdict; `None` when no test
    /// was possible.
    pub significant: Option<bool>,
    /// What the spread allows (5% target).
    pub power: Option<Power>,
}

/// Hold `a` against `base`: over repetitions when both have at least
/// [`MIN_REPS`], else over intervals (when both have any).
pub fn assess(a: &Sample, base: &Sample) -> Assessment {
    let basis = if a.reps.len() >= MIN_REPS && base.reps.len() >= MIN_REPS {
        Basis::Repetitions
    } else if !a.intervals.is_empty() && !base.intervals.is_empty() {
        Basis::Intervals
    } else {
        Basis::Repetitions
    };
    let (x, y) = (a.values(basis), base.values(basis));
    let test = mann_whitney(x, y);
    let ratio_ci = ratio_ci(x, y);
    let significant = match (test, ratio_ci) {
        (Some(t), Some(ci)) if x.len() >= 2 && y.len() >= 2 => {
            Some(t.p_value < ALPHA && !ci.contains(1.0))
        }
        _ => None,
    };
    Assessment {
        basis,
        test,
        ratio_ci,
        significant,
        power: power(&a.reps, &base.reps, 0.05),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn benjamini_hochberg_by_hand() {
        // p sorted 0.01, 0.02, 0.03, 0.5 of m = 4: p*m/rank = 0.04, 0.04,
        // 0.04, 0.5, each the minimum of itself and the ones above it.
        let q = benjamini_hochberg(&[0.03, 0.5, 0.01, 0.02]);
        let want = [0.04, 0.5, 0.04, 0.04];
        for (q, w) in q.iter().zip(want) {
            assert!((q - w).abs() < 1e-12, "{q} vs {w}");
        }
        // One 0.008 among twenty: 0.16, no longer below 0.05.
        let mut p = vec![0.5; 19];
        p.push(2.0 / 252.0);
        assert!((benjamini_hochberg(&p)[19] - 20.0 * 2.0 / 252.0).abs() < 1e-12);
        assert!(benjamini_hochberg(&[]).is_empty());
    }

    #[test]
    fn medians() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn exact_u_test_matches_hand_counts() {
        // 1,2,3 against 4,5,6: the rank sum 6 is the smallest of C(6,3) = 20
        // equally likely ones; two-sided, 6 and 15 are as extreme: 2/20.
        let t = mann_whitney(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0]).unwrap();
        assert_eq!((t.u, t.method), (0.0, Method::Exact));
        assert!((t.p_value - 0.1).abs() < 1e-12, "{}", t.p_value);
        // Five against five, fully apart: 2 / C(10,5) = 2/252.
        let a = [10.0, 11.0, 12.0, 13.0, 14.0];
        let b = [20.0, 21.0, 22.0, 23.0, 24.0];
        let t = mann_whitney(&b, &a).unwrap();
        assert_eq!(t.u, 25.0);
        assert!((t.p_value - 2.0 / 252.0).abs() < 1e-12);
        assert!((min_p_value(5, 5) - 2.0 / 252.0).abs() < 1e-12);
        // Ties: 1,2,2 against 2,3,4. Doubled mid-ranks 2,6,6,6,10,12; the
        // observed doubled sum is 14, the mean 21. Of the 20 choices, 3 sum to
        // 14 ({2,6,6}) and 3 to 28 ({6,10,12}), none further: p = 6/20.
        let t = mann_whitney(&[1.0, 2.0, 2.0], &[2.0, 3.0, 4.0]).unwrap();
        assert_eq!(t.u, 1.0);
        assert!((t.p_value - 0.3).abs() < 1e-12, "{}", t.p_value);
        // Identical samples: nothing to see.
        let t = mann_whitney(&[5.0; 4], &[5.0; 4]).unwrap();
        assert!((t.p_value - 1.0).abs() < 1e-12);
        assert!(mann_whitney(&[], &[1.0]).is_none());
    }

    #[test]
    fn u_test_textbook_example() {
        // 4 against 5 with one pair out of order (U = 1), counted by hand:
        // rank sum 11, mean 20; the choices of 4 of the ranks 1..9 summing to
        // <= 11 are {1,2,3,4} and {1,2,3,5}, to >= 29 {5,7,8,9} and {6,7,8,9}:
        // 4 of C(9,4) = 126.
        let a = [1.0, 2.0, 3.0, 5.0];
        let b = [4.0, 6.0, 7.0, 8.0, 9.0];
        let t = mann_whitney(&a, &b).unwrap();
        assert_eq!(t.u, 1.0);
        assert!((t.p_value - 4.0 / 126.0).abs() < 1e-12, "{}", t.p_value);
    }

    #[test]
    fn normal_approximation_beyond_the_exact_limit() {
        let a: Vec<f64> = (0..70).map(f64::from).collect();
        let b: Vec<f64> = (0..70).map(|i| f64::from(i) + 0.5).collect();
        let t = mann_whitney(&a, &b).unwrap();
        assert_eq!(t.method, Method::Normal);
        assert!(t.p_value > 0.5, "{}", t.p_value);
        let c: Vec<f64> = (0..70).map(|i| f64::from(i) + 100.0).collect();
        assert!(mann_whitney(&a, &c).unwrap().p_value < 1e-10);
        // The tail itself: P(Z > 1.96) = 0.025.
        assert!((normal_sf(1.959_964) - 0.025).abs() < 1e-6);
        assert!((normal_sf(-1.0) - 0.841_344_7).abs() < 1e-6);
    }

    /// The exact bootstrap distribution of the median of 5 values: the
    /// resample median is <= the k-th smallest when at least 3 of the 5
    /// draws are, P = P(Binomial(5, k/5) >= 3).
    fn exact_median_cdf(k: usize) -> f64 {
        let p = k as f64 / 5.0;
        let c = [1.0, 5.0, 10.0, 10.0, 5.0, 1.0];
        (3..=5)
            .map(|j| c[j] * p.powi(j as i32) * (1.0 - p).powi(5 - j as i32))
            .sum()
    }

    #[test]
    fn bootstrap_follows_the_exact_resampling_distribution() {
        let v = [10.0, 20.0, 30.0, 40.0, 50.0];
        let mut rng = ChaCha8Rng::seed_from_u64(SEED);
        let mut buf = Vec::new();
        let meds: Vec<f64> = (0..RESAMPLES)
            .map(|_| resample_median(&v, &mut rng, &mut buf))
            .collect();
        for k in 1..5 {
            let share = meds.iter().filter(|&&x| x <= v[k - 1]).count() as f64 / RESAMPLES as f64;
            let exact = exact_median_cdf(k);
            // Four standard errors of a share over RESAMPLES draws.
            let se = (exact * (1.0 - exact) / RESAMPLES as f64).sqrt();
            assert!(
                (share - exact).abs() < 4.0 * se,
                "k={k}: {share} vs {exact}"
            );
        }
        // P(median <= 10) = 0.058 > 2.5%, so the interval reaches both ends.
        assert_eq!(
            median_ci(&v),
            Some(Ci {
                low: 10.0,
                high: 50.0
            })
        );
        // Deterministic: the same data, the same interval.
        let w = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0, 5.0, 3.0, 5.0];
        assert_eq!(median_ci(&w), median_ci(&w));
        let ci = median_ci(&w).unwrap();
        assert!(
            ci.low >= 2.0 && ci.high <= 6.0 && ci.contains(4.0),
            "{ci:?}"
        );
        assert_eq!(
            median_ci(&[7.0; 3]),
            Some(Ci {
                low: 7.0,
                high: 7.0
            })
        );
    }

    #[test]
    fn ratio_interval() {
        let base = [100.0, 101.0, 99.0, 100.5, 99.5];
        let same = [100.2, 99.8, 100.9, 99.1, 100.0];
        let ci = ratio_ci(&same, &base).unwrap();
        assert!(ci.contains(1.0), "{ci:?}");
        let shifted: Vec<f64> = base.iter().map(|x| x * 0.8).collect();
        let ci = ratio_ci(&shifted, &base).unwrap();
        assert!(ci.high < 1.0 && ci.contains(0.8), "{ci:?}");
        assert_eq!(ratio_ci(&[], &base), None);
    }

    /// Five repetitions with a 2% spread (deterministic pseudo-noise).
    fn reps(center: f64) -> Vec<f64> {
        [-0.02, 0.013, -0.004, 0.019, -0.011]
            .iter()
            .map(|e| center * (1.0 + e))
            .collect()
    }

    #[test]
    fn identical_data_is_not_significant_and_a_20_percent_shift_is() {
        let (a, b) = (reps(1000.0), reps(1000.0));
        let t = mann_whitney(&a, &b).unwrap();
        assert!(t.p_value > 0.5, "{t:?}");
        assert!(ratio_ci(&a, &b).unwrap().contains(1.0));
        let c = reps(1200.0);
        let t = mann_whitney(&c, &b).unwrap();
        assert!(t.p_value < ALPHA, "{t:?}");
        let ci = ratio_ci(&c, &b).unwrap();
        assert!(ci.low > 1.0, "{ci:?}");
    }

    #[test]
    fn assessment_basis_and_verdict() {
        let base = Sample {
            reps: reps(1000.0),
            intervals: vec![],
        };
        let a = assess(
            &Sample {
                reps: reps(1200.0),
                intervals: vec![],
            },
            &base,
        );
        assert_eq!((a.basis, a.significant), (Basis::Repetitions, Some(true)));
        let a = assess(&base, &base);
        assert_eq!(a.significant, Some(false));
        // Two repetitions each: over their intervals, and said so.
        let few = |c: f64| Sample {
            reps: vec![c, c],
            intervals: reps(c).into_iter().chain(reps(c * 1.01)).collect(),
        };
        let a = assess(&few(1200.0), &few(1000.0));
        assert_eq!((a.basis, a.significant), (Basis::Intervals, Some(true)));
        // One value each and no intervals: no test.
        let one = Sample {
            reps: vec![1.0],
            intervals: vec![],
        };
        assert_eq!(assess(&one, &one).significant, None);
    }

    #[test]
    fn repetitions_needed() {
        let (a, b) = (reps(1000.0), reps(1000.0));
        let p = power(&a, &b, 0.05).unwrap();
        // sd of the five errors is 1.6%: 2 * (2.8 * 0.016 / 0.05)^2 = 1.6, so
        // the exact test's own minimum (4 per side) applies.
        assert!((p.cv - 0.0163).abs() < 0.0002, "{p:?}");
        assert_eq!(p.reps_for_target, 4);
        let d = p.detectable.unwrap();
        assert!((d - 2.801_585 * p.cv * 0.4f64.sqrt()).abs() < 1e-6, "{d}");
        // A 10% spread needs 2 * (2.8 * 0.1 / 0.05)^2 = 63 per side.
        let noisy: Vec<f64> = a.iter().map(|x| 1000.0 + (x - 1000.0) * 6.13).collect();
        let p = power(&noisy, &noisy, 0.05).unwrap();
        assert!((p.cv - 0.1).abs() < 0.001, "{p:?}");
        assert!((62..=64).contains(&p.reps_for_target), "{p:?}");
        // Two against two can never reach p < 0.05 exactly.
        assert_eq!(power(&a[..2], &b[..2], 0.05).unwrap().detectable, None);
        assert!(power(&a[..1], &b, 0.05).is_none());
    }
}
