//! What Stripe's SDKs and habits rely on: idempotency keys, form bodies, expand, Basic
//! auth, rate limits.

use casapay::api::rate_limit::RateLimitConfig;
use futures_util::future::join_all;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{DEMO_KEY, DOCS_NOW, Resp, TestApp, id};

const DAY: i64 = 86_400;
const FORM: &str = "application/x-www-form-urlencoded";

async fn post_key(app: &TestApp, path: &str, key: &str, idem: &str, body: Value) -> Resp {
    let r = app
        .client
        .post(app.url(path))
        .bearer_auth(key)
        .header("idempotency-key", idem)
        .json(&body)
        .send()
        .await
        .unwrap();
    Resp::from_response(&Method::POST, r).await
}

async fn post_form(app: &TestApp, path: &str, idem: Option<&str>, form: &str) -> Resp {
    let mut r = app.client.post(app.url(path)).bearer_auth(DEMO_KEY).header("content-type", FORM).body(form.to_owned());
    if let Some(k) = idem {
        r = r.header("idempotency-key", k);
    }
    Resp::from_response(&Method::POST, r.send().await.unwrap()).await
}

async fn count(app: &TestApp, path: &str) -> usize {
    app.get(&format!("{path}?limit=100"), DEMO_KEY).await.ok()["data"].as_array().unwrap().len()
}

fn replayed(r: &Resp) -> bool {
    r.headers.get("idempotent-replayed").is_some_and(|v| v == "true")
}

#[tokio::test]
async fn a_repeated_request_is_answered_again_and_done_once() {
    let app = TestApp::start().await;
    let first = post_key(&app, "/v1/customers", DEMO_KEY, "k1", json!({"name": "Ana", "metadata": {"a": "1"}})).await;
    assert!(!replayed(&first));
    let second = post_key(&app, "/v1/customers", DEMO_KEY, "k1", json!({"metadata": {"a": "1"}, "name": "Ana"})).await;
    assert!(replayed(&second), "same parameters in another order: replayed");
    assert_eq!((second.status.as_u16(), &second.text), (200, &first.text), "the first answer, byte for byte");
    // The same parameters as a form body are the same request.
    let third = post_form(&app, "/v1/customers", Some("k1"), "name=Ana&metadata[a]=1").await;
    assert!(replayed(&third));
    assert_eq!(count(&app, "/v1/customers").await, 2, "one customer created (plus the demo one)");
    let events = app.get("/v1/events?type=customer.created", DEMO_KEY).await.ok();
    assert_eq!(events["data"].as_array().unwrap().len(), 1);
    assert_eq!(events["data"][0]["request"]["idempotency_key"], "k1");

    // Other parameters or another path with the same key: refused.
    let other = post_key(&app, "/v1/customers", DEMO_KEY, "k1", json!({"name": "Bo"})).await;
    other.err(400, "idempotency_error", None);
    let elsewhere = post_key(&app, "/v1/guarantee_policies", DEMO_KEY, "k1", json!({"name": "Ana"})).await;
    elsewhere.err(400, "idempotency_error", None);

    // Keys belong to an account and mode.
    let acct = app.new_account().await;
    let live = post_key(&app, "/v1/customers", &acct.live_key, "k1", json!({"name": "Bo"})).await;
    assert!(!replayed(&live));
    assert_eq!(live.ok()["livemode"], true);

    // Too long a key.
    let long = post_key(&app, "/v1/customers", DEMO_KEY, &"k".repeat(256), json!({})).await;
    long.err(400, "invalid_request_error", Some("idempotency_key_invalid"));
    let ok = post_key(&app, "/v1/customers", DEMO_KEY, &"k".repeat(255), json!({})).await;
    assert_eq!(ok.status, 200);
}

#[tokio::test]
async fn client_errors_are_kept_and_keys_expire_after_a_day() {
    let app = TestApp::start().await;
    let bad = post_key(&app, "/v1/guarantee_policies", DEMO_KEY, "k2", json!({"name": "p"})).await;
    bad.err(400, "invalid_request_error", Some("parameter_missing"));
    let again = post_key(&app, "/v1/guarantee_policies", DEMO_KEY, "k2", json!({"name": "p"})).await;
    assert!(replayed(&again), "a 400 is kept too");
    assert_eq!(again.text, bad.text);

    app.clock.advance(DAY + 1);
    let fresh = post_key(&app, "/v1/customers", DEMO_KEY, "k2", json!({"name": "after a day"})).await;
    assert!(!replayed(&fresh), "a key is forgotten after 24 hours");
    assert_eq!(fresh.ok()["name"], "after a day");

    // The engine's housekeeping removes old keys.
    let before: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM idempotency_keys").fetch_one(app.store.pool()).await.unwrap();
    assert_eq!(before, 1);
    app.clock.advance(DAY + 120);
    app.settle().await;
    let after: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM idempotency_keys").fetch_one(app.store.pool()).await.unwrap();
    assert_eq!(after, 0);
}

