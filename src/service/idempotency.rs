//! Idempotency keys: a POST sent again with the same key gets the first answer back
//! and does nothing again.
//!
//! A key is claimed (a row `in_flight`, locked for a while) before the request runs;
//! the request's own transaction stores its answer, so its effects and the stored
//! answer commit together or not at all. Client errors are stored afterwards (they
//! had no effects); server errors release the key so that the client can retry.

use crate::domain::DAY;
use crate::error::ApiResult;
use crate::store::idempotency::{self as keys, KeyRecord};
use crate::store::{Conn, Scope, Store, Tx};

/// Keys are kept this long.
pub const RETENTION: i64 = DAY;
/// How long a request holds its key: longer than any request may run. A request that
/// died holding a key frees it after this.
pub const LOCK_SECONDS: i64 = 120;
/// Longest key accepted.
pub const MAX_KEY_CHARS: usize = 255;

/// A key held by the request in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub key: String,
    pub token: i64,
}

/// What to do with a request that carries a key.
#[derive(Debug)]
pub enum Begin {
    /// First use (or a retry after a server error): run it, holding this claim.
    Proceed(Claim),
    /// Seen before: answer this again.
    Replay { status: u16, body: String },
    /// Seen before with other parameters.
    Mismatch,
    /// The first request with this key is still running.
    InFlight,
}

/// Claims `key` for a request whose method, path and parameters hash to `fingerprint`.
pub async fn begin(store: &Store, scope: &Scope, key: &str, fingerprint: &str, now: i64) -> ApiResult<Begin> {
    crate::service::again_if_connection_lost(store, || begin_once(store, scope, key, fingerprint, now)).await
}

async fn begin_once(store: &Store, scope: &Scope, key: &str, fingerprint: &str, now: i64) -> ApiResult<Begin> {
    let holder = store.holder_id().await;
    store.run(async |conn| begin_on(store, conn, scope, key, fingerprint, now, holder).await).await
}

/// `begin_once`'s rounds, on one connection.
async fn begin_on(
    store: &Store,
    conn: &mut Conn,
    scope: &Scope,
    key: &str,
    fingerprint: &str,
    now: i64,
    holder: Option<i64>,
) -> ApiResult<Begin> {
    let lock = now + LOCK_SECONDS;
    let new_claim = keys::NewClaim { fingerprint, locked_until: lock, holder, now };
    // A few rounds at most: each one either decides or saw the row change under it.
    for _ in 0..3 {
        if keys::try_insert(conn, scope, key, new_claim).await? {
            return Ok(Begin::Proceed(Claim { key: key.to_owned(), token: 1 }));
        }
        let Some(record) = keys::get(conn, scope, key).await? else { continue };
        let created = match &record {
            KeyRecord::InFlight { created, .. } | KeyRecord::Done { created, .. } => *created,
        };
        if created < now - RETENTION {
            match keys::reclaim_expired(conn, scope, key, new_claim, now - RETENTION).await? {
                Some(token) => return Ok(Begin::Proceed(Claim { key: key.to_owned(), token })),
                None => continue,
            }
        }
        return Ok(match record {
            KeyRecord::Done { fingerprint: fp, .. } | KeyRecord::InFlight { fingerprint: fp, .. }
                if fp != fingerprint =>
            {
                Begin::Mismatch
            }
            KeyRecord::Done { status, body, .. } => Begin::Replay { status, body },
            KeyRecord::InFlight { locked_until, holder: held_by, token, .. } => {
                // Held by a live request: wait. Held by a process that is gone (it
                // crashed mid-request, so nothing of it committed): take it over now.
                let gone = match held_by {
                    Some(h) => store.holder_is_gone(conn, h).await?,
                    None => false,
                };
                if locked_until > now && !gone {
                    Begin::InFlight
                } else {
                    match keys::take_over(conn, scope, key, token, lock, holder).await? {
                        Some(token) => Begin::Proceed(Claim { key: key.to_owned(), token }),
                        None => Begin::InFlight,
                    }
                }
            }
        });
    }
    Ok(Begin::InFlight)
}

/// Stores a successful answer in the request's own transaction. Fails (and so rolls
/// the request back) if the claim was lost meanwhile.
pub async fn complete_in(tx: &mut Tx, scope: &Scope, claim: &Claim, status: u16, body: &str) -> ApiResult<()> {
    if keys::complete(tx, scope, &claim.key, claim.token, status, body).await? {
        Ok(())
    } else {
        Err(crate::error::ApiError::idempotency_in_use(&claim.key))
    }
}

/// Stores an answer after the fact: for client errors, which changed nothing, and as
/// a backstop for answers the request did not store itself. A key already done is
/// left as it is.
pub async fn complete_after(store: &Store, scope: &Scope, claim: &Claim, status: u16, body: &str) -> ApiResult<()> {
    crate::service::again_if_connection_lost(store, || async {
        store.run(async |conn| keys::complete(conn, scope, &claim.key, claim.token, status, body).await).await?;
        Ok(())
    })
    .await
}

/// Frees a key after a server error.
pub async fn release(store: &Store, scope: &Scope, claim: &Claim) -> ApiResult<()> {
    crate::service::again_if_connection_lost(store, || async {
        store.run(async |conn| keys::release(conn, scope, &claim.key, claim.token).await).await?;
        Ok(())
    })
    .await
}

/// Deletes keys past their retention. Returns how many.
pub async fn purge_expired(store: &Store, now: i64) -> ApiResult<u64> {
    let mut tx = store.begin().await?;
    let n = keys::delete_older_than(&mut tx, now - RETENTION).await?;
    tx.commit().await?;
    Ok(n)
}
