#!/usr/bin/env bash
# C-GET throughput, same run, ratios (issue 15): the CT set of gen_set.py (400 CT-like
# 512x512x16-bit instances, ~0.5 MB each, Explicit VR LE) retrieved as one study by C-GET from
#   xenrad      `xenrad dicom scp --qr` (index of the set at start; instances go out of their
#               files unchanged)
#   dcmqrscp    DCMTK dcmqrscp (filled by storescu), TCP_NODELAY=1
#   pynetdicom  a pynetdicom 3 C-GET SCP yielding the files (pydicom dcmread)
# with the same SCU for every server, DCMTK getscu (TCP_NODELAY=1, -pdu 131072, files written to
# a fresh directory, not synced), plus `xenrad dicom get --no-fsync` against xenrad as its own
# row (files not synced either).
# Each row: median seconds of --runs, MB/s, and the ratio to dcmqrscp and to pynetdicom; the
# servers' peak RSS (VmHWM) after the runs. Every run checks the instance count.
#   benches/dicom/cget.sh [--runs 3] [--ct 400] [--work DIR]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
runs=3 ct=400 work=/tmp/xenrad-cget
while (($#)); do
  case "$1" in
    --runs) runs=$2; shift 2 ;; --ct) ct=$2; shift 2 ;; --work) work=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
