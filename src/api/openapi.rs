//! The OpenAPI 3.1 document, generated from the handlers' `#[utoipa::path]`
//! annotations and the types they name: each operation's input type (in its
//! resource's module) is both what the handler parses and what the document says.

use serde::Serialize;

/// A field path to expand, such as `policy` or `guarantee.policy`.
#[derive(Debug, Serialize, serde::Deserialize, ToSchema)]
#[serde(transparent)]
#[schema(pattern = "^[a-z_]+(\\.[a-z_]+){0,3}$")]
pub struct ExpandPath(pub String);
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{IntoParams, IntoResponses, Modify, OpenApi, ToSchema};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "CasaPay Guarantees API",
        description = "Rent guarantees: policies, guarantees, claims, payouts and webhooks, in Stripe's conventions. \
            Request bodies may be JSON or form-encoded with bracket notation (`metadata[k]=v`, `expand[]=policy`).",
        version = "2025-01-01",
        license(name = "Apache-2.0")
    ),
    modifiers(&Security),
    security(("bearer" = []), ("basic" = [])),
    // UnixTime: `created[...]` refers to it (query parameters do not collect schemas).
    components(schemas(ErrorBody, ErrorFields, DeletedWebhookEndpoint, crate::domain::UnixTime)),
    tags(
        (name = "Customers"), (name = "Guarantee policies"), (name = "Guarantees"), (name = "Claims"),
        (name = "Claim review"), (name = "Payouts"), (name = "Events"), (name = "Webhook endpoints"), (name = "Test clocks"), (name = "Health")
    )
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
        components.add_security_scheme("basic", SecurityScheme::Http(Http::new(HttpAuthScheme::Basic)));
    }
}

/// Stripe's error body.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"error": {"type": "invalid_request_error", "code": "parameter_missing",
    "message": "Missing required param: policy.", "param": "policy"}}))]
pub struct ErrorBody {
    pub error: ErrorFields,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorFields {
    /// `invalid_request_error`, `authentication_error`, `permission_error`, `idempotency_error`,
    /// `rate_limit_error` or `api_error`.
    #[serde(rename = "type")]
    pub kind: String,
    pub code: Option<String>,
    pub message: String,
    pub param: Option<String>,
}

/// The errors any authenticated route can answer.
#[derive(IntoResponses)]
pub enum Errors {
    /// Invalid parameters, or a request the object's state forbids.
    #[response(status = 400)]
    BadRequest(#[to_schema] ErrorBody),
    /// Missing, unknown or revoked API key.
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// A key of the wrong kind for this route.
    #[response(status = 403)]
    Forbidden(ErrorBody),
    /// No such object (or route).
    #[response(status = 404)]
    NotFound(ErrorBody),
    /// Wrong method for this route.
    #[response(status = 405)]
    MethodNotAllowed(ErrorBody),
    /// The first request with this Idempotency-Key is still running.
    #[response(status = 409)]
    Conflict(ErrorBody),
    /// Body larger than the limit.
    #[response(status = 413)]
    TooLarge(ErrorBody),
    /// Body of another content type than JSON or form.
    #[response(status = 415)]
    UnsupportedMediaType(ErrorBody),
    /// Too many requests with this key; see `Retry-After`.
    #[response(status = 429)]
    TooManyRequests(ErrorBody),
    /// An unexpected error.
    #[response(status = 500)]
    Internal(ErrorBody),
    /// The store is unavailable or busy, or the request timed out; retry.
    #[response(status = 503)]
    Unavailable(ErrorBody),
}

/// A page of objects, newest first.
#[derive(Serialize, ToSchema)]
pub struct List<T: ToSchema> {
    /// Always `list`.
    pub object: String,
    pub data: Vec<T>,
    /// Whether more objects follow in this direction.
    pub has_more: bool,
    pub url: String,
}

#[derive(Serialize, ToSchema)]
pub struct DeletedWebhookEndpoint {
    pub id: String,
    /// Always `webhook_endpoint`.
    pub object: String,
    pub deleted: bool,
}

/// `expand[]` on a single object.
#[derive(Debug, serde::Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExpandQuery {
    /// Fields whose ids to expand into objects (`policy`, `guarantee.policy`...).
    #[param(rename = "expand[]", style = Form, explode)]
    pub expand: Option<Vec<ExpandPath>>,
}

/// An object's id in the path.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct IdPath {
    /// The object's id, with its prefix.
    pub id: String,
}

/// A body that takes only `expand[]`.
#[derive(Debug, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpandOnly {
    pub expand: Option<Vec<ExpandPath>>,
}

/// A body that takes no parameters.
#[derive(Debug, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoParams {}

