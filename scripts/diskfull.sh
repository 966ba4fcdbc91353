#!/usr/bin/env bash
# Disk-full campaign (issue 20): the data dir on a small tmpfs that fills up mid-stream; no
# acknowledgement without storage, reads keep working, resumes by itself. Needs root (mount).
#   scripts/diskfull.sh [--size-mb 48] [--rounds 6] [--full-rounds 25]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
if [ -z "${XENRAD_PYTHON:-}" ]; then eval "$(scripts/peers.sh)"; fi
if [ -z "${XENRAD_GATEWAY_BIN:-}" ]; then
  cargo build --bin xenrad-gateway --all-features --locked -q
  export XENRAD_GATEWAY_BIN="$root/target/debug/xenrad-gateway"
fi
exec "$XENRAD_PYTHON" scripts/reliability/diskfull.py "$@"
