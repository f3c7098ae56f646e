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
    // Every reference names a schema the document has.
    let text = doc.to_string();
    let missing: BTreeSet<&str> = text
        .split("\"#/components/schemas/")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .filter(|name| doc["components"]["schemas"].get(*name).is_none())
        .collect();
    assert!(missing.is_empty(), "references to schemas the document lacks: {missing:?}");
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

/// Whether an error code refuses the request's parameters (as opposed to a rule about
/// other objects or the time): the document called such a request valid, so the
/// parser and the document disagree.
fn is_parameter_error(code: &str) -> bool {
    code.starts_with("parameter_")
        || ["invalid_string_length", "amount_too_small", "invalid_currency", "email_invalid", "metadata_invalid"]
            .contains(&code)
}

/// A request body built from the document: the schema's own example, or else its
/// required properties, each from its example, default, first enum value or bounds.
fn example_of(schema: &serde_json::Value, ids: &dyn Fn(&str) -> Option<String>) -> serde_json::Value {
    use serde_json::{Map, Value, json};
    if let Some(example) = schema.get("example") {
        return replace_ids(example.clone(), ids);
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    if let Some(choices) = schema.get("oneOf").and_then(Value::as_array) {
        let first = choices.iter().find(|c| c["type"] != "null").unwrap_or(&choices[0]);
        return example_of(first, ids);
    }
    if let Some(first) = schema["enum"].as_array().and_then(|e| e.first()) {
        return first.clone();
    }
    if let Some(d) = schema.get("default") {
        return d.clone();
    }
    match types.iter().find(|t| **t != "null").copied() {
        Some("object") => {
            let mut out = Map::new();
            for name in schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str) {
                out.insert(name.to_owned(), example_of(&schema["properties"][name], ids));
            }
            Value::Object(out)
        }
        Some("array") => json!([example_of(&schema["items"], ids)]),
        Some("integer") => schema["minimum"].as_i64().map_or(json!(1), |m| json!(m.max(1))),
        Some("boolean") => json!(true),
        Some("string") => {
            let pattern = schema["pattern"].as_str().unwrap_or("");
            let prefix = pattern.trim_start_matches('^').split('[').next().unwrap_or("");
            ids(prefix).map(Value::String).unwrap_or_else(|| json!("example"))
        }
        _ => Value::Null,
    }
}

/// Ids in an example replaced by the test's objects of the same kind.
fn replace_ids(value: serde_json::Value, ids: &dyn Fn(&str) -> Option<String>) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::String(s) => {
            let prefix = s.split_once('_').map(|(p, _)| format!("{p}_")).unwrap_or_default();
            Value::String(ids(&prefix).unwrap_or(s))
        }
        Value::Object(m) => Value::Object(m.into_iter().map(|(k, v)| (k, replace_ids(v, ids))).collect()),
        Value::Array(a) => Value::Array(a.into_iter().map(|v| replace_ids(v, ids)).collect()),
        other => other,
    }
}

