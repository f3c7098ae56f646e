//! `/v1/claims`

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};

use super::check_id;
use super::extract::{Body, PathId, Platform, Query};
use super::list::{LIST_PARAMS, ListBody, page_request, render};
use crate::app::AppState;
use crate::domain::claim::{self, Claim, ClaimReason, ClaimStatus, Evidence};
use crate::error::{ApiError, ApiResult};
use crate::ids::Kind;
use crate::service::{self, claims};
use crate::store::claims::ClaimFilters;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/claims", post(create).get(list))
        .route("/v1/claims/{id}", get(retrieve).post(update))
}

async fn create(
    State(state): State<AppState>,
    Platform(call): Platform,
    Body(mut p): Body,
) -> ApiResult<Json<Claim>> {
    p.allow(&[
        "guarantee",
        "amount",
        "currency",
        "reason",
        "evidence",
        "metadata",
    ])?;
    let guarantee = p.req_id("guarantee", Kind::Guarantee)?;
    let amount = p.req_amount("amount")?;
    let currency = p.req_currency("currency")?;
    let reason = p
        .choice("reason", ClaimReason::parse, ClaimReason::names)?
        .ok_or_else(|| ApiError::missing("reason"))?;
    let mut ev = p.req_object("evidence")?;
    ev.allow(&["invoice_id", "due_date", "description"])?;
    let invoice_id = ev.req_string("invoice_id")?;
    if invoice_id.chars().count() > claim::INVOICE_ID_MAX_CHARS {
        return Err(ApiError::invalid(
            "invalid_string_length",
            "evidence[invoice_id]",
            format!(
                "Invalid evidence[invoice_id]: must be at most {} characters.",
                claim::INVOICE_ID_MAX_CHARS
            ),
        ));
    }
    let evidence = Evidence {
        invoice_id,
        due_date: ev.req_int("due_date")?,
        description: ev.bounded_string("description", claim::DESCRIPTION_MAX_CHARS)?,
    };
    let input = claims::NewClaim {
        guarantee,
        amount,
        currency,
        reason,
        evidence,
        metadata: p.metadata()?,
    };
    let created = service::write(&state.store, async |tx| {
        claims::create(tx, &call, input).await
    })
    .await?;
    Ok(Json(created))
}

async fn retrieve(
    State(state): State<AppState>,
    Platform(call): Platform,
    PathId(id): PathId,
) -> ApiResult<Json<Claim>> {
    check_id(Kind::Claim, &id)?;
    Ok(Json(claims::retrieve(&state.store, &call, &id).await?))
}

async fn update(
    State(state): State<AppState>,
    Platform(call): Platform,
    PathId(id): PathId,
    Body(mut p): Body,
) -> ApiResult<Json<Claim>> {
    check_id(Kind::Claim, &id)?;
    p.allow(&["metadata"])?;
    let metadata = p.metadata()?;
    let updated = service::write(&state.store, async |tx| {
        claims::update_metadata(tx, &call, &id, metadata).await
    })
    .await?;
    Ok(Json(updated))
}

async fn list(
    State(state): State<AppState>,
    Platform(call): Platform,
    Query(mut q): Query,
) -> ApiResult<Json<ListBody<Claim>>> {
    q.allow(&[LIST_PARAMS, &["guarantee", "status"]].concat())?;
    let page = page_request(&mut q, Kind::Claim)?;
    let filters = ClaimFilters {
        guarantee: q.id("guarantee", Kind::Guarantee)?,
        status: q.choice("status", ClaimStatus::parse, ClaimStatus::names)?,
    };
    Ok(render(
        claims::list(&state.store, &call, &page, filters).await?,
        "/v1/claims",
    ))
}
