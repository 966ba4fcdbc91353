#!/usr/bin/env bash
# Runs every fuzz target (or those named) for SECONDS each on stable Rust with libFuzzer,
# no tool installs (see fuzz/README.md). Fails on the first crash, leak or timeout.
#   fuzz/run.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-30}"; shift || true
triple="$(rustc -vV | sed -n 's/^host: //p')"
# The binaries are run from fuzz/target below, whatever the caller's CARGO_TARGET_DIR says.
export CARGO_TARGET_DIR="$PWD/target"
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
 -Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
cargo build --release --target "$triple" --bins
targets=("$@")
if ((${#targets[@]} == 0)); then
  mapfile -t targets < <(ls fuzz_targets | sed 's/\.rs$//')
fi
work="${FUZZ_WORK:-$(mktemp -d)}"
for t in "${targets[@]}"; do
  mkdir -p "$work/corpus/$t" "$work/artifacts" "corpus/$t"
  echo "fuzz: $t for ${secs}s"
  "target/$triple/release/$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
    -max_len=1048576 -print_final_stats=1 -artifact_prefix="$work/artifacts/$t-" \
    "$work/corpus/$t" "corpus/$t" 2>"$work/$t.log" || {
      tail -60 "$work/$t.log"; echo "fuzz: $t FAILED (artifacts in $work/artifacts)"; exit 1; }
  grep -E '^stat::number_of_executed_units' "$work/$t.log" | sed "s/^/fuzz: $t /"
done
