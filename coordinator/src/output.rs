//! Writing a run: `result.json`, `summary.csv` (atomically, also while the run
//! goes on: [`Checkpoints`]) and the table printed at the end.

use crate::fmt;
use crate::history::History;
use crate::result::{
    HEALTH_MEASURES, Percentiles, Quantile, RunResult, Stat, Status, Summary, health_stat,
};
use anyhow::Context as _;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Columns of `summary.csv` (documented in the README; append, never reorder).
pub const CSV_HEADER: &str = "cni,scenario,traffic,path,repetitions,status,throughput_gbps,rps,cps,p50_us,p90_us,p99_us,p999_us,max_us,errors,flags,loss_pct,jitter_us,node_cores,cpu_cores_per_gbps,cpu_cores_per_10k_rps,cpu_cores_per_1k_cps,client_saturated,slo,sweep_max_rate,sweep_knee_rate,tcp_retransmit_pct,tcp_retransmits,tcp_timeouts,udp_rcvbuf_errors,conntrack_fill_pct,conntrack_insert_failed,if_dropped,softnet_dropped";

fn us(ns: Option<u64>) -> Option<f64> {
    ns.map(|n| n as f64 / 1000.0)
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// One CSV row per scenario (median over repetitions; latency from merged histograms).
pub fn summary_csv(r: &RunResult) -> String {
    let mut out = String::from(CSV_HEADER);
    out.push('\n');
    for s in &r.scenarios {
        let m = &s.summary;
        let lat = m.latency_ns.as_ref();
        let flags: Vec<String> = s
            .repetitions
            .iter()
            .flat_map(|rep| {
                rep.flags
                    .iter()
                    .map(move |f| format!("rep{}: {f}", rep.repetition))
            })
            .collect();
        // p50_us .. p999_us, max_us
        let max: fn(&Percentiles) -> u64 = |l| l.max;
        let latency: Vec<String> = Quantile::ALL
            .iter()
            .map(|q| q.of)
            .chain([max])
            .map(|f| fmt::fixed(us(lat.map(f)), 1))
            .collect();
        let _ = write!(
            out,
            "{},{},{},{},{},{},{},{},{},{},{},{}",
            csv_field(&s.cni),
            csv_field(&s.name),
            s.traffic,
            s.path,
            s.repetitions.len(),
            m.status.as_str(),
            fmt::fixed(m.throughput_bps.as_ref().map(|t| t.median / 1e9), 4),
            fmt::fixed(m.requests_per_s.as_ref().map(|t| t.median), 1),
            fmt::fixed(m.connections_per_s.as_ref().map(|t| t.median), 1),
            latency.join(","),
            m.errors,
            csv_field(&flags.join("; ")),
        );
        let med = |x: &Option<Stat>| x.as_ref().map(|t| t.median);
        let slo = s.repetitions.iter().flat_map(|r| &r.slo);
        let slo = match (slo.clone().count(), slo.clone().all(|c| c.ok)) {
            (0, _) => "",
            (_, true) => "held",
            (_, false) => "broken",
        };
        let sw = s.sweep.as_ref();
        let _ = write!(
            out,
            ",{},{},{},{},{},{},{},{slo},{},{}",
            fmt::fixed(med(&m.loss_pct), 3),
            fmt::fixed(med(&m.jitter_ns).map(|j| j / 1000.0), 1),
            fmt::fixed(med(&m.node_cores), 3),
            fmt::fixed(med(&m.cores_per_gbps), 4),
            fmt::fixed(med(&m.cores_per_10k_rps), 4),
            fmt::fixed(med(&m.cores_per_1k_cps), 4),
            m.client_saturated,
            fmt::fixed(sw.and_then(|w| w.max_rate), 1),
            fmt::fixed(sw.and_then(|w| w.knee_rate), 1),
        );
        // Health: medians over the repetitions (empty: not available).
        for h in &HEALTH_MEASURES {
            let v = health_stat(&s.repetitions, h).map(|t| t.median);
            let _ = write!(out, ",{}", fmt::fixed(v, h.digits));
        }
        out.push('\n');
    }
    out
}

/// One line per rate sweep: what it found.
pub fn sweeps(r: &RunResult) -> Vec<String> {
    r.scenarios
        .iter()
        .filter_map(|s| Some((s, s.sweep.as_ref()?)))
        .map(|(s, w)| {
            let rate = |v: Option<f64>| v.map_or("none".to_string(), |v| w.show(v));
            let mut line = format!(
                "sweep `{}` ({}, {} steps): highest rate that held {}, latency knee at {}",
                s.name,
                w.sweep,
                w.steps.len(),
                rate(w.max_rate),
                rate(w.knee_rate)
            );
            if let Some(why) = &w.limited_by {
                let _ = write!(line, "; {why}");
            }
            line
        })
        .collect()
}

/// Normalized CPU cost in the unit that fits the traffic kind.
fn cpu_cost_cell(m: &Summary) -> String {
    let pick = [
        (&m.cores_per_gbps, "c/Gbps"),
        (&m.cores_per_10k_rps, "c/10k"),
        (&m.cores_per_1k_cps, "c/1kcps"),
    ];
    pick.iter()
        .find_map(|(s, unit)| s.as_ref().map(|s| format!("{:.2}{unit}", s.median)))
        .unwrap_or_else(|| "-".into())
}

/// The percentiles the printed table shows.
const SHOWN: [Quantile; 3] = [Quantile::P50, Quantile::P99, Quantile::P999];

/// The table printed at the end of a run.
pub fn table(r: &RunResult) -> String {
    let mut head = vec!["scenario", "cni", "reps", "Gbit/s", "req/s"];
    head.extend(SHOWN.map(|q| q.label));
    head.extend(["loss%", "cpu", "errors", "status"]);
    let mut rows = vec![head.into_iter().map(String::from).collect::<Vec<_>>()];
    for s in &r.scenarios {
        let m = &s.summary;
        let lat = m.latency_ns.as_ref();
        let dash = || "-".to_string();
        let mut row = vec![
            s.name.clone(),
            s.cni.clone(),
            s.repetitions.len().to_string(),
            m.throughput_bps
                .as_ref()
                .filter(|_| s.traffic.is_stream())
                .map_or_else(dash, |t| fmt::gbps(t.median, 3)),
            m.requests_per_s
                .as_ref()
                .map_or_else(dash, |t| fmt::whole(t.median)),
        ];
        row.extend(SHOWN.map(|q| lat.map_or_else(dash, |l| fmt::ns((q.of)(l)))));
        row.extend([
            m.loss_pct
                .as_ref()
                .map_or_else(dash, |l| format!("{:.2}", l.median)),
            cpu_cost_cell(m),
            m.errors.to_string(),
            if m.client_saturated && m.status == Status::Ok {
                "saturated".to_string()
            } else {
                m.status.as_str().to_string()
            },
        ]);
        rows.push(row);
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for (i, row) in rows.iter().enumerate() {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(c, (v, w))| {
                if c < 2 {
                    format!("{v:<w$}")
                } else {
                    format!("{v:>w$}")
                }
            })
            .collect();
        let _ = writeln!(out, "{}", cells.join("  ").trim_end());
        if i == 0 {
            let _ = writeln!(
                out,
                "{}",
                widths
                    .iter()
                    .map(|w| "-".repeat(*w))
                    .collect::<Vec<_>>()
                    .join("  ")
            );
        }
    }
    for s in &r.scenarios {
        for rep in &s.repetitions {
            for f in &rep.flags {
                let _ = writeln!(out, "  ! {} rep {}: {f}", s.name, rep.repetition);
            }
        }
    }
    out
}

/// Write `result.json` and `summary.csv` into `dir` (created if needed).
pub fn write(dir: &Path, r: &RunResult) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let json = serde_json::to_string_pretty(r).map_err(std::io::Error::other)?;
    write_atomic(dir, "result.json", (json + "\n").as_bytes())?;
    write_atomic(dir, "summary.csv", summary_csv(r).as_bytes())?;
    Ok(())
}

