#!/usr/bin/env bash
# testbed.sh - emulate two Kubernetes nodes and their pod datapaths in
# network namespaces, so cnibench can compare CNI datapaths on one machine.
#
# Topology (every box is a network namespace created by this script; nothing
# is connected to the root namespace, so no traffic can leave the testbed):
#
#   cnb-pod-a           cnb-pod-b                          cnb-pod-c
#   eth0 10.244.1.2     eth0 10.244.1.3                    eth0 10.244.2.2
#     |                   |                                  |
#   veth-pod-a          veth-pod-b                         veth-pod-c
#     |                   |                                  |
#   +-+-------------------+-------+              +-----------+-----------+
#   | cni0 (bridge) 10.244.1.1/24 |              | cni0 (bridge)          |
#   |                             |              | 10.244.2.1/24          |
#   |        cnb-node1            |              |        cnb-node2       |
#   |   [flannel.1 10.244.1.0/32] |              | [flannel.1 10.244.2.0] |
#   |   eth0 172.31.255.1/24 -----+---- veth ----+- eth0 172.31.255.2/24  |
#   +-----------------------------+   underlay   +------------------------+
#
# Modes (scripts/testbed.sh up MODE):
#   host-gw  flannel host-gw: each node routes the peer pod CIDR via the peer's
#            underlay IP. Pod MTU 1500.
#   vxlan    flannel vxlan: VXLAN device flannel.1 (VNI 1, port 8472,
#            nolearning) on each node, onlink route to the peer's flannel.1
#            address plus permanent neighbour and fdb entries, exactly like
#            flanneld programs them. Pod/bridge MTU 1450.
#   hostnet  host-gw topology, but the benchmark path is node1 -> node2 on the
#            underlay IPs (hostNetwork pods).
# The same-node path pod-a -> pod-b (over the cni0 bridge) exists in every mode.
#
# Service emulation (--service iptables|nftables, in cnb-node1): ClusterIP
# 10.96.0.10 is DNATed to pod-c (10.244.2.2), keeping the destination port.
#   iptables  a linear chain of N non-matching rules before the match, like
#             kube-proxy's KUBE-SERVICES chain in iptables mode.
#   nftables  a verdict map keyed by ClusterIP with N fake entries, like
#             kube-proxy's nftables mode (O(1) lookup).
# Note that NAT rules are only evaluated for the first packet of a connection,
# so the rule count shows in connection setup rate, not in bulk throughput.
#
# Commands:
#   testbed.sh up MODE [--proxy iptables|nftables|ipvs|none] [--services N]
#   (--service and --service-rules are older spellings of --proxy and --services)
#   testbed.sh down
#   testbed.sh env
# `up` writes shell-sourceable KEY=VALUE lines to the state file; `env` prints
# them. Exit codes: 0 ok, 1 failure, 64 usage error, 77 not root.
set -euo pipefail

# ---------------------------------------------------------------------------
# Addressing (override with the environment variables if they ever clash).
UNDERLAY_NET="${CNIBENCH_UNDERLAY_NET:-172.31.255}"   # /24, .1 = node1, .2 = node2
UNDERLAY_PLEN=24
POD_NET_PREFIX="10.244"                                # node N gets 10.244.N.0/24
SERVICE_IP="10.96.0.10"
SERVICE_NET_PREFIX="10.96"                             # 10.96.0.0/16
# Several testbeds can be up at once (one per datapath, so repetitions can be
# interleaved across them, or one per concurrent test): a name prefixes a
# testbed's namespaces and names its state file (see name_testbed). Without a
# name, the namespaces are cnb-node1 ... cnb-pod-c.
TESTBED_NAME="${CNIBENCH_TESTBED_NAME:-}"
STATE_FILE=""
NODE1_NS="" NODE2_NS="" POD_A_NS="" POD_B_NS="" POD_C_NS=""
ALL_NS=()

NODE1_IP="${UNDERLAY_NET}.1"
NODE2_IP="${UNDERLAY_NET}.2"
NODE1_POD_CIDR="${POD_NET_PREFIX}.1.0/24"
NODE2_POD_CIDR="${POD_NET_PREFIX}.2.0/24"
NODE1_GW="${POD_NET_PREFIX}.1.1"
NODE2_GW="${POD_NET_PREFIX}.2.1"
NODE1_VTEP_IP="${POD_NET_PREFIX}.1.0"
NODE2_VTEP_IP="${POD_NET_PREFIX}.2.0"
POD_A_IP="${POD_NET_PREFIX}.1.2"
POD_B_IP="${POD_NET_PREFIX}.1.3"
POD_C_IP="${POD_NET_PREFIX}.2.2"

