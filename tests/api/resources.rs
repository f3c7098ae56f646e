//! The creation rules and updates of each resource, and their events.

use serde_json::json;

use crate::support::{DEMO_KEY, DOCS_NOW, TestApp, id};

const DAY: i64 = 86_400;

#[tokio::test]
async fn policy_terms_are_fixed_and_validated() {
    let app = TestApp::start().await;
    let p = app.docs_policy(DEMO_KEY).await;
    let path = format!("/v1/guarantee_policies/{}", id(&p));
    let r = app.post(&path, DEMO_KEY, json!({"coverage_percentage": 80})).await;
    let e = r.err(400, "invalid_request_error", Some("policy_terms_immutable"));
    assert_eq!(e["param"], "coverage_percentage");
    assert!(e["message"].as_str().unwrap().contains("cannot change"));

    let updated =
        app.post(&path, DEMO_KEY, json!({"name": "Renamed", "active": false, "metadata": {"tier": "gold"}})).await.ok();
    assert_eq!((updated["name"].as_str(), updated["active"].as_bool()), (Some("Renamed"), Some(false)));
    assert_eq!(updated["coverage_percentage"], 100);

    for (field, value) in [
        ("coverage_percentage", json!(0)),
        ("coverage_percentage", json!(101)),
        ("max_coverage_months", json!(61)),
        ("waiting_period_days", json!(366)),
        ("eligible_score_minimum", json!(-1)),
        ("deductible_amount", json!(-1)),
    ] {
        let mut body = json!({"name": "p", "coverage_percentage": 50, "max_coverage_months": 6});
        body[field] = value;
        let r = app.post("/v1/guarantee_policies", DEMO_KEY, body).await;
        assert_eq!(r.err(400, "invalid_request_error", Some("parameter_out_of_range"))["param"], field);
    }

    // Filter on active.
    app.docs_policy(DEMO_KEY).await;
    let active = app.get("/v1/guarantee_policies?active=true", DEMO_KEY).await.ok();
    assert_eq!(active["data"].as_array().unwrap().len(), 1);
    let inactive = app.get("/v1/guarantee_policies?active=false", DEMO_KEY).await.ok();
    assert_eq!(inactive["data"][0]["id"], id(&p).as_str());
}

#[tokio::test]
async fn guarantee_creation_rules() {
    let app = TestApp::start().await;
    let policy = app.docs_policy(DEMO_KEY).await;
    let pid = id(&policy);
    let body = |tenant: &str, start: i64, end: i64| json!({"policy": pid, "tenant": tenant, "coverage_amount": 120000, "currency": "eur", "start_date": start, "end_date": end});

    // Score below the minimum, and no score at all (counts as 0).
    let low = app.customer(DEMO_KEY, 59).await;
    let r = app.post("/v1/guarantees", DEMO_KEY, body(&id(&low), DOCS_NOW, DOCS_NOW + 365 * DAY)).await;
    assert_eq!(r.err(400, "invalid_request_error", Some("tenant_not_eligible"))["param"], "tenant");
    let unscored = app.post("/v1/customers", DEMO_KEY, json!({"name": "New"})).await.ok();
    let r = app.post("/v1/guarantees", DEMO_KEY, body(&id(&unscored), DOCS_NOW, DOCS_NOW + 365 * DAY)).await;
    r.err(400, "invalid_request_error", Some("tenant_not_eligible"));
    let exact = app.customer(DEMO_KEY, 60).await;
    app.post("/v1/guarantees", DEMO_KEY, body(&id(&exact), DOCS_NOW, DOCS_NOW + 365 * DAY)).await.ok();

    // Dates.
    let r = app.post("/v1/guarantees", DEMO_KEY, body("cus_123456789", DOCS_NOW, DOCS_NOW)).await;
    assert_eq!(r.err(400, "invalid_request_error", Some("invalid_dates"))["param"], "end_date");
    let r = app.post("/v1/guarantees", DEMO_KEY, body("cus_123456789", DOCS_NOW - 10 * DAY, DOCS_NOW - DAY)).await;
    assert_eq!(r.err(400, "invalid_request_error", Some("invalid_dates"))["param"], "end_date");

    // Status at creation: pending when the start is ahead.
    let pending =
        app.post("/v1/guarantees", DEMO_KEY, body("cus_123456789", DOCS_NOW + 1, DOCS_NOW + 365 * DAY)).await.ok();
    assert_eq!(pending["status"], "pending");
    let active = app.post("/v1/guarantees", DEMO_KEY, body("cus_123456789", DOCS_NOW, DOCS_NOW + 365 * DAY)).await.ok();
    assert_eq!(active["status"], "active");

    // Tenant unknown in the account.
    let r = app.post("/v1/guarantees", DEMO_KEY, body("cus_unknown", DOCS_NOW, DOCS_NOW + DAY)).await;
    assert_eq!(r.err(404, "invalid_request_error", Some("resource_missing"))["param"], "tenant");

    // An inactive policy takes no new guarantees; its guarantees run on.
    app.post(&format!("/v1/guarantee_policies/{pid}"), DEMO_KEY, json!({"active": false})).await.ok();
    let r = app.post("/v1/guarantees", DEMO_KEY, body("cus_123456789", DOCS_NOW, DOCS_NOW + DAY)).await;
    assert_eq!(r.err(400, "invalid_request_error", Some("policy_inactive"))["param"], "policy");
    let still = app.get(&format!("/v1/guarantees/{}", id(&active)), DEMO_KEY).await.ok();
    assert_eq!(still["status"], "active");
}

