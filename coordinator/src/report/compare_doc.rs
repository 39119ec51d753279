//! The report across runs (`cnibench compare --out`): the runs, the comparison
//! table of [`crate::compare`], every run's environment, the plan, then per
//! scenario a table with one row per CNI label (all its repetitions across runs
//! pooled, latency from their histograms merged), its notes, and (in HTML) the
//! latency spectrum with one line per CNI, the headline metric as bars per CNI
//! and the CPU cost chart.

use super::charts::{self, Bar, HistLine};
use super::doc::{Block, Chart, Doc, MISSING, Table};
use super::tables::{self, Agg, MeasureRow};
use crate::compare::{Comparison, Metric};
use crate::result::{RunResult, ScenarioResult};
use cnibench_proto::plan::ScenarioSpec;
use std::path::Path;

/// A short name for a run: its directory (the parent of result.json).
fn run_name(source: &str) -> String {
    let p = Path::new(source);
    let dir = if p.file_name().is_some_and(|f| f == "result.json") {
        p.parent().unwrap_or(p)
    } else {
        p
    };
    dir.file_name()
        .map_or_else(|| source.to_string(), |f| f.to_string_lossy().into_owned())
}

/// Build the document.
pub(crate) fn build(runs: &[(String, RunResult)], c: &Comparison) -> Doc {
    let names: Vec<String> = runs.iter().map(|(src, _)| run_name(src)).collect();
    let mut blocks = vec![
        Block::Fields(vec![
            ("columns".into(), c.columns.join(", ")),
            ("baseline".into(), c.baseline.clone()),
            ("runs".into(), runs.len().to_string()),
        ]),
        Block::Heading(2, "Comparison".into()),
        Block::Table(comparison_table(c)),
        Block::Text(crate::compare::legend(c)),
        Block::Heading(2, "Over time".into()),
        Block::Text(
            "Each column's headline figure per repetition, in the order they started \
             (seconds from the first repetition of the comparison): a drift that \
             affects one column only would show here."
                .into(),
        ),
        Block::Table(trend_table(c)),
        Block::Heading(2, "Runs".into()),
        Block::Table(runs_table(runs, &names)),
        Block::Heading(2, "Environment".into()),
        Block::Text(
            "Workers of each run, with each clock's offset to the coordinator ± its error bound:"
                .into(),
        ),
        Block::Table(tables::workers_table(
            &names
                .iter()
                .zip(runs)
                .map(|(n, (_, r))| (Some(n.as_str()), r))
                .collect::<Vec<_>>(),
        )),
        Block::Heading(2, "Plan".into()),
    ];
    if !c.warnings.is_empty() {
        blocks.insert(
            4,
            Block::Text(format!(
                "Before reading the table: {}.",
                c.warnings.join("; ")
            )),
        );
    }
    let (specs, differ) = plan(runs);
    blocks.push(Block::Table(tables::plan_table(specs.iter().copied())));
    if !differ.is_empty() {
        blocks.push(Block::Text(format!(
            "Scenario parameters differ between runs (the table shows the first run's): {}.",
            differ.join(", ")
        )));
    }
    blocks.extend(super::matrix::compare_blocks(&specs, runs, &c.columns));
    blocks.extend([
        Block::Heading(2, "Results per scenario".into()),
        Block::Text(tables::LEGEND.into()),
    ]);
    let mut next_note = 1;
    let mut seen: Vec<&str> = Vec::new();
    for row in &c.rows {
        if seen.contains(&row.scenario.as_str()) {
            continue;
        }
        seen.push(&row.scenario);
        blocks.extend(scenario(&row.scenario, runs, &names, c, &mut next_note));
    }
    Doc {
        title: format!("cnibench comparison: {}", c.columns.join(" vs ")),
        blocks,
    }
}

/// Each scenario's spec from the first run that has it, and the names of
/// scenarios whose spec differs between runs.
fn plan(runs: &[(String, RunResult)]) -> (Vec<&ScenarioSpec>, Vec<String>) {
    let mut specs: Vec<&ScenarioSpec> = Vec::new();
    let mut differ = Vec::new();
    for s in runs.iter().flat_map(|(_, r)| &r.plan.scenarios) {
        match specs.iter().find(|x| x.name == s.name) {
            None => specs.push(s),
            Some(first) if *first != s && !differ.contains(&s.name) => differ.push(s.name.clone()),
            Some(_) => {}
        }
    }
    (specs, differ)
}

fn runs_table(runs: &[(String, RunResult)], names: &[String]) -> Table {
    let mut t = Table::new(&[
        "run", "CNI", "plan", "run id", "started", "status", "source",
    ]);
    for (name, (src, r)) in names.iter().zip(runs) {
        let mut cnis: Vec<&str> = r.scenarios.iter().map(|s| s.cni.as_str()).collect();
        cnis.dedup();
        t.push(vec![
            name.clone(),
            cnis.join(", "),
            r.plan.name.clone(),
            r.run_id.clone(),
            crate::fmt::utc(r.started_at_unix_ns),
            if r.ok { "ok" } else { "NOT OK" }.into(),
            src.clone(),
        ]);
    }
    t
}