/// The same parameters in Stripe's bracket notation.
fn form_of(value: &serde_json::Value, prefix: &str, out: &mut Vec<(String, String)>) {
    use serde_json::Value;
    match value {
        Value::Object(m) => {
            for (k, v) in m {
                let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}[{k}]") };
                form_of(v, &key, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| form_of(v, &format!("{prefix}[]"), out)),
        Value::String(s) => out.push((prefix.to_owned(), s.clone())),
        Value::Null => {}
        other => out.push((prefix.to_owned(), other.to_string())),
    }
}

/// Every operation accepts the document's own example (or, where it has none, the
/// least its schema requires), sent as JSON and as a form, with the ids of real
/// objects: the document and the parser say the same thing.
#[tokio::test]
async fn every_operation_accepts_the_documents_own_example() {
    use crate::support::{LOOPBACK_EGRESS, id};
    use serde_json::json;
    let app = TestApp::start_with_egress(LOOPBACK_EGRESS).await;
    let operator = app.operator_key().await;
    let doc = app.send(Method::GET, "/v1/openapi.json", None, None).await.ok();
    let (policy, guarantee) = app.demo_guarantee().await;
    app.clock.advance(200 * 86_400);
    // Four claims that wait for a person, one per review route, each for a month of its
    // own (March to June 2024), and one paid for February (a payout).
    let mut waiting = Vec::new();
    for i in 0..4 {
        let due = 1_708_732_800 + (i + 1) * 31 * 86_400;
        let mut body = TestApp::claim_body(&id(&guarantee), &format!("inv_wait_{i}"), due);
        body["reason"] = json!("property_damage");
        body["amount"] = json!(1000);
        waiting.push(id(&app.post("/v1/claims", DEMO_KEY, body).await.ok()));
    }
    let paid =
        app.post("/v1/claims", DEMO_KEY, TestApp::claim_body(&id(&guarantee), "inv_paid", 1_708_732_800)).await.ok();
    app.settle().await;
    let payout =
        app.get(&format!("/v1/claims/{}", id(&paid)), DEMO_KEY).await.ok()["payout"].as_str().unwrap().to_owned();
    let endpoint = app
        .post("/v1/webhook_endpoints", DEMO_KEY, json!({"url": "http://127.0.0.1:9/hook", "enabled_events": ["*"]}))
        .await
        .ok();
    let event = app.get("/v1/events?limit=1", DEMO_KEY).await.ok()["data"][0]["id"].as_str().unwrap().to_owned();
    let spare = app.docs_guarantee(DEMO_KEY, &id(&policy), "cus_123456789").await;
    // At the docs' claim time: the advance's example is a month later.
    let clock = app.post("/v1/test_helpers/test_clocks", DEMO_KEY, json!({"frozen_time": 1_708_819_200})).await.ok();
    let ids = |prefix: &str| -> Option<String> {
        Some(match prefix {
            "cus_" => "cus_123456789".to_owned(),
            "gpol_" => id(&policy),
            "grt_" => id(&guarantee),
            "clm_" => id(&paid),
            "po_" => payout.clone(),
            "evt_" => event.clone(),
            "we_" => id(&endpoint),
            "clock_" => id(&clock),
            _ => return None,
        })
    };

    // Reads first, then writes, then the changes of state, each on an object of its own.
    let mut operations: Vec<(String, String)> = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in ["get", "post", "delete"] {
            if item.get(method).is_some() {
                operations.push((method.to_owned(), path.clone()));
            }
        }
    }
    let rank = |(m, p): &(String, String)| match (m.as_str(), p.as_str()) {
        ("get", _) => 0,
        ("delete", _) => 3,
        (_, p) if p.ends_with("/cancel") || p.ends_with("/approve") || p.ends_with("/deny") => 2,
        _ => 1,
    };
    operations.sort_by_key(|op| rank(op));
    let mut accepted = 0;
    for (method, path) in &operations {
        let target = match path.as_str() {
            "/v1/claims/{id}/approve" => waiting[0].clone(),
            "/v1/claims/{id}/deny" => waiting[1].clone(),
            "/v1/test_helpers/claims/{id}/approve" => waiting[2].clone(),
            "/v1/test_helpers/claims/{id}/deny" => waiting[3].clone(),
            "/v1/guarantees/{id}/cancel" => id(&spare),
            p if p.starts_with("/v1/customers/") => "cus_123456789".to_owned(),
            p if p.starts_with("/v1/guarantee_policies/") => id(&policy),
            p if p.starts_with("/v1/guarantees/") => id(&guarantee),
            p if p.starts_with("/v1/claims/") => id(&paid),
            p if p.starts_with("/v1/payouts/") => payout.clone(),
            p if p.starts_with("/v1/events/") => event.clone(),
            p if p.starts_with("/v1/webhook_endpoints/") => id(&endpoint),
            p if p.starts_with("/v1/test_helpers/test_clocks/") => id(&clock),
            _ => String::new(),
        };
        let url = path.replace("{id}", &target);
        let key = if url.starts_with("/v1/claims/") && (url.ends_with("/approve") || url.ends_with("/deny")) {
            operator.as_str()
        } else {
            DEMO_KEY
        };
        let op = &doc["paths"][path][method];
        let json_schema = &op["requestBody"]["content"]["application/json"]["schema"];
        let body = (!json_schema.is_null()).then(|| example_of(json_schema, &ids));
        let m: Method = method.to_uppercase().parse().unwrap();
        let r = app.send(m.clone(), &url, Some(key), body.clone()).await;
        assert!(r.status.is_success(), "{method} {path} with {body:?}: {} {}", r.status, r.text);
        accepted += 1;
        // The same as a form, where the operation takes a body: never refused for its
        // parameters (creating twice may meet a rule, such as a duplicate invoice).
        let Some(body) = body.filter(|_| method == "post") else { continue };
        let mut pairs = Vec::new();
        form_of(&body, "", &mut pairs);
        let form = serde_urlencoded::to_string(&pairs).unwrap();
        let r = app.raw(m, &url, Some(key), Some("application/x-www-form-urlencoded"), form.clone().into_bytes()).await;
        let code = r.body["error"]["code"].as_str();
        assert!(
            r.status.is_success() || (r.status == 400 && code.is_some_and(|c| !is_parameter_error(c))),
            "{method} {path} with the form {form}: {} {}",
            r.status,
            r.text
        );
    }
    assert!(accepted >= 35, "{accepted} operations took their example");
}
