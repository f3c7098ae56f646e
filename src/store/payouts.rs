//! Payouts table.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::batch::{execute_rows, scoped_row};
use super::list::fetch_by_ids;
use super::{Conn, Scope, Tx, get_bool, read_row, row_scope};
use crate::domain::payout::{Payout, PayoutStatus};
use crate::resource;

const COLUMNS: &str = "id, livemode, created, claim_id, guarantee_id, amount, currency, status, arrival_date";

/// `COLUMNS`, each prefixed with the table: for statements that join another.
fn qualified_columns() -> String {
    COLUMNS.split(", ").map(|c| format!("payouts.{c}")).collect::<Vec<_>>().join(", ")
}

fn from_row(r: &AnyRow) -> Result<Payout, sqlx::Error> {
    let status: String = r.try_get("status")?;
    Ok(read_row! { r, Payout {
        id, amount, currency,
        claim = "claim_id",
        guarantee = "guarantee_id",
        status: PayoutStatus::parse(&status)
            .ok_or_else(|| sqlx::Error::Decode(format!("unknown payout status {status:?}").into()))?,
        arrival_date,
        livemode: get_bool(r, "livemode")?,
        created,
    }})
}

/// Inserts new payouts, each in its scope: one statement per chunk of rows.
pub async fn insert(conn: &mut Conn, payouts: &[(&Scope, &Payout)]) -> Result<(), sqlx::Error> {
    execute_rows(
        conn,
        payouts,
        |values| {
            format!(
                "INSERT INTO payouts (id, account_id, livemode, created, claim_id, guarantee_id, amount, currency, \
                 status, arrival_date) VALUES {values}"
            )
        },
        |sql, (scope, p)| {
            scoped_row(sql, p.id.clone(), scope, p.created, |sql| {
                vec![
                    sql.bind(p.claim.clone()),
                    sql.bind(p.guarantee.clone()),
                    sql.bind(p.amount),
                    sql.bind(p.currency.clone()),
                    sql.bind(p.status.as_str()),
                    sql.bind(p.arrival_date),
                ]
            })
        },
    )
    .await?;
    Ok(())
}

super::list::scoped_reads! {
    Payout, resource::PAYOUT.table, COLUMNS, from_row;
    list(f: PayoutFilters) |sql| {
        sql.and_eq_some("claim_id", f.claim);
        sql.and_eq_some("guarantee_id", f.guarantee);
    }
}

/// A payout taken by one engine step until its lease runs out; `token` fences the
/// write of the rail's answer, as a webhook delivery's does (`webhooks::lease_due`).
#[derive(Debug, Clone)]
pub struct LeasedPayout {
    pub scope: Scope,
    pub payout: Payout,
    pub token: i64,
}

