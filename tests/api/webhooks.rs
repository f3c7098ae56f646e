//! Webhook endpoints and delivery: outbox, signatures, retries, disabling, rotation,
//! SSRF, crashes and replicas. Time moves by the injected clock; the dispatcher is
//! stepped by the tests unless a test runs its loop.

use std::time::{Duration, Instant};

use base64::Engine as _;
use casapay::domain::webhook::RETRY_DELAYS;
use casapay::jobs::dispatcher::{Dispatcher, DispatcherConfig};
use casapay::store::Backend;
use casapay::webhooks::ssrf::EgressPolicy;
use futures_util::future::join_all;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::receiver::{Mode, Receiver};
use crate::support::{DEMO_KEY, DOCS_NOW, LOOPBACK_EGRESS, TestApp, dispatcher_config, id, open_store};

const DAY: i64 = 86_400;
const DUE: i64 = DOCS_NOW + 30 * DAY;

/// An endpoint for `receiver` subscribed to `events`; the receiver trusts its secret.
async fn endpoint(app: &TestApp, receiver: &Receiver, events: &[&str]) -> Value {
    let e =
        app.post("/v1/webhook_endpoints", DEMO_KEY, json!({"url": receiver.url, "enabled_events": events})).await.ok();
    receiver.trust(&[e["secret"].as_str().unwrap()]);
    e
}

/// An endpoint of the account of `key` for `url`, subscribed to `customer.created`.
async fn customer_endpoint(app: &TestApp, key: &str, url: &str) -> Value {
    app.post("/v1/webhook_endpoints", key, json!({"url": url, "enabled_events": ["customer.created"]})).await.ok()
}

async fn attempts(app: &TestApp, endpoint: &Value) -> Vec<Value> {
    let list = app.get(&format!("/v1/webhook_endpoints/{}/attempts?limit=100", id(endpoint)), DEMO_KEY).await.ok();
    list["data"].as_array().unwrap().clone()
}

/// The status of the one delivery in the database.
async fn only_delivery(app: &TestApp) -> (String, i64) {
    sqlx::query_as("SELECT status, attempts FROM webhook_deliveries").fetch_one(app.store.pool()).await.unwrap()
}

/// Makes the database refuse every attempt whose response body contains `marker`: a
/// stand-in, from outside the server, for any error recording an attempt.
async fn refuse_attempts_answered(app: &TestApp, marker: &str) {
    let statements = match app.store.backend() {
        Backend::Postgres => vec![
            format!(
                "CREATE FUNCTION refuse_attempt() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
                 IF NEW.response_body LIKE '%{marker}%' THEN RAISE EXCEPTION 'refused by the test'; END IF; \
                 RETURN NEW; END $$"
            ),
            "CREATE TRIGGER refuse_attempt BEFORE INSERT ON webhook_attempts FOR EACH ROW \
             EXECUTE FUNCTION refuse_attempt()"
                .to_owned(),
        ],
        Backend::Sqlite => vec![format!(
            "CREATE TRIGGER refuse_attempt BEFORE INSERT ON webhook_attempts \
             WHEN NEW.response_body LIKE '%{marker}%' BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
        )],
    };
    for statement in statements {
        sqlx::query(&statement).execute(app.store.pool()).await.unwrap();
    }
}

#[tokio::test]
async fn endpoints_crud_and_validation() {
    let app = TestApp::start().await;
    let e = app
        .post(
            "/v1/webhook_endpoints",
            DEMO_KEY,
            json!({"url": "https://example.com/hook", "enabled_events": ["*"], "description": "main", "metadata": {"a": "1"}}),
        )
        .await
        .ok();
    assert!(id(&e).starts_with("we_"));
    assert_eq!((e["object"].as_str(), e["status"].as_str()), (Some("webhook_endpoint"), Some("enabled")));
    let secret = e["secret"].as_str().unwrap();
    let raw = base64::engine::general_purpose::STANDARD.decode(secret.strip_prefix("whsec_").unwrap()).unwrap();
    assert!((24..=64).contains(&raw.len()));
    let path = format!("/v1/webhook_endpoints/{}", id(&e));
    let fetched = app.get(&path, DEMO_KEY).await.ok();
    assert!(fetched.get("secret").is_none(), "the secret is shown once");
    assert_eq!(fetched["enabled_events"], json!(["*"]));

    let u = app.post(&path, DEMO_KEY, json!({"disabled": true, "enabled_events": ["claim.approved"]})).await.ok();
    assert_eq!((u["status"].as_str(), u["enabled_events"].clone()), (Some("disabled"), json!(["claim.approved"])));
    let u = app.post(&path, DEMO_KEY, json!({"disabled": false, "url": "https://example.org/x"})).await.ok();
    assert_eq!((u["status"].as_str(), u["url"].as_str()), (Some("enabled"), Some("https://example.org/x")));

    let r = app
        .post(
            "/v1/webhook_endpoints",
            DEMO_KEY,
            json!({"url": "https://example.com", "enabled_events": ["claim.nope"]}),
        )
        .await;
    assert_eq!(r.err(400, "invalid_request_error", Some("parameter_invalid_value"))["param"], "enabled_events");
    let r = app.post("/v1/webhook_endpoints", DEMO_KEY, json!({"enabled_events": ["*"]})).await;
    assert_eq!(r.err(400, "invalid_request_error", Some("parameter_missing"))["param"], "url");
    let r = app.post("/v1/webhook_endpoints", DEMO_KEY, json!({"url": "https://example.com"})).await;
    assert_eq!(r.err(400, "invalid_request_error", Some("parameter_missing"))["param"], "enabled_events");

    let list = app.get("/v1/webhook_endpoints", DEMO_KEY).await.ok();
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    let d = app.send(reqwest::Method::DELETE, &path, Some(DEMO_KEY), None).await.ok();
    assert_eq!(d, json!({"id": id(&e), "object": "webhook_endpoint", "deleted": true}));
    app.get(&path, DEMO_KEY).await.err(404, "invalid_request_error", Some("resource_missing"));
}

