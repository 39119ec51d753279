//! Every plan shipped in `plans/` and `manifests/` loads without error.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use std::path::Path;

#[test]
fn shipped_plans_load() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut files: Vec<_> = std::fs::read_dir(root.join("plans"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.push(root.join("manifests/base/plan.yaml"));
    assert!(files.len() >= 4, "{files:?}");
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let name = f.display().to_string();
        if let Err(e) = cnibench_proto::plan::load(&name, &text) {
            panic!("{e}");
        }
    }
}
