//! The OpenAPI 3.1 document, generated from the handlers' `#[utoipa::path]`
//! annotations and the types they name. The request-parameter types here exist for
//! the document: handlers parse bodies with `Params`, which gives Stripe's error
//! messages; these types say the same thing to clients and to client generators.

#![allow(dead_code)]

use serde::Serialize;

/// A field path to expand, such as `policy` or `guarantee.policy`.
#[derive(Serialize, ToSchema)]
#[schema(pattern = "^[a-z_]+(\\.[a-z_]+){0,3}$")]
pub struct ExpandPath(String);
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{IntoParams, IntoResponses, Modify, OpenApi, ToSchema};

use crate::domain::claim::{ClaimReason, ClaimStatus, OperatorDenialReason};
use crate::domain::guarantee::GuaranteeStatus;

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
    components(schemas(ErrorBody, ErrorFields, DeletedWebhookEndpoint)),
    tags(
        (name = "Customers"), (name = "Guarantee policies"), (name = "Guarantees"), (name = "Claims"),
        (name = "Claim review"), (name = "Payouts"), (name = "Events"), (name = "Webhook endpoints"), (name = "Health")
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

/// Bounds on `created`, in Unix seconds (0 to 253402300799, 1970 to 9999):
/// `created[gte]=...`.
#[derive(Serialize, ToSchema)]
pub struct CreatedRange {
    #[schema(minimum = 0, maximum = 253_402_300_799_i64)]
    pub gt: Option<i64>,
    #[schema(minimum = 0, maximum = 253_402_300_799_i64)]
    pub gte: Option<i64>,
    #[schema(minimum = 0, maximum = 253_402_300_799_i64)]
    pub lt: Option<i64>,
    #[schema(minimum = 0, maximum = 253_402_300_799_i64)]
    pub lte: Option<i64>,
}

/// Parameters of every list.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// 1 to 100; default 10.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// An object id: the page after it.
    pub starting_after: Option<String>,
    /// An object id: the page before it.
    pub ending_before: Option<String>,
    /// Only objects created in this range.
    #[param(style = DeepObject, explode, inline)]
    pub created: Option<CreatedRange>,
    /// Expand the items' ids into objects, as `data.<field>`.
    #[param(rename = "expand[]", style = Form, explode)]
    pub expand: Option<Vec<ExpandPath>>,
}

/// `expand[]` on a single object.
#[derive(IntoParams)]
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

/// Metadata in a request: up to 50 keys (1 to 40 characters, no brackets) with string
/// values (up to 500 characters); a value `""` (or JSON `null`) removes the key.
#[derive(Serialize)]
pub struct MetadataParam;

impl utoipa::PartialSchema for MetadataParam {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, SchemaType, Type};
        let value =
            ObjectBuilder::new().schema_type(SchemaType::from_iter([Type::String, Type::Null])).max_length(Some(500));
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some(
                "Up to 50 keys (1 to 40 characters, no brackets) with string values up to 500 characters; \
                 a value \"\" (or null, in JSON) removes the key.",
            ))
            .max_properties(Some(50))
            .additional_properties(Some(AdditionalProperties::RefOr(value.into())))
            .into()
    }
}

impl ToSchema for MetadataParam {}

#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerCreate {
    #[schema(max_length = 256)]
    pub name: Option<String>,
    #[schema(max_length = 512)]
    pub email: Option<String>,
    /// The tenant's guarantee score.
    #[schema(minimum = 0, maximum = 100)]
    pub score: Option<i64>,
    pub metadata: Option<MetadataParam>,
    pub expand: Option<Vec<ExpandPath>>,
}

#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyCreate {
    #[schema(min_length = 1, max_length = 256)]
    pub name: String,
    #[schema(minimum = 1, maximum = 100)]
    pub coverage_percentage: i64,
    #[schema(minimum = 1, maximum = 60)]
    pub max_coverage_months: i64,
    #[schema(minimum = 0, maximum = 365)]
    pub waiting_period_days: Option<i64>,
    #[schema(minimum = 0, maximum = 100)]
    pub eligible_score_minimum: Option<i64>,
    #[schema(minimum = 0, maximum = 99_999_999)]
    pub deductible_amount: Option<i64>,
    pub active: Option<bool>,
    pub metadata: Option<MetadataParam>,
    pub expand: Option<Vec<ExpandPath>>,
}

/// The terms of a policy are fixed once created.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyUpdate {
    #[schema(max_length = 256)]
    pub name: Option<String>,
    pub active: Option<bool>,
    pub metadata: Option<MetadataParam>,
    pub expand: Option<Vec<ExpandPath>>,
}

#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"policy": "gpol_abc123", "tenant": "cus_123456789", "coverage_amount": 120000,
    "currency": "eur", "start_date": 1706140800, "end_date": 1737676800}))]
