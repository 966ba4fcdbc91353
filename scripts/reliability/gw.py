"""Shared pieces of the black-box fault campaigns against a running `xenrad-gateway`.

Everything here talks to the gateway through its five doors on 127.0.0.1 only:
process control (start on free loopback ports with a fresh data dir, SIGKILL, SIGTERM),
clients for each door (HTTP, MLLP, DICOM through pynetdicom and through a minimal raw
Upper Layer client), message/instance generators with unique keys, and the checker that
proves an acknowledged item is present exactly once.

The only look behind the doors is read-only: the raw HL7 messages table of the SQLite
store (no door serves raw messages) and the Part 10 files under `<data-dir>/dicom`.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import re
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

KEY = "faults-key-0123456789abcdef"
ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared"
LOOPBACK = "127.0.0.1"


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, flush=True)


def free_ports(n: int) -> list[int]:
    """n distinct free loopback ports (bound together, then released)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind((LOOPBACK, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def find_binary() -> str:
    b = os.environ.get("XENRAD_GATEWAY_BIN")
    if b:
        return b
    for p in (ROOT / "target/debug/xenrad-gateway", ROOT / "target/release/xenrad-gateway"):
        if p.exists():
            return str(p)
    sys.exit("xenrad-gateway not built: run `cargo build --bin xenrad-gateway` or set XENRAD_GATEWAY_BIN")


class Gateway:
    """One gateway process on its own loopback ports and data dir; restartable."""

    DOORS = ("fhir", "hl7", "mpps", "mllp", "dicom")

    def __init__(self, data_dir: Path, log_path: Path, extra: list[str] | None = None, binary: str | None = None,
                 journal_mb: int = 4):
        self.binary = binary or find_binary()
        self.data_dir = Path(data_dir)
        self.log_path = Path(log_path)
        self.extra = list(extra or [])
        self.ports = dict(zip(self.DOORS, free_ports(len(self.DOORS))))
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self.journal_mb = journal_mb

    def argv(self) -> list[str]:
        a = [self.binary]
        for d in self.DOORS:
            a += [f"--{d}-addr", f"{LOOPBACK}:{self.ports[d]}"]
        a += ["--data-dir", str(self.data_dir), "--dicom-journal-mb", str(self.journal_mb), "--ae-title", "XENRAD"]
        return a + self.extra

    def spawn(self):
        env = dict(os.environ, XENRAD_API_KEY=KEY, XENRAD_LOG=os.environ.get("XENRAD_LOG", "warn"))
        logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.argv(), stdout=subprocess.DEVNULL, stderr=logf, env=env)
        logf.close()
        self.starts += 1

    def start(self, timeout: float = 60.0):
        self.spawn()
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float = 60.0):
        deadline = time.monotonic() + timeout
        for d in self.DOORS:
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"gateway exited with {self.proc.returncode} while starting:\n{self.log_tail()}")
                try:
                    socket.create_connection((LOOPBACK, self.ports[d]), timeout=0.5).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"gateway did not listen on {d} within {timeout}s:\n{self.log_tail()}")
                    time.sleep(0.02)
        # Listening is not ready: the DICOM journal is replayed after bind. /healthz answers
        # once the surfaces are served; a C-ECHO once associations are served.
        while True:
            try:
                st, _ = http_req(self.ports["fhir"], "GET", "/healthz", timeout=2)
                if st == 200:
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"gateway not ready within {timeout}s:\n{self.log_tail()}")
            time.sleep(0.02)

    def kill(self):
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        if self.proc:
            self.proc.wait(timeout=30)

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM; the gateway must drain and exit by itself."""
        if not self.proc or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise RuntimeError(f"gateway did not stop within {timeout}s of SIGTERM")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def rss_kib(self) -> int:
        try:
            for line in open(f"/proc/{self.proc.pid}/status"):
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        except OSError:
            pass
        return 0

    def log_tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


# ---------------------------------------------------------------- HTTP


def http_req(port: int, method: str, path: str, body: bytes | None = None, ctype: str | None = None,
             timeout: float = 15.0, key: bool = True, headers: dict | None = None) -> tuple[int, bytes]:
    c = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    try:
        h = {}
        if key:
            h["X-API-Key"] = KEY
        if ctype:
            h["Content-Type"] = ctype
        h.update(headers or {})
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def fhir_search(gw: Gateway, rtype: str, query: str) -> dict:
    st, body = http_req(gw.ports["fhir"], "GET", f"/fhir/{rtype}?{query}")
    if st != 200:
        raise RuntimeError(f"FHIR search {rtype}?{query}: HTTP {st} {body[:200]!r}")
    return json.loads(body)


# ---------------------------------------------------------------- MLLP

VT, FS, CR = b"\x0b", b"\x1c", b"\x0d"


class Mllp:
    def __init__(self, port: int, timeout: float = 15.0):
        self.sock = socket.create_connection((LOOPBACK, port), timeout=timeout)
        self.buf = b""

    def send(self, msg: bytes) -> bytes:
        self.sock.sendall(VT + msg + FS + CR)
        while FS + CR not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("MLLP peer closed")
            self.buf += chunk
        frame, _, self.buf = self.buf.partition(FS + CR)
        return frame.lstrip(VT)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def msa(ack: bytes) -> tuple[str, bool]:
    """(MSA-1, whether an ERR segment is present) of an HL7 v2 ACK."""
    code, err = "", False
    for seg in re.split(rb"[\r\n]+", ack):
        if seg.startswith(b"MSA"):
            f = seg.split(seg[3:4] or b"|")
            code = f[1].decode(errors="replace") if len(f) > 1 else ""
        elif seg.startswith(b"ERR"):
            err = True
    return code, err


# ---------------------------------------------------------------- generators


class V2Source:
    """Realistic v2.5.1 radiology messages from the shared generator, each rewritten to a
    unique control id (MSH-10) and a unique patient identifier (PID-3) so that the
    checker can find exactly the message and the Patient it projects."""

    def __init__(self, seed: int = 7, count: int = 200):
        gen = SHARED / "tools/hl7v2_corpus_gen.py"
        self.msgs: list[bytes] = []
        if gen.exists():
            out = subprocess.run([sys.executable, str(gen), "--count", str(count), "--seed", str(seed),
                                  "--format", "mllp", "--out", "/dev/stdout"], capture_output=True, check=True).stdout
            self.msgs = [f.lstrip(VT) for f in out.split(FS + CR) if f.strip()]
            # ORU^R01 results are refused (AE 204) unless their order was stored first; the
            # rewritten messages reference no stored order, so results are left out.
            self.msgs = [m for m in self.msgs if b"|ORU^" not in m.split(b"\r")[0]]
        if not self.msgs:
            self.msgs = [b"MSH|^~\\&|APP|FAC|XEN|FAC|20240101120000||ADT^A08|1|P|2.5.1\rPID|1||ID1||Doe^John||19800101|M\r"]

    def make(self, tag: str, n: int) -> dict:
        raw = self.msgs[n % len(self.msgs)]
        segs = raw.split(b"\r")
        out = []
        mtype = ""
        for s in segs:
            if s.startswith(b"MSH|"):
                f = s.split(b"|")
                f[9] = f"{tag}-{n}".encode()
                mtype = f[8].decode(errors="replace")
                s = b"|".join(f)
            elif s.startswith(b"PID|"):
                f = s.split(b"|")
                while len(f) < 4:
                    f.append(b"")
                f[3] = f"{tag}P{n}^^^XENFAULT^MR".encode()
                s = b"|".join(f)
            out.append(s)
        body = b"\r".join(out)
        return {"kind": "v2", "control": f"{tag}-{n}", "pid": f"{tag}P{n}", "mtype": mtype,
                "projects_patient": mtype.startswith(("ADT", "ORM")), "body": body.decode("latin-1")}


class V3Source:
    TEMPLATE = SHARED / "corpus/hl7v3/ihe-iti-examples/PIXV3__01_PatientRegistryRecordAdded1.xml"

    def __init__(self):
        self.xml = self.TEMPLATE.read_text() if self.TEMPLATE.exists() else None

    def make(self, tag: str, n: int) -> dict | None:
        if self.xml is None:
            return None
        mid = str(uuid.uuid4())
        x = self.xml.replace("22a0f9e0-4454-11dc-a6be-3603d6866807", mid, 1)
        x = x.replace('extension="34827G234"', f'extension="{tag}V{n}"').replace(
            'extension="38273N237"', f'extension="{tag}O{n}"')
        return {"kind": "v3", "message_id": mid, "pid_system": "urn:oid:1.2.840.114350.1.13.99998.8734",
                "pid": f"{tag}V{n}", "body": x}


def new_uid() -> str:
    return "2.25." + str(uuid.uuid4().int)


def seed_mpps(uid: str, study: str, status: str) -> bytes:
    return json.dumps({"sop_instance_uid": uid, "study_uid": study, "status": status}).encode()


def mpps_create_ds(study: str, pid: str):
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence
    ds = Dataset()
    ds.PerformedProcedureStepStatus = "IN PROGRESS"
    ds.PerformedProcedureStepID = "PPS1"
    ds.PerformedStationAETitle = "MODALITY"
    ds.PerformedProcedureStepStartDate = "20240101"
    ds.PerformedProcedureStepStartTime = "120000"
    ds.Modality = "CT"
    ds.PatientName = "Fault^Pat"
    ds.PatientID = pid
    ssa = Dataset()
    ssa.StudyInstanceUID = study
    ds.ScheduledStepAttributesSequence = Sequence([ssa])
    for k in ["PatientBirthDate", "PatientSex", "ReferencedPatientSequence", "PerformedProcedureStepDescription",
              "PerformedProcedureTypeDescription", "ProcedureCodeSequence", "PerformedProcedureStepEndDate",
              "PerformedProcedureStepEndTime", "PerformedStationName", "PerformedLocation", "PerformedSeriesSequence"]:
        setattr(ds, k, Sequence([]) if k.endswith("Sequence") else "")
    return ds


def mpps_set_ds():
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence
    upd = Dataset()
    upd.PerformedProcedureStepStatus = "COMPLETED"
    upd.PerformedProcedureStepEndDate = "20240101"
    upd.PerformedProcedureStepEndTime = "121500"
    ser = Dataset()
    ser.SeriesInstanceUID = "1.2.826.0.1.3680043.2.1143.779"
    ser.RetrieveAETitle = ""
    ser.SeriesDescription = ""
    ser.PerformingPhysicianName = ""
    ser.OperatorsName = ""
    ser.ProtocolName = "P"
    img = Dataset()
    img.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    img.ReferencedSOPInstanceUID = "1.2.826.0.1.3680043.2.1143.780"
    ser.ReferencedImageSequence = Sequence([img])
    ser.ReferencedNonImageCompositeSOPInstanceSequence = Sequence([])
    upd.PerformedSeriesSequence = Sequence([ser])
    return upd


class DicomSource:
    """CT_small.dcm from pydicom's test data with fresh Study/Series/SOP UIDs."""

    def __init__(self):
        import pydicom
        import pydicom.data
        self.base = pydicom.dcmread(pydicom.data.get_testdata_file("CT_small.dcm"))
        import hashlib
        self.pixel_sha = hashlib.sha256(self.base.PixelData).hexdigest()

    def make(self, tag: str, n: int, study: str, series: str) -> tuple[dict, object]:
        ds = self.base.copy()
        sop = new_uid()
        ds.SOPInstanceUID = sop
        ds.file_meta.MediaStorageSOPInstanceUID = sop
        ds.StudyInstanceUID = study
        ds.SeriesInstanceUID = series
        ds.PatientID = f"{tag}D{n}"
        ds.InstanceNumber = n
        return {"kind": "dicom", "sop": sop, "study": study, "series": series, "pixel_sha": self.pixel_sha}, ds


