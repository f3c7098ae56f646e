//! Claims review for people (SPEC section 4): named operators, the claim's `review`,
//! four eyes, evidence requests, notes, the operators' queue and the audit trail.

use casapay::clock::Clock;
use casapay::service::operators::{self, CreatedOperator};
use serde_json::{Value, json};

use crate::support::{DEMO_KEY, DOCS_NOW, TestApp, id};

const DAY: i64 = 86_400;
/// Rent due 30 days after the start: past the docs policy's waiting period.
const DUE: i64 = DOCS_NOW + 30 * DAY;

async fn operator(app: &TestApp, name: &str) -> CreatedOperator {
    operators::create(&app.store, name, Some(&format!("{}@provider.example", name.to_lowercase())), app.clock.now())
        .await
        .expect("operator")
}

/// A guarantee on the docs policy for the demo customer covering `coverage` a month,
/// with the clock 40 days after its start.
async fn guarantee(app: &TestApp, coverage: i64) -> String {
    let policy = app.docs_policy(DEMO_KEY).await;
    let g = app
        .post(
            "/v1/guarantees",
            DEMO_KEY,
            json!({"policy": id(&policy), "tenant": "cus_123456789", "coverage_amount": coverage, "currency": "eur",
                   "start_date": DOCS_NOW, "end_date": DOCS_NOW + 365 * DAY}),
        )
        .await
        .ok();
    app.clock.set(DOCS_NOW + 40 * DAY);
    id(&g)
}

async fn file(app: &TestApp, grt: &str, invoice: &str, amount: i64, reason: &str) -> Value {
    let mut body = TestApp::claim_body(grt, invoice, DUE);
    body["amount"] = json!(amount);
    body["reason"] = json!(reason);
    app.post("/v1/claims", DEMO_KEY, body).await.ok()
}

async fn claim(app: &TestApp, id: &str) -> Value {
    app.get(&format!("/v1/claims/{id}"), DEMO_KEY).await.ok()
}

async fn events(app: &TestApp, kind: &str) -> Vec<Value> {
    app.get(&format!("/v1/events?type={kind}&limit=100"), DEMO_KEY).await.ok()["data"].as_array().unwrap().clone()
}

