//! The store interface, driven directly: the same story must hold on PostgreSQL and
//! SQLite (scripts/test runs this file on both).

use std::time::Duration;

use casapay::domain::claim::{Claim, ClaimReason, ClaimStatus, Evidence, StatusTransitions};
use casapay::domain::customer::Customer;
use casapay::domain::guarantee::{Guarantee, GuaranteeStatus};
use casapay::domain::metadata::Metadata;
use casapay::domain::payout::{Payout, PayoutStatus};
use casapay::domain::policy::Policy;
use casapay::ids::Kind;
use casapay::store::accounts::{KeyKind, KeyRecord};
use casapay::store::{self, Backend, CreatedFilter, PageRequest, Scope, Store};

use crate::support::{TestDb, open_store, refused_write};

fn scope(account: &str, livemode: bool) -> Scope {
    Scope { account_id: account.into(), livemode }
}

fn customer(id: &str, created: i64, livemode: bool) -> Customer {
    Customer {
        id: id.into(),
        name: Some("n".into()),
        email: None,
        score: Some(70),
        metadata: Metadata::from([("k".to_string(), "v".to_string())]),
        test_clock: None,
        livemode,
        created,
    }
}

fn policy(id: &str) -> Policy {
    Policy {
        id: id.into(),
        name: "p".into(),
        coverage_percentage: 100,
        max_coverage_months: 2,
        waiting_period_days: 0,
        eligible_score_minimum: 0,
        deductible_amount: 0,
        active: true,
        metadata: Metadata::new(),
        livemode: false,
        created: 1,
    }
}

fn guarantee(id: &str, status: GuaranteeStatus, start: i64, end: i64) -> Guarantee {
    Guarantee {
        id: id.into(),
        status,
        policy: "gpol_1".into(),
        tenant: "cus_1".into(),
        coverage_amount: 100,
        total_coverage: 200,
        currency: "eur".into(),
        start_date: start,
        end_date: end,
        claims_filed: 0,
        claims_paid: 0,
        claims_reserved: 0,
        claims_recovered: 0,
        cancelled_at: None,
        metadata: Metadata::new(),
        livemode: false,
        created: 1,
    }
}

/// `cus_1`, `gpol_1` and the active guarantee `grt_1` on them.
async fn insert_active_guarantee(tx: &mut store::Tx, s: &Scope) {
    store::customers::insert(tx, s, &customer("cus_1", 1, false)).await.unwrap();
    store::policies::insert(tx, s, &policy("gpol_1")).await.unwrap();
    store::guarantees::insert(tx, s, &guarantee("grt_1", GuaranteeStatus::Active, 0, 1_000)).await.unwrap();
}

/// A pending payout of 100 on `grt_1` for `claim`.
fn payout(id: &str, claim: &str) -> Payout {
    Payout {
        id: id.into(),
        amount: 100,
        currency: "eur".into(),
        claim: claim.into(),
        guarantee: "grt_1".into(),
        status: PayoutStatus::Pending,
        arrival_date: None,
        livemode: false,
        created: 3,
    }
}

fn claim(id: &str, invoice: &str) -> Claim {
    Claim {
        id: id.into(),
        guarantee: "grt_1".into(),
        amount: 100,
        amount_approved: None,
        currency: "eur".into(),
        status: ClaimStatus::UnderReview,
        reason: ClaimReason::MissedPayment,
        evidence: Evidence { invoice_id: invoice.into(), due_date: 5, description: None, files: vec![] },
        payout: None,
        denial_reason: None,
        reviewed_at: None,
        status_transitions: StatusTransitions { submitted_at: Some(2), under_review_at: Some(2), ..Default::default() },
        review: Default::default(),
        awaiting_operator: false,
        metadata: Metadata::new(),
        livemode: false,
        created: 2,
    }
}

async fn seeded() -> (TestDb, Store, Scope) {
    let db = TestDb::create().await;
    let store = open_store(&db.url).await;
    let mut tx = store.begin().await.unwrap();
    store::accounts::insert_account(&mut tx, "acct_1", "one", 1).await.unwrap();
    store::accounts::insert_account(&mut tx, "acct_2", "two", 1).await.unwrap();
    tx.commit().await.unwrap();
    (db, store, scope("acct_1", false))
}

