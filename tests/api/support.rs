//! A real server on port 0 against a fresh database, and a small HTTP client for it.

use std::sync::Arc;
use std::time::Duration;

use casapay::api::rate_limit::RateLimitConfig;
use casapay::clock::{Clock, ManualClock};
use casapay::jobs::dispatcher::{Dispatcher, DispatcherConfig};
use casapay::jobs::engine::{Engine, EngineConfig};
use casapay::service::accounts::{self, CreatedAccount};
use casapay::service::rail::InstantRail;
use casapay::store::{Store, StoreOptions};
use casapay::webhooks::ssrf::EgressPolicy;
use casapay::{ApiConfig, AppState};
use reqwest::{Method, StatusCode, header::HeaderMap};
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// `casapay serve` with `args` (after `serve`), detached from the terminal: stdin,
/// stdout and stderr are null, so a test only sees what it asks over HTTP.
pub fn serve_command(args: &[&str]) -> std::process::Command {
    use std::process::Stdio;
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_casapay"));
    command.arg("serve").args(args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    command
}

/// An engine's settings: look for work every `poll_ms`, `batch_size` objects a step,
/// `workers` steps at once; payouts as by default.
pub fn engine_config(poll_ms: u64, batch_size: usize, workers: usize) -> EngineConfig {
    EngineConfig { poll_interval: Duration::from_millis(poll_ms), batch_size, workers, ..EngineConfig::default() }
}

/// The tests' receivers listen on loopback over http.
pub const LOOPBACK_EGRESS: EgressPolicy = EgressPolicy { allow_http: true, allow_private: true };

/// A dispatcher for tests: short timeout, otherwise the defaults.
pub fn dispatcher_config(egress: EgressPolicy) -> DispatcherConfig {
    DispatcherConfig {
        timeout: Duration::from_secs(2),
        poll_interval: Duration::from_millis(20),
        egress,
        ..DispatcherConfig::default()
    }
}

pub const DEMO_KEY: &str = accounts::DEMO_TEST_KEY;
/// The quickstart's `created`: tests start the clock there so the docs' dates work.
pub const DOCS_NOW: i64 = 1_706_140_800;

/// Which database the suite runs on: `CASAPAY_TEST_BACKEND=postgres|sqlite`.
fn backend() -> String {
    std::env::var("CASAPAY_TEST_BACKEND").unwrap_or_else(|_| "postgres".into())
}

fn pg_admin_url() -> String {
    std::env::var("CASAPAY_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

fn random_suffix() -> String {
    casapay::ids::random_secret(12).to_ascii_lowercase()
}

/// A database made for one test and dropped after it.
pub struct TestDb {
    pub url: String,
    pg_name: Option<String>,
    sqlite_dir: Option<std::path::PathBuf>,
}

impl TestDb {
    pub async fn create() -> TestDb {
        match backend().as_str() {
            "sqlite" => {
                let dir = std::env::temp_dir().join(format!("casapay_t_{}", random_suffix()));
                std::fs::create_dir_all(&dir).expect("temp dir");
                let url = format!("sqlite://{}?mode=rwc", dir.join("casapay.db").display());
                TestDb { url, pg_name: None, sqlite_dir: Some(dir) }
            }
            _ => {
                let name = format!("casapay_t_{}", random_suffix());
                let admin = pg_admin_url();
                let mut conn = connect_admin(&admin).await;
                sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.expect("create test database");
                let base = admin.rsplit_once('/').map(|(b, _)| b.to_owned()).unwrap_or(admin);
                TestDb { url: format!("{base}/{name}"), pg_name: Some(name), sqlite_dir: None }
            }
        }
    }
}

async fn connect_admin(url: &str) -> sqlx::PgConnection {
    use sqlx::Connection;
    sqlx::PgConnection::connect(url).await.unwrap_or_else(|e| {
        panic!("PostgreSQL is required for the tests at {url} ({e}); set CASAPAY_TEST_PG_URL or CASAPAY_TEST_BACKEND=sqlite")
    })
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(name) = self.pg_name.take() {
            let admin = pg_admin_url();
            // Drop runs inside the test's runtime: do the async cleanup on a thread of its own.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                rt.block_on(async {
                    let mut conn = connect_admin(&admin).await;
                    let _ =
                        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut conn).await;
                });
            })
            .join();
        }
        if let Some(dir) = self.sqlite_dir.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

pub async fn open_store(url: &str) -> Store {
    let store = Store::connect(&StoreOptions::new(url)).await.expect("connect store");
    store.migrate().await.expect("migrate");
    store
}

