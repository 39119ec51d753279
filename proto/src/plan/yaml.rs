//! A plan written back as YAML: [`Plan::to_yaml`] gives text that
//! [`load`](super::load) turns into the same [`Plan`], every default written
//! out (so a later version's defaults cannot change what a re-run measures)
//! and each matrix as its lists again. `cnibench bundle` ships it when the
//! plan file a run was made from cannot be found or has changed since.

use super::matrix::Value;
use super::{Plan, ScenarioSpec};
use std::fmt::Write as _;

impl Plan {
    /// This plan as YAML that loads back to an equal plan.
    pub fn to_yaml(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "name: {}", quoted(&self.name));
        let _ = writeln!(out, "cni: {}", quoted(&self.cni));
        out.push_str("scenarios:\n");
        let mut rest = self.scenarios.as_slice();
        while let Some(first) = rest.first() {
            let n = group_len(rest);
            // A group that is not a full cross product (an edited result) is
            // written point by point.
            let taken = match lists(&rest[..n]) {
                Some(lists) => {
                    scenario(&mut out, first, &first_group(first), &lists);
                    n
                }
                None => {
                    scenario(&mut out, first, &first.name, &[]);
                    1
                }
            };
            rest = &rest[taken..];
        }
        out
    }
}

fn first_group(s: &ScenarioSpec) -> String {
    s.matrix
        .as_ref()
        .map_or_else(|| s.name.clone(), |m| m.group.clone())
}

/// How many scenarios from the start of `specs` belong to the first one's
/// matrix (1 for a plain scenario).
fn group_len(specs: &[ScenarioSpec]) -> usize {
    let Some(m) = specs.first().and_then(|s| s.matrix.as_ref()) else {
        return 1;
    };
    specs
        .iter()
        .take_while(|s| s.matrix.as_ref().is_some_and(|x| x.group == m.group))
        .count()
}

