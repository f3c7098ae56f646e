//! The money invariant: whatever the concurrency, retries or crashes, the sum paid on
//! a guarantee never exceeds its total coverage and no claim is paid twice.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use casapay::clock::ManualClock;
use casapay::domain::payout::Payout;
use casapay::jobs::engine::{Engine, EngineConfig};
use casapay::service::rail::{InstantRail, PayoutRail, RailFuture, RailOutcome};
use casapay::service::review::{self, PayoutConfig};
use casapay::store::Store;
use futures_util::future::join_all;
use serde_json::{Value, json};
use sqlx::Row;
use tokio_util::sync::CancellationToken;

use crate::support::{DEMO_KEY, DOCS_NOW, TestApp, engine_config, id, open_store};

const DAY: i64 = 86_400;
const DUE: i64 = DOCS_NOW + 30 * DAY;
/// The most claims a test here files on one guarantee.
const MAX_CLAIMS: i64 = 50;

/// The due date of the `i`th claim: each in a calendar month of its own (31 days
/// apart never lands twice in one month), so that only the total coverage limits
/// what is paid, not the per-month cap (tested below, and in `engine.rs`).
fn due_date(i: usize) -> i64 {
    DUE + i as i64 * 31 * DAY
}

/// A guarantee of `months` x 120,000 on the demo account, long enough for every
/// claim's month, and the clock past the last due date.
async fn guarantee_of(app: &TestApp, months: i64) -> String {
    let p = app
        .post(
            "/v1/guarantee_policies",
            DEMO_KEY,
            json!({"name": "p", "coverage_percentage": 100, "max_coverage_months": months, "waiting_period_days": 30}),
        )
        .await
        .ok();
    let g = app
        .post(
            "/v1/guarantees",
            DEMO_KEY,
            json!({"policy": id(&p), "tenant": "cus_123456789", "coverage_amount": 120000, "currency": "eur",
                   "start_date": DOCS_NOW, "end_date": due_date(MAX_CLAIMS as usize) + 365 * DAY}),
        )
        .await
        .ok();
    app.clock.set(due_date(MAX_CLAIMS as usize) + DAY);
    id(&g)
}

fn claim_body(grt: &str, i: usize, reason: &str) -> Value {
    assert!((i as i64) < MAX_CLAIMS);
    json!({"guarantee": grt, "amount": 120000, "currency": "eur", "reason": reason,
           "evidence": {"invoice_id": format!("inv_{i}"), "due_date": due_date(i)}})
}

/// A guarantee of `months` (as `guarantee_of`) with `claims` missed payments filed on it.
async fn missed_payments(app: &TestApp, months: i64, claims: usize) -> String {
    let grt = guarantee_of(app, months).await;
    for i in 0..claims {
        app.post("/v1/claims", DEMO_KEY, claim_body(&grt, i, "missed_payment")).await.ok();
    }
    grt
}

/// `guarantees` guarantees of `months` (as `guarantee_of`), with `claims` missed
/// payments filed on them in turn.
async fn round_robin(app: &TestApp, guarantees: usize, months: i64, claims: usize) -> Vec<String> {
    let mut grts = Vec::new();
    for _ in 0..guarantees {
        grts.push(guarantee_of(app, months).await);
    }
    for i in 0..claims {
        app.post("/v1/claims", DEMO_KEY, claim_body(&grts[i % grts.len()], i, "missed_payment")).await.ok();
    }
    grts
}

fn engine_on(app: &TestApp, store: casapay::store::Store, rail: Arc<dyn PayoutRail>) -> Engine {
    Engine::new(store, app.clock.clone(), rail, engine_config(5, 3, 2))
}

