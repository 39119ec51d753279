//! Parameter matrices in the reports: the scenarios a plan's lists expanded to
//! (see `cnibench_proto::plan::matrix`), grouped again, with each measure
//! plotted against the parameter.
//!
//! - The x axis is the parameter with the most values (ties: a size, as in
//!   netperf's size sweeps, else the first in the names), on a log scale when its values span a factor of 10 or more; the
//!   other parameters, if any, make one line each (run report) or one chart
//!   each (compare report, where the lines are the CNIs, coloured as in every
//!   other chart).
//! - Measures: the headline (Gbit/s for stream kinds, req/s otherwise, the
//!   median over repetitions) and, for kinds that measure latency, p50 and p99
//!   from the merged histograms of all repetitions.
//! - A table lists the same numbers, for the Markdown report (charts are
//!   HTML-only).

use super::charts::{self, Line, ParamTick};
use super::doc::{Block, Chart, MISSING, Table};
use super::tables::{self, Agg};
use crate::fmt;
use crate::result::{RepResult, RunResult};
use cnibench_proto::plan::{MatrixPoint, ScenarioSpec};
use plotters::style::RGBColor;

/// One matrix: the scenarios sharing a `group`, in plan order.
struct Group<'a> {
    name: &'a str,
    points: Vec<(&'a ScenarioSpec, &'a MatrixPoint)>,
    /// Index of the x parameter in each point's `params`.
    x: usize,
}

