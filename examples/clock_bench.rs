//! Test clock advance: one clock with many guarantees advanced across a year, while
//! another account reads over HTTP.
//!
//!     cargo run --release --example clock_bench -- [GUARANTEES] [READERS]
//!
//! With `CASAPAY_BENCH_PG_URL` (an admin URL such as postgres://postgres@127.0.0.1/postgres)
//! it runs on a fresh PostgreSQL database, dropped afterwards; otherwise on a SQLite file in
//! a temporary directory. Seeds account A with a clock at today, one customer on it and
//! GUARANTEES (default 10,000) guarantees whose start dates are spread over the coming year,
//! each running 180 days (so about half also expire within it); account B with one
//! guarantee on the wall clock. Starts the server and the claims engine (default settings)
//! in this process, measures B's retrieve latency for a few seconds alone, then advances A's
//! clock by 365 days over HTTP and reports the time until the clock is `ready` and B's
//! retrieve latency meanwhile (READERS concurrent readers, default 4).

use std::sync::Arc;
use std::time::{Duration, Instant};

use casapay::api::rate_limit::RateLimitConfig;
use casapay::clock::{Clock, SystemClock};
use casapay::domain::money::{Amount, Currency};
use casapay::jobs::engine::{Engine, EngineConfig};
use casapay::service::rail::InstantRail;
use casapay::service::{self, Call, accounts, customers, guarantees, policies, test_clocks};
use casapay::store::{Scope, Store, StoreOptions};
use casapay::{ApiConfig, AppState};
use serde_json::{Value, json};
use sqlx::Connection;
use tokio_util::sync::CancellationToken;