#[tokio::test]
async fn urls_are_checked_when_saved() {
    let app = TestApp::start_with_egress(EgressPolicy::default()).await;
    for url in [
        "http://example.com/hook",
        "https://127.0.0.1/hook",
        "https://[::1]/hook",
        "https://localhost:8443/hook",
        "https://10.0.0.8/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://100.64.1.1/",
        "https://user:pw@example.com/hook",
        "ftp://example.com/hook",
        "not a url",
    ] {
        let r = app.post("/v1/webhook_endpoints", DEMO_KEY, json!({"url": url, "enabled_events": ["*"]})).await;
        assert_eq!(r.err(400, "invalid_request_error", Some("url_invalid"))["param"], "url", "{url}");
    }
    app.post("/v1/webhook_endpoints", DEMO_KEY, json!({"url": "https://example.com/hook", "enabled_events": ["*"]}))
        .await
        .ok();
}

#[tokio::test]
async fn claim_decisions_are_delivered_signed() {
    let app = TestApp::start().await;
    let receiver = Receiver::start().await;
    let e = endpoint(&app, &receiver, &["claim.approved", "claim.denied"]).await;
    let (_, g) = app.demo_guarantee().await;
    app.clock.set(DUE + DAY);
    for (invoice, due) in [("ok", DUE), ("early", DUE - 1)] {
        app.post("/v1/claims", DEMO_KEY, TestApp::claim_body(&id(&g), invoice, due)).await.ok();
    }
    app.settle().await;
    assert_eq!(app.deliver().await, 2);

    let got = receiver.delivered();
    let mut types: Vec<&str> = got.iter().map(|r| r.body["type"].as_str().unwrap()).collect();
    types.sort();
    assert_eq!(types, ["claim.approved", "claim.denied"]);
    let secret = e["secret"].as_str().unwrap().to_owned();
    for r in &got {
        assert_eq!(r.standard_verified_by, std::slice::from_ref(&secret), "Standard Webhooks signature verifies");
        assert_eq!(r.stripe_verified_by, std::slice::from_ref(&secret), "Stripe-scheme signature verifies");
        assert_eq!(r.id, r.body["id"].as_str().unwrap(), "webhook-id is the event id");
        assert_eq!(r.timestamp, DUE + DAY);
        assert_eq!(r.headers["content-type"], "application/json");
        assert!(r.headers["user-agent"].to_str().unwrap().starts_with("casapay-webhooks/"));
        assert_eq!(r.body["object"], "event");
        let event = app.get(&format!("/v1/events/{}", r.id), DEMO_KEY).await.ok();
        assert_eq!(event["pending_webhooks"], 0, "delivered");
    }
    let denied = got.iter().find(|r| r.body["type"] == "claim.denied").unwrap();
    assert_eq!(denied.body["data"]["object"]["denial_reason"], "waiting_period");

    let log = attempts(&app, &e).await;
    assert_eq!(log.len(), 2);
    assert!(log.iter().all(|a| a["status_code"] == 200 && a["object"] == "webhook_attempt" && a["error"].is_null()));
    assert!(log[0]["id"].as_str().unwrap().starts_with("wha_"));
    assert_eq!(log[0]["response_body"], "ok");
    assert_eq!(app.deliver().await, 0, "nothing is sent twice");
}

#[tokio::test]
async fn failures_are_retried_on_the_schedule_then_succeed() {
    let app = TestApp::start().await;
    let receiver = Receiver::start().await;
    let e = endpoint(&app, &receiver, &["customer.created"]).await;
    receiver.set_mode(Mode::Status(500));
    let c = app.customer(DEMO_KEY, 10).await;
    assert_eq!(app.deliver().await, 1);
    let event = app.get("/v1/events?type=customer.created", DEMO_KEY).await.ok()["data"][0].clone();
    assert_eq!(event["pending_webhooks"], 1);
    assert_eq!(app.deliver().await, 0, "not due before the first retry (5 s)");
    app.clock.advance(4);
    assert_eq!(app.deliver().await, 0, "5 s less a tenth of jitter at most");
    app.clock.advance(2);
    assert_eq!(app.deliver().await, 1, "second attempt after about 5 s");
    receiver.set_mode(Mode::Ok);
    app.clock.advance(269);
    assert_eq!(app.deliver().await, 0, "the next wait is about 5 minutes");
    app.clock.advance(62);
    assert_eq!(app.deliver().await, 1);

    let got = receiver.received();
    assert_eq!(got.len(), 3);
    assert!(got.iter().all(|r| r.id == got[0].id), "the same webhook-id on every retry");
    assert!(got[2].timestamp > got[0].timestamp, "each attempt has its own timestamp");
    assert_eq!(receiver.delivered().len(), 1);
    assert_eq!(receiver.delivered()[0].body["data"]["object"]["id"], c["id"]);
    let log = attempts(&app, &e).await;
    assert_eq!(
        log.iter().map(|a| a["status_code"].as_i64().unwrap()).collect::<Vec<_>>(),
        [200, 500, 500],
        "newest first"
    );
    assert_eq!(log[1]["error"], "HTTP 500");
    assert_eq!(log[1]["response_body"], "status 500");
    let event = app.get(&format!("/v1/events/{}", id(&event)), DEMO_KEY).await.ok();
    assert_eq!(event["pending_webhooks"], 0);
}

