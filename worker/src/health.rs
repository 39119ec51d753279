//! Datapath health counters, read from the kernel like CPU is ([`crate::cpu`]):
//! TCP segments and retransmissions (`/proc/net/snmp`, `/proc/net/netstat`), UDP
//! receive and send buffer errors, conntrack fill and failures
//! (`/proc/sys/net/netfilter`, `/proc/net/stat/nf_conntrack`), the data
//! interface's packets, drops and errors (`/sys/class/net/IF/statistics`) and
//! softnet drops and squeezes (`/proc/net/softnet_stat`).
//!
//! Parsing is pure (tested on captured text); [`Snapshot::take`] reads the
//! files, and [`delta`] turns two snapshots into a [`HealthCounters`]. A file
//! that does not exist (a kernel without conntrack, an interface without
//! statistics) leaves its fields `None`, "not available", never 0.
//!
//! Everything but softnet is per network namespace: workers in one namespace
//! read the same counters, which is why a sample names its namespace.

use cnibench_proto::msg::HealthCounters;
use std::collections::BTreeMap;

/// `Name: v v v` tables of /proc/net/snmp and /proc/net/netstat: each
/// protocol has a header line and a value line; `(proto, field) -> value`.
/// Values that do not parse as unsigned (Tcp MaxConn is -1) are left out.
pub fn parse_snmp_table(text: &str) -> BTreeMap<(String, String), u64> {
    let mut out = BTreeMap::new();
    let mut lines = text.lines();
    while let (Some(head), Some(vals)) = (lines.next(), lines.next()) {
        let (Some((p1, names)), Some((p2, values))) = (head.split_once(':'), vals.split_once(':'))
        else {
            break;
        };
        if p1 != p2 {
            // Out of step (a truncated read): nothing after this is trustworthy.
            break;
        }
        for (n, v) in names.split_whitespace().zip(values.split_whitespace()) {
            if let Ok(v) = v.parse::<u64>() {
                out.insert((p1.to_string(), n.to_string()), v);
            }
        }
    }
    out
}

/// Per-CPU rows of /proc/net/stat/nf_conntrack (hex, with a header line of
/// column names, which differ between kernels), summed per column; the
/// `entries` column, the same global count on every row, is taken once.
pub fn parse_conntrack_stat(text: &str) -> Option<BTreeMap<String, u64>> {
    let mut lines = text.lines();
    let names: Vec<&str> = lines.next()?.split_whitespace().collect();
    let mut sums: BTreeMap<String, u64> = BTreeMap::new();
    let mut rows = 0;
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let vals: Vec<u64> = line
            .split_whitespace()
            .map(|v| u64::from_str_radix(v, 16).ok())
            .collect::<Option<_>>()?;
        if vals.len() != names.len() {
            return None;
        }
        for (n, v) in names.iter().zip(vals) {
            let s = sums.entry((*n).to_string()).or_default();
            *s = if *n == "entries" { v } else { *s + v };
        }
        rows += 1;
    }
    (rows > 0).then_some(sums)
}

/// /proc/net/softnet_stat: one hex row per CPU, column 2 packets dropped
/// (backlog full), column 3 time_squeeze (the softirq ran out of budget or
/// time with work left); summed over CPUs.
pub fn parse_softnet_stat(text: &str) -> Option<(u64, u64)> {
    let (mut dropped, mut squeezed, mut rows) = (0, 0, 0);
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let hex = |i: usize| f.get(i).and_then(|v| u64::from_str_radix(v, 16).ok());
        dropped += hex(1)?;
        squeezed += hex(2)?;
        rows += 1;
    }
    (rows > 0).then_some((dropped, squeezed))
}

