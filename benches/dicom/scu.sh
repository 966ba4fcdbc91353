#!/usr/bin/env bash
# Side-by-side C-STORE *sender* benchmark on loopback (issue 15): `xenrad dicom store` against
# DCMTK `storescu` sending the same CT set into the same receiver, tuned DCMTK storescp
# (`TCP_NODELAY=1 storescp +B -pdu 131072`, page cache only), so only the sender differs.
#
#   benches/dicom/scu.sh [--runs N] [--ct N] [--work DIR]
#
# Senders, interleaved per run, medians reported:
#   xenrad          xenrad dicom store (streams each data set from its file, TCP_NODELAY)
#   dcmtk-nodelay   TCP_NODELAY=1 storescu (DCMTK's best configuration)
#   dcmtk           storescu as shipped (Nagle on: what many modalities do)
# Prints MB/s, sender CPU-seconds per GB and peak RSS per sender, and our ratios.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
runs=5 ct=400 work=/tmp/xenrad-scu
while (($#)); do
  case "$1" in
    --runs) runs=$2; shift 2 ;; --ct) ct=$2; shift 2 ;; --work) work=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
eval "$("$root/scripts/peers.sh")"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
(cd "$root" && cargo build --release -q -p xenrad-cli --bin xenrad)
xenrad="$CARGO_TARGET_DIR/release/xenrad"
mkdir -p "$work"
echo "scu: generating $ct CT instances in $work/set" >&2
"$XENRAD_PYTHON" "$root/benches/dicom/gen_set.py" "$work/set" --ct "$ct" --large 0 >/dev/null
port=11420
res="$work/scu.tsv"
echo -e "sender\trun\tseconds\tbytes\tcpu_s\trss_kb" >"$res"
bytes=$(find "$work/set/ct" -name '*.dcm' -printf '%s\n' | awk '{s += $1} END {print s}')
for run in $(seq "$runs"); do
  for sender in xenrad dcmtk-nodelay dcmtk; do
    port=$((port + 1))
    out="$work/recv"; rm -rf "$out"; mkdir -p "$out"
    TCP_NODELAY=1 /usr/bin/storescp +B -pdu 131072 -od "$out" "$port" >/dev/null 2>&1 &
    rpid=$!
    for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
    t0=$(date +%s.%N)
    case $sender in
      xenrad) /usr/bin/time -f '%U %S %M' -o "$work/time" "$xenrad" dicom store "127.0.0.1:$port" "$work/set/ct" --max-pdu 131072 >/dev/null ;;
      dcmtk-nodelay) TCP_NODELAY=1 /usr/bin/time -f '%U %S %M' -o "$work/time" /usr/bin/storescu -pdu 131072 +sd 127.0.0.1 "$port" "$work/set/ct" >/dev/null 2>&1 ;;
      dcmtk) /usr/bin/time -f '%U %S %M' -o "$work/time" /usr/bin/storescu -pdu 131072 +sd 127.0.0.1 "$port" "$work/set/ct" >/dev/null 2>&1 ;;
    esac
    t1=$(date +%s.%N)
    kill $rpid 2>/dev/null || true; wait $rpid 2>/dev/null || true
    n=$(find "$out" -type f | wc -l)
    [ "$n" -eq "$ct" ] || { echo "scu: $sender delivered $n of $ct" >&2; exit 1; }
    read -r u s m <"$work/time"
    echo -e "$sender\t$run\t$(echo "$t1 - $t0" | bc -l)\t$bytes\t$(echo "$u + $s" | bc -l)\t$m" >>"$res"
  done
done
rm -rf "$work/recv"
"$XENRAD_PYTHON" - "$res" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
med = {}
print(f"{'sender':15}{'MB/s':>9}{'CPU-s/GB':>10}{'RSS MB':>8}  (medians of {len(rows) // 3} runs)")
for s in dict.fromkeys(r["sender"] for r in rows):
    rs = [r for r in rows if r["sender"] == s]
    mbs = statistics.median(int(r["bytes"]) / 1e6 / float(r["seconds"]) for r in rs)
    cpu = statistics.median(float(r["cpu_s"]) / (int(r["bytes"]) / 1e9) for r in rs)
    rss = statistics.median(int(r["rss_kb"]) / 1024 for r in rs)
    med[s] = mbs
    print(f"{s:15}{mbs:9.1f}{cpu:10.2f}{rss:8.1f}")
for peer in ("dcmtk-nodelay", "dcmtk"):
    print(f"xenrad / {peer}: {med['xenrad'] / med[peer]:.2f}x")
PY