def quiet_pynetdicom():
    import logging
    logging.getLogger("pynetdicom").setLevel(logging.CRITICAL)
    logging.getLogger("pynetdicom").propagate = False


def dicom_assoc(port: int, contexts, timeout: float = 10.0, calling: str = "FAULTS"):
    from pynetdicom import AE
    ae = AE(ae_title=calling)
    ae.acse_timeout = timeout
    ae.dimse_timeout = timeout
    ae.network_timeout = timeout
    ae.connection_timeout = timeout
    for c in contexts:
        ae.add_requested_context(c)
    a = ae.associate(LOOPBACK, port, ae_title="XENRAD")
    return a


# ---------------------------------------------------------------- raw DICOM Upper Layer

IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
VERIFICATION = "1.2.840.10008.1.1"
CT_STORAGE = "1.2.840.10008.5.1.4.1.1.2"


def _item(t: int, payload: bytes) -> bytes:
    return struct.pack(">BBH", t, 0, len(payload)) + payload


def _uid(u: str) -> bytes:
    b = u.encode()
    return b + (b"\0" if len(b) % 2 else b"")


def a_associate_rq(contexts: list[tuple[str, list[str]]], called: str = "XENRAD", calling: str = "RAWSCU",
                   max_pdu: int = 16384) -> bytes:
    body = struct.pack(">HH", 1, 0) + called.ljust(16).encode() + calling.ljust(16).encode() + bytes(32)
    body += _item(0x10, b"1.2.840.10008.3.1.1.1")
    for i, (asx, tsx) in enumerate(contexts):
        pc = bytes([1 + 2 * i, 0, 0, 0]) + _item(0x30, _uid(asx)) + b"".join(_item(0x40, _uid(t)) for t in tsx)
        body += _item(0x20, pc)
    ui = _item(0x51, struct.pack(">I", max_pdu)) + _item(0x52, b"1.2.826.0.1.3680043.9.9999.1")
    body += _item(0x50, ui)
    return struct.pack(">BBI", 1, 0, len(body)) + body


