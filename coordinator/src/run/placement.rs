//! Placement: which workers run a scenario's clients and servers. It is a pure
//! function of the scenario and a small view of the workers ([`Seat`]), decided
//! for every scenario before any traffic flows, so a plan that does not fit the
//! workers is refused with a message that lists them. Also here: what each client
//! is given of the scenario's rate, and the CNI label a placement measures.

use cnibench_proto::msg::WorkerInfo;
use cnibench_proto::plan::{PathKind, ScenarioSpec};
use cnibench_proto::units::Rate;

/// What placement needs to know of a worker.
#[derive(Debug, Clone, Copy)]
pub(super) struct Seat<'a> {
    /// Index in the worker list.
    pub index: usize,
    /// Control address as given (shown in refusals and results).
    pub addr: &'a str,
    /// The node the worker runs on.
    pub node: &'a str,
}

/// Which workers play which role in a scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Placement {
    /// Client workers; the first is the first worker of the list.
    pub clients: Vec<usize>,
    /// Server workers; none for an external target.
    pub servers: Vec<usize>,
}

impl Placement {
    /// Which server (its position in `servers`) the `n`-th client sends to:
    /// client n goes to server n mod M. `None` without servers.
    pub fn server_of(&self, n: usize) -> Option<usize> {
        n.checked_rem(self.servers.len())
    }
}

