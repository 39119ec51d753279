//! Run history: every `cnibench run` and `cnibench soak` is recorded in an
//! embedded SQLite database (default `$XDG_DATA_HOME/cnibench/history.db`, else
//! `~/.local/share/cnibench/history.db`; `--db` to change): the run, and per
//! scenario repetition its figures and merged latency histogram.
//! `cnibench history` lists runs; `cnibench check` compares a run with a
//! baseline run from the database.
//!
//! The schema is versioned with SQLite's `user_version`; a database written by
//! a newer cnibench is refused rather than misread.

use crate::result::{IntervalResult, RepResult, RunResult, ScenarioResult, Status};
use anyhow::{Context as _, bail};
use cnibench_proto::plan::Traffic;
use rusqlite::{Connection, OptionalExtension as _, params};
use serde::de::{DeserializeOwned, IntoDeserializer as _};
use std::path::{Path, PathBuf};

/// Schema version this build writes and reads.
const SCHEMA: i64 = 1;

const CREATE: &str = "
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    plan_name TEXT NOT NULL,
    plan_file TEXT NOT NULL,
    kind TEXT NOT NULL,
    started_at_unix_ns INTEGER NOT NULL,
    finished_at_unix_ns INTEGER NOT NULL,
    ok INTEGER NOT NULL,
    slo_ok INTEGER NOT NULL,
    out_dir TEXT NOT NULL,
    tool TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS repetitions (
    run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    scenario TEXT NOT NULL,
    cni TEXT NOT NULL,
    traffic TEXT NOT NULL,
    path TEXT NOT NULL,
    repetition INTEGER NOT NULL,
    status TEXT NOT NULL,
    client_saturated INTEGER NOT NULL,
    throughput_bps REAL,
    requests_per_s REAL,
    connections_per_s REAL,
    p50_ns INTEGER,
    p99_ns INTEGER,
    p999_ns INTEGER,
    loss_pct REAL,
    cores_per_gbps REAL,
    cores_per_10k_rps REAL,
    errors INTEGER NOT NULL,
    histogram TEXT,
    PRIMARY KEY (run_id, scenario, repetition)
);
CREATE INDEX IF NOT EXISTS runs_by_plan ON runs(plan_name, started_at_unix_ns);
";

/// The default database path.
pub fn default_path() -> anyhow::Result<PathBuf> {
    let base = match std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
            Some(h) => PathBuf::from(h).join(".local/share"),
            None => bail!("neither XDG_DATA_HOME nor HOME is set: give --db PATH"),
        },
    };
    Ok(base.join("cnibench").join("history.db"))
}

/// An open history database.
#[derive(Debug)]
pub struct History {
    db: Connection,
    path: PathBuf,
}

/// One stored repetition's figures.
#[derive(Debug, Clone)]
pub struct RepRow {
    /// Scenario name.
    pub scenario: String,
    /// CNI label.
    pub cni: String,
    /// Traffic kind.
    pub traffic: Traffic,
    /// Path, as the plan spells it.
    pub path: String,
    /// Ok, partial or failed.
    pub status: Status,
    /// Goodput, bit/s.
    pub throughput_bps: Option<f64>,
    /// Transactions per second.
    pub requests_per_s: Option<f64>,
    /// p99 latency, ns.
    pub p99_ns: Option<f64>,
    /// Datagram loss, percent.
    pub loss_pct: Option<f64>,
    /// Its measured intervals, when read from result.json (the database
    /// keeps none): what `check` falls back to with few repetitions.
    pub intervals: Vec<IntervalResult>,
}

/// One stored run.
#[derive(Debug, Clone)]
pub struct RunRow {
    /// Run id.
    pub run_id: String,
    /// Plan name.
    pub plan_name: String,
    /// `run` or `soak`.
    pub kind: String,
    /// Start, unix ns.
    pub started_at_unix_ns: i64,
    /// Every repetition ok.
    pub ok: bool,
    /// Every objective held.
    pub slo_ok: bool,
    /// Where its files were written.
    pub out_dir: String,
}

