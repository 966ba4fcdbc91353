#!/usr/bin/env python3
"""Load and abuse on loopback (127.0.0.1 only; every loop bounded in count and time).

The gateway runs with short, explicit limits so that each timeout is observed within
seconds (the defaults are longer; see `xenrad-gateway --help`). Scenarios, one after the
other, while a monitor polls /healthz on every HTTP surface (a new connection each time,
every 50 ms) and samples the gateway's RSS:

  http-flood       idle connections to every HTTP surface, under the connection cap:
                   all closed by the server within the header timeout
  http-over-cap    more connections than the cap on one surface: the excess is closed
                   at once, the surface serves again after the flood
  http-slowloris   request heads sent a byte at a time: closed within the header timeout
  http-slow-body   a body trickled below the rate the request timeout implies: 408/closed
  http-oversized   a 64 KiB head (431) and a body over --max-body (413)
  mllp-flood       connections beyond the per-address cap are closed at once; the held
                   ones are closed after the idle timeout
  mllp-slowloris   a frame dribbled a byte at a time: closed within the frame timeout
  mllp-oversized   a frame over --max-frame: refused, the connection closed
  dicom-flood      TCP connections that never send an A-ASSOCIATE-RQ: closed at ARTIM
  dicom-idle       established associations left idle (as many as the cap): aborted at
                   the idle timeout, then a new association is accepted
  dicom-slow-pdu   a P-DATA PDU dribbled a byte at a time: aborted within the PDU timeout
  dicom-oversized  a PDU longer than the negotiated maximum: aborted
  dicom-many       thousands of associations (associate, C-ECHO, release) in a row

Pass: every scenario's expectation holds, every /healthz probe answers 200, at least 99 %
of them within 100 ms, RSS stays under --rss-mib, and each door still serves afterwards.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import struct
import sys
import tempfile
import threading
import time
import shutil
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gw as G  # noqa: E402

L = G.LOOPBACK
LIMITS = {"header": 2, "request": 4, "mllp_idle": 3, "mllp_frame": 3, "artim": 3, "dicom_idle": 3,
          "pdu": 3, "http_conns": 256, "dicom_assocs": 32, "mllp_per_ip": 64}


class Monitor(threading.Thread):
    def __init__(self, gw: G.Gateway, deadline: float):
        super().__init__(daemon=True)
        self.gw, self.deadline = gw, deadline
        self.lat: list[float] = []
        self.fails: list[str] = []
        self.rss: list[int] = []
        self.stop = threading.Event()
        self.skip: set[str] = set()

    def run(self):
        doors = ["fhir", "hl7", "mpps"]
        i = 0
        while not self.stop.is_set() and time.monotonic() < self.deadline:
            d = doors[i % 3]
            i += 1
            self.rss.append(self.gw.rss_kib())
            if d in self.skip:
                time.sleep(0.05)
                continue
            t0 = time.monotonic()
            try:
                st, _ = G.http_req(self.gw.ports[d], "GET", "/healthz", key=False, timeout=5)
                dt = time.monotonic() - t0
                if st != 200:
                    self.fails.append(f"/healthz {d}: {st}")
                self.lat.append(dt)
            except OSError as e:
                self.fails.append(f"/healthz {d}: {e!r}")
            time.sleep(0.05)


def connect_many(port: int, n: int, timeout: float = 5.0) -> list[socket.socket]:
    out = []
    for _ in range(n):
        try:
            s = socket.create_connection((L, port), timeout=timeout)
            out.append(s)
        except OSError:
            break
    return out


def closed_by_peer(s: socket.socket, within: float) -> bool:
    """Whether the server closes (EOF or reset) within `within` seconds; reads and
    discards whatever it says first (e.g. a 408 or an A-ABORT)."""
    s.settimeout(0.2)
    end = time.monotonic() + within
    while time.monotonic() < end:
        try:
            if s.recv(65536) == b"":
                return True
        except socket.timeout:
            continue
        except OSError:
            return True
    return False


def wait_all_closed(socks: list[socket.socket], within: float, abort: bytes | None = None) -> int:
    """How many of `socks` the server closed within `within` seconds (polled together);
    with `abort`, receiving data that starts with it (a DICOM A-ABORT) counts as closed."""
    import selectors
    sel = selectors.DefaultSelector()
    for s in socks:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
    closed = 0
    end = time.monotonic() + within
    open_ = len(socks)
    while open_ and time.monotonic() < end:
        for key, _ in sel.select(timeout=0.2):
            s = key.fileobj
            try:
                data = s.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if data == b"" or (abort is not None and data.startswith(abort)):
                sel.unregister(s)
                closed += 1
                open_ -= 1
    sel.close()
    for s in socks:
        s.close()
    return closed


def dribble(s: socket.socket, data: bytes, every: float, within: float,
            abort: bytes | None = None) -> tuple[bool, float]:
    """Sends `data` a byte every `every` s until the server closes (or, with `abort`,
    answers data starting with it: a DICOM A-ABORT); (closed, seconds)."""
    t0 = time.monotonic()
    s.settimeout(0.05)
    for i in range(len(data)):
        if time.monotonic() - t0 > within:
            return False, time.monotonic() - t0
        try:
            s.send(data[i:i + 1])
        except OSError:
            return True, time.monotonic() - t0
        end = time.monotonic() + every
        while time.monotonic() < end:
            try:
                got = s.recv(65536)
                if got == b"" or (abort is not None and got.startswith(abort)):
                    return True, time.monotonic() - t0
            except socket.timeout:
                pass
            except OSError:
                return True, time.monotonic() - t0
    return closed_by_peer(s, max(0.0, within - (time.monotonic() - t0))), time.monotonic() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=1.0, help="multiplies connection and association counts")
    ap.add_argument("--associations", type=int, default=2000, help="dicom-many: associations in a row")
    ap.add_argument("--rss-mib", type=int, default=256, help="the stated RSS bound")
    args = ap.parse_args(argv)
    G.quiet_pynetdicom()
    work = Path(tempfile.mkdtemp(prefix="xenrad-abuse-"))
    extra = ["--http-header-timeout", str(LIMITS["header"]), "--http-request-timeout", str(LIMITS["request"]),
             "--http-max-connections", str(LIMITS["http_conns"]), "--mllp-idle-timeout", str(LIMITS["mllp_idle"]),
             "--mllp-frame-timeout", str(LIMITS["mllp_frame"]), "--dicom-artim-timeout", str(LIMITS["artim"]),
             "--dicom-idle-timeout", str(LIMITS["dicom_idle"]), "--dicom-pdu-timeout", str(LIMITS["pdu"]),
             "--dicom-max-associations", str(LIMITS["dicom_assocs"]), "--max-body", "1048576",
             "--max-frame", "1048576", "--max-pdu", "16384"]
    gw = G.Gateway(work / "data", work / "gateway.log", extra=extra)
    results: dict[str, dict] = {}
    fails: list[str] = []

    def expect(name: str, ok: bool, **info):
        results[name] = dict(info, ok=ok)
        if not ok:
            fails.append(f"{name}: {info}")
        G.log(f"  {name}: {'ok' if ok else 'FAILED'} {info}")

    sc = args.scale
    mon = None
    try:
        gw.start()
        rss_start = gw.rss_kib()
        mon = Monitor(gw, time.monotonic() + 900)
        mon.start()
        time.sleep(1.0)
        H = LIMITS["header"]

        # ---- HTTP
        n = int(200 * sc)
        socks = []
        for d in ("fhir", "hl7", "mpps"):
            socks += connect_many(gw.ports[d], n)
        c = wait_all_closed(socks, H + 3)
        expect("http-flood", c == len(socks) == 3 * n, connections=len(socks), closed_by_server=c,
               within_s=H + 3)

        mon.skip.add("mpps")
        over = connect_many(gw.ports["mpps"], LIMITS["http_conns"] + int(100 * sc))
        # Never more than the cap open at once: before the header timeout reaps the held
        # ones, everything beyond the cap has been closed by the server.
        excess_closed = wait_all_closed(over, H - 0.2)
        still_open = len(over) - excess_closed
        # Capacity returns once the server has seen the held connections close.
        st, t1 = None, time.monotonic()
        while st != 200 and time.monotonic() - t1 < 3:
            time.sleep(0.1)
            try:
                st, _ = G.http_req(gw.ports["mpps"], "GET", "/healthz", key=False, timeout=5)
            except OSError as e:
                st = repr(e)
        mon.skip.discard("mpps")
        expect("http-over-cap", still_open <= LIMITS["http_conns"] and excess_closed >= len(over) - LIMITS["http_conns"]
               and st == 200,
               opened=len(over), cap=LIMITS["http_conns"], closed_by_server=excess_closed,
               open_at_most=still_open, healthz_after=st)

        slow = []
        for d in ("fhir", "hl7", "mpps"):
            for _ in range(int(20 * sc)):
                s = socket.create_connection((L, gw.ports[d]), timeout=5)
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                slow.append(s)
        threads_out = []

        def drip(s):
            threads_out.append(dribble(s, b"X-Slow: " + b"a" * 200 + b"\r\n\r\n", 0.25, H + 4))

        ts = [threading.Thread(target=drip, args=(s,)) for s in slow]
        for t in ts:
            t.start()
        for t in ts:
            t.join(H + 10)
        closed = sum(1 for c_, _ in threads_out if c_)
        worst = max((t for _, t in threads_out), default=0)
        expect("http-slowloris", closed == len(slow), connections=len(slow), closed_by_server=closed,
               slowest_close_s=round(worst, 2), header_timeout_s=H)
        for s in slow:
            s.close()

        s = socket.create_connection((L, gw.ports["hl7"]), timeout=5)
        s.sendall(b"POST /v2/ingest HTTP/1.1\r\nHost: x\r\nX-API-Key: " + G.KEY.encode()
                  + b"\r\nContent-Type: text/plain\r\nContent-Length: 100000\r\n\r\n")
        t0 = time.monotonic()
        got = b""
        s.settimeout(0.2)
        while time.monotonic() - t0 < LIMITS["request"] + 5:
            try:
                s.send(b"M")
                chunk = s.recv(65536)
                if chunk == b"":
                    break
                got += chunk
            except socket.timeout:
                continue
            except OSError:
                break
        s.close()
        took = time.monotonic() - t0
        expect("http-slow-body", took < LIMITS["request"] + 3 and (got.startswith(b"HTTP/1.1 408") or got == b""),
               answered=got[:12].decode(errors="replace"), seconds=round(took, 2), request_timeout_s=LIMITS["request"])

        big_head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 65536 + b"\r\n\r\n"
        s = socket.create_connection((L, gw.ports["fhir"]), timeout=5)
        try:
            s.sendall(big_head)
            head = s.recv(64)
        except OSError:
            head = b""
        s.close()
        st_body, _ = G.http_req(gw.ports["hl7"], "POST", "/v2/ingest", b"M" * (2 << 20), "text/plain")
        expect("http-oversized", (head.startswith(b"HTTP/1.1 431") or head == b"") and st_body == 413,
               head_answer=head[:12].decode(errors="replace"), body_answer=st_body)

        # ---- MLLP
        mp = gw.ports["mllp"]
        flood = connect_many(mp, int(300 * sc))
        time.sleep(0.5)
        at_once = 0
        for s in flood[LIMITS["mllp_per_ip"]:]:
            s.setblocking(False)
            try:
                if s.recv(1) == b"":
                    at_once += 1
            except BlockingIOError:
                pass
            except OSError:
                at_once += 1
        held = flood[:LIMITS["mllp_per_ip"]]
        for s in flood[LIMITS["mllp_per_ip"]:]:
            s.close()
        c = wait_all_closed(held, LIMITS["mllp_idle"] + 3)
        expect("mllp-flood", at_once == len(flood) - LIMITS["mllp_per_ip"] and c == len(held),
               opened=len(flood), per_ip_cap=LIMITS["mllp_per_ip"], excess_closed_at_once=at_once,
               held_closed_at_idle=c, idle_timeout_s=LIMITS["mllp_idle"])

        slow = [socket.create_connection((L, mp), timeout=5) for _ in range(int(20 * sc))]
        threads_out = []

        def drip_mllp(s):
            threads_out.append(dribble(s, G.VT + b"MSH|^~\\&|A|B|C|D|20240101||ADT^A08|1|P|2.5.1\r" * 3,
                                       0.25, LIMITS["mllp_frame"] + 4))

        ts = [threading.Thread(target=drip_mllp, args=(s,)) for s in slow]
        for t in ts:
            t.start()
        for t in ts:
            t.join(30)
        closed = sum(1 for c_, _ in threads_out if c_)
        expect("mllp-slowloris", closed == len(slow), connections=len(slow), closed_by_server=closed,
               slowest_close_s=round(max((t for _, t in threads_out), default=0), 2),
               frame_timeout_s=LIMITS["mllp_frame"])
        for s in slow:
            s.close()

        s = socket.create_connection((L, mp), timeout=10)
        try:
            s.sendall(G.VT + b"MSH|^~\\&|A|B|C|D|20240101||ADT^A08|1|P|2.5.1\r" + b"Z" * (2 << 20) + G.FS + G.CR)
        except OSError:
            pass
        closed = closed_by_peer(s, 5)
        s.close()
        m = G.Mllp(mp)
        code, _ = G.msa(m.send(b"MSH|^~\\&|A|B|C|D|20240101||ADT^A08|ABUSE1|P|2.5.1\rPID|1||AB1^^^X^MR||Doe^J\r"))
        m.close()
        expect("mllp-oversized", closed and code == "AA", connection_closed=closed, next_message=code)

        # ---- DICOM
        dp = gw.ports["dicom"]
        flood = connect_many(dp, int(200 * sc))
        c = wait_all_closed(flood, LIMITS["artim"] + 3)
        expect("dicom-flood", c == len(flood), connections=len(flood), closed_at_artim=c, artim_s=LIMITS["artim"])

        idle = []
        for _ in range(LIMITS["dicom_assocs"]):
            try:
                a = G.RawAssoc(dp, [(G.VERIFICATION, [G.IMPLICIT_LE])])
                if a.pdu_type == 2:
                    idle.append(a)
                else:
                    a.close()
            except OSError:
                break
        t0 = time.monotonic()
        c = wait_all_closed([a.sock for a in idle], LIMITS["dicom_idle"] + 3, abort=b"\x07")
        took = time.monotonic() - t0
        # Capacity returns once the aborted associations' transports are closed.
        echo, t1 = None, time.monotonic()
        while echo is None and time.monotonic() - t1 < 5:
            a = G.RawAssoc(dp, [(G.VERIFICATION, [G.IMPLICIT_LE])])
            echo = a.echo(1) if a.pdu_type == 2 else None
            a.release()
            if echo is None:
                time.sleep(0.2)
        expect("dicom-idle", len(idle) == LIMITS["dicom_assocs"] and c == len(idle) and echo == 0,
               idle_associations=len(idle), aborted=c, seconds=round(took, 2), echo_after=echo)

        slow = []
        for _ in range(int(10 * sc)):
            a = G.RawAssoc(dp, [(G.VERIFICATION, [G.IMPLICIT_LE])])
            slow.append(a)
        threads_out = []
        pdu = G.p_data(1, G.c_echo_rq_command(1), True)

        def drip_pdu(a):
            threads_out.append(dribble(a.sock, pdu, 0.25, LIMITS["pdu"] + 4, abort=b"\x07"))

        ts = [threading.Thread(target=drip_pdu, args=(a,)) for a in slow]
        for t in ts:
            t.start()
        for t in ts:
            t.join(30)
        closed = sum(1 for c_, _ in threads_out if c_)
        expect("dicom-slow-pdu", closed == len(slow), associations=len(slow), aborted=closed,
               slowest_s=round(max((t for _, t in threads_out), default=0), 2), pdu_timeout_s=LIMITS["pdu"])
        for a in slow:
            a.close()

        a = G.RawAssoc(dp, [(G.VERIFICATION, [G.IMPLICIT_LE])])
        try:
            a.sock.sendall(struct.pack(">BBI", 4, 0, 10 << 20) + b"\0" * 65536)
        except OSError:
            pass
        try:
            t, _ = G.read_pdu(a.sock)
        except OSError:
            t = None
        closed = closed_by_peer(a.sock, 5)
        a.close()
        expect("dicom-oversized", t in (7, None) and closed, answer_pdu=t, closed=closed)

        n = int(args.associations * sc)
        ok = 0
        t0 = time.monotonic()
        peak_during = 0
        for i in range(n):
            if time.monotonic() - t0 > 300:
                break
            try:
                a = G.RawAssoc(dp, [(G.VERIFICATION, [G.IMPLICIT_LE])])
                if a.pdu_type == 2 and a.echo(1) == 0:
                    ok += 1
                a.release()
            except OSError:
                pass
            if i % 200 == 0:
                peak_during = max(peak_during, gw.rss_kib())
        expect("dicom-many", ok == n, associations=n, echoed=ok, seconds=round(time.monotonic() - t0, 1))

        # ---- every door still serves
        st, body = G.http_req(gw.ports["hl7"], "POST", "/v2/ingest",
                              b"MSH|^~\\&|A|B|C|D|20240101||ADT^A08|ABUSE2|P|2.5.1\rPID|1||AB2^^^X^MR||Doe^J\r",
                              "text/plain")
        st2, _ = G.http_req(gw.ports["mpps"], "POST", "/ingest?op=create",
                            G.seed_mpps(G.new_uid(), G.new_uid(), "IN PROGRESS"), "application/json")
        st3, _ = G.http_req(gw.ports["fhir"], "GET", "/fhir/Patient?identifier=X|AB2")
        expect("doors-after", st == 200 and st2 == 201 and st3 == 200 and gw.alive(), v2=st, mpps=st2, fhir=st3)
    except Exception as e:
        fails.append(f"campaign error: {e!r}\n{gw.log_tail()}")
    finally:
        if mon:
            mon.stop.set()
            mon.join(5)
        alive = gw.alive()
        rss_end = gw.rss_kib()
        try:
            gw.stop()
        except Exception as e:
            fails.append(f"stop: {e!r}")
        gw.kill()
    lat = sorted(mon.lat) if mon else []
    p = (lambda q: round(1000 * lat[min(len(lat) - 1, int(q * len(lat)))], 1)) if lat else (lambda q: None)
    within = sum(1 for x in lat if x <= 0.1)
    rss_peak = max(mon.rss or [0]) if mon else 0
    summary = {
        "healthz_probes": len(lat), "healthz_failures": len(mon.fails) if mon else None,
        "healthz_ms": {"p50": p(0.5), "p99": p(0.99), "max": round(1000 * lat[-1], 1) if lat else None,
                       "mean": round(1000 * statistics.mean(lat), 1) if lat else None},
        "healthz_within_100ms": f"{within}/{len(lat)}",
        "rss_mib": {"start": round(rss_start / 1024, 1) if 'rss_start' in dir() else None,
                    "peak": round(rss_peak / 1024, 1), "end": round(rss_end / 1024, 1), "bound": args.rss_mib},
        "alive": alive, "scenarios_ok": sum(1 for r in results.values() if r["ok"]), "scenarios": len(results),
    }
    if mon and mon.fails:
        fails += mon.fails[:10]
    if lat and within < 0.99 * len(lat):
        fails.append(f"/healthz within 100 ms only {within}/{len(lat)}")
    if rss_peak > args.rss_mib * 1024:
        fails.append(f"RSS peak {rss_peak >> 10} MiB over the bound {args.rss_mib} MiB")
    if len(results) < 14:
        fails.append(f"only {len(results)} of 14 scenarios ran")
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
