//! Recoveries (SPEC section 6): opened when a claim is paid, monthly plans, payments
//! against the oldest installments, write-offs by operators, missed installments (the
//! engine, and a test clock's advance), both key kinds with attribution, the routes'
//! lists and expansion, and the money rules under concurrency.

use casapay::clock::Clock;
use casapay::service::operators::{self, CreatedOperator};
use casapay::store::Scope;
use futures_util::future::join_all;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{DEMO_KEY, DOCS_NOW, Resp, TestApp, id};

const DAY: i64 = 86_400;
/// Rent due 30 days after the start: past the docs policy's waiting period.
const DUE: i64 = DOCS_NOW + 30 * DAY;
/// The clock of these tests: 40 days after the docs' start, 2024-03-05 00:00 UTC.
const NOW: i64 = DOCS_NOW + 40 * DAY;
const MAR_31: i64 = 1_711_843_200;
const APR_30: i64 = 1_714_435_200;
const MAY_31: i64 = 1_717_113_600;
const JUN_30: i64 = 1_719_705_600;

/// A guarantee of the demo customer on the docs policy, the clock at `NOW`.
async fn guarantee(app: &TestApp) -> String {
    app.claimable_demo_guarantee().await
}

/// A claim of `amount` on `grt`, paid by the engine; returns the claim's id.
async fn paid_claim(app: &TestApp, grt: &str, invoice: &str, amount: i64) -> String {
    let mut body = TestApp::claim_body(grt, invoice, DUE);
    body["amount"] = json!(amount);
    let claim = id(&app.post("/v1/claims", DEMO_KEY, body).await.ok());
    app.settle().await;
    assert_eq!(app.get(&format!("/v1/claims/{claim}"), DEMO_KEY).await.ok()["status"], "paid");
    claim
}

/// The recovery of a claim, by the list's `claim` filter.
async fn recovery_of(app: &TestApp, key: &str, claim: &str) -> Value {
    let list = app.get(&format!("/v1/recoveries?claim={claim}"), key).await.ok();
    let data = list["data"].as_array().unwrap();
    assert_eq!(data.len(), 1, "one recovery per paid claim: {list}");
    data[0].clone()
}

/// A paid claim of 100,000 and its recovery.
async fn recovery(app: &TestApp) -> Value {
    let grt = guarantee(app).await;
    let claim = paid_claim(app, &grt, "inv_rec", 100_000).await;
    recovery_of(app, DEMO_KEY, &claim).await
}

async fn events(app: &TestApp, kind: &str) -> Vec<Value> {
    app.get(&format!("/v1/events?type={kind}&limit=100"), DEMO_KEY).await.ok()["data"].as_array().unwrap().clone()
}

async fn operator(app: &TestApp, name: &str) -> CreatedOperator {
    operators::create(&app.store, name, None, app.clock.now()).await.expect("operator")
}

fn path(rec: &Value, rest: &str) -> String {
    format!("/v1/recoveries/{}{rest}", id(rec))
}

async fn pay(app: &TestApp, key: &str, rec: &Value, amount: i64) -> Resp {
    app.post(&path(rec, "/payments"), key, json!({"amount": amount})).await
}

/// The recovery's trail as (type, actor, amount).
async fn trail(app: &TestApp, rec: &Value) -> Vec<(String, String, Option<i64>)> {
    let scope = Scope { account_id: "acct_demo".into(), livemode: false };
    casapay::service::recoveries::trail(&app.store, &scope, &id(rec))
        .await
        .unwrap()
        .into_iter()
        .map(|a| (a.kind.as_str().to_owned(), a.actor, a.amount))
        .collect()
}

fn amounts(plan: &Value, field: &str) -> Vec<Value> {
    plan["schedule"].as_array().unwrap().iter().map(|i| i[field].clone()).collect()
}