impl History {
    /// Open (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> anyhow::Result<History> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let db = Connection::open(path)
            .with_context(|| format!("cannot open history database {}", path.display()))?;
        let version: i64 = db
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .with_context(|| format!("{}: not a cnibench history database", path.display()))?;
        if version > SCHEMA {
            bail!(
                "{}: history schema {version} is newer than this cnibench understands ({SCHEMA})",
                path.display()
            );
        }
        db.execute_batch("PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;")?;
        db.execute_batch(CREATE)
            .with_context(|| format!("{}: not a cnibench history database", path.display()))?;
        db.pragma_update(None, "user_version", SCHEMA)?;
        Ok(History {
            db,
            path: path.to_path_buf(),
        })
    }

    /// Where the database is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Record a run (replacing an earlier record of the same run id).
    pub fn record(&mut self, r: &RunResult, out_dir: &Path) -> anyhow::Result<()> {
        let tx = self.db.transaction()?;
        tx.execute("DELETE FROM runs WHERE run_id = ?1", params![r.run_id])?;
        tx.execute(
            "INSERT INTO runs VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                r.run_id,
                r.plan.name,
                r.plan_file,
                if r.soak.is_some() { "soak" } else { "run" },
                r.started_at_unix_ns,
                r.finished_at_unix_ns,
                r.ok,
                r.slo_ok,
                out_dir.display().to_string(),
                r.tool
            ],
        )?;
        {
            let mut ins = tx.prepare(
                "INSERT INTO repetitions VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)",
            )?;
            for s in &r.scenarios {
                for rep in &s.repetitions {
                    let l = rep.latency_ns.as_ref();
                    let cpu = rep.cpu.as_ref();
                    ins.execute(params![
                        r.run_id,
                        s.name,
                        s.cni,
                        s.traffic.as_str(),
                        s.path.as_str(),
                        rep.repetition,
                        rep.status.as_str(),
                        rep.client_saturated,
                        rep.throughput_bps,
                        rep.requests_per_s,
                        rep.connections_per_s,
                        l.map(|l| l.p50 as i64),
                        l.map(|l| l.p99 as i64),
                        l.map(|l| l.p999 as i64),
                        rep.udp.as_ref().and_then(|u| u.loss_pct),
                        cpu.and_then(|c| c.cores_per_gbps),
                        cpu.and_then(|c| c.cores_per_10k_rps),
                        rep.errors() as i64,
                        rep.histogram,
                    ])?;
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// `SELECT` of the `runs` columns [`Self::run_row`] reads, in its order.
    const SELECT_RUN: &str =
        "SELECT run_id, plan_name, kind, started_at_unix_ns, ok, slo_ok, out_dir FROM runs";

    fn run_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RunRow> {
        Ok(RunRow {
            run_id: r.get(0)?,
            plan_name: r.get(1)?,
            kind: r.get(2)?,
            started_at_unix_ns: r.get(3)?,
            ok: r.get(4)?,
            slo_ok: r.get(5)?,
            out_dir: r.get(6)?,
        })
    }

    /// Runs, newest first, optionally only those with scenario `scenario`.
    pub fn runs(&self, scenario: Option<&str>, limit: usize) -> anyhow::Result<Vec<RunRow>> {
        let mut q = self.db.prepare(&format!(
            "{} WHERE ?1 IS NULL OR run_id IN (SELECT run_id FROM repetitions WHERE scenario = ?1)
             ORDER BY started_at_unix_ns DESC LIMIT ?2",
            Self::SELECT_RUN
        ))?;
        let rows = q.query_map(params![scenario, limit as i64], Self::run_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The run `run_id`.
    pub fn run(&self, run_id: &str) -> anyhow::Result<Option<RunRow>> {
        Ok(self
            .db
            .query_row(
                &format!("{} WHERE run_id = ?1", Self::SELECT_RUN),
                params![run_id],
                Self::run_row,
            )
            .optional()?)
    }

    /// The newest run of plan `plan_name` before `before_ns`, other than
    /// `except`, whose repetitions were all ok, none with a saturated client,
    /// whose objectives all held, and that ran every `(scenario, cni, path)`
    /// of `matching` (the candidate's: the same CNI label and path, so that a
    /// run of another datapath is never the baseline).
    pub fn last_good(
        &self,
        plan_name: &str,
        before_ns: i64,
        except: &str,
        matching: &[(String, String, String)],
    ) -> anyhow::Result<Option<RunRow>> {
        let mut q = self.db.prepare(&format!(
            "{} WHERE plan_name = ?1 AND started_at_unix_ns < ?2 AND run_id <> ?3
             AND ok AND slo_ok AND NOT EXISTS (SELECT 1 FROM repetitions r
               WHERE r.run_id = runs.run_id AND (r.status <> 'ok' OR r.client_saturated))
             ORDER BY started_at_unix_ns DESC",
            Self::SELECT_RUN
        ))?;
        let mut has = self.db.prepare(
            "SELECT EXISTS (SELECT 1 FROM repetitions
             WHERE run_id = ?1 AND scenario = ?2 AND cni = ?3 AND path = ?4)",
        )?;
        for run in q.query_map(params![plan_name, before_ns, except], Self::run_row)? {
            let run = run?;
            let mut all = true;
            for (scenario, cni, path) in matching {
                if !has.query_row(params![run.run_id, scenario, cni, path], |r| r.get(0))? {
                    all = false;
                    break;
                }
            }
            if all {
                return Ok(Some(run));
            }
        }
        Ok(None)
    }

    /// Every stored repetition of run `run_id`.
    pub fn repetitions(&self, run_id: &str) -> anyhow::Result<Vec<RepRow>> {
        let mut q = self.db.prepare(
            "SELECT scenario, cni, traffic, status, throughput_bps, requests_per_s, p99_ns, loss_pct, path
             FROM repetitions WHERE run_id = ?1 ORDER BY scenario, repetition",
        )?;
        let rows = q.query_map(params![run_id], |r| {
            Ok(RepRow {
                scenario: r.get(0)?,
                cni: r.get(1)?,
                traffic: word(r, 2)?,
                status: word(r, 3)?,
                throughput_bps: r.get(4)?,
                requests_per_s: r.get(5)?,
                p99_ns: r.get::<_, Option<i64>>(6)?.map(|v| v as f64),
                loss_pct: r.get(7)?,
                path: r.get(8)?,
                intervals: Vec::new(),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// Column `i`: a word stored as result.json spells it (a traffic kind, a status).
fn word<T: DeserializeOwned>(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<T> {
    let text: String = r.get(i)?;
    T::deserialize(text.into_deserializer()).map_err(|e: serde::de::value::Error| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
    })
}

impl RepRow {
    /// The figures of repetition `rep` of scenario `s`.
    pub fn of(s: &ScenarioResult, rep: &RepResult) -> RepRow {
        RepRow {
            scenario: s.name.clone(),
            cni: s.cni.clone(),
            traffic: s.traffic,
            path: s.path.as_str().to_string(),
            status: rep.status,
            throughput_bps: rep.throughput_bps,
            requests_per_s: rep.requests_per_s,
            p99_ns: rep.latency_ns.as_ref().map(|l| l.p99 as f64),
            loss_pct: rep.udp.as_ref().and_then(|u| u.loss_pct),
            intervals: rep
                .intervals
                .iter()
                .filter(|i| !i.warmup)
                .cloned()
                .collect(),
        }
    }
}

/// The stored figures of a repetition held in memory (a run directory given to
/// `cnibench check` that is not in the database).
pub fn rows_of(r: &RunResult) -> Vec<RepRow> {
    r.scenarios
        .iter()
        .flat_map(|s| s.repetitions.iter().map(|rep| RepRow::of(s, rep)))
        .collect()
}
