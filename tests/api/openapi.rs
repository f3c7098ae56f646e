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
    assert_eq!(create["application/json"]["schema"]["example"]["tenant"], "cus_123456789");
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
    // Five claims that wait for a person, one per review route (the fifth is asked for
    // evidence and updated), each for a month of its own (March to July 2024), and one
    // paid for February (a payout).
    let mut waiting = Vec::new();
    for i in 0..5 {
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
    let recovery = app.get(&format!("/v1/recoveries?claim={}", id(&paid)), DEMO_KEY).await.ok()["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let endpoint = app
        .post("/v1/webhook_endpoints", DEMO_KEY, json!({"url": "http://127.0.0.1:9/hook", "enabled_events": ["*"]}))
        .await
        .ok();
    let event = app.get("/v1/events?limit=1", DEMO_KEY).await.ok()["data"][0]["id"].as_str().unwrap().to_owned();
    let spare = app.docs_guarantee(DEMO_KEY, &id(&policy), "cus_123456789").await;
    let file = crate::files::upload(&app, DEMO_KEY, "lease.pdf", &crate::files::pdf(10)).await.ok();
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
            "file_" => id(&file),
            "clock_" => id(&clock),
            "rec_" => recovery.clone(),
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
        // Deletes everything the others work on: last.
        (_, "/v1/test_helpers/reset") => 4,
        ("get", _) => 0,
        ("delete", _) => 3,
        (_, p)
            if p.ends_with("/cancel")
                || p.ends_with("/approve")
                || p.ends_with("/deny")
                || p.ends_with("/write_off") =>
        {
            2
        }
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
            "/v1/claims/{id}" | "/v1/claims/{id}/request_evidence" => waiting[4].clone(),
            "/v1/guarantees/{id}/cancel" => id(&spare),
            p if p.starts_with("/v1/customers/") => "cus_123456789".to_owned(),
            p if p.starts_with("/v1/guarantee_policies/") => id(&policy),
            p if p.starts_with("/v1/guarantees/") => id(&guarantee),
            p if p.starts_with("/v1/claims/") || p.starts_with("/v1/review/claims/") => id(&paid),
            p if p.starts_with("/v1/payouts/") => payout.clone(),
            p if p.starts_with("/v1/events/") => event.clone(),
            p if p.starts_with("/v1/webhook_endpoints/") => id(&endpoint),
            p if p.starts_with("/v1/files/") => id(&file),
            p if p.starts_with("/v1/test_helpers/test_clocks/") => id(&clock),
            p if p.starts_with("/v1/recoveries/") => recovery.clone(),
            _ => String::new(),
        };
        let url = path.replace("{id}", &target);
        let operator_route = url.starts_with("/v1/review/")
            || (url.starts_with("/v1/claims/")
                && ["/approve", "/deny", "/request_evidence", "/notes"].iter().any(|s| url.ends_with(s)))
            || (url.starts_with("/v1/recoveries/") && url.ends_with("/write_off"));
        let key = if operator_route { operator.as_str() } else { DEMO_KEY };
        let op = &doc["paths"][path][method];
        if let Some(upload) = op.pointer("/requestBody/content/multipart~1form-data/schema") {
            // Uploads are multipart only: a file part (binary) and a purpose.
            assert_eq!(upload["properties"]["file"]["format"], "binary", "{path}");
            assert!(op["requestBody"]["content"].get("application/json").is_none(), "{path}");
            let purpose = upload["properties"]["purpose"]["enum"][0].as_str().unwrap();
            assert_eq!(purpose, "claim_evidence");
            crate::files::upload(&app, key, "lease.pdf", &crate::files::pdf(20)).await.ok();
            accepted += 1;
            continue;
        }
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

/// The check every response of the suite goes through (`contract::check`) can fail: a
/// body its schema does not allow, a field the schema lacks, a status the operation
/// does not list, an error answer off any route that is not the error body.
#[test]
fn responses_that_disagree_with_the_document_fail_the_test() {
    use crate::contract::check;
    let fails = |method: &str, path: &str, status: u16, body: &str| {
        let (method, path, body) = (method.to_owned(), path.to_owned(), body.to_owned());
        std::panic::catch_unwind(move || check(&method, &path, status, &body)).is_err()
    };
    let error = r#"{"error": {"type": "invalid_request_error", "message": "No such claim: 'clm_x'", "code": "resource_missing", "param": "id"}}"#;
    assert!(!fails("GET", "/v1/claims/clm_x", 404, error));
    assert!(!fails("GET", "/v1/nowhere", 404, error));
    assert!(fails("GET", "/v1/claims/clm_x", 200, r#"{"id": 1}"#), "a wrong type");
    assert!(
        fails(
            "GET",
            "/v1/claims/clm_x",
            404,
            r#"{"error": {"type": "invalid_request_error", "message": "m", "extra": 1}}"#
        ),
        "an undocumented field"
    );
    assert!(fails("GET", "/v1/claims/clm_x", 418, error), "an undocumented status");
    assert!(fails("GET", "/v1/nowhere", 404, r#"{"message": "not found"}"#), "not the error body");
    assert!(fails("GET", "/v1/claims", 200, "not json"), "not JSON");
}

/// Names by the rules of docs/clients.md: operationIds unique and PascalCase (and the
/// quickstart's as the rule makes them); schema names PascalCase words, none a Rust
/// type's; every error answer the one `Error`; expandable fields the id or the object;
/// links by operationId; a semantic `info.version` and the API version beside it.
#[tokio::test]
async fn names_are_the_apis_and_follow_the_rules() {
    let app = TestApp::start().await;
    let doc = app.send(Method::GET, "/v1/openapi.json", None, None).await.ok();
    let pascal = |s: &str| {
        !s.is_empty() && s.starts_with(|c: char| c.is_ascii_uppercase()) && s.chars().all(|c| c.is_ascii_alphanumeric())
    };
    let mut ids = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let id = op["operationId"].as_str().unwrap_or_else(|| panic!("{method} {path} has no operationId"));
            assert!(pascal(id), "{method} {path}: operationId {id}");
            assert!(ids.insert(id.to_owned()), "{method} {path}: operationId {id} twice");
            for (status, response) in op["responses"].as_object().unwrap() {
                let schema = &response["content"]["application/json"]["schema"];
                // `/readyz` answers 503 with its own status body, for load balancers.
                if (status.starts_with('4') || status.starts_with('5')) && path != "/readyz" {
                    assert_eq!(schema["$ref"], "#/components/schemas/Error", "{id} {status}");
                }
            }
        }
    }
    for id in
        ["CreateGuaranteePolicy", "CreateGuarantee", "CreateClaim", "ListClaims", "RetrieveClaim", "UpdateCustomer"]
    {
        assert!(ids.contains(id), "{id} in {ids:?}");
    }
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let rust = ["BTreeMap", "HashMap", "Vec", "Option", "String", "Value", "Object"];
    for name in schemas.keys() {
        assert!(pascal(name) && !rust.contains(&name.as_str()) && !name.ends_with("View"), "schema name {name}");
    }
    for name in ["Guarantee", "GuaranteePolicy", "ClaimList", "Metadata", "Error"] {
        assert!(schemas.contains_key(name), "{name} in {:?}", schemas.keys());
    }
    // Each resource's schema is its object name in PascalCase, and each expandable
    // field of the registry the id or the object.
    for resource in casapay::resource::RESOURCES {
        // The object's last dotted part, as Stripe names its classes (`test_helpers.test_clock`: `TestClock`).
        let object = resource.object().rsplit('.').next().unwrap();
        let name: String = object.split('_').map(|w| w[..1].to_uppercase() + &w[1..]).collect();
        assert!(schemas.contains_key(&name), "the schema of {} is {name}", resource.object());
        for e in resource.expandable {
            let choices = &schemas[&name]["properties"][e.field]["anyOf"];
            assert_eq!(choices[0]["type"], "string", "{name}.{}", e.field);
            assert!(
                choices[1]["$ref"].as_str().is_some_and(|r| r.starts_with("#/components/schemas/")),
                "{name}.{}",
                e.field
            );
        }
    }
    let guarantee = &schemas["Claim"]["properties"]["guarantee"]["anyOf"];
    assert_eq!(guarantee[0]["type"], "string");
    assert_eq!(guarantee[1]["$ref"], "#/components/schemas/Guarantee");
    let links = &doc["paths"]["/v1/guarantees"]["post"]["responses"]["200"]["links"];
    assert_eq!(links["RetrieveGuarantee"]["operationId"], "RetrieveGuarantee");
    assert!(links.as_object().unwrap().values().all(|l| l.get("operationRef").is_none()));
    let version = doc["info"]["version"].as_str().unwrap();
    assert_eq!(version, env!("CARGO_PKG_VERSION"));
    assert_eq!(version.split('.').filter(|p| p.parse::<u64>().is_ok()).count(), 3, "{version}");
    assert_eq!(doc["info"]["x-api-version"], casapay::domain::event::API_VERSION);
    assert_eq!(doc["servers"][0]["url"], casapay::api::openapi::LOCAL_SERVER);
}
