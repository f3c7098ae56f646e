//! Reading events.

use super::{Call, read_one, read_page};
use crate::domain::event::Event;
use crate::error::ApiResult;
use crate::resource;
use crate::store::{self, Page, PageRequest, Store};

pub async fn retrieve(store: &Store, call: &Call, id: &str) -> ApiResult<Event> {
    read_one(store, &resource::EVENT, id, async |conn| store::events::get(conn, &call.scope, id).await).await
}

pub async fn list(store: &Store, call: &Call, page: &PageRequest, kind: Option<String>) -> ApiResult<Page<Event>> {
    read_page(store, call, &resource::EVENT, page, async |conn| {
        store::events::list(conn, &call.scope, page, kind).await
    })
    .await
}

/// Removes events past their retention (30 days). Returns how many went.
pub async fn purge_expired(store: &Store, now: i64) -> ApiResult<u64> {
    let mut conn = store.acquire().await?;
    Ok(store::events::delete_older_than(&mut conn, now - crate::domain::event::RETENTION_SECONDS).await?)
}