#[tokio::test]
async fn retry_after_is_honoured_and_410_disables() {
    let app = TestApp::start().await;
    let receiver = Receiver::start().await;
    let e = endpoint(&app, &receiver, &["customer.created"]).await;
    receiver.set_mode(Mode::TooMany(120));
    app.customer(DEMO_KEY, 10).await;
    assert_eq!(app.deliver().await, 1);
    app.clock.advance(119);
    assert_eq!(app.deliver().await, 0, "waits for Retry-After");
    app.clock.advance(1);
    receiver.set_mode(Mode::Status(410));
    assert_eq!(app.deliver().await, 1);
    let fetched = app.get(&format!("/v1/webhook_endpoints/{}", id(&e)), DEMO_KEY).await.ok();
    assert_eq!(fetched["status"], "disabled", "410 Gone disables the endpoint at once");
    let disabled = app.get("/v1/events?type=webhook_endpoint.disabled", DEMO_KEY).await.ok();
    assert_eq!(disabled["data"][0]["data"]["object"]["id"], id(&e).as_str());
    assert!(disabled["data"][0]["data"]["object"].get("secret").is_none(), "events never carry the secret");
    app.customer(DEMO_KEY, 11).await;
    app.clock.advance(DAY);
    assert_eq!(app.deliver().await, 0, "a disabled endpoint gets nothing");
    assert_eq!(receiver.received().len(), 2);
}

#[tokio::test]
async fn a_delivery_past_its_last_attempt_is_failed() {
    let app = TestApp::start().await;
    let receiver = Receiver::start().await;
    let e = endpoint(&app, &receiver, &["customer.created"]).await;
    receiver.set_mode(Mode::Status(503));
    app.customer(DEMO_KEY, 10).await;
    let mut sent = app.deliver().await;
    for wait in casapay::domain::webhook::RETRY_DELAYS {
        app.clock.advance(wait + wait / 10 + 1);
        sent += app.deliver().await;
    }
    assert_eq!(sent, 10, "ten attempts in all");
    app.clock.advance(DAY);
    assert_eq!(app.deliver().await, 0, "none after the last");
    assert_eq!(attempts(&app, &e).await.len(), 10);
    let fetched = app.get(&format!("/v1/webhook_endpoints/{}", id(&e)), DEMO_KEY).await.ok();
    assert_eq!(fetched["status"], "enabled", "about three days of failures do not disable it");
}

