#!/usr/bin/env bash
# Modality Worklist C-FIND on loopback (issue 16): the gateway answering from its store
# (indexed columns, then K.6 matching) against DCMTK wlmscpfs serving the same items from its
# folder, one SCU (`xenrad dicom find --worklist`, output discarded) for both, so the client
# costs the same on each side. Each measurement is one association running the query 20
# times (`--repeat`), so process start and association set-up do not hide the SCPs' rates.
#
#   benches/gateway/worklist.sh [--runs N] [--steps N] [--work DIR]
#
# The items: STEPS ORM^O01 NW orders (default 10,000) sent to the gateway over MLLP (8
# connections; the ingest rate is printed too), 5 modalities x 4 stations, start dates spread
# over 40 days. The same items for wlmscpfs are the gateway's own answers to an open
# worklist query (`findscu -W -X`), one .wl file each, so both SCPs hold identical data.
# Queries, each run N times interleaved, medians reported:
#   ct-range     Modality=CT and a 10-day SPS start date range: ~500 matches
#   station-day  Scheduled Station AE + one day: ~12 matches
#   accession    one Accession Number: 1 match (queries per second)
#   name-wild    PatientName=DOE1* (wild card, no index): ~1,100 matches
# Prints matches per second per SCP and our ratio; raw rows go to $WORK/worklist.tsv.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
runs=5 steps=10000 work=/tmp/xenrad-worklist-bench
while (($#)); do
  case "$1" in
    --runs) runs=$2; shift 2 ;; --steps) steps=$2; shift 2 ;; --work) work=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
