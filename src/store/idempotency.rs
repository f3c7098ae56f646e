//! Idempotency keys.

use sqlx::Row;

use super::{Conn, Scope, Tx};

/// What is stored under a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyRecord {
    /// A request holds the key until `locked_until`.
    InFlight { fingerprint: String, token: i64, locked_until: i64, holder: Option<i64>, created: i64 },
    /// The first request's answer.
    Done { fingerprint: String, status: u16, body: String, created: i64 },
}

/// A request's claim on a key: what it asks, until when, by whom, when.
#[derive(Debug, Clone, Copy)]
pub struct NewClaim<'a> {
    pub fingerprint: &'a str,
    pub locked_until: i64,
    /// The claiming process (see `store::holder`), when it has an identity.
    pub holder: Option<i64>,
    pub now: i64,
}

/// Claims `key` for a new request, unless the key is taken. Returns whether it was.
pub async fn try_insert(conn: &mut Conn, scope: &Scope, key: &str, claim: NewClaim<'_>) -> Result<bool, sqlx::Error> {
    let NewClaim { fingerprint, locked_until, holder, now } = claim;
    let done = sqlx::query(
        "INSERT INTO idempotency_keys (account_id, livemode, key, fingerprint, state, token, locked_until, holder, created) \
         VALUES ($1, $2, $3, $4, 'in_flight', 1, $5, $6, $7) ON CONFLICT (account_id, livemode, key) DO NOTHING",
    )
    .bind(&scope.account_id)
    .bind(scope.livemode)
    .bind(key)
    .bind(fingerprint)
    .bind(locked_until)
    .bind(holder)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn get(conn: &mut Conn, scope: &Scope, key: &str) -> Result<Option<KeyRecord>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT fingerprint, state, token, locked_until, holder, response_status, response_body, created \
         FROM idempotency_keys WHERE account_id = $1 AND livemode = $2 AND key = $3",
    )
    .bind(&scope.account_id)
    .bind(scope.livemode)
    .bind(key)
    .fetch_optional(&mut *conn)
    .await?;
    row.map(|r| {
        let state: String = r.try_get("state")?;
        let fingerprint: String = r.try_get("fingerprint")?;
        let created: i64 = r.try_get("created")?;
        Ok(if state == "done" {
            let status: i64 = r.try_get("response_status")?;
            KeyRecord::Done {
                fingerprint,
                status: u16::try_from(status).unwrap_or(500),
                body: r.try_get::<Option<String>, _>("response_body")?.unwrap_or_default(),
                created,
            }
        } else {
            KeyRecord::InFlight {
                fingerprint,
                token: r.try_get("token")?,
                locked_until: r.try_get("locked_until")?,
                holder: r.try_get("holder")?,
                created,
            }
        })
    })
    .transpose()
}

/// Takes over a key whose holder is gone or whose lock has run out (the request
/// died). Returns the new token, or `None` if someone else took it first.
pub async fn take_over(
    conn: &mut Conn,
    scope: &Scope,
    key: &str,
    old_token: i64,
    locked_until: i64,
    holder: Option<i64>,
) -> Result<Option<i64>, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE idempotency_keys SET token = token + 1, locked_until = $1, holder = $6 \
         WHERE account_id = $2 AND livemode = $3 AND key = $4 AND state = 'in_flight' AND token = $5",
    )
    .bind(locked_until)
    .bind(&scope.account_id)
    .bind(scope.livemode)
    .bind(key)
    .bind(old_token)
    .bind(holder)
    .execute(&mut *conn)
    .await?;
    Ok((done.rows_affected() == 1).then_some(old_token + 1))
}

/// Replaces an expired record (older than the retention) with a fresh claim.
pub async fn reclaim_expired(
    conn: &mut Conn,
    scope: &Scope,
    key: &str,
    claim: NewClaim<'_>,
    expired_before: i64,
) -> Result<Option<i64>, sqlx::Error> {
    let NewClaim { fingerprint, locked_until, holder, now } = claim;
    let row = sqlx::query(
        "UPDATE idempotency_keys SET fingerprint = $1, state = 'in_flight', token = token + 1, locked_until = $2, \
         response_status = NULL, response_body = NULL, created = $3, holder = $8 \
         WHERE account_id = $4 AND livemode = $5 AND key = $6 AND created < $7 RETURNING token",
    )
    .bind(fingerprint)
    .bind(locked_until)
    .bind(now)
    .bind(&scope.account_id)
    .bind(scope.livemode)
    .bind(key)
    .bind(expired_before)
    .bind(holder)
    .fetch_optional(&mut *conn)
    .await?;
    row.map(|r| r.try_get("token")).transpose()
}

/// Stores the response of the request holding `token`. Returns false if the key is no
/// longer held with that token (the lock ran out and another request took it).
pub async fn complete(
    conn: &mut Conn,
    scope: &Scope,
    key: &str,
    token: i64,
    status: u16,
    body: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE idempotency_keys SET state = 'done', response_status = $1, response_body = $2 \
         WHERE account_id = $3 AND livemode = $4 AND key = $5 AND token = $6 AND state = 'in_flight'",
    )
    .bind(i64::from(status))
    .bind(body)
    .bind(&scope.account_id)
    .bind(scope.livemode)
    .bind(key)
    .bind(token)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Lets go of a key whose request failed with a server error, so the client can retry.
pub async fn release(conn: &mut Conn, scope: &Scope, key: &str, token: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "DELETE FROM idempotency_keys WHERE account_id = $1 AND livemode = $2 AND key = $3 AND token = $4 \
         AND state = 'in_flight'",
    )
    .bind(&scope.account_id)
    .bind(scope.livemode)
    .bind(key)
    .bind(token)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Deletes keys created before `before`. Returns how many.
pub async fn delete_older_than(tx: &mut Tx, before: i64) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query("DELETE FROM idempotency_keys WHERE created < $1")
        .bind(before)
        .execute(&mut **tx)
        .await?
        .rows_affected())
}
