//! Accounts and modes never see each other's data; keys act only where allowed.

use serde_json::json;

use crate::support::{DEMO_KEY, TestApp, id};

#[tokio::test]
async fn modes_and_accounts_are_separate() {
    let app = TestApp::start().await;
    let a = app.new_account().await;
    let b = app.new_account().await;
    assert!(a.id.starts_with("acct_") && a.test_key.starts_with("sk_test_") && a.live_key.starts_with("sk_live_"));

    let test_customer = app.customer(&a.test_key, 80).await;
    let live_customer = app.customer(&a.live_key, 80).await;
    assert_eq!(test_customer["livemode"], false);
    assert_eq!(live_customer["livemode"], true);

    // Live cannot see test, test cannot see live, B sees neither.
    for (key, cus) in [
        (&a.live_key, &test_customer),
        (&a.test_key, &live_customer),
        (&b.test_key, &test_customer),
        (&b.live_key, &live_customer),
        (&DEMO_KEY.to_owned(), &test_customer),
    ] {
        let r = app.get(&format!("/v1/customers/{}", id(cus)), key).await;
        r.err(404, "invalid_request_error", Some("resource_missing"));
        let r = app.post(&format!("/v1/customers/{}", id(cus)), key, json!({"name": "hijack"})).await;
        r.err(404, "invalid_request_error", Some("resource_missing"));
    }
    let list = app.get("/v1/customers", &a.live_key).await.ok();
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert_eq!(list["data"][0]["id"], id(&live_customer).as_str());
    assert_eq!(app.get("/v1/customers", &b.test_key).await.ok()["data"].as_array().unwrap().len(), 0);

    // A policy of test mode cannot back a live guarantee, nor another account's.
    let policy = app.docs_policy(&a.test_key).await;
    let body = json!({"policy": id(&policy), "tenant": id(&live_customer), "coverage_amount": 100,
                      "currency": "eur", "start_date": 1706140800, "end_date": 1737676800});
    let r = app.post("/v1/guarantees", &a.live_key, body.clone()).await;
    assert_eq!(r.err(404, "invalid_request_error", Some("resource_missing"))["param"], "policy");
    let r = app.post("/v1/guarantees", &b.test_key, body).await;
    assert_eq!(r.err(404, "invalid_request_error", Some("resource_missing"))["param"], "policy");

    // Cursors from another scope are unknown too.
    let r = app.get(&format!("/v1/customers?starting_after={}", id(&test_customer)), &a.live_key).await;
    r.err(404, "invalid_request_error", Some("resource_missing"));

    // Events are scoped as well.
    let events = app.get("/v1/events", &a.live_key).await.ok();
    assert!(events["data"].as_array().unwrap().iter().all(|e| e["livemode"] == true));
    assert_eq!(events["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn operator_keys_are_refused_on_platform_routes() {
    let app = TestApp::start().await;
    let op = app.operator_key().await;
    assert!(op.starts_with("opk_"));
    for path in ["/v1/customers", "/v1/guarantees", "/v1/claims", "/v1/events", "/v1/guarantee_policies"] {
        let r = app.get(path, &op).await;
        r.err(403, "permission_error", None);
    }
    let r = app.post("/v1/customers", &op, json!({"name": "x"})).await;
    r.err(403, "permission_error", None);
}
