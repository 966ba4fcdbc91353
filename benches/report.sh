#!/usr/bin/env bash
# Every side-by-side comparison of the project in one command, written to
# target/bench-report/index.md (one table per area: ours, each peer, ratio; the machine, its
# load average while each area ran, the date) with SVG throughput charts beside it.
#
#   benches/report.sh [--quick] [--only AREA[,AREA...]]
#
# Areas, in order (each one's full log is in target/bench-report/logs/AREA.log):
#   criterion-BENCH  `cargo bench -p xenrad-benches --bench BENCH` for every file of
#                    benches/benches/ (hl7v2, mllp, hl7v3, fhir, dimse, mpps): each group holds
#                    our functions (xenrad*) and the crates.io peers; medians from criterion's
#                    target/criterion/*/*/new/estimates.json
#   cstore           benches/dicom/cstore.sh: C-STORE against DCMTK storescp (TCP_NODELAY=1
#                    storescu senders; the Nagle-on sender as a labelled case) and the disk's
#                    synced-write limit measured in the same run
#   cfind            benches/dicom/cfind.sh: C-FIND against DCMTK dcmqrscp (when present)
#   cget             benches/dicom/cget.sh: C-GET against dcmqrscp and pynetdicom (when present)
#   scu              benches/dicom/scu.sh: `xenrad dicom store` against DCMTK storescu (TCP_NODELAY=1
#                    and as shipped) into the same tuned storescp
#   mllp-load        benches/mllp/load.sh: `xenrad mllp listen` against python-hl7's server
#   gateway-ingest   benches/gateway/ingest_load.sh: durable gateway ingest against the bare
#                    listener and a file+fsync receiver
#   hl7v2-validate   benches/hl7v2/validate_peers.sh: validation against hl7apy
#   hl7v3-instr      benches/hl7v3/instructions.sh: instructions per pass against roxmltree
#                    (valgrind; skipped without it)
# --quick: short criterion measurements and small script runs (a smoke test of the whole
# pipeline, figures not for quoting); the default is the full report (about an hour on a
# 2-core machine). Every figure is a ratio against a peer measured in the same run: on a
# shared machine absolute figures mean little. Needs python3 (standard library only) and the
# peers installed by scripts/peers.sh (the scripts call it).
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
quick=0 only=""
while (($#)); do
  case "$1" in
    --quick) quick=1; shift ;;
    --only) only=",$2,"; shift 2 ;;
    -h | --help) sed -n '2,28p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
out="$CARGO_TARGET_DIR/bench-report"
# --only re-measures some areas into the existing report; a full run starts afresh.
[ -z "$only" ] && rm -rf "$out"
mkdir -p "$out/logs" "$out/data"
areas="$out/areas.tsv"
if [ -z "$only" ] || [ ! -f "$areas" ]; then
  echo -e "area\tstatus\tseconds\tload_before\tload_after\tstarted" >"$areas"
else # drop the rows of the areas measured again
  awk -F'\t' -v only="$only" 'NR == 1 || index(only, "," $1 ",") == 0' "$areas" >"$areas.tmp" && mv "$areas.tmp" "$areas"
fi

if ((quick)); then
  # criterion's --quick: sample until 5 % relative spread or the measurement time, whichever first
  crit=(--quick --warm-up-time 0.2 --measurement-time 1)
  cstore_args=(--runs 1 --ct 60 --large 1 --frames 40 --parallel 4 --sync-mb 100)
  cfind_args=(--runs 1 --patients 20)
  cget_args=(--runs 1 --ct 60)
  scu_args=(--runs 1 --ct 60)
  mllp_args=(2000 10000 300)
  gateway_args=(1000 32)
  validate_args=(20)
  instr_args=(1)
else
  crit=(--warm-up-time 1 --measurement-time 3)
  cstore_args=(--runs 5 --ct 200 --large 2 --parallel 4)
  cfind_args=(--runs 5)
  cget_args=(--runs 5 --ct 400)
  scu_args=(--runs 5 --ct 400)
  mllp_args=(10000 100000 2000)
  gateway_args=(5000 64)
  validate_args=(200)
  instr_args=(3)
fi

want() { [ -z "$only" ] || [[ $only == *",$1,"* ]]; }

