//! The benchmark: the release server over HTTP against the raw-SQL ceiling, on
//! PostgreSQL and on SQLite. Run it with `bash scripts/bench` (which builds the release
//! binary first); see docs/performance.md for what it measures.
//!
//! Per backend: seed 1,000 policies, 1,000 tenants and 100,000 guarantees; start
//! `casapay serve` (release) on that data; deliver webhooks to a loopback receiver;
//! then, for four operations at 1, 8 and 32 connections, alternate turns of the
//! ceiling (the operation's SQL straight through the store layer in this process:
//! every statement the server runs for the request, without HTTP) and of the server
//! (the operation over HTTP with keep-alive); last, read the server's peak RSS.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use casapay::clock::{Clock, SystemClock};
use casapay::domain::claim::{ClaimReason, Evidence};
use casapay::domain::customer::Customer;
use casapay::domain::guarantee::{Guarantee, GuaranteeStatus};
use casapay::domain::metadata::Metadata;
use casapay::domain::money::{Amount, Currency};
use casapay::service::{self, Call, accounts, claims, guarantees, policies};
use casapay::store::{self, PageRequest, Scope, Store, StoreOptions};
use casapay::views::Render;
use serde_json::json;
use sqlx::Connection;

#[path = "shared/arrivals.rs"]
mod arrivals;
use arrivals::{Arrivals, receive};

const POLICIES: usize = 1_000;
const TENANTS: usize = 1_000;
const GUARANTEES: usize = 100_000;
const CONCURRENCY: [usize; 3] = [1, 8, 32];
/// Create claim last: the claims engine's reviews of a backlog it could not finish
/// within `DRAIN_LIMIT` then fall on no other operation's cells.
const OPS: [&str; 4] = ["create guarantee", "retrieve guarantee", "list guarantees", "create claim"];
/// How long a turn waits for the claims engine to catch up.
const DRAIN_LIMIT: Duration = Duration::from_secs(10);

/// A comma-separated list from the environment, or everything when unset.
fn selected<T: Copy + ToString>(var: &str, all: &[T]) -> Vec<T> {
    match std::env::var(var) {
        Ok(list) if !list.trim().is_empty() => {
            let wanted: Vec<String> = list.split(',').map(|s| s.trim().to_owned()).collect();
            all.iter().copied().filter(|x| wanted.contains(&x.to_string())).collect()
        }
        _ => all.to_vec(),
    }
}

/// True when a `BENCH_*` selection narrows the run: the results page is then left alone.
fn partial_run() -> bool {
    ["BENCH_BACKENDS", "BENCH_OPS", "BENCH_CONNS", "BENCH_WEBHOOKS"].iter().any(|v| std::env::var(v).is_ok())
}

