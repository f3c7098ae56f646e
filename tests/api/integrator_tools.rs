//! Tools for integrators (SPEC section 9): Ed25519 signatures, per-endpoint rate
//! limits, recovering failed deliveries, and resetting test data.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use casapay::clock::Clock;
use casapay::store::Backend;
use casapay::store::reset::{KEPT_BY_RESET, RESET_TABLES, scoped_tables};
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use serde_json::{Value, json};

use crate::receiver::{Mode, Receiver};
use crate::support::{DEMO_KEY, TestApp, id};

const DAY: i64 = 86_400;

fn verifying_key(public_key: &str) -> VerifyingKey {
    let raw: [u8; 32] =
        STANDARD.decode(public_key.strip_prefix("whpk_").expect("whpk_ prefix")).unwrap().try_into().unwrap();
    VerifyingKey::from_bytes(&raw).unwrap()
}

/// The public keys (of `keys`) whose `v1a` signature in the delivery verifies.
fn verified_by<'a>(keys: &[&'a str], r: &crate::receiver::Received) -> Vec<&'a str> {
    let h = |name: &str| r.headers.get(name).unwrap().to_str().unwrap().to_owned();
    let mut signed = format!("{}.{}.", h("webhook-id"), h("webhook-timestamp")).into_bytes();
    signed.extend_from_slice(&r.raw_body);
    let signatures: Vec<Signature> = h("webhook-signature")
        .split(' ')
        .map(|entry| {
            let b64 = entry.strip_prefix("v1a,").unwrap_or_else(|| panic!("{entry} is not a v1a signature"));
            Signature::from_slice(&STANDARD.decode(b64).unwrap()).unwrap()
        })
        .collect();
    keys.iter().copied().filter(|k| signatures.iter().any(|s| verifying_key(k).verify(&signed, s).is_ok())).collect()
}

#[tokio::test]
async fn ed25519_endpoints_sign_v1a_with_a_key_that_never_leaves_the_server() {
    let app = TestApp::start().await;
    let receiver = Receiver::start().await;
    let created = app
        .post(
            "/v1/webhook_endpoints",
            DEMO_KEY,
            json!({"url": receiver.url, "enabled_events": ["customer.created"], "signature_scheme": "ed25519"}),
        )
        .await
        .ok();
    assert_eq!(created["signature_scheme"], "ed25519");
    assert!(created.get("secret").is_none(), "the signing key is never shown: {created}");
    let first_key = created["public_key"].as_str().unwrap().to_owned();
    assert!(first_key.starts_with("whpk_"));
    let fetched = app.get(&format!("/v1/webhook_endpoints/{}", id(&created)), DEMO_KEY).await.ok();
    assert_eq!(fetched["public_key"], first_key.as_str(), "the public key is shown on every read");

    app.customer(DEMO_KEY, 10).await;
    assert_eq!(app.deliver().await, 1);
    let got = receiver.delivered();
    assert!(got[0].headers.get("casapay-signature").is_none(), "Stripe's scheme has no asymmetric variant");
    assert_eq!(verified_by(&[&first_key], &got[0]), [first_key.as_str()]);

    // A rotation makes a new key pair; the old key keeps signing for a day.
    let rotated =
        app.post(&format!("/v1/webhook_endpoints/{}/rotate_secret", id(&created)), DEMO_KEY, json!({})).await.ok();
    let second_key = rotated["public_key"].as_str().unwrap().to_owned();
    assert_ne!(second_key, first_key);
    assert!(rotated.get("secret").is_none());
    app.customer(DEMO_KEY, 11).await;
    app.deliver().await;
    let got = receiver.delivered();
    assert_eq!(verified_by(&[&first_key, &second_key], &got[1]), [first_key.as_str(), second_key.as_str()]);
    app.clock.advance(DAY);
    app.customer(DEMO_KEY, 12).await;
    app.deliver().await;
    assert_eq!(verified_by(&[&first_key, &second_key], &receiver.delivered()[2]), [second_key.as_str()]);

    // An HMAC endpoint is unchanged: a secret, no public key.
    let hmac =
        app.post("/v1/webhook_endpoints", DEMO_KEY, json!({"url": receiver.url, "enabled_events": ["*"]})).await.ok();
    assert_eq!(hmac["signature_scheme"], "hmac_sha256");
    assert!(hmac["secret"].as_str().unwrap().starts_with("whsec_") && hmac["public_key"].is_null());
    let bad = app
        .post(
            "/v1/webhook_endpoints",
            DEMO_KEY,
            json!({"url": receiver.url, "enabled_events": ["*"], "signature_scheme": "rsa"}),
        )
        .await;
    assert_eq!(bad.err(400, "invalid_request_error", Some("parameter_invalid_value"))["param"], "signature_scheme");
}

