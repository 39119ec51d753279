//! `cnibench compare DIR...`: one table across runs, rows = scenario and metric,
//! columns = CNI / datapath label. Runs with the same label pool their
//! repetitions (repetitions interleaved across datapaths arrive as one run
//! per round and label).
//!
//! Each cell is the median over the usable repetitions with its 95% bootstrap
//! interval (p99: the percentile of all repetitions' histograms merged, never
//! an average of percentiles, with the per-repetition range beside it), the
//! ratio to the baseline column with its own bootstrap interval, and the
//! two-sided exact Mann-Whitney U test of the column's repetitions against the
//! baseline's ([`crate::stats`]). A difference is significant only when the
//! p-value adjusted over all tested cells (Benjamini-Hochberg) is below 0.05 AND
//! the ratio's interval excludes 1. With fewer than
//! [`stats::MIN_REPS`] usable repetitions on a side, the test and intervals
//! are over the measured intervals instead, labelled as such (intervals are
//! not independent). Repetitions that are not ok, or that ran while something
//! else loaded the machine (the CPU baseline says so), are excluded and
//! counted; a saturated client is kept and counted. Where the spread is too
//! large for the present repetitions to show any difference, the cell says
//! "too noisy" instead of ranking, and the comparison says how many
//! repetitions a 5% difference needs.

