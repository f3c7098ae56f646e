"""The review console in a real headless Chromium (Debian's `chromium`, driven by
Playwright with the system browser; no browser is downloaded).

Usage: console_check.py BASE_URL SHORT_SESSION_BASE_URL
Environment: CASAPAY_BIN (the casapay binary), CASAPAY_DATA and CASAPAY_SHORT_DATA (the
servers' SQLite data directories, for the CLI), CASAPAY_SCREENSHOTS (a directory to
write the screenshots to; unset: none are written).

Against `casapay serve --demo` (engine on, four eyes at the default 500,000): creates
operators with the CLI and a platform's claims with the API, then signs in, reads the
queue, approves a damage claim in two steps with two operators, denies another with a
reason, requests evidence; checks that a wrong key, an expired session (the second
server's sessions last 2 s) and a forged cross-site POST are all refused, that a
metadata value and a file name holding markup are shown as text, and that a claim's
evidence files are listed and download through the console's session.
"""

import http.server
import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

from playwright.sync_api import sync_playwright

BASE, SHORT_BASE = sys.argv[1], sys.argv[2]
BIN = os.environ["CASAPAY_BIN"]
DEMO_KEY = "sk_test_4eC39HqLyjWDarjtT1zdp7dc"
DAY = 86_400
SHOTS = os.environ.get("CASAPAY_SCREENSHOTS")
XSS = "<script>window.__pwned = 1</script>"
XSS_FILE = "<img src=x onerror=window.__pwned=2>.png"

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def check(cond, what):
    if not cond:
        raise SystemExit(f"FAIL: {what}")
    print(f"ok: {what}")


