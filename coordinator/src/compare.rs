//! `cnibench compare DIR...`: one table across runs, rows = scenario and metric,
//! columns = CNI / datapath label. Each cell is the median over all repetitions
//! of that scenario under that label (runs with the same label pool their
//! repetitions), with the min..max spread and the ratio to the baseline column.
//! A difference is called significant only when the two spreads do not overlap;
//! with fewer than two repetitions on either side there is no noise estimate and
//! the cell says so.

use crate::fmt;
use crate::history::{self, RepRow};
use crate::result::{RunResult, Stat, Status};
use cnibench_proto::plan::Traffic;
use serde::Serialize;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// What is compared for a scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Goodput, bit/s (higher is better).
    ThroughputBps,
    /// Transactions per second (higher is better).
    RequestsPerS,
    /// 99th percentile latency per repetition, ns (lower is better).
    P99Ns,
    /// Datagram loss per repetition, percent (udp kinds; lower is better).
    LossPct,
}

impl Metric {
    /// Column heading.
    pub fn label(self) -> &'static str {
        match self {
            Metric::ThroughputBps => "Gbit/s",
            Metric::RequestsPerS => "req/s",
            Metric::P99Ns => "p99",
            Metric::LossPct => "loss %",
        }
    }

    /// A value in this metric's unit.
    pub fn show(self, v: f64) -> String {
        match self {
            Metric::ThroughputBps => fmt::gbps(v, 2),
            Metric::RequestsPerS => fmt::whole(v),
            Metric::P99Ns => fmt::ns(v as u64),
            Metric::LossPct => format!("{v:.3}"),
        }
    }

    /// This metric of a repetition.
    pub fn of(self, r: &RepRow) -> Option<f64> {
        match self {
            Metric::ThroughputBps => r.throughput_bps,
            Metric::RequestsPerS => r.requests_per_s,
            Metric::P99Ns => r.p99_ns,
            Metric::LossPct => r.loss_pct,
        }
    }

    /// The metrics compared for a traffic kind.
    pub fn for_traffic(traffic: Traffic) -> &'static [Metric] {
        match traffic {
            Traffic::UdpStream => &[Metric::ThroughputBps, Metric::LossPct],
            Traffic::UdpRr => &[Metric::RequestsPerS, Metric::P99Ns, Metric::LossPct],
            t if t.is_stream() => &[Metric::ThroughputBps],
            _ => &[Metric::RequestsPerS, Metric::P99Ns],
        }
    }
}

/// One cell: a scenario's metric under one label.
#[derive(Debug, Clone, Serialize)]
pub struct Cell {
    /// Median, min, max and count over repetitions.
    pub stat: Stat,
    /// Median divided by the baseline's median.
    pub ratio: Option<f64>,
    /// `Some(true)`: spreads do not overlap; `Some(false)`: within noise;
    /// `None`: not enough repetitions to tell (or this is the baseline).
    pub significant: Option<bool>,
    /// Repetitions whose status was not `ok` (their values are still included).
    pub not_ok: usize,
}

impl Cell {
    /// The cell for people: `median [min..max] xRATIO` and the marks of the
    /// legend (`≈` within noise, `?` no noise estimate, `!N` repetitions not ok).
    pub fn text(&self, m: Metric) -> String {
        let s = &self.stat;
        let mut t = m.show(s.median);
        if s.n >= 2 {
            let _ = write!(t, " [{}..{}]", m.show(s.min), m.show(s.max));
        }
        if let Some(ratio) = self.ratio {
            let _ = write!(t, " x{ratio:.2}");
        }
        match self.significant {
            Some(false) => t.push_str(" ≈"),
            None if self.ratio.is_some() => t.push_str(" ?"),
            _ => {}
        }
        if self.not_ok > 0 {
            let _ = write!(t, " !{}", self.not_ok);
        }
        t
    }
}

/// One row of the table.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// Scenario name.
    pub scenario: String,
    /// Metric.
    pub metric: Metric,
    /// One per column, `None` where the label did not run this scenario.
    pub cells: Vec<Option<Cell>>,
}

/// The comparison.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// Column labels; the baseline first.
    pub columns: Vec<String>,
    /// Baseline label.
    pub baseline: String,
    /// Rows in plan order.
    pub rows: Vec<Row>,
    /// Result files compared.
    pub sources: Vec<String>,
}

