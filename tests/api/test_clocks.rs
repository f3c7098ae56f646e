//! Test clocks (SPEC section 5): the routes, the customers on a clock and everything
//! under them living at the clock's time, advances applied in time order by the
//! engine (stepped here), writes refused while a clock advances, the delete cascade.

use reqwest::Method;
use serde_json::{Value, json};

use std::sync::Arc;

use casapay::clock::Clock;
use casapay::jobs::engine::Engine;
use casapay::service::rail::InstantRail;

use crate::support::{DEMO_KEY, TestApp, engine_config, id, open_store};

const DAY: i64 = 86_400;
/// The docs' claim time: 2024-02-25 00:00 UTC.
const DOCS_CLAIM_TIME: i64 = 1_708_819_200;
/// A wall clock of "today" (2026-12-01), at which the docs' dates are in the past.
const TODAY: i64 = 1_796_083_200;

async fn new_clock(app: &TestApp, key: &str, frozen_time: i64) -> Value {
    app.post("/v1/test_helpers/test_clocks", key, json!({"frozen_time": frozen_time})).await.ok()
}

async fn customer_on(app: &TestApp, key: &str, clock: &str) -> Value {
    app.post("/v1/customers", key, json!({"name": "Clocked tenant", "score": 80, "test_clock": clock})).await.ok()
}

/// Starts an advance and steps the engine until the clock is ready again.
async fn advance(app: &TestApp, key: &str, clock: &str, to: i64) -> Value {
    let c =
        app.post(&format!("/v1/test_helpers/test_clocks/{clock}/advance"), key, json!({"frozen_time": to})).await.ok();
    assert_eq!(c["status"], "advancing");
    app.settle().await;
    let c = app.get(&format!("/v1/test_helpers/test_clocks/{clock}"), key).await.ok();
    assert_eq!((c["status"].as_str(), c["frozen_time"].as_i64()), (Some("ready"), Some(to)), "{c}");
    c
}

async fn policy(app: &TestApp, key: &str, waiting_period_days: i64) -> String {
    let body = json!({"name": "P", "coverage_percentage": 100, "max_coverage_months": 12,
                      "waiting_period_days": waiting_period_days});
    id(&app.post("/v1/guarantee_policies", key, body).await.ok())
}

async fn guarantee(app: &TestApp, key: &str, policy: &str, tenant: &str, start: i64, end: i64) -> Value {
    let body = json!({"policy": policy, "tenant": tenant, "coverage_amount": 120000, "currency": "eur",
                      "start_date": start, "end_date": end});
    app.post("/v1/guarantees", key, body).await.ok()
}

async fn get(app: &TestApp, key: &str, path: &str) -> Value {
    app.get(path, key).await.ok()
}