#[tokio::test]
async fn rate_limit_caps_deliveries_per_second_without_spending_attempts() {
    let app = TestApp::start().await;
    let receiver = Receiver::start().await;
    let e = app
        .post(
            "/v1/webhook_endpoints",
            DEMO_KEY,
            json!({"url": receiver.url, "enabled_events": ["customer.created"], "rate_limit": 2}),
        )
        .await
        .ok();
    assert_eq!(e["rate_limit"], 2);
    for score in 0..5 {
        app.customer(DEMO_KEY, score).await;
    }
    app.deliver().await;
    app.deliver().await;
    assert_eq!(receiver.received().len(), 2, "two in the first second, however often the dispatcher runs");
    app.clock.advance(1);
    app.deliver().await;
    assert_eq!(receiver.received().len(), 4);
    app.clock.advance(1);
    app.deliver().await;
    assert_eq!(receiver.received().len(), 5);
    let attempts = app.get(&format!("/v1/webhook_endpoints/{}/attempts?limit=100", id(&e)), DEMO_KEY).await.ok();
    assert_eq!(attempts["data"].as_array().unwrap().len(), 5, "a delivery held back is not an attempt");

    let cleared =
        app.post(&format!("/v1/webhook_endpoints/{}", id(&e)), DEMO_KEY, json!({"rate_limit": ""})).await.ok();
    assert!(cleared["rate_limit"].is_null());
    for bad in [json!(0), json!(10_001), json!("fast")] {
        let r = app.post(&format!("/v1/webhook_endpoints/{}", id(&e)), DEMO_KEY, json!({"rate_limit": bad})).await;
        assert_eq!(r.status, 400, "{bad}: {:?}", r.body);
        assert_eq!(r.body["error"]["param"], "rate_limit");
    }
}

#[tokio::test]
async fn recover_queues_again_what_failed_for_good_since_then() {
    let app = TestApp::start().await;
    let receiver = Receiver::start().await;
    let e = app
        .post("/v1/webhook_endpoints", DEMO_KEY, json!({"url": receiver.url, "enabled_events": ["customer.created"]}))
        .await
        .ok();
    receiver.set_mode(Mode::Status(503));
    let before = app.clock.now();
    app.customer(DEMO_KEY, 10).await;
    app.deliver().await;
    for wait in casapay::domain::webhook::RETRY_DELAYS {
        app.clock.advance(wait + wait / 10 + 1);
        app.deliver().await;
    }
    let event = app.get("/v1/events?type=customer.created", DEMO_KEY).await.ok()["data"][0].clone();
    assert_eq!(event["pending_webhooks"], 1, "failed for good: not delivered, so still pending, as with Stripe");
    let path = format!("/v1/webhook_endpoints/{}/recover", id(&e));

    let later = app.post(&path, DEMO_KEY, json!({"since": before + 1})).await.ok();
    assert_eq!(later["deliveries"], 0, "nothing failed that was created after `since`");
    let recovered = app.post(&path, DEMO_KEY, json!({"since": before})).await.ok();
    assert_eq!(recovered["object"], "webhook_endpoint_recovery");
    assert_eq!(recovered["deliveries"], 1);
    receiver.set_mode(Mode::Ok);
    assert_eq!(app.deliver().await, 1, "sent again at once");
    let event = app.get(&format!("/v1/events/{}", id(&event)), DEMO_KEY).await.ok();
    assert_eq!(event["pending_webhooks"], 0, "delivered");
    assert_eq!(receiver.delivered().len(), 1);
    assert_eq!(app.post(&path, DEMO_KEY, json!({"since": before})).await.ok()["deliveries"], 0, "delivered now");

    let future = app.post(&path, DEMO_KEY, json!({"since": app.clock.now() + 60})).await;
    assert_eq!(future.err(400, "invalid_request_error", Some("parameter_invalid_integer"))["param"], "since");
    app.post(&path, DEMO_KEY, json!({})).await.err(400, "invalid_request_error", Some("parameter_missing"));
    let other = app.new_account().await;
    app.post(&path, &other.test_key, json!({"since": before})).await.err(
        404,
        "invalid_request_error",
        Some("resource_missing"),
    );
    app.post(&format!("/v1/webhook_endpoints/{}", id(&e)), DEMO_KEY, json!({"disabled": true})).await.ok();
    let disabled = app.post(&path, DEMO_KEY, json!({"since": before})).await;
    disabled.err(400, "invalid_request_error", Some("webhook_endpoint_disabled"));
}