/// A running server with its own database and clock.
pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub clock: Arc<ManualClock>,
    pub store: Store,
    /// The claims engine, not running: tests step it with `run_once` / `run_until_idle`.
    pub engine: Engine,
    /// The webhook dispatcher, not running: tests step it with `run_once`.
    pub dispatcher: Dispatcher,
    /// The database's URL, for a second store (another "replica") on the same data.
    pub db_url: String,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
    /// Stops the endpoint listener when the app goes, before its database does.
    _listening: tokio_util::sync::DropGuard,
    // Declared last: dropped after the server has stopped.
    _db: TestDb,
}

impl TestApp {
    /// A server with the default settings, but no rate limits (tests fire bursts).
    pub async fn start() -> TestApp {
        Self::start_with(ApiConfig { rate_limits: RateLimitConfig::OFF, ..ApiConfig::default() }).await
    }

    pub async fn start_with(config: ApiConfig) -> TestApp {
        Self::start_full(config, LOOPBACK_EGRESS).await
    }

    /// A server whose webhook URLs must pass `egress` (the production default refuses
    /// http and loopback).
    pub async fn start_with_egress(egress: EgressPolicy) -> TestApp {
        Self::start_full(ApiConfig { rate_limits: RateLimitConfig::OFF, ..ApiConfig::default() }, egress).await
    }

    async fn start_full(config: ApiConfig, egress: EgressPolicy) -> TestApp {
        let db = TestDb::create().await;
        let store = open_store(&db.url).await;
        let clock = ManualClock::new(DOCS_NOW);
        accounts::seed_demo(&store, DOCS_NOW).await.expect("seed demo");
        let state = AppState::new(store.clone(), clock.clone(), config).with_egress(egress);
        let dispatcher = Dispatcher::new(store.clone(), clock.clone(), dispatcher_config(egress));
        let engine = Engine::new(store.clone(), clock.clone(), Arc::new(InstantRail), engine_config(20, 10, 1));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = oneshot::channel::<()>();
        // The endpoint cache as `casapay serve` runs it; its listener stops with the app.
        let listening = tokio_util::sync::CancellationToken::new();
        let _ = casapay::jobs::endpoint_listener::start(&store, &db.url, listening.clone());
        let server = tokio::spawn(casapay::serve(listener, state, async {
            let _ = rx.await;
        }));
        let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
        TestApp {
            base,
            client,
            clock,
            store,
            engine,
            dispatcher,
            db_url: db.url.clone(),
            shutdown: Some(tx),
            server: Some(server),
            _listening: listening.drop_guard(),
            _db: db,
        }
    }

