"""Drives the operator console in headless Chromium (Playwright for Python, Debian's
chromium): a scripted mixed ingest through every door, then what an operator does.

Run by tests/console_browser.rs, which starts the gateway and passes (environment):
  CONSOLE, FHIR, HL7, MPPS (base URLs), MLLP, DICOM (host:port), KEY, CT (a DICOM file),
  SHOTS (screenshot directory), CHROMIUM (the browser binary).
Prints one line per check; exits non-zero on the first failure.
"""
import json
import os
import re
import socket
import sys
import time
import urllib.error
import urllib.request

import pydicom
from pynetdicom import AE
from pynetdicom.sop_class import CTImageStorage
from playwright.sync_api import expect, sync_playwright

E = os.environ
CONSOLE, KEY, SHOTS = E["CONSOLE"], E["KEY"], E["SHOTS"]
os.makedirs(SHOTS, exist_ok=True)


def http(method, url, body=None, key=KEY, ctype="text/plain"):
    req = urllib.request.Request(url, data=body, method=method)
    if key:
        req.add_header("X-API-Key", key)
    if body is not None:
        req.add_header("Content-Type", ctype)
    try:
        with urllib.request.urlopen(req, timeout=20) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def v2(cid, pid, birth="19800101", mtype="ADT^A08"):
    return (f"MSH|^~\\&|RIS|HOSP|XEN|FAC|20240101120000||{mtype}|{cid}|P|2.5.1\r"
            f"PID|1||{pid}^^^HOSP||Doe^John||{birth}|M\r").encode()