#[tokio::test]
async fn an_endpoint_failing_for_five_days_is_disabled() {
    let app = TestApp::start().await;
    let receiver = Receiver::start().await;
    let e = endpoint(&app, &receiver, &["customer.created"]).await;
    receiver.set_mode(Mode::Status(500));
    app.customer(DEMO_KEY, 10).await;
    assert_eq!(app.deliver().await, 1);
    app.clock.advance(5 * DAY - 1);
    app.customer(DEMO_KEY, 11).await;
    app.deliver().await;
    let path = format!("/v1/webhook_endpoints/{}", id(&e));
    assert_eq!(app.get(&path, DEMO_KEY).await.ok()["status"], "enabled");
    app.clock.advance(1);
    app.customer(DEMO_KEY, 12).await;
    app.deliver().await;
    assert_eq!(app.get(&path, DEMO_KEY).await.ok()["status"], "disabled");
    let disabled = app.get("/v1/events?type=webhook_endpoint.disabled", DEMO_KEY).await.ok();
    assert_eq!(disabled["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn enabled_events_are_kept_once_each_in_first_seen_order() {
    let app = TestApp::start().await;
    let twice = json!(["claim.paid", "claim.approved", "claim.paid", "customer.created", "claim.approved"]);
    let e = app
        .post("/v1/webhook_endpoints", DEMO_KEY, json!({"url": "https://example.com/hook", "enabled_events": twice}))
        .await
        .ok();
    let once = json!(["claim.paid", "claim.approved", "customer.created"]);
    assert_eq!(e["enabled_events"], once);
    let path = format!("/v1/webhook_endpoints/{}", id(&e));
    assert_eq!(app.get(&path, DEMO_KEY).await.ok()["enabled_events"], once, "stored once each");
    let u = app.post(&path, DEMO_KEY, json!({"enabled_events": ["*", "claim.denied", "*", "claim.denied"]})).await.ok();
    assert_eq!(u["enabled_events"], json!(["*", "claim.denied"]));
    assert_eq!(app.get(&path, DEMO_KEY).await.ok()["enabled_events"], json!(["*", "claim.denied"]));
}

/// Rotating twice within a day leaves three secrets signing: each superseded one for
/// 24 h from the rotation that superseded it.
#[tokio::test]
async fn every_secret_superseded_within_a_day_still_signs() {
    let app = TestApp::start().await;
    let receiver = Receiver::start().await;
    let e = endpoint(&app, &receiver, &["customer.created"]).await;
    let rotate = async || {
        let r = app.post(&format!("/v1/webhook_endpoints/{}/rotate_secret", id(&e)), DEMO_KEY, json!({})).await;
        r.ok()["secret"].as_str().unwrap().to_owned()
    };
    let first = e["secret"].as_str().unwrap().to_owned();
    let second = rotate().await;
    app.clock.advance(3_600);
    let third = rotate().await;
    receiver.trust(&[&third, &second, &first]);
    let delivered_with = async |score| {
        app.customer(DEMO_KEY, score).await;
        assert_eq!(app.deliver().await, 1);
        let r = receiver.received().pop().unwrap();
        let stripe_count = r.headers["casapay-signature"].to_str().unwrap().matches("v1=").count();
        let standard_count = r.headers["webhook-signature"].to_str().unwrap().split(' ').count();
        assert_eq!(r.stripe_verified_by, r.standard_verified_by, "both schemes sign with the same secrets");
        assert_eq!((standard_count, stripe_count), (r.standard_verified_by.len(), r.standard_verified_by.len()));
        r.standard_verified_by
    };
    assert_eq!(delivered_with(1).await, [third.clone(), second.clone(), first.clone()], "all three sign");
    app.clock.set(DOCS_NOW + DAY - 1);
    assert_eq!(delivered_with(2).await, [third.clone(), second.clone(), first.clone()], "until a day has passed");
    app.clock.set(DOCS_NOW + DAY);
    assert_eq!(
        delivered_with(3).await,
        [third.clone(), second.clone()],
        "the first drops out 24 h after it was superseded"
    );
    app.clock.set(DOCS_NOW + 3_600 + DAY);
    assert_eq!(delivered_with(4).await, std::slice::from_ref(&third), "and the second 24 h after it was");
    let rotated_again = rotate().await;
    receiver.trust(&[&rotated_again, &third]);
    assert_eq!(delivered_with(5).await, [rotated_again, third], "expired secrets do not come back");
}

#[tokio::test]
async fn rotation_signs_with_both_secrets_for_a_day() {
    let app = TestApp::start().await;
    let receiver = Receiver::start().await;
    let e = endpoint(&app, &receiver, &["customer.created"]).await;
    let old = e["secret"].as_str().unwrap().to_owned();
    let rotated = app.post(&format!("/v1/webhook_endpoints/{}/rotate_secret", id(&e)), DEMO_KEY, json!({})).await.ok();
    let new = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(old, new);
    receiver.trust(&[&new, &old]);
    app.customer(DEMO_KEY, 10).await;
    app.deliver().await;
    let r = &receiver.received()[0];
    assert_eq!(r.standard_verified_by, [new.clone(), old.clone()], "both secrets sign");
    assert_eq!(r.stripe_verified_by, [new.clone(), old.clone()]);
    assert_eq!(r.headers["webhook-signature"].to_str().unwrap().split(' ').count(), 2);
    app.clock.advance(DAY);
    app.customer(DEMO_KEY, 11).await;
    app.deliver().await;
    let r = &receiver.received()[1];
    assert_eq!(r.standard_verified_by, std::slice::from_ref(&new), "the old secret stops after 24 h");
    assert_eq!(r.stripe_verified_by, [new]);
}

#[tokio::test]
async fn non_public_destinations_are_refused_at_connection_time() {
    // The endpoint was saved while loopback was allowed; the dispatcher now refuses it.
    let app = TestApp::start().await;
    let receiver = Receiver::start().await;
    let by_ip = endpoint(&app, &receiver, &["customer.created"]).await;
    let by_name_url = receiver.url.replace("127.0.0.1", "localhost");
    let by_name = app
        .post("/v1/webhook_endpoints", DEMO_KEY, json!({"url": by_name_url, "enabled_events": ["customer.created"]}))
        .await
        .ok();
    app.customer(DEMO_KEY, 10).await;
    let strict = Dispatcher::new(
        app.store.clone(),
        app.clock.clone(),
        dispatcher_config(EgressPolicy { allow_http: true, allow_private: false }),
    );
    assert_eq!(strict.run_once().await.unwrap(), 2);
    assert!(receiver.received().is_empty(), "nothing reached the loopback receiver");
    for e in [&by_ip, &by_name] {
        let log = attempts(&app, e).await;
        assert!(log[0]["status_code"].is_null());
        let error = log[0]["error"].as_str().unwrap();
        assert!(error.contains("not publicly routable") || error.contains("non-public"), "{error}");
    }
}

#[tokio::test]
async fn a_crash_mid_attempt_delivers_once_after_the_lease() {
    let app = TestApp::start().await;
    let receiver = Receiver::start().await;
    endpoint(&app, &receiver, &["customer.created"]).await;
    receiver.set_mode(Mode::Hang);
    app.customer(DEMO_KEY, 10).await;
    // Dispatcher A leases the delivery and dies while the receiver hangs.
    let a = app.dispatcher.clone();
    let task = tokio::spawn(async move { a.run_once().await });
    receiver.wait_for(1).await;
    task.abort();
    let _ = task.await;
    receiver.set_mode(Mode::Ok);

    let b = Dispatcher::new(
        open_store(&app.db_url).await,
        app.clock.clone(),
        dispatcher_config(crate::support::LOOPBACK_EGRESS),
    );
    assert_eq!(b.run_once().await.unwrap(), 0, "still leased by A");
    app.clock.advance(60);
    assert_eq!(b.run_once().await.unwrap(), 1, "taken over once the lease ran out");
    assert_eq!(b.run_once().await.unwrap(), 0);
    assert_eq!(receiver.delivered().len(), 1, "delivered exactly once");
    assert_eq!(receiver.received().len(), 2);
}

/// A dispatcher whose answer comes back after its lease ran out and another one
/// delivered: its late success is not recorded, and the event counts one delivery.
#[tokio::test]
async fn a_late_success_from_a_lost_lease_is_not_recorded() {
    let app = TestApp::start().await;
    let receiver = Receiver::start().await;
    let e = endpoint(&app, &receiver, &["customer.created"]).await;
    receiver.set_mode(Mode::Held);
    app.customer(DEMO_KEY, 10).await;
    let a = app.dispatcher.clone();
    let task = tokio::spawn(async move { a.run_once().await });
    receiver.wait_for(1).await;
    receiver.set_mode(Mode::Ok);

    app.clock.advance(60);
    let b = Dispatcher::new(
        open_store(&app.db_url).await,
        app.clock.clone(),
        dispatcher_config(crate::support::LOOPBACK_EGRESS),
    );
    assert_eq!(b.run_once().await.unwrap(), 1, "taken over once the lease ran out");
    receiver.release();
    assert_eq!(task.await.unwrap().unwrap(), 1, "A's attempt was made, and its answer came back late");

    assert_eq!(receiver.delivered().len(), 2, "both requests were answered 200");
    let log = attempts(&app, &e).await;
    assert_eq!(log.len(), 1, "only the lease holder's attempt is on record: {log:?}");
    let events = app.get("/v1/events?type=customer.created", DEMO_KEY).await.ok();
    assert_eq!(events["data"][0]["pending_webhooks"], 0, "counted down once, not below zero");
}

/// Deliveries leased together (their endpoints and events read in one query each)
/// are sent and recorded each on its own delivery, successes and failures alike.
#[tokio::test]
async fn a_leased_batch_lands_each_result_on_its_delivery() {
    let app = TestApp::start().await;
    let (good, bad) = (Receiver::start().await, Receiver::start().await);
    bad.set_mode(Mode::Status(503));
    let ok_endpoint = endpoint(&app, &good, &["customer.created"]).await;
    let failing_endpoint = endpoint(&app, &bad, &["customer.created"]).await;
    for i in 0..24 {
        app.customer(DEMO_KEY, i).await;
    }
    assert_eq!(app.deliver().await, 48);
    assert_eq!(good.delivered().len(), 24);
    assert_eq!(bad.received().len(), 24);

    let ok_log = attempts(&app, &ok_endpoint).await;
    assert_eq!(ok_log.len(), 24);
    assert!(ok_log.iter().all(|a| a["status_code"] == 200));
    let failed_log = attempts(&app, &failing_endpoint).await;
    assert_eq!(failed_log.len(), 24);
    assert!(failed_log.iter().all(|a| a["status_code"] == 503 && a["error"] == "HTTP 503"));
    let events = app.get("/v1/events?type=customer.created&limit=100", DEMO_KEY).await.ok();
    let events = events["data"].as_array().unwrap();
    assert_eq!(events.len(), 24);
    assert!(events.iter().all(|e| e["pending_webhooks"] == 1), "delivered to one endpoint, pending on the other");
    let failing = app.get(&format!("/v1/webhook_endpoints/{}", id(&failing_endpoint)), DEMO_KEY).await.ok();
    assert_eq!(failing["status"], "enabled", "one failing streak, not yet five days");
    assert_eq!(app.deliver().await, 0, "the failures wait for their retry");
}

#[tokio::test]
async fn two_dispatchers_send_each_attempt_once() {
    let app = TestApp::start().await;
    let receiver = Receiver::start().await;
    endpoint(&app, &receiver, &["customer.created"]).await;
    for i in 0..30 {
        app.customer(DEMO_KEY, i).await;
    }
    let b = Dispatcher::new(
        open_store(&app.db_url).await,
        app.clock.clone(),
        dispatcher_config(crate::support::LOOPBACK_EGRESS),
    );
    let (ra, rb) = tokio::join!(app.dispatcher.run_once(), b.run_once());
    assert_eq!(ra.unwrap() + rb.unwrap(), 30);
    let got = receiver.received();
    assert_eq!(got.len(), 30);
    let unique: std::collections::HashSet<_> = got.iter().map(|r| r.id.clone()).collect();
    assert_eq!(unique.len(), 30, "each event once");
}

#[tokio::test]
async fn resend_queues_a_fresh_delivery() {
    let app = TestApp::start().await;
    let receiver = Receiver::start().await;
    let e = endpoint(&app, &receiver, &["customer.created"]).await;
    app.customer(DEMO_KEY, 10).await;
    app.deliver().await;
    let event = app.get("/v1/events?type=customer.created", DEMO_KEY).await.ok()["data"][0].clone();
    let resent = app.post(&format!("/v1/events/{}/resend", id(&event)), DEMO_KEY, json!({})).await.ok();
    assert_eq!(resent["pending_webhooks"], 1);
    app.post(&format!("/v1/events/{}/resend", id(&event)), DEMO_KEY, json!({"webhook_endpoint": id(&e)})).await.ok();
    assert_eq!(app.deliver().await, 2);
    let got = receiver.delivered();
    assert_eq!(got.len(), 3);
    assert!(got.iter().all(|r| r.id == id(&event)));
    let r =
        app.post(&format!("/v1/events/{}/resend", id(&event)), DEMO_KEY, json!({"webhook_endpoint": "we_nope"})).await;
    assert_eq!(r.err(404, "invalid_request_error", Some("resource_missing"))["param"], "webhook_endpoint");
}

#[tokio::test]
async fn a_hanging_endpoint_does_not_hold_up_others_and_shutdown_waits_for_attempts() {
    let app = TestApp::start().await;
    let slow = Receiver::start().await;
    let fast = Receiver::start().await;
    let slow_endpoint = endpoint(&app, &slow, &["customer.created"]).await;
    endpoint(&app, &fast, &["customer.created"]).await;
    slow.set_mode(Mode::Hang);
    let cancel = CancellationToken::new();
    let task = tokio::spawn(app.dispatcher.clone().run(cancel.clone()));
    for i in 0..5 {
        app.customer(DEMO_KEY, i).await;
    }
    fast.wait_for(5).await;
    // All five reached the fast endpoint before any attempt to the slow one ended (they
    // end only at the 2 s timeout): the slow endpoint did not hold the others up.
    assert!(attempts(&app, &slow_endpoint).await.is_empty(), "no slow attempt has finished yet");
    slow.wait_for(1).await;

    // Shutdown: an attempt in flight finishes (here, by its 2 s timeout) and is recorded.
    slow.set_mode(Mode::Slow(300));
    app.customer(DEMO_KEY, 99).await;
    fast.wait_for(6).await;
    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(10), task).await.expect("dispatcher stops").unwrap();
    let pending: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM webhook_deliveries WHERE leased_until IS NOT NULL AND status = 'pending'",
    )
    .fetch_one(app.store.pool())
    .await
    .unwrap();
    assert_eq!(pending, 0, "nothing is left leased: every attempt in flight was recorded");
}