/// Place a scenario. The first worker runs a client. Cross-node paths put the
/// servers on workers of other nodes than the first worker's, and the clients on
/// workers not on any server's node; same-node paths put servers on other
/// workers of the first worker's node (two pods on one node), falling back to
/// the first worker itself for a single server. An external target needs only
/// clients, the first worker first. A ClusterIP Service's endpoints (servers)
/// may sit on any worker but the first, other nodes first.
pub(super) fn place(spec: &ScenarioSpec, seats: &[Seat<'_>]) -> Result<Placement, String> {
    let Some(first) = seats.first() else {
        return Err(format!("scenario `{}`: no workers", spec.name));
    };
    let (n, m) = (spec.clients as usize, spec.servers as usize);
    let refuse = |what: String| {
        let workers: Vec<String> = seats
            .iter()
            .map(|s| format!("{} on node `{}`", s.addr, s.node))
            .collect();
        format!(
            "scenario `{}` (path {}) {what}, but the workers are: {}",
            spec.name,
            spec.path,
            workers.join(", ")
        )
    };
    let wants = |n: usize, role: &str, fit: usize| {
        refuse(format!("wants {n} {role} workers, only {fit} fit"))
    };
    if spec.target.is_some() {
        let clients: Vec<usize> = seats.iter().map(|s| s.index).take(n).collect();
        if clients.len() < n {
            return Err(wants(n, "client", clients.len()));
        }
        return Ok(Placement {
            clients,
            servers: Vec::new(),
        });
    }
    let (servers, clients): (Vec<usize>, Vec<usize>) = if spec.path == PathKind::PodToService {
        // The Service's endpoints may be anywhere but on the first worker (a
        // client): other nodes first, then the first worker's.
        let mut others: Vec<&Seat> = seats[1..].iter().collect();
        others.sort_by_key(|s| s.node == first.node);
        let servers: Vec<usize> = others.iter().take(m).map(|s| s.index).collect();
        let clients = seats
            .iter()
            .map(|s| s.index)
            .filter(|i| !servers.contains(i))
            .collect();
        (servers, clients)
    } else if spec.path.cross_node() {
        let servers: Vec<&Seat> = seats
            .iter()
            .filter(|s| s.node != first.node)
            .take(m)
            .collect();
        if servers.is_empty() {
            return Err(refuse(
                "needs a client and a server on different nodes".into(),
            ));
        }
        let clients = seats
            .iter()
            .filter(|c| servers.iter().all(|s| s.node != c.node))
            .map(|c| c.index)
            .collect();
        (servers.iter().map(|s| s.index).collect(), clients)
    } else {
        let same: Vec<usize> = seats
            .iter()
            .filter(|s| s.node == first.node)
            .map(|s| s.index)
            .collect();
        let mut servers: Vec<usize> = same
            .iter()
            .copied()
            .filter(|&i| i != first.index)
            .take(m)
            .collect();
        if servers.is_empty() && m == 1 {
            servers.push(first.index);
        }
        let clients: Vec<usize> = same
            .iter()
            .copied()
            .filter(|i| !servers.contains(i) || same.len() == 1)
            .collect();
        (servers, clients)
    };
    if servers.len() < m {
        return Err(wants(m, "server", servers.len()));
    }
    if clients.len() < n {
        return Err(wants(n, "client", clients.len()));
    }
    Ok(Placement {
        clients: clients[..n].to_vec(),
        servers,
    })
}

/// A client's share of the scenario's total rate.
pub(super) fn rate_share(rate: Rate, clients: u32) -> Rate {
    let n = f64::from(clients.max(1));
    match rate {
        Rate::Max => Rate::Max,
        Rate::PerSecond(r) => Rate::PerSecond(r / n),
        Rate::BitsPerSecond(r) => Rate::BitsPerSecond(r / n),
    }
}

/// The CNI label of a scenario: the plan's, or what its workers report (the
/// client's alone for an external server).
pub(super) fn cni_label(
    plan_cni: &str,
    client: &WorkerInfo,
    server: Option<&WorkerInfo>,
) -> String {
    if plan_cni != "auto" {
        return plan_cni.to_string();
    }
    let label = |i: &WorkerInfo| match &i.cni_mode {
        Some(mode) => format!("{}-{mode}", i.cni),
        None => i.cni.clone(),
    };
    let c = label(client);
    match server.map(label) {
        Some(s) if s != c => format!("{c}/{s}"),
        _ => c,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use cnibench_proto::plan;

    /// A scenario from its YAML fields (traffic tcp-rr unless given).
    fn spec(fields: &str) -> ScenarioSpec {
        let traffic = if fields.contains("traffic:") {
            ""
        } else {
            "traffic: tcp-rr, "
        };
        let text = format!("name: t\nscenarios:\n  - {{name: s, {traffic}{fields}}}\n");
        plan::load("t.yaml", &text).unwrap().scenarios.remove(0)
    }

    /// Workers `w0`, `w1`, ... on the given nodes.
    fn seats<'a>(nodes: &[&'a str]) -> Vec<Seat<'a>> {
        const ADDRS: [&str; 6] = ["w0", "w1", "w2", "w3", "w4", "w5"];
        nodes
            .iter()
            .enumerate()
            .map(|(index, node)| Seat {
                index,
                addr: ADDRS[index],
                node,
            })
            .collect()
    }

    fn placed(fields: &str, nodes: &[&str]) -> Result<Placement, String> {
        place(&spec(fields), &seats(nodes))
    }

    fn p(clients: &[usize], servers: &[usize]) -> Placement {
        Placement {
            clients: clients.to_vec(),
            servers: servers.to_vec(),
        }
    }

    #[test]
    fn cross_node_puts_the_server_on_another_node() {
        let cross = "path: pod-to-pod-cross-node";
        assert_eq!(placed(cross, &["a", "b"]), Ok(p(&[0], &[1])));
        // The first worker of another node serves; the client is the first worker.
        assert_eq!(placed(cross, &["a", "a", "b", "b"]), Ok(p(&[0], &[2])));
    }

    #[test]
    fn same_node_prefers_a_second_worker_on_the_node() {
        let same = "path: pod-to-pod-same-node";
        assert_eq!(placed(same, &["a", "b", "a"]), Ok(p(&[0], &[2])));
        // Alone on its node, the first worker is its own server.
        assert_eq!(placed(same, &["a", "b"]), Ok(p(&[0], &[0])));
        assert_eq!(placed(same, &["a"]), Ok(p(&[0], &[0])));
    }

    #[test]
    fn clients_and_servers_n_to_m() {
        // Servers on other nodes than the first worker's; clients on no server's node.
        let got = placed(
            "path: pod-to-pod-cross-node, clients: 4, servers: 2",
            &["a", "b", "c", "a", "d", "a"],
        )
        .unwrap();
        assert_eq!(got, p(&[0, 3, 4, 5], &[1, 2]));
        // Client i goes to server i mod M.
        let which: Vec<_> = (0..4).map(|i| got.server_of(i)).collect();
        assert_eq!(which, [Some(0), Some(1), Some(0), Some(1)]);
        let same = placed(
            "path: pod-to-pod-same-node, clients: 2, servers: 2",
            &["a", "a", "a", "a", "b"],
        )
        .unwrap();
        assert_eq!(same, p(&[0, 3], &[1, 2]));
    }

    #[test]
    fn service_endpoints_go_anywhere_but_the_first_worker_other_nodes_first() {
        let svc = "traffic: tcp-rr, path: pod-to-service, service: 10.96.0.10:80";
        // Two endpoints for one client: node b's, then node a's second worker.
        let got = placed(&format!("{svc}, servers: 2"), &["a", "a", "b"]).unwrap();
        assert_eq!(got, p(&[0], &[2, 1]));
        // One node only: the endpoint beside the client.
        let got = placed(svc, &["a", "a"]).unwrap();
        assert_eq!(got, p(&[0], &[1]));
        assert!(placed(&format!("{svc}, servers: 3"), &["a", "a", "b"]).is_err());
    }

    #[test]
    fn an_external_target_needs_only_clients() {
        let ext = "traffic: http1, path: pod-to-external, target: 192.0.2.1:80";
        let got = placed(&format!("{ext}, clients: 2"), &["a", "a", "b"]).unwrap();
        assert_eq!(got, p(&[0, 1], &[]));
        assert_eq!(got.server_of(0), None);
        assert_eq!(
            placed(&format!("{ext}, clients: 3"), &["a", "b"]),
            Err(
                "scenario `s` (path pod-to-external) wants 3 client workers, only 2 fit, \
                 but the workers are: w0 on node `a`, w1 on node `b`"
                    .into()
            )
        );
    }

    #[test]
    fn refusals_name_the_scenario_and_list_the_workers() {
        let cross = "path: pod-to-pod-cross-node";
        assert_eq!(
            placed(cross, &["a", "a"]),
            Err(
                "scenario `s` (path pod-to-pod-cross-node) needs a client and a server on \
                 different nodes, but the workers are: w0 on node `a`, w1 on node `a`"
                    .into()
            )
        );
        assert_eq!(
            placed(&format!("{cross}, clients: 2, servers: 2"), &["a", "b"]),
            Err(
                "scenario `s` (path pod-to-pod-cross-node) wants 2 server workers, only 1 fit, \
                 but the workers are: w0 on node `a`, w1 on node `b`"
                    .into()
            )
        );
        // The second client would have to be on the server's node.
        assert_eq!(
            placed(&format!("{cross}, clients: 2"), &["a", "b", "b"]),
            Err(
                "scenario `s` (path pod-to-pod-cross-node) wants 2 client workers, only 1 fit, \
                 but the workers are: w0 on node `a`, w1 on node `b`, w2 on node `b`"
                    .into()
            )
        );
        let same = "path: pod-to-pod-same-node, clients: 2";
        assert_eq!(
            placed(&format!("{same}, servers: 2"), &["a", "b"]),
            Err(
                "scenario `s` (path pod-to-pod-same-node) wants 2 server workers, only 0 fit, \
                 but the workers are: w0 on node `a`, w1 on node `b`"
                    .into()
            )
        );
        // Its second worker serves, so only the first is left as a client.
        assert_eq!(
            placed(same, &["a", "a"]),
            Err(
                "scenario `s` (path pod-to-pod-same-node) wants 2 client workers, only 1 fit, \
                 but the workers are: w0 on node `a`, w1 on node `a`"
                    .into()
            )
        );
        assert_eq!(
            place(&spec(cross), &[]),
            Err("scenario `s`: no workers".into())
        );
    }

    #[test]
    fn each_client_gets_its_share_of_the_rate() {
        assert_eq!(rate_share(Rate::Max, 4), Rate::Max);
        assert_eq!(
            rate_share(Rate::PerSecond(1000.0), 4),
            Rate::PerSecond(250.0)
        );
        assert_eq!(
            rate_share(Rate::BitsPerSecond(3e9), 3),
            Rate::BitsPerSecond(1e9)
        );
        assert_eq!(rate_share(Rate::PerSecond(10.0), 0), Rate::PerSecond(10.0));
    }

    fn info(cni: &str, mode: Option<&str>) -> WorkerInfo {
        WorkerInfo {
            version: "0".into(),
            node: "n".into(),
            pod_ip: None,
            host_ip: None,
            data_ip: [127, 0, 0, 1].into(),
            cni: cni.into(),
            cni_mode: mode.map(Into::into),
            mtu: None,
            kernel: String::new(),
            cpu_model: String::new(),
            cpus: 1,
            boot_id: None,
        }
    }

    #[test]
    fn cni_label_is_the_plans_or_what_the_workers_report() {
        let flannel = info("flannel", Some("vxlan"));
        let calico = info("calico", None);
        assert_eq!(cni_label("cilium", &flannel, Some(&calico)), "cilium");
        assert_eq!(cni_label("auto", &flannel, Some(&flannel)), "flannel-vxlan");
        assert_eq!(
            cni_label("auto", &flannel, Some(&calico)),
            "flannel-vxlan/calico"
        );
        assert_eq!(cni_label("auto", &calico, None), "calico");
    }
}
