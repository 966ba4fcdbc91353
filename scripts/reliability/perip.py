#!/usr/bin/env python3
"""Per-source-IP connection limits (issue 20): one address flooding HTTP, MLLP and DICOM up to
its per-IP cap cannot starve a client from another address.

The gateway runs with small caps (HTTP 16 per IP of 64 per surface, MLLP 8 per IP, DICOM 4
associations per IP of 16). From 127.0.0.1 the script opens more connections than its per-IP
cap on each door and holds them; then, while they are held:

  - from 127.0.0.1 the excess connections were closed at once (HTTP, MLLP) or the extra
    association is rejected transiently (A-ASSOCIATE-RJ, DICOM);
  - from 127.0.0.2 (another loopback address) /healthz answers 200, an HL7 v2 message over
    MLLP is acknowledged AA and an association is accepted (A-ASSOCIATE-AC).
"""

from __future__ import annotations

import json
import shutil
import socket
import struct
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gw as G  # noqa: E402

CAPS = {"http": 16, "http_total": 64, "mllp": 8, "dicom": 4, "dicom_total": 16}
FLOODER, OTHER = "127.0.0.1", "127.0.0.2"


def connect_from(src: str, port: int, timeout: float = 5.0) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind((src, 0))
    s.connect((G.LOOPBACK, port))
    return s


def closed_at_once(s: socket.socket, within: float = 1.0) -> bool:
    s.settimeout(within)
    try:
        return s.recv(1) == b""
    except socket.timeout:
        return False
    except OSError:
        return True


def associate_from(src: str, port: int) -> int | None:
    """The first PDU type the gateway answers an A-ASSOCIATE-RQ with (2 AC, 3 RJ, 7 abort)."""
    s = connect_from(src, port)
    try:
        s.sendall(G.a_associate_rq([(G.VERIFICATION, [G.IMPLICIT_LE])]))
        t, _ = G.read_pdu(s)
        return t
    except (OSError, ConnectionError):
        return None
    finally:
        s.close()


def http_healthz_from(src: str, port: int) -> int | None:
    s = connect_from(src, port)
    try:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        head = s.recv(64)
        return int(head.split()[1]) if head.startswith(b"HTTP/1.1") else None
    except (OSError, ValueError, IndexError):
        return None
    finally:
        s.close()


def main() -> int:
    G.quiet_pynetdicom()
    work = Path(tempfile.mkdtemp(prefix="xenrad-perip-"))
    extra = ["--http-max-connections", str(CAPS["http_total"]), "--http-max-connections-per-ip", str(CAPS["http"]),
             "--mllp-max-connections-per-ip", str(CAPS["mllp"]),
             "--dicom-max-associations", str(CAPS["dicom_total"]),
             "--dicom-max-associations-per-ip", str(CAPS["dicom"]),
             "--http-header-timeout", "30", "--mllp-idle-timeout", "30", "--dicom-artim-timeout", "30"]
    gw = G.Gateway(work / "data", work / "gateway.log", extra=extra)
    fails: list[str] = []
    rows: list[str] = []

    def expect(name: str, ok: bool, **info):
        rows.append(f"  {name}: {'ok' if ok else 'FAILED'} {info}")
        if not ok:
            fails.append(f"{name}: {info}")

    held: list[socket.socket] = []
    try:
        gw.start()
        # HTTP: cap + 8 from the flooder on the FHIR surface.
        flood = [connect_from(FLOODER, gw.ports["fhir"]) for _ in range(CAPS["http"] + 8)]
        time.sleep(0.3)
        excess = sum(closed_at_once(s, 0.5) for s in flood[CAPS["http"]:])
        held += flood[:CAPS["http"]]
        st = http_healthz_from(OTHER, gw.ports["fhir"])
        expect("http", excess == 8 and st == 200, per_ip_cap=CAPS["http"], excess_closed_at_once=excess,
               other_address_healthz=st)
        # MLLP.
        flood = [connect_from(FLOODER, gw.ports["mllp"]) for _ in range(CAPS["mllp"] + 4)]
        time.sleep(0.3)
        excess = sum(closed_at_once(s, 0.5) for s in flood[CAPS["mllp"]:])
        held += flood[:CAPS["mllp"]]
        s = connect_from(OTHER, gw.ports["mllp"])
        s.sendall(G.VT + b"MSH|^~\\&|PERIP|FAC|XEN|FAC|20240101120000||ADT^A08|PERIP-1|P|2.5.1\rPID|1||P1\r"
                  + G.FS + G.CR)
        buf = b""
        while G.FS + G.CR not in buf:
            c = s.recv(4096)
            if not c:
                break
            buf += c
        s.close()
        code = G.msa(buf)[0]
        expect("mllp", excess == 4 and code == "AA", per_ip_cap=CAPS["mllp"], excess_closed_at_once=excess,
               other_address_ack=code)
        # DICOM: hold cap associations (connected, A-ASSOCIATE-RQ sent and accepted).
        assocs = []
        for _ in range(CAPS["dicom"]):
            a = connect_from(FLOODER, gw.ports["dicom"])
            a.sendall(G.a_associate_rq([(G.VERIFICATION, [G.IMPLICIT_LE])]))
            t, _ = G.read_pdu(a)
            assocs.append((a, t))
        held += [a for a, _ in assocs]
        accepted = sum(1 for _, t in assocs if t == 2)
        extra_from_flooder = associate_from(FLOODER, gw.ports["dicom"])
        from_other = associate_from(OTHER, gw.ports["dicom"])
        expect("dicom", accepted == CAPS["dicom"] and extra_from_flooder == 3 and from_other == 2,
               per_ip_cap=CAPS["dicom"], held_accepted=accepted, flooder_next_pdu=extra_from_flooder,
               other_address_pdu=from_other)
        for s in held:
            s.close()
        held = []
        # Slots come back when the held connections close.
        deadline, t = time.monotonic() + 5, None
        while time.monotonic() < deadline and t != 2:
            time.sleep(0.1)
            t = associate_from(FLOODER, gw.ports["dicom"])
        expect("dicom-slots-return", t == 2, flooder_pdu_after_release=t)
        if not gw.alive():
            fails.append("gateway died")
        rc = gw.stop()
        if rc != 0:
            fails.append(f"gateway exited {rc} on SIGTERM")
    except Exception as e:  # noqa: BLE001
        fails.append(f"campaign error: {e!r}\n{gw.log_tail()}")
    finally:
        for s in held:
            s.close()
        gw.kill()
    for r in rows:
        print(r)
    for f in fails:
        print("FAIL", f)
    print("SUMMARY " + json.dumps({"checks": len(rows), "failures": len(fails)}), flush=True)
    if fails:
        print(f"work dir kept: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