use crate::fmt;
use crate::history::RepRow;
use crate::result::{IntervalResult, Percentiles, RepResult, RunResult, Stat, Status, decode_b64};
use crate::stats::{self, Basis, Sample};
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

    /// This metric of a measured interval.
    pub fn of_interval(self, i: &IntervalResult) -> Option<f64> {
        match self {
            Metric::ThroughputBps => i.throughput_bps,
            Metric::RequestsPerS => i.requests_per_s,
            Metric::P99Ns => i.p99_ns.map(|v| v as f64),
            Metric::LossPct => i.loss_pct,
        }
    }

    /// Higher values are better.
    pub fn higher_is_better(self) -> bool {
        matches!(self, Metric::ThroughputBps | Metric::RequestsPerS)
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

/// Whether a repetition ran while something else loaded the machine: its
/// idle CPU baseline before the traffic said so (`cpu.node_unavailable`).
pub fn loaded(rep: &RepResult) -> bool {
    rep.cpu
        .as_ref()
        .and_then(|c| c.node_unavailable.as_deref())
        .is_some_and(|n| n.contains("something else loaded the machine"))
}

/// One cell: a scenario's metric under one label.
#[derive(Debug, Clone, Serialize)]
pub struct Cell {
    /// The cell's figure: the median over the usable repetitions; for p99 the
    /// 99th percentile of their histograms merged.
    pub value: f64,
    /// Median, min, max and count of the per-repetition values used.
    pub stat: Stat,
    /// 95% bootstrap interval of the median (over [`Cell::basis`]).
    pub ci_low: Option<f64>,
    /// Upper end of it.
    pub ci_high: Option<f64>,
    /// `value` divided by the baseline's.
    pub ratio: Option<f64>,
    /// 95% bootstrap interval of the ratio of medians.
    pub ratio_ci_low: Option<f64>,
    /// Upper end of it.
    pub ratio_ci_high: Option<f64>,
    /// Two-sided p-value of the test against the baseline.
    pub p_value: Option<f64>,
    /// `p_value` adjusted for the number of cells tested in this comparison
    /// (Benjamini-Hochberg): what `significant` is judged on, so that a table
    /// of many cells does not show the false positives that many tests at 5%
    /// each would.
    pub q_value: Option<f64>,
    /// The test: `mann-whitney-exact` or `mann-whitney-normal`.
    pub test: Option<&'static str>,
    /// What the test and intervals were computed over.
    pub basis: Basis,
    /// `Some(true)`: p < 0.05 and the ratio's interval excludes 1;
    /// `Some(false)`: not significant; `None`: no test possible (baseline,
    /// or too few values).
    pub significant: Option<bool>,
    /// Not significant, and the present repetitions could not have shown any
    /// difference (too few usable ones): the machine was too noisy to tell.
    pub too_noisy: bool,
    /// Repetitions per column that would detect a 5% difference at this
    /// spread.
    pub reps_for_5pct: Option<usize>,
    /// The smallest difference (fraction) the present repetitions detect.
    pub detectable: Option<f64>,
    /// Repetitions whose status was not `ok`.
    pub not_ok: usize,
    /// Repetitions left out: not ok, or measured on a loaded machine while
    /// every column of the scenario had enough others.
    pub excluded: usize,
    /// Repetitions kept although measured on a loaded machine (every column
    /// of the scenario would otherwise have too few).
    pub loaded: usize,
    /// Repetitions whose client was saturated (kept, counted).
    pub saturated: usize,
}

impl Cell {
    /// The cell for people: `value [ci]` or for p99 `value (min..max)`, then
    /// `xRATIO [lo..hi]` and the marks of the legend (`*` significant, `≈`
    /// not significant, `~` too noisy to tell, `†` over intervals, `-N`
    /// repetitions excluded, `sN` saturated client).
    pub fn text(&self, m: Metric) -> String {
        if self.stat.n == 0 {
            return format!("- (all {} repetitions excluded)", self.excluded);
        }
        let mut t = m.show(self.value);
        let s = &self.stat;
        if m == Metric::P99Ns {
            if s.n >= 2 {
                let _ = write!(t, " ({}..{})", m.show(s.min), m.show(s.max));
            }
        } else if let (Some(lo), Some(hi), None) = (self.ci_low, self.ci_high, self.ratio)
            && s.n >= 2
        {
            let _ = write!(t, " [{}..{}]", m.show(lo), m.show(hi));
        }
        if let Some(ratio) = self.ratio {
            let _ = write!(t, " x{ratio:.2}");
            if let (Some(lo), Some(hi)) = (self.ratio_ci_low, self.ratio_ci_high) {
                let _ = write!(t, " [{lo:.2}..{hi:.2}]");
            }
            t.push_str(match (self.significant, self.too_noisy) {
                (Some(true), _) => "*",
                (_, true) => " ~",
                (Some(false), _) => " ≈",
                (None, _) => " ?",
            });
            if self.basis == Basis::Intervals {
                t.push('†');
            }
        }
        if self.excluded > 0 {
            let _ = write!(t, " -{}", self.excluded);
        }
        if self.loaded > 0 {
            let _ = write!(t, " L{}", self.loaded);
        }
        if self.saturated > 0 {
            let _ = write!(t, " s{}", self.saturated);
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
    /// The significance rule, for people.
    pub method: String,
    /// What the reader must know before trusting the table (columns measured
    /// far apart, cells over intervals, excluded repetitions, noise).
    pub warnings: Vec<String>,
    /// Per scenario, headline metric and column: its repetitions in the order
    /// they started, to see drift over the experiment.
    pub trends: Vec<Trend>,
}

/// A column's headline figure over time.
#[derive(Debug, Clone, Serialize)]
pub struct Trend {
    /// Scenario name.
    pub scenario: String,
    /// The headline metric (throughput or requests/s).
    pub metric: Metric,
    /// Column label.
    pub label: String,
    /// `(started_at_unix_ns, value)` per repetition, in start order; `None`
    /// for a repetition that is not ok.
    pub points: Vec<(i64, Option<f64>)>,
}

/// Every column's headline figure over time, per scenario.
pub fn trends(all: &[Entry<'_>], labels: &[String]) -> Vec<Trend> {
    let mut scenarios: Vec<(&str, Traffic)> = Vec::new();
    for e in all {
        if !scenarios.iter().any(|(n, _)| *n == e.scenario) {
            scenarios.push((e.scenario, e.traffic));
        }
    }
    let mut out = Vec::new();
    for (name, traffic) in scenarios {
        let metric = Metric::for_traffic(traffic)[0];
        for label in labels {
            let mut points: Vec<(i64, Option<f64>)> = all
                .iter()
                .filter(|e| e.scenario == name && e.cni == label)
                .map(|e| {
                    let ok = e.rep.status == Status::Ok;
                    (e.started, metric_of(metric, e.rep).filter(|_| ok))
                })
                .collect();
            if points.is_empty() {
                continue;
            }
            points.sort_by_key(|p| p.0);
            out.push(Trend {
                scenario: name.to_string(),
                metric,
                label: label.clone(),
                points,
            });
        }
    }
    out
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

/// The significance rule, as the reports state it.
pub const METHOD: &str = "two-sided exact Mann-Whitney U test of each column's repetitions \
against the baseline's, p-values adjusted over the table's cells (Benjamini-Hochberg); \
significant (*) when the adjusted p < 0.05 AND the 95% bootstrap interval of the ratio of \
medians excludes 1";

/// Columns whose repetitions started more than this apart (ns) are flagged:
/// whatever drifted on the machine in between is attributed to the datapath.
pub const APART_NS: i64 = 3600 * 1_000_000_000;

/// The repetitions of one scenario under one label, with when each started.
struct Column<'a> {
    reps: Vec<(&'a RepResult, i64)>,
    /// Leave out repetitions measured on a loaded machine.
    drop_loaded: bool,
}

impl Column<'_> {
    fn excluded(&self, r: &RepResult) -> bool {
        r.status != Status::Ok || (self.drop_loaded && loaded(r))
    }

    /// The usable repetitions.
    fn usable(&self) -> impl Iterator<Item = &RepResult> {
        self.reps
            .iter()
            .map(|(r, _)| *r)
            .filter(|r| !self.excluded(r))
    }

    /// Ok repetitions not measured on a loaded machine.
    fn quiet(&self) -> usize {
        self.reps
            .iter()
            .filter(|(r, _)| r.status == Status::Ok && !loaded(r))
            .count()
    }

    fn sample(&self, m: Metric) -> Sample {
        Sample {
            reps: self.usable().filter_map(|r| metric_of(m, r)).collect(),
            intervals: self
                .usable()
                .flat_map(|r| r.intervals.iter().filter(|i| !i.warmup))
                .filter_map(|i| m.of_interval(i))
                .filter(|v| v.is_finite())
                .collect(),
        }
    }

    /// The cell's figure: the median, or for p99 the merged histogram's.
    fn value(&self, m: Metric, stat: &Stat) -> f64 {
        if m == Metric::P99Ns {
            let mut merged: Option<hdrhistogram::Histogram<u64>> = None;
            for h in self
                .usable()
                .filter_map(|r| r.histogram.as_deref().and_then(decode_b64))
            {
                match &mut merged {
                    None => merged = Some(h),
                    Some(acc) => {
                        if acc.add(&h).is_err() {
                            return stat.median;
                        }
                    }
                }
            }
            if let Some(p) = merged.as_ref().and_then(Percentiles::of) {
                return p.p99 as f64;
            }
        }
        stat.median
    }
}

fn metric_of(m: Metric, r: &RepResult) -> Option<f64> {
    match m {
        Metric::ThroughputBps => r.throughput_bps,
        Metric::RequestsPerS => r.requests_per_s,
        Metric::P99Ns => r.latency_ns.as_ref().map(|l| l.p99 as f64),
        Metric::LossPct => r.udp.as_ref().and_then(|u| u.loss_pct),
    }
    .filter(|v| v.is_finite())
}

/// One repetition of one scenario under one label, and when it started.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    /// Scenario name.
    pub scenario: &'a str,
    /// Its traffic kind.
    pub traffic: Traffic,
    /// CNI label.
    pub cni: &'a str,
    /// The repetition.
    pub rep: &'a RepResult,
    /// Its start (the run's for results that did not record it), unix ns.
    pub started: i64,
}

/// Every repetition of every run.
pub fn entries(runs: &[(String, RunResult)]) -> Vec<Entry<'_>> {
    runs.iter()
        .flat_map(|(_, r)| {
            r.scenarios.iter().flat_map(move |s| {
                s.repetitions.iter().map(move |rep| Entry {
                    scenario: &s.name,
                    traffic: s.traffic,
                    cni: &s.cni,
                    rep,
                    started: rep.started_at_unix_ns.unwrap_or(r.started_at_unix_ns),
                })
            })
        })
        .collect()
}

/// Build the comparison; `baseline` defaults to `hostnet` if present, else the
/// first label seen.
pub fn compare(runs: &[(String, RunResult)], baseline: Option<&str>) -> Comparison {
    let mut c = compare_entries(&entries(runs), baseline);
    c.sources = runs.iter().map(|(p, _)| p.clone()).collect();
    c
}

/// [`compare`] over repetitions (`sources` left empty).
pub fn compare_entries(all: &[Entry<'_>], baseline: Option<&str>) -> Comparison {
    let mut labels: Vec<String> = Vec::new();
    let mut scenarios: Vec<(&str, Traffic)> = Vec::new();
    for e in all {
        if !labels.iter().any(|l| l == e.cni) {
            labels.push(e.cni.to_string());
        }
        if !scenarios.iter().any(|(n, _)| *n == e.scenario) {
            scenarios.push((e.scenario, e.traffic));
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
    let column = |name: &str, label: &str| Column {
        reps: all
            .iter()
            .filter(|e| e.scenario == name && e.cni == label)
            .map(|e| (e.rep, e.started))
            .collect(),
        drop_loaded: false,
    };
    let mut rows = Vec::new();
    let mut intervals_used = false;
    for (name, traffic) in &scenarios {
        let mut columns: Vec<Column<'_>> = labels.iter().map(|l| column(name, l)).collect();
        // Repetitions on a loaded machine are left out only when every column
        // keeps enough quiet ones: dropping them from one column and not from
        // another would compare a quiet moment with a loaded one.
        let drop_loaded = columns
            .iter()
            .filter(|c| !c.reps.is_empty())
            .all(|c| c.quiet() >= stats::MIN_REPS);
        for c in &mut columns {
            c.drop_loaded = drop_loaded;
        }
        for &m in Metric::for_traffic(*traffic) {
            let samples: Vec<Sample> = columns.iter().map(|c| c.sample(m)).collect();
            let base_value = columns
                .first()
                .zip(samples.first())
                .and_then(|(c, s)| Some(c.value(m, &Stat::of(s.reps.iter().copied().map(Some))?)));
            let cells = columns
                .iter()
                .zip(&samples)
                .enumerate()
                .map(|(i, (col, sample))| {
                    if col.reps.is_empty() {
                        return None;
                    }
                    let not_ok = col
                        .reps
                        .iter()
                        .filter(|(r, _)| r.status != Status::Ok)
                        .count();
                    let excluded = col.reps.iter().filter(|(r, _)| col.excluded(r)).count();
                    let loaded_kept = col.usable().filter(|r| loaded(r)).count();
                    let saturated = col.usable().filter(|r| r.client_saturated).count();
                    let stat = Stat::of(sample.reps.iter().copied().map(Some)).unwrap_or(Stat {
                        median: f64::NAN,
                        min: f64::NAN,
                        max: f64::NAN,
                        n: 0,
                    });
                    let value = col.value(m, &stat);
                    let own_basis = if sample.reps.len() >= stats::MIN_REPS {
                        Basis::Repetitions
                    } else {
                        Basis::Intervals
                    };
                    let ci = stats::median_ci(sample.values(own_basis));
                    let mut cell = Cell {
                        value,
                        stat,
                        ci_low: ci.map(|c| c.low),
                        ci_high: ci.map(|c| c.high),
                        ratio: None,
                        ratio_ci_low: None,
                        ratio_ci_high: None,
                        p_value: None,
                        q_value: None,
                        test: None,
                        basis: own_basis,
                        significant: None,
                        too_noisy: false,
                        reps_for_5pct: None,
                        detectable: None,
                        not_ok,
                        excluded,
                        loaded: loaded_kept,
                        saturated,
                    };
                    if i > 0 {
                        let a = stats::assess(sample, &samples[0]);
                        cell.ratio = base_value
                            .filter(|b| *b != 0.0 && value.is_finite())
                            .map(|b| value / b);
                        cell.ratio_ci_low = a.ratio_ci.map(|c| c.low);
                        cell.ratio_ci_high = a.ratio_ci.map(|c| c.high);
                        cell.p_value = a.test.map(|t| t.p_value);
                        cell.test = a.test.map(|t| match t.method {
                            stats::Method::Exact => "mann-whitney-exact",
                            stats::Method::Normal => "mann-whitney-normal",
                        });
                        cell.basis = a.basis;
                        cell.significant = a.significant;
                        // Nothing the present values could have shown: no test,
                        // or too few for the exact test ever to reach p < 0.05.
                        let (x, y) = (
                            sample.values(a.basis).len(),
                            samples[0].values(a.basis).len(),
                        );
                        cell.too_noisy = cell.significant != Some(true)
                            && (cell.significant.is_none()
                                || stats::min_p_value(x, y) >= stats::ALPHA);
                        cell.reps_for_5pct = a.power.map(|p| p.reps_for_target);
                        cell.detectable = a.power.and_then(|p| p.detectable);
                        intervals_used |= a.basis == Basis::Intervals;
                    }
                    Some(cell)
                })
                .collect();
            rows.push(Row {
                scenario: name.to_string(),
                metric: m,
                cells,
            });
        }
    }
    adjust_for_multiple_cells(&mut rows);
    let warnings = warnings(all, &labels, &rows, intervals_used);
    let trends = trends(all, &labels);
    Comparison {
        trends,
        columns: labels,
        baseline: base,
        rows,
        sources: Vec::new(),
        method: METHOD.to_string(),
        warnings,
    }
}

/// Judge every tested cell on its Benjamini-Hochberg adjusted p-value over
/// all tested cells of the comparison: significant when that is below 0.05
/// AND the ratio's interval excludes 1.
fn adjust_for_multiple_cells(rows: &mut [Row]) {
    let mut cells: Vec<&mut Cell> = rows
        .iter_mut()
        .flat_map(|r| r.cells.iter_mut().skip(1).flatten())
        .filter(|c| c.significant.is_some() && c.p_value.is_some())
        .collect();
    let p: Vec<f64> = cells.iter().map(|c| c.p_value.unwrap_or(1.0)).collect();
    let q = stats::benjamini_hochberg(&p);
    for (c, q) in cells.iter_mut().zip(q) {
        let excludes_one = match (c.ratio_ci_low, c.ratio_ci_high) {
            (Some(lo), Some(hi)) => lo > 1.0 || hi < 1.0,
            _ => false,
        };
        c.q_value = Some(q);
        c.significant = Some(q < stats::ALPHA && excludes_one);
    }
}

/// What the reader must know before trusting the table.
fn warnings(
    all: &[Entry<'_>],
    labels: &[String],
    rows: &[Row],
    intervals_used: bool,
) -> Vec<String> {
    let mut out = Vec::new();
    // When each column was measured: the span of its repetitions' starts.
    let spans: Vec<Option<(i64, i64)>> = labels
        .iter()
        .map(|l| {
            let t: Vec<i64> = all
                .iter()
                .filter(|e| e.cni == l)
                .map(|e| e.started)
                .collect();
            Some((*t.iter().min()?, *t.iter().max()?))
        })
        .collect();
    for (i, a) in spans.iter().enumerate() {
        for (j, b) in spans.iter().enumerate().skip(i + 1) {
            if let (Some(a), Some(b)) = (a, b) {
                let gap = (a.0.max(b.0) - a.1.min(b.1)).max(0);
                if gap > APART_NS {
                    out.push(format!(
                        "{} and {} were measured {:.1} h apart: what changed on the machine in between is attributed to the datapath (interleave repetitions where the datapath can be switched)",
                        labels[i],
                        labels[j],
                        gap as f64 / 3.6e12
                    ));
                }
            }
        }
    }
    if intervals_used {
        out.push(format!(
            "cells marked † have fewer than {} usable repetitions on a side: their test and intervals are over the measured intervals, which share their repetition's conditions; indicative only",
            stats::MIN_REPS
        ));
    }
    let cells: Vec<&Cell> = rows
        .iter()
        .flat_map(|r| r.cells.iter().skip(1).flatten())
        .collect();
    let excluded: usize = rows
        .iter()
        .flat_map(|r| r.cells.iter().flatten())
        .map(|c| c.excluded)
        .sum();
    if excluded > 0 {
        out.push(format!(
            "{excluded} cell repetitions excluded (not ok, or measured while something else loaded the machine): marked -N"
        ));
    }
    let loaded: usize = rows
        .iter()
        .flat_map(|r| r.cells.iter().flatten())
        .map(|c| c.loaded)
        .sum();
    if loaded > 0 {
        out.push(format!(
            "{loaded} cell repetitions ran while something else loaded the machine (its CPU was busy before the traffic) and are kept, as too few quiet ones remained (marked LN): the load varies their figures, which widens the intervals and weakens the test; a verdict that holds is against that noise"
        ));
    }
    let noisy = cells.iter().filter(|c| c.too_noisy).count();
    if !cells.is_empty() && noisy * 2 > cells.len() {
        out.push(format!(
            "too noisy to tell: {noisy} of {} cells could not show any difference with the usable repetitions; run more repetitions (or on a quieter machine) before ranking these columns",
            cells.len()
        ));
    }
    let mut detectable: Vec<f64> = cells.iter().filter_map(|c| c.detectable).collect();
    detectable.sort_by(f64::total_cmp);
    let mut needed: Vec<usize> = cells.iter().filter_map(|c| c.reps_for_5pct).collect();
    needed.sort_unstable();
    if let (Some(d), Some(n)) = (stats::median(&detectable), needed.get(needed.len() / 2)) {
        out.push(format!(
            "at the observed spread, differences below {:.0}% are too noisy to tell with these repetitions (median over cells; not significant is not the same); detecting 5% needs {n} repetitions per column (median over cells, {} at most)",
            d * 100.0,
            needed.last().copied().unwrap_or(*n)
        ));
    }
    out
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
    let _ = writeln!(out, "\n{}", legend(c));
    for w in &c.warnings {
        let _ = writeln!(out, "\n- {w}");
    }
    out
}

/// The legend under the table (Markdown and HTML).
pub fn legend(c: &Comparison) -> String {
    format!(
        "Median over repetitions [95% bootstrap interval]; p99: the 99th percentile of the \
         repetitions' histograms merged (range over repetitions). xR [lo..hi] = ratio to the \
         baseline `{}` with its 95% bootstrap interval. Test: {}. \
         ≈ = not significant. ~ = too noisy to tell (too few usable repetitions for any \
         difference to show). ? = no test possible. † = over intervals (fewer than {} \
         repetitions). -N = N repetitions excluded (not ok, or the machine was loaded while enough quiet ones remained). LN = N \
         repetitions measured on a loaded machine, kept. sN = N repetitions with a saturated \
         client (kept).",
        c.baseline,
        c.method,
        stats::MIN_REPS
    )
}

/// Write `compare.md` and `compare.json` into `dir`.
pub fn write(dir: &Path, c: &Comparison) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("compare.md"), markdown(c))?;
    let json = serde_json::to_string_pretty(c).map_err(std::io::Error::other)?;
    std::fs::write(dir.join("compare.json"), json + "\n")
}

/// Test data shared with `check`'s tests.
#[cfg(test)]
pub(crate) mod tests_support {
    use crate::result::IntervalResult;

    /// A measured interval at `rps` requests/s.
    pub(crate) fn interval(rps: f64) -> IntervalResult {
        IntervalResult {
            seq: 0,
            warmup: false,
            t_start_s: 0.0,
            t_end_s: 0.5,
            throughput_bps: None,
            requests_per_s: Some(rps),
            transactions: 0,
            attempts: 0,
            failed: 0,
            p50_ns: None,
            p99_ns: None,
            service_p99_ns: None,
            send_lag_p99_ns: None,
            send_lag_max_ns: None,
            loss_pct: None,
            jitter_ns: None,
            node_cores: None,
            sender_thread_cores: None,
            health: None,
            errors: 0,
            stalled: false,
            histogram: None,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::result::fixtures::spec;
    use crate::result::{Collected, encode_b64, rep_result};
    use hdrhistogram::Histogram;

    /// A tcp-rr repetition: `rps`, a latency histogram of `lat_us` values, and
    /// three measured intervals at the rate.
    fn rep(k: u32, rps: f64, lat_us: &[u64]) -> RepResult {
        let mut r = rep_result(&spec(), k, Collected::default());
        r.status = Status::Ok;
        r.flags.clear();
        r.requests_per_s = Some(rps);
        let mut h = Histogram::<u64>::new_with_bounds(1, 100_000_000_000, 3).unwrap();
        for &v in lat_us {
            h.record(v * 1000).unwrap();
        }
        r.latency_ns = Percentiles::of(&h);
        r.histogram = encode_b64(&h);
        r.intervals = (0..3)
            .map(|i| {
                let mut iv = tests_support::interval(rps);
                iv.seq = i;
                iv.warmup = false;
                iv.requests_per_s = Some(rps * (1.0 + 0.01 * f64::from(i)));
                iv
            })
            .collect();
        r
    }

    /// Five repetitions around `center` with a 2% spread.
    fn reps(center: f64) -> Vec<RepResult> {
        [-0.02, 0.013, -0.004, 0.019, -0.011]
            .iter()
            .zip(1..)
            .map(|(e, k)| rep(k, center * (1.0 + e), &[100, 200]))
            .collect()
    }

    fn entries<'a>(cols: &'a [(&'a str, Vec<RepResult>)]) -> Vec<Entry<'a>> {
        cols.iter()
            .flat_map(|(cni, reps)| {
                reps.iter().map(move |rep| Entry {
                    scenario: "rr",
                    traffic: Traffic::TcpRr,
                    cni,
                    rep,
                    started: 0,
                })
            })
            .collect()
    }

    fn cell(c: &Comparison, m: Metric, col: usize) -> &Cell {
        let row = c.rows.iter().find(|r| r.metric == m).unwrap();
        row.cells[col].as_ref().unwrap()
    }

    #[test]
    fn identical_data_is_not_significant_and_a_20_percent_shift_is() {
        let cols = [
            ("hostnet", reps(1000.0)),
            ("same", reps(1000.0)),
            ("slower", reps(800.0)),
        ];
        let c = compare_entries(&entries(&cols), None);
        let same = cell(&c, Metric::RequestsPerS, 1);
        assert_eq!(same.significant, Some(false), "{same:?}");
        assert!(same.p_value.unwrap() > 0.5);
        assert_eq!(same.test, Some("mann-whitney-exact"));
        assert_eq!(same.basis, Basis::Repetitions);
        let slower = cell(&c, Metric::RequestsPerS, 2);
        assert_eq!(slower.significant, Some(true), "{slower:?}");
        assert!((slower.p_value.unwrap() - 2.0 / 252.0).abs() < 1e-12);
        assert!(slower.ratio_ci_high.unwrap() < 1.0 && slower.ratio_ci_low.unwrap() > 0.7);
        assert!((slower.ratio.unwrap() - 0.8).abs() < 0.01);
        let text = slower.text(Metric::RequestsPerS);
        assert!(text.contains(" x0.80 [") && text.ends_with("]*"), "{text}");
        // How far the spread lets it see, and what 5% would take.
        assert!(
            c.warnings
                .iter()
                .any(|w| w.contains("too noisy to tell") && w.contains("detecting 5% needs 4")),
            "{:?}",
            c.warnings
        );
        // The same comparison again is byte-identical (seeded bootstrap).
        let again = compare_entries(&entries(&cols), None);
        assert_eq!(
            serde_json::to_string(&c).unwrap(),
            serde_json::to_string(&again).unwrap()
        );
    }

    #[test]
    fn p99_is_the_merged_histograms_percentile_with_the_spread_beside_it() {
        // Two repetitions: one all at 100 us, one with 2% at 10 ms. Merged,
        // 1% of the samples are at 10 ms, so p99 is 100 us; the mean of the
        // two repetitions' p99s would be ~5 ms.
        let fast: Vec<u64> = vec![100; 100];
        let mut slow: Vec<u64> = vec![100; 98];
        slow.extend([10_000, 10_000]);
        let cols = [(
            "hostnet",
            vec![rep(1, 1000.0, &fast), rep(2, 1000.0, &slow)],
        )];
        let c = compare_entries(&entries(&cols), None);
        let p99 = cell(&c, Metric::P99Ns, 0);
        assert!((p99.value - 100_000.0).abs() < 100.0, "{p99:?}");
        assert!(p99.stat.max > 9_000_000.0, "{p99:?}");
        let text = p99.text(Metric::P99Ns);
        assert!(
            text.contains('(') && text.contains(".."),
            "spread beside it: {text}"
        );
    }

    #[test]
    fn few_repetitions_fall_back_to_intervals_and_say_so() {
        let cols = [
            (
                "hostnet",
                vec![rep(1, 1000.0, &[100]), rep(2, 1010.0, &[100])],
            ),
            ("vxlan", vec![rep(1, 700.0, &[100]), rep(2, 705.0, &[100])]),
        ];
        let c = compare_entries(&entries(&cols), None);
        let v = cell(&c, Metric::RequestsPerS, 1);
        assert_eq!(v.basis, Basis::Intervals);
        assert!(v.text(Metric::RequestsPerS).contains('†'));
        assert!(
            c.warnings.iter().any(|w| w.contains("intervals")),
            "{:?}",
            c.warnings
        );
    }

    fn load(r: &mut RepResult) {
        r.cpu = Some(crate::result::CpuCost {
            client_process_cores: None,
            server_process_cores: None,
            node_cores: None,
            node_softirq_cores: None,
            baseline_node_cores: Some(1.8),
            shared_machine: true,
            sender_thread_cores: None,
            node_unavailable: Some(
                "node CPU of x: idle baseline 1.80 cores busy: something else loaded the machine, node cost not computed".into(),
            ),
            cores_per_gbps: None,
            cores_per_10k_rps: None,
            cores_per_1k_cps: None,
            ..Default::default()
        });
    }

    #[test]
    fn disturbed_repetitions_are_excluded_and_counted() {
        // Six each: one loaded repetition per column can go, five remain.
        let six = |c: f64| {
            let mut v = reps(c);
            v.push(rep(6, c, &[100]));
            v
        };
        let (mut base, mut x) = (six(1000.0), six(900.0));
        load(&mut base[5]);
        load(&mut x[1]);
        x[1].requests_per_s = Some(10.0);
        let cols = [("hostnet", base.clone()), ("x", x.clone())];
        let c = compare_entries(&entries(&cols), None);
        let cx = cell(&c, Metric::RequestsPerS, 1);
        assert_eq!((cx.excluded, cx.loaded, cx.stat.n), (1, 0, 5), "{cx:?}");
        assert!(cx.stat.min > 800.0, "the loaded repetition is out: {cx:?}");
        assert_eq!(cx.basis, Basis::Repetitions);
        assert!(cx.text(Metric::RequestsPerS).contains(" -1"));
        // A not-ok baseline repetition leaves four quiet ones: loaded ones
        // are kept in every column then (and counted), the not-ok one is out.
        base[0].status = Status::Partial;
        let cols = [("hostnet", base), ("x", x)];
        let c = compare_entries(&entries(&cols), None);
        let (cb, cx) = (
            cell(&c, Metric::RequestsPerS, 0),
            cell(&c, Metric::RequestsPerS, 1),
        );
        assert_eq!((cb.not_ok, cb.excluded, cb.loaded), (1, 1, 1), "{cb:?}");
        assert_eq!((cx.excluded, cx.loaded, cx.stat.n), (0, 1, 6), "{cx:?}");
        assert!(cx.text(Metric::RequestsPerS).contains(" L1"));
        assert!(c.warnings.iter().any(|w| w.contains("loaded the machine")));
    }

    #[test]
    fn too_few_values_are_too_noisy_not_a_ranking() {
        let cols = [
            ("hostnet", vec![rep(1, 1000.0, &[100])]),
            ("x", vec![rep(1, 500.0, &[100])]),
        ];
        let mut all = entries(&cols);
        for e in &mut all {
            // No intervals either: nothing to test.
            e.rep = Box::leak(Box::new(RepResult {
                intervals: Vec::new(),
                ..e.rep.clone()
            }));
        }
        let c = compare_entries(&all, None);
        let x = cell(&c, Metric::RequestsPerS, 1);
        assert!(x.too_noisy && x.significant.is_none(), "{x:?}");
        assert!(x.text(Metric::RequestsPerS).ends_with(" ~"));
    }

    #[test]
    fn trends_follow_the_start_times() {
        let cols = [("hostnet", reps(1000.0))];
        let mut all = entries(&cols);
        for (i, e) in all.iter_mut().enumerate() {
            e.started = 100 - i as i64;
        }
        let c = compare_entries(&all, None);
        let t = &c.trends[0];
        assert_eq!(
            (t.label.as_str(), t.metric),
            ("hostnet", Metric::RequestsPerS)
        );
        let times: Vec<i64> = t.points.iter().map(|p| p.0).collect();
        assert_eq!(times, vec![96, 97, 98, 99, 100]);
        // The last repetition started first.
        assert_eq!(t.points[0].1, all[4].rep.requests_per_s);
    }

    #[test]
    fn columns_measured_hours_apart_are_flagged() {
        let cols = [("hostnet", reps(1000.0)), ("x", reps(1000.0))];
        let mut all = entries(&cols);
        for e in all.iter_mut().filter(|e| e.cni == "x") {
            e.started = 2 * APART_NS;
        }
        let c = compare_entries(&all, None);
        assert!(
            c.warnings
                .iter()
                .any(|w| w.contains("hostnet and x were measured 2.0 h apart")),
            "{:?}",
            c.warnings
        );
        let c = compare_entries(&entries(&cols), None);
        assert!(!c.warnings.iter().any(|w| w.contains("apart")));
    }
}
