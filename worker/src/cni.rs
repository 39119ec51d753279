//! Detect which CNI plugin (and, where the node says so, which datapath mode
//! and MTU) a Kubernetes node uses, by reading the node's CNI configuration.
//!
//! # Approach
//!
//! Kubelet does not pick the pod network itself: the container runtime
//! (containerd's CRI plugin, CRI-O; formerly dockershim) lists the CNI
//! configuration directory (`/etc/cni/net.d` by default), keeps the files ending
//! in `.conf`, `.conflist` or `.json`, sorts them by name and uses the first one
//! that loads, skipping files that fail to parse. [`detect_from_dir`] does the
//! same, so it reports the configuration that pods on the node actually get.
//!
//! [`detect_from_config`] is the pure part: it parses one file, either a
//! network configuration list (`{"plugins": [...]}`) or a single-plugin
//! configuration (`{"type": ...}`), finds the *primary* plugin (the first one
//! that is not a chained helper such as `portmap`, `bandwidth`, `tuning`, ...)
//! and maps its `type` to a family name:
//!
//! | plugin `type`            | `name`            | what the file says                                   |
//! |--------------------------|-------------------|------------------------------------------------------|
//! | `flannel`                | `flannel`         | nothing about the backend; `delegate.mtu` if set     |
//! | `calico` (`*canal*` file)| `calico`/`canal`  | `mtu` (0 = auto-detect, reported as `None`); the encapsulation (IPIP/VXLAN/BGP) lives in the `IPPool`, not here |
//! | `cilium-cni`             | `cilium`          | `mtu` if set; tunnel/native routing lives in the `cilium-config` `ConfigMap` |
//! | `weave-net`              | `weave`           | nothing (fastdp vs. sleeve is decided at run time)   |
//! | `aws-cni`                | `aws-vpc-cni`     | `mtu` (a string there)                               |
//! | `azure-vnet`             | `azure`           | `mode` (`transparent`/`bridge`)                      |
//! | `antrea`, `kube-ovn`, `ovn-k8s-cni-overlay`, `bridge`/`ptp` (kube-router, kindnet) | see `family_of` | `mtu` if set |
//! | `multus`, `multus-shim`  | the delegate's    | multus wraps the real network: an inline `delegates[0]` is looked through; a `clusterNetwork` file reference makes [`detect_from_dir`] continue with the next file |
//! | anything else            | the raw `type`    | `mtu` if set                                         |
//!
//! `cilium-cni` chained behind another primary plugin gives `name = "cilium"`
//! and `mode = "chained-<chaining-mode or primary family>"`.
//!
//! `mode` is only ever set when a file *says* it; `None` means "unknown" and
//! callers should print it as such. Nothing is guessed from MTU values.
//!
//! # Flannel backend and MTU
//!
//! Flannel's CNI file never names the backend. The backend lives in flannel's
//! `net-conf.json` (`Backend.Type`: `vxlan`, `host-gw`, `wireguard`, ...), which
//! kube-flannel mounts from its `ConfigMap` into its own pod only, and the MTU
//! that flanneld computed (1450 for VXLAN on a 1500-byte underlay, 1500 for
//! host-gw) is written to `/run/flannel/subnet.env` as `FLANNEL_MTU`. When the
//! detected family is `flannel` (or `canal`), [`detect_from_dir`] looks for
//! those two files relative to the CNI directory, which is expected to sit at
//! `<root>/etc/cni/net.d` (`root` is `/` on a node, `/host` in the worker pod):
//!
//! * `net-conf.json`: `<root>/etc/kube-flannel/net-conf.json` (flanneld's own
//!   default path; the cnibench `DaemonSet` mounts an optional `ConfigMap` there)
//!   or `<root>/etc/flannel/net-conf.json` (the k3s layout, where the CNI dir is
//!   `.../agent/etc/cni/net.d` and the file `.../agent/etc/flannel/net-conf.json`).
//!   `Backend.Type` becomes `mode`, lower-cased; `vxlan`/`ipip` with
//!   `"DirectRouting": true` become `vxlan-directrouting`/`ipip-directrouting`.
//!   Without this file the flannel mode is `None` (unknown).
//! * `subnet.env`: the flannel plugin's `subnetFile` if the CNI file sets one,
//!   else `<root>/run/flannel/subnet.env`. `FLANNEL_MTU` becomes `mtu`, unless
//!   the CNI file's `delegate.mtu` is set (the flannel plugin lets that win).
//!
//! When extra files contributed, `source` lists them after the CNI file,
//! joined by `" + "`, so a report shows where each claim came from.
//!
//! Errors are values: [`detect_from_config`] returns `Err(String)` for
//! unparsable input and [`detect_from_dir`] never fails (it returns `name =
//! "unknown"` when nothing usable is found). Nothing here panics on bad input.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