#[tokio::test]
async fn guarantee_update_and_cancel() {
    let app = TestApp::start().await;
    let (_, g) = app.demo_guarantee().await;
    let path = format!("/v1/guarantees/{}", id(&g));
    let later = g["end_date"].as_i64().unwrap() + 30 * DAY;
    let u = app.post(&path, DEMO_KEY, json!({"end_date": later, "metadata": {"k": "v"}})).await.ok();
    assert_eq!(u["end_date"], later);
    assert_eq!(u["total_coverage"], 1_440_000, "total coverage follows the policy, not the dates");
    let r = app.post(&path, DEMO_KEY, json!({"end_date": later - 1})).await;
    assert_eq!(r.err(400, "invalid_request_error", Some("invalid_dates"))["param"], "end_date");
    let r = app.post(&path, DEMO_KEY, json!({"coverage_amount": 1})).await;
    r.err(400, "invalid_request_error", Some("parameter_unknown"));

    app.clock.advance(DAY);
    let c = app.post(&format!("{path}/cancel"), DEMO_KEY, json!({})).await.ok();
    assert_eq!(c["status"], "cancelled");
    assert_eq!(c["cancelled_at"], DOCS_NOW + DAY);
    let again = app.post(&format!("{path}/cancel"), DEMO_KEY, json!({})).await;
    again.err(400, "invalid_request_error", Some("guarantee_not_cancellable"));
    let r = app.post(&path, DEMO_KEY, json!({"end_date": later + DAY})).await;
    r.err(400, "invalid_request_error", Some("guarantee_not_modifiable"));
    // A cancelled guarantee takes no new claims.
    let r = app.post("/v1/claims", DEMO_KEY, TestApp::claim_body(&id(&g), "inv_1", DOCS_NOW)).await;
    assert_eq!(r.err(400, "invalid_request_error", Some("guarantee_not_claimable"))["param"], "guarantee");

    // Events: created, updated with previous attributes, cancelled.
    let events = app.get("/v1/events?type=guarantee.updated", DEMO_KEY).await.ok();
    let e = &events["data"][0];
    assert_eq!(e["object"], "event");
    assert_eq!(e["data"]["object"]["end_date"], later);
    assert_eq!(e["data"]["previous_attributes"], json!({"end_date": g["end_date"], "metadata": {"k": ""}}));
    assert!(e["request"]["id"].as_str().unwrap().starts_with("req_"));
    let cancelled = app.get("/v1/events?type=guarantee.cancelled", DEMO_KEY).await.ok();
    assert_eq!(cancelled["data"][0]["data"]["object"]["status"], "cancelled");
    assert_eq!(cancelled["data"][0]["data"]["previous_attributes"]["status"], "active");
    let fetched = app.get(&format!("/v1/events/{}", id(&cancelled["data"][0])), DEMO_KEY).await.ok();
    assert_eq!(fetched, cancelled["data"][0]);
}

