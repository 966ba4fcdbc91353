#!/usr/bin/env bash
# Side-by-side C-STORE SCP benchmark on loopback, DCMTK storescu as the sender for everyone.
#
#   benches/dicom/cstore.sh [--runs N] [--ct N] [--large N] [--frames N] [--parallel N] [--work DIR]
#                           [--sync-mb MB]
#
# Every comparison sends with `TCP_NODELAY=1 storescu`: the best configuration of the peer
# (DCMTK leaves Nagle on by default, FAQ #48, and storescp does not set TCP_QUICKACK, so a
# Nagle-on sender stalls DCMTK's receiver on delayed ACKs while ours barely moves). The
# Nagle-on sender, what many modalities do, stays as its own labelled case: set `ct-nagle`
# (xenrad, xenrad-nofsync, dcmtk-tuned).
#
# Each run also measures the disk's synced-write limit in $WORK (synclimit.py: append 0.5 MB,
# fdatasync, repeat; one writer, set `disk-sync` row `1-writer`, and --parallel writers) and
# prints our durable C-STORE as a fraction of it: a durable acknowledgement cannot beat it.
#
# Generates a deterministic set (gen_set.py: 400 CT-like 512x512x16-bit instances, 2 x 84 MB
# multi-frame), then for each of N interleaved runs sends every set into each receiver:
#   xenrad          our SCP with its defaults (durable: journal record fdatasync'ed before each response)
#   xenrad-perfile  the same with --fsync-per-file (fdatasync, rename, directory fsync per instance)
#   xenrad-nofsync  the same with --no-fsync (page cache only, like the others)
#   dcmtk           storescp as shipped
#   dcmtk-tuned     TCP_NODELAY=1 storescp +B -pdu 131072
#   dicom-rs        dicom-storescp, when installed (e.g. `cargo install dicom-storescp`)
# and, with --parallel P, P concurrent storescu senders (CT set split P ways) into xenrad, into
# DCMTK storescp --fork (tuned) and, when installed, `dicom-storescp -n` (a task per
# association). Receiver CPU-s (utime+stime, children included) and peak
# RSS (VmHWM) come from /proc. Prints medians and ratios; raw rows go to $WORK/results.tsv.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
runs=3 ct=400 large=2 frames=160 parallel=4 work=/tmp/xenrad-cstore sync_mb=200
while (($#)); do
  case "$1" in
    --runs) runs=$2; shift 2 ;; --ct) ct=$2; shift 2 ;; --large) large=$2; shift 2 ;;
    --frames) frames=$2; shift 2 ;; --parallel) parallel=$2; shift 2 ;; --work) work=$2; shift 2 ;;
    --sync-mb) sync_mb=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
eval "$("$root/scripts/peers.sh")"
py="$XENRAD_PYTHON"
mkdir -p "$work"
echo "cstore: generating set in $work/set (ct=$ct large=$large frames=$frames)" >&2
"$py" "$root/benches/dicom/gen_set.py" "$work/set" --ct "$ct" --large "$large" --frames "$frames" >/dev/null
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
# The dimse crate's own storescp example is the same server as `xenrad dicom scp`, without
# building the other crates.
(cd "$root" && cargo build --release -q -p xenrad-dimse --features tokio --example storescp)
xenrad="$CARGO_TARGET_DIR/release/examples/storescp"

