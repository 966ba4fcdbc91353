#!/usr/bin/env bash
# Crash campaign against the running gateway (issue 20, "Faults, proven on the running gateway"):
# SIGKILLs at random moments under a mixed stream over every door, restart, and a checker
# that proves every acknowledged item is present exactly once. Rerunnable; loopback only.
#   scripts/crash.sh [--kills N] [--seed S] [--work DIR] [--keep]      (default 100 kills; CI runs 10)
# Uses XENRAD_GATEWAY_BIN, else target/debug/xenrad-gateway (built here when missing).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
if [ -z "${XENRAD_PYTHON:-}" ]; then eval "$(scripts/peers.sh)"; fi
if [ -z "${XENRAD_GATEWAY_BIN:-}" ]; then
  cargo build --bin xenrad-gateway --all-features --locked -q
  export XENRAD_GATEWAY_BIN="$root/target/debug/xenrad-gateway"
fi
exec "$XENRAD_PYTHON" scripts/reliability/crash.py "$@"
