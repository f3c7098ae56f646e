//! The benchmark: the release server over HTTP against the raw-SQL ceiling, on
//! PostgreSQL and on SQLite. Run it with `bash scripts/bench` (which builds the release
//! binary first); see docs/performance.md for what it measures.
//!
//! Per backend: seed 1,000 policies, 1,000 tenants and 100,000 guarantees; start
//! `casapay serve` (release) on that data; deliver webhooks to a loopback receiver;
//! then, for four operations at 1, 8 and 32 connections, alternate turns of the
//! ceiling (the operation's SQL straight through the store layer in this process:
//! every statement the server runs for the request, without HTTP) and of the server
//! (the operation over HTTP with keep-alive); on PostgreSQL also of the hand-written
//! transactions (`shared/handwritten.rs`) and of the floor (`floor.rs`: those
//! transactions behind axum, the least a server on this stack does); last, read the
//! server's peak RSS.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
use serde_json::json;
use sqlx::Connection;

#[path = "shared/arrivals.rs"]
mod arrivals;
use arrivals::{Arrivals, receive};
#[path = "shared/handwritten.rs"]
mod handwritten_sql;
#[path = "shared/pg_relay.rs"]
mod pg_relay;

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
    ["BENCH_BACKENDS", "BENCH_OPS", "BENCH_CONNS", "BENCH_WEBHOOKS", "BENCH_COMPARE_ENV"]
        .iter()
        .any(|v| std::env::var(v).is_ok())
        || std::env::var("BENCH_FLOOR").as_deref() == Ok("0")
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
    /// Whether an answer other than a 2xx was printed (the first one is).
    showed_error: AtomicBool,
}

struct HttpConn {
    tcp: tokio::net::TcpStream,
    buf: Vec<u8>,
}

impl Http {
    fn new(addr: std::net::SocketAddr, key: &str) -> Self {
        Http { addr, auth: format!("Bearer {key}"), idle: Mutex::default(), showed_error: AtomicBool::new(false) }
    }

    async fn connect(&self) -> Option<HttpConn> {
        let tcp = tokio::net::TcpStream::connect(self.addr).await.ok()?;
        tcp.set_nodelay(true).ok()?;
        Some(HttpConn { tcp, buf: Vec::with_capacity(8192) })
    }

    /// Sends one request; true for a 2xx answer, read to the end. An answer without a
    /// `Content-Length` (which the server always sends) counts as an error.
    async fn send(&self, method: &str, path: &str, body: Option<Vec<u8>>) -> bool {
        // An idle connection the server closed (after its idle timeout, 60 s: the
        // connections a narrower cell left unused) reads as EOF, not as "nothing yet":
        // it is dropped, as an HTTP client's pool drops it, rather than counted as a
        // failed request.
        let idle = loop {
            let Some(conn) = self.idle.lock().unwrap().pop() else { break None };
            match conn.tcp.try_read(&mut [0u8; 1]) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break Some(conn),
                _ => continue,
            }
        };
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
        if !ok && !self.showed_error.swap(true, Ordering::Relaxed) {
            eprintln!("{method} {path}: the first answer other than a 2xx: {}", String::from_utf8_lossy(&conn.buf));
        }
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
            service::write_json(store, &call, async |tx| guarantees::create(tx, &call, input).await.map(|g| g.view))
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
            service::write_json(store, &call, async |tx| claims::create(tx, &call, input).await.map(|c| c.view))
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
    /// With `BENCH_COMPARE_ENV` or `BENCH_FLOOR`: each cell's turns of the second server,
    /// its `ratio` being the median of its turns over the first server's turns just before
    /// them; then, on PostgreSQL, the median of its turns over the hand-written turns.
    compared: Vec<(String, usize, Stats, Option<f64>)>,
    /// PostgreSQL only: each cell's turns of the hand-written transaction (`ratio`: the
    /// server's turn over it), and each operation's round trips.
    handwritten: Vec<(String, usize, Stats)>,
    round_trips: Vec<(String, RoundTrips)>,
    webhooks: Webhooks,
    rss_mib: f64,
    /// Claims the engine had yet to review or pay 10 s after a create-claim turn (the most).
    engine_backlog: i64,
    /// Median of the engine's catch-up rates after create-claim turns, claims per second.
    engine_rate: Option<f64>,
}