const DAY: i64 = 86_400;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Reads B's guarantee with `readers` clients until `stop`; latencies in ms, sorted.
async fn read_until(base: &str, key: &str, grt: &str, readers: usize, stop: CancellationToken) -> Vec<f64> {
    let mut tasks = Vec::new();
    for _ in 0..readers {
        let (url, key, stop) = (format!("{base}/v1/guarantees/{grt}"), key.to_owned(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut out = Vec::new();
            while !stop.is_cancelled() {
                let t = Instant::now();
                let r = client.get(&url).bearer_auth(&key).send().await.expect("read");
                assert!(r.status().is_success(), "{}", r.status());
                let _ = r.bytes().await;
                out.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            out
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort_by(|a, b| a.partial_cmp(b).unwrap());
    all
}

fn summary(what: &str, lat: &[f64], secs: f64) {
    println!(
        "{what}: {} reads in {secs:.1} s ({:.0}/s), p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        lat.len(),
        lat.len() as f64 / secs,
        percentile(lat, 0.5),
        percentile(lat, 0.99),
        lat.last().copied().unwrap_or(f64::NAN)
    );
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let count: i64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let readers: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(4);

    let (url, pg_admin, db_name, tmp) = match std::env::var("CASAPAY_BENCH_PG_URL") {
        Ok(admin) => {
            let name = format!("casapay_bench_{}", casapay::ids::random_secret(8).to_ascii_lowercase());
            let mut conn = sqlx::PgConnection::connect(&admin).await.expect("PostgreSQL");
            sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.unwrap();
            let base = admin.rsplit_once('/').map(|(b, _)| b.to_owned()).unwrap();
            (format!("{base}/{name}"), Some(admin), name, None)
        }
        Err(_) => {
            let dir = std::env::temp_dir().join(format!("casapay_bench_{}", casapay::ids::random_secret(8)));
            std::fs::create_dir_all(&dir).unwrap();
            (format!("sqlite://{}?mode=rwc", dir.join("casapay.db").display()), None, String::new(), Some(dir))
        }
    };
    let backend = if pg_admin.is_some() { "PostgreSQL" } else { "SQLite" };
    let store = Store::connect(&StoreOptions::new(&url)).await.expect("store");
    store.migrate().await.expect("migrate");
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let now = clock.now();
    let a = accounts::create_account(&store, "clock owner", now).await.unwrap();
    let b = accounts::create_account(&store, "bystander", now).await.unwrap();
    let scope = |id: &str| Scope { account_id: id.to_owned(), livemode: false };

    // A: a clock at today, a tenant on it, `count` guarantees starting over the year.
    let call_a = Call::job(scope(&a.id), now);
    let seeded = Instant::now();
    let (clock_id, tenant, policy) = service::write(&store, async |tx| {
        let c = test_clocks::create(tx, &call_a, now, Some("bench".into())).await?;
        let tenant = customers::create(
            tx,
            &call_a,
            customers::NewCustomer { score: Some(90), test_clock: Some(c.id.clone()), ..Default::default() },
        )
        .await?;
        let policy = policies::create(tx, &call_a, bench_policy()).await?;
        Ok((c.id, tenant.id, policy.id))
    })
    .await
    .unwrap();
    for chunk in (0..count).collect::<Vec<_>>().chunks(500) {
        service::write(&store, async |tx| {
            for i in chunk {
                let start = now + DAY + i * 364 * DAY / count.max(1);
                guarantees::create(tx, &call_a, bench_guarantee(&policy, &tenant, start, start + 180 * DAY)).await?;
            }
            Ok(())
        })
        .await
        .unwrap();
    }
    // B: one guarantee on the wall clock, to read.
    let call_b = Call::job(scope(&b.id), now);
    let b_grt = service::write(&store, async |tx| {
        let tenant =
            customers::create(tx, &call_b, customers::NewCustomer { score: Some(90), ..Default::default() }).await?;
        let policy = policies::create(tx, &call_b, bench_policy()).await?;
        guarantees::create(tx, &call_b, bench_guarantee(&policy.id, &tenant.id, now, now + 365 * DAY)).await
    })
    .await
    .unwrap()
    .object
    .id;
    println!("{backend}: seeded {count} guarantees on one clock in {:.1} s", seeded.elapsed().as_secs_f64());

    let state = AppState::new(
        store.clone(),
        clock.clone(),
        ApiConfig { rate_limits: RateLimitConfig::OFF, ..ApiConfig::default() },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(casapay::serve(listener, state, async {
        let _ = shutdown_rx.await;
    }));
    let cancel = CancellationToken::new();
    let engine = Engine::new(store.clone(), clock.clone(), Arc::new(InstantRail), EngineConfig::default());
    let engine_task = tokio::spawn(engine.run(cancel.clone()));

    // B alone, for comparison.
    let stop = CancellationToken::new();
    let reading = tokio::spawn({
        let (base, key, grt, stop) = (base.clone(), b.test_key.clone(), b_grt.clone(), stop.clone());
        async move { read_until(&base, &key, &grt, readers, stop).await }
    });
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.cancel();
    summary("B's retrieves, alone", &reading.await.unwrap(), 3.0);

    // The advance, B reading meanwhile.
    let client = reqwest::Client::new();
    let stop = CancellationToken::new();
    let reading = tokio::spawn({
        let (base, key, grt, stop) = (base.clone(), b.test_key.clone(), b_grt.clone(), stop.clone());
        async move { read_until(&base, &key, &grt, readers, stop).await }
    });
    let started = Instant::now();
    let answer: Value = client
        .post(format!("{base}/v1/test_helpers/test_clocks/{clock_id}/advance"))
        .bearer_auth(&a.test_key)
        .json(&json!({"frozen_time": now + 365 * DAY}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["status"], "advancing", "{answer}");
    loop {
        let c: Value = client
            .get(format!("{base}/v1/test_helpers/test_clocks/{clock_id}"))
            .bearer_auth(&a.test_key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if c["status"] == "ready" {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(600), "no ready within 10 minutes: {c}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let took = started.elapsed().as_secs_f64();
    stop.cancel();
    let during = reading.await.unwrap();
    let changes: i64 = {
        let mut conn = store.acquire().await.unwrap();
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM events WHERE account_id = $1 AND type IN ('guarantee.activated', 'guarantee.expired')",
        )
        .bind(&a.id)
        .fetch_one(&mut *conn)
        .await
        .unwrap()
    };
    println!("advance of {count} guarantees by 365 days: ready in {took:.2} s ({changes} activations and expirations)");
    summary("B's retrieves, during the advance", &during, took);

    cancel.cancel();
    let _ = engine_task.await;
    let _ = shutdown_tx.send(());
    let _ = server.await;
    store.close().await;
    if let Some(admin) = pg_admin {
        let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {db_name} WITH (FORCE)")).execute(&mut conn).await;
    }
    if let Some(dir) = tmp {
        let _ = std::fs::remove_dir_all(dir);
    }
}

fn bench_policy() -> policies::NewPolicy {
    policies::NewPolicy {
        name: "bench".into(),
        coverage_percentage: 100,
        max_coverage_months: 12,
        waiting_period_days: 0,
        eligible_score_minimum: 0,
        deductible_amount: 0,
        active: true,
        metadata: None,
    }
}

fn bench_guarantee(policy: &str, tenant: &str, start: i64, end: i64) -> guarantees::NewGuarantee {
    guarantees::NewGuarantee {
        policy: policy.to_owned(),
        tenant: tenant.to_owned(),
        coverage_amount: Amount::new(120_000).unwrap(),
        currency: Currency::parse("eur").unwrap(),
        start_date: start,
        end_date: end,
        metadata: None,
    }
}
