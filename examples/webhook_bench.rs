//! Webhook delivery rate and commit-to-delivery latency to a loopback receiver.
//!
//!     cargo run --release --example webhook_bench -- [EVENTS] [PER_ENDPOINT] [backlog]
//!
//! With `CASAPAY_BENCH_PG_URL` (an admin URL such as postgres://postgres@127.0.0.1/postgres)
//! it runs on a fresh PostgreSQL database, dropped afterwards; otherwise on a SQLite file in
//! a temporary directory. Events are customers created one transaction at a time by
//! 8 writers; the dispatcher runs its normal loop; the receiver answers 204 at once.
//! With `backlog`, the dispatcher starts only once every event is committed, and the rate
//! is how fast it works off that backlog alone (its ceiling, whatever the writers' pace).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::post;
use casapay::clock::{Clock, SystemClock};
use casapay::jobs::dispatcher::{Dispatcher, DispatcherConfig};
use casapay::service::{self, Call, customers, webhooks};
use casapay::store::{Scope, Store, StoreOptions};
use casapay::webhooks::ssrf::EgressPolicy;
use sqlx::Connection;
use tokio_util::sync::CancellationToken;

#[path = "shared/arrivals.rs"]
mod arrivals;
use arrivals::{Arrivals, receive};

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let events: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(2_000);
    let per_endpoint: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(4);
    let backlog = args.get(3).is_some_and(|a| a == "backlog");

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
    let store = Store::connect(&StoreOptions::new(&url)).await.expect("store");
    store.migrate().await.expect("migrate");
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let account = casapay::service::accounts::create_account(&store, "bench", clock.now()).await.unwrap();
    let scope = Scope { account_id: account.id.clone(), livemode: false };
    let call = |now| Call::job(scope.clone(), now);

    let arrivals: Arrivals = Arc::default();
    let app = Router::new().route("/hook", post(receive)).with_state(arrivals.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    let c = call(clock.now());
    service::write(&store, async |tx| {
        webhooks::create(
            tx,
            &c,
            webhooks::NewEndpoint {
                url: hook.clone(),
                enabled_events: vec!["customer.created".into()],
                description: None,
                metadata: None,
                signature_scheme: casapay::domain::webhook::SignatureScheme::HmacSha256,
                rate_limit: None,
            },
        )
        .await
    })
    .await
    .unwrap();

    let cancel = CancellationToken::new();
    let dispatcher = Dispatcher::new(
        store.clone(),
        clock.clone(),
        DispatcherConfig {
            per_endpoint,
            // One account: its cap is the endpoint's, so the argument sets what is in flight.
            per_account: per_endpoint,
            egress: EgressPolicy { allow_http: true, allow_private: true },
            ..Default::default()
        },
    );
    let mut task = (!backlog).then(|| tokio::spawn(dispatcher.clone().run(cancel.clone())));

    let commits: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let started = Instant::now();
    let writers = 8;
    let mut handles = Vec::new();
    for w in 0..writers {
        let (store, clock, commits, scope) = (store.clone(), clock.clone(), commits.clone(), scope.clone());
        handles.push(tokio::spawn(async move {
            for _ in (w..events).step_by(writers) {
                let c = Call::job(scope.clone(), clock.now());
                let created = service::write(&store, async |tx| customers::create(tx, &c, Default::default()).await)
                    .await
                    .unwrap();
                commits.lock().unwrap().insert(created.id, Instant::now());
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    let produced = started.elapsed();
    let started = if backlog {
        task = Some(tokio::spawn(dispatcher.run(cancel.clone())));
        Instant::now()
    } else {
        started
    };
    let deadline = Instant::now() + Duration::from_secs(300);
    while arrivals.lock().unwrap().len() < events {
        assert!(Instant::now() < deadline, "only {} of {events} delivered", arrivals.lock().unwrap().len());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let finished = started.elapsed();
    cancel.cancel();
    if let Some(task) = task {
        let _ = task.await;
    }

    let mut latencies: Vec<f64> = {
        let arrivals = arrivals.lock().unwrap();
        let commits = commits.lock().unwrap();
        commits.iter().map(|(id, at)| arrivals[id].saturating_duration_since(*at).as_secs_f64() * 1000.0).collect()
    };
    latencies.sort_by(f64::total_cmp);
    println!(
        "backend={} events={events} per_endpoint={per_endpoint} backlog={backlog} produced_in={:.2}s delivered_in={:.2}s \
         rate={:.0}/s commit_to_delivery_ms p50={:.1} p99={:.1} max={:.1}",
        if pg_admin.is_some() { "postgres" } else { "sqlite" },
        produced.as_secs_f64(),
        finished.as_secs_f64(),
        events as f64 / finished.as_secs_f64(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or(0.0),
    );
    store.close().await;
    if let Some(admin) = pg_admin {
        let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {db_name} WITH (FORCE)")).execute(&mut conn).await;
    }
    if let Some(dir) = tmp {
        let _ = std::fs::remove_dir_all(dir);
    }
}