/// The lists that expand to exactly `group` (names and order), or `None`.
fn lists(group: &[ScenarioSpec]) -> Option<Vec<(&'static str, Vec<Value>)>> {
    let first = group.first()?;
    let m = first.matrix.as_ref()?;
    let mut lists: Vec<(&'static str, Vec<Value>)> = Vec::new();
    for p in &m.params {
        let field = super::matrix::FIELDS
            .iter()
            .find(|f| **f == p.field)
            .copied()?;
        let mut values: Vec<Value> = Vec::new();
        for s in group {
            let v = Value::of(field, s)?;
            if !values.contains(&v) {
                values.push(v);
            }
        }
        lists.push((field, values));
    }
    // Expanding the lists again must give these scenarios, in this order.
    let expected = lists.iter().map(|(_, v)| v.len()).product::<usize>();
    let names = group.iter().map(|s| s.name.as_str());
    let mut index = vec![0usize; lists.len()];
    let mut made = 0;
    for name in names {
        let label: Vec<String> = lists
            .iter()
            .zip(&index)
            .map(|((f, v), &i)| format!("{f}={}", v[i].text()))
            .collect();
        if name != format!("{}/{}", m.group, label.join(",")) {
            return None;
        }
        made += 1;
        for k in (0..index.len()).rev() {
            index[k] += 1;
            if index[k] < lists[k].1.len() {
                break;
            }
            index[k] = 0;
        }
    }
    (made == expected).then_some(lists)
}

/// One scenario, block style, with `lists` in place of their fields.
fn scenario(out: &mut String, s: &ScenarioSpec, name: &str, lists: &[(&str, Vec<Value>)]) {
    let _ = writeln!(out, "  - name: {}", quoted(name));
    let mut field = |key: &str, value: String| {
        let _ = writeln!(out, "    {key}: {value}");
    };
    let listed = |key: &str, own: Value| -> String {
        match lists.iter().find(|(f, _)| *f == key) {
            Some((_, values)) => format!(
                "[{}]",
                values
                    .iter()
                    .map(|v| v.text())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            None => own.text(),
        }
    };
    field("traffic", s.traffic.to_string());
    field("path", s.path.to_string());
    if let Some(t) = s.target {
        field("target", quoted(&t.to_string()));
    }
    if let Some(svc) = &s.service {
        field("service", quoted(&svc.to_string()));
    }
    if let Some(n) = s.nodeport {
        field("nodeport", n.port.to_string());
        field("nodeport_via", n.via.as_str().into());
    }
    if let Some(p) = s.target_port {
        field("target_port", p.to_string());
    }
    field("clients", s.clients.to_string());
    field("servers", s.servers.to_string());
    field("streams", listed("streams", Value::Count(s.streams)));
    field(
        "connections",
        listed("connections", Value::Count(s.connections)),
    );
    if let Some(t) = s.threads {
        field("threads", t.to_string());
    }
    field(
        "request_size",
        listed("request_size", Value::Size(s.request_size)),
    );
    field(
        "response_size",
        listed("response_size", Value::Size(s.response_size)),
    );
    field(
        "message_size",
        listed("message_size", Value::Size(s.message_size)),
    );
    match s.sweep {
        Some(sw) => field("rate", quoted(&sw.to_string())),
        None => field("rate", listed("rate", Value::Rate(s.rate))),
    }
    field(
        "arrival",
        match s.arrival {
            crate::pacing::Arrival::Uniform => "uniform",
            crate::pacing::Arrival::Poisson => "poisson",
        }
        .into(),
    );
    field("server_delay", s.server_delay.to_string());
    if let Some(st) = s.server_stall {
        field(
            "server_stall",
            format!("{{ at: {}, for: {} }}", st.at, st.length),
        );
    }
    let o = &s.slo;
    let objectives: Vec<String> = [
        ("p50", o.p50.map(|v| v.to_string())),
        ("p99", o.p99.map(|v| v.to_string())),
        ("p999", o.p999.map(|v| v.to_string())),
        ("error_rate", o.error_rate.map(|v| v.to_string())),
        ("loss", o.loss.map(|v| v.to_string())),
        (
            "min_throughput",
            o.min_throughput.map(|v| Value::Rate(v).text()),
        ),
    ]
    .into_iter()
    .filter_map(|(k, v)| Some(format!("{k}: {}", v?)))
    .collect();
    if !objectives.is_empty() {
        field("slo", format!("{{ {} }}", objectives.join(", ")));
    }
    field("timeout", s.timeout.to_string());
    field("duration", s.duration.to_string());
    field("warmup", s.warmup.to_string());
    field("interval", s.interval.to_string());
    field("repetitions", s.repetitions.to_string());
}

/// A double-quoted YAML scalar (JSON's escapes are YAML's).
fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::super::load;
    use super::*;

    #[track_caller]
    fn round_trip(text: &str) -> String {
        let p = load("p.yaml", text).unwrap();
        let y = p.to_yaml();
        let again = load("again.yaml", &y).unwrap_or_else(|e| panic!("{e}\n{y}"));
        assert_eq!(again, p, "{y}");
        y
    }

    #[test]
    fn every_field_round_trips() {
        let y = round_trip(
            "\
name: \"all \\\"of\\\" it\\n\"
cni: flannel-vxlan
defaults: { duration: 1500ms, warmup: 0s, interval: 250ms, repetitions: 3, slo: { p99: 2ms } }
scenarios:
  - { name: a, traffic: http1, path: pod-to-external, target: 10.96.0.10:80, clients: 2, connections: 32, threads: 2, rate: 20000/s, arrival: poisson }
  - { name: b, traffic: udp-stream, path: pod-to-pod-same-node, rate: 1.5Gbit/s, message_size: 1000, slo: { loss: 0.5%, min_throughput: 1Gbit/s } }
  - { name: c, traffic: tcp-rr, path: pod-to-pod-cross-node, server_delay: 1ms, server_stall: { at: 1s, for: 500ms }, repetitions: 1, rate: 'sweep(100/s..800/s, x2)' }
  - { name: d, traffic: udp-rr, path: pod-to-pod-cross-node, timeout: 10ms, slo: { p50: 1us, p999: 3ms, error_rate: 0.1% } }
  - { name: e, traffic: quic-rr, path: pod-to-service, service: 10.96.0.10:80, target_port: 8080, servers: 2 }
  - { name: f, traffic: http2, path: pod-to-service, service: 'dns:cnibench-server.cnibench.svc:8080' }
  - { name: g, traffic: tcp-crr, path: pod-to-nodeport, nodeport: 30080, nodeport_via: other-node, target_port: 8080 }
  - { name: h, traffic: udp-stream, path: pod-to-nodeport, nodeport: 30081, slo: { loss: 1% } }
",
        );
        assert!(y.contains("    rate: 1500Mbit/s\n"), "{y}");
        assert!(y.contains("    rate: \"sweep(100/s..800/s, x2)\"\n"), "{y}");
        assert!(y.contains("    service: \"10.96.0.10:80\"\n"), "{y}");
        assert!(y.contains("    nodeport_via: server-node\n"), "{y}");
    }

    #[test]
    fn matrices_are_written_as_lists() {
        let y = round_trip(
            "\
name: m
scenarios:
  - { name: rr, traffic: tcp-rr, path: pod-to-pod-cross-node, request_size: [1KiB, 1, 64KiB], connections: [1, 8] }
  - { name: rr2, traffic: tcp-rr, path: pod-to-pod-cross-node, rate: [1000/s, 500/s] }
  - { name: st, traffic: tcp-stream, path: pod-to-pod-cross-node, message_size: [1KiB] }
",
        );
        assert!(y.contains("    request_size: [1KiB, 1, 64KiB]\n"), "{y}");
        assert!(y.contains("    connections: [1, 8]\n"), "{y}");
        assert!(y.contains("    rate: [1000/s, 500/s]\n"), "{y}");
        assert!(y.contains("  - name: \"st\"\n"), "{y}");
        assert_eq!(y.matches("  - name:").count(), 3, "{y}");
    }

    #[test]
    fn a_partial_matrix_is_written_point_by_point() {
        let text = "name: m\nscenarios:\n  - { name: rr, traffic: tcp-rr, path: pod-to-pod-cross-node, streams: [1, 2, 3], connections: [1, 2] }\n";
        let mut p = load("m.yaml", text).unwrap();
        // Still a product (streams 1 and 3): written as lists.
        p.scenarios.retain(|s| s.streams != 2);
        let again = load("again.yaml", &p.to_yaml()).unwrap();
        assert_eq!(again, p);
        // No longer one: each point alone.
        p.scenarios.remove(1);
        let y = p.to_yaml();
        assert!(
            y.contains("  - name: \"rr/connections=1,streams=1\"\n"),
            "{y}"
        );
        let again = load("again.yaml", &y).unwrap();
        let names: Vec<&str> = again.scenarios.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "rr/connections=1,streams=1",
                "rr/connections=2,streams=1",
                "rr/connections=2,streams=3"
            ]
        );
    }

    #[test]
    fn quoting() {
        assert_eq!(quoted("a\"b\\c\u{1}"), "\"a\\\"b\\\\c\\u0001\"");
    }
}
