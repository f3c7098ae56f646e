//! `GET /metrics` (SPEC section 8), read with a Prometheus text-format parser: each
//! series moves when its cause happens, no label carries an account, key, id or raw
//! path, and the number of series stays flat however many accounts and ids there are.
//! Also the one log line per request, in text and (from the binary) in JSON.

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use casapay::clock::Clock;
use casapay::jobs::metrics::MetricsSampler;
use casapay::metrics::Metrics;
use casapay::{ApiConfig, AppState};
use openmetrics_parser::prometheus::parse_prometheus;
use openmetrics_parser::{MetricsExposition, PrometheusType, PrometheusValue};
use reqwest::Method;
use serde_json::{Value, json};

use crate::receiver::{Mode, Receiver};
use crate::support::{DEMO_KEY, TestApp, TestDb, id, serve_command};

const DAY: i64 = 86_400;
/// The quickstart's due date: exactly the end of the 30-day waiting period.
const DUE: i64 = 1_708_732_800;

/// One scrape, parsed.
struct Scrape(MetricsExposition<PrometheusType, PrometheusValue>);

impl Scrape {
    fn parse(text: &str) -> Scrape {
        Scrape(parse_prometheus(text).unwrap_or_else(|e| panic!("not Prometheus text ({e:?}):\n{text}")))
    }

    /// The samples of `family` whose labels include `labels`.
    fn matching<'a>(
        &'a self,
        family: &str,
        labels: &'a [(&'a str, &'a str)],
    ) -> impl Iterator<Item = &'a PrometheusValue> + 'a {
        self.0.families.get(family).into_iter().flat_map(move |f| {
            f.iter_samples()
                .filter(move |s| {
                    let set = s.get_labelset().expect("labels");
                    labels.iter().all(|(k, v)| set.get_label_value(k) == Some(*v))
                })
                .map(|s| &s.value)
        })
    }

    /// The value of a counter or gauge (the sum of the matching samples; 0 if none).
    fn value(&self, family: &str, labels: &[(&str, &str)]) -> f64 {
        self.matching(family, labels)
            .map(|v| match v {
                PrometheusValue::Counter(c) => c.value.as_f64(),
                PrometheusValue::Gauge(n) | PrometheusValue::Unknown(n) => n.as_f64(),
                other => panic!("{family} is not a counter or gauge: {other:?}"),
            })
            .sum()
    }

    /// How many observations a histogram has.
    fn observations(&self, family: &str, labels: &[(&str, &str)]) -> u64 {
        self.matching(family, labels)
            .map(|v| match v {
                PrometheusValue::Histogram(h) => h.count.expect("a _count"),
                other => panic!("{family} is not a histogram: {other:?}"),
            })
            .sum()
    }

    /// Every series, as `family{label=value,...}`.
    fn series(&self) -> BTreeSet<String> {
        let mut all = BTreeSet::new();
        for (name, family) in &self.0.families {
            for s in family.iter_samples() {
                let labels: Vec<String> = s.get_labelset().unwrap().iter().map(|(k, v)| format!("{k}={v}")).collect();
                all.insert(format!("{name}{{{}}}", labels.join(",")));
            }
        }
        all
    }
}

async fn scrape_at(client: &reqwest::Client, url: &str) -> Scrape {
    let r = client.get(url).send().await.expect("scrape");
    assert_eq!(r.status(), 200, "{url}");
    let content_type = r.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
    Scrape::parse(&r.text().await.unwrap())
}

async fn scrape(app: &TestApp) -> Scrape {
    scrape_at(&app.client, &app.url("/metrics")).await
}

fn sampler(app: &TestApp) -> MetricsSampler {
    MetricsSampler::new(app.store.clone(), app.clock.clone(), Duration::from_secs(5))
}

const REQUESTS: &str = "casapay_http_requests_total";
const DURATION: &str = "casapay_http_request_duration_seconds";