    /// Stops the server and waits until it has finished the requests in flight.
    pub async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("server task").expect("server result");
        }
    }

    /// Sends every webhook delivery that is due now; returns how many attempts.
    pub async fn deliver(&self) -> usize {
        self.dispatcher.run_once().await.expect("dispatcher step")
    }

    /// Steps the engine until it has nothing left to do.
    pub async fn settle(&self) -> casapay::jobs::engine::StepReport {
        self.engine.run_until_idle().await.expect("engine step")
    }

    pub async fn new_account(&self) -> CreatedAccount {
        accounts::create_account(&self.store, "Test platform", self.clock.now()).await.expect("account")
    }

    pub async fn operator_key(&self) -> String {
        accounts::create_operator_key(&self.store, self.clock.now()).await.expect("operator key")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Sends a JSON body (or none) with a Bearer key; returns status, body and headers.
    pub async fn send(&self, method: Method, path: &str, key: Option<&str>, body: Option<Value>) -> Resp {
        let mut req = self.client.request(method.clone(), self.url(path));
        if let Some(key) = key {
            req = req.bearer_auth(key);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        Resp::from(&method, req.send().await.expect("request")).await
    }

    pub async fn post(&self, path: &str, key: &str, body: Value) -> Resp {
        self.send(Method::POST, path, Some(key), Some(body)).await
    }

    pub async fn get(&self, path: &str, key: &str) -> Resp {
        self.send(Method::GET, path, Some(key), None).await
    }

    /// A raw request, for malformed input.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Resp {
        let mut req = self.client.request(method.clone(), self.url(path)).body(body);
        if let Some(key) = key {
            req = req.bearer_auth(key);
        }
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        Resp::from(&method, req.send().await.expect("request")).await
    }

    // Fixtures -----------------------------------------------------------------

    /// The quickstart's policy.
    pub async fn docs_policy(&self, key: &str) -> Value {
        let r = self
            .post(
                "/v1/guarantee_policies",
                key,
                serde_json::json!({
                    "name": "Standard Rent Guarantee",
                    "coverage_percentage": 100,
                    "max_coverage_months": 12,
                    "waiting_period_days": 30,
                    "eligible_score_minimum": 60
                }),
            )
            .await;
        r.ok()
    }

    pub async fn customer(&self, key: &str, score: i64) -> Value {
        self.post("/v1/customers", key, serde_json::json!({"name": "Tenant", "score": score})).await.ok()
    }

    /// A guarantee on the quickstart's terms for `tenant`.
    pub async fn docs_guarantee(&self, key: &str, policy: &str, tenant: &str) -> Value {
        self.docs_guarantee_request(key, policy, tenant).await.ok()
    }

    /// The request for `docs_guarantee`, answered however it is.
    pub async fn docs_guarantee_request(&self, key: &str, policy: &str, tenant: &str) -> Resp {
        self.post(
            "/v1/guarantees",
            key,
            serde_json::json!({
                "policy": policy,
                "tenant": tenant,
                "coverage_amount": 120000,
                "currency": "eur",
                "start_date": 1706140800,
                "end_date": 1737676800
            }),
        )
        .await
    }

    /// The demo account's policy and a guarantee for the demo customer.
    pub async fn demo_guarantee(&self) -> (Value, Value) {
        let policy = self.docs_policy(DEMO_KEY).await;
        let g = self.docs_guarantee(DEMO_KEY, policy["id"].as_str().unwrap(), "cus_123456789").await;
        (policy, g)
    }

    /// The demo guarantee's id, the clock 40 days past `DOCS_NOW`: a claim for rent due
    /// 30 days after `DOCS_NOW` may be filed on it.
    pub async fn claimable_demo_guarantee(&self) -> String {
        let (_, g) = self.demo_guarantee().await;
        self.clock.set(DOCS_NOW + 40 * 86_400);
        id(&g)
    }

    /// A server whose requests time out after a second, and its demo guarantee locked
    /// by another writer until the transaction returned is dropped.
    pub async fn with_demo_guarantee_locked() -> (TestApp, Value, casapay::store::Tx) {
        let app = TestApp::start_with(ApiConfig {
            request_timeout: Duration::from_secs(1),
            rate_limits: RateLimitConfig::OFF,
            ..ApiConfig::default()
        })
        .await;
        let (_, g) = app.demo_guarantee().await;
        let scope = casapay::store::Scope { account_id: "acct_demo".into(), livemode: false };
        let mut tx = app.store.begin().await.unwrap();
        casapay::store::guarantees::get_for_update(&mut tx, &scope, &id(&g)).await.unwrap().unwrap();
        (app, g, tx)
    }

    pub fn claim_body(guarantee: &str, invoice: &str, due_date: i64) -> Value {
        serde_json::json!({
            "guarantee": guarantee,
            "amount": 120000,
            "currency": "eur",
            "reason": "missed_payment",
            "evidence": {"invoice_id": invoice, "due_date": due_date}
        })
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

/// A response, read whole.
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Resp {
    /// The answer to a request of `method` sent by hand, checked as `send`'s are.
    pub async fn from_response(method: &Method, r: reqwest::Response) -> Resp {
        Self::from(method, r).await
    }

    /// Reads the answer whole, and checks it against the OpenAPI document
    /// (`contract::check`).
    async fn from(method: &Method, r: reqwest::Response) -> Resp {
        let status = r.status();
        let headers = r.headers().clone();
        let path = r.url().path().to_owned();
        let text = r.text().await.unwrap_or_default();
        crate::contract::check(method.as_str(), &path, status.as_u16(), &text);
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp { status, headers, body, text }
    }

    /// The body of a 200, or a panic that shows what came instead.
    #[track_caller]
    pub fn ok(self) -> Value {
        assert_eq!(self.status, StatusCode::OK, "expected 200, got {}: {}", self.status, self.text);
        self.body
    }

    /// Asserts an error response's status, type and code; returns the error object.
    #[track_caller]
    pub fn err(&self, status: u16, kind: &str, code: Option<&str>) -> &Value {
        assert_eq!(self.status.as_u16(), status, "status of {}", self.text);
        let e = &self.body["error"];
        assert_eq!(e["type"], kind, "type of {}", self.text);
        match code {
            Some(c) => assert_eq!(e["code"], c, "code of {}", self.text),
            None => assert!(e.get("code").is_none(), "no code expected in {}", self.text),
        }
        assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "message in {}", self.text);
        e
    }
}

pub fn id(v: &Value) -> String {
    v["id"].as_str().expect("object id").to_owned()
}

/// The error of a store write that is refused: a deferred write (`Tx::defer`) fails at
/// once on SQLite and at the transaction's next flush on PostgreSQL.
pub async fn refused_write(tx: &mut casapay::store::Tx, write: Result<(), sqlx::Error>) -> sqlx::Error {
    match write {
        Err(e) => e,
        Ok(()) => tx.flush().await.expect_err("the database refuses the write"),
    }
}
