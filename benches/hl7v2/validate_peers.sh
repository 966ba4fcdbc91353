#!/usr/bin/env bash
# Validation throughput, xenrad-hl7v2 against hl7apy (the peer validator: no crates.io HL7
# crate validates), measured back to back in one run on the shared 10,000-message corpus:
#   1. criterion group `hl7v2/validate` (parse + v2.5.1 validation of all 10,000 messages);
#   2. benches/hl7v2/validate_hl7apy.py on the first N messages (default 100).
# Prints both throughputs and the ratio. Needs the peers: `eval "$(scripts/peers.sh)"`.
# Usage: benches/hl7v2/validate_peers.sh [N]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
corpus="$root/../shared/corpus/hl7v2/generated/hl7v2_gen_n10000_seed42.mllp"
python="${XENRAD_PYTHON:-$root/.venv/bin/python}"
n="${1:-100}"

out="$(cd "$root" && cargo bench -p xenrad-benches --bench hl7v2 --locked -- \
  --warm-up-time 1 --measurement-time 3 'hl7v2/validate/' 2>/dev/null)"
# criterion: "thrpt:  [low unit mid unit high unit]"; take the median and convert to MB/s.
ours="$(printf '%s\n' "$out" | awk '/^hl7v2\/validate\/xenrad/{f=1} f && /thrpt:/{
  v=$4; u=$5; m=(u ~ /GiB/)?1073741824:(u ~ /MiB/)?1048576:(u ~ /KiB/)?1024:1;
  printf "%.1f", v*m/1e6; exit}')"
peer_line="$("$python" "$root/benches/hl7v2/validate_hl7apy.py" "$corpus" "$n")"
peer="$(printf '%s\n' "$peer_line" | sed -E 's/.*mb_per_s=([0-9.]+).*/\1/')"
echo "xenrad-hl7v2 parse+validate: $ours MB/s (criterion median, 10,000 messages)"
echo "$peer_line"
awk -v a="$ours" -v b="$peer" 'BEGIN { printf "ratio xenrad/hl7apy: %.0fx\n", a / b }'
