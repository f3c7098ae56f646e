//! Guarantee policies table.

use std::collections::HashMap;

use sqlx::Row;
use sqlx::any::AnyRow;

use super::list::fetch_by_ids;
use super::{Conn, Scope, execute_scoped, get_bool, get_json, insert_query, row_scope, to_json};
use crate::domain::policy::Policy;
use crate::resource;

pub(crate) const COLUMNS: &str = "id, livemode, created, name, coverage_percentage, max_coverage_months, \
    waiting_period_days, eligible_score_minimum, deductible_amount, active, metadata";

fn from_row(r: &AnyRow) -> Result<Policy, sqlx::Error> {
    from_row_at(r, "")
}

/// A policy from the columns named `{prefix}{column}` (`COLUMNS`).
pub(crate) fn from_row_at(r: &AnyRow, prefix: &str) -> Result<Policy, sqlx::Error> {
    let col = |name: &str| [prefix, name].concat();
    let get = |name: &str| r.try_get::<i64, _>(col(name).as_str());
    Ok(Policy {
        id: r.try_get(col("id").as_str())?,
        name: r.try_get(col("name").as_str())?,
        coverage_percentage: get("coverage_percentage")?,
        max_coverage_months: get("max_coverage_months")?,
        waiting_period_days: get("waiting_period_days")?,
        eligible_score_minimum: get("eligible_score_minimum")?,
        deductible_amount: get("deductible_amount")?,
        active: get_bool(r, &col("active"))?,
        metadata: get_json(r, &col("metadata"))?,
        livemode: get_bool(r, &col("livemode"))?,
        created: get("created")?,
    })
}

pub async fn insert(conn: &mut Conn, scope: &Scope, p: &Policy) -> Result<(), sqlx::Error> {
    insert_query(
        "INSERT INTO guarantee_policies (id, account_id, livemode, created, name, coverage_percentage, \
         max_coverage_months, waiting_period_days, eligible_score_minimum, deductible_amount, active, metadata) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        &p.id,
        scope,
        p.created,
    )
    .bind(&p.name)
    .bind(p.coverage_percentage)
    .bind(p.max_coverage_months)
    .bind(p.waiting_period_days)
    .bind(p.eligible_score_minimum)
    .bind(p.deductible_amount)
    .bind(p.active)
    .bind(to_json(&p.metadata))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

super::list::scoped_reads! {
    Policy, resource::POLICY.table, COLUMNS, from_row;
    list(active: Option<bool>) |sql| sql.and_eq_some("active", active)
}

/// Policies of any account by id, each with its scope: for the claims engine's batches.
pub async fn get_many(conn: &mut Conn, ids: &[&str]) -> Result<HashMap<String, (Scope, Policy)>, sqlx::Error> {
    let select = format!("SELECT account_id, {COLUMNS} FROM guarantee_policies");
    fetch_by_ids(conn, &select, ids, "", |r| Ok((row_scope(r)?, from_row(r)?))).await
}

/// Writes the fields that may change after creation.
pub async fn update(conn: &mut Conn, scope: &Scope, p: &Policy) -> Result<(), sqlx::Error> {
    let query = sqlx::query(
        "UPDATE guarantee_policies SET name = $1, active = $2, metadata = $3 \
         WHERE id = $4 AND account_id = $5 AND livemode = $6",
    )
    .bind(&p.name)
    .bind(p.active)
    .bind(to_json(&p.metadata));
    execute_scoped(conn, query, &p.id, scope).await
}