/// A lease looks at the first few due deliveries only (four per free slot). An
/// endpoint whose backlog fills that window takes its share and is then skipped, so
/// the deliveries of another endpoint queued behind it go out at once.
#[tokio::test]
async fn a_backlog_at_one_endpoint_does_not_hold_back_another_queued_behind_it() {
    let app = TestApp::start().await;
    let (slow, fast) = (Receiver::start().await, Receiver::start().await);
    let slow_endpoint = endpoint(&app, &slow, &["customer.created"]).await;
    endpoint(&app, &fast, &["guarantee_policy.created"]).await;
    slow.set_mode(Mode::Hang);
    // Two slots, one per endpoint: a window of eight, and twenty deliveries to the
    // slow endpoint ahead of the fast one's.
    let config = casapay::jobs::dispatcher::DispatcherConfig {
        max_in_flight: 2,
        per_endpoint: 1,
        ..dispatcher_config(crate::support::LOOPBACK_EGRESS)
    };
    let dispatcher = Dispatcher::new(app.store.clone(), app.clock.clone(), config);
    for i in 0..20 {
        app.customer(DEMO_KEY, i).await;
    }
    app.post(
        "/v1/guarantee_policies",
        DEMO_KEY,
        json!({"name": "p", "coverage_percentage": 100, "max_coverage_months": 12}),
    )
    .await
    .ok();
    let cancel = CancellationToken::new();
    let task = tokio::spawn(dispatcher.run(cancel.clone()));
    fast.wait_for(1).await;
    // The slow endpoint's first attempt ends only at the 2 s timeout.
    assert!(attempts(&app, &slow_endpoint).await.is_empty(), "delivered before any slow attempt ended");
    slow.wait_for(1).await;
    assert_eq!(slow.received().len(), 1, "one attempt in flight to the slow endpoint, its cap");
    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(10), task).await.expect("dispatcher stops").unwrap();
}

