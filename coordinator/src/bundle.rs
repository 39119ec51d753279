//! `cnibench bundle DIR... --out FILE.tar.gz`: everything a reader needs to
//! check a published comparison, in one archive that re-renders.
//!
//! Each `DIR` is a run directory (it holds `result.json`) or the output of
//! `cnibench compare --out` (it holds `compare.json`; at most one); the runs
//! a comparison lists are bundled with it. The archive unpacks into one
//! directory named after the file:
//!
//! ```text
//! NAME/README.md        what is inside, how to verify, re-render and re-run
//! NAME/ENVIRONMENT.md   per run: coordinator and workers (node, CNI and mode,
//!                       MTU, kernel, CPU model, clock offsets)
//! NAME/bundle.json      the same facts for scripts: versions, runs, plans
//! NAME/SHA256SUMS       checksums of every other file (`sha256sum -c SHA256SUMS`)
//! NAME/runs/RUN/        result.json, summary.csv, report.md, report.html,
//!                       *.hlog, plan.yaml
//! NAME/compare/         compare.md, compare.json, report.md, report.html
//! ```
//!
//! `plan.yaml` is the plan file the run was made from when it is still where
//! the run found it and still loads to the plan in `result.json`; otherwise
//! the plan is written out from `result.json` ([`Plan::to_yaml`]), defaults
//! and all, and the README says so. Tokens, worker logs and the history
//! database are never included: only the files named above are read.
//!
//! The archive is deterministic: entries sorted, owner 0, fixed modes, every
//! mtime the end of the newest run, no gzip timestamp; the same inputs give
//! the same bytes.
//!
//! [`gather`] reads the inputs (its errors are the user's: exit 64), [`files`]
//! lays out the bundle without I/O, [`archive`] packs it into bytes.
//!
//! [`Plan::to_yaml`]: cnibench_proto::plan::Plan::to_yaml

use crate::result::RunResult;
use anyhow::{Context as _, anyhow, bail};
use cnibench_proto::plan;
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Files of a run directory that go into a bundle (and `*.hlog`).
const RUN_FILES: [&str; 4] = ["result.json", "summary.csv", "report.md", "report.html"];
/// Files of a compare directory that go into a bundle.
const COMPARE_FILES: [&str; 4] = ["compare.json", "compare.md", "report.md", "report.html"];
/// Layout version of a bundle (`bundle.json`).
pub const FORMAT: u32 = 1;

/// A run to bundle.
#[derive(Debug)]
pub struct Run {
    /// Its directory name inside `runs/`.
    pub name: String,
    /// The directory it was read from.
    pub dir: PathBuf,
    /// Its result.
    pub result: RunResult,
    /// The files read from it (name, bytes), sorted by name.
    pub files: Vec<(String, Vec<u8>)>,
    /// The plan shipped as `plan.yaml`.
    pub plan: String,
    /// Where `plan` comes from.
    pub plan_origin: PlanOrigin,
}

/// Where a bundled plan comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanOrigin {
    /// The plan file the run was made from, unchanged.
    File,
    /// Written out from result.json, with why the file was not used.
    Regenerated(String),
}

/// A comparison to bundle.
#[derive(Debug)]
pub struct Compare {
    /// The directory it was read from.
    pub dir: PathBuf,
    /// The files read from it (name, bytes), sorted by name.
    pub files: Vec<(String, Vec<u8>)>,
    /// Its baseline label.
    pub baseline: String,
    /// The bundled runs it compared, by index into [`Inputs::runs`], in its order.
    pub runs: Vec<usize>,
}

/// Everything read from disk for a bundle.
#[derive(Debug)]
pub struct Inputs {
    /// Runs, in the order given (a comparison's runs that were not given last).
    pub runs: Vec<Run>,
    /// The comparison, if one was given.
    pub compare: Option<Compare>,
}

/// The directory name inside the archive for `out` (`demo.tar.gz` -> `demo`),
/// or an error if `out` does not name a `.tar.gz` / `.tgz` file.
pub fn top_dir(out: &Path) -> anyhow::Result<String> {
    let name = out
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = name
        .strip_suffix(".tar.gz")
        .or_else(|| name.strip_suffix(".tgz"))
        .ok_or_else(|| {
            anyhow!(
                "--out {}: a bundle is a gzip-compressed tar file: name it NAME.tar.gz or NAME.tgz",
                out.display()
            )
        })?;
    let safe = safe_name(stem);
    Ok(if safe.is_empty() {
        "cnibench-bundle".into()
    } else {
        safe
    })
}