/// Reads the ledger from the database and checks the invariant; returns what was paid.
async fn check_invariant(app: &TestApp, grt: &str) -> i64 {
    let pool = app.store.pool();
    let g = app.get(&format!("/v1/guarantees/{grt}"), DEMO_KEY).await.ok();
    let total = g["total_coverage"].as_i64().unwrap();
    let paid = g["claims_paid"].as_i64().unwrap();
    assert!(paid <= total, "paid {paid} exceeds the coverage {total}");

    let rows = sqlx::query("SELECT claim_id, amount, status FROM payouts WHERE guarantee_id = $1")
        .bind(grt)
        .fetch_all(pool)
        .await
        .unwrap();
    let mut per_claim: HashMap<String, usize> = HashMap::new();
    let mut sum_paid = 0;
    for r in &rows {
        *per_claim.entry(r.get::<String, _>("claim_id")).or_default() += 1;
        if r.get::<String, _>("status") == "paid" {
            sum_paid += r.get::<i64, _>("amount");
        }
    }
    assert!(per_claim.values().all(|n| *n == 1), "one payout per claim at most: {per_claim:?}");
    assert_eq!(sum_paid, paid, "the guarantee's claims_paid is the sum of its paid payouts");

    // Every claim is decided at most once, and paid claims match their payouts.
    let events =
        sqlx::query("SELECT type, object FROM events WHERE type IN ('claim.approved', 'claim.denied', 'claim.paid')")
            .fetch_all(pool)
            .await
            .unwrap();
    let mut decisions: HashMap<(String, String), usize> = HashMap::new();
    for e in &events {
        let object: Value = serde_json::from_str(&e.get::<String, _>("object")).unwrap();
        if object["guarantee"] == grt {
            *decisions.entry((e.get::<String, _>("type"), id(&object))).or_default() += 1;
        }
    }
    assert!(decisions.values().all(|n| *n == 1), "each decision and payment happens once: {decisions:?}");
    paid
}

/// Approves every claim in `claims` twice, all at once, while `engines` run (a second
/// approval may only be refused as already handled), then stops the engines and
/// waits for the background work to settle.
async fn approve_twice_then_stop(
    app: &TestApp,
    op: &str,
    claims: &[String],
    cancel: &CancellationToken,
    engines: impl IntoIterator<Item = tokio::task::JoinHandle<()>>,
) {
    let paths: Vec<String> = claims.iter().chain(claims).map(|c| format!("/v1/claims/{c}/approve")).collect();
    let approvals = join_all(paths.iter().map(|p| app.post(p, op, json!({})))).await;
    for r in &approvals {
        assert!(
            r.status == 200
                || ["claim_not_under_review", "claim_not_approvable"]
                    .contains(&r.body["error"]["code"].as_str().unwrap_or("")),
            "unexpected answer: {} {}",
            r.status,
            r.text
        );
    }
    cancel.cancel();
    for e in engines {
        tokio::time::timeout(Duration::from_secs(30), e).await.expect("engine stops").unwrap();
    }
    app.settle().await;
}

