#!/usr/bin/env python3
"""Bad input through the doors: every fuzz corpus (fuzz/corpus/*) and every malformed
public sample replayed against the running gateway.

  fuzz/corpus/hl7v2_{parse,escape,validate}  POST /v2/ingest and one MLLP frame each
  fuzz/corpus/mllp_decode                    raw bytes on an MLLP connection
  fuzz/corpus/hl7v3_strict                   POST /v3/ingest
  fuzz/corpus/mpps_json                      by its selector byte (as the fuzz target):
                                             seed JSON POST /ingest, DICOM JSON MPPS-RS
                                             create/update, or a DIMSE N-CREATE/N-SET data set
  fuzz/corpus/fhir_json                      POST /fhir/Patient (a valid Patient is created
                                             once, one resource; anything else refused with
                                             400/413/415/422 and nothing stored)
  fuzz/corpus/dimse_pdu, dimse_assoc         raw bytes on a DICOM connection
  fuzz/corpus/dimse_command                  a command PDV on an established association
  fuzz/corpus/dimse_journal                  not replayable through a door (a crashed
                                             journal lane image); listed as such
  ../shared/corpus/hl7v2 (MANIFEST status != ok)     POST /v2/ingest and MLLP
  ../shared/corpus/hl7v3/ihe-iti-examples/malformed   POST /v3/ingest
  pydicom test files that are broken (truncated, bad VR, missing meta) and truncations of
  a valid CT at several offsets                        C-STORE on a raw association

Checked for every input: the gateway stays up; the answer is a defined one (HTTP 2xx/4xx
with the door's body, an HL7 ACK, a DIMSE status, an A-ABORT; never a 5xx or a silent
hang); what is refused leaves nothing stored (raw messages, MPPS records, resources,
instances and Part 10 files counted before and after), and what is accepted is stored
at most once. Known-malformed samples (HL7 v2 status malformed/fragment, v3 malformed,
truncated DICOM) must be refused.
"""

from __future__ import annotations

import argparse
import json
import shutil
import struct
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gw as G  # noqa: E402

MPPS = "1.2.840.10008.3.1.2.3.3"
# Manifest "malformed" samples a receiver accepts by HL7 v2.5.1 section 2.12 (unexpected
# segments and extra fields are ignored); xenrad-hl7v2 README, "Malformed public samples".
ACCEPTABLE_MALFORMED = {"hapi-hl7v2/util-messages__01_ORU_R01.hl7"}


class Counts:
    def __init__(self, gw: G.Gateway):
        self.gw = gw

    def snap(self) -> dict:
        db = G.Checker(self.gw)._db()
        try:
            q = lambda s: db.execute(s).fetchone()[0]  # noqa: E731
            out = {"hl7v2": q("SELECT COUNT(*) FROM messages WHERE protocol='hl7v2'"),
                   "hl7v3": q("SELECT COUNT(*) FROM messages WHERE protocol='hl7v3'"),
                   "mpps": q("SELECT COUNT(*) FROM mpps"),
                   # The audit trail (AuditEvent) records refusals too: not what the input stored.
                   "resources": q("SELECT COUNT(*) FROM resources WHERE resource_type != 'AuditEvent'"),
                   "instances": q("SELECT COUNT(*) FROM instances")}
        finally:
            db.close()
        d = self.gw.data_dir / "dicom"
        out["files"] = sum(1 for p in d.glob("*.dcm")) if d.exists() else 0
        return out


def n_command(field: int, sop_class: str, uid: str, msg_id: int) -> bytes:
    e = G._elem_implicit
    if field == 0x0140:
        els = (e(0, 0x0002, G._uid(sop_class)) + e(0, 0x0100, G._us(field)) + e(0, 0x0110, G._us(msg_id))
               + e(0, 0x0800, G._us(0)) + e(0, 0x1000, G._uid(uid)))
    else:
        els = (e(0, 0x0003, G._uid(sop_class)) + e(0, 0x0100, G._us(field)) + e(0, 0x0110, G._us(msg_id))
               + e(0, 0x0800, G._us(0)) + e(0, 0x1001, G._uid(uid)))
    return e(0, 0, struct.pack("<I", len(els))) + els