/// Characters safe in a file name everywhere; others become `_`.
fn safe_name(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect::<String>()
        .trim_start_matches('.')
        .to_string()
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Read the runs and the comparison named by `paths` (see the module docs).
pub fn gather(paths: &[PathBuf]) -> anyhow::Result<Inputs> {
    if paths.is_empty() {
        bail!("no run directory given");
    }
    let mut runs: Vec<Run> = Vec::new();
    let mut compare_dir: Option<PathBuf> = None;
    for p in paths {
        let dir = if p.is_file()
            && p.file_name()
                .is_some_and(|f| f == "result.json" || f == "compare.json")
        {
            p.parent().unwrap_or(Path::new(".")).to_path_buf()
        } else {
            p.clone()
        };
        if !dir.is_dir() {
            bail!("{}: no such directory", p.display());
        }
        let is_run = dir.join("result.json").is_file();
        let is_compare = dir.join("compare.json").is_file();
        if !is_run && !is_compare {
            bail!(
                "{}: neither a run directory (no result.json) nor the output of `cnibench compare --out` (no compare.json)",
                p.display()
            );
        }
        if is_run {
            add_run(&mut runs, &dir)?;
        }
        if is_compare {
            if let Some(first) = &compare_dir {
                bail!(
                    "{} and {}: one comparison per bundle",
                    first.display(),
                    p.display()
                );
            }
            compare_dir = Some(dir);
        }
    }
    let compare = match compare_dir {
        Some(dir) => Some(read_compare(&dir, &mut runs)?),
        None => None,
    };
    if runs.is_empty() {
        bail!("no run to bundle");
    }
    Ok(Inputs { runs, compare })
}

/// Read a run directory and append it, unless it is already there; returns
/// its index.
fn add_run(runs: &mut Vec<Run>, dir: &Path) -> anyhow::Result<usize> {
    let canonical =
        std::fs::canonicalize(dir).with_context(|| format!("cannot resolve {}", dir.display()))?;
    if let Some(i) = runs
        .iter()
        .position(|r| std::fs::canonicalize(&r.dir).is_ok_and(|d| d == canonical))
    {
        return Ok(i);
    }
    let path = dir.join("result.json");
    let bytes = read(&path)?;
    let result: RunResult = serde_json::from_slice(&bytes).map_err(|e| {
        anyhow!(
            "{}:{}: not a cnibench result: {e}",
            path.display(),
            e.line()
        )
    })?;
    let mut files: Vec<(String, Vec<u8>)> = vec![("result.json".into(), bytes)];
    for name in &RUN_FILES[1..] {
        let p = dir.join(name);
        if p.is_file() {
            files.push(((*name).to_string(), read(&p)?));
        }
    }
    let mut hlogs: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "hlog"))
        .collect();
    hlogs.sort();
    for p in hlogs {
        let name = p
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        files.push((name, read(&p)?));
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    let (plan, plan_origin) = plan_of(&result);
    let base = canonical
        .file_name()
        .map(|f| safe_name(&f.to_string_lossy()))
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "run".into());
    let mut name = base.clone();
    let mut n = 1;
    while runs.iter().any(|r| r.name == name) {
        n += 1;
        name = format!("{base}-{n}");
    }
    runs.push(Run {
        name,
        dir: dir.to_path_buf(),
        result,
        files,
        plan,
        plan_origin,
    });
    Ok(runs.len() - 1)
}

/// The plan to ship with a run: its file, if it still loads to the plan the
/// run recorded; else the recorded plan written out.
fn plan_of(r: &RunResult) -> (String, PlanOrigin) {
    let why = match std::fs::read_to_string(&r.plan_file) {
        Err(e) => format!("{} cannot be read here: {e}", r.plan_file),
        Ok(text) => match plan::load(&r.plan_file, &text) {
            Ok(p) if p == r.plan => return (text, PlanOrigin::File),
            Ok(_) => format!("{} has changed since the run", r.plan_file),
            Err(e) => format!("{} no longer loads: {e}", r.plan_file),
        },
    };
    (r.plan.to_yaml(), PlanOrigin::Regenerated(why))
}

