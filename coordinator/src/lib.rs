//! cnibench coordinator: loads a plan, connects to authenticated workers, places
//! clients and servers, starts them together, collects interval reports, merges
//! histograms exactly and writes results.
//!
//! # Layout
//!
//! - [`cli`]: commands and exit codes; [`discovery`]: the worker list (static
//!   or from DNS).
//! - [`link`]: one worker connection; [`run`] (folder): connecting, placement,
//!   the I/O-free repetition state machine and its driver, assembling the
//!   result; [`progress`] and [`metrics`]: what a run shows while it goes
//!   (stderr, Prometheus).
//! - [`result`] (folder): the `result.json` schema in `mod.rs`, and the exact
//!   merge of a repetition (`merge`), its CPU cost (`cpu`), one-way delay
//!   (`delay`) and the statistics over repetitions (`summary`).
//! - [`slo`], [`sweep`], [`soak`]: objectives, rate sweeps and soaks, built on
//!   the result types.
//! - [`output`]: `result.json`, `summary.csv` and the table printed after a run;
//!   [`report`] (folder): `report.md`, `report.html` and `.hlog` files;
//!   [`fmt`]: how numbers are spelled in all of them.
//! - [`compare`]: one table across runs labelled by CNI; [`history`]: runs in
//!   SQLite; [`check`]: a run against a baseline run; [`stats`]: the
//!   bootstrap intervals, significance test and repetition counts both use.
//! - [`bundle`]: runs, their plans, reports and environments, and a
//!   comparison in one checksummed archive that re-renders.
//!
//! The framed control connection, local system info and the shutdown signal come
//! from `cnibench_net`, which the worker uses too; the coordinator does not link the
//! worker crate (only its tests do, to run in-process workers).

pub mod bundle;
pub mod check;
pub mod cli;
pub mod compare;
pub mod discovery;
pub mod fmt;
pub mod history;
pub mod link;
pub mod metrics;
pub mod output;
pub mod progress;
pub mod report;
pub mod result;
pub mod run;
pub mod slo;
pub mod soak;
pub mod stats;
pub mod sweep;

/// The git revision this binary was built from: `$CNIBENCH_GIT_REV` at build
/// time, else `git rev-parse HEAD`, else `unknown` (see `build.rs`).
pub const GIT_REVISION: &str = env!("CNIBENCH_GIT_REV");

/// Version and git revision, as `cnibench --version` prints them.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (git ",
    env!("CNIBENCH_GIT_REV"),
    ")"
);