area() { # name command... : runs one area, logs it, records its status and load
  local name=$1; shift
  want "$name" || return 0
  local l0 t0 rc
  l0=$(cut -d' ' -f1-3 /proc/loadavg)
  t0=$(date +%s)
  echo "report: $name ($(date -u +%H:%M:%S))" >&2
  "$@" >"$out/logs/$name.log" 2>&1
  rc=$?
  ((rc)) && echo "report: $name failed (exit $rc), see $out/logs/$name.log" >&2
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$rc" "$(($(date +%s) - t0))" "$l0" \
    "$(cut -d' ' -f1-3 /proc/loadavg)" "$(date -u -d "@$t0" +%FT%TZ)" >>"$areas"
}

criterion_bench() { # bench: run it, then copy the estimates it wrote into data/
  local b=$1 marker="$out/data/.start-$1"
  touch "$marker"
  cargo bench -q -p xenrad-benches --bench "$b" -- "${crit[@]}" || return
  python3 - "$CARGO_TARGET_DIR/criterion" "$marker" "$out/data/criterion-$b.json" <<'PY'
import json, os, sys
crit, marker, dest = sys.argv[1:]
since = os.path.getmtime(marker)
rows = []
for d, _, files in os.walk(crit):
    if os.path.basename(d) != 'new' or 'estimates.json' not in files:
        continue
    if os.path.getmtime(os.path.join(d, 'estimates.json')) < since:
        continue
    b = json.load(open(os.path.join(d, 'benchmark.json')))
    e = json.load(open(os.path.join(d, 'estimates.json')))
    rows.append({'group': b['group_id'], 'function': b.get('function_id') or '',
                 'value': b.get('value_str'), 'throughput': b.get('throughput'),
                 'median_ns': e['median']['point_estimate']})
json.dump(rows, open(dest, 'w'), indent=1)
PY
}

# Build everything first, so no area's time or load includes compiling.
# Each build below is the exact command of the script that needs it: features unify over the
# packages of one build, so another selection is another binary (cargo keeps both variants, and
# switching between them afterwards only copies).
area build bash -c 'cargo bench -q -p xenrad-benches --no-run &&
  cargo build -q --release -p xenrad-cli --bin xenrad &&
  cargo build -q --release --bin xenrad-gateway --bin xenrad &&
  cargo build -q --release -p xenrad-dimse --features tokio --example storescp'

for f in benches/benches/*.rs; do
  b=$(basename "$f" .rs)
  area "criterion-$b" criterion_bench "$b"
done
area cstore benches/dicom/cstore.sh "${cstore_args[@]}" --work "$out/work/cstore"
cp "$out/work/cstore/results.tsv" "$out/data/cstore.tsv" 2>/dev/null
rm -rf "$out/work/cstore"
if [ -x benches/dicom/cfind.sh ] || [ -f benches/dicom/cfind.sh ]; then
  # cfind.sh keeps its set and dcmqrscp's index between runs (indexing 10,000 instances takes
  # dcmqrscp ~20 min): its work directory lives outside the report, which is rebuilt each time.
  area cfind bash benches/dicom/cfind.sh "${cfind_args[@]}" --work "$CARGO_TARGET_DIR/bench-work/cfind$( ((quick)) && echo -quick)"
fi
if [ -f benches/dicom/cget.sh ]; then
  area cget bash benches/dicom/cget.sh "${cget_args[@]}" --work "$out/work/cget"
fi
area scu bash benches/dicom/scu.sh "${scu_args[@]}" --work "$out/work/scu"
area mllp-load bash -c 'eval "$(scripts/peers.sh)" && exec benches/mllp/load.sh "$@"' _ "${mllp_args[@]}"
area gateway-ingest bash benches/gateway/ingest_load.sh "${gateway_args[@]}"
area hl7v2-validate bash -c 'eval "$(scripts/peers.sh)" && exec benches/hl7v2/validate_peers.sh "$@"' _ "${validate_args[@]}"
if ((!quick)) && command -v valgrind >/dev/null 2>&1; then # minutes under valgrind: not in --quick
  area hl7v3-instr bash benches/hl7v3/instructions.sh "${instr_args[@]}"
fi
rm -rf "$out/work"

python3 benches/report.py "$out" $( ((quick)) && echo --quick)
echo "report: $out/index.md" >&2