[ -n "${XENRAD_PYTHON:-}" ] || eval "$("$root/scripts/peers.sh")"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
(cd "$root" && cargo build --release -q -p xenrad-cli --bin xenrad -p xenrad-gateway --bin xenrad-gateway)
xenrad="$CARGO_TARGET_DIR/release/xenrad"
gateway="$CARGO_TARGET_DIR/release/xenrad-gateway"
rm -rf "$work" && mkdir -p "$work/wlm/WLM" "$work/rsp"
: >"$work/wlm/WLM/lockfile"
free_port() { "$XENRAD_PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
p_fhir=$(free_port) p_hl7=$(free_port) p_mpps=$(free_port) p_mllp=$(free_port) p_dicom=$(free_port) p_wlm=$(free_port)
XENRAD_API_KEY=bench-key-0123456789 "$gateway" --data-dir "$work/gw" --fhir-addr "127.0.0.1:$p_fhir" \
  --hl7-addr "127.0.0.1:$p_hl7" --mpps-addr "127.0.0.1:$p_mpps" --mllp-addr "127.0.0.1:$p_mllp" \
  --dicom-addr "127.0.0.1:$p_dicom" --ae-title XENRAD >/dev/null 2>"$work/gateway.log" &
gpid=$!
wpid=""
trap 'kill $gpid $wpid 2>/dev/null || true' EXIT
wait_port() { for _ in $(seq 400); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return; sleep 0.05; done; echo "port $1 never opened" >&2; exit 1; }
wait_port "$p_mllp"; wait_port "$p_dicom"

echo "worklist: sending $steps orders over MLLP (8 connections)" >&2
"$XENRAD_PYTHON" - "$p_mllp" "$steps" <<'PY'
import socket, sys, threading, time
port, n = int(sys.argv[1]), int(sys.argv[2])
mods, stations = ["CT", "MR", "US", "CR", "NM"], ["A", "B", "C", "D"]
def order(i):
    m = mods[i % 5]
    ae = f"{m}_{stations[(i // 5) % 4]}"
    day = 1 + (i // 7) % 40
    date = f"202501{day:02d}" if day <= 31 else f"202502{day - 31:02d}"
    t = f"{8 + i % 10:02d}{(i * 7) % 60:02d}00"
    return (f"MSH|^~\\&|RIS|RAD|XENRAD|GW|20250101000000||OMI^O23^OMI_O23|B{i}|P|2.5.1\r"
            f"PID|1||P{i % 3000}^^^HOSP^MR||DOE{i % 9}^PAT{i % 3000}||19700101|{'MF'[i % 2]}\r"
            f"ORC|NW|PL{i}^RIS|FL{i}^DSS\r"
            f"TQ1|1||||||{date}{t}\r"
            f"OBR|1|PL{i}^RIS|FL{i}^DSS|P{m}^{m} EXAM^L\r"
            f"IPC|ACC{i}|RP{i}||SPS{i}|{m}|||ROOM{i % 4}|{ae}\r").encode()
def worker(k, bad):
    s = socket.create_connection(("127.0.0.1", port))
    for i in range(k, n, 8):
        s.sendall(b"\x0b" + order(i) + b"\x1c\r")
        buf = b""
        while not buf.endswith(b"\x1c\r"):
            buf += s.recv(65536)
        if b"MSA|AA" not in buf:
            bad.append(buf)
    s.close()
bad = []
t0 = time.time()
ts = [threading.Thread(target=worker, args=(k, bad)) for k in range(8)]
for t in ts: t.start()
for t in ts: t.join()
dt = time.time() - t0
if bad:
    sys.exit(f"{len(bad)} orders refused: {bad[0]!r}")
print(f"ingest: {n} orders (durable, worklist + ServiceRequest) in {dt:.1f} s = {n / dt:.0f} msg/s", file=sys.stderr)
PY

keys=(-k PatientName -k PatientID -k IssuerOfPatientID -k PatientBirthDate -k PatientSex -k AccessionNumber
  -k StudyInstanceUID -k RequestedProcedureID -k RequestedProcedureDescription -k ReferringPhysicianName
  -k "ScheduledProcedureStepSequence[0].ScheduledStationAETitle"
  -k "ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate"
  -k "ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartTime"
  -k "ScheduledProcedureStepSequence[0].Modality"
  -k "ScheduledProcedureStepSequence[0].ScheduledProcedureStepDescription"
  -k "ScheduledProcedureStepSequence[0].ScheduledProcedureStepID"
  -k "ScheduledProcedureStepSequence[0].ScheduledProcedureStepLocation"
  -k "ScheduledProcedureStepSequence[0].ScheduledProcedureStepStatus")
echo "worklist: exporting the gateway's items as wlmscpfs files (findscu -W -X)" >&2
(cd "$work/rsp" && findscu -W -X -aec XENRAD 127.0.0.1 "$p_dicom" "${keys[@]}" >/dev/null 2>&1)
got=$(find "$work/rsp" -name 'rsp*.dcm' | wc -l)
[ "$got" = "$steps" ] || { echo "exported $got items, expected $steps" >&2; exit 1; }
for f in "$work"/rsp/rsp*.dcm; do mv "$f" "$work/wlm/WLM/$(basename "${f%.dcm}").wl"; done
/usr/bin/wlmscpfs -dfp "$work/wlm" -dfr "$p_wlm" >"$work/wlmscpfs.log" 2>&1 &
wpid=$!
wait_port "$p_wlm"

declare -A q
q[ct-range]="-k ScheduledProcedureStepSequence.Modality=CT -k ScheduledProcedureStepSequence.ScheduledProcedureStepStartDate=20250105-20250114 -k AccessionNumber -k PatientName -k StudyInstanceUID"
q[station-day]="-k ScheduledProcedureStepSequence.ScheduledStationAETitle=MR_B -k ScheduledProcedureStepSequence.ScheduledProcedureStepStartDate=20250110 -k AccessionNumber -k PatientName"
q[accession]="-k AccessionNumber=ACC4242 -k PatientName -k PatientID -k StudyInstanceUID -k ScheduledProcedureStepSequence.ScheduledProcedureStepID"
q[name-wild]="-k PatientName=DOE1* -k AccessionNumber -k PatientID"

res="$work/worklist.tsv"
echo -e "query\tscp\trun\tseconds\tmatches" >"$res"
for run in $(seq "$runs"); do
  for name in ct-range station-day accession name-wild; do
    for scp in ours dcmtk; do
      if [ $scp = ours ]; then p=$p_dicom; call=XENRAD; else p=$p_wlm; call=WLM; fi
      t0=$(date +%s.%N)
      # shellcheck disable=SC2086
      n=$("$xenrad" dicom find --worklist --host 127.0.0.1 --port $p --call $call --repeat 20 ${q[$name]} | wc -l)
      t1=$(date +%s.%N)
      echo -e "$name\t$scp\t$run\t$(echo "$t1 - $t0" | bc -l)\t$n" >>"$res"
    done
  done
done
"$XENRAD_PYTHON" - "$res" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
print(f"{'query':<13}{'matches':>9}{'ours m/s':>12}{'wlmscpfs m/s':>14}{'ratio':>8}")
for q in dict.fromkeys(r["query"] for r in rows):
    med, counts = {}, set()
    for scp in ("ours", "dcmtk"):
        rs = [r for r in rows if r["query"] == q and r["scp"] == scp]
        med[scp] = statistics.median(int(r["matches"]) / float(r["seconds"]) for r in rs)
        counts |= {r["matches"] for r in rs}
        n = rs[0]["matches"]
    if len(counts) != 1:
        sys.exit(f"{q}: the SCPs answered different match counts {sorted(counts)}")
    print(f"{q:<13}{int(n) // 20:>9}{med['ours']:>12.0f}{med['dcmtk']:>14.0f}{med['ours'] / med['dcmtk']:>7.1f}x")
PY