/// What the node's CNI configuration says about the datapath.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CniInfo {
    /// CNI family: "flannel", "calico", "canal", "cilium", "weave", ...,
    /// the raw plugin `type` for unrecognised plugins, or "unknown".
    pub name: String,
    /// Datapath mode ("vxlan", "host-gw", ...) when a file says it; `None` means unknown.
    pub mode: Option<String>,
    /// Pod interface MTU when a file says it (0/placeholders are treated as unknown).
    pub mtu: Option<u32>,
    /// File(s) the information came from (several joined by `" + "`).
    pub source: Option<String>,
}

/// Name reported when no usable configuration was found.
const UNKNOWN: &str = "unknown";

/// File extensions the container runtimes (libcni `ConfFiles`) consider.
const CONFIG_EXTENSIONS: [&str; 3] = [".conf", ".conflist", ".json"];

/// Files larger than this are not CNI configuration; refuse to read them whole.
const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// Plugin types that are chained after the network-providing plugin and say
/// nothing about the datapath (meta plugins, service meshes, ...).
const HELPER_TYPES: [&str; 12] = [
    "portmap",
    "bandwidth",
    "tuning",
    "firewall",
    "sbr",
    "loopback",
    "sysctl",
    "egress-cni",
    "egress-v4-cni",
    "egress-v6-cni",
    "istio-cni",
    "linkerd-cni",
];

/// Parse one conflist/conf file's content (file name given for context).
///
/// # Errors
///
/// A message starting with `file_name` when the content is not JSON, not an
/// object, has neither `plugins` nor `type`, has an empty plugin list, or a
/// plugin without a non-empty string `type`.
pub fn detect_from_config(file_name: &str, content: &str) -> Result<CniInfo, String> {
    let value: Value =
        serde_json::from_str(content).map_err(|e| format!("{file_name}: not valid JSON: {e}"))?;
    let mut info = detect_from_value(file_name, &value, 0)?;
    info.source = Some(file_name.to_string());
    Ok(info)
}

/// Read an /etc/cni/net.d-like dir: pick the file the container runtime would
/// use (lexicographically first loadable `*.conf`/`*.conflist`/`*.json`),
/// enrich flannel with `net-conf.json`/`subnet.env` found relative to it (see
/// the module docs), never panic on bad files.
#[must_use]
pub fn detect_from_dir(dir: &Path) -> CniInfo {
    let mut multus: Option<CniInfo> = None;
    for path in config_files(dir) {
        let display = path.display().to_string();
        let Ok(content) = read_capped(&path) else {
            continue;
        };
        let Ok(mut info) = detect_from_config(&display, &content) else {
            // The runtime skips files that fail to load; so do we.
            continue;
        };
        if is_multus(&info.name) {
            // Multus referencing its cluster network by file: that file is
            // (normally) the next one in the directory; keep looking.
            multus.get_or_insert(info);
            continue;
        }
        if info.name == "flannel" || info.name == "canal" {
            let plugin = parse_flannel_plugin(&content);
            enrich_flannel(&mut info, dir, &plugin);
        }
        return info;
    }
    multus.unwrap_or_else(|| CniInfo {
        name: UNKNOWN.to_string(),
        ..CniInfo::default()
    })
}

/// Core of [`detect_from_config`]; `depth` bounds multus delegate recursion.
fn detect_from_value(file_name: &str, value: &Value, depth: u8) -> Result<CniInfo, String> {
    let obj = value
        .as_object()
        .ok_or_else(|| format!("{file_name}: top-level JSON value is not an object"))?;
    let plugins = plugins_of(file_name, obj)?;

    let primary = plugins
        .iter()
        .copied()
        .find(|p| !HELPER_TYPES.contains(&plugin_type(p)))
        .unwrap_or(plugins[0]);
    let primary_type = plugin_type(primary);

    if is_multus(primary_type)
        && depth < 4
        && let Some(delegate) = primary
            .get("delegates")
            .and_then(Value::as_array)
            .and_then(|d| d.first())
    {
        return detect_from_value(file_name, delegate, depth + 1);
    }

    let family = family_of(file_name, primary);
    let mut info = CniInfo {
        name: family.clone(),
        mode: None,
        mtu: None,
        source: None,
    };

    match family.as_str() {
        "flannel" => {
            info.mtu = primary
                .get("delegate")
                .and_then(|d| d.get("mtu"))
                .and_then(parse_mtu);
        }
        "azure" => {
            info.mode = primary
                .get("mode")
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|m| !m.is_empty())
                .map(str::to_ascii_lowercase);
            info.mtu = first_mtu(primary, &plugins);
        }
        _ => info.mtu = first_mtu(primary, &plugins),
    }

    // cilium-cni chained behind another network plugin.
    if primary_type != "cilium-cni"
        && let Some(cilium) = plugins.iter().find(|p| plugin_type(p) == "cilium-cni")
    {
        let chaining = cilium
            .get("chaining-mode")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .map_or(family, str::to_string);
        info.name = "cilium".to_string();
        info.mode = Some(format!("chained-{chaining}"));
    }
    Ok(info)
}

