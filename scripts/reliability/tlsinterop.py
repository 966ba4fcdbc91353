#!/usr/bin/env python3
"""TLS and mutual TLS on every listener of the running gateway, against clients that are not
rustls: OpenSSL (`openssl s_client`, curl), DCMTK (`echoscu`/`storescu` with `+tls`/`+tla`)
and Python's `ssl` module (OpenSSL underneath).

The certificates are made here with the openssl command line: a test CA, a server
certificate for localhost/127.0.0.1 and a client certificate signed by it, and a rogue CA
with its own client certificate. Two gateways run one after the other:

  tls   every listener (FHIR, HL7 HTTP, MPPS, MLLP, DICOM) serves TLS, no client certificate
  mtls  every listener requires a client certificate chaining to the test CA

Checked: the handshake verifies against the test CA (and fails against the rogue one); TLS
1.3 and 1.2 are offered and TLS 1.1 is refused; requests through each client reach the
door and are stored (HL7 v2 over HTTPS and MLLPS, an MPPS seed, a C-STORE); under mutual TLS a
client without a certificate or with the rogue CA's is refused before anything is stored;
every HTTPS answer carries Strict-Transport-Security.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gw as G  # noqa: E402

HOST = "localhost"


def run(argv: list[str], timeout: float = 30, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(argv, input=stdin, capture_output=True, timeout=timeout)


def make_certs(d: Path) -> dict[str, Path]:
    """CA, server and client certificates (RSA 2048: every DCMTK TLS profile takes RSA)."""
    def ossl(*a):
        r = run(["openssl", *a])
        if r.returncode != 0:
            raise RuntimeError(f"openssl {' '.join(a)}: {r.stderr.decode()}")

    out: dict[str, Path] = {}
    for ca in ("ca", "rogue-ca"):
        ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN=Xenrad {ca}",
             "-keyout", str(d / f"{ca}.key"), "-out", str(d / f"{ca}.crt"),
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        out[ca] = d / f"{ca}.crt"

    def leaf(name: str, ca: str, ext: str):
        ossl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}", "-keyout", str(d / f"{name}.key"),
             "-out", str(d / f"{name}.csr"))
        (d / f"{name}.ext").write_text(ext)
        ossl("x509", "-req", "-in", str(d / f"{name}.csr"), "-CA", str(d / f"{ca}.crt"), "-CAkey",
             str(d / f"{ca}.key"), "-CAcreateserial", "-days", "2", "-out", str(d / f"{name}.crt"),
             "-extfile", str(d / f"{name}.ext"))
        out[name] = d / f"{name}.crt"
        out[name + ".key"] = d / f"{name}.key"

    leaf("server", "ca", "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    leaf("client", "ca", "extendedKeyUsage=clientAuth\n")
    leaf("rogue", "rogue-ca", "extendedKeyUsage=clientAuth\n")
    return out


class TlsGateway(G.Gateway):
    """A gateway whose listeners all serve TLS; readiness is probed over TLS."""

    def __init__(self, work: Path, certs: dict[str, Path], mutual: bool):
        extra = ["--max-body", "4194304"]
        for door in self.DOORS:
            extra += [f"--{door}-tls-cert", str(certs["server"]), f"--{door}-tls-key", str(certs["server.key"])]
            if mutual:
                extra += [f"--{door}-tls-client-ca", str(certs["ca"])]
        super().__init__(work / "data", work / "gateway.log", extra=extra)
        self.certs = certs
        self.mutual = mutual

    def context(self, client: str | None = "client", ca: str = "ca") -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.certs[ca]))
        if client:
            ctx.load_cert_chain(str(self.certs[client]), str(self.certs[client + ".key"]))
        return ctx

    def wait_ready(self, timeout: float = 60.0):
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                st, _, _ = https(self, "fhir", "GET", "/healthz")
                if st == 200:
                    return
            except (OSError, ssl.SSLError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"gateway not ready within {timeout}s:\n{self.log_tail()}")
            time.sleep(0.05)


def https(gw: TlsGateway, door: str, method: str, path: str, body: bytes | None = None, ctype: str | None = None,
          client: str | None = "client") -> tuple[int, bytes, dict]:
    import http.client
    c = http.client.HTTPSConnection(HOST, gw.ports[door], context=gw.context(client), timeout=10)
    try:
        h = {"X-API-Key": G.KEY}
        if ctype:
            h["Content-Type"] = ctype
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        return r.status, r.read(), {k.lower(): v for k, v in r.getheaders()}
    finally:
        c.close()


def v2_message(tag: str) -> bytes:
    return (f"MSH|^~\\&|TLSTEST|FAC|XENRAD|GW|20240101120000||ADT^A08|{tag}|P|2.5.1\r"
            f"PID|1||{tag}^^^FAC^MR||Tls^{tag}||19800101|F\r").encode()


class Campaign:
    def __init__(self):
        self.fails: list[str] = []
        self.rows: list[tuple[str, str, str]] = []

    def check(self, mode: str, what: str, ok: bool, detail: str = ""):
        self.rows.append((mode, what, "ok" if ok else "FAIL"))
        if not ok:
            self.fails.append(f"[{mode}] {what}: {detail}")

    def stored(self, gw: TlsGateway, sql: str, args=()) -> int:
        db = G.Checker(gw)._db()
        try:
            return db.execute(sql, args).fetchone()[0]
        finally:
            db.close()

    # ---- OpenSSL s_client

    def s_client(self, gw: TlsGateway, mode: str):
        port = str(gw.ports["fhir"])
        base = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", HOST,
                "-verify_return_error", "-verify_hostname", HOST]
        req = f"GET /healthz HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode()
        client = ["-cert", str(gw.certs["client"]), "-key", str(gw.certs["client.key"])]
        for proto in ("-tls1_3", "-tls1_2"):
            r = run(base + ["-CAfile", str(gw.certs["ca"]), proto, "-ign_eof"] + client, stdin=req)
            out = r.stdout.decode(errors="replace")
            want = "TLSv1.3" if proto == "-tls1_3" else "TLSv1.2"
            self.check(mode, f"openssl s_client {proto}: verified handshake and HTTP 200",
                       "Verify return code: 0 (ok)" in out and want in out and "HTTP/1.1 200" in out,
                       out[-600:] + r.stderr.decode(errors="replace")[-300:])
        r = run(base + ["-CAfile", str(gw.certs["ca"]), "-tls1_1"] + client, stdin=req)
        out = r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")
        self.check(mode, "openssl s_client -tls1_1 refused", "HTTP/1.1 200" not in out and r.returncode != 0,
                   out[-400:])
        r = run(base + ["-CAfile", str(gw.certs["rogue-ca"])] + client, stdin=req)
        out = r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")
        self.check(mode, "openssl s_client against the rogue CA fails verification",
                   r.returncode != 0 and "HTTP/1.1 200" not in out, out[-400:])
        if gw.mutual:
            r = run(base + ["-CAfile", str(gw.certs["ca"]), "-ign_eof"], stdin=req)
            out = r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")
            self.check(mode, "openssl s_client without a client certificate gets no answer",
                       "HTTP/1.1 200" not in out, out[-400:])

    # ---- curl

    def curl(self, gw: TlsGateway, mode: str):
        def c(door, path, *extra, client="client", data: bytes | None = None, ctype="text/plain"):
            argv = ["curl", "-sS", "-o", "-", "-D", "-", "--max-time", "10", "--cacert", str(gw.certs["ca"]),
                    "-H", f"X-API-Key: {G.KEY}", *extra]
            if client:
                argv += ["--cert", str(gw.certs[client]), "--key", str(gw.certs[client + ".key"])]
            if data is not None:
                argv += ["-H", f"Content-Type: {ctype}", "--data-binary", "@-"]
            argv.append(f"https://{HOST}:{gw.ports[door]}{path}")
            return run(argv, stdin=data)

        tag = f"CURL-{mode}"
        r = c("hl7", "/v2/ingest", data=v2_message(tag))
        out = r.stdout.decode(errors="replace")
        self.check(mode, "curl HL7 v2 over HTTPS: 200 and an AA", r.returncode == 0 and " 200" in out.split("\r\n")[0]
                   and "MSA|AA" in out, out[-400:] + r.stderr.decode(errors="replace"))
        self.check(mode, "  ... and stored once",
                   self.stored(gw, "SELECT COUNT(*) FROM messages WHERE protocol='hl7v2' AND message_id = ?",
                               (tag,)) == 1)
        head = out.lower()
        self.check(mode, "curl: Strict-Transport-Security on the HTTPS answer", "strict-transport-security:" in head,
                   out[:400])
        uid = G.new_uid()
        r = c("mpps", "/ingest", data=G.seed_mpps(uid, G.new_uid(), "IN PROGRESS"), ctype="application/json")
        out = r.stdout.decode(errors="replace")
        self.check(mode, "curl MPPS over HTTPS: 2xx", r.returncode == 0 and out.split("\r\n")[0].split(" ")[1]
                   .startswith("2"), out[-400:] + r.stderr.decode(errors="replace"))
        r = c("fhir", "/fhir/metadata")
        self.check(mode, "curl FHIR over HTTPS: 200", r.returncode == 0 and " 200" in r.stdout.decode(
            errors="replace").split("\r\n")[0], r.stderr.decode(errors="replace"))
        r = run(["curl", "-sS", "--max-time", "10", "--cacert", str(gw.certs["rogue-ca"]),
                 f"https://{HOST}:{gw.ports['fhir']}/healthz"])
        self.check(mode, "curl trusting only the rogue CA refuses the server", r.returncode != 0,
                   r.stdout.decode(errors="replace"))
        if gw.mutual:
            before = self.stored(gw, "SELECT COUNT(*) FROM messages")
            for who, client in (("no client certificate", None), ("the rogue CA's certificate", "rogue")):
                r = c("hl7", "/v2/ingest", client=client, data=v2_message(f"CURL-REFUSED-{who[:3]}"))
                self.check(mode, f"curl with {who}: refused", r.returncode != 0 and "MSA|" not in
                           r.stdout.decode(errors="replace"), r.stdout.decode(errors="replace")[-300:])
            self.check(mode, "  ... and nothing stored", self.stored(gw, "SELECT COUNT(*) FROM messages") == before)

    # ---- Python ssl (MLLPS, HTTPS)

    def python_ssl(self, gw: TlsGateway, mode: str):
        def mllps(client: str | None, tag: str) -> str:
            raw = socket.create_connection(("127.0.0.1", gw.ports["mllp"]), timeout=10)
            s = gw.context(client).wrap_socket(raw, server_hostname=HOST)
            try:
                s.sendall(G.VT + v2_message(tag) + G.FS + G.CR)
                buf = b""
                while G.FS + G.CR not in buf:
                    c = s.recv(65536)
                    if not c:
                        break
                    buf += c
                return f"{s.version()} " + G.msa(buf)[0]
            finally:
                s.close()

        got = mllps("client", f"PY-{mode}")
        self.check(mode, "Python ssl MLLPS: AA", got.endswith(" AA") and got.startswith("TLSv1."), got)
        st, _, h = https(gw, "fhir", "GET", "/fhir/metadata")
        self.check(mode, "Python ssl HTTPS FHIR metadata: 200 with HSTS", st == 200 and "strict-transport-security" in h,
                   f"{st} {h}")
        if gw.mutual:
            before = self.stored(gw, "SELECT COUNT(*) FROM messages")
            for who, client in (("no client certificate", None), ("the rogue CA's certificate", "rogue")):
                try:
                    got = mllps(client, f"PY-REFUSED-{who[:3]}")
                except (OSError, ssl.SSLError) as e:
                    got = f"refused ({e.__class__.__name__})"
                self.check(mode, f"Python ssl MLLPS with {who}: refused", got.startswith("refused") or not
                           got.endswith("AA"), got)
            self.check(mode, "  ... and nothing stored", self.stored(gw, "SELECT COUNT(*) FROM messages") == before)
        # TLS 1.2 only, through Python too.
        ctx = gw.context("client")
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        raw = socket.create_connection(("127.0.0.1", gw.ports["hl7"]), timeout=10)
        try:
            s = ctx.wrap_socket(raw, server_hostname=HOST)
            self.check(mode, "Python ssl TLS 1.2 handshake", s.version() == "TLSv1.2", str(s.version()))
            s.close()
        except (OSError, ssl.SSLError) as e:
            self.check(mode, "Python ssl TLS 1.2 handshake", False, repr(e))

    # ---- DCMTK

    def dcmtk(self, gw: TlsGateway, mode: str, ct: Path | None):
        port = str(gw.ports["dicom"])
        ca = ["+cf", str(gw.certs["ca"])]
        auth = ["+tls", str(gw.certs["client.key"]), str(gw.certs["client"])]
        anon = ["+tla"]
        common = ["-aet", "TLSSCU", "-aec", "XENRAD", "-to", "10", "-ta", "10", "-td", "10"]
        r = run(["echoscu", *common, *auth, *ca, "127.0.0.1", port])
        self.check(mode, "DCMTK echoscu +tls (client certificate): C-ECHO succeeds", r.returncode == 0,
                   r.stderr.decode(errors="replace")[-400:])
        r = run(["echoscu", *common, *anon, *ca, "127.0.0.1", port])
        if gw.mutual:
            self.check(mode, "DCMTK echoscu +tla (no certificate): refused", r.returncode != 0,
                       r.stderr.decode(errors="replace")[-300:])
            r = run(["echoscu", *common, "+tls", str(gw.certs["rogue.key"]), str(gw.certs["rogue"]), *ca,
                     "127.0.0.1", port])
            self.check(mode, "DCMTK echoscu +tls with the rogue CA's certificate: refused", r.returncode != 0,
                       r.stderr.decode(errors="replace")[-300:])
        else:
            self.check(mode, "DCMTK echoscu +tla (anonymous client): C-ECHO succeeds", r.returncode == 0,
                       r.stderr.decode(errors="replace")[-400:])
        r = run(["echoscu", *common, *auth, "+cf", str(gw.certs["rogue-ca"]), "127.0.0.1", port])
        self.check(mode, "DCMTK echoscu trusting only the rogue CA refuses the server", r.returncode != 0,
                   r.stderr.decode(errors="replace")[-300:])
        if ct is not None:
            before = self.stored(gw, "SELECT COUNT(*) FROM instances")
            r = run(["storescu", *common, *auth, *ca, "127.0.0.1", port, str(ct)], timeout=60)
            after = self.stored(gw, "SELECT COUNT(*) FROM instances")
            self.check(mode, "DCMTK storescu +tls: C-STORE stored", r.returncode == 0 and after == before + 1,
                       f"rc {r.returncode} instances {before}->{after} " + r.stderr.decode(errors="replace")[-300:])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.parse_args(argv)
    for tool in ("openssl", "curl", "echoscu", "storescu"):
        if shutil.which(tool) is None:
            print(f"SKIPPED: {tool} not installed (scripts/peers.sh installs the peers)")
            return 0
    work = Path(tempfile.mkdtemp(prefix="xenrad-tls-"))
    certs = make_certs(work)
    ct = None
    try:
        import pydicom.data
        ct = Path(pydicom.data.get_testdata_file("CT_small.dcm"))
    except Exception:
        pass
    c = Campaign()
    for mode, mutual in (("tls", False), ("mtls", True)):
        d = work / mode
        d.mkdir()
        gw = TlsGateway(d, certs, mutual)
        try:
            gw.start()
            c.s_client(gw, mode)
            c.curl(gw, mode)
            c.python_ssl(gw, mode)
            c.dcmtk(gw, mode, ct)
            if not gw.alive():
                c.fails.append(f"[{mode}] gateway died")
            rc = gw.stop()
            if rc != 0:
                c.fails.append(f"[{mode}] gateway exited {rc} on SIGTERM")
        except Exception as e:  # noqa: BLE001
            c.fails.append(f"[{mode}] campaign error: {e!r}\n{gw.log_tail()}")
        finally:
            gw.kill()
    for mode, what, res in c.rows:
        print(f"  {mode:5} {res:4} {what}")
    for f in c.fails:
        print("FAIL", f)
    print("SUMMARY " + json.dumps({"checks": len(c.rows), "failures": len(c.fails)}), flush=True)
    if c.fails:
        print(f"work dir kept: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if c.fails else 0


if __name__ == "__main__":
    sys.exit(main())
