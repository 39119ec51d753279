//! Building blocks shared by the run and compare reports: aggregation of a set of
//! repetitions (exact histogram merge), number formatting (null stays "-", never
//! 0), and the environment, plan and per-scenario measurement tables with their
//! validity notes.

use super::charts::{self, Bar};
use super::doc::{Block, Chart, MISSING, Row, Table, Tone};
use crate::fmt;
use crate::result::{
    HEALTH_MEASURES, Percentiles, RepResult, RunResult, Stat, Status, Summary, health_stat, summary,
};
use cnibench_proto::plan::{ScenarioSpec, Traffic};
use cnibench_proto::units::Rate;
use hdrhistogram::Histogram;
use plotters::style::RGBColor;

/// A set of repetitions taken together (one repetition, a scenario, or every
/// repetition of one CNI across runs): their [`Summary`], as result.json has it
/// for a scenario, and what the reports show besides.
#[derive(Debug)]
pub(crate) struct Agg {
    /// Status, rates, merged latency, CPU cost, saturation and errors.
    pub summary: Summary,
    /// Repetitions.
    pub reps: usize,
    /// All latency histograms merged (`summary.latency_ns` was read from it).
    pub hist: Histogram<u64>,
    /// p99 service time (open loop) per repetition; the service histograms are
    /// not in result.json, so several repetitions show median [min..max].
    pub service_p99: Option<Stat>,
    /// Datagrams (or udp-rr requests) lost and expected, summed.
    pub loss: Option<(u64, u64)>,
    /// The softirq part of the node cores, per repetition.
    pub softirq_cores: Option<Stat>,
    /// Cores used by the worker processes themselves (clients + server).
    pub process_cores: Option<Stat>,
    /// Node cores less the cnibench processes' user time, per repetition.
    pub datapath_cores: Option<Stat>,
    /// The health figures of [`HEALTH_MEASURES`], per repetition.
    pub health: [Option<Stat>; HEALTH_MEASURES.len()],
}

impl Agg {
    /// Aggregate repetitions; latency is read from the merged histogram.
    pub fn of<'a>(reps: impl IntoIterator<Item = &'a RepResult>) -> Agg {
        let reps: Vec<&RepResult> = reps.into_iter().collect();
        let (summary, hist) = summary::summarize_with_histogram(reps.iter().copied());
        Agg {
            summary,
            reps: reps.len(),
            hist,
            service_p99: Stat::of(
                reps.iter()
                    .map(|r| r.service_ns.as_ref().map(|p| p.p99 as f64)),
            ),
            loss: reps
                .iter()
                .filter_map(|r| r.udp.as_ref())
                .map(|u| (u.lost, u.received + u.lost))
                .reduce(|a, b| (a.0 + b.0, a.1 + b.1)),
            softirq_cores: summary::cpu_stat(&reps, |c| c.node_softirq_cores),
            datapath_cores: summary::cpu_stat(&reps, |c| c.datapath_cores),
            health: HEALTH_MEASURES.map(|m| health_stat(reps.iter().copied(), &m)),
            process_cores: summary::cpu_stat(&reps, |c| {
                match (c.client_process_cores, c.server_process_cores) {
                    (None, None) => None,
                    (a, b) => Some(a.unwrap_or(0.0) + b.unwrap_or(0.0)),
                }
            }),
        }
    }

    /// The CPU cost to chart: node cores per unit of the traffic's headline
    /// metric, else node cores, else the worker processes' own cores (when the
    /// node-wide cost could not be computed); with its axis label.
    pub fn cpu_headline(&self) -> Option<(&'static str, &Stat)> {
        [
            ("node cores per Gbit/s", &self.summary.cores_per_gbps),
            ("node cores per 10k req/s", &self.summary.cores_per_10k_rps),
            ("node cores per 1k conn/s", &self.summary.cores_per_1k_cps),
            ("node cores", &self.summary.node_cores),
            ("worker process cores", &self.process_cores),
        ]
        .into_iter()
        .find_map(|(label, s)| s.as_ref().map(|s| (label, s)))
    }

    /// Status word, with ", saturated" when the generator could not keep up.
    pub fn status_text(&self) -> String {
        let word = self.summary.status.as_str();
        if self.summary.client_saturated {
            format!("{word}, saturated")
        } else {
            word.to_string()
        }
    }

    /// The headline number: goodput for stream kinds, transactions otherwise.
    pub fn headline(&self, stream: bool) -> Option<&Stat> {
        if stream {
            self.summary.throughput_bps.as_ref()
        } else {
            self.summary.requests_per_s.as_ref()
        }
    }
}