def api(base, method, path, key, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method)
    req.add_header("Authorization", f"Bearer {key}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def ok(base, method, path, key, body=None):
    status, out = api(base, method, path, key, body)
    if status != 200:
        raise SystemExit(f"FAIL: {method} {path}: {status} {out}")
    return out


def operator(data_dir, name):
    out = subprocess.run(
        [BIN, "--data", data_dir, "operators", "create", "--name", name, "--email", f"{name.split()[0].lower()}@provider.example"],
        check=True,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    return json.loads(out.stdout)


def poll(what, fn, seconds=20):
    deadline = time.monotonic() + seconds
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise SystemExit(f"FAIL: timed out waiting for {what}")
        time.sleep(0.2)


def guarantee(base, coverage, tenant):
    now = int(time.time())
    policy = ok(base, "POST", "/v1/guarantee_policies", DEMO_KEY,
                {"name": "Standard Rent Guarantee", "coverage_percentage": 90, "max_coverage_months": 12,
                 "waiting_period_days": 0, "deductible_amount": 5000})
    g = ok(base, "POST", "/v1/guarantees", DEMO_KEY,
           {"policy": policy["id"], "tenant": tenant, "coverage_amount": coverage, "currency": "eur",
            "start_date": now - 90 * DAY, "end_date": now + 300 * DAY})
    poll("the guarantee to activate",
         lambda: ok(base, "GET", f"/v1/guarantees/{g['id']}", DEMO_KEY)["status"] == "active")
    return g["id"]


def claim(base, grt, invoice, amount, reason, days_ago, description, metadata=None, files=None):
    body = {"guarantee": grt, "amount": amount, "currency": "eur", "reason": reason,
            "evidence": {"invoice_id": invoice, "due_date": int(time.time()) - days_ago * DAY,
                         "description": description}}
    if metadata:
        body["metadata"] = metadata
    if files:
        body["evidence"]["files"] = files
    return ok(base, "POST", "/v1/claims", DEMO_KEY, body)["id"]


def upload(base, key, filename, content):
    """`curl -F file=@<filename> -F purpose=claim_evidence`: the file object."""
    boundary = "----casapay-console-check"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nclaim_evidence\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode()
    req = urllib.request.Request(base + "/v1/files", data=head + content + f"\r\n--{boundary}--\r\n".encode(),
                                 method="POST")
    req.add_header("Authorization", f"Bearer {key}")
    req.add_header("Content-Type", f"multipart/form-data; boundary={boundary}")
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def pdf_report():
    """A small PDF (one page of text), as a damage report."""
    text = b"BT /F1 18 Tf 72 720 Td (Inspection report: window and door frame) Tj ET"
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>",
               b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
               b"/Resources << /Font << /F1 5 0 R >> >> >>",
               b"<< /Length %d >>\nstream\n%s\nendstream" % (len(text), text),
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    out = b"%PDF-1.4\n"
    offsets = []
    for i, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (i, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return out


def png_photo():
    """A small PNG (a 16x16 gradient), as a photo."""
    import struct
    import zlib
    raw = b"".join(b"\0" + bytes(v for x in range(16) for v in (x * 16, y * 16, 160)) for y in range(16))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 16, 16, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def waiting(base, key, count):
    return poll(f"{count} claims in the queue",
                lambda: len(ok(base, "GET", "/v1/review/claims?limit=100", key)["data"]) >= count)


def launch(p):
    return p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS, headless=True)


def sign_in(page, base, key):
    page.goto(base + "/review")
    check("/review/sign-in" in page.url, "an unsigned visitor is sent to the sign-in page")
    page.fill("#key", key)
    page.click("button[type=submit].primary")
    page.wait_for_url(base + "/review")


def sign_out(page):
    page.click("form[action='/review/sign-out'] button")
    page.wait_for_url("**/review/sign-in?signed_out=1")


def shot(page, name):
    if SHOTS:
        page.screenshot(path=os.path.join(SHOTS, name), full_page=True)


def main():
    data = os.environ["CASAPAY_DATA"]
    alice = operator(data, "Alice Martin")
    bob = operator(data, "Bob Okafor")

    # A platform files claims: two damage claims and a lease break for people to
    # decide, for three tenants, and one missed payment that automation pays.
    tenants = {}
    for name in ["Jana Nowak", "Lukas Weber", "Sofia Rossi"]:
        c = ok(BASE, "POST", "/v1/customers", DEMO_KEY, {"name": name, "email": f"{name.split()[0].lower()}@tenant.example", "score": 82})
        tenants[name] = c["id"]
    grt = guarantee(BASE, 1_000_000, tenants["Jana Nowak"])
    big = claim(BASE, grt, "inv_2041", 780_000, "property_damage", 3,
                "Water damage in the kitchen after a burst pipe; the tenant left the tap running.")
    lease = claim(BASE, guarantee(BASE, 300_000, tenants["Lukas Weber"]), "inv_2042", 240_000, "lease_break", 40,
                  "Tenant left four months before the end of the lease.")
    # The third comes with its evidence: a report and a photo whose name holds markup.
    report_bytes = pdf_report()
    report = upload(BASE, DEMO_KEY, "inspection-report.pdf", report_bytes)
    photo = upload(BASE, DEMO_KEY, XSS_FILE, png_photo())
    xss = claim(BASE, guarantee(BASE, 120_000, tenants["Sofia Rossi"]), "inv_2043", 95_000, "property_damage", 70, "Broken window <b>and</b> door frame.",
                {"inspection": XSS, "contractor": "Glas & Rahmen GmbH"}, [report["id"], photo["id"]])
    claim(BASE, grt, "inv_2044", 100_000, "missed_payment", 100, "March rent unpaid.")
    waiting(BASE, alice["key"], 3)
    # The lease break was filed a fortnight ago (the API files claims now): its deadline
    # has passed. Written straight into the server's SQLite file, as a fixture.
    import sqlite3
    db = sqlite3.connect(os.path.join(data, "casapay.db"), timeout=10)
    with db:
        db.execute("UPDATE claims SET submitted_at = submitted_at - 14 * 86400, review_due_by = review_due_by - 14 * 86400, "
                   "created = created - 14 * 86400 WHERE id = ?", (lease,))
    db.close()

    # The second server: sessions that last 2 seconds.
    short_data = os.environ["CASAPAY_SHORT_DATA"]
    carol = operator(short_data, "Carol Lee")

    # The attacker's page, on another site (localhost is not 127.0.0.1 to a browser):
    # a form that posts a denial to the console as soon as it loads.
    target = BASE.replace("localhost", "127.0.0.1")
    forged = f"""<!doctype html><html><body>
      <form id="f" method="post" action="{target}/review/claims/{big}/deny">
        <input name="denial_reason" value="fraud_suspected"><input name="csrf" value="guessed">
      </form><script>document.getElementById('f').submit()</script></body></html>""".encode()

    class Attacker(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(forged)

        def log_message(self, *args):
            pass

    attacker = http.server.HTTPServer(("127.0.0.1", 0), Attacker)
    threading.Thread(target=attacker.serve_forever, daemon=True).start()
    attacker_url = f"http://localhost:{attacker.server_address[1]}/"

    with sync_playwright() as p:
        browser = launch(p)
        ctx = browser.new_context(viewport={"width": 1280, "height": 900})
        page = ctx.new_page()
        errors = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

        # A wrong key is refused, and says so.
        page.goto(BASE + "/review/sign-in")
        page.fill("#key", "opk_not_a_real_key_000000000000000000")
        resp_status = []
        page.on("response", lambda r: resp_status.append(r.status) if r.request.method == "POST" else None)
        page.click("button[type=submit].primary")
        page.wait_for_load_state()
        check(401 in resp_status, "a wrong key is answered 401")
        check("not accepted" in page.inner_text(".banner.error"), "a wrong key is refused with a clear message")
        check("/review/sign-in" in page.url, "and the visitor stays on the sign-in page")
        # A platform's secret key is not an operator key.
        page.fill("#key", DEMO_KEY)
        page.click("button[type=submit].primary")
        page.wait_for_load_state()
        check("not accepted" in page.inner_text(".banner.error"), "a platform key cannot sign in")

        # Alice signs in: the queue, with the session in an HttpOnly, SameSite=Strict cookie.
        sign_in(page, BASE, alice["key"])
        cookies = {c["name"]: c for c in ctx.cookies()}
        session = cookies.get("casapay_review")
        check(session is not None and session["httpOnly"] and session["sameSite"] == "Strict",
              "the session cookie is HttpOnly and SameSite=Strict")
        check(alice["key"] not in session["value"], "the cookie is not the key")
        check(page.evaluate("localStorage.length + sessionStorage.length") == 0, "nothing in page storage")
        check(alice["key"] not in page.content() and alice["key"] not in page.url, "the key is nowhere in the page or URL")
        rows = page.locator("ol.queue li.row")
        check(rows.count() == 3, "the queue shows the three claims waiting for a person")
        check(page.locator("li.row.overdue").count() >= 1, "claims past their deadline are highlighted")
        page.select_option("select[name=reason]", "property_damage")
        page.click("form.filters button")
        check(page.locator("ol.queue li.row").count() == 2, "the reason filter narrows the queue")
        page.goto(BASE + "/review")
        shot(page, "console-queue.png")

        # The large damage claim: Alice's approval is the first of two.
        page.click(f"a[href='/review/claims/{big}']")
        page.wait_for_url(f"**/review/claims/{big}")
        check(page.locator("#amount").input_value() != "", "the amount defaults to the computed maximum")
        max_amount = int(page.locator("#amount").input_value())
        page.click(f"form[action='/review/claims/{big}/approve'] button")
        page.wait_for_url(f"**/review/claims/{big}?done=approval_recorded")
        check("second operator must approve" in page.inner_text(".banner"), "the first approval asks for a second")
        state = ok(BASE, "GET", f"/v1/review/claims/{big}", alice["key"])
        check(state["status"] == "under_review" and state["review"]["approvals"][0]["operator"] == alice["id"],
              "the claim stays under review with Alice's approval")
        # Alice again: refused with a clear message.
        page.click(f"form[action='/review/claims/{big}/approve'] button")
        page.wait_for_load_state()
        check("second, different operator" in page.inner_text(".banner.error"), "the same operator cannot give the second approval")
        sign_out(page)
        # Signing out ended the session on the server: the old cookie opens nothing.
        probe = browser.new_context()
        probe.add_cookies([{**session, "sameSite": "Strict"}])
        pp = probe.new_page()
        pp.goto(BASE + "/review")
        check("/review/sign-in" in pp.url, "a signed-out session's cookie no longer works")
        probe.close()

        # Bob approves: the claim is approved, attributed to him.
        sign_in(page, BASE, bob["key"])
        page.goto(f"{BASE}/review/claims/{big}")
        check("Second approval" in page.inner_text("form[action$='/approve']"), "Bob sees it needs his second approval")
        page.fill("#amount", str(max_amount - 30_000))
        page.click(f"form[action='/review/claims/{big}/approve'] button")
        page.wait_for_url(f"**/review/claims/{big}?done=approved")
        state = ok(BASE, "GET", f"/v1/review/claims/{big}", bob["key"])
        check(state["status"] in ("approved", "paid") and state["review"]["decided_by"] == bob["id"]
              and state["amount_approved"] == max_amount - 30_000, "approved in two steps by two operators, lower amount")
        # An approve on a decided claim is refused clearly (an old tab's form).
        page.goto(f"{BASE}/review/claims/{lease}")

        # The lease break: denied with a reason and a note.
        page.select_option("#denial_reason", "not_covered")
        page.fill("#deny_note", "Lease breaks by mutual agreement are not covered.")
        page.click(f"form[action='/review/claims/{lease}/deny'] button")
        page.wait_for_url(f"**/review/claims/{lease}?done=denied")
        state = ok(BASE, "GET", f"/v1/claims/{lease}", DEMO_KEY)
        check(state["status"] == "denied" and state["denial_reason"] == "not_covered", "denied with the reason")
        # `other` without a note is refused with a message, nothing changes.

        # The claim with <script> in its metadata: shown as text, never run.
        page.goto(f"{BASE}/review/claims/{xss}")
        check(XSS in page.inner_text("table.kv"), "a metadata value holding <script> is shown as text")
        check(page.evaluate("typeof window.__pwned") == "undefined", "and it did not run")
        check("<b>and</b>" in page.inner_text("dd.prose"), "markup in a description is shown as text")
        # Its evidence files: listed with their type and size, names as text, each a
        # download through the console's session.
        links = page.locator("ul.files a.file")
        check(links.count() == 2 and links.first.is_visible(), "the claim's evidence files are listed, with links")
        listed = page.inner_text("ul.files")
        check("inspection-report.pdf" in listed and "PDF" in listed and "PNG" in listed, "each with its name and type")
        check(XSS_FILE in listed and page.evaluate("typeof window.__pwned") == "undefined",
              "a file name holding markup is shown as text, and nothing ran")
        href = links.first.get_attribute("href")
        check(href == f"/review/claims/{xss}/files/{report['id']}", "the link goes through the console and the claim")
        with page.expect_download() as info:
            links.first.click()
        download = info.value
        with open(download.path(), "rb") as f:
            got = f.read()
        check(got == report_bytes, "the file downloads through the link, byte for byte")
        check(download.suggested_filename == "inspection-report.pdf", "under its own name")
        check(page.url.endswith(f"/review/claims/{xss}"), "and the page stays where it was (an attachment)")
        outsider = browser.new_context()
        r = outsider.request.get(BASE + href, max_redirects=0)
        check(r.status == 303 and b"%PDF" not in r.body(), "without a session the link gives nothing")
        outsider.close()
        page.fill("#message", "Please send photos of the window and the contractor's quote.")
        page.click(f"form[action='/review/claims/{xss}/request-evidence'] button")
        page.wait_for_url(f"**/review/claims/{xss}?done=evidence_requested")
        state = ok(BASE, "GET", f"/v1/claims/{xss}", DEMO_KEY)
        check(state["review"]["evidence_requested"].startswith("Please send photos"), "evidence requested from the platform")
        page.fill("#note", "Called the landlord: photos come by Friday.")
        page.click(f"form[action='/review/claims/{xss}/notes'] button")
        page.wait_for_url(f"**/review/claims/{xss}?done=note_added")
        check("photos come by Friday" in page.inner_text("ol.trail"), "the note is in the audit trail")
        shot(page, "console-claim.png")

        # On a phone: the queue and a claim fit the screen.
        phone = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True)
        phone.add_cookies([c for c in ctx.cookies() if c["name"] == "casapay_review"])
        ph = phone.new_page()
        ph.goto(f"{BASE}/review/claims/{xss}")
        width = ph.evaluate("document.documentElement.scrollWidth")
        check(width <= 390, f"no sideways scrolling on a phone ({width}px)")
        ph.goto(f"{BASE}/review")
        check(ph.evaluate("document.documentElement.scrollWidth") <= 390, "the queue fits a phone too")
        shot(ph, "console-phone.png")
        phone.close()

        # A forged cross-site POST: the browser sends no cookie (SameSite=Strict), and the
        # console refuses it anyway; the claim is unchanged.
        before = ok(BASE, "GET", f"/v1/review/claims/{lease}", bob["key"])["status"]
        forged_page = ctx.new_page()
        forged_page.goto(attacker_url)
        forged_page.wait_for_url(f"{target}/review/claims/{big}/deny")
        check("Request refused" in forged_page.content() or "/review/sign-in" in forged_page.url,
              "a forged cross-site POST is refused")
        after = ok(BASE, "GET", f"/v1/review/claims/{big}", bob["key"])
        check(after["status"] in ("approved", "paid") and after["denial_reason"] is None, "and changed nothing")
        check(before == "denied", "the lease break stayed denied")
        # A form posted with a wrong CSRF token from the console's own origin is refused too.
        # (Not with fetch() in the page: the policy allows the page no connections.)
        check(page.evaluate("typeof fetch") == "function", "the page is live")
        r = ctx.request.post(f"{BASE}/review/claims/{xss}/notes", form={"csrf": "wrong", "note": "x"})
        check(r.status == 403, "a wrong CSRF token, with the session cookie, is refused (403)")

        # The page's security headers.
        resp = page.goto(f"{BASE}/review")
        csp = resp.headers.get("content-security-policy", "")
        check("default-src 'none'" in csp and "frame-ancestors 'none'" in csp, "a strict Content-Security-Policy")
        # (The refusals above log their statuses; anything else, such as a resource the
        # policy blocked, is a failure.)
        others = [e for e in errors if not e.startswith("Failed to load resource: the server responded with a status of")]
        check(not others, f"nothing blocked or broken in the browser console: {others}")
        ctx.close()

        # An expired session: the short server's sessions last 2 seconds.
        short = browser.new_context()
        sp = short.new_page()
        sign_in(sp, SHORT_BASE, carol["key"])
        check(sp.locator("h1, .summary").count() > 0, "signed in on the short-session server")
        time.sleep(2.5)
        sp.goto(SHORT_BASE + "/review")
        check("/review/sign-in" in sp.url, "an expired session is refused: back to the sign-in page")
        short.close()
        browser.close()
    attacker.shutdown()
    print("console check passed")


if __name__ == "__main__":
    main()