/// Test-mode objects of one account: a policy, a tenant, a guarantee, a claim.
async fn some_objects(app: &TestApp, key: &str) -> Value {
    let policy = app.docs_policy(key).await;
    let tenant = app.customer(key, 90).await;
    app.docs_guarantee(key, &id(&policy), &id(&tenant)).await
}

#[tokio::test]
async fn reset_deletes_the_accounts_test_data_and_nothing_else() {
    let app = TestApp::start().await;
    let a = app.new_account().await;
    let b = app.new_account().await;
    let receiver = Receiver::start().await;
    let endpoint = app
        .post("/v1/webhook_endpoints", &a.test_key, json!({"url": receiver.url, "enabled_events": ["*"]}))
        .await
        .ok();
    some_objects(&app, &a.test_key).await;
    let live = app.customer(&a.live_key, 50).await;
    let other = some_objects(&app, &b.test_key).await;
    let events_of_b = app.get("/v1/events?limit=100", &b.test_key).await.ok()["data"].as_array().unwrap().len();

    let r = app.post("/v1/test_helpers/reset", &a.test_key, json!({})).await.ok();
    assert_eq!(r["object"], "test_helpers.reset");
    assert_eq!(r["deleted"]["customers"], 1);
    assert_eq!(r["deleted"]["guarantees"], 1);
    assert!(r["deleted"]["events"].as_i64().unwrap() >= 3);
    for list in ["/v1/customers", "/v1/guarantee_policies", "/v1/guarantees", "/v1/claims", "/v1/events", "/v1/payouts"]
    {
        let page = app.get(list, &a.test_key).await.ok();
        assert_eq!(page["data"], json!([]), "{list} after reset");
    }
    app.get(&format!("/v1/webhook_endpoints/{}", id(&endpoint)), &a.test_key).await.ok();
    app.get(&format!("/v1/customers/{}", id(&live)), &a.live_key).await.ok();
    app.get(&format!("/v1/guarantees/{}", id(&other)), &b.test_key).await.ok();
    let after = app.get("/v1/events?limit=100", &b.test_key).await.ok()["data"].as_array().unwrap().len();
    assert_eq!(after, events_of_b, "another account's data is untouched");
    assert_eq!(app.deliver().await, 0, "a reset sends no events, and its deleted events no deliveries");

    // A live key does not know the route.
    let r = app.post("/v1/test_helpers/reset", &a.live_key, json!({})).await;
    assert!(r.err(404, "invalid_request_error", None)["message"].as_str().unwrap().contains("/v1/test_helpers/reset"));
    app.get(&format!("/v1/customers/{}", id(&live)), &a.live_key).await.ok();
    // Replayed with its Idempotency-Key: the same answer, once.
    some_objects(&app, &a.test_key).await;
    let keyed = || async {
        let r = reqwest::Client::new()
            .post(app.url("/v1/test_helpers/reset"))
            .bearer_auth(&a.test_key)
            .header("idempotency-key", "reset-1")
            .send()
            .await
            .unwrap();
        crate::support::Resp::from_response(&reqwest::Method::POST, r).await.ok()
    };
    let first = keyed().await;
    let again = keyed().await;
    assert_eq!(first, again);
    assert_eq!(first["deleted"]["customers"], 1);
}

#[tokio::test]
async fn every_scoped_table_is_either_reset_or_kept() {
    let app = TestApp::start().await;
    let mut conn = app.store.pool().acquire().await.unwrap();
    let tables = scoped_tables(&mut conn, app.store.backend() == Backend::Postgres).await.unwrap();
    assert!(tables.len() >= RESET_TABLES.len());
    for table in &tables {
        assert!(
            RESET_TABLES.contains(&table.as_str()) || KEPT_BY_RESET.contains(&table.as_str()),
            "{table} holds rows per account and mode: add it to RESET_TABLES (or KEPT_BY_RESET) in store/reset.rs"
        );
    }
}

