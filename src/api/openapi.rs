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
        license(name = "Apache-2.0")
    ),
    modifiers(&Security),
    security(("bearer" = []), ("basic" = [])),
    // UnixTime: `created[...]` refers to it (query parameters do not collect schemas).
    components(schemas(ErrorBody, ErrorFields, DeletedWebhookEndpoint, crate::domain::UnixTime)),
    tags(
        (name = "Customers", description = "Tenants, with the score that decides their eligibility."),
        (name = "Guarantee policies", description = "The terms guarantees are issued on."),
        (name = "Guarantees", description = "A tenant's rent guaranteed on a policy's terms."),
        (name = "Claims", description = "Unpaid rent claimed on a guarantee, and its payout."),
        (name = "Claim review", description = "Decisions on the claims automation leaves to a person."),
        (name = "Payouts", description = "Money sent for approved claims."),
        (name = "Recoveries", description = "What the tenant owes once a claim is paid: repayment plans, payments, write-offs."),
        (name = "Events", description = "What happened, as sent to webhook endpoints."),
        (name = "Webhook endpoints", description = "Where events are delivered, and each delivery attempt."),
        (name = "Files", description = "Evidence documents (PDF, JPEG, PNG) uploaded for claims."),
        (name = "Test helpers", description = "Test mode only: a clean slate for a test suite."),
        (name = "Test clocks", description = "Test mode only: simulated time for a customer and everything under it."),
        (name = "Health", description = "Liveness, readiness and this document.")
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

/// Stripe's error body: every error answer of the API.
#[derive(Serialize, ToSchema)]
#[schema(as = Error, example = json!({"error": {"type": "invalid_request_error", "code": "parameter_missing",
    "message": "Missing required param: policy.", "param": "policy"}}))]
pub struct ErrorBody {
    pub error: ErrorFields,
}