/// Turns of ceiling and server per cell (BENCH_ROUNDS, default 5). A write's rate moves
/// by a third from one second to the next with the disk's fsync time: five short pairs
/// of turns give a steadier median than three long ones.
fn rounds() -> usize {
    std::env::var("BENCH_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(5).max(1)
}

fn duration() -> Duration {
    Duration::from_secs_f64(std::env::var("BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(1.2))
}

/// Everything the operations pick from.
struct Data {
    key: String,
    scope: Scope,
    policies: Vec<String>,
    tenants: Vec<String>,
    guarantees: Vec<String>,
    invoice: AtomicU64,
    now: i64,
}

impl Data {
    /// `n` and `n + from.len()` pick the same item, and no two numbers in between do
    /// (the multiplier is prime to 100,000 and to 1,000): a run's claims, numbered by one
    /// sequence, fall on a guarantee each until 100,000 have been filed. Even past that,
    /// a guarantee's month takes 100 of them (`coverage_amount` 100,000, claims of
    /// 1,000) before the per-month cap denies one: the engine's figures are of payouts.
    fn pick<'a>(&self, from: &'a [String], n: u64) -> &'a str {
        &from[(n.wrapping_mul(2_654_435_761) % from.len() as u64) as usize]
    }
}

#[derive(Clone, Copy, Default)]
struct Stats {
    /// Median over the rounds.
    per_second: f64,
    /// Median over the rounds of this turn's rate over the ceiling's turn just before it:
    /// each pair ran back to back, so a change in the machine's load falls on both.
    ratio: f64,
    /// Over every request of every round.
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
    /// Server CPU time (user + system) per request, in microseconds.
    cpu_us: f64,
    /// The load generator's (this process's) CPU time per request, in microseconds.
    client_cpu_us: f64,
}

/// One round of one cell: what `drive` measured.
struct Sample {
    latencies_ms: Vec<f64>,
    errors: u64,
    elapsed: Duration,
}

impl Sample {
    /// Requests per second over the turn.
    fn rate(&self) -> f64 {
        self.latencies_ms.len() as f64 / self.elapsed.as_secs_f64()
    }
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    match xs.len() {
        0 => 0.0,
        n if n % 2 == 1 => xs[n / 2],
        n => (xs[n / 2 - 1] + xs[n / 2]) / 2.0,
    }
}

fn stats(samples: &[Sample]) -> Stats {
    let mut latencies: Vec<f64> = samples.iter().flat_map(|s| s.latencies_ms.iter().copied()).collect();
    latencies.sort_by(f64::total_cmp);
    let at = |p: f64| latencies.get(((latencies.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or(0.0);
    Stats {
        per_second: median(samples.iter().map(Sample::rate).collect()),
        p50_ms: at(0.5),
        p99_ms: at(0.99),
        errors: samples.iter().map(|s| s.errors).sum(),
        ratio: 0.0,
        cpu_us: 0.0,
        client_cpu_us: 0.0,
    }
}

/// Each round's `served[i] / ceiling[i]`: a server turn over the ceiling turn just before it.
fn pair_ratios(served: &[Sample], ceiling: &[Sample]) -> Vec<f64> {
    served.iter().zip(ceiling).map(|(s, c)| s.rate() / c.rate().max(1e-9)).collect()
}

/// Runs `op` from `conc` tasks for the benchmark's duration; each call reports success.
/// `seq` numbers the calls across turns, so that each turn picks other guarantees than
/// the last (whose claims the engine may still be reviewing) instead of the same ones.
async fn drive<F, Fut>(conc: usize, seq: Arc<AtomicU64>, op: F) -> Sample
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let op = Arc::new(op);
    let started = Instant::now();
    let until = started + duration();
    let mut tasks = Vec::new();
    for _ in 0..conc {
        let (op, seq) = (op.clone(), seq.clone());
        tasks.push(tokio::spawn(async move {
            let (mut lat, mut errors) = (Vec::new(), 0u64);
            while Instant::now() < until {
                let n = seq.fetch_add(1, Ordering::Relaxed);
                let t = Instant::now();
                if op(n).await {
                    lat.push(t.elapsed().as_secs_f64() * 1000.0);
                } else {
                    errors += 1;
                }
            }
            (lat, errors)
        }));
    }
    let (mut all, mut errors) = (Vec::new(), 0);
    for t in tasks {
        let (lat, e) = t.await.unwrap();
        all.extend(lat);
        errors += e;
    }
    Sample { latencies_ms: all, errors, elapsed: started.elapsed() }
}

/// What a wait for the claims engine saw.
struct Drained {
    /// Claims it still had to review or pay when the wait ended.
    left: i64,
    /// Claims it finished per second during the wait, when it started with at least
    /// `RATE_BACKLOG` to do (a smaller backlog says more about the polling than the engine).
    rate: Option<f64>,
}

const RATE_BACKLOG: i64 = 500;

/// Refreshes the planner's statistics, as autovacuum would, when PostgreSQL's
/// autovacuum is off (as on the machine this was written on). Without them, the plans
/// PostgreSQL caches for prepared statements while a table is still empty stay in use
/// after it has grown: an update of one claim by id then scanned every claim of the
/// account (20-35 ms each, seen with auto_explain).
async fn analyze_if_no_autovacuum(store: &Store) {
    if store.backend() != store::Backend::Postgres {
        return;
    }
    let autovacuum: String = sqlx::query_scalar("SHOW autovacuum").fetch_one(store.pool()).await.unwrap();
    if autovacuum != "on" {
        sqlx::query("ANALYZE").execute(store.pool()).await.unwrap();
    }
}

/// Waits (up to `DRAIN_LIMIT`) until the server's claims engine has reviewed and paid
/// every claim filed so far, so that its work stays in the cell that caused it; then
/// stands in for autovacuum if it is off.
async fn drain(store: &Store) -> Drained {
    let started = Instant::now();
    let deadline = started + DRAIN_LIMIT;
    let mut first = None;
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM claims WHERE status IN ('submitted', 'approved') \
             OR (status = 'under_review' AND awaiting_operator = $1)",
        )
        .bind(false)
        .fetch_one(store.pool())
        .await
        .unwrap();
        let first = *first.get_or_insert(waiting);
        if waiting == 0 || Instant::now() > deadline {
            let rate = (first >= RATE_BACKLOG).then(|| (first - waiting) as f64 / started.elapsed().as_secs_f64());
            analyze_if_no_autovacuum(store).await;
            return Drained { left: waiting, rate };
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn seed(store: &Store, now: i64) -> Data {
    let account = accounts::create_account(store, "bench", now).await.unwrap();
    let scope = Scope { account_id: account.id.clone(), livemode: false };
    let call = Call::job(scope.clone(), now);
    let mut policy_ids = Vec::new();
    let mut tx = store.begin().await.unwrap();
    for i in 0..POLICIES {
        let input = policies::NewPolicy {
            name: format!("policy {i}"),
            coverage_percentage: 100,
            max_coverage_months: 12,
            waiting_period_days: 0,
            eligible_score_minimum: 0,
            deductible_amount: 0,
            active: true,
            metadata: None,
        };
        policy_ids.push(policies::create(&mut tx, &call, input).await.unwrap().id);
    }
    let mut tenant_ids = Vec::new();
    for _ in 0..TENANTS {
        let c = Customer {
            id: casapay::ids::Kind::Customer.new_id(),
            name: Some("tenant".into()),
            email: None,
            score: Some(90),
            metadata: Metadata::new(),
            test_clock: None,
            livemode: false,
            created: now,
        };
        store::customers::insert(&mut tx, &scope, &c).await.unwrap();
        tenant_ids.push(c.id);
    }
    tx.commit().await.unwrap();
    let mut guarantee_ids = Vec::with_capacity(GUARANTEES);
    for chunk in 0..GUARANTEES / 1_000 {
        let mut tx = store.begin().await.unwrap();
        for i in 0..1_000 {
            let n = chunk * 1_000 + i;
            let g = Guarantee {
                id: casapay::ids::Kind::Guarantee.new_id(),
                status: GuaranteeStatus::Active,
                policy: policy_ids[n % POLICIES].clone(),
                tenant: tenant_ids[n % TENANTS].clone(),
                coverage_amount: 100_000,
                total_coverage: 1_200_000,
                currency: "eur".into(),
                start_date: now - 60 * 86_400,
                end_date: now + 300 * 86_400,
                claims_filed: 0,
                claims_paid: 0,
                claims_reserved: 0,
                claims_recovered: 0,
                cancelled_at: None,
                metadata: Metadata::new(),
                livemode: false,
                created: now - (GUARANTEES - n) as i64,
            };
            store::guarantees::insert(&mut tx, &scope, &g).await.unwrap();
            guarantee_ids.push(g.id);
        }
        tx.commit().await.unwrap();
    }
    Data {
        key: account.test_key,
        scope,
        policies: policy_ids,
        tenants: tenant_ids,
        guarantees: guarantee_ids,
        invoice: AtomicU64::new(0),
        now,
    }
}

/// The load generator's connections: keep-alive HTTP/1.1 over TCP, one request at a
/// time on each, written and parsed in place as wrk does. At one connection the load
/// generator's own time per request is part of every latency the server is measured
/// by (the ceiling has no client), so it is kept small: a general-purpose client
/// (reqwest) took about as much CPU per request as the server, hyper's client
/// connection about twice what this takes.
struct Http {
    addr: std::net::SocketAddr,
    auth: String,
    idle: Mutex<Vec<HttpConn>>,
}

struct HttpConn {
    tcp: tokio::net::TcpStream,
    buf: Vec<u8>,
}

impl Http {
    fn new(addr: std::net::SocketAddr, key: &str) -> Self {
        Http { addr, auth: format!("Bearer {key}"), idle: Mutex::default() }
    }

    async fn connect(&self) -> Option<HttpConn> {
        let tcp = tokio::net::TcpStream::connect(self.addr).await.ok()?;
        tcp.set_nodelay(true).ok()?;
        Some(HttpConn { tcp, buf: Vec::with_capacity(8192) })
    }

    /// Sends one request; true for a 2xx answer, read to the end. An answer without a
    /// `Content-Length` (which the server always sends) counts as an error.
    async fn send(&self, method: &str, path: &str, body: Option<Vec<u8>>) -> bool {
        let idle = self.idle.lock().unwrap().pop();
        let Some(mut conn) = (match idle {
            Some(c) => Some(c),
            None => self.connect().await,
        }) else {
            return false;
        };
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {}\r\n", self.auth);
        if let Some(b) = &body {
            req.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n", b.len()));
        }
        req.push_str("\r\n");
        let mut req = req.into_bytes();
        req.extend(body.unwrap_or_default());
        let Some(ok) = conn.exchange(&req).await else { return false };
        self.idle.lock().unwrap().push(conn);
        ok
    }
}

impl HttpConn {
    /// Writes `req` and reads the whole answer: whether it was a 2xx, or `None` when
    /// the connection failed or the answer could not be read (the connection is then
    /// dropped).
    async fn exchange(&mut self, req: &[u8]) -> Option<bool> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        self.tcp.write_all(req).await.ok()?;
        self.buf.clear();
        let (status, head, length) = loop {
            if self.tcp.read_buf(&mut self.buf).await.ok()? == 0 {
                return None;
            }
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut resp = httparse::Response::new(&mut headers);
            if let httparse::Status::Complete(head) = resp.parse(&self.buf).ok()? {
                let length = resp.headers.iter().find(|h| h.name.eq_ignore_ascii_case("content-length"))?;
                let length: usize = std::str::from_utf8(length.value).ok()?.parse().ok()?;
                break (resp.code?, head, length);
            }
        };
        while self.buf.len() < head + length {
            if self.tcp.read_buf(&mut self.buf).await.ok()? == 0 {
                return None;
            }
        }
        // One request at a time: anything past this answer is a protocol error.
        (self.buf.len() == head + length).then_some((200..300).contains(&status))
    }
}

/// One operation over HTTP.
async fn http_op(http: &Http, d: &Data, op: &str, n: u64) -> bool {
    let body = |v: serde_json::Value| Some(serde_json::to_vec(&v).unwrap());
    match op {
        "create guarantee" => {
            let b = body(json!({
                "policy": d.pick(&d.policies, n), "tenant": d.pick(&d.tenants, n), "coverage_amount": 1000,
                "currency": "eur", "start_date": d.now - 86_400, "end_date": d.now + 365 * 86_400
            }));
            http.send("POST", "/v1/guarantees", b).await
        }
        "create claim" => {
            let b = body(json!({
                "guarantee": d.pick(&d.guarantees, n), "amount": 1000, "currency": "eur", "reason": "missed_payment",
                "evidence": {"invoice_id": format!("inv_{}", d.invoice.fetch_add(1, Ordering::Relaxed)), "due_date": d.now - 86_400}
            }));
            http.send("POST", "/v1/claims", b).await
        }
        "retrieve guarantee" => http.send("GET", &format!("/v1/guarantees/{}", d.pick(&d.guarantees, n)), None).await,
        _ => http.send("GET", "/v1/guarantees?limit=10", None).await,
    }
}

/// The same operation's SQL, straight through the store layer: what the service runs,
/// in the same transactions. The server looks its key up once a second at most (the
/// key cache), so the ceiling leaves the lookup out.
async fn sql_op(store: &Store, d: &Data, op: &str, n: u64) -> bool {
    let now = SystemClock.now();
    let call = Call::job(d.scope.clone(), now);
    let result = match op {
        "create guarantee" => {
            let input = guarantees::NewGuarantee {
                policy: d.pick(&d.policies, n).to_owned(),
                tenant: d.pick(&d.tenants, n).to_owned(),
                coverage_amount: Amount::new(1000).unwrap(),
                currency: Currency::parse("eur").unwrap(),
                start_date: d.now - 86_400,
                end_date: d.now + 365 * 86_400,
                metadata: None,
            };
            service::write_json(store, &call, async |tx| guarantees::create(tx, &call, input).await.map(|g| g.view()))
                .await
                .map(|_| ())
        }
        "create claim" => {
            let input = claims::NewClaim {
                guarantee: d.pick(&d.guarantees, n).to_owned(),
                amount: Amount::new(1000).unwrap(),
                currency: Currency::parse("eur").unwrap(),
                reason: ClaimReason::MissedPayment,
                evidence: Evidence {
                    invoice_id: format!("sql_{}", d.invoice.fetch_add(1, Ordering::Relaxed)),
                    due_date: d.now - 86_400,
                    description: None,
                    files: vec![],
                },
                metadata: None,
            };
            service::write_json(store, &call, async |tx| claims::create(tx, &call, input).await.map(|c| c.view()))
                .await
                .map(|_| ())
        }
        "retrieve guarantee" => guarantees::retrieve(store, &call, d.pick(&d.guarantees, n)).await.map(|_| ()),
        _ => guarantees::list(store, &call, &PageRequest::default(), Default::default()).await.map(|_| ()),
    };
    result.is_ok()
}

/// CPU time (user + system) a process has used so far, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at the state, field 3.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 (indices 11 and 12 here), in clock ticks of 1/100 s.
    (ticks(11) + ticks(12)) / 100.0
}

/// Peak resident set of a process, in MiB.
fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// What the webhook phase measured.
#[derive(Clone, Copy, Default)]
struct Webhooks {
    /// Deliveries per second with the writers flat out, and commit-to-delivery p50 and
    /// p99 (ms) then: the dispatcher against as many events as the server can commit.
    flat_out: (f64, f64, f64),
    /// Commit-to-delivery p50 and p99 (ms) with events committed at `PACED_RATE` a second.
    paced: (f64, f64),
}

/// The event rate of the webhook phase's paced part: the target load.
const PACED_RATE: u64 = 1_000;

/// Creates customers over HTTP with a webhook endpoint subscribed: first `n` from 8
/// writers flat out, then `n` more at `PACED_RATE` a second.
async fn webhooks(client: &reqwest::Client, base: &str, key: &str, n: usize) -> Webhooks {
    let arrivals: Arrivals = Arc::default();
    let app = axum::Router::new().route("/hook", axum::routing::post(receive)).with_state(arrivals.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    client
        .post(format!("{base}/v1/webhook_endpoints"))
        .bearer_auth(key)
        .json(&json!({"url": hook, "enabled_events": ["customer.created"]}))
        .send()
        .await
        .unwrap();
    let create = {
        let (client, url, key) = (client.clone(), format!("{base}/v1/customers"), key.to_owned());
        move || {
            let (client, url, key) = (client.clone(), url.clone(), key.clone());
            async move {
                let r = client.post(url).bearer_auth(key).json(&json!({})).send().await.unwrap();
                let done = Instant::now();
                let v: serde_json::Value = r.json().await.unwrap();
                (v["id"].as_str().unwrap().to_owned(), done)
            }
        }
    };

    // Flat out: 8 writers, each sending its next request when the last is answered.
    let started = Instant::now();
    let mut writers = tokio::task::JoinSet::new();
    for w in 0..8 {
        let create = create.clone();
        writers.spawn(async move {
            let mut commits = Vec::new();
            for _ in (w..n).step_by(8) {
                commits.push(create().await);
            }
            commits
        });
    }
    let commits: HashMap<String, Instant> = writers.join_all().await.into_iter().flatten().collect();
    let flat_out = delivered(&arrivals, &commits, started).await;

    // Paced: one request every 1/PACED_RATE s whether or not earlier ones are answered.
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / PACED_RATE));
    let mut writers = tokio::task::JoinSet::new();
    for _ in 0..n {
        tick.tick().await;
        writers.spawn(create());
    }
    let commits: HashMap<String, Instant> = writers.join_all().await.into_iter().collect();
    let paced = delivered(&arrivals, &commits, started).await;
    Webhooks { flat_out, paced: (paced.1, paced.2) }
}

/// Waits (up to two minutes) for the events of `commits` to arrive; returns deliveries
/// per second since `started`, and the p50 and p99 of commit-to-delivery in ms.
async fn delivered(arrivals: &Arrivals, commits: &HashMap<String, Instant>, started: Instant) -> (f64, f64, f64) {
    let deadline = Instant::now() + Duration::from_secs(120);
    let arrived = || {
        let arrivals = arrivals.lock().unwrap();
        commits.iter().filter_map(|(id, at)| arrivals.get(id).map(|a| a.saturating_duration_since(*at))).collect()
    };
    let mut lat: Vec<Duration> = arrived();
    while lat.len() < commits.len() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
        lat = arrived();
    }
    let elapsed = started.elapsed();
    let latencies_ms = lat.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    let s = stats(&[Sample { latencies_ms, errors: (commits.len() - lat.len()) as u64, elapsed }]);
    (lat.len() as f64 / elapsed.as_secs_f64(), s.p50_ms, s.p99_ms)
}