/// A lease takes no more for an endpoint than its free slots: nothing is leased only
/// to be handed back, so every delivery was leased exactly once, for its one attempt.
#[tokio::test]
async fn leases_take_only_an_endpoints_free_slots() {
    let app = TestApp::start().await;
    let receiver = Receiver::start().await;
    endpoint(&app, &receiver, &["customer.created"]).await;
    receiver.set_mode(Mode::Slow(50));
    for i in 0..20 {
        app.customer(DEMO_KEY, i).await;
    }
    let cancel = CancellationToken::new();
    let task = tokio::spawn(app.dispatcher.clone().run(cancel.clone()));
    receiver.wait_for(20).await;
    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(10), task).await.expect("dispatcher stops").unwrap();
    let tokens: Vec<i64> = sqlx::query_scalar("SELECT lease_token FROM webhook_deliveries ORDER BY seq")
        .fetch_all(app.store.pool())
        .await
        .unwrap();
    assert_eq!(tokens, vec![1; 20], "each delivery leased once");
}

#[tokio::test]
async fn events_fan_out_only_to_subscribed_enabled_endpoints_of_the_scope() {
    let app = TestApp::start().await;
    let all = Receiver::start().await;
    let claims_only = Receiver::start().await;
    let other_account = Receiver::start().await;
    endpoint(&app, &all, &["*"]).await;
    endpoint(&app, &claims_only, &["claim.paid"]).await;
    let acct = app.new_account().await;
    app.post("/v1/webhook_endpoints", &acct.test_key, json!({"url": other_account.url, "enabled_events": ["*"]}))
        .await
        .ok();
    let c = app.customer(DEMO_KEY, 10).await;
    let events = join_all([app.get("/v1/events", DEMO_KEY)]).await;
    assert_eq!(events[0].body["data"][0]["pending_webhooks"], 1);
    app.deliver().await;
    assert_eq!(all.received().len(), 1);
    assert_eq!(all.received()[0].body["data"]["object"]["id"], c["id"]);
    assert!(claims_only.received().is_empty());
    assert!(other_account.received().is_empty());
}

/// What a receiver sends back is stored as far as the database can hold it: NUL bytes
/// (which PostgreSQL's text refuses) and invalid UTF-8 become U+FFFD, and the 1 KiB cut
/// falls on a character boundary. The attempt is recorded and the delivery counts.
#[tokio::test]
async fn an_answer_with_nul_bytes_is_recorded_with_them_replaced() {
    let app = TestApp::start().await;
    let (nul, long) = (Receiver::start().await, Receiver::start().await);
    let nul_endpoint = endpoint(&app, &nul, &["customer.created"]).await;
    let long_endpoint = endpoint(&app, &long, &["customer.created"]).await;
    nul.set_mode(Mode::Answer(200, b"ok\0 \xff\0end"));
    // 1,200 bytes of three-byte characters: 1 KiB ends inside the 342nd.
    long.set_mode(Mode::Answer(200, "\u{20ac}".repeat(400).leak().as_bytes()));
    app.customer(DEMO_KEY, 10).await;
    assert_eq!(app.dispatcher.run_once().await.expect("both attempts are recorded"), 2);

    let log = attempts(&app, &nul_endpoint).await;
    assert_eq!(log.len(), 1);
    assert_eq!((log[0]["status_code"].as_i64(), log[0]["error"].as_str()), (Some(200), None));
    assert_eq!(log[0]["response_body"], "ok\u{fffd} \u{fffd}\u{fffd}end");
    let log = attempts(&app, &long_endpoint).await;
    assert_eq!(log[0]["response_body"], "\u{20ac}".repeat(341), "cut at 1 KiB on a character boundary");
    let event = app.get("/v1/events?type=customer.created", DEMO_KEY).await.ok()["data"][0].clone();
    assert_eq!(event["pending_webhooks"], 0, "delivered to both");
    app.clock.advance(DAY);
    assert_eq!(app.deliver().await, 0, "and not sent again");
}