/// How the measurement tables read.
pub(crate) const LEGEND: &str = "Rows covering several repetitions show median [min..max] over them; \
    latency percentiles are read from all their histograms merged (never averaged). \
    - = not measured. A superscript on a number points to a note right under its table \
    (a partial or failed repetition, stalls, errors): the number covers only what was measured.";

/// The CPU cost chart of labelled aggregates (label, colour, aggregate), in the
/// unit of the first one that measured CPU; "CPU not measured" if none did.
pub(crate) fn cpu_chart(scenario: &str, items: &[(String, RGBColor, &Agg)]) -> Chart {
    let unit = items
        .iter()
        .find_map(|(_, _, a)| a.cpu_headline())
        .map(|(u, _)| u);
    let bars: Vec<Bar<'_>> = items
        .iter()
        .filter_map(|(label, color, a)| {
            let (u, stat) = a.cpu_headline()?;
            (Some(u) == unit).then(|| (label.clone(), *color, stat))
        })
        .collect();
    charts::cpu_chart(scenario, unit.unwrap_or_default(), &bars)
}

/// Unit and scale of a headline metric.
pub(crate) fn headline_unit(stream: bool) -> (&'static str, f64) {
    if stream {
        ("Gbit/s", 1e9)
    } else {
        ("req/s", 1.0)
    }
}

/// `median` for one value, `median [min..max]` for several.
fn stat_text(s: Option<&Stat>, show: impl Fn(f64) -> String) -> String {
    match s {
        None => MISSING.into(),
        Some(s) if s.n < 2 => show(s.median),
        Some(s) => format!("{} [{}..{}]", show(s.median), show(s.min), show(s.max)),
    }
}

/// Latency or `-`.
fn ns_text(ns: Option<u64>) -> String {
    ns.map_or_else(|| MISSING.into(), fmt::ns)
}

/// Which numbers a note qualifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// Every number of the repetition (missing intervals, stalls, failures, saturation).
    All,
    /// CPU numbers only.
    Cpu,
    /// The error count only (the kinds of errors).
    Errors,
}

/// A measurement column: heading, the notes besides [`Scope::All`] that
/// qualify it, value of an aggregate, and whether it is shown even when no row
/// has a value (otherwise it is left out as not applicable).
struct Col {
    head: &'static str,
    scope: Scope,
    always: bool,
    value: fn(&Agg) -> String,
}

fn lat(a: &Agg, f: fn(&Percentiles) -> u64) -> String {
    ns_text(a.summary.latency_ns.as_ref().map(f))
}

