#!/usr/bin/env bash
# bench-scale.sh - coordinator cost of fan-in: N workers (default 1000, in-process
# control servers on 127.0.0.2) stream 1 s intervals to one cnibench process;
# prints the coordinator's CPU time per interval report. A benchmark, not a test:
# nothing is asserted about speed.
#   scripts/bench-scale.sh [WORKERS]
set -euo pipefail
cd "$(dirname "$0")/.."
workers=${1:-1000}
case "$workers" in ''|*[!0-9]*) echo "usage: $0 [WORKERS]" >&2; exit 64 ;; esac
ulimit -n 65536 2>/dev/null || true
CNIBENCH_SCALE_WORKERS=$workers cargo test --release --locked -q -p cnibench-coordinator --test scale -- --nocapture 2>&1 \
  | grep -E '^scale:|test result'
