//! `/v1/test_helpers/test_clocks`: simulated time for test mode (SPEC section 5). Test
//! keys only: to a live key these routes do not exist (`TestHelper`).

use axum::Json;
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{PathId, TestHelper};
use super::input::{Input, QueryInput};
use super::list::{ListBody, list_query, render};
use super::openapi::{Errors, ExpandPath, ExpandQuery, IdPath, List};
use super::{check_id, expand_paths, object_paths, write, write_view};
use crate::app::AppState;
use crate::domain::UnixTime;
use crate::domain::test_clock::{TestClock, TestClockName};
use crate::error::ApiResult;
use crate::ids::{Kind, TestClockId};
use crate::service::test_clocks;
use crate::views::{DeletedTestClockView, Render, TestClockView};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create, list)).routes(routes!(retrieve, delete)).routes(routes!(advance))
}

/// `POST /v1/test_helpers/test_clocks`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"frozen_time": 1708819200, "name": "Docs example"}))]
pub struct TestClockCreate {
    /// The clock's time to start with.
    #[schema(inline)]
    pub frozen_time: UnixTime,
    #[schema(inline)]
    pub name: Option<TestClockName>,
    pub expand: Option<Vec<ExpandPath>>,
}

/// `POST /v1/test_helpers/test_clocks/:id/advance`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"frozen_time": 1711411200}))]
pub struct TestClockAdvance {
    /// The new time: later than the clock's, at most five years ahead.
    #[schema(inline)]
    pub frozen_time: UnixTime,
    pub expand: Option<Vec<ExpandPath>>,
}

/// Create a test clock: customers created on it, and everything under them, live at its time.
#[utoipa::path(post, path = "/v1/test_helpers/test_clocks", tag = "Test clocks",
    request_body(content((TestClockCreate = "application/json"), (TestClockCreate = "application/x-www-form-urlencoded"))),
    responses((status = 200, description = "The new clock", body = TestClockView), Errors))]
async fn create(
    State(state): State<AppState>,
    TestHelper(call): TestHelper,
    Input(input): Input<TestClockCreate>,
) -> ApiResult<Response> {
    expand_paths(input.expand, TestClock::OBJECT, false)?;
    let name = input.name.map(TestClockName::into_string);
    let frozen_time = input.frozen_time.get();
    write_view(&state, &call, async |tx| test_clocks::create(tx, &call, frozen_time, name).await).await
}

/// Retrieve a test clock.
#[utoipa::path(get, path = "/v1/test_helpers/test_clocks/{id}", tag = "Test clocks", params(IdPath, ExpandQuery),
    responses((status = 200, description = "The clock", body = TestClockView), Errors))]
async fn retrieve(
    State(state): State<AppState>,
    TestHelper(call): TestHelper,
    PathId(id): PathId,
    QueryInput(q): QueryInput<ExpandQuery>,
) -> ApiResult<Json<TestClockView>> {
    object_paths(Kind::TestClock, &id, q.expand)?;
    Ok(Json(test_clocks::retrieve(&state.store, &call, &id).await?.view()))
}

/// Delete a test clock, with its customers and their guarantees, claims and payouts.
#[utoipa::path(delete, path = "/v1/test_helpers/test_clocks/{id}", tag = "Test clocks", params(IdPath),
    responses((status = 200, description = "Deleted", body = DeletedTestClockView), Errors))]
async fn delete(
    State(state): State<AppState>,
    TestHelper(call): TestHelper,
    PathId(id): PathId,
) -> ApiResult<Json<DeletedTestClockView>> {
    check_id(Kind::TestClock, &id)?;
    crate::service::write(&state.store, async |tx| test_clocks::delete(tx, &call, &id).await).await?;
    Ok(Json(DeletedTestClockView { id, object: TestClock::OBJECT, deleted: true }))
}

/// Advance a test clock: it is `advancing` at once, and `ready` at the new time once the
/// engine has applied, in time order, everything that fell due on the way.
#[utoipa::path(post, path = "/v1/test_helpers/test_clocks/{id}/advance", tag = "Test clocks", params(IdPath),
    request_body(content((TestClockAdvance = "application/json"), (TestClockAdvance = "application/x-www-form-urlencoded"))),
    responses((status = 200, description = "The clock, advancing", body = TestClockView), Errors))]
async fn advance(
    State(state): State<AppState>,
    TestHelper(call): TestHelper,
    PathId(id): PathId,
    Input(input): Input<TestClockAdvance>,
) -> ApiResult<Response> {
    object_paths(Kind::TestClock, &id, input.expand)?;
    let frozen_time = input.frozen_time.get();
    // The claims engine takes the advance at its next poll (a quarter of a second by default).
    write(&state, &call, async |tx| test_clocks::advance(tx, &call, &id, frozen_time).await.map(|c| c.view())).await
}

list_query! {
    /// `GET /v1/test_helpers/test_clocks`.
    TestClockList, TestClockId {}
}

/// List test clocks, newest first.
#[utoipa::path(get, path = "/v1/test_helpers/test_clocks", tag = "Test clocks", params(TestClockList),
    responses((status = 200, description = "A page of clocks", body = List<TestClockView>), Errors))]
async fn list(
    State(state): State<AppState>,
    TestHelper(call): TestHelper,
    QueryInput(q): QueryInput<TestClockList>,
) -> ApiResult<Json<ListBody<TestClockView>>> {
    let page = q.page()?;
    expand_paths(q.expand, TestClock::OBJECT, true)?;
    Ok(render(test_clocks::list(&state.store, &call, &page).await?, "/v1/test_helpers/test_clocks"))
}