VXLAN_DEV=flannel.1
VXLAN_VNI=1
VXLAN_PORT=8472
VXLAN_MTU=1450
UNDERLAY_MTU=1500
MAX_SERVICE_RULES=65000
NFT_TABLE=cnibench-kube-proxy

# Set by parse_up_args.
MODE=""
SERVICE="none"
SERVICE_RULES=10000
POD_MTU=$UNDERLAY_MTU
SERVICE_SKIPPED=0   # 1 if --service was asked for but nft is unavailable

# Name of the `up` step currently running, reported if it fails.
CURRENT_STEP=""
UP_DONE=0

PROG="${0##*/}"

# ---------------------------------------------------------------------------
# Helpers

log() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {
    cat <<EOF
usage: $PROG [--name NAME] up MODE [--proxy iptables|nftables|ipvs|none] [--services N]
       $PROG [--name NAME] down
       $PROG [--name NAME] env

--name NAME (or CNIBENCH_TESTBED_NAME=NAME) names the testbed: its namespaces
are cnb-NAME-node1 ... and several named testbeds can be up at once.

MODE is one of: host-gw, vxlan, hostnet
  --proxy          kube-proxy emulation flavour in $NODE1_NS (default: none;
                   ipvs fails: this kernel has no IPVS) (alias: --service)
  --services       number of fake services besides $SERVICE_IP (default: 10000,
                   max $MAX_SERVICE_RULES) (alias: --service-rules)
EOF
}

usage_error() {
    log "$*"
    usage >&2
    exit 64
}

require_root() {
    if [[ $EUID -ne 0 ]]; then
        log "must run as root (network namespaces, veth and nftables need CAP_NET_ADMIN)"
        exit 77
    fi
}

# Run a command inside a namespace.
nsx() {
    local ns=$1
    shift
    ip netns exec "$ns" "$@"
}

ns_exists() {
    [[ -e "/run/netns/$1" ]]
}

# Try to install a Debian package that provides a missing command.
ensure_command() {
    local cmd=$1 pkg=$2
    command -v "$cmd" >/dev/null 2>&1 && return 0
    command -v apt-get >/dev/null 2>&1 || return 1
    log "'$cmd' not found, trying: apt-get install -y $pkg"
    if ! apt-get install -y -qq "$pkg" >/dev/null 2>&1; then
        apt-get update -qq >/dev/null 2>&1 || true
        apt-get install -y -qq "$pkg" >/dev/null 2>&1 || true
    fi
    command -v "$cmd" >/dev/null 2>&1
}

# ---------------------------------------------------------------------------
# Teardown