def dataset_of(raw: bytes) -> tuple[bytes, str | None]:
    """The data set of a Part 10 file (after its File Meta) and the meta's transfer syntax."""
    if len(raw) >= 132 and raw[128:132] == b"DICM":
        i = 132
        ts = None
        while i + 8 <= len(raw) and raw[i:i + 2] == b"\x02\x00":
            elem = struct.unpack("<H", raw[i + 2:i + 4])[0]
            vr = raw[i + 4:i + 6]
            if vr in (b"OB", b"OW", b"UN", b"SQ", b"UT"):
                n = struct.unpack("<I", raw[i + 8:i + 12])[0]
                val = raw[i + 12:i + 12 + n]
                i += 12 + n
            else:
                n = struct.unpack("<H", raw[i + 6:i + 8])[0]
                val = raw[i + 8:i + 8 + n]
                i += 8 + n
            if elem == 0x0010:
                ts = val.rstrip(b"\0 ").decode(errors="replace")
        return raw[i:], ts
    return raw, None


class Replay:
    def __init__(self, gw: G.Gateway):
        self.gw = gw
        self.counts = Counts(gw)
        self.fails: list[str] = []
        self.rows: list[dict] = []

    def record(self, corpus: str, name: str, door: str, answer: str, accepted: bool, must_refuse: bool,
               before: dict, after: dict, keys: tuple[str, ...]):
        delta = {k: after[k] - before[k] for k in keys}
        ok = True
        why = ""
        once = {k: v for k, v in delta.items() if k != "resources"}
        if accepted:
            if any(v > 1 for v in once.values()):
                ok, why = False, f"accepted and stored more than once: {delta}"
            if must_refuse:
                ok, why = False, "a known-malformed input was accepted"
        elif any(v != 0 for v in delta.values()):
            ok, why = False, f"refused but stored: {delta}"
        if not self.gw.alive():
            ok, why = False, "gateway died"
        row = {"corpus": corpus, "input": name, "door": door, "answer": answer, "accepted": accepted, "ok": ok}
        self.rows.append(row)
        if not ok:
            self.fails.append(f"{corpus}/{name} via {door}: {why} (answer {answer})")

    # ---- doors

    def v2_http(self, corpus, name, body, must_refuse=False):
        b = self.counts.snap()
        try:
            st, ack = G.http_req(self.gw.ports["hl7"], "POST", "/v2/ingest", body, "text/plain")
        except OSError as e:
            self.fails.append(f"{corpus}/{name} via v2 HTTP: {e!r}")
            return
        code, err = G.msa(ack)
        a = self.counts.snap()
        accepted = st == 200 and code in ("AA", "CA")
        if not accepted and not (st == 400 and code in ("AR", "AE", "CR", "CE")):
            self.fails.append(f"{corpus}/{name} via v2 HTTP: undefined answer HTTP {st} MSA {code!r}")
        self.record(corpus, name, "v2http", f"{st} {code}", accepted, must_refuse, b, a, ("hl7v2", "resources"))

    def v2_mllp(self, corpus, name, body, must_refuse=False):
        b = self.counts.snap()
        # Enhanced mode: MSH-15 NE asks for no accept acknowledgement (HL7 v2.5.1 §2.9.3).
        never = msh_field(body, 15) in (b"NE", b"ER")
        try:
            m = G.Mllp(self.gw.ports["mllp"], timeout=3 if never else 10)
            try:
                ack = m.send(body)
            finally:
                m.close()
            code, _ = G.msa(ack)
        except (OSError, ConnectionError):
            code = "closed"
        a = self.counts.snap()
        accepted = code in ("AA", "CA")
        if code == "closed" and never:
            code = "none (MSH-15 NE)"
            accepted = a["hl7v2"] > b["hl7v2"]
        elif code not in ("AA", "CA", "AR", "AE", "CR", "CE"):
            self.fails.append(f"{corpus}/{name} via MLLP: no ACK ({code})")
        self.record(corpus, name, "mllp", code, accepted, must_refuse, b, a, ("hl7v2", "resources"))

    def mllp_raw(self, corpus, name, raw):
        import socket
        b = self.counts.snap()
        acks = []
        try:
            s = socket.create_connection((G.LOOPBACK, self.gw.ports["mllp"]), timeout=3)
            s.sendall(raw)
            s.shutdown(socket.SHUT_WR)
            buf = b""
            end = time.monotonic() + 3
            while time.monotonic() < end:
                try:
                    c = s.recv(65536)
                except OSError:
                    break
                if not c:
                    break
                buf += c
            s.close()
            acks = [G.msa(f)[0] for f in buf.split(G.FS + G.CR) if f.strip()]
        except OSError:
            pass
        a = self.counts.snap()
        n_ok = sum(1 for c in acks if c in ("AA", "CA"))
        # Every message stored is acknowledged (possibly as a duplicate): stored <= AA count.
        grew = a["hl7v2"] - b["hl7v2"]
        ok = grew <= n_ok and self.gw.alive()
        self.rows.append({"corpus": corpus, "input": name, "door": "mllp-raw", "answer": ",".join(acks) or "-",
                          "accepted": n_ok > 0, "ok": ok})
        if not ok:
            self.fails.append(f"{corpus}/{name} raw MLLP: stored {grew} with {n_ok} positive ACKs")

    def v3(self, corpus, name, body, must_refuse=False):
        b = self.counts.snap()
        st, ack = G.http_req(self.gw.ports["hl7"], "POST", "/v3/ingest", body, "application/xml")
        a = self.counts.snap()
        accepted = st == 200 and (b'code="CA"' in ack or b'code="AA"' in ack)
        if not accepted and st != 400:
            self.fails.append(f"{corpus}/{name} via v3: undefined answer HTTP {st}")
        self.record(corpus, name, "v3", str(st), accepted, must_refuse, b, a, ("hl7v3", "resources"))

    def mpps_http(self, corpus, name, method_path, body):
        b = self.counts.snap()
        st, _ = G.http_req(self.gw.ports["mpps"], "POST", method_path, body, "application/json")
        a = self.counts.snap()
        if st >= 500:
            self.fails.append(f"{corpus}/{name} via MPPS {method_path}: HTTP {st}")
        self.record(corpus, name, "mpps" + method_path.split("?")[0], str(st), 200 <= st < 300, False, b, a,
                    ("mpps",))

    def fhir_write(self, corpus, name, body):
        # The FHIR API takes writes (create on every type): a defined answer (never 5xx), and
        # what it accepts is stored at most once, what it refuses not at all.
        b = self.counts.snap()
        st, _ = G.http_req(self.gw.ports["fhir"], "POST", "/fhir/Patient", body, "application/fhir+json")
        a = self.counts.snap()
        if st not in (200, 201, 400, 413, 415, 422):
            self.fails.append(f"{corpus}/{name}: POST /fhir/Patient answered {st}")
        accepted = 200 <= st < 300
        if accepted and a["resources"] - b["resources"] > 1:
            self.fails.append(f"{corpus}/{name}: one create stored {a['resources'] - b['resources']} resources")
        self.record(corpus, name, "fhir", str(st), accepted, False, b, a, ("resources",) if not accepted else ())

    def dicom_raw(self, corpus, name, raw):
        import socket
        b = self.counts.snap()
        answer = "-"
        try:
            s = socket.create_connection((G.LOOPBACK, self.gw.ports["dicom"]), timeout=3)
            s.sendall(raw)
            buf = b""
            end = time.monotonic() + 4
            s.settimeout(0.5)
            while time.monotonic() < end:
                try:
                    c = s.recv(65536)
                except socket.timeout:
                    continue
                except OSError:
                    break
                if not c:
                    break
                buf += c
            s.close()
            answer = "PDUs " + ",".join(f"{t:#x}" for t in pdu_types(buf))
        except OSError as e:
            answer = repr(e)
        a = self.counts.snap()
        self.record(corpus, name, "dicom-raw", answer, a["instances"] > b["instances"], False, b, a,
                    ("instances", "files", "mpps"))

    def dicom_command(self, corpus, name, cmd):
        b = self.counts.snap()
        ctx = [(G.VERIFICATION, [G.IMPLICIT_LE]), (G.CT_STORAGE, [G.IMPLICIT_LE, G.EXPLICIT_LE]),
               (MPPS, [G.IMPLICIT_LE, G.EXPLICIT_LE])]
        answer = "-"
        try:
            asc = G.RawAssoc(self.gw.ports["dicom"], ctx, timeout=5)
            for pc in (1, 3, 5):
                try:
                    asc.sock.sendall(G.p_data(pc, cmd, True))
                    st = asc.response()
                    answer = f"{st:#06x}" if st is not None else "no status"
                except (OSError, ConnectionError) as e:
                    answer = f"closed ({e.__class__.__name__})"
                    break
            asc.close()
        except (OSError, ConnectionError) as e:
            answer = repr(e)
        a = self.counts.snap()
        self.record(corpus, name, "dimse-command", answer, False, False, b, a, ("instances", "files", "mpps"))

    def mpps_dimse(self, corpus, name, data, explicit: bool):
        ts = G.EXPLICIT_LE if explicit else G.IMPLICIT_LE
        b = self.counts.snap()
        answers = []
        try:
            asc = G.RawAssoc(self.gw.ports["dicom"], [(MPPS, [ts])], timeout=5)
            uid = G.new_uid()
            for i, field in enumerate((0x0140, 0x0140, 0x0120)):
                asc.sock.sendall(G.p_data(1, n_command(field, MPPS, uid, i + 1), True, True))
                asc.sock.sendall(G.p_data(1, data, False, True))
                st = asc.response()
                answers.append(f"{st:#06x}" if st is not None else "none")
            asc.release()
        except (OSError, ConnectionError) as e:
            answers.append(f"closed ({e.__class__.__name__})")
        a = self.counts.snap()
        accepted = bool(answers) and answers[0] == "0x0000"
        self.record(corpus, name, "mpps-dimse", ",".join(answers), accepted, False, b, a, ("mpps",))

    def c_store(self, corpus, name, raw, must_refuse):
        import pydicom
        from io import BytesIO
        ds_bytes, ts = dataset_of(raw)
        sop_class, sop_uid = G.CT_STORAGE, None
        try:
            d = pydicom.dcmread(BytesIO(raw), force=True, stop_before_pixels=True)
            sop_class = str(d.get("SOPClassUID", G.CT_STORAGE)) or G.CT_STORAGE
            sop_uid = str(d.get("SOPInstanceUID", "")) or None
        except Exception:
            pass
        sop_uid = sop_uid or G.new_uid()
        b = self.counts.snap()
        tsx = [ts] if ts else [G.IMPLICIT_LE, G.EXPLICIT_LE]
        answer = "-"
        try:
            asc = G.RawAssoc(self.gw.ports["dicom"], [(sop_class, tsx)], timeout=10)
            if asc.accepted:
                pc = next(iter(asc.accepted))
                st = asc.store(pc, sop_class, sop_uid, ds_bytes)
                answer = f"{st:#06x}" if st is not None else "no status"
                asc.release()
            else:
                answer = "context rejected"
                asc.close()
        except (OSError, ConnectionError) as e:
            answer = f"closed ({e.__class__.__name__})"
        a = self.counts.snap()
        self.record(corpus, name, "c-store", answer, answer == "0x0000", must_refuse, b, a, ("instances", "files"))