#[tokio::test]
async fn every_claim_explains_its_review_and_who_decided() {
    let app = TestApp::start().await;
    let grt = guarantee(&app, 120_000).await;
    let filed = file(&app, &grt, "inv_auto", 100_000, "missed_payment").await;
    let submitted_at = filed["status_transitions"]["submitted_at"].as_i64().unwrap();
    let review = &filed["review"];
    assert_eq!(review["due_by"], casapay::domain::review::due_by(submitted_at), "5 business days");
    assert_eq!(review["decided_by"], Value::Null);
    assert!(review["checks"].as_array().unwrap().iter().all(|c| c["result"] == "skipped"), "{review}");
    let damage = file(&app, &grt, "inv_damage", 50_000, "property_damage").await;
    let late = {
        let mut body = TestApp::claim_body(&grt, "inv_early", DOCS_NOW + 10 * DAY);
        body["amount"] = json!(1_000);
        app.post("/v1/claims", DEMO_KEY, body).await.ok()
    };
    app.settle().await;

    let auto = claim(&app, &id(&filed)).await;
    assert_eq!((auto["status"].as_str(), auto["review"]["decided_by"].as_str()), (Some("paid"), Some("automation")));
    let checks = auto["review"]["checks"].as_array().unwrap();
    let rules: Vec<&str> = checks.iter().map(|c| c["rule"].as_str().unwrap()).collect();
    assert_eq!(
        rules,
        ["waiting_period", "outside_coverage_period", "coverage_exhausted", "period_limit_reached", "below_deductible"]
    );
    assert!(checks.iter().all(|c| c["result"] == "pass"), "{checks:?}");
    assert!(checks[0]["message"].as_str().unwrap().contains("2024-02-24"), "the waiting period's end date");
    assert!(checks[4]["message"].as_str().unwrap().contains("100000 x 100% = 100000"), "{}", checks[4]["message"]);

    // Denied by the rules: the failing rule says why with its figures, the rest are skipped.
    let denied = claim(&app, &id(&late)).await;
    assert_eq!(
        (denied["denial_reason"].as_str(), denied["review"]["decided_by"].as_str()),
        (Some("waiting_period"), Some("automation"))
    );
    let checks = denied["review"]["checks"].as_array().unwrap();
    assert_eq!(
        checks.iter().map(|c| c["result"].as_str().unwrap()).collect::<Vec<_>>(),
        ["fail", "skipped", "skipped", "skipped", "skipped"]
    );
    assert!(
        checks[0]["message"].as_str().unwrap().contains("2024-02-04")
            && checks[0]["message"].as_str().unwrap().contains("2024-02-24")
    );

    // Waiting for a person: checked, undecided; a named operator decides, attributed.
    let waiting = claim(&app, &id(&damage)).await;
    assert_eq!((waiting["status"].as_str(), &waiting["review"]["decided_by"]), (Some("under_review"), &Value::Null));
    assert!(waiting["review"]["checks"].as_array().unwrap().iter().all(|c| c["result"] == "pass"));
    let alice = operator(&app, "Alice").await;
    assert!(alice.id.starts_with("op_") && alice.key.starts_with("opk_"));
    let approved =
        app.post(&format!("/v1/claims/{}/approve", id(&damage)), &alice.key, json!({"amount": 15_000})).await.ok();
    assert_eq!(
        (approved["status"].as_str(), approved["review"]["decided_by"].as_str()),
        (Some("approved"), Some(alice.id.as_str()))
    );
    let event = &events(&app, "claim.approved").await[0];
    assert_eq!(event["data"]["object"]["review"]["decided_by"], alice.id.as_str());

    // The test helper's decisions say so.
    app.clock.advance(31 * DAY);
    let mut body = TestApp::claim_body(&grt, "inv_helper", DUE + 31 * DAY);
    body["reason"] = json!("lease_break");
    let helper = app.post("/v1/claims", DEMO_KEY, body).await.ok();
    app.settle().await;
    let forced = app.post(&format!("/v1/test_helpers/claims/{}/deny", id(&helper)), DEMO_KEY, json!({})).await.ok();
    assert_eq!(forced["review"]["decided_by"], "test_helper");

    // The audit trail, oldest first, with act_ ids and actors.
    let file = app.get(&format!("/v1/review/claims/{}", id(&damage)), &alice.key).await.ok();
    let actions = file["actions"].as_array().unwrap();
    let steps: Vec<(&str, &str)> =
        actions.iter().map(|a| (a["type"].as_str().unwrap(), a["actor"].as_str().unwrap())).collect();
    assert_eq!(
        steps,
        [("submitted", "platform"), ("checked", "automation"), ("approved", alice.id.as_str()), ("paid", "automation")]
    );
    assert!(actions.iter().all(|a| a["id"].as_str().unwrap().starts_with("act_") && a["object"] == "claim_action"));
    assert_eq!(actions[2]["amount"], 15_000);
    assert_eq!(actions[3]["amount"], 15_000);
}

