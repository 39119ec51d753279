//! Command line: `cnibench run PLAN --workers A,B --token-file F --out DIR`,
//! `cnibench soak PLAN --duration 6h ...` (same flags), `cnibench compare DIR...
//! [--out DIR]`, `cnibench report DIR`, `cnibench bundle DIR... --out FILE`.

use crate::progress::LiveProgress;
use crate::run::{self, RunError};
use crate::{compare, output, report};
use anyhow::Context;
use clap::{Parser, Subcommand};
use cnibench_proto::plan;
use std::path::{Path, PathBuf};
use tokio_util::sync::CancellationToken;

/// Exit code for usage and configuration errors (sysexits EX_USAGE).
pub const EXIT_USAGE: u8 = 64;
/// Exit code for unreachable or refusing workers (EX_UNAVAILABLE).
pub const EXIT_UNAVAILABLE: u8 = 69;
/// Exit code when results were written but some repetition is not `ok` or an
/// objective (`slo:`) did not hold.
pub const EXIT_DEGRADED: u8 = 1;

/// Distributed load generator for comparing Kubernetes network datapaths.
#[derive(Debug, Parser)]
#[command(name = "cnibench", version = crate::VERSION)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a plan on workers and write result.json, summary.csv, report.md,
    /// report.html and one HdrHistogram interval log (.hlog) per scenario and
    /// repetition.
    Run {
        /// Plan file (YAML).
        plan: PathBuf,
        /// Run every scenario this many times instead of the plan's
        /// repetitions (e.g. 1 per round when a script interleaves
        /// repetitions across datapaths; `cnibench compare` pools the rounds).
        #[arg(long, value_name = "N")]
        repetitions: Option<u32>,
        #[command(flatten)]
        target: Target,
    },
    /// Run the plan's scenarios continuously for a long time (one window at a
    /// time, in turns), reporting windows and events (stalls, drift, failures,
    /// broken objectives); memory stays bounded however long it runs.
    Soak {
        /// Plan file (YAML).
        plan: PathBuf,
        /// Total time, e.g. 6h.
        #[arg(long)]
        duration: cnibench_proto::units::Dur,
        /// Length of each window (one repetition of a scenario), e.g. 5m.
        #[arg(long, default_value = "5m")]
        window: cnibench_proto::units::Dur,
        #[command(flatten)]
        target: Target,
    },
    /// Compare runs (one per CNI / datapath): median, spread, ratio to a baseline.
    Compare {
        /// Run directories (or result.json files).
        #[arg(required = true)]
        runs: Vec<PathBuf>,
        /// Baseline column (default: hostnet if present, else the first label).
        #[arg(long)]
        baseline: Option<String>,
        /// Also write compare.md, compare.json, report.md and report.html into this directory.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// List recorded runs, newest first.
    History {
        /// Only runs with this scenario.
        #[arg(long)]
        scenario: Option<String>,
        /// How many runs.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[command(flatten)]
        db: DbArg,
    },
    /// Compare a run with a baseline run from the history; exit 1 on a
    /// regression beyond the noise of the baseline's repetitions.
    Check {
        /// Run directory (or result.json), or a run id from `cnibench history`.
        run: String,
        /// Baseline run id, or `last-good`: the newest earlier run of the same
        /// plan whose repetitions were all ok and whose objectives held.
        #[arg(long)]
        baseline: String,
        #[command(flatten)]
        db: DbArg,
    },
    /// Rewrite report.md, report.html and the .hlog files of a run directory
    /// from its result.json.
    Report {
        /// Run directory (holding result.json).
        run: PathBuf,
    },
    /// Pack runs and a comparison into one archive to publish: plans,
    /// result.json, .hlog logs, reports, environments, versions, SHA256SUMS
    /// and a README saying how to re-render and re-run them.
    Bundle {
        /// Run directories (holding result.json), and at most one output of
        /// `cnibench compare --out` (holding compare.json; the runs it
        /// compared come along).
        #[arg(required = true, value_name = "DIR")]
        dirs: Vec<PathBuf>,
        /// The archive to write, NAME.tar.gz (it unpacks into NAME/).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

/// Where and how a plan runs: shared by `run` and `soak`.
#[derive(Debug, clap::Args)]
struct Target {
    /// Worker control addresses, comma separated: HOST:PORT, or dns:NAME:PORT
    /// for every address of NAME (a headless Service). The first worker runs
    /// clients; servers go on another node for cross-node paths.
    #[arg(long, value_delimiter = ',', required = true)]
    workers: Vec<String>,
    /// File holding the shared token.
    #[arg(long, value_name = "FILE")]
    token_file: PathBuf,
    /// Output directory.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Keep retrying workers that cannot be reached yet for this long (e.g.
    /// 120s while a DaemonSet starts); refusals fail at once.
    #[arg(long, default_value = "0s", value_name = "DURATION")]
    wait_workers: cnibench_proto::units::Dur,
    /// Serve live Prometheus metrics at http://ADDR/metrics while running
    /// (e.g. 0.0.0.0:9464; port 0 picks one and prints it).
    #[arg(long, value_name = "ADDR")]
    metrics: Option<String>,
    #[command(flatten)]
    db: DbArg,
}

/// The history database.
#[derive(Debug, clap::Args)]
struct DbArg {
    /// History database (SQLite); default $XDG_DATA_HOME/cnibench/history.db
    /// (~/.local/share/cnibench/history.db).
    #[arg(long, value_name = "PATH")]
    db: Option<PathBuf>,
}

impl DbArg {
    fn open(&self) -> Result<crate::history::History, Failure> {
        let path = match &self.db {
            Some(p) => p.clone(),
            None => crate::history::default_path().map_err(usage)?,
        };
        crate::history::History::open(&path).map_err(usage)
    }
}

/// A failure with its exit code.
#[derive(Debug)]
pub struct Failure {
    /// Process exit code.
    pub code: u8,
    /// What to print.
    pub error: anyhow::Error,
}

fn usage(e: impl Into<anyhow::Error>) -> Failure {
    Failure {
        code: EXIT_USAGE,
        error: e.into(),
    }
}

/// Run the command line; `Ok(code)` is the exit code after a completed command.
pub fn main(cli: Cli) -> Result<u8, Failure> {
    match cli.command {
        Command::Run {
            plan,
            repetitions,
            target,
        } => cmd_run(plan, repetitions, run::Mode::Plan, target),
        Command::Soak {
            plan,
            duration,
            window,
            target,
        } => {
            if window.0 < std::time::Duration::from_secs(1) || window > duration {
                return Err(usage(anyhow::anyhow!(
                    "--window {window}: must be between 1s and --duration ({duration})"
                )));
            }
            let opts = crate::soak::SoakOptions {
                duration: duration.0,
                window: window.0,
            };
            cmd_run(plan, None, run::Mode::Soak(opts), target)
        }
        Command::Compare {
            runs,
            baseline,
            out,
        } => cmd_compare(&runs, baseline.as_deref(), out),
        Command::Report { run } => cmd_report(&run),
        Command::Bundle { dirs, out } => cmd_bundle(&dirs, &out),
        Command::History {
            scenario,
            limit,
            db,
        } => cmd_history(&db, scenario.as_deref(), limit),
        Command::Check { run, baseline, db } => cmd_check(&db, &run, &baseline),
    }
}

/// A failure to write outputs after the measurements were taken.
fn write_failure(error: anyhow::Error) -> Failure {
    Failure {
        code: EXIT_DEGRADED,
        error,
    }
}

/// Write a run's reports and say where they are.
fn write_reports(dir: &Path, result: &crate::result::RunResult) -> Result<(), Failure> {
    report::write_run(dir, result)
        .with_context(|| format!("cannot write reports to {}", dir.display()))
        .map_err(write_failure)?;
    println!("report: {}", dir.join(report::HTML).display());
    Ok(())
}

fn cmd_report(dir: &Path) -> Result<u8, Failure> {
    let mut loaded = compare::load(&[dir.to_path_buf()]).map_err(usage)?;
    let (_, result) = loaded.remove(0);
    if let Some(why) = &result.incomplete {
        eprintln!("cnibench: note: the run is incomplete: {why}");
    }
    let dir = if dir.is_dir() {
        dir
    } else {
        dir.parent().unwrap_or(Path::new("."))
    };
    write_reports(dir, &result)?;
    Ok(0)
}

fn cmd_bundle(dirs: &[PathBuf], out: &Path) -> Result<u8, Failure> {
    crate::bundle::top_dir(out).map_err(usage)?;
    let inputs = crate::bundle::gather(dirs).map_err(usage)?;
    let n = crate::bundle::write(&inputs, out).map_err(write_failure)?;
    println!(
        "bundle: {} ({n} files: {} run(s){}; verify with sha256sum -c SHA256SUMS, see README.md inside)",
        out.display(),
        inputs.runs.len(),
        if inputs.compare.is_some() {
            " and a comparison"
        } else {
            ""
        }
    );
    for r in &inputs.runs {
        if let crate::bundle::PlanOrigin::Regenerated(why) = &r.plan_origin {
            eprintln!(
                "cnibench: note: runs/{}/plan.yaml written out from result.json: {why}",
                r.name
            );
        }
    }
    Ok(0)
}

fn cmd_compare(
    runs: &[PathBuf],
    baseline: Option<&str>,
    out: Option<PathBuf>,
) -> Result<u8, Failure> {
    let loaded = compare::load(runs).map_err(usage)?;
    let c = compare::compare(&loaded, baseline);
    if let Some(b) = baseline
        && !c.columns.iter().any(|l| l == b)
    {
        return Err(usage(anyhow::anyhow!(
            "--baseline {b}: no run has that label (labels: {})",
            c.columns.join(", ")
        )));
    }
    print!("{}", compare::markdown(&c));
    if let Some(dir) = out {
        compare::write(&dir, &c)
            .with_context(|| format!("cannot write {}", dir.display()))
            .map_err(write_failure)?;
        report::write_compare(&dir, &loaded, &c)
            .with_context(|| format!("cannot write reports to {}", dir.display()))
            .map_err(write_failure)?;
        println!("comparison: {}", dir.join("compare.md").display());
        println!("report: {}", dir.join(report::HTML).display());
    }
    Ok(0)
}

fn read_token(path: &PathBuf) -> Result<Vec<u8>, Failure> {
    let t = std::fs::read(path)
        .with_context(|| format!("--token-file {}", path.display()))
        .map_err(usage)?;
    let t = t.trim_ascii().to_vec();
    if t.is_empty() {
        return Err(usage(anyhow::anyhow!(
            "--token-file {}: file is empty",
            path.display()
        )));
    }
    Ok(t)
}

/// A plan's `service: dns:NAME:PORT`: the first address NAME resolves to (a
/// ClusterIP Service has one), as `--workers dns:` is resolved.
fn resolve_service(name: &str, port: u16) -> Result<std::net::IpAddr, String> {
    use std::net::ToSocketAddrs;
    let mut addrs: Vec<std::net::SocketAddr> = (name, port)
        .to_socket_addrs()
        .map_err(|e| e.to_string())?
        .collect();
    addrs.sort();
    addrs
        .first()
        .map(std::net::SocketAddr::ip)
        .ok_or_else(|| "no addresses".to_string())
}

fn cmd_run(
    plan_path: PathBuf,
    repetitions: Option<u32>,
    mode: run::Mode,
    target: Target,
) -> Result<u8, Failure> {
    let Target {
        workers,
        token_file,
        out,
        wait_workers,
        metrics,
        db,
    } = target;
    let wait = wait_workers.0;
    let name = plan_path.display().to_string();
    let text = std::fs::read_to_string(&plan_path)
        .with_context(|| format!("cannot read plan {name}"))
        .map_err(usage)?;
    let mut plan = plan::load_resolving(&name, &text, &mut resolve_service).map_err(usage)?;
    if let Some(n) = repetitions {
        if n == 0 || n > plan::MAX_REPETITIONS {
            return Err(usage(anyhow::anyhow!(
                "--repetitions {n}: must be 1..={}",
                plan::MAX_REPETITIONS
            )));
        }
        for s in &mut plan.scenarios {
            if s.sweep.is_some() && n != 1 {
                return Err(usage(anyhow::anyhow!(
                    "--repetitions {n}: scenario `{}` is a rate sweep, which runs each step once",
                    s.name
                )));
            }
            s.repetitions = n;
        }
    }
    let token = read_token(&token_file)?;
    let workers: Vec<String> = workers
        .into_iter()
        .map(|w| w.trim().to_string())
        .filter(|w| !w.is_empty())
        .collect();
    if workers.is_empty() {
        return Err(usage(anyhow::anyhow!("--workers: no worker address given")));
    }
    let rt = tokio::runtime::Runtime::new()
        .context("starting the runtime")
        .map_err(usage)?;
    // The files are the record; a history that cannot be written is a warning.
    // After every repetition: the result so far, so that a coordinator that dies
    // keeps what it finished (a failed write is a warning: the run goes on).
    let checkpoints = output::Checkpoints::start(out.clone(), db.open().map_err(|f| f.error));
    let mut checkpoint = |r| checkpoints.save(r);
    let result = rt.block_on(async {
        let interrupt = CancellationToken::new();
        let i = interrupt.clone();
        tokio::spawn(async move {
            cnibench_net::shutdown_signal().await;
            eprintln!("cnibench: interrupted: stopping workers and writing what was measured");
            i.cancel();
        });
        let live = LiveProgress::stderr();
        let mut progress: Box<dyn run::Progress> = match metrics {
            None => Box::new(live),
            Some(addr) => {
                let m = crate::metrics::Metrics::new();
                let bound = m
                    .serve(&addr)
                    .await
                    .map_err(|e| RunError::Usage(format!("{e:#}")))?;
                eprintln!("metrics: http://{bound}/metrics");
                Box::new(run::Tee(live, m))
            }
        };
        run::run(
            &name,
            plan,
            mode,
            &workers,
            &token,
            wait,
            interrupt,
            progress.as_mut(),
            &mut checkpoint,
        )
        .await
    });
    let result = result.map_err(|e| match e {
        RunError::Usage(m) => usage(anyhow::anyhow!(m)),
        RunError::Unavailable(e) => Failure {
            code: EXIT_UNAVAILABLE,
            error: e,
        },
    });
    let (history, error) = checkpoints.finish();
    if let Some(e) = error {
        eprintln!("cnibench: warning: {e:#}");
    }
    let result = result?;
    output::write(&out, &result)
        .with_context(|| format!("cannot write results to {}", out.display()))
        .map_err(write_failure)?;
    print!("{}", output::table(&result));
    if let Some(k) = &result.soak {
        println!(
            "soak: {} windows, ended: {}, {} events (see the report)",
            k.windows.len(),
            k.ended,
            k.events.len()
        );
    }
    for line in output::sweeps(&result) {
        println!("{line}");
    }
    let broken = crate::slo::broken(&result.scenarios);
    for line in &broken {
        println!("SLO broken: {line}");
    }
    println!("results: {}", out.join("result.json").display());
    write_reports(&out, &result)?;
    match history.and_then(|mut h| {
        h.record(&result, &out)?;
        Ok(h.path().to_path_buf())
    }) {
        Ok(p) => println!("history: run {} recorded in {}", result.run_id, p.display()),
        Err(e) => eprintln!("cnibench: warning: run not recorded in the history: {e:#}"),
    }
    Ok(if result.ok && result.slo_ok {
        0
    } else {
        EXIT_DEGRADED
    })
}

fn cmd_history(db: &DbArg, scenario: Option<&str>, limit: usize) -> Result<u8, Failure> {
    let h = db.open()?;
    let runs = h.runs(scenario, limit).map_err(write_failure)?;
    println!("history: {}", h.path().display());
    println!("| run id | started (UTC) | plan | kind | status | objectives | output |");
    println!("|---|---|---|---|---|---|---|");
    for r in &runs {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} |",
            r.run_id,
            crate::fmt::utc(r.started_at_unix_ns),
            r.plan_name,
            r.kind,
            if r.ok { "ok" } else { "NOT OK" },
            if r.slo_ok { "held" } else { "BROKEN" },
            r.out_dir
        );
    }
    if runs.is_empty() {
        println!(
            "(no runs recorded{})",
            scenario
                .map(|s| format!(" with scenario `{s}`"))
                .unwrap_or_default()
        );
    }
    Ok(0)
}