eval "$("$root/scripts/peers.sh")"
py="$XENRAD_PYTHON"
mkdir -p "$work"
echo "cget: generating set in $work/set (ct=$ct)" >&2
"$py" "$root/benches/dicom/gen_set.py" "$work/set" --ct "$ct" --large 0 >/dev/null
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
(cd "$root" && cargo build --release -q -p xenrad-cli)
xenrad="$CARGO_TARGET_DIR/release/xenrad"
study="1.2.826.0.1.3680043.10.1395.1.0"
bytes=$(du -cb "$work/set/ct"/*.dcm | tail -1 | cut -f1)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
wait_port() { for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }

# xenrad: --out holds the set, indexed at start.
rm -rf "$work/ours"; mkdir -p "$work/ours"; cp "$work/set/ct"/*.dcm "$work/ours/"
"$xenrad" dicom scp --port 11401 --aet XENRAD --out "$work/ours" --qr --no-fsync --quiet >/dev/null 2>"$work/ours.log" &
pids+=($!); ours_pid=$!
# dcmqrscp.
rm -rf "$work/qr"; mkdir -p "$work/qr/db"
cat >"$work/qr/dcmqrscp.cfg" <<EOF
NetworkTCPPort = 11402
MaxPDUSize = 131072
MaxAssociations = 16
HostTable BEGIN
HostTable END
VendorTable BEGIN
VendorTable END
AETable BEGIN
DCMQR $work/qr/db RW (10, 4096mb) ANY
AETable END
EOF
TCP_NODELAY=1 /usr/bin/dcmqrscp -c "$work/qr/dcmqrscp.cfg" >/dev/null 2>&1 &
pids+=($!); qr_pid=$!
# pynetdicom.
cat >"$work/pyscp.py" <<'EOF'
import os, sys
from pydicom import dcmread
from pynetdicom import AE, evt, StoragePresentationContexts
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelGet
d, port = sys.argv[1], int(sys.argv[2])
files = sorted(os.path.join(d, f) for f in os.listdir(d))
def on_get(event):
    yield len(files)
    for f in files:
        if event.is_cancelled:
            yield (0xFE00, None); return
        yield (0xFF00, dcmread(f))
ae = AE(ae_title="PYQR")
ae.maximum_pdu_size = 131072
ae.add_supported_context(StudyRootQueryRetrieveInformationModelGet)
for cx in StoragePresentationContexts:
    ae.add_supported_context(cx.abstract_syntax, scu_role=True, scp_role=True)
ae.start_server(("127.0.0.1", port), block=True, evt_handlers=[(evt.EVT_C_GET, on_get)])
EOF
"$py" "$work/pyscp.py" "$work/set/ct" 11403 >/dev/null 2>&1 &
pids+=($!); py_pid=$!
for p in 11401 11402 11403; do wait_port $p; done
echo "cget: filling dcmqrscp" >&2
TCP_NODELAY=1 /usr/bin/storescu -aec DCMQR -pdu 131072 127.0.0.1 11402 "$work/set/ct"/*.dcm >/dev/null

getscu_run() { # port aec
  rm -rf "$work/out"; mkdir -p "$work/out"
  local t0 t1
  t0=$(date +%s.%N)
  TCP_NODELAY=1 /usr/bin/getscu -aet GETSCU -aec "$2" -S -pdu 131072 \
    -k QueryRetrieveLevel=STUDY -k StudyInstanceUID="$study" -od "$work/out" 127.0.0.1 "$1" >/dev/null 2>&1
  t1=$(date +%s.%N)
  local n; n=$(ls "$work/out" | wc -l)
  [ "$n" = "$ct" ] || { echo "cget: $2 returned $n of $ct instances" >&2; exit 1; }
  echo "$t1 - $t0" | bc -l
}
xenrad_get_run() {
  rm -rf "$work/out"; mkdir -p "$work/out"
  local t0 t1
  t0=$(date +%s.%N)
  "$xenrad" dicom get --port 11401 --call XENRAD -k StudyInstanceUID="$study" --out "$work/out" --no-fsync >/dev/null
  t1=$(date +%s.%N)
  local n; n=$(find "$work/out" -name '*.dcm' | wc -l)
  [ "$n" = "$ct" ] || { echo "cget: xenrad get returned $n of $ct instances" >&2; exit 1; }
  echo "$t1 - $t0" | bc -l
}
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

# Rows interleaved per run (the machine's load drifts; a row's runs back to back would see
# a different machine than the next row's), medians per row.
declare -A med
rows=("getscu<-xenrad:11401:XENRAD" "getscu<-dcmqrscp:11402:DCMQR" "getscu<-pynetdicom:11403:PYQR" "xenrad-get<-xenrad")
for row in "${rows[@]}"; do : >"$work/times.${row%%:*}"; done
for r in $(seq "$runs"); do
  for row in "${rows[@]}"; do
    name=${row%%:*}
    if [ "$name" = "xenrad-get<-xenrad" ]; then xenrad_get_run; else
      IFS=: read -r _ port aec <<<"$row"; getscu_run "$port" "$aec"; fi >>"$work/times.$name"
  done
done
for row in "${rows[@]}"; do
  name=${row%%:*}
  med[$name]=$(median <"$work/times.$name")
  echo "cget: $name median ${med[$name]} s (runs: $(tr '\n' ' ' <"$work/times.$name"))" >&2
done
rss() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }
mb=$(echo "$bytes / 1000000" | bc -l)
printf "C-GET of %d instances, %.1f MB, median of %d interleaved runs (same machine, same run; load average %s)\n" "$ct" "$mb" "$runs" "$(cut -d' ' -f1-3 /proc/loadavg)"
printf "%-22s %9s %9s %12s %14s\n" row seconds MB/s vs_dcmqrscp vs_pynetdicom
for name in "getscu<-xenrad" "xenrad-get<-xenrad" "getscu<-dcmqrscp" "getscu<-pynetdicom"; do
  s=${med[$name]}
  printf "%-22s %9.3f %9.1f %12.2f %14.2f\n" "$name" "$s" "$(echo "$mb / $s" | bc -l)" \
    "$(echo "${med[getscu<-dcmqrscp]} / $s" | bc -l)" "$(echo "${med[getscu<-pynetdicom]} / $s" | bc -l)"
done
printf "server peak RSS (VmHWM): xenrad %s kB, dcmqrscp %s kB, pynetdicom %s kB\n" \
  "$(rss $ours_pid)" "$(rss $qr_pid)" "$(rss $py_pid)"