#[tokio::test]
async fn a_paid_claim_opens_a_recovery_of_the_payout_in_the_same_step() {
    let app = TestApp::start().await;
    let grt = guarantee(&app).await;
    let claim = paid_claim(&app, &grt, "inv_1", 100_000).await;
    let c = app.get(&format!("/v1/claims/{claim}"), DEMO_KEY).await.ok();
    let payout = app.get(&format!("/v1/payouts/{}", c["payout"].as_str().unwrap()), DEMO_KEY).await.ok();
    let rec = recovery_of(&app, DEMO_KEY, &claim).await;
    assert!(id(&rec).starts_with("rec_"));
    assert_eq!(
        rec,
        json!({"id": id(&rec), "object": "recovery", "claim": claim, "guarantee": grt, "tenant": "cus_123456789",
               "currency": "eur", "amount": payout["amount"], "amount_recovered": 0, "amount_remaining": 100_000,
               "status": "open", "plan": null, "written_off_reason": null, "metadata": {}, "livemode": false,
               "created": c["status_transitions"]["paid_at"]})
    );
    assert_eq!(app.get(&path(&rec, ""), DEMO_KEY).await.ok(), rec);
    // The event, after the claim's: both written by the payout's settlement.
    let created = events(&app, "recovery.created").await;
    assert_eq!(created.len(), 1);
    assert_eq!(created[0]["data"]["object"], rec);
    let all = app.get("/v1/events?limit=3", DEMO_KEY).await.ok();
    let kinds: Vec<&str> = all["data"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["recovery.created", "claim.paid", "payout.paid"], "newest first");
    let g = app.get(&format!("/v1/guarantees/{grt}"), DEMO_KEY).await.ok();
    assert_eq!((g["claims_paid"].as_i64(), g["claims_recovered"].as_i64()), (Some(100_000), Some(0)));
    assert_eq!(trail(&app, &rec).await, [("opened".to_owned(), "automation".to_owned(), Some(100_000))]);
    // A claim denied or not yet paid has none.
    let mut early = TestApp::claim_body(&grt, "inv_early", DOCS_NOW + DAY);
    early["amount"] = json!(1_000);
    let denied = id(&app.post("/v1/claims", DEMO_KEY, early).await.ok());
    app.settle().await;
    let none = app.get(&format!("/v1/recoveries?claim={denied}"), DEMO_KEY).await.ok();
    assert_eq!(none["data"], json!([]));
}

#[tokio::test]
async fn lists_filter_page_and_expand_like_every_list() {
    let app = TestApp::start().await;
    let grt = guarantee(&app).await;
    let first = paid_claim(&app, &grt, "inv_a", 50_000).await;
    app.clock.advance(10);
    let second = paid_claim(&app, &grt, "inv_b", 40_000).await;
    let (a, b) = (recovery_of(&app, DEMO_KEY, &first).await, recovery_of(&app, DEMO_KEY, &second).await);
    let list = app.get("/v1/recoveries?limit=1", DEMO_KEY).await.ok();
    assert_eq!((list["url"].as_str(), list["has_more"].as_bool()), (Some("/v1/recoveries"), Some(true)));
    assert_eq!(list["data"][0]["id"], id(&b), "newest first");
    let next = app.get(&format!("/v1/recoveries?limit=1&starting_after={}", id(&b)), DEMO_KEY).await.ok();
    assert_eq!((next["data"][0]["id"].as_str(), next["has_more"].as_bool()), (Some(id(&a).as_str()), Some(false)));
    let back = app.get(&format!("/v1/recoveries?ending_before={}", id(&a)), DEMO_KEY).await.ok();
    assert_eq!(back["data"][0]["id"], id(&b));
    let created = b["created"].as_i64().unwrap();
    let newer = app.get(&format!("/v1/recoveries?created[gte]={created}"), DEMO_KEY).await.ok();
    assert_eq!(newer["data"].as_array().unwrap().len(), 1);
    let count = |q: &str| {
        let q = q.to_owned();
        let app = &app;
        async move { app.get(&format!("/v1/recoveries?{q}"), DEMO_KEY).await.ok()["data"].as_array().unwrap().len() }
    };
    assert_eq!(count(&format!("guarantee={grt}")).await, 2);
    assert_eq!(count("tenant=cus_123456789").await, 2);
    assert_eq!(count("status=open").await, 2);
    assert_eq!(count("status=recovered").await, 0);
    app.get("/v1/recoveries?status=closed", DEMO_KEY).await.err(
        400,
        "invalid_request_error",
        Some("parameter_invalid_value"),
    );
    app.get("/v1/recoveries?starting_after=rec_nope", DEMO_KEY).await.err(
        404,
        "invalid_request_error",
        Some("resource_missing"),
    );

    // expand[]=claim and expand[]=guarantee, on one and on a list.
    let one = app.get(&format!("/v1/recoveries/{}?expand[]=claim&expand[]=guarantee", id(&a)), DEMO_KEY).await.ok();
    assert_eq!((one["claim"]["id"].as_str(), one["claim"]["status"].as_str()), (Some(first.as_str()), Some("paid")));
    assert_eq!(
        (one["guarantee"]["id"].as_str(), one["guarantee"]["object"].as_str()),
        (Some(grt.as_str()), Some("guarantee"))
    );
    let deep = app.get(&format!("/v1/recoveries/{}?expand[]=guarantee.policy", id(&a)), DEMO_KEY).await.ok();
    assert_eq!(deep["guarantee"]["policy"]["object"], "guarantee_policy");
    let listed = app.get("/v1/recoveries?expand[]=data.claim", DEMO_KEY).await.ok();
    assert!(listed["data"].as_array().unwrap().iter().all(|r| r["claim"]["object"] == "claim"));
    app.get(&format!("/v1/recoveries/{}?expand[]=tenant", id(&a)), DEMO_KEY).await.err(
        400,
        "invalid_request_error",
        Some("parameter_invalid_expand"),
    );

    // Metadata: `recovery.updated` with what changed.
    let updated = app.post(&path(&a, ""), DEMO_KEY, json!({"metadata": {"case": "c-1"}})).await.ok();
    assert_eq!(updated["metadata"], json!({"case": "c-1"}));
    let e = &events(&app, "recovery.updated").await[0];
    assert_eq!(e["data"]["previous_attributes"], json!({"metadata": {"case": ""}}));
    let plain = app.post(&path(&a, ""), DEMO_KEY, json!({"expand": ["claim"]})).await.ok();
    assert_eq!(plain["claim"]["id"], first.as_str(), "a write's answer expands too");
}