/// The plugin objects of a conflist, or the single plugin of a `.conf`.
/// Every plugin must be an object with a non-empty string `type`.
fn plugins_of<'a>(
    file_name: &str,
    obj: &'a Map<String, Value>,
) -> Result<Vec<&'a Map<String, Value>>, String> {
    let plugins: Vec<&Value> = match obj.get("plugins") {
        Some(Value::Array(list)) => list.iter().collect(),
        Some(_) => return Err(format!("{file_name}: \"plugins\" is not an array")),
        None if obj.contains_key("type") => {
            return check_plugin(file_name, 0, obj).map(|p| vec![p]);
        }
        None => {
            return Err(format!(
                "{file_name}: neither \"plugins\" (conflist) nor \"type\" (conf) present"
            ));
        }
    };
    if plugins.is_empty() {
        return Err(format!("{file_name}: \"plugins\" is empty"));
    }
    plugins
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            let plugin = p
                .as_object()
                .ok_or_else(|| format!("{file_name}: plugin {i} is not an object"))?;
            check_plugin(file_name, i, plugin)
        })
        .collect()
}

fn check_plugin<'a>(
    file_name: &str,
    index: usize,
    plugin: &'a Map<String, Value>,
) -> Result<&'a Map<String, Value>, String> {
    match plugin.get("type") {
        Some(Value::String(t)) if !t.trim().is_empty() => Ok(plugin),
        Some(Value::String(_)) => Err(format!("{file_name}: plugin {index} has an empty \"type\"")),
        Some(_) => Err(format!(
            "{file_name}: plugin {index} \"type\" is not a string"
        )),
        None => Err(format!("{file_name}: plugin {index} has no \"type\"")),
    }
}

fn plugin_type(plugin: &Map<String, Value>) -> &str {
    plugin
        .get("type")
        .and_then(Value::as_str)
        .map_or("", str::trim)
}

fn is_multus(name: &str) -> bool {
    name == "multus" || name == "multus-shim"
}

/// Map a primary plugin to its CNI family name.
fn family_of(file_name: &str, plugin: &Map<String, Value>) -> String {
    let file_lower = base_name(file_name).to_ascii_lowercase();
    let ty = plugin_type(plugin);
    let family = match ty {
        "flannel" | "calico" if file_lower.contains("canal") => "canal",
        "flannel" => "flannel",
        "calico" => "calico",
        "cilium-cni" => "cilium",
        "weave-net" => "weave",
        "antrea" => "antrea",
        "kube-ovn" => "kube-ovn",
        "ovn-k8s-cni-overlay" => "ovn-kubernetes",
        "aws-cni" => "aws-vpc-cni",
        "azure-vnet" => "azure",
        "ptp" if file_lower.contains("kindnet") => "kindnet",
        "bridge"
            if file_lower.contains("kuberouter")
                || plugin.get("bridge").and_then(Value::as_str) == Some("kube-bridge") =>
        {
            "kube-router"
        }
        other => other,
    };
    family.to_ascii_lowercase()
}

fn base_name(file_name: &str) -> &str {
    file_name.rsplit('/').next().unwrap_or(file_name)
}

/// MTU of the primary plugin, else of the first plugin that sets one.
fn first_mtu(primary: &Map<String, Value>, plugins: &[&Map<String, Value>]) -> Option<u32> {
    primary.get("mtu").and_then(parse_mtu).or_else(|| {
        plugins
            .iter()
            .find_map(|p| p.get("mtu").and_then(parse_mtu))
    })
}