#[tokio::test]
async fn keys_are_found_by_hash_only() {
    let (_db, store, _) = seeded().await;
    let mut conn = store.acquire().await.unwrap();
    let key = KeyRecord {
        id: Kind::ApiKey.new_id(),
        account_id: Some("acct_1".into()),
        kind: KeyKind::Secret,
        livemode: true,
        key_hash: "ab".repeat(32),
        last4: "abcd".into(),
        created: 1,
        expires_at: None,
        revoked_at: None,
        operator_id: None,
        operator_disabled_at: None,
    };
    store::accounts::insert_key(&mut conn, &key).await.unwrap();
    let found = store::accounts::find_key_by_hash(&mut conn, &"ab".repeat(32)).await.unwrap().unwrap();
    assert_eq!((found.account_id.as_deref(), found.livemode, found.kind), (Some("acct_1"), true, KeyKind::Secret));
    assert!(store::accounts::find_key_by_hash(&mut conn, &"cd".repeat(32)).await.unwrap().is_none());
    assert!(store::accounts::insert_key(&mut conn, &key).await.is_err(), "hashes are unique");
    assert_eq!(store::accounts::expire_secret_keys(&mut conn, "acct_1", true, 10).await.unwrap(), 1);
    let found = store::accounts::find_key_by_hash(&mut conn, &"ab".repeat(32)).await.unwrap().unwrap();
    assert_eq!(found.expires_at, Some(10));
}

#[tokio::test]
async fn reads_are_scoped_and_pages_are_stable() {
    let (_db, store, s) = seeded().await;
    let mut tx = store.begin().await.unwrap();
    // Twelve customers in the same second, then one later; one in live mode, one in another account.
    for i in 0..12 {
        store::customers::insert(&mut tx, &s, &customer(&format!("cus_{i:02}"), 100, false)).await.unwrap();
    }
    store::customers::insert(&mut tx, &s, &customer("cus_late", 200, false)).await.unwrap();
    store::customers::insert(&mut tx, &scope("acct_1", true), &customer("cus_live", 100, true)).await.unwrap();
    store::customers::insert(&mut tx, &scope("acct_2", false), &customer("cus_other", 100, false)).await.unwrap();
    tx.commit().await.unwrap();

    let mut conn = store.acquire().await.unwrap();
    let c = store::customers::get(&mut conn, &s, "cus_03").await.unwrap().unwrap();
    assert_eq!((c.score, c.metadata.get("k").map(String::as_str), c.livemode), (Some(70), Some("v"), false));
    assert!(store::customers::get(&mut conn, &scope("acct_1", true), "cus_03").await.unwrap().is_none());
    assert!(store::customers::get(&mut conn, &scope("acct_2", false), "cus_03").await.unwrap().is_none());

    let page = |limit, after: Option<&str>, before: Option<&str>| PageRequest {
        limit,
        starting_after: after.map(str::to_owned),
        ending_before: before.map(str::to_owned),
        created: CreatedFilter::default(),
    };
    let ids = |p: &store::Page<Customer>| p.data.iter().map(|c| c.id.clone()).collect::<Vec<_>>();
    let first = store::customers::list(&mut conn, &s, &page(5, None, None), None).await.unwrap();
    assert_eq!(ids(&first), ["cus_late", "cus_11", "cus_10", "cus_09", "cus_08"]);
    assert!(first.has_more);
    let second = store::customers::list(&mut conn, &s, &page(5, Some("cus_08"), None), None).await.unwrap();
    assert_eq!(ids(&second), ["cus_07", "cus_06", "cus_05", "cus_04", "cus_03"]);
    let last = store::customers::list(&mut conn, &s, &page(5, Some("cus_03"), None), None).await.unwrap();
    assert_eq!(ids(&last), ["cus_02", "cus_01", "cus_00"]);
    assert!(!last.has_more);
    let back = store::customers::list(&mut conn, &s, &page(3, None, Some("cus_07")), None).await.unwrap();
    assert_eq!(ids(&back), ["cus_10", "cus_09", "cus_08"]);
    assert!(back.has_more);
    let created =
        PageRequest { created: CreatedFilter { gt: Some(100), ..Default::default() }, ..page(10, None, None) };
    assert_eq!(ids(&store::customers::list(&mut conn, &s, &created, None).await.unwrap()), ["cus_late"]);
    assert!(store::list::exists(&mut conn, "customers", &s, "cus_00").await.unwrap());
    assert!(!store::list::exists(&mut conn, "customers", &s, "cus_other").await.unwrap());
}

