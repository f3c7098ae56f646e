//! Pagination: newest first, stable within one second, both directions, filters.

use serde_json::{Value, json};

use crate::support::{DEMO_KEY, DOCS_NOW, TestApp, id};

fn ids(list: &Value) -> Vec<String> {
    list["data"].as_array().unwrap().iter().map(id).collect()
}

#[tokio::test]
async fn pages_forward_and_backward_within_one_second() {
    let app = TestApp::start().await;
    // 24 customers in one second (plus the demo customer, created earlier in that second too).
    let mut created = Vec::new();
    for i in 0..24 {
        created.push(id(&app.post("/v1/customers", DEMO_KEY, json!({"name": format!("c{i}")})).await.ok()));
    }
    let mut expected: Vec<String> = created.iter().rev().cloned().collect();
    expected.push("cus_123456789".into());

    // Forward in pages of 10.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/customers?limit=10&starting_after={c}"),
            None => "/v1/customers?limit=10".into(),
        };
        let page = app.get(&path, DEMO_KEY).await.ok();
        let page_ids = ids(&page);
        seen.extend(page_ids.clone());
        pages += 1;
        if !page["has_more"].as_bool().unwrap() {
            break;
        }
        cursor = page_ids.last().cloned();
        assert!(pages < 10, "pagination must end");
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, expected, "newest first, each object once");

    // Backward from the oldest.
    let mut back = Vec::new();
    let mut cursor = expected.last().unwrap().clone();
    back.insert(0, cursor.clone());
    loop {
        let page = app.get(&format!("/v1/customers?limit=10&ending_before={cursor}"), DEMO_KEY).await.ok();
        let page_ids = ids(&page);
        assert!(!page_ids.is_empty());
        back.splice(0..0, page_ids.clone());
        if !page["has_more"].as_bool().unwrap() {
            break;
        }
        cursor = page_ids.first().unwrap().clone();
    }
    assert_eq!(back, expected);

    let r = app.get("/v1/customers?limit=101", DEMO_KEY).await;
    r.err(400, "invalid_request_error", Some("parameter_out_of_range"));
    let r = app.get("/v1/customers?limit=0", DEMO_KEY).await;
    r.err(400, "invalid_request_error", Some("parameter_out_of_range"));
    let r = app.get("/v1/customers?limit=ten", DEMO_KEY).await;
    r.err(400, "invalid_request_error", Some("parameter_invalid_integer"));
    let r =
        app.get(&format!("/v1/customers?starting_after={}&ending_before={}", created[0], created[1]), DEMO_KEY).await;
    r.err(400, "invalid_request_error", Some("parameters_exclusive"));
    let r = app.get("/v1/customers?starting_after=cus_unknown", DEMO_KEY).await;
    assert_eq!(r.err(404, "invalid_request_error", Some("resource_missing"))["param"], "starting_after");
    let r = app.get("/v1/customers?foo=1", DEMO_KEY).await;
    r.err(400, "invalid_request_error", Some("parameter_unknown"));
    let default = app.get("/v1/customers", DEMO_KEY).await.ok();
    assert_eq!(ids(&default).len(), 10, "default limit is 10");
}

#[tokio::test]
async fn created_filters() {
    let app = TestApp::start().await;
    let mut at = Vec::new();
    for i in 0..5 {
        app.clock.set(DOCS_NOW + 100 + i);
        at.push(id(&app.post("/v1/customers", DEMO_KEY, json!({})).await.ok()));
    }
    let t = DOCS_NOW + 100;
    let app = &app;
    let q = |s: String| async move { ids(&app.get(&s, DEMO_KEY).await.ok()) };
    assert_eq!(q(format!("/v1/customers?created[gte]={}", t + 3)).await, vec![at[4].clone(), at[3].clone()]);
    assert_eq!(q(format!("/v1/customers?created[gt]={}&created[lt]={}", t, t + 2)).await, vec![at[1].clone()]);
    assert_eq!(
        q(format!("/v1/customers?created[lte]={}&created[gte]={}", t + 1, t)).await,
        vec![at[1].clone(), at[0].clone()]
    );
    assert_eq!(q(format!("/v1/customers?created={}", t + 2)).await, vec![at[2].clone()]);
    let r = app.get("/v1/customers?created[after]=1", DEMO_KEY).await;
    assert_eq!(r.err(400, "invalid_request_error", Some("parameter_unknown"))["param"], "created[after]");
    let r = app.get("/v1/customers?created[gt]=soon", DEMO_KEY).await;
    r.err(400, "invalid_request_error", Some("parameter_invalid_integer"));
}

#[tokio::test]
async fn guarantee_list_filters() {
    let app = TestApp::start().await;
    let (policy, g1) = app.demo_guarantee().await;
    let other_tenant = app.customer(DEMO_KEY, 90).await;
    let g2 = app.docs_guarantee(DEMO_KEY, &id(&policy), &id(&other_tenant)).await;
    app.post(&format!("/v1/guarantees/{}/cancel", id(&g2)), DEMO_KEY, json!({})).await.ok();
    let by_status = app.get("/v1/guarantees?status=cancelled", DEMO_KEY).await.ok();
    assert_eq!(ids(&by_status), vec![id(&g2)]);
    let by_tenant = app.get("/v1/guarantees?tenant=cus_123456789", DEMO_KEY).await.ok();
    assert_eq!(ids(&by_tenant), vec![id(&g1)]);
    let by_policy = app.get(&format!("/v1/guarantees?policy={}", id(&policy)), DEMO_KEY).await.ok();
    assert_eq!(ids(&by_policy), vec![id(&g2), id(&g1)]);
    let r = app.get("/v1/guarantees?status=gone", DEMO_KEY).await;
    r.err(400, "invalid_request_error", Some("parameter_invalid_value"));
}