#[tokio::test]
async fn the_stored_answer_commits_with_the_effects() {
    let app = TestApp::start().await;
    let r = post_key(&app, "/v1/customers", DEMO_KEY, "k3", json!({"name": "Ana"})).await;
    let (state, body): (String, String) =
        sqlx::query_as("SELECT state, response_body FROM idempotency_keys WHERE key = 'k3'")
            .fetch_one(app.store.pool())
            .await
            .unwrap();
    assert_eq!(state, "done");
    assert_eq!(body, r.text);
}

#[tokio::test]
async fn a_server_error_frees_the_key_for_a_retry() {
    let (app, g, tx) = TestApp::with_demo_guarantee_locked().await;
    let path = format!("/v1/guarantees/{}/cancel", id(&g));
    let r = post_key(&app, &path, DEMO_KEY, "k4", json!({})).await;
    r.err(503, "api_error", None);
    drop(tx);
    let retry = post_key(&app, &path, DEMO_KEY, "k4", json!({})).await;
    assert!(!replayed(&retry), "the 503 was not kept");
    assert_eq!(retry.ok()["status"], "cancelled");
}

#[tokio::test]
async fn many_requests_at_once_on_one_key_have_one_effect() {
    let app = TestApp::start().await;
    let grt = app.claimable_demo_guarantee().await;
    let body = TestApp::claim_body(&grt, "inv_once", DOCS_NOW + 30 * DAY);
    let results = join_all((0..25).map(|_| post_key(&app, "/v1/claims", DEMO_KEY, "same-key", body.clone()))).await;
    let ok: Vec<&Resp> = results.iter().filter(|r| r.status == 200).collect();
    let busy = results.iter().filter(|r| r.status == 409).count();
    assert_eq!(ok.len() + busy, 25, "{:?}", results.iter().map(|r| &r.text).collect::<Vec<_>>());
    assert!(ok.iter().all(|r| r.text == ok[0].text), "every 200 is the same answer");
    for r in results.iter().filter(|r| r.status == 409) {
        r.err(409, "invalid_request_error", Some("idempotency_key_in_use"));
    }
    assert_eq!(count(&app, "/v1/claims").await, 1, "exactly one claim");
    let g = app.get(&format!("/v1/guarantees/{grt}"), DEMO_KEY).await.ok();
    assert_eq!(g["claims_filed"], 1);
    let late = post_key(&app, "/v1/claims", DEMO_KEY, "same-key", body).await;
    assert!(replayed(&late));
}

#[tokio::test]
async fn json_and_form_bodies_give_the_same_results_and_errors() {
    let app = TestApp::start().await;
    let policy = app.docs_policy(DEMO_KEY).await;
    let by_json = app
        .post(
            "/v1/guarantees",
            DEMO_KEY,
            json!({"policy": id(&policy), "tenant": "cus_123456789", "coverage_amount": 120000, "currency": "EUR",
                   "start_date": 1706140800, "end_date": 1737676800, "metadata": {"lease_id": "l1"}}),
        )
        .await
        .ok();
    let form = format!(
        "policy={}&tenant=cus_123456789&coverage_amount=120000&currency=EUR&start_date=1706140800&end_date=1737676800&metadata[lease_id]=l1",
        id(&policy)
    );
    let by_form = post_form(&app, "/v1/guarantees", None, &form).await.ok();
    let strip = |mut v: Value| {
        v.as_object_mut().unwrap().remove("id");
        v
    };
    assert_eq!(strip(by_json), strip(by_form));

    for (json_body, form_body) in [
        (json!({"name": "x", "foo": "1"}), "name=x&foo=1"),
        (json!({"score": "abc"}), "score=abc"),
        (json!({"score": "101"}), "score=101"),
        (json!({"metadata": {"k": ""}, "email": "nope"}), "metadata[k]=&email=nope"),
    ] {
        let a = app.post("/v1/customers", DEMO_KEY, json_body).await;
        let b = post_form(&app, "/v1/customers", None, form_body).await;
        assert_eq!(a.status, 400);
        assert_eq!((a.status, &a.body), (b.status, &b.body), "{form_body}");
    }
    // Booleans and lists in form notation.
    let p = post_form(&app, &format!("/v1/guarantee_policies/{}", id(&policy)), None, "active=false").await.ok();
    assert_eq!(p["active"], false);
    let e = post_form(
        &app,
        "/v1/webhook_endpoints",
        None,
        "url=https://example.com/h&enabled_events[0]=claim.paid&enabled_events[1]=claim.denied",
    )
    .await
    .ok();
    assert_eq!(e["enabled_events"], json!(["claim.paid", "claim.denied"]));
    // Other content types are refused.
    let r = app
        .raw(Method::POST, "/v1/customers", Some(DEMO_KEY), Some("multipart/form-data; boundary=x"), b"--x--".to_vec())
        .await;
    assert_eq!(r.status, 415);
}

