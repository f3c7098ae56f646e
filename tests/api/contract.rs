//! Every response the test client reads (`TestApp::send`, `raw`, `Resp::from_response`)
//! is checked against the OpenAPI document the server serves: its status must be one
//! the operation lists, and its JSON body must match that response's schema (with
//! `expand` too), or the test fails saying which operation, status and field. Checked
//! more strictly than the document says: no object may carry a field its schema lacks.
//! An answer of no documented operation (an unknown route, a wrong method) must be the
//! `Error` body.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde_json::{Value, json};

struct Contract {
    /// The document's paths, split into segments (`{id}` a parameter).
    templates: Vec<(Vec<String>, String)>,
    doc: Value,
    /// A validator for each response schema of the document (by its JSON text),
    /// compiled once, up front: no test waits on another's compiling mid-request.
    validators: HashMap<String, jsonschema::Validator>,
}

/// The schema of an error answer off any documented operation.
fn error_schema() -> Value {
    json!({"$ref": "#/components/schemas/Error"})
}

fn contract() -> &'static Contract {
    static CONTRACT: OnceLock<Contract> = OnceLock::new();
    CONTRACT.get_or_init(|| {
        let doc = casapay::api::document();
        let templates = doc["paths"]
            .as_object()
            .expect("paths")
            .keys()
            .map(|p| (p.split('/').map(str::to_owned).collect(), p.clone()))
            .collect();
        let mut strict_schemas = doc["components"]["schemas"].clone();
        close_objects(&mut strict_schemas);
        let mut schemas: HashMap<String, Value> = HashMap::from([(error_schema().to_string(), error_schema())]);
        for item in doc["paths"].as_object().into_iter().flat_map(|p| p.values()) {
            for op in item.as_object().into_iter().flat_map(|o| o.values()) {
                for response in op["responses"].as_object().into_iter().flat_map(|r| r.values()) {
                    if let Some(schema) = response.pointer("/content/application~1json/schema") {
                        schemas.insert(schema.to_string(), schema.clone());
                    }
                }
            }
        }
        let validators = schemas
            .into_iter()
            .map(|(key, mut schema)| {
                close_objects(&mut schema);
                // The response's schema, with the document's schemas where its `$ref`s
                // (`#/components/schemas/...`) point.
                let root = json!({
                    "$schema": "https://json-schema.org/draft/2020-12/schema",
                    "components": {"schemas": strict_schemas},
                    "allOf": [schema],
                });
                (key, jsonschema::draft202012::new(&root).expect("the document's schemas compile"))
            })
            .collect();
        Contract { templates, doc, validators }
    })
}

/// `additionalProperties: false` on every object schema that lists its properties and
/// says nothing of others.
fn close_objects(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            if map.contains_key("properties") && !map.contains_key("additionalProperties") {
                map.insert("additionalProperties".into(), Value::Bool(false));
            }
            map.values_mut().for_each(close_objects);
        }
        Value::Array(items) => items.iter_mut().for_each(close_objects),
        _ => {}
    }
}

impl Contract {
    /// The documented path that `path` (without its query) is an instance of; a literal
    /// segment wins over a parameter.
    fn template(&self, path: &str) -> Option<&str> {
        let segments: Vec<&str> = path.split('/').collect();
        self.templates
            .iter()
            .filter(|(t, _)| {
                t.len() == segments.len()
                    && t.iter().zip(&segments).all(|(t, s)| t == s || (t.starts_with('{') && !s.is_empty()))
            })
            .max_by_key(|(t, _)| t.iter().filter(|s| !s.starts_with('{')).count())
            .map(|(_, p)| p.as_str())
    }
}

/// Fails the test when the answer to `method path` disagrees with the document.
pub fn check(method: &str, path: &str, status: u16, text: &str) {
    let contract = contract();
    let path = path.split('?').next().unwrap_or(path);
    let method = method.to_ascii_lowercase();
    let operation = contract
        .template(path)
        .and_then(|t| contract.doc["paths"][t].get(&method).map(|op| (t, op)))
        .filter(|_| method != "head" && method != "options");
    let (name, schema) = match operation {
        Some((template, op)) => {
            let id = op["operationId"].as_str().unwrap_or("?");
            let name = format!("{id} ({} {template})", method.to_uppercase());
            let Some(response) = op["responses"].get(status.to_string()).or_else(|| op["responses"].get("default"))
            else {
                panic!("{name} answered {status}, which the OpenAPI document does not list: {}", clip(text));
            };
            match response.pointer("/content/application~1json/schema") {
                Some(schema) => (name, schema.clone()),
                None => return,
            }
        }
        None if status >= 400 => (format!("{} {path} (no operation)", method.to_uppercase()), error_schema()),
        None => return,
    };
    if text.is_empty() && method == "head" {
        return;
    }
    let Ok(body) = serde_json::from_str::<Value>(text) else {
        panic!("{name} answered {status} with a body that is not JSON: {}", clip(text));
    };
    let validator = &contract.validators[&schema.to_string()];
    let errors: Vec<String> =
        validator.iter_errors(&body).take(5).map(|e| format!("at {}: {e}", e.instance_path())).collect();
    assert!(
        errors.is_empty(),
        "{name} answered {status} with a body the OpenAPI document does not allow:\n  {}\nbody: {}",
        errors.join("\n  "),
        clip(text)
    );
}

fn clip(text: &str) -> String {
    if text.chars().count() <= 2000 {
        text.to_owned()
    } else {
        format!("{}...", text.chars().take(2000).collect::<String>())
    }
}
