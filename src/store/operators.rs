//! Operators (the claims staff) and the review console's sessions.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Conn, read_row};
use crate::domain::operator::Operator;

const COLUMNS: &str = "id, name, email, created, disabled_at";

fn from_row(r: &AnyRow) -> Result<Operator, sqlx::Error> {
    Ok(read_row! { r, Operator { id, name, email, created, disabled_at } })
}

pub async fn insert(conn: &mut Conn, o: &Operator) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO operators (id, name, email, created, disabled_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(&o.id)
        .bind(&o.name)
        .bind(o.email.clone())
        .bind(o.created)
        .bind(o.disabled_at)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub async fn get(conn: &mut Conn, id: &str) -> Result<Option<Operator>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM operators WHERE id = $1");
    sqlx::query(&sql).bind(id).fetch_optional(&mut *conn).await?.as_ref().map(from_row).transpose()
}

/// Every operator, oldest first.
pub async fn list(conn: &mut Conn) -> Result<Vec<Operator>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM operators ORDER BY seq");
    sqlx::query(&sql).fetch_all(&mut *conn).await?.iter().map(from_row).collect()
}

/// The oldest enabled operator with this name.
pub async fn find_enabled_by_name(conn: &mut Conn, name: &str) -> Result<Option<Operator>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM operators WHERE name = $1 AND disabled_at IS NULL ORDER BY seq LIMIT 1");
    sqlx::query(&sql).bind(name).fetch_optional(&mut *conn).await?.as_ref().map(from_row).transpose()
}

/// Disables an operator and revokes its keys at `at`. Returns whether it was enabled.
pub async fn disable(conn: &mut Conn, id: &str, at: i64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("UPDATE operators SET disabled_at = $1 WHERE id = $2 AND disabled_at IS NULL")
        .bind(at)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE operator_id = $2 AND revoked_at IS NULL")
        .bind(at)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM console_sessions WHERE operator_id = $1").bind(id).execute(&mut *conn).await?;
    Ok(done.rows_affected() == 1)
}

/// Gives operator keys made before operators had names to `operator_id`.
pub async fn adopt_unnamed_keys(conn: &mut Conn, operator_id: &str) -> Result<u64, sqlx::Error> {
    let done = sqlx::query("UPDATE api_keys SET operator_id = $1 WHERE kind = 'operator' AND operator_id IS NULL")
        .bind(operator_id)
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected())
}

/// A console session as stored: its operator, the CSRF token of its forms, its end.
#[derive(Debug, Clone)]
pub struct Session {
    pub operator: Operator,
    pub csrf_token: String,
    pub expires_at: i64,
}

pub async fn insert_session(
    conn: &mut Conn,
    token_hash: &str,
    operator_id: &str,
    csrf_token: &str,
    created: i64,
    expires_at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO console_sessions (token_hash, operator_id, csrf_token, created, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(token_hash)
    .bind(operator_id)
    .bind(csrf_token)
    .bind(created)
    .bind(expires_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The live session with this token hash at `now`, whose operator is enabled.
pub async fn find_session(conn: &mut Conn, token_hash: &str, now: i64) -> Result<Option<Session>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT o.id, o.name, o.email, o.created, o.disabled_at, s.csrf_token, s.expires_at \
         FROM console_sessions s JOIN operators o ON o.id = s.operator_id \
         WHERE s.token_hash = $1 AND s.expires_at > $2 AND o.disabled_at IS NULL",
    )
    .bind(token_hash)
    .bind(now)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref()
        .map(|r| {
            Ok(Session {
                operator: from_row(r)?,
                csrf_token: r.try_get("csrf_token")?,
                expires_at: r.try_get("expires_at")?,
            })
        })
        .transpose()
}

/// Ends a session (sign-out), and any that have expired.
pub async fn delete_session(conn: &mut Conn, token_hash: &str, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM console_sessions WHERE token_hash = $1 OR expires_at <= $2")
        .bind(token_hash)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
