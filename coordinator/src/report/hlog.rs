//! HdrHistogram interval logs (`.hlog`), one per scenario and repetition, in the
//! format of the Java `HistogramLogWriter` (readable by `HistogramLogProcessor`,
//! HdrHistogram's plotters and the Rust `IntervalLogIterator`):
//!
//! ```text
//! #[cnibench ...: scenario rr (tcp-rr, pod-to-pod-cross-node), cni ..., repetition 1]
//! #[Histogram log format version 1.3]
//! #[StartTime: 1700000000.123 (seconds since epoch)]
//! "StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"
//! 0.200,0.250,0.312,HISTFAAAA...
//! ```
//!
//! - Values, and `Interval_Max`, are the client's latency samples in ns.
//! - Only measured intervals are written: warm-up intervals are excluded, so the
//!   intervals of a file add up to the repetition's merged `histogram` in result.json.
//! - `StartTime` is the run's start; interval timestamps are seconds since the
//!   start of this repetition on the client's clock (result.json does not record
//!   when each repetition started).
//! - Repetitions without any latency sample (stream kinds) get no file.

use crate::result::{self, RepResult, RunResult, ScenarioResult};
use anyhow::Context as _;
use cnibench_proto::hist;
use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::serialization::interval_log::IntervalLogWriterBuilder;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

const LEGEND: &str =
    "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"\n";

/// `<scenario>.rep<N>.hlog`, with characters unsafe in file names replaced by `_`.
pub fn file_name(scenario: &str, repetition: u32) -> String {
    let safe: String = scenario
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{}.rep{repetition}.hlog", safe.trim_start_matches('.'))
}

fn secs(s: f64) -> Duration {
    Duration::try_from_secs_f64(s.max(0.0)).unwrap_or_default()
}

/// The interval log of one repetition, or `None` if it has no latency samples.
pub fn interval_log(
    run: &RunResult,
    s: &ScenarioResult,
    rep: &RepResult,
) -> anyhow::Result<Option<Vec<u8>>> {
    if rep.histogram.is_none() {
        return Ok(None);
    }
    let mut out = Vec::new();
    let start = UNIX_EPOCH + Duration::from_nanos(u64::try_from(run.started_at_unix_ns)?);
    let mut serializer = V2DeflateSerializer::new();
    IntervalLogWriterBuilder::new()
        .add_comment(&format!(
            "[{} run {}: scenario {} ({}, {}), cni {}, repetition {}, status {}]",
            run.tool,
            run.run_id,
            s.name,
            s.traffic,
            s.path,
            s.cni,
            rep.repetition,
            rep.status.as_str(),
        ))
        .add_comment(
            "[Client latency in ns per measured interval; warm-up intervals excluded. \
             Interval_Max in ns. Timestamps: seconds since the repetition's start; StartTime: the run's start]",
        )
        .add_comment("[Histogram log format version 1.3]")
        .with_start_time(start)
        .begin_log_with(&mut out, &mut serializer)?;
    out.extend_from_slice(LEGEND.as_bytes());
    let mut body = Vec::new();
    {
        let mut log = IntervalLogWriterBuilder::new().begin_log_with(&mut body, &mut serializer)?;
        for i in rep.intervals.iter().filter(|i| !i.warmup) {
            let h = match i.histogram.as_deref() {
                None => hist::new_latency(),
                Some(b64) => result::decode_b64(b64).with_context(|| {
                    format!(
                        "interval {} of {} rep {}: bad histogram",
                        i.seq, s.name, rep.repetition
                    )
                })?,
            };
            log.write_histogram(&h, secs(i.t_start_s), secs(i.t_end_s - i.t_start_s), None)
                .map_err(|e| anyhow::anyhow!("interval {}: {e}", i.seq))?;
        }
    }
    out.extend_from_slice(&body);
    Ok(Some(out))
}

/// Write every repetition's log into `dir`; returns the files written.
pub fn write_all(dir: &Path, run: &RunResult) -> anyhow::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for s in &run.scenarios {
        for rep in &s.repetitions {
            if let Some(log) = interval_log(run, s, rep)? {
                let path = dir.join(file_name(&s.name, rep.repetition));
                std::fs::write(&path, log)
                    .with_context(|| format!("writing {}", path.display()))?;
                written.push(path);
            }
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_names() {
        assert_eq!(file_name("tcp-rr", 2), "tcp-rr.rep2.hlog");
        assert_eq!(file_name("../a b/c", 1), "_a_b_c.rep1.hlog");
    }
}
