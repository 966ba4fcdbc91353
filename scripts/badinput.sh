#!/usr/bin/env bash
# Bad input through the doors (issue 20): every fuzz corpus and every malformed public sample
# replayed against the running gateway; no crash, a defined answer, nothing stored when refused.
#   scripts/badinput.sh [--report FILE.jsonl]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
if [ -z "${XENRAD_PYTHON:-}" ]; then eval "$(scripts/peers.sh)"; fi
if [ -z "${XENRAD_GATEWAY_BIN:-}" ]; then
  cargo build --bin xenrad-gateway --all-features --locked -q
  export XENRAD_GATEWAY_BIN="$root/target/debug/xenrad-gateway"
fi
exec "$XENRAD_PYTHON" scripts/reliability/badinput.py "$@"
