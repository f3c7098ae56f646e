//! Recoveries table, and the trail of each recovery (`recovery_actions`).

use sqlx::Row;
use sqlx::any::AnyRow;

use super::batch::{defer_rows, execute_rows, scoped_row};
use super::{Conn, Scope, Tx, execute_scoped, get_bool, get_json, read_row, row_scope, to_json};
use crate::domain::recovery::{Plan, Recovery, RecoveryAction, RecoveryActionType, RecoveryStatus};
use crate::resource;

const COLUMNS: &str = "id, livemode, created, claim_id, guarantee_id, tenant_id, currency, amount, amount_recovered, \
    status, plan_json, written_off_reason, metadata";

fn from_row(r: &AnyRow) -> Result<Recovery, sqlx::Error> {
    let status: String = r.try_get("status")?;
    let plan: Option<String> = r.try_get("plan_json")?;
    Ok(read_row! { r, Recovery {
        id,
        claim = "claim_id",
        guarantee = "guarantee_id",
        tenant = "tenant_id",
        currency, amount, amount_recovered,
        status: RecoveryStatus::parse(&status)
            .ok_or_else(|| sqlx::Error::Decode(format!("unknown recovery status {status:?}").into()))?,
        plan: plan
            .map(|p| serde_json::from_str::<Plan>(&p).map_err(|e| sqlx::Error::Decode(Box::new(e))))
            .transpose()?,
        written_off_reason,
        metadata: get_json(r, "metadata")?,
        livemode: get_bool(r, "livemode")?,
        created,
    }})
}

fn plan_json(r: &Recovery) -> Option<String> {
    r.plan.as_ref().map(to_json)
}

/// Inserts new recoveries, each in its scope, one statement per chunk: each takes its
/// guarantee's test clock, so the engine's queries need no join.
pub async fn insert(conn: &mut Conn, recoveries: &[(&Scope, &Recovery)]) -> Result<(), sqlx::Error> {
    execute_rows(
        conn,
        recoveries,
        |values| {
            format!(
                "INSERT INTO recoveries (id, account_id, livemode, created, claim_id, guarantee_id, tenant_id, \
                 currency, amount, amount_recovered, status, plan_json, written_off_reason, metadata, next_due_date, \
                 test_clock_id) VALUES {values}"
            )
        },
        |sql, (scope, r)| {
            scoped_row(sql, r.id.clone(), scope, r.created, |sql| {
                let guarantee = sql.bind(r.guarantee.clone());
                vec![
                    sql.bind(r.claim.clone()),
                    guarantee.clone(),
                    sql.bind(r.tenant.clone()),
                    sql.bind(r.currency.clone()),
                    sql.bind(r.amount),
                    sql.bind(r.amount_recovered),
                    sql.bind(r.status.as_str()),
                    sql.bind(plan_json(r)),
                    sql.bind(r.written_off_reason.clone()),
                    sql.bind(to_json(&r.metadata)),
                    sql.bind(r.next_due_date()),
                    format!("(SELECT test_clock_id FROM guarantees WHERE id = {guarantee})"),
                ]
            })
        },
    )
    .await?;
    Ok(())
}

super::list::scoped_reads! {
    Recovery, resource::RECOVERY.table, COLUMNS, from_row;
    list(f: RecoveryFilters) |sql| add_filters(sql, f)
}

fn add_filters(sql: &mut super::list::Sql, f: RecoveryFilters) {
    sql.and_eq_some("claim_id", f.claim);
    sql.and_eq_some("guarantee_id", f.guarantee);
    sql.and_eq_some("tenant_id", f.tenant);
    sql.and_eq_some("status", f.status.map(|s| s.as_str()));
}

#[derive(Debug, Default, Clone)]
pub struct RecoveryFilters {
    pub claim: Option<String>,
    pub guarantee: Option<String>,
    pub tenant: Option<String>,
    pub status: Option<RecoveryStatus>,
}