/// What went wrong.
#[derive(Serialize, ToSchema)]
#[schema(as = ErrorDetails)]
pub struct ErrorFields {
    /// The kind of error.
    #[serde(rename = "type")]
    #[schema(inline)]
    pub kind: crate::error::ErrorType,
    /// A short string saying which error, for the errors that have one (`parameter_missing`,
    /// `resource_missing`...); absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String)]
    pub code: Option<String>,
    /// For people; may change.
    pub message: String,
    /// The parameter the error is about, if any; absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String)]
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

/// Where a local `casapay serve` listens by default (`--listen`).
pub const LOCAL_SERVER: &str = "http://localhost:8080";

/// Makes the generated document say exactly what the server accepts, in ways the
/// derive macros cannot express, and in the names integrators' tools want:
/// operations and schemas named by the rules below (`operation_id`, `name_schemas`);
/// every error answer one `Error`; expandable fields either an id or the object;
/// each operation's `expand` lists the paths that operation can expand; bodies
/// without required fields may be left out; the form variant of each body and the
/// query parameters have no `null` (a form has no null: `""` is how a form clears a
/// field), with nested objects in bracket notation; no component left unused.
pub fn finish(doc: &mut serde_json::Value) {
    use serde_json::{Value, json};
    describe(doc);
    name_operations(doc);
    name_schemas(doc);
    share_error_body(doc);
    add_links(doc);
    merge_field_docs(doc);
    collapse_nullable(doc);
    expandable_fields(doc);
    review_claim_extends_claim(doc);
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
    // After the bodies are inlined, which nests their optional choices.
    flatten_one_of(doc);
    drop_unused_components(doc);
}

/// `info`: the crate's semantic version (what generated packages take as theirs), the
/// date-style API version (`CasaPay-Version`) in `x-api-version` and the description,
/// the license's SPDX identifier, and the local server.
fn describe(doc: &mut serde_json::Value) {
    use crate::domain::event::API_VERSION;
    use serde_json::{Value, json};
    let info = &mut doc["info"];
    info["version"] = json!(env!("CARGO_PKG_VERSION"));
    info["x-api-version"] = json!(API_VERSION);
    let description = info["description"].as_str().unwrap_or_default().to_owned();
    info["description"] = Value::String(format!(
        "{description} API version `{API_VERSION}` (the `CasaPay-Version` header of every answer)."
    ));
    info["license"]["identifier"] = json!("Apache-2.0");
    doc["servers"] = json!([{"url": LOCAL_SERVER, "description": "A local `casapay serve` (default `--listen`)"}]);
}

/// The operationId of `method` on `path`, by one rule that needs nothing but the route
/// and the resource registry:
/// - on a resource's list route: `List{Objects}` (GET), `Create{Object}` (POST);
/// - on `{route}/{id}`: `Retrieve{Object}` (GET), `Update{Object}` (POST), `Delete{Object}`;
/// - on `{route}/{id}/{action}` (POST): the action's first word, the object, then the
///   action's other words (`CancelGuarantee`, `RotateWebhookEndpointSecret`);
/// - on `{route}/{id}/{items}` (POST), a plural word: `Create{Object}{Item}`
///   (`/v1/claims/{id}/notes`: `CreateClaimNote`);
/// - under `/v1/test_helpers/`: the same, after `TestHelpers`;
/// - under another namespace in front of a resource's route: the same, with the
///   namespace in front of the object (`/v1/review/claims`: `ListReviewClaims`,
///   `/v1/review/claims/{id}`: `RetrieveReviewClaim`);
/// - anything else: the method and the path's segments, as Stripe does (`GetHealthz`,
///   `{x}` as `ByX`).
///
/// The object is the registry's `object` name in PascalCase (`guarantee_policy`:
/// `GuaranteePolicy`), plural for lists. An operationId set in `#[utoipa::path]`
/// (`operation_id = "..."`, PascalCase) is kept.
pub fn operation_id(method: &str, path: &str) -> String {
    let (prefix, route) = match path.strip_prefix("/v1/test_helpers/") {
        Some(rest) => ("TestHelpers", format!("/v1/{rest}")),
        None => ("", path.to_owned()),
    };
    let derive = |route: &str, namespace: &str| {
        crate::resource::for_route(route).and_then(|r| {
            let object = format!("{namespace}{}", pascal(r.object()));
            let rest = &route[r.route.len()..];
            let mut tail = rest.split('/').skip(1);
            Some(match (method, tail.next(), tail.next(), tail.next()) {
                ("get", None, ..) => format!("List{}", plural(&object)),
                ("post", None, ..) => format!("Create{object}"),
                ("get", Some("{id}"), None, _) => format!("Retrieve{object}"),
                ("post", Some("{id}"), None, _) => format!("Update{object}"),
                ("delete", Some("{id}"), None, _) => format!("Delete{object}"),
                ("post", Some("{id}"), Some(action), None) if !action.contains('{') => match singular(action) {
                    Some(item) => format!("Create{object}{}", pascal(item.as_str())),
                    None => {
                        let (verb, rest) = action.split_once('_').unwrap_or((action, ""));
                        format!("{}{object}{}", pascal(verb), pascal(rest))
                    }
                },
                _ => return None,
            })
        })
    };
    // A namespace in front of a resource's route (`/v1/review/claims`) goes in front
    // of the object (`ListReviewClaims`).
    let derived = derive(&route, "").or_else(|| {
        let (namespace, rest) = route.strip_prefix("/v1/")?.split_once('/')?;
        if namespace.contains('{') {
            return None;
        }
        derive(&format!("/v1/{rest}"), &pascal(namespace))
    });
    match derived {
        Some(id) => format!("{prefix}{id}"),
        None => {
            let segments = path.trim_start_matches("/v1").split('/').filter(|s| !s.is_empty()).map(|s| {
                match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    Some(param) => format!("By{}", pascal(param)),
                    None => pascal(s),
                }
            });
            std::iter::once(pascal(method)).chain(segments).collect()
        }
    }
}

/// The item of a sub-collection a `POST {route}/{id}/{items}` adds to: one word (no
/// `_`) in the plural (`notes`: `note`, `recoveries`: `recovery`); `None` for an action
/// (`cancel`, `rotate_secret`, `request_evidence`).
fn singular(segment: &str) -> Option<String> {
    if segment.contains('_') || !segment.ends_with('s') || segment.ends_with("ss") {
        return None;
    }
    Some(if let Some(stem) = segment.strip_suffix("ies") {
        format!("{stem}y")
    } else if ["sses", "xes", "ches", "shes"].iter().any(|e| segment.ends_with(e)) {
        segment[..segment.len() - 2].to_owned()
    } else {
        segment[..segment.len() - 1].to_owned()
    })
}

/// `guarantee_policy` (or `openapi.json`) as `GuaranteePolicy` (`OpenapiJson`).
fn pascal(s: &str) -> String {
    s.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut chars = w.chars();
            chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
        })
        .collect()
}

