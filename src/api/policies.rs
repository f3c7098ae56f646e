//! `/v1/guarantee_policies`

use axum::Json;
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use serde::de::IgnoredAny;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{PathId, Platform};
use super::input::{Input, QueryInput};
use super::list::{ListBody, list_query, render};
use super::openapi::{Errors, ExpandPath, ExpandQuery, IdPath, List};
use super::{check_id, expand_paths, object_paths, write_view};
use crate::app::AppState;
use crate::domain::metadata::{self, MetadataUpdate};
use crate::domain::policy::{
    CoveragePercentage, DeductibleAmount, EligibleScoreMinimum, MaxCoverageMonths, Policy, PolicyName,
    WaitingPeriodDays,
};
use crate::error::{ApiError, ApiResult};
use crate::ids::{Kind, PolicyId};
use crate::service::policies;
use crate::views::{PolicyView, Render};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create, list)).routes(routes!(retrieve, update))
}

/// `POST /v1/guarantee_policies`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyCreate {
    #[schema(inline)]
    pub name: PolicyName,
    #[schema(inline)]
    pub coverage_percentage: CoveragePercentage,
    #[schema(inline)]
    pub max_coverage_months: MaxCoverageMonths,
    /// Default 0.
    #[schema(inline)]
    pub waiting_period_days: Option<WaitingPeriodDays>,
    /// Default 0.
    #[schema(inline)]
    pub eligible_score_minimum: Option<EligibleScoreMinimum>,
    /// Default 0.
    #[schema(inline)]
    pub deductible_amount: Option<DeductibleAmount>,
    /// Default true.
    pub active: Option<bool>,
    #[serde(default, deserialize_with = "metadata::given")]
    pub metadata: Option<MetadataUpdate>,
    pub expand: Option<Vec<ExpandPath>>,
}

/// `POST /v1/guarantee_policies/:id`: the terms of a policy are fixed once created.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyUpdate {
    #[schema(inline)]
    pub name: Option<PolicyName>,
    pub active: Option<bool>,
    #[serde(default, deserialize_with = "metadata::given")]
    pub metadata: Option<MetadataUpdate>,
    pub expand: Option<Vec<ExpandPath>>,
    // The terms, read only to say that they cannot change (not in the document).
    #[schema(ignore)]
    coverage_percentage: Option<IgnoredAny>,
    #[schema(ignore)]
    max_coverage_months: Option<IgnoredAny>,
    #[schema(ignore)]
    waiting_period_days: Option<IgnoredAny>,
    #[schema(ignore)]
    eligible_score_minimum: Option<IgnoredAny>,
    #[schema(ignore)]
    deductible_amount: Option<IgnoredAny>,
}

impl PolicyUpdate {
    /// The first of the fixed terms the request tries to change.
    fn changed_term(&self) -> Option<&'static str> {
        [
            ("coverage_percentage", self.coverage_percentage.is_some()),
            ("max_coverage_months", self.max_coverage_months.is_some()),
            ("waiting_period_days", self.waiting_period_days.is_some()),
            ("eligible_score_minimum", self.eligible_score_minimum.is_some()),
            ("deductible_amount", self.deductible_amount.is_some()),
        ]
        .into_iter()
        .find_map(|(term, given)| given.then_some(term))
    }
}

/// Create a guarantee policy.
#[utoipa::path(post, path = "/v1/guarantee_policies", tag = "Guarantee policies", request_body(content((PolicyCreate = "application/json"), (PolicyCreate = "application/x-www-form-urlencoded"))),
    responses((status = 200, description = "The new policy", body = PolicyView), Errors))]
async fn create(
    State(state): State<AppState>,
    Platform(call): Platform,
    Input(input): Input<PolicyCreate>,
) -> ApiResult<Response> {
    expand_paths(input.expand, Policy::OBJECT, false)?;
    let input = policies::NewPolicy {
        name: input.name.into_string(),
        coverage_percentage: input.coverage_percentage.get(),
        max_coverage_months: input.max_coverage_months.get(),
        waiting_period_days: input.waiting_period_days.map_or(0, WaitingPeriodDays::get),
        eligible_score_minimum: input.eligible_score_minimum.map_or(0, EligibleScoreMinimum::get),
        deductible_amount: input.deductible_amount.map_or(0, DeductibleAmount::get),
        active: input.active.unwrap_or(true),
        metadata: input.metadata,
    };
    write_view(&state, &call, async |tx| policies::create(tx, &call, input).await).await
}

/// Retrieve a guarantee policy.
#[utoipa::path(get, path = "/v1/guarantee_policies/{id}", tag = "Guarantee policies", params(IdPath, ExpandQuery),
    responses((status = 200, description = "The policy", body = PolicyView), Errors))]
async fn retrieve(
    State(state): State<AppState>,
    Platform(call): Platform,
    PathId(id): PathId,
    QueryInput(q): QueryInput<ExpandQuery>,
) -> ApiResult<Json<PolicyView>> {
    object_paths(Kind::Policy, &id, q.expand)?;
    Ok(Json(policies::retrieve(&state.store, &call, &id).await?.view()))
}

/// Update a policy's `name`, `active` or `metadata`; its terms are fixed.
#[utoipa::path(post, path = "/v1/guarantee_policies/{id}", tag = "Guarantee policies", params(IdPath), request_body(content((PolicyUpdate = "application/json"), (PolicyUpdate = "application/x-www-form-urlencoded"))),
    responses((status = 200, description = "The updated policy", body = PolicyView), Errors))]
async fn update(
    State(state): State<AppState>,
    Platform(call): Platform,
    PathId(id): PathId,
    Input(input): Input<PolicyUpdate>,
) -> ApiResult<Response> {
    check_id(Kind::Policy, &id)?;
    if let Some(term) = input.changed_term() {
        return Err(ApiError::invalid(
            "policy_terms_immutable",
            term,
            format!(
                "The terms of a guarantee policy cannot change once it is created ({term}). \
                 Create a new policy with the new terms instead."
            ),
        ));
    }
    expand_paths(input.expand, Policy::OBJECT, false)?;
    let input = policies::PolicyPatch {
        name: input.name.map(PolicyName::into_string),
        active: input.active,
        metadata: input.metadata,
    };
    write_view(&state, &call, async |tx| policies::update(tx, &call, &id, input).await).await
}

list_query! {
    /// `GET /v1/guarantee_policies`.
    PolicyList, PolicyId {
        /// Only active (or inactive) policies.
        active: Option<bool>,
    }
}

/// List guarantee policies, newest first.
#[utoipa::path(get, path = "/v1/guarantee_policies", tag = "Guarantee policies", params(PolicyList),
    responses((status = 200, description = "A page of policies", body = List<PolicyView>), Errors))]
async fn list(
    State(state): State<AppState>,
    Platform(call): Platform,
    QueryInput(q): QueryInput<PolicyList>,
) -> ApiResult<Json<ListBody<PolicyView>>> {
    let page = q.page()?;
    expand_paths(q.expand, Policy::OBJECT, true)?;
    Ok(render(policies::list(&state.store, &call, &page, q.active).await?, "/v1/guarantee_policies"))
}
