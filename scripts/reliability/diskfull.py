#!/usr/bin/env python3
"""Disk full: the gateway's data directory lives on a small tmpfs this script mounts; the
file system is filled up mid-stream, then space is given back.

Proven, over every write door (HL7 v2 over HTTP and MLLP, HL7 v3, MPPS over HTTP and
DIMSE, C-STORE), one round-robin stream with the connections kept open:
  * no acknowledgement without storage: while full, each item is either acknowledged (and
    then found stored) or refused as a retryable lack of space: HL7 v2 AE with an ERR
    segment (HTTP 507 on /v2/ingest), HL7 v3 AE/CE with HTTP 507, MPPS HTTP 507, DIMSE
    N-CREATE 0x0213 (resource limitation), C-STORE 0xA700; a refused item is not stored;
  * reads keep working while full: /healthz on every HTTP surface, FHIR search, MPPS GET,
    C-ECHO;
  * the gateway resumes by itself once space returns (no restart): every door acknowledges
    again within a bound;
  * nothing already stored is damaged: every item acknowledged before, during and after
    the fill is present exactly once and byte-identical, also after a clean restart.

Needs root for the tmpfs mount; without it prints why and exits 0 (skipped).
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gw as G  # noqa: E402

DOORS = ("v2http", "mllp", "v3", "mpps_http", "mpps_dimse", "dicom")


class Stream:
    def __init__(self, gw: G.Gateway, tag: str):
        from pynetdicom.sop_class import CTImageStorage, ModalityPerformedProcedureStep, Verification
        self.gw, self.tag = gw, tag
        self.v2, self.v3, self.dcm = G.V2Source(seed=11), G.V3Source(), G.DicomSource()
        self.n = 0
        self.mllp = None
        self.assoc = None
        self.contexts = [CTImageStorage, ModalityPerformedProcedureStep, Verification]
        self.study, self.series = G.new_uid(), G.new_uid()

    def dicom(self):
        if self.assoc is None or not self.assoc.is_established:
            self.assoc = G.dicom_assoc(self.gw.ports["dicom"], self.contexts, timeout=20)
            if not self.assoc.is_established:
                raise ConnectionError("association refused")
        return self.assoc

    def send(self, door: str) -> tuple[str, dict, str]:
        """(ack | refused | wrong, item, detail)."""
        self.n += 1
        n, tag = self.n, self.tag
        try:
            if door in ("v2http", "mllp"):
                item = self.v2.make(f"{tag}{'H' if door == 'v2http' else 'M'}", n)
                body = item["body"].encode("latin-1")
                if door == "v2http":
                    st, ack = G.http_req(self.gw.ports["hl7"], "POST", "/v2/ingest", body, "text/plain")
                else:
                    if self.mllp is None:
                        self.mllp = G.Mllp(self.gw.ports["mllp"], timeout=20)
                    st, ack = None, self.mllp.send(body)
                code, err = G.msa(ack)
                if code in ("AA", "CA") and st in (None, 200):
                    return "ack", item, ""
                if code in ("AE", "CE") and err and st in (None, 507):
                    return "refused", item, ""
                return "wrong", item, f"HTTP {st} MSA {code} ERR {err}: {ack[:200]!r}"
            if door == "v3":
                item = self.v3.make(tag, n)
                st, ack = G.http_req(self.gw.ports["hl7"], "POST", "/v3/ingest", item["body"].encode(),
                                     "application/xml")
                if st == 200 and b'code="CA"' in ack:
                    return "ack", item, ""
                if st == 507 and (b'code="CE"' in ack or b'code="AE"' in ack):
                    return "refused", item, ""
                return "wrong", item, f"HTTP {st}: {ack[:300]!r}"
            if door == "mpps_http":
                item = {"kind": "mpps", "uid": G.new_uid(), "study": G.new_uid(), "status": "IN PROGRESS"}
                st, body = G.http_req(self.gw.ports["mpps"], "POST", "/ingest?op=create",
                                      G.seed_mpps(item["uid"], item["study"], item["status"]), "application/json")
                if st == 201:
                    return "ack", item, ""
                if st == 507:
                    return "refused", item, ""
                return "wrong", item, f"HTTP {st}: {body[:300]!r}"
            if door == "mpps_dimse":
                from pynetdicom.sop_class import ModalityPerformedProcedureStep as MPPS
                item = {"kind": "mpps", "uid": G.new_uid(), "study": G.new_uid(), "status": "IN PROGRESS"}
                st, _ = self.dicom().send_n_create(G.mpps_create_ds(item["study"], f"{tag}N{n}"), MPPS, item["uid"])
                s = st.get("Status") if st else None
                if s == 0:
                    return "ack", item, ""
                if s == 0x0213:
                    return "refused", item, ""
                return "wrong", item, f"N-CREATE status {s}"
            if door == "dicom":
                item, ds = self.dcm.make(tag, n, self.study, self.series)
                st = self.dicom().send_c_store(ds)
                s = st.get("Status") if st else None
                if s == 0:
                    return "ack", item, ""
                if s == 0xA700:
                    return "refused", item, ""
                return "wrong", item, f"C-STORE status {s}"
        except OSError as e:
            self.mllp = None
            return "wrong", {"kind": door}, f"transport failed: {e!r}"
        raise ValueError(door)

    def reads_ok(self, known: dict) -> list[str]:
        bad = []
        for d in ("fhir", "hl7", "mpps"):
            t0 = time.monotonic()
            try:
                st, _ = G.http_req(self.gw.ports[d], "GET", "/healthz", key=False, timeout=5)
            except OSError as e:
                st = repr(e)
            if st != 200:
                bad.append(f"/healthz on {d}: {st}")
            elif time.monotonic() - t0 > 1.0:
                bad.append(f"/healthz on {d} took {time.monotonic() - t0:.2f}s")
        try:
            if known.get("v2"):
                b = G.fhir_search(self.gw, "Patient", f"identifier=XENFAULT|{known['v2']['pid']}")
                if b.get("total") != 1:
                    bad.append(f"FHIR search while full: total {b.get('total')}")
            if known.get("mpps"):
                st, _ = G.http_req(self.gw.ports["mpps"], "GET", f"/modality-performed-procedure-steps/{known['mpps']['uid']}")
                if st != 200:
                    bad.append(f"MPPS GET while full: {st}")
            st = self.dicom().send_c_echo()
            if not st or st.get("Status") != 0:
                bad.append(f"C-ECHO while full: {st}")
        except Exception as e:
            bad.append(f"read while full failed: {e!r}")
        return bad


def fill(path: Path) -> int:
    """Writes `path` until the file system refuses (ENOSPC); its size."""
    n = 0
    with open(path, "wb", buffering=0) as f:
        for chunk in (1 << 20, 1 << 16, 4096, 512):
            buf = b"\xa5" * chunk
            while True:
                try:
                    f.write(buf)
                    n += chunk
                except OSError as e:
                    if e.errno != errno.ENOSPC:
                        raise
                    break
        try:
            os.fsync(f.fileno())
        except OSError:
            pass
    return n


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mb", type=int, default=48, help="tmpfs size")
    ap.add_argument("--rounds", type=int, default=6, help="rounds (one item per door) before, during and after")
    ap.add_argument("--full-rounds", type=int, default=25, help="rounds while the disk is full")
    ap.add_argument("--resume-within", type=float, default=30.0, help="seconds allowed to resume")
    args = ap.parse_args(argv)
    G.quiet_pynetdicom()
    work = Path(tempfile.mkdtemp(prefix="xenrad-diskfull-"))
    mnt = work / "mnt"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={args.size_mb}m,mode=0700", "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        print(f"SKIPPED disk-full campaign: cannot mount a tmpfs ({r.stderr.strip() or 'not root'}); "
              "run as root (CI does)")
        shutil.rmtree(work, ignore_errors=True)
        return 0
    gw = G.Gateway(mnt / "data", work / "gateway.log", journal_mb=1)
    fails: list[str] = []
    acked: list[dict] = []
    refused: list[dict] = []
    stats = {"before": {}, "full": {}, "after": {}}
    resumed_after = None
    filler = mnt / "filler"
    try:
        gw.start()
        s = Stream(gw, f"F{os.getpid()}")
        known = {}

        def round_(phase: str):
            for d in DOORS:
                res, item, detail = s.send(d)
                stats[phase].setdefault(d, {}).setdefault(res, 0)
                stats[phase][d][res] += 1
                if res == "ack":
                    acked.append(item)
                    known.setdefault(item["kind"], item)
                elif res == "refused":
                    if phase != "full":
                        fails.append(f"{phase}: {d} refused although space is free")
                    refused.append(item)
                else:
                    fails.append(f"{phase}: {d}: {detail}")

        for _ in range(args.rounds):
            round_("before")
        filled = fill(filler)
        G.log(f"filled the {args.size_mb} MiB tmpfs with {filled >> 20} MiB more")
        for i in range(args.full_rounds):
            round_("full")
            if i % 5 == 4:
                fails += [f"full: {b}" for b in s.reads_ok(known)]
                # Keep it full: whatever the gateway freed (WAL reset, temp files) is taken again.
                try:
                    fill(mnt / f"filler{i}")
                except OSError:
                    pass
        if not gw.alive():
            fails.append("gateway died while the disk was full")
        # Refused items are not stored.
        db = G.Checker(gw)._db()
        try:
            for it in refused:
                if it["kind"] == "v2":
                    n = db.execute("SELECT COUNT(*) FROM messages WHERE message_id=?", (it["control"],)).fetchone()[0]
                    if n:
                        fails.append(f"refused v2 {it['control']} is stored")
                elif it["kind"] == "dicom" and (gw.data_dir / "dicom" / (it["sop"] + ".dcm")).exists():
                    fails.append(f"refused instance {it['sop']} has a file")
                elif it["kind"] == "mpps":
                    st, _ = G.http_req(gw.ports["mpps"], "GET", f"/modality-performed-procedure-steps/{it['uid']}")
                    if st != 404:
                        fails.append(f"refused MPPS {it['uid']}: GET {st}")
        finally:
            db.close()
        # Space returns: the gateway must resume by itself.
        for f in mnt.glob("filler*"):
            f.unlink()
        t0 = time.monotonic()
        while True:
            results = [s.send(d) for d in DOORS]
            for res, item, _ in results:
                if res == "ack":
                    acked.append(item)
            if all(r[0] == "ack" for r in results):
                resumed_after = time.monotonic() - t0
                break
            if time.monotonic() - t0 > args.resume_within:
                fails.append(f"did not resume within {args.resume_within}s: {[(r[0], r[2]) for r in results]}")
                break
            time.sleep(0.5)
        for _ in range(args.rounds):
            round_("after")
        ck = G.Checker(gw)
        fails += [f"present (running): {f}" for f in ck.check(acked)]
        rc = gw.stop()
        if rc != 0:
            fails.append(f"gateway exited {rc} on SIGTERM")
        gw.start()
        fails += [f"present (after restart): {f}" for f in ck.check(acked)]
        db = ck._db()
        try:
            ic = db.execute("PRAGMA integrity_check").fetchone()[0]
            if ic != "ok":
                fails.append(f"database integrity_check: {ic}")
        finally:
            db.close()
        gw.stop()
    except Exception as e:
        fails.append(f"campaign error: {e!r}\n{gw.log_tail()}")
    finally:
        gw.kill()
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)
    refusals = sum(v.get("refused", 0) for v in stats["full"].values())
    if refusals == 0 and not fails:
        fails.append("the full disk refused nothing: the fill did not take effect")
    summary = {"acknowledged": len(acked), "refused_while_full": refusals, "per_phase": stats,
               "resumed_after_s": None if resumed_after is None else round(resumed_after, 2),
               "failures": len(fails)}
    for f in fails[:40]:
        print("FAIL", f)
    print("SUMMARY " + json.dumps(summary), flush=True)
    if fails:
        print(f"gateway log: {work / 'gateway.log'}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