/// A recorded run's repetitions: from its result.json when it is still where
/// it was written (with its intervals, for the test's fallback), else from
/// the database.
fn stored_rows(
    h: &crate::history::History,
    run: &crate::history::RunRow,
) -> Result<Vec<crate::history::RepRow>, Failure> {
    let file = Path::new(&run.out_dir).join("result.json");
    if let Ok(mut loaded) = compare::load(&[file])
        && let Some((_, r)) = loaded.pop()
        && r.run_id == run.run_id
    {
        return Ok(crate::history::rows_of(&r));
    }
    h.repetitions(&run.run_id).map_err(write_failure)
}

fn cmd_check(db: &DbArg, run: &str, baseline: &str) -> Result<u8, Failure> {
    let h = db.open()?;
    // The candidate: a run directory or result.json, else a recorded run id.
    let path = Path::new(run);
    let (id, plan, started, rows) = if path.exists() {
        let mut loaded = compare::load(&[path.to_path_buf()]).map_err(usage)?;
        let (_, r) = loaded.remove(0);
        let rows = crate::history::rows_of(&r);
        (r.run_id, r.plan.name, r.started_at_unix_ns, rows)
    } else {
        let Some(r) = h.run(run).map_err(write_failure)? else {
            return Err(usage(anyhow::anyhow!(
                "{run}: neither a run directory nor a run id in {}",
                h.path().display()
            )));
        };
        let rows = stored_rows(&h, &r)?;
        (r.run_id, r.plan_name, r.started_at_unix_ns, rows)
    };
    let base = if baseline == "last-good" {
        let mut matching: Vec<(String, String, String)> = Vec::new();
        for r in &rows {
            let key = (r.scenario.clone(), r.cni.clone(), r.path.clone());
            if !matching.contains(&key) {
                matching.push(key);
            }
        }
        h.last_good(&plan, started, &id, &matching)
            .map_err(write_failure)?
            .ok_or_else(|| {
                usage(anyhow::anyhow!(
                    "--baseline last-good: no earlier good run of plan `{plan}` in {} \
                     (every repetition ok with no saturated client, objectives held, \
                     same scenarios, CNI labels and paths)",
                    h.path().display()
                ))
            })?
    } else {
        h.run(baseline).map_err(write_failure)?.ok_or_else(|| {
            usage(anyhow::anyhow!(
                "--baseline {baseline}: no such run in {} (see `cnibench history`)",
                h.path().display()
            ))
        })?
    };
    let base_rows = stored_rows(&h, &base)?;
    let findings = crate::check::check(&base_rows, &rows);
    println!(
        "run {id} against baseline {} ({})",
        base.run_id,
        crate::fmt::utc(base.started_at_unix_ns)
    );
    print!("{}", crate::check::markdown(&findings));
    let regressions = findings
        .iter()
        .filter(|f| f.verdict == crate::check::Verdict::Regression)
        .count();
    if regressions > 0 {
        println!("{regressions} regression(s) beyond the baseline's noise");
        Ok(EXIT_DEGRADED)
    } else {
        println!("no regression beyond the baseline's noise");
        Ok(0)
    }
}
