//! The claims engine over HTTP: automated review, payouts, operator review, test
//! helpers, the guarantee lifecycle. The engine is stepped by the tests; time moves
//! by the injected clock.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::support::{DEMO_KEY, DOCS_NOW, TestApp, id};

const DAY: i64 = 86_400;
/// The quickstart's due date: exactly the end of the 30-day waiting period.
const DUE: i64 = 1_708_732_800;

async fn policy(app: &TestApp, body: Value) -> String {
    id(&app.post("/v1/guarantee_policies", DEMO_KEY, body).await.ok())
}

async fn guarantee(app: &TestApp, policy: &str) -> String {
    id(&app.docs_guarantee(DEMO_KEY, policy, "cus_123456789").await)
}

async fn claim(app: &TestApp, grt: &str, invoice: &str, amount: i64, reason: &str, due: i64) -> Value {
    let body = json!({
        "guarantee": grt, "amount": amount, "currency": "eur", "reason": reason,
        "evidence": {"invoice_id": invoice, "due_date": due}
    });
    app.post("/v1/claims", DEMO_KEY, body).await.ok()
}

async fn get(app: &TestApp, path: String) -> Value {
    app.get(&path, DEMO_KEY).await.ok()
}

/// The object as it is now.
async fn reload(app: &TestApp, c: &Value) -> Value {
    get(app, format!("/v1/{}s/{}", c["object"].as_str().unwrap(), id(c))).await
}

fn event_types(list: &Value) -> Vec<String> {
    list["data"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap().to_owned()).collect()
}

/// The demo guarantee's id, the clock a day past `DUE`.
async fn due_demo_guarantee(app: &TestApp) -> String {
    let (_, g) = app.demo_guarantee().await;
    app.clock.set(DUE + DAY);
    id(&g)
}

#[tokio::test]
async fn quickstart_claim_is_approved_and_paid() {
    let app = TestApp::start().await;
    let (_, g) = app.demo_guarantee().await;
    app.clock.set(1_708_819_200);
    let c = claim(&app, &id(&g), "inv_abc123", 120_000, "missed_payment", DUE).await;
    let report = app.settle().await;
    assert_eq!((report.claims_reviewed, report.payouts_sent), (1, 1));

    let c = get(&app, format!("/v1/claims/{}", id(&c))).await;
    assert_eq!(c["status"], "paid");
    assert_eq!(c["amount_approved"], 120_000);
    assert_eq!(c["reviewed_at"], 1_708_819_200);
    assert!(c["denial_reason"].is_null());
    assert_eq!(c["status_transitions"]["approved_at"], 1_708_819_200);
    assert_eq!(c["status_transitions"]["paid_at"], 1_708_819_200);
    let po = c["payout"].as_str().unwrap().to_owned();
    assert!(po.starts_with("po_"));

    let payout = get(&app, format!("/v1/payouts/{po}")).await;
    assert_eq!(
        payout,
        json!({"id": po, "object": "payout", "amount": 120000, "currency": "eur", "claim": id(&c),
               "guarantee": id(&g), "status": "paid", "arrival_date": 1708819200, "livemode": false, "created": 1708819200})
    );
    let g = get(&app, format!("/v1/guarantees/{}", id(&g))).await;
    assert_eq!((g["claims_paid"].as_i64(), g["remaining_coverage"].as_i64()), (Some(120_000), Some(1_320_000)));
    assert_eq!(g["status"], "active");
    let listed = get(&app, format!("/v1/payouts?claim={}", id(&c))).await;
    assert_eq!(listed["data"][0]["id"], po.as_str());
    assert_eq!(get(&app, format!("/v1/payouts?guarantee={}", id(&g))).await["data"].as_array().unwrap().len(), 1);

    let events = get(&app, "/v1/events?limit=5".into()).await;
    assert_eq!(
        event_types(&events),
        ["recovery.created", "claim.paid", "payout.paid", "claim.approved", "claim.submitted"],
        "the paid claim opens its recovery in the same step"
    );
    assert_eq!(events["data"][3]["data"]["previous_attributes"]["status"], "under_review");
    assert!(events["data"][3]["request"]["id"].is_null(), "the engine's events come from no request");
    assert!(app.settle().await.is_idle(), "nothing is done twice");
}