#[tokio::test]
async fn expand_replaces_ids_with_objects() {
    let app = TestApp::start().await;
    let policy = app.docs_policy(DEMO_KEY).await;
    let form = format!(
        "policy={}&tenant=cus_123456789&coverage_amount=120000&currency=eur&start_date=1706140800&end_date=1737676800&expand[]=policy&expand[]=tenant",
        id(&policy)
    );
    let g = post_form(&app, "/v1/guarantees", None, &form).await.ok();
    assert_eq!(g["policy"], policy, "expanded on create");
    assert_eq!(g["tenant"]["object"], "customer");
    let grt = id(&g);
    let r = app.get(&format!("/v1/guarantees/{grt}?expand[0]=policy"), DEMO_KEY).await.ok();
    assert_eq!(r["policy"]["object"], "guarantee_policy");
    assert_eq!(r["tenant"], "cus_123456789", "only what was asked");

    app.clock.set(DOCS_NOW + 40 * DAY);
    let c = app.post("/v1/claims", DEMO_KEY, TestApp::claim_body(&grt, "i", DOCS_NOW + 30 * DAY)).await.ok();
    app.settle().await;
    let c = app.get(&format!("/v1/claims/{}?expand[]=guarantee.policy&expand[]=payout", id(&c)), DEMO_KEY).await.ok();
    assert_eq!(c["guarantee"]["object"], "guarantee");
    assert_eq!(c["guarantee"]["policy"]["object"], "guarantee_policy", "nested");
    assert_eq!(c["payout"]["object"], "payout");
    let po = c["payout"]["id"].as_str().unwrap();
    let p = app.get(&format!("/v1/payouts/{po}?expand[]=claim.guarantee.tenant"), DEMO_KEY).await.ok();
    assert_eq!(p["claim"]["guarantee"]["tenant"]["id"], "cus_123456789", "three levels");
    let list = app.get("/v1/guarantees?expand[]=data.policy&expand[]=data.tenant", DEMO_KEY).await.ok();
    assert_eq!(list["data"][0]["policy"]["object"], "guarantee_policy");
    assert_eq!(list["data"][0]["tenant"]["object"], "customer");
    let claims = app.get("/v1/claims?expand[]=data.guarantee", DEMO_KEY).await.ok();
    assert_eq!(claims["data"][0]["guarantee"]["id"], grt.as_str());

    for path in [
        format!("/v1/guarantees/{grt}?expand[]=nope"),
        format!("/v1/guarantees/{grt}?expand[]=policy.tenant"),
        "/v1/guarantees?expand[]=policy".to_string(),
        "/v1/customers/cus_123456789?expand[]=tenant".to_string(),
        format!("/v1/payouts/{po}?expand[]=claim.payout.claim.payout.claim"),
    ] {
        let r = app.get(&path, DEMO_KEY).await;
        assert_eq!(r.err(400, "invalid_request_error", Some("parameter_invalid_expand"))["param"], "expand", "{path}");
    }
}

#[tokio::test]
async fn rate_limits_per_key_answer_429_with_retry_after() {
    let app = TestApp::start_with(casapay::ApiConfig {
        rate_limits: RateLimitConfig { test_per_second: 5, live_per_second: 0 },
        ..casapay::ApiConfig::default()
    })
    .await;
    let results = join_all((0..30).map(|_| app.get("/v1/customers", DEMO_KEY))).await;
    let limited: Vec<&Resp> = results.iter().filter(|r| r.status == 429).collect();
    assert!(limited.len() >= 20, "{} of 30 limited", limited.len());
    let e = limited[0].err(429, "rate_limit_error", Some("rate_limit"));
    assert!(e["message"].as_str().unwrap().contains("Too many requests"));
    let retry_after: u64 = limited[0].headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry_after));
    // Another key has its own allowance; the live limit is off here.
    let acct = app.new_account().await;
    assert_eq!(app.get("/v1/customers", &acct.test_key).await.status, 200);
    let live = join_all((0..30).map(|_| app.get("/v1/customers", &acct.live_key))).await;
    assert!(live.iter().all(|r| r.status == 200));
}
