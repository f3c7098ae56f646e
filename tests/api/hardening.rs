//! Issue 16's defects, each pinned: NUL characters, retry headers, Cache-Control,
//! failed authentication limits, connection loss, idempotency keys after a crash.

use reqwest::Method;
use serde_json::json;

use crate::support::{DEMO_KEY, TestApp, id};

/// A NUL anywhere in the input is a 400 naming the param on both stores (PostgreSQL's
/// `text` refuses it; SQLite would store it), and nothing is written.
#[tokio::test]
async fn nul_characters_are_a_400_naming_the_param_on_every_input() {
    let app = TestApp::start().await;
    let customer = app.customer(DEMO_KEY, 80).await;
    let cus = id(&customer);
    let form = "application/x-www-form-urlencoded";
    // (method, path, content type, body, the param the error names)
    type Case<'a> = (Method, String, Option<&'a str>, Vec<u8>, &'a str);
    let cases: Vec<Case> = vec![
        (Method::POST, format!("/v1/customers/{cus}"), Some(form), b"name=Jane%00n".to_vec(), "name"),
        (Method::POST, "/v1/customers".into(), Some(form), b"name=a&metadata[k]=v%00".to_vec(), "metadata[k]"),
        (
            Method::POST,
            "/v1/customers".into(),
            Some("application/json"),
            br#"{"name": "a", "metadata": {"k\u0000": "v"}}"#.to_vec(),
            "metadata[k\\u0000]",
        ),
        (
            Method::POST,
            "/v1/customers".into(),
            Some("application/json"),
            br#"{"name": "x\u0000y", "email": "a@b.c"}"#.to_vec(),
            "name",
        ),
        (Method::GET, "/v1/customers?email=a%00%40b.c".into(), None, Vec::new(), "email"),
        (Method::GET, "/v1/guarantees?tenant=cus_%00".into(), None, Vec::new(), "tenant"),
        (
            Method::POST,
            "/v1/webhook_endpoints".into(),
            Some(form),
            b"url=https://example.com/%00&enabled_events[]=*".to_vec(),
            "url",
        ),
    ];
    for (method, path, content_type, body, param) in cases {
        let r = app.raw(method.clone(), &path, Some(DEMO_KEY), content_type, body).await;
        let e = r.err(400, "invalid_request_error", Some("parameter_invalid_string"));
        assert_eq!(e["param"], param, "{method} {path}");
    }
    let after = app.get(&format!("/v1/customers/{cus}"), DEMO_KEY).await.ok();
    assert_eq!(after["name"], customer["name"], "the refused update changed nothing");
    let list = app.get("/v1/customers?limit=100", DEMO_KEY).await.ok();
    // The demo customer and the one made above, nothing more.
    assert_eq!(list["data"].as_array().unwrap().len(), 2);
}

/// Made-up keys from one address are limited (429 with `Retry-After`, no lookup),
/// while a key that worked before from that same address keeps working.
#[tokio::test]
async fn failed_authentication_is_limited_per_address_without_locking_out_a_valid_key() {
    let app = TestApp::start().await;
    // The valid key is seen once before the flood.
    app.get("/v1/customers", DEMO_KEY).await.ok();
    let mut statuses = Vec::new();
    for i in 0..30 {
        let r = app.get("/v1/customers", &format!("sk_test_madeup{i:020}")).await;
        statuses.push(r.status.as_u16());
        if r.status == 429 {
            let e = r.err(429, "rate_limit_error", Some("rate_limit"));
            assert!(e["message"].as_str().unwrap().contains("invalid API keys"), "{e}");
            let retry_after: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
            assert!((1..=2).contains(&retry_after), "{retry_after}");
            assert_eq!(r.headers["stripe-should-retry"], "true");
        } else {
            assert_eq!(r.status, 401);
            assert_eq!(r.headers["stripe-should-retry"], "false");
        }
    }
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert!(statuses[..20].iter().all(|s| *s == 401), "the burst is answered 401: {statuses:?}");
    assert!(refused >= 8, "the rest of the flood is refused: {statuses:?}");
    // The same address, with the key it used before: never held back.
    for _ in 0..5 {
        app.get("/v1/customers", DEMO_KEY).await.ok();
    }
}

/// Every answer says whether it is worth retrying, as Stripe's SDKs read it, and no
/// answer may be cached.
#[tokio::test]
async fn answers_say_whether_to_retry_and_are_never_cached() {
    let app = TestApp::start().await;
    let ok = app.get("/v1/customers", DEMO_KEY).await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.headers["cache-control"], "no-store");
    assert!(!ok.headers.contains_key("stripe-should-retry"), "successes need no advice");
    let missing = app.get("/v1/customers/cus_nope", DEMO_KEY).await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.headers["cache-control"], "no-store");
    assert_eq!(missing.headers["stripe-should-retry"], "false");
    let bad = app.post("/v1/customers", DEMO_KEY, json!({"foo": 1})).await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.headers["stripe-should-retry"], "false");
    let doc = app.get("/v1/openapi.json", DEMO_KEY).await;
    assert_eq!(doc.headers["cache-control"], "no-store");
}

/// PostgreSQL connections lost (a restart, a failover, `pg_terminate_backend`): the
/// requests that find their pooled connection dead run again on a fresh one, so no
/// client sees a 5xx; a 500 was the answer before. (SQLite has no connections to lose.)
#[tokio::test]
async fn lost_postgres_connections_are_replaced_without_an_error_to_the_client() {
    use casapay::store::Backend;
    let app = TestApp::start().await;
    if app.store.backend() != Backend::Postgres {
        return;
    }
    // Fill the pool with idle connections, as a busy server has.
    let warm = futures_util::future::join_all((0..12).map(|_| app.get("/v1/customers", DEMO_KEY))).await;
    assert!(warm.iter().all(|r| r.status == 200));
    for round in 0..2 {
        let killed: Vec<(bool,)> = sqlx::query_as(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        .fetch_all(&connect_admin_to(&app).await)
        .await
        .unwrap();
        assert!(!killed.is_empty(), "round {round}: the server's connections were terminated");
        let app = &app;
        let at_once = futures_util::future::join_all((0..6).map(|i| async move {
            if i % 2 == 0 {
                app.get("/v1/customers", DEMO_KEY).await
            } else {
                app.post("/v1/customers", DEMO_KEY, json!({"name": format!("after loss {i}")})).await
            }
        }))
        .await;
        for r in &at_once {
            assert_eq!(r.status, 200, "round {round}: {}", r.text);
        }
        for _ in 0..6 {
            let r = app.get("/v1/customers", DEMO_KEY).await;
            assert_eq!(r.status, 200, "round {round}: {}", r.text);
        }
    }
    let all = app.get("/v1/customers?limit=100", DEMO_KEY).await.ok();
    // The demo customer and three created per round, each once.
    assert_eq!(all["data"].as_array().unwrap().len(), 7);
}

/// A connection of its own to the app's database, outside the app's pool.
async fn connect_admin_to(app: &TestApp) -> sqlx::PgPool {
    sqlx::postgres::PgPoolOptions::new().max_connections(1).connect(&app.db_url).await.expect("connect")
}