/// Read a compare directory; the runs it lists are added to `runs`.
fn read_compare(dir: &Path, runs: &mut Vec<Run>) -> anyhow::Result<Compare> {
    let mut files = Vec::new();
    for name in COMPARE_FILES {
        let p = dir.join(name);
        if p.is_file() {
            files.push((name.to_string(), read(&p)?));
        }
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    let path = dir.join("compare.json");
    let json = files
        .iter()
        .find(|(n, _)| n == "compare.json")
        .map(|(_, b)| b.as_slice())
        .unwrap_or_default();
    let v: serde_json::Value = serde_json::from_slice(json)
        .map_err(|e| anyhow!("{}: not a cnibench comparison: {e}", path.display()))?;
    let baseline = v["baseline"].as_str().unwrap_or_default().to_string();
    let sources: Vec<&str> = v["sources"]
        .as_array()
        .map(|a| a.iter().filter_map(|s| s.as_str()).collect())
        .unwrap_or_default();
    if sources.is_empty() {
        bail!("{}: lists no compared runs (`sources`)", path.display());
    }
    let mut order = Vec::new();
    for src in sources {
        let p = Path::new(src);
        let run_dir = if p.file_name().is_some_and(|f| f == "result.json") {
            p.parent().unwrap_or(Path::new("."))
        } else {
            p
        };
        if !run_dir.join("result.json").is_file() {
            bail!(
                "{}: compared {src}, which is not found from here: run `cnibench bundle` where `cnibench compare` ran",
                path.display()
            );
        }
        order.push(add_run(runs, run_dir)?);
    }
    Ok(Compare {
        dir: dir.to_path_buf(),
        files,
        baseline,
        runs: order,
    })
}

/// `bundle.json`.
#[derive(Debug, Serialize)]
struct Manifest<'a> {
    format: u32,
    bundled_by: String,
    git_revision: &'a str,
    runs: Vec<ManifestRun<'a>>,
    compare: Option<ManifestCompare<'a>>,
}

#[derive(Debug, Serialize)]
struct ManifestRun<'a> {
    dir: String,
    source: String,
    run_id: &'a str,
    plan: &'a str,
    plan_file: &'a str,
    plan_origin: &'a PlanOrigin,
    cni: Vec<&'a str>,
    tool: &'a str,
    started_at_unix_ns: i64,
    finished_at_unix_ns: i64,
    ok: bool,
    files: Vec<&'a str>,
}

#[derive(Debug, Serialize)]
struct ManifestCompare<'a> {
    dir: &'a str,
    source: String,
    baseline: &'a str,
    runs: Vec<String>,
    files: Vec<&'a str>,
}

fn cnis(r: &RunResult) -> Vec<&str> {
    let mut c: Vec<&str> = r.scenarios.iter().map(|s| s.cni.as_str()).collect();
    c.dedup();
    c
}