#[tokio::test]
async fn fifty_concurrent_claims_where_three_fit() {
    let app = TestApp::start().await;
    let op = app.operator_key().await;
    let grt = guarantee_of(&app, 3).await;

    // Two engines on two pools, as two replicas would be, running while claims arrive.
    let cancel = CancellationToken::new();
    let replica = open_store(&app.db_url).await;
    let engines = [
        tokio::spawn(engine_on(&app, app.store.clone(), Arc::new(InstantRail)).run(cancel.clone())),
        tokio::spawn(engine_on(&app, replica, Arc::new(InstantRail)).run(cancel.clone())),
    ];
    let filed = join_all((0..50).map(|i| {
        let reason = if i % 2 == 0 { "missed_payment" } else { "lease_break" };
        app.post("/v1/claims", DEMO_KEY, claim_body(&grt, i, reason))
    }))
    .await;
    // Once three are paid the guarantee is used up, and later claims are refused at the door.
    let mut lease_breaks = Vec::new();
    let mut refused = 0;
    for r in filed {
        if r.status == 200 {
            if r.body["reason"] == "lease_break" {
                lease_breaks.push(id(&r.body));
            }
        } else {
            assert_eq!(r.body["error"]["code"], "guarantee_not_claimable", "{}", r.text);
            refused += 1;
        }
    }
    assert!(refused < 47, "at least three claims were filed");
    // Operators approve every lease break, each twice, all at once, while the engines run.
    approve_twice_then_stop(&app, &op, &lease_breaks, &cancel, engines).await;

    assert_eq!(check_invariant(&app, &grt).await, 360_000, "the coverage is used exactly");
    let g = app.get(&format!("/v1/guarantees/{grt}"), DEMO_KEY).await.ok();
    assert_eq!(g["status"], "claimed");
    let paid = app.get(&format!("/v1/claims?guarantee={grt}&status=paid&limit=100"), DEMO_KEY).await.ok();
    let paid_sum: i64 = paid["data"].as_array().unwrap().iter().map(|c| c["amount_approved"].as_i64().unwrap()).sum();
    assert_eq!(paid_sum, 360_000);
    assert_eq!(paid["data"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn two_replicas_share_the_work_without_doing_it_twice() {
    let app = TestApp::start().await;
    let grt = missed_payments(&app, 10, 30).await;
    let a = engine_on(&app, app.store.clone(), Arc::new(InstantRail));
    let b = engine_on(&app, open_store(&app.db_url).await, Arc::new(InstantRail));
    let (ra, rb) = tokio::join!(a.run_until_idle(), b.run_until_idle());
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert_eq!(ra.claims_reviewed + rb.claims_reviewed, 30, "each claim reviewed once: {ra:?} {rb:?}");
    assert_eq!(ra.payouts_sent + rb.payouts_sent, 10, "each payout sent once: {ra:?} {rb:?}");
    assert_eq!(check_invariant(&app, &grt).await, 1_200_000);
    let denied = app.get(&format!("/v1/claims?guarantee={grt}&status=denied&limit=100"), DEMO_KEY).await.ok();
    assert_eq!(denied["data"].as_array().unwrap().len(), 20);
    assert!(denied["data"].as_array().unwrap().iter().all(|c| c["denial_reason"] == "coverage_exhausted"));
}

#[tokio::test]
async fn replicas_reviewing_batches_across_shared_guarantees_neither_deadlock_nor_overpay() {
    let app = TestApp::start().await;
    // Claims filed round-robin, so every batch spans several guarantees in no id order.
    let grts = round_robin(&app, 4, 3, 40).await;
    let engines: Vec<Engine> = [app.store.clone(), open_store(&app.db_url).await, open_store(&app.db_url).await]
        .into_iter()
        .map(|store| Engine::new(store, app.clock.clone(), Arc::new(InstantRail), engine_config(5, 7, 1)))
        .collect();
    let reports = join_all(engines.iter().map(|e| e.run_until_idle())).await;
    let (mut reviewed, mut paid) = (0, 0);
    for r in reports {
        let r = r.expect("no replica's step failed (a deadlock would)");
        reviewed += r.claims_reviewed;
        paid += r.payouts_sent;
    }
    assert_eq!((reviewed, paid), (40, 12), "each claim reviewed once, three paid per guarantee");
    for grt in &grts {
        assert_eq!(check_invariant(&app, grt).await, 360_000);
        // The first three filed on each guarantee are the ones paid.
        let paid = app.get(&format!("/v1/claims?guarantee={grt}&status=paid&limit=100"), DEMO_KEY).await.ok();
        assert_eq!(paid["data"].as_array().unwrap().len(), 3);
    }
}

#[tokio::test]
async fn a_running_engine_with_several_workers_works_off_a_backlog_once() {
    let app = TestApp::start().await;
    let grts = round_robin(&app, 3, 2, 30).await;
    let engine = Engine::new(app.store.clone(), app.clock.clone(), Arc::new(InstantRail), engine_config(5, 2, 4));
    let cancel = CancellationToken::new();
    let task = tokio::spawn(engine.run(cancel.clone()));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let open = app.get("/v1/claims?status=under_review&limit=100", DEMO_KEY).await.ok();
        let approved = app.get("/v1/claims?status=approved&limit=100", DEMO_KEY).await.ok();
        if open["data"].as_array().unwrap().is_empty() && approved["data"].as_array().unwrap().is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "the engine did not finish its backlog");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cancel.cancel();
    task.await.unwrap();
    for grt in &grts {
        assert_eq!(check_invariant(&app, grt).await, 240_000, "two claims paid on each guarantee");
    }
    let denied = app.get("/v1/claims?status=denied&limit=100", DEMO_KEY).await.ok();
    assert_eq!(denied["data"].as_array().unwrap().len(), 24);
}

/// A rail that remembers what it paid (idempotent on the payout id) and every call it
/// got. It can be told to pay and then never answer, as if the process died before
/// recording the answer, to answer "not known yet" for one payout, and to take a while.
#[derive(Default)]
struct LedgerRail {
    paid: Mutex<Vec<String>>,
    calls: Mutex<Vec<String>>,
    hang_after_paying: Mutex<bool>,
    unsure_about: Mutex<Option<String>>,
    delay: Option<Duration>,
}

impl LedgerRail {
    fn paid(&self) -> Vec<String> {
        self.paid.lock().unwrap().clone()
    }

    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

impl PayoutRail for LedgerRail {
    fn pay<'a>(&'a self, payout: &'a Payout, now: i64) -> RailFuture<'a> {
        Box::pin(async move {
            self.calls.lock().unwrap().push(payout.id.clone());
            if let Some(delay) = self.delay {
                tokio::time::sleep(delay).await;
            }
            if self.unsure_about.lock().unwrap().as_deref() == Some(payout.id.as_str()) {
                return Err("connection reset before the bank answered".into());
            }
            {
                let mut paid = self.paid.lock().unwrap();
                if !paid.contains(&payout.id) {
                    paid.push(payout.id.clone());
                }
            }
            if std::mem::replace(&mut *self.hang_after_paying.lock().unwrap(), false) {
                std::future::pending::<()>().await;
            }
            Ok(RailOutcome::Paid { arrival_date: now })
        })
    }
}

/// A rail that never answers: the process is killed while the rail has the payout,
/// after its lease committed and before any answer is recorded.
struct HangingRail;

impl PayoutRail for HangingRail {
    fn pay<'a>(&'a self, _payout: &'a Payout, _now: i64) -> RailFuture<'a> {
        Box::pin(std::future::pending())
    }
}

/// One step of payouts on `store` at `clock`, with the default lease and timeout.
async fn pay_step(store: &Store, rail: &dyn PayoutRail, clock: &ManualClock) -> usize {
    review::pay_due(store, None, rail, clock, 10, &PayoutConfig::default()).await.expect("payout step")
}

/// One claim on a guarantee of 12 months, approved by one review step at `DUE + DAY`:
/// its payout is pending. Returns the guarantee, the claim and the payout.
async fn approved_claim(app: &TestApp) -> (String, String, String) {
    let grt = guarantee_of(app, 12).await;
    let c = app.post("/v1/claims", DEMO_KEY, claim_body(&grt, 1, "missed_payment")).await.ok();
    assert_eq!(review::review_due(&app.store, None, DUE + DAY, 1).await.unwrap(), 1);
    let approved = app.get(&format!("/v1/claims/{}", id(&c)), DEMO_KEY).await.ok();
    assert_eq!(approved["status"], "approved");
    let po = approved["payout"].as_str().unwrap().to_owned();
    (grt, id(&c), po)
}

/// The guarantee's `claims_paid` and `remaining_coverage`, the payout's status and how
/// many `payout.paid` events there are: what a settlement changes.
async fn ledger(app: &TestApp, grt: &str, po: &str) -> (i64, i64, String, i64) {
    let g = app.get(&format!("/v1/guarantees/{grt}"), DEMO_KEY).await.ok();
    let payout = app.get(&format!("/v1/payouts/{po}"), DEMO_KEY).await.ok();
    let events = app.get("/v1/events?type=payout.paid&limit=100", DEMO_KEY).await.ok();
    (
        g["claims_paid"].as_i64().unwrap(),
        g["remaining_coverage"].as_i64().unwrap(),
        payout["status"].as_str().unwrap().to_owned(),
        events["data"].as_array().unwrap().len() as i64,
    )
}

#[tokio::test]
async fn crashes_between_and_inside_steps_never_pay_twice() {
    let app = TestApp::start().await;
    let (grt, _, po) = approved_claim(&app).await;
    // Step one only: the claim is approved, its amount held back, its payout pending.
    let pending = (0, 1_320_000, "pending".to_owned(), 0);
    assert_eq!(ledger(&app, &grt, &po).await, pending);
    let config = PayoutConfig::default();
    let clock = ManualClock::new(DUE + DAY);

    // The process dies inside the rail call, after leasing the payout: nothing is
    // recorded, and no transaction was left open (the next steps do not wait for one).
    let hung = tokio::time::timeout(Duration::from_millis(200), pay_step(&app.store, &HangingRail, &clock)).await;
    assert!(hung.is_err(), "the hanging step was cut off");
    assert_eq!(ledger(&app, &grt, &po).await, pending);

    // While the dead step's lease holds, no step sends the payout again.
    let rail = Arc::new(LedgerRail::default());
    clock.advance(config.lease_seconds - 1);
    assert_eq!(pay_step(&app.store, rail.as_ref(), &clock).await, 0);
    assert!(rail.calls().is_empty(), "the leased payout was left alone");

    // Once it runs out, the payout is leased again and the rail pays it; then the
    // process dies before the answer is recorded: the payout stays pending.
    clock.advance(1);
    *rail.hang_after_paying.lock().unwrap() = true;
    let crashed = tokio::time::timeout(Duration::from_millis(200), pay_step(&app.store, rail.as_ref(), &clock)).await;
    assert!(crashed.is_err(), "expected the simulated crash");
    assert_eq!(rail.paid(), vec![po.clone()], "the rail has paid");
    assert_eq!(ledger(&app, &grt, &po).await, pending);

    // A new engine (another replica) with its clock past that lease: the payout is sent
    // again (the rail knows it), recorded once.
    clock.advance(config.lease_seconds);
    let engine = Engine::new(
        open_store(&app.db_url).await,
        clock.clone(),
        rail.clone(),
        EngineConfig { poll_interval: Duration::from_millis(5), batch_size: 3, ..EngineConfig::default() },
    );
    let report = engine.run_until_idle().await.unwrap();
    assert_eq!(report.payouts_sent, 1);
    assert_eq!(rail.calls(), vec![po.clone(), po.clone()], "sent again after each crash");
    assert_eq!(rail.paid(), vec![po.clone()], "the rail paid this payout once");
    assert_eq!(ledger(&app, &grt, &po).await, (120_000, 1_320_000, "paid".to_owned(), 1));
    assert_eq!(check_invariant(&app, &grt).await, 120_000);
    clock.advance(config.lease_seconds);
    assert!(engine.run_until_idle().await.unwrap().is_idle());
}

/// The fence: an answer recorded under a lease that ran out and was taken over does
/// nothing, however late it comes; the new holder's answer settles the payout once.
#[tokio::test]
async fn an_answer_under_a_lease_taken_over_settles_nothing() {
    let app = TestApp::start().await;
    let (grt, claim, po) = approved_claim(&app).await;
    let pending = (0, 1_320_000, "pending".to_owned(), 0);
    let (now, lease) = (DUE + DAY, PayoutConfig::default().lease_seconds);
    let paid = || Some(RailOutcome::Paid { arrival_date: now });

    let stale = review::lease_payouts(&app.store, now, 10, lease).await.unwrap();
    assert_eq!(stale.iter().map(|l| l.payout.id.as_str()).collect::<Vec<_>>(), [po.as_str()]);
    assert!(review::lease_payouts(&app.store, now + lease - 1, 10, lease).await.unwrap().is_empty(), "held");
    let current = review::lease_payouts(&app.store, now + lease, 10, lease).await.unwrap();
    assert_eq!(current.len(), 1, "taken over once the lease ran out");

    let late: Vec<_> = stale.iter().map(|l| (l.clone(), paid())).collect();
    assert_eq!(review::settle_payouts(&app.store, now + lease, late.clone()).await.unwrap(), 0);
    assert_eq!(ledger(&app, &grt, &po).await, pending, "the stale answer changed nothing");
    let c = app.get(&format!("/v1/claims/{claim}"), DEMO_KEY).await.ok();
    assert_eq!(c["status"], "approved");

    let answer: Vec<_> = current.iter().map(|l| (l.clone(), paid())).collect();
    assert_eq!(review::settle_payouts(&app.store, now + lease, answer.clone()).await.unwrap(), 1);
    assert_eq!(ledger(&app, &grt, &po).await, (120_000, 1_320_000, "paid".to_owned(), 1));
    // Neither answer settles it again.
    assert_eq!(review::settle_payouts(&app.store, now + lease, answer).await.unwrap(), 0);
    assert_eq!(review::settle_payouts(&app.store, now + lease, late).await.unwrap(), 0);
    assert_eq!(check_invariant(&app, &grt).await, 120_000);
    let c = app.get(&format!("/v1/claims/{claim}"), DEMO_KEY).await.ok();
    assert_eq!(c["status"], "paid");
}

/// The rail is called outside any transaction: while a payout's rail call takes a
/// second, API writes (on SQLite: the one writer they all wait for) go through at
/// their usual speed, and the payout is recorded once the rail answers.
#[tokio::test]
async fn a_rail_that_takes_a_second_leaves_api_writes_alone() {
    let app = TestApp::start().await;
    let (grt, _, po) = approved_claim(&app).await;
    let rail = Arc::new(LedgerRail { delay: Some(Duration::from_secs(1)), ..LedgerRail::default() });
    let cancel = CancellationToken::new();
    let engine = tokio::spawn(engine_on(&app, app.store.clone(), rail.clone()).run(cancel.clone()));
    let deadline = Instant::now() + Duration::from_secs(10);
    while rail.calls().is_empty() {
        assert!(Instant::now() < deadline, "the engine did not call the rail");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut latencies = Vec::new();
    for i in 0..5 {
        let started = Instant::now();
        app.post("/v1/customers", DEMO_KEY, json!({"name": format!("Tenant {i}"), "score": 70})).await.ok();
        latencies.push(started.elapsed());
    }
    let slowest = latencies.iter().max().unwrap();
    assert!(*slowest < Duration::from_millis(300), "API writes waited for the rail: {latencies:?}");
    assert!(rail.paid().is_empty(), "the writes were made while the rail call was in progress");
    while app.get(&format!("/v1/payouts/{po}"), DEMO_KEY).await.ok()["status"] != "paid" {
        assert!(Instant::now() < deadline, "the payout was not recorded after the rail answered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(10), engine).await.expect("engine stops").unwrap();
    assert_eq!(rail.calls(), vec![po]);
    assert_eq!(check_invariant(&app, &grt).await, 120_000);
}

/// A rail call that does not answer within the timeout is given up: the step ends,
/// and the payout is given back for the next step rather than held until its lease
/// runs out.
#[tokio::test]
async fn a_rail_that_does_not_answer_in_time_gives_the_payout_back() {
    let app = TestApp::start().await;
    let (grt, _, po) = approved_claim(&app).await;
    let clock = ManualClock::new(DUE + DAY);
    let config = PayoutConfig { rail_timeout: Duration::from_millis(100), ..PayoutConfig::default() };
    let step = review::pay_due(&app.store, None, &HangingRail, clock.as_ref(), 10, &config);
    let settled = tokio::time::timeout(Duration::from_secs(10), step).await.expect("the step was not cut off");
    assert_eq!(settled.unwrap(), 0);
    let rail = LedgerRail::default();
    assert_eq!(pay_step(&app.store, &rail, &clock).await, 1, "sent at once by the next step");
    assert_eq!(rail.calls(), vec![po]);
    assert_eq!(check_invariant(&app, &grt).await, 120_000);
}

/// Two replicas stepping at once with a slow rail: each leases payouts the other does
/// not hold, so every payout reaches the rail once and is recorded once.
#[tokio::test]
async fn replicas_with_a_slow_rail_send_each_payout_once() {
    let app = TestApp::start().await;
    let grt = missed_payments(&app, 12, 8).await;
    let rail = Arc::new(LedgerRail { delay: Some(Duration::from_millis(100)), ..LedgerRail::default() });
    let config = EngineConfig { poll_interval: Duration::from_millis(5), batch_size: 2, ..EngineConfig::default() };
    let a = Engine::new(app.store.clone(), app.clock.clone(), rail.clone(), config.clone());
    let b = Engine::new(open_store(&app.db_url).await, app.clock.clone(), rail.clone(), config);
    let (ra, rb) = tokio::join!(a.run_until_idle(), b.run_until_idle());
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    app.settle().await;
    assert_eq!(ra.payouts_sent + rb.payouts_sent, 8, "each payout recorded once: {ra:?} {rb:?}");
    let mut calls = rail.calls();
    calls.sort();
    calls.dedup();
    assert_eq!((calls.len(), rail.calls().len()), (8, 8), "each payout sent once: {:?}", rail.calls());
    assert_eq!(check_invariant(&app, &grt).await, 960_000);
}

#[tokio::test]
async fn a_payout_the_rail_is_unsure_of_waits_without_holding_back_its_batch() {
    let app = TestApp::start().await;
    let grt = missed_payments(&app, 12, 3).await;
    let now = DUE + DAY;
    assert_eq!(review::review_due(&app.store, None, now, 10).await.unwrap(), 3);
    let approved = app.get(&format!("/v1/claims?guarantee={grt}&status=approved"), DEMO_KEY).await.ok();
    let payouts: Vec<String> =
        approved["data"].as_array().unwrap().iter().map(|c| c["payout"].as_str().unwrap().to_owned()).collect();
    assert_eq!(payouts.len(), 3);

    let clock = ManualClock::new(now);
    let rail = LedgerRail::default();
    *rail.unsure_about.lock().unwrap() = Some(payouts[1].clone());
    assert_eq!(pay_step(&app.store, &rail, &clock).await, 2, "the other two are settled");
    let status = |po: String| {
        let app = &app;
        async move { app.get(&format!("/v1/payouts/{po}"), DEMO_KEY).await.ok()["status"].clone() }
    };
    assert_eq!(status(payouts[0].clone()).await, "paid");
    assert_eq!(status(payouts[1].clone()).await, "pending");
    assert_eq!(status(payouts[2].clone()).await, "paid");
    assert_eq!(check_invariant(&app, &grt).await, 240_000);

    // Once the rail knows, the next step settles it: its lease was given back, so at
    // the same time, not when the lease would have run out.
    *rail.unsure_about.lock().unwrap() = None;
    assert_eq!(pay_step(&app.store, &rail, &clock).await, 1);
    assert_eq!(status(payouts[1].clone()).await, "paid");
    assert_eq!(check_invariant(&app, &grt).await, 360_000);
    assert_eq!(rail.paid().len(), 3);
}

/// The per-period cap under concurrency: many claims for one month, filed at once on
/// one guarantee while two replicas' engines (several workers each, on PostgreSQL)
/// review them and operators approve the lease breaks among them, twice each, at
/// once. What is approved for the month never exceeds one `coverage_amount`, and
/// the month next to it is capped on its own.
#[tokio::test]
async fn many_claims_for_one_month_at_once_never_exceed_its_cover() {
    let app = TestApp::start().await;
    let op = app.operator_key().await;
    let grt = guarantee_of(&app, 12).await;
    let (march, april) = (1_709_251_200, 1_711_929_600);
    // 30 claims for March (9,000 to 11,900: 313,500 in all) and 10 for April (20,000
    // each), every other one a lease break, on the month's first and last seconds too.
    let claims: Vec<(Value, i64)> = (0..40)
        .map(|i: i64| {
            let (month, next, amount) =
                if i < 30 { (march, april, 9_000 + i * 100) } else { (april, april + 30 * DAY, 20_000) };
            let due = match i % 3 {
                0 => month,
                1 => next - 1,
                _ => month + (i % 28) * DAY,
            };
            let reason = if i % 2 == 0 { "missed_payment" } else { "lease_break" };
            (
                json!({"guarantee": grt, "amount": amount, "currency": "eur", "reason": reason,
                       "evidence": {"invoice_id": format!("inv_{i}"), "due_date": due}}),
                month,
            )
        })
        .collect();

    let cancel = CancellationToken::new();
    let config = engine_config(2, 2, 3);
    let replica = open_store(&app.db_url).await;
    let engines = [
        tokio::spawn(
            Engine::new(app.store.clone(), app.clock.clone(), Arc::new(InstantRail), config.clone())
                .run(cancel.clone()),
        ),
        tokio::spawn(Engine::new(replica, app.clock.clone(), Arc::new(InstantRail), config).run(cancel.clone())),
    ];
    let filed = join_all(claims.iter().map(|(body, _)| app.post("/v1/claims", DEMO_KEY, body.clone()))).await;
    let filed: Vec<Value> = filed.into_iter().map(|r| r.ok()).collect();
    let lease_breaks: Vec<String> = filed.iter().filter(|c| c["reason"] == "lease_break").map(id).collect();
    approve_twice_then_stop(&app, &op, &lease_breaks, &cancel, engines).await;

    // Per month: what was approved, from the claims as stored.
    let mut approved: HashMap<i64, i64> = HashMap::new();
    let mut denied_for_the_month = 0;
    for (c, (_, month)) in filed.iter().zip(&claims) {
        let c = app.get(&format!("/v1/claims/{}", id(c)), DEMO_KEY).await.ok();
        match c["status"].as_str().unwrap() {
            "paid" => {
                let amount = c["amount_approved"].as_i64().unwrap();
                assert!(amount <= c["amount"].as_i64().unwrap());
                *approved.entry(*month).or_default() += amount;
            }
            "denied" => {
                assert_eq!(c["denial_reason"], "period_limit_reached", "{c}");
                denied_for_the_month += 1;
            }
            // A lease break whose month was used up before an operator approved it.
            "under_review" => assert_eq!(c["reason"], "lease_break"),
            other => panic!("claim left {other}: {c}"),
        }
    }
    // Each month's cover is used exactly: the claims for it are worth more.
    assert_eq!(approved.get(&march), Some(&120_000), "March: {approved:?}");
    assert_eq!(approved.get(&april), Some(&120_000), "April: {approved:?}");
    assert!(denied_for_the_month > 0);
    assert_eq!(check_invariant(&app, &grt).await, 240_000);
}