/// The English plural of a PascalCase name's last word (`GuaranteePolicy`: `GuaranteePolicies`).
fn plural(name: &str) -> String {
    if let Some(stem) = name.strip_suffix('y').filter(|s| !s.ends_with(['a', 'e', 'o', 'u'])) {
        format!("{stem}ies")
    } else if ["s", "x", "ch", "sh"].iter().any(|e| name.ends_with(e)) {
        format!("{name}es")
    } else {
        format!("{name}s")
    }
}

/// Sets each operation's operationId by `operation_id` (keeping one set by hand).
fn name_operations(doc: &mut serde_json::Value) {
    let Some(paths) = doc["paths"].as_object_mut() else { return };
    for (path, item) in paths.iter_mut() {
        let Some(operations) = item.as_object_mut() else { continue };
        for (method, op) in operations.iter_mut() {
            let explicit =
                op["operationId"].as_str().is_some_and(|id| id.starts_with(|c: char| c.is_ascii_uppercase()));
            if !explicit {
                op["operationId"] = serde_json::Value::String(operation_id(method, path));
            }
        }
    }
}

/// Schemas are named in the API's words, not Rust's: a resource's object is its
/// `object` name in PascalCase (the view's `#[schema(as = ...)]`), a page of them
/// `{Object}List` (utoipa's `List_{Object}`, whose items then refer to the object);
/// the type aliases utoipa names by their Rust type are named by what they are.
fn name_schemas(doc: &mut serde_json::Value) {
    use serde_json::{Value, json};
    /// utoipa names a field of an alias type by the aliased Rust type.
    const ALIASES: [(&str, &str, &str); 2] = [
        ("i64", "Timestamp", "Unix seconds."),
        ("BTreeMap", "Metadata", "Key-value pairs of the platform's own, strings to strings."),
    ];
    let Some(schemas) = doc["components"]["schemas"].as_object_mut() else { return };
    let mut renames: Vec<(String, String)> = Vec::new();
    for (old, new, description) in ALIASES {
        if let Some(mut schema) = schemas.remove(old) {
            schema["description"] = json!(description);
            schemas.insert(new.to_owned(), schema);
            renames.push((old.to_owned(), new.to_owned()));
        }
    }
    let lists: Vec<String> = schemas.keys().filter(|k| k.starts_with("List_")).cloned().collect();
    for old in lists {
        let object = old["List_".len()..].to_owned();
        let Some(mut schema) = schemas.remove(&old) else { continue };
        if schemas.contains_key(&object) {
            schema["properties"]["data"]["items"] = json!({"$ref": format!("#/components/schemas/{object}")});
        }
        schema["description"] = json!(format!("A page of {object} objects, newest first."));
        schemas.insert(format!("{object}List"), schema);
        renames.push((old, format!("{object}List")));
    }
    fn rename_refs(value: &mut Value, renames: &[(String, String)]) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(r)) = map.get_mut("$ref")
                    && let Some(name) = r.strip_prefix("#/components/schemas/")
                    && let Some((_, new)) = renames.iter().find(|(old, _)| old == name)
                {
                    *r = format!("#/components/schemas/{new}");
                }
                map.values_mut().for_each(|v| rename_refs(v, renames));
            }
            Value::Array(items) => items.iter_mut().for_each(|v| rename_refs(v, renames)),
            _ => {}
        }
    }
    rename_refs(doc, &renames);
}