/// Load `result.json` from each directory (or a result.json path given directly).
pub fn load(dirs: &[PathBuf]) -> anyhow::Result<Vec<(String, RunResult)>> {
    dirs.iter()
        .map(|d| {
            let p = if d.is_dir() {
                d.join("result.json")
            } else {
                d.clone()
            };
            let text =
                std::fs::read_to_string(&p).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
            let r: RunResult = serde_json::from_str(&text).map_err(|e| {
                anyhow::anyhow!("{}:{}: not a cnibench result: {e}", p.display(), e.line())
            })?;
            Ok((p.display().to_string(), r))
        })
        .collect()
}

/// Build the comparison; `baseline` defaults to `hostnet` if present, else the
/// first label seen.
pub fn compare(runs: &[(String, RunResult)], baseline: Option<&str>) -> Comparison {
    let mut labels: Vec<String> = Vec::new();
    let mut scenarios: Vec<(String, Traffic)> = Vec::new();
    for (_, r) in runs {
        for s in &r.scenarios {
            if !labels.contains(&s.cni) {
                labels.push(s.cni.clone());
            }
            if !scenarios.iter().any(|(n, _)| n == &s.name) {
                scenarios.push((s.name.clone(), s.traffic));
            }
        }
    }
    let base = baseline
        .map(str::to_string)
        .or_else(|| labels.iter().find(|l| *l == "hostnet").cloned())
        .or_else(|| labels.first().cloned())
        .unwrap_or_default();
    if let Some(i) = labels.iter().position(|l| *l == base) {
        let b = labels.remove(i);
        labels.insert(0, b);
    }
    let all: Vec<RepRow> = runs.iter().flat_map(|(_, r)| history::rows_of(r)).collect();
    let mut rows = Vec::new();
    for (name, traffic) in &scenarios {
        for &m in Metric::for_traffic(*traffic) {
            let stats: Vec<Option<(Stat, usize)>> = labels
                .iter()
                .map(|label| {
                    let reps: Vec<&RepRow> = all
                        .iter()
                        .filter(|row| &row.scenario == name && &row.cni == label)
                        .collect();
                    let not_ok = reps.iter().filter(|row| row.status != Status::Ok).count();
                    Stat::of(reps.iter().map(|row| m.of(row))).map(|s| (s, not_ok))
                })
                .collect();
            let base_stat = stats.first().cloned().flatten().map(|(s, _)| s);
            let cells = stats
                .into_iter()
                .enumerate()
                .map(|(i, st)| {
                    st.map(|(stat, not_ok)| {
                        let (ratio, significant) = match (&base_stat, i) {
                            (Some(b), i) if i > 0 => {
                                let ratio = (b.median != 0.0).then(|| stat.median / b.median);
                                // Significant: spreads apart, and more than 1% apart
                                // (zero-width spreads of a fixed rate never overlap).
                                let apart = stat.max < b.min || stat.min > b.max;
                                let big = (stat.median - b.median).abs() > 0.01 * b.median.abs();
                                let sig = (b.n >= 2 && stat.n >= 2).then_some(apart && big);
                                (ratio, sig)
                            }
                            _ => (None, None),
                        };
                        Cell {
                            stat,
                            ratio,
                            significant,
                            not_ok,
                        }
                    })
                })
                .collect();
            rows.push(Row {
                scenario: name.clone(),
                metric: m,
                cells,
            });
        }
    }
    Comparison {
        columns: labels,
        baseline: base,
        rows,
        sources: runs.iter().map(|(p, _)| p.clone()).collect(),
    }
}

/// Markdown table with a legend.
pub fn markdown(c: &Comparison) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "| scenario | metric | {} |", c.columns.join(" | "));
    let _ = writeln!(out, "|---|---|{}", "---:|".repeat(c.columns.len()));
    for r in &c.rows {
        let cells: Vec<String> = r
            .cells
            .iter()
            .map(|cell| cell.as_ref().map_or("-".into(), |c| c.text(r.metric)))
            .collect();
        let _ = writeln!(
            out,
            "| {} | {} | {} |",
            r.scenario,
            r.metric.label(),
            cells.join(" | ")
        );
    }
    let _ = writeln!(
        out,
        "\nMedian over repetitions [min..max], xR = ratio to the baseline `{}`. \
         ≈ = within the noise of the repetitions (spreads overlap): not significant. \
         ? = fewer than 2 repetitions, no noise estimate. !N = N repetitions not ok (see their flags).",
        c.baseline
    );
    out
}

/// Write `compare.md` and `compare.json` into `dir`.
pub fn write(dir: &Path, c: &Comparison) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("compare.md"), markdown(c))?;
    let json = serde_json::to_string_pretty(c).map_err(std::io::Error::other)?;
    std::fs::write(dir.join("compare.json"), json + "\n")
}