#[tokio::test]
async fn a_plan_splits_what_remains_monthly_and_is_replaced_only_while_unpaid() {
    let app = TestApp::start().await;
    let rec = recovery(&app).await;
    let planned =
        app.post(&path(&rec, "/plan"), DEMO_KEY, json!({"installments": 3, "first_due_date": MAR_31})).await.ok();
    assert_eq!(planned["status"], "in_plan");
    let plan = &planned["plan"];
    assert_eq!((plan["installments"].as_i64(), plan["interval"].as_str()), (Some(3), Some("month")));
    assert_eq!(amounts(plan, "amount"), [json!(33_333), json!(33_333), json!(33_334)], "the remainder on the last");
    // From the 31st: the last day of April, back to the 31st in May.
    assert_eq!(amounts(plan, "due_date"), [json!(MAR_31), json!(APR_30), json!(MAY_31)]);
    assert_eq!(amounts(plan, "status"), vec![json!("pending"); 3]);
    assert_eq!(amounts(plan, "amount_paid"), vec![json!(0); 3]);
    let e = &events(&app, "recovery.updated").await[0];
    assert_eq!(e["data"]["previous_attributes"]["status"], "open");

    // Replaced while nothing of it is paid; a form body works as JSON does.
    let r = app
        .raw(
            Method::POST,
            &path(&rec, "/plan"),
            Some(DEMO_KEY),
            Some("application/x-www-form-urlencoded"),
            format!("installments=4&first_due_date={MAR_31}").into_bytes(),
        )
        .await
        .ok();
    assert_eq!(amounts(&r["plan"], "due_date"), [json!(MAR_31), json!(APR_30), json!(MAY_31), json!(JUN_30)]);
    assert_eq!(amounts(&r["plan"], "amount"), vec![json!(25_000); 4]);

    // Bad input: each a 400 with its code, and nothing changes.
    let before = app.get(&path(&rec, ""), DEMO_KEY).await.ok();
    for (body, code, param) in [
        (json!({"installments": 0, "first_due_date": MAR_31}), "parameter_out_of_range", "installments"),
        (json!({"installments": 25, "first_due_date": MAR_31}), "parameter_out_of_range", "installments"),
        (json!({"installments": 3, "first_due_date": NOW - 1}), "first_due_date_in_past", "first_due_date"),
        (json!({"installments": 3}), "parameter_missing", "first_due_date"),
    ] {
        let e = app.post(&path(&rec, "/plan"), DEMO_KEY, body).await;
        assert_eq!(e.err(400, "invalid_request_error", Some(code))["param"], param);
    }
    assert_eq!(app.get(&path(&rec, ""), DEMO_KEY).await.ok(), before, "nothing half-written");
    // Due now is not in the past.
    app.post(&path(&rec, "/plan"), DEMO_KEY, json!({"installments": 2, "first_due_date": NOW})).await.ok();

    pay(&app, DEMO_KEY, &rec, 1).await.ok();
    let e = app.post(&path(&rec, "/plan"), DEMO_KEY, json!({"installments": 6, "first_due_date": MAR_31})).await;
    e.err(400, "invalid_request_error", Some("recovery_plan_has_payments"));
    let events_before = events(&app, "recovery.updated").await.len();
    assert_eq!(events_before, 3, "one per plan set, none for the refused one");
}

