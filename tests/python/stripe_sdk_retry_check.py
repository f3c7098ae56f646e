"""Stripe's Python SDK with its retries on, against a server with its rate limit on.

    python3 tests/python/stripe_sdk_retry_check.py http://127.0.0.1:PORT

Sends 40 calls at once with one test key, past the 25 per second test-mode limit.
stripe-python retries a 429 only when the answer says `Stripe-Should-Retry: true`
(it honours `Retry-After` when it does), so every call must end in success with
`max_network_retries=3`; and a client error must not be retried at all.
Exits non-zero on failure.
"""

import sys
import time
from concurrent.futures import ThreadPoolExecutor

import stripe

BASE = sys.argv[1]
KEY = "sk_test_4eC39HqLyjWDarjtT1zdp7dc"
CALLS = 40


def one(i):
    # A client per thread: the SDK's HTTP client is not shared across threads here.
    client = stripe.StripeClient(KEY, base_addresses={"api": BASE}, max_network_retries=3)
    try:
        client.raw_request("get", "/v1/customers", limit=1)
        return None
    except stripe.StripeError as e:
        return f"call {i}: {type(e).__name__} {e.http_status}: {e}"


started = time.monotonic()
with ThreadPoolExecutor(max_workers=CALLS) as pool:
    failures = [f for f in pool.map(one, range(CALLS)) if f]
elapsed = time.monotonic() - started
print(f"{CALLS} concurrent calls, {len(failures)} failed after the SDK's retries, {elapsed:.1f} s")
for f in failures:
    print("  ", f)
assert not failures, "every call past the rate limit succeeds once the SDK retries it"

# A client error says it is not worth retrying, and the SDK sends it once.
sent = []
original = stripe.RequestsClient.request


def counting(self, *args, **kwargs):
    sent.append(1)
    return original(self, *args, **kwargs)


stripe.RequestsClient.request = counting
client = stripe.StripeClient(KEY, base_addresses={"api": BASE}, max_network_retries=3, http_client=stripe.RequestsClient())
time.sleep(2)  # the key's bucket refills (25 a second), so the 404 is not a 429
try:
    client.raw_request("get", "/v1/guarantees/grt_missing")
    raise AssertionError("expected InvalidRequestError")
except stripe.InvalidRequestError as e:
    assert e.http_status == 404, e
    assert e.headers.get("Stripe-Should-Retry") == "false", e.headers
assert len(sent) == 1, f"a 404 is sent once, not retried ({len(sent)} sends)"
print("stripe-python", stripe.VERSION, "retries 429s and only them against", BASE)