fn types(list: &Value) -> Vec<String> {
    list["data"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn clocks_are_created_retrieved_listed_and_deleted_with_events() {
    let app = TestApp::start().await;
    app.clock.set(TODAY);
    let c = app
        .post("/v1/test_helpers/test_clocks", DEMO_KEY, json!({"frozen_time": DOCS_CLAIM_TIME, "name": "Docs"}))
        .await
        .ok();
    let clock = id(&c);
    assert!(clock.starts_with("clock_"));
    assert_eq!(
        c,
        json!({"id": clock, "object": "test_helpers.test_clock", "frozen_time": DOCS_CLAIM_TIME, "status": "ready",
               "name": "Docs", "deletes_after": TODAY + 30 * DAY, "livemode": false, "created": TODAY})
    );
    assert_eq!(get(&app, DEMO_KEY, &format!("/v1/test_helpers/test_clocks/{clock}")).await, c);
    // Form bodies too, and `name` is optional.
    let second = app
        .raw(
            Method::POST,
            "/v1/test_helpers/test_clocks",
            Some(DEMO_KEY),
            Some("application/x-www-form-urlencoded"),
            b"frozen_time=1700000000".to_vec(),
        )
        .await
        .ok();
    assert!(second["name"].is_null());

    // The list, newest first, with cursors.
    let list = get(&app, DEMO_KEY, "/v1/test_helpers/test_clocks?limit=1").await;
    assert_eq!((list["url"].as_str(), list["has_more"].as_bool()), (Some("/v1/test_helpers/test_clocks"), Some(true)));
    assert_eq!(list["data"][0]["id"], id(&second));
    let next = get(&app, DEMO_KEY, &format!("/v1/test_helpers/test_clocks?starting_after={}", id(&second))).await;
    assert_eq!(next["data"].as_array().unwrap().len(), 1);
    assert_eq!(next["data"][0]["id"], clock.as_str());
    app.get("/v1/test_helpers/test_clocks?starting_after=clock_nope", DEMO_KEY).await.err(
        404,
        "invalid_request_error",
        Some("resource_missing"),
    );

    // Validation: frozen_time required, unknown clock 404.
    app.post("/v1/test_helpers/test_clocks", DEMO_KEY, json!({})).await.err(
        400,
        "invalid_request_error",
        Some("parameter_missing"),
    );
    app.get("/v1/test_helpers/test_clocks/clock_nope", DEMO_KEY).await.err(
        404,
        "invalid_request_error",
        Some("resource_missing"),
    );
    app.get("/v1/test_helpers/test_clocks/cus_123456789", DEMO_KEY).await.err(
        404,
        "invalid_request_error",
        Some("resource_missing"),
    );

    // Advance: later, at most five years ahead.
    let path = format!("/v1/test_helpers/test_clocks/{clock}/advance");
    let e = app.post(&path, DEMO_KEY, json!({"frozen_time": DOCS_CLAIM_TIME})).await;
    assert_eq!(e.err(400, "invalid_request_error", Some("test_clock_frozen_time_invalid"))["param"], "frozen_time");
    app.post(&path, DEMO_KEY, json!({"frozen_time": DOCS_CLAIM_TIME + 5 * 366 * DAY})).await.err(
        400,
        "invalid_request_error",
        Some("test_clock_frozen_time_invalid"),
    );
    advance(&app, DEMO_KEY, &clock, DOCS_CLAIM_TIME + 5 * 365 * DAY).await;

    let deleted =
        app.send(Method::DELETE, &format!("/v1/test_helpers/test_clocks/{clock}"), Some(DEMO_KEY), None).await;
    assert_eq!(deleted.ok(), json!({"id": clock, "object": "test_helpers.test_clock", "deleted": true}));
    app.get(&format!("/v1/test_helpers/test_clocks/{clock}"), DEMO_KEY).await.err(
        404,
        "invalid_request_error",
        Some("resource_missing"),
    );
    app.send(Method::DELETE, &format!("/v1/test_helpers/test_clocks/{clock}"), Some(DEMO_KEY), None).await.err(
        404,
        "invalid_request_error",
        Some("resource_missing"),
    );

    let events = get(&app, DEMO_KEY, "/v1/events?limit=100").await;
    let clock_events: Vec<String> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["data"]["object"]["id"] == clock.as_str())
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        clock_events,
        [
            "test_helpers.test_clock.deleted",
            "test_helpers.test_clock.ready",
            "test_helpers.test_clock.advancing",
            "test_helpers.test_clock.created"
        ]
    );
    // Events stay on the wall clock: retention and housekeeping read it.
    assert!(events["data"].as_array().unwrap().iter().all(|e| e["created"] == TODAY));
    let ready = get(&app, DEMO_KEY, "/v1/events?type=test_helpers.test_clock.ready").await;
    assert_eq!(ready["data"][0]["data"]["object"]["status"], "ready");
}

#[tokio::test]
async fn live_keys_see_no_clocks_and_cannot_put_customers_on_one() {
    let app = TestApp::start().await;
    let acct = app.new_account().await;
    let clock = id(&new_clock(&app, &acct.test_key, DOCS_CLAIM_TIME).await);
    for (method, path) in [
        (Method::POST, "/v1/test_helpers/test_clocks".to_owned()),
        (Method::GET, "/v1/test_helpers/test_clocks".to_owned()),
        (Method::GET, format!("/v1/test_helpers/test_clocks/{clock}")),
        (Method::DELETE, format!("/v1/test_helpers/test_clocks/{clock}")),
        (Method::POST, format!("/v1/test_helpers/test_clocks/{clock}/advance")),
    ] {
        let body = (method == Method::POST).then(|| json!({"frozen_time": DOCS_CLAIM_TIME + DAY}));
        app.send(method, &path, Some(&acct.live_key), body).await.err(404, "invalid_request_error", None);
    }
    let e = app.post("/v1/customers", &acct.live_key, json!({"name": "Live", "test_clock": clock})).await;
    assert_eq!(e.err(400, "invalid_request_error", Some("test_clock_livemode"))["param"], "test_clock");
    // The clock is still there, untouched.
    assert_eq!(get(&app, &acct.test_key, &format!("/v1/test_helpers/test_clocks/{clock}")).await["status"], "ready");
    let live = app.post("/v1/customers", &acct.live_key, json!({"name": "Live"})).await.ok();
    assert!(live["test_clock"].is_null(), "the field is there, null");
}