#[tokio::test]
async fn claim_creation_rules() {
    let app = TestApp::start().await;
    let (_, g) = app.demo_guarantee().await;
    let grt = id(&g);
    app.clock.set(DOCS_NOW + 40 * DAY);

    let mut wrong_currency = TestApp::claim_body(&grt, "inv_1", DOCS_NOW + 30 * DAY);
    wrong_currency["currency"] = json!("usd");
    let r = app.post("/v1/claims", DEMO_KEY, wrong_currency).await;
    assert_eq!(r.err(400, "invalid_request_error", Some("currency_mismatch"))["param"], "currency");

    let r = app.post("/v1/claims", DEMO_KEY, TestApp::claim_body(&grt, "inv_1", DOCS_NOW + 40 * DAY + 1)).await;
    assert_eq!(r.err(400, "invalid_request_error", Some("due_date_in_future"))["param"], "evidence[due_date]");

    let mut bad_reason = TestApp::claim_body(&grt, "inv_1", DOCS_NOW);
    bad_reason["reason"] = json!("bored");
    let r = app.post("/v1/claims", DEMO_KEY, bad_reason).await;
    assert_eq!(r.err(400, "invalid_request_error", Some("parameter_invalid_value"))["param"], "reason");

    let mut long = TestApp::claim_body(&grt, "inv_1", DOCS_NOW);
    long["evidence"]["description"] = json!("x".repeat(1001));
    let r = app.post("/v1/claims", DEMO_KEY, long).await;
    assert_eq!(r.err(400, "invalid_request_error", Some("invalid_string_length"))["param"], "evidence[description]");

    let first = app.post("/v1/claims", DEMO_KEY, TestApp::claim_body(&grt, "inv_1", DOCS_NOW + 30 * DAY)).await.ok();
    let r = app.post("/v1/claims", DEMO_KEY, TestApp::claim_body(&grt, "inv_1", DOCS_NOW + 30 * DAY)).await;
    assert_eq!(r.err(400, "invalid_request_error", Some("duplicate_claim"))["param"], "evidence[invoice_id]");
    app.post("/v1/claims", DEMO_KEY, TestApp::claim_body(&grt, "inv_2", DOCS_NOW + 30 * DAY)).await.ok();

    // Metadata update, with its event; status filter.
    let path = format!("/v1/claims/{}", id(&first));
    let u = app.post(&path, DEMO_KEY, json!({"metadata": {"case": "42"}})).await.ok();
    assert_eq!(u["metadata"], json!({"case": "42"}));
    let r = app.post(&path, DEMO_KEY, json!({"amount": 1})).await;
    r.err(400, "invalid_request_error", Some("parameter_unknown"));
    let under_review = app.get("/v1/claims?status=under_review", DEMO_KEY).await.ok();
    assert_eq!(under_review["data"].as_array().unwrap().len(), 2);
    let paid = app.get("/v1/claims?status=paid", DEMO_KEY).await.ok();
    assert_eq!(paid["data"].as_array().unwrap().len(), 0);
    let r = app.get("/v1/claims?status=nope", DEMO_KEY).await;
    r.err(400, "invalid_request_error", Some("parameter_invalid_value"));

    let g = app.get(&format!("/v1/guarantees/{grt}"), DEMO_KEY).await.ok();
    assert_eq!(g["claims_filed"], 2);
    let submitted = app.get("/v1/events?type=claim.submitted", DEMO_KEY).await.ok();
    assert_eq!(submitted["data"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn claims_allowed_within_60_days_after_the_end() {
    let app = TestApp::start().await;
    let (_, g) = app.demo_guarantee().await;
    let end = g["end_date"].as_i64().unwrap();
    app.clock.set(end + 59 * DAY);
    app.post("/v1/claims", DEMO_KEY, TestApp::claim_body(&id(&g), "late", end - DAY)).await.ok();
    app.clock.set(end + 60 * DAY);
    let r = app.post("/v1/claims", DEMO_KEY, TestApp::claim_body(&id(&g), "too_late", end - DAY)).await;
    r.err(400, "invalid_request_error", Some("guarantee_not_claimable"));
}

#[tokio::test]
async fn customers_crud_and_events() {
    let app = TestApp::start().await;
    let c =
        app.post("/v1/customers", DEMO_KEY, json!({"name": "Ana", "email": "ana@example.com", "score": 70})).await.ok();
    assert!(id(&c).starts_with("cus_"));
    assert_eq!(c["object"], "customer");
    let path = format!("/v1/customers/{}", id(&c));
    let u = app.post(&path, DEMO_KEY, json!({"score": 90, "email": ""})).await.ok();
    assert_eq!((u["score"].as_i64(), u["email"].is_null()), (Some(90), true));
    let r = app.post(&path, DEMO_KEY, json!({"score": 101})).await;
    r.err(400, "invalid_request_error", Some("parameter_out_of_range"));
    let r = app.post(&path, DEMO_KEY, json!({"email": "not an email"})).await;
    r.err(400, "invalid_request_error", Some("email_invalid"));

    app.post("/v1/customers", DEMO_KEY, json!({"email": "bo@example.com"})).await.ok();
    let found = app.get("/v1/customers?email=bo@example.com", DEMO_KEY).await.ok();
    assert_eq!(found["data"].as_array().unwrap().len(), 1);

    let updated = app.get("/v1/events?type=customer.updated", DEMO_KEY).await.ok();
    assert_eq!(updated["data"][0]["data"]["previous_attributes"], json!({"score": 70, "email": "ana@example.com"}));
    let r = app.get("/v1/events?type=nope.nope", DEMO_KEY).await;
    r.err(400, "invalid_request_error", Some("parameter_invalid_value"));
}