const COLS: &[Col] = &[
    Col {
        head: "#Gbit/s",
        scope: Scope::All,
        always: true,
        value: |a| stat_text(a.summary.throughput_bps.as_ref(), |v| fmt::gbps(v, 3)),
    },
    Col {
        head: "#req/s",
        scope: Scope::All,
        always: true,
        value: |a| stat_text(a.summary.requests_per_s.as_ref(), fmt::whole),
    },
    Col {
        head: "#conn/s",
        scope: Scope::All,
        always: false,
        value: |a| stat_text(a.summary.connections_per_s.as_ref(), fmt::whole),
    },
    Col {
        head: "#p50",
        scope: Scope::All,
        always: true,
        value: |a| lat(a, |l| l.p50),
    },
    Col {
        head: "#p90",
        scope: Scope::All,
        always: true,
        value: |a| lat(a, |l| l.p90),
    },
    Col {
        head: "#p99",
        scope: Scope::All,
        always: true,
        value: |a| lat(a, |l| l.p99),
    },
    Col {
        head: "#p99.9",
        scope: Scope::All,
        always: true,
        value: |a| lat(a, |l| l.p999),
    },
    Col {
        head: "#max",
        scope: Scope::All,
        always: true,
        value: |a| lat(a, |l| l.max),
    },
    Col {
        head: "#service p99",
        scope: Scope::All,
        always: false,
        value: |a| stat_text(a.service_p99.as_ref(), |v| fmt::ns(v as u64)),
    },
    Col {
        head: "#loss",
        scope: Scope::All,
        always: false,
        value: |a| match a.loss {
            Some((lost, expected)) if expected > 0 => {
                format!(
                    "{} ({lost})",
                    fmt::pct(lost as f64 * 100.0 / expected as f64)
                )
            }
            _ => MISSING.into(),
        },
    },
    Col {
        head: "#jitter",
        scope: Scope::All,
        always: false,
        value: |a| stat_text(a.summary.jitter_ns.as_ref(), |v| fmt::ns(v as u64)),
    },
    Col {
        head: "#node CPU",
        scope: Scope::Cpu,
        always: false,
        value: |a| stat_text(a.summary.node_cores.as_ref(), fmt::cores),
    },
    Col {
        head: "#softirq",
        scope: Scope::Cpu,
        always: false,
        value: |a| stat_text(a.softirq_cores.as_ref(), fmt::cores),
    },
    Col {
        head: "#datapath CPU",
        scope: Scope::Cpu,
        always: false,
        value: |a| stat_text(a.datapath_cores.as_ref(), fmt::cores),
    },
    Col {
        head: "#worker CPU",
        scope: Scope::Cpu,
        always: false,
        value: |a| stat_text(a.process_cores.as_ref(), fmt::cores),
    },
    Col {
        head: "#cores/Gbit/s",
        scope: Scope::Cpu,
        always: false,
        value: |a| stat_text(a.summary.cores_per_gbps.as_ref(), fmt::cores),
    },
    Col {
        head: "#cores/10k req/s",
        scope: Scope::Cpu,
        always: false,
        value: |a| stat_text(a.summary.cores_per_10k_rps.as_ref(), fmt::cores),
    },
    Col {
        head: "#cores/1k conn/s",
        scope: Scope::Cpu,
        always: false,
        value: |a| stat_text(a.summary.cores_per_1k_cps.as_ref(), fmt::cores),
    },
    Col {
        head: "#TCP retrans",
        scope: Scope::All,
        always: false,
        value: |a| stat_text(a.health[0].as_ref(), fmt::pct),
    },
    Col {
        head: "#rcvbuf drops",
        scope: Scope::All,
        always: false,
        value: |a| stat_text(a.health[3].as_ref(), fmt::whole),
    },
    Col {
        head: "#conntrack full",
        scope: Scope::All,
        always: false,
        value: |a| stat_text(a.health[4].as_ref(), |v| format!("{v:.1}%")),
    },
    Col {
        head: "#if drops",
        scope: Scope::All,
        always: false,
        value: |a| stat_text(a.health[6].as_ref(), fmt::whole),
    },
    Col {
        head: "#softnet drops",
        scope: Scope::All,
        always: false,
        value: |a| stat_text(a.health[7].as_ref(), fmt::whole),
    },
    Col {
        head: "#samples",
        scope: Scope::All,
        always: false,
        value: |a| {
            a.summary
                .latency_ns
                .as_ref()
                .map_or_else(|| MISSING.into(), |l| l.count.to_string())
        },
    },
    Col {
        head: "#errors",
        scope: Scope::Errors,
        always: true,
        value: |a| a.summary.errors.to_string(),
    },
];

/// Numbered notes under a table (validity flags, error kinds).
#[derive(Debug, Default)]
pub(crate) struct Notes(Vec<(usize, String)>);

impl Notes {
    /// Add a note; returns its number (numbering continues across tables).
    pub fn add(&mut self, first: usize, text: String) -> usize {
        let n = first + self.0.len();
        self.0.push((n, text));
        n
    }

    /// Number of notes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The block, if there are notes.
    pub fn block(self) -> Option<Block> {
        (!self.0.is_empty()).then_some(Block::Notes(self.0))
    }
}