def read_pdu(sock: socket.socket) -> tuple[int, bytes]:
    hdr = _recv_exact(sock, 6)
    t, _, n = struct.unpack(">BBI", hdr)
    return t, _recv_exact(sock, n)


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    out = b""
    while len(out) < n:
        c = sock.recv(n - len(out))
        if not c:
            raise ConnectionError("peer closed")
        out += c
    return out


def accepted_contexts(ac_body: bytes) -> dict[int, str]:
    """pc id -> accepted transfer syntax, from an A-ASSOCIATE-AC body."""
    out = {}
    i = 68
    while i + 4 <= len(ac_body):
        t, _, n = struct.unpack(">BBH", ac_body[i:i + 4])
        item = ac_body[i + 4:i + 4 + n]
        if t == 0x21 and len(item) >= 4 and item[2] == 0:
            ts = item[4 + 4:].split(b"\0")[0].decode(errors="replace") if len(item) > 8 else ""
            out[item[0]] = ts
        i += 4 + n
    return out


def p_data(pc_id: int, data: bytes, command: bool, last: bool = True) -> bytes:
    hdr = (1 if command else 0) | (2 if last else 0)
    pdv = struct.pack(">IB", len(data) + 2, pc_id) + bytes([hdr]) + data
    return struct.pack(">BBI", 4, 0, len(pdv)) + pdv