pub struct GuaranteeCreate {
    #[schema(pattern = "^gpol_[A-Za-z0-9_]{1,64}$")]
    pub policy: String,
    #[schema(pattern = "^cus_[A-Za-z0-9_]{1,64}$")]
    pub tenant: String,
    /// Monthly coverage, in the currency's minor unit.
    #[schema(minimum = 1, maximum = 99_999_999)]
    pub coverage_amount: i64,
    /// ISO 4217, any case.
    #[schema(pattern = "^[A-Za-z]{3}$")]
    pub currency: String,
    /// Unix seconds, 0 to 253402300799 (1970 to 9999).
    #[schema(minimum = 0, maximum = 253_402_300_799_i64)]
    pub start_date: i64,
    /// Unix seconds, after `start_date` and in the future, at most 253402300799.
    #[schema(minimum = 0, maximum = 253_402_300_799_i64)]
    pub end_date: i64,
    pub metadata: Option<MetadataParam>,
    pub expand: Option<Vec<ExpandPath>>,
}

#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GuaranteeUpdate {
    /// Later than the current end date, while pending or active; at most 253402300799.
    #[schema(minimum = 0, maximum = 253_402_300_799_i64)]
    pub end_date: Option<i64>,
    pub metadata: Option<MetadataParam>,
    pub expand: Option<Vec<ExpandPath>>,
}

#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpandOnly {
    pub expand: Option<Vec<ExpandPath>>,
}

#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EvidenceParam {
    #[schema(min_length = 1, max_length = 255)]
    pub invoice_id: String,
    /// Unix seconds, not in the future; its calendar month (UTC) is the claim's period.
    #[schema(minimum = 0, maximum = 253_402_300_799_i64)]
    pub due_date: i64,
    #[schema(max_length = 1000)]
    pub description: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"guarantee": "grt_def456", "amount": 120000, "currency": "eur", "reason": "missed_payment",
    "evidence": {"invoice_id": "inv_abc123", "due_date": 1708732800, "description": "February 2025 rent — unpaid"}}))]
pub struct ClaimCreate {
    #[schema(pattern = "^grt_[A-Za-z0-9_]{1,64}$")]
    pub guarantee: String,
    #[schema(minimum = 1, maximum = 99_999_999)]
    pub amount: i64,
    #[schema(pattern = "^[A-Za-z]{3}$")]
    pub currency: String,
    pub reason: ClaimReason,
    pub evidence: EvidenceParam,
    pub metadata: Option<MetadataParam>,
    pub expand: Option<Vec<ExpandPath>>,
}

#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MetadataUpdate {
    pub metadata: Option<MetadataParam>,
    pub expand: Option<Vec<ExpandPath>>,
}

#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApproveParams {
    /// At most the computed maximum; default that maximum.
    #[schema(minimum = 1, maximum = 99_999_999)]
    pub amount: Option<i64>,
}

#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DenyParams {
    pub denial_reason: OperatorDenialReason,
    /// Why: required with `other`, optional otherwise. Shown as the claim's `review.note`.
    #[schema(max_length = 1000)]
    pub note: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HelperDenyParams {
    pub denial_reason: Option<OperatorDenialReason>,
    /// Required with `other`, optional otherwise.
    #[schema(max_length = 1000)]
    pub note: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookEndpointCreate {
    #[schema(min_length = 1, max_length = 2048)]
    pub url: String,
    /// Event types, or `*`.
    pub enabled_events: Vec<String>,
    pub description: Option<String>,
    pub metadata: Option<MetadataParam>,
}

#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookEndpointUpdate {
    pub url: Option<String>,
    pub enabled_events: Option<Vec<String>>,
    pub description: Option<String>,
    pub disabled: Option<bool>,
    pub metadata: Option<MetadataParam>,
}

#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResendParams {
    pub webhook_endpoint: Option<String>,
}

/// Filters of `GET /v1/guarantees`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GuaranteeFilters {
    pub status: Option<GuaranteeStatus>,
    pub tenant: Option<String>,
    pub policy: Option<String>,
}

/// Filters of `GET /v1/claims`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ClaimFilters {
    pub guarantee: Option<String>,
    pub status: Option<ClaimStatus>,
}

/// Filters of `GET /v1/payouts`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PayoutFilters {
    pub claim: Option<String>,
    pub guarantee: Option<String>,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CustomerFilters {
    pub email: Option<String>,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PolicyFilters {
    pub active: Option<bool>,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventFilters {
    /// An event type, such as `claim.approved`.
    #[param(rename = "type")]
    pub kind: Option<String>,
}

/// Makes the generated document say exactly what the server accepts, in ways the
/// derive macros cannot express: each operation's `expand` lists the paths that
/// operation can expand; bodies without required fields may be left out; and the
/// form variant of each body and the query parameters have no `null` (a form has no
/// null: `""` is how a form clears a field), with nested objects in bracket notation.
pub fn finish(doc: &mut serde_json::Value) {
    use serde_json::{Value, json};
    add_links(doc);
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
                                .filter(|(_, v)| v["type"] == "object" || v["type"] == "array")
                                .map(|(k, _)| (k.clone(), json!({"style": "deepObject", "explode": true})))
                                .collect()
                        })
                        .unwrap_or_default();
                    if !encoding.is_empty() {
                        c["encoding"] = Value::Object(encoding);
                    }
                }
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
