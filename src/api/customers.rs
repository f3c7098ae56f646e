//! `/v1/customers`

use axum::Json;
use axum::extract::State;
use axum::response::Response;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use serde::Deserialize;
use utoipa::ToSchema;

use super::extract::{PathId, Platform};
use super::input::{Input, QueryInput};
use super::list::{list_query, render};
use super::openapi::{Errors, ExpandPath, ExpandQuery, IdPath, List};
use super::{expand_paths, object_paths, write_view};
use crate::app::AppState;
use crate::domain::Patch;
use crate::domain::customer::{Customer, CustomerName, Email, Score};
use crate::domain::metadata::{self, MetadataUpdate};
use crate::error::ApiResult;
use crate::ids::{CustomerId, Kind, TestClockId};
use crate::service::customers;
use crate::views::{CustomerView, Render};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create, list)).routes(routes!(retrieve, update))
}

/// `POST /v1/customers`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerCreate {
    #[schema(inline)]
    pub name: Option<CustomerName>,
    #[schema(inline)]
    pub email: Option<Email>,
    /// `""` or `null` leaves it out.
    #[serde(default)]
    #[schema(inline)]
    pub score: Patch<Score>,
    #[serde(default, deserialize_with = "metadata::given")]
    pub metadata: Option<MetadataUpdate>,
    /// The test clock the customer and its guarantees, claims and payouts live on (test
    /// mode only): they read its time instead of the wall clock's.
    #[schema(inline)]
    pub test_clock: Option<TestClockId>,
    pub expand: Option<Vec<ExpandPath>>,
}

/// `POST /v1/customers/:id`: `""` (or `null`) clears a field; `metadata` merges.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerUpdate {
    #[serde(default)]
    #[schema(inline)]
    pub name: Patch<CustomerName>,
    #[serde(default)]
    #[schema(inline)]
    pub email: Patch<Email>,
    #[serde(default)]
    #[schema(inline)]
    pub score: Patch<Score>,
    #[serde(default, deserialize_with = "metadata::given")]
    pub metadata: Option<MetadataUpdate>,
    pub expand: Option<Vec<ExpandPath>>,
}

/// Create a customer (a tenant).
#[utoipa::path(post, path = "/v1/customers", tag = "Customers",
    request_body(content((CustomerCreate = "application/json"), (CustomerCreate = "application/x-www-form-urlencoded"))),
    responses((status = 200, description = "The new customer", body = CustomerView), Errors))]
async fn create(
    State(state): State<AppState>,
    Platform(call): Platform,
    Input(input): Input<CustomerCreate>,
) -> ApiResult<Response> {
    expand_paths(input.expand, Customer::OBJECT, false)?;
    let input = customers::NewCustomer {
        name: input.name.map(CustomerName::into_string),
        email: input.email.map(Email::into_string),
        score: match input.score {
            Patch::Set(s) => Some(s.get()),
            _ => None,
        },
        metadata: input.metadata,
        test_clock: input.test_clock.map(TestClockId::into_string),
    };
    write_view(&state, &call, async |tx| customers::create(tx, &call, input).await).await
}

/// Retrieve a customer.
#[utoipa::path(get, path = "/v1/customers/{id}", tag = "Customers", params(IdPath, ExpandQuery),
    responses((status = 200, description = "The customer", body = CustomerView), Errors))]
async fn retrieve(
    State(state): State<AppState>,
    Platform(call): Platform,
    PathId(id): PathId,
    QueryInput(q): QueryInput<ExpandQuery>,
) -> ApiResult<Json<CustomerView>> {
    object_paths(Kind::Customer, &id, q.expand)?;
    Ok(Json(customers::retrieve(&state.store, &call, &id).await?.view()))
}

/// Update a customer: `name`, `email`, `score` (`""` clears one), `metadata` (merged).
#[utoipa::path(post, path = "/v1/customers/{id}", tag = "Customers", params(IdPath),
    request_body(content((CustomerUpdate = "application/json"), (CustomerUpdate = "application/x-www-form-urlencoded"))),
    responses((status = 200, description = "The updated customer", body = CustomerView), Errors))]
async fn update(
    State(state): State<AppState>,
    Platform(call): Platform,
    PathId(id): PathId,
    Input(input): Input<CustomerUpdate>,
) -> ApiResult<Response> {
    object_paths(Kind::Customer, &id, input.expand)?;
    let input = customers::CustomerPatch {
        name: input.name.map(CustomerName::into_string),
        email: input.email.map(Email::into_string),
        score: input.score.map(Score::get),
        metadata: input.metadata,
    };
    write_view(&state, &call, async |tx| customers::update(tx, &call, &id, input).await).await
}

list_query! {
    /// `GET /v1/customers`.
    CustomerList, CustomerId {
        /// Only customers with this email address.
        email: Option<Email>,
    }
}

/// List customers, newest first.
#[utoipa::path(get, path = "/v1/customers", tag = "Customers", params(CustomerList),
    responses((status = 200, description = "A page of customers", body = List<CustomerView>), Errors))]
async fn list(
    State(state): State<AppState>,
    Platform(call): Platform,
    QueryInput(q): QueryInput<CustomerList>,
) -> ApiResult<Json<super::list::ListBody<CustomerView>>> {
    let page = q.page()?;
    expand_paths(q.expand, Customer::OBJECT, true)?;
    Ok(render(customers::list(&state.store, &call, &page, q.email.map(Email::into_string)).await?, "/v1/customers"))
}
