//! Test clocks table, and the questions the services ask of it: the clock an object
//! lives on, the advance to take next, the delete of a clock with its objects.

use std::collections::HashMap;
use std::sync::LazyLock;

use sqlx::Row;
use sqlx::any::AnyRow;

use super::list::{fetch_by_ids, fetch_one_with, select_one_sql};
use super::{Backend, Conn, PerBackend, Scope, Tx, execute_scoped, get_bool, insert_query, row_scope};
use crate::domain::test_clock::{TestClock, TestClockStatus};
use crate::resource;

const COLUMNS: &str = "id, livemode, created, frozen_time, status, name, deletes_after, advance_to";

fn from_row(r: &AnyRow) -> Result<TestClock, sqlx::Error> {
    from_row_at(r, "")
}

/// A clock from the columns named `{prefix}{column}`.
fn from_row_at(r: &AnyRow, prefix: &str) -> Result<TestClock, sqlx::Error> {
    let col = |name: &str| [prefix, name].concat();
    let status: String = r.try_get(col("status").as_str())?;
    Ok(TestClock {
        id: r.try_get(col("id").as_str())?,
        frozen_time: r.try_get(col("frozen_time").as_str())?,
        status: TestClockStatus::parse(&status)
            .ok_or_else(|| sqlx::Error::Decode(format!("unknown test clock status {status:?}").into()))?,
        name: r.try_get(col("name").as_str())?,
        deletes_after: r.try_get(col("deletes_after").as_str())?,
        advance_to: r.try_get(col("advance_to").as_str())?,
        livemode: get_bool(r, &col("livemode"))?,
        created: r.try_get(col("created").as_str())?,
    })
}

/// Joins the clock of the object aliased `o` (whose clock id is `clock_id_column`) to
/// a read of it, as `tc` with its columns named `clock_id`, `clock_frozen_time`...
/// (none the object's own): the object and its clock in one statement. On PostgreSQL
/// the clock's row is share-locked until commit (see [`clock_of`]); SQLite's one writer
/// gives the same.
pub(crate) fn clock_join(backend: Backend, clock_id_column: &str) -> String {
    static RENAMED: LazyLock<String> =
        LazyLock::new(|| COLUMNS.split(", ").map(|c| format!("{c} AS clock_{c}")).collect::<Vec<_>>().join(", "));
    let columns = RENAMED.as_str();
    match backend {
        Backend::Postgres => format!(
            " LEFT JOIN LATERAL (SELECT {columns} FROM test_clocks WHERE id = {clock_id_column} FOR SHARE) tc ON TRUE"
        ),
        Backend::Sqlite => {
            format!(" LEFT JOIN (SELECT {columns} FROM test_clocks) tc ON tc.clock_id = {clock_id_column}")
        }
    }
}

/// The columns [`clock_join`] adds, for the select list.
pub(crate) fn clock_columns() -> &'static str {
    static SELECTED: LazyLock<String> =
        LazyLock::new(|| COLUMNS.split(", ").map(|c| format!("tc.clock_{c}")).collect::<Vec<_>>().join(", "));
    SELECTED.as_str()
}

/// An object of `table` (its `columns`, read by `from_row`), locked until the
/// transaction ends, and the clock it lives on, in one read through [`clock_join`] (on
/// PostgreSQL `FOR UPDATE OF` the object alone: the clock's lock is the join's own).
/// `sql` is [`for_update_with_clock_sql`]'s, built once per backend by the caller.
pub(crate) async fn fetch_for_update_with_clock<T>(
    tx: &mut Tx,
    sql: &PerBackend,
    scope: &Scope,
    id: &str,
    from_row: impl Fn(&AnyRow) -> Result<T, sqlx::Error>,
) -> Result<Option<(T, Option<TestClock>)>, sqlx::Error> {
    let sql = sql.get(tx.backend());
    fetch_one_with(tx, sql, scope, id, |r| Ok((from_row(r)?, clock_from_row(r)?))).await
}

/// The statement of [`fetch_for_update_with_clock`] for `columns` of `table`.
pub(crate) fn for_update_with_clock_sql(backend: Backend, table: &str, columns: &str) -> String {
    let joined = format!("{table} o{}", clock_join(backend, "o.test_clock_id"));
    let columns = format!("{columns}, {}", clock_columns());
    let lock = match backend {
        Backend::Postgres => " FOR UPDATE OF o",
        Backend::Sqlite => "",
    };
    select_one_sql(&joined, &columns, lock)
}

