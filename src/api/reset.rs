//! `POST /v1/test_helpers/reset`: test keys only.

use axum::extract::State;
use axum::response::Response;
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::TestHelper;
use super::input::Input;
use super::openapi::{Errors, NoParams};
use super::write;
use crate::app::AppState;
use crate::error::ApiResult;
use crate::service;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(reset))
}

/// What a reset deleted.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"object": "test_helpers.reset", "livemode": false,
    "deleted": {"customers": 3, "guarantees": 2, "claims": 1}}))]
pub struct ResetResult {
    /// `test_helpers.reset`.
    #[schema(value_type = String)]
    pub object: &'static str,
    /// Always false: only test data is reset.
    pub livemode: bool,
    /// Rows deleted, by table.
    #[schema(value_type = Object, additional_properties = true)]
    pub deleted: Map<String, Value>,
}

/// Delete every test-mode object of the account (customers, policies, guarantees, claims and their review trail,
/// payouts, evidence files, events and
/// their deliveries, idempotency keys), in one transaction; API keys and webhook endpoints stay, live data is
/// never touched, and no events are sent. Test keys only: to a live key this route does not exist.
#[utoipa::path(post, path = "/v1/test_helpers/reset", tag = "Test helpers",
    request_body(content((NoParams = "application/json"), (NoParams = "application/x-www-form-urlencoded"))),
    responses((status = 200, description = "What was deleted", body = ResetResult), Errors))]
async fn reset(
    State(state): State<AppState>,
    TestHelper(call): TestHelper,
    Input(NoParams {}): Input<NoParams>,
) -> ApiResult<Response> {
    write(&state, &call, async |tx| {
        let deleted = service::reset::reset(tx, &call).await?;
        Ok(ResetResult {
            object: "test_helpers.reset",
            livemode: false,
            deleted: deleted.into_iter().map(|(table, n)| (table.to_owned(), Value::from(n))).collect(),
        })
    })
    .await
}