def msh_field(body: bytes, n: int) -> bytes:
    """MSH-n of the first message (MSH-1 is the field separator itself)."""
    i = body.find(b"MSH")
    if i < 0 or len(body) < i + 4:
        return b""
    sep = body[i + 3:i + 4]
    seg = body[i:].split(b"\r")[0].split(b"\n")[0]
    f = seg.split(sep)
    return f[n - 1].strip() if len(f) > n - 1 else b""


def pdu_types(buf: bytes) -> list[int]:
    out, i = [], 0
    while i + 6 <= len(buf):
        t, _, n = struct.unpack(">BBI", buf[i:i + 6])
        out.append(t)
        i += 6 + n
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--report", type=Path, default=None, help="write every row as JSON lines here")
    args = ap.parse_args(argv)
    G.quiet_pynetdicom()
    work = Path(tempfile.mkdtemp(prefix="xenrad-badinput-"))
    gw = G.Gateway(work / "data", work / "gateway.log", extra=["--max-body", "4194304"])
    r = Replay(gw)
    notes: list[str] = []
    fuzz = G.ROOT / "fuzz/corpus"
    try:
        gw.start()
        for target in sorted(p.name for p in fuzz.iterdir() if p.is_dir()):
            files = sorted(p for p in (fuzz / target).iterdir() if p.is_file())
            for f in files:
                data = f.read_bytes()
                c = f"fuzz/{target}"
                if target.startswith("hl7v2_"):
                    r.v2_http(c, f.name, data)
                    r.v2_mllp(c, f.name, data)
                elif target == "mllp_decode":
                    r.mllp_raw(c, f.name, data)
                elif target == "hl7v3_strict":
                    r.v3(c, f.name, data)
                elif target == "mpps_json":
                    sel, body = (data[0], data[1:]) if data else (0, b"")
                    if sel % 4 == 0:
                        r.mpps_http(c, f.name, "/ingest", body)
                    elif sel % 4 == 1:
                        uid = G.new_uid()
                        r.mpps_http(c, f.name, f"/modality-performed-procedure-steps/{uid}", body)
                        r.mpps_http(c, f.name, f"/modality-performed-procedure-steps/{uid}?update", body)
                    else:
                        r.mpps_dimse(c, f.name, body, explicit=sel % 4 == 2)
                elif target == "fhir_json":
                    r.fhir_write(c, f.name, data)
                elif target in ("dimse_pdu", "dimse_assoc"):
                    r.dicom_raw(c, f.name, data)
                elif target == "dimse_command":
                    r.dicom_command(c, f.name, data)
                elif target == "dimse_journal":
                    notes.append(f"fuzz/dimse_journal/{f.name}: a journal lane image, no door takes it")
                else:
                    notes.append(f"fuzz/{target}: no door mapped")
        manifest = G.SHARED / "corpus/hl7v2/MANIFEST.tsv"
        if manifest.exists():
            rows = manifest.read_text().splitlines()
            head = rows[0].split("\t")
            for line in rows[1:]:
                row = dict(zip(head, line.split("\t")))
                if row.get("status", "ok") == "ok":
                    continue
                body = (G.SHARED / "corpus/hl7v2" / row["path"]).read_bytes()
                # Fragments and malformed samples must be refused, except those HL7 v2.5.1
                # chapter 2 makes acceptable to a receiver (xenrad-hl7v2 README, "Malformed
                # public samples": the decision per sample).
                must = row["status"] == "fragment" or (row["status"] == "malformed"
                                                       and row["path"] not in ACCEPTABLE_MALFORMED)
                c = f"hl7v2/{row['status']}"
                r.v2_http(c, row["path"], body, must_refuse=must)
                r.v2_mllp(c, row["path"], body, must_refuse=must)
        else:
            notes.append("../shared/corpus/hl7v2 absent: public HL7 v2 samples skipped")
        mal = G.SHARED / "corpus/hl7v3/ihe-iti-examples/malformed"
        for f in sorted(mal.glob("*.xml")) if mal.exists() else []:
            r.v3("hl7v3/malformed", f.name, f.read_bytes(), must_refuse=True)
        import pydicom.data
        ddir = Path(pydicom.data.get_testdata_file("CT_small.dcm")).parent
        broken = ["MR_truncated.dcm", "rtplan_truncated.dcm", "badVR.dcm", "meta_missing_tsyntax.dcm",
                  "no_meta.dcm", "no_meta_group_length.dcm", "ExplVR_LitEndNoMeta.dcm", "SC_rgb_small_odd.dcm",
                  "JPEG2000-embedded-sequence-delimiter.dcm", "UN_sequence.dcm"]
        for name in broken:
            p = ddir / name
            if p.exists():
                r.c_store("pydicom", name, p.read_bytes(), must_refuse=name.endswith("_truncated.dcm"))
        ct = (ddir / "CT_small.dcm").read_bytes()
        ds, _ = dataset_of(ct)
        head_len = len(ct) - len(ds)
        for cut in (0.1, 0.3, 0.5, 0.9, 0.999):
            n = head_len + int(len(ds) * cut)
            r.c_store("CT_small truncated", f"{cut:.3f}", ct[:n], must_refuse=True)
        r.c_store("CT_small", "whole (control)", ct, must_refuse=False)
        # The stored files and the instances table agree (no orphan, no row without file).
        c = r.counts.snap()
        if c["files"] != c["instances"]:
            r.fails.append(f"{c['files']} Part 10 files but {c['instances']} indexed instances")
        if not gw.alive():
            r.fails.append("gateway died")
        rc = gw.stop()
        if rc != 0:
            r.fails.append(f"gateway exited {rc} on SIGTERM")
    except Exception as e:
        r.fails.append(f"campaign error: {e!r}\n{gw.log_tail()}")
    finally:
        gw.kill()
    if args.report:
        with open(args.report, "w") as f:
            for row in r.rows:
                f.write(json.dumps(row) + "\n")
    per: dict[str, list[int]] = {}
    for row in r.rows:
        k = row["corpus"]
        per.setdefault(k, [0, 0, 0])
        per[k][0] += 1
        per[k][1] += 1 if row["accepted"] else 0
        per[k][2] += 0 if row["ok"] else 1
    for k, (n, acc, bad) in sorted(per.items()):
        print(f"  {k:32} inputs {n:4}  accepted {acc:4}  refused {n - acc:4}  failures {bad}")
    for n_ in notes:
        print("  note:", n_)
    for row in r.rows:
        if row["corpus"] == "hl7v2/malformed" and row["accepted"]:
            why = " (acceptable by HL7 v2.5.1 2.12)" if row["input"] in ACCEPTABLE_MALFORMED else ""
            print(f"  accepted malformed sample: {row['input']} via {row['door']} ({row['answer']}){why}")
    for f in r.fails[:60]:
        print("FAIL", f)
    print("SUMMARY " + json.dumps({"replayed": len(r.rows), "failures": len(r.fails)}), flush=True)
    if r.fails:
        print(f"gateway log: {work / 'gateway.log'}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if r.fails else 0


if __name__ == "__main__":
    sys.exit(main())
