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
# shellcheck source-path=SCRIPTDIR
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

export ROOT=$root
# shellcheck source=lib/workers.sh
source "$here/lib/workers.sh"
echo "==> building cnibench (release)"
build_release
mkdir -p "$out"
token="$out/token"
new_token "$token"

testbed_up=0
cleanup() {
  stop_workers
  if [ "$testbed_up" = 1 ]; then "$here/testbed.sh" down >/dev/null 2>&1 || true; testbed_up=0; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# run_coordinator NS|- OUTDIR WORKERS: run the plan; a degraded run (exit 1) is
# reported but does not stop the demo.
run_coordinator() {
  local ns=$1 dir=$2 workers=$3 rc=0
  local cmd=("$BIN/cnibench" run "$plan" --workers "$workers" --token-file "$token" --out "$dir")
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
    start_worker "$CLIENT_NS" "$CLIENT_IP:7000" node1 "$mode" "$token" "$logs/client.log"
    start_worker "$SERVER_NS" "$SERVER_IP:7000" node2 "$mode" "$token" "$logs/server.log"
    if [ "$mode" = hostnet ]; then
      # Two hostNetwork pods on one node share the node's address.
      same="$CLIENT_IP:7001"
      start_worker "$CLIENT_NS" "$same" node1 "$mode" "$token" "$logs/same-node.log"
    else
      same="$SAME_NODE_SERVER_IP:7000"
      start_worker "$SAME_NODE_SERVER_NS" "$same" node1 "$mode" "$token" "$logs/same-node.log"
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
  start_worker - 127.0.0.2:7000 node1 loopback "$token" "$logs/client.log"
  start_worker - 127.0.0.3:7000 node2 loopback "$token" "$logs/server.log"
  start_worker - 127.0.0.2:7001 node1 loopback "$token" "$logs/same-node.log"
  run_coordinator - "$out/loopback" "127.0.0.2:7000,127.0.0.3:7000,127.0.0.2:7001"
  dirs+=("$out/loopback")
fi

echo
echo "==> comparison across datapaths"
"$BIN/cnibench" compare "${dirs[@]}" --out "$out"
echo "==> all results in $out"
