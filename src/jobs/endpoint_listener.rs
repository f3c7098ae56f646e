//! PostgreSQL: listens for changes to webhook endpoints made by any replica (the
//! trigger of migration 0017) and makes the store's endpoint cache forget what it kept
//! on each. The cache is live only while this listens (see `store::endpoint_cache`).

use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio_util::sync::CancellationToken;

use crate::store::endpoint_cache::CHANNEL;
use crate::store::{Backend, Store};

/// The wait before connecting again after the listening connection failed.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Listens on `database_url` until `cancel` fires, connecting again whenever the
/// connection is lost; the cache is off in between.
pub async fn run(store: Store, database_url: String, cancel: CancellationToken) {
    let cache = store.endpoint_cache();
    while !cancel.is_cancelled() {
        let listening = async {
            let mut listener = PgListener::connect(&database_url).await?;
            listener.listen(CHANNEL).await?;
            Ok::<_, sqlx::Error>(listener)
        };
        let mut listener = tokio::select! {
            _ = cancel.cancelled() => break,
            listener = listening => match listener {
                Ok(listener) => listener,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for webhook endpoint changes; endpoints are read per write meanwhile");
                    tokio::select! {
                        _ = cancel.cancelled() => break,
                        _ = tokio::time::sleep(RETRY_AFTER) => continue,
                    }
                }
            },
        };
        cache.set_live(true);
        tracing::debug!("listening for webhook endpoint changes");
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                note = listener.try_recv() => match note {
                    Ok(Some(_)) => cache.invalidate(),
                    // The connection was lost: what changed meanwhile is unknown.
                    Ok(None) | Err(_) => {
                        tracing::warn!("lost the connection listening for webhook endpoint changes; connecting again");
                        break;
                    }
                },
            }
        }
        cache.set_live(false);
    }
}

/// Makes `store`'s endpoint cache live for a server: on SQLite at once (serve's lock
/// makes this process the file's one server), on PostgreSQL while the listener that
/// this spawns listens.
pub fn start(store: &Store, database_url: &str, cancel: CancellationToken) -> Option<tokio::task::JoinHandle<()>> {
    match store.backend() {
        Backend::Sqlite => {
            store.endpoint_cache().set_live(true);
            None
        }
        Backend::Postgres => Some(tokio::spawn(run(store.clone(), database_url.to_owned(), cancel))),
    }
}
