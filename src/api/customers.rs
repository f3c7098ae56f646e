//! `/v1/customers`

use axum::Json;
use axum::extract::State;
use axum::response::Response;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::openapi::{CustomerCreate, CustomerFilters, Errors, ExpandQuery, IdPath, List, ListQuery};

use super::extract::{Body, PathId, Platform, Query};
use super::list::{LIST_PARAMS, page_request, render};
use super::params::{Params, Patch};
use super::{check_id, expand_param, json_body};
use crate::app::AppState;
use crate::domain::customer::{Customer, SCORE_MAX};
use crate::error::{ApiError, ApiResult};
use crate::ids::Kind;
use crate::service::{self, customers};
use crate::views::{CustomerView, Render};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create, list)).routes(routes!(retrieve, update))
}

const NAME_MAX: usize = 256;
const EMAIL_MAX: usize = 512;

fn check_email(p: &Params, email: &str) -> ApiResult<()> {
    let ok = email
        .split_once('@')
        .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty() && !domain.contains('@'))
        && !email.chars().any(char::is_whitespace);
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "email_invalid",
            p.name("email"),
            format!("Invalid email address: {}", crate::error::clip(email)),
        ))
    }
}

fn score(p: &mut Params) -> ApiResult<Patch<i64>> {
    let score = p.patch_int("score")?;
    if let Patch::Set(s) = score
        && !(0..=SCORE_MAX).contains(&s)
    {
        return Err(ApiError::invalid(
            "parameter_out_of_range",
            "score",
            format!("Invalid score: must be between 0 and {SCORE_MAX}, got {s}."),
        ));
    }
    Ok(score)
}

fn email(p: &mut Params) -> ApiResult<Patch<String>> {
    let email = p.patch_bounded_string("email", EMAIL_MAX)?;
    if let Patch::Set(e) = &email {
        check_email(p, e)?;
    }
    Ok(email)
}

const FIELDS: &[&str] = &["name", "email", "score", "metadata"];

/// Create a customer (a tenant).
#[utoipa::path(post, path = "/v1/customers", tag = "Customers",
    request_body(content((CustomerCreate = "application/json"), (CustomerCreate = "application/x-www-form-urlencoded"))),
    responses((status = 200, description = "The new customer", body = CustomerView), Errors))]
async fn create(State(state): State<AppState>, Platform(call): Platform, Body(mut p): Body) -> ApiResult<Response> {
    expand_param(&mut p, Customer::OBJECT, false)?;
    p.allow(FIELDS)?;
    let input = customers::NewCustomer {
        name: p.bounded_string("name", NAME_MAX)?,
        email: match email(&mut p)? {
            Patch::Set(e) => Some(e),
            _ => None,
        },
        score: match score(&mut p)? {
            Patch::Set(s) => Some(s),
            _ => None,
        },
        metadata: p.metadata()?,
    };
    Ok(json_body(
        service::write_json(&state.store, &call, async |tx| {
            customers::create(tx, &call, input).await.map(|c| c.view())
        })
        .await?,
    ))
}

/// Retrieve a customer.
#[utoipa::path(get, path = "/v1/customers/{id}", tag = "Customers", params(IdPath, ExpandQuery),
    responses((status = 200, description = "The customer", body = CustomerView), Errors))]
async fn retrieve(
    State(state): State<AppState>,
    Platform(call): Platform,
    PathId(id): PathId,
    Query(mut q): Query,
) -> ApiResult<Json<CustomerView>> {
    check_id(Kind::Customer, &id)?;
    expand_param(&mut q, Customer::OBJECT, false)?;
    q.allow(&[])?;
    Ok(Json(customers::retrieve(&state.store, &call, &id).await?.view()))
}

/// Update a customer: `name`, `email`, `score` (`""` clears one), `metadata` (merged).
#[utoipa::path(post, path = "/v1/customers/{id}", tag = "Customers", params(IdPath),
    request_body(content((CustomerCreate = "application/json"), (CustomerCreate = "application/x-www-form-urlencoded"))),
    responses((status = 200, description = "The updated customer", body = CustomerView), Errors))]
async fn update(
    State(state): State<AppState>,
    Platform(call): Platform,
    PathId(id): PathId,
    Body(mut p): Body,
) -> ApiResult<Response> {
    check_id(Kind::Customer, &id)?;
    expand_param(&mut p, Customer::OBJECT, false)?;
    p.allow(FIELDS)?;
    let input = customers::CustomerPatch {
        name: p.patch_bounded_string("name", NAME_MAX)?,
        email: email(&mut p)?,
        score: score(&mut p)?,
        metadata: p.metadata()?,
    };
    Ok(json_body(
        service::write_json(&state.store, &call, async |tx| {
            customers::update(tx, &call, &id, input).await.map(|c| c.view())
        })
        .await?,
    ))
}

/// List customers, newest first.
#[utoipa::path(get, path = "/v1/customers", tag = "Customers", params(ListQuery, CustomerFilters),
    responses((status = 200, description = "A page of customers", body = List<CustomerView>), Errors))]
async fn list(
    State(state): State<AppState>,
    Platform(call): Platform,
    Query(mut q): Query,
) -> ApiResult<Json<super::list::ListBody<CustomerView>>> {
    q.allow(&[LIST_PARAMS, &["email"]].concat())?;
    let page = page_request(&mut q, Kind::Customer)?;
    expand_param(&mut q, Customer::OBJECT, true)?;
    let email = q.string("email")?;
    Ok(render(customers::list(&state.store, &call, &page, email).await?, "/v1/customers"))
}
