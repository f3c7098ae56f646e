//! Accounts and their API keys.

use sqlx::Row;

use super::{Conn, get_bool, read_row};

/// Whether a key belongs to a platform (secret key of one account) or to the
/// provider's claims staff (operator key, across accounts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Secret,
    Operator,
}

impl KeyKind {
    fn as_str(self) -> &'static str {
        match self {
            KeyKind::Secret => "secret",
            KeyKind::Operator => "operator",
        }
    }
}

/// A stored key: its hash, never the key itself.
#[derive(Debug, Clone)]
pub struct KeyRecord {
    pub id: String,
    pub account_id: Option<String>,
    pub kind: KeyKind,
    pub livemode: bool,
    pub key_hash: String,
    pub last4: String,
    pub created: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    /// The operator an operator key speaks for.
    pub operator_id: Option<String>,
    /// When that operator was disabled (read with the key, never written with it).
    pub operator_disabled_at: Option<i64>,
}

pub async fn insert_account(conn: &mut Conn, id: &str, name: &str, created: i64) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO accounts (id, name, created) VALUES ($1, $2, $3)")
        .bind(id)
        .bind(name)
        .bind(created)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub async fn account_exists(conn: &mut Conn, id: &str) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query("SELECT 1 FROM accounts WHERE id = $1").bind(id).fetch_optional(&mut *conn).await?.is_some())
}

pub async fn insert_key(conn: &mut Conn, key: &KeyRecord) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO api_keys (id, account_id, kind, livemode, key_hash, last4, created, expires_at, revoked_at, \
         operator_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&key.id)
    .bind(key.account_id.clone())
    .bind(key.kind.as_str())
    .bind(key.livemode)
    .bind(&key.key_hash)
    .bind(&key.last4)
    .bind(key.created)
    .bind(key.expires_at)
    .bind(key.revoked_at)
    .bind(key.operator_id.clone())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Looks a key up by its hash (the hash is the index key, so the lookup reveals
/// nothing about other keys).
pub async fn find_key_by_hash(conn: &mut Conn, key_hash: &str) -> Result<Option<KeyRecord>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT k.id, k.account_id, k.kind, k.livemode, k.key_hash, k.last4, k.created, k.expires_at, k.revoked_at, \
         k.operator_id, o.disabled_at AS operator_disabled_at \
         FROM api_keys k LEFT JOIN operators o ON o.id = k.operator_id WHERE k.key_hash = $1",
    )
    .bind(key_hash)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref()
        .map(|r| {
            let kind: String = r.try_get("kind")?;
            Ok(read_row! { r, KeyRecord {
                id, account_id,
                kind: if kind == "operator" { KeyKind::Operator } else { KeyKind::Secret },
                livemode: get_bool(r, "livemode")?,
                key_hash, last4, created, expires_at, revoked_at, operator_id, operator_disabled_at,
            }})
        })
        .transpose()
}

/// Marks every unrevoked secret key of an account and mode revoked at `at`, or as
/// expiring at `at` when rolling with a grace period. Returns how many changed.
pub async fn expire_secret_keys(
    conn: &mut Conn,
    account_id: &str,
    livemode: bool,
    at: i64,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE api_keys SET expires_at = $1 WHERE account_id = $2 AND livemode = $3 AND kind = 'secret' \
         AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $1)",
    )
    .bind(at)
    .bind(account_id)
    .bind(livemode)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected())
}

/// Revokes the key with this hash. Returns whether one was revoked now.
pub async fn revoke_key(conn: &mut Conn, key_hash: &str, at: i64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE key_hash = $2 AND revoked_at IS NULL")
        .bind(at)
        .bind(key_hash)
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected() == 1)
}
