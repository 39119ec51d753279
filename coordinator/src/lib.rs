//! cnibench coordinator: loads a plan, connects to authenticated workers, places
//! clients and servers, starts them together, collects interval reports, merges
//! histograms exactly and writes results.
//!
//! Layout: [`cli`] (commands and exit codes), [`link`] (one worker connection),
//! [`run`] (connecting, placement, the I/O-free repetition state machine and its
//! driver, assembling the result), [`result`] (result model
//! and exact merge), [`output`] (result.json, summary.csv, the printed table),
//! [`compare`] (one table across runs labelled by CNI).
//!
//! The framed control connection, local system info and the shutdown signal come
//! from `cnibench_net`, which the worker uses too; the coordinator does not link the
//! worker crate (only its tests do, to run in-process workers).

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
pub mod sweep;