/// Writes the result so far (`result.json`, `summary.csv` and the history row)
/// in a thread of its own, so that a slow disk (fsync on a busy machine takes
/// hundreds of milliseconds) never holds up the run between repetitions. A
/// result that arrives while one is being written replaces any older one still
/// waiting: the newest is what counts. [`Checkpoints::finish`] waits for the
/// last write, so that the finished result is written after it, never under it.
#[derive(Debug)]
pub struct Checkpoints {
    tx: Option<std::sync::mpsc::Sender<RunResult>>,
    thread: Option<std::thread::JoinHandle<Written>>,
}

/// What the writing thread hands back: the history, and its first error.
type Written = (anyhow::Result<History>, Option<anyhow::Error>);

impl Checkpoints {
    /// Start the writer for run directory `dir` and the history (if it opened).
    pub fn start(dir: PathBuf, history: anyhow::Result<History>) -> Self {
        let (tx, rx) = std::sync::mpsc::channel::<RunResult>();
        let thread = std::thread::spawn(move || {
            let mut history = history;
            let mut error = None;
            while let Ok(mut r) = rx.recv() {
                while let Ok(newer) = rx.try_recv() {
                    r = newer;
                }
                let written = write(&dir, &r)
                    .with_context(|| format!("cannot write results so far to {}", dir.display()));
                let recorded = match &mut history {
                    Ok(h) => h.record(&r, &dir),
                    Err(_) => Ok(()),
                };
                if let Err(e) = written.and(recorded) {
                    error.get_or_insert(e);
                }
            }
            (history, error)
        });
        Checkpoints {
            tx: Some(tx),
            thread: Some(thread),
        }
    }

    /// Queue the result so far.
    pub fn save(&self, r: RunResult) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(r);
        }
    }

    /// Wait for the last write; the history back, and the first error if any.
    pub fn finish(mut self) -> Written {
        drop(self.tx.take());
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(w)) => w,
            _ => (
                Err(anyhow::anyhow!("the result writer failed")),
                Some(anyhow::anyhow!("the result writer failed")),
            ),
        }
    }
}

/// Replace `dir/name` with `data` so that a crash at any point leaves either
/// the old file or the new one, whole: write a temporary file in the same
/// directory, flush it to disk, rename it over the old one, flush the directory.
pub fn write_atomic(dir: &Path, name: &str, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(data)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, dir.join(name))?;
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes() {
        assert_eq!(csv_field("a,b"), "\"a,b\"");
    }

    #[test]
    #[allow(clippy::unwrap_used)]
    fn an_atomic_write_replaces_the_file_and_leaves_no_temporary() {
        let dir = std::env::temp_dir().join(format!("cnb-atomic-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        write_atomic(&dir, "r.json", b"first").unwrap();
        write_atomic(&dir, "r.json", b"second").unwrap();
        assert_eq!(std::fs::read(dir.join("r.json")).unwrap(), b"second");
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["r.json"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