/// Makes the generated document say exactly what the server accepts, in ways the
/// derive macros cannot express: each operation's `expand` lists the paths that
/// operation can expand; bodies without required fields may be left out; and the
/// form variant of each body and the query parameters have no `null` (a form has no
/// null: `""` is how a form clears a field), with nested objects in bracket notation.
pub fn finish(doc: &mut serde_json::Value) {
    use serde_json::{Value, json};
    add_links(doc);
    merge_field_docs(doc);
    collapse_nullable(doc);
    let components = doc["components"]["schemas"].clone();
    let Some(paths) = doc["paths"].as_object_mut() else { return };
    for (path, item) in paths.iter_mut() {
        let resource = crate::resource::for_route(path);
        let Some(operations) = item.as_object_mut() else { continue };
        for (method, op) in operations.iter_mut() {
            let list = method == "get" && resource.is_some_and(|r| r.route == path);
            let expand = resource.map(|r| crate::service::expand::all_paths(r, list)).unwrap_or_default();
            let expand_schema = |schema: &mut Value| {
                *schema = if expand.is_empty() {
                    json!({"type": "array", "maxItems": 0, "items": {"type": "string"}})
                } else {
                    json!({"type": "array", "items": {"type": "string", "enum": expand}})
                };
            };
            if let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) {
                for p in params.iter_mut() {
                    strip_nulls(&mut p["schema"]);
                    refuse_nul(&mut p["schema"]);
                    if p["name"] == "expand[]" {
                        expand_schema(&mut p["schema"]);
                    }
                }
            }
            let Some(content) = op.pointer_mut("/requestBody/content").and_then(Value::as_object_mut) else { continue };
            let mut required = false;
            for (media, c) in content.iter_mut() {
                let mut schema = inline(&c["schema"], &components, 0);
                if schema["properties"].get("expand").is_some() {
                    expand_schema(&mut schema["properties"]["expand"]);
                    // In JSON, `null` means "not given", as for every optional field.
                    if media == "application/json" {
                        schema["properties"]["expand"]["type"] = json!(["array", "null"]);
                    }
                }
                if media == "application/x-www-form-urlencoded" {
                    strip_nulls(&mut schema);
                    let encoding: serde_json::Map<String, Value> = schema["properties"]
                        .as_object()
                        .map(|props| {
                            props
                                .iter()
                                .filter(|(_, v)| {
                                    let nested = |t: &Value| t["type"] == "object" || t["type"] == "array";
                                    nested(v) || v["oneOf"].as_array().is_some_and(|c| c.iter().any(nested))
                                })
                                .map(|(k, _)| (k.clone(), json!({"style": "deepObject", "explode": true})))
                                .collect()
                        })
                        .unwrap_or_default();
                    if !encoding.is_empty() {
                        c["encoding"] = Value::Object(encoding);
                    }
                }
                refuse_nul(&mut schema);
                required |= schema["required"].as_array().is_some_and(|r| !r.is_empty());
                c["schema"] = schema;
            }
            op["requestBody"]["required"] = Value::Bool(required);
        }
    }
}

/// Links from each create operation to the operations on the object it created
/// (`POST /v1/guarantees` -> `GET /v1/guarantees/{id}`, `.../cancel`...), so that
/// clients and stateful testers can follow them.
fn add_links(doc: &mut serde_json::Value) {
    use serde_json::{Map, Value, json};
    let Some(paths) = doc["paths"].as_object() else { return };
    let mut links: Vec<(String, Map<String, Value>)> = Vec::new();
    for (collection, item) in paths {
        if collection.contains('{') || item.get("post").is_none() {
            continue;
        }
        let prefix = format!("{collection}/{{id}}");
        let mut found = Map::new();
        for (path, ops) in paths.iter().filter(|(p, _)| p.starts_with(&prefix)) {
            for method in ["get", "post", "delete"].into_iter().filter(|m| ops.get(*m).is_some()) {
                let pointer = path.replace('~', "~0").replace('/', "~1");
                let name = format!("{method}{}", path[collection.len()..].replace(['/', '{', '}'], "_"));
                found.insert(
                    name,
                    json!({"operationRef": format!("#/paths/{pointer}/{method}"), "parameters": {"id": "$response.body#/id"}}),
                );
            }
        }
        if !found.is_empty() {
            links.push((collection.clone(), found));
        }
    }
    for (collection, found) in links {
        doc["paths"][&collection]["post"]["responses"]["200"]["links"] = Value::Object(found);
    }
}