def _elem_implicit(group: int, elem: int, value: bytes) -> bytes:
    return struct.pack("<HHI", group, elem, len(value)) + value


def _us(v: int) -> bytes:
    return struct.pack("<H", v)


def c_store_rq_command(msg_id: int, sop_class: str, sop_uid: str) -> bytes:
    els = (_elem_implicit(0, 0x0002, _uid(sop_class)) + _elem_implicit(0, 0x0100, _us(0x0001))
           + _elem_implicit(0, 0x0110, _us(msg_id)) + _elem_implicit(0, 0x0700, _us(0))
           + _elem_implicit(0, 0x0800, _us(0x0000)) + _elem_implicit(0, 0x1000, _uid(sop_uid)))
    return _elem_implicit(0, 0x0000, struct.pack("<I", len(els))) + els


def c_echo_rq_command(msg_id: int) -> bytes:
    els = (_elem_implicit(0, 0x0002, _uid(VERIFICATION)) + _elem_implicit(0, 0x0100, _us(0x0030))
           + _elem_implicit(0, 0x0110, _us(msg_id)) + _elem_implicit(0, 0x0800, _us(0x0101)))
    return _elem_implicit(0, 0x0000, struct.pack("<I", len(els))) + els


def command_status(cmd: bytes) -> int | None:
    i = 0
    while i + 8 <= len(cmd):
        g, e, n = struct.unpack("<HHI", cmd[i:i + 8])
        if (g, e) == (0, 0x0900) and n == 2:
            return struct.unpack("<H", cmd[i + 8:i + 10])[0]
        i += 8 + n
    return None


