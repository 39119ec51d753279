#!/usr/bin/env bash
# demo.sh - the main job: build cnibench, bring up the local CNI testbed once per
# datapath (hostnet, host-gw, vxlan), run the same plan on workers inside the
# emulated pods/nodes, tear down, and compare the datapaths in one table.
#
#   scripts/demo.sh [--plan FILE] [--out DIR] [--modes "hostnet host-gw vxlan"]
#
# Without root or network namespaces it runs the plan once on loopback workers
# (127.0.0.2/127.0.0.3) and says so. Every namespace it creates is removed on
# exit, also on failure or Ctrl-C.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
plan="$root/plans/demo.yaml"
out="$root/results/demo-$(date -u +%Y%m%dT%H%M%SZ)"
modes="hostnet host-gw vxlan"

usage() {
  echo "usage: $0 [--plan FILE] [--out DIR] [--modes \"hostnet host-gw vxlan\"]" >&2
  exit 64
}
while [ $# -gt 0 ]; do
  case "$1" in
    --plan) [ $# -ge 2 ] || usage; plan=$2; shift 2 ;;
    --out) [ $# -ge 2 ] || usage; out=$2; shift 2 ;;
    --modes) [ $# -ge 2 ] || usage; modes=$2; shift 2 ;;
    -h|--help) usage ;;
    *) echo "demo.sh: unknown argument '$1'" >&2; usage ;;
  esac
done
[ -f "$plan" ] || { echo "demo.sh: plan file '$plan' not found" >&2; exit 64; }

echo "==> building cnibench (release)"
(cd "$root" && cargo build --release --locked --quiet -p cnibench-worker -p cnibench-coordinator)
bin="$root/target/release"
mkdir -p "$out"
token="$out/token"
head -c 32 /dev/urandom | base64 > "$token"
chmod 600 "$token"

pids=()
testbed_up=0
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
  if [ "$testbed_up" = 1 ]; then "$here/testbed.sh" down >/dev/null 2>&1 || true; testbed_up=0; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_worker NS|- ADDR NODE LABEL LOG: start a worker (inside NS unless '-') and
# wait until it listens.
start_worker() {
  local ns=$1 addr=$2 node=$3 label=$4 log=$5
  local cmd=("$bin/cnibench-worker" --listen "$addr" --token-file "$token" --node "$node" --cni "$label")
  if [ "$ns" = - ]; then "${cmd[@]}" 2>"$log" & else ip netns exec "$ns" "${cmd[@]}" 2>"$log" & fi
  pids+=("$!")
  for _ in $(seq 50); do
    grep -q "listening on" "$log" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "demo.sh: worker $addr did not start; its log:" >&2
  cat "$log" >&2
  return 1
}

# run_coordinator NS|- OUTDIR WORKERS: run the plan; a degraded run (exit 1) is
# reported but does not stop the demo.
run_coordinator() {
  local ns=$1 dir=$2 workers=$3 rc=0
  local cmd=("$bin/cnibench" run "$plan" --workers "$workers" --token-file "$token" --out "$dir")
  if [ "$ns" = - ]; then "${cmd[@]}" || rc=$?; else ip netns exec "$ns" "${cmd[@]}" || rc=$?; fi
  [ "$rc" -le 1 ] || { echo "demo.sh: cnibench run failed (exit $rc)" >&2; exit "$rc"; }
  [ "$rc" -eq 0 ] || echo "demo.sh: some repetitions were not ok; see the flags above" >&2
}

netns_ok() {
  [ "$(id -u)" = 0 ] || return 1
  ip netns add cnb-probe 2>/dev/null || return 1
  ip netns del cnb-probe
}

dirs=()
if netns_ok; then
  for mode in $modes; do
    echo "==> datapath $mode: testbed up"
    testbed_up=1
    "$here/testbed.sh" up "$mode" >"$out/testbed-$mode.log" 2>&1 || {
      echo "demo.sh: testbed up $mode failed:" >&2; cat "$out/testbed-$mode.log" >&2; exit 1; }
    # shellcheck disable=SC1090
    source <("$here/testbed.sh" env)
    logs="$out/$mode/logs"
    mkdir -p "$logs"
    start_worker "$CLIENT_NS" "$CLIENT_IP:7000" node1 "$mode" "$logs/client.log"
    start_worker "$SERVER_NS" "$SERVER_IP:7000" node2 "$mode" "$logs/server.log"
    if [ "$mode" = hostnet ]; then
      # Two hostNetwork pods on one node share the node's address.
      same="$CLIENT_IP:7001"
      start_worker "$CLIENT_NS" "$same" node1 "$mode" "$logs/same-node.log"
    else
      same="$SAME_NODE_SERVER_IP:7000"
      start_worker "$SAME_NODE_SERVER_NS" "$same" node1 "$mode" "$logs/same-node.log"
    fi
    # The coordinator runs on node1, like a coordinator pod on a node.
    run_coordinator "$NODE1_NS" "$out/$mode" "$CLIENT_IP:7000,$SERVER_IP:7000,$same"
    dirs+=("$out/$mode")
    cleanup
  done
else
  echo "==> NOTE: no root or no network namespaces here: running on loopback workers"
  echo "    (127.0.0.2 / 127.0.0.3); this compares nothing but shows the tool working."
  logs="$out/loopback/logs"
  mkdir -p "$logs"
  start_worker - 127.0.0.2:7000 node1 loopback "$logs/client.log"
  start_worker - 127.0.0.3:7000 node2 loopback "$logs/server.log"
  start_worker - 127.0.0.2:7001 node1 loopback "$logs/same-node.log"
  run_coordinator - "$out/loopback" "127.0.0.2:7000,127.0.0.3:7000,127.0.0.2:7001"
  dirs+=("$out/loopback")
fi

echo
echo "==> comparison across datapaths"
"$bin/cnibench" compare "${dirs[@]}" --out "$out"
echo "==> all results in $out"