/// One number in a sysfs or procfs file (`nf_conntrack_count`, `rx_dropped`).
pub fn parse_number(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

/// The path MTU the kernel knows towards `target` (IPv4), after a probe: a
/// datagram as large as the local route allows is sent (with the DF bit, as
/// the kernel sets it by default for path MTU discovery), so that a router
/// with a smaller MTU on the way answers "fragmentation needed" and the kernel
/// lowers its estimate; `IP_MTU` of the connected socket then reads it
/// (`ping -M do -s` does the same by hand). `None` for IPv6 targets.
///
/// Not yet wired into prepare (see the issue): the worker still has to
/// report it beside the pod and node MTU and the coordinator flag a pod MTU
/// above it.
pub fn path_mtu(
    target: std::net::SocketAddr,
    wait: std::time::Duration,
) -> std::io::Result<Option<u32>> {
    use nix::sys::socket::{getsockopt, sockopt::IpMtu};
    if !target.is_ipv4() {
        return Ok(None);
    }
    let s = std::net::UdpSocket::bind("0.0.0.0:0")?;
    s.connect(target)?;
    let route = getsockopt(&s, IpMtu).map_err(std::io::Error::from)?;
    // IPv4 and UDP headers: 28 bytes.
    let probe = vec![0u8; usize::try_from(route).unwrap_or(0).saturating_sub(28)];
    // EMSGSIZE here already says the path is smaller; either way the
    // estimate is read below.
    let _ = s.send(&probe);
    std::thread::sleep(wait);
    let mtu = getsockopt(&s, IpMtu).map_err(std::io::Error::from)?;
    Ok(u32::try_from(mtu).ok())
}

/// Cumulative counters at one instant (gauges for conntrack fill).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    netns: Option<String>,
    interface: Option<String>,
    snmp: BTreeMap<(String, String), u64>,
    have_snmp: bool,
    conntrack_count: Option<u64>,
    conntrack_max: Option<u64>,
    conntrack: Option<BTreeMap<String, u64>>,
    /// rx_packets, tx_packets, rx_dropped, tx_dropped, rx_errors, tx_errors.
    iface: [Option<u64>; 6],
    softnet: Option<(u64, u64)>,
}

/// The interface statistics read, in [`Snapshot::iface`] order.
const IF_STATS: [&str; 6] = [
    "rx_packets",
    "tx_packets",
    "rx_dropped",
    "tx_dropped",
    "rx_errors",
    "tx_errors",
];

impl Snapshot {
    /// Read the counters now; `interface` is the data interface's name (its
    /// statistics are left out without one). Missing files give `None`
    /// fields, never an error.
    pub fn take(interface: Option<&str>) -> Snapshot {
        let read = |p: &str| std::fs::read_to_string(p).ok();
        let mut snmp = BTreeMap::new();
        let mut have_snmp = false;
        for f in ["/proc/net/snmp", "/proc/net/netstat"] {
            if let Some(t) = read(f) {
                have_snmp = true;
                snmp.extend(parse_snmp_table(&t));
            }
        }
        let num = |p: &str| read(p).as_deref().and_then(parse_number);
        let iface = match interface {
            Some(name) if !name.contains('/') => {
                IF_STATS.map(|s| num(&format!("/sys/class/net/{name}/statistics/{s}")))
            }
            _ => [None; 6],
        };
        Snapshot {
            netns: std::fs::read_link("/proc/self/ns/net")
                .ok()
                .map(|p| p.to_string_lossy().into_owned()),
            interface: interface.map(str::to_string),
            snmp,
            have_snmp,
            conntrack_count: num("/proc/sys/net/netfilter/nf_conntrack_count"),
            conntrack_max: num("/proc/sys/net/netfilter/nf_conntrack_max"),
            conntrack: read("/proc/net/stat/nf_conntrack")
                .as_deref()
                .and_then(parse_conntrack_stat),
            iface,
            softnet: read("/proc/net/softnet_stat")
                .as_deref()
                .and_then(parse_softnet_stat),
        }
    }

    fn snmp(&self, proto: &str, field: &str) -> Option<u64> {
        if !self.have_snmp {
            return None;
        }
        self.snmp
            .get(&(proto.to_string(), field.to_string()))
            .copied()
    }
}

