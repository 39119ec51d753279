#!/usr/bin/env bash
# demo.sh - the main job: build cnibench, bring up one local CNI testbed per
# datapath (hostnet, host-gw, vxlan; named testbeds, all up at once), run the
# plan's repetitions round-robin across them (round 1: each datapath once, round
# 2: ..., the order rotating each round) so that whatever drifts on the machine
# is spread over every column, tear down, and compare the datapaths in one
# table (each column pools its rounds).
#
#   scripts/demo.sh [--plan FILE] [--out DIR] [--modes "hostnet host-gw vxlan"]
#                   [--rounds N] [--name PREFIX]
#
# Each round runs every scenario once per datapath (`cnibench run
# --repetitions 1`), into DIR/<datapath>/round-<k>. --rounds (default 5, the
# fewest a significance test on repetitions needs) replaces the plan's
# repetitions. --name prefixes the testbeds (namespaces cnb-PREFIX-<mode>-*),
# default "demo".
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
rounds=5
name=demo

usage() {
  echo "usage: $0 [--plan FILE] [--out DIR] [--modes \"hostnet host-gw vxlan\"] [--rounds N] [--name PREFIX]" >&2
  exit 64
}
while [ $# -gt 0 ]; do
  case "$1" in
    --plan) [ $# -ge 2 ] || usage; plan=$2; shift 2 ;;
    --out) [ $# -ge 2 ] || usage; out=$2; shift 2 ;;
    --modes) [ $# -ge 2 ] || usage; modes=$2; shift 2 ;;
    --rounds) [ $# -ge 2 ] || usage; rounds=$2; shift 2 ;;
    --name) [ $# -ge 2 ] || usage; name=$2; shift 2 ;;
    -h|--help) usage ;;
    *) echo "demo.sh: unknown argument '$1'" >&2; usage ;;
  esac
done
[ -f "$plan" ] || { echo "demo.sh: plan file '$plan' not found" >&2; exit 64; }
[[ $rounds =~ ^[1-9][0-9]{0,2}$ ]] || { echo "demo.sh: --rounds must be 1..999 (got '$rounds')" >&2; exit 64; }
[[ $name =~ ^[a-z0-9][a-z0-9-]{0,6}$ ]] || { echo "demo.sh: --name must be 1-7 of a-z, 0-9 and '-' (got '$name')" >&2; exit 64; }

export ROOT=$root
# shellcheck source=lib/workers.sh
source "$here/lib/workers.sh"
echo "==> building cnibench (release)"
build_release
mkdir -p "$out"
token="$out/token"
new_token "$token"

up_modes=()
cleanup() {
  stop_workers
  local m
  for m in "${up_modes[@]}"; do
    "$here/testbed.sh" --name "$name-$m" down >/dev/null 2>&1 || true
  done
  up_modes=()
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# run_coordinator NS|- OUTDIR WORKERS [ARGS...]: run the plan; a degraded run
# (exit 1) is reported but does not stop the demo.
run_coordinator() {
  local ns=$1 dir=$2 workers=$3 rc=0
  shift 3
  local cmd=("$BIN/cnibench" run "$plan" --workers "$workers" --token-file "$token" --out "$dir" "$@")
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
  declare -A coord_ns worker_list
  for mode in $modes; do
    echo "==> datapath $mode: testbed $name-$mode up"
    up_modes+=("$mode")
    "$here/testbed.sh" --name "$name-$mode" up "$mode" >"$out/testbed-$mode.log" 2>&1 || {
      echo "demo.sh: testbed up $mode failed:" >&2; cat "$out/testbed-$mode.log" >&2; exit 1; }
    # shellcheck disable=SC1090
    source <("$here/testbed.sh" --name "$name-$mode" env)
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
    coord_ns[$mode]=$NODE1_NS
    worker_list[$mode]="$CLIENT_IP:7000,$SERVER_IP:7000,$same"
  done
  read -r -a order <<<"$modes"
  for ((r = 1; r <= rounds; r++)); do
    # Rotate the order each round, so no datapath always runs first.
    for ((i = 0; i < ${#order[@]}; i++)); do
      mode=${order[$(((i + r - 1) % ${#order[@]}))]}
      echo "==> round $r of $rounds: $mode"
      run_coordinator "${coord_ns[$mode]}" "$out/$mode/round-$r" "${worker_list[$mode]}" --repetitions 1
      dirs+=("$out/$mode/round-$r")
    done
  done
  cleanup
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