#[tokio::test]
async fn a_dropped_transaction_leaves_nothing() {
    let (_db, store, s) = seeded().await;
    {
        let mut tx = store.begin().await.unwrap();
        store::customers::insert(&mut tx, &s, &customer("cus_gone", 1, false)).await.unwrap();
    }
    let mut conn = store.acquire().await.unwrap();
    assert!(store::customers::get(&mut conn, &s, "cus_gone").await.unwrap().is_none());
}

#[tokio::test]
async fn work_queues_and_the_coverage_check() {
    let (_db, store, s) = seeded().await;
    let mut tx = store.begin().await.unwrap();
    insert_active_guarantee(&mut tx, &s).await;
    store::guarantees::insert(&mut tx, &s, &guarantee("grt_2", GuaranteeStatus::Pending, 50, 1_000)).await.unwrap();
    store::claims::insert(&mut tx, &s, &claim("clm_1", "inv_1")).await.unwrap();
    store::claims::insert(&mut tx, &s, &claim("clm_2", "inv_2")).await.unwrap();
    tx.commit().await.unwrap();

    // Review queue: oldest first; a claim waiting for an operator leaves it.
    let mut tx = store.begin().await.unwrap();
    let queue = store::claims::next_for_review(&mut tx, None, 10).await.unwrap();
    let ids: Vec<&str> = queue.iter().map(|(_, c)| c.id.as_str()).collect();
    assert_eq!(ids, ["clm_1", "clm_2"]);
    let (sc, mut first) = store::claims::next_for_review(&mut tx, None, 1).await.unwrap().remove(0);
    assert_eq!((sc.clone(), first.id.as_str()), (s.clone(), "clm_1"));
    first.awaiting_operator = true;
    store::claims::update(&mut tx, &s, &first).await.unwrap();
    tx.commit().await.unwrap();
    let mut tx = store.begin().await.unwrap();
    let queue = store::claims::next_for_review(&mut tx, None, 10).await.unwrap();
    assert_eq!(queue.iter().map(|(_, c)| c.id.as_str()).collect::<Vec<_>>(), ["clm_2"]);
    assert_eq!(
        store::claims::find_live_for_invoice(&mut tx, "grt_1", "inv_1").await.unwrap().as_deref(),
        Some("clm_1")
    );
    assert!(store::claims::get_any_for_update(&mut tx, "clm_2").await.unwrap().is_some());
    drop(tx);

    // Time-driven changes: only what is due.
    let mut tx = store.begin().await.unwrap();
    let due: Vec<String> =
        store::guarantees::due_for_transition(&mut tx, 60, 10).await.unwrap().into_iter().map(|(_, g)| g.id).collect();
    assert_eq!(due, ["grt_2"]);
    let due = store::guarantees::due_for_transition(&mut tx, 1_000, 10).await.unwrap();
    assert_eq!(due.len(), 2);
    drop(tx);

    // A payout settles once.
    let mut tx = store.begin().await.unwrap();
    let payout = payout("po_1", "clm_2");
    store::payouts::insert(&mut tx, &[(&s, &payout)]).await.unwrap();
    tx.commit().await.unwrap();
    // Leased until 70 at 10: a lease at 69 finds it held, one at 70 takes it over with
    // the next token; only that token settles it, once; given back, it is leased at once.
    let mut tx = store.begin().await.unwrap();
    let first = store::payouts::lease_due(&mut tx, None, 10, 70, 10).await.unwrap();
    assert_eq!((first.len(), first[0].payout.id.as_str(), &first[0].scope), (1, "po_1", &s));
    assert!(store::payouts::lease_due(&mut tx, None, 69, 129, 10).await.unwrap().is_empty());
    let second = store::payouts::lease_due(&mut tx, None, 70, 130, 10).await.unwrap();
    let (stale, token) = (first[0].token, second[0].token);
    assert_eq!(token, stale + 1);
    assert!(store::payouts::lock_leased(&mut tx, &[("po_1", stale)]).await.unwrap().is_empty());
    assert_eq!(store::payouts::release(&mut tx, &[("po_1", stale)]).await.unwrap(), 0);
    assert!(
        store::payouts::lease_due(&mut tx, None, 71, 131, 10).await.unwrap().is_empty(),
        "a stale token gives nothing back"
    );
    assert_eq!(store::payouts::release(&mut tx, &[("po_1", token)]).await.unwrap(), 1);
    let third = store::payouts::lease_due(&mut tx, None, 71, 131, 10).await.unwrap();
    let token = third[0].token;
    assert_eq!(store::payouts::lock_leased(&mut tx, &[("po_1", token)]).await.unwrap(), ["po_1"]);
    assert_eq!(store::payouts::settle(&mut tx, &[("po_1", token - 1, PayoutStatus::Paid, Some(3))]).await.unwrap(), 0);
    assert_eq!(store::payouts::settle(&mut tx, &[("po_1", token, PayoutStatus::Paid, Some(4))]).await.unwrap(), 1);
    assert_eq!(store::payouts::settle(&mut tx, &[("po_1", token, PayoutStatus::Paid, Some(5))]).await.unwrap(), 0);
    assert!(store::payouts::lock_leased(&mut tx, &[("po_1", token)]).await.unwrap().is_empty());
    assert!(store::payouts::lease_due(&mut tx, None, 1_000, 1_060, 10).await.unwrap().is_empty());
    tx.commit().await.unwrap();
    let mut conn = store.acquire().await.unwrap();
    let paid = store::payouts::get(&mut conn, &s, "po_1").await.unwrap().unwrap();
    assert_eq!((paid.status, paid.arrival_date), (PayoutStatus::Paid, Some(4)));
    drop(conn);

    // A second payout for the same claim, and paying more than the coverage, are refused by the database.
    let mut tx = store.begin().await.unwrap();
    let twice = Payout { id: "po_2".into(), ..payout.clone() };
    let err = store::payouts::insert(&mut tx, &[(&s, &twice)]).await.unwrap_err();
    assert!(err.as_database_error().is_some(), "{err}");
    drop(tx);
    let mut tx = store.begin().await.unwrap();
    let mut g = store::guarantees::get_for_update(&mut tx, &s, "grt_1").await.unwrap().unwrap();
    g.claims_paid = 150;
    g.claims_reserved = 51;
    let written = store::guarantees::update(&mut tx, &s, &g).await;
    let err = refused_write(&mut tx, written).await;
    assert!(err.as_database_error().is_some(), "{err}");
}

