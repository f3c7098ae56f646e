//! Section 1 of the spec: errors, ids, bodies, auth. Bad input never gets a 5xx.

use std::time::{Duration, Instant};

use casapay::api::rate_limit::RateLimitConfig;
use casapay::app::ApiConfig;
use casapay::service::accounts;
use reqwest::Method;
use serde_json::json;

use crate::support::{DEMO_KEY, DOCS_NOW, TestApp, id};

#[tokio::test]
async fn missing_and_unknown_parameters() {
    let app = TestApp::start().await;
    let r = app
        .post("/v1/guarantee_policies", DEMO_KEY, json!({"coverage_percentage": 100, "max_coverage_months": 12}))
        .await;
    let e = r.err(400, "invalid_request_error", Some("parameter_missing"));
    assert_eq!(e["message"], "Missing required param: name.");
    assert_eq!(e["param"], "name");

    let r = app.post("/v1/customers", DEMO_KEY, json!({"name": "x", "foo": 1})).await;
    let e = r.err(400, "invalid_request_error", Some("parameter_unknown"));
    assert_eq!(e["message"], "Received unknown parameter: foo");
    assert_eq!(e["param"], "foo");

    let (_, g) = app.demo_guarantee().await;
    app.clock.advance(40 * 86400);
    let mut body = TestApp::claim_body(&id(&g), "inv_1", 1706140800);
    body["evidence"]["foo"] = json!("bar");
    let e = app.post("/v1/claims", DEMO_KEY, body).await;
    let e = e.err(400, "invalid_request_error", Some("parameter_unknown"));
    assert_eq!(e["param"], "evidence[foo]");
    assert_eq!(e["message"], "Received unknown parameter: evidence[foo]");

    let mut body = TestApp::claim_body(&id(&g), "inv_1", 1706140800);
    body["evidence"].as_object_mut().unwrap().remove("due_date");
    let r = app.post("/v1/claims", DEMO_KEY, body).await;
    assert_eq!(r.err(400, "invalid_request_error", Some("parameter_missing"))["param"], "evidence[due_date]");

    // Nothing was stored by the refused requests.
    let claims = app.get("/v1/claims", DEMO_KEY).await.ok();
    assert_eq!(claims["data"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn ids_of_the_wrong_kind_or_shape_are_404() {
    let app = TestApp::start().await;
    for path in [
        "/v1/guarantees/grt_doesnotexist",
        "/v1/guarantees/cus_123456789",
        "/v1/guarantees/grt_%27%3B%20drop%20table",
        "/v1/guarantees/%F0%9F%92%A5",
        "/v1/guarantees/%FF",
        "/v1/claims/clm_",
        "/v1/customers/x",
        "/v1/events/evt_nope",
        "/v1/guarantee_policies/grt_123",
    ] {
        let r = app.get(path, DEMO_KEY).await;
        assert_eq!(r.status, 404, "{path}: {}", r.text);
        assert_eq!(r.body["error"]["type"], "invalid_request_error", "{path}");
        if r.body["error"]["code"] == "resource_missing" {
            assert_eq!(r.body["error"]["param"], "id");
        }
    }
    let r = app.get("/v1/guarantees/grt_doesnotexist", DEMO_KEY).await;
    assert_eq!(
        r.err(404, "invalid_request_error", Some("resource_missing"))["message"],
        "No such guarantee: 'grt_doesnotexist'"
    );

    // An id in a body that names nothing: 404 with the param named.
    let r = app
        .post(
            "/v1/guarantees",
            DEMO_KEY,
            json!({
                "policy": "gpol_missing", "tenant": "cus_123456789", "coverage_amount": 100,
                "currency": "eur", "start_date": 1706140800, "end_date": 1737676800
            }),
        )
        .await;
    let e = r.err(404, "invalid_request_error", Some("resource_missing"));
    assert_eq!(e["param"], "policy");
    assert_eq!(e["message"], "No such guarantee_policy: 'gpol_missing'");
    let r = app.post("/v1/claims", DEMO_KEY, TestApp::claim_body("cus_123456789", "i", 1)).await;
    assert_eq!(r.err(404, "invalid_request_error", Some("resource_missing"))["param"], "guarantee");
}

#[tokio::test]
async fn authentication_errors_mask_the_key() {
    let app = TestApp::start().await;
    let r = app.send(Method::GET, "/v1/customers", None, None).await;
    r.err(401, "authentication_error", None);

    let r = app.get("/v1/customers", "sk_test_4eC39HqLyjWDarjtT1zdpXYZ").await;
    let e = r.err(401, "authentication_error", None);
    assert_eq!(e["message"], "Invalid API Key provided: sk_test_****pXYZ");
    assert!(!r.text.contains("4eC39HqLyjWDarjtT1zd"), "the key is never echoed whole");

    for header in ["Token abc", "Bearer", "Basic !!!", "bearer   "] {
        let r = app.client.get(app.url("/v1/customers")).header("authorization", header).send().await.unwrap();
        assert_eq!(r.status(), 401, "{header}");
    }
    // HTTP Basic with the key as user name, as `curl -u key:` sends it.
    let r = app.client.get(app.url("/v1/customers")).basic_auth(DEMO_KEY, Some("")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

/// A server caching keys for `ttl` (no rate limits), and a new account on it.
async fn with_key_cache(ttl: Duration) -> (TestApp, casapay::service::accounts::CreatedAccount) {
    let app = TestApp::start_with(ApiConfig {
        rate_limits: RateLimitConfig::OFF,
        key_cache_ttl: ttl,
        ..ApiConfig::default()
    })
    .await;
    let account = app.new_account().await;
    (app, account)
}

/// Keys are cached for `key_cache_ttl`: a key revoked behind the server's back (as
/// `casapay keys revoke` does, from another process) is refused once its entry is stale.
#[tokio::test]
async fn a_revoked_key_is_refused_within_the_key_cache_ttl() {
    let (app, account) = with_key_cache(Duration::from_millis(300)).await;
    assert_eq!(app.get("/v1/customers", &account.test_key).await.status, 200);
    assert!(accounts::revoke_key(&app.store, &account.test_key, DOCS_NOW).await.unwrap());
    let revoked = Instant::now();
    let deadline = revoked + Duration::from_secs(10);
    loop {
        let r = app.get("/v1/customers", &account.test_key).await;
        if r.status == 401 {
            break;
        }
        assert_eq!(r.status, 200);
        assert!(Instant::now() < deadline, "the revoked key still works after 10 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The other mode's key is untouched.
    assert_eq!(app.get("/v1/customers", &account.live_key).await.status, 200);
}

/// Within the TTL the cache answers (the revocation is not seen yet), but a rolled
/// key's expiry is checked on every request.
#[tokio::test]
async fn cached_keys_skip_the_lookup_but_not_their_expiry() {
    let (app, account) = with_key_cache(Duration::from_secs(3600)).await;
    assert_eq!(app.get("/v1/customers", &account.live_key).await.status, 200);
    assert!(accounts::revoke_key(&app.store, &account.live_key, DOCS_NOW).await.unwrap());
    assert_eq!(app.get("/v1/customers", &account.live_key).await.status, 200, "answered from the cache");

    let rolled = accounts::roll_secret_key(&app.store, &account.id, false, 60, DOCS_NOW).await.unwrap();
    assert_eq!(app.get("/v1/customers", &account.test_key).await.status, 200, "within the grace period");
    assert_eq!(app.get("/v1/customers", &rolled).await.status, 200);
    app.clock.advance(61);
    assert_eq!(app.get("/v1/customers", &account.test_key).await.status, 401, "expired, though cached");
    assert_eq!(app.get("/v1/customers", &rolled).await.status, 200);
}

#[tokio::test]
async fn malformed_bodies_are_400_never_500() {
    let app = TestApp::start().await;
    let json = Some("application/json");
    let cases: Vec<(Option<&str>, Vec<u8>)> = vec![
        (json, b"{".to_vec()),
        (json, b"[1, 2]".to_vec()),
        (json, b"\"just a string\"".to_vec()),
        (json, b"null".to_vec()),
        (json, vec![0xff, 0xfe, 0x7b, 0x7d]),
        (json, b"{\"name\": \"\xff\"}".to_vec()),
        (json, b"{\"score\": 1e400}".to_vec()),
        (json, b"{\"score\": 99999999999999999999999}".to_vec()),
        (json, b"{\"score\": -1}".to_vec()),
        (json, b"{\"score\": \"eighty\"}".to_vec()),
        (json, b"{\"score\": 1.5}".to_vec()),
        (json, b"{\"metadata\": \"not a hash\"}".to_vec()),
        (json, b"{\"metadata\": [1]}".to_vec()),
        (json, b"{\"metadata\": {\"a\": {\"b\": 1}}}".to_vec()),
        (json, b"{\"name\": {\"nested\": true}}".to_vec()),
        (json, format!("{}1{}", "[".repeat(5000), "]".repeat(5000)).into_bytes()),
        (Some("application/x-www-form-urlencoded"), b"metadata[a]=1&metadata=2".to_vec()),
        (Some("application/x-www-form-urlencoded"), b"%zz=1".to_vec()),
        (None, b"{not json".to_vec()),
    ];
    for (ct, body) in cases {
        let shown = String::from_utf8_lossy(&body).chars().take(60).collect::<String>();
        let r = app.raw(Method::POST, "/v1/customers", Some(DEMO_KEY), ct, body).await;
        assert_eq!(r.status, 400, "{ct:?} {shown}: {}", r.text);
        assert_eq!(r.body["error"]["type"], "invalid_request_error", "{shown}");
    }
    // Nothing was created.
    let list = app.get("/v1/customers", DEMO_KEY).await.ok();
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn wrong_types_and_bounds_in_money_fields() {
    let app = TestApp::start().await;
    let policy = app.docs_policy(DEMO_KEY).await;
    let base = json!({
        "policy": id(&policy), "tenant": "cus_123456789", "coverage_amount": 120000,
        "currency": "eur", "start_date": 1706140800, "end_date": 1737676800
    });
    let cases = [
        ("coverage_amount", json!(-5), "amount_too_small"),
        ("coverage_amount", json!(0), "amount_too_small"),
        ("coverage_amount", json!(100_000_000), "amount_too_large"),
        ("coverage_amount", json!(i64::MAX), "amount_too_large"),
        ("coverage_amount", json!(1e300), "parameter_invalid_integer"),
        ("coverage_amount", json!("12x"), "parameter_invalid_integer"),
        ("coverage_amount", json!({"a": 1}), "parameter_invalid_integer"),
        ("currency", json!("xyz"), "invalid_currency"),
        ("currency", json!(978), "parameter_invalid_string"),
        ("start_date", json!("soon"), "parameter_invalid_integer"),
        ("metadata", json!("x"), "parameter_invalid_object"),
    ];
    for (field, value, code) in cases {
        let mut body = base.clone();
        body[field] = value.clone();
        let r = app.post("/v1/guarantees", DEMO_KEY, body).await;
        let e = r.err(400, "invalid_request_error", Some(code));
        assert_eq!(e["param"], field, "{field}={value}");
    }
    // Any case of a valid code is accepted and stored lower-case.
    let mut body = base.clone();
    body["currency"] = json!("EUR");
    assert_eq!(app.post("/v1/guarantees", DEMO_KEY, body).await.ok()["currency"], "eur");
    // Numbers as strings mean the same as numbers (forms can only send strings).
    let mut body = base.clone();
    body["coverage_amount"] = json!("99999999");
    assert_eq!(app.post("/v1/guarantees", DEMO_KEY, body).await.ok()["coverage_amount"], 99_999_999);
}

#[tokio::test]
async fn body_limit_content_types_and_routes() {
    let app = TestApp::start().await;
    // 10 MB body: 413 in the error shape.
    let big = vec![b'a'; 10 * 1024 * 1024];
    let r = app.raw(Method::POST, "/v1/customers", Some(DEMO_KEY), Some("application/json"), big).await;
    assert_eq!(r.status, 413, "{}", r.text);
    assert_eq!(r.body["error"]["type"], "invalid_request_error");

    // Unsupported content type: 415.
    let r = app.raw(Method::POST, "/v1/customers", Some(DEMO_KEY), Some("text/xml"), b"<x/>".to_vec()).await;
    assert_eq!(r.status, 415, "{}", r.text);
    assert_eq!(r.body["error"]["type"], "invalid_request_error");

    // No content type at all: JSON is recognised, and an empty body is no params.
    let r = app.raw(Method::POST, "/v1/customers", Some(DEMO_KEY), None, br#"{"name": "no ct"}"#.to_vec()).await;
    assert_eq!(r.ok()["name"], "no ct");
    let r = app.raw(Method::POST, "/v1/customers", Some(DEMO_KEY), None, Vec::new()).await;
    assert_eq!(r.status, 200);

    // Form bodies with bracket notation.
    let r = app
        .raw(
            Method::POST,
            "/v1/customers",
            Some(DEMO_KEY),
            Some("application/x-www-form-urlencoded"),
            b"name=Form&score=70&metadata[k]=v".to_vec(),
        )
        .await
        .ok();
    assert_eq!(
        (r["name"].as_str(), r["score"].as_i64(), r["metadata"]["k"].as_str()),
        (Some("Form"), Some(70), Some("v"))
    );

    // Unknown route and wrong method, in the error shape.
    let r = app.get("/v1/nothing_here", DEMO_KEY).await;
    r.err(404, "invalid_request_error", None);
    let r = app.send(Method::DELETE, "/v1/customers", Some(DEMO_KEY), None).await;
    r.err(405, "invalid_request_error", None);
    let r = app.send(Method::PUT, "/v1/guarantees/grt_x/cancel", Some(DEMO_KEY), None).await;
    r.err(405, "invalid_request_error", None);
}

#[tokio::test]
async fn metadata_limits_and_update_semantics() {
    let app = TestApp::start().await;
    let c = app.post("/v1/customers", DEMO_KEY, json!({"metadata": {"a": "1", "b": "2"}})).await.ok();
    let path = format!("/v1/customers/{}", id(&c));
    // Merge: a set key is added, "" removes one, others stay.
    let c = app.post(&path, DEMO_KEY, json!({"metadata": {"b": "", "c": "3"}})).await.ok();
    assert_eq!(c["metadata"], json!({"a": "1", "c": "3"}));
    // metadata="" clears all.
    let c = app.post(&path, DEMO_KEY, json!({"metadata": ""})).await.ok();
    assert_eq!(c["metadata"], json!({}));

    let long_key = "k".repeat(41);
    let long_value = "v".repeat(501);
    for bad in [json!({long_key: "v"}), json!({"k": long_value}), json!({"k": 5}), json!({"": "v"})] {
        let r = app.post(&path, DEMO_KEY, json!({"metadata": bad})).await;
        assert_eq!(r.status, 400, "{}", r.text);
    }
    let fifty: serde_json::Map<String, serde_json::Value> = (0..50).map(|i| (format!("k{i}"), json!("v"))).collect();
    app.post(&path, DEMO_KEY, json!({"metadata": fifty})).await.ok();
    let r = app.post(&path, DEMO_KEY, json!({"metadata": {"one_more": "v"}})).await;
    assert_eq!(r.err(400, "invalid_request_error", Some("metadata_invalid"))["param"], "metadata");
    let c = app.get(&path, DEMO_KEY).await.ok();
    assert_eq!(c["metadata"].as_object().unwrap().len(), 50, "a refused update changes nothing");
}

#[tokio::test]
async fn a_request_stuck_on_a_lock_times_out_with_503_and_changes_nothing() {
    // Another writer holds the guarantee.
    let (app, g, tx) = TestApp::with_demo_guarantee_locked().await;
    let started = std::time::Instant::now();
    let r = app.post(&format!("/v1/guarantees/{}/cancel", id(&g)), DEMO_KEY, json!({})).await;
    r.err(503, "api_error", None);
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "answered promptly");
    drop(tx);
    let g = app.get(&format!("/v1/guarantees/{}", id(&g)), DEMO_KEY).await.ok();
    assert_eq!(g["status"], "active", "the timed-out request was rolled back");
    app.post(&format!("/v1/guarantees/{}/cancel", id(&g)), DEMO_KEY, json!({})).await.ok();
}

/// Timestamps are Unix seconds from 1970 to 9999 (0 to 253402300799) wherever they come
/// in; outside, 400 `parameter_out_of_range` naming the param, and nothing is stored.
#[tokio::test]
async fn timestamps_are_bounded_to_the_years_1970_to_9999() {
    const MAX: i64 = 253_402_300_799;
    let app = TestApp::start().await;
    let policy = app.docs_policy(DEMO_KEY).await;
    let base = json!({
        "policy": id(&policy), "tenant": "cus_123456789", "coverage_amount": 120000,
        "currency": "eur", "start_date": DOCS_NOW, "end_date": 1737676800
    });
    let out_of_range = |r: &crate::support::Resp, param: &str| {
        let e = r.err(400, "invalid_request_error", Some("parameter_out_of_range"));
        assert_eq!(e["param"], param, "{e}");
        assert!(e["message"].as_str().unwrap().contains("253402300799"), "{e}");
    };
    for (field, value) in [
        ("end_date", i64::MAX),
        ("end_date", MAX + 1),
        ("end_date", i64::MIN),
        ("start_date", -1),
        ("start_date", i64::MIN),
        ("start_date", MAX + 1),
    ] {
        let mut body = base.clone();
        body[field] = json!(value);
        out_of_range(&app.post("/v1/guarantees", DEMO_KEY, body).await, field);
    }
    // The same in a form body, where every value is a string.
    let form = format!(
        "policy={}&tenant=cus_123456789&coverage_amount=120000&currency=eur&start_date={DOCS_NOW}&end_date={}",
        id(&policy),
        i64::MAX
    );
    let r = app
        .raw(Method::POST, "/v1/guarantees", Some(DEMO_KEY), Some("application/x-www-form-urlencoded"), form.into())
        .await;
    out_of_range(&r, "end_date");
    assert_eq!(app.get("/v1/guarantees", DEMO_KEY).await.ok()["data"].as_array().unwrap().len(), 0);

    // The last second of 9999 is a valid end, and the 60-day claim window after it does
    // not wrap: the guarantee takes claims (with an end of 2^63-1 it took none).
    let mut body = base.clone();
    body["end_date"] = json!(MAX);
    let g = app.post("/v1/guarantees", DEMO_KEY, body).await.ok();
    assert_eq!(g["end_date"], MAX);
    app.clock.set(DOCS_NOW + 40 * 86_400);
    let c = app.post("/v1/claims", DEMO_KEY, TestApp::claim_body(&id(&g), "inv_1", DOCS_NOW + 30 * 86_400)).await;
    assert_eq!(c.ok()["status"], "under_review");
    // Moving the end: bounded too.
    let path = format!("/v1/guarantees/{}", id(&g));
    out_of_range(&app.post(&path, DEMO_KEY, json!({"end_date": MAX + 1})).await, "end_date");
    out_of_range(&app.post(&path, DEMO_KEY, json!({"end_date": i64::MAX})).await, "end_date");

    // A claim's due date.
    for due in [-1, i64::MIN, i64::MAX] {
        let r = app.post("/v1/claims", DEMO_KEY, TestApp::claim_body(&id(&g), "inv_2", due)).await;
        out_of_range(&r, "evidence[due_date]");
    }
    let r = app
        .raw(
            Method::POST,
            "/v1/claims",
            Some(DEMO_KEY),
            Some("application/x-www-form-urlencoded"),
            format!(
                "guarantee={}&amount=1&currency=eur&reason=missed_payment&evidence[invoice_id]=i&evidence[due_date]=-9223372036854775808",
                id(&g)
            )
            .into(),
        )
        .await;
    out_of_range(&r, "evidence[due_date]");

    // The `created` filters of every list.
    for list in ["/v1/customers", "/v1/guarantee_policies", "/v1/guarantees", "/v1/claims", "/v1/payouts", "/v1/events"]
    {
        for (query, param) in [
            ("created[gt]=-1", "created[gt]"),
            ("created[gte]=253402300800", "created[gte]"),
            ("created[lt]=9223372036854775807", "created[lt]"),
            ("created[lte]=-9223372036854775808", "created[lte]"),
            ("created=-5", "created"),
            ("created=253402300800", "created"),
        ] {
            out_of_range(&app.get(&format!("{list}?{query}"), DEMO_KEY).await, param);
        }
        app.get(&format!("{list}?created[gte]=0&created[lte]={MAX}"), DEMO_KEY).await.ok();
    }
}