# Parallel split of the CT set (symlinks).
if ((parallel > 1)); then
  rm -rf "$work/split"; i=0
  for f in "$work/set/ct"/*.dcm; do
    d="$work/split/$((i % parallel))"; mkdir -p "$d"; ln -s "$f" "$d/"; i=$((i + 1))
  done
fi

receivers=(${RECEIVERS:-xenrad xenrad-perfile xenrad-nofsync dcmtk dcmtk-tuned})
[ -z "${RECEIVERS:-}" ] && command -v dicom-storescp >/dev/null 2>&1 && receivers+=(dicom-rs)
port=11300
clk=$(getconf CLK_TCK)
results="$work/results.tsv"
echo -e "set\treceiver\trun\tseconds\tbytes\tinstances\tcpu_s\trss_kb" >"$results"

start_receiver() { # name outdir -> RPID
  local name=$1 out=$2
  port=$((port + 1))
  case "$name" in
    xenrad) "$xenrad" --port "$port" --out "$out" --quiet >/dev/null 2>&1 & ;;
    xenrad-nofsync) "$xenrad" --port "$port" --out "$out" --quiet --no-fsync >/dev/null 2>&1 & ;;
    xenrad-perfile) "$xenrad" --port "$port" --out "$out" --quiet --fsync-per-file >/dev/null 2>&1 & ;;
    dcmtk) storescp -od "$out" "$port" >/dev/null 2>&1 & ;;
    dcmtk-tuned) TCP_NODELAY=1 storescp +B -pdu 131072 -od "$out" "$port" >/dev/null 2>&1 & ;;
    dcmtk-fork) TCP_NODELAY=1 storescp --fork +B -pdu 131072 -od "$out" "$port" >/dev/null 2>&1 & ;;
    dicom-rs) dicom-storescp -p "$port" -o "$out" >/dev/null 2>&1 & ;;
    dicom-rs-async) dicom-storescp -n -p "$port" -o "$out" >/dev/null 2>&1 & ;;
  esac
  RPID=$!
  for _ in $(seq 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "cstore: $name did not listen" >&2; kill "$RPID"; return 1
}

proc_cpu() { # pid -> CPU seconds incl. reaped children
  awk -v clk="$clk" '{ sub(/^.*\) /, ""); print ($12 + $13 + $14 + $15) / clk }' "/proc/$1/stat"
}

measure() { # set receiver run senders...
  local set=$1 name=$2 run=$3; shift 3
  local out="$work/recv-$name"
  rm -rf "$out"; mkdir -p "$out"
  start_receiver "$name" "$out"
  local c0 t0 t1 c1 rss n bytes
  c0=$(proc_cpu "$RPID")
  t0=$(date +%s.%N)
  local pids=() nodelay=1
  [[ $set == *-nagle ]] && nodelay=0 # the labelled Nagle-on sender case
  for dir in "$@"; do
    if ((nodelay)); then
      TCP_NODELAY=1 storescu -aec ANY-SCP +sd "127.0.0.1" "$port" "$dir" >/dev/null 2>&1 & pids+=($!)
    else
      storescu -aec ANY-SCP +sd "127.0.0.1" "$port" "$dir" >/dev/null 2>&1 & pids+=($!)
    fi
  done
  local failed=0
  for p in "${pids[@]}"; do wait "$p" || failed=1; done
  t1=$(date +%s.%N)
  sleep 0.2 # let the receiver finish its last rename/close
  c1=$(proc_cpu "$RPID")
  rss=$(awk '/VmHWM/ {print $2}' "/proc/$RPID/status")
  kill "$RPID" 2>/dev/null || true; wait "$RPID" 2>/dev/null || true
  n=$(find "$out" -name '.*' -prune -o -type f -print | wc -l)
  bytes=$(find -L "$@" -name '*.dcm' -printf '%s\n' | awk '{s += $1} END {print s}')
  ((failed)) && echo "cstore: storescu reported failures ($set/$name)" >&2
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$set" "$name" "$run" \
    "$(echo "$t1 - $t0" | bc -l)" "$bytes" "$n" "$(echo "$c1 - $c0" | bc -l)" "$rss" >>"$results"
  echo "cstore: run $run $set $name: $n instances in $(echo "$t1 - $t0" | bc -l | cut -c1-6) s" >&2
  rm -rf "$out"
}

disk_sync() { # run writers -> one disk-sync row (instances = writers)
  local run=$1 w=$2 line
  line=$("$py" "$root/benches/dicom/synclimit.py" "$work/sync" --writers "$w" \
    --mb-per-writer "$(echo "$sync_mb / $w" | bc -l)")
  read -r _ b s _ <<<"$line"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t0\t0\n' disk-sync "$w-writer" "$run" "$s" "$b" "$w" >>"$results"
  echo "cstore: run $run disk-sync $w writer(s): $line" >&2
}

for run in $(seq "$runs"); do
  disk_sync "$run" 1
  if ((parallel > 1)); then disk_sync "$run" "$parallel"; fi
  for name in "${receivers[@]}"; do measure ct "$name" "$run" "$work/set/ct"; done
  for name in xenrad xenrad-nofsync dcmtk-tuned; do
    if [[ " ${receivers[*]} " == *" $name "* ]]; then measure ct-nagle "$name" "$run" "$work/set/ct"; fi
  done
  for name in "${receivers[@]}"; do measure large "$name" "$run" "$work/set/large"; done
  if ((parallel > 1)); then
    dirs=("$work/split"/*)
    measure "ct-x$parallel" xenrad "$run" "${dirs[@]}"
    measure "ct-x$parallel" xenrad-nofsync "$run" "${dirs[@]}"
    measure "ct-x$parallel" dcmtk-fork "$run" "${dirs[@]}"
    if command -v dicom-storescp >/dev/null 2>&1; then
      measure "ct-x$parallel" dicom-rs-async "$run" "${dirs[@]}"
    fi
  fi
done

"$py" - "$results" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter='\t'))
agg = {}
for r in rows:
    k = (r['set'], r['receiver'])
    s, b, n = float(r['seconds']), int(r['bytes']), int(r['instances'])
    agg.setdefault(k, []).append((b / 1e6 / s, n / s, float(r['cpu_s']) / (b / 1e9), int(r['rss_kb']) / 1024))
print("senders: TCP_NODELAY=1 storescu, except set ct-nagle (storescu as shipped, Nagle on)")
print(f"{'set':10} {'receiver':15} {'MB/s':>8} {'inst/s':>8} {'CPU-s/GB':>9} {'RSS MB':>7}  (medians of {len(next(iter(agg.values())))} runs)")
med = {}
for (st, rc), v in sorted(agg.items()):
    m = tuple(statistics.median(x[i] for x in v) for i in range(4))
    med[(st, rc)] = m
    print(f"{st:10} {rc:15} {m[0]:8.1f} {m[1]:8.1f} {m[2]:9.2f} {m[3]:7.1f}")
print()
for st in sorted({k[0] for k in med}):
    if st == 'disk-sync': continue
    for ours in ('xenrad', 'xenrad-nofsync'):
        if (st, ours) not in med: continue
        for (s2, peer), m in sorted(med.items()):
            if s2 != st or peer.startswith('xenrad'): continue
            o = med[(st, ours)]
            cpu = f"x{o[2] / m[2]:.2f}" if m[2] > 0 else "n/a (forked children not measured)"
            print(f"{st:10} {ours} vs {peer}: throughput x{o[0] / m[0]:.2f}, CPU/GB {cpu}, RSS x{o[3] / m[3]:.2f}")
print()
# Durable C-STORE against the disk's synced-write limit, measured in the same runs.
lim = {rc: m[0] for (st, rc), m in med.items() if st == 'disk-sync'}
one = lim.get('1-writer')
many = max((v for k, v in lim.items() if k != '1-writer'), default=None)
for st in sorted({k[0] for k in med}):
    if (st, 'xenrad') not in med or one is None: continue
    if st.startswith('ct-x') and many:
        ref, kind = many, 'parallel writers, as many as senders'
    else:
        ref, kind = one, 'one writer'
    print(f"{st:10} xenrad (durable) = {med[(st, 'xenrad')][0] / ref:.2f} of the disk's synced-write limit "
          f"({ref:.0f} MB/s, {kind}, fdatasync per 0.5 MB)")
PY
