//! Where a set of runs ran, in one page (a bundle's `ENVIRONMENT.md`): per run
//! its CNI, times and tool, the coordinator's machine, and the workers as they
//! reported themselves (node, CNI and mode, MTU, kernel, CPU model, addresses,
//! clock offset ± its bound).

use super::doc::{Block, Doc};
use super::tables;
use crate::fmt;
use crate::result::RunResult;

/// Build the document; `runs` are (name, result).
pub(crate) fn build(runs: &[(&str, &RunResult)]) -> Doc {
    let mut blocks = vec![Block::Text(
        "As recorded in each run's result.json (`environment`): the coordinator's machine, \
         and every worker as it reported itself, with its clock's offset to the coordinator \
         ± the error bound of that estimate."
            .into(),
    )];
    for (name, r) in runs {
        let c = &r.environment.coordinator;
        let mut cnis: Vec<&str> = r.scenarios.iter().map(|s| s.cni.as_str()).collect();
        cnis.dedup();
        let mut versions: Vec<&str> = r
            .environment
            .workers
            .iter()
            .map(|w| w.info.version.as_str())
            .collect();
        versions.sort_unstable();
        versions.dedup();
        let mut boots: Vec<&str> = r
            .environment
            .workers
            .iter()
            .filter_map(|w| w.info.boot_id.as_deref())
            .collect();
        let workers = boots.len();
        boots.sort_unstable();
        boots.dedup();
        blocks.extend([
            Block::Heading(2, (*name).to_string()),
            Block::Fields(
                [
                    ("CNI", cnis.join(", ")),
                    ("plan", r.plan.name.clone()),
                    ("run id", r.run_id.clone()),
                    ("started", fmt::utc(r.started_at_unix_ns)),
                    ("finished", fmt::utc(r.finished_at_unix_ns)),
                    ("tool", r.tool.clone()),
                    ("worker versions", versions.join(", ")),
                    (
                        "coordinator",
                        format!(
                            "{} (kernel {}, {} x {})",
                            c.host, c.kernel, c.cpus, c.cpu_model
                        ),
                    ),
                    (
                        "machines",
                        format!(
                            "{} worker(s) reporting a boot id, on {} machine(s)",
                            workers,
                            boots.len()
                        ),
                    ),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            ),
            Block::Table(tables::workers_table(&[(None, r)])),
        ]);
    }
    Doc {
        title: "cnibench environment".into(),
        blocks,
    }
}
