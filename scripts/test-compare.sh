#!/usr/bin/env bash
# test-compare.sh - CI check of the main job's machinery: run a short plan on the
# testbed for host-gw and vxlan (scripts/demo.sh), then check that the comparison
# has both columns, a value in every cell and no repetition that is not ok.
# Needs root (network namespaces).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$(mktemp -d /tmp/cnibench-test-compare.XXXXXX)
trap 'rm -rf "$out"' EXIT
"$here/demo.sh" --modes "host-gw vxlan" --rounds 2 --name ci --plan "$here/../plans/ci-compare.yaml" --out "$out" >"$out/demo.log" 2>&1 || {
  echo "FAIL demo.sh exited non-zero"; tail -40 "$out/demo.log"; echo "0 passed, 1 failed"; exit 1; }
python3 - "$out/compare.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
failed = 0
def check(ok, what):
    global failed
    print(("ok   " if ok else "FAIL ") + what)
    failed += not ok
check(c["columns"] == ["host-gw", "vxlan"] or sorted(c["columns"]) == ["host-gw", "vxlan"], f"columns {c['columns']}")
check(len(c["rows"]) >= 3, f"{len(c['rows'])} rows")
for r in c["rows"]:
    cells = r["cells"]
    check(all(x is not None for x in cells), f"{r['scenario']} {r['metric']}: a value per column")
    check(all(x is None or x["not_ok"] == 0 for x in cells), f"{r['scenario']} {r['metric']}: no failed or partial repetition")
print(f"{2 + 2 * len(c['rows']) - failed} passed, {failed} failed")
sys.exit(1 if failed else 0)
PY