/// Repetitions over time, per scenario and column.
fn trend_table(c: &Comparison) -> Table {
    let mut t = Table::new(&[
        "scenario",
        "CNI",
        "metric",
        "per repetition (start s: value)",
    ]);
    let t0 = c
        .trends
        .iter()
        .flat_map(|t| t.points.iter().map(|p| p.0))
        .min()
        .unwrap_or(0);
    for tr in &c.trends {
        let points: Vec<String> = tr
            .points
            .iter()
            .map(|(at, v)| {
                format!(
                    "{:.0}: {}",
                    (at - t0) as f64 / 1e9,
                    v.map_or("not ok".to_string(), |v| tr.metric.show(v))
                )
            })
            .collect();
        t.push(vec![
            tr.scenario.clone(),
            tr.label.clone(),
            tr.metric.label().to_string(),
            points.join(", "),
        ]);
    }
    t
}

/// The table of compare.md, cell for cell.
fn comparison_table(c: &Comparison) -> Table {
    let mut heads = vec!["scenario".to_string(), "metric".to_string()];
    heads.extend(c.columns.iter().map(|l| format!("#{l}")));
    let mut t = Table::new(&heads.iter().map(String::as_str).collect::<Vec<_>>());
    for r in &c.rows {
        let mut cells = vec![r.scenario.clone(), Metric::label(r.metric).to_string()];
        cells.extend(
            r.cells
                .iter()
                .map(|cell| cell.as_ref().map_or(MISSING.into(), |c| c.text(r.metric))),
        );
        t.push(cells);
    }
    t
}

fn scenario(
    name: &str,
    runs: &[(String, RunResult)],
    run_names: &[String],
    c: &Comparison,
    next_note: &mut usize,
) -> Vec<Block> {
    // Every (run name, scenario result) of this scenario.
    let results: Vec<(&str, &ScenarioResult)> = run_names
        .iter()
        .zip(runs)
        .flat_map(|(n, (_, r))| {
            r.scenarios
                .iter()
                .filter(|s| s.name == name)
                .map(move |s| (n.as_str(), s))
        })
        .collect();
    let Some((_, first)) = results.first() else {
        return Vec::new();
    };
    let stream = first.traffic.is_stream();
    let rows: Vec<MeasureRow<'_>> = c
        .columns
        .iter()
        .map(|label| MeasureRow {
            label: label.clone(),
            reps: results
                .iter()
                .filter(|(_, s)| &s.cni == label)
                .flat_map(|(run, s)| {
                    s.repetitions
                        .iter()
                        .map(move |rep| (format!("{run} repetition {}", rep.repetition), rep))
                })
                .collect(),
            total: false,
        })
        .filter(|r| !r.reps.is_empty())
        .collect();
    let (table, notes) = tables::measure_table("CNI", &rows, *next_note);
    *next_note += notes.len();
    let mut blocks = vec![
        Block::Heading(3, format!("{name}: {}, {}", first.traffic, first.path)),
        Block::Table(table),
    ];
    blocks.extend(notes.block());
    // Colours follow the comparison's columns, so a CNI has one colour everywhere.
    let aggs: Vec<(usize, &str, Agg)> = rows
        .iter()
        .map(|r| {
            let i = c.columns.iter().position(|l| *l == r.label).unwrap_or(0);
            (
                i,
                r.label.as_str(),
                Agg::of(r.reps.iter().map(|(_, rep)| *rep)),
            )
        })
        .collect();
    let lines: Vec<HistLine<'_>> = aggs
        .iter()
        .map(|(i, label, a)| (label.to_string(), charts::color(*i), 2, &a.hist))
        .collect();
    let labelled: Vec<_> = aggs
        .iter()
        .map(|(i, label, a)| (label.to_string(), charts::color(*i), a))
        .collect();
    let bars: Vec<Bar<'_>> = aggs
        .iter()
        .filter_map(|(i, label, a)| {
            Some((label.to_string(), charts::color(*i), a.headline(stream)?))
        })
        .collect();
    let (unit, scale) = tables::headline_unit(stream);
    let mut out: Vec<Chart> =
        charts::spectrum_chart(format!("{name}: latency by percentile, per CNI"), &lines)
            .into_iter()
            .collect();
    out.extend([
        Chart {
            title: format!("{name}: {unit} per CNI{}", charts::BARS),
            svg: charts::bars(unit, scale, &bars),
        },
        tables::cpu_chart(name, &labelled),
    ]);
    blocks.push(Block::Charts(out));
    blocks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_names() {
        assert_eq!(run_name("results/demo/vxlan/result.json"), "vxlan");
        assert_eq!(run_name("results/host-gw"), "host-gw");
    }
}