#[tokio::test]
async fn requests_are_counted_by_method_route_template_and_status() {
    let app = TestApp::start().await;
    let before = scrape(&app).await;
    let customer = app.customer(DEMO_KEY, 70).await;
    let path = format!("/v1/customers/{}", id(&customer));
    app.get(&path, DEMO_KEY).await.ok();
    app.get(&path, DEMO_KEY).await.ok();
    app.get("/v1/customers/cus_missing", DEMO_KEY).await.err(404, "invalid_request_error", Some("resource_missing"));
    app.get(&path, "sk_test_not_a_key_at_all").await.err(401, "authentication_error", None);
    let r = app.send(Method::GET, "/v1/nowhere/cus_123", Some(DEMO_KEY), None).await;
    assert_eq!(r.status, 404);
    let r = app.send(Method::DELETE, &path, Some(DEMO_KEY), None).await;
    assert_eq!(r.status, 405, "{}", r.text);
    let after = scrape(&app).await;

    let moved = |labels: &[(&str, &str)]| after.value(REQUESTS, labels) - before.value(REQUESTS, labels);
    let retrieve = [("method", "GET"), ("route", "/v1/customers/{id}")];
    assert_eq!(moved(&[retrieve[0], retrieve[1], ("status", "200")]), 2.0);
    assert_eq!(moved(&[retrieve[0], retrieve[1], ("status", "404")]), 1.0);
    assert_eq!(moved(&[retrieve[0], retrieve[1], ("status", "401")]), 1.0);
    assert_eq!(moved(&[("method", "POST"), ("route", "/v1/customers"), ("status", "200")]), 1.0);
    assert_eq!(moved(&[("method", "GET"), ("route", "unmatched"), ("status", "404")]), 1.0);
    // A method the route does not take: the route is known all the same.
    assert_eq!(moved(&[("method", "DELETE"), ("route", "/v1/customers/{id}"), ("status", "405")]), 1.0);
    // The first scrape was counted too, once answered.
    assert_eq!(moved(&[("route", "/metrics"), ("status", "200")]), 1.0);
    let timed = after.observations(DURATION, &retrieve) - before.observations(DURATION, &retrieve);
    assert_eq!(timed, 4, "every answer of the route is timed");

    // Nothing of the requests themselves is in a label.
    for series in after.series() {
        for secret in ["cus_", "nowhere", "sk_test", "acct_", "req_"] {
            assert!(!series.contains(secret), "{series} names {secret}");
        }
    }
    let pool = after.value("casapay_db_pool_connections", &[("state", "in_use")])
        + after.value("casapay_db_pool_connections", &[("state", "idle")]);
    assert!(pool >= 1.0, "the pool has the connections the requests used: {pool}");
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(after.value("casapay_build_info", &[("version", version)]), 1.0);
}