/// Every error answer (4xx, 5xx) with the error body refers to the one `Error`
/// schema (utoipa inlines it in the first response that names it).
fn share_error_body(doc: &mut serde_json::Value) {
    use serde_json::json;
    let Some(paths) = doc["paths"].as_object_mut() else { return };
    for item in paths.values_mut() {
        let Some(operations) = item.as_object_mut() else { continue };
        for op in operations.values_mut() {
            let Some(responses) = op["responses"].as_object_mut() else { continue };
            for (status, response) in responses.iter_mut() {
                let schema = &response["content"]["application/json"]["schema"];
                let is_error_body = schema["$ref"] == "#/components/schemas/Error"
                    || schema["properties"]["error"]["$ref"] == "#/components/schemas/ErrorDetails";
                if (status.starts_with('4') || status.starts_with('5')) && is_error_body {
                    response["content"] =
                        json!({"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}});
                }
            }
        }
    }
}

/// Links from each create operation to the operations on the object it created
/// (`CreateGuarantee` -> `RetrieveGuarantee`, `CancelGuarantee`...), by operationId
/// and named by it, so that clients and stateful testers can follow them.
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
        for (_, ops) in paths.iter().filter(|(p, _)| p.starts_with(&prefix)) {
            for op in ["get", "post", "delete"].into_iter().filter_map(|m| ops.get(m)) {
                let Some(id) = op["operationId"].as_str() else { continue };
                found.insert(id.to_owned(), json!({"operationId": id, "parameters": {"id": "$response.body#/id"}}));
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

/// `oneOf: [{oneOf: [A, B]}, C]` (an optional field of a type that is a choice, as
/// utoipa writes it) becomes `oneOf: [A, B, C]` with the inner description: the same
/// choices, which generators read as one union.
fn flatten_one_of(schema: &mut serde_json::Value) {
    use serde_json::Value;
    match schema {
        Value::Object(map) => {
            map.values_mut().for_each(flatten_one_of);
            let Some(Value::Array(choices)) = map.get("oneOf") else { return };
            let nested = |c: &Value| {
                c.as_object()
                    .is_some_and(|o| o.contains_key("oneOf") && o.keys().all(|k| k == "oneOf" || k == "description"))
            };
            if !choices.iter().any(nested) {
                return;
            }
            let mut flat = Vec::new();
            let mut description = None;
            for choice in choices.clone() {
                if nested(&choice) {
                    description = description.or_else(|| choice.get("description").cloned());
                    flat.extend(choice["oneOf"].as_array().cloned().unwrap_or_default());
                } else {
                    flat.push(choice);
                }
            }
            map.insert("oneOf".into(), Value::Array(flat));
            if let Some(d) = description {
                map.entry("description").or_insert(d);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(flatten_one_of),
        _ => {}
    }
}

/// Each expandable field of the registry (`Claim.guarantee`...) is the id, or, when
/// expanded, the object: `anyOf: [string, Object]` (and `null` where it may be null),
/// so that a response with `expand[]` is valid too. A resource's schema is its
/// `object` name in PascalCase.
fn expandable_fields(doc: &mut serde_json::Value) {
    use serde_json::{Value, json};
    let schemas = &mut doc["components"]["schemas"];
    for resource in crate::resource::RESOURCES {
        let name = pascal(resource.object());
        for e in resource.expandable {
            let Some(field) = schemas.pointer_mut(&format!("/{name}/properties/{}", e.field)) else { continue };
            let nullable = match &field["type"] {
                Value::Array(types) => types.iter().any(|t| t == "null"),
                _ => false,
            };
            let target = format!("#/components/schemas/{}", pascal(e.target.object()));
            let mut choices = vec![
                json!({"type": "string", "description": format!("The {}'s id.", e.target.object())}),
                json!({"$ref": target}),
            ];
            if nullable {
                choices.push(json!({"type": "null"}));
            }
            let description = format!(
                "The {}'s id, or the {} itself when expanded (`expand[]={}`).",
                e.target.object(),
                e.target.object(),
                e.field
            );
            *field = json!({"description": description, "anyOf": choices});
        }
    }
}

/// `ReviewClaim` (`api::review`) is a claim with its audit trail: the serialiser
/// flattens the claim into it, which the derive cannot describe, so its schema is the
/// final `Claim` schema (expandable fields included) with `actions` added and the
/// file objects in `evidence.files`.
fn review_claim_extends_claim(doc: &mut serde_json::Value) {
    let schemas = &mut doc["components"]["schemas"];
    let (Some(claim), Some(review)) = (schemas.get("Claim").cloned(), schemas.get("ReviewClaim").cloned()) else {
        return;
    };
    let mut merged = claim;
    // The derive writes the flattened claim and the struct's own fields as `allOf` parts.
    let parts = review["allOf"].as_array().cloned().unwrap_or_else(|| vec![review.clone()]);
    for extra in parts.iter().filter_map(|p| p["properties"].as_object()) {
        if let Some(props) = merged["properties"].as_object_mut() {
            for (name, schema) in extra {
                props.insert(name.clone(), schema.clone());
            }
        }
    }
    // Its evidence holds the file objects where a claim's holds their ids.
    let named = |v: &serde_json::Value| {
        v["$ref"].as_str().and_then(|r| r.strip_prefix("#/components/schemas/")).map(str::to_owned)
    };
    let field = &merged["properties"]["evidence"];
    let name = named(field).or_else(|| field["allOf"].as_array().filter(|a| a.len() == 1).and_then(|a| named(&a[0])));
    if let Some(mut evidence) = name.and_then(|n| schemas.get(&n).cloned()) {
        evidence["properties"]["files"] = serde_json::json!({
            "description": "The claim's evidence files, in the order they were added.",
            "type": "array",
            "items": {"$ref": "#/components/schemas/File"},
        });
        if let Some(d) = field.get("description") {
            evidence["description"] = d.clone();
        }
        merged["properties"]["evidence"] = evidence;
    }
    if let Some(required) = merged["required"].as_array_mut() {
        required.push("actions".into());
    }
    if let Some(d) = review.get("description") {
        merged["description"] = d.clone();
    }
    schemas["ReviewClaim"] = merged;
}

/// Removes the schemas nothing refers to (the request bodies, which `finish` inlines,
/// and the types only they named), transitively.
fn drop_unused_components(doc: &mut serde_json::Value) {
    use serde_json::Value;
    use std::collections::BTreeSet;
    fn refs(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(r)) = map.get("$ref")
                    && let Some(name) = r.strip_prefix("#/components/schemas/")
                {
                    out.push(name.to_owned());
                }
                map.values().for_each(|v| refs(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let mut pending = Vec::new();
    for (key, value) in doc.as_object().into_iter().flatten() {
        if key != "components" {
            refs(value, &mut pending);
        }
    }
    let schemas = doc["components"]["schemas"].clone();
    let mut used = BTreeSet::new();
    while let Some(name) = pending.pop() {
        if used.insert(name.clone()) {
            refs(&schemas[&name], &mut pending);
        }
    }
    if let Some(map) = doc["components"]["schemas"].as_object_mut() {
        map.retain(|name, _| used.contains(name));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_ids_follow_the_rule() {
        let cases = [
            ("get", "/v1/guarantees", "ListGuarantees"),
            ("post", "/v1/guarantees", "CreateGuarantee"),
            ("get", "/v1/guarantees/{id}", "RetrieveGuarantee"),
            ("post", "/v1/guarantees/{id}", "UpdateGuarantee"),
            ("post", "/v1/guarantees/{id}/cancel", "CancelGuarantee"),
            ("get", "/v1/guarantee_policies", "ListGuaranteePolicies"),
            ("delete", "/v1/webhook_endpoints/{id}", "DeleteWebhookEndpoint"),
            ("post", "/v1/webhook_endpoints/{id}/rotate_secret", "RotateWebhookEndpointSecret"),
            ("get", "/v1/webhook_endpoints/{id}/attempts", "ListWebhookAttempts"),
            ("post", "/v1/claims/{id}/approve", "ApproveClaim"),
            ("post", "/v1/test_helpers/claims/{id}/deny", "TestHelpersDenyClaim"),
            ("post", "/v1/events/{id}/resend", "ResendEvent"),
            ("post", "/v1/claims/{id}/request_evidence", "RequestClaimEvidence"),
            ("post", "/v1/claims/{id}/notes", "CreateClaimNote"),
            ("get", "/v1/review/claims", "ListReviewClaims"),
            ("get", "/v1/review/claims/{id}", "RetrieveReviewClaim"),
            ("post", "/v1/test_helpers/reset", "PostTestHelpersReset"),
            ("get", "/healthz", "GetHealthz"),
            ("get", "/v1/things/{thing}/parts", "GetThingsByThingParts"),
        ];
        for (method, path, id) in cases {
            assert_eq!(operation_id(method, path), id, "{method} {path}");
        }
    }

    #[test]
    fn plurals() {
        assert_eq!(plural("GuaranteePolicy"), "GuaranteePolicies");
        assert_eq!(plural("Key"), "Keys");
        assert_eq!(plural("Match"), "Matches");
        assert_eq!(plural("Claim"), "Claims");
        assert_eq!(singular("notes").as_deref(), Some("note"));
        assert_eq!(singular("recoveries").as_deref(), Some("recovery"));
        assert_eq!(singular("matches").as_deref(), Some("match"));
        for action in ["cancel", "approve", "request_evidence", "rotate_secret", "process", "advance"] {
            assert_eq!(singular(action), None, "{action}");
        }
    }
}
