#!/usr/bin/env bash
# bench-peers.sh - cnibench against the reference tools on the same path, in the
# same run, alternating peer and cnibench REPS times; prints medians and the ratio
# cnibench/peer. A benchmark: it asserts nothing about speed.
#
#   scripts/bench-peers.sh [--path host-gw|loopback] [--reps N] [--seconds S]
#                          [--only PAIR,...]
#
# Pairs: TCP single stream vs iperf3 (Gbit/s, and process CPU per Gbit/s), TCP
# request/response latency vs sockperf ping-pong (p50/p99 round trip), UDP at an
# equal offered rate vs iperf3 -u (loss, jitter). Worker peak RSS is reported.
# HTTP clients against the same nginx: cnibench http1 (32 connections, full
# latency histograms) vs wrk -t1 -c32, cnibench http2 (32 connections x 10
# streams) vs h2load -c32 -m10 (requests/s; cnibench as path pod-to-external,
# on one thread like the peers: threads: 1).
# HTTP servers under the same load generator: cnibench's http1 server vs nginx
# under wrk -t1 -c32, its http2 server vs nginx (h2c) under h2load -c32 -m10
# (requests/s; cnibench's server runs standalone: cnibench-worker serve).
# --only runs some of the pairs (tcp, rr, udp, http1, http2; default all).
# Path host-gw (default as root) runs client and server in the testbed pods
# cnb-pod-a and cnb-pod-c across the emulated nodes; loopback uses 127.0.0.2/.3.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export ROOT
ROOT=$(dirname "$here")
# shellcheck source=lib/workers.sh
source "$here/lib/workers.sh"

pairs=(tcp rr udp http1 http2)
path=host-gw; reps=3; secs=5; only=$(IFS=,; echo "${pairs[*]}")
[ "$(id -u)" = 0 ] || path=loopback
usage() { echo "usage: $0 [--path host-gw|loopback] [--reps N] [--seconds S] [--only $only]" >&2; exit 64; }
while [ $# -gt 0 ]; do
  case "$1" in
    --path) [ $# -ge 2 ] || usage; path=$2; shift 2 ;;
    --reps) [ $# -ge 2 ] || usage; reps=$2; shift 2 ;;
    --seconds) [ $# -ge 2 ] || usage; secs=$2; shift 2 ;;
    --only) [ $# -ge 2 ] || usage; only=$2; shift 2 ;;
    *) usage ;;
  esac