/// The requests of one account: creates, reads, misses, a replay, an unknown path,
/// a bad key, each with fresh ids.
async fn traffic(app: &TestApp, key: &str) {
    let customer = app.customer(key, 70).await;
    app.get(&format!("/v1/customers/{}", id(&customer)), key).await.ok();
    app.get("/v1/customers?limit=2", key).await.ok();
    let missing = format!("/v1/customers/cus_{}", casapay::ids::random_secret(14));
    app.get(&missing, key).await.err(404, "invalid_request_error", Some("resource_missing"));
    let unknown = format!("/v1/{}", casapay::ids::random_secret(10));
    assert_eq!(app.send(Method::GET, &unknown, Some(key), None).await.status, 404);
    let wrong_key = format!("sk_test_{}", casapay::ids::random_secret(24));
    app.get("/v1/customers", &wrong_key).await.err(401, "authentication_error", None);
    let idempotency_key = casapay::ids::random_secret(16);
    for _ in 0..2 {
        let r = app
            .client
            .post(app.url("/v1/customers"))
            .bearer_auth(key)
            .header("idempotency-key", &idempotency_key)
            .form(&[("name", "Replayed"), ("score", "65")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
}

#[tokio::test]
async fn the_number_of_series_stays_flat_as_accounts_and_ids_grow() {
    let app = TestApp::start().await;
    traffic(&app, DEMO_KEY).await;
    scrape(&app).await;
    let first = scrape(&app).await.series();
    for _ in 0..12 {
        let account = app.new_account().await;
        traffic(&app, &account.test_key).await;
    }
    let later = scrape(&app).await.series();
    let new: Vec<&String> = later.difference(&first).collect();
    assert!(new.is_empty(), "{} series at first, then new ones: {new:?}", first.len());
    assert_eq!(first.len(), later.len());
}

/// A claim of 500 EUR: two fit in the month's cover.
async fn claim(app: &TestApp, grt: &str, invoice: &str, reason: &str) -> Value {
    let body = json!({
        "guarantee": grt, "amount": 50_000, "currency": "eur", "reason": reason,
        "evidence": {"invoice_id": invoice, "due_date": DUE}
    });
    app.post("/v1/claims", DEMO_KEY, body).await.ok()
}

const REVIEWED: &str = "casapay_claims_reviewed_total";
const BACKLOG: &str = "casapay_engine_backlog";
const QUEUE: &str = "casapay_review_queue";
const OVERDUE: &str = "casapay_review_overdue";

/// On PostgreSQL the sampler gives its connection back for the next use without sqlx's
/// ping (`Store::run`), as requests do; SQLite keeps none.
#[tokio::test]
async fn a_sample_keeps_its_connection_for_the_next_use() {
    let app = TestApp::start().await;
    let kept = if app.store.backend() == casapay::store::Backend::Postgres { 1 } else { 0 };
    app.store.pool(); // the kept connections go back to sqlx's pool
    sampler(&app).run_once().await.unwrap();
    assert_eq!(app.store.kept_connections(), kept);
}

#[tokio::test]
async fn reviews_move_their_counter_and_the_backlog_and_queue_gauges_move_with_the_sampler() {
    let app = TestApp::start().await;
    let sampler = sampler(&app);
    let op = app.operator_key().await;
    let (_, g) = app.demo_guarantee().await;
    app.clock.set(DUE + DAY);
    claim(&app, &id(&g), "rent", "missed_payment").await;
    let lease = claim(&app, &id(&g), "lease", "lease_break").await;

    // Until the sampler runs, the gauges keep what it read last.
    let s = scrape(&app).await;
    assert_eq!(s.value(BACKLOG, &[("queue", "review")]), 0.0);
    sampler.run_once().await.unwrap();
    let s = scrape(&app).await;
    assert_eq!(s.value(BACKLOG, &[("queue", "review")]), 2.0);
    assert_eq!(s.value(BACKLOG, &[("queue", "payouts")]), 0.0);
    assert_eq!(s.value(REVIEWED, &[]), 0.0);

    // The engine's review alone: one approved (its payout waits), one for a person.
    let reviewed = casapay::service::review::review_due(&app.store, None, app.clock.now(), 10).await.unwrap();
    assert_eq!(reviewed, 2);
    sampler.run_once().await.unwrap();
    let s = scrape(&app).await;
    assert_eq!(s.value(REVIEWED, &[("outcome", "approved")]), 1.0);
    assert_eq!(s.value(REVIEWED, &[("outcome", "referred")]), 1.0);
    assert_eq!(s.value(REVIEWED, &[("outcome", "denied")]), 0.0);
    assert_eq!(s.value(BACKLOG, &[("queue", "review")]), 0.0);
    assert_eq!(s.value(BACKLOG, &[("queue", "payouts")]), 1.0);
    assert_eq!(s.value(QUEUE, &[("awaiting", "operator")]), 1.0);
    assert_eq!(s.value(QUEUE, &[("awaiting", "second_approval")]), 0.0);
    assert_eq!(s.value(OVERDUE, &[]), 0.0);

    // The payout is sent; five business days on, the referred claim is overdue.
    app.settle().await;
    app.clock.advance(8 * DAY);
    sampler.run_once().await.unwrap();
    let s = scrape(&app).await;
    assert_eq!(s.value(BACKLOG, &[("queue", "payouts")]), 0.0);
    assert_eq!(s.value(QUEUE, &[("awaiting", "operator")]), 1.0);
    assert_eq!(s.value(OVERDUE, &[]), 1.0);

    // An operator's decision counts too, and empties the queue.
    let deny = format!("/v1/claims/{}/deny", id(&lease));
    app.post(&deny, &op, json!({"denial_reason": "below_deductible"})).await.ok();
    sampler.run_once().await.unwrap();
    let s = scrape(&app).await;
    assert_eq!(s.value(REVIEWED, &[("outcome", "denied")]), 1.0);
    assert_eq!(s.value(QUEUE, &[("awaiting", "operator")]), 0.0);
    assert_eq!(s.value(OVERDUE, &[]), 0.0);
    // A refused decision (the claim is decided already) counts nothing.
    app.post(&deny, &op, json!({"denial_reason": "below_deductible"})).await.err(
        400,
        "invalid_request_error",
        Some("claim_not_under_review"),
    );
    assert_eq!(scrape(&app).await.value(REVIEWED, &[("outcome", "denied")]), 1.0);
}

const ATTEMPTS: &str = "casapay_webhook_attempts_total";
const PENDING: &str = "casapay_webhook_pending";

#[tokio::test]
async fn webhook_attempts_are_counted_by_outcome_and_pending_deliveries_by_the_sampler() {
    let app = TestApp::start().await;
    let sampler = sampler(&app);
    let receiver = Receiver::start().await;
    receiver.set_mode(Mode::Status(500));
    let body = json!({"url": receiver.url, "enabled_events": ["customer.created"]});
    app.post("/v1/webhook_endpoints", DEMO_KEY, body).await.ok();
    app.customer(DEMO_KEY, 70).await;
    sampler.run_once().await.unwrap();
    assert_eq!(scrape(&app).await.value(PENDING, &[]), 1.0);

    // A failed delivery: counted, and still pending (it is retried).
    assert_eq!(app.deliver().await, 1);
    sampler.run_once().await.unwrap();
    let s = scrape(&app).await;
    assert_eq!(s.value(ATTEMPTS, &[("outcome", "rejected")]), 1.0);
    assert_eq!(s.value(ATTEMPTS, &[("outcome", "delivered")]), 0.0);
    assert_eq!(s.value(PENDING, &[]), 1.0);

    // Its retry goes through.
    receiver.set_mode(Mode::Ok);
    app.clock.advance(3_600);
    assert_eq!(app.deliver().await, 1);
    sampler.run_once().await.unwrap();
    let s = scrape(&app).await;
    assert_eq!(s.value(ATTEMPTS, &[("outcome", "delivered")]), 1.0);
    assert_eq!(s.value(PENDING, &[]), 0.0);

    // An endpoint nothing listens at: no answer at all.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let account = app.new_account().await;
    let body = json!({"url": format!("http://{closed}/hook"), "enabled_events": ["customer.created"]});
    app.post("/v1/webhook_endpoints", &account.test_key, body).await.ok();
    app.customer(&account.test_key, 70).await;
    assert_eq!(app.deliver().await, 1);
    assert_eq!(scrape(&app).await.value(ATTEMPTS, &[("outcome", "no_response")]), 1.0);
}

#[tokio::test]
async fn metrics_can_be_off_or_served_on_their_own_address() {
    let app = TestApp::start().await;
    let client = &app.client;
    let serve = |state: AppState| async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(casapay::serve(listener, state, std::future::pending()));
        base
    };

    // Off: no /metrics (the API's own 404), nothing recorded.
    let off = app.store.clone().with_metrics(Metrics::off());
    let base = serve(AppState::new(off.clone(), app.clock.clone(), ApiConfig::default())).await;
    let r = client.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.text().await.unwrap().contains("Unrecognized request URL"));
    assert!(off.metrics().render().is_none());

    // Their own address: there, and not on the API's.
    let store = app.store.clone().with_metrics(Metrics::new());
    let config = ApiConfig { metrics_route: false, ..ApiConfig::default() };
    let base = serve(AppState::new(store.clone(), app.clock.clone(), config.clone())).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics_base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(casapay::app::metrics::serve(listener, store, Arc::new(config), std::future::pending()));
    assert_eq!(client.get(format!("{base}/metrics")).send().await.unwrap().status(), 404);
    assert_eq!(client.get(format!("{base}/healthz")).send().await.unwrap().status(), 200);
    let s = scrape_at(client, &format!("{metrics_base}/metrics")).await;
    assert_eq!(s.value(REQUESTS, &[("route", "/healthz"), ("status", "200")]), 1.0);
    assert_eq!(s.value(REQUESTS, &[("route", "/metrics")]), 0.0, "scrapes there are not API requests");
    assert_eq!(client.get(format!("{metrics_base}/v1/customers")).send().await.unwrap().status(), 404);
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// What a `casapay serve` run in `format` logged for two requests of a new account:
/// a list of its customers and a path no route takes (with a key-like segment).
struct Logged {
    log: String,
    account_id: String,
    key: String,
    listed: String,
    unmatched: String,
}

/// Runs the binary with `env`, makes the two requests (and `then` with the client
/// and the API's address), stops it with SIGTERM and returns its standard error.
async fn logged_run(env: &[(&str, String)], then: impl AsyncFnOnce(&reqwest::Client, &str)) -> Logged {
    let db = TestDb::create().await;
    let out = Command::new(env!("CARGO_BIN_EXE_casapay"))
        .args(["accounts", "create", "--name", "Logs"])
        .env("DATABASE_URL", &db.url)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let account: Value = serde_json::from_slice(&out.stdout).unwrap();
    let key = account["test_key"].as_str().unwrap().to_owned();
    let port = free_port();
    let mut command = serve_command(&["--no-engine", "--listen", &format!("127.0.0.1:{port}")]);
    command.env("DATABASE_URL", &db.url).env("RUST_LOG", "info").stderr(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    let child = command.spawn().unwrap();
    let client = reqwest::Client::new();
    let api = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let r = loop {
        match client.get(format!("{api}/v1/customers")).bearer_auth(&key).send().await {
            Ok(r) => break r,
            Err(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(e) => panic!("server did not start: {e}"),
        }
    };
    assert_eq!(r.status(), 200);
    let listed = r.headers()["request-id"].to_str().unwrap().to_owned();
    let r = client.get(format!("{api}/v1/{key}/x")).bearer_auth(&key).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let unmatched = r.headers()["request-id"].to_str().unwrap().to_owned();
    then(&client, &api).await;
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    let out = tokio::task::spawn_blocking(move || child.wait_with_output()).await.unwrap().unwrap();
    assert!(out.status.success(), "clean exit: {}", out.status);
    let log = String::from_utf8(out.stderr).unwrap();
    assert!(!log.contains(&key), "the key is never logged:\n{log}");
    Logged { log, account_id: account["id"].as_str().unwrap().to_owned(), key, listed, unmatched }
}

#[tokio::test]
async fn each_request_is_logged_once_with_its_route_template_account_status_and_latency() {
    let run = logged_run(&[], async |_, _| {}).await;
    let lines: Vec<&str> = run.log.lines().filter(|l| l.contains(&run.listed)).collect();
    assert_eq!(lines.len(), 1, "one line per request:\n{}", run.log);
    let line = lines[0];
    for part in [
        " INFO request{",
        "method=GET",
        "route=/v1/customers ",
        &format!("account_id={}", run.account_id),
        "request finished",
        "status=200",
        "elapsed_us=",
    ] {
        assert!(line.contains(part), "{part:?} missing from {line}");
    }
    let lines: Vec<&str> = run.log.lines().filter(|l| l.contains(&run.unmatched)).collect();
    assert_eq!(lines.len(), 1, "{}", run.log);
    assert!(lines[0].contains("route=unmatched") && lines[0].contains("status=404"), "{}", lines[0]);
    // The raw path is not logged: it held the key here.
    assert!(!run.log.contains(&format!("/v1/{}", run.key)), "{}", run.log);
}

/// `CASAPAY_LOG_FORMAT=json`: one JSON object per line; `CASAPAY_METRICS_LISTEN` moves
/// /metrics to its own address.
#[tokio::test]
async fn serve_logs_requests_as_json_and_serves_metrics_on_the_address_given() {
    let metrics_port = free_port();
    let env =
        [("CASAPAY_LOG_FORMAT", "json".to_owned()), ("CASAPAY_METRICS_LISTEN", format!("127.0.0.1:{metrics_port}"))];
    let run = logged_run(&env, async |client, api| {
        assert_eq!(client.get(format!("{api}/metrics")).send().await.unwrap().status(), 404);
        let s = scrape_at(client, &format!("http://127.0.0.1:{metrics_port}/metrics")).await;
        assert_eq!(s.value(REQUESTS, &[("method", "GET"), ("route", "/v1/customers"), ("status", "200")]), 1.0);
        // The key-like path and /metrics on the API's address: neither is a route there.
        assert_eq!(s.value(REQUESTS, &[("method", "GET"), ("route", "unmatched"), ("status", "404")]), 2.0);
    })
    .await;
    let lines: Vec<Value> = run
        .log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .filter(|l: &Value| l["span"]["request_id"] == run.listed.as_str())
        .collect();
    assert_eq!(lines.len(), 1, "one line per request:\n{}", run.log);
    let line = &lines[0];
    assert_eq!(line["level"], "INFO");
    assert_eq!(line["fields"]["message"], "request finished");
    assert_eq!(line["fields"]["status"], 200);
    assert!(line["fields"]["elapsed_us"].is_u64(), "{line}");
    assert_eq!(line["span"]["route"], "/v1/customers");
    assert_eq!(line["span"]["method"], "GET");
    assert_eq!(line["span"]["account_id"], run.account_id.as_str());
}
