//! Deleting an account's test-mode data (`POST /v1/test_helpers/reset`).

use sqlx::Row;

use super::{Scope, Tx};

/// The tables `reset` empties for the scope, children before parents so that no
/// foreign key is left pointing at a deleted row. Every table with `account_id` and
/// `livemode` is here or in `KEPT_BY_RESET` (the store conformance suite checks).
pub const RESET_TABLES: &[&str] = &[
    "webhook_attempts",
    "webhook_deliveries",
    "events",
    "recovery_actions",
    "recoveries",
    "payouts",
    "claim_actions",
    "claims",
    "guarantees",
    "customers",
    "guarantee_policies",
    "test_clocks",
    // Their contents go with them (`file_contents` cascades).
    "files",
    "idempotency_keys",
];

/// The scoped tables a reset leaves alone: the account's keys and its webhook
/// endpoints, which a test suite sets up once.
pub const KEPT_BY_RESET: &[&str] = &["api_keys", "webhook_endpoints"];

/// Deletes every row of `RESET_TABLES` in `scope`, except the idempotency key of the
/// request doing it (its answer is stored in the same transaction). Returns how many
/// rows went from each table, in `RESET_TABLES` order.
pub async fn reset(
    tx: &mut Tx,
    scope: &Scope,
    keep_key: Option<&str>,
) -> Result<Vec<(&'static str, u64)>, sqlx::Error> {
    let mut deleted = Vec::with_capacity(RESET_TABLES.len());
    for table in RESET_TABLES {
        let done = if *table == "idempotency_keys" {
            sqlx::query("DELETE FROM idempotency_keys WHERE account_id = $1 AND livemode = $2 AND key <> $3")
                .bind(&scope.account_id)
                .bind(scope.livemode)
                .bind(keep_key.unwrap_or(""))
                .execute(&mut **tx)
                .await?
        } else {
            sqlx::query(&format!("DELETE FROM {table} WHERE account_id = $1 AND livemode = $2"))
                .bind(&scope.account_id)
                .bind(scope.livemode)
                .execute(&mut **tx)
                .await?
        };
        deleted.push((*table, done.rows_affected()));
    }
    Ok(deleted)
}

/// The tables of this database that hold rows per account and mode (both columns).
pub async fn scoped_tables(conn: &mut super::Conn, postgres: bool) -> Result<Vec<String>, sqlx::Error> {
    let sql = if postgres {
        "SELECT table_name::text AS name FROM information_schema.columns WHERE table_schema = current_schema() \
         AND column_name IN ('account_id', 'livemode') GROUP BY table_name HAVING COUNT(*) = 2 ORDER BY table_name"
    } else {
        "SELECT m.name AS name FROM sqlite_master m, pragma_table_info(m.name) c WHERE m.type = 'table' \
         AND c.name IN ('account_id', 'livemode') GROUP BY m.name HAVING COUNT(*) = 2 ORDER BY m.name"
    };
    let rows = sqlx::query(sql).fetch_all(&mut *conn).await?;
    rows.iter().map(|r| r.try_get::<String, _>("name")).collect()
}
