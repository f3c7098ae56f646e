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