/// The counters between two snapshots: differences of the cumulative ones
/// (a counter that went backwards, reset by a module reload, counts 0), the
/// conntrack fill as of `to`. A counter missing from either is `None`.
pub fn delta(from: &Snapshot, to: &Snapshot) -> HealthCounters {
    let d = |a: Option<u64>, b: Option<u64>| Some(b?.saturating_sub(a?));
    let snmp = |p: &str, f: &str| d(from.snmp(p, f), to.snmp(p, f));
    let ct = |f: &str| {
        let get = |s: &Snapshot| s.conntrack.as_ref().and_then(|m| m.get(f).copied());
        d(get(from), get(to))
    };
    let ifs = |i: usize| d(from.iface[i], to.iface[i]);
    HealthCounters {
        netns: to.netns.clone(),
        interface: to.interface.clone(),
        tcp_out_segs: snmp("Tcp", "OutSegs"),
        tcp_retrans_segs: snmp("Tcp", "RetransSegs"),
        tcp_timeouts: snmp("TcpExt", "TCPTimeouts"),
        tcp_lost_retransmit: snmp("TcpExt", "TCPLostRetransmit"),
        tcp_syn_retrans: snmp("TcpExt", "TCPSynRetrans"),
        tcp_listen_overflows: snmp("TcpExt", "ListenOverflows"),
        tcp_listen_drops: snmp("TcpExt", "ListenDrops"),
        udp_in_errors: snmp("Udp", "InErrors"),
        udp_rcvbuf_errors: snmp("Udp", "RcvbufErrors"),
        udp_sndbuf_errors: snmp("Udp", "SndbufErrors"),
        conntrack_entries: to
            .conntrack_count
            .or_else(|| to.conntrack.as_ref()?.get("entries").copied()),
        conntrack_max: to.conntrack_max,
        conntrack_insert_failed: ct("insert_failed"),
        conntrack_drop: ct("drop"),
        conntrack_early_drop: ct("early_drop"),
        if_rx_packets: ifs(0),
        if_tx_packets: ifs(1),
        if_rx_dropped: ifs(2),
        if_tx_dropped: ifs(3),
        if_rx_errors: ifs(4),
        if_tx_errors: ifs(5),
        softnet_dropped: d(from.softnet.map(|s| s.0), to.softnet.map(|s| s.0)),
        softnet_squeezed: d(from.softnet.map(|s| s.1), to.softnet.map(|s| s.1)),
        ..HealthCounters::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SNMP: &str = "\
Ip: Forwarding DefaultTTL InReceives InHdrErrors
Ip: 2 64 5122 0
Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens AttemptFails EstabResets CurrEstab InSegs OutSegs RetransSegs InErrs OutRsts InCsumErrors
Tcp: 1 200 120000 -1 15 2 0 3 0 5094 2731 17 0 5 0
Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors
Udp: 27 0 9 28 8 1 0 0 0
UdpLite: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors
UdpLite: 0 0 0 0 0 0 0 0 0
";

    const NETSTAT: &str = "\
TcpExt: SyncookiesSent ListenOverflows ListenDrops TCPLostRetransmit TCPTimeouts TCPSynRetrans
TcpExt: 0 3 4 5 6 7
IpExt: InNoRoutes InOctets
IpExt: 0 123456
";

    #[test]
    fn parses_snmp_and_netstat() {
        let t = parse_snmp_table(SNMP);
        let get = |p: &str, f: &str| t.get(&(p.to_string(), f.to_string())).copied();
        assert_eq!(get("Tcp", "OutSegs"), Some(2731));
        assert_eq!(get("Tcp", "RetransSegs"), Some(17));
        assert_eq!(get("Tcp", "MaxConn"), None, "-1 is no counter");
        assert_eq!(get("Udp", "InErrors"), Some(9));
        assert_eq!(get("Udp", "RcvbufErrors"), Some(8));
        assert_eq!(
            get("UdpLite", "RcvbufErrors"),
            Some(0),
            "kept apart from Udp"
        );
        let n = parse_snmp_table(NETSTAT);
        assert_eq!(n.get(&("TcpExt".into(), "TCPSynRetrans".into())), Some(&7));
        assert_eq!(n.get(&("IpExt".into(), "InOctets".into())), Some(&123456));
        // A truncated or garbled read yields what came before it.
        assert_eq!(parse_snmp_table("Tcp: A B\nUdp: 1 2\n").len(), 0);
        assert!(parse_snmp_table("").is_empty());
    }

    #[test]
    fn parses_conntrack_stat_per_cpu_rows() {
        // Captured on 6.x (column set differs from 4.x: clashres, chainlength).
        let t = "\
entries  clashres found new invalid ignore delete chainlength insert insert_failed drop early_drop icmp_error  expect_new expect_create expect_delete search_restart
0000002a  00000000 00000000 00000000 00000003 00000000 00000000 00000000 00000000 00000001 00000010 00000002 00000000  00000000 00000000 00000000 00000000
0000002a  00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 0000000f 00000001 00000000 00000000  00000000 00000000 00000000 00000000
";
        let m = parse_conntrack_stat(t).unwrap();
        assert_eq!(m["entries"], 42, "taken once, not summed");
        assert_eq!(m["insert_failed"], 16);
        assert_eq!(m["drop"], 17);
        assert_eq!(m["early_drop"], 2);
        assert_eq!(m["invalid"], 3);
        assert_eq!(parse_conntrack_stat("entries found\n"), None, "no rows");
        assert_eq!(parse_conntrack_stat("entries found\nzz 1\n"), None);
        assert_eq!(parse_conntrack_stat("entries found\n1\n"), None);
    }

    #[test]
    fn parses_softnet_stat() {
        let t = "\
00000010 00000000 00000001 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000
000013f7 0000000a 000000ff 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000001 00000000 00000000
";
        assert_eq!(parse_softnet_stat(t), Some((10, 256)));
        assert_eq!(parse_softnet_stat(""), None);
        assert_eq!(parse_softnet_stat("00000001\n"), None);
    }

    #[test]
    fn deltas_and_what_is_not_available() {
        let snap = |retrans: u64, drops: u64, ct: Option<u64>| Snapshot {
            netns: Some("net:[1]".into()),
            interface: Some("eth0".into()),
            snmp: parse_snmp_table(&SNMP.replace(" 17 0 5 0", &format!(" {retrans} 0 5 0"))),
            have_snmp: true,
            conntrack_count: ct,
            conntrack_max: ct.map(|_| 1000),
            conntrack: None,
            iface: [Some(100), Some(200), Some(drops), Some(0), Some(0), Some(0)],
            softnet: Some((drops, 1)),
        };
        let h = delta(&snap(17, 1, None), &snap(20, 4, None));
        assert_eq!(h.tcp_retrans_segs, Some(3));
        assert_eq!(h.tcp_out_segs, Some(0));
        assert_eq!(h.if_rx_dropped, Some(3));
        assert_eq!(h.softnet_dropped, Some(3));
        assert_eq!(h.softnet_squeezed, Some(0));
        assert_eq!(h.netns.as_deref(), Some("net:[1]"));
        // No conntrack in this kernel: not available, not zero.
        assert_eq!(h.conntrack_entries, None);
        assert_eq!(h.conntrack_max, None);
        assert_eq!(h.conntrack_insert_failed, None);
        // No netstat read: its counters are not available either.
        assert_eq!(h.tcp_timeouts, None);
        // A counter that went backwards counts 0; the fill is the later one's.
        let h = delta(&snap(20, 4, Some(5)), &snap(17, 1, Some(7)));
        assert_eq!(h.tcp_retrans_segs, Some(0));
        assert_eq!(h.conntrack_entries, Some(7));
        assert_eq!(h.conntrack_max, Some(1000));
        // Nothing readable at all.
        let none = delta(&Snapshot::default(), &Snapshot::default());
        assert_eq!(none, HealthCounters::default(), "every field not available");
    }

    #[test]
    fn path_mtu_over_loopback_is_lo_s() {
        // A probe to a loopback port nobody listens on (an ICMP port
        // unreachable at most): the path is lo, whose MTU it reports.
        let target: std::net::SocketAddr = "127.0.0.1:9".parse().unwrap();
        let mtu = path_mtu(target, std::time::Duration::ZERO).unwrap();
        // (An IPv4 datagram is at most 65535 bytes: lo's 65536 is capped.)
        let lo = cnibench_net::sysinfo::mtu_of(target.ip()).unwrap();
        assert_eq!(mtu, Some(lo.min(65535)));
        assert_eq!(
            path_mtu("[::1]:9".parse().unwrap(), std::time::Duration::ZERO).unwrap(),
            None
        );
    }

    #[test]
    fn reads_this_machine() {
        // Whatever this kernel exposes: TCP counters always (procfs is
        // mounted where tests run), loopback statistics by name.
        let a = Snapshot::take(Some("lo"));
        let b = Snapshot::take(Some("lo"));
        let h = delta(&a, &b);
        assert!(h.tcp_out_segs.is_some(), "{a:?}");
        assert!(h.if_rx_packets.is_some(), "{a:?}");
        assert!(h.netns.as_deref().is_some_and(|n| n.starts_with("net:[")));
        // A file that is not there reads as not available.
        assert_eq!(
            delta(&Snapshot::take(Some("no-such-if0")), &b).if_rx_dropped,
            None
        );
        assert_eq!(
            std::path::Path::new("/proc/net/stat/nf_conntrack").exists(),
            b.conntrack.is_some()
        );
    }
}
