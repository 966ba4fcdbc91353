#!/usr/bin/env python3
"""The disk's synced-write limit: what a durable acknowledgement cannot beat.

    synclimit.py DIR [--writers N] [--mb-per-writer M] [--chunk BYTES]

Each writer appends CHUNK bytes (0.5 MB by default) to its own new file in DIR and
fdatasyncs after every write, until it has written M MB; N writers run in parallel
(threads: os.write and os.fdatasync release the GIL). Prints one line:
`writers bytes seconds MB/s` (MB = 10^6 bytes), then removes its files. Put DIR on the
same filesystem as the receiver under test. Standard library only.
"""
import argparse
import os
import threading
import time


def writer(path, chunk, total, barrier):
    buf = os.urandom(chunk)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        barrier.wait()
        written = 0
        while written < total:
            os.write(fd, buf)
            os.fdatasync(fd)
            written += chunk
    finally:
        os.close(fd)
        os.unlink(path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dir")
    ap.add_argument("--writers", type=int, default=1)
    ap.add_argument("--mb-per-writer", type=float, default=200)
    ap.add_argument("--chunk", type=int, default=512 * 1024)
    a = ap.parse_args()
    os.makedirs(a.dir, exist_ok=True)
    total = int(a.mb_per_writer * 1e6) // a.chunk * a.chunk
    barrier = threading.Barrier(a.writers + 1)
    threads = [
        threading.Thread(
            target=writer,
            args=(os.path.join(a.dir, f".synclimit-{os.getpid()}-{i}"), a.chunk, total, barrier),
        )
        for i in range(a.writers)
    ]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    secs = time.perf_counter() - t0
    nbytes = total * a.writers
    print(f"{a.writers} {nbytes} {secs:.6f} {nbytes / 1e6 / secs:.1f}")


if __name__ == "__main__":
    main()
