#!/usr/bin/env bash
# Durable-ingest throughput of xenrad-gateway over MLLP: one connection (every message
# waits for its own commit + fsync) against N connections (group commit shares fsyncs).
# Loopback only; bounded message count; stops the gateway it started.
#   benches/gateway/ingest_load.sh [MESSAGES] [CONNECTIONS]
set -euo pipefail
cd "$(dirname "$0")/../.."
n="${1:-5000}"; conns="${2:-32}"
corpus=../shared/corpus/hl7v2/generated/hl7v2_gen_n10000_seed42.mllp
cargo build --release -q --bin xenrad-gateway --bin xenrad
data="$(mktemp -d)"
target/release/xenrad-gateway --data-dir "$data" --api-key bench \
  --fhir-addr 127.0.0.1:48080 --hl7-addr 127.0.0.1:48081 --mpps-addr 127.0.0.1:48082 \
  --mllp-addr 127.0.0.1:43000 --dicom-addr 127.0.0.1:41112 2>/dev/null &
gw=$!
trap 'kill -TERM $gw 2>/dev/null; wait $gw 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/43000) 2>/dev/null && break; sleep 0.1; done
# Different message ranges per run would need offsets; a fresh store per run keeps it simple.
target/release/xenrad mllp load -c 1 -n "$n" 127.0.0.1:43000 "$corpus" | tail -1
kill -TERM $gw; wait $gw 2>/dev/null || true; rm -rf "$data"; data="$(mktemp -d)"
target/release/xenrad-gateway --data-dir "$data" --api-key bench \
  --fhir-addr 127.0.0.1:48080 --hl7-addr 127.0.0.1:48081 --mpps-addr 127.0.0.1:48082 \
  --mllp-addr 127.0.0.1:43000 --dicom-addr 127.0.0.1:41112 2>/dev/null &
gw=$!
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/43000) 2>/dev/null && break; sleep 0.1; done
target/release/xenrad mllp load -c "$conns" -n "$n" 127.0.0.1:43000 "$corpus" | tail -1