/// The clock read along with its object by [`clock_join`], if the object lives on one.
pub(crate) fn clock_from_row(r: &AnyRow) -> Result<Option<TestClock>, sqlx::Error> {
    if r.try_get::<Option<String>, _>("clock_id")?.is_none() {
        return Ok(None);
    }
    from_row_at(r, "clock_").map(Some)
}

pub async fn insert(conn: &mut Conn, scope: &Scope, c: &TestClock) -> Result<(), sqlx::Error> {
    insert_query(
        "INSERT INTO test_clocks (id, account_id, livemode, created, frozen_time, status, name, deletes_after, \
         advance_to) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        &c.id,
        scope,
        c.created,
    )
    .bind(c.frozen_time)
    .bind(c.status.as_str())
    .bind(c.name.clone())
    .bind(c.deletes_after)
    .bind(c.advance_to)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

super::list::scoped_reads! {
    TestClock, resource::TEST_CLOCK.table, COLUMNS, from_row;
    list(_none: ()) |sql| { let _ = sql; }
}

/// Writes the clock's status and times.
pub async fn update(conn: &mut Conn, scope: &Scope, c: &TestClock) -> Result<(), sqlx::Error> {
    let query = sqlx::query(
        "UPDATE test_clocks SET status = $1, frozen_time = $2, advance_to = $3 \
         WHERE id = $4 AND account_id = $5 AND livemode = $6",
    )
    .bind(c.status.as_str())
    .bind(c.frozen_time)
    .bind(c.advance_to);
    execute_scoped(conn, query, &c.id, scope).await
}

/// What a clock is read through: the table and column holding the clock's id, and the
/// joins from the object asked about to it.
#[derive(Debug, Clone, Copy)]
pub enum Holder {
    Customer,
    Guarantee,
    Claim,
    Recovery,
}

/// The clock the object `id` (of the caller's scope) lives on, if any. In a write
/// transaction on PostgreSQL the clock's row is share-locked until commit, so an advance
/// (which updates it) cannot start while a write at the clock's time is under way;
/// SQLite's one writer gives the same.
pub async fn clock_of(tx: &mut Tx, scope: &Scope, holder: Holder, id: &str) -> Result<Option<TestClock>, sqlx::Error> {
    let (path, clock_id_column) = match holder {
        Holder::Customer => ("customers o", "o.test_clock_id"),
        Holder::Guarantee => ("guarantees o", "o.test_clock_id"),
        Holder::Claim => ("claims o JOIN guarantees g ON g.id = o.guarantee_id", "g.test_clock_id"),
        Holder::Recovery => ("recoveries o", "o.test_clock_id"),
    };
    let sql = format!(
        "SELECT {} FROM {path}{} WHERE o.id = $1 AND o.account_id = $2 AND o.livemode = $3",
        clock_columns(),
        clock_join(tx.backend(), clock_id_column)
    );
    let row = sqlx::query(&sql).bind(id).bind(&scope.account_id).bind(scope.livemode).fetch_optional(&mut **tx).await?;
    Ok(row.as_ref().map(clock_from_row).transpose()?.flatten())
}

/// The `frozen_time` of the clocks of these guarantees (of any account), for those on a
/// clock: the time the claims engine reviews and pays their claims at.
pub async fn times_of_guarantees(conn: &mut Conn, ids: &[&str]) -> Result<HashMap<String, i64>, sqlx::Error> {
    let select = "SELECT id, (SELECT tc.frozen_time FROM test_clocks tc WHERE tc.id = guarantees.test_clock_id) \
                  AS clock_time FROM guarantees";
    let found = fetch_by_ids(conn, select, ids, " AND test_clock_id IS NOT NULL", |r| {
        r.try_get::<Option<i64>, _>("clock_time")
    })
    .await?;
    Ok(found.into_iter().filter_map(|(id, t)| t.map(|t| (id, t))).collect())
}

/// Whether any clock is advancing: a read, so that the engine's steps take no write
/// transaction (SQLite's one writer) when there is nothing to advance.
pub async fn any_advancing(conn: &mut Conn) -> Result<bool, sqlx::Error> {
    let row =
        sqlx::query("SELECT 1 FROM test_clocks WHERE status = 'advancing' LIMIT 1").fetch_optional(&mut *conn).await?;
    Ok(row.is_some())
}

/// A clock to advance, leased to the caller until `leased_until`: the oldest advancing
/// clock no live lease holds. Its lease token is raised, so a step whose lease ran out
/// can no longer finish the advance. SKIP LOCKED on PostgreSQL: replicas take different
/// clocks, and one clock is advanced by one step at a time.
pub async fn lease_advancing(
    tx: &mut Tx,
    now: i64,
    leased_until: i64,
) -> Result<Option<(Scope, TestClock, i64)>, sqlx::Error> {
    let skip = tx.skip_locked_clause();
    let sql = format!(
        "SELECT account_id, {COLUMNS}, lease_token FROM test_clocks WHERE status = 'advancing' \
         AND (leased_until IS NULL OR leased_until <= $1) ORDER BY seq LIMIT 1{skip}"
    );
    let Some(row) = sqlx::query(&sql).bind(now).fetch_optional(&mut **tx).await? else { return Ok(None) };
    let (scope, clock) = (row_scope(&row)?, from_row(&row)?);
    let token: i64 = row.try_get::<i64, _>("lease_token")? + 1;
    sqlx::query("UPDATE test_clocks SET lease_token = $1, leased_until = $2 WHERE id = $3")
        .bind(token)
        .bind(leased_until)
        .bind(&clock.id)
        .execute(&mut **tx)
        .await?;
    Ok(Some((scope, clock, token)))
}

/// Ends a lease without finishing: the next step takes the clock again.
pub async fn release(conn: &mut Conn, id: &str, token: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE test_clocks SET leased_until = NULL WHERE id = $1 AND lease_token = $2")
        .bind(id)
        .bind(token)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Marks an advance done (`c` already shows the new time), if the lease `token` is still
/// the clock's and it is still advancing. Returns whether it was.
pub async fn finish_advance(conn: &mut Conn, c: &TestClock, token: i64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE test_clocks SET status = $1, frozen_time = $2, advance_to = NULL, leased_until = NULL \
         WHERE id = $3 AND lease_token = $4 AND status = 'advancing'",
    )
    .bind(c.status.as_str())
    .bind(c.frozen_time)
    .bind(&c.id)
    .bind(token)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Deletes the clock `id` of `scope` and its customers with everything under them:
/// recoveries with their trail, payouts, claims with their review trail, guarantees,
/// customers, then the clock. Events stay (the record of
/// what happened; they go with retention).
pub async fn delete_with_objects(conn: &mut Conn, scope: &Scope, id: &str) -> Result<(), sqlx::Error> {
    let guarantees = "SELECT id FROM guarantees WHERE test_clock_id = $1 AND account_id = $2 AND livemode = $3";
    for sql in [
        "DELETE FROM recovery_actions WHERE recovery_id IN (SELECT id FROM recoveries WHERE test_clock_id = $1 \
         AND account_id = $2 AND livemode = $3)"
            .to_owned(),
        "DELETE FROM recoveries WHERE test_clock_id = $1 AND account_id = $2 AND livemode = $3".to_owned(),
        format!("DELETE FROM payouts WHERE guarantee_id IN ({guarantees})"),
        format!(
            "DELETE FROM claim_actions WHERE claim_id IN (SELECT id FROM claims WHERE guarantee_id IN ({guarantees}))"
        ),
        format!("DELETE FROM claims WHERE guarantee_id IN ({guarantees})"),
        "DELETE FROM guarantees WHERE test_clock_id = $1 AND account_id = $2 AND livemode = $3".to_owned(),
        "DELETE FROM customers WHERE test_clock_id = $1 AND account_id = $2 AND livemode = $3".to_owned(),
        "DELETE FROM test_clocks WHERE id = $1 AND account_id = $2 AND livemode = $3".to_owned(),
    ] {
        sqlx::query(&sql).bind(id).bind(&scope.account_id).bind(scope.livemode).execute(&mut *conn).await?;
    }
    Ok(())
}

/// Clocks past their `deletes_after`, up to `limit`, with their scopes.
pub async fn past_lifetime(conn: &mut Conn, now: i64, limit: i64) -> Result<Vec<(Scope, String)>, sqlx::Error> {
    let rows =
        sqlx::query("SELECT account_id, livemode, id FROM test_clocks WHERE deletes_after <= $1 ORDER BY seq LIMIT $2")
            .bind(now)
            .bind(limit)
            .fetch_all(&mut *conn)
            .await?;
    rows.iter().map(|r| Ok((row_scope(r)?, r.try_get("id")?))).collect()
}
