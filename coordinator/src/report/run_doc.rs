//! The report of one run: when and where it ran, the plan, then per scenario a
//! table with one row per repetition and a merged row, the validity notes right
//! under it, and (in HTML) the latency spectrum, the rate over time and the CPU
//! cost chart.

use super::charts::{self, Line};
use super::doc::{Block, Chart, Doc, Table};
use super::hlog;
use super::tables::{self, Agg, MeasureRow};
use crate::fmt;
use crate::result::{RunResult, ScenarioResult, Status};
use crate::slo;
use plotters::style::RGBColor;

/// Build the document.
pub(crate) fn build(r: &RunResult) -> Doc {
    let mut blocks = vec![Block::Fields(header(r))];
    let c = &r.environment.coordinator;
    blocks.extend([
        Block::Heading(2, "Environment".into()),
        Block::Text(format!(
            "Coordinator: {} (kernel {}, {} x {}). Workers, with each clock's offset to the coordinator ± its error bound:",
            c.host, c.kernel, c.cpus, c.cpu_model
        )),
        Block::Table(tables::workers_table(&[(None, r)])),
        Block::Heading(2, "Plan".into()),
        Block::Table(tables::plan_table(&r.plan.scenarios)),
    ]);
    blocks.extend(super::matrix::run_blocks(r));
    blocks.extend([
        Block::Heading(2, "Results".into()),
        Block::Text(tables::LEGEND.into()),
    ]);
    blocks.extend(soak(r));
    let mut next_note = 1;
    for s in &r.scenarios {
        blocks.extend(scenario(s, &mut next_note));
    }
    let missing: Vec<&str> = r
        .plan
        .scenarios
        .iter()
        .filter(|p| !r.scenarios.iter().any(|s| s.name == p.name))
        .map(|p| p.name.as_str())
        .collect();
    if !missing.is_empty() {
        let why = if r.incomplete.is_some() {
            "not reached when this result was written"
        } else {
            "the run was interrupted"
        };
        blocks.push(Block::Text(format!(
            "Not run ({why}): {}.",
            missing.join(", ")
        )));
    }
    Doc {
        title: format!(
            "cnibench {}: {}",
            if r.soak.is_some() { "soak" } else { "run" },
            r.plan.name
        ),
        blocks,
    }
}