/// An attempt the store refuses to record (any error) still counts as an attempt: it is
/// recorded without the answer and retried on the schedule, so the ten-attempt cap and
/// the five-day disable apply, instead of being sent again each time its lease runs out.
#[tokio::test]
async fn an_attempt_the_store_refuses_to_record_still_counts() {
    let app = TestApp::start().await;
    let receiver = Receiver::start().await;
    let e = endpoint(&app, &receiver, &["customer.created"]).await;
    refuse_attempts_answered(&app, "poison").await;
    receiver.set_mode(Mode::Answer(200, b"poison"));
    app.customer(DEMO_KEY, 10).await;
    let mut sent = app.dispatcher.run_once().await.expect("the attempt is counted, not lost");
    let log = attempts(&app, &e).await;
    assert_eq!(log.len(), 1, "on record");
    assert!(log[0]["status_code"].is_null() && log[0]["response_body"].is_null(), "{log:?}");
    let error = log[0]["error"].as_str().unwrap();
    assert!(error.starts_with("could not record attempt"), "{error}");
    assert!(!error.contains("refused by the test"), "no database internals in the log: {error}");
    assert_eq!(only_delivery(&app).await, ("pending".to_owned(), 1));
    app.clock.advance(6);
    sent += app.deliver().await;
    assert_eq!(sent, 2, "tried again on the schedule (5 s), not when the lease would have run out (60 s)");
    for wait in RETRY_DELAYS.iter().skip(1) {
        app.clock.advance(wait + wait / 10 + 1);
        sent += app.deliver().await;
    }
    assert_eq!(sent, 10, "ten attempts in all");
    assert_eq!(attempts(&app, &e).await.len(), 10);
    assert_eq!(only_delivery(&app).await, ("failed".to_owned(), 10));
    let path = format!("/v1/webhook_endpoints/{}", id(&e));
    assert_eq!(app.get(&path, DEMO_KEY).await.ok()["status"], "enabled");
    // The failure streak counts too: five days after the first attempt, the next disables it.
    app.clock.set(DOCS_NOW + 5 * DAY);
    app.customer(DEMO_KEY, 11).await;
    assert_eq!(app.deliver().await, 1);
    assert_eq!(app.get(&path, DEMO_KEY).await.ok()["status"], "disabled");
}

/// One tenant's slow endpoints take at most its share of the attempts in flight: with
/// sixteen of them holding every request (enough, at four each, for every slot), another
/// tenant's event is still delivered within a second of its commit.
#[tokio::test]
async fn a_slow_tenant_leaves_another_tenants_deliveries_prompt() {
    let app = TestApp::start().await;
    let (slow, fast) = (Receiver::start().await, Receiver::start().await);
    slow.set_mode(Mode::Held);
    let (a, b) = (app.new_account().await, app.new_account().await);
    for _ in 0..16 {
        customer_endpoint(&app, &a.test_key, &slow.url).await;
    }
    customer_endpoint(&app, &b.test_key, &fast.url).await;
    for i in 0..8 {
        app.customer(&a.test_key, i).await;
    }
    // Attempts are held, not timed out, for the whole test.
    let config = DispatcherConfig { timeout: Duration::from_secs(60), ..dispatcher_config(LOOPBACK_EGRESS) };
    let cancel = CancellationToken::new();
    let task = tokio::spawn(Dispatcher::new(app.store.clone(), app.clock.clone(), config).run(cancel.clone()));
    slow.wait_for(16).await;

    let committing = Instant::now();
    app.customer(&b.test_key, 99).await;
    let deadline = committing + Duration::from_secs(15);
    while fast.received().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let latency = committing.elapsed();
    eprintln!(
        "fast tenant: commit-to-delivery {latency:?} (delivered: {}), slow tenant's requests held: {}",
        !fast.received().is_empty(),
        slow.received().len()
    );
    assert!(latency < Duration::from_secs(1), "the other tenant's event took {latency:?}");
    assert_eq!(slow.received().len(), 16, "the slow tenant has its share in flight, no more");
    let finished: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM webhook_attempts WHERE account_id = $1")
        .bind(&a.id)
        .fetch_one(app.store.pool())
        .await
        .unwrap();
    assert_eq!(finished, 0, "and all of them are still held");

    slow.release();
    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(10), task).await.expect("dispatcher stops").unwrap();
}

/// Leases take turns between tenants: another tenant's event queued behind one tenant's
/// backlog goes out in the first lease, not after the backlog.
#[tokio::test]
async fn a_tenants_backlog_does_not_hold_back_another_tenants_event() {
    let app = TestApp::start().await;
    let receiver = Receiver::start().await;
    let (a, b) = (app.new_account().await, app.new_account().await);
    customer_endpoint(&app, &a.test_key, &receiver.url).await;
    customer_endpoint(&app, &b.test_key, &receiver.url).await;
    for i in 0..30 {
        app.customer(&a.test_key, i).await;
    }
    let theirs = app.customer(&b.test_key, 99).await;
    // Four at a time: each `run_once` lease is sent and answered before the next.
    let config = DispatcherConfig { max_in_flight: 4, per_endpoint: 4, ..dispatcher_config(LOOPBACK_EGRESS) };
    let dispatcher = Dispatcher::new(app.store.clone(), app.clock.clone(), config);
    assert_eq!(dispatcher.run_once().await.unwrap(), 31);
    let order: Vec<Value> = receiver.received().iter().map(|r| r.body["data"]["object"]["id"].clone()).collect();
    let at = order.iter().position(|c| *c == theirs["id"]).unwrap();
    assert!(at < 4, "sent in the first lease of four, not behind the 30 queued before it: {at}");
}

/// Waits until the server's endpoint cache is live (on PostgreSQL, once its listener
/// listens).
async fn endpoint_cache_live(app: &TestApp) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !app.store.endpoint_cache().is_live() {
        assert!(Instant::now() < deadline, "the endpoint cache never went live");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn demo_scope() -> casapay::store::Scope {
    casapay::store::Scope { account_id: casapay::service::accounts::DEMO_ACCOUNT_ID.into(), livemode: false }
}

/// The webhooks an event of a new customer is waiting to go to.
async fn pending_webhooks_of_a_new_customer(app: &TestApp) -> i64 {
    let c = app.post("/v1/customers", DEMO_KEY, json!({})).await.ok();
    let events = app.get("/v1/events?type=customer.created&limit=1", DEMO_KEY).await.ok();
    assert_eq!(events["data"][0]["data"]["object"]["id"], c["id"]);
    events["data"][0]["pending_webhooks"].as_i64().unwrap()
}

/// Creates customers, each with a delivery to each of the account's `n` endpoints,
/// until the endpoint cache keeps those `n`. On PostgreSQL the `NOTIFY` of a change to
/// an endpoint can arrive after the next write filled the cache, and empty it again.
async fn cache_the_endpoints(app: &TestApp, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        assert_eq!(pending_webhooks_of_a_new_customer(app).await, n as i64);
        if app.store.endpoint_cache().get(&demo_scope()).is_some_and(|e| e.len() == n) {
            return;
        }
        assert!(Instant::now() < deadline, "the cache never kept the {n} endpoints");
    }
}

