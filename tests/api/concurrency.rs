//! Claims filed at once on one guarantee: the duplicate rule and the counters hold.

use futures_util::future::join_all;

use crate::support::{DEMO_KEY, DOCS_NOW, TestApp};

const DAY: i64 = 86_400;

#[tokio::test]
async fn concurrent_claims_for_one_invoice_create_exactly_one() {
    let app = TestApp::start().await;
    let grt = app.claimable_demo_guarantee().await;
    let body = TestApp::claim_body(&grt, "inv_same", DOCS_NOW + 30 * DAY);
    let results = join_all((0..20).map(|_| app.post("/v1/claims", DEMO_KEY, body.clone()))).await;
    let ok = results.iter().filter(|r| r.status == 200).count();
    let dup = results.iter().filter(|r| r.status == 400 && r.body["error"]["code"] == "duplicate_claim").count();
    assert_eq!((ok, dup), (1, 19), "{:?}", results.iter().map(|r| &r.text).collect::<Vec<_>>());
    let g = app.get(&format!("/v1/guarantees/{grt}"), DEMO_KEY).await.ok();
    assert_eq!(g["claims_filed"], 1);
}

#[tokio::test]
async fn concurrent_claims_for_many_invoices_are_all_counted() {
    let app = TestApp::start().await;
    let grt = app.claimable_demo_guarantee().await;
    let results = join_all((0..25).map(|i| {
        app.post("/v1/claims", DEMO_KEY, TestApp::claim_body(&grt, &format!("inv_{i}"), DOCS_NOW + 30 * DAY))
    }))
    .await;
    assert!(results.iter().all(|r| r.status == 200), "{:?}", results.iter().map(|r| &r.text).collect::<Vec<_>>());
    let g = app.get(&format!("/v1/guarantees/{grt}"), DEMO_KEY).await.ok();
    assert_eq!(g["claims_filed"], 25);
    let events = app.get("/v1/events?type=claim.submitted&limit=100", DEMO_KEY).await.ok();
    assert_eq!(events["data"].as_array().unwrap().len(), 25, "one event per claim, written with it");
}

/// Two operators approve one claim at once, many times over: exactly one outcome and
/// one payout each time, below the four-eyes threshold (one approval wins, the other
/// finds the claim decided) and above it (one records the first approval, the other
/// approves).
#[tokio::test]
async fn two_operators_approving_one_claim_at_once_give_one_outcome_and_one_payout() {
    use casapay::clock::Clock;
    use serde_json::json;
    let app = TestApp::start().await;
    let policy = app.docs_policy(DEMO_KEY).await;
    let g = app
        .post(
            "/v1/guarantees",
            DEMO_KEY,
            json!({"policy": policy["id"], "tenant": "cus_123456789", "coverage_amount": 1_000_000, "currency": "eur",
                   "start_date": DOCS_NOW, "end_date": DOCS_NOW + 700 * DAY}),
        )
        .await
        .ok();
    app.clock.set(DOCS_NOW + 400 * DAY);
    let now = app.clock.now();
    let alice = casapay::service::operators::create(&app.store, "Alice", None, now).await.unwrap();
    let bob = casapay::service::operators::create(&app.store, "Bob", None, now).await.unwrap();
    // One claim per month, so the months' cover does not interfere.
    let mut claims = Vec::new();
    for month in 0..6 {
        let amount = if month % 2 == 0 { 100_000 } else { 800_000 };
        let mut body =
            TestApp::claim_body(g["id"].as_str().unwrap(), &format!("inv_{month}"), DOCS_NOW + (31 + month * 31) * DAY);
        body["amount"] = json!(amount);
        body["reason"] = json!("property_damage");
        claims.push((app.post("/v1/claims", DEMO_KEY, body).await.ok()["id"].as_str().unwrap().to_owned(), amount));
    }
    app.settle().await;
    for (claim, amount) in &claims {
        let path = format!("/v1/claims/{claim}/approve");
        let (a, b) = tokio::join!(app.post(&path, &alice.key, json!({})), app.post(&path, &bob.key, json!({})));
        let results = [&a, &b];
        let approved = results.iter().filter(|r| r.status == 200 && r.body["status"] == "approved").count();
        let recorded = results.iter().filter(|r| r.status == 200 && r.body["status"] == "under_review").count();
        let decided =
            results.iter().filter(|r| r.status == 400 && r.body["error"]["code"] == "claim_not_under_review").count();
        if *amount >= 500_000 {
            assert_eq!((approved, recorded), (1, 1), "{} / {}", a.text, b.text);
        } else {
            assert_eq!((approved, decided), (1, 1), "{} / {}", a.text, b.text);
        }
        let c = app.get(&format!("/v1/claims/{claim}"), DEMO_KEY).await.ok();
        assert_eq!(c["status"], "approved");
    }
    app.settle().await;
    let payouts = app.get("/v1/payouts?limit=100", DEMO_KEY).await.ok();
    let mut paid: Vec<String> =
        payouts["data"].as_array().unwrap().iter().map(|p| p["claim"].as_str().unwrap().to_owned()).collect();
    paid.sort();
    let mut want: Vec<String> = claims.iter().map(|(c, _)| c.clone()).collect();
    want.sort();
    assert_eq!(paid, want, "one payout per claim");
    let approved = app.get("/v1/events?type=claim.approved&limit=100", DEMO_KEY).await.ok();
    assert_eq!(approved["data"].as_array().unwrap().len(), claims.len(), "one approval event per claim");
}
