//! The quickstart of the docs, run as printed with the demo key.

use serde_json::json;

use crate::support::{DEMO_KEY, TestApp, id};

#[tokio::test]
async fn quickstart_runs_as_documented() {
    let app = TestApp::start().await;

    // Step 1: the policy.
    let policy = app.docs_policy(DEMO_KEY).await;
    assert!(id(&policy).starts_with("gpol_"));
    assert_eq!(policy["object"], "guarantee_policy");
    assert_eq!(policy["coverage_percentage"], 100);
    assert_eq!(policy["max_coverage_months"], 12);
    assert_eq!(policy["waiting_period_days"], 30);
    assert_eq!(policy["eligible_score_minimum"], 60);
    assert_eq!(policy["deductible_amount"], 0);
    assert_eq!(policy["active"], true);

    // Step 2: the guarantee, with the docs' body to the letter.
    let g = app
        .post(
            "/v1/guarantees",
            DEMO_KEY,
            json!({
                "policy": id(&policy),
                "tenant": "cus_123456789",
                "coverage_amount": 120000,
                "currency": "eur",
                "start_date": 1706140800,
                "end_date": 1737676800,
                "metadata": {"property_id": "prop_456", "lease_id": "lease_789"}
            }),
        )
        .await
        .ok();
    let grt = id(&g);
    assert!(grt.starts_with("grt_"));
    let expected = json!({
        "id": grt,
        "object": "guarantee",
        "status": "active",
        "policy": id(&policy),
        "tenant": "cus_123456789",
        "coverage_amount": 120000,
        "total_coverage": 1440000,
        "remaining_coverage": 1440000,
        "currency": "eur",
        "start_date": 1706140800,
        "end_date": 1737676800,
        "claims_filed": 0,
        "claims_paid": 0,
        "claims_recovered": 0,
        "cancelled_at": null,
        "metadata": {"property_id": "prop_456", "lease_id": "lease_789"},
        "livemode": false,
        "created": 1706140800
    });
    assert_eq!(g, expected);
    assert_eq!(app.get(&format!("/v1/guarantees/{grt}"), DEMO_KEY).await.ok(), expected);

    // Step 3: the claim, once the rent is overdue (the docs' claim is created 1708819200).
    app.clock.set(1708819200);
    let claim = app
        .post(
            "/v1/claims",
            DEMO_KEY,
            json!({
                "guarantee": grt,
                "amount": 120000,
                "currency": "eur",
                "reason": "missed_payment",
                "evidence": {
                    "invoice_id": "inv_abc123",
                    "due_date": 1708732800,
                    "description": "February 2025 rent — unpaid"
                }
            }),
        )
        .await
        .ok();
    let clm = id(&claim);
    assert!(clm.starts_with("clm_"));
    assert_eq!(claim["object"], "claim");
    assert_eq!(claim["guarantee"], grt.as_str());
    assert_eq!(claim["amount"], 120000);
    assert_eq!(claim["currency"], "eur");
    assert_eq!(claim["status"], "under_review");
    assert_eq!(claim["reason"], "missed_payment");
    assert_eq!(
        claim["evidence"],
        // The docs' evidence, and its evidence files (SPEC section 7): none here.
        json!({"invoice_id": "inv_abc123", "due_date": 1708732800, "description": "February 2025 rent — unpaid",
               "files": []})
    );
    assert_eq!(claim["created"], 1708819200);
    for field in ["payout", "denial_reason", "reviewed_at", "amount_approved"] {
        assert!(claim[field].is_null(), "{field} is null until reviewed");
    }
    assert_eq!(claim["metadata"], json!({}));
    assert_eq!(
        claim["status_transitions"],
        json!({"submitted_at": 1708819200, "under_review_at": 1708819200, "approved_at": null, "denied_at": null, "paid_at": null})
    );

    // "GET /v1/claims?guarantee=grt_def456"
    let list = app.get(&format!("/v1/claims?guarantee={grt}"), DEMO_KEY).await.ok();
    assert_eq!(list["object"], "list");
    assert_eq!(list["url"], "/v1/claims");
    assert_eq!(list["has_more"], false);
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert_eq!(list["data"][0], claim);
    assert_eq!(app.get(&format!("/v1/claims/{clm}"), DEMO_KEY).await.ok(), claim);

    let g = app.get(&format!("/v1/guarantees/{grt}"), DEMO_KEY).await.ok();
    assert_eq!(g["claims_filed"], 1);
}

#[tokio::test]
async fn every_response_carries_a_request_id_and_version() {
    let app = TestApp::start().await;
    let ok = app.get("/v1/customers/cus_123456789", DEMO_KEY).await;
    let missing = app.get("/v1/customers/cus_nope", DEMO_KEY).await;
    let unauth = app.get("/v1/customers", "sk_test_nope").await;
    let health = app.send(reqwest::Method::GET, "/healthz", None, None).await;
    let mut seen = std::collections::HashSet::new();
    for r in [&ok, &missing, &unauth, &health] {
        let rid = r.headers.get("request-id").expect("request-id").to_str().unwrap().to_owned();
        assert!(rid.starts_with("req_"), "{rid}");
        assert!(seen.insert(rid), "request ids are unique");
        assert!(r.headers.contains_key("casapay-version"));
    }
    assert_eq!(ok.ok()["score"], 80);
}

#[tokio::test]
async fn health_and_readiness() {
    let app = TestApp::start().await;
    let h = app.send(reqwest::Method::GET, "/healthz", None, None).await;
    assert_eq!(h.status, 200);
    let r = app.send(reqwest::Method::GET, "/readyz", None, None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["store"], "ok");
    // With the store closed, readiness fails but the process still answers.
    app.store.close().await;
    let r = app.send(reqwest::Method::GET, "/readyz", None, None).await;
    assert_eq!(r.status, 503);
    assert_eq!(app.send(reqwest::Method::GET, "/healthz", None, None).await.status, 200);
    // And API requests get a 503 in the error shape, not a hang or a 500.
    let r = app.get("/v1/customers", DEMO_KEY).await;
    r.err(503, "api_error", None);
}

#[tokio::test]
async fn demo_seed_is_idempotent() {
    let app = TestApp::start().await;
    casapay::service::accounts::seed_demo(&app.store, 1).await.unwrap();
    casapay::service::accounts::seed_demo(&app.store, 2).await.unwrap();
    let list = app.get("/v1/customers", DEMO_KEY).await.ok();
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert_eq!(list["data"][0]["id"], "cus_123456789");
}

#[tokio::test]
async fn graceful_shutdown_stops_the_server() {
    let mut app = TestApp::start().await;
    assert_eq!(app.get("/v1/customers", DEMO_KEY).await.status, 200);
    app.stop().await;
    assert!(app.client.get(app.url("/healthz")).send().await.is_err(), "no longer listening");
}