fn header(r: &RunResult) -> Vec<(String, String)> {
    let reps: Vec<Status> = r
        .scenarios
        .iter()
        .flat_map(|s| s.repetitions.iter().map(|x| x.status))
        .collect();
    let not_ok = reps.iter().filter(|s| **s != Status::Ok).count();
    let status = if let Some(why) = &r.incomplete {
        format!(
            "INCOMPLETE: {} repetitions of {} scenarios so far ({why})",
            reps.len(),
            r.scenarios.len()
        )
    } else if r.ok {
        format!("ok: all {} repetitions ok", reps.len())
    } else {
        format!(
            "NOT OK: {not_ok} of {} repetitions partial or failed, {} of {} scenarios run (see the notes under each table)",
            reps.len(),
            r.scenarios.len(),
            r.plan.scenarios.len()
        )
    };
    let mut cnis: Vec<&str> = r.scenarios.iter().map(|s| s.cni.as_str()).collect();
    cnis.dedup();
    let secs = (r.finished_at_unix_ns - r.started_at_unix_ns) as f64 / 1e9;
    [
        ("plan", format!("{} ({})", r.plan.name, r.plan_file)),
        ("CNI", cnis.join(", ")),
        ("status", status),
        ("run id", r.run_id.clone()),
        ("started", fmt::utc(r.started_at_unix_ns)),
        (
            if r.incomplete.is_some() {
                "written"
            } else {
                "finished"
            },
            format!("{} ({secs:.1} s)", fmt::utc(r.finished_at_unix_ns)),
        ),
        (
            "tool",
            format!("{} (result.json schema {})", r.tool, r.schema_version),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

fn scenario(s: &ScenarioResult, next_note: &mut usize) -> Vec<Block> {
    let mut rows: Vec<MeasureRow<'_>> = s
        .repetitions
        .iter()
        .map(|rep| MeasureRow {
            label: rep.repetition.to_string(),
            reps: vec![(format!("repetition {}", rep.repetition), rep)],
            total: false,
        })
        .collect();
    if s.repetitions.len() > 1 {
        rows.push(MeasureRow {
            label: "all".into(),
            reps: rows.iter().flat_map(|r| r.reps.iter().cloned()).collect(),
            total: true,
        });
    }
    let (table, notes) = tables::measure_table("repetition", &rows, *next_note);
    *next_note += notes.len();
    let mut blocks = vec![
        Block::Heading(3, format!("{}: {}, {}", s.name, s.traffic, s.path)),
        Block::Text(format!(
            "CNI {}; client on {} ({}), server on {} ({}).",
            s.cni,
            s.client_node,
            s.client_workers.join(", "),
            s.server_node,
            s.server_workers.join(", ")
        )),
        Block::Table(table),
    ];
    blocks.extend(notes.block());
    blocks.extend(endpoints(s));
    blocks.extend(slo_table(s));
    blocks.extend(sweep(s));
    blocks.push(Block::Charts(charts(s)));
    let logs: Vec<String> = s
        .repetitions
        .iter()
        .filter(|r| r.histogram.is_some())
        .map(|r| hlog::file_name(&s.name, r.repetition))
        .collect();
    if !logs.is_empty() {
        blocks.push(Block::Text(format!(
            "Latency interval logs (HdrHistogram): {}",
            logs.join(", ")
        )));
    }
    blocks
}

/// Behind a Service: one short line saying how each repetition's connections
/// were spread over the endpoints.
fn endpoints(s: &ScenarioResult) -> Option<Block> {
    let reps: Vec<String> = s
        .repetitions
        .iter()
        .filter(|r| !r.endpoints.is_empty())
        .map(|r| {
            let each: Vec<String> = r
                .endpoints
                .iter()
                .map(|e| match (e.share, e.bytes_share) {
                    (Some(share), _) => format!(
                        "{} {:.0}% ({} connections)",
                        e.worker,
                        share * 100.0,
                        e.connections
                    ),
                    (None, Some(share)) => format!(
                        "{} {:.0}% of the bytes (no connections)",
                        e.worker,
                        share * 100.0
                    ),
                    (None, None) => format!("{} nothing received", e.worker),
                })
                .collect();
            format!("repetition {}: {}", r.repetition, each.join(", "))
        })
        .collect();
    (!reps.is_empty()).then(|| {
        Block::Text(format!(
            "Endpoints (share of the connections, else of the bytes): {}.",
            reps.join("; ")
        ))
    })
}

fn charts(s: &ScenarioResult) -> Vec<Chart> {
    let stream = s.traffic.is_stream();
    let aggs: Vec<_> = s.repetitions.iter().map(|r| Agg::of([r])).collect();
    let all = Agg::of(&s.repetitions);
    let mut lines: Vec<charts::HistLine<'_>> = s
        .repetitions
        .iter()
        .zip(&aggs)
        .enumerate()
        .map(|(i, (r, a))| {
            (
                format!("repetition {}", r.repetition),
                charts::color(i),
                2,
                &a.hist,
            )
        })
        .collect();
    let mut labelled: Vec<(String, RGBColor, &Agg)> = s
        .repetitions
        .iter()
        .zip(&aggs)
        .enumerate()
        .map(|(i, (r, a))| (format!("rep {}", r.repetition), charts::color(i), a))
        .collect();
    if s.repetitions.len() > 1 {
        lines.push(("all merged".into(), charts::MERGED, 3, &all.hist));
        labelled.push(("all".into(), charts::MERGED, &all));
    }
    let (unit, scale) = tables::headline_unit(stream);
    let timeline: Vec<Line> = s
        .repetitions
        .iter()
        .enumerate()
        .map(|(i, r)| Line {
            label: format!("repetition {}", r.repetition),
            color: charts::color(i),
            width: 2,
            points: r
                .intervals
                .iter()
                .filter(|iv| !iv.warmup)
                .map(|iv| {
                    let v = if stream {
                        iv.throughput_bps
                    } else {
                        iv.requests_per_s
                    };
                    ((iv.t_start_s + iv.t_end_s) / 2.0, v)
                })
                .collect(),
        })
        .collect();
    let mut out: Vec<Chart> =
        charts::spectrum_chart(format!("{}: latency by percentile", s.name), &lines)
            .into_iter()
            .collect();
    out.extend([
        Chart {
            title: format!("{}: {unit} per interval", s.name),
            svg: charts::timeline(unit, scale, timeline),
        },
        tables::cpu_chart(&s.name, &labelled),
    ]);
    out
}

/// The objectives checked on each repetition, when the scenario has any.
fn slo_table(s: &ScenarioResult) -> Vec<Block> {
    let mut t = Table::new(&[
        "repetition",
        "objective",
        "limit",
        "measured",
        "verdict",
        "intervals broken",
    ]);
    for rep in &s.repetitions {
        for c in &rep.slo {
            t.push(vec![
                rep.repetition.to_string(),
                c.objective.clone(),
                slo::show(&c.objective, c.limit),
                c.measured
                    .map_or("not measured".into(), |v| slo::show(&c.objective, v)),
                if c.ok { "held".into() } else { "BROKEN".into() },
                c.intervals
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(" "),
            ]);
        }
    }
    if t.rows.is_empty() {
        return Vec::new();
    }
    vec![
        Block::Heading(4, "Service-level objectives".into()),
        Block::Table(t),
    ]
}

/// A rate sweep's steps, what it found, and latency against offered load.
fn sweep(s: &ScenarioResult) -> Vec<Block> {
    let Some(w) = &s.sweep else {
        return Vec::new();
    };
    let bits = w.unit == "bit/s";
    let rate = |v: f64| w.show(v);
    let mut t = Table::new(&[
        "step", "offered", "achieved", "p50", "p99", "held", "why not",
    ]);
    for (i, st) in w.steps.iter().enumerate() {
        let lat = st.result.latency_ns.as_ref();
        t.push(vec![
            (i + 1).to_string(),
            rate(st.offered),
            st.achieved.map_or("-".into(), rate),
            lat.map_or("-".into(), |l| fmt::ns(l.p50)),
            lat.map_or("-".into(), |l| fmt::ns(l.p99)),
            if st.holds { "yes".into() } else { "no".into() },
            st.why.clone().unwrap_or_default(),
        ]);
    }
    let found = format!(
        "Rate sweep {}: highest offered rate that held: {}; latency knee (p99 within {}x of the lightest step) at {}.{}",
        w.sweep,
        w.max_rate.map_or("none".into(), rate),
        crate::sweep::KNEE_FACTOR,
        w.knee_rate.map_or("none".into(), rate),
        w.limited_by
            .as_ref()
            .map(|l| format!(" Note: {l}."))
            .unwrap_or_default()
    );
    let mut by_rate: Vec<&crate::result::SweepStep> = w.steps.iter().collect();
    by_rate.sort_by(|a, b| a.offered.total_cmp(&b.offered));
    let (xs, xdesc) = if bits {
        (1e9, "offered load, Gbit/s")
    } else {
        (1.0, "offered load, requests/s")
    };
    let line = |label: &str, i: usize, q: fn(&crate::result::Percentiles) -> u64| Line {
        label: label.to_string(),
        color: charts::color(i),
        width: 2,
        points: by_rate
            .iter()
            .map(|st| {
                (
                    st.offered / xs,
                    st.result.latency_ns.as_ref().map(|l| q(l) as f64),
                )
            })
            .collect(),
    };
    let lines = vec![line("p50", 0, |l| l.p50), line("p99", 1, |l| l.p99)];
    let mut blocks = vec![
        Block::Heading(4, "Rate sweep".into()),
        Block::Text(found),
        Block::Table(t),
    ];
    if !s.traffic.is_stream() {
        blocks.push(Block::Charts(vec![Chart {
            title: format!("{}: latency by offered load", s.name),
            svg: charts::xy(xdesc, "latency, ms", 1e6, lines),
        }]));
    }
    blocks
}

/// A soak's account: how it ended, its events, and each scenario's windows over time.
fn soak(r: &RunResult) -> Vec<Block> {
    let Some(k) = &r.soak else {
        return Vec::new();
    };
    let mut blocks = vec![
        Block::Heading(3, "Soak".into()),
        Block::Text(format!(
            "Planned {:.0} s in windows of {:.0} s; {} windows run; ended: {}. {} events.",
            k.duration_s,
            k.window_s,
            k.windows.len(),
            k.ended,
            k.events.len()
        )),
    ];
    if !k.events.is_empty() {
        let mut t = Table::new(&["at (s)", "scenario", "window", "event", "detail"]);
        for e in &k.events {
            t.push(vec![
                format!("{:.1}", e.at_s),
                e.scenario.clone(),
                e.window.to_string(),
                format!("{:?}", e.kind).to_lowercase(),
                e.detail.clone(),
            ]);
        }
        blocks.push(Block::Table(t));
    }
    let mut charts_ = Vec::new();
    for s in &r.scenarios {
        let stream = s.traffic.is_stream();
        let (unit, scale) = tables::headline_unit(stream);
        let ws: Vec<_> = k.windows.iter().filter(|w| w.scenario == s.name).collect();
        let rate = Line {
            label: unit.to_string(),
            color: charts::color(0),
            width: 2,
            points: ws
                .iter()
                .map(|w| {
                    let v = if stream {
                        w.throughput_bps
                    } else {
                        w.requests_per_s
                    };
                    (w.started_s, v)
                })
                .collect(),
        };
        charts_.push(Chart {
            title: format!("{}: {unit} per window", s.name),
            svg: charts::xy("seconds since the soak started", unit, scale, vec![rate]),
        });
        if !stream {
            let p99 = Line {
                label: "p99".into(),
                color: charts::color(1),
                width: 2,
                points: ws
                    .iter()
                    .map(|w| (w.started_s, w.p99_ns.map(|p| p as f64)))
                    .collect(),
            };
            charts_.push(Chart {
                title: format!("{}: p99 latency per window", s.name),
                svg: charts::xy("seconds since the soak started", "p99, ms", 1e6, vec![p99]),
            });
        }
    }
    blocks.push(Block::Charts(charts_));
    blocks
}
