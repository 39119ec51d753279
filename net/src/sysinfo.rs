//! What a process can say about its machine: kernel, CPU, host name, boot id, and
//! the MTU of the interface that carries an address. A worker reports these in its
//! `Hello`; the coordinator records its own beside a run's results.

use std::net::IpAddr;

fn read_trim(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

/// Kernel release (`uname -r`).
pub fn kernel() -> String {
    read_trim("/proc/sys/kernel/osrelease").unwrap_or_else(|| "unknown".into())
}

/// Host name of this network namespace's UTS view, the fallback node name.
pub fn hostname() -> String {
    read_trim("/proc/sys/kernel/hostname").unwrap_or_else(|| "unknown".into())
}

/// CPU model name from /proc/cpuinfo.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// Online CPUs available to this process.
pub fn cpus() -> u32 {
    std::thread::available_parallelism()
        .map(|n| n.get() as u32)
        .unwrap_or(1)
}

/// An identifier of the running kernel (same value = same machine and clock).
pub fn boot_id() -> Option<String> {
    read_trim("/proc/sys/kernel/random/boot_id")
}

/// MTU of the interface holding `ip`, or whose subnet contains it (127.0.0.2 is
/// served by `lo`'s 127.0.0.1/8), in this network namespace.
pub fn mtu_of(ip: IpAddr) -> Option<u32> {
    read_trim(&format!("/sys/class/net/{}/mtu", iface_of(ip)?))?
        .parse()
        .ok()
}

/// Name of the interface holding `ip`, or whose subnet contains it, in this
/// network namespace.
pub fn iface_of(ip: IpAddr) -> Option<String> {
    let ifaces = if_addrs::get_if_addrs().ok()?;
    let in_subnet = |i: &if_addrs::Interface| match (&i.addr, ip) {
        (if_addrs::IfAddr::V4(a), IpAddr::V4(ip)) => {
            let m = u32::from(a.netmask);
            u32::from(a.ip) & m == u32::from(ip) & m
        }
        (if_addrs::IfAddr::V6(a), IpAddr::V6(ip)) => {
            let m = u128::from(a.netmask);
            u128::from(a.ip) & m == u128::from(ip) & m
        }
        _ => false,
    };
    let iface = ifaces
        .iter()
        .find(|i| i.ip() == ip)
        .or_else(|| ifaces.iter().find(|i| in_subnet(i)))?;
    Some(iface.name.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_mtu_and_basics() {
        assert_eq!(mtu_of("127.0.0.1".parse().unwrap()), Some(65536));
        assert_eq!(mtu_of("127.0.0.3".parse().unwrap()), Some(65536));
        assert!(cpus() >= 1);
        assert_ne!(kernel(), "");
    }
}
