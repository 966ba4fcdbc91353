#!/usr/bin/env python3
"""Renders target/bench-report/index.md and its SVG charts from what benches/report.sh
collected (data/*.json, data/cstore.tsv, logs/*.log, areas.tsv). Standard library only.

    report.py OUT_DIR [--quick]
"""
import csv
import datetime
import glob
import html
import json
import os
import re
import statistics
import sys

OUT = sys.argv[1]
QUICK = "--quick" in sys.argv[2:]


def read(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def machine():
    cpu = next((l.split(":", 1)[1].strip() for l in read("/proc/cpuinfo").splitlines()
                if l.startswith("model name")), "unknown")
    mem = next((l.split()[1] for l in read("/proc/meminfo").splitlines()
                if l.startswith("MemTotal")), "0")
    return f"{os.cpu_count()} CPUs (nproc), {cpu}, {int(mem) / 1024 / 1024:.1f} GiB memory"


def fmt_time(ns):
    for unit, div in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= div:
            return f"{ns / div:.3g} {unit}"
    return f"{ns:.3g} ns"


def per_second(row):
    """Throughput of a criterion row: (value, unit) or None."""
    t = row.get("throughput") or {}
    secs = row["median_ns"] / 1e9
    if "Bytes" in t:
        return t["Bytes"] / 1e6 / secs, "MB/s"
    if "BytesDecimal" in t:
        return t["BytesDecimal"] / 1e6 / secs, "MB/s"
    if "Elements" in t:
        return t["Elements"] / secs, "elem/s"
    return None


def svg_bars(path, title, bars, unit):
    """Horizontal bar chart; bars: [(label, value, ours?)]."""
    if not bars:
        return None
    h_bar, gap, left, width = 18, 6, 330, 360
    top = 34
    height = top + len(bars) * (h_bar + gap) + 10
    vmax = max(v for _, v, _ in bars) or 1
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 110}" height="{height}" '
           f'font-family="sans-serif" font-size="12">',
           f'<text x="8" y="20" font-size="14" font-weight="bold">{html.escape(title)} ({unit}, longer is better)</text>']
    for i, (label, v, ours) in enumerate(bars):
        y = top + i * (h_bar + gap)
        w = max(1, v / vmax * width)
        color = "#2b6cb0" if ours else "#a0aec0"
        out.append(f'<text x="{left - 6}" y="{y + 13}" text-anchor="end">{html.escape(label[:52])}</text>')
        out.append(f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{h_bar}" fill="{color}"/>')
        out.append(f'<text x="{left + w + 4:.1f}" y="{y + 13}">{v:,.1f}</text>')
    out.append("</svg>")
    with open(os.path.join(OUT, path), "w") as f:
        f.write("\n".join(out) + "\n")
    return path


def areas():
    rows = {}
    with open(os.path.join(OUT, "areas.tsv")) as f:
        for r in csv.DictReader(f, delimiter="\t"):
            rows[r["area"]] = r
    return rows


def area_note(a):
    if a is None:
        return "_not run_"
    status = "ok" if a["status"] == "0" else f"**failed (exit {a['status']})**, see `logs/{a['area']}.log`"
    return (f"{status}; {a['seconds']} s from {a['started']}; load average (1/5/15 min) "
            f"{a['load_before']} before, {a['load_after']} after")


def criterion_section(name, a, md):
    data = os.path.join(OUT, "data", f"{name}.json")
    md.append(f"## {name}\n\n{area_note(a)}\n")
    if not os.path.exists(data):
        md.append("No estimates collected.\n")
        return
    rows = json.load(open(data))
    groups = {}
    for r in rows:
        fn = r["function"] + (f"/{r['value']}" if r.get("value") and r["value"] != r["function"] else "")
        groups.setdefault(r["group"], []).append((fn, r))
    md.append("Medians of criterion's samples. Ratio = peer's time / ours (> 1: we are faster).\n")
    md.append("| group | ours | time | peer | time | ratio |")
    md.append("|---|---|---:|---|---:|---:|")
    bars = []
    for g in sorted(groups):
        fns = sorted(groups[g], key=lambda x: x[0])
        ours = [x for x in fns if x[0].startswith("xenrad")]
        peers = [x for x in fns if not x[0].startswith("xenrad")]
        for fn, r in fns:
            tp = per_second(r)
            if tp:
                bars.append((f"{g.split('/', 1)[-1]}: {fn}", tp[0], fn.startswith("xenrad"), tp[1]))
        for ofn, o in ours:
            if not any(not (o.get("value") and p.get("value") and o["value"] != p["value"])
                       for _, p in peers):
                md.append(f"| {g} | {ofn} | {fmt_time(o['median_ns'])} | (no peer) | | |")
            for pfn, p in peers:
                if o.get("value") and p.get("value") and o["value"] != p["value"]:
                    continue  # a parameterised group: compare the same input only
                md.append(f"| {g} | {ofn} | {fmt_time(o['median_ns'])} | {pfn} | "
                          f"{fmt_time(p['median_ns'])} | **{p['median_ns'] / o['median_ns']:.2f}×** |")
    md.append("")
    # One chart per throughput unit (bytes and elements do not share an axis).
    for unit in sorted({b[3] for b in bars}):
        sel = [(l, v, o) for l, v, o, u in bars if u == unit]
        svg = svg_bars(f"{name}-{unit.replace('/', '_per_')}.svg", f"{name} throughput", sel, unit)
        if svg:
            md.append(f"![{name} throughput]({svg})\n")


def cstore_section(a, md):
    md.append(f"## cstore (benches/dicom/cstore.sh)\n\n{area_note(a)}\n")
    path = os.path.join(OUT, "data", "cstore.tsv")
    if not os.path.exists(path):
        md.append("No results.\n")
        return
    agg = {}
    for r in csv.DictReader(open(path), delimiter="\t"):
        mbs = int(r["bytes"]) / 1e6 / float(r["seconds"])
        agg.setdefault((r["set"], r["receiver"]), []).append(mbs)
    med = {k: statistics.median(v) for k, v in agg.items()}
    runs = max(len(v) for v in agg.values())
    md.append(f"MB/s, medians of {runs} run(s). Senders: `TCP_NODELAY=1 storescu`, except set "
              "`ct-nagle` (storescu as shipped, Nagle on). Ratio = ours / peer. `disk-sync`: the "
              "disk's synced-write limit in the same run (append 0.5 MB + fdatasync, repeat).\n")
    md.append("| set | ours | MB/s | peer | MB/s | ratio |")
    md.append("|---|---|---:|---|---:|---:|")
    sets = sorted({s for s, _ in med})
    lim1 = med.get(("disk-sync", "1-writer"))
    limn = max((v for (s, r), v in med.items() if s == "disk-sync" and r != "1-writer"), default=None)
    for s in sets:
        if s == "disk-sync":
            continue
        for ours in ("xenrad", "xenrad-nofsync", "xenrad-perfile"):
            if (s, ours) not in med:
                continue
            for (s2, peer), v in sorted(med.items()):
                if s2 == s and not peer.startswith("xenrad"):
                    md.append(f"| {s} | {ours} | {med[(s, ours)]:.0f} | {peer} | {v:.0f} | "
                              f"**{med[(s, ours)] / v:.2f}×** |")
        if (s, "xenrad") in med:
            ref, kind = (limn, "parallel writers") if s.startswith("ct-x") and limn else (lim1, "1 writer")
            if ref:
                md.append(f"| {s} | xenrad (durable) | {med[(s, 'xenrad')]:.0f} | disk synced-write "
                          f"limit ({kind}) | {ref:.0f} | **{med[(s, 'xenrad')] / ref:.2f}** of it |")
    md.append("")
    for s in sets:
        bars = [(r, v, r.startswith("xenrad")) for (s2, r), v in sorted(med.items()) if s2 == s]
        svg = svg_bars(f"cstore-{s}.svg", f"C-STORE {s}", bars, "MB/s")
        if svg:
            md.append(f"![C-STORE {s}]({svg})\n")


MSG = re.compile(r"^(?P<label>[A-Za-z][\w .()/+-]*?)\s+(?P<conns>\d+) conns?:?\s.*?msg_per_s=(?P<rate>[0-9.]+)")


def load_section(name, script, ours_prefix, a, md):
    md.append(f"## {name} ({script})\n\n{area_note(a)}\n")
    found = {}
    for line in read(os.path.join(OUT, "logs", f"{name}.log")).splitlines():
        m = MSG.match(line.strip())
        if m:
            found.setdefault(int(m["conns"]), []).append((m["label"].strip(), float(m["rate"])))
    if not found:
        md.append("No load lines found in the log.\n")
        return
    md.append("Messages per second (one run). Ratio = ours / peer.\n")
    for c in sorted(found):
        rows = found[c]
        md.append("| connections | ours | msg/s | peer | msg/s | ratio |")
        md.append("|---:|---|---:|---|---:|---:|")
        ours = [r for r in rows if r[0].startswith(ours_prefix)]
        for ol, ov in ours:
            for pl, pv in rows:
                if (pl, pv) in ours:
                    continue
                md.append(f"| {c} | {ol} | {ov:,.0f} | {pl} | {pv:,.0f} | **{ov / pv:.2f}×** |")
        svg = svg_bars(f"{name}-{c}conn.svg", f"{name}, {c} connection(s)",
                       [(l, v, l.startswith(ours_prefix)) for l, v in rows], "msg/s")
        md.append("")
        if svg:
            md.append(f"![{name} {c} connections]({svg})\n")


def log_tail_section(name, script, a, md, lines=25):
    md.append(f"## {name} ({script})\n\n{area_note(a)}\n")
    log = read(os.path.join(OUT, "logs", f"{name}.log")).splitlines()
    tail = [l for l in log if not l.startswith(("cfind: run", "   Compiling"))][-lines:]
    md.append("The script's summary, as printed:\n\n```\n" + "\n".join(tail) + "\n```\n")


def main():
    a = areas()
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    md = ["# Xenrad side-by-side benchmark report", ""]
    if QUICK:
        md.append("> **--quick smoke run**: short measurements and small sets; the figures prove the "
                  "pipeline works and are not for quoting. Run `benches/report.sh` for the full report.\n")
    md.append(f"- Date: {now}")
    md.append(f"- Machine: {machine()}")
    md.append(f"- Load average at the end: {' '.join(read('/proc/loadavg').split()[:3])} "
              "(each area lists its own, before and after)")
    md.append("- Every ratio compares ours with a peer measured in the same run on the same machine; "
              "absolute figures on a shared machine mean little.")
    md.append("- Re-run: `benches/report.sh` (about an hour) or `benches/report.sh --quick`.\n")
    if a.get("build", {}).get("status", "0") != "0":
        md.append(f"**Build failed**: see `logs/build.log`.\n")
    for name in sorted(k for k in a if k.startswith("criterion-")):
        criterion_section(name, a[name], md)
    cstore_section(a.get("cstore"), md)
    if "cfind" in a:
        log_tail_section("cfind", "benches/dicom/cfind.sh", a["cfind"], md)
    else:
        md.append("## cfind\n\n_not run: benches/dicom/cfind.sh is not in this checkout_\n")
    if "cget" in a:
        log_tail_section("cget", "benches/dicom/cget.sh", a["cget"], md, lines=15)
    else:
        md.append("## cget\n\n_not run: benches/dicom/cget.sh is not in this checkout_\n")
    if "scu" in a:
        log_tail_section("scu", "benches/dicom/scu.sh", a["scu"], md, lines=8)
    load_section("mllp-load", "benches/mllp/load.sh", "xenrad", a.get("mllp-load"), md)
    load_section("gateway-ingest", "benches/gateway/ingest_load.sh", "gateway",
                 a.get("gateway-ingest"), md)
    for name, script in (("hl7v2-validate", "benches/hl7v2/validate_peers.sh"),
                         ("hl7v3-instr", "benches/hl7v3/instructions.sh")):
        if name in a:
            log_tail_section(name, script, a[name], md, lines=15)
        else:
            md.append(f"## {name}\n\n_not run ({script}; hl7v3-instr needs valgrind and is left out of --quick)_\n")
    with open(os.path.join(OUT, "index.md"), "w") as f:
        f.write("\n".join(md) + "\n")


if __name__ == "__main__":
    main()
