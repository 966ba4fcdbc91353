#!/usr/bin/env bash
# Load-independent cross-check of the hl7v3 criterion bench: instructions executed per pass
# (valgrind/cachegrind, no cache simulation; the machines here have no PMU for perf), corpus
# loading subtracted (the `none` pass), and ratios against roxmltree.
#   benches/hl7v3/instructions.sh [rounds]
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${1:-3}
cargo build --release -q -p xenrad-benches --example hl7v3_work
BIN=${CARGO_TARGET_DIR:-target}/release/examples/hl7v3_work
count() {
  valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null "$BIN" "$@" 2>&1 >/dev/null |
    awk '/I *refs:/ { gsub(",", "", $NF); print $NF }'
}
for corpus in public generated; do
  base=$(count "$corpus" none none "$ROUNDS")
  rox=$(( $(count "$corpus" roxmltree none "$ROUNDS") - base ))
  printf '%s (%s rounds): roxmltree %d M instructions\n' "$corpus" "$ROUNDS" $((rox / 1000000))
  for pass in header strict typed; do
    for tok in hw qx; do
      n=$(( $(count "$corpus" "$pass" "$tok" "$ROUNDS") - base ))
      awk -v p="$pass" -v t="$tok" -v n="$n" -v r="$rox" \
        'BEGIN { printf "  %-6s %-2s %6d M  %.2fx fewer than roxmltree\n", p, t, n / 1e6, r / n }'
    done
  done
done
