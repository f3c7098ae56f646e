//! Payouts table.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::batch::execute_rows;
use super::list::{Page, PageRequest, fetch_page};
use super::{Conn, Scope, Tx, get_bool, row_scope};
use crate::domain::payout::{Payout, PayoutStatus};
use crate::resource;

const COLUMNS: &str = "id, livemode, created, claim_id, guarantee_id, amount, currency, status, arrival_date";

fn from_row(r: &AnyRow) -> Result<Payout, sqlx::Error> {
    let status: String = r.try_get("status")?;
    Ok(Payout {
        id: r.try_get("id")?,
        object: Payout::OBJECT,
        amount: r.try_get("amount")?,
        currency: r.try_get("currency")?,
        claim: r.try_get("claim_id")?,
        guarantee: r.try_get("guarantee_id")?,
        status: PayoutStatus::parse(&status)
            .ok_or_else(|| sqlx::Error::Decode(format!("unknown payout status {status:?}").into()))?,
        arrival_date: r.try_get("arrival_date")?,
        livemode: get_bool(r, "livemode")?,
        created: r.try_get("created")?,
    })
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
            vec![
                sql.bind(p.id.clone()),
                sql.bind(scope.account_id.clone()),
                sql.bind(scope.livemode),
                sql.bind(p.created),
                sql.bind(p.claim.clone()),
                sql.bind(p.guarantee.clone()),
                sql.bind(p.amount),
                sql.bind(p.currency.clone()),
                sql.bind(p.status.as_str()),
                sql.bind(p.arrival_date),
            ]
        },
    )
    .await?;
    Ok(())
}

pub async fn get(conn: &mut Conn, scope: &Scope, id: &str) -> Result<Option<Payout>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM payouts WHERE id = $1 AND account_id = $2 AND livemode = $3");
    let row =
        sqlx::query(&sql).bind(id).bind(&scope.account_id).bind(scope.livemode).fetch_optional(&mut *conn).await?;
    row.as_ref().map(from_row).transpose()
}

/// A payout's outcome: its id, its new status and when it arrives (if paid).
pub type Settlement<'a> = (&'a str, PayoutStatus, Option<i64>);

/// Moves pending payouts to their new status. Returns how many were still pending,
/// so the caller can tell that each was settled once however many workers reached it.
pub async fn settle(conn: &mut Conn, settlements: &[Settlement<'_>]) -> Result<u64, sqlx::Error> {
    execute_rows(
        conn,
        settlements,
        |values| {
            format!(
                "UPDATE payouts SET status = v.column2, arrival_date = v.column3 FROM (VALUES {values}) AS v \
                 WHERE payouts.id = v.column1 AND payouts.status = 'pending'"
            )
        },
        |sql, (id, status, arrival_date)| {
            vec![sql.bind(id.to_string()), sql.bind(status.as_str()), sql.bind(*arrival_date)]
        },
    )
    .await
}

/// Up to `limit` of the oldest pending payouts, locked for this transaction; payouts
/// another worker holds are skipped.
pub async fn next_pending(tx: &mut Tx, limit: usize) -> Result<Vec<(Scope, Payout)>, sqlx::Error> {
    let skip = tx.skip_locked_clause();
    let sql = format!("SELECT account_id, {COLUMNS} FROM payouts WHERE status = 'pending' ORDER BY seq LIMIT $1{skip}");
    let rows = sqlx::query(&sql).bind(limit as i64).fetch_all(&mut **tx).await?;
    rows.iter().map(|r| Ok((row_scope(r)?, from_row(r)?))).collect()
}

#[derive(Debug, Default, Clone)]
pub struct PayoutFilters {
    pub claim: Option<String>,
    pub guarantee: Option<String>,
}

pub async fn list(
    conn: &mut Conn,
    scope: &Scope,
    page: &PageRequest,
    f: PayoutFilters,
) -> Result<Page<Payout>, sqlx::Error> {
    fetch_page(
        conn,
        resource::PAYOUT.table,
        COLUMNS,
        scope,
        page,
        |sql| {
            if let Some(c) = f.claim {
                sql.and_eq("claim_id", c);
            }
            if let Some(g) = f.guarantee {
                sql.and_eq("guarantee_id", g);
            }
        },
        from_row,
    )
    .await
}
