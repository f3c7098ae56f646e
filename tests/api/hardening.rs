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
    // One failure a second after the burst of 20 (the default is 5): the limiter's clock
    // is the wall clock, and a slow, loaded machine should not refill it mid-flood.
    let app = TestApp::start_with(casapay::ApiConfig {
        rate_limits: casapay::api::rate_limit::RateLimitConfig::OFF,
        auth_failures_per_second: 1,
        ..casapay::ApiConfig::default()
    })
    .await;
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

/// A `casapay serve --demo` subprocess on `db`, answering on its port.
async fn spawn_server(db: &crate::support::TestDb) -> (std::process::Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let data = std::env::temp_dir().join(format!("casapay_crash_{}", casapay::ids::random_secret(8)));
    let child = crate::support::serve_command(&["--demo", "--listen", &format!("127.0.0.1:{port}"), "--data"])
        .arg(&data)
        .env("DATABASE_URL", &db.url)
        .env("CASAPAY_RATE_LIMIT_TEST", "0")
        .spawn()
        .expect("spawn serve");
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while client.get(format!("{base}/healthz")).send().await.is_err() {
        assert!(std::time::Instant::now() < deadline, "server did not start");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    (child, base)
}

fn create_customer(client: &reqwest::Client, base: &str, key: &str) -> reqwest::RequestBuilder {
    client
        .post(format!("{base}/v1/customers"))
        .bearer_auth(DEMO_KEY)
        .header("idempotency-key", key)
        .form(&[("name", format!("crash {key}"))])
}

/// kill -9 in the middle of a burst of keyed requests: the keys the dead server held
/// are taken over at once by the next server, so the same requests sent again run
/// (200, each object made once) instead of 409 `idempotency_key_in_use` for as long
/// as the dead server's lock would have lasted (two minutes).
#[tokio::test]
async fn keys_held_by_a_killed_server_are_taken_over_at_once() {
    use casapay::store::Backend;
    let db = crate::support::TestDb::create().await;
    let store = crate::support::open_store(&db.url).await;
    let client = reqwest::Client::new();
    let burst = 24;
    let in_flight = || async {
        let n: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM idempotency_keys WHERE state = 'in_flight'")
            .fetch_one(store.pool())
            .await
            .unwrap();
        n.0
    };
    let mut keys = Vec::new();
    // On PostgreSQL a lock on `customers` holds every request after it claimed its
    // key, so the kill finds them all in flight; on SQLite the requests queue for the
    // one writer, and the kill comes as soon as some are seen in flight (a few tries
    // at most, each with new keys).
    for attempt in 0..5 {
        let (mut server, base) = spawn_server(&db).await;
        let round: Vec<String> = (0..burst).map(|i| format!("crash-{attempt}-{i}")).collect();
        let pg_lock = if store.backend() == Backend::Postgres {
            let pool = sqlx::postgres::PgPoolOptions::new().max_connections(1).connect(&db.url).await.unwrap();
            let mut tx = pool.begin().await.unwrap();
            sqlx::query("LOCK TABLE customers IN EXCLUSIVE MODE").execute(&mut *tx).await.unwrap();
            Some((pool, tx))
        } else {
            None
        };
        let sent: Vec<_> = round.iter().map(|k| tokio::spawn(create_customer(&client, &base, k).send())).collect();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let want = if pg_lock.is_some() { burst as i64 } else { 1 };
        while in_flight().await < want && std::time::Instant::now() < deadline {
            tokio::task::yield_now().await;
        }
        server.kill().unwrap(); // SIGKILL
        server.wait().unwrap();
        drop(pg_lock);
        for s in sent {
            let _ = s.await;
        }
        keys.extend(round);
        if in_flight().await > 0 {
            break;
        }
    }
    let held = in_flight().await;
    assert!(held > 0, "the kill left keys in flight (else this test shows nothing)");

    let (mut server, base) = spawn_server(&db).await;
    let started = std::time::Instant::now();
    for key in &keys {
        let r = create_customer(&client, &base, key).send().await.unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        assert_eq!(status, 200, "{key}: {text}");
    }
    let elapsed = started.elapsed();
    println!("{held} keys left in flight by kill -9; {} requests sent again in {elapsed:?}", keys.len());
    // Each request ran once, whether its first try committed before the kill or not.
    for key in &keys {
        let n: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM customers WHERE name = $1")
            .bind(format!("crash {key}"))
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(n.0, 1, "{key}");
    }
    server.kill().unwrap();
    server.wait().unwrap();
}

/// Two replicas on one PostgreSQL: a key held by a live replica is never taken over,
/// however long it runs; once that replica is gone, it is taken over at once.
#[tokio::test]
async fn a_key_held_by_a_live_replica_waits_and_one_held_by_a_gone_replica_does_not() {
    use casapay::service::idempotency::{Begin, begin};
    use casapay::store::{Backend, Scope};
    let db = crate::support::TestDb::create().await;
    let first = crate::support::open_store(&db.url).await;
    if first.backend() != Backend::Postgres {
        return; // One server per SQLite file: another holder is always a gone one.
    }
    casapay::service::accounts::seed_demo(&first, 0).await.unwrap();
    let second = crate::support::open_store(&db.url).await;
    let scope = Scope { account_id: casapay::service::accounts::DEMO_ACCOUNT_ID.into(), livemode: false };
    assert!(matches!(begin(&first, &scope, "k", "fp", 100).await.unwrap(), Begin::Proceed(_)));
    assert!(matches!(begin(&second, &scope, "k", "fp", 101).await.unwrap(), Begin::InFlight), "the holder lives");
    first.close().await;
    drop(first);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match begin(&second, &scope, "k", "fp", 102).await.unwrap() {
            Begin::Proceed(claim) => {
                assert_eq!(claim.token, 2);
                break;
            }
            Begin::InFlight if std::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await
            }
            other => panic!("the gone holder's key was not taken over: {other:?}"),
        }
    }
}

/// To a live key the test helpers do not exist, and the 404 names the path it asked for.
#[tokio::test]
async fn test_helper_routes_are_unknown_to_live_keys_by_their_whole_path() {
    let app = TestApp::start().await;
    let acct = app.new_account().await;
    for action in ["approve", "deny"] {
        let path = format!("/v1/test_helpers/claims/clm_123/{action}");
        let r = app.post(&path, &acct.live_key, json!({})).await;
        let e = r.err(404, "invalid_request_error", None);
        assert_eq!(e["message"], format!("Unrecognized request URL (POST: {path})."));
    }
}
