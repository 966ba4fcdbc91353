#!/usr/bin/env python3
"""Client side of benches/gateway/images.sh: the same HTTP client against both servers.

  images_client.py stow   BASE KEY SETDIR   -> seconds to STOW-RS every file (20 per request)
  images_client.py wado   BASE KEY STUDY    -> seconds and bytes of one WADO-RS study retrieve
  images_client.py qido   BASE KEY SECONDS  -> QIDO-RS /studies requests per second (4 threads,
                                              keep-alive connections)
KEY may be '-' (no X-API-Key header)."""
import http.client, os, sys, threading, time, urllib.parse

def conn(base):
    u = urllib.parse.urlsplit(base)
    return http.client.HTTPConnection(u.hostname, u.port, timeout=120), u.path.rstrip('/')

def headers(key, extra=None):
    h = {} if key == '-' else {'X-API-Key': key}
    h.update(extra or {})
    return h

def stow(base, key, setdir):
    files = sorted(os.path.join(setdir, f) for f in os.listdir(setdir) if f.endswith('.dcm'))
    if not files:
        sys.exit(f'no .dcm file in {setdir}')
    c, path = conn(base)
    t = time.perf_counter()
    for i in range(0, len(files), 20):
        b = b'xenradbenchboundary'
        body = bytearray()
        for f in files[i:i + 20]:
            body += b'--' + b + b'\r\nContent-Type: application/dicom\r\n\r\n'
            with open(f, 'rb') as fh:
                body += fh.read()
            body += b'\r\n'
        body += b'--' + b + b'--\r\n'
        c.request('POST', path + '/studies', body=bytes(body), headers=headers(key, {
            'Content-Type': 'multipart/related; type="application/dicom"; boundary=' + b.decode(),
            'Accept': 'application/dicom+json'}))
        r = c.getresponse()
        r.read()
        if r.status != 200:
            sys.exit(f'STOW-RS answered {r.status}')
    print(f'{time.perf_counter() - t:.4f}')

def wado(base, key, study):
    c, path = conn(base)
    t = time.perf_counter()
    c.request('GET', f'{path}/studies/{study}', headers=headers(key, {
        'Accept': 'multipart/related; type="application/dicom"; transfer-syntax=*'}))
    r = c.getresponse()
    n = 0
    while True:
        chunk = r.read(1 << 20)
        if not chunk:
            break
        n += len(chunk)
    if r.status != 200:
        sys.exit(f'WADO-RS answered {r.status}')
    print(f'{time.perf_counter() - t:.4f} {n}')

def qido(base, key, seconds):
    count = [0] * 4
    stop = time.perf_counter() + float(seconds)
    def worker(i):
        c, path = conn(base)
        while time.perf_counter() < stop:
            c.request('GET', path + '/studies?PatientID=BENCH1', headers=headers(key, {'Accept': 'application/dicom+json'}))
            r = c.getresponse()
            r.read()
            if r.status != 200:
                sys.exit(f'QIDO-RS answered {r.status}')
            count[i] += 1
    t = time.perf_counter()
    ts = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for th in ts: th.start()
    for th in ts: th.join()
    print(f'{sum(count) / (time.perf_counter() - t):.1f}')

{'stow': stow, 'wado': wado, 'qido': qido}[sys.argv[1]](*sys.argv[2:])
