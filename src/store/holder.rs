//! Who holds an idempotency key: an identity of this process that the database itself
//! forgets the moment the process dies, so that a key held by a crashed server can be
//! taken over at once instead of after its lock runs out.
//!
//! PostgreSQL: the process keeps one connection of its own that holds a session-level
//! advisory lock on its identity; a crash closes the connection and PostgreSQL drops
//! the lock, which any replica can see in `pg_locks`. SQLite: one server per database
//! file (the serve lock), so a key held by any identity but this process's is held by
//! a process that is gone.

use std::sync::Arc;
use std::time::Duration;

use sqlx::{AnyConnection, Connection, Row};
use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;

use super::{Backend, Conn};

/// The first key of the advisory locks (`pg_advisory_lock(int, int)`): "CASA".
const LOCK_NAMESPACE: i32 = 0x4341_5341;
/// How often the keeper checks that its connection (and so its lock) is still there.
const KEEPER_CHECK: Duration = Duration::from_secs(10);

/// This process's identity as a holder of idempotency keys.
pub(crate) struct Holder {
    backend: Backend,
    url: String,
    /// A positive `i32`, so that it is the same number in `pg_locks.objid` (an oid).
    id: i64,
    /// PostgreSQL: whether the keeper holds the lock (started on first use).
    keeper: OnceCell<bool>,
    stop: CancellationToken,
}

impl Holder {
    pub(crate) fn new(backend: Backend, url: &str) -> Self {
        let id = i64::from(rand::random::<u32>() >> 1).max(1);
        Holder { backend, url: url.to_owned(), id, keeper: OnceCell::new(), stop: CancellationToken::new() }
    }

    /// This process's identity, or `None` when it cannot be made visible to others
    /// (the keeper could not lock): keys then wait for their lock to run out.
    pub(crate) async fn id(&self) -> Option<i64> {
        match self.backend {
            Backend::Sqlite => Some(self.id),
            Backend::Postgres => {
                let locked = *self.keeper.get_or_init(|| self.start_keeper()).await;
                locked.then_some(self.id)
            }
        }
    }

    /// Whether the process that holds a key under `holder` is gone.
    pub(crate) async fn is_gone(&self, conn: &mut Conn, holder: i64) -> Result<bool, sqlx::Error> {
        if holder == self.id {
            return Ok(false);
        }
        match self.backend {
            Backend::Sqlite => Ok(true),
            Backend::Postgres => {
                let row = sqlx::query(
                    "SELECT COUNT(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND granted \
                     AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
                     AND classid::text::bigint = $1 AND objid::text::bigint = $2 AND objsubid = 2",
                )
                .bind(i64::from(LOCK_NAMESPACE))
                .bind(holder)
                .fetch_one(&mut *conn)
                .await?;
                Ok(row.try_get::<i64, _>("n")? == 0)
            }
        }
    }

    /// Opens the keeper's connection and takes the lock; keeps it (reconnecting and
    /// locking again if the connection breaks) until the store is dropped.
    async fn start_keeper(&self) -> bool {
        let mut conn = match lock(&self.url, self.id).await {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!(error = %e, "cannot hold an idempotency identity; keys of a crashed server wait for their lock to run out");
                return false;
            }
        };
        let (url, id, stop) = (self.url.clone(), self.id, self.stop.clone());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep(KEEPER_CHECK) => {}
                }
                if conn.ping().await.is_ok() {
                    continue;
                }
                match lock(&url, id).await {
                    Ok(fresh) => conn = fresh,
                    Err(e) => tracing::warn!(error = %e, "idempotency identity lost; retrying"),
                }
            }
            let _ = conn.close().await;
        });
        true
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn lock(url: &str, id: i64) -> Result<AnyConnection, sqlx::Error> {
    let mut conn = AnyConnection::connect(url).await?;
    sqlx::query("SELECT pg_advisory_lock($1, $2)").bind(LOCK_NAMESPACE).bind(id as i32).execute(&mut conn).await?;
    Ok(conn)
}

/// Shared by the clones of one store.
pub(crate) type SharedHolder = Arc<Holder>;
