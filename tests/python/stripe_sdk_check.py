"""Stripe's official Python SDK, unchanged, against a running casapay server.

    python3 tests/python/stripe_sdk_check.py http://127.0.0.1:PORT

Creates and lists customers, policies, guarantees and claims through
StripeClient.raw_request (form bodies with bracket notation, automatic
Idempotency-Key headers and retries), and checks that errors arrive as the
SDK's own exception classes. Exits non-zero on the first failure.
"""

import sys
import uuid

import stripe

BASE = sys.argv[1]
KEY = "sk_test_4eC39HqLyjWDarjtT1zdp7dc"
client = stripe.StripeClient(KEY, base_addresses={"api": BASE}, max_network_retries=2)


def call(method, path, **params):
    resp = client.raw_request(method, path, **params)
    return client.deserialize(resp, api_mode="V1"), resp


def expect_error(cls, method, path, **params):
    try:
        client.raw_request(method, path, **params)
    except cls as e:
        return e
    raise AssertionError(f"{method} {path}: expected {cls.__name__}")


customer, resp = call("post", "/v1/customers", name="SDK Tenant", score=75, metadata={"source": "sdk"})
assert customer.id.startswith("cus_") and customer.metadata["source"] == "sdk", customer
key = resp.headers.get("Idempotency-Key")
print("customer", customer.id, "idempotency key sent by the SDK:", key)
assert key, "the SDK sends an Idempotency-Key on POST and the server echoes it back"

policy, _ = call(
    "post", "/v1/guarantee_policies",
    name="SDK policy", coverage_percentage=100, max_coverage_months=12, waiting_period_days=0, eligible_score_minimum=60,
)
assert policy.object == "guarantee_policy", policy

guarantee, _ = call(
    "post", "/v1/guarantees",
    policy=policy.id, tenant=customer.id, coverage_amount=120000, currency="eur",
    start_date=1767225600, end_date=1830297600, metadata={"lease_id": "sdk"}, expand=["policy"],
)
assert guarantee.status == "active" and guarantee.policy.id == policy.id, guarantee

claim, _ = call(
    "post", "/v1/claims",
    guarantee=guarantee.id, amount=120000, currency="eur", reason="missed_payment",
    evidence={"invoice_id": "inv_sdk_" + uuid.uuid4().hex[:8], "due_date": 1769817600},
)
assert claim.status == "under_review", claim

for path, created in [
    ("/v1/customers", customer), ("/v1/guarantee_policies", policy),
    ("/v1/guarantees", guarantee), ("/v1/claims", claim),
]:
    listing, _ = call("get", path, limit=100)
    assert created.id in [o.id for o in listing.data], (path, created.id)
listing, _ = call("get", "/v1/claims", guarantee=guarantee.id, expand=["data.guarantee"])
assert listing.data[0].guarantee.id == guarantee.id

# Replays: the same explicit key twice gives the same object.
first = client.raw_request("post", "/v1/customers", name="Once", idempotency_key="sdk-" + uuid.uuid4().hex)
again = client.raw_request("post", "/v1/customers", name="Once", idempotency_key=first.headers["Idempotency-Key"])
assert again.headers.get("Idempotent-Replayed") == "true"
assert client.deserialize(first, api_mode="V1").id == client.deserialize(again, api_mode="V1").id

# Errors arrive as the SDK's exception classes, with Stripe's fields.
e = expect_error(stripe.InvalidRequestError, "post", "/v1/guarantee_policies", coverage_percentage=100)
assert e.code == "parameter_missing" and e.param == "name", e
e = expect_error(stripe.InvalidRequestError, "get", "/v1/guarantees/grt_missing")
assert e.code == "resource_missing" and e.http_status == 404, e
e = expect_error(stripe.IdempotencyError, "post", "/v1/customers", name="Other", idempotency_key=first.headers["Idempotency-Key"])
assert e.http_status == 400, e
bad = stripe.StripeClient("sk_test_" + "x" * 24, base_addresses={"api": BASE})
try:
    bad.raw_request("get", "/v1/customers")
    raise AssertionError("expected AuthenticationError")
except stripe.AuthenticationError as e:
    assert e.http_status == 401 and "****" in str(e), e

print("stripe-python", stripe.VERSION, "works unchanged against", BASE)
