//! The Service a `pod-to-service` or `pod-to-nodeport` scenario goes through:
//! the address clients send to ([`ServiceAddr`], a ClusterIP or a DNS name the
//! coordinator resolves, as it resolves `--workers dns:`), and for NodePort
//! the port and which node's address the clients use ([`NodePort`]).
//!
//! Server workers listen on the Service's target port
//! ([`super::ScenarioSpec::listen_port`]); the Service (kube-proxy, or the
//! testbed's emulation of it) spreads the clients' connections over them.
//!
//! ```
//! use cnibench_proto::plan::ServiceAddr;
//! let s: ServiceAddr = "dns:cnibench-server.cnibench.svc:8080".parse().unwrap();
//! assert_eq!((s.name.as_deref(), s.port, s.addr()), (Some("cnibench-server.cnibench.svc"), 8080, None));
//! let s: ServiceAddr = "10.96.0.10:80".parse().unwrap();
//! assert_eq!(s.addr(), Some("10.96.0.10:80".parse().unwrap()));
//! assert!("10.96.0.10:70000".parse::<ServiceAddr>().is_err());
//! ```

use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

/// A Service address as a plan writes it: `IP:PORT` or `dns:NAME:PORT`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceAddr {
    /// The DNS name of a `dns:NAME:PORT` service, `None` for `IP:PORT`.
    pub name: Option<String>,
    /// The virtual IP: as written, or what the coordinator resolved the name to
    /// (`None` until then).
    pub ip: Option<IpAddr>,
    /// The Service port clients send to.
    pub port: u16,
}

impl ServiceAddr {
    /// Where clients send: known once the name (if any) is resolved.
    pub fn addr(&self) -> Option<SocketAddr> {
        self.ip.map(|ip| SocketAddr::new(ip, self.port))
    }
}

fn port(text: &str, whole: &str) -> Result<u16, String> {
    match text.parse::<u32>() {
        Ok(p @ 1..=65535) => Ok(p as u16),
        Ok(p) => Err(format!("`{whole}`: port {p} is out of range (1..=65535)")),
        Err(_) => Err(format!("`{whole}`: bad port `{text}`")),
    }
}

impl FromStr for ServiceAddr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let expected = || format!("`{s}`: expected IP:PORT or dns:NAME:PORT");
        if let Some(rest) = s.strip_prefix("dns:") {
            let (name, p) = rest.rsplit_once(':').ok_or_else(expected)?;
            if name.is_empty() || name.contains(char::is_whitespace) {
                return Err(expected());
            }
            return Ok(ServiceAddr {
                name: Some(name.to_string()),
                ip: None,
                port: port(p, s)?,
            });
        }
        // `[::1]:80` or `10.96.0.10:80`; the port checked on its own for a
        // clearer message than "invalid socket address".
        let (host, p) = s.rsplit_once(':').ok_or_else(expected)?;
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let ip: IpAddr = host.parse().map_err(|_| expected())?;
        Ok(ServiceAddr {
            name: None,
            ip: Some(ip),
            port: port(p, s)?,
        })
    }
}

impl fmt::Display for ServiceAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.name, self.ip) {
            (Some(n), _) => write!(f, "dns:{n}:{}", self.port),
            (None, Some(ip)) => write!(f, "{}", SocketAddr::new(ip, self.port)),
            (None, None) => write!(f, "?:{}", self.port),
        }
    }
}

/// `service:` as a plan writes it (a string), for the raw plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ServiceText(pub(super) ServiceAddr);

impl<'de> Deserialize<'de> for ServiceText {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map(ServiceText).map_err(serde::de::Error::custom)
    }
}

/// Which node's address a NodePort client sends to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NodeportVia {
    /// The node the server (endpoint) runs on: no extra hop.
    #[default]
    ServerNode,
    /// Another node than the server's: kube-proxy forwards (and, with
    /// `externalTrafficPolicy: Cluster`, SNATs) to the endpoint's node.
    OtherNode,
}

impl NodeportVia {
    /// The plan spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeportVia::ServerNode => "server-node",
            NodeportVia::OtherNode => "other-node",
        }
    }
}

/// A NodePort: clients send to a node's address at `port`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodePort {
    /// The node port (kube-proxy's default range is 30000-32767, but a
    /// cluster may configure another; any port is accepted here).
    pub port: u32,
    /// Whose node address the clients target.
    pub via: NodeportVia,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        for text in [
            "10.96.0.10:80",
            "[fd00::10]:8080",
            "dns:cnibench-server.cnibench.svc.cluster.local:8080",
            "dns:localhost:1",
        ] {
            let s: ServiceAddr = text.parse().unwrap();
            assert_eq!(s.to_string(), text);
        }
        let v6: ServiceAddr = "[fd00::10]:8080".parse().unwrap();
        assert_eq!(v6.addr(), Some("[fd00::10]:8080".parse().unwrap()));
    }

    #[test]
    fn bad_addresses_say_why() {
        for (text, says) in [
            ("10.96.0.10:0", "out of range"),
            ("10.96.0.10:65536", "out of range"),
            ("dns:svc:99999", "out of range"),
            ("10.96.0.10:http", "bad port"),
            ("10.96.0.10", "expected IP:PORT"),
            ("svc:80", "expected IP:PORT"),
            ("dns::80", "expected IP:PORT"),
            ("dns:svc", "expected IP:PORT"),
        ] {
            let e = text.parse::<ServiceAddr>().unwrap_err();
            assert!(e.contains(says), "{text}: {e}");
        }
    }
}