/// Writes the fields that change over a recovery's life.
pub async fn update(conn: &mut Conn, scope: &Scope, r: &Recovery) -> Result<(), sqlx::Error> {
    let query = sqlx::query(
        "UPDATE recoveries SET status = $1, amount_recovered = $2, plan_json = $3, written_off_reason = $4, \
         metadata = $5, next_due_date = $6 WHERE id = $7 AND account_id = $8 AND livemode = $9",
    )
    .bind(r.status.as_str())
    .bind(r.amount_recovered)
    .bind(plan_json(r))
    .bind(r.written_off_reason.clone())
    .bind(to_json(&r.metadata))
    .bind(r.next_due_date());
    execute_scoped(conn, query, &r.id, scope).await
}

/// Writes the plans of recoveries of any account that this transaction has locked (the
/// engine's missed installments), one statement per chunk. Returns how many it wrote.
pub async fn update_plans_locked(conn: &mut Conn, recoveries: &[&Recovery]) -> Result<u64, sqlx::Error> {
    execute_rows(
        conn,
        recoveries,
        |values| {
            format!(
                "UPDATE recoveries SET plan_json = v.column2, next_due_date = v.column3 FROM (VALUES {values}) AS v \
                 WHERE recoveries.id = v.column1"
            )
        },
        |sql, r| vec![sql.bind(r.id.clone()), sql.bind(plan_json(r)), sql.bind(r.next_due_date())],
    )
    .await
}

/// A recovery of any account, with its scope: for operators' reads.
pub async fn get_any(conn: &mut Conn, id: &str) -> Result<Option<(Scope, Recovery)>, sqlx::Error> {
    let sql = format!("SELECT account_id, {COLUMNS} FROM recoveries WHERE id = $1");
    let row = sqlx::query(&sql).bind(id).fetch_optional(&mut *conn).await?;
    row.as_ref().map(|r| Ok((row_scope(r)?, from_row(r)?))).transpose()
}

/// A page of the recoveries of every account, each with its scope: the operators' list.
pub async fn list_any(
    conn: &mut Conn,
    page: &super::PageRequest,
    f: RecoveryFilters,
) -> Result<super::Page<(Scope, Recovery)>, sqlx::Error> {
    let columns = format!("account_id, {COLUMNS}");
    super::list::fetch_page_in(
        conn,
        resource::RECOVERY.table,
        &columns,
        None,
        page,
        |sql| add_filters(sql, f),
        |r| Ok((row_scope(r)?, from_row(r)?)),
    )
    .await
}

/// The scope of a recovery of any account: for operators, whose keys span accounts.
pub async fn scope_of(conn: &mut Conn, id: &str) -> Result<Option<Scope>, sqlx::Error> {
    let row = sqlx::query("SELECT account_id, livemode FROM recoveries WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(row_scope).transpose()
}

/// The recovery of a claim, if it was paid.
pub async fn for_claim(conn: &mut Conn, scope: &Scope, claim_id: &str) -> Result<Option<Recovery>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM recoveries WHERE claim_id = $1 AND account_id = $2 AND livemode = $3");
    let row = sqlx::query(&sql)
        .bind(claim_id)
        .bind(&scope.account_id)
        .bind(scope.livemode)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// Recoveries on the wall clock (on no test clock) with an installment pending whose
/// due date is before `now`, up to `limit`, earliest first; locked, skipping rows
/// another worker holds, so replicas share the work.
pub async fn due_wall(tx: &mut Tx, now: i64, limit: i64) -> Result<Vec<(Scope, Recovery)>, sqlx::Error> {
    let skip = tx.skip_locked_clause();
    let sql = format!(
        "SELECT account_id, {COLUMNS} FROM recoveries WHERE next_due_date IS NOT NULL AND test_clock_id IS NULL \
         AND next_due_date < $1 ORDER BY next_due_date, id LIMIT $2{skip}"
    );
    let rows = sqlx::query(&sql).bind(now).bind(limit).fetch_all(&mut **tx).await?;
    rows.iter().map(|r| Ok((row_scope(r)?, from_row(r)?))).collect()
}

/// Whether any recovery on the wall clock has an installment pending past due at `now`:
/// a read, so that the engine's step takes no write transaction (SQLite's one writer)
/// when there is nothing to mark.
pub async fn any_due_wall(conn: &mut Conn, now: i64) -> Result<bool, sqlx::Error> {
    let row = sqlx::query(
        "SELECT 1 FROM recoveries WHERE next_due_date IS NOT NULL AND test_clock_id IS NULL AND next_due_date < $1 \
         LIMIT 1",
    )
    .bind(now)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.is_some())
}