#[tokio::test]
async fn payments_go_to_the_oldest_installments_and_the_last_recovers_it() {
    let app = TestApp::start().await;
    let rec = recovery(&app).await;
    let grt = rec["guarantee"].as_str().unwrap().to_owned();
    app.post(&path(&rec, "/plan"), DEMO_KEY, json!({"installments": 3, "first_due_date": MAR_31})).await.ok();
    let paid = app
        .post(
            &path(&rec, "/payments"),
            DEMO_KEY,
            json!({"amount": 40_000, "reference": "SEPA-1", "paid_at": NOW - DAY}),
        )
        .await
        .ok();
    assert_eq!((paid["amount_recovered"].as_i64(), paid["amount_remaining"].as_i64()), (Some(40_000), Some(60_000)));
    assert_eq!(paid["status"], "in_plan");
    assert_eq!(amounts(&paid["plan"], "amount_paid"), [json!(33_333), json!(6_667), json!(0)]);
    assert_eq!(amounts(&paid["plan"], "status"), [json!("paid"), json!("pending"), json!("pending")]);
    let e = &events(&app, "recovery.payment_recorded").await[0];
    assert_eq!(e["data"]["object"]["amount_recovered"], 40_000);
    assert_eq!(e["data"]["previous_attributes"]["amount_recovered"], 0);
    let g = app.get(&format!("/v1/guarantees/{grt}"), DEMO_KEY).await.ok();
    assert_eq!(g["claims_recovered"], 40_000);
    assert_eq!(g["remaining_coverage"], 1_340_000, "recoveries do not restore the coverage");

    // Bad input: each a 400 with its code, and nothing recorded.
    for (body, code) in [
        (json!({"amount": 60_001}), "amount_too_large"),
        (json!({"amount": 0}), "amount_too_small"),
        (json!({"amount": -5}), "amount_too_small"),
        (json!({"amount": 10, "paid_at": NOW + 1}), "paid_at_in_future"),
        (json!({}), "parameter_missing"),
    ] {
        app.post(&path(&rec, "/payments"), DEMO_KEY, body).await.err(400, "invalid_request_error", Some(code));
    }
    assert_eq!(app.get(&path(&rec, ""), DEMO_KEY).await.ok()["amount_recovered"], 40_000);
    assert_eq!(events(&app, "recovery.payment_recorded").await.len(), 1);

    let done = pay(&app, DEMO_KEY, &rec, 60_000).await.ok();
    assert_eq!((done["status"].as_str(), done["amount_remaining"].as_i64()), (Some("recovered"), Some(0)));
    assert_eq!(amounts(&done["plan"], "status"), vec![json!("paid"); 3]);
    let recovered = events(&app, "recovery.recovered").await;
    assert_eq!(recovered.len(), 1);
    assert_eq!(recovered[0]["data"]["previous_attributes"]["status"], "in_plan");
    assert_eq!(app.get(&format!("/v1/guarantees/{grt}"), DEMO_KEY).await.ok()["claims_recovered"], 100_000);
    // Closed: no more payments or plans.
    pay(&app, DEMO_KEY, &rec, 1).await.err(400, "invalid_request_error", Some("recovery_closed"));
    app.post(&path(&rec, "/plan"), DEMO_KEY, json!({"installments": 2, "first_due_date": MAR_31})).await.err(
        400,
        "invalid_request_error",
        Some("recovery_closed"),
    );
    let kinds: Vec<String> = trail(&app, &rec).await.into_iter().map(|(k, who, _)| format!("{k}:{who}")).collect();
    assert_eq!(
        kinds,
        ["opened:automation", "plan_set:platform", "payment_recorded:platform", "payment_recorded:platform"]
    );
}

