#!/usr/bin/env bash
# Load and abuse campaign on loopback (issue 20): floods, slowloris on HTTP/MLLP/DICOM,
# oversized heads/bodies/frames/PDUs, thousands of associations; /healthz latency and RSS.
#   scripts/abuse.sh [--scale 1.0] [--associations 2000] [--rss-mib 256]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
if [ -z "${XENRAD_PYTHON:-}" ]; then eval "$(scripts/peers.sh)"; fi
if [ -z "${XENRAD_GATEWAY_BIN:-}" ]; then
  cargo build --bin xenrad-gateway --all-features --locked -q
  export XENRAD_GATEWAY_BIN="$root/target/debug/xenrad-gateway"
fi
exec "$XENRAD_PYTHON" scripts/reliability/abuse.py "$@"
