//! Reading events.

use super::{Call, check_cursors, found};
use crate::domain::event::Event;
use crate::error::ApiResult;
use crate::resource;
use crate::store::{self, Page, PageRequest, Store};

pub async fn retrieve(store: &Store, call: &Call, id: &str) -> ApiResult<Event> {
    let mut conn = store.acquire().await?;
    found(&resource::EVENT, id, store::events::get(&mut conn, &call.scope, id).await?)
}

pub async fn list(store: &Store, call: &Call, page: &PageRequest, kind: Option<String>) -> ApiResult<Page<Event>> {
    let mut conn = store.acquire().await?;
    check_cursors(&mut conn, call, &resource::EVENT, page).await?;
    Ok(store::events::list(&mut conn, &call.scope, page, kind).await?)
}

/// Removes events past their retention (30 days). Returns how many went.
pub async fn purge_expired(store: &Store, now: i64) -> ApiResult<u64> {
    let mut conn = store.acquire().await?;
    Ok(store::events::delete_older_than(&mut conn, now - crate::domain::event::RETENTION_SECONDS).await?)
}