# Processes left inside our namespaces (e.g. iperf3 -D servers) would keep the
# namespace alive after its name is deleted; stop them by PID.
kill_ns_processes() {
    local ns pids=()
    for ns in "${ALL_NS[@]}"; do
        ns_exists "$ns" || continue
        # `ip netns pids` lists only processes whose netns is this one.
        mapfile -t -O "${#pids[@]}" pids < <(ip netns pids "$ns" 2>/dev/null || true)
    done
    ((${#pids[@]} > 0)) || return 0
    kill -TERM "${pids[@]}" 2>/dev/null || true
    local _
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        kill -0 "${pids[@]}" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL "${pids[@]}" 2>/dev/null || true
}

teardown() {
    kill_ns_processes
    local ns
    for ns in "${ALL_NS[@]}"; do
        if ns_exists "$ns"; then
            # Deleting the namespace destroys its veth ends, bridge, VXLAN
            # device and nftables ruleset.
            ip netns delete "$ns" 2>/dev/null || log "warning: could not delete namespace $ns"
        fi
    done
    rm -f "$STATE_FILE"
}

cmd_down() {
    require_root
    teardown
    log "testbed is down"
}

# ---------------------------------------------------------------------------
# Steps of `up` (one function per step)

step_create_namespaces() {
    local ns
    for ns in "${ALL_NS[@]}"; do
        ip netns add "$ns"
        ip -n "$ns" link set lo up
    done
}

step_node_sysctls() {
    local ns
    for ns in "$NODE1_NS" "$NODE2_NS"; do
        nsx "$ns" sysctl -qw net.ipv4.ip_forward=1
        # Loose/no reverse-path filtering: needed for VXLAN onlink routing and
        # for hostNetwork clients whose source IP is the underlay address.
        nsx "$ns" sysctl -qw net.ipv4.conf.all.rp_filter=0
        nsx "$ns" sysctl -qw net.ipv4.conf.default.rp_filter=0
    done
}

step_underlay() {
    # Created directly inside the node namespaces: nothing touches the root ns.
    ip -n "$NODE1_NS" link add eth0 mtu "$UNDERLAY_MTU" type veth \
        peer name eth0 mtu "$UNDERLAY_MTU" netns "$NODE2_NS"
    ip -n "$NODE1_NS" addr add "$NODE1_IP/$UNDERLAY_PLEN" dev eth0
    ip -n "$NODE2_NS" addr add "$NODE2_IP/$UNDERLAY_PLEN" dev eth0
    ip -n "$NODE1_NS" link set eth0 up
    ip -n "$NODE2_NS" link set eth0 up
}

# make_bridge NODE_NS GATEWAY_IP
make_bridge() {
    local ns=$1 gw=$2
    ip -n "$ns" link add cni0 mtu "$POD_MTU" type bridge
    ip -n "$ns" addr add "$gw/24" dev cni0
    ip -n "$ns" link set cni0 up
}

step_bridges() {
    make_bridge "$NODE1_NS" "$NODE1_GW"
    make_bridge "$NODE2_NS" "$NODE2_GW"
}

# attach_pod NODE_NS POD_NS HOST_IFNAME POD_IP GATEWAY_IP
attach_pod() {
    local node=$1 pod=$2 hostif=$3 ip=$4 gw=$5
    ip -n "$node" link add "$hostif" mtu "$POD_MTU" type veth \
        peer name eth0 mtu "$POD_MTU" netns "$pod"
    ip -n "$node" link set "$hostif" master cni0
    ip -n "$node" link set "$hostif" up
    ip -n "$pod" addr add "$ip/24" dev eth0
    ip -n "$pod" link set eth0 up
    ip -n "$pod" route add default via "$gw" dev eth0
}

step_pods() {
    attach_pod "$NODE1_NS" "$POD_A_NS" veth-pod-a "$POD_A_IP" "$NODE1_GW"
    attach_pod "$NODE1_NS" "$POD_B_NS" veth-pod-b "$POD_B_IP" "$NODE1_GW"
    attach_pod "$NODE2_NS" "$POD_C_NS" veth-pod-c "$POD_C_IP" "$NODE2_GW"
}

step_routes_host_gw() {
    ip -n "$NODE1_NS" route add "$NODE2_POD_CIDR" via "$NODE2_IP" dev eth0
    ip -n "$NODE2_NS" route add "$NODE1_POD_CIDR" via "$NODE1_IP" dev eth0
}

# make_vtep NODE_NS LOCAL_UNDERLAY_IP VTEP_IP
make_vtep() {
    local ns=$1 local_ip=$2 vtep_ip=$3
    ip -n "$ns" link add "$VXLAN_DEV" mtu "$VXLAN_MTU" type vxlan \
        id "$VXLAN_VNI" local "$local_ip" dev eth0 dstport "$VXLAN_PORT" nolearning
    ip -n "$ns" addr add "$vtep_ip/32" dev "$VXLAN_DEV"
    ip -n "$ns" link set "$VXLAN_DEV" up
}

vtep_mac() {
    local ns=$1 mac
    mac=$(ip -n "$ns" -br link show dev "$VXLAN_DEV" | awk '{print $3}')
    [[ $mac =~ ^([0-9a-f]{2}:){5}[0-9a-f]{2}$ ]] || return 1
    printf '%s\n' "$mac"
}

# program_peer NODE_NS PEER_POD_CIDR PEER_VTEP_IP PEER_VTEP_MAC PEER_UNDERLAY_IP
# What flanneld does when it learns a remote lease: route, neighbour, fdb.
program_peer() {
    local ns=$1 cidr=$2 vtep_ip=$3 mac=$4 underlay_ip=$5
    ip -n "$ns" route add "$cidr" via "$vtep_ip" dev "$VXLAN_DEV" onlink
    ip -n "$ns" neigh replace "$vtep_ip" lladdr "$mac" dev "$VXLAN_DEV" nud permanent
    bridge -n "$ns" fdb append "$mac" dev "$VXLAN_DEV" dst "$underlay_ip" self permanent
}

step_vxlan() {
    make_vtep "$NODE1_NS" "$NODE1_IP" "$NODE1_VTEP_IP"
    make_vtep "$NODE2_NS" "$NODE2_IP" "$NODE2_VTEP_IP"
    local mac1 mac2
    mac1=$(vtep_mac "$NODE1_NS")
    mac2=$(vtep_mac "$NODE2_NS")
    program_peer "$NODE1_NS" "$NODE2_POD_CIDR" "$NODE2_VTEP_IP" "$mac2" "$NODE2_IP"
    program_peer "$NODE2_NS" "$NODE1_POD_CIDR" "$NODE1_VTEP_IP" "$mac1" "$NODE1_IP"
    local ns
    for ns in "$NODE1_NS" "$NODE2_NS"; do
        # Slash form: the device name contains a dot.
        nsx "$ns" sysctl -qw "net/ipv4/conf/${VXLAN_DEV}/rp_filter=0"
    done
}

# fake_service_ips N: print N fake ClusterIPs in 10.96.0.0/16 (never .10,
# never a .0 or .255 host part).
fake_service_ips() {
    local n=$1
    awk -v n="$n" -v pfx="$SERVICE_NET_PREFIX" -v real="$SERVICE_IP" 'BEGIN {
        i = 0; made = 0
        while (made < n) {
            ip = sprintf("%s.%d.%d", pfx, int(i / 254), (i % 254) + 1)
            i++
            if (ip == real) continue
            print ip
            made++
        }
    }'
}

# Write the nftables ruleset for the chosen flavour to stdout.
generate_service_ruleset() {
    local flavour=$1 n=$2
    printf 'table ip %s {\n' "$NFT_TABLE"
    # Fake services DNAT to pod-c as well, so even a stray hit stays inside
    # the testbed.
    printf '  chain svc-fake {\n    meta l4proto tcp dnat to %s:80\n  }\n' "$POD_C_IP"
    printf '  chain svc-real {\n    dnat to %s\n  }\n' "$POD_C_IP"
    case $flavour in
    iptables)
        # kube-proxy iptables mode: one rule per service, evaluated in order;
        # the real service is last, after N non-matching rules.
        printf '  chain services {\n'
        fake_service_ips "$n" | awk '{ printf "    ip daddr %s tcp dport 80 jump svc-fake\n", $1 }'
        printf '    ip daddr %s jump svc-real\n  }\n' "$SERVICE_IP"
        ;;
    nftables)
        # kube-proxy nftables mode: one verdict-map lookup keyed by ClusterIP.
        printf '  map service-ips {\n    type ipv4_addr : verdict\n'
        printf '    elements = { %s : jump svc-real' "$SERVICE_IP"
        fake_service_ips "$n" | awk '{ printf ",\n      %s : jump svc-fake", $1 }'
        printf ' }\n  }\n'
        printf '  chain services {\n    ip daddr vmap @service-ips\n  }\n'
        ;;
    esac
    printf '  chain prerouting {\n    type nat hook prerouting priority dstnat; policy accept;\n    jump services\n  }\n'
    printf '  chain output {\n    type nat hook output priority -100; policy accept;\n    jump services\n  }\n'
    printf '}\n'
}