/// Round trips to PostgreSQL per request, counted by a relay (`pg_relay`): the server's,
/// the same operation's through the store layer, and the hand-written transaction's.
#[derive(Clone, Copy, Default)]
struct RoundTrips {
    server: f64,
    store: f64,
    handwritten: f64,
}

/// Requests per operation in the counting phase, one at a time.
const COUNTED_REQUESTS: u64 = 200;

/// Counts each operation's round trips: a server of its own (no claims engine) and a
/// store pool of their own connect through the relay, and each sends
/// `COUNTED_REQUESTS` requests one after another. What the server's background loops
/// send meanwhile (the dispatcher's polls, the gauges) is measured while it idles first
/// and taken off at that rate.
async fn count_round_trips(
    bin: &str,
    tmp: &std::path::Path,
    url: &str,
    d: &Arc<Data>,
    ops: &[&'static str],
    store: &Store,
) -> Vec<(String, RoundTrips)> {
    let (rest, database) = url.rsplit_once('/').unwrap();
    let (scheme_user, host) = rest.rsplit_once('@').unwrap();
    let upstream = tokio::net::lookup_host(host).await.unwrap().next().unwrap();
    let relay = pg_relay::Relay::start(upstream).await;
    let relayed = format!("{scheme_user}@{}/{database}?sslmode=disable", relay.addr);
    let dir = tmp.join("counted");
    std::fs::create_dir_all(&dir).unwrap();
    let no_engine = [("CASAPAY_NO_ENGINE".to_owned(), "true".to_owned())];
    let (mut server, port) = start_server(bin, &dir, &relayed, &no_engine, "casapay_bench_server_counted.log").await;
    let http = Http::new(([127, 0, 0, 1], port).into(), &d.key);
    let counted_store = Store::connect(&StoreOptions::new(&relayed)).await.unwrap();
    let listening = tokio_util::sync::CancellationToken::new();
    casapay::jobs::endpoint_listener::start(&counted_store, url, listening.clone());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !counted_store.endpoint_cache().is_live() {
        assert!(Instant::now() < deadline, "the counting store's endpoint listener did not start");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let counted_pool = handwritten::Connections::connect(&relayed).await;

    // Warm up every path (connections, prepared statements, the key cache), then idle.
    for (i, &op) in ops.iter().enumerate() {
        let n = 7_000_000 + i as u64;
        http_op(&http, d, op, n).await;
        sql_op(&counted_store, d, op, n).await;
        handwritten::op(&counted_pool, d, op, n).await;
    }
    drain(store).await;
    let idle_started = (Instant::now(), relay.round_trips());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle_rate = (relay.round_trips() - idle_started.1) as f64 / idle_started.0.elapsed().as_secs_f64();

    let mut out = Vec::new();
    for (i, &op) in ops.iter().enumerate() {
        let base = 8_000_000 + 10_000 * i as u64;
        let server_trips =
            trips_per_request(&relay, idle_rate, op, async |n| http_op(&http, d, op, base + n).await).await;
        let store_trips =
            trips_per_request(&relay, idle_rate, op, async |n| sql_op(&counted_store, d, op, base + 5_000 + n).await)
                .await;
        let hand_trips = trips_per_request(&relay, idle_rate, op, async |n| {
            handwritten::op(&counted_pool, d, op, base + 7_000 + n).await
        })
        .await;
        // The scripts' statements, one round trip each: a check of the port and of the relay
        // (the server's background polls, taken off at their idle rate, leave a little noise).
        if let Some((_, statements)) = handwritten::ROUND_TRIPS.iter().find(|(o, _)| *o == op) {
            assert!(
                (hand_trips - *statements as f64).abs() < 0.05,
                "round trips of the hand-written {op}: {hand_trips}"
            );
        }
        eprintln!(
            "round trips per request, {op}: server {server_trips:.2}, store layer {store_trips:.2}, hand-written {hand_trips:.2}"
        );
        out.push((op.to_owned(), RoundTrips { server: server_trips, store: store_trips, handwritten: hand_trips }));
        drain(store).await;
    }
    listening.cancel();
    counted_pool.close().await;
    counted_store.close().await;
    let _ = server.kill();
    let _ = server.wait();
    out
}

/// Round trips per call over `COUNTED_REQUESTS` calls of `call`, one at a time, less what
/// the server's background loops sent meanwhile (at their idle rate).
async fn trips_per_request(
    relay: &pg_relay::Relay,
    idle_rate: f64,
    op: &str,
    mut call: impl AsyncFnMut(u64) -> bool,
) -> f64 {
    let (started, before) = (Instant::now(), relay.round_trips());
    for n in 0..COUNTED_REQUESTS {
        assert!(call(n).await, "{op} failed while counting round trips");
    }
    let background = idle_rate * started.elapsed().as_secs_f64();
    ((relay.round_trips() - before) as f64 - background).max(0.0) / COUNTED_REQUESTS as f64
}

/// One turn of the server over HTTP, driven from the load generator's own runtime.
async fn http_turn(
    rt: &Arc<tokio::runtime::Runtime>,
    conc: usize,
    seq: &Arc<AtomicU64>,
    http: &Arc<Http>,
    data: &Arc<Data>,
    op: &'static str,
) -> Sample {
    let (rt, seq, http, data) = (rt.clone(), seq.clone(), http.clone(), data.clone());
    tokio::task::spawn_blocking(move || {
        rt.block_on(drive(conc, seq, move |n| {
            let (http, data) = (http.clone(), data.clone());
            async move { http_op(&http, &data, op, n).await }
        }))
    })
    .await
    .unwrap()
}

/// The floor (`examples/floor.rs`, built beside this benchmark) as the second server, on
/// PostgreSQL: unless `BENCH_FLOOR=0`, or `BENCH_COMPARE_ENV` takes the second server's place.
fn floor_wanted() -> bool {
    std::env::var("BENCH_FLOOR").as_deref() != Ok("0") && compare_env().is_none()
}

/// `BENCH_COMPARE_ENV` (space-separated `NAME=value` pairs) or None.
fn compare_env() -> Option<Vec<(String, String)>> {
    let text = std::env::var("BENCH_COMPARE_ENV").ok().filter(|s| !s.trim().is_empty())?;
    Some(
        text.split_whitespace()
            .map(|pair| {
                let (k, v) = pair.split_once('=').expect("BENCH_COMPARE_ENV: NAME=value pairs");
                (k.to_owned(), v.to_owned())
            })
            .collect(),
    )
}

/// Starts `casapay serve` on the benchmark's data and waits until it answers.
async fn start_server(
    bin: &str,
    tmp: &std::path::Path,
    url: &str,
    extra_env: &[(String, String)],
    log: &str,
) -> (std::process::Child, u16) {
    // One log per backend, so that the SQLite half does not write over PostgreSQL's.
    let backend = if url.starts_with("postgres") { "postgres" } else { "sqlite" };
    let log = log.replace(".log", &format!("_{backend}.log"));
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut cmd = std::process::Command::new(bin);
    cmd.args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data"])
        .arg(tmp)
        .env("CASAPAY_RATE_LIMIT_TEST", "0")
        .env("CASAPAY_WEBHOOK_ALLOW_HTTP", "true")
        .env("CASAPAY_WEBHOOK_ALLOW_PRIVATE", "true")
        .env("CASAPAY_WEBHOOK_PER_ENDPOINT", "32")
        .env("CASAPAY_WEBHOOK_PER_ACCOUNT", "32")
        .env("RUST_LOG", std::env::var("BENCH_SERVER_LOG").unwrap_or_else(|_| "warn".into()))
        .envs(extra_env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stderr(std::fs::File::create(std::env::temp_dir().join(&log)).unwrap())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null());
    if url.starts_with("postgres") {
        cmd.env("DATABASE_URL", url);
    } else {
        cmd.env_remove("DATABASE_URL");
    }
    let server = cmd.spawn().expect("start casapay serve");
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while client.get(format!("http://127.0.0.1:{port}/healthz")).send().await.is_err() {
        assert!(Instant::now() < deadline, "server did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (server, port)
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
    // The ceiling runs the server's SQL, so on PostgreSQL its store keeps the webhook
    // endpoints as the server's does (on SQLite the server owns the file: the ceiling
    // then reads them per write).
    let listening = tokio_util::sync::CancellationToken::new();
    if backend == "postgres" {
        casapay::jobs::endpoint_listener::start(&store, &url, listening.clone());
    }
    let seeding = Instant::now();
    let data = Arc::new(seed(&store, SystemClock.now()).await);
    analyze_if_no_autovacuum(&store).await;
    if backend == "postgres" {
        // The seeding's dirty pages go to disk now rather than in a checkpoint during
        // the first measurements.
        sqlx::query("CHECKPOINT").execute(store.pool()).await.unwrap();
    }
    eprintln!("{backend}: seeded in {:.1}s", seeding.elapsed().as_secs_f64());

    let (mut server, mut port) = start_server(bin, &tmp, &url, &[], "casapay_bench_server.log").await;
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder().pool_max_idle_per_host(64).build().unwrap();
    // Webhooks first, before the claims engine has a backlog to work through.
    let webhooks = if std::env::var("BENCH_WEBHOOKS").as_deref() == Ok("0") {
        Webhooks::default()
    } else {
        webhooks(&client, &base, &data.key, 2_000).await
    };

    // A second server on the same data with other settings (`BENCH_COMPARE_ENV`, as
    // `CASAPAY_METRICS=off`), started after the webhook phase so that it delivers none
    // of that phase's events. Its turns follow the first server's in every round;
    // `BENCH_COMPARE_ENV=CASAPAY_METRICS=on` (the same settings twice) shows what that
    // order alone is worth.
    // One server per SQLite file, and a fresh copy of a file runs writes faster than the
    // file the seeding and the webhook phase wrote: on SQLite each server moves to a copy
    // made alike, and the engine's drains after its turns read that copy.
    let compare_env = compare_env();
    let floor = floor_wanted() && backend == "postgres";
    let (mut second, second_store, first_store) = match &compare_env {
        _ if floor => {
            let dir = tmp.join("floor");
            std::fs::create_dir_all(&dir).unwrap();
            let env = [
                ("FLOOR_KEY".to_owned(), data.key.clone()),
                ("FLOOR_ACCOUNT".to_owned(), data.scope.account_id.clone()),
            ];
            let bench = std::env::current_exe().unwrap();
            let floor_bin = bench.with_file_name("floor");
            let second = start_server(floor_bin.to_str().unwrap(), &dir, &url, &env, "casapay_bench_floor.log").await;
            (Some(second), None, None)
        }
        Some(env) if backend == "postgres" => {
            let dir = tmp.join("second");
            std::fs::create_dir_all(&dir).unwrap();
            let second = start_server(bin, &dir, &url, env, "casapay_bench_server_b.log").await;
            (Some(second), None, None)
        }
        Some(env) => {
            let _ = server.kill();
            let _ = server.wait();
            let mut copies = Vec::new();
            for name in ["first", "second"] {
                let dir = tmp.join(name);
                std::fs::create_dir_all(&dir).unwrap();
                let copy = dir.join("casapay.db");
                sqlx::query(&format!("VACUUM INTO '{}'", copy.display())).execute(store.pool()).await.unwrap();
                let url = format!("sqlite://{}?mode=rwc", copy.display());
                copies.push((Store::connect(&StoreOptions::new(&url)).await.unwrap(), dir, url));
            }
            let (second_store, second_dir, second_url) = copies.pop().unwrap();
            let (first_store, first_dir, first_url) = copies.pop().unwrap();
            (server, port) = start_server(bin, &first_dir, &first_url, &[], "casapay_bench_server.log").await;
            let second = start_server(bin, &second_dir, &second_url, env, "casapay_bench_server_b.log").await;
            (Some(second), Some(second_store), Some(first_store))
        }
        None => (None, None, None),
    };

    // Ceiling and server take turns, round after round, so that a change in the
    // machine's load (the disk's fsync time above all) falls on both alike. The
    // server's claims engine runs throughout: it reviews and pays the claims of both
    // sides, and is drained after each turn.
    let (ops, conns) = (selected("BENCH_OPS", &OPS), selected("BENCH_CONNS", &CONCURRENCY));
    let handwritten_pool = match &pg {
        Some(_) => {
            let pool = handwritten::Connections::connect(&url).await;
            handwritten::prepare(&pool, &data).await;
            Some(pool)
        }
        None => None,
    };
    let mut handwritten_rows = Vec::new();
    let http = Arc::new(Http::new(([127, 0, 0, 1], port).into(), &data.key));
    let second_http = second.as_ref().map(|(_, port)| Arc::new(Http::new(([127, 0, 0, 1], *port).into(), &data.key)));
    let mut compared_rows = Vec::new();
    // The load generator runs on one thread of its own, as wrk's threads do: a second
    // runtime worker spinning for work took CPU from the server and the database.
    let client_rt = Arc::new(tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap());
    let (mut rows, mut engine_backlog, mut engine_rates) = (Vec::new(), 0, Vec::new());
    let seq = Arc::new(AtomicU64::new(1));
    for &op in &ops {
        for &conc in &conns {
            let (mut ceiling, mut served, mut cpu, mut client_cpu, mut backlog) = (Vec::new(), Vec::new(), 0.0, 0.0, 0);
            let (mut compared, mut compared_cpu, mut by_hand) = (Vec::new(), 0.0, Vec::new());
            for round in 0..rounds() {
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
                if let Some(pool) = &handwritten_pool {
                    let (pool, data2) = (pool.clone(), data.clone());
                    by_hand.push(
                        drive(conc, seq.clone(), move |n| {
                            let (pool, data) = (pool.clone(), data2.clone());
                            async move { handwritten::op(&pool, &data, op, n).await }
                        })
                        .await,
                    );
                }
                // The second server's turn comes before the first's in odd rounds and after
                // it in even ones: a turn right after another ran a few percent faster.
                macro_rules! second_turn {
                    () => {
                        if let (Some((second, _)), Some(http)) = (&second, &second_http) {
                            let cpu_before = cpu_seconds(second.id());
                            compared.push(http_turn(&client_rt, conc, &seq, http, &data, op).await);
                            drain(second_store.as_ref().unwrap_or(&store)).await;
                            compared_cpu += cpu_seconds(second.id()) - cpu_before;
                        }
                    };
                }
                if round % 2 == 1 {
                    second_turn!();
                }
                let (cpu_before, client_before) = (cpu_seconds(server.id()), cpu_seconds(std::process::id()));
                served.push(http_turn(&client_rt, conc, &seq, &http, &data, op).await);
                let drained = drain(first_store.as_ref().unwrap_or(&store)).await;
                backlog = drained.left;
                engine_rates.extend(drained.rate.filter(|_| op == "create claim"));
                cpu += cpu_seconds(server.id()) - cpu_before;
                client_cpu += cpu_seconds(std::process::id()) - client_before;
                if round % 2 == 0 {
                    second_turn!();
                }
            }
            if !by_hand.is_empty() {
                let mut h = stats(&by_hand);
                // Here `ratio` is the server's turn over the hand-written turn before it.
                h.ratio = median(pair_ratios(&served, &by_hand));
                eprintln!(
                    "{backend}: {op} at {conc}: hand-written transaction {:.0} req/s (p50 {:.2} ms); the server {:.0}% of it",
                    h.per_second,
                    h.p50_ms,
                    100.0 * h.ratio
                );
                handwritten_rows.push((op.to_owned(), conc, h));
            }
            if !compared.is_empty() {
                let mut b = stats(&compared);
                let ratios = pair_ratios(&compared, &served);
                b.ratio = median(ratios.clone());
                let requests: usize = compared.iter().map(|x| x.latencies_ms.len()).sum();
                b.cpu_us = compared_cpu * 1e6 / requests.max(1) as f64;
                let over_hand = (!by_hand.is_empty()).then(|| median(pair_ratios(&compared, &by_hand)));
                eprintln!(
                    "{backend}: {op} at {conc}: {} {:.0} req/s (p50 {:.2} ms), {:.1}% of the first server \
                     (turn by turn: {}){}",
                    if floor { "the floor" } else { "second server" },
                    b.per_second,
                    b.p50_ms,
                    100.0 * b.ratio,
                    ratios.iter().map(|r| format!("{:.1}%", 100.0 * r)).collect::<Vec<_>>().join(" "),
                    over_hand
                        .map(|r| format!(", {:.0}% of the hand-written transaction", 100.0 * r))
                        .unwrap_or_default()
                );
                compared_rows.push((op.to_owned(), conc, b, over_hand));
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
    // The second server's connections (the floor keeps one per client) are closed before
    // the counting servers open theirs, within PostgreSQL's max_connections.
    if let Some((mut second, _)) = second.take() {
        let _ = second.kill();
        let _ = second.wait();
    }
    let round_trips = match &pg {
        Some(_) => count_round_trips(bin, &tmp, &url, &data, &ops, &store).await,
        None => Vec::new(),
    };
    if let Some(pool) = handwritten_pool {
        pool.close().await;
    }
    listening.cancel();
    store.close().await;
    for moved in [second_store, first_store].into_iter().flatten() {
        moved.close().await;
    }
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
    Run {
        backend,
        rows,
        compared: compared_rows,
        handwritten: handwritten_rows,
        round_trips,
        webhooks,
        rss_mib,
        engine_backlog,
        engine_rate,
    }
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
        "| backend | operation | conns | server req/s | p50 ms | p99 ms | errors | server CPU µs/req | client CPU µs/req | \
         raw SQL req/s | ratio | hand-written req/s | ratio | round trips: server / store / hand-written |\n",
    );
    out.push_str("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    for run in runs {
        for (op, conc, s, c) in &run.rows {
            let by_hand = run.handwritten.iter().find(|(o, n, _)| o == op && n == conc).map(|(_, _, h)| h);
            let (hand_rate, hand_ratio) = match by_hand {
                Some(h) => (format!("{:.0}", h.per_second), format!("{:.0}%", 100.0 * h.ratio)),
                None => ("–".to_owned(), "–".to_owned()),
            };
            let trips = match run.round_trips.iter().find(|(o, _)| o == op) {
                Some((_, t)) => format!("{:.1} / {:.1} / {:.1}", t.server, t.store, t.handwritten),
                None => "–".to_owned(),
            };
            out.push_str(&format!(
                "| {} | {op} | {conc} | {:.0} | {:.1} | {:.1} | {} | {:.0} | {:.0} | {:.0} | {:.0}% | {hand_rate} | {hand_ratio} | {trips} |\n",
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
    if runs.iter().any(|r| !r.compared.is_empty()) {
        let second = if floor_wanted() {
            "the floor (`examples/floor.rs`: axum and sqlx's PostgreSQL driver around the hand-written \
             transactions, nothing else), on the same data"
                .to_owned()
        } else {
            format!(
                "a second server on the same data, started with `{}`",
                std::env::var("BENCH_COMPARE_ENV").unwrap_or_default()
            )
        };
        out.push_str(&format!(
            "\nThe same cells on {second}, its turns next to the first server's:\n\n\
             | backend | operation | conns | first req/s | second req/s | second / first | second / hand-written | \
             first p99 ms | second p99 ms | first CPU µs/req | second CPU µs/req |\n\
             | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n"
        ));
        for run in runs {
            for ((op, conc, b, over_hand), (_, _, a, _)) in run.compared.iter().zip(&run.rows) {
                let over_hand = over_hand.map(|r| format!("{:.0}%", 100.0 * r)).unwrap_or_else(|| "–".into());
                out.push_str(&format!(
                    "| {} | {op} | {conc} | {:.0} | {:.0} | {:.1}% | {over_hand} | {:.1} | {:.1} | {:.0} | {:.0} |\n",
                    run.backend,
                    a.per_second,
                    b.per_second,
                    100.0 * b.ratio,
                    a.p99_ms,
                    b.p99_ms,
                    a.cpu_us,
                    b.cpu_us
                ));
            }
        }
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

/// The hand-written transactions (`shared/handwritten.rs`) on the benchmark's data.
mod handwritten {
    use super::*;

    use super::handwritten_sql as sql;
    pub use sql::{Connections, ROUND_TRIPS};

    pub async fn prepare(pool: &Connections, d: &Data) {
        sql::prepare(pool, &d.scope.account_id, d.now).await;
    }

    pub async fn op(pool: &Connections, d: &Data, op: &str, n: u64) -> bool {
        let account = &d.scope.account_id;
        let now = SystemClock.now();
        let result = pool
            .with(async |conn| match op {
                "create guarantee" => {
                    let dates = (d.now - 86_400, d.now + 365 * 86_400);
                    sql::create_guarantee(conn, account, now, d.pick(&d.policies, n), d.pick(&d.tenants, n), dates)
                        .await
                        .map(|_| true)
                }
                "create claim" => {
                    let invoice = format!("hw_{}", d.invoice.fetch_add(1, Ordering::Relaxed));
                    sql::create_claim(conn, account, now, d.pick(&d.guarantees, n), &invoice, d.now - 86_400)
                        .await
                        .map(|_| true)
                }
                "retrieve guarantee" => {
                    sql::retrieve_guarantee(conn, account, d.pick(&d.guarantees, n)).await.map(|g| g.is_some())
                }
                _ => sql::list_guarantees(conn, account, 10).await.map(|_| true),
            })
            .await;
        result.unwrap_or(false)
    }
}
