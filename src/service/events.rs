//! Reading events.

use super::{Call, check_cursors, found};
use crate::domain::event::Event;
use crate::error::ApiResult;
use crate::resource;
use crate::store::{self, Page, PageRequest, Store};

pub async fn retrieve(store: &Store, call: &Call, id: &str) -> ApiResult<Event> {
    found(&resource::EVENT, id, store.run(async |conn| store::events::get(conn, &call.scope, id).await).await?)
}

pub async fn list(store: &Store, call: &Call, page: &PageRequest, kind: Option<String>) -> ApiResult<Page<Event>> {
    store
        .run(async |conn| {
            check_cursors(conn, call, &resource::EVENT, page).await?;
            Ok(store::events::list(conn, &call.scope, page, kind).await?)
        })
        .await
}

/// Removes events past their retention (30 days). Returns how many went.
pub async fn purge_expired(store: &Store, now: i64) -> ApiResult<u64> {
    Ok(store
        .run(async |conn| store::events::delete_older_than(conn, now - crate::domain::event::RETENTION_SECONDS).await)
        .await?)
}