def mllp(messages):
    host, port = E["MLLP"].rsplit(":", 1)
    acks = []
    with socket.create_connection((host, int(port)), timeout=20) as s:
        for m in messages:
            s.sendall(b"\x0b" + m + b"\x1c\x0d")
            buf = b""
            while not buf.endswith(b"\x1c\x0d"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
            acks.append(buf)
    return acks


def check(what, cond, detail=""):
    if not cond:
        print(f"FAIL {what} {detail}", flush=True)
        sys.exit(1)
    print(f"ok   {what}", flush=True)


# ---- scripted mixed ingest: what each door should count --------------------------------
ct = pydicom.dcmread(E["CT"])
study_uid = str(ct.StudyInstanceUID)
sent = {"fhir": [0, 0], "hl7": [0, 0], "mpps": [0, 0], "mllp": [0, 0], "dicom": [0, 0]}

for i in range(4):  # FHIR reads (accepted) and one with a wrong key (an error)
    st, _ = http("GET", f"{E['FHIR']}/fhir/Patient?_count=1")
    check(f"FHIR search {i}", st == 200, st)
    sent["fhir"][0] += 1
st, _ = http("GET", f"{E['FHIR']}/fhir/Patient", key="wrong")
check("FHIR with a wrong key refused", st == 401, st)
sent["fhir"][1] += 1

for i in range(3):
    st, _ = http("POST", f"{E['HL7']}/v2/ingest", v2(f"HTTP-OK-{i}", f"P{i}"))
    check(f"HL7 HTTP message {i} accepted", st == 200, st)
    sent["hl7"][0] += 1
st, ack = http("POST", f"{E['HL7']}/v2/ingest", v2("CONSOLE-BAD-1", "P9", birth="notadate"))
check("HL7 HTTP bad birth date refused (AE)", st == 400 and b"MSA|AE|CONSOLE-BAD-1" in ack, ack)
sent["hl7"][1] += 1
st, ack = http("POST", f"{E['HL7']}/v2/ingest", b"MSH|^~\\&|RIS|HOSP\rP\x01D|1||X\r")
check("HL7 HTTP unparseable refused (AR)", st == 400 and b"MSA|AR" in ack, ack)
sent["hl7"][1] += 1

# an order (ORM^O01, HL7 v2.3.1 chapter 4): one CT step on the worklist
ORM = ("MSH|^~\\&|RIS|RAD|XENRAD|GW|20250124||ORM^O01^ORM_O01|CONSOLE-ORM-1|P|2.3.1\r"
       "PID|1||W1^^^HOSP^MR||WORK^LISA||19700101|F\r"
       "ORC|NW|PLW1^RIS|FLW1^DSS||SC||^^^202501241430\r"
       "OBR|1|PLW1^RIS|FLW1^DSS|CTH^CT HEAD^L||||||||||||||ACC-CONSOLE-1|RPW1|SPSW1||||CT\r"
       "ZDS|1.2.826.0.1.3680043.9.7433.77^RIS^Application^DICOM\r").encode()
st, ack = http("POST", f"{E['HL7']}/v2/ingest", ORM)
check("HL7 HTTP order accepted", st == 200 and b"MSA|AA" in ack, ack)
sent["hl7"][0] += 1

acks = mllp([v2("MLLP-OK-1", "M1"), v2("MLLP-OK-2", "M2"), v2("MLLP-BAD-1", "", mtype="ADT^A08")])
check("MLLP accepted two", all(b"MSA|AA" in a for a in acks[:2]), acks)
check("MLLP refused one", b"MSA|AE" in acks[2], acks[2])
sent["mllp"] = [2, 1]

for status in ["IN PROGRESS", "COMPLETED"]:
    body = json.dumps({"sop_instance_uid": "1.2.826.0.1.3680043.9.7433.1", "study_uid": study_uid,
                       "status": status}).encode()
    st, out = http("POST", f"{E['MPPS']}/ingest", body, ctype="application/json")
    check(f"MPPS {status}", st < 300, out)
    sent["mpps"][0] += 1

ae = AE(ae_title="CONSOLETEST")
ae.add_requested_context(CTImageStorage, ct.file_meta.TransferSyntaxUID)
host, port = E["DICOM"].rsplit(":", 1)
assoc = ae.associate(host, int(port), ae_title="XENRAD")
check("DICOM association", assoc.is_established)
status = assoc.send_c_store(ct)
assoc.release()
check("C-STORE success", status and status.Status == 0, status)
sent["dicom"][0] += 1
print("sent", json.dumps(sent), flush=True)

# ---- access without a key is refused -----------------------------------------------------
st, _ = http("GET", f"{CONSOLE}/api/dashboard", key=None)
check("API refuses without a key", st == 401, st)
st, _ = http("GET", f"{CONSOLE}/api/dashboard", key="wrong")
check("API refuses a wrong key", st == 401, st)

with sync_playwright() as p:
    browser = p.chromium.launch(executable_path=E["CHROMIUM"], args=["--no-sandbox"])
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{CONSOLE}/messages")
    check("a page without a session goes to the login", "/login" in page.url, page.url)
    page.screenshot(path=f"{SHOTS}/01-login.png", full_page=True)
    page.get_by_label("API key").fill("not-the-key")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#login-error")).to_contain_text("not valid")
    check("a wrong key is refused", "/login" in page.url)
    page.screenshot(path=f"{SHOTS}/02-login-refused.png", full_page=True)
    page.get_by_label("API key").fill(KEY)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/messages$"))
    cookie = [c for c in page.context.cookies() if c["name"] == "xenrad_console"][0]
    check("session cookie is HttpOnly, SameSite=Strict", cookie["httpOnly"] and cookie["sameSite"] == "Strict", cookie)

    # ---- dashboard: the counts match what was sent (live over server-sent events) --------
    page.goto(f"{CONSOLE}/")
    for door, (acc, err) in sent.items():
        card = page.locator(f'.card[data-door="{door}"]')
        expect(card.locator('[data-k="accepted"]')).to_have_text(str(acc), timeout=15000)
        expect(card.locator('[data-k="errors"]')).to_have_text(str(err), timeout=15000)
        check(f"dashboard {door}: {acc} accepted, {err} errors", True)
    page.wait_for_selector("body[data-live='1']", state="attached", timeout=15000)
    check("dashboard follows the event stream", True)
    check("charts drawn", page.locator("#chart-hour svg polyline").count() >= 10)
    page.screenshot(path=f"{SHOTS}/03-dashboard.png", full_page=True)

    # ---- messages: the failed one by control id, at the parser's position -----------------
    page.get_by_role("link", name="Messages").click()
    page.get_by_label("Control id, sender or type").fill("CONSOLE-BAD-1")
    page.get_by_role("button", name="Search").click()
    rows = page.locator("#messages tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("invalid")
    page.screenshot(path=f"{SHOTS}/04-messages-search.png", full_page=True)
    rows.first.get_by_role("link", name="CONSOLE-BAD-1").click()
    expect(page.locator("#error-position")).to_have_text("PID-7")
    expect(page.locator("#error-field")).to_contain_text("Date/Time of Birth")
    expect(page.locator("#error-field")).to_contain_text("notadate")
    expect(page.locator("#ack")).to_contain_text("MSA|AE|CONSOLE-BAD-1")
    check("failed message shows PID-7 (Date/Time of Birth) and its ACK", True)
    page.screenshot(path=f"{SHOTS}/05-message-failed.png", full_page=True)

    # the unparseable one shows the parser's own position
    page.goto(f"{CONSOLE}/messages?outcome=rejected")
    page.locator("#messages tbody tr a").first.click()
    expect(page.locator("#parse-error")).to_contain_text("at byte")
    expect(page.locator("#error-position")).to_contain_text("segment 2")
    check("unparseable message shows the parser's position", True)
    page.screenshot(path=f"{SHOTS}/06-message-parse-error.png", full_page=True)

    # ---- re-process after a fix: the outcome changes ------------------------------------
    page.goto(f"{CONSOLE}/messages?q=CONSOLE-BAD-1")
    page.locator("#messages tbody tr a").first.click()
    content = page.get_by_label(re.compile("Message content"))
    content.fill(content.input_value().replace("notadate", "19750412"))
    page.get_by_role("button", name="Re-process").click()
    expect(page.locator("#outcome")).to_have_text("stored")
    check("re-processed after the fix: stored", True)
    page.screenshot(path=f"{SHOTS}/07-message-reprocessed.png", full_page=True)
    page.goto(f"{CONSOLE}/messages?q=CONSOLE-BAD-1")
    expect(page.locator("#messages")).to_contain_text("re-processed")

    # ---- studies: the thumbnail and the MPPS state ---------------------------------------
    page.get_by_role("link", name="Studies").click()
    page.locator("#studies tbody tr a").first.click()
    img = page.locator("ul.thumbs img").first
    expect(img).to_be_visible()
    deadline = time.time() + 15
    while not img.evaluate("i => i.complete && i.naturalWidth > 0") and time.time() < deadline:
        time.sleep(0.2)
    check("thumbnail decoded in the page", img.evaluate("i => i.naturalWidth") > 0)
    st, png = http("GET", f"{CONSOLE}{img.get_attribute('src')}")
    check("thumbnail is a PNG", st == 200 and png.startswith(b"\x89PNG"), st)
    expect(page.locator("#study-mpps")).to_contain_text("COMPLETED")
    check("study shows its MPPS state", True)
    page.screenshot(path=f"{SHOTS}/08-study.png", full_page=True)
    page.get_by_role("link", name="MPPS").click()
    page.screenshot(path=f"{SHOTS}/09-mpps.png", full_page=True)

    # ---- worklist: the order's step; audit: the refused FHIR request ------------------------
    page.get_by_role("link", name="Worklist").click()
    page.get_by_label("Accession").fill("ACC-CONSOLE-1")
    page.get_by_role("button", name="Search").click()
    rows = page.locator("#worklist tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("WORK LISA")
    expect(rows.first).to_contain_text("2025-01-24 14:30")
    expect(rows.first).to_contain_text("ServiceRequest/")
    check("worklist lists the order's step", True)
    page.screenshot(path=f"{SHOTS}/12-worklist.png", full_page=True)
    page.get_by_role("link", name="Audit").click()
    page.get_by_label("Outcome").select_option("4")
    page.get_by_role("button", name="Search").click()
    rows = page.locator("#audit tbody tr")
    expect(rows.first).to_contain_text("X-API-Key is not valid")
    check("audit lists the refused request", rows.count() >= 1)
    page.screenshot(path=f"{SHOTS}/13-audit.png", full_page=True)

    # ---- keyboard: skip link and navigation reach the content ----------------------------
    page.goto(f"{CONSOLE}/")
    page.keyboard.press("Tab")
    check("first Tab reaches the skip link", page.evaluate("document.activeElement.className") == "skip")
    page.keyboard.press("Enter")

    # ---- a narrow screen -----------------------------------------------------------------
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{CONSOLE}/")
    check("no horizontal scrolling on a narrow screen",
          page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"))
    page.screenshot(path=f"{SHOTS}/10-dashboard-narrow.png", full_page=True)
    page.goto(f"{CONSOLE}/messages")
    page.screenshot(path=f"{SHOTS}/11-messages-narrow.png", full_page=True)

    # ---- logging out ends access -----------------------------------------------------------
    page.set_viewport_size({"width": 1280, "height": 900})
    page.get_by_role("button", name="Log out").click()
    page.goto(f"{CONSOLE}/studies")
    check("after logging out pages refuse access", "/login" in page.url, page.url)
    browser.close()

print("console browser test: all checks passed", flush=True)
