#!/usr/bin/env python3
"""Crash campaign: SIGKILL the gateway at random moments under a mixed stream over every
door, restart it, and prove that every acknowledged message, instance and MPPS step is
present and none is stored twice.

Doors driven concurrently (one sender thread each, stop-and-wait like real senders):
  HL7 v2 over MLLP, HL7 v2 over HTTP (/v2/ingest), HL7 v3 over HTTP (/v3/ingest),
  MPPS seed JSON over HTTP (/ingest, create then set), MPPS over DIMSE (N-CREATE, N-SET),
  DICOM C-STORE (CT instances, several per association).
FHIR writes do not exist in the gateway yet (the FHIR surface is read-only), so there is
no FHIR sender; FHIR is the checker's read door.

An acknowledgement is HL7 AA/CA, DICOM 0x0000, HTTP 2xx. Every one is appended (and
flushed) to <work>/acks.jsonl before the sender moves on. What was in flight when the
gateway died is re-sent after the restart (a sender's retry), together with a sample of
items already acknowledged: both must be acknowledged again and stored once.

After every restart the items acknowledged in the previous epoch are checked; at the end
every acknowledged item is checked again, and the gateway must stop cleanly on SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gw as G  # noqa: E402


class Load:
    """The senders of one run. Each door keeps its own sequence so keys never repeat."""

    def __init__(self, gw: G.Gateway, acks: G.AckLog, tag: str, seed: int):
        self.gw, self.acks, self.tag = gw, acks, tag
        self.v2 = G.V2Source(seed=seed)
        self.v3 = G.V3Source()
        self.dicom = G.DicomSource()
        self.seq = {d: 0 for d in ("mllp", "v2http", "v3", "mpps_http", "mpps_dimse", "dicom")}
        self.epoch = 0
        self.inflight: list[tuple[str, dict]] = []
        self.nacks: list[str] = []
        self.lock = threading.Lock()
        self.counts = {d: 0 for d in self.seq}

    def next(self, door: str) -> int:
        with self.lock:
            self.seq[door] += 1
            return self.seq[door]

    def acked(self, door: str, item: dict, **extra):
        self.acks.ack(item, self.epoch, door=door, **extra)
        with self.lock:
            self.counts[door] += 1

    def lost(self, door: str, item: dict):
        with self.lock:
            self.inflight.append((door, item))

    def nack(self, door: str, item: dict, what: str):
        with self.lock:
            self.nacks.append(f"{door} {item.get('control') or item.get('uid') or item.get('sop') or item.get('message_id')}: {what}")

    # ---- one send per door; True on a positive acknowledgement, False on a negative
    # one, an exception when the transport failed (gateway gone).

    def send_v2_http(self, item: dict) -> bool:
        st, body = G.http_req(self.gw.ports["hl7"], "POST", "/v2/ingest", item["body"].encode("latin-1"),
                              "text/plain", timeout=20)
        code, _ = G.msa(body)
        if st == 200 and code in ("AA", "CA"):
            return True
        if st in (502, 503, 504):
            raise ConnectionError(f"HTTP {st} {code}")
        self.nack("v2http", item, f"HTTP {st} {code} {body[:300]!r}")
        return False

    def send_v3(self, item: dict) -> bool:
        st, body = G.http_req(self.gw.ports["hl7"], "POST", "/v3/ingest", item["body"].encode(),
                              "application/xml", timeout=20)
        if st == 200 and b'code="CA"' in body or st == 200 and b'code="AA"' in body:
            return True
        self.nack("v3", item, f"HTTP {st} {body[:300]!r}")
        return False

    def send_mpps_http(self, item: dict) -> bool:
        op = "create" if item["status"] == "IN PROGRESS" else "set"
        st, body = G.http_req(self.gw.ports["mpps"], "POST", f"/ingest?op={op}",
                              G.seed_mpps(item["uid"], item["study"], item["status"]), "application/json",
                              timeout=20)
        if 200 <= st < 300:
            return True
        self.nack("mpps_http", item, f"HTTP {st} {body[:300]!r}")
        return False

    # ---- sender threads

    def run_mllp(self, stop: threading.Event):
        conn = None
        try:
            while not stop.is_set():
                n = self.next("mllp")
                item = self.v2.make(f"{self.tag}M", n)
                try:
                    if conn is None:
                        conn = G.Mllp(self.gw.ports["mllp"], timeout=20)
                    code, _ = G.msa(conn.send(item["body"].encode("latin-1")))
                except OSError:
                    self.lost("mllp", item)
                    return
                if code in ("AA", "CA"):
                    self.acked("mllp", item)
                else:
                    self.nack("mllp", item, f"MSA {code}")
        finally:
            if conn:
                conn.close()

    def run_simple(self, door: str, make, send, stop: threading.Event):
        while not stop.is_set():
            n = self.next(door)
            item = make(n)
            if item is None:
                return
            try:
                ok = send(item)
            except OSError:
                self.lost(door, item)
                return
            if ok:
                self.acked(door, item)

    def run_mpps_http(self, stop: threading.Event):
        while not stop.is_set():
            n = self.next("mpps_http")
            uid, study = G.new_uid(), G.new_uid()
            for status in ("IN PROGRESS", "COMPLETED"):
                item = {"kind": "mpps", "uid": uid, "study": study, "status": status}
                try:
                    ok = self.send_mpps_http(item)
                except OSError:
                    self.lost("mpps_http", item)
                    return
                if not ok:
                    break
                self.acked("mpps_http", item)
            del n

    def run_mpps_dimse(self, stop: threading.Event):
        from pynetdicom.sop_class import ModalityPerformedProcedureStep as MPPS
        while not stop.is_set():
            try:
                a = G.dicom_assoc(self.gw.ports["dicom"], [MPPS], timeout=15)
            except Exception:
                return
            if not a.is_established:
                return
            try:
                for _ in range(3):
                    if stop.is_set():
                        break
                    n = self.next("mpps_dimse")
                    uid, study = G.new_uid(), G.new_uid()
                    for status in ("IN PROGRESS", "COMPLETED"):
                        item = {"kind": "mpps", "uid": uid, "study": study, "status": status,
                                "pid": f"{self.tag}N{n}"}
                        if not self.dimse_mpps(a, item, status):
                            return
            finally:
                if a.is_established:
                    a.release()

    def dimse_mpps(self, a, item: dict, status: str) -> bool:
        from pynetdicom.sop_class import ModalityPerformedProcedureStep as MPPS
        try:
            if status == "IN PROGRESS":
                st, _ = a.send_n_create(G.mpps_create_ds(item["study"], item["pid"]), MPPS, item["uid"])
            else:
                st, _ = a.send_n_set(G.mpps_set_ds(), MPPS, item["uid"])
        except Exception:
            st = None
        if st is None or "Status" not in st:
            self.lost("mpps_dimse", item)
            return False
        if st.Status == 0:
            self.acked("mpps_dimse", item)
            return True
        self.nack("mpps_dimse", item, f"status {st.Status:#06x}")
        return False

    def run_dicom(self, stop: threading.Event):
        from pynetdicom.sop_class import CTImageStorage
        while not stop.is_set():
            try:
                a = G.dicom_assoc(self.gw.ports["dicom"], [CTImageStorage], timeout=15)
            except Exception:
                return
            if not a.is_established:
                return
            study, series = G.new_uid(), G.new_uid()
            try:
                for _ in range(4):
                    if stop.is_set():
                        break
                    n = self.next("dicom")
                    item, ds = self.dicom.make(self.tag, n, study, series)
                    if not self.c_store(a, item, ds):
                        return
            finally:
                if a.is_established:
                    a.release()

    def c_store(self, a, item: dict, ds) -> bool:
        try:
            st = a.send_c_store(ds)
        except Exception:
            st = None
        if st is None or "Status" not in st:
            self.lost("dicom", dict(item, _ds=ds))
            return False
        if st.Status == 0:
            self.acked("dicom", item)
            return True
        self.nack("dicom", item, f"status {st.Status:#06x}")
        return False

    def threads(self, stop: threading.Event) -> list[threading.Thread]:
        t = [
            threading.Thread(target=self.run_mllp, args=(stop,)),
            threading.Thread(target=self.run_simple, args=(
                "v2http", lambda n: self.v2.make(f"{self.tag}H", n), self.send_v2_http, stop)),
            threading.Thread(target=self.run_simple, args=(
                "v3", lambda n: self.v3.make(self.tag, n), self.send_v3, stop)),
            threading.Thread(target=self.run_mpps_http, args=(stop,)),
            threading.Thread(target=self.run_mpps_dimse, args=(stop,)),
            threading.Thread(target=self.run_dicom, args=(stop,)),
        ]
        for x in t:
            x.daemon = True
        return t

    # ---- retries after a restart

    def resend(self, door: str, item: dict) -> str | None:
        """Re-sends one item as a sender's retry; None when acknowledged again."""
        try:
            if door in ("mllp", "v2http"):
                if door == "mllp":
                    c = G.Mllp(self.gw.ports["mllp"], timeout=20)
                    try:
                        code, _ = G.msa(c.send(item["body"].encode("latin-1")))
                    finally:
                        c.close()
                    ok = code in ("AA", "CA")
                else:
                    ok = self.send_v2_http(item)
            elif door == "v3":
                ok = self.send_v3(item)
            elif door == "mpps_http":
                ok = self.send_mpps_http(item)
            elif door == "mpps_dimse":
                from pynetdicom.sop_class import ModalityPerformedProcedureStep as MPPS
                a = G.dicom_assoc(self.gw.ports["dicom"], [MPPS], timeout=15)
                try:
                    ok = a.is_established and self.dimse_mpps(a, item, item["status"])
                finally:
                    if a.is_established:
                        a.release()
                return None if ok else "not acknowledged"
            elif door == "dicom":
                from pynetdicom.sop_class import CTImageStorage
                ds = item.get("_ds")
                if ds is None:
                    ds = self.dicom.make(self.tag, 0, item["study"], item["series"])[1]
                    ds.SOPInstanceUID = item["sop"]
                    ds.file_meta.MediaStorageSOPInstanceUID = item["sop"]
                a = G.dicom_assoc(self.gw.ports["dicom"], [CTImageStorage], timeout=15)
                try:
                    ok = a.is_established and self.c_store(a, {k: v for k, v in item.items() if k != "_ds"}, ds)
                finally:
                    if a.is_established:
                        a.release()
                return None if ok else "not acknowledged"
            else:
                return f"unknown door {door}"
        except OSError as e:
            return f"transport: {e!r}"
        if ok and door not in ("mpps_dimse", "dicom"):
            self.acked(door, item, retry=True)
        return None if ok else "not acknowledged"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kills", type=int, default=100)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--work", type=Path, default=None, help="work dir (default: a fresh temp dir)")
    ap.add_argument("--min-run", type=float, default=0.3, help="shortest time under load before a kill, s")
    ap.add_argument("--max-run", type=float, default=2.0, help="longest time under load before a kill, s")
    ap.add_argument("--resend", type=int, default=2, help="acknowledged items re-sent per door after each restart")
    ap.add_argument("--keep", action="store_true", help="keep the work dir")
    args = ap.parse_args(argv)
    G.quiet_pynetdicom()
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    work = args.work or Path(tempfile.mkdtemp(prefix="xenrad-crash-"))
    work.mkdir(parents=True, exist_ok=True)
    data = work / "data"
    if data.exists():
        shutil.rmtree(data)
    acks_path = work / "acks.jsonl"
    acks_path.unlink(missing_ok=True)
    gw = G.Gateway(data, work / "gateway.log")
    acks = G.AckLog(acks_path)
    tag = f"K{seed % 100000}"
    load = Load(gw, acks, tag, seed)
    checker = G.Checker(gw)
    G.log(f"crash campaign: {args.kills} kills, seed {seed}, work {work}, ports {gw.ports}")
    failures: list[str] = []
    retry_fail: list[str] = []
    started = time.monotonic()
    checked_upto = 0
    early_kills = 0
    try:
        gw.start()
        for k in range(args.kills + 1):
            load.epoch = k
            # Retries of what the last kill cut off, then a sample of acknowledged items again.
            pending, load.inflight = load.inflight, []
            for door, item in pending:
                r = load.resend(door, item)
                if r:
                    retry_fail.append(f"epoch {k}: retry of in-flight {door} item: {r}")
            prior = G.AckLog.read(acks_path)
            by_door: dict[str, list[dict]] = {}
            for a in prior:
                by_door.setdefault(a["door"], []).append(a)
            for door, lst in by_door.items():
                for a in rng.sample(lst, min(args.resend, len(lst))):
                    item = {x: y for x, y in a.items() if x not in ("epoch", "t", "door", "retry")}
                    if door == "mpps_dimse" and "pid" not in item:
                        continue
                    r = load.resend(door, item)
                    if r:
                        retry_fail.append(f"epoch {k}: duplicate {door} re-send: {r}")
            # Everything acknowledged before this restart must be there.
            acked = G.AckLog.read(acks_path)
            new = G.latest_per_key(acked[checked_upto:])
            failures += [f"after restart {k}: {f}" for f in checker.check(new)]
            checked_upto = len(acked)
            if k == args.kills:
                break
            stop = threading.Event()
            threads = load.threads(stop)
            for t in threads:
                t.start()
            time.sleep(rng.uniform(args.min_run, args.max_run))
            gw.kill()
            stop.set()
            for t in threads:
                t.join(timeout=60)
                if t.is_alive():
                    failures.append(f"epoch {k}: a sender did not finish within 60 s of the kill")
            if any(t.is_alive() for t in threads):
                break
            # Sometimes kill again while the gateway recovers (journal replay, WAL recovery).
            if rng.random() < 0.15:
                gw.spawn()
                time.sleep(rng.uniform(0.0, 0.15))
                gw.kill()
                early_kills += 1
            gw.start()
            if (k + 1) % 10 == 0:
                G.log(f"  {k + 1} kills, acknowledged so far {dict(load.counts)}, failures {len(failures)}")
        # Final proof over everything, then a clean stop.
        everything = G.latest_per_key(G.AckLog.read(acks_path))
        final = checker.check(everything)
        failures += [f"final: {f}" for f in final]
        rc = gw.stop()
        if rc != 0:
            failures.append(f"gateway exited {rc} on SIGTERM")
    finally:
        gw.kill()
        acks.close()
    total = G.latest_per_key(G.AckLog.read(acks_path))
    kinds: dict[str, int] = {}
    for a in total:
        kinds[a["door"]] = kinds.get(a["door"], 0) + 1
    summary = {
        "kills": args.kills, "kills_during_recovery": early_kills, "seed": seed,
        "seconds": round(time.monotonic() - started, 1),
        "acknowledged_items": len(total), "per_door": kinds,
        "present_exactly_once": len(total) - len({f.split(':')[0] for f in failures if 'final' in f}),
        "failures": len(failures), "negative_acks": len(load.nacks), "retry_failures": len(retry_fail),
        "gateway_starts": gw.starts,
    }
    for f in (failures + retry_fail + load.nacks)[:40]:
        print("FAIL", f)
    print("SUMMARY " + json.dumps(summary), flush=True)
    ok = not failures and not retry_fail and not load.nacks and all(v > 0 for v in kinds.values()) and len(kinds) == 6
    if not ok and len(kinds) < 6:
        print(f"FAIL: not every door was acknowledged at least once: {kinds}")
    if ok and not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"work dir kept: {work}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