#[tokio::test]
async fn the_endpoint_cache_keeps_up_with_this_servers_own_changes() {
    let app = TestApp::start().await;
    endpoint_cache_live(&app).await;
    let receiver = Receiver::start().await;
    assert_eq!(pending_webhooks_of_a_new_customer(&app).await, 0);
    assert_eq!(app.store.endpoint_cache().get(&demo_scope()), Some(vec![]), "the write kept what it read");

    let e = endpoint(&app, &receiver, &["customer.created"]).await;
    let id = e["id"].as_str().unwrap();
    assert_eq!(pending_webhooks_of_a_new_customer(&app).await, 1, "created: in the very next write's outbox");
    app.post(&format!("/v1/webhook_endpoints/{id}"), DEMO_KEY, json!({"disabled": true})).await.ok();
    assert_eq!(pending_webhooks_of_a_new_customer(&app).await, 0, "disabled: out of the next write's outbox");
    app.post(&format!("/v1/webhook_endpoints/{id}"), DEMO_KEY, json!({"disabled": false})).await.ok();
    assert_eq!(pending_webhooks_of_a_new_customer(&app).await, 1);
    app.post(&format!("/v1/webhook_endpoints/{id}"), DEMO_KEY, json!({"enabled_events": ["guarantee.created"]}))
        .await
        .ok();
    assert_eq!(pending_webhooks_of_a_new_customer(&app).await, 0, "unsubscribed");
    app.send(reqwest::Method::DELETE, &format!("/v1/webhook_endpoints/{id}"), Some(DEMO_KEY), None).await.ok();
    assert_eq!(pending_webhooks_of_a_new_customer(&app).await, 0);
    cache_the_endpoints(&app, 0).await;
}

/// PostgreSQL: another replica's change reaches this server's outbox through the
/// trigger's NOTIFY, and after a lost listening connection the cache starts again empty
/// and hears changes again.
#[tokio::test]
async fn the_endpoint_cache_hears_other_replicas_and_goes_off_while_deaf() {
    let app = TestApp::start().await;
    if app.store.backend() != Backend::Postgres {
        return;
    }
    endpoint_cache_live(&app).await;
    let receiver = Receiver::start().await;
    let e = endpoint(&app, &receiver, &["customer.created"]).await;
    let id = e["id"].as_str().unwrap().to_owned();
    cache_the_endpoints(&app, 1).await;

    // Another replica disables it, straight in the database.
    let other = sqlx::postgres::PgPoolOptions::new().max_connections(1).connect(&app.db_url).await.unwrap();
    sqlx::query("UPDATE webhook_endpoints SET status = 'disabled' WHERE id = $1")
        .bind(&id)
        .execute(&other)
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.store.endpoint_cache().get(&demo_scope()).is_some() {
        assert!(Instant::now() < deadline, "the other replica's change was never heard");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(pending_webhooks_of_a_new_customer(&app).await, 0, "disabled elsewhere: out of this outbox");

    // The listening connection dies: the listener turns the cache off, listens again on a
    // new connection and turns it back on, empty (each switch invalidates it, so the
    // generation moves by two per switch; nothing else changes endpoints meanwhile). The
    // cache's being off in between lasts milliseconds: what it forgets is the unit tests'.
    let listening_pid = "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN%'";
    let pids: Vec<i32> = sqlx::query_scalar(listening_pid).fetch_all(&other).await.unwrap();
    assert_eq!(pids.len(), 1, "one listening connection");
    let generation = app.store.endpoint_cache().generation();
    sqlx::query("SELECT pg_terminate_backend($1)").bind(pids[0]).execute(&other).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now_listening: Vec<i32> = sqlx::query_scalar(listening_pid).fetch_all(&other).await.unwrap();
        if now_listening.len() == 1 && now_listening[0] != pids[0] {
            break;
        }
        assert!(Instant::now() < deadline, "no new listening connection: {now_listening:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    endpoint_cache_live(&app).await;
    assert!(app.store.endpoint_cache().generation() >= generation + 4, "it went off and came back empty");
    assert_eq!(app.store.endpoint_cache().get(&demo_scope()), None, "forgotten");
    // Heard again: kept (disabled: none), enabled elsewhere, in this outbox.
    assert_eq!(pending_webhooks_of_a_new_customer(&app).await, 0);
    assert_eq!(app.store.endpoint_cache().get(&demo_scope()), Some(vec![]));
    sqlx::query("UPDATE webhook_endpoints SET status = 'enabled' WHERE id = $1")
        .bind(&id)
        .execute(&other)
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while pending_webhooks_of_a_new_customer(&app).await != 1 {
        assert!(Instant::now() < deadline, "the change made after it listened again was never heard");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The transaction that disables an endpoint records `webhook_endpoint.disabled` with the
/// endpoints as it sees them, not as the cache kept them: the disabled one gets nothing.
#[tokio::test]
async fn an_endpoint_disabled_gets_no_delivery_of_its_own_disabled_event() {
    let app = TestApp::start().await;
    endpoint_cache_live(&app).await;
    let receiver = Receiver::start().await;
    let e = endpoint(&app, &receiver, &["*"]).await;
    cache_the_endpoints(&app, 1).await;
    receiver.set_mode(Mode::Status(410));
    assert!(app.deliver().await >= 1);
    let fetched = app.get(&format!("/v1/webhook_endpoints/{}", id(&e)), DEMO_KEY).await.ok();
    assert_eq!(fetched["status"], "disabled");
    let disabled = app.get("/v1/events?type=webhook_endpoint.disabled", DEMO_KEY).await.ok();
    assert_eq!(disabled["data"][0]["data"]["object"]["id"], id(&e).as_str());
    assert_eq!(disabled["data"][0]["pending_webhooks"], 0, "no delivery to the endpoint it disables");
}
