#!/usr/bin/env bash
# Durable HL7 v2 ingest over MLLP on the gateway's two backends, side by side in one run:
#   sqlite     one node, embedded SQLite (WAL, group commit; the default)
#   postgres   one node, PostgreSQL (scripts/postgres.sh, same machine; group commit,
#              synchronous_commit on)
#   fleet-N    N nodes on that PostgreSQL behind HAProxy's MLLP port (scripts/fleet.sh), N = 1..3
# each with CONNECTIONS concurrent senders (stop-and-wait per connection; every AA follows a
# durable commit). Figures are ratios to the SQLite node of the same run. Loopback only,
# bounded message count. Needs `XENRAD_FLEET=1 scripts/peers.sh` (postgresql, haproxy).
#   benches/gateway/postgres_load.sh [MESSAGES] [CONNECTIONS]
set -euo pipefail
cd "$(dirname "$0")/../.."
n="${1:-5000}"; conns="${2:-64}"
corpus=../shared/corpus/hl7v2/generated/hl7v2_gen_n10000_seed42.mllp
cargo build --release -q -p xenrad-gateway -p xenrad-cli --features xenrad-gateway/postgres
bin="${CARGO_TARGET_DIR:-target}/release"
work="$(mktemp -d /tmp/xenrad-pgbench.XXXXXX)"
export XENRAD_PG_DIR="$work/pg" XENRAD_PG_PORT=55470
export XENRAD_FLEET_DIR="$work/fleet" XENRAD_FLEET_PG_PORT=55471 XENRAD_FLEET_NODE_BASE=47000
export XENRAD_FLEET_PORTS="47080 47081 47082 47030 47012" XENRAD_GATEWAY_BIN="$bin/xenrad-gateway"
export XENRAD_API_KEY=bench
pid=""
cleanup() {
  [ -n "$pid" ] && { kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
  pid=""
  return 0
}
finish() { cleanup; scripts/fleet.sh down >/dev/null 2>&1 || true; scripts/postgres.sh stop || true; rm -rf "$work"; }
trap finish EXIT
port=46030
wait_port() {
  for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
  echo "nothing listens on $1" >&2; return 1
}
node() { # extra gateway args...
  rm -rf "$work/data"; mkdir -p "$work/data"
  "$bin/xenrad-gateway" --data-dir "$work/data" --fhir-addr 127.0.0.1:46080 --hl7-addr 127.0.0.1:46081 \
    --mpps-addr 127.0.0.1:46082 --mllp-addr "127.0.0.1:$port" --dicom-addr 127.0.0.1:46012 "$@" 2>/dev/null &
  pid=$!
  wait_port "$port"
}
rate() { grep -oE 'msg_per_s=[0-9.]+' | head -1 | cut -d= -f2; }
load() { "$bin/xenrad" mllp load -c "$conns" -n "$n" "127.0.0.1:$1" "$corpus" | tail -1; }
declare -A result
node; line="$(load "$port")"; cleanup; result[sqlite]="$(echo "$line" | rate)"; echo "sqlite    $line"
url="$(scripts/postgres.sh start)"; url="${url#export XENRAD_PG_URL=}"
node --database "$url"; line="$(load "$port")"; cleanup; result[postgres]="$(echo "$line" | rate)"; echo "postgres  $line"
scripts/postgres.sh stop
for k in 1 2 3; do
  scripts/fleet.sh up --nodes "$k" >/dev/null
  line="$(load 47030)"; result[fleet-$k]="$(echo "$line" | rate)"; echo "fleet-$k   $line"
  scripts/fleet.sh down
done
echo
printf '%-12s %10s %s\n' "backend" "msg/s" "ratio to sqlite"
for k in sqlite postgres fleet-1 fleet-2 fleet-3; do
  r="${result[$k]:-0}"
  printf '%-12s %10s %s\n' "$k" "$r" "$(awk -v a="$r" -v b="${result[sqlite]:-0}" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')"
done
