//! Guarantees table.

use std::collections::HashMap;

use sqlx::Row;
use sqlx::any::AnyRow;

use super::batch::execute_rows;
use super::list::fetch_by_ids;
use super::{
    Backend, Conn, PerBackend, Scope, Tx, customers, get_bool, get_json, policies, read_row, row_scope, scoped_insert,
    scoped_update, test_clocks, to_json,
};
use crate::domain::customer::Customer;
use crate::domain::guarantee::{Guarantee, GuaranteeStatus};
use crate::domain::policy::Policy;
use crate::domain::test_clock::TestClock;
use crate::resource;

const COLUMNS: &str = "id, livemode, created, status, policy_id, tenant_id, coverage_amount, total_coverage, \
    currency, start_date, end_date, claims_filed, claims_paid, claims_reserved, claims_recovered, cancelled_at, metadata";

fn from_row(r: &AnyRow) -> Result<Guarantee, sqlx::Error> {
    let status: String = r.try_get("status")?;
    Ok(read_row! { r, Guarantee {
        id,
        status: GuaranteeStatus::parse(&status)
            .ok_or_else(|| sqlx::Error::Decode(format!("unknown guarantee status {status:?}").into()))?,
        policy = "policy_id",
        tenant = "tenant_id",
        coverage_amount, total_coverage, currency, start_date, end_date, claims_filed, claims_paid, claims_reserved, claims_recovered, cancelled_at,
        metadata: get_json(r, "metadata")?,
        livemode: get_bool(r, "livemode")?,
        created,
    }})
}

/// Inserts a guarantee, deferred (`Tx::defer`).
pub async fn insert(tx: &mut Tx, scope: &Scope, g: &Guarantee) -> Result<(), sqlx::Error> {
    tx.defer("guarantees", |sql| {
        // The tenant's clock, copied so that the engine's queries need no join.
        let clock = format!(
            "(SELECT test_clock_id FROM customers WHERE id = {} AND account_id = {} AND livemode = {})",
            sql.bind(g.tenant.clone()),
            sql.bind(scope.account_id.clone()),
            sql.bind(scope.livemode)
        );
        let columns = [
            ("status", sql.bind(g.status.as_str())),
            ("policy_id", sql.bind(g.policy.clone())),
            ("tenant_id", sql.bind(g.tenant.clone())),
            ("coverage_amount", sql.bind(g.coverage_amount)),
            ("total_coverage", sql.bind(g.total_coverage)),
            ("currency", sql.bind(g.currency.clone())),
            ("start_date", sql.bind(g.start_date)),
            ("end_date", sql.bind(g.end_date)),
            ("claims_filed", sql.bind(g.claims_filed)),
            ("claims_paid", sql.bind(g.claims_paid)),
            ("cancelled_at", sql.bind(g.cancelled_at)),
            ("metadata", sql.bind(to_json(&g.metadata))),
            ("test_clock_id", clock),
        ];
        scoped_insert(sql, "guarantees", &g.id, scope, g.created, &columns)
    })
    .await
}

super::list::scoped_reads! {
    Guarantee, resource::GUARANTEE.table, COLUMNS, from_row;
    list(f: GuaranteeFilters) |sql| {
        sql.and_eq_some("status", f.status.map(|s| s.as_str()));
        sql.and_eq_some("tenant_id", f.tenant);
        sql.and_eq_some("policy_id", f.policy);
    }
}

/// What a new guarantee is checked against, in one read: its policy, and its tenant
/// with the test clock the tenant lives on (share-locked, as `test_clocks::clock_join`
/// reads it). Either is `None` when it is not in the caller's scope.
pub async fn policy_and_tenant(
    tx: &mut Tx,
    scope: &Scope,
    policy_id: &str,
    tenant_id: &str,
) -> Result<(Option<Policy>, Option<(Customer, Option<TestClock>)>), sqlx::Error> {
    fn statement(backend: Backend) -> String {
        let policy = policies::COLUMNS.split(", ").map(|c| format!("p.{c} AS policy_{c}"));
        let tenant = customers::COLUMNS.split(", ").map(|c| format!("o.{c}"));
        let columns =
            format!("{}, {}", policy.chain(tenant).collect::<Vec<_>>().join(", "), test_clocks::clock_columns());
        // One row whether or not either exists: each is joined to it on its own.
        format!(
            "SELECT {columns} FROM (SELECT 1 AS one) d \
             LEFT JOIN guarantee_policies p ON p.id = $1 AND p.account_id = $3 AND p.livemode = $4 \
             LEFT JOIN customers o ON o.id = $2 AND o.account_id = $3 AND o.livemode = $4{}",
            test_clocks::clock_join(backend, "o.test_clock_id")
        )
    }
    static SQL: PerBackend = PerBackend::new(statement);
    let row = sqlx::query(SQL.get(tx.backend()))
        .bind(policy_id)
        .bind(tenant_id)
        .bind(&scope.account_id)
        .bind(scope.livemode)
        .fetch_one(&mut **tx)
        .await?;
    let policy = match row.try_get::<Option<String>, _>("policy_id")? {
        Some(_) => Some(policies::from_row_at(&row, "policy_")?),
        None => None,
    };
    let tenant = match row.try_get::<Option<String>, _>("id")? {
        Some(_) => Some((customers::from_row(&row)?, test_clocks::clock_from_row(&row)?)),
        None => None,
    };
    Ok((policy, tenant))
}

/// A guarantee, locked until the transaction ends, and the test clock it lives on
/// (share-locked), in one read.
pub async fn get_for_update_with_clock(
    tx: &mut Tx,
    scope: &Scope,
    id: &str,
) -> Result<Option<(Guarantee, Option<TestClock>)>, sqlx::Error> {
    static SQL: PerBackend =
        PerBackend::new(|backend| test_clocks::for_update_with_clock_sql(backend, resource::GUARANTEE.table, COLUMNS));
    test_clocks::fetch_for_update_with_clock(tx, &SQL, scope, id, from_row).await
}

