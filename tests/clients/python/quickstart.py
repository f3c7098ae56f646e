"""The quickstart through the Python client that openapi-python-client generates from
the served OpenAPI document (scripts/check-clients generates and installs it):

    python tests/clients/python/quickstart.py http://127.0.0.1:PORT

A policy (JSON body), a guarantee (form body) with its policy expanded, a claim, the
claims listed with their guarantees expanded, a claim retrieved with its guarantee's
policy expanded, and an error read as the `Error` model. Exits non-zero on the first
failure.
"""

import sys
import uuid

from casapay_client import AuthenticatedClient
from casapay_client.api.claims import create_claim, list_claims, retrieve_claim
from casapay_client.api.guarantee_policies import create_guarantee_policy
from casapay_client.api.guarantees import create_guarantee, retrieve_guarantee
from casapay_client.models import (
    Claim,
    ClaimList,
    CreateClaimJsonBody,
    CreateClaimJsonBodyEvidence,
    CreateGuaranteeDataBody,
    CreateGuaranteePolicyJsonBody,
    Error,
    Guarantee,
    GuaranteePolicy,
)

KEY = "sk_test_4eC39HqLyjWDarjtT1zdp7dc"
client = AuthenticatedClient(base_url=sys.argv[1], token=KEY, raise_on_unexpected_status=True)


def ok(response, model):
    """The parsed body of a 200, of the operation's own model."""
    assert response.status_code == 200, (response.status_code, response.content)
    assert isinstance(response.parsed, model), response.parsed
    return response.parsed


policy = ok(
    create_guarantee_policy.sync_detailed(
        client=client,
        body=CreateGuaranteePolicyJsonBody(
            name="Standard Rent Guarantee",
            coverage_percentage=100,
            max_coverage_months=12,
            waiting_period_days=0,
            eligible_score_minimum=60,
        ),
    ),
    GuaranteePolicy,
)
assert policy.id.startswith("gpol_") and policy.object_ == "guarantee_policy", policy

# A form body (application/x-www-form-urlencoded), as Stripe's SDKs send.
guarantee = ok(
    create_guarantee.sync_detailed(
        client=client,
        body=CreateGuaranteeDataBody(
            policy=policy.id,
            tenant="cus_123456789",
            coverage_amount=120000,
            currency="eur",
            start_date=1767225600,
            end_date=1830297600,
            expand=["policy"],
        ),
    ),
    Guarantee,
)
assert guarantee.status == "active", guarantee
assert isinstance(guarantee.policy, GuaranteePolicy) and guarantee.policy.id == policy.id, guarantee.policy
plain = ok(retrieve_guarantee.sync_detailed(guarantee.id, client=client), Guarantee)
assert plain.policy == policy.id and plain.tenant == "cus_123456789", plain

claim = ok(
    create_claim.sync_detailed(
        client=client,
        body=CreateClaimJsonBody(
            guarantee=guarantee.id,
            amount=120000,
            currency="eur",
            reason="missed_payment",
            evidence=CreateClaimJsonBodyEvidence(invoice_id="inv_py_" + uuid.uuid4().hex[:8], due_date=1769817600),
            expand=["guarantee"],
        ),
    ),
    Claim,
)
assert isinstance(claim.guarantee, Guarantee) and claim.guarantee.id == guarantee.id, claim.guarantee

claims = ok(list_claims.sync_detailed(client=client, guarantee=guarantee.id, expand=["data.guarantee"]), ClaimList)
assert [c.id for c in claims.data] == [claim.id], claims
assert isinstance(claims.data[0].guarantee, Guarantee), claims.data[0].guarantee

deep = ok(retrieve_claim.sync_detailed(claim.id, client=client, expand=["guarantee.policy"]), Claim)
assert isinstance(deep.guarantee, Guarantee) and isinstance(deep.guarantee.policy, GuaranteePolicy), deep

# An error is the shared Error model, with Stripe's fields.
missing = retrieve_claim.sync_detailed("clm_missing", client=client)
assert missing.status_code == 404 and isinstance(missing.parsed, Error), missing
assert missing.parsed.error.type_ == "invalid_request_error", missing.parsed
assert missing.parsed.error.code == "resource_missing" and missing.parsed.error.param == "id", missing.parsed
refused = create_guarantee_policy.sync_detailed(
    client=client,
    body=CreateGuaranteePolicyJsonBody(
        name="No terms", coverage_percentage=0, max_coverage_months=12, waiting_period_days=0, eligible_score_minimum=60
    ),
)
assert refused.status_code == 400 and isinstance(refused.parsed, Error), refused
print("python client: quickstart passed against", sys.argv[1], "(claim", claim.id + ")")
