//! Statistics over repetitions: the median and spread of a figure ([`Stat`]),
//! percentiles read from a (merged) histogram ([`Percentiles`]), and a
//! scenario's [`Summary`]. The run and compare reports aggregate repetitions
//! with the same code.

use super::{CpuCost, Percentiles, RepResult, Stat, Status, Summary, decode_b64};
use cnibench_proto::hist;
use hdrhistogram::Histogram;

impl Percentiles {
    /// Read from a histogram; `None` when it holds no samples.
    pub fn of(h: &Histogram<u64>) -> Option<Percentiles> {
        (!h.is_empty()).then(|| Percentiles {
            count: h.len(),
            min: h.min(),
            mean: h.mean(),
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        })
    }
}

impl Stat {
    /// Over the values present; `None` when there are none.
    pub fn of(values: impl IntoIterator<Item = Option<f64>>) -> Option<Stat> {
        let mut v: Vec<f64> = values
            .into_iter()
            .flatten()
            .filter(|x| x.is_finite())
            .collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Some(Stat {
            median,
            min: v[0],
            max: v[n - 1],
            n,
        })
    }
}

/// Summarize repetitions; latency is the merge of every repetition's histogram.
pub fn summarize(reps: &[RepResult]) -> Summary {
    summarize_with_histogram(reps).0
}

/// [`summarize`], and the merged latency histogram the percentiles were read
/// from (for the reports' spectra).
pub fn summarize_with_histogram<'a>(
    reps: impl IntoIterator<Item = &'a RepResult>,
) -> (Summary, Histogram<u64>) {
    let reps: Vec<&RepResult> = reps.into_iter().collect();
    let mut all = hist::new_latency();
    for r in &reps {
        if let Some(h) = r.histogram.as_deref().and_then(decode_b64) {
            let _ = all.add(&h);
        }
    }
    let summary = Summary {
        status: Status::worst(reps.iter().map(|r| r.status)),
        throughput_bps: Stat::of(reps.iter().map(|r| r.throughput_bps)),
        requests_per_s: Stat::of(reps.iter().map(|r| r.requests_per_s)),
        connections_per_s: Stat::of(reps.iter().map(|r| r.connections_per_s)),
        latency_ns: Percentiles::of(&all),
        loss_pct: Stat::of(reps.iter().map(|r| r.udp.as_ref().and_then(|u| u.loss_pct))),
        jitter_ns: Stat::of(
            reps.iter()
                .map(|r| r.udp.as_ref().and_then(|u| u.jitter_ns)),
        ),
        client_saturated: reps.iter().any(|r| r.client_saturated),
        node_cores: cpu_stat(&reps, |c| c.node_cores),
        cores_per_gbps: cpu_stat(&reps, |c| c.cores_per_gbps),
        cores_per_10k_rps: cpu_stat(&reps, |c| c.cores_per_10k_rps),
        cores_per_1k_cps: cpu_stat(&reps, |c| c.cores_per_1k_cps),
        errors: reps.iter().map(|r| r.errors()).sum(),
    };
    (summary, all)
}

/// A CPU quantity over the repetitions that measured it.
pub fn cpu_stat(reps: &[&RepResult], f: fn(&CpuCost) -> Option<f64>) -> Option<Stat> {
    Stat::of(reps.iter().map(|r| r.cpu.as_ref().and_then(f)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worst_status_wins() {
        assert_eq!(
            Status::worst([Status::Ok, Status::Failed, Status::Partial]),
            Status::Failed
        );
        assert_eq!(
            Status::worst([Status::Ok, Status::Partial]),
            Status::Partial
        );
        assert_eq!(Status::worst([]), Status::Failed, "nothing is no success");
    }

    #[test]
    fn stat_median() {
        let s = Stat::of([Some(3.0), None, Some(1.0), Some(2.0), Some(f64::NAN)]).unwrap();
        assert_eq!((s.median, s.min, s.max, s.n), (2.0, 1.0, 3.0, 3));
        assert!(Stat::of([None]).is_none());
    }
}