done
case "$path" in host-gw|loopback) ;; *) usage ;; esac
case "$reps$secs" in *[!0-9]*|'') usage ;; esac
for p in ${only//,/ }; do case " ${pairs[*]} " in *" $p "*) ;; *) usage ;; esac; done

need=()
for t in iperf3 sockperf python3 nginx wrk h2load; do
  command -v "$t" >/dev/null || need+=("$t")
done
need=("${need[@]/#h2load/nghttp2-client}")
if [ "${#need[@]}" -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

out=$(mktemp -d /tmp/cnibench-peers.XXXXXX)
testbed=0
PEERS=()
cleanup() {
  stop_workers
  local p
  for p in "${PEERS[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ "$testbed" = 1 ]; then "$here/testbed.sh" down >/dev/null 2>&1 || true; fi
  rm -rf "$out"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

build_release
new_token "$out/token"
if [ "$path" = host-gw ]; then
  testbed=1
  "$here/testbed.sh" up host-gw >"$out/testbed.log" 2>&1 || { cat "$out/testbed.log"; exit 1; }
  # shellcheck disable=SC1090
  source <("$here/testbed.sh" env)
  cli_ns=$CLIENT_NS; srv_ns=$SERVER_NS; cli_ip=$CLIENT_IP; srv_ip=$SERVER_IP; coord_ns=$NODE1_NS
else
  cli_ns=-; srv_ns=-; cli_ip=127.0.0.2; srv_ip=127.0.0.3; coord_ns=-
fi
in_ns() { local ns=$1; shift; if [ "$ns" = - ]; then "$@"; else ip netns exec "$ns" "$@"; fi; }

start_worker "$cli_ns" "$cli_ip:7000" node1 "$path" "$out/token" "$out/client.log"
start_worker "$srv_ns" "$srv_ip:7000" node2 "$path" "$out/token" "$out/server.log"

# cnib NAME YAML-SCENARIO: run one scenario, result in $out/NAME.json
cnib() {
  printf 'name: peers\nscenarios:\n  - %s\n' "$2" >"$out/$1.yaml"
  in_ns "$coord_ns" timeout 120 "$BIN/cnibench" run "$out/$1.yaml" --workers "$cli_ip:7000,$srv_ip:7000" \
    --token-file "$out/token" --out "$out/$1" >"$out/$1.log" 2>&1 || true
  cp "$out/$1/result.json" "$out/$1.json" 2>/dev/null || true
}

# peer_server NS CMD...: start a peer's server in the background as $peer.
peer_server() {
  local ns=$1; shift
  in_ns "$ns" "$@" >/dev/null 2>&1 &
  peer=$!
  PEERS+=("$peer")
  sleep 0.3
}

# One function per pair; argument: the round.
pair_tcp() {
  local i=$1
  # TCP single stream.
  peer_server "$srv_ns" timeout $((secs + 30)) iperf3 -s -B "$srv_ip" -p 5201 -1
  in_ns "$cli_ns" timeout $((secs + 20)) iperf3 -c "$srv_ip" -p 5201 -t "$secs" -J >"$out/iperf-tcp-$i.json" || true
  wait "$peer" || true
  cnib "cnb-tcp-$i" "{ name: s, traffic: tcp-stream, path: pod-to-pod-cross-node, duration: ${secs}s, warmup: 0s }"
}

pair_rr() {
  local i=$1
  # TCP request/response latency (14-byte messages, one connection).
  peer_server "$srv_ns" timeout $((secs + 30)) sockperf sr --tcp -i "$srv_ip" -p 11111
  in_ns "$cli_ns" timeout $((secs + 20)) sockperf pp --tcp -i "$srv_ip" -p 11111 -t "$secs" --full-rtt -m 14 >"$out/sockperf-$i.txt" 2>&1 || true
  kill "$peer" 2>/dev/null || true
  wait "$peer" 2>/dev/null || true
  cnib "cnb-rr-$i" "{ name: r, traffic: tcp-rr, path: pod-to-pod-cross-node, duration: ${secs}s, warmup: 500ms, request_size: 14, response_size: 14 }"
}

# HTTP: both servers answer 200 with the same 13-byte body.
body=0123456789ab
nginx_conf() {
  cat >"$out/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $out/nginx.pid;
error_log $out/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $out/nginx-tmp;
  proxy_temp_path $out/nginx-tmp;
  fastcgi_temp_path $out/nginx-tmp;
  uwsgi_temp_path $out/nginx-tmp;
  scgi_temp_path $out/nginx-tmp;
  keepalive_requests 100000000; # HTTP/1.1 and HTTP/2: never close a client
  default_type application/octet-stream;
  server { listen $srv_ip:8080; location / { return 200 "$body\n"; } }
  server { listen $srv_ip:8081 http2; location / { return 200 "$body\n"; } }
}
EOF
}

# http_pair NAME PORT ROUND CNIB-FIELDS CLIENT...: nginx under CLIENT (the URL
# appended), then under cnibench's NAME client with CNIB-FIELDS; then
# cnibench's server under CLIENT. Outputs in $out/NAME-{nginx,cnb}-ROUND.txt
# and $out/cnb-NAME-client-ROUND.json.
http_pair() {
  local name=$1 port=$2 i=$3 fields=$4; shift 4
  peer_server "$srv_ns" timeout $((2 * secs + 40)) nginx -c "$out/nginx.conf"
  in_ns "$cli_ns" timeout $((secs + 20)) "$@" "http://$srv_ip:$port/" >"$out/$name-nginx-$i.txt" 2>&1 || true
  cnib "cnb-$name-client-$i" "{ name: c, traffic: $name, path: pod-to-external, target: '$srv_ip:$port', duration: ${secs}s, warmup: 500ms, $fields }"
  kill "$peer" 2>/dev/null || true
  wait "$peer" 2>/dev/null || true
  local log="$out/$name-serve-$i.log"
  in_ns "$srv_ns" "$BIN/cnibench-worker" serve "$name" --listen "$srv_ip" \
    --duration $((secs + 30))s --response-size $((${#body} + 1)) 2>"$log" &
  peer=$!
  PEERS+=("$peer")
  local addr='' _
  for _ in $(seq 50); do
    addr=$(sed -n 's/.*serving [a-z0-9-]* on \([^ ]*\).*/\1/p' "$log")
    [ -n "$addr" ] && break
    sleep 0.1
  done
  in_ns "$cli_ns" timeout $((secs + 20)) "$@" "http://$addr/" >"$out/$name-cnb-$i.txt" 2>&1 || true
  kill "$peer" 2>/dev/null || true
  wait "$peer" 2>/dev/null || true
}

pair_http1() {
  http_pair http1 8080 "$1" "connections: 32, threads: 1" wrk -t1 -c32 -d"${secs}s"
}

pair_http2() {
  http_pair http2 8081 "$1" "connections: 32, streams: 10, threads: 1" h2load -c32 -m10 -D "$secs"
}

pair_udp() {
  local i=$1
  # UDP at an equal offered rate.
  peer_server "$srv_ns" timeout $((secs + 30)) iperf3 -s -B "$srv_ip" -p 5202 -1
  in_ns "$cli_ns" timeout $((secs + 20)) iperf3 -c "$srv_ip" -p 5202 -u -b 500M -l 1400 -t "$secs" -J >"$out/iperf-udp-$i.json" || true
  wait "$peer" || true
  cnib "cnb-udp-$i" "{ name: u, traffic: udp-stream, path: pod-to-pod-cross-node, duration: ${secs}s, warmup: 0s, rate: 500Mbit/s, message_size: 1400 }"
}

mkdir -p "$out/nginx-tmp"
nginx_conf
for i in $(seq "$reps"); do
  echo "==> round $i/$reps" >&2
  for p in ${only//,/ }; do "pair_$p" "$i"; done
done

rss() { awk '/VmHWM/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
rss_kib=0
for p in "${WORKER_PIDS[@]}"; do
  for c in $(pgrep -P "$p" 2>/dev/null) "$p"; do
    r=$(rss "$c"); [ "${r:-0}" -gt "$rss_kib" ] && rss_kib=$r
  done
done

python3 - "$out" "$reps" "$path" "$rss_kib" <<'PY'
import json, re, statistics, sys
out, reps, path, rss = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
def j(name):
    try:
        return json.load(open(f"{out}/{name}"))
    except Exception:
        return None
def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None
def rep(r):
    return r["scenarios"][0]["repetitions"][0] if r else None
rows = []
def row(what, peer_name, peer, ours, higher_better=True, fmt="{:.2f}"):
    if peer is None and ours is None:
        return
    ratio = (ours / peer) if peer and ours is not None else None
    show = lambda v: "n/a" if v is None else fmt.format(v)
    rows.append((what, peer_name, show(peer), show(ours), "n/a" if ratio is None else f"{ratio:.2f}"))

it = [j(f"iperf-tcp-{i}.json") for i in range(1, reps + 1)]
ct = [rep(j(f"cnb-tcp-{i}.json")) for i in range(1, reps + 1)]
gbps_p = med([x["end"]["sum_received"]["bits_per_second"] / 1e9 for x in it if x and "end" in x and "sum_received" in x["end"]])
gbps_c = med([r["throughput_bps"] / 1e9 for r in ct if r and r["throughput_bps"]])
row("TCP stream Gbit/s", "iperf3", gbps_p, gbps_c)
cpu_p = med([(x["end"]["cpu_utilization_percent"]["host_total"] + x["end"]["cpu_utilization_percent"]["remote_total"]) / 100 /
             (x["end"]["sum_received"]["bits_per_second"] / 1e9) for x in it if x and "end" in x and "cpu_utilization_percent" in x["end"]])
cpu_c = med([((r["cpu"] or {}).get("client_process_cores") or 0) + ((r["cpu"] or {}).get("server_process_cores") or 0) for r in ct if r and r["throughput_bps"]])
cpu_c = cpu_c / gbps_c if cpu_c and gbps_c else None
row("TCP stream process cores per Gbit/s (lower is better)", "iperf3", cpu_p, cpu_c, False, "{:.3f}")

def sock(i):
    try:
        t = open(f"{out}/sockperf-{i}.txt").read()
    except Exception:
        return None, None
    p = {m.group(1): float(m.group(2)) for m in re.finditer(r"percentile (\d+\.\d+) =\s+([\d.]+)", t)}
    return p.get("50.000"), p.get("99.000")
sp = [sock(i) for i in range(1, reps + 1)]
cr = [rep(j(f"cnb-rr-{i}.json")) for i in range(1, reps + 1)]
row("TCP RR p50 round trip us (lower is better)", "sockperf", med([a for a, _ in sp]), med([r["latency_ns"]["p50"] / 1e3 for r in cr if r and r["latency_ns"]]), False, "{:.1f}")
row("TCP RR p99 round trip us (lower is better)", "sockperf", med([b for _, b in sp]), med([r["latency_ns"]["p99"] / 1e3 for r in cr if r and r["latency_ns"]]), False, "{:.1f}")

iu = [j(f"iperf-udp-{i}.json") for i in range(1, reps + 1)]
cu = [rep(j(f"cnb-udp-{i}.json")) for i in range(1, reps + 1)]
row("UDP 500 Mbit/s loss %", "iperf3 -u", med([x["end"]["sum"]["lost_percent"] for x in iu if x and "end" in x]), med([r["udp"]["loss_pct"] for r in cu if r and r["udp"]]), False, "{:.3f}")
row("UDP 500 Mbit/s jitter us", "iperf3 -u", med([x["end"]["sum"]["jitter_ms"] * 1e3 for x in iu if x and "end" in x]), med([r["udp"]["jitter_ns"] / 1e3 for r in cu if r and r["udp"] and r["udp"]["jitter_ns"] is not None]), False, "{:.1f}")
row("UDP 500 Mbit/s sender process cores (lower is better)", "iperf3 -u", med([x["end"]["cpu_utilization_percent"]["host_total"] / 100 for x in iu if x and "end" in x and "cpu_utilization_percent" in x["end"]]),
    med([(r["cpu"] or {}).get("client_process_cores") for r in cu if r]), False, "{:.2f}")

def rps(name, who, pattern):
    vals = []
    for i in range(1, reps + 1):
        try:
            m = re.search(pattern, open(f"{out}/{name}-{who}-{i}.txt").read())
        except Exception:
            m = None
        vals.append(float(m.group(1)) if m else None)
    return med(vals)
wrk_re = r"Requests/sec:\s+([\d.]+)"
h2_re = r"finished in [\d.]+s, ([\d.]+) req/s"
def client_rps(name):
    return med([r["requests_per_s"] for r in (rep(j(f"cnb-{name}-client-{i}.json")) for i in range(1, reps + 1))
                if r and r["status"] == "ok" and r["requests_per_s"]])
row("HTTP/1.1 client requests/s against nginx, 32 connections", "wrk -t1 -c32", rps("http1", "nginx", wrk_re), client_rps("http1"), True, "{:.0f}")
row("HTTP/2 client requests/s against nginx, 32 x 10 streams", "h2load -c32 -m10", rps("http2", "nginx", h2_re), client_rps("http2"), True, "{:.0f}")
row("HTTP/1.1 server requests/s under wrk -t1 -c32", "nginx", rps("http1", "nginx", wrk_re), rps("http1", "cnb", wrk_re), True, "{:.0f}")
row("HTTP/2 server requests/s under h2load -c32 -m10", "nginx", rps("http2", "nginx", h2_re), rps("http2", "cnb", h2_re), True, "{:.0f}")

print(f"\ncnibench vs peers, path {path}, {reps} alternating rounds, medians\n")
print("| measure | peer | peer | cnibench | cnibench/peer |")
print("|---|---|---:|---:|---:|")
for r in rows:
    print("| " + " | ".join(r) + " |")
print(f"\nworker peak RSS: {rss / 1024:.1f} MiB")
PY