#[tokio::test]
async fn a_payment_without_a_plan_counts_and_a_later_plan_splits_the_rest() {
    let app = TestApp::start().await;
    let rec = recovery(&app).await;
    let r = pay(&app, DEMO_KEY, &rec, 10_000).await.ok();
    assert_eq!((r["status"].as_str(), r["amount_remaining"].as_i64()), (Some("open"), Some(90_000)));
    let planned =
        app.post(&path(&rec, "/plan"), DEMO_KEY, json!({"installments": 2, "first_due_date": MAR_31})).await.ok();
    assert_eq!(amounts(&planned["plan"], "amount"), [json!(45_000), json!(45_000)]);
    let small = {
        let grt = rec["guarantee"].as_str().unwrap().to_owned();
        let claim = paid_claim(&app, &grt, "inv_small", 5).await;
        recovery_of(&app, DEMO_KEY, &claim).await
    };
    app.post(&path(&small, "/plan"), DEMO_KEY, json!({"installments": 6, "first_due_date": MAR_31})).await.err(
        400,
        "invalid_request_error",
        Some("installments_too_many"),
    );
}

#[tokio::test]
async fn operators_act_on_any_account_attributed_and_only_they_write_off() {
    let app = TestApp::start().await;
    let rec = recovery(&app).await;
    let alice = operator(&app, "Alice").await;
    assert_eq!(app.get(&path(&rec, ""), &alice.key).await.ok()["id"], id(&rec));
    let listed = app.get("/v1/recoveries", &alice.key).await.ok();
    assert_eq!(listed["data"][0]["id"], id(&rec), "operators list every account's");
    let expanded = app.get(&format!("/v1/recoveries/{}?expand[]=claim", id(&rec)), &alice.key).await.ok();
    assert_eq!(expanded["claim"]["object"], "claim");
    app.post(&path(&rec, "/plan"), &alice.key, json!({"installments": 2, "first_due_date": MAR_31})).await.ok();
    pay(&app, &alice.key, &rec, 30_000).await.ok();

    // Writing off: operator keys only, with a reason.
    let e = app.post(&path(&rec, "/write_off"), DEMO_KEY, json!({"reason": "x"})).await;
    e.err(403, "permission_error", None);
    let e = app.post(&path(&rec, "/write_off"), &alice.key, json!({})).await;
    assert_eq!(e.err(400, "invalid_request_error", Some("parameter_missing"))["param"], "reason");
    let e = app.post(&path(&rec, "/write_off"), &alice.key, json!({"reason": "   "})).await;
    assert_eq!(e.err(400, "invalid_request_error", Some("parameter_missing"))["param"], "reason");
    let off = app.post(&path(&rec, "/write_off"), &alice.key, json!({"reason": "Tenant insolvent."})).await.ok();
    assert_eq!(
        (off["status"].as_str(), off["written_off_reason"].as_str(), off["amount_remaining"].as_i64()),
        (Some("written_off"), Some("Tenant insolvent."), Some(70_000))
    );
    assert_eq!(events(&app, "recovery.written_off").await[0]["data"]["object"]["status"], "written_off");
    // Written off: no payment, plan or second write-off, from either key.
    for key in [DEMO_KEY, alice.key.as_str()] {
        pay(&app, key, &rec, 1).await.err(400, "invalid_request_error", Some("recovery_closed"));
        app.post(&path(&rec, "/plan"), key, json!({"installments": 2, "first_due_date": MAR_31})).await.err(
            400,
            "invalid_request_error",
            Some("recovery_closed"),
        );
    }
    app.post(&path(&rec, "/write_off"), &alice.key, json!({"reason": "again"})).await.err(
        400,
        "invalid_request_error",
        Some("recovery_closed"),
    );
    let who: Vec<(String, String)> = trail(&app, &rec).await.into_iter().map(|(k, a, _)| (k, a)).collect();
    let alice_id = alice.id.clone();
    assert_eq!(
        who,
        [
            ("opened".to_owned(), "automation".to_owned()),
            ("plan_set".to_owned(), alice_id.clone()),
            ("payment_recorded".to_owned(), alice_id.clone()),
            ("written_off".to_owned(), alice_id),
        ]
    );
    app.get("/v1/recoveries/rec_nope", &alice.key).await.err(404, "invalid_request_error", Some("resource_missing"));
    pay(&app, &alice.key, &json!({"id": "rec_nope"}), 1).await.err(
        404,
        "invalid_request_error",
        Some("resource_missing"),
    );
}

