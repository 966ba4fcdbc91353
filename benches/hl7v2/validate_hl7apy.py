#!/usr/bin/env python3
"""hl7apy (the Python HL7 v2 library with v2.5.1 structure validation) as the peer validator:
parses messages of the shared 10,000-message bench corpus tolerantly with message-structure
groups, then runs its full validation (cardinality, data types, lengths, tables), which
collects every problem of a message before raising. Prints one line:
`hl7apy messages=N bytes=B seconds=S mb_per_s=X msgs_per_s=Y invalid=I`.

Usage: validate_hl7apy.py CORPUS [N]   (N: the first N messages, default 500; hl7apy runs at
about a hundred messages a second, so the full corpus would take minutes)
"""
import os
import sys
import time

from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message


def main():
    corpus = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 500
    data = open(corpus, "rb").read()
    frames = [f.lstrip(b"\r").lstrip(b"\x0b") for f in data.split(b"\x1c")]
    msgs = [f.decode("utf-8") for f in frames if f][:n]
    invalid = 0
    start = time.perf_counter()
    for m in msgs:
        try:
            msg = parse_message(m, validation_level=VALIDATION_LEVEL.TOLERANT, find_groups=True)
            msg.validate(report_file=os.devnull)
        except Exception:  # the first of the problems it collected, or a parse failure
            invalid += 1
    secs = time.perf_counter() - start
    size = sum(len(m.encode("utf-8")) for m in msgs)
    print("hl7apy messages=%d bytes=%d seconds=%.3f mb_per_s=%.4f msgs_per_s=%.1f invalid=%d"
          % (len(msgs), size, secs, size / secs / 1e6, len(msgs) / secs, invalid))


main()