impl<'a> Group<'a> {
    /// Every matrix of `specs`, in the order their first point appears.
    fn all(specs: impl IntoIterator<Item = &'a ScenarioSpec>) -> Vec<Group<'a>> {
        let mut groups: Vec<Group<'a>> = Vec::new();
        for s in specs {
            let Some(m) = &s.matrix else { continue };
            match groups.iter_mut().find(|g| g.name == m.group) {
                Some(g) => g.points.push((s, m)),
                None => groups.push(Group {
                    name: &m.group,
                    points: vec![(s, m)],
                    x: 0,
                }),
            }
        }
        for g in &mut groups {
            g.x = g.x_param();
        }
        groups
    }

    /// The parameter with the most distinct values; on a tie a size, then
    /// the first.
    fn x_param(&self) -> usize {
        let Some((_, first)) = self.points.first() else {
            return 0;
        };
        (0..first.params.len())
            .rev()
            .max_by_key(|&i| {
                let mut v: Vec<&str> = self
                    .points
                    .iter()
                    .filter_map(|(_, m)| m.params.get(i).map(|p| p.value.as_str()))
                    .collect();
                v.sort_unstable();
                v.dedup();
                let size = first.params[i].field.ends_with("_size");
                (v.len(), size)
            })
            .unwrap_or(0)
    }

    fn x_field(&self) -> &str {
        self.points
            .first()
            .and_then(|(_, m)| m.params.get(self.x))
            .map_or("", |p| p.field.as_str())
    }

    /// The x values run, as numbers and as the names spell them.
    fn ticks(&self) -> Vec<ParamTick> {
        let mut t: Vec<ParamTick> = Vec::new();
        for (_, m) in &self.points {
            if let Some(p) = m.params.get(self.x)
                && !t.iter().any(|(_, v)| *v == p.value)
            {
                t.push((p.number, p.value.clone()));
            }
        }
        t
    }

    /// The other parameters of a point, as its name spells them (empty for a
    /// one-parameter matrix).
    fn rest(&self, m: &MatrixPoint) -> String {
        m.params
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != self.x)
            .map(|(_, p)| format!("{}={}", p.field, p.value))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The lines of the chart: for each combination of the other parameters,
    /// the points' (x, scenario name), sorted by x.
    fn lines(&self) -> Vec<(String, Vec<(f64, &'a str)>)> {
        let mut out: Vec<(String, Vec<(f64, &'a str)>)> = Vec::new();
        for (s, m) in &self.points {
            let Some(p) = m.params.get(self.x) else {
                continue;
            };
            let key = self.rest(m);
            let at = (p.number, s.name.as_str());
            match out.iter_mut().find(|(k, _)| *k == key) {
                Some((_, v)) => v.push(at),
                None => out.push((key, vec![at])),
            }
        }
        for (_, v) in &mut out {
            v.sort_by(|a, b| a.0.total_cmp(&b.0));
        }
        out
    }

    fn stream(&self) -> bool {
        self.points
            .first()
            .is_some_and(|(s, _)| s.traffic.is_stream())
    }

    /// How the x axis reads.
    fn x_desc(&self) -> String {
        let f = self.x_field();
        match f {
            "request_size" | "response_size" | "message_size" => format!("{f}, bytes"),
            "rate" => "rate (offered load)".into(),
            _ => f.to_string(),
        }
    }
}

/// What is plotted against the parameter.
#[derive(Clone, Copy)]
enum Measure {
    /// Gbit/s or req/s, median over repetitions.
    Headline,
    /// A latency quantile of the merged histogram.
    Latency(&'static str, fn(&crate::result::Percentiles) -> u64),
}

impl Measure {
    fn for_group(stream: bool) -> Vec<Measure> {
        let mut m = vec![Measure::Headline];
        if !stream {
            m.push(Measure::Latency("p50", |l| l.p50));
            m.push(Measure::Latency("p99", |l| l.p99));
        }
        m
    }

    fn of(self, a: &Agg, stream: bool) -> Option<f64> {
        match self {
            Measure::Headline => a.headline(stream).map(|s| s.median),
            Measure::Latency(_, q) => a.summary.latency_ns.as_ref().map(|l| q(l) as f64),
        }
    }

    fn name(self, stream: bool) -> &'static str {
        match self {
            Measure::Headline => tables::headline_unit(stream).0,
            Measure::Latency(name, _) => name,
        }
    }

    /// Axis label and divisor for values up to `max`.
    fn unit(self, stream: bool, max: f64) -> (String, f64) {
        match self {
            Measure::Headline => {
                let (u, scale) = tables::headline_unit(stream);
                (u.to_string(), scale)
            }
            Measure::Latency(name, _) if max >= 1e6 => (format!("{name}, ms"), 1e6),
            Measure::Latency(name, _) if max >= 1e3 => (format!("{name}, us"), 1e3),
            Measure::Latency(name, _) => (format!("{name}, ns"), 1.0),
        }
    }

    fn show(self, v: f64, stream: bool) -> String {
        match self {
            Measure::Headline if stream => fmt::gbps(v, 3),
            Measure::Headline => fmt::whole(v),
            Measure::Latency(..) => fmt::ns(v as u64),
        }
    }
}

/// The aggregate of each scenario of a run, by name.
fn run_aggs(r: &RunResult) -> Vec<(&str, Agg)> {
    r.scenarios
        .iter()
        .map(|s| (s.name.as_str(), Agg::of(&s.repetitions)))
        .collect()
}

fn find<'b>(aggs: &'b [(&str, Agg)], name: &str) -> Option<&'b Agg> {
    aggs.iter().find(|(n, _)| *n == name).map(|(_, a)| a)
}

/// A chart of `measure` with `lines` (y in data units).
fn chart(title: String, g: &Group<'_>, measure: Measure, lines: Vec<Line>) -> Chart {
    let max = lines
        .iter()
        .flat_map(|l| l.points.iter().filter_map(|p| p.1))
        .fold(0.0, f64::max);
    let (unit, scale) = measure.unit(g.stream(), max);
    Chart {
        title,
        svg: charts::by_param(&g.x_desc(), &g.ticks(), &unit, scale, lines),
    }
}

/// A line of a matrix chart.
fn line(label: String, color: RGBColor, points: Vec<(f64, Option<f64>)>) -> Line {
    Line {
        label,
        color,
        width: 2,
        points,
    }
}

/// The run report's section: per matrix a table of its points and one chart
/// per measure, a line per combination of the other parameters.
pub(crate) fn run_blocks(r: &RunResult) -> Vec<Block> {
    let groups = Group::all(&r.plan.scenarios);
    if groups.is_empty() {
        return Vec::new();
    }
    let aggs = run_aggs(r);
    let mut cnis: Vec<&str> = r.scenarios.iter().map(|s| s.cni.as_str()).collect();
    cnis.dedup();
    let cni = cnis.join(", ");
    let mut blocks = vec![
        Block::Heading(2, "Parameter matrices".into()),
        Block::Text(MATRIX_LEGEND.into()),
    ];
    for g in &groups {
        let stream = g.stream();
        let measures = Measure::for_group(stream);
        let fields: Vec<&str> = g
            .points
            .first()
            .map(|(_, m)| m.params.iter().map(|p| p.field.as_str()).collect())
            .unwrap_or_default();
        let mut heads: Vec<String> = fields.iter().map(|f| format!("={f}")).collect();
        heads.extend(measures.iter().map(|m| format!("#{}", m.name(stream))));
        let mut t = Table::new(&heads.iter().map(String::as_str).collect::<Vec<_>>());
        for (s, m) in &g.points {
            let a = find(&aggs, &s.name);
            let mut cells: Vec<String> = m.params.iter().map(|p| p.value.clone()).collect();
            cells.extend(measures.iter().map(|ms| {
                a.and_then(|a| ms.of(a, stream))
                    .map_or_else(|| MISSING.into(), |v| ms.show(v, stream))
            }));
            t.push(cells);
        }
        let lines = g.lines();
        let charts_ = measures
            .iter()
            .map(|&ms| {
                let plotted = lines
                    .iter()
                    .enumerate()
                    .map(|(i, (rest, pts))| {
                        let label = if rest.is_empty() {
                            cni.clone()
                        } else {
                            rest.clone()
                        };
                        let points = pts
                            .iter()
                            .map(|(x, name)| (*x, find(&aggs, name).and_then(|a| ms.of(a, stream))))
                            .collect();
                        line(label, charts::color(i), points)
                    })
                    .collect();
                chart(
                    format!("{}: {} by {}", g.name, ms.name(stream), g.x_field()),
                    g,
                    ms,
                    plotted,
                )
            })
            .collect();
        blocks.extend([
            Block::Heading(3, format!("{}: {}", g.name, fields.join(" x "))),
            Block::Table(t),
            Block::Charts(charts_),
        ]);
    }
    blocks
}

/// The compare report's section: per matrix a table of the headline per
/// point and CNI, and per combination of the other parameters one chart per
/// measure with a line per CNI.
pub(crate) fn compare_blocks(
    specs: &[&ScenarioSpec],
    runs: &[(String, RunResult)],
    columns: &[String],
) -> Vec<Block> {
    let groups = Group::all(specs.iter().copied());
    if groups.is_empty() {
        return Vec::new();
    }
    // Every label's repetitions of a scenario, pooled across runs.
    let agg = |name: &str, label: &str| -> Option<Agg> {
        let reps: Vec<&RepResult> = runs
            .iter()
            .flat_map(|(_, r)| &r.scenarios)
            .filter(|s| s.name == name && s.cni == label)
            .flat_map(|s| &s.repetitions)
            .collect();
        (!reps.is_empty()).then(|| Agg::of(reps))
    };
    let mut blocks = vec![
        Block::Heading(2, "Parameter matrices".into()),
        Block::Text(MATRIX_LEGEND.into()),
    ];
    for g in &groups {
        let stream = g.stream();
        let measures = Measure::for_group(stream);
        let aggs: Vec<Vec<Option<Agg>>> = g
            .points
            .iter()
            .map(|(s, _)| columns.iter().map(|l| agg(&s.name, l)).collect())
            .collect();
        let at = |name: &str, col: usize| -> Option<&Agg> {
            let i = g.points.iter().position(|(s, _)| s.name == name)?;
            aggs.get(i)?.get(col)?.as_ref()
        };
        let fields: Vec<&str> = g
            .points
            .first()
            .map(|(_, m)| m.params.iter().map(|p| p.field.as_str()).collect())
            .unwrap_or_default();
        let headline = Measure::Headline;
        let mut heads: Vec<String> = fields.iter().map(|f| format!("={f}")).collect();
        heads.extend(
            columns
                .iter()
                .map(|l| format!("#{} {l}", headline.name(stream))),
        );
        let mut t = Table::new(&heads.iter().map(String::as_str).collect::<Vec<_>>());
        for ((_, m), row) in g.points.iter().zip(&aggs) {
            let mut cells: Vec<String> = m.params.iter().map(|p| p.value.clone()).collect();
            cells.extend(row.iter().map(|a| {
                a.as_ref()
                    .and_then(|a| headline.of(a, stream))
                    .map_or_else(|| MISSING.into(), |v| headline.show(v, stream))
            }));
            t.push(cells);
        }
        let mut charts_ = Vec::new();
        for (rest, pts) in g.lines() {
            let suffix = if rest.is_empty() {
                String::new()
            } else {
                format!(" ({rest})")
            };
            for &ms in &measures {
                let plotted = columns
                    .iter()
                    .enumerate()
                    .map(|(col, label)| {
                        let points = pts
                            .iter()
                            .map(|(x, name)| (*x, at(name, col).and_then(|a| ms.of(a, stream))))
                            .collect();
                        line(label.clone(), charts::color(col), points)
                    })
                    .collect();
                charts_.push(chart(
                    format!(
                        "{}: {} by {}{suffix}, per CNI",
                        g.name,
                        ms.name(stream),
                        g.x_field()
                    ),
                    g,
                    ms,
                    plotted,
                ));
            }
        }
        blocks.extend([
            Block::Heading(3, format!("{}: {}", g.name, fields.join(" x "))),
            Block::Table(t),
            Block::Charts(charts_),
        ]);
    }
    blocks
}

/// How the matrix sections read.
const MATRIX_LEGEND: &str = "Scenarios the plan wrote with list-valued fields, one per value \
    (the cross product for several lists), grouped again: the median over repetitions of the \
    headline rate and, for request/response kinds, p50 and p99 of all repetitions' histograms \
    merged. The charts plot each against the parameter with the most values (log scale when \
    its values span a factor of 10 or more). Each point's full table and notes are in its own \
    section below.";

#[cfg(test)]
mod tests {
    use super::*;
    use cnibench_proto::plan;

    fn specs(text: &str) -> Vec<ScenarioSpec> {
        plan::load("m.yaml", &format!("name: m\nscenarios:\n{text}"))
            .unwrap()
            .scenarios
    }

    #[test]
    fn groups_pick_the_longest_list_as_x() {
        let s = specs(
            "  - { name: a, traffic: tcp-rr, path: pod-to-pod-cross-node, connections: [1, 8], request_size: [64KiB, 1, 1KiB] }\n  - { name: plain, traffic: tcp-rr, path: pod-to-pod-cross-node }\n  - { name: b, traffic: tcp-stream, path: pod-to-pod-cross-node, streams: [1, 2] }\n",
        );
        let groups = Group::all(&s);
        assert_eq!(groups.len(), 2);
        let a = &groups[0];
        assert_eq!(
            (a.name, a.x_field(), a.points.len()),
            ("a", "request_size", 6)
        );
        let ticks: Vec<String> = a.ticks().into_iter().map(|t| t.1).collect();
        assert_eq!(ticks, ["64KiB", "1", "1KiB"]);
        let lines = a.lines();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].0, "connections=1");
        let xs: Vec<f64> = lines[1].1.iter().map(|p| p.0).collect();
        assert_eq!(xs, [1.0, 1024.0, 65536.0], "sorted by x");
        assert_eq!(lines[1].1[0].1, "a/connections=8,request_size=1");
        let b = &groups[1];
        assert_eq!((b.x_field(), b.lines()[0].0.as_str()), ("streams", ""));
        assert!(b.stream());
        // A tie goes to a size, else to the first parameter in the names.
        let s = specs(
            "  - { name: t, traffic: tcp-rr, path: pod-to-pod-cross-node, connections: [1, 8], request_size: [1, 2] }\n  - { name: u, traffic: http2, path: pod-to-pod-cross-node, connections: [1, 8], streams: [1, 2] }\n",
        );
        let g = Group::all(&s);
        assert_eq!(
            (g[0].x_field(), g[1].x_field()),
            ("request_size", "connections")
        );
    }

    #[test]
    fn latency_units_follow_the_values() {
        let p50 = Measure::Latency("p50", |l| l.p50);
        assert_eq!(p50.unit(false, 2e6), ("p50, ms".to_string(), 1e6));
        assert_eq!(p50.unit(false, 2e4), ("p50, us".to_string(), 1e3));
        assert_eq!(p50.unit(false, 20.0), ("p50, ns".to_string(), 1.0));
        assert_eq!(Measure::Headline.unit(true, 1e10).0, "Gbit/s");
    }
}