#[tokio::test]
async fn platforms_reach_only_their_own_account_and_mode() {
    let app = TestApp::start().await;
    let rec = recovery(&app).await;
    let other = app.new_account().await;
    for key in [other.test_key.as_str(), other.live_key.as_str()] {
        app.get(&path(&rec, ""), key).await.err(404, "invalid_request_error", Some("resource_missing"));
        pay(&app, key, &rec, 1).await.err(404, "invalid_request_error", Some("resource_missing"));
        app.post(&path(&rec, "/plan"), key, json!({"installments": 2, "first_due_date": MAR_31})).await.err(
            404,
            "invalid_request_error",
            Some("resource_missing"),
        );
        app.post(&path(&rec, ""), key, json!({"metadata": {"a": "b"}})).await.err(
            404,
            "invalid_request_error",
            Some("resource_missing"),
        );
        assert_eq!(app.get("/v1/recoveries", key).await.ok()["data"], json!([]));
    }
    app.get("/v1/recoveries/clm_123", DEMO_KEY).await.err(404, "invalid_request_error", Some("resource_missing"));
    assert_eq!(app.get(&path(&rec, ""), DEMO_KEY).await.ok()["amount_recovered"], 0);
}

#[tokio::test]
async fn payments_at_once_never_record_more_than_the_amount() {
    let app = TestApp::start().await;
    let rec = recovery(&app).await;
    // Two at once that together exceed the remainder: one succeeds, one is a 400.
    let both = join_all([pay(&app, DEMO_KEY, &rec, 60_000), pay(&app, DEMO_KEY, &rec, 60_000)]).await;
    let ok = both.iter().filter(|r| r.status == 200).count();
    let refused = both.iter().filter(|r| r.status == 400 && r.body["error"]["code"] == "amount_too_large").count();
    assert_eq!((ok, refused), (1, 1), "{:?}", both.iter().map(|r| &r.text).collect::<Vec<_>>());
    // Many at once: the sum recorded stops at the amount.
    let many = join_all((0..12).map(|_| pay(&app, DEMO_KEY, &rec, 7_000))).await;
    let ok = many.iter().filter(|r| r.status == 200).count();
    assert!(many.iter().all(|r| r.status == 200 || r.body["error"]["code"] == "amount_too_large"));
    assert_eq!(ok, 5, "40,000 left: five of 7,000 fit");
    let r = app.get(&path(&rec, ""), DEMO_KEY).await.ok();
    assert_eq!((r["amount_recovered"].as_i64(), r["amount_remaining"].as_i64()), (Some(95_000), Some(5_000)));
    let total =
        casapay::store::recoveries::payments_total(&mut app.store.acquire().await.unwrap(), &id(&rec)).await.unwrap();
    assert_eq!(total, 95_000, "the trail records what the recovery counts");
    assert_eq!(events(&app, "recovery.payment_recorded").await.len(), 6);
    let g = app.get(&format!("/v1/guarantees/{}", rec["guarantee"].as_str().unwrap()), DEMO_KEY).await.ok();
    assert_eq!(g["claims_recovered"], 95_000);
    // The database refuses more than the amount too: the last line of defence.
    let over = sqlx::query("UPDATE recoveries SET amount_recovered = amount + 1 WHERE id = $1")
        .bind(id(&rec))
        .execute(&mut *app.store.acquire().await.unwrap())
        .await;
    assert!(over.is_err(), "the check constraint holds on both backends");
    assert_eq!(app.get(&path(&rec, ""), DEMO_KEY).await.ok()["amount_recovered"], 95_000);
}

async fn pay_with_key(app: &TestApp, rec: &Value, amount: i64, key: &str) -> Resp {
    pay_as_with_key(app, DEMO_KEY, rec, amount, key).await
}

async fn pay_as_with_key(app: &TestApp, api_key: &str, rec: &Value, amount: i64, key: &str) -> Resp {
    let r = app
        .client
        .post(app.url(&path(rec, "/payments")))
        .bearer_auth(api_key)
        .header("Idempotency-Key", key)
        .json(&json!({"amount": amount, "reference": "bank-42"}))
        .send()
        .await
        .unwrap();
    Resp::from_response(&Method::POST, r).await
}