#[tokio::test]
async fn waiting_period_and_coverage_period_boundaries() {
    let app = TestApp::start().await;
    let (_, g) = app.demo_guarantee().await;
    let grt = id(&g);
    let end = g["end_date"].as_i64().unwrap();
    app.clock.set(end + DAY);
    let on_boundary = claim(&app, &grt, "a", 1_000, "missed_payment", DUE).await;
    let early = claim(&app, &grt, "b", 1_000, "missed_payment", DUE - 1).await;
    let on_end = claim(&app, &grt, "c", 1_000, "partial_payment", end).await;
    let late = claim(&app, &grt, "d", 1_000, "missed_payment", end + 1).await;
    app.settle().await;
    let on_boundary = reload(&app, &on_boundary).await;
    assert_eq!(on_boundary["status"], "paid");
    let early = reload(&app, &early).await;
    assert_eq!((early["status"].as_str(), early["denial_reason"].as_str()), (Some("denied"), Some("waiting_period")));
    assert!(early["payout"].is_null() && early["amount_approved"].is_null());
    assert_eq!(early["reviewed_at"], end + DAY);
    assert_eq!(early["status_transitions"]["denied_at"], end + DAY);
    assert_eq!(reload(&app, &on_end).await["status"], "paid");
    let late = reload(&app, &late).await;
    assert_eq!(late["denial_reason"], "outside_coverage_period");
    let denied = get(&app, "/v1/events?type=claim.denied".into()).await;
    assert_eq!(denied["data"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn percentage_deductible_and_exhaustion() {
    let app = TestApp::start().await;
    // 80% coverage, 5,000 deductible, two months: total 240,000.
    let p = policy(
        &app,
        json!({"name": "80%", "coverage_percentage": 80, "max_coverage_months": 2, "deductible_amount": 5000}),
    )
    .await;
    let grt = guarantee(&app, &p).await;
    app.clock.set(DOCS_NOW + 60 * DAY);
    let due = DOCS_NOW + DAY;
    // Claims for January, February and March: each month has its own 120,000 of cover.
    let (february, march) = (due + 31 * DAY, due + 45 * DAY);
    // 80% of 100,001 = 80,000 (rounded down), less 5,000.
    let a = claim(&app, &grt, "a", 100_001, "missed_payment", due).await;
    // 80% of min(500,000, 120,000) = 96,000, less 5,000.
    let b = claim(&app, &grt, "b", 500_000, "missed_payment", february).await;
    // 80% of 6,000 = 4,800: below the deductible.
    let c = claim(&app, &grt, "c", 6_000, "missed_payment", due).await;
    app.settle().await;
    assert_eq!(reload(&app, &a).await["amount_approved"], 75_000);
    assert_eq!(reload(&app, &b).await["amount_approved"], 91_000);
    assert_eq!(reload(&app, &c).await["denial_reason"], "below_deductible");

    // 240,000 - 166,000 = 74,000 remain: the next claim is capped to it, and the guarantee is used up.
    let d = claim(&app, &grt, "d", 120_000, "missed_payment", march).await;
    app.settle().await;
    let d = reload(&app, &d).await;
    assert_eq!((d["status"].as_str(), d["amount_approved"].as_i64()), (Some("paid"), Some(74_000)));
    let g = get(&app, format!("/v1/guarantees/{grt}")).await;
    assert_eq!(g["status"], "claimed");
    assert_eq!((g["claims_paid"].as_i64(), g["remaining_coverage"].as_i64()), (Some(240_000), Some(0)));
    let claimed = get(&app, "/v1/events?type=guarantee.claimed".into()).await;
    assert_eq!(claimed["data"][0]["data"]["previous_attributes"]["status"], "active");

    // A used-up guarantee takes no new claims.
    let r = app.post("/v1/claims", DEMO_KEY, TestApp::claim_body(&grt, "e", due)).await;
    r.err(400, "invalid_request_error", Some("guarantee_not_claimable"));
}

#[tokio::test]
async fn claims_beyond_the_coverage_are_denied_as_exhausted() {
    let app = TestApp::start().await;
    let p = policy(&app, json!({"name": "one month", "coverage_percentage": 100, "max_coverage_months": 1})).await;
    let grt = guarantee(&app, &p).await;
    app.clock.set(DOCS_NOW + 10 * DAY);
    let first = claim(&app, &grt, "a", 120_000, "missed_payment", DOCS_NOW).await;
    let second = claim(&app, &grt, "b", 120_000, "missed_payment", DOCS_NOW).await;
    app.settle().await;
    assert_eq!(get(&app, format!("/v1/claims/{}", id(&first))).await["status"], "paid");
    assert_eq!(get(&app, format!("/v1/claims/{}", id(&second))).await["denial_reason"], "coverage_exhausted");
}

#[tokio::test]
async fn operator_review_of_lease_breaks() {
    let app = TestApp::start().await;
    let op = app.operator_key().await;
    let grt = due_demo_guarantee(&app).await;
    let c = claim(&app, &grt, "lease", 120_000, "lease_break", DUE).await;
    let damage = claim(&app, &grt, "damage", 80_000, "property_damage", DUE).await;
    app.settle().await;
    let path = format!("/v1/claims/{}", id(&c));
    assert_eq!(get(&app, path.clone()).await["status"], "under_review", "waits for an operator");
    assert!(app.settle().await.is_idle(), "and is not reviewed again and again");

    // Platform keys cannot review; operators cannot exceed the computed maximum.
    app.post(&format!("{path}/approve"), DEMO_KEY, json!({})).await.err(403, "permission_error", None);
    let r = app.post(&format!("{path}/approve"), &op, json!({"amount": 120_001})).await;
    assert_eq!(r.err(400, "invalid_request_error", Some("amount_too_large"))["param"], "amount");
    let r = app.post(&format!("{path}/approve"), &op, json!({"amount": 0})).await;
    r.err(400, "invalid_request_error", Some("amount_too_small"));
    let r = app.post(&format!("{path}/approve"), &op, json!({"note": "x"})).await;
    r.err(400, "invalid_request_error", Some("parameter_unknown"));
    let r = app.post("/v1/claims/clm_nope/approve", &op, json!({})).await;
    r.err(404, "invalid_request_error", Some("resource_missing"));

    let approved = app.post(&format!("{path}/approve"), &op, json!({"amount": 50_000})).await.ok();
    assert_eq!((approved["status"].as_str(), approved["amount_approved"].as_i64()), (Some("approved"), Some(50_000)));
    assert!(approved["payout"].as_str().unwrap().starts_with("po_"));
    let again = app.post(&format!("{path}/approve"), &op, json!({})).await;
    again.err(400, "invalid_request_error", Some("claim_not_under_review"));
    app.settle().await;
    assert_eq!(get(&app, path).await["status"], "paid");
    let g = get(&app, format!("/v1/guarantees/{grt}")).await;
    assert_eq!(g["claims_paid"], 50_000);

    // Deny needs a reason from an operator.
    let dpath = format!("/v1/claims/{}/deny", id(&damage));
    let r = app.post(&dpath, &op, json!({})).await;
    assert_eq!(r.err(400, "invalid_request_error", Some("parameter_missing"))["param"], "denial_reason");
    let r = app.post(&dpath, &op, json!({"denial_reason": "bad"})).await;
    r.err(400, "invalid_request_error", Some("parameter_invalid_value"));
    let denied = app.post(&dpath, &op, json!({"denial_reason": "below_deductible"})).await.ok();
    assert_eq!(
        (denied["status"].as_str(), denied["denial_reason"].as_str()),
        (Some("denied"), Some("below_deductible"))
    );
    let ev = get(&app, "/v1/events?type=claim.denied".into()).await;
    assert!(ev["data"][0]["request"]["id"].as_str().unwrap().starts_with("req_"), "operator events carry the request");
}

#[tokio::test]
async fn test_helpers_force_outcomes_in_test_mode_only() {
    let app = TestApp::start().await;
    let grt = due_demo_guarantee(&app).await;
    let a = claim(&app, &grt, "a", 120_000, "lease_break", DUE).await;
    let b = claim(&app, &grt, "b", 120_000, "missed_payment", DUE).await;
    let approved = app.post(&format!("/v1/test_helpers/claims/{}/approve", id(&a)), DEMO_KEY, json!({})).await.ok();
    assert_eq!((approved["status"].as_str(), approved["amount_approved"].as_i64()), (Some("approved"), Some(120_000)));
    let denied = app.post(&format!("/v1/test_helpers/claims/{}/deny", id(&b)), DEMO_KEY, json!({})).await.ok();
    assert_eq!(denied["status"], "denied");
    assert!(denied["denial_reason"].is_null(), "the reason is optional for the helper");
    app.settle().await;
    assert_eq!(get(&app, format!("/v1/claims/{}", id(&a))).await["status"], "paid");

    // Live keys do not see the helpers; other accounts cannot touch the claim.
    let acct = app.new_account().await;
    let r = app.post(&format!("/v1/test_helpers/claims/{}/approve", id(&a)), &acct.live_key, json!({})).await;
    r.err(404, "invalid_request_error", None);
    let r = app.post(&format!("/v1/test_helpers/claims/{}/deny", id(&a)), &acct.test_key, json!({})).await;
    r.err(404, "invalid_request_error", Some("resource_missing"));
}

#[tokio::test]
async fn guarantees_activate_and_expire_by_the_clock() {
    let app = TestApp::start().await;
    let policy = app.docs_policy(DEMO_KEY).await;
    let start = DOCS_NOW + 10 * DAY;
    let end = start + 30 * DAY;
    let g = app
        .post(
            "/v1/guarantees",
            DEMO_KEY,
            json!({"policy": id(&policy), "tenant": "cus_123456789", "coverage_amount": 1000, "currency": "eur",
                   "start_date": start, "end_date": end}),
        )
        .await
        .ok();
    let path = format!("/v1/guarantees/{}", id(&g));
    assert_eq!(g["status"], "pending");
    app.clock.set(start - 1);
    app.settle().await;
    assert_eq!(get(&app, path.clone()).await["status"], "pending");
    app.clock.set(start);
    assert_eq!(app.settle().await.guarantees_changed, 1);
    assert_eq!(get(&app, path.clone()).await["status"], "active");
    // A claim filed while active is still decided after the end.
    app.clock.set(start + 5 * DAY);
    let c = claim(&app, &id(&g), "x", 1000, "missed_payment", start + DAY).await;
    app.clock.set(end);
    app.settle().await;
    assert_eq!(get(&app, path.clone()).await["status"], "expired");
    assert_eq!(get(&app, format!("/v1/claims/{}", id(&c))).await["status"], "denied", "due within the waiting period");
    let types = event_types(&get(&app, "/v1/events?type=guarantee.expired".into()).await);
    assert_eq!(types, ["guarantee.expired"]);
    let activated = get(&app, "/v1/events?type=guarantee.activated".into()).await;
    assert_eq!(activated["data"][0]["data"]["previous_attributes"], json!({"status": "pending"}));

    // Claims may still be filed within 60 days after the end, for rent due while covered.
    app.clock.set(end + 10 * DAY);
    let late = claim(&app, &id(&g), "y", 1000, "missed_payment", end).await;
    app.settle().await;
    assert_eq!(get(&app, format!("/v1/claims/{}", id(&late))).await["status"], "paid");
}

#[tokio::test]
async fn claims_on_a_cancelled_guarantee_are_still_decided() {
    let app = TestApp::start().await;
    let grt = due_demo_guarantee(&app).await;
    let c = claim(&app, &grt, "a", 120_000, "missed_payment", DUE).await;
    app.post(&format!("/v1/guarantees/{}/cancel", grt), DEMO_KEY, json!({})).await.ok();
    app.settle().await;
    assert_eq!(get(&app, format!("/v1/claims/{}", id(&c))).await["status"], "paid");
    let g = get(&app, format!("/v1/guarantees/{grt}")).await;
    assert_eq!((g["status"].as_str(), g["claims_paid"].as_i64()), (Some("cancelled"), Some(120_000)));
}

#[tokio::test]
async fn the_running_engine_pays_a_claim_within_seconds() {
    let app = TestApp::start().await;
    let grt = due_demo_guarantee(&app).await;
    let cancel = CancellationToken::new();
    let task = tokio::spawn(app.engine.clone().run(cancel.clone()));
    let c = claim(&app, &grt, "a", 120_000, "missed_payment", DUE).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = get(&app, format!("/v1/claims/{}", id(&c))).await["status"].clone();
        if status == "paid" {
            break;
        }
        assert!(Instant::now() < deadline, "claim still {status} after 10 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(10), task).await.expect("engine stops when cancelled").unwrap();
}

#[tokio::test]
async fn events_are_kept_for_30_days() {
    let app = TestApp::start().await;
    let old = app.customer(DEMO_KEY, 50).await;
    app.clock.advance(10 * DAY);
    app.customer(DEMO_KEY, 60).await;
    app.settle().await;
    assert_eq!(get(&app, "/v1/events".into()).await["data"].as_array().unwrap().len(), 2);
    app.clock.set(DOCS_NOW + 30 * DAY + 1);
    app.settle().await;
    let left = get(&app, "/v1/events".into()).await;
    assert_eq!(left["data"].as_array().unwrap().len(), 1, "the event from day 0 is gone, the one from day 10 stays");
    assert_ne!(left["data"][0]["data"]["object"]["id"], old["id"]);
}

#[tokio::test]
async fn operators_deny_for_their_own_reasons_with_a_note() {
    let app = TestApp::start().await;
    let op = app.operator_key().await;
    let grt = due_demo_guarantee(&app).await;
    let damage = claim(&app, &grt, "damage", 80_000, "property_damage", DUE).await;
    let review = &damage["review"];
    assert_eq!(
        (&review["note"], &review["decided_by"], &review["evidence_requested"], &review["approvals"]),
        (&json!(null), &json!(null), &json!(null), &json!([])),
        "every claim has its review, empty until decided"
    );
    assert_eq!(review["checks"].as_array().unwrap().len(), 5, "{review}");
    let other = claim(&app, &grt, "other", 80_000, "lease_break", DUE).await;
    app.settle().await;
    let path = format!("/v1/claims/{}/deny", id(&damage));

    // Unknown reasons name the param and list the allowed ones; the rules' own
    // `period_limit_reached` is not a person's to give.
    for bad in ["bad", "period_limit_reached", ""] {
        let r = app.post(&path, &op, json!({"denial_reason": bad})).await;
        let e = r.err(400, "invalid_request_error", Some("parameter_invalid_value"));
        assert_eq!(e["param"], "denial_reason");
        let message = e["message"].as_str().unwrap();
        for allowed in ["waiting_period", "below_deductible", "insufficient_evidence", "fraud_suspected", "other"] {
            assert!(message.contains(allowed), "{message}");
        }
    }
    // `other` needs a note (blanks are none); a note is at most 1,000 characters.
    for body in [json!({"denial_reason": "other"}), json!({"denial_reason": "other", "note": "  "})] {
        let r = app.post(&path, &op, body).await;
        assert_eq!(r.err(400, "invalid_request_error", Some("parameter_missing"))["param"], "note");
    }
    let r = app.post(&path, &op, json!({"denial_reason": "not_covered", "note": "x".repeat(1001)})).await;
    assert_eq!(r.err(400, "invalid_request_error", Some("invalid_string_length"))["param"], "note");
    let r = app.post(&path, &op, json!({"denial_reason": "not_covered", "note": 5})).await;
    assert_eq!(r.err(400, "invalid_request_error", Some("parameter_invalid_string"))["param"], "note");
    assert_eq!(get(&app, format!("/v1/claims/{}", id(&damage))).await["status"], "under_review", "nothing changed");

    // The reason the issue asked for, without a note.
    let denied = app.post(&path, &op, json!({"denial_reason": "insufficient_evidence"})).await.ok();
    assert_eq!(
        (denied["status"].as_str(), denied["denial_reason"].as_str()),
        (Some("denied"), Some("insufficient_evidence"))
    );
    assert_eq!(denied["review"]["note"], json!(null));
    assert!(denied["review"]["decided_by"].as_str().unwrap().starts_with("op_"), "attributed: {}", denied["review"]);

    // `other` with its note (1,000 characters at most, by characters not bytes); the
    // note is stored, shown and sent in the event.
    let note = format!("Tenant disputes the invoice {}", "é".repeat(972));
    assert_eq!(note.chars().count(), 1000);
    let denied = app
        .post(&format!("/v1/claims/{}/deny", id(&other)), &op, json!({"denial_reason": "other", "note": note}))
        .await
        .ok();
    assert_eq!(
        (denied["denial_reason"].as_str(), denied["review"]["note"].as_str()),
        (Some("other"), Some(note.as_str()))
    );
    assert_eq!(get(&app, format!("/v1/claims/{}", id(&other))).await, denied);
    let events = get(&app, "/v1/events?type=claim.denied&limit=1".into()).await;
    assert_eq!(events["data"][0]["data"]["object"]["review"]["note"], note.as_str());
    assert_eq!(events["data"][0]["data"]["previous_attributes"]["review"]["note"], json!(null));
}

#[tokio::test]
async fn test_helpers_take_the_operators_reasons() {
    let app = TestApp::start().await;
    let grt = due_demo_guarantee(&app).await;
    let helper = |c: &Value| format!("/v1/test_helpers/claims/{}/deny", id(c));
    let a = claim(&app, &grt, "a", 1_000, "lease_break", DUE).await;
    let b = claim(&app, &grt, "b", 1_000, "lease_break", DUE).await;
    let r = app.post(&helper(&a), DEMO_KEY, json!({"denial_reason": "period_limit_reached"})).await;
    assert_eq!(r.err(400, "invalid_request_error", Some("parameter_invalid_value"))["param"], "denial_reason");
    let r = app.post(&helper(&a), DEMO_KEY, json!({"denial_reason": "other"})).await;
    assert_eq!(r.err(400, "invalid_request_error", Some("parameter_missing"))["param"], "note");
    let denied = app.post(&helper(&a), DEMO_KEY, json!({"denial_reason": "tenant_paid"})).await.ok();
    assert_eq!(denied["denial_reason"], "tenant_paid");
    // Form-encoded, as `curl -d` sends it.
    let r = app
        .raw(
            reqwest::Method::POST,
            &helper(&b),
            Some(DEMO_KEY),
            Some("application/x-www-form-urlencoded"),
            b"denial_reason=other&note=Tenant%20moved%20out".to_vec(),
        )
        .await
        .ok();
    assert_eq!((r["denial_reason"].as_str(), r["review"]["note"].as_str()), (Some("other"), Some("Tenant moved out")));
}

/// Months of 2024 (UTC), for the per-period cap.
const MAR: i64 = 1_709_251_200;
const APR: i64 = 1_711_929_600;
const MAY: i64 = 1_714_521_600;
const JUN: i64 = 1_717_200_000;
const JUL: i64 = 1_719_792_000;
const AUG: i64 = 1_722_470_400;

#[tokio::test]
async fn coverage_amount_is_a_cap_per_calendar_month() {
    let app = TestApp::start().await;
    let op = app.operator_key().await;
    let (_, g) = app.demo_guarantee().await;
    let grt = id(&g);
    app.clock.set(AUG + DAY);
    let status = |c: Value| {
        let app = &app;
        async move {
            let c = reload(app, &c).await;
            (
                c["status"].as_str().unwrap().to_owned(),
                c["amount_approved"].as_i64(),
                c["denial_reason"].as_str().map(str::to_owned),
            )
        }
    };
    let approved = |amount: i64| ("paid".to_owned(), Some(amount), None);
    let denied = |reason: &str| ("denied".to_owned(), None, Some(reason.to_owned()));

    // March: rent of 100,000, then a top-up of 50,000 on the month's last second: only
    // 20,000 of March's 120,000 is left for it; a third claim, on March's first second,
    // gets nothing. April's first second is April's: paid in full. All in one batch.
    let rent = claim(&app, &grt, "mar-rent", 100_000, "missed_payment", MAR + 4 * DAY).await;
    let top_up = claim(&app, &grt, "mar-top-up", 50_000, "partial_payment", APR - 1).await;
    let third = claim(&app, &grt, "mar-third", 10_000, "missed_payment", MAR).await;
    let april = claim(&app, &grt, "apr-rent", 120_000, "missed_payment", APR).await;
    assert_eq!(app.settle().await.claims_reviewed, 4);
    assert_eq!(status(rent).await, approved(100_000));
    assert_eq!(status(top_up).await, approved(20_000));
    assert_eq!(status(third).await, denied("period_limit_reached"));
    assert_eq!(status(april).await, approved(120_000));
    let ev = get(&app, "/v1/events?type=claim.denied&limit=1".into()).await;
    assert_eq!(ev["data"][0]["data"]["object"]["denial_reason"], "period_limit_reached");

    // May: a denied claim draws nothing on its month.
    let lease = claim(&app, &grt, "may-lease", 120_000, "lease_break", MAY).await;
    app.settle().await;
    app.post(&format!("/v1/claims/{}/deny", id(&lease)), &op, json!({"denial_reason": "not_covered"})).await.ok();
    let may = claim(&app, &grt, "may-rent", 120_000, "missed_payment", MAY + DAY).await;
    app.settle().await;
    assert_eq!(status(may).await, approved(120_000));

    // June: an operator approves at most what the month has left, and a later claim
    // for June is denied by the rules, without waiting for an operator.
    let lease = claim(&app, &grt, "jun-lease", 120_000, "lease_break", JUN).await;
    let rent = claim(&app, &grt, "jun-rent", 90_000, "missed_payment", JUN + DAY).await;
    app.settle().await;
    assert_eq!(status(rent).await, approved(90_000));
    let approve = format!("/v1/claims/{}/approve", id(&lease));
    let r = app.post(&approve, &op, json!({"amount": 30_001})).await;
    assert!(
        r.err(400, "invalid_request_error", Some("amount_too_large"))["message"].as_str().unwrap().contains("30000")
    );
    let ok = app.post(&approve, &op, json!({})).await.ok();
    assert_eq!(ok["amount_approved"], 30_000);
    let more = claim(&app, &grt, "jun-more", 1_000, "property_damage", JUN + 2 * DAY).await;
    app.settle().await;
    assert_eq!(status(more).await, denied("period_limit_reached"));

    // July: the month is used up while a lease break waits for an operator, who then
    // cannot approve it, and is told why.
    let lease = claim(&app, &grt, "jul-lease", 60_000, "lease_break", JUL).await;
    app.settle().await;
    claim(&app, &grt, "jul-rent", 120_000, "missed_payment", JUL + DAY).await;
    app.settle().await;
    let r = app.post(&format!("/v1/claims/{}/approve", id(&lease)), &op, json!({})).await;
    let e = r.err(400, "invalid_request_error", Some("claim_not_approvable"));
    assert!(e["message"].as_str().unwrap().contains("period_limit_reached"), "{e}");
    // The test helper applies the same rule.
    let r = app.post(&format!("/v1/test_helpers/claims/{}/approve", id(&lease)), DEMO_KEY, json!({})).await;
    r.err(400, "invalid_request_error", Some("claim_not_approvable"));

    let g = get(&app, format!("/v1/guarantees/{grt}")).await;
    let paid = 100_000 + 20_000 + 120_000 + 120_000 + 90_000 + 30_000 + 120_000;
    assert_eq!((g["claims_paid"].as_i64(), g["remaining_coverage"].as_i64()), (Some(paid), Some(1_440_000 - paid)));
}

/// The OpenAPI document says what the deny routes take and what a claim can show.
#[tokio::test]
async fn the_document_lists_the_denial_reasons() {
    let app = TestApp::start().await;
    let doc = app.send(reqwest::Method::GET, "/v1/openapi.json", None, None).await.ok();
    let schemas = &doc["components"]["schemas"];
    // Request bodies are inlined in their operations.
    let body = |path: &str| doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"].clone();
    let names = |v: &Value| -> Vec<String> {
        v["enum"].as_array().unwrap().iter().map(|n| n.as_str().unwrap().to_owned()).collect()
    };
    let operator = names(&body("/v1/claims/{id}/deny")["properties"]["denial_reason"]);
    assert_eq!(
        operator,
        [
            "waiting_period",
            "outside_coverage_period",
            "coverage_exhausted",
            "below_deductible",
            "insufficient_evidence",
            "not_covered",
            "duplicate_claim",
            "tenant_paid",
            "fraud_suspected",
            "other"
        ]
    );
    assert_eq!(body("/v1/claims/{id}/deny")["properties"]["note"]["maxLength"], 1000);
    assert_eq!(body("/v1/test_helpers/claims/{id}/deny")["properties"]["note"]["maxLength"], 1000);
    let shown = names(&schemas["DenialReason"]);
    assert!(shown.contains(&"period_limit_reached".to_owned()) && operator.iter().all(|r| shown.contains(r)));
    assert!(schemas["Claim"]["properties"]["review"].is_object());
    assert_eq!(body("/v1/claims")["properties"]["evidence"]["properties"]["due_date"]["maximum"], 253_402_300_799_i64);
    assert_eq!(body("/v1/guarantees")["properties"]["start_date"]["minimum"], 0);
}
