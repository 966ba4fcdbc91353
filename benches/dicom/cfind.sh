#!/usr/bin/env bash
# Side-by-side C-FIND SCP benchmark on loopback (issue 15): our `xenrad dicom scp --qr` against
# DCMTK dcmqrscp holding the same instances, one SCU (`xenrad dicom find`, output discarded)
# for both, so the client costs the same on each side. Each measurement is one association
# running the query 20 times (`--repeat`), so process start and association set-up do not hide
# the SCPs' own rates.
#
#   benches/dicom/cfind.sh [--runs N] [--patients N] [--work DIR]
#
# The set (scripts/qr_fixture.py): PATIENTS x 2 studies x 2 series x 10 instances (default
# 250 patients = 500 studies = 10,000 instances; dcmqrscp keeps at most 500 studies per AE). Queries, each run N times interleaved, medians reported:
#   study-wild   STUDY level, PatientName=*o* and a StudyDate range: a few hundred matches
#   study-all    STUDY level, every study (2 per patient)
#   image-series IMAGE level in one series: a small answer (10 matches), i.e. queries per second
# Prints matches per second per SCP and our ratio; raw rows go to $WORK/cfind.tsv.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
runs=5 patients=250 work=/tmp/xenrad-cfind
while (($#)); do
  case "$1" in
    --runs) runs=$2; shift 2 ;; --patients) patients=$2; shift 2 ;; --work) work=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
eval "$("$root/scripts/peers.sh")"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
(cd "$root" && cargo build --release -q -p xenrad-cli --bin xenrad)
xenrad="$CARGO_TARGET_DIR/release/xenrad"
want=$((patients * 40))
if [ "$(find "$work/set" -name '*.dcm' 2>/dev/null | wc -l)" != "$want" ] || [ ! -s "$work/dcmqrscp/index.dat" ]; then
  # dcmqridx takes ~20 minutes for 10,000 instances here: the set and its index are kept in
  # $work between runs and rebuilt only when the size changes.
  rm -rf "$work" && mkdir -p "$work/dcmqrscp"
  echo "cfind: generating $want instances" >&2
  "$XENRAD_PYTHON" "$root/scripts/qr_fixture.py" images "$work/set" "$patients" 10 >/dev/null 2>&1
  echo "cfind: indexing the set for dcmqrscp (dcmqridx)" >&2
  find "$work/set" -name '*.dcm' | sort >"$work/files"
  xargs -a "$work/files" /usr/bin/dcmqridx "$work/dcmqrscp" >/dev/null 2>&1
fi
find "$work/set" -name '*.dcm' | sort >"$work/files"
rm -rf "$work/ours" && mkdir -p "$work/ours"
port_ours=11410 port_dcmtk=11411
cat >"$work/dcmqrscp.cfg" <<CFG
NetworkTCPPort = $port_dcmtk
MaxPDUSize = 131072
MaxAssociations = 16
HostTable BEGIN
HostTable END
VendorTable BEGIN
VendorTable END
AETable BEGIN
DCMQR $work/dcmqrscp RW (500, 1024mb) ANY
AETable END
CFG
/usr/bin/dcmqrscp -c "$work/dcmqrscp.cfg" >"$work/dcmqrscp.log" 2>&1 &
dpid=$!
"$xenrad" dicom scp --port "$port_ours" --out "$work/ours" --aet XENRAD --qr --no-fsync --quiet \
  >/dev/null 2>"$work/ours.log" &
opid=$!
trap 'kill $dpid $opid 2>/dev/null || true' EXIT
wait_port() { for _ in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return; sleep 0.05; done; echo "port $1 never opened" >&2; exit 1; }
wait_port $port_ours; wait_port $port_dcmtk
echo "cfind: storing the set into ours (xenrad dicom store)" >&2
xargs -a "$work/files" "$xenrad" dicom store "127.0.0.1:$port_ours" --called-aet XENRAD >/dev/null

declare -A level keys
level[study-wild]=STUDY; keys[study-wild]="-k PatientName=*o* -k StudyDate=20240101-20240630 -k StudyInstanceUID -k PatientID"
level[study-all]=STUDY;  keys[study-all]="-k StudyInstanceUID -k PatientName -k StudyDate"
level[image-series]=IMAGE; keys[image-series]="-k StudyInstanceUID=1.2.826.0.1.3680043.10.1138.3.1 -k SeriesInstanceUID=1.2.826.0.1.3680043.10.1138.3.1.2 -k SOPInstanceUID"

res="$work/cfind.tsv"
echo -e "query\tscp\trun\tseconds\tmatches" >"$res"
for run in $(seq "$runs"); do
  for q in study-wild study-all image-series; do
    for scp in ours dcmtk; do
      if [ $scp = ours ]; then p=$port_ours; call=XENRAD; else p=$port_dcmtk; call=DCMQR; fi
      t0=$(date +%s.%N)
      # shellcheck disable=SC2086
      n=$("$xenrad" dicom find --host 127.0.0.1 --port $p --call $call --repeat 20 --level ${level[$q]} ${keys[$q]} | wc -l)
      t1=$(date +%s.%N)
      echo -e "$q\t$scp\t$run\t$(echo "$t1 - $t0" | bc -l)\t$n" >>"$res"
    done
  done
done
"$XENRAD_PYTHON" - "$res" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
print(f"{'query':<14}{'matches':>9}{'ours m/s':>12}{'dcmqrscp m/s':>14}{'ratio':>8}")
for q in dict.fromkeys(r["query"] for r in rows):
    med, counts = {}, set()
    for scp in ("ours", "dcmtk"):
        rs = [r for r in rows if r["query"] == q and r["scp"] == scp]
        med[scp] = statistics.median(int(r["matches"]) / float(r["seconds"]) for r in rs)
        counts |= {r["matches"] for r in rs}
        n = rs[0]["matches"]
    if len(counts) != 1:
        sys.exit(f"{q}: the SCPs answered different match counts {sorted(counts)}")
    print(f"{q:<14}{n:>9}{med['ours']:>12.0f}{med['dcmtk']:>14.0f}{med['ours'] / med['dcmtk']:>7.1f}x")
PY