#[tokio::test]
async fn a_payment_replayed_with_its_idempotency_key_is_recorded_once() {
    let app = TestApp::start().await;
    let rec = recovery(&app).await;
    let first = pay_with_key(&app, &rec, 25_000, "pay-1").await;
    assert_eq!(first.status, 200, "{}", first.text);
    let again = pay_with_key(&app, &rec, 25_000, "pay-1").await;
    assert_eq!((again.status.as_u16(), again.text.as_str()), (200, first.text.as_str()));
    assert_eq!(again.headers["idempotent-replayed"], "true");
    // At once, with one key: one runs, the others replay it or wait for it (409).
    let burst = join_all((0..5).map(|_| pay_with_key(&app, &rec, 10_000, "pay-2"))).await;
    assert!(
        burst.iter().all(|r| r.status == 200 || r.status == 409),
        "{:?}",
        burst.iter().map(|r| &r.text).collect::<Vec<_>>()
    );
    let r = app.get(&path(&rec, ""), DEMO_KEY).await.ok();
    assert_eq!(r["amount_recovered"], 35_000, "each key recorded once");
    assert_eq!(events(&app, "recovery.payment_recorded").await.len(), 2);
    let e = pay_with_key(&app, &rec, 1, "pay-1").await;
    e.err(400, "idempotency_error", None);

    // An operator's payment is kept under its own key, apart from the platform's.
    let alice = operator(&app, "Alice").await;
    let first = pay_as_with_key(&app, &alice.key, &rec, 5_000, "pay-1").await;
    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(first.body["amount_recovered"], 40_000);
    let again = pay_as_with_key(&app, &alice.key, &rec, 5_000, "pay-1").await;
    assert_eq!(again.text, first.text);
    assert_eq!(again.headers["idempotent-replayed"], "true");
    assert_eq!(app.get(&path(&rec, ""), DEMO_KEY).await.ok()["amount_recovered"], 40_000, "recorded once");
    let e = &events(&app, "recovery.payment_recorded").await[0];
    assert_eq!(e["request"]["idempotency_key"], "pay-1", "the key as the operator sent it");
}

#[tokio::test]
async fn the_engine_marks_installments_missed_once() {
    let app = TestApp::start().await;
    let rec = recovery(&app).await;
    app.post(&path(&rec, "/plan"), DEMO_KEY, json!({"installments": 3, "first_due_date": MAR_31})).await.ok();
    pay(&app, DEMO_KEY, &rec, 10_000).await.ok();
    app.clock.set(MAR_31);
    app.settle().await;
    assert!(events(&app, "recovery.installment_missed").await.is_empty(), "due now is not past due");
    app.clock.set(MAR_31 + 1);
    assert_eq!(app.settle().await.installments_missed, 1);
    let r = app.get(&path(&rec, ""), DEMO_KEY).await.ok();
    assert_eq!(amounts(&r["plan"], "status"), [json!("missed"), json!("pending"), json!("pending")]);
    assert_eq!(amounts(&r["plan"], "amount_paid"), [json!(10_000), json!(0), json!(0)]);
    app.clock.advance(DAY);
    assert_eq!(app.settle().await.installments_missed, 0, "once");
    assert_eq!(events(&app, "recovery.installment_missed").await.len(), 1);
    // Paid in full later, a missed installment is paid; one paid on time is never missed.
    let r = pay(&app, DEMO_KEY, &rec, 23_333 + 33_333).await.ok();
    assert_eq!(amounts(&r["plan"], "status"), [json!("paid"), json!("paid"), json!("pending")]);
    app.clock.set(MAY_31 + 1);
    app.settle().await;
    let r = app.get(&path(&rec, ""), DEMO_KEY).await.ok();
    assert_eq!(amounts(&r["plan"], "status"), [json!("paid"), json!("paid"), json!("missed")]);
    // (The first event is past its 30 days' retention by now: the wall clock moved two months.)
    let missed = events(&app, "recovery.installment_missed").await;
    assert_eq!(missed[0]["data"]["object"]["plan"]["schedule"][2]["status"], "missed");
    let automation =
        trail(&app, &rec).await.into_iter().filter(|(k, a, _)| k == "installment_missed" && a == "automation");
    assert_eq!(automation.count(), 2);
}