/// Leases up to `limit` of the oldest pending payouts that no live lease holds, until
/// `leased_until`: each lease raises the payout's token, so the answer of an earlier
/// holder whose lease ran out can no longer be recorded. On PostgreSQL the candidates
/// are taken `FOR UPDATE SKIP LOCKED`, so replicas leasing at once take different
/// payouts. They are chosen once, in a materialised `WITH`: as an `IN (...)` subquery,
/// PostgreSQL may run the locking `LIMIT` again per row, and each run skips the rows
/// this statement has just updated, so it leased past the limit.
///
/// `clock`: `None` for the claims engine's share (payouts on no test clock, and on
/// clocks that are `ready`), or the payouts of that clock (while it advances).
pub async fn lease_due(
    tx: &mut Tx,
    clock: Option<&str>,
    now: i64,
    leased_until: i64,
    limit: usize,
) -> Result<Vec<LeasedPayout>, sqlx::Error> {
    let skip = tx.skip_locked_clause();
    let on_clock = match clock {
        None => {
            "NOT IN (SELECT g.id FROM guarantees g JOIN test_clocks tc ON tc.id = g.test_clock_id \
             WHERE tc.status <> 'ready')"
        }
        Some(_) => "IN (SELECT id FROM guarantees WHERE test_clock_id = $4)",
    };
    let sql = format!(
        "WITH due AS MATERIALIZED (SELECT id FROM payouts \
         WHERE status = 'pending' AND (leased_until IS NULL OR leased_until <= $2) AND guarantee_id {on_clock} \
         ORDER BY seq LIMIT $3{skip}) \
         UPDATE payouts SET lease_token = lease_token + 1, leased_until = $1 FROM due WHERE payouts.id = due.id \
         RETURNING payouts.seq, payouts.account_id, {}, payouts.lease_token",
        qualified_columns()
    );
    let mut query = sqlx::query(&sql).bind(leased_until).bind(now).bind(limit as i64);
    if let Some(clock) = clock {
        query = query.bind(clock.to_owned());
    }
    let rows = query.fetch_all(&mut **tx).await?;
    // RETURNING has no order: oldest first, as they were chosen.
    let mut leased = rows
        .iter()
        .map(|r| {
            let seq: i64 = r.try_get("seq")?;
            Ok((seq, LeasedPayout { scope: row_scope(r)?, payout: from_row(r)?, token: r.try_get("lease_token")? }))
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    leased.sort_by_key(|(seq, _)| *seq);
    Ok(leased.into_iter().map(|(_, l)| l).collect())
}

/// Locks these payouts (in id order, as the engine locks every kind) and returns the
/// ids of those still pending under the given lease token: a payout whose lease was
/// taken over since, or that is settled already, is left out.
pub async fn lock_leased(tx: &mut Tx, leases: &[(&str, i64)]) -> Result<Vec<String>, sqlx::Error> {
    let ids: Vec<&str> = leases.iter().map(|(id, _)| *id).collect();
    let suffix = format!(" AND status = 'pending' ORDER BY id{}", tx.lock_clause());
    let tokens =
        fetch_by_ids(tx, "SELECT id, lease_token FROM payouts", &ids, &suffix, |r| r.try_get::<i64, _>("lease_token"))
            .await?;
    Ok(leases.iter().filter(|(id, token)| tokens.get(*id) == Some(token)).map(|(id, _)| id.to_string()).collect())
}

/// A payout's outcome: its id, the lease token it was sent under, its new status and
/// when it arrives (if paid).
pub type Settlement<'a> = (&'a str, i64, PayoutStatus, Option<i64>);

/// Moves pending payouts to their new status and ends their lease, each only if it is
/// still pending under the token given. Returns how many were, so the caller can tell
/// that each was settled once however many workers reached it.
pub async fn settle(conn: &mut Conn, settlements: &[Settlement<'_>]) -> Result<u64, sqlx::Error> {
    execute_rows(
        conn,
        settlements,
        |values| {
            format!(
                "UPDATE payouts SET status = v.column3, arrival_date = v.column4, leased_until = NULL \
                 FROM (VALUES {values}) AS v \
                 WHERE payouts.id = v.column1 AND payouts.lease_token = v.column2 AND payouts.status = 'pending'"
            )
        },
        |sql, (id, token, status, arrival_date)| {
            vec![sql.bind(id.to_string()), sql.bind(*token), sql.bind(status.as_str()), sql.bind(*arrival_date)]
        },
    )
    .await
}

/// Gives leases back unused (the rail had no answer), so the payouts are sent again at
/// the next step instead of when the lease runs out. A lease taken over since is left.
pub async fn release(conn: &mut Conn, leases: &[(&str, i64)]) -> Result<u64, sqlx::Error> {
    execute_rows(
        conn,
        leases,
        |values| {
            format!(
                "UPDATE payouts SET leased_until = NULL FROM (VALUES {values}) AS v \
                 WHERE payouts.id = v.column1 AND payouts.lease_token = v.column2 AND payouts.status = 'pending'"
            )
        },
        |sql, (id, token)| vec![sql.bind(id.to_string()), sql.bind(*token)],
    )
    .await
}

#[derive(Debug, Default, Clone)]
pub struct PayoutFilters {
    pub claim: Option<String>,
    pub guarantee: Option<String>,
}
