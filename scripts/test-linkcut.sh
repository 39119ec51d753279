#!/usr/bin/env bash
# test-linkcut.sh - cut the testbed underlay for 2 s in the middle of a run: the
# run must end on time, report the outage as intervals without progress (not as
# zeros passed off as measurements, and not by hanging), and TCP must recover
# once the link is back. Needs root; cleans up the testbed on any exit.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export ROOT
ROOT=$(dirname "$here")
# shellcheck source=lib/workers.sh
source "$here/lib/workers.sh"

out=$(mktemp -d /tmp/cnibench-linkcut.XXXXXX)
cleanup() {
  stop_workers
  "$here/testbed.sh" down >/dev/null 2>&1 || true
  if [ "${KEEP:-0}" = 1 ]; then echo "kept $out" >&2; else rm -rf "$out"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

build_release
new_token "$out/token"
"$here/testbed.sh" up host-gw >"$out/testbed.log" 2>&1 || { cat "$out/testbed.log"; exit 1; }
# shellcheck disable=SC1090
source <("$here/testbed.sh" env)
start_worker "$CLIENT_NS" "$CLIENT_IP:7000" node1 host-gw "$out/token" "$out/client.log"
start_worker "$SERVER_NS" "$SERVER_IP:7000" node2 host-gw "$out/token" "$out/server.log"
cat >"$out/plan.yaml" <<'PLAN'
name: linkcut
scenarios:
  - { name: stream, traffic: tcp-stream, path: pod-to-pod-cross-node, duration: 10s, warmup: 0s, interval: 500ms }
PLAN

started=$(date +%s)
ip netns exec "$NODE1_NS" timeout 60 "$BIN/cnibench" run "$out/plan.yaml" \
  --workers "$CLIENT_IP:7000,$SERVER_IP:7000" --token-file "$out/token" --out "$out/run" \
  >"$out/run.log" 2>&1 &
coordinator=$!
# 0.5 s start lead + 3 s of traffic, then 2 s without the underlay.
sleep 3.5
ip -n "$NODE1_NS" link set eth0 down
sleep 2
ip -n "$NODE1_NS" link set eth0 up
# Taking a link down flushes the routes through it; a CNI agent (flanneld in
# host-gw mode) re-programs its route to the other node's pod CIDR, as here.
ip -n "$NODE1_NS" route replace "${POD_C_IP%.*}.0/24" via "$NODE2_IP" dev eth0
rc=0
wait "$coordinator" || rc=$?
elapsed=$(( $(date +%s) - started ))

python3 - "$out/run/result.json" "$rc" "$elapsed" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
rc, elapsed = int(sys.argv[2]), int(sys.argv[3])
rep = r["scenarios"][0]["repetitions"][0]
iv = [i for i in rep["intervals"] if not i["warmup"]]
failed = 0
def check(ok, what):
    global failed
    print(("PASS " if ok else "FAIL ") + what)
    failed += not ok
check(elapsed <= 20, f"run ended by itself in {elapsed}s (10s scenario)")
check(rc == 0 and rep["status"] == "ok", f"exit code {rc}, status {rep['status']}: a 2 s flap does not lose the run")
stalls = [f for f in rep["flags"] if "no progress" in f]
check(len(stalls) >= 2, f"outage reported as {len(stalls)} intervals without progress: {stalls}")
check(all((i["throughput_bps"] or 0) > 0 for i in iv[:5]), "traffic flowed before the cut")
check((iv[-1]["throughput_bps"] or 0) > 1e8 and (iv[-2]["throughput_bps"] or 0) > 1e8, "TCP recovered after the link came back")
check(len(iv) == 20, f"all {len(iv)} intervals reported")
print(f"{6 - failed} passed, {failed} failed")
sys.exit(1 if failed else 0)
PY