#[tokio::test]
async fn clocks_are_private_to_their_account() {
    let app = TestApp::start().await;
    let (a, b) = (app.new_account().await, app.new_account().await);
    let clock = id(&new_clock(&app, &a.test_key, DOCS_CLAIM_TIME).await);
    let path = format!("/v1/test_helpers/test_clocks/{clock}");
    app.get(&path, &b.test_key).await.err(404, "invalid_request_error", Some("resource_missing"));
    assert_eq!(get(&app, &b.test_key, "/v1/test_helpers/test_clocks").await["data"], json!([]));
    app.post(&format!("{path}/advance"), &b.test_key, json!({"frozen_time": DOCS_CLAIM_TIME + DAY})).await.err(
        404,
        "invalid_request_error",
        Some("resource_missing"),
    );
    app.send(Method::DELETE, &path, Some(&b.test_key), None).await.err(
        404,
        "invalid_request_error",
        Some("resource_missing"),
    );
    let e = app.post("/v1/customers", &b.test_key, json!({"test_clock": clock})).await;
    assert_eq!(e.err(404, "invalid_request_error", Some("resource_missing"))["param"], "test_clock");
    // B's own customers and guarantees stay on the wall clock while A's clock advances.
    let b_policy = policy(&app, &b.test_key, 0).await;
    let b_tenant = id(&app.customer(&b.test_key, 80).await);
    let now = app.clock.now();
    let b_g = guarantee(&app, &b.test_key, &b_policy, &b_tenant, now + 10 * DAY, now + 20 * DAY).await;
    advance(&app, &a.test_key, &clock, DOCS_CLAIM_TIME + 4 * 365 * DAY).await;
    assert_eq!(get(&app, &b.test_key, &format!("/v1/guarantees/{}", id(&b_g))).await["status"], "pending");
    assert_eq!(get(&app, &a.test_key, &path).await["status"], "ready");
}

