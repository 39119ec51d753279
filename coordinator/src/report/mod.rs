//! Publication reports, written from `result.json` alone (so they can be
//! regenerated with `cnibench report DIR`):
//!
//! - `report.md`: environment, plan, and per scenario a table (throughput, req/s,
//!   latency percentiles, errors, status) with validity notes right under it;
//! - `report.html`: the same tables plus inline SVG charts (latency spectrum,
//!   rate over time, bars per CNI, CPU cost); one self-contained file with no
//!   scripts and no external resources, readable offline;
//! - `<scenario>.rep<N>.hlog`: HdrHistogram interval logs of the client latency
//!   (see [`hlog`]).
//!
//! For `cnibench compare --out DIR`, `report.md` and `report.html` hold the
//! comparison table, every run's environment, and per scenario one row, one
//! spectrum line and one bar per CNI label.
//!
//! Both reports group the scenarios of a parameter matrix again and plot each
//! measure against the parameter (`matrix`).
//!
//! Layout: `doc` (the document model and its Markdown rendering), `html`
//! (HTML rendering), `tables` (aggregation and the shared tables), `charts`
//! (plotters SVG), `run_doc` and `compare_doc` (the two documents), `matrix`
//! (their matrix sections), `env_doc` ([`environment`]), [`hlog`].

mod charts;
mod compare_doc;
mod doc;
mod env_doc;
pub mod hlog;
mod html;
mod matrix;
mod run_doc;
mod tables;

use crate::compare::Comparison;
use crate::result::RunResult;
use anyhow::Context as _;
use std::path::{Path, PathBuf};

/// File name of the Markdown report.
pub const MARKDOWN: &str = "report.md";
/// File name of the HTML report.
pub const HTML: &str = "report.html";

fn write_doc(dir: &Path, doc: &doc::Doc) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    [(MARKDOWN, doc.markdown()), (HTML, html::render(doc))]
        .into_iter()
        .map(|(name, text)| {
            let path = dir.join(name);
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
            Ok(path)
        })
        .collect()
}

/// Write `report.md`, `report.html` and the `.hlog` files of a run into `dir`;
/// returns the files written.
pub fn write_run(dir: &Path, run: &RunResult) -> anyhow::Result<Vec<PathBuf>> {
    let mut written = write_doc(dir, &run_doc::build(run))?;
    written.extend(hlog::write_all(dir, run)?);
    Ok(written)
}

/// Write `report.md` and `report.html` of a comparison into `dir`; `runs` are
/// the compared results with their source paths, as loaded by
/// [`crate::compare::load`].
pub fn write_compare(
    dir: &Path,
    runs: &[(String, RunResult)],
    c: &Comparison,
) -> anyhow::Result<Vec<PathBuf>> {
    write_doc(dir, &compare_doc::build(runs, c))
}

/// Where `runs` ran, as Markdown (a bundle's `ENVIRONMENT.md`); `runs` are
/// (name, result).
pub fn environment(runs: &[(&str, &RunResult)]) -> String {
    env_doc::build(runs).markdown()
}
