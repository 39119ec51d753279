#!/usr/bin/env bash
# test-testbed.sh - tests for scripts/testbed.sh. Needs root; runs in ~15 s.
#
# For each mode (host-gw, vxlan, hostnet) it brings the testbed up with an
# emulated kube-proxy service, checks connectivity (cross-node, same-node,
# underlay, the ClusterIP) and tears it down again. It also checks usage
# errors, idempotent up/down, cleanup after a failed `up`, and that nothing is
# left behind. All traffic stays inside the namespaces the testbed creates.
#
# Prints one line per check and `N passed, N failed` last; exits 1 on failure.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TB="$HERE/testbed.sh"
SERVICE_IP=10.96.0.10
LISTEN_PORT=18080
BANNER=cnibench-pod-c

PASSED=0
FAILED=0
OUT=$(mktemp /tmp/cnibench-test-testbed.XXXXXX)
LISTENER_PIDS=()

cleanup() {
    local pid
    for pid in "${LISTENER_PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    "$TB" down >/dev/null 2>&1 || true
    "$TB" --name t1 down >/dev/null 2>&1 || true
    "$TB" --name t2 down >/dev/null 2>&1 || true
    rm -f "$OUT"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# check DESCRIPTION COMMAND [ARGS...]: run, record and print the result.
check() {
    local desc=$1
    shift
    if "$@" >"$OUT" 2>&1; then
        PASSED=$((PASSED + 1))
        printf 'PASS %s\n' "$desc"
    else
        FAILED=$((FAILED + 1))
        printf 'FAIL %s\n' "$desc"
        tail -n 5 "$OUT" | sed 's/^/     | /'
    fi
}

ensure_tool() {
    local cmd=$1 pkg=$2
    command -v "$cmd" >/dev/null 2>&1 && return 0
    echo "installing $pkg (for $cmd)" >&2
    { apt-get install -y -qq "$pkg" || { apt-get update -qq && apt-get install -y -qq "$pkg"; }; } >/dev/null 2>&1 || true
    command -v "$cmd" >/dev/null 2>&1
}

# ---------------------------------------------------------------------------
# Individual checks (each returns 0 on success)

ping_ok() { # NS DEST [extra ping args]
    local ns=$1 dst=$2
    shift 2
    ip netns exec "$ns" ping -n -q -c 2 -i 0.2 -W 2 "$@" "$dst"
}

ping_fails() {
    ! ping_ok "$@"
}

no_cnb_namespaces() {
    ! ip netns list | grep -q '^cnb-'
}

env_has() { # KEY VALUE: the testbed's env output contains KEY=VALUE
    local line="$1=$2"
    "$TB" env | grep -qx -- "$line"
}

env_is_sourceable() {
    (
        set -eu
        # shellcheck disable=SC1090
        source <("$TB" env)
        [[ -n $MODE && -n $CLIENT_NS && -n $CLIENT_IP && -n $SERVER_NS && -n $SERVER_IP &&
            -n $SAME_NODE_SERVER_NS && -n $SAME_NODE_SERVER_IP ]]
    )
}

env_path_pings() { # ping SERVER_IP from CLIENT_NS as given by `env`
    (
        set -eu
        # shellcheck disable=SC1090
        source <("$TB" env)
        ping_ok "$CLIENT_NS" "$SERVER_IP"
        ping_ok "$CLIENT_NS" "$SAME_NODE_SERVER_IP"
    )
}

mtu_is() { # NS DEV MTU
    [[ $(ip -n "$1" -o link show dev "$2") == *" mtu $3 "* ]]
}

# Start a bounded one-process TCP listener in NS that greets every client.
start_listener() {
    local ns=$1 port=$2
    timeout 20 ip netns exec "$ns" python3 -c '
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.listen(16)
deadline = time.time() + 15
while time.time() < deadline:
    s.settimeout(max(0.1, deadline - time.time()))
    try:
        c, _ = s.accept()
    except socket.timeout:
        break
    c.sendall((sys.argv[2] + "\n").encode())
    c.close()
' "$port" "$BANNER" &
    LISTENER_PIDS+=("$!")
    local _
    for _ in $(seq 50); do
        if ip netns exec "$ns" ss -Hltn "sport = :$port" | grep -q LISTEN; then
            return 0
        fi
        sleep 0.05
    done
    return 1
}

stop_listeners() {
    local pid
    for pid in "${LISTENER_PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    LISTENER_PIDS=()
}

tcp_banner_ok() { # NS IP PORT: connect and expect the listener's banner
    local ns=$1 ip=$2 port=$3 got
    # shellcheck disable=SC2016 # $0/$1 expand in the inner bash
    got=$(timeout 5 ip netns exec "$ns" bash -c \
        'exec 3<>"/dev/tcp/$0/$1" && head -n 1 <&3' "$ip" "$port")
    echo "got: '$got'"
    [[ $got == "$BANNER" ]]
}

exit_code_is() { # EXPECTED COMMAND [ARGS...]
    local want=$1 rc=0
    shift
    "$@" || rc=$?
    echo "exit code $rc (want $want)"
    [[ $rc -eq $want ]]
}

up_failure_is_cleaned() { # inject a failure into a step of `up`
    local step=$1 rc=0 msg
    msg=$(CNIBENCH_TESTBED_FAIL_STEP=$step "$TB" up vxlan --service iptables \
        --service-rules 10 2>&1) || rc=$?
    printf '%s\nexit code %s\n' "$msg" "$rc"
    ((rc != 0)) && [[ $msg == *"step '$step'"* ]] && no_cnb_namespaces &&
        [[ ! -e /run/cnibench-testbed.env ]]
}

two_named_testbeds() { # two datapaths up at once, each in its own namespaces
    "$TB" --name t1 up host-gw >/dev/null &&
        CNIBENCH_TESTBED_NAME=t2 "$TB" up vxlan >/dev/null &&
        ping_ok cnb-t1-pod-a 10.244.2.2 -M 'do' -s 1472 &&
        ping_fails cnb-t2-pod-a 10.244.2.2 -M 'do' -s 1472 &&
        ping_ok cnb-t2-pod-a 10.244.2.2 -M 'do' -s 1422 &&
        "$TB" --name t1 env | grep -qx 'CLIENT_NS=cnb-t1-pod-a' &&
        "$TB" --name t2 env | grep -qx 'MODE=vxlan' &&
        "$TB" --name t1 down && "$TB" --name t2 down &&
        ! ip netns list | grep -q '^cnb-t[12]-' &&
        [[ ! -e /run/cnibench-testbed-t1.env && ! -e /run/cnibench-testbed-t2.env ]]
}

# ---------------------------------------------------------------------------
# Per-mode suite

test_mode() { # MODE SERVICE_FLAVOUR
    local mode=$1 flavour=$2
    check "[$mode] up --service $flavour --service-rules 1000" \
        "$TB" up "$mode" --service "$flavour" --service-rules 1000
    check "[$mode] env is sourceable" env_is_sourceable
    check "[$mode] env MODE=$mode" env_has MODE "$mode"
    check "[$mode] env SERVICE_IP" env_has SERVICE_IP "$SERVICE_IP"
    if [[ $mode == hostnet ]]; then
        check "[$mode] env CLIENT_NS is node1" env_has CLIENT_NS cnb-node1
        check "[$mode] env SERVER_IP is node2 underlay" env_has SERVER_IP 172.31.255.2
    else
        check "[$mode] env CLIENT_NS is pod-a" env_has CLIENT_NS cnb-pod-a
        check "[$mode] env SERVER_IP is pod-c" env_has SERVER_IP 10.244.2.2
    fi
    check "[$mode] ping pod-a -> pod-c (cross-node)" ping_ok cnb-pod-a 10.244.2.2
    check "[$mode] ping pod-c -> pod-a (cross-node, reverse)" ping_ok cnb-pod-c 10.244.1.2
    check "[$mode] ping pod-a -> pod-b (same node)" ping_ok cnb-pod-a 10.244.1.3
    check "[$mode] ping node1 -> node2 (underlay)" ping_ok cnb-node1 172.31.255.2
    check "[$mode] env CLIENT_NS reaches SERVER_IP and SAME_NODE_SERVER_IP" env_path_pings
    if [[ $mode == vxlan ]]; then
        check "[$mode] pod eth0 MTU 1450" mtu_is cnb-pod-a eth0 1450
        check "[$mode] cni0 MTU 1450" mtu_is cnb-node1 cni0 1450
        check "[$mode] 1450-byte DF packet crosses the VXLAN" \
            ping_ok cnb-pod-a 10.244.2.2 -M 'do' -s 1422
        check "[$mode] 1451-byte DF packet is refused" \
            ping_fails cnb-pod-a 10.244.2.2 -M 'do' -s 1423
    else
        check "[$mode] pod eth0 MTU 1500" mtu_is cnb-pod-a eth0 1500
        check "[$mode] 1500-byte DF packet crosses nodes" \
            ping_ok cnb-pod-a 10.244.2.2 -M 'do' -s 1472
    fi
    check "[$mode] listener in pod-c" start_listener cnb-pod-c "$LISTEN_PORT"
    check "[$mode] TCP pod-a -> $SERVICE_IP:$LISTEN_PORT ($flavour) reaches pod-c" \
        tcp_banner_ok cnb-pod-a "$SERVICE_IP" "$LISTEN_PORT"
    if [[ $mode == hostnet ]]; then
        check "[$mode] TCP node1 (hostNetwork) -> $SERVICE_IP:$LISTEN_PORT reaches pod-c" \
            tcp_banner_ok cnb-node1 "$SERVICE_IP" "$LISTEN_PORT"
    fi
    stop_listeners
    check "[$mode] down" "$TB" down
    check "[$mode] no cnb- namespaces after down" no_cnb_namespaces
}

# ---------------------------------------------------------------------------

main() {
    if [[ $EUID -ne 0 ]]; then
        echo "test-testbed.sh must run as root" >&2
        echo "0 passed, 1 failed"
        exit 1
    fi
    local tool
    for tool in "ip iproute2" "ping iputils-ping" "nft nftables" "python3 python3"; do
        # shellcheck disable=SC2086 # split "cmd pkg"
        ensure_tool $tool || echo "warning: ${tool%% *} is missing" >&2
    done

    local root_routes_before
    root_routes_before=$(ip route show table all 2>/dev/null | sort)
    "$TB" down >/dev/null 2>&1 || true

    check "usage: no command exits 64" exit_code_is 64 "$TB"
    check "usage: unknown mode exits 64" exit_code_is 64 "$TB" up bogus
    check "usage: unknown flag exits 64" exit_code_is 64 "$TB" up host-gw --bogus
    check "usage: bad --proxy exits 64" exit_code_is 64 "$TB" up host-gw --proxy bogus
    check "usage: bad --service (alias) exits 64" exit_code_is 64 "$TB" up host-gw --service bogus
    if [[ ! -e /proc/net/ip_vs ]]; then
        check "--proxy ipvs without the kernel's IPVS fails (exit 1)" exit_code_is 1 "$TB" up host-gw --proxy ipvs
        check "--proxy ipvs created nothing" no_cnb_namespaces
    fi
    check "usage: bad --service-rules exits 64" exit_code_is 64 "$TB" up vxlan --service-rules many
    check "down with nothing up exits 0" "$TB" down
    check "env with nothing up exits non-zero" exit_code_is 1 "$TB" env

    test_mode host-gw iptables
    test_mode vxlan iptables
    test_mode hostnet iptables
    # Second up/down in a row for host-gw, with the nftables (vmap) flavour.
    test_mode host-gw nftables

    check "up twice without down (vxlan)" "$TB" up vxlan
    check "up twice without down (vxlan, again)" "$TB" up vxlan
    check "[vxlan] ping pod-a -> pod-c after re-up" ping_ok cnb-pod-a 10.244.2.2
    check "down twice (1)" "$TB" down
    check "down twice (2)" "$TB" down

    check "two named testbeds (host-gw and vxlan) up at once" two_named_testbeds
    check "usage: bad --name exits 64" exit_code_is 64 "$TB" --name 'Bad Name' up host-gw

    check "failed up (injected in vxlan step) cleans up" up_failure_is_cleaned vxlan-flannel.1
    check "failed up (injected in service step) cleans up" up_failure_is_cleaned service-iptables

    check "no cnb- namespaces left" no_cnb_namespaces
    check "state file removed" test ! -e /run/cnibench-testbed.env
    check "root namespace routes unchanged" \
        test "$(ip route show table all 2>/dev/null | sort)" == "$root_routes_before"

    echo "$PASSED passed, $FAILED failed"
    ((FAILED == 0))
}

main "$@"