/// The files of the bundle (paths relative to its directory, bytes), sorted
/// by path, `SHA256SUMS` included.
pub fn files(inputs: &Inputs) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    for r in &inputs.runs {
        for (name, bytes) in &r.files {
            out.push((format!("runs/{}/{name}", r.name), bytes.clone()));
        }
        out.push((
            format!("runs/{}/plan.yaml", r.name),
            r.plan.clone().into_bytes(),
        ));
    }
    if let Some(c) = &inputs.compare {
        for (name, bytes) in &c.files {
            out.push((format!("compare/{name}"), bytes.clone()));
        }
    }
    let named: Vec<(&str, &RunResult)> = inputs
        .runs
        .iter()
        .map(|r| (r.name.as_str(), &r.result))
        .collect();
    out.push((
        "ENVIRONMENT.md".into(),
        crate::report::environment(&named).into_bytes(),
    ));
    out.push(("README.md".into(), readme(inputs).into_bytes()));
    let manifest = Manifest {
        format: FORMAT,
        bundled_by: format!("cnibench {}", crate::VERSION),
        git_revision: crate::GIT_REVISION,
        runs: inputs
            .runs
            .iter()
            .map(|r| ManifestRun {
                dir: format!("runs/{}", r.name),
                source: r.dir.display().to_string(),
                run_id: &r.result.run_id,
                plan: &r.result.plan.name,
                plan_file: &r.result.plan_file,
                plan_origin: &r.plan_origin,
                cni: cnis(&r.result),
                tool: &r.result.tool,
                started_at_unix_ns: r.result.started_at_unix_ns,
                finished_at_unix_ns: r.result.finished_at_unix_ns,
                ok: r.result.ok,
                files: r.files.iter().map(|(n, _)| n.as_str()).collect(),
            })
            .collect(),
        compare: inputs.compare.as_ref().map(|c| ManifestCompare {
            dir: "compare",
            source: c.dir.display().to_string(),
            baseline: &c.baseline,
            runs: c
                .runs
                .iter()
                .filter_map(|&i| inputs.runs.get(i))
                .map(|r| format!("runs/{}", r.name))
                .collect(),
            files: c.files.iter().map(|(n, _)| n.as_str()).collect(),
        }),
    };
    let json = serde_json::to_string_pretty(&manifest).unwrap_or_default() + "\n";
    out.push(("bundle.json".into(), json.into_bytes()));
    out.sort_by(|a, b| a.0.cmp(&b.0));
    let sums = sha256sums(&out);
    out.push(("SHA256SUMS".into(), sums.into_bytes()));
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .fold(String::with_capacity(64), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// `sha256sum` output for `files`: `HASH  PATH` per line, in their order.
fn sha256sums(files: &[(String, Vec<u8>)]) -> String {
    files
        .iter()
        .map(|(path, bytes)| format!("{}  {path}\n", sha256_hex(bytes)))
        .collect()
}

/// How the README writes a command's paths.
fn arg(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./:,=@".contains(c))
        && !s.is_empty()
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// The README inside the bundle.
fn readme(inputs: &Inputs) -> String {
    let mut plans: Vec<&str> = inputs
        .runs
        .iter()
        .map(|r| r.result.plan.name.as_str())
        .collect();
    plans.dedup();
    let mut out = String::new();
    let _ = writeln!(out, "# cnibench results: {}\n", plans.join(", "));
    let _ = writeln!(
        out,
        "Bundled by cnibench {} with `cnibench bundle`: {} run(s){}. \
         The runs were made by: {}.\n",
        crate::VERSION,
        inputs.runs.len(),
        if inputs.compare.is_some() {
            " and their comparison"
        } else {
            ""
        },
        {
            let mut t: Vec<&str> = inputs.runs.iter().map(|r| r.result.tool.as_str()).collect();
            t.sort_unstable();
            t.dedup();
            t.join(", ")
        }
    );
    out.push_str("## Contents\n\n| path | what |\n|---|---|\n");
    for r in &inputs.runs {
        let hlogs = r.files.iter().filter(|(n, _)| n.ends_with(".hlog")).count();
        let others: Vec<&str> = r
            .files
            .iter()
            .map(|(n, _)| n.as_str())
            .filter(|n| !n.ends_with(".hlog"))
            .collect();
        let plan = match &r.plan_origin {
            PlanOrigin::File => format!("plan.yaml (the plan file it ran, {})", r.result.plan_file),
            PlanOrigin::Regenerated(why) => {
                format!("plan.yaml (written out from result.json, every default explicit: {why})")
            }
        };
        let _ = writeln!(
            out,
            "| `runs/{}/` | run of plan `{}`, CNI {}, started {}, run id {}{}: {}, {hlogs} HdrHistogram interval log(s) (.hlog), {plan} |",
            r.name,
            r.result.plan.name,
            cnis(&r.result).join(", "),
            crate::fmt::utc(r.result.started_at_unix_ns),
            r.result.run_id,
            if r.result.ok {
                ""
            } else {
                " (NOT OK: see its report)"
            },
            others.join(", "),
        );
    }
    if let Some(c) = &inputs.compare {
        let names: Vec<&str> = c
            .runs
            .iter()
            .filter_map(|&i| inputs.runs.get(i))
            .map(|r| r.name.as_str())
            .collect();
        let files: Vec<&str> = c.files.iter().map(|(n, _)| n.as_str()).collect();
        let _ = writeln!(
            out,
            "| `compare/` | `cnibench compare` of {} (baseline {}): {} |",
            names.join(", "),
            c.baseline,
            files.join(", ")
        );
    }
    out.push_str(
        "| `ENVIRONMENT.md` | per run: the coordinator, and each worker's node, CNI and mode, MTU, kernel, CPU model, addresses and clock offset |\n\
         | `bundle.json` | versions, runs, plans and files, for scripts |\n\
         | `SHA256SUMS` | the SHA-256 of every other file |\n\n\
         Not included: tokens, worker logs, the history database.\n\n",
    );
    out.push_str("## Verify\n\n```sh\nsha256sum -c SHA256SUMS\n```\n\n");
    out.push_str(
        "## Re-render the reports\n\nFrom this directory. `cnibench report` rewrites a run's \
         report.md, report.html and .hlog files from its result.json alone; with the cnibench \
         version that made the runs (above) they come out byte for byte as shipped, and \
         `sha256sum -c` still passes.\n\n```sh\n",
    );
    for r in &inputs.runs {
        let _ = writeln!(out, "cnibench report {}", arg(&format!("runs/{}", r.name)));
    }
    if let Some(c) = &inputs.compare {
        let dirs: Vec<String> = c
            .runs
            .iter()
            .filter_map(|&i| inputs.runs.get(i))
            .map(|r| arg(&format!("runs/{}", r.name)))
            .collect();
        let _ = writeln!(
            out,
            "cnibench compare {} --baseline {} --out rerendered/compare",
            dirs.join(" "),
            arg(&c.baseline)
        );
    }
    out.push_str("```\n");
    if inputs.compare.is_some() {
        out.push_str(
            "\nThe re-rendered comparison names the runs by their paths in this bundle; \
             the numbers are those of `compare/`.\n",
        );
    }
    out.push_str(
        "\n## Re-run\n\nEach run's plan is its `plan.yaml`. Start `cnibench-worker` on machines \
         like the ones in ENVIRONMENT.md (same CNI and mode, MTU, kernel), then, with the \
         workers' addresses (these are the ones the runs had; the first runs the clients):\n\n```sh\n",
    );
    for r in &inputs.runs {
        let workers: Vec<&str> = r
            .result
            .environment
            .workers
            .iter()
            .map(|w| w.addr.as_str())
            .collect();
        let dir = format!("runs/{}", r.name);
        let command = match &r.result.soak {
            Some(k) => format!(
                "soak {}/plan.yaml --duration {}s --window {}s",
                arg(&dir),
                k.duration_s.round(),
                k.window_s.round()
            ),
            None => format!("run {}/plan.yaml", arg(&dir)),
        };
        let _ = writeln!(
            out,
            "cnibench {command} --workers {} --token-file TOKEN --out {}",
            arg(&workers.join(",")),
            arg(&format!("rerun/{}", r.name))
        );
    }
    if let Some(c) = &inputs.compare {
        let dirs: Vec<String> = c
            .runs
            .iter()
            .filter_map(|&i| inputs.runs.get(i))
            .map(|r| arg(&format!("rerun/{}", r.name)))
            .collect();
        let _ = writeln!(
            out,
            "cnibench compare {} --baseline {} --out rerun/compare",
            dirs.join(" "),
            arg(&c.baseline)
        );
    }
    out.push_str("```\n");
    let labels: Vec<&str> = inputs.runs.iter().flat_map(|r| cnis(&r.result)).collect();
    let testbed = ["hostnet", "host-gw", "vxlan"];
    if let Some(first) = inputs.runs.first()
        && !labels.is_empty()
        && labels.iter().all(|l| testbed.contains(l))
    {
        let mut modes: Vec<&str> = Vec::new();
        for l in &labels {
            if !modes.contains(l) {
                modes.push(l);
            }
        }
        let _ = writeln!(
            out,
            "\nThese are the local testbed's datapaths: in a cnibench checkout, as root, \
             `scripts/demo.sh --plan {}/plan.yaml --modes {}` runs them all again and compares them.",
            arg(&format!("runs/{}", first.name)),
            arg(&modes.join(" "))
        );
    }
    out
}

/// The bundle as a gzip-compressed tar: `files` under `top/`, with every
/// directory as an entry of its own, sorted; owner 0, modes 0644 and 0755,
/// mtime `mtime` (seconds since the epoch), no gzip timestamp.
pub fn archive(top: &str, files: &[(String, Vec<u8>)], mtime: u64) -> std::io::Result<Vec<u8>> {
    let mut entries: Vec<(String, Option<&[u8]>)> = files
        .iter()
        .map(|(p, b)| (format!("{top}/{p}"), Some(b.as_slice())))
        .collect();
    let mut dirs: Vec<String> = vec![format!("{top}/")];
    for (p, _) in files {
        let mut at = 0;
        while let Some(i) = p[at..].find('/') {
            at += i + 1;
            let d = format!("{top}/{}", &p[..at]);
            if !dirs.contains(&d) {
                dirs.push(d);
            }
        }
    }
    entries.extend(dirs.into_iter().map(|d| (d, None)));
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let gz = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    for (path, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(mtime);
        h.set_uid(0);
        h.set_gid(0);
        match data {
            Some(bytes) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                h.set_size(bytes.len() as u64);
                tar.append_data(&mut h, &path, bytes)?;
            }
            None => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                tar.append_data(&mut h, &path, std::io::empty())?;
            }
        }
    }
    tar.into_inner()?.finish()
}

