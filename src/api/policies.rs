//! `/v1/guarantee_policies`

use super::openapi::{Errors, ExpandQuery, IdPath, List, ListQuery, PolicyCreate, PolicyFilters, PolicyUpdate};
use axum::extract::State;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use axum::Json;
use axum::response::Response;

use super::extract::{Body, PathId, Platform, Query};
use super::list::{LIST_PARAMS, ListBody, page_request, render};
use super::{check_id, expand_param, json_body};
use crate::app::AppState;
use crate::domain::policy::{self, FIXED_TERMS, Policy};
use crate::error::{ApiError, ApiResult};
use crate::ids::Kind;
use crate::service::{self, policies};
use crate::views::{PolicyView, Render};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create, list)).routes(routes!(retrieve, update))
}

const NAME_MAX: usize = 256;

/// Create a guarantee policy.
#[utoipa::path(post, path = "/v1/guarantee_policies", tag = "Guarantee policies", request_body(content((PolicyCreate = "application/json"), (PolicyCreate = "application/x-www-form-urlencoded"))),
    responses((status = 200, description = "The new policy", body = PolicyView), Errors))]
async fn create(State(state): State<AppState>, Platform(call): Platform, Body(mut p): Body) -> ApiResult<Response> {
    expand_param(&mut p, Policy::OBJECT, false)?;
    p.allow(&[&["name", "active", "metadata"], FIXED_TERMS].concat())?;
    let input = policies::NewPolicy {
        name: p.req_string("name")?,
        coverage_percentage: p.req_int_in("coverage_percentage", policy::COVERAGE_PERCENTAGE)?,
        max_coverage_months: p.req_int_in("max_coverage_months", policy::MAX_COVERAGE_MONTHS)?,
        waiting_period_days: p.int_in("waiting_period_days", policy::WAITING_PERIOD_DAYS)?.unwrap_or(0),
        eligible_score_minimum: p.int_in("eligible_score_minimum", policy::ELIGIBLE_SCORE_MINIMUM)?.unwrap_or(0),
        deductible_amount: p.int_in("deductible_amount", policy::DEDUCTIBLE_AMOUNT)?.unwrap_or(0),
        active: p.bool("active")?.unwrap_or(true),
        metadata: p.metadata()?,
    };
    if input.name.chars().count() > NAME_MAX {
        return Err(ApiError::invalid(
            "invalid_string_length",
            "name",
            format!("Invalid name: must be at most {NAME_MAX} characters."),
        ));
    }
    Ok(json_body(
        service::write_json(&state.store, &call, async |tx| policies::create(tx, &call, input).await.map(|p| p.view()))
            .await?,
    ))
}

/// Retrieve a guarantee policy.
#[utoipa::path(get, path = "/v1/guarantee_policies/{id}", tag = "Guarantee policies", params(IdPath, ExpandQuery),
    responses((status = 200, description = "The policy", body = PolicyView), Errors))]
async fn retrieve(
    State(state): State<AppState>,
    Platform(call): Platform,
    PathId(id): PathId,
    Query(mut q): Query,
) -> ApiResult<Json<PolicyView>> {
    check_id(Kind::Policy, &id)?;
    expand_param(&mut q, Policy::OBJECT, false)?;
    q.allow(&[])?;
    Ok(Json(policies::retrieve(&state.store, &call, &id).await?.view()))
}

/// Update a policy's `name`, `active` or `metadata`; its terms are fixed.
#[utoipa::path(post, path = "/v1/guarantee_policies/{id}", tag = "Guarantee policies", params(IdPath), request_body(content((PolicyUpdate = "application/json"), (PolicyUpdate = "application/x-www-form-urlencoded"))),
    responses((status = 200, description = "The updated policy", body = PolicyView), Errors))]
async fn update(
    State(state): State<AppState>,
    Platform(call): Platform,
    PathId(id): PathId,
    Body(mut p): Body,
) -> ApiResult<Response> {
    check_id(Kind::Policy, &id)?;
    if let Some(term) = FIXED_TERMS.iter().find(|t| p.contains(t)) {
        return Err(ApiError::invalid(
            "policy_terms_immutable",
            *term,
            format!(
                "The terms of a guarantee policy cannot change once it is created ({term}). \
                 Create a new policy with the new terms instead."
            ),
        ));
    }
    expand_param(&mut p, Policy::OBJECT, false)?;
    p.allow(&["name", "active", "metadata"])?;
    let input = policies::PolicyPatch {
        name: p.bounded_string("name", NAME_MAX)?,
        active: p.bool("active")?,
        metadata: p.metadata()?,
    };
    Ok(json_body(
        service::write_json(&state.store, &call, async |tx| {
            policies::update(tx, &call, &id, input).await.map(|p| p.view())
        })
        .await?,
    ))
}

/// List guarantee policies, newest first.
#[utoipa::path(get, path = "/v1/guarantee_policies", tag = "Guarantee policies", params(ListQuery, PolicyFilters),
    responses((status = 200, description = "A page of policies", body = List<PolicyView>), Errors))]
async fn list(
    State(state): State<AppState>,
    Platform(call): Platform,
    Query(mut q): Query,
) -> ApiResult<Json<ListBody<PolicyView>>> {
    q.allow(&[LIST_PARAMS, &["active"]].concat())?;
    let page = page_request(&mut q, Kind::Policy)?;
    expand_param(&mut q, Policy::OBJECT, true)?;
    let active = q.bool("active")?;
    Ok(render(policies::list(&state.store, &call, &page, active).await?, "/v1/guarantee_policies"))
}
