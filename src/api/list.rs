//! List requests and list bodies.

use std::borrow::Cow;

use axum::Json;
use serde::Serialize;

use crate::service::expand::Expanded;

use serde::Deserialize;
use utoipa::ToSchema;

use crate::domain::UnixTime;
use crate::domain::input::Rejection;
use crate::error::{ApiError, ApiResult};
use crate::store::{CreatedFilter, Page, PageRequest};
use crate::views::Render;

crate::domain::input::bounded_int!(
    /// How many objects a page holds.
    Limit,
    1,
    100,
    "How many objects a page holds, 1 to 100; default 10."
);

/// Bounds on `created`: `created[gte]=...`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatedRange {
    pub gt: Option<UnixTime>,
    pub gte: Option<UnixTime>,
    pub lt: Option<UnixTime>,
    pub lte: Option<UnixTime>,
}

/// `created=<ts>` (exactly) or `created[gt|gte|lt|lte]=<ts>`.
#[derive(Debug)]
pub enum CreatedParam {
    Exact(UnixTime),
    Range(CreatedRange),
}

impl<'de> Deserialize<'de> for CreatedParam {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CreatedVisitor;
        impl<'de> serde::de::Visitor<'de> for CreatedVisitor {
            type Value = CreatedParam;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("Unix seconds, or a hash of gt, gte, lt, lte")
            }
            fn visit_i64<E: serde::de::Error>(self, i: i64) -> Result<CreatedParam, E> {
                UnixTime::new(i).map(CreatedParam::Exact).map_err(|r| r.into_error())
            }
            fn visit_u64<E: serde::de::Error>(self, u: u64) -> Result<CreatedParam, E> {
                self.visit_i64(i64::try_from(u).unwrap_or(i64::MAX))
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<CreatedParam, E> {
                match super::input::parse_decimal_i64(s) {
                    Some(i) => self.visit_i64(i),
                    None if s.is_empty() => Err(invalid_integer("(empty)")),
                    None => Err(invalid_integer(&crate::error::clip(s))),
                }
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<CreatedParam, A::Error> {
                CreatedRange::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(CreatedParam::Range)
            }
        }
        deserializer.deserialize_any(CreatedVisitor)
    }
}

fn invalid_integer<E: serde::de::Error>(shown: &str) -> E {
    Rejection::new("parameter_invalid_integer", format!("Invalid integer: {shown}")).into_error()
}

/// The page a list request asks for.
pub fn page(
    limit: Option<Limit>,
    starting_after: Option<&str>,
    ending_before: Option<&str>,
    created: Option<&CreatedParam>,
) -> ApiResult<PageRequest> {
    if starting_after.is_some() && ending_before.is_some() {
        return Err(ApiError::invalid(
            "parameters_exclusive",
            "ending_before",
            "You may only specify one of these parameters: starting_after, ending_before.",
        ));
    }
    let created = match created {
        None => CreatedFilter::default(),
        Some(CreatedParam::Exact(t)) => {
            CreatedFilter { gte: Some(t.get()), lte: Some(t.get()), ..CreatedFilter::default() }
        }
        Some(CreatedParam::Range(r)) => CreatedFilter {
            gt: r.gt.map(UnixTime::get),
            gte: r.gte.map(UnixTime::get),
            lt: r.lt.map(UnixTime::get),
            lte: r.lte.map(UnixTime::get),
        },
    };
    Ok(PageRequest {
        limit: limit.map_or(10, Limit::get),
        starting_after: starting_after.map(str::to_owned),
        ending_before: ending_before.map(str::to_owned),
        created,
    })
}

/// Defines a list's query: the parameters of every list (`limit`, the cursors as ids
/// of `$cursor`, `created`, `expand[]`) and the list's own filters, in one type that
/// parses the query and documents it.
macro_rules! list_query {
    ($(#[$meta:meta])* $name:ident, $cursor:ty { $($(#[$fmeta:meta])* $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
        #[serde(deny_unknown_fields)]
        #[into_params(parameter_in = Query)]
        pub struct $name {
            /// 1 to 100; default 10.
            #[param(inline)]
            pub limit: Option<$crate::api::list::Limit>,
            /// An object id: the page after it.
            #[param(inline)]
            pub starting_after: Option<$cursor>,
            /// An object id: the page before it.
            #[param(inline)]
            pub ending_before: Option<$cursor>,
            /// Only objects created in this range.
            #[param(style = DeepObject, explode, inline, value_type = Option<$crate::api::list::CreatedRange>)]
            pub created: Option<$crate::api::list::CreatedParam>,
            /// Expand the items' ids into objects, as `data.<field>`.
            #[param(rename = "expand[]", style = Form, explode, inline)]
            pub expand: Option<Vec<$crate::api::openapi::ExpandPath>>,
            $($(#[$fmeta])* #[param(inline)] pub $field: $ty,)*
        }

        impl $name {
            /// The page asked for.
            pub fn page(&self) -> $crate::error::ApiResult<$crate::store::PageRequest> {
                $crate::api::list::page(
                    self.limit,
                    self.starting_after.as_ref().map(|id| id.as_str()),
                    self.ending_before.as_ref().map(|id| id.as_str()),
                    self.created.as_ref(),
                )
            }
        }
    };
}
pub(crate) use list_query;

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
    Json(ListBody::new(data, has_more, url))
}

impl<T> ListBody<T> {
    pub fn new(data: Vec<T>, has_more: bool, url: impl Into<Cow<'static, str>>) -> Self {
        ListBody { object: "list", data, has_more, url: url.into() }
    }
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
        store.run(async |conn| crate::service::expand::apply_all(conn, scope, page.data, paths).await).await?
    };
    Ok(body(data, page.has_more, url))
}