class RawAssoc:
    """A minimal DICOM requestor on a raw socket (for malformed and abusive traffic)."""

    def __init__(self, port: int, contexts: list[tuple[str, list[str]]], timeout: float = 10.0,
                 called: str = "XENRAD"):
        self.sock = socket.create_connection((LOOPBACK, port), timeout=timeout)
        self.sock.sendall(a_associate_rq(contexts, called=called))
        t, body = read_pdu(self.sock)
        self.pdu_type = t
        self.accepted = accepted_contexts(body) if t == 2 else {}

    def response(self) -> int | None:
        """Reads P-DATA until a complete command; its Status."""
        cmd = b""
        while True:
            t, body = read_pdu(self.sock)
            if t != 4:
                raise ConnectionError(f"PDU type {t:#x} instead of P-DATA")
            i = 0
            while i + 6 <= len(body):
                n = struct.unpack(">I", body[i:i + 4])[0]
                hdr = body[i + 5]
                data = body[i + 6:i + 4 + n]
                i += 4 + n
                if hdr & 1:
                    cmd += data
                    if hdr & 2:
                        return command_status(cmd)

    def store(self, pc_id: int, sop_class: str, sop_uid: str, dataset: bytes, msg_id: int = 1,
              max_pdv: int = 16000) -> int | None:
        self.sock.sendall(p_data(pc_id, c_store_rq_command(msg_id, sop_class, sop_uid), True))
        chunks = [dataset[i:i + max_pdv] for i in range(0, len(dataset), max_pdv)] or [b""]
        for k, c in enumerate(chunks):
            self.sock.sendall(p_data(pc_id, c, False, k == len(chunks) - 1))
        return self.response()

    def echo(self, pc_id: int, msg_id: int = 1) -> int | None:
        self.sock.sendall(p_data(pc_id, c_echo_rq_command(msg_id), True))
        return self.response()

    def release(self):
        try:
            self.sock.sendall(struct.pack(">BBI", 5, 0, 4) + bytes(4))
            read_pdu(self.sock)
        except OSError:
            pass
        self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


# ---------------------------------------------------------------- checker