/// The docs' three requests as the seed files print them (only the ids swapped), under
/// a clock frozen at the docs' claim time: the guarantee is active, the claim is due
/// exactly on the 30-day boundary and is approved and paid.
#[tokio::test]
async fn the_docs_example_runs_at_its_own_dates() {
    let app = TestApp::start().await;
    app.clock.set(TODAY);
    // On the wall clock of today the docs' guarantee is refused: its end_date is past.
    let wall_policy = app.docs_policy(DEMO_KEY).await;
    let e = app.docs_guarantee_request(DEMO_KEY, &id(&wall_policy), "cus_123456789").await;
    e.err(400, "invalid_request_error", Some("invalid_dates"));

    let clock = id(&new_clock(&app, DEMO_KEY, DOCS_CLAIM_TIME).await);
    let tenant = app
        .post("/v1/customers", DEMO_KEY, json!({"name": "Docs tenant", "score": 75, "test_clock": clock}))
        .await
        .ok();
    assert_eq!(
        (tenant["test_clock"].as_str(), tenant["created"].as_i64()),
        (Some(clock.as_str()), Some(DOCS_CLAIM_TIME))
    );
    // Step 1, as printed.
    let policy = app
        .post(
            "/v1/guarantee_policies",
            DEMO_KEY,
            json!({
              "name": "Standard Rent Guarantee",
              "coverage_percentage": 100,
              "max_coverage_months": 12,
              "waiting_period_days": 30,
              "eligible_score_minimum": 60
            }),
        )
        .await
        .ok();
    // Step 2, as printed, the policy and tenant ids swapped.
    let g = app
        .post(
            "/v1/guarantees",
            DEMO_KEY,
            json!({
              "policy": id(&policy),
              "tenant": id(&tenant),
              "coverage_amount": 120000,
              "currency": "eur",
              "start_date": 1706140800,
              "end_date": 1737676800,
              "metadata": {
                "property_id": "prop_456",
                "lease_id": "lease_789"
              }
            }),
        )
        .await
        .ok();
    assert_eq!((g["status"].as_str(), g["created"].as_i64()), (Some("active"), Some(DOCS_CLAIM_TIME)));
    // Step 3, as printed, the guarantee id swapped.
    let claim = app
        .post(
            "/v1/claims",
            DEMO_KEY,
            json!({
              "guarantee": id(&g),
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
    assert_eq!(claim["status"], "under_review");
    assert_eq!(claim["created"], DOCS_CLAIM_TIME);
    // 1708732800 is 1706140800 + 30 days: exactly on the waiting period's boundary.
    assert_eq!(1_708_732_800 - 1_706_140_800, 30 * DAY);
    let report = app.settle().await;
    assert_eq!((report.claims_reviewed, report.payouts_sent), (1, 1));
    let claim = get(&app, DEMO_KEY, &format!("/v1/claims/{}", id(&claim))).await;
    assert_eq!(claim["status"], "paid", "{claim}");
    assert_eq!(claim["amount_approved"], 120000);
    for at in ["submitted_at", "under_review_at", "approved_at", "paid_at"] {
        assert_eq!(claim["status_transitions"][at], DOCS_CLAIM_TIME, "{at}");
    }
    let payout = get(&app, DEMO_KEY, &format!("/v1/payouts/{}", claim["payout"].as_str().unwrap())).await;
    assert_eq!(
        (payout["created"].as_i64(), payout["arrival_date"].as_i64()),
        (Some(DOCS_CLAIM_TIME), Some(DOCS_CLAIM_TIME))
    );
    assert_eq!(payout["status"], "paid");
}

#[tokio::test]
async fn serve_demo_customer_stays_on_the_wall_clock() {
    let app = TestApp::start().await;
    let c = get(&app, DEMO_KEY, "/v1/customers/cus_123456789").await;
    assert!(c["test_clock"].is_null());
}

#[tokio::test]
async fn the_customer_shows_its_clock() {
    let app = TestApp::start().await;
    let c = new_clock(&app, DEMO_KEY, DOCS_CLAIM_TIME).await;
    let cus = customer_on(&app, DEMO_KEY, &id(&c)).await;
    assert_eq!((cus["test_clock"].as_str(), cus["created"].as_i64()), (Some(id(&c).as_str()), Some(DOCS_CLAIM_TIME)));
    assert_eq!(get(&app, DEMO_KEY, &format!("/v1/customers/{}", id(&cus))).await, cus);
}

/// The waiting period passes in one advance: a claim for rent due on day 29 is denied,
/// one due exactly on day 30 is paid; a claim due after the advance's time is refused.
#[tokio::test]
async fn a_waiting_period_passes_in_one_advance_exactly_on_the_day() {
    let app = TestApp::start().await;
    let start = DOCS_CLAIM_TIME;
    let clock = id(&new_clock(&app, DEMO_KEY, start).await);
    let tenant = id(&customer_on(&app, DEMO_KEY, &clock).await);
    let p = policy(&app, DEMO_KEY, 30).await;
    let g = guarantee(&app, DEMO_KEY, &p, &tenant, start, start + 365 * DAY).await;
    assert_eq!(g["status"], "active");
    // Rent due on day 30 is not due yet at the clock's time.
    let body = TestApp::claim_body(&id(&g), "inv_30", start + 30 * DAY);
    app.post("/v1/claims", DEMO_KEY, body.clone()).await.err(400, "invalid_request_error", Some("due_date_in_future"));

    advance(&app, DEMO_KEY, &clock, start + 30 * DAY).await;
    let early = app.post("/v1/claims", DEMO_KEY, TestApp::claim_body(&id(&g), "inv_29", start + 29 * DAY)).await.ok();
    let on_the_day = app.post("/v1/claims", DEMO_KEY, body).await.ok();
    assert_eq!(on_the_day["created"], start + 30 * DAY);
    app.settle().await;
    let early = get(&app, DEMO_KEY, &format!("/v1/claims/{}", id(&early))).await;
    assert_eq!((early["status"].as_str(), early["denial_reason"].as_str()), (Some("denied"), Some("waiting_period")));
    assert_eq!(early["status_transitions"]["denied_at"], start + 30 * DAY);
    let paid = get(&app, DEMO_KEY, &format!("/v1/claims/{}", id(&on_the_day))).await;
    assert_eq!(
        (paid["status"].as_str(), paid["status_transitions"]["paid_at"].as_i64()),
        (Some("paid"), Some(start + 30 * DAY))
    );
}

/// A guarantee that starts and ends within one advance activates, then expires, each
/// with its event, in that order; guarantees of the clock change in date order.
#[tokio::test]
async fn one_advance_activates_then_expires_in_time_order() {
    let app = TestApp::start().await;
    // Behind the wall clock: every date of these guarantees has passed on the wall.
    let t0 = app.clock.now() - 100 * DAY;
    let clock = id(&new_clock(&app, DEMO_KEY, t0).await);
    let tenant = id(&customer_on(&app, DEMO_KEY, &clock).await);
    let p = policy(&app, DEMO_KEY, 0).await;
    // The test engine's batch is 10: 15 guarantees take several batches.
    let mut ids = Vec::new();
    for i in 0..15 {
        let g =
            guarantee(&app, DEMO_KEY, &p, &tenant, t0 + (i + 1) * DAY, t0 + (i + 1) * DAY + 3 * DAY + DAY / 2).await;
        assert_eq!((g["status"].as_str(), g["created"].as_i64()), (Some("pending"), Some(t0)));
        ids.push(id(&g));
    }
    let late = guarantee(&app, DEMO_KEY, &p, &tenant, t0 + 50 * DAY, t0 + 200 * DAY).await;
    // The wall clock's engine leaves a clock's guarantees alone, though their dates passed on it.
    assert_eq!(app.settle().await.guarantees_changed, 0);
    assert_eq!(get(&app, DEMO_KEY, &format!("/v1/guarantees/{}", ids[0])).await["status"], "pending");

    advance(&app, DEMO_KEY, &clock, t0 + 30 * DAY).await;
    for g in &ids {
        assert_eq!(get(&app, DEMO_KEY, &format!("/v1/guarantees/{g}")).await["status"], "expired");
    }
    assert_eq!(get(&app, DEMO_KEY, &format!("/v1/guarantees/{}", id(&late))).await["status"], "pending");
    // Oldest first: every change in the order of its date.
    let events = get(&app, DEMO_KEY, "/v1/events?limit=100").await;
    let mut changes: Vec<(i64, String, String)> = Vec::new();
    for e in events["data"].as_array().unwrap().iter().rev() {
        let (kind, g) = (e["type"].as_str().unwrap(), &e["data"]["object"]);
        let date = match kind {
            "guarantee.activated" => g["start_date"].as_i64().unwrap(),
            "guarantee.expired" => g["end_date"].as_i64().unwrap(),
            _ => continue,
        };
        changes.push((date, kind.to_owned(), id(g)));
    }
    assert_eq!(changes.len(), 30);
    assert!(changes.windows(2).all(|w| w[0].0 <= w[1].0), "in date order: {changes:?}");
    let first = &ids[0];
    let of_first: Vec<&str> = changes.iter().filter(|c| &c.2 == first).map(|c| c.1.as_str()).collect();
    assert_eq!(of_first, ["guarantee.activated", "guarantee.expired"]);
    let kinds = types(&get(&app, DEMO_KEY, "/v1/events?limit=2").await);
    assert_eq!(kinds[0], "test_helpers.test_clock.ready");
}

#[tokio::test]
async fn writes_to_an_advancing_clocks_objects_are_refused_reads_work() {
    let app = TestApp::start().await;
    let t0 = DOCS_CLAIM_TIME;
    let clock = id(&new_clock(&app, DEMO_KEY, t0).await);
    let tenant = id(&customer_on(&app, DEMO_KEY, &clock).await);
    let p = policy(&app, DEMO_KEY, 0).await;
    let g = id(&guarantee(&app, DEMO_KEY, &p, &tenant, t0 - 10 * DAY, t0 + 365 * DAY).await);
    let claim = id(&app.post("/v1/claims", DEMO_KEY, TestApp::claim_body(&g, "inv_1", t0 - DAY)).await.ok());
    let path = format!("/v1/test_helpers/test_clocks/{clock}");
    let c = app.post(&format!("{path}/advance"), DEMO_KEY, json!({"frozen_time": t0 + DAY})).await.ok();
    assert_eq!((c["status"].as_str(), c["frozen_time"].as_i64()), (Some("advancing"), Some(t0)));

    let refused = [
        app.post(&format!("{path}/advance"), DEMO_KEY, json!({"frozen_time": t0 + 2 * DAY})).await,
        app.post("/v1/customers", DEMO_KEY, json!({"test_clock": clock})).await,
        app.post(&format!("/v1/customers/{tenant}"), DEMO_KEY, json!({"name": "x"})).await,
        guarantee_request(&app, &p, &tenant, t0).await,
        app.post(&format!("/v1/guarantees/{g}"), DEMO_KEY, json!({"metadata": {"a": "b"}})).await,
        app.post(&format!("/v1/guarantees/{g}/cancel"), DEMO_KEY, json!({})).await,
        app.post("/v1/claims", DEMO_KEY, TestApp::claim_body(&g, "inv_2", t0 - DAY)).await,
        app.post(&format!("/v1/claims/{claim}"), DEMO_KEY, json!({"metadata": {"a": "b"}})).await,
        app.post(&format!("/v1/test_helpers/claims/{claim}/deny"), DEMO_KEY, json!({})).await,
    ];
    for r in &refused {
        r.err(400, "invalid_request_error", Some("test_clock_advancing"));
    }
    // Reads work meanwhile.
    assert_eq!(get(&app, DEMO_KEY, &format!("/v1/guarantees/{g}")).await["claims_filed"], 1);
    assert_eq!(get(&app, DEMO_KEY, &format!("/v1/claims/{claim}")).await["status"], "under_review");
    assert_eq!(get(&app, DEMO_KEY, &path).await["status"], "advancing");
    // Once ready: the claim filed before the advance was reviewed at the old time.
    app.settle().await;
    assert_eq!(get(&app, DEMO_KEY, &path).await["frozen_time"], t0 + DAY);
    let claim = get(&app, DEMO_KEY, &format!("/v1/claims/{claim}")).await;
    assert_eq!((claim["status"].as_str(), claim["reviewed_at"].as_i64()), (Some("paid"), Some(t0)));
    app.post(&format!("/v1/guarantees/{g}"), DEMO_KEY, json!({"metadata": {"a": "b"}})).await.ok();
}

async fn guarantee_request(app: &TestApp, policy: &str, tenant: &str, t0: i64) -> crate::support::Resp {
    let body = json!({"policy": policy, "tenant": tenant, "coverage_amount": 1000, "currency": "eur",
                      "start_date": t0, "end_date": t0 + 10 * DAY});
    app.post("/v1/guarantees", DEMO_KEY, body).await
}

#[tokio::test]
async fn deleting_a_clock_deletes_its_customers_and_everything_under_them() {
    let app = TestApp::start().await;
    let t0 = DOCS_CLAIM_TIME;
    let clock = id(&new_clock(&app, DEMO_KEY, t0).await);
    let tenant = id(&customer_on(&app, DEMO_KEY, &clock).await);
    let p = policy(&app, DEMO_KEY, 0).await;
    let g = id(&guarantee(&app, DEMO_KEY, &p, &tenant, t0 - 10 * DAY, t0 + 365 * DAY).await);
    let claim = id(&app.post("/v1/claims", DEMO_KEY, TestApp::claim_body(&g, "inv_1", t0 - DAY)).await.ok());
    app.settle().await;
    let claim = get(&app, DEMO_KEY, &format!("/v1/claims/{claim}")).await;
    let payout = claim["payout"].as_str().unwrap().to_owned();
    // Another customer, on no clock, with its own guarantee: untouched.
    let (_, other) = app.demo_guarantee().await;

    app.send(Method::DELETE, &format!("/v1/test_helpers/test_clocks/{clock}"), Some(DEMO_KEY), None).await.ok();
    for path in [
        format!("/v1/customers/{tenant}"),
        format!("/v1/guarantees/{g}"),
        format!("/v1/claims/{}", id(&claim)),
        format!("/v1/payouts/{payout}"),
    ] {
        app.get(&path, DEMO_KEY).await.err(404, "invalid_request_error", Some("resource_missing"));
    }
    get(&app, DEMO_KEY, &format!("/v1/guarantees/{}", id(&other))).await;
    get(&app, DEMO_KEY, &format!("/v1/guarantee_policies/{p}")).await;
    let deleted = get(&app, DEMO_KEY, "/v1/events?type=test_helpers.test_clock.deleted").await;
    assert_eq!(deleted["data"][0]["data"]["object"]["id"], clock.as_str());
}

/// Claims for rent that fell due while covered may come in up to 60 days after the end,
/// judged at the clock's time.
#[tokio::test]
async fn the_60_day_window_after_expiry_runs_on_the_clock() {
    let app = TestApp::start().await;
    let t0 = DOCS_CLAIM_TIME;
    let clock = id(&new_clock(&app, DEMO_KEY, t0).await);
    let tenant = id(&customer_on(&app, DEMO_KEY, &clock).await);
    let p = policy(&app, DEMO_KEY, 0).await;
    let end = t0 + 90 * DAY;
    let g = id(&guarantee(&app, DEMO_KEY, &p, &tenant, t0 - 10 * DAY, end).await);
    advance(&app, DEMO_KEY, &clock, end + 60 * DAY - 1).await;
    assert_eq!(get(&app, DEMO_KEY, &format!("/v1/guarantees/{g}")).await["status"], "expired");
    let late = app.post("/v1/claims", DEMO_KEY, TestApp::claim_body(&g, "inv_late", end - DAY)).await.ok();
    app.settle().await;
    assert_eq!(get(&app, DEMO_KEY, &format!("/v1/claims/{}", id(&late))).await["status"], "paid");
    advance(&app, DEMO_KEY, &clock, end + 60 * DAY).await;
    let e = app.post("/v1/claims", DEMO_KEY, TestApp::claim_body(&g, "inv_too_late", end - DAY)).await;
    e.err(400, "invalid_request_error", Some("guarantee_not_claimable"));
}

/// A whole lifecycle under a clock ten years ahead of the wall clock: any rule that
/// read the wall clock instead would show here (a date "in the past", a wall time
/// recorded on an object).
#[tokio::test]
async fn a_whole_claim_lifecycle_ten_years_ahead() {
    let app = TestApp::start().await;
    let wall = app.clock.now();
    let t0 = wall + 10 * 365 * DAY;
    let clock = id(&new_clock(&app, DEMO_KEY, t0).await);
    let tenant = customer_on(&app, DEMO_KEY, &clock).await;
    assert_eq!(tenant["created"], t0);
    let p = policy(&app, DEMO_KEY, 30).await;
    let (start, end) = (t0 + 7 * DAY, t0 + 7 * DAY + 365 * DAY);
    let g = guarantee(&app, DEMO_KEY, &p, &id(&tenant), start, end).await;
    assert_eq!((g["status"].as_str(), g["created"].as_i64()), (Some("pending"), Some(t0)));
    let g = id(&g);
    // Not claimable before its start, on the clock.
    app.post("/v1/claims", DEMO_KEY, TestApp::claim_body(&g, "inv_0", t0)).await.err(
        400,
        "invalid_request_error",
        Some("guarantee_not_claimable"),
    );
    advance(&app, DEMO_KEY, &clock, start + 31 * DAY).await;
    assert_eq!(get(&app, DEMO_KEY, &format!("/v1/guarantees/{g}")).await["status"], "active");
    let claim = app.post("/v1/claims", DEMO_KEY, TestApp::claim_body(&g, "inv_1", start + 30 * DAY)).await.ok();
    let now = start + 31 * DAY;
    assert_eq!(claim["created"], now);
    // The wall clock's engine reviews it at the clock's time.
    let report = app.settle().await;
    assert_eq!((report.claims_reviewed, report.payouts_sent), (1, 1));
    let claim = get(&app, DEMO_KEY, &format!("/v1/claims/{}", id(&claim))).await;
    assert_eq!(claim["status"], "paid");
    assert_eq!(claim["reviewed_at"], now);
    for at in ["submitted_at", "under_review_at", "approved_at", "paid_at"] {
        assert_eq!(claim["status_transitions"][at], now, "{at}");
    }
    let payout = get(&app, DEMO_KEY, &format!("/v1/payouts/{}", claim["payout"].as_str().unwrap())).await;
    assert_eq!((payout["created"].as_i64(), payout["arrival_date"].as_i64()), (Some(now), Some(now)));
    // A cancel is stamped at the clock's time too; then the expiry passes by.
    let cancelled = app.post(&format!("/v1/guarantees/{g}/cancel"), DEMO_KEY, json!({})).await.ok();
    assert_eq!(cancelled["cancelled_at"], now);
    advance(&app, DEMO_KEY, &clock, end + DAY).await;
    assert_eq!(get(&app, DEMO_KEY, &format!("/v1/guarantees/{g}")).await["status"], "cancelled");
    // And the wall clock never moved.
    assert_eq!(app.clock.now(), wall);
    let events = get(&app, DEMO_KEY, "/v1/events?limit=100").await;
    assert!(events["data"].as_array().unwrap().iter().all(|e| e["created"] == wall), "events at wall time");
}

/// Several replicas step the engine at once: one at a time holds the clock (its lease),
/// so every change is made once, in date order, and the clock is ready once.
#[tokio::test]
async fn replicas_advance_a_clock_once_in_order() {
    let app = TestApp::start().await;
    let t0 = app.clock.now();
    let clock = id(&new_clock(&app, DEMO_KEY, t0).await);
    let tenant = id(&customer_on(&app, DEMO_KEY, &clock).await);
    let p = policy(&app, DEMO_KEY, 0).await;
    for i in 0..24 {
        guarantee(&app, DEMO_KEY, &p, &tenant, t0 + (i + 1) * DAY, t0 + (i + 1) * DAY + 5 * DAY).await;
    }
    app.post(&format!("/v1/test_helpers/test_clocks/{clock}/advance"), DEMO_KEY, json!({"frozen_time": t0 + 60 * DAY}))
        .await
        .ok();
    let engines: Vec<Engine> = [app.store.clone(), open_store(&app.db_url).await, open_store(&app.db_url).await]
        .into_iter()
        .map(|store| Engine::new(store, app.clock.clone(), Arc::new(InstantRail), engine_config(5, 3, 1)))
        .collect();
    let reports = futures_util::future::join_all(engines.iter().map(|e| e.run_until_idle())).await;
    for r in reports {
        r.expect("no replica's step failed");
    }
    app.settle().await;
    let c = get(&app, DEMO_KEY, &format!("/v1/test_helpers/test_clocks/{clock}")).await;
    assert_eq!((c["status"].as_str(), c["frozen_time"].as_i64()), (Some("ready"), Some(t0 + 60 * DAY)));
    let events = get(&app, DEMO_KEY, "/v1/events?limit=100").await;
    let kinds = types(&events);
    let count = |k: &str| kinds.iter().filter(|t| t.as_str() == k).count();
    assert_eq!(count("guarantee.activated"), 24);
    assert_eq!(count("guarantee.expired"), 24);
    assert_eq!(count("test_helpers.test_clock.ready"), 1);
    let dates: Vec<i64> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .filter_map(|e| match e["type"].as_str().unwrap() {
            "guarantee.activated" => e["data"]["object"]["start_date"].as_i64(),
            "guarantee.expired" => e["data"]["object"]["end_date"].as_i64(),
            _ => None,
        })
        .collect();
    assert!(dates.windows(2).all(|w| w[0] <= w[1]), "in date order: {dates:?}");
}

/// A clock past its `deletes_after` (30 days of real time) goes with its objects, as a
/// delete would, at the engine's housekeeping.
#[tokio::test]
async fn clocks_are_deleted_30_days_after_creation() {
    let app = TestApp::start().await;
    let clock = id(&new_clock(&app, DEMO_KEY, DOCS_CLAIM_TIME).await);
    let tenant = id(&customer_on(&app, DEMO_KEY, &clock).await);
    app.clock.advance(30 * DAY - 1);
    app.settle().await;
    get(&app, DEMO_KEY, &format!("/v1/test_helpers/test_clocks/{clock}")).await;
    // Housekeeping runs once a minute of the wall clock.
    app.clock.advance(61);
    app.settle().await;
    app.get(&format!("/v1/test_helpers/test_clocks/{clock}"), DEMO_KEY).await.err(
        404,
        "invalid_request_error",
        Some("resource_missing"),
    );
    app.get(&format!("/v1/customers/{tenant}"), DEMO_KEY).await.err(
        404,
        "invalid_request_error",
        Some("resource_missing"),
    );
}

/// A claim that waits for a person is due for review five business days after it was
/// submitted at the clock's time (ten years ahead of the wall), and an operator's
/// decision on it happens at the clock's time too.
#[tokio::test]
async fn review_due_by_counts_from_the_clocks_time() {
    let app = TestApp::start().await;
    let t0 = app.clock.now() + 10 * 365 * DAY;
    let clock = id(&new_clock(&app, DEMO_KEY, t0).await);
    let tenant = id(&customer_on(&app, DEMO_KEY, &clock).await);
    let p = policy(&app, DEMO_KEY, 0).await;
    let g = guarantee(&app, DEMO_KEY, &p, &tenant, t0, t0 + 365 * DAY).await;
    let mut body = TestApp::claim_body(&id(&g), "inv_damage", t0);
    body["reason"] = json!("property_damage");
    body["amount"] = json!(50_000);
    let claim = app.post("/v1/claims", DEMO_KEY, body).await.ok();
    app.settle().await;
    let claim = get(&app, DEMO_KEY, &format!("/v1/claims/{}", id(&claim))).await;
    assert_eq!(claim["status"], "under_review", "damage waits for a person: {claim}");
    assert_eq!(claim["status_transitions"]["submitted_at"], t0);
    let due_by = claim["review"]["due_by"].as_i64().unwrap();
    assert_eq!(due_by, casapay::domain::review::due_by(t0));
    assert!((t0 + 5 * DAY..=t0 + 9 * DAY).contains(&due_by), "five business days after {t0}: {due_by}");

    let operator = app.operator_key().await;
    // While the clock advances, an operator's writes wait too.
    let moving = app
        .post(&format!("/v1/test_helpers/test_clocks/{clock}/advance"), DEMO_KEY, json!({"frozen_time": t0 + 60}))
        .await
        .ok();
    assert_eq!(moving["status"], "advancing");
    let ask = json!({"message": "Photos of the damage, please."});
    for path in ["request_evidence", "notes"] {
        let body = if path == "notes" { json!({"note": "Called the landlord."}) } else { ask.clone() };
        let r = app.post(&format!("/v1/claims/{}/{path}", id(&claim)), &operator, body).await;
        r.err(400, "invalid_request_error", Some("test_clock_advancing"));
    }
    app.settle().await;
    let t0 = t0 + 60;
    app.post(&format!("/v1/claims/{}/notes", id(&claim)), &operator, json!({"note": "Called the landlord."}))
        .await
        .ok();
    let approved = app.post(&format!("/v1/claims/{}/approve", id(&claim)), &operator, json!({})).await.ok();
    assert_eq!(approved["status_transitions"]["approved_at"], t0, "decided at the clock's time");
    app.settle().await;
    let paid = get(&app, DEMO_KEY, &format!("/v1/claims/{}", id(&claim))).await;
    assert_eq!((paid["status"].as_str(), paid["status_transitions"]["paid_at"].as_i64()), (Some("paid"), Some(t0)));
    // The audit trail is on the clock too: submitted and checked at its start, the rest a minute later.
    let file = app.get(&format!("/v1/review/claims/{}", id(&claim)), &operator).await.ok();
    let times: Vec<(String, i64)> = file["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["type"].as_str().unwrap().to_owned(), a["created"].as_i64().unwrap()))
        .collect();
    assert_eq!(times.first(), Some(&("submitted".to_owned(), t0 - 60)), "{times:?}");
    assert!(times.iter().all(|(_, at)| *at == t0 - 60 || *at == t0), "every action at the clock's time: {times:?}");
    assert_eq!(times.last().map(|(t, _)| t.as_str()), Some("paid"), "{times:?}");
}