/// The schema with its `$ref`s to components replaced by their content.
fn inline(schema: &serde_json::Value, components: &serde_json::Value, depth: usize) -> serde_json::Value {
    use serde_json::Value;
    if depth > 8 {
        return schema.clone();
    }
    match schema {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref")
                && let Some(name) = r.strip_prefix("#/components/schemas/")
            {
                return inline(&components[name], components, depth + 1);
            }
            Value::Object(map.iter().map(|(k, v)| (k.clone(), inline(v, components, depth + 1))).collect())
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| inline(v, components, depth + 1)).collect()),
        other => other.clone(),
    }
}

/// `allOf: [S, {"description": ...}]`, as utoipa writes a documented field of a type
/// with its own schema (it adds `"type": "object"` to the description's half, which
/// contradicts S), becomes S with the field's description.
fn merge_field_docs(schema: &mut serde_json::Value) {
    use serde_json::Value;
    match schema {
        Value::Object(map) => {
            map.values_mut().for_each(merge_field_docs);
            let Some(Value::Array(parts)) = map.get("allOf") else { return };
            let [Value::Object(base), Value::Object(doc)] = parts.as_slice() else { return };
            let only_docs = doc.keys().all(|k| k == "description" || k == "type" || k == "example")
                && doc.get("type").is_none_or(|t| t == "object");
            if !only_docs || base.contains_key("$ref") {
                return;
            }
            let (mut base, doc) = (base.clone(), doc.clone());
            for key in ["description", "example"] {
                if let Some(v) = doc.get(key) {
                    base.insert(key.into(), v.clone());
                }
            }
            map.remove("allOf");
            for (k, v) in base {
                map.insert(k, v);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(merge_field_docs),
        _ => {}
    }
}

/// `oneOf: [S, {"type": "null"}]`, as utoipa writes an optional field of a type of
/// ours, becomes S with `null` among its types: the form JSON Schema's own
/// `["string", "null"]` says the same, and generators read it more simply.
fn collapse_nullable(schema: &mut serde_json::Value) {
    use serde_json::Value;
    match schema {
        Value::Object(map) => {
            map.values_mut().for_each(collapse_nullable);
            let Some(Value::Array(choices)) = map.get("oneOf") else { return };
            let is_null = |c: &Value| {
                c.get("type") == Some(&Value::String("null".into())) && c.as_object().is_some_and(|o| o.len() == 1)
            };
            if choices.len() != 2 || !choices.iter().any(is_null) {
                return;
            }
            let Some(Value::Object(inner)) = choices.iter().find(|c| !is_null(c)).cloned() else { return };
            let Some(Value::String(kind)) = inner.get("type").cloned() else { return };
            if inner.contains_key("$ref") || inner.contains_key("oneOf") {
                return;
            }
            map.remove("oneOf");
            for (k, v) in inner {
                map.entry(k).or_insert(v);
            }
            map.insert("type".into(), Value::Array(vec![Value::String(kind), Value::String("null".into())]));
        }
        Value::Array(items) => items.iter_mut().for_each(collapse_nullable),
        _ => {}
    }
}

/// Says of every free string in a request's schema (no pattern, choice or format of
/// its own) that it holds no NUL character, which the server refuses everywhere.
fn refuse_nul(schema: &mut serde_json::Value) {
    use serde_json::Value;
    match schema {
        Value::Object(map) => {
            let is_string = match map.get("type") {
                Some(Value::String(t)) => t == "string",
                Some(Value::Array(ts)) => ts.iter().any(|t| t == "string"),
                _ => false,
            };
            if is_string && !["pattern", "enum", "format", "const"].iter().any(|k| map.contains_key(*k)) {
                map.insert("pattern".into(), Value::String("^[^\\u0000]*$".into()));
            }
            map.values_mut().for_each(refuse_nul);
        }
        Value::Array(items) => items.iter_mut().for_each(refuse_nul),
        _ => {}
    }
}

/// Removes `null` from every type in the schema.
fn strip_nulls(schema: &mut serde_json::Value) {
    use serde_json::Value;
    match schema {
        Value::Object(map) => {
            if let Some(Value::Array(types)) = map.get_mut("type") {
                types.retain(|t| t != "null");
                if types.len() == 1 {
                    let only = types[0].clone();
                    map.insert("type".into(), only);
                }
            }
            if let Some(Value::Array(choices)) = map.get_mut("oneOf") {
                choices.retain(|c| c.get("type") != Some(&Value::String("null".into())));
                if choices.len() == 1 {
                    let only = choices.remove(0);
                    map.remove("oneOf");
                    if let Value::Object(inner) = only {
                        map.extend(inner);
                    }
                }
            }
            map.values_mut().for_each(strip_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}
