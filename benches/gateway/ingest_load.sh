#!/usr/bin/env bash
# Durable-ingest throughput of xenrad-gateway over MLLP, side by side in one run with
# two receivers built from the same crates:
#   memory  `xenrad mllp listen`            parse + ACK, nothing stored (the ceiling)
#   fsync   `xenrad mllp listen --store D`  one file + fsync per message before its ACK
#   gateway `xenrad-gateway`                SQLite WAL, group commit, FHIR projection,
#                                           every message durable before its ACK
# each with 1 connection (stop-and-wait: one commit per message) and N connections
# (concurrent messages share commits). Loopback only; bounded message count.
#   benches/gateway/ingest_load.sh [MESSAGES] [CONNECTIONS]
#
# Last measured (session 2, release build, quiet 2-vCPU VM, `ingest_load.sh 5000 32`, two runs):
#   gateway  1 conn  1,379 / 1,559 msg/s   1.2-1.3x the file+fsync receiver (1,116 / 1,222)
#   gateway 32 conns 4,946 / 4,700 msg/s   2.6-2.7x the file+fsync receiver (1,853 / 1,825),
#                                          3.4x its own 1-connection rate: group commit
#   memory ceiling: 15-19k msg/s (1 conn), 102-124k msg/s (32 conns); every gateway message is
#   durable (SQLite WAL fsync) with its FHIR projection before its AA.
set -euo pipefail
cd "$(dirname "$0")/../.."
n="${1:-5000}"; conns="${2:-32}"
corpus=../shared/corpus/hl7v2/generated/hl7v2_gen_n10000_seed42.mllp
cargo build --release -q --bin xenrad-gateway --bin xenrad
bin="${CARGO_TARGET_DIR:-target}/release"
port=43000
pid=""
data=""
cleanup() {
  [ -n "$pid" ] && { kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
  [ -n "$data" ] && rm -rf "$data"
  pid=""; data=""
  return 0
}
trap cleanup EXIT
wait_port() {
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0; sleep 0.1; done
  echo "receiver did not listen on $port" >&2; return 1
}
start() { # receiver kind
  data="$(mktemp -d)"
  case "$1" in
    memory) "$bin/xenrad" mllp listen --port "$port" 2>/dev/null & ;;
    fsync) "$bin/xenrad" mllp listen --port "$port" --store "$data" 2>/dev/null & ;;
    gateway) "$bin/xenrad-gateway" --data-dir "$data" --api-key bench \
        --fhir-addr 127.0.0.1:48080 --hl7-addr 127.0.0.1:48081 --mpps-addr 127.0.0.1:48082 \
        --mllp-addr "127.0.0.1:$port" --dicom-addr 127.0.0.1:41112 2>/dev/null & ;;
  esac
  pid=$!
  wait_port
}
rate() { # the msg/s figure of a load run's summary line
  grep -oE 'msg_per_s=[0-9.]+' | head -1 | cut -d= -f2
}
declare -A result
for c in 1 "$conns"; do
  for kind in memory fsync gateway; do
    start "$kind"
    line="$("$bin/xenrad" mllp load -c "$c" -n "$n" "127.0.0.1:$port" "$corpus" | tail -1)"
    cleanup
    result[$kind,$c]="$(echo "$line" | rate)"
    printf '%-8s %3s conn  %s\n' "$kind" "$c" "$line"
  done
done
echo
printf '%-28s %12s %12s\n' "msg/s (ratio to memory)" "1 conn" "$conns conns"
for kind in memory fsync gateway; do
  printf '%-28s' "$kind"
  for c in 1 "$conns"; do
    r="${result[$kind,$c]:-0}"; m="${result[memory,$c]:-0}"
    printf ' %7s (%s)' "$r" "$(awk -v a="$r" -v b="$m" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')"
  done
  echo
done
