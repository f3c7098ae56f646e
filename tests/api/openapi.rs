//! The OpenAPI document matches the routes: every documented operation is routed,
//! and every route is documented.

use std::collections::BTreeSet;

use reqwest::Method;

use crate::support::{DEMO_KEY, TestApp};

#[tokio::test]
async fn the_document_is_served_without_auth_and_is_openapi_3_1() {
    let app = TestApp::start().await;
    let r = app.send(Method::GET, "/v1/openapi.json", None, None).await;
    let doc = r.ok();
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["components"]["schemas"]["Guarantee"].is_object());
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    // Request bodies are documented as JSON and as forms.
    let create = &doc["paths"]["/v1/guarantees"]["post"]["requestBody"]["content"];
    assert!(create["application/json"].is_object() && create["application/x-www-form-urlencoded"].is_object());
    // The docs' example is in it.
    assert_eq!(doc["components"]["schemas"]["GuaranteeCreate"]["example"]["tenant"], "cus_123456789");
}

/// Every (method, path) of the document reaches a handler: the answer is never the
/// router's own "Unrecognized request URL/method".
#[tokio::test]
async fn every_documented_operation_is_routed() {
    let app = TestApp::start().await;
    let doc = app.send(Method::GET, "/v1/openapi.json", None, None).await.ok();
    let mut operations = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in ["get", "post", "delete"] {
            if item.get(method).is_none() {
                continue;
            }
            operations += 1;
            let url = path.replace("{id}", "x_missing");
            let r = app.send(method.to_uppercase().parse().unwrap(), &url, Some(DEMO_KEY), None).await;
            let message = r.body["error"]["message"].as_str().unwrap_or("");
            assert!(!message.starts_with("Unrecognized request"), "{method} {path}: {message}");
        }
    }
    assert!(operations >= 35, "{operations} operations documented");
}

/// Routes are only ever registered through utoipa-axum's `routes!`, which documents
/// them; a plain `.route(` in the API would be a route the document lacks.
#[test]
fn no_route_is_registered_outside_the_document() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/api");
    let mut offenders = BTreeSet::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        for line in text.lines() {
            if line.contains(".route(") && !line.contains("/v1/openapi.json") {
                offenders.insert(format!("{}: {}", path.display(), line.trim()));
            }
        }
    }
    assert!(offenders.is_empty(), "routes outside routes!(): {offenders:?}");
}
