//! List requests and list bodies.

use std::borrow::Cow;

use axum::Json;
use serde::Serialize;

use crate::service::expand::Expanded;

use super::params::Params;
use crate::domain::{TIMESTAMP_RANGE, timestamp_in_range};
use crate::error::{ApiError, ApiResult};
use crate::ids::Kind;
use crate::store::{CreatedFilter, Page, PageRequest};
use crate::views::Render;

/// The parameters every list takes.
pub const LIST_PARAMS: &[&str] = &["limit", "starting_after", "ending_before", "created", "expand"];

/// Takes `limit`, the cursors and `created` out of the query.
pub fn page_request(q: &mut Params, kind: Kind) -> ApiResult<PageRequest> {
    let limit = q.int("limit")?.unwrap_or(10);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::invalid(
            "parameter_out_of_range",
            "limit",
            format!("Invalid limit: must be between 1 and 100, got {limit}."),
        ));
    }
    let starting_after = q.id("starting_after", kind)?;
    let ending_before = q.id("ending_before", kind)?;
    if starting_after.is_some() && ending_before.is_some() {
        return Err(ApiError::invalid(
            "parameters_exclusive",
            "ending_before",
            "You may only specify one of these parameters: starting_after, ending_before.",
        ));
    }
    let created = created_filter(q)?;
    Ok(PageRequest { limit, starting_after, ending_before, created })
}

/// `created=<ts>` (exactly) or `created[gt|gte|lt|lte]=<ts>`, each within
/// `TIMESTAMP_RANGE`.
fn created_filter(q: &mut Params) -> ApiResult<CreatedFilter> {
    match q.int_or_object("created")? {
        None => Ok(CreatedFilter::default()),
        Some(Ok(exact)) => {
            if !timestamp_in_range(exact) {
                let (lo, hi) = TIMESTAMP_RANGE;
                return Err(ApiError::invalid(
                    "parameter_out_of_range",
                    "created",
                    format!("Invalid created: must be between {lo} and {hi}, got {exact}."),
                ));
            }
            Ok(CreatedFilter { gte: Some(exact), lte: Some(exact), ..CreatedFilter::default() })
        }
        Some(Err(mut range)) => {
            range.allow(&["gt", "gte", "lt", "lte"])?;
            Ok(CreatedFilter {
                gt: range.int_in("gt", TIMESTAMP_RANGE)?,
                gte: range.int_in("gte", TIMESTAMP_RANGE)?,
                lt: range.int_in("lt", TIMESTAMP_RANGE)?,
                lte: range.int_in("lte", TIMESTAMP_RANGE)?,
            })
        }
    }
}

#[derive(Serialize)]
pub struct ListBody<T> {
    object: &'static str,
    data: Vec<T>,
    has_more: bool,
    url: Cow<'static, str>,
}

/// A list of the objects' views.
pub fn render<T: Render>(page: Page<T>, url: impl Into<Cow<'static, str>>) -> Json<ListBody<T::View>> {
    body(page.data.iter().map(Render::view).collect(), page.has_more, url)
}

fn body<T>(data: Vec<T>, has_more: bool, url: impl Into<Cow<'static, str>>) -> Json<ListBody<T>> {
    Json(ListBody { object: "list", data, has_more, url: url.into() })
}

/// A list whose items are expanded by `paths` (from `expand[]=data.x`).
pub async fn render_expanded<T: Render>(
    store: &crate::store::Store,
    scope: &crate::store::Scope,
    page: Page<T>,
    paths: &[Vec<String>],
    url: impl Into<Cow<'static, str>>,
) -> ApiResult<Json<ListBody<Expanded<T::View>>>> {
    let data = if paths.is_empty() {
        page.data.iter().map(|item| Expanded::Plain(item.view())).collect()
    } else {
        let mut conn = store.acquire().await?;
        crate::service::expand::apply_all(&mut conn, scope, page.data, paths).await?
    };
    Ok(body(data, page.has_more, url))
}