#[tokio::test]
async fn four_eyes_above_the_threshold_two_operators_lower_amount_stands() {
    let app = TestApp::start().await;
    let grt = guarantee(&app, 1_000_000).await;
    let big = file(&app, &grt, "inv_big", 800_000, "property_damage").await;
    app.settle().await;
    let (alice, bob) = (operator(&app, "Alice").await, operator(&app, "Bob").await);
    let alice_second_key = operators::add_key(&app.store, &alice.id, app.clock.now()).await.unwrap();
    let approve = format!("/v1/claims/{}/approve", id(&big));

    // The first approval at or above 500,000 is recorded; the claim stays under review.
    let first = app.post(&approve, &alice.key, json!({})).await.ok();
    assert_eq!(first["status"], "under_review");
    assert_eq!(
        first["review"]["approvals"],
        json!([{"operator": alice.id, "amount": 800_000, "created": app.clock.now()}])
    );
    assert_eq!(first["payout"], Value::Null);
    let updated = events(&app, "claim.review_updated").await;
    assert_eq!(updated.len(), 1);
    assert_eq!(updated[0]["data"]["object"]["review"]["approvals"][0]["operator"], alice.id.as_str());
    let queue = app.get("/v1/review/claims?awaiting=second_approval", &bob.key).await.ok();
    assert_eq!(queue["data"].as_array().unwrap().iter().map(id).collect::<Vec<_>>(), [id(&big)]);

    // The same operator again, with either of her keys: refused, nothing changes.
    for key in [&alice.key, &alice_second_key] {
        let r = app.post(&approve, key, json!({"amount": 700_000})).await;
        r.err(400, "invalid_request_error", Some("second_approval_required"));
    }
    assert_eq!(claim(&app, &id(&big)).await["review"]["approvals"].as_array().unwrap().len(), 1);

    // A second operator approves: the lower of the two amounts stands, and one payout.
    let second = app.post(&approve, &bob.key, json!({"amount": 700_000})).await.ok();
    assert_eq!((second["status"].as_str(), second["amount_approved"].as_i64()), (Some("approved"), Some(700_000)));
    assert_eq!(second["review"]["decided_by"], bob.id.as_str());
    app.settle().await;
    let payout = app.get(&format!("/v1/payouts/{}", second["payout"].as_str().unwrap()), DEMO_KEY).await.ok();
    assert_eq!(payout["amount"], 700_000);
    let trail = app.get(&format!("/v1/review/claims/{}", id(&big)), &bob.key).await.ok();
    let types: Vec<&str> = trail["actions"].as_array().unwrap().iter().map(|a| a["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["submitted", "checked", "approval_recorded", "approved", "paid"]);

    // Below the threshold one operator is enough; a lower second amount is the first's too.
    let small = file(&app, &grt, "inv_small", 100_000, "lease_break").await;
    let other_month = {
        let mut body = TestApp::claim_body(&grt, "inv_june", DUE + 31 * DAY);
        body["amount"] = json!(900_000);
        body["reason"] = json!("lease_break");
        app.clock.advance(40 * DAY);
        app.post("/v1/claims", DEMO_KEY, body).await.ok()
    };
    app.settle().await;
    let r = app.post(&format!("/v1/claims/{}/approve", id(&small)), &alice.key, json!({})).await;
    assert_eq!(r.ok()["status"], "approved", "100,000 needs one pair of eyes");
    let path = format!("/v1/claims/{}/approve", id(&other_month));
    assert_eq!(app.post(&path, &bob.key, json!({"amount": 600_000})).await.ok()["status"], "under_review");
    let done = app.post(&path, &alice.key, json!({})).await.ok();
    assert_eq!(done["amount_approved"], 600_000, "the first operator's lower amount stands");
}

#[tokio::test]
async fn four_eyes_can_be_turned_off() {
    let app = TestApp::start_with(casapay::ApiConfig {
        second_approval_amount: 0,
        rate_limits: casapay::api::rate_limit::RateLimitConfig::OFF,
        ..casapay::ApiConfig::default()
    })
    .await;
    let grt = guarantee(&app, 1_000_000).await;
    let big = file(&app, &grt, "inv_big", 800_000, "property_damage").await;
    app.settle().await;
    let alice = operator(&app, "Alice").await;
    let r = app.post(&format!("/v1/claims/{}/approve", id(&big)), &alice.key, json!({})).await.ok();
    assert_eq!((r["status"].as_str(), r["amount_approved"].as_i64()), (Some("approved"), Some(800_000)));
}

#[tokio::test]
async fn evidence_requests_are_answered_by_the_platform_and_notes_stay_internal() {
    let app = TestApp::start().await;
    let grt = guarantee(&app, 120_000).await;
    let damage = file(&app, &grt, "inv_damage", 50_000, "property_damage").await;
    let auto = file(&app, &grt, "inv_auto", 50_000, "lease_break").await;
    let alice = operator(&app, "Alice").await;
    // Still with automation: an operator cannot ask yet.
    let r = app.post(&format!("/v1/claims/{}/request_evidence", id(&auto)), &alice.key, json!({"message": "?"})).await;
    r.err(400, "invalid_request_error", Some("claim_not_awaiting_operator"));
    app.settle().await;

    let ask = format!("/v1/claims/{}/request_evidence", id(&damage));
    let r = app.post(&ask, &alice.key, json!({})).await;
    assert_eq!(r.err(400, "invalid_request_error", Some("parameter_missing"))["param"], "message");
    let asked = app.post(&ask, &alice.key, json!({"message": "Photos of the damage, please."})).await.ok();
    assert_eq!(asked["review"]["evidence_requested"], "Photos of the damage, please.");
    let requested = events(&app, "claim.evidence_requested").await;
    assert_eq!(requested.len(), 1);
    assert_eq!(requested[0]["data"]["object"]["review"]["evidence_requested"], "Photos of the damage, please.");
    let queue = app.get("/v1/review/claims?awaiting=evidence", &alice.key).await.ok();
    assert_eq!(queue["data"].as_array().unwrap().len(), 1);
    assert_eq!(
        app.get("/v1/review/claims?awaiting=operator", &alice.key).await.ok()["data"].as_array().unwrap().len(),
        1
    );

    // An internal note: in the audit trail for operators, nowhere for the platform.
    let secret = "Landlord has three similar claims this year";
    let note = app.post(&format!("/v1/claims/{}/notes", id(&damage)), &alice.key, json!({"note": secret})).await.ok();
    assert_eq!(
        (note["object"].as_str(), note["type"].as_str(), note["actor"].as_str()),
        (Some("claim_action"), Some("note_added"), Some(alice.id.as_str()))
    );
    assert!(note["id"].as_str().unwrap().starts_with("act_"));

    // The platform answers through the claim's update: the request is cleared.
    let answered = app
        .post(
            &format!("/v1/claims/{}", id(&damage)),
            DEMO_KEY,
            json!({"evidence": {"description": "Photos sent by post <b>today</b>"}}),
        )
        .await
        .ok();
    assert_eq!(answered["review"]["evidence_requested"], Value::Null);
    assert_eq!(answered["evidence"]["description"], "Photos sent by post <b>today</b>");
    let updated = events(&app, "claim.updated").await;
    assert_eq!(
        updated[0]["data"]["previous_attributes"]["review"]["evidence_requested"],
        "Photos of the damage, please."
    );
    let queue = app.get("/v1/review/claims?awaiting=evidence", &alice.key).await.ok();
    assert!(queue["data"].as_array().unwrap().is_empty());

    let trail = app.get(&format!("/v1/review/claims/{}", id(&damage)), &alice.key).await.ok();
    let types: Vec<&str> = trail["actions"].as_array().unwrap().iter().map(|a| a["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["submitted", "checked", "evidence_requested", "note_added", "evidence_added"]);
    assert_eq!(trail["actions"][4]["actor"], "platform");

    // Nothing the platform can read shows the note.
    let everything = [
        app.get(&format!("/v1/claims/{}", id(&damage)), DEMO_KEY).await.text,
        app.get("/v1/claims?limit=100", DEMO_KEY).await.text,
        app.get("/v1/events?limit=100", DEMO_KEY).await.text,
    ];
    assert!(everything.iter().all(|t| !t.contains(secret)));
    // And no review route answers a platform key.
    for path in ["/v1/review/claims".to_owned(), format!("/v1/review/claims/{}", id(&damage))] {
        app.get(&path, DEMO_KEY).await.err(403, "permission_error", None);
    }
    for op in ["notes", "request_evidence", "approve", "deny"] {
        let r =
            app.post(&format!("/v1/claims/{}/{op}", id(&damage)), DEMO_KEY, json!({"note": "x", "message": "x"})).await;
        r.err(403, "permission_error", None);
    }

    // Evidence is added while under review only.
    app.post(&format!("/v1/claims/{}/deny", id(&damage)), &alice.key, json!({"denial_reason": "tenant_paid"}))
        .await
        .ok();
    let r =
        app.post(&format!("/v1/claims/{}", id(&damage)), DEMO_KEY, json!({"evidence": {"description": "late"}})).await;
    r.err(400, "invalid_request_error", Some("claim_not_under_review"));
    app.post(&format!("/v1/claims/{}", id(&damage)), DEMO_KEY, json!({"metadata": {"k": "v"}})).await.ok();
}

#[tokio::test]
async fn the_queue_is_ordered_by_deadline_with_cursors_and_filters() {
    let app = TestApp::start().await;
    let grt = guarantee(&app, 120_000).await;
    let other = app.new_account().await;
    // Claims filed a day apart: deadlines in filing order. One is automation's.
    let mut ids = Vec::new();
    for (i, reason) in ["property_damage", "lease_break", "property_damage", "lease_break"].iter().enumerate() {
        ids.push(id(&file(&app, &grt, &format!("inv_{i}"), 10_000, reason).await));
        app.clock.advance(DAY);
    }
    file(&app, &grt, "inv_auto", 10_000, "missed_payment").await;
    app.settle().await;
    let op = operator(&app, "Alice").await;
    let page = |q: &str| {
        let (app, key) = (&app, op.key.clone());
        let q = q.to_owned();
        async move { app.get(&format!("/v1/review/claims{q}"), &key).await.ok() }
    };
    let all = page("").await;
    assert_eq!((all["object"].as_str(), all["url"].as_str()), (Some("list"), Some("/v1/review/claims")));
    assert_eq!(
        all["data"].as_array().unwrap().iter().map(id).collect::<Vec<_>>(),
        ids,
        "oldest deadline first; automation's not here"
    );
    let first = page("?limit=2").await;
    assert_eq!((first["data"].as_array().unwrap().len(), first["has_more"].as_bool()), (2, Some(true)));
    let rest = page(&format!("?limit=2&starting_after={}", ids[1])).await;
    assert_eq!(rest["data"].as_array().unwrap().iter().map(id).collect::<Vec<_>>(), ids[2..].to_vec());
    assert_eq!(rest["has_more"], false);
    let damage = page("?reason=property_damage").await;
    assert_eq!(damage["data"].as_array().unwrap().iter().map(id).collect::<Vec<_>>(), [ids[0].clone(), ids[2].clone()]);
    assert_eq!(page("?account=acct_demo").await["data"].as_array().unwrap().len(), 4);
    assert!(page(&format!("?account={}", other.id)).await["data"].as_array().unwrap().is_empty());
    assert!(page("?overdue=true").await["data"].as_array().unwrap().is_empty());
    // A week on, the first claims are past their deadlines.
    app.clock.advance(5 * DAY);
    let overdue = page("?overdue=true").await;
    let due_by = |v: &Value| v["review"]["due_by"].as_i64().unwrap();
    assert!(!overdue["data"].as_array().unwrap().is_empty());
    assert!(overdue["data"].as_array().unwrap().iter().all(|c| due_by(c) < app.clock.now()));
    let within = page("?overdue=false").await;
    assert_eq!(overdue["data"].as_array().unwrap().len() + within["data"].as_array().unwrap().len(), 4);
    // A decided claim leaves the queue; an unknown cursor is a 404; bad filters a 400.
    app.post(&format!("/v1/claims/{}/deny", ids[0]), &op.key, json!({"denial_reason": "not_covered"})).await.ok();
    assert_eq!(page("").await["data"].as_array().unwrap().len(), 3);
    let r = app.get(&format!("/v1/review/claims?starting_after={}", ids[0]), &op.key).await;
    assert_eq!(r.err(404, "invalid_request_error", Some("resource_missing"))["param"], "starting_after");
    let r = app.get("/v1/review/claims?awaiting=nobody", &op.key).await;
    r.err(400, "invalid_request_error", Some("parameter_invalid_value"));
    let r = app.get("/v1/review/claims?limit=101", &op.key).await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn the_review_claim_expands_what_deciding_needs() {
    let app = TestApp::start().await;
    let grt = guarantee(&app, 120_000).await;
    let damage = file(&app, &grt, "inv_damage", 50_000, "property_damage").await;
    app.settle().await;
    let op = operator(&app, "Alice").await;
    let file = app.get(&format!("/v1/review/claims/{}", id(&damage)), &op.key).await.ok();
    assert_eq!((file["id"].as_str(), file["object"].as_str()), (Some(id(&damage).as_str()), Some("claim")));
    assert_eq!(file["guarantee"]["object"], "guarantee");
    assert_eq!(file["guarantee"]["policy"]["object"], "guarantee_policy");
    assert_eq!(file["guarantee"]["tenant"]["id"], "cus_123456789");
    assert_eq!(file["payout"], Value::Null);
    assert_eq!(file["evidence"]["files"], json!([]), "no files: none expanded");
    assert!(file["review"]["checks"].is_array());
    app.post(&format!("/v1/claims/{}/approve", id(&damage)), &op.key, json!({})).await.ok();
    let file = app.get(&format!("/v1/review/claims/{}", id(&damage)), &op.key).await.ok();
    assert_eq!(file["payout"]["object"], "payout");
    let r = app.get("/v1/review/claims/clm_nope", &op.key).await;
    r.err(404, "invalid_request_error", Some("resource_missing"));
    let r = app.get("/v1/review/claims/grt_wrongkind", &op.key).await;
    r.err(404, "invalid_request_error", Some("resource_missing"));
}

#[tokio::test]
async fn a_disabled_operators_keys_stop_working() {
    let app = TestApp::start().await;
    let alice = operator(&app, "Alice").await;
    let bob = operator(&app, "Bob").await;
    app.get("/v1/review/claims", &alice.key).await.ok();
    let disabled = operators::disable(&app.store, &alice.id, app.clock.now()).await.unwrap();
    assert_eq!(disabled.disabled_at, Some(app.clock.now()));
    // At once, though the key authenticated a moment ago (operator keys are never
    // taken from the key cache).
    app.get("/v1/review/claims", &alice.key).await.err(401, "authentication_error", None);
    app.get("/v1/review/claims", &bob.key).await.ok();
    assert!(operators::add_key(&app.store, &alice.id, app.clock.now()).await.is_err(), "no new keys either");
    let all = operators::list(&app.store).await.unwrap();
    assert_eq!(
        all.iter().map(|o| (o.name.as_str(), o.disabled_at.is_some())).collect::<Vec<_>>(),
        [("Alice", true), ("Bob", false)]
    );
}

#[tokio::test]
async fn legacy_operator_keys_are_one_operator_named_operator() {
    let app = TestApp::start().await;
    let (k1, k2) = (app.operator_key().await, app.operator_key().await);
    let all = operators::list(&app.store).await.unwrap();
    assert_eq!(all.iter().map(|o| o.name.as_str()).collect::<Vec<_>>(), ["operator"], "one person");
    let grt = guarantee(&app, 1_000_000).await;
    let big = file(&app, &grt, "inv_big", 800_000, "property_damage").await;
    app.settle().await;
    let path = format!("/v1/claims/{}/approve", id(&big));
    assert_eq!(app.post(&path, &k1, json!({})).await.ok()["review"]["approvals"][0]["operator"], all[0].id.as_str());
    app.post(&path, &k2, json!({})).await.err(400, "invalid_request_error", Some("second_approval_required"));
}
