"""Drives a running xenrad-mllp listener from Python: python-hl7's MLLP client plus raw
sockets for split reads, pipelining, garbage, an oversized frame, half-close and a stalled
frame. Prints "ok <case>" per case; any failure raises. Usage: client_cases.py PORT"""
import socket
import sys
import time

import hl7
from hl7.client import MLLPClient

PORT = int(sys.argv[1])
SB, EB = b"\x0b", b"\x1c\x0d"


def message(cid):
    return ("MSH|^~\\&|PY|PEER|XENRAD|TEST|20240101000000||ADT^A01|%s|P|2.5.1\r"
            "PID|1||%s^^^PEER\r" % (cid, cid))


def framed(cid):
    return SB + message(cid).encode() + EB


def connect():
    s = socket.create_connection(("127.0.0.1", PORT), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def read_acks(s, n):
    """Reads until n complete blocks arrived or EOF; returns MSA-2 of each."""
    buf, out = b"", []
    while len(out) < n:
        while EB in buf and len(out) < n:
            block, buf = buf.split(EB, 1)
            assert block.startswith(SB), block
            out.append(hl7.parse(block[1:].decode())["MSA"][0][2][0])
        if len(out) >= n:
            break
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
    return [str(x) for x in out]


def closed_by_server(s):
    try:
        while True:
            if not s.recv(65536):
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


# 1. python-hl7's own client, stop-and-wait.
with MLLPClient("127.0.0.1", PORT) as c:
    for i in range(3):
        ack = hl7.parse(c.send_message(message("PYHL7-%d" % i)))
        assert str(ack["MSA"][0][1][0]) == "AA", ack
        assert str(ack["MSA"][0][2][0]) == "PYHL7-%d" % i, ack
print("ok python-hl7-client")

# 2. Split reads: one frame dribbled in 1..7 byte writes.
s = connect()
data = framed("SPLIT-1") + framed("SPLIT-2")
i, step = 0, 1
while i < len(data):
    s.sendall(data[i:i + step])
    i += step
    step = step % 7 + 1
    time.sleep(0.0005)
assert read_acks(s, 2) == ["SPLIT-1", "SPLIT-2"]
s.close()
print("ok split-reads")

# 3. Pipelining: 200 frames in one write, 200 ACKs back in order.
s = connect()
s.sendall(b"".join(framed("PIPE-%d" % i) for i in range(200)))
assert read_acks(s, 200) == ["PIPE-%d" % i for i in range(200)]
s.close()
print("ok pipelining")

# 4. Garbage: NULs, CR/LF keep-alives and stray bytes between frames.
s = connect()
s.sendall(b"\x00\x00\r\n" + framed("GARB-1") + b"\r\n\x1cjunk\n" + framed("GARB-2") + b"\r\n")
assert read_acks(s, 2) == ["GARB-1", "GARB-2"]
s.close()
print("ok garbage")

# 5. Oversized frame: rejected by closing that connection; a parallel connection and a new
#    one keep being served.
other = connect()
big = connect()
try:
    big.sendall(SB + b"X" * (512 * 1024) + EB)
except (ConnectionResetError, BrokenPipeError):
    pass
assert closed_by_server(big), "oversized sender not disconnected"
big.close()
other.sendall(framed("AFTER-BIG-1"))
assert read_acks(other, 1) == ["AFTER-BIG-1"]
other.close()
s = connect()
s.sendall(framed("AFTER-BIG-2"))
assert read_acks(s, 1) == ["AFTER-BIG-2"]
s.close()
print("ok oversized")

# 6. Half-close: send, shut our write side, still receive the ACK, then EOF.
s = connect()
s.sendall(framed("HALF-1"))
s.shutdown(socket.SHUT_WR)
assert read_acks(s, 5) == ["HALF-1"]
s.close()
print("ok half-close")

# 7. Half-open sender: starts a frame and goes silent; the server's frame timeout closes it.
s = connect()
s.sendall(SB + b"MSH|^~\\&|PY|PEER|never finished")
assert closed_by_server(s), "stalled frame not timed out"
s.close()
print("ok stalled-frame")
