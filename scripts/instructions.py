"""Instructions per request, counted by callgrind: a figure that does not move with the
machine's load, unlike the benchmark's timings.

Usage: python3 scripts/instructions.py PATH_TO_RELEASE_CASAPAY [REQUESTS]

Starts `casapay serve` under `valgrind --tool=callgrind` (SQLite in a temporary
directory, or PostgreSQL when DATABASE_URL is set), warms each operation up, then
counts the server's instructions (all threads) for REQUESTS requests of each operation
over one keep-alive connection. Prints one line per operation and, with
INSTRUCTIONS_KEEP=1, leaves the callgrind files (one per operation) for
callgrind_annotate.
"""

import glob
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    binary = sys.argv[1]
    requests = int(sys.argv[2]) if len(sys.argv) > 2 else 300
    work = tempfile.mkdtemp(prefix="casapay_callgrind_")
    env = dict(os.environ, CASAPAY_RATE_LIMIT_TEST="0", RUST_LOG="warn")
    data = ["--data", work]
    created = json.loads(
        subprocess.run([binary, "accounts", "create", "--name", "callgrind", *data], env=env,
                       check=True, capture_output=True, text=True).stdout)
    key = created["test_key"]
    port = free_port()
    out = os.path.join(work, "callgrind.%p.out")
    server = subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--vgdb=yes",
         binary, "serve", "--listen", f"127.0.0.1:{port}", *data],
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                conn.request("GET", "/healthz")
                conn.getresponse().read()
                break
            except OSError:
                if time.time() > deadline:
                    raise SystemExit("server did not start under valgrind")
                time.sleep(0.5)
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

        def call(method, path, body=None):
            conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
            r = conn.getresponse()
            payload = r.read()
            if r.status >= 300:
                raise SystemExit(f"{method} {path}: {r.status} {payload[:300]!r}")
            return json.loads(payload)

        now = int(time.time())
        policy = call("POST", "/v1/guarantee_policies", {"name": "p", "coverage_percentage": 100, "max_coverage_months": 12})
        tenant = call("POST", "/v1/customers", {"name": "t", "score": 90})
        guarantees = []
        counter = [0]

        def create_guarantee():
            g = call("POST", "/v1/guarantees", {
                "policy": policy["id"], "tenant": tenant["id"], "coverage_amount": 1000, "currency": "eur",
                "start_date": now - 86_400, "end_date": now + 365 * 86_400})
            guarantees.append(g["id"])

        claims = [0]

        def create_claim():
            # Each claim on a guarantee of its own: a guarantee's coverage_amount (1,000)
            # is one such claim per month, so a second claim for the same month would be
            # denied period_limit_reached and the count would measure a denial, not a
            # payout. Create guarantee runs first and as often, so there are enough.
            guarantee = guarantees[claims[0]]
            claims[0] += 1
            call("POST", "/v1/claims", {
                "guarantee": guarantee, "amount": 1000, "currency": "eur",
                "reason": "missed_payment", "evidence": {"invoice_id": f"inv_{claims[0]}", "due_date": now - 86_400}})

        def claims_settled():
            # The claims engine reviews and pays claims in the background: its work
            # belongs to "create claim", so the count waits for it.
            deadline = time.time() + 300
            # Missed rent is decided without an operator: every claim ends denied or paid.
            while any(call("GET", f"/v1/claims?status={s}&limit=1")["data"]
                      for s in ("submitted", "under_review", "approved")):
                if time.time() > deadline:
                    raise SystemExit("claims were not settled within 300 s")
                time.sleep(0.2)
            denied = call("GET", "/v1/claims?status=denied&limit=1")["data"]
            if denied:
                raise SystemExit(f"a claim was denied ({denied[0]['denial_reason']}): the count is not of payouts")

        def retrieve():
            counter[0] += 1
            call("GET", f"/v1/guarantees/{guarantees[counter[0] % len(guarantees)]}")

        def list_guarantees():
            call("GET", "/v1/guarantees?limit=10")

        # Create claim last, so that the engine's work on its claims falls in its count.
        ops = [("create guarantee", create_guarantee, None), ("retrieve guarantee", retrieve, None),
               ("list guarantees", list_guarantees, None), ("create claim", create_claim, claims_settled)]
        for _, op, settle in ops:
            for _ in range(30):
                op()
            if settle:
                settle()
        pid = str(server.pid)
        for name, op, settle in ops:
            subprocess.run(["callgrind_control", "--zero", pid], check=True, capture_output=True)
            for _ in range(requests):
                op()
            if settle:
                settle()
            before = set(glob.glob(os.path.join(work, "callgrind.*")))
            subprocess.run(["callgrind_control", f"--dump={name}", pid], check=True, capture_output=True)
            new = set(glob.glob(os.path.join(work, "callgrind.*"))) - before
            total = 0
            for path in new:
                with open(path) as f:
                    for line in f:
                        m = re.match(r"(?:summary|totals): (\d+)", line)
                        if m:
                            total = max(total, int(m.group(1)))
                if os.environ.get("INSTRUCTIONS_KEEP") == "1":
                    kept = f"callgrind.{name.replace(' ', '_')}.out"
                    shutil.copy(path, kept)
                    print(f"  kept {kept}", file=sys.stderr)
            print(f"{name}: {total / requests:,.0f} instructions per request ({requests} requests)")
    finally:
        server.terminate()
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
