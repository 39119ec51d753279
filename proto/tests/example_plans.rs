//! Every plan shipped in `plans/` and `manifests/` loads without error, and
//! loads again, to the same plan, from the YAML it writes back (as a bundle
//! ships it); `plans/matrix.yaml` expands as its comments say.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use cnibench_proto::plan::{self, Plan};
use std::path::Path;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

fn load(rel: &str) -> Plan {
    let f = root().join(rel);
    let text = std::fs::read_to_string(&f).unwrap();
    plan::load(&f.display().to_string(), &text).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn shipped_plans_load_and_round_trip() {
    let mut files: Vec<String> = std::fs::read_dir(root().join("plans"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .map(|p| format!("plans/{}", p.file_name().unwrap().to_string_lossy()))
        .collect();
    files.push("manifests/base/plan.yaml".into());
    assert!(files.len() >= 5, "{files:?}");
    for f in files {
        let p = load(&f);
        let yaml = p.to_yaml();
        let again = plan::load("again.yaml", &yaml).unwrap_or_else(|e| panic!("{f}: {e}\n{yaml}"));
        assert_eq!(again, p, "{f}\n{yaml}");
    }
}

#[test]
fn the_matrix_plan_expands_as_documented() {
    let p = load("plans/matrix.yaml");
    let names: Vec<&str> = p.scenarios.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names.len(), 15, "{names:?}");
    assert_eq!(names[0], "stream/message_size=1KiB");
    assert_eq!(names[4], "stream/message_size=128KiB");
    assert_eq!(names[5], "rr/request_size=1");
    assert_eq!(names[8], "rr/request_size=64KiB");
    assert_eq!(names[9], "rr-parallel/connections=1,request_size=1");
    assert_eq!(names[10], "rr-parallel/connections=1,request_size=16KiB");
    assert_eq!(names[14], "rr-parallel/connections=16,request_size=16KiB");
    let last = &p.scenarios[14];
    assert_eq!((last.connections, last.request_size.0), (16, 16 << 10));
    let m = last.matrix.as_ref().unwrap();
    assert_eq!(m.group, "rr-parallel");
    assert_eq!(m.label(), "connections=16,request_size=16KiB");
    assert!(p.scenarios.iter().all(|s| s.matrix.is_some()));
}
