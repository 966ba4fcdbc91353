"""MLLPS peer: Python's ssl module (OpenSSL) as the client of our TLS listener.

Usage: tls_client.py PORT CA_PEM COUNT [CERT_PEM KEY_PEM]
Env: TLS_MAX=1.2 caps the protocol at TLS 1.2 (default: the best both sides offer).
Verifies the server certificate against CA_PEM for the name "localhost", presents the client
certificate when given, sends COUNT framed HL7 messages stop-and-wait and prints one line per
ACK: "ACK <MSA-1> <MSA-2> <sent MSH-10>". Any TLS or socket failure prints
"REFUSED <exception class>: <message>" and exits 0 (the caller judges)."""
import os
import socket
import ssl
import sys

VT, FS, CR = b"\x0b", b"\x1c", b"\r"


def message(i):
    cid = "PYTLS-%d" % i
    return cid, (
        "MSH|^~\\&|PYSSL|FAC|XENRAD|TEST|20240101000000||ADT^A01|%s|P|2.5.1\rPID|1||%s^^^FAC\r"
        % (cid, cid)
    ).encode()


def read_frame(sock, buf):
    while True:
        start = buf.find(VT)
        end = buf.find(FS + CR, start + 1) if start >= 0 else -1
        if end >= 0:
            return buf[start + 1 : end], buf[end + 2 :]
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        buf += chunk


def main():
    port, ca, count = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca)
    if os.environ.get("TLS_MAX") == "1.2":
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    if len(sys.argv) > 5:
        ctx.load_cert_chain(sys.argv[4], sys.argv[5])
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as sock:
                print("TLS %s %s" % (sock.version(), sock.cipher()[0]), flush=True)
                buf = b""
                for i in range(count):
                    cid, msg = message(i)
                    sock.sendall(VT + msg + FS + CR)
                    ack, buf = read_frame(sock, buf)
                    msa = [s for s in ack.split(b"\r") if s.startswith(b"MSA")][0].split(b"|")
                    print("ACK %s %s %s" % (msa[1].decode(), msa[2].decode(), cid), flush=True)
    except (ssl.SSLError, OSError) as e:
        print("REFUSED %s: %s" % (type(e).__name__, e), flush=True)


main()
