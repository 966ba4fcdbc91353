"""Loads every official R4 example (the package in ../shared/fhir) into a running gateway through
transaction Bundles of 100, keeping each example's text exactly; an entry the gateway refuses is
taken out of its Bundle (the refusal must name it: Bundle.entry[i]) and recorded. Then every
stored example is read back as JSON and compared with its source (meta.versionId and
meta.lastUpdated aside), and as XML, which is written back (PUT application/fhir+xml) and read
again as JSON to the same content. Prints one JSON line: counts and the refused files with the
expression of their first issue."""
import json, sys, tarfile, requests
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

base, key, tgz = sys.argv[1:4]
s = requests.Session()
s.headers.update({"X-API-Key": key})
JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}

examples = []
with tarfile.open(tgz) as t:
    for m in t.getmembers():
        name = m.name.rsplit("/", 1)[-1]
        if not m.isfile() or not name.endswith(".json") or name == "package.json" or name.startswith("."):
            continue
        raw = t.extractfile(m).read().decode("utf-8")
        d = json.loads(raw, parse_float=Decimal)
        if "resourceType" not in d:
            continue
        examples.append((name, raw, d))

def request_of(d):
    if "id" in d:
        return {"method": "PUT", "url": f"{d['resourceType']}/{d['id']}"}
    return {"method": "POST", "url": d["resourceType"]}

refused, stored = {}, {}
batches, seen = [], set()
cur, size = [], 0
for e in examples:
    k = (e[2]["resourceType"], e[2].get("id"))
    if k in seen or len(cur) == 100 or size + len(e[1]) > 16 << 20:
        # one write per resource per transaction
        batches.append(cur); cur = []; seen = set(); size = 0
    cur.append(e); seen.add(k); size += len(e[1])
batches.append(cur)

for batch in batches:
    entries = list(batch)
    while entries:
        body = '{"resourceType":"Bundle","type":"transaction","entry":[' + ",".join(
            '{"resource":' + raw + ',"request":' + json.dumps(request_of(d)) + "}" for _, raw, d in entries) + "]}"
        r = s.post(base, data=body.encode(), headers=JSON)
        if r.status_code == 200:
            for (name, raw, d), e in zip(entries, r.json()["entry"]):
                loc = e["response"]["location"].split("/_history")[0]
                stored[loc] = (name, d)
            break
        oo = r.json()
        expr = oo["issue"][0].get("expression", [""])[0]
        assert expr.startswith("Bundle.entry["), (r.status_code, oo)
        i = int(expr[len("Bundle.entry["):].split("]")[0])
        name = entries[i][0]
        refused[name] = {"status": r.status_code, "expression": expr, "diagnostics": oo["issue"][0].get("diagnostics", "")}
        del entries[i]

def strip(d):
    d = dict(d)
    m = dict(d.get("meta", {}))
    m.pop("versionId", None); m.pop("lastUpdated", None)
    if m: d["meta"] = m
    else: d.pop("meta", None)
    return d

def check(item):
    loc, (name, d) = item
    r = s.get(f"{base}/{loc}", headers={"Accept": "application/fhir+json"})
    if r.status_code != 200:
        return f"{name}: read {r.status_code}"
    if strip(json.loads(r.text, parse_float=Decimal)) != strip(d):
        return f"{name}: JSON read back differs"
    x = s.get(f"{base}/{loc}", headers={"Accept": "application/fhir+xml"})
    if x.status_code != 200 or not x.text.startswith("<"):
        return f"{name}: XML read {x.status_code}"
    w = s.put(f"{base}/{loc}", data=x.text.encode(), headers={"Content-Type": "application/fhir+xml", "Accept": "application/fhir+json"})
    if w.status_code != 200:
        return f"{name}: XML write back {w.status_code} {w.text[:300]}"
    if strip(json.loads(w.text, parse_float=Decimal)) != strip(d):
        return f"{name}: XML round trip differs"
    return None

with ThreadPoolExecutor(8) as pool:
    problems = [p for p in pool.map(check, stored.items()) if p]
print(json.dumps({"examples": len(examples), "stored": len(stored), "refused": refused, "problems": problems[:20], "problem_count": len(problems)}))