step_service() {
    if ! ensure_command nft nftables; then
        log "WARNING: nft (nftables) is not available and could not be installed;"
        log "WARNING: skipping the service path (--service $SERVICE ignored)"
        SERVICE="none"
        SERVICE_SKIPPED=1
        return 0
    fi
    # One atomic `nft -f` transaction: fast even for tens of thousands of rules.
    generate_service_ruleset "$SERVICE" "$SERVICE_RULES" |
        nsx "$NODE1_NS" nft -f /dev/stdin
    # hostNetwork clients in node1 need a route for the initial lookup before
    # the output hook rewrites the destination (a node's default route would
    # normally cover this).
    ip -n "$NODE1_NS" route add "${SERVICE_NET_PREFIX}.0.0/16" via "$NODE2_IP" dev eth0
}

emit_env() {
    local client_ns client_ip server_ns server_ip
    if [[ $MODE == hostnet ]]; then
        client_ns=$NODE1_NS client_ip=$NODE1_IP
        server_ns=$NODE2_NS server_ip=$NODE2_IP
    else
        client_ns=$POD_A_NS client_ip=$POD_A_IP
        server_ns=$POD_C_NS server_ip=$POD_C_IP
    fi
    local kv=(
        "MODE=$MODE"
        "TESTBED_NAME=$TESTBED_NAME"
        "POD_MTU=$POD_MTU"
        "NODE1_NS=$NODE1_NS" "NODE1_IP=$NODE1_IP"
        "NODE2_NS=$NODE2_NS" "NODE2_IP=$NODE2_IP"
        "POD_A_NS=$POD_A_NS" "POD_A_IP=$POD_A_IP"
        "POD_B_NS=$POD_B_NS" "POD_B_IP=$POD_B_IP"
        "POD_C_NS=$POD_C_NS" "POD_C_IP=$POD_C_IP"
        "SERVICE=$SERVICE"
    )
    if [[ $SERVICE != none ]]; then
        kv+=(
            "SERVICE_IP=$SERVICE_IP"
            "SERVICE_RULES=$SERVICE_RULES"
            "SERVICE_NS=$NODE1_NS"
            "SERVICE_BACKEND_IP=$POD_C_IP"
        )
    fi
    if [[ $SERVICE_SKIPPED == 1 ]]; then
        kv+=("SERVICE_SKIPPED=1")
    fi
    kv+=(
        "CLIENT_NS=$client_ns" "CLIENT_IP=$client_ip"
        "SERVER_NS=$server_ns" "SERVER_IP=$server_ip"
        "SAME_NODE_CLIENT_NS=$POD_A_NS" "SAME_NODE_CLIENT_IP=$POD_A_IP"
        "SAME_NODE_SERVER_NS=$POD_B_NS" "SAME_NODE_SERVER_IP=$POD_B_IP"
    )
    local item
    for item in "${kv[@]}"; do
        printf '%s=%q\n' "${item%%=*}" "${item#*=}"
    done
}

