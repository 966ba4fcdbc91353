#!/usr/bin/env bash
# MLLP load over loopback: `xenrad mllp load` sends the framed 10k-message corpus
# stop-and-wait on 1 connection and on 64 connections, first to `xenrad mllp listen`
# (non-durable: acknowledges without storing), then to python-hl7's asyncio MLLP server
# (the peer, same client, same run). Prints one result line per run and the ratios.
#   benches/mllp/load.sh [MESSAGES]        (default 10000 per run)
# Env: XENRAD_BIN (a prebuilt `xenrad`), XENRAD_PYTHON (from scripts/peers.sh; peer skipped if unset).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
n="${1:-10000}"
corpus="$root/../shared/corpus/hl7v2/generated/hl7v2_gen_n10000_seed42.mllp"
[ -f "$corpus" ] || { echo "load: corpus missing: $corpus" >&2; exit 1; }
if [ -z "${XENRAD_BIN:-}" ]; then
  (cd "$root" && cargo build -q --release -p xenrad-examples --bin xenrad)
  XENRAD_BIN="${CARGO_TARGET_DIR:-$root/target}/release/xenrad"
fi
port=$((20000 + RANDOM % 20000))
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" <<<"$2"; }

"$XENRAD_BIN" mllp listen --port "$port" --seconds 600 2>/dev/null &
pids+=($!)
wait_port "$port"
ours1=$("$XENRAD_BIN" mllp load "127.0.0.1:$port" "$corpus" -c 1 -n "$n")
ours64=$("$XENRAD_BIN" mllp load "127.0.0.1:$port" "$corpus" -c 64 -n "$n")
echo "xenrad-mllp listener      1 conn: $ours1"
echo "xenrad-mllp listener     64 conn: $ours64"

if [ -n "${XENRAD_PYTHON:-}" ]; then
  coproc PY { "$XENRAD_PYTHON" "$root/xenrad-mllp/tests/peer/hl7_server.py" 2>/dev/null; }
  pids+=($PY_PID)
  read -r line <&"${PY[0]}"
  pyport="${line#PORT }"
  py1=$("$XENRAD_BIN" mllp load "127.0.0.1:$pyport" "$corpus" -c 1 -n "$n")
  py64=$("$XENRAD_BIN" mllp load "127.0.0.1:$pyport" "$corpus" -c 64 -n "$n")
  echo "python-hl7 asyncio server  1 conn: $py1"
  echo "python-hl7 asyncio server 64 conn: $py64"
  awk -v a="$(field msg_per_s "$ours1")" -v b="$(field msg_per_s "$py1")" \
      -v c="$(field msg_per_s "$ours64")" -v d="$(field msg_per_s "$py64")" \
      -v e="$(field p99_us "$ours1")" -v f="$(field p99_us "$py1")" \
      'BEGIN { printf "ratio xenrad/python-hl7: 1 conn %.1fx msg/s (p99 %.1fx lower), 64 conn %.1fx msg/s\n", a/b, f/e, c/d }'
else
  echo "skipped python-hl7 peer: XENRAD_PYTHON unset (eval \"\$(scripts/peers.sh)\")"
fi
