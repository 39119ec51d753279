# shellcheck shell=bash
# Shared by scripts that run cnibench on the testbed: build, token, and worker
# processes inside namespaces. Source it after setting ROOT (the repository).
# Callers own cleanup: call stop_workers (and testbed.sh down) from their trap.

# build_release: release binaries into $BIN; with $CNIBENCH_BIN set, use the
# binaries there instead (to compare two builds).
build_release() {
  if [ -n "${CNIBENCH_BIN:-}" ]; then BIN=$CNIBENCH_BIN; return; fi
  (cd "$ROOT" && cargo build --release --locked --quiet -p cnibench-worker -p cnibench-coordinator)
  BIN="$ROOT/target/release"
}

# new_token FILE: a fresh shared token.
new_token() {
  head -c 32 /dev/urandom | base64 > "$1"
  chmod 600 "$1"
}

WORKER_PIDS=()

# start_worker NS|- ADDR NODE LABEL TOKEN LOG: start a worker (inside NS unless
# '-') and wait until it listens.
start_worker() {
  local ns=$1 addr=$2 node=$3 label=$4 token=$5 log=$6
  local cmd=("$BIN/cnibench-worker" --listen "$addr" --token-file "$token" --node "$node" --cni "$label")
  if [ "$ns" = - ]; then "${cmd[@]}" 2>"$log" & else ip netns exec "$ns" "${cmd[@]}" 2>"$log" & fi
  WORKER_PIDS+=("$!")
  local _
  for _ in $(seq 50); do
    grep -q "listening on" "$log" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "worker $addr did not start; its log:" >&2
  cat "$log" >&2
  return 1
}

# stop_workers: kill every worker started here and wait for them.
stop_workers() {
  local p
  for p in "${WORKER_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${WORKER_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  WORKER_PIDS=()
}
