#!/usr/bin/env bash
# Images back out, side by side on loopback (issue 17): xenrad-gateway against Orthanc with its
# DICOMweb plugin (Debian orthanc, orthanc-dicomweb), both holding the same CT set
# (benches/dicom/gen_set.py: N x 0.5 MB, one study), one client per measure for both:
#   STOW-RS ingest of the set (20 instances per request; ours acknowledges after durable storage)
#   WADO-RS whole-study retrieve (median of RUNS)
#   QIDO-RS /studies?PatientID=… requests per second (Python keep-alive client, 4 threads)
#   C-FIND STUDY level: DCMTK findscu --repeat 200 on one association each, seconds
#   C-GET of the study: DCMTK getscu --ignore (received, not written), median of RUNS
# Prints one line per measure with both figures and our ratio (higher is better for us).
#
#   benches/gateway/images.sh [--ct N] [--runs N] [--work DIR]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
ct=400 runs=3 work=/tmp/xenrad-images-bench
while (($#)); do
  case "$1" in
    --ct) ct=$2; shift 2 ;; --runs) runs=$2; shift 2 ;; --work) work=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
eval "$(XENRAD_ORTHANC=1 "$root/scripts/peers.sh")"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
(cd "$root" && cargo build --release -q -p xenrad-gateway --bin xenrad-gateway)
gw="$CARGO_TARGET_DIR/release/xenrad-gateway"
py="$XENRAD_PYTHON"; client="$root/benches/gateway/images_client.py"
rm -rf "$work" && mkdir -p "$work/orthanc-db" "$work/get"
"$py" "$root/benches/dicom/gen_set.py" "$work/set" --ct "$ct" --large 0 >/dev/null
study="1.2.826.0.1.3680043.10.1395.1.0"
key=bench-key-0123456789
gw_http=18480 gw_dicom=18412 or_http=18490 or_dicom=18413
cat >"$work/orthanc.json" <<CFG
{ "Name": "bench", "HttpPort": $or_http, "DicomPort": $or_dicom, "DicomAet": "ORTHANC",
  "StorageDirectory": "$work/orthanc-db", "IndexDirectory": "$work/orthanc-db",
  "RemoteAccessAllowed": false, "AuthenticationEnabled": false, "DicomCheckCalledAet": false,
  "DicomAlwaysAllowStore": true, "DicomAlwaysAllowFind": true, "DicomAlwaysAllowGet": true,
  "Plugins": ["/usr/share/orthanc/plugins"], "DicomWeb": { "Enable": true, "Root": "/dicom-web/" } }
CFG
/usr/sbin/Orthanc "$work/orthanc.json" >"$work/orthanc.log" 2>&1 &
opid=$!
"$gw" --data-dir "$work/gw" --api-key "$key" --fhir-addr 127.0.0.1:$gw_http --dicom-addr 127.0.0.1:$gw_dicom \
  --hl7-addr 127.0.0.1:18481 --mpps-addr 127.0.0.1:18482 --mllp-addr 127.0.0.1:18483 --ae-title XENRAD \
  --max-body $((64 * 1024 * 1024)) >"$work/gw.log" 2>&1 &
gpid=$!
trap 'kill $opid $gpid 2>/dev/null || true' EXIT
wait_port() { for _ in $(seq 400); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return; sleep 0.05; done; echo "port $1 never opened" >&2; exit 1; }
wait_port $gw_http; wait_port $gw_dicom; wait_port $or_http; wait_port $or_dicom
ours="http://127.0.0.1:$gw_http/dicomweb" theirs="http://127.0.0.1:$or_http/dicom-web"
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
row() { awk -v m="$1" -v o="$2" -v t="$3" -v u="$4" -v hi="$5" 'BEGIN {
  r = hi ? o / t : t / o; printf "%-34s xenrad %10.3f  orthanc %10.3f  %-8s ratio %.2fx\n", m, o, t, u, r }'; }
mb=$(du -sm "$work/set/ct" | cut -f1)
echo "images: $ct instances, $mb MB, one study; $runs runs" >&2
so=$("$py" "$client" stow "$ours" "$key" "$work/set/ct"); st=$("$py" "$client" stow "$theirs" - "$work/set/ct")
row "STOW-RS ingest (s)" "$so" "$st" s 0
wo=$(for _ in $(seq "$runs"); do "$py" "$client" wado "$ours" "$key" "$study" | cut -d' ' -f1; done | median)
wt=$(for _ in $(seq "$runs"); do "$py" "$client" wado "$theirs" - "$study" | cut -d' ' -f1; done | median)
row "WADO-RS study retrieve (s)" "$wo" "$wt" s 0
qo=$("$py" "$client" qido "$ours" "$key" 5); qt=$("$py" "$client" qido "$theirs" - 5)
row "QIDO-RS /studies (req/s)" "$qo" "$qt" req/s 1
find_s() { local t0 t1; t0=$(date +%s.%N); /usr/bin/findscu -S --repeat 200 -aec "$1" 127.0.0.1 "$2" \
  -k QueryRetrieveLevel=STUDY -k StudyInstanceUID -k PatientID -k NumberOfStudyRelatedInstances >/dev/null 2>&1
  t1=$(date +%s.%N); awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}'; }
fo=$(find_s XENRAD $gw_dicom); ft=$(find_s ORTHANC $or_dicom)
row "C-FIND STUDY x200 (s)" "$fo" "$ft" s 0
get_s() { local t0 t1; t0=$(date +%s.%N); /usr/bin/getscu -S --ignore -aec "$1" 127.0.0.1 "$2" \
  -k QueryRetrieveLevel=STUDY -k StudyInstanceUID="$study" >/dev/null 2>&1; t1=$(date +%s.%N); awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}'; }
go=$(for _ in $(seq "$runs"); do get_s XENRAD $gw_dicom; done | median)
gt=$(for _ in $(seq "$runs"); do get_s ORTHANC $or_dicom; done | median)
row "C-GET study (s)" "$go" "$gt" s 0