#[tokio::test]
async fn a_test_clock_advance_misses_installments_at_the_clocks_time() {
    let app = TestApp::start().await;
    let t0 = DOCS_NOW;
    app.clock.set(t0 + 400 * DAY);
    let clock = id(&app.post("/v1/test_helpers/test_clocks", DEMO_KEY, json!({"frozen_time": t0})).await.ok());
    let tenant = id(&app
        .post("/v1/customers", DEMO_KEY, json!({"name": "Clocked", "score": 80, "test_clock": clock}))
        .await
        .ok());
    let policy = app.docs_policy(DEMO_KEY).await;
    let g = app
        .post(
            "/v1/guarantees",
            DEMO_KEY,
            json!({"policy": id(&policy), "tenant": tenant, "coverage_amount": 120000, "currency": "eur",
                   "start_date": t0, "end_date": t0 + 365 * DAY}),
        )
        .await
        .ok();
    let advance = |to: i64| {
        let app = &app;
        let clock = clock.clone();
        async move {
            let path = format!("/v1/test_helpers/test_clocks/{clock}/advance");
            app.post(&path, DEMO_KEY, json!({"frozen_time": to})).await.ok();
            app.settle().await;
            let c = app.get(&format!("/v1/test_helpers/test_clocks/{clock}"), DEMO_KEY).await.ok();
            assert_eq!(c["status"], "ready", "{c}");
        }
    };
    advance(t0 + 40 * DAY).await;
    let claim = app.post("/v1/claims", DEMO_KEY, TestApp::claim_body(&id(&g), "inv_c", t0 + 30 * DAY)).await.ok();
    app.settle().await;
    let rec = recovery_of(&app, DEMO_KEY, &id(&claim)).await;
    assert_eq!(rec["created"], t0 + 40 * DAY, "opened at the clock's time");
    // The plan is judged by the clock's time: the wall clock's "today" is long past it.
    let first = t0 + 50 * DAY;
    app.post(&path(&rec, "/plan"), DEMO_KEY, json!({"installments": 2, "first_due_date": t0 + 39 * DAY})).await.err(
        400,
        "invalid_request_error",
        Some("first_due_date_in_past"),
    );
    app.post(&path(&rec, "/plan"), DEMO_KEY, json!({"installments": 2, "first_due_date": first})).await.ok();
    // The wall-time engine leaves a clock's recoveries alone.
    assert_eq!(app.settle().await.installments_missed, 0);
    advance(first + 1).await;
    let r = app.get(&path(&rec, ""), DEMO_KEY).await.ok();
    assert_eq!(amounts(&r["plan"], "status"), [json!("missed"), json!("pending")]);
    assert_eq!(events(&app, "recovery.installment_missed").await.len(), 1);
    // A payment while the clock advances waits for it.
    let path_clock = format!("/v1/test_helpers/test_clocks/{clock}/advance");
    app.post(&path_clock, DEMO_KEY, json!({"frozen_time": first + 100 * DAY})).await.ok();
    pay(&app, DEMO_KEY, &rec, 1).await.err(400, "invalid_request_error", Some("test_clock_advancing"));
    app.settle().await;
    let r = app.get(&path(&rec, ""), DEMO_KEY).await.ok();
    assert_eq!(amounts(&r["plan"], "status"), [json!("missed"), json!("missed")]);
    assert_eq!(events(&app, "recovery.installment_missed").await.len(), 2);
    // Deleting the clock takes the recovery with it.
    app.send(Method::DELETE, &format!("/v1/test_helpers/test_clocks/{clock}"), Some(DEMO_KEY), None).await.ok();
    app.get(&path(&rec, ""), DEMO_KEY).await.err(404, "invalid_request_error", Some("resource_missing"));
}

#[tokio::test]
async fn reset_deletes_recoveries() {
    let app = TestApp::start().await;
    let rec = recovery(&app).await;
    pay(&app, DEMO_KEY, &rec, 1_000).await.ok();
    app.post("/v1/test_helpers/reset", DEMO_KEY, json!({})).await.ok();
    app.get(&path(&rec, ""), DEMO_KEY).await.err(404, "invalid_request_error", Some("resource_missing"));
}
