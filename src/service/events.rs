//! Reading events.

use super::{Call, check_cursors};
use crate::domain::event::Event;
use crate::error::{ApiError, ApiResult};
use crate::ids::Kind;
use crate::store::{self, Page, PageRequest, Store};

pub async fn retrieve(store: &Store, call: &Call, id: &str) -> ApiResult<Event> {
    let mut conn = store.acquire().await?;
    store::events::get(&mut conn, &call.scope, id)
        .await?
        .ok_or_else(|| ApiError::no_such(Kind::Event.object(), id, Some("id")))
}

pub async fn list(store: &Store, call: &Call, page: &PageRequest, kind: Option<String>) -> ApiResult<Page<Event>> {
    let mut conn = store.acquire().await?;
    check_cursors(&mut conn, call, "events", Kind::Event, page).await?;
    Ok(store::events::list(&mut conn, &call.scope, page, kind).await?)
}