/// Accepts numbers and numeric strings (aws-cni writes `"9001"`); 0 (calico's
/// "auto-detect") and unrendered placeholders such as `__CNI_MTU__` are `None`.
fn parse_mtu(v: &Value) -> Option<u32> {
    let n = match v {
        Value::Number(n) => n.as_u64()?,
        Value::String(s) => s.trim().parse::<u64>().ok()?,
        _ => return None,
    };
    u32::try_from(n).ok().filter(|m| (1..=65_535).contains(m))
}

/// What the flannel plugin entry of a CNI file says about its companions.
#[derive(Debug, Default)]
struct FlannelPlugin {
    /// `subnetFile` override (default `/run/flannel/subnet.env`).
    subnet_file: Option<String>,
}

fn parse_flannel_plugin(content: &str) -> FlannelPlugin {
    let Ok(value) = serde_json::from_str::<Value>(content) else {
        return FlannelPlugin::default();
    };
    let mut candidates: Vec<&Value> = vec![&value];
    if let Some(Value::Array(list)) = value.get("plugins") {
        candidates.extend(list.iter());
    }
    let subnet_file = candidates
        .into_iter()
        .filter(|p| p.get("type").and_then(Value::as_str) == Some("flannel"))
        .find_map(|p| p.get("subnetFile").and_then(Value::as_str))
        .map(str::to_string);
    FlannelPlugin { subnet_file }
}

/// Add mode (from `net-conf.json`) and MTU (from `subnet.env`) to a flannel
/// result, see the module docs for where they are looked for.
fn enrich_flannel(info: &mut CniInfo, dir: &Path, plugin: &FlannelPlugin) {
    let mut sources: Vec<String> = info.source.iter().cloned().collect();

    let etc = dir.parent().and_then(Path::parent);
    let root = etc.and_then(Path::parent);

    if let Some(etc) = etc {
        for candidate in [
            etc.join("kube-flannel").join("net-conf.json"),
            etc.join("flannel").join("net-conf.json"),
        ] {
            let Ok(content) = read_capped(&candidate) else {
                continue;
            };
            if let Ok(mode) = flannel_mode_from_net_conf(&content) {
                info.mode = mode;
                sources.push(candidate.display().to_string());
                break;
            }
        }
    }

    if let Some(root) = root {
        let mut candidates: Vec<PathBuf> = Vec::new();
        if let Some(custom) = &plugin.subnet_file {
            candidates.push(root.join(custom.trim_start_matches('/')));
        }
        candidates.push(root.join("run").join("flannel").join("subnet.env"));
        for candidate in candidates {
            let Ok(content) = read_capped(&candidate) else {
                continue;
            };
            let env_mtu = parse_subnet_env_mtu(&content);
            // An explicit delegate.mtu in the CNI file wins (the flannel
            // plugin only fills in FLANNEL_MTU when the delegate has none).
            if info.mtu.is_none() {
                info.mtu = env_mtu;
            }
            sources.push(candidate.display().to_string());
            break;
        }
    }

    if !sources.is_empty() {
        info.source = Some(sources.join(" + "));
    }
}

/// Flannel datapath mode from `net-conf.json`: `Ok(None)` when the file has
/// no `Backend.Type` (the default backend depends on the flannel version).
fn flannel_mode_from_net_conf(content: &str) -> Result<Option<String>, String> {
    let value: Value =
        serde_json::from_str(content).map_err(|e| format!("net-conf.json: not valid JSON: {e}"))?;
    let Some(backend) = value.get("Backend") else {
        return Ok(None);
    };
    let Some(ty) = backend
        .get("Type")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|t| !t.is_empty())
    else {
        return Ok(None);
    };
    let ty = ty.to_ascii_lowercase();
    let direct = backend.get("DirectRouting").and_then(Value::as_bool) == Some(true);
    Ok(Some(if direct && (ty == "vxlan" || ty == "ipip") {
        format!("{ty}-directrouting")
    } else {
        ty
    }))
}

/// `FLANNEL_MTU` from a `subnet.env` (`KEY=VALUE` lines, optional quotes).
fn parse_subnet_env_mtu(content: &str) -> Option<u32> {
    content.lines().find_map(|line| {
        let line = line.trim();
        let line = line.strip_prefix("export ").unwrap_or(line);
        let (key, value) = line.split_once('=')?;
        if key.trim() != "FLANNEL_MTU" {
            return None;
        }
        let value = value.trim().trim_matches(|c| c == '"' || c == '\'');
        parse_mtu(&Value::String(value.to_string()))
    })
}