/// One labelled row of a measurement table.
pub(crate) struct MeasureRow<'a> {
    /// First cell (repetition number, "all", CNI label).
    pub label: String,
    /// Repetitions it covers, each with its name in notes (unique within the table).
    pub reps: Vec<(String, &'a RepResult)>,
    /// Summary row (bold, marks = the union of its repetitions' notes).
    pub total: bool,
}

/// The measurement table of one scenario: `label_head` names the first column.
/// Each repetition with flags gets a note listing them, and every number in the
/// rows covering that repetition carries the note's mark. Notes are numbered
/// from `first_note`.
pub(crate) fn measure_table(
    label_head: &str,
    rows: &[MeasureRow<'_>],
    first_note: usize,
) -> (Table, Notes) {
    let aggs: Vec<Agg> = rows
        .iter()
        .map(|r| Agg::of(r.reps.iter().map(|(_, rep)| *rep)))
        .collect();
    let cols: Vec<&Col> = COLS
        .iter()
        .filter(|c| c.always || aggs.iter().any(|a| (c.value)(a) != MISSING))
        .collect();
    let mut heads = vec![label_head, "=reps", "status"];
    heads.extend(cols.iter().map(|c| c.head));
    let mut table = Table::new(&heads);
    let mut notes = Notes::default();
    // Notes by repetition name, so a summary row reuses its repetitions' notes.
    let mut noted: Vec<(&str, Vec<(Scope, usize)>)> = Vec::new();
    for (row, agg) in rows.iter().zip(&aggs) {
        let mut row_notes: Vec<(Scope, usize)> = Vec::new();
        for (name, rep) in &row.reps {
            if let Some((_, ns)) = noted.iter().find(|(k, _)| k == name) {
                row_notes.extend(ns);
                continue;
            }
            let ns: Vec<(Scope, usize)> = rep_notes(name, rep)
                .into_iter()
                .map(|(scope, text)| (scope, notes.add(first_note, text)))
                .collect();
            row_notes.extend(&ns);
            noted.push((name, ns));
        }
        let marks_for = |scope: Scope| -> Vec<usize> {
            row_notes
                .iter()
                .filter(|(s, _)| *s == Scope::All || *s == scope)
                .map(|(_, n)| *n)
                .collect()
        };
        let mut cells = vec![row.label.clone(), agg.reps.to_string(), agg.status_text()];
        cells.extend(cols.iter().map(|c| (c.value)(agg)));
        let mut marks = vec![Vec::new(); 3];
        marks.extend(cols.iter().map(|c| marks_for(c.scope)));
        let tone = if row.total {
            Tone::Total
        } else if agg.summary.status == Status::Failed {
            Tone::Bad
        } else if row_notes.iter().any(|(s, _)| *s == Scope::All) {
            Tone::Warn
        } else {
            Tone::Normal
        };
        table.rows.push(Row { cells, marks, tone });
    }
    (table, notes)
}

/// The notes of a repetition, each with the numbers it qualifies: its status
/// and flags (CPU flags apart), and the kinds of its errors.
fn rep_notes(name: &str, r: &RepResult) -> Vec<(Scope, String)> {
    // "node CPU of ...: node cost not computed" concerns the CPU numbers only;
    // "client saturated: ... CPUs" concerns everything.
    let (cpu, general): (Vec<&String>, Vec<&String>) = r
        .flags
        .iter()
        .partition(|f| f.to_ascii_lowercase().starts_with("node cpu"));
    let join = |v: Vec<&String>| v.iter().map(|f| f.as_str()).collect::<Vec<_>>().join("; ");
    let mut out = Vec::new();
    if r.status != Status::Ok || !general.is_empty() {
        let text = if general.is_empty() {
            "no details".to_string()
        } else {
            join(general)
        };
        out.push((
            Scope::All,
            format!("{name} ({}): {text}", r.status.as_str()),
        ));
    }
    if !cpu.is_empty() {
        out.push((Scope::Cpu, format!("{name}, CPU: {}", join(cpu))));
    }
    let errors: Vec<String> = [("client", &r.client), ("server", &r.server)]
        .iter()
        .filter(|(_, c)| !c.errors.is_empty())
        .map(|(side, c)| {
            let kinds: Vec<String> = c.errors.iter().map(|(k, v)| format!("{k} {v}")).collect();
            format!("{side} {}", kinds.join(", "))
        })
        .collect();
    if !errors.is_empty() {
        out.push((
            Scope::Errors,
            format!("{name}, errors: {}", errors.join("; ")),
        ));
    }
    out
}

/// Workers of one or more runs; `run_label` adds a first column naming the run.
pub(crate) fn workers_table(runs: &[(Option<&str>, &RunResult)]) -> Table {
    let mut heads = Vec::new();
    if runs.iter().any(|(l, _)| l.is_some()) {
        heads.push("run");
    }
    heads.extend([
        "worker",
        "node",
        "CNI",
        "mode",
        "=MTU",
        "kernel",
        "CPU model",
        "=CPUs",
        "data IP",
        "=clock offset",
    ]);
    let mut t = Table::new(&heads);
    for (label, r) in runs {
        for w in &r.environment.workers {
            let i = &w.info;
            let mut cells: Vec<String> = label.iter().map(|l| l.to_string()).collect();
            cells.extend([
                w.addr.clone(),
                i.node.clone(),
                i.cni.clone(),
                i.cni_mode.clone().unwrap_or_else(|| MISSING.into()),
                i.mtu.map_or_else(|| MISSING.into(), |m| m.to_string()),
                i.kernel.clone(),
                i.cpu_model.clone(),
                i.cpus.to_string(),
                i.data_ip.to_string(),
                w.clock.map_or_else(
                    || MISSING.into(),
                    |c| {
                        format!(
                            "{} ± {}",
                            fmt::signed_ns(c.offset_ns),
                            fmt::ns(c.bound_ns.unsigned_abs())
                        )
                    },
                ),
            ]);
            t.push(cells);
        }
    }
    t
}

/// The traffic parameters of a scenario that matter for its kind.
fn parameters(s: &ScenarioSpec) -> String {
    let mut p = Vec::new();
    if s.clients > 1 {
        p.push(format!("clients {}", s.clients));
    }
    if s.traffic.is_stream() {
        p.push(format!("streams {}, message {}", s.streams, s.message_size));
    } else {
        p.push(format!(
            "connections {}, request {}, response {}",
            s.connections, s.request_size, s.response_size
        ));
    }
    match &s.sweep {
        Some(sw) => p.push(format!("rate {sw}")),
        None => p.push(format!("rate {}", s.rate)),
    }
    if s.rate != Rate::Max {
        p.push(format!(
            "arrival {}",
            format!("{:?}", s.arrival).to_lowercase()
        ));
    }
    if !s.server_delay.0.is_zero() {
        p.push(format!("server delay {}", s.server_delay));
    }
    if let Some(st) = &s.server_stall {
        p.push(format!("server stall at {} for {}", st.at, st.length));
    }
    if s.traffic == Traffic::UdpRr {
        p.push(format!("timeout {}", s.timeout));
    }
    let slo = &s.slo;
    let objectives: Vec<String> = [
        slo.p50.map(|v| format!("p50 <= {v}")),
        slo.p99.map(|v| format!("p99 <= {v}")),
        slo.p999.map(|v| format!("p99.9 <= {v}")),
        slo.error_rate.map(|v| format!("errors <= {v}")),
        slo.loss.map(|v| format!("loss <= {v}")),
        slo.min_throughput.map(|v| format!("throughput >= {v}")),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !objectives.is_empty() {
        p.push(format!("slo: {}", objectives.join(", ")));
    }
    p.join(", ")
}

/// The plan's scenarios with their parameters.
pub(crate) fn plan_table<'a>(scenarios: impl IntoIterator<Item = &'a ScenarioSpec>) -> Table {
    let mut t = Table::new(&[
        "scenario",
        "traffic",
        "path",
        "parameters",
        "=duration",
        "=warm-up",
        "=interval",
        "=repetitions",
    ]);
    for s in scenarios {
        t.push(vec![
            s.name.clone(),
            s.traffic.to_string(),
            s.path.to_string(),
            parameters(s),
            s.duration.to_string(),
            s.warmup.to_string(),
            s.interval.to_string(),
            s.repetitions.to_string(),
        ]);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::result;

    #[test]
    fn notes_mark_only_the_numbers_they_concern() {
        let spec = cnibench_proto::plan::load(
            "t.yaml",
            "name: t\nscenarios:\n  - {name: s, traffic: tcp-rr, path: pod-to-pod-cross-node}\n",
        )
        .unwrap()
        .scenarios
        .remove(0);
        let mut rep = result::rep_result(&spec, 1, result::Collected::default());
        rep.status = Status::Ok;
        rep.requests_per_s = Some(1000.0);
        rep.flags = vec!["node CPU of m: something else loaded the machine".into()];
        rep.cpu = Some(
            serde_json::from_value(serde_json::json!({"node_cores": 0.5, "shared_machine": false}))
                .unwrap(),
        );
        rep.client.errors.insert("reset".into(), 2);
        let rows = [MeasureRow {
            label: "1".into(),
            reps: vec![("repetition 1".into(), &rep)],
            total: false,
        }];
        let (t, notes) = measure_table("repetition", &rows, 1);
        let col = |name: &str| t.cols.iter().position(|c| c.0 == name).unwrap();
        let r = &t.rows[0];
        assert!(t.marks(r, col("req/s")).is_empty());
        assert_eq!(t.marks(r, col("node CPU")), [1]);
        assert_eq!(t.marks(r, col("errors")), [2]);
        assert_eq!(r.tone, Tone::Normal, "no note about the whole repetition");
        assert_eq!(notes.len(), 2);

        rep.flags.push("interval 2: no progress (stall)".into());
        let rows = [MeasureRow {
            label: "1".into(),
            reps: vec![("repetition 1".into(), &rep)],
            total: false,
        }];
        let (t, _) = measure_table("repetition", &rows, 1);
        let r = &t.rows[0];
        assert_eq!(t.marks(r, col("req/s")), [1]);
        assert_eq!(t.marks(r, col("node CPU")), [1, 2]);
        assert_eq!(r.tone, Tone::Warn);
    }

    #[test]
    fn health_columns_show_what_was_measured_and_only_that() {
        let spec = cnibench_proto::plan::load(
            "t.yaml",
            "name: t\nscenarios:\n  - {name: s, traffic: udp-stream, path: pod-to-pod-cross-node}\n",
        )
        .unwrap()
        .scenarios
        .remove(0);
        let mut rep = result::rep_result(&spec, 1, result::Collected::default());
        let table = |rep: &RepResult| {
            let rows = [MeasureRow {
                label: "1".into(),
                reps: vec![("repetition 1".into(), rep)],
                total: false,
            }];
            measure_table("repetition", &rows, 1).0
        };
        let t = table(&rep);
        assert!(
            !t.cols.iter().any(|c| c.0 == "TCP retrans"),
            "not available: no column, not 0"
        );
        rep.health = Some(result::Health {
            tcp_retransmit_pct: Some(1.5),
            udp_rcvbuf_errors: Some(7),
            ..Default::default()
        });
        let t = table(&rep);
        let cell = |name: &str| {
            let i = t.cols.iter().position(|c| c.0 == name).unwrap();
            t.rows[0].cells[i].clone()
        };
        assert_eq!(cell("TCP retrans"), "1.500%");
        assert_eq!(cell("rcvbuf drops"), "7");
        assert!(!t.cols.iter().any(|c| c.0 == "softnet drops"));
    }

    #[test]
    fn stat_cells() {
        let one = Stat::of([Some(2.5e9)]);
        let many = Stat::of([Some(1e9), Some(3e9), Some(2e9)]);
        let gbps = |v| fmt::gbps(v, 3);
        assert_eq!(stat_text(one.as_ref(), gbps), "2.500");
        assert_eq!(stat_text(many.as_ref(), gbps), "2.000 [1.000..3.000]");
        assert_eq!(stat_text(None, gbps), MISSING);
    }
}