class Checker:
    """Proves acknowledged items are present exactly once, through the doors (FHIR search,
    MPPS-RS GET, ImagingStudy) plus the stored files and raw-message rows."""

    def __init__(self, gw: Gateway):
        self.gw = gw
        self.db_path = gw.data_dir / "xenrad.sqlite3"

    def _db(self):
        return sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=30)

    def check(self, items: list[dict]) -> list[str]:
        fails: list[str] = []
        db = self._db()
        try:
            studies: dict[str, dict] = {}
            for it in items:
                k = it["kind"]
                try:
                    if k == "v2":
                        self._v2(db, it, fails)
                    elif k == "v3":
                        self._v3(db, it, fails)
                    elif k == "mpps":
                        self._mpps(it, fails)
                    elif k == "dicom":
                        self._dicom_file(it, fails)
                        studies.setdefault(it["study"], {}).setdefault(it["sop"], it)
                except Exception as e:  # a failing read is a failure of the proof
                    fails.append(f"{k} {it.get('control') or it.get('uid') or it.get('sop')}: check error {e!r}")
            for study, sops in studies.items():
                self._study(study, sops, fails)
        finally:
            db.close()
        return fails

    def _v2(self, db, it, fails):
        rows = db.execute("SELECT body FROM messages WHERE protocol='hl7v2' AND message_id=?",
                          (it["control"],)).fetchall()
        if len(rows) != 1:
            fails.append(f"v2 {it['control']}: {len(rows)} stored messages (want 1)")
        elif bytes(rows[0][0]).rstrip(b"\r\n") != it["body"].encode("latin-1").rstrip(b"\r\n"):
            fails.append(f"v2 {it['control']}: stored body differs from the acknowledged one")
        if it["projects_patient"]:
            b = fhir_search(self.gw, "Patient", f"identifier=XENFAULT|{it['pid']}")
            if b.get("total") != 1:
                fails.append(f"v2 {it['control']}: Patient identifier {it['pid']} found {b.get('total')} times")

    def _v3(self, db, it, fails):
        n = db.execute("SELECT COUNT(*) FROM messages WHERE protocol='hl7v3' AND message_id LIKE ?",
                       (it["message_id"] + "^%",)).fetchone()[0]
        if n != 1:
            fails.append(f"v3 {it['message_id']}: {n} stored messages (want 1)")
        b = fhir_search(self.gw, "Patient", f"identifier={it['pid_system']}|{it['pid']}")
        if b.get("total") != 1:
            fails.append(f"v3 {it['message_id']}: Patient {it['pid']} found {b.get('total')} times")

    def _mpps(self, it, fails):
        st, body = http_req(self.gw.ports["mpps"], "GET", f"/modality-performed-procedure-steps/{it['uid']}")
        if st != 200:
            fails.append(f"mpps {it['uid']} ({it['door']}): GET {st}")
            return
        text = body.decode(errors="replace")
        want = it["status"]
        ok = want in text or (want == "IN PROGRESS" and ("COMPLETED" in text or "DISCONTINUED" in text))
        if not ok:
            fails.append(f"mpps {it['uid']} ({it['door']}): acknowledged {want}, stored {text[:200]}")
        b = fhir_search(self.gw, "Procedure", f"identifier={it['uid']}")
        if b.get("total") != 1:
            fails.append(f"mpps {it['uid']}: Procedure found {b.get('total')} times")

    def _dicom_file(self, it, fails):
        import hashlib
        import pydicom
        p = self.gw.data_dir / "dicom" / (it["sop"] + ".dcm")
        if not p.exists():
            fails.append(f"dicom {it['sop']}: no file {p.name}")
            return
        ds = pydicom.dcmread(p)
        if ds.SOPInstanceUID != it["sop"] or ds.StudyInstanceUID != it["study"]:
            fails.append(f"dicom {it['sop']}: stored file names another instance")
        elif hashlib.sha256(ds.PixelData).hexdigest() != it["pixel_sha"]:
            fails.append(f"dicom {it['sop']}: pixel data differ")

    def _study(self, study, sops, fails):
        b = fhir_search(self.gw, "ImagingStudy", f"identifier=urn:oid:{study}")
        if b.get("total") != 1:
            fails.append(f"study {study}: ImagingStudy found {b.get('total')} times")
            return
        seen: dict[str, int] = {}
        for s in b["entry"][0]["resource"].get("series", []):
            for i in s.get("instance", []):
                seen[i["uid"]] = seen.get(i["uid"], 0) + 1
        for sop in sops:
            if seen.get(sop, 0) != 1:
                fails.append(f"dicom {sop}: listed {seen.get(sop, 0)} times in ImagingStudy {study}")
        dup = [u for u, n in seen.items() if n > 1]
        if dup:
            fails.append(f"study {study}: instances listed twice: {dup[:3]}")


class AckLog:
    """What the load generator saw acknowledged, one JSON object per line (flushed)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.lock = threading.Lock()
        self.f = open(self.path, "a")

    def ack(self, item: dict, epoch: int, **extra):
        rec = dict(item, epoch=epoch, t=time.time(), **extra)
        with self.lock:
            self.f.write(json.dumps(rec) + "\n")
            self.f.flush()

    def close(self):
        self.f.close()

    @staticmethod
    def read(path: Path) -> list[dict]:
        out = []
        for line in open(path):
            line = line.strip()
            if line:
                out.append(json.loads(line))
        return out


def latest_per_key(acks: list[dict]) -> list[dict]:
    """One record per item (the last acknowledged state of an MPPS step wins)."""
    order = {"IN PROGRESS": 0, "COMPLETED": 1, "DISCONTINUED": 1}
    best: dict[tuple, dict] = {}
    for a in acks:
        k = a["kind"]
        key = (k, a.get("control") or a.get("message_id") or a.get("uid") or a.get("sop"))
        if k == "mpps" and key in best and order[best[key]["status"]] > order[a["status"]]:
            continue
        best[key] = a
    return list(best.values())


def rnd(seed=None) -> random.Random:
    return random.Random(seed)