struct Run {
    backend: &'static str,
    rows: Vec<(String, usize, Stats, Stats)>,
    webhooks: Webhooks,
    rss_mib: f64,
    /// Claims the engine had yet to review or pay 10 s after a create-claim turn (the most).
    engine_backlog: i64,
    /// Median of the engine's catch-up rates after create-claim turns, claims per second.
    engine_rate: Option<f64>,
}

async fn run_backend(backend: &'static str, bin: &str) -> Run {
    let tmp = std::env::temp_dir().join(format!("casapay_bench_{}", casapay::ids::random_secret(8)));
    std::fs::create_dir_all(&tmp).unwrap();
    let (url, pg) = if backend == "postgres" {
        let admin = std::env::var("CASAPAY_TEST_PG_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let name = format!("casapay_bench_{}", casapay::ids::random_secret(8).to_ascii_lowercase());
        let mut conn = sqlx::PgConnection::connect(&admin).await.expect("PostgreSQL");
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.unwrap();
        (format!("{}/{name}", admin.rsplit_once('/').unwrap().0), Some((admin, name)))
    } else {
        (format!("sqlite://{}?mode=rwc", tmp.join("casapay.db").display()), None)
    };
    let store = Store::connect(&StoreOptions::new(&url)).await.unwrap();
    store.migrate().await.unwrap();
    let seeding = Instant::now();
    let data = Arc::new(seed(&store, SystemClock.now()).await);
    analyze_if_no_autovacuum(&store).await;
    if backend == "postgres" {
        // The seeding's dirty pages go to disk now rather than in a checkpoint during
        // the first measurements.
        sqlx::query("CHECKPOINT").execute(store.pool()).await.unwrap();
    }
    eprintln!("{backend}: seeded in {:.1}s", seeding.elapsed().as_secs_f64());

    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut cmd = std::process::Command::new(bin);
    cmd.args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data"])
        .arg(&tmp)
        .env("CASAPAY_RATE_LIMIT_TEST", "0")
        .env("CASAPAY_WEBHOOK_ALLOW_HTTP", "true")
        .env("CASAPAY_WEBHOOK_ALLOW_PRIVATE", "true")
        .env("CASAPAY_WEBHOOK_PER_ENDPOINT", "32")
        .env("CASAPAY_WEBHOOK_PER_ACCOUNT", "32")
        .env("RUST_LOG", std::env::var("BENCH_SERVER_LOG").unwrap_or_else(|_| "warn".into()))
        .stderr(std::fs::File::create(std::env::temp_dir().join("casapay_bench_server.log")).unwrap())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null());
    if backend == "postgres" {
        cmd.env("DATABASE_URL", &url);
    } else {
        cmd.env_remove("DATABASE_URL");
    }
    let mut server = cmd.spawn().expect("start casapay serve");
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder().pool_max_idle_per_host(64).build().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while client.get(format!("{base}/healthz")).send().await.is_err() {
        assert!(Instant::now() < deadline, "server did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Webhooks first, before the claims engine has a backlog to work through.
    let webhooks = if std::env::var("BENCH_WEBHOOKS").as_deref() == Ok("0") {
        Webhooks::default()
    } else {
        webhooks(&client, &base, &data.key, 2_000).await
    };

    // Ceiling and server take turns, round after round, so that a change in the
    // machine's load (the disk's fsync time above all) falls on both alike. The
    // server's claims engine runs throughout: it reviews and pays the claims of both
    // sides, and is drained after each turn.
    let (ops, conns) = (selected("BENCH_OPS", &OPS), selected("BENCH_CONNS", &CONCURRENCY));
    let http = Arc::new(Http::new(([127, 0, 0, 1], port).into(), &data.key));
    // The load generator runs on one thread of its own, as wrk's threads do: a second
    // runtime worker spinning for work took CPU from the server and the database.
    let client_rt = Arc::new(tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap());
    let (mut rows, mut engine_backlog, mut engine_rates) = (Vec::new(), 0, Vec::new());
    let seq = Arc::new(AtomicU64::new(1));
    for &op in &ops {
        for &conc in &conns {
            let (mut ceiling, mut served, mut cpu, mut client_cpu, mut backlog) = (Vec::new(), Vec::new(), 0.0, 0.0, 0);
            for _ in 0..rounds() {
                let (store2, data2) = (store.clone(), data.clone());
                ceiling.push(
                    drive(conc, seq.clone(), move |n| {
                        let (store, data) = (store2.clone(), data2.clone());
                        async move { sql_op(&store, &data, op, n).await }
                    })
                    .await,
                );
                let drained = drain(&store).await;
                engine_rates.extend(drained.rate.filter(|_| op == "create claim"));
                let (http, data) = (http.clone(), data.clone());
                let (cpu_before, client_before) = (cpu_seconds(server.id()), cpu_seconds(std::process::id()));
                let (rt, seq) = (client_rt.clone(), seq.clone());
                let turn = tokio::task::spawn_blocking(move || {
                    rt.block_on(drive(conc, seq, move |n| {
                        let (http, data) = (http.clone(), data.clone());
                        async move { http_op(&http, &data, op, n).await }
                    }))
                });
                served.push(turn.await.unwrap());
                let drained = drain(&store).await;
                backlog = drained.left;
                engine_rates.extend(drained.rate.filter(|_| op == "create claim"));
                cpu += cpu_seconds(server.id()) - cpu_before;
                client_cpu += cpu_seconds(std::process::id()) - client_before;
            }
            let mut s = stats(&served);
            let ratios = pair_ratios(&served, &ceiling);
            s.ratio = median(ratios.clone());
            let requests: usize = served.iter().map(|x| x.latencies_ms.len()).sum();
            s.cpu_us = cpu * 1e6 / requests.max(1) as f64;
            s.client_cpu_us = client_cpu * 1e6 / requests.max(1) as f64;
            let c = stats(&ceiling);
            eprintln!(
                "{backend}: {op} at {conc}: {:.0} req/s (p50 {:.2} ms), ceiling {:.0} req/s (p50 {:.2} ms), \
                 {:.0}% (turn by turn: {}); claims the engine had yet to review or pay after the last turn: {backlog}",
                s.per_second,
                s.p50_ms,
                c.per_second,
                c.p50_ms,
                100.0 * s.ratio,
                ratios.iter().map(|r| format!("{:.0}%", 100.0 * r)).collect::<Vec<_>>().join(" ")
            );
            if op == "create claim" {
                engine_backlog = engine_backlog.max(backlog);
            }
            rows.push((op.to_owned(), conc, s, stats(&ceiling)));
        }
    }
    store.close().await;
    if let Ok(rt) = Arc::try_unwrap(client_rt) {
        // Dropped outside any runtime's context, as tokio requires.
        rt.shutdown_background();
    }
    let rss_mib = peak_rss_mib(server.id());
    let _ = server.kill();
    let _ = server.wait();
    if let Some((admin, name)) = pg {
        let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut conn).await;
    }
    let _ = std::fs::remove_dir_all(&tmp);
    let engine_rate = (!engine_rates.is_empty()).then(|| median(engine_rates));
    Run { backend, rows, webhooks, rss_mib, engine_backlog, engine_rate }
}

fn table(runs: &[Run], machine: &str) -> String {
    let mut out = format!(
        "Measured {} on {machine}, {} turns of {} s per side in each cell (server, load generator and database \
         share the machine).\n\n",
        chrono_free_date(),
        rounds(),
        duration().as_secs_f64()
    );
    out.push_str(
        "| backend | operation | conns | server req/s | p50 ms | p99 ms | errors | server CPU µs/req | client CPU µs/req | raw SQL req/s | ratio |\n",
    );
    out.push_str("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    for run in runs {
        for (op, conc, s, c) in &run.rows {
            out.push_str(&format!(
                "| {} | {op} | {conc} | {:.0} | {:.1} | {:.1} | {} | {:.0} | {:.0} | {:.0} | {:.0}% |\n",
                run.backend,
                s.per_second,
                s.p50_ms,
                s.p99_ms,
                s.errors,
                s.cpu_us,
                s.client_cpu_us,
                c.per_second,
                100.0 * s.ratio
            ));
        }
    }
    out.push_str(&format!(
        "\n| backend | webhook deliveries/s, writers flat out | commit-to-delivery p50 ms | p99 ms | \
         p50 ms at {PACED_RATE} events/s | p99 ms at {PACED_RATE} events/s | server peak RSS MiB |\n"
    ));
    out.push_str("| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    for run in runs {
        let ((rate, p50, p99), (paced_p50, paced_p99)) = (run.webhooks.flat_out, run.webhooks.paced);
        out.push_str(&format!(
            "| {} | {rate:.0} | {p50:.1} | {p99:.1} | {paced_p50:.1} | {paced_p99:.1} | {:.1} |\n",
            run.backend, run.rss_mib
        ));
    }
    for run in runs {
        out.push_str(&format!(
            "\n{}: claims the engine had yet to review or pay {} s after a create-claim turn, at most: {}.",
            run.backend,
            DRAIN_LIMIT.as_secs(),
            run.engine_backlog
        ));
        if let Some(rate) = run.engine_rate {
            out.push_str(&format!(
                " While catching up after a turn it reviewed and paid {rate:.0} claims/s (median over the turns)."
            ));
        }
    }
    out.push('\n');
    out
}

/// Today's date (UTC) without a date crate.
fn chrono_free_date() -> String {
    let (y, m, d) = casapay::domain::review::civil_from_days(SystemClock.now() / 86_400);
    format!("{y:04}-{m:02}-{d:02}")
}

#[tokio::main]
async fn main() {
    let bin = std::env::args().nth(1).expect("usage: bench PATH_TO_RELEASE_CASAPAY [RESULTS_MARKDOWN]");
    // The page whose bench:start/bench:end section gets the tables (docs/performance.md).
    let results_page = std::env::args().nth(2);
    let machine = std::env::var("BENCH_MACHINE").unwrap_or_else(|_| {
        let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
        format!("{cpus} cores")
    });
    let mut runs = Vec::new();
    for backend in selected("BENCH_BACKENDS", &["postgres", "sqlite"]) {
        runs.push(run_backend(backend, &bin).await);
    }
    let md = table(&runs, &machine);
    println!("{md}");
    if let Some(path) = results_page.filter(|_| !partial_run()) {
        let text = std::fs::read_to_string(&path).unwrap();
        let (start, end) = ("<!-- bench:start -->", "<!-- bench:end -->");
        if let (Some(a), Some(b)) = (text.find(start), text.find(end)) {
            let updated = format!("{}{start}\n{md}{}", &text[..a], &text[b..]);
            std::fs::write(&path, updated).unwrap();
            eprintln!("results written to {path}");
        }
    }
}