/// A `casapay serve --demo` subprocess on `db` at `port`, once it answers.
pub(crate) async fn serve_on(db: &crate::support::TestDb, port: u16, data: &std::path::Path) -> std::process::Child {
    let child = crate::support::serve_command(&["--demo", "--listen", &format!("127.0.0.1:{port}"), "--data"])
        .arg(data)
        .env("DATABASE_URL", &db.url)
        .env("CASAPAY_RATE_LIMIT_TEST", "0")
        .spawn()
        .expect("spawn serve");
    let client = reqwest::Client::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while client.get(format!("http://127.0.0.1:{port}/healthz")).send().await.is_err() {
        assert!(std::time::Instant::now() < deadline, "server did not start");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    child
}

/// The lines a subprocess prints, as they come.
fn lines_of(stream: impl std::io::Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stream).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// The next line that satisfies `wanted`, within ten seconds. Polled, not blocked on,
/// so the test's runtime keeps serving the receiver meanwhile.
async fn next_line(lines: &std::sync::mpsc::Receiver<String>, wanted: impl Fn(&str) -> bool) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match lines.try_recv() {
            Ok(line) if wanted(&line) => return line,
            Ok(_) => {}
            Err(std::sync::mpsc::TryRecvError::Empty) => {
                assert!(std::time::Instant::now() < deadline, "no such line within 10 s");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            Err(e) => panic!("listen stopped printing: {e}"),
        }
    }
}

async fn create_customer(base: &str, name: &str) -> Value {
    let r = reqwest::Client::new()
        .post(format!("{base}/v1/customers"))
        .bearer_auth(DEMO_KEY)
        .form(&[("name", name)])
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    r.json().await.unwrap()
}