/// The mtime of every entry: the end of the newest run, in whole seconds.
pub fn mtime(inputs: &Inputs) -> u64 {
    inputs
        .runs
        .iter()
        .map(|r| r.result.finished_at_unix_ns.max(0) / 1_000_000_000)
        .max()
        .map_or(0, |s| s as u64)
}

/// Write the bundle of `inputs` to `out` (through a temporary file beside it,
/// so a failure leaves no half archive); returns the number of files in it.
pub fn write(inputs: &Inputs, out: &Path) -> anyhow::Result<usize> {
    let top = top_dir(out)?;
    let files = files(inputs);
    let bytes = archive(&top, &files, mtime(inputs)).context("packing the archive")?;
    let tmp = out.with_file_name(format!(
        ".{}.tmp",
        out.file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default()
    ));
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, out)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot write {}", out.display()));
    }
    Ok(files.len())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::io::Read as _;

    #[test]
    fn out_names() {
        assert_eq!(top_dir(Path::new("x/demo.tar.gz")).unwrap(), "demo");
        assert_eq!(top_dir(Path::new("a b.tgz")).unwrap(), "a_b");
        assert_eq!(top_dir(Path::new(".tgz")).unwrap(), "cnibench-bundle");
        let e = top_dir(Path::new("demo.zip")).unwrap_err().to_string();
        assert!(e.contains("NAME.tar.gz"), "{e}");
    }

    #[test]
    fn checksums_in_sha256sum_format() {
        // sha256("abc"), FIPS 180-2's example.
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let s = sha256sums(&[("a/b".into(), b"abc".to_vec())]);
        assert_eq!(
            s,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad  a/b\n"
        );
    }

    #[test]
    fn archives_are_sorted_owned_by_root_and_deterministic() {
        let files = vec![
            ("runs/b/x.hlog".to_string(), b"hlog".to_vec()),
            ("README.md".to_string(), b"# hi\n".to_vec()),
            ("runs/a/result.json".to_string(), b"{}".to_vec()),
        ];
        let one = archive("top", &files, 1_700_000_000).unwrap();
        let two = archive("top", &files, 1_700_000_000).unwrap();
        assert_eq!(one, two);
        let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(one.as_slice()));
        let mut seen = Vec::new();
        for e in tar.entries().unwrap() {
            let mut e = e.unwrap();
            let h = e.header();
            assert_eq!(h.mtime().unwrap(), 1_700_000_000);
            assert_eq!((h.uid().unwrap(), h.gid().unwrap()), (0, 0));
            let path = e.path().unwrap().display().to_string();
            let mut body = Vec::new();
            e.read_to_end(&mut body).unwrap();
            seen.push((path, body));
        }
        let paths: Vec<&str> = seen.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            [
                "top/",
                "top/README.md",
                "top/runs/",
                "top/runs/a/",
                "top/runs/a/result.json",
                "top/runs/b/",
                "top/runs/b/x.hlog"
            ]
        );
        assert_eq!(seen[6].1, b"hlog");
    }

    #[test]
    fn long_paths_survive() {
        let long = format!("runs/r/{}.rep1.hlog", "x".repeat(200));
        let a = archive("t", &[(long.clone(), b"1".to_vec())], 0).unwrap();
        let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(a.as_slice()));
        let paths: Vec<String> = tar
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert!(paths.contains(&format!("t/{long}")), "{paths:?}");
    }

    #[test]
    fn readme_arguments_are_quoted_when_needed() {
        assert_eq!(arg("runs/host-gw"), "runs/host-gw");
        assert_eq!(
            arg("10.0.0.1:7000,10.0.0.2:7000"),
            "10.0.0.1:7000,10.0.0.2:7000"
        );
        assert_eq!(arg("a b"), "'a b'");
        assert_eq!(arg("it's"), "'it'\\''s'");
        assert_eq!(arg(""), "''");
    }
}