/// Payout leases taken at once take different payouts, oldest first: on PostgreSQL a
/// lease whose transaction is still open is skipped (`SKIP LOCKED`), not waited for;
/// on SQLite leases take turns, and a committed lease keeps the next one off.
#[tokio::test]
async fn payout_leases_taken_at_once_take_different_payouts() {
    let (_db, store, s) = seeded().await;
    let mut tx = store.begin().await.unwrap();
    insert_active_guarantee(&mut tx, &s).await;
    for i in 1..=3 {
        store::claims::insert(&mut tx, &s, &claim(&format!("clm_{i}"), &format!("inv_{i}"))).await.unwrap();
        tx.flush().await.unwrap(); // the payout below refers to the claim
        let payout = payout(&format!("po_{i}"), &format!("clm_{i}"));
        store::payouts::insert(&mut tx, &[(&s, &payout)]).await.unwrap();
    }
    tx.commit().await.unwrap();
    let ids = |leased: Vec<store::payouts::LeasedPayout>| leased.into_iter().map(|l| l.payout.id).collect::<Vec<_>>();

    let mut first = store.begin().await.unwrap();
    assert_eq!(ids(store::payouts::lease_due(&mut first, None, 10, 70, 1).await.unwrap()), ["po_1"]);
    if store.backend() == Backend::Postgres {
        let mut second = store.begin().await.unwrap();
        let lease = store::payouts::lease_due(&mut second, None, 10, 70, 1);
        let leased = tokio::time::timeout(Duration::from_secs(5), lease).await.expect("the open lease is skipped");
        assert_eq!(ids(leased.unwrap()), ["po_2"]);
        second.commit().await.unwrap();
    }
    first.commit().await.unwrap();
    let mut tx = store.begin().await.unwrap();
    let rest = ids(store::payouts::lease_due(&mut tx, None, 10, 70, 10).await.unwrap());
    let want: &[&str] = if store.backend() == Backend::Postgres { &["po_3"] } else { &["po_2", "po_3"] };
    assert_eq!(rest, want, "leased payouts are left alone");
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn events_are_listed_by_type_and_expire() {
    let (_db, store, s) = seeded().await;
    let mut conn = store.acquire().await.unwrap();
    let ids: Vec<String> = (0..3).map(|i| format!("evt_{i}")).collect();
    let events: Vec<store::events::NewEvent> = ["customer.created", "claim.submitted", "customer.created"]
        .iter()
        .enumerate()
        .map(|(i, kind)| store::events::NewEvent {
            id: &ids[i],
            created: 10 * i as i64,
            kind,
            object: r#"{"id":"x"}"#,
            previous_attributes: None,
            request_id: Some("req_1"),
            idempotency_key: None,
            pending_webhooks: 0,
        })
        .collect();
    let rows: Vec<_> = events.iter().map(|e| (&s, e)).collect();
    let mut tx = store.begin().await.unwrap();
    store::events::insert(&mut tx, &rows).await.unwrap();
    tx.commit().await.unwrap();
    let page = PageRequest::default();
    let created = store::events::list(&mut conn, &s, &page, Some("customer.created".into())).await.unwrap();
    assert_eq!(created.data.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), ["evt_2", "evt_0"]);
    let e = store::events::get(&mut conn, &s, "evt_1").await.unwrap().unwrap();
    assert_eq!((e.kind.as_str(), e.data.object.get()), ("claim.submitted", r#"{"id":"x"}"#));
    assert_eq!(store::events::delete_older_than(&mut conn, 15).await.unwrap(), 2);
    assert_eq!(store::events::list(&mut conn, &s, &page, None).await.unwrap().data.len(), 1);
}

/// The claims engine's multi-row writes: batches longer than one statement carries
/// (64 rows) write every row, every column, in the order given.
#[tokio::test]
async fn batch_writes_cover_every_row() {
    let (_db, store, s) = seeded().await;
    const N: usize = 70;
    let mut tx = store.begin().await.unwrap();
    store::customers::insert(&mut tx, &s, &customer("cus_1", 1, false)).await.unwrap();
    store::policies::insert(&mut tx, &s, &policy("gpol_1")).await.unwrap();
    let guarantees: Vec<Guarantee> =
        (0..N).map(|i| guarantee(&format!("grt_{i:03}"), GuaranteeStatus::Active, 0, 1_000)).collect();
    let claims: Vec<Claim> = (0..N)
        .map(|i| Claim { guarantee: format!("grt_{i:03}"), ..claim(&format!("clm_{i:03}"), &format!("inv_{i}")) })
        .collect();
    for g in &guarantees {
        store::guarantees::insert(&mut tx, &s, g).await.unwrap();
    }
    for c in &claims {
        store::claims::insert(&mut tx, &s, c).await.unwrap();
    }
    tx.commit().await.unwrap();

    let mut tx = store.begin().await.unwrap();
    let payouts: Vec<Payout> = claims
        .iter()
        .map(|c| Payout { amount: 90, guarantee: c.guarantee.clone(), ..payout(&c.id.replace("clm", "po"), &c.id) })
        .collect();
    let rows: Vec<_> = payouts.iter().map(|p| (&s, p)).collect();
    store::payouts::insert(&mut tx, &rows).await.unwrap();
    let approved: Vec<Claim> = claims
        .iter()
        .map(|c| {
            let mut a = c.clone();
            a.status = ClaimStatus::Approved;
            a.amount_approved = Some(90);
            a.payout = Some(c.id.replace("clm", "po"));
            a.reviewed_at = Some(3);
            a.status_transitions.approved_at = Some(3);
            a.awaiting_operator = true;
            a.metadata = Metadata::from([("n".to_string(), c.id.clone())]);
            a
        })
        .collect();
    let refs: Vec<&Claim> = approved.iter().collect();
    assert_eq!(store::claims::update_locked(&mut tx, &refs).await.unwrap(), N as u64);
    let reserved: Vec<Guarantee> = guarantees
        .iter()
        .map(|g| Guarantee { claims_reserved: 90, claims_filed: 1, end_date: 900, ..g.clone() })
        .collect();
    let refs: Vec<&Guarantee> = reserved.iter().collect();
    assert_eq!(store::guarantees::update_locked(&mut tx, &refs).await.unwrap(), N as u64);
    // Every payout but the first, then all of them: only those still pending settle.
    // Never leased: their token is the first one, 0.
    let settle: Vec<_> = payouts[1..].iter().map(|p| (p.id.as_str(), 0, PayoutStatus::Paid, Some(4))).collect();
    assert_eq!(store::payouts::settle(&mut tx, &settle).await.unwrap(), N as u64 - 1);
    let settle: Vec<_> = payouts.iter().map(|p| (p.id.as_str(), 0, PayoutStatus::Failed, None)).collect();
    assert_eq!(store::payouts::settle(&mut tx, &settle).await.unwrap(), 1);
    tx.commit().await.unwrap();

    let mut conn = store.acquire().await.unwrap();
    for (i, want) in approved.iter().enumerate() {
        let got = store::claims::get(&mut conn, &s, &want.id).await.unwrap().unwrap();
        assert_eq!(&got, want, "claim {i}");
        let g = store::guarantees::get(&mut conn, &s, &reserved[i].id).await.unwrap().unwrap();
        assert_eq!((g.claims_reserved, g.claims_filed, g.end_date), (90, 1, 900), "guarantee {i}");
        let p = store::payouts::get(&mut conn, &s, &payouts[i].id).await.unwrap().unwrap();
        let want = if i == 0 { (PayoutStatus::Failed, None) } else { (PayoutStatus::Paid, Some(4)) };
        assert_eq!((p.status, p.arrival_date), want, "payout {i}");
    }
    // Events keep the order they were given in (the list is newest first).
    let ids: Vec<String> = (0..N).map(|i| format!("evt_{i:03}")).collect();
    let events: Vec<store::events::NewEvent> = ids
        .iter()
        .map(|id| store::events::NewEvent {
            id,
            created: 7,
            kind: "claim.approved",
            object: r#"{"id":"x"}"#,
            previous_attributes: Some("{}"),
            request_id: None,
            idempotency_key: None,
            pending_webhooks: 0,
        })
        .collect();
    let rows: Vec<_> = events.iter().map(|e| (&s, e)).collect();
    let mut tx = store.begin().await.unwrap();
    store::events::insert(&mut tx, &rows).await.unwrap();
    tx.commit().await.unwrap();
    let page = PageRequest { limit: 100, ..PageRequest::default() };
    let listed = store::events::list(&mut conn, &s, &page, None).await.unwrap();
    let mut want = ids.clone();
    want.reverse();
    assert_eq!(listed.data.iter().map(|e| e.id.clone()).collect::<Vec<_>>(), want);
}

/// The backend process answering `conn`.
async fn backend_pid(conn: &mut store::Conn) -> Result<i64, sqlx::Error> {
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(conn).await?;
    Ok(pid.into())
}

/// PostgreSQL: a connection whose use ran to its end (a read that answered, a commit)
/// is kept for the next checkout without sqlx's ping; one whose use was cut short, or
/// whose transaction was dropped open, goes back to sqlx's pool, and what it left
/// half done reaches no one else.
#[tokio::test]
async fn connections_are_kept_only_after_a_use_that_ran_to_its_end() {
    let (_db, store, s) = seeded().await;
    if store.backend() != Backend::Postgres {
        assert_eq!(store.kept_connections(), 0, "SQLite keeps none");
        return;
    }
    let first = store.run(async |conn| backend_pid(conn).await).await.unwrap();
    assert_eq!(store.kept_connections(), 1);
    let (in_use, idle) = store.pool_connections();
    assert_eq!(in_use, 0, "kept connections count as idle");
    assert!(idle >= 1);
    assert_eq!(store.run(async |conn| backend_pid(conn).await).await.unwrap(), first, "the same one");

    // Cut short in the middle of a statement: not kept.
    let mut conn = store.acquire().await.unwrap();
    let slow = sqlx::query("SELECT pg_sleep(2)").execute(&mut *conn);
    assert!(tokio::time::timeout(Duration::from_millis(100), slow).await.is_err());
    drop(conn);
    assert_eq!(store.kept_connections(), 0);
    for n in 0..5_i64 {
        let echoed: i64 = store
            .run(async |conn| sqlx::query_scalar("SELECT $1::bigint").bind(n).fetch_one(conn).await)
            .await
            .unwrap();
        assert_eq!(echoed, n, "each read gets its own answer");
    }

    // A committed transaction's connection is kept; one dropped open is rolled back
    // and not kept.
    store.pool(); // gives the kept ones back to sqlx's pool
    let mut tx = store.begin().await.unwrap();
    store::customers::insert(&mut tx, &s, &customer("cus_kept", 1, false)).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(store.kept_connections(), 1);
    let mut tx = store.begin().await.unwrap();
    store::customers::insert(&mut tx, &s, &customer("cus_dropped", 1, false)).await.unwrap();
    drop(tx);
    assert_eq!(store.kept_connections(), 0, "the kept one went to the transaction, and it was dropped");
    let mut conn = store.acquire().await.unwrap();
    assert!(store::customers::get(&mut conn, &s, "cus_kept").await.unwrap().is_some());
    assert!(store::customers::get(&mut conn, &s, "cus_dropped").await.unwrap().is_none(), "rolled back");
    conn.release();

    // A lost connection empties the stash; closing gives every connection back.
    store.note_connection_lost();
    assert_eq!(store.kept_connections(), 0);
    store.run(async |conn| backend_pid(conn).await).await.unwrap();
    assert_eq!(store.kept_connections(), 1);
    tokio::time::timeout(Duration::from_secs(10), store.close()).await.expect("the pool closes with connections kept");
}

/// PostgreSQL: however many ask at once, a store opens at most `max_connections`,
/// kept ones included, and every request is served.
#[tokio::test]
async fn kept_connections_stay_within_max_connections() {
    let db = TestDb::create().await;
    let opts = store::StoreOptions { max_connections: 3, ..store::StoreOptions::new(&db.url) };
    let store = Store::connect(&opts).await.unwrap();
    if store.backend() != Backend::Postgres {
        return;
    }
    store.migrate().await.unwrap();
    let reads = (0..40).map(|_| {
        let store = store.clone();
        async move {
            let pid = store.run(async |conn| backend_pid(conn).await).await;
            let (in_use, idle) = store.pool_connections();
            (pid, in_use + idle)
        }
    });
    let done = futures_util::future::join_all(reads).await;
    let mut pids: Vec<i64> = done.iter().map(|(pid, _)| *pid.as_ref().unwrap()).collect();
    assert!(done.iter().all(|(_, open)| *open <= 3), "{:?}", done.iter().map(|(_, n)| n).collect::<Vec<_>>());
    pids.sort();
    pids.dedup();
    assert!(pids.len() <= 3, "{pids:?}");
}