/// A test clock's recoveries with an installment pending whose due date is before
/// `until`, earliest first, up to `limit`; locked. With each, its `next_due_date`.
pub async fn clock_due(tx: &mut Tx, clock_id: &str, until: i64, limit: i64) -> Result<Vec<Recovery>, sqlx::Error> {
    let lock = tx.lock_clause();
    let sql = format!(
        "SELECT {COLUMNS} FROM recoveries WHERE test_clock_id = $1 AND next_due_date IS NOT NULL \
         AND next_due_date < $2 ORDER BY next_due_date, id LIMIT $3{lock}"
    );
    let rows = sqlx::query(&sql).bind(clock_id).bind(until).bind(limit).fetch_all(&mut **tx).await?;
    rows.iter().map(from_row).collect()
}

fn action_from_row(r: &AnyRow) -> Result<RecoveryAction, sqlx::Error> {
    let kind: String = r.try_get("type")?;
    Ok(read_row! { r, RecoveryAction {
        id,
        recovery = "recovery_id",
        kind: RecoveryActionType::parse(&kind)
            .ok_or_else(|| sqlx::Error::Decode(format!("unknown recovery action {kind:?}").into()))?,
        actor, amount, message,
        at = "happened_at",
        livemode: get_bool(r, "livemode")?,
        created,
    }})
}

/// Writes actions of any scope, one statement per chunk, deferred (`Tx::defer`).
pub async fn insert_actions(tx: &mut Tx, actions: &[(&Scope, &RecoveryAction)]) -> Result<(), sqlx::Error> {
    defer_rows(
        tx,
        "recovery_actions",
        actions,
        |values| {
            format!(
                "INSERT INTO recovery_actions (id, account_id, livemode, created, recovery_id, type, actor, amount, \
                 happened_at, message) VALUES {values}"
            )
        },
        |sql, (scope, a)| {
            scoped_row(sql, a.id.clone(), scope, a.created, |sql| {
                vec![
                    sql.bind(a.recovery.clone()),
                    sql.bind(a.kind.as_str()),
                    sql.bind(a.actor.clone()),
                    sql.bind(a.amount),
                    sql.bind(a.at),
                    sql.bind(a.message.clone()),
                ]
            })
        },
    )
    .await?;
    Ok(())
}

/// A recovery's actions, oldest first.
pub async fn actions(conn: &mut Conn, scope: &Scope, recovery_id: &str) -> Result<Vec<RecoveryAction>, sqlx::Error> {
    sqlx::query(
        "SELECT id, recovery_id, type, actor, amount, happened_at, message, livemode, created FROM recovery_actions \
         WHERE recovery_id = $1 AND account_id = $2 AND livemode = $3 ORDER BY seq",
    )
    .bind(recovery_id)
    .bind(&scope.account_id)
    .bind(scope.livemode)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(action_from_row)
    .collect()
}

/// The sum of the payments recorded on a recovery: the trail's own count, which tests
/// compare with `amount_recovered`.
pub async fn payments_total(conn: &mut Conn, recovery_id: &str) -> Result<i64, sqlx::Error> {
    let row = sqlx::query(
        "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) AS total FROM recovery_actions \
         WHERE recovery_id = $1 AND type = 'payment_recorded'",
    )
    .bind(recovery_id)
    .fetch_one(&mut *conn)
    .await?;
    row.try_get("total")
}
