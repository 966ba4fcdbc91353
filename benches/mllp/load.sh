#!/usr/bin/env bash
# MLLP load over loopback: `xenrad mllp load` sends the framed 10k-message corpus
# stop-and-wait on 1 connection and on 64 connections, first to `xenrad mllp listen`
# (Hl7Handler: parse, key store without durability, ACK built with xenrad-hl7v2), then to
# python-hl7's asyncio MLLP server (the peer: same client, same run).
#
# Besides throughput and ACK latency it reports the CPU time each side spent per message
# (server: utime+stime of the listener process from /proc/PID/stat over the run; client:
# bash `time` of the load process), so the server's own cost is separated from the load
# generator's on a machine where both share the cores, and projects the server-only
# capacity: 1e6 / server_cpu_us_per_msg messages per second per core the server gets.
#
# Optionally (PIN=1, needs taskset and 2 CPUs) a third xenrad run with the listener pinned
# to CPU 0 and the client to CPU 1, one tokio worker each: throughput with one dedicated
# core per side.
#
#   benches/mllp/load.sh [N1 [N64 [NPY]]]   messages: 1-conn runs (10000), 64-conn xenrad
#                                           runs (100000), python-hl7 runs (2000 each)
# Env: XENRAD_BIN (a prebuilt `xenrad`), XENRAD_PYTHON (from scripts/peers.sh; peer skipped
# if unset), PIN=1.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
n1="${1:-10000}"
n64="${2:-100000}"
npy="${3:-2000}"
corpus="$root/../shared/corpus/hl7v2/generated/hl7v2_gen_n10000_seed42.mllp"
[ -f "$corpus" ] || { echo "load: corpus missing: $corpus" >&2; exit 1; }
if [ -z "${XENRAD_BIN:-}" ]; then
  (cd "$root" && cargo build -q --release -p xenrad-cli --bin xenrad)
  XENRAD_BIN="${CARGO_TARGET_DIR:-$root/target}/release/xenrad"
fi
tck=$(getconf CLK_TCK)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" <<<"$2"; }
# CPU seconds (user+system, all threads) a live process has used so far.
proc_cpu() { awk -v t="$tck" '{ printf "%.2f", ($14 + $15) / t }' "/proc/$1/stat"; }

# run SERVER_PID PORT CONNECTIONS COUNT [taskset prefix...]: one load run; prints the
# client's result line plus server_cpu_us_per_msg and client_cpu_us_per_msg.
run() {
  local spid=$1 port=$2 c=$3 n=$4; shift 4
  local s0 s1 out cpu TIMEFORMAT='%U %S'
  s0=$(proc_cpu "$spid")
  cpu=$( { time "$@" "$XENRAD_BIN" mllp load "127.0.0.1:$port" "$corpus" -c "$c" -n "$n" >/tmp/mllp-load.$$; } 2>&1 )
  s1=$(proc_cpu "$spid")
  out=$(cat /tmp/mllp-load.$$); rm -f /tmp/mllp-load.$$
  awk -v o="$out" -v s0="$s0" -v s1="$s1" -v cpu="$cpu" -v n="$n" 'BEGIN {
    split(cpu, u, " ");
    printf "%s server_cpu_us_per_msg=%.1f client_cpu_us_per_msg=%.1f\n", o, (s1 - s0) * 1e6 / n, (u[1] + u[2]) * 1e6 / n }'
}

port=$((20000 + RANDOM % 20000))
"$XENRAD_BIN" mllp listen --port "$port" --seconds 3600 2>/dev/null &
lpid=$!
pids+=($lpid)
wait_port "$port"
"$XENRAD_BIN" mllp load "127.0.0.1:$port" "$corpus" -c 64 -n 2000 >/dev/null # warm-up
ours1=$(run "$lpid" "$port" 1 "$n1")
ours64=$(run "$lpid" "$port" 64 "$n64")
echo "xenrad-mllp listener      1 conn: $ours1"
echo "xenrad-mllp listener     64 conn: $ours64"
awk -v s="$(field server_cpu_us_per_msg "$ours64")" -v c="$(field client_cpu_us_per_msg "$ours64")" 'BEGIN {
  printf "projection (64 conn): server alone %.0f msg/s per core it gets (%.0f on 2 cores); server+client share: %.0f msg/s on 2 cores\n",
    1e6 / s, 2e6 / s, 2e6 / (s + c) }'

if [ "${PIN:-0}" = 1 ] && command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
  pport=$((port + 1))
  TOKIO_WORKER_THREADS=1 taskset -c 0 "$XENRAD_BIN" mllp listen --port "$pport" --seconds 3600 2>/dev/null &
  ppid=$!
  pids+=($ppid)
  wait_port "$pport"
  pinned=$(TOKIO_WORKER_THREADS=1 run "$ppid" "$pport" 64 "$n64" taskset -c 1)
  echo "xenrad-mllp pinned (server CPU 0, client CPU 1, 1 worker each) 64 conn: $pinned"
fi

if [ -n "${XENRAD_PYTHON:-}" ]; then
  coproc PY { exec "$XENRAD_PYTHON" "$root/xenrad-mllp/tests/peer/hl7_server.py" 2>/dev/null; }
  pypid=$PY_PID
  pids+=($pypid)
  read -r line <&"${PY[0]}"
  pyport="${line#PORT }"
  py1=$(run "$pypid" "$pyport" 1 "$npy")
  py64=$(run "$pypid" "$pyport" 64 "$npy")
  echo "python-hl7 asyncio server  1 conn: $py1"
  echo "python-hl7 asyncio server 64 conn: $py64"
  awk -v a="$(field msg_per_s "$ours1")" -v b="$(field msg_per_s "$py1")" \
      -v c="$(field msg_per_s "$ours64")" -v d="$(field msg_per_s "$py64")" \
      -v e="$(field p99_us "$ours1")" -v f="$(field p99_us "$py1")" \
      -v g="$(field server_cpu_us_per_msg "$ours64")" -v h="$(field server_cpu_us_per_msg "$py64")" \
      'BEGIN { printf "ratio xenrad/python-hl7: 1 conn %.1fx msg/s (p99 %.1fx lower), 64 conn %.1fx msg/s, server CPU per message %.1fx lower\n", a/b, f/e, c/d, h/g }'
else
  echo "skipped python-hl7 peer: XENRAD_PYTHON unset (eval \"\$(scripts/peers.sh)\")"
fi