#[tokio::test]
async fn listen_forwards_signed_events_survives_a_restart_and_stops_on_ctrl_c() {
    use std::process::Stdio;
    let db = crate::support::TestDb::create().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let data = std::env::temp_dir().join(format!("casapay_listen_{}", casapay::ids::random_secret(8)));
    let mut server = serve_on(&db, port, &data).await;
    let base = format!("http://127.0.0.1:{port}");
    let before = create_customer(&base, "Before").await;
    let receiver = Receiver::start().await;
    let mut listen = std::process::Command::new(env!("CARGO_BIN_EXE_casapay"))
        .args(["listen", "--forward-to", &receiver.url, "--api", &base, "--api-key", DEMO_KEY, "--poll-ms", "50"])
        .args(["--events", "customer.created,customer.updated"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn listen");
    let lines = lines_of(listen.stdout.take().unwrap());
    let ready = next_line(&lines, |l| l.starts_with("Ready!")).await;
    let secret = ready.split_whitespace().find(|w| w.starts_with("whsec_")).expect("the secret").to_owned();
    receiver.trust(&[&secret]);

    let first = create_customer(&base, "First").await;
    // One line per event: its time, type and id, and what the receiver answered.
    let line = next_line(&lines, |l| l.contains("customer.created")).await;
    assert!(line.contains("  evt_") && line.ends_with("-> 200"), "{line}");
    let got = receiver.wait_for(1).await;
    assert_eq!(got[0].body["data"]["object"]["id"], id(&first).as_str(), "only events after it started");
    assert_eq!(got[0].standard_verified_by, vec![secret.clone()]);
    assert_eq!(got[0].stripe_verified_by, vec![secret.clone()]);

    // The server goes away and comes back: listen carries on from where it was.
    server.kill().unwrap();
    server.wait().unwrap();
    let mut server = serve_on(&db, port, &data).await;
    let second = create_customer(&base, "Second").await;
    // Filtered out: a type not asked for.
    reqwest::Client::new()
        .post(format!("{base}/v1/guarantee_policies"))
        .bearer_auth(DEMO_KEY)
        .form(&[("name", "p"), ("coverage_percentage", "100"), ("max_coverage_months", "12")])
        .send()
        .await
        .unwrap();
    let third = create_customer(&base, "Third").await;
    next_line(&lines, |l| l.contains("customer.created")).await;
    next_line(&lines, |l| l.contains("customer.created")).await;
    let ids: Vec<String> = receiver
        .wait_for(3)
        .await
        .iter()
        .map(|r| r.body["data"]["object"]["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, [id(&first), id(&second), id(&third)], "each once, in order; {} never", id(&before));

    // Ctrl-C: a clean exit, and nothing left on the server.
    let pid = listen.id().to_string();
    assert!(std::process::Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    let status = listen.wait().unwrap();
    assert!(status.success(), "listen exits cleanly on SIGINT: {status:?}");
    let endpoints: Value = reqwest::Client::new()
        .get(format!("{base}/v1/webhook_endpoints"))
        .bearer_auth(DEMO_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(endpoints["data"], json!([]), "listen creates no endpoint");
    server.kill().unwrap();
    server.wait().unwrap();
    let _ = std::fs::remove_dir_all(&data);
}

/// A delivery deleted while it is in flight (a reset of the test data, or its endpoint
/// deleted) is done: the attempt's record finds it gone and drops the result quietly,
/// with no error logged, no attempt left behind and nothing sent again.
#[tokio::test]
async fn a_delivery_deleted_while_in_flight_is_dropped_quietly() {
    use casapay::service::delivery::{Deliveries, LeaseConfig};
    use casapay::webhooks::sender::Sender;
    let log = crate::errors::error_log();
    let app = TestApp::start().await;
    let receiver = Receiver::start().await;
    let deliveries = Deliveries::new(
        app.store.clone(),
        app.clock.clone(),
        Sender::new(crate::support::LOOPBACK_EGRESS, std::time::Duration::from_secs(2)),
        LeaseConfig { per_endpoint: 10, per_account: 10, lease_seconds: 60 },
    );
    // A success and a failure are recorded on different paths (PostgreSQL records a
    // success in one statement).
    for (deletion, answer) in
        [("reset", Mode::Ok), ("reset", Mode::Status(500)), ("endpoint", Mode::Ok), ("endpoint", Mode::Status(500))]
    {
        let case = format!("{deletion}, receiver answering {answer:?}");
        receiver.set_mode(answer);
        let endpoint = app
            .post(
                "/v1/webhook_endpoints",
                DEMO_KEY,
                json!({"url": receiver.url, "enabled_events": ["customer.created"]}),
            )
            .await
            .ok();
        app.customer(DEMO_KEY, 10).await;
        let mut jobs = deliveries.lease(10).await.expect("lease");
        assert_eq!(jobs.len(), 1, "{case}");
        let job = jobs.pop().unwrap();
        let delivery = job.delivery.id.clone();
        if deletion == "reset" {
            app.post("/v1/test_helpers/reset", DEMO_KEY, json!({})).await.ok();
        } else {
            app.send(
                reqwest::Method::DELETE,
                &format!("/v1/webhook_endpoints/{}", id(&endpoint)),
                Some(DEMO_KEY),
                None,
            )
            .await
            .ok();
        }
        let sent = receiver.received().len();
        deliveries.attempt(job).await.unwrap_or_else(|e| panic!("{case}: {e}"));
        assert_eq!(receiver.received().len(), sent + 1, "{case}: the attempt was made");
        let logged = String::from_utf8_lossy(&log.lock().unwrap()).into_owned();
        assert!(!logged.contains(&delivery), "{case}: nothing to log as an error:\n{logged}");
        let mut conn = app.store.acquire().await.unwrap();
        let left: i64 = sqlx::Row::get(
            &sqlx::query("SELECT COUNT(*) AS n FROM webhook_attempts WHERE delivery_id = $1")
                .bind(&delivery)
                .fetch_one(&mut *conn)
                .await
                .unwrap(),
            "n",
        );
        assert_eq!(left, 0, "{case}: no attempt recorded for a deleted delivery");
        drop(conn);
        assert!(deliveries.lease(10).await.unwrap().is_empty(), "{case}: nothing to send again");
        // The next case starts with no endpoint.
        if deletion == "reset" {
            app.send(
                reqwest::Method::DELETE,
                &format!("/v1/webhook_endpoints/{}", id(&endpoint)),
                Some(DEMO_KEY),
                None,
            )
            .await
            .ok();
        }
    }
}