/// Locks guarantees of any account by id, in id order, so that batches taken at once
/// by several workers cannot deadlock: for the claims engine. Each comes with its scope.
pub async fn lock_many(tx: &mut Tx, ids: &[&str]) -> Result<HashMap<String, (Scope, Guarantee)>, sqlx::Error> {
    let suffix = format!(" ORDER BY id{}", tx.lock_clause());
    let select = format!("SELECT account_id, {COLUMNS} FROM guarantees");
    fetch_by_ids(tx, &select, ids, &suffix, |r| Ok((row_scope(r)?, from_row(r)?))).await
}

/// Writes the mutable fields of a guarantee read earlier in the same transaction,
/// deferred (`Tx::defer`).
pub async fn update(tx: &mut Tx, scope: &Scope, g: &Guarantee) -> Result<(), sqlx::Error> {
    tx.defer("guarantees", |sql| {
        let set = [
            ("status", sql.bind(g.status.as_str())),
            ("end_date", sql.bind(g.end_date)),
            ("claims_filed", sql.bind(g.claims_filed)),
            ("claims_paid", sql.bind(g.claims_paid)),
            ("claims_reserved", sql.bind(g.claims_reserved)),
            ("cancelled_at", sql.bind(g.cancelled_at)),
            ("metadata", sql.bind(to_json(&g.metadata))),
            ("claims_recovered", sql.bind(g.claims_recovered)),
        ];
        scoped_update(sql, "guarantees", &set, &g.id, scope)
    })
    .await
}

/// Writes the mutable fields of guarantees of any account that this transaction has
/// locked (by id, as `lock_many` and `due_for_transition` take them): the claims
/// engine's batches, one statement per chunk. Returns how many it wrote.
pub async fn update_locked(conn: &mut Conn, guarantees: &[&Guarantee]) -> Result<u64, sqlx::Error> {
    execute_rows(
        conn,
        guarantees,
        |values| {
            format!(
                "UPDATE guarantees SET status = v.column2, end_date = v.column3, claims_filed = v.column4, \
                 claims_paid = v.column5, claims_reserved = v.column6, cancelled_at = v.column7, \
                 metadata = v.column8, claims_recovered = v.column9 FROM (VALUES {values}) AS v \
                 WHERE guarantees.id = v.column1"
            )
        },
        |sql, g| {
            vec![
                sql.bind(g.id.clone()),
                sql.bind(g.status.as_str()),
                sql.bind(g.end_date),
                sql.bind(g.claims_filed),
                sql.bind(g.claims_paid),
                sql.bind(g.claims_reserved),
                sql.bind(g.cancelled_at),
                sql.bind(to_json(&g.metadata)),
                sql.bind(g.claims_recovered),
            ]
        },
    )
    .await
}

#[derive(Debug, Default, Clone)]
pub struct GuaranteeFilters {
    pub status: Option<GuaranteeStatus>,
    pub tenant: Option<String>,
    pub policy: Option<String>,
}

/// Guarantees on the wall clock (on no test clock) whose dates call for a status change
/// at `now`, up to `limit`: pending ones that have started, then active ones that have
/// ended, earliest date first. Locked (skipping rows another worker holds), so that
/// replicas share the work.
pub async fn due_for_transition(tx: &mut Tx, now: i64, limit: i64) -> Result<Vec<(Scope, Guarantee)>, sqlx::Error> {
    let skip = tx.skip_locked_clause();
    let mut due = Vec::new();
    // One query per date, each ordered as its index is, so that each is a range of
    // (status, date) index: with one query and `OR`, SQLite walked the whole table in
    // `seq` order (12 ms a step at 130,000 guarantees).
    for (status, date) in [("pending", "start_date"), ("active", "end_date")] {
        let left = limit - due.len() as i64;
        if left <= 0 {
            break;
        }
        let sql = format!(
            "SELECT account_id, {COLUMNS} FROM guarantees WHERE status = '{status}' AND {date} <= $1 \
             AND test_clock_id IS NULL ORDER BY {date} LIMIT $2{skip}"
        );
        let rows = sqlx::query(&sql).bind(now).bind(left).fetch_all(&mut **tx).await?;
        for r in &rows {
            due.push((row_scope(r)?, from_row(r)?));
        }
    }
    Ok(due)
}

/// A test clock's guarantees that change status by `until`, each list in date order and
/// up to `limit` long: pending ones whose start has come, and active ones whose end
/// has. Locked, as `due_for_transition` locks them.
pub async fn clock_due(
    tx: &mut Tx,
    clock_id: &str,
    until: i64,
    limit: i64,
) -> Result<(Vec<Guarantee>, Vec<Guarantee>), sqlx::Error> {
    let lock = tx.lock_clause();
    let mut lists = Vec::with_capacity(2);
    for (status, date) in [("pending", "start_date"), ("active", "end_date")] {
        let sql = format!(
            "SELECT {COLUMNS} FROM guarantees WHERE test_clock_id = $1 AND status = '{status}' AND {date} <= $2 \
             ORDER BY {date}, id LIMIT $3{lock}"
        );
        let rows = sqlx::query(&sql).bind(clock_id).bind(until).bind(limit).fetch_all(&mut **tx).await?;
        lists.push(rows.iter().map(from_row).collect::<Result<Vec<_>, _>>()?);
    }
    let active = lists.pop().unwrap_or_default();
    let pending = lists.pop().unwrap_or_default();
    Ok((pending, active))
}