/// Candidate CNI config files in the order the runtime tries them.
fn config_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|name| {
            // Go's filepath.Ext: everything from the last dot (".conf" included).
            name.rfind('.')
                .is_some_and(|i| CONFIG_EXTENSIONS.contains(&&name[i..]))
        })
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|n| dir.join(n))
        // Follows symlinks; directories and dangling links are skipped.
        .filter(|p| fs::metadata(p).is_ok_and(|m| m.is_file()))
        .collect()
}

/// Read a small text file; errors for unreadable, oversized or non-UTF-8 files.
fn read_capped(path: &Path) -> Result<String, String> {
    let file = fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut buf = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if buf.len() as u64 > MAX_FILE_BYTES {
        return Err(format!(
            "{}: larger than {MAX_FILE_BYTES} bytes",
            path.display()
        ));
    }
    String::from_utf8(buf).map_err(|e| format!("{}: not UTF-8: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLANNEL_CONFLIST: &str =
        include_str!("../tests/fixtures/cni/flannel-vxlan/10-flannel.conflist");
    const FLANNEL_HOST_GW_CONFLIST: &str =
        include_str!("../tests/fixtures/cni/flannel-host-gw/10-flannel.conflist");
    const FLANNEL_VXLAN_NET_CONF: &str =
        include_str!("../tests/fixtures/cni/flannel-vxlan/net-conf.json");
    const FLANNEL_VXLAN_SUBNET_ENV: &str =
        include_str!("../tests/fixtures/cni/flannel-vxlan/subnet.env");
    const FLANNEL_HOST_GW_NET_CONF: &str =
        include_str!("../tests/fixtures/cni/flannel-host-gw/net-conf.json");
    const FLANNEL_HOST_GW_SUBNET_ENV: &str =
        include_str!("../tests/fixtures/cni/flannel-host-gw/subnet.env");
    const CALICO_CONFLIST: &str = include_str!("../tests/fixtures/cni/calico/10-calico.conflist");
    const CILIUM_CONFLIST: &str = include_str!("../tests/fixtures/cni/cilium/05-cilium.conflist");
    const MALFORMED_CONFLIST: &str =
        include_str!("../tests/fixtures/cni/malformed/00-broken.conflist");
    const MULTUS_CONF: &str = include_str!("../tests/fixtures/cni/multus/00-multus.conf");
    const AWS_CONFLIST: &str = include_str!("../tests/fixtures/cni/aws-vpc-cni/10-aws.conflist");

    /// A throw-away directory tree under the system temp dir, removed on drop.
    struct TempTree(PathBuf);

    impl TempTree {
        fn new(tag: &str) -> Self {
            use std::sync::atomic::{AtomicUsize, Ordering};
            static COUNTER: AtomicUsize = AtomicUsize::new(0);
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let root = std::env::temp_dir().join(format!(
                "cnibench-cni-test-{}-{tag}-{n}",
                std::process::id()
            ));
            let _ = fs::remove_dir_all(&root);
            fs::create_dir_all(&root).expect("create temp root");
            Self(root)
        }

        /// Write `content` at `rel` (creating parent dirs); returns the path.
        fn file(&self, rel: &str, content: &str) -> PathBuf {
            let path = self.0.join(rel);
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent).expect("create parent dir");
            }
            fs::write(&path, content).expect("write fixture");
            path
        }

        fn net_d(&self) -> PathBuf {
            let dir = self.0.join("etc/cni/net.d");
            fs::create_dir_all(&dir).expect("create net.d");
            dir
        }
    }

    impl Drop for TempTree {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn info(name: &str, mode: Option<&str>, mtu: Option<u32>, source: &str) -> CniInfo {
        CniInfo {
            name: name.to_string(),
            mode: mode.map(str::to_string),
            mtu,
            source: Some(source.to_string()),
        }
    }

    #[test]
    fn flannel_conflist_alone_has_no_mode_or_mtu() {
        let got = detect_from_config("10-flannel.conflist", FLANNEL_CONFLIST);
        assert_eq!(got, Ok(info("flannel", None, None, "10-flannel.conflist")));
        assert_eq!(FLANNEL_CONFLIST, FLANNEL_HOST_GW_CONFLIST);
    }

    #[test]
    fn flannel_delegate_mtu_is_reported() {
        let conf = r#"{"name":"cbr0","cniVersion":"0.3.1","plugins":[
            {"type":"flannel","delegate":{"mtu":1400,"isDefaultGateway":true}},
            {"type":"portmap","capabilities":{"portMappings":true}}]}"#;
        let got = detect_from_config("10-flannel.conflist", conf).map(|i| i.mtu);
        assert_eq!(got, Ok(Some(1400)));
    }

    #[test]
    fn calico_conflist() {
        let got = detect_from_config("10-calico.conflist", CALICO_CONFLIST);
        assert_eq!(
            got,
            Ok(info("calico", None, Some(1440), "10-calico.conflist"))
        );
    }

    #[test]
    fn calico_auto_mtu_and_placeholder_are_unknown() {
        let zero = CALICO_CONFLIST.replace("\"mtu\": 1440", "\"mtu\": 0");
        let got = detect_from_config("10-calico.conflist", &zero).map(|i| i.mtu);
        assert_eq!(got, Ok(None));
        let placeholder = CALICO_CONFLIST.replace("\"mtu\": 1440", "\"mtu\": \"__CNI_MTU__\"");
        let got = detect_from_config("10-calico.conflist", &placeholder).map(|i| i.mtu);
        assert_eq!(got, Ok(None));
    }

    #[test]
    fn canal_is_recognised_by_file_name() {
        let got = detect_from_config("10-canal.conflist", CALICO_CONFLIST).map(|i| i.name);
        assert_eq!(got, Ok("canal".to_string()));
    }

    #[test]
    fn cilium_conflist() {
        let got = detect_from_config("05-cilium.conflist", CILIUM_CONFLIST);
        assert_eq!(got, Ok(info("cilium", None, None, "05-cilium.conflist")));
    }

    #[test]
    fn cilium_chained_after_another_plugin() {
        let conf = r#"{"cniVersion":"0.4.0","name":"aws-cni","plugins":[
            {"type":"aws-cni","mtu":"9001"},
            {"type":"portmap"},
            {"type":"cilium-cni","chaining-mode":"aws-cni","enable-debug":false}]}"#;
        let got = detect_from_config("05-cilium.conflist", conf);
        assert_eq!(
            got,
            Ok(info(
                "cilium",
                Some("chained-aws-cni"),
                Some(9001),
                "05-cilium.conflist"
            ))
        );
    }

    #[test]
    fn aws_string_mtu() {
        let got = detect_from_config("10-aws.conflist", AWS_CONFLIST);
        assert_eq!(
            got,
            Ok(info("aws-vpc-cni", None, Some(9001), "10-aws.conflist"))
        );
    }

    #[test]
    fn single_plugin_conf_files() {
        let weave =
            r#"{"cniVersion":"0.3.0","name":"weave","type":"weave-net","hairpinMode":true}"#;
        assert_eq!(
            detect_from_config("10-weave.conf", weave).map(|i| i.name),
            Ok("weave".into())
        );
        let azure = r#"{"cniVersion":"0.3.0","name":"azure","type":"azure-vnet","mode":"transparent","ipam":{"type":"azure-vnet-ipam"}}"#;
        assert_eq!(
            detect_from_config("10-azure.conflist", azure).map(|i| i.mode),
            Ok(Some("transparent".into()))
        );
        let custom = r#"{"cniVersion":"1.0.0","name":"x","type":"my-plugin","mtu":9000}"#;
        assert_eq!(
            detect_from_config("50-x.conf", custom),
            Ok(info("my-plugin", None, Some(9000), "50-x.conf"))
        );
    }

    #[test]
    fn multus_with_inline_delegate_is_looked_through() {
        let conf = format!(
            r#"{{"cniVersion":"0.3.1","name":"multus-cni-network","type":"multus","delegates":[{CALICO_CONFLIST}]}}"#
        );
        let got = detect_from_config("00-multus.conf", &conf);
        assert_eq!(got, Ok(info("calico", None, Some(1440), "00-multus.conf")));
    }

    #[test]
    fn malformed_inputs_are_errors_not_panics() {
        let cases: [(&str, &str); 9] = [
            ("truncated", MALFORMED_CONFLIST),
            ("empty", ""),
            ("array", "[1,2]"),
            ("no plugins no type", r#"{"name":"x"}"#),
            ("plugins not array", r#"{"plugins":{}}"#),
            ("plugins empty", r#"{"plugins":[]}"#),
            ("plugin not object", r#"{"plugins":["flannel"]}"#),
            ("type not string", r#"{"plugins":[{"type":7}]}"#),
            ("type empty", r#"{"type":"  "}"#),
        ];
        for (what, content) in cases {
            let got = detect_from_config("bad.conflist", content);
            let err = got.expect_err(what);
            assert!(err.starts_with("bad.conflist: "), "{what}: {err}");
        }
    }

    #[test]
    fn mtu_parsing_edges() {
        assert_eq!(parse_mtu(&serde_json::json!(1500)), Some(1500));
        assert_eq!(parse_mtu(&serde_json::json!(" 8951 ")), Some(8951));
        assert_eq!(parse_mtu(&serde_json::json!(0)), None);
        assert_eq!(parse_mtu(&serde_json::json!(-1)), None);
        assert_eq!(parse_mtu(&serde_json::json!(70_000)), None);
        assert_eq!(parse_mtu(&serde_json::json!(1500.5)), None);
        assert_eq!(parse_mtu(&serde_json::json!(null)), None);
    }

    #[test]
    fn flannel_net_conf_modes() {
        assert_eq!(
            flannel_mode_from_net_conf(FLANNEL_VXLAN_NET_CONF),
            Ok(Some("vxlan".into()))
        );
        assert_eq!(
            flannel_mode_from_net_conf(FLANNEL_HOST_GW_NET_CONF),
            Ok(Some("host-gw".into()))
        );
        assert_eq!(
            flannel_mode_from_net_conf(
                r#"{"Network":"10.244.0.0/16","Backend":{"Type":"VXLAN","DirectRouting":true}}"#
            ),
            Ok(Some("vxlan-directrouting".into()))
        );
        assert_eq!(
            flannel_mode_from_net_conf(r#"{"Network":"10.0.0.0/8"}"#),
            Ok(None)
        );
        assert!(flannel_mode_from_net_conf("{").is_err());
    }

    #[test]
    fn subnet_env_mtu() {
        assert_eq!(parse_subnet_env_mtu(FLANNEL_VXLAN_SUBNET_ENV), Some(1450));
        assert_eq!(parse_subnet_env_mtu(FLANNEL_HOST_GW_SUBNET_ENV), Some(1500));
        assert_eq!(
            parse_subnet_env_mtu("export FLANNEL_MTU=\"1420\"\n"),
            Some(1420)
        );
        assert_eq!(parse_subnet_env_mtu("FLANNEL_NETWORK=10.0.0.0/8\n"), None);
        assert_eq!(parse_subnet_env_mtu("FLANNEL_MTU=abc\n"), None);
    }

    #[test]
    fn dir_flannel_vxlan_with_net_conf_and_subnet_env() {
        let t = TempTree::new("vxlan");
        let conf = t.file("etc/cni/net.d/10-flannel.conflist", FLANNEL_CONFLIST);
        let net_conf = t.file("etc/kube-flannel/net-conf.json", FLANNEL_VXLAN_NET_CONF);
        let env = t.file("run/flannel/subnet.env", FLANNEL_VXLAN_SUBNET_ENV);
        let got = detect_from_dir(&t.net_d());
        let source = format!(
            "{} + {} + {}",
            conf.display(),
            net_conf.display(),
            env.display()
        );
        assert_eq!(got, info("flannel", Some("vxlan"), Some(1450), &source));
    }

    #[test]
    fn dir_flannel_host_gw() {
        let t = TempTree::new("hostgw");
        t.file(
            "etc/cni/net.d/10-flannel.conflist",
            FLANNEL_HOST_GW_CONFLIST,
        );
        t.file("etc/kube-flannel/net-conf.json", FLANNEL_HOST_GW_NET_CONF);
        t.file("run/flannel/subnet.env", FLANNEL_HOST_GW_SUBNET_ENV);
        let got = detect_from_dir(&t.net_d());
        assert_eq!(
            (got.name.as_str(), got.mode.as_deref(), got.mtu),
            ("flannel", Some("host-gw"), Some(1500))
        );
    }

    #[test]
    fn dir_flannel_without_net_conf_has_unknown_mode_but_mtu() {
        let t = TempTree::new("nomode");
        let conf = t.file("etc/cni/net.d/10-flannel.conflist", FLANNEL_CONFLIST);
        let env = t.file("run/flannel/subnet.env", FLANNEL_VXLAN_SUBNET_ENV);
        let got = detect_from_dir(&t.net_d());
        let source = format!("{} + {}", conf.display(), env.display());
        assert_eq!(got, info("flannel", None, Some(1450), &source));
    }

    #[test]
    fn dir_flannel_k3s_layout() {
        // k3s: <agent>/etc/cni/net.d/10-flannel.conflist + <agent>/etc/flannel/net-conf.json
        let t = TempTree::new("k3s");
        t.file("agent/etc/cni/net.d/10-flannel.conflist", FLANNEL_CONFLIST);
        t.file("agent/etc/flannel/net-conf.json", FLANNEL_HOST_GW_NET_CONF);
        let got = detect_from_dir(&t.0.join("agent/etc/cni/net.d"));
        assert_eq!(
            (got.name.as_str(), got.mode.as_deref(), got.mtu),
            ("flannel", Some("host-gw"), None)
        );
    }

    #[test]
    fn dir_flannel_custom_subnet_file_is_rerooted() {
        let t = TempTree::new("subnetfile");
        let conf = FLANNEL_CONFLIST.replace(
            "\"type\": \"flannel\",",
            "\"type\": \"flannel\", \"subnetFile\": \"/run/custom/subnet.env\",",
        );
        t.file("etc/cni/net.d/10-flannel.conflist", &conf);
        t.file("run/flannel/subnet.env", "FLANNEL_MTU=1450\n");
        t.file("run/custom/subnet.env", "FLANNEL_MTU=1480\n");
        assert_eq!(detect_from_dir(&t.net_d()).mtu, Some(1480));
    }

    #[test]
    fn dir_picks_lexicographically_first_loadable_file() {
        let t = TempTree::new("order");
        let dir = t.net_d();
        t.file("etc/cni/net.d/10-calico.conflist", CALICO_CONFLIST);
        let cilium = t.file("etc/cni/net.d/05-cilium.conflist", CILIUM_CONFLIST);
        t.file(
            "etc/cni/net.d/99-loopback.conf",
            r#"{"cniVersion":"0.3.1","name":"lo","type":"loopback"}"#,
        );
        t.file("etc/cni/net.d/01-notes.txt", "not a cni file");
        t.file("etc/cni/net.d/calico-kubeconfig", "apiVersion: v1");
        fs::create_dir_all(dir.join("00-dir.conf")).expect("mkdir");
        assert_eq!(
            detect_from_dir(&dir),
            info("cilium", None, None, &cilium.display().to_string())
        );
    }

    #[test]
    fn dir_skips_malformed_files_like_the_runtime() {
        let t = TempTree::new("malformed");
        t.file("etc/cni/net.d/00-broken.conflist", MALFORMED_CONFLIST);
        let calico = t.file("etc/cni/net.d/10-calico.conflist", CALICO_CONFLIST);
        let got = detect_from_dir(&t.net_d());
        assert_eq!(
            got,
            info("calico", None, Some(1440), &calico.display().to_string())
        );
    }

    #[test]
    fn dir_multus_shim_defers_to_next_file() {
        let t = TempTree::new("multus");
        t.file("etc/cni/net.d/00-multus.conf", MULTUS_CONF);
        let calico = t.file("etc/cni/net.d/10-calico.conflist", CALICO_CONFLIST);
        let got = detect_from_dir(&t.net_d());
        assert_eq!(
            got,
            info("calico", None, Some(1440), &calico.display().to_string())
        );

        let only = TempTree::new("multus-only");
        let multus = only.file("etc/cni/net.d/00-multus.conf", MULTUS_CONF);
        let got = detect_from_dir(&only.net_d());
        assert_eq!(
            got,
            info("multus-shim", None, None, &multus.display().to_string())
        );
    }

    #[test]
    fn dir_missing_empty_or_all_bad_is_unknown() {
        let unknown = CniInfo {
            name: UNKNOWN.to_string(),
            ..CniInfo::default()
        };
        let t = TempTree::new("empty");
        assert_eq!(detect_from_dir(&t.0.join("does/not/exist")), unknown);
        assert_eq!(detect_from_dir(&t.net_d()), unknown);
        t.file("etc/cni/net.d/00-broken.conflist", MALFORMED_CONFLIST);
        t.file("etc/cni/net.d/10-empty.conf", "");
        assert_eq!(detect_from_dir(&t.net_d()), unknown);
    }

    #[test]
    fn dir_refuses_oversized_files() {
        let t = TempTree::new("big");
        let padding = " ".repeat(usize::try_from(MAX_FILE_BYTES).unwrap_or(1 << 20) + 1);
        t.file(
            "etc/cni/net.d/00-big.conflist",
            &format!("{CILIUM_CONFLIST}{padding}"),
        );
        let calico = t.file("etc/cni/net.d/10-calico.conflist", CALICO_CONFLIST);
        assert_eq!(
            detect_from_dir(&t.net_d()).source,
            Some(calico.display().to_string())
        );
    }
}
