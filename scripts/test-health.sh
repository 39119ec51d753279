#!/usr/bin/env bash
# test-health.sh - datapath health on the testbed: a tcp-stream over a clean
# underlay reports TCP retransmits under 0.1% of segments and no retransmit
# flag; with an nft rule on node1's underlay dropping 1% of packets
# (numgen random mod 100 < 1 drop, in the testbed's own namespace, removed
# afterwards) it reports them above 0.5% and flags them. Needs root; runs under
# flock /tmp/cnb-netns.lock (other tests use namespaces too) on its own testbed
# (--name hl); cleans up on any exit. Reads sysctls, never writes one.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export ROOT
ROOT=$(dirname "$here")
# shellcheck source=lib/workers.sh
source "$here/lib/workers.sh"

if [ -z "${CNIBENCH_HEALTH_LOCKED:-}" ]; then
  export CNIBENCH_HEALTH_LOCKED=1
  exec flock /tmp/cnb-netns.lock "$0" "$@"
fi

NAME=${CNIBENCH_HEALTH_TESTBED:-hl}
testbed() { "$here/testbed.sh" --name "$NAME" "$@"; }
out=$(mktemp -d /tmp/cnibench-health.XXXXXX)
cleanup() {
  stop_workers
  if [ -n "${NODE1_NS:-}" ]; then
    ip netns exec "$NODE1_NS" nft delete table inet cnbhealth 2>/dev/null || true
  fi
  testbed down >/dev/null 2>&1 || true
  if [ "${KEEP:-0}" = 1 ]; then echo "kept $out" >&2; else rm -rf "$out"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

build_release
new_token "$out/token"
testbed up host-gw >"$out/testbed.log" 2>&1 || { cat "$out/testbed.log"; exit 1; }
# shellcheck disable=SC1090
source <(testbed env)
start_worker "$CLIENT_NS" "$CLIENT_IP:7000" node1 host-gw "$out/token" "$out/client.log"
start_worker "$SERVER_NS" "$SERVER_IP:7000" node2 host-gw "$out/token" "$out/server.log"
cat >"$out/plan.yaml" <<'PLAN'
name: health
scenarios:
  - { name: stream, traffic: tcp-stream, path: pod-to-pod-cross-node, duration: 4s, warmup: 500ms, interval: 1s }
PLAN

# run DIR: one run of the plan into DIR.
run() {
  ip netns exec "$NODE1_NS" timeout 60 "$BIN/cnibench" run "$out/plan.yaml" \
    --workers "$CLIENT_IP:7000,$SERVER_IP:7000" --token-file "$out/token" --out "$1" \
    >"$1.log" 2>&1 || { cat "$1.log"; return 1; }
}

run "$out/clean"
ip netns exec "$NODE1_NS" nft -f - <<'NFT'
table inet cnbhealth {
  chain out {
    type filter hook postrouting priority 0; policy accept;
    oifname "eth0" numgen random mod 100 < 1 drop
  }
}
NFT
run "$out/lossy"
ip netns exec "$NODE1_NS" nft delete table inet cnbhealth

python3 - "$out/clean/result.json" "$out/lossy/result.json" <<'PY'
import json, sys
def rep(p):
    return json.load(open(p))["scenarios"][0]["repetitions"][0]
clean, lossy = rep(sys.argv[1]), rep(sys.argv[2])
failed = 0
def check(ok, what):
    global failed
    print(("PASS " if ok else "FAIL ") + what)
    failed += not ok
def pct(r):
    return (r.get("health") or {}).get("tcp_retransmit_pct")
def flagged(r):
    return [f for f in r["flags"] if "TCP retransmitted" in f]
c, l = pct(clean), pct(lossy)
check(c is not None and c < 0.1, f"clean underlay: {c}% retransmitted (< 0.1%)")
check(not flagged(clean), f"clean underlay: no retransmit flag {flagged(clean)}")
check(l is not None and l > 0.5, f"1% dropped on the underlay: {l}% retransmitted (> 0.5%)")
check(bool(flagged(lossy)), f"1% dropped: flagged {flagged(lossy)}")
s = (lossy["health"] or {}).get("tcp_retransmits") or 0
check(s > 0 and all(i.get("health") for i in lossy["intervals"]), f"{s} retransmits, every interval has health")
print(f"{5 - failed} passed, {failed} failed")
sys.exit(1 if failed else 0)
PY