step_write_state() {
    local tmp
    tmp=$(mktemp "${STATE_FILE}.XXXXXX")
    emit_env >"$tmp"
    chmod 0644 "$tmp"
    mv -f "$tmp" "$STATE_FILE"
}

# ---------------------------------------------------------------------------
# up

# run_step NAME FUNCTION [ARGS...]: records the step name for error reports.
# CNIBENCH_TESTBED_FAIL_STEP=NAME injects a failure (used by the tests).
run_step() {
    CURRENT_STEP=$1
    shift
    if [[ ${CNIBENCH_TESTBED_FAIL_STEP:-} == "$CURRENT_STEP" ]]; then
        log "injected failure (CNIBENCH_TESTBED_FAIL_STEP=$CURRENT_STEP)"
        return 1
    fi
    "$@"
}

on_up_exit() {
    local rc=$?
    if [[ $UP_DONE -ne 1 ]]; then
        ((rc != 0)) || rc=1
        log "error: 'up $MODE' failed in step '$CURRENT_STEP' (exit $rc); cleaning up"
        teardown
    fi
    exit "$rc"
}

parse_up_args() {
    (($# >= 1)) || usage_error "up: missing MODE"
    MODE=$1
    shift
    case $MODE in
    host-gw | hostnet) POD_MTU=$UNDERLAY_MTU ;;
    vxlan) POD_MTU=$VXLAN_MTU ;;
    *) usage_error "up: unknown mode '$MODE'" ;;
    esac
    while (($# > 0)); do
        case $1 in
        # --proxy/--services are kube-proxy's words; --service/--service-rules
        # are their older spellings, kept as aliases.
        --proxy | --service)
            (($# >= 2)) || usage_error "$1 needs a value"
            SERVICE=$2
            shift 2
            ;;
        --proxy=* | --service=*)
            SERVICE=${1#*=}
            shift
            ;;
        --services | --service-rules)
            (($# >= 2)) || usage_error "$1 needs a value"
            SERVICE_RULES=$2
            shift 2
            ;;
        --services=* | --service-rules=*)
            SERVICE_RULES=${1#*=}
            shift
            ;;
        *) usage_error "up: unknown argument '$1'" ;;
        esac
    done
    case $SERVICE in
    iptables | nftables | none) ;;
    ipvs)
        # kube-proxy's IPVS mode needs the kernel's IP Virtual Server; an
        # emulation without it would measure something else.
        if [[ ! -e /proc/net/ip_vs ]]; then
            log "error: --proxy ipvs needs the kernel's IPVS (/proc/net/ip_vs is missing: ip_vs module not loaded or not built); use --proxy iptables or nftables"
            exit 1
        fi
        usage_error "--proxy ipvs is not emulated by this testbed yet (use iptables or nftables)"
        ;;
    *) usage_error "--proxy must be iptables, nftables, ipvs or none (got '$SERVICE')" ;;
    esac
    if [[ ! $SERVICE_RULES =~ ^[0-9]{1,6}$ ]] || ((10#$SERVICE_RULES > MAX_SERVICE_RULES)); then
        usage_error "--service-rules must be an integer 0..$MAX_SERVICE_RULES (got '$SERVICE_RULES')"
    fi
    SERVICE_RULES=$((10#$SERVICE_RULES))
}

cmd_up() {
    parse_up_args "$@"
    require_root
    command -v ip >/dev/null 2>&1 || ensure_command ip iproute2 ||
        die "'ip' (iproute2) is required"
    command -v bridge >/dev/null 2>&1 || die "'bridge' (iproute2) is required"

    trap on_up_exit EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM

    run_step "teardown-leftovers" teardown
    run_step "create-namespaces" step_create_namespaces
    run_step "node-sysctls" step_node_sysctls
    run_step "underlay-veth" step_underlay
    run_step "cni0-bridges" step_bridges
    run_step "pod-veths" step_pods
    case $MODE in
    host-gw | hostnet) run_step "host-gw-routes" step_routes_host_gw ;;
    vxlan) run_step "vxlan-flannel.1" step_vxlan ;;
    esac
    if [[ $SERVICE != none ]]; then
        run_step "service-$SERVICE" step_service
    fi
    run_step "write-state" step_write_state

    UP_DONE=1
    trap - EXIT INT TERM
    local svc_desc=$SERVICE
    [[ $SERVICE == none ]] || svc_desc+=" ($SERVICE_RULES fake services)"
    log "testbed is up: mode=$MODE service=$svc_desc state=$STATE_FILE"
    emit_env
}

# ---------------------------------------------------------------------------
# env

cmd_env() {
    (($# == 0)) || usage_error "env takes no arguments"
    if [[ ! -f $STATE_FILE ]]; then
        log "no testbed is up (no $STATE_FILE); run: $PROG up MODE"
        exit 1
    fi
    local ns
    for ns in "${ALL_NS[@]}"; do
        ns_exists "$ns" || die "state file $STATE_FILE exists but namespace $ns is missing; run: $PROG up MODE"
    done
    cat "$STATE_FILE"
}

# name_testbed: derive namespace names and the state file from TESTBED_NAME.
name_testbed() {
    if [[ -n $TESTBED_NAME && ! $TESTBED_NAME =~ ^[a-z0-9][a-z0-9-]{0,15}$ ]]; then
        usage_error "--name must be 1-16 of a-z, 0-9 and '-' (got '$TESTBED_NAME')"
    fi
    local prefix="cnb-${TESTBED_NAME:+$TESTBED_NAME-}"
    STATE_FILE="${CNIBENCH_TESTBED_STATE:-/run/cnibench-testbed${TESTBED_NAME:+-$TESTBED_NAME}.env}"
    NODE1_NS=${prefix}node1 NODE2_NS=${prefix}node2
    POD_A_NS=${prefix}pod-a POD_B_NS=${prefix}pod-b POD_C_NS=${prefix}pod-c
    # Pods first: deleting them first keeps teardown order the reverse of setup.
    ALL_NS=("$POD_A_NS" "$POD_B_NS" "$POD_C_NS" "$NODE1_NS" "$NODE2_NS")
}

main() {
    if [[ ${1:-} == --name ]]; then
        (($# >= 2)) || usage_error "--name needs a value"
        TESTBED_NAME=$2
        shift 2
    fi
    name_testbed
    (($# >= 1)) || usage_error "missing command"
    local cmd=$1
    shift
    case $cmd in
    up) cmd_up "$@" ;;
    down)
        (($# == 0)) || usage_error "down takes no arguments"
        cmd_down
        ;;
    env) cmd_env "$@" ;;
    -h | --help | help) usage ;;
    *) usage_error "unknown command '$cmd'" ;;
    esac
}

main "$@"
