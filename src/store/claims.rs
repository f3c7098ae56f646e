//! Claims table.

use std::collections::HashMap;

use sqlx::Row;
use sqlx::any::AnyRow;

use super::batch::{chunks, execute_rows};
use super::list::{Sql, fetch_by_ids};
use super::{Conn, Scope, Tx, execute_scoped, get_bool, get_json, insert_query, read_row, row_scope, to_json};
use crate::domain::claim::{Claim, ClaimReason, ClaimReview, ClaimStatus, DenialReason, Evidence, StatusTransitions};
use crate::domain::review::Period;
use crate::resource;

const COLUMNS: &str = "id, livemode, created, guarantee_id, amount, amount_approved, currency, status, reason, \
    invoice_id, due_date, description, payout_id, denial_reason, reviewed_at, submitted_at, under_review_at, \
    approved_at, denied_at, paid_at, awaiting_operator, metadata, review_note";

fn decode<T>(value: String, parse: fn(&str) -> Option<T>, what: &str) -> Result<T, sqlx::Error> {
    parse(&value).ok_or_else(|| sqlx::Error::Decode(format!("unknown {what} {value:?}").into()))
}

fn from_row(r: &AnyRow) -> Result<Claim, sqlx::Error> {
    let denial: Option<String> = r.try_get("denial_reason")?;
    Ok(read_row! { r, Claim {
        id,
        guarantee = "guarantee_id",
        amount, amount_approved, currency,
        status: decode(r.try_get("status")?, ClaimStatus::parse, "claim status")?,
        reason: decode(r.try_get("reason")?, ClaimReason::parse, "claim reason")?,
        evidence: Evidence {
            invoice_id: r.try_get("invoice_id")?,
            due_date: r.try_get("due_date")?,
            description: r.try_get("description")?,
        },
        payout = "payout_id",
        denial_reason: denial.map(|d| decode(d, DenialReason::parse, "denial reason")).transpose()?,
        reviewed_at,
        status_transitions: StatusTransitions {
            submitted_at: r.try_get("submitted_at")?,
            under_review_at: r.try_get("under_review_at")?,
            approved_at: r.try_get("approved_at")?,
            denied_at: r.try_get("denied_at")?,
            paid_at: r.try_get("paid_at")?,
        },
        review: ClaimReview { note: r.try_get("review_note")? },
        awaiting_operator: get_bool(r, "awaiting_operator")?,
        metadata: get_json(r, "metadata")?,
        livemode: get_bool(r, "livemode")?,
        created,
    }})
}

pub async fn insert(conn: &mut Conn, scope: &Scope, c: &Claim) -> Result<(), sqlx::Error> {
    let t = &c.status_transitions;
    insert_query(
        "INSERT INTO claims (id, account_id, livemode, created, guarantee_id, amount, amount_approved, currency, \
         status, reason, invoice_id, due_date, description, payout_id, denial_reason, reviewed_at, submitted_at, \
         under_review_at, approved_at, denied_at, paid_at, metadata, review_note) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, \
         $23)",
        &c.id,
        scope,
        c.created,
    )
    .bind(&c.guarantee)
    .bind(c.amount)
    .bind(c.amount_approved)
    .bind(&c.currency)
    .bind(c.status.as_str())
    .bind(c.reason.as_str())
    .bind(&c.evidence.invoice_id)
    .bind(c.evidence.due_date)
    .bind(c.evidence.description.clone())
    .bind(c.payout.clone())
    .bind(c.denial_reason.map(|d| d.as_str()))
    .bind(c.reviewed_at)
    .bind(t.submitted_at)
    .bind(t.under_review_at)
    .bind(t.approved_at)
    .bind(t.denied_at)
    .bind(t.paid_at)
    .bind(to_json(&c.metadata))
    .bind(c.review.note.clone())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

super::list::scoped_reads! {
    Claim, resource::CLAIM.table, COLUMNS, from_row;
    list(f: ClaimFilters) |sql| {
        sql.and_eq_some("guarantee_id", f.guarantee);
        sql.and_eq_some("status", f.status.map(|s| s.as_str()));
    }
}

/// Writes the fields that change over a claim's life.
pub async fn update(conn: &mut Conn, scope: &Scope, c: &Claim) -> Result<(), sqlx::Error> {
    let t = &c.status_transitions;
    let query = sqlx::query(
        "UPDATE claims SET status = $1, amount_approved = $2, payout_id = $3, denial_reason = $4, reviewed_at = $5, \
         under_review_at = $6, approved_at = $7, denied_at = $8, paid_at = $9, awaiting_operator = $10, \
         metadata = $11, review_note = $12 WHERE id = $13 AND account_id = $14 AND livemode = $15",
    )
    .bind(c.status.as_str())
    .bind(c.amount_approved)
    .bind(c.payout.clone())
    .bind(c.denial_reason.map(|d| d.as_str()))
    .bind(c.reviewed_at)
    .bind(t.under_review_at)
    .bind(t.approved_at)
    .bind(t.denied_at)
    .bind(t.paid_at)
    .bind(c.awaiting_operator)
    .bind(to_json(&c.metadata))
    .bind(c.review.note.clone());
    execute_scoped(conn, query, &c.id, scope).await
}

/// Writes the fields that change over a claim's life, for claims of any account that
/// this transaction has locked (by id, as `lock_many` and `next_for_review` take them):
/// the claims engine's batches, one statement per chunk. Returns how many it wrote.
pub async fn update_locked(conn: &mut Conn, claims: &[&Claim]) -> Result<u64, sqlx::Error> {
    execute_rows(
        conn,
        claims,
        |values| {
            format!(
                "UPDATE claims SET status = v.column2, amount_approved = v.column3, payout_id = v.column4, \
                 denial_reason = v.column5, reviewed_at = v.column6, under_review_at = v.column7, \
                 approved_at = v.column8, denied_at = v.column9, paid_at = v.column10, awaiting_operator = v.column11, \
                 metadata = v.column12, review_note = v.column13 FROM (VALUES {values}) AS v \
                 WHERE claims.id = v.column1"
            )
        },
        |sql, c| {
            let t = &c.status_transitions;
            vec![
                sql.bind(c.id.clone()),
                sql.bind(c.status.as_str()),
                sql.bind(c.amount_approved),
                sql.bind(c.payout.clone()),
                sql.bind(c.denial_reason.map(|d| d.as_str())),
                sql.bind(c.reviewed_at),
                sql.bind(t.under_review_at),
                sql.bind(t.approved_at),
                sql.bind(t.denied_at),
                sql.bind(t.paid_at),
                sql.bind(c.awaiting_operator),
                sql.bind(to_json(&c.metadata)),
                sql.bind(c.review.note.clone()),
            ]
        },
    )
    .await
}

/// The id of a claim on this guarantee for this invoice that was not denied.
pub async fn find_live_for_invoice(
    conn: &mut Conn,
    guarantee_id: &str,
    invoice_id: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM claims WHERE guarantee_id = $1 AND invoice_id = $2 AND status <> 'denied'")
        .bind(guarantee_id)
        .bind(invoice_id)
        .fetch_optional(&mut *conn)
        .await
}

/// For each (guarantee id, period) asked about, the sum of the claimed amounts of the
/// guarantee's approved and paid claims due in that period; pairs with none are absent.
/// One statement per chunk of pairs. The caller holds the guarantees' row locks, which
/// every approval takes, so the sums cannot change before it commits.
pub async fn period_usage(
    conn: &mut Conn,
    pairs: &[(&str, Period)],
) -> Result<HashMap<(String, Period), i64>, sqlx::Error> {
    let mut pairs = pairs.to_vec();
    pairs.sort_unstable();
    pairs.dedup();
    let mut used = HashMap::new();
    for chunk in chunks(pairs.len()) {
        let mut sql = Sql::new("");
        let groups: Vec<String> = pairs[chunk]
            .iter()
            .map(|(g, p)| format!("({}, {}, {})", sql.bind(g.to_string()), sql.bind(p.first), sql.bind(p.last)))
            .collect();
        // SUM of BIGINT is NUMERIC on PostgreSQL: cast back for the Any driver.
        sql.push(&format!(
            "SELECT v.column1 AS guarantee_id, v.column2 AS period_first, v.column3 AS period_last, \
             CAST(SUM(c.amount) AS BIGINT) AS used FROM (VALUES {}) AS v \
             JOIN claims c ON c.guarantee_id = v.column1 AND c.due_date >= v.column2 AND c.due_date <= v.column3 \
             WHERE c.status IN ('approved', 'paid') GROUP BY v.column1, v.column2, v.column3",
            groups.join(", ")
        ));
        for r in sqlx::query_with(&sql.text, sql.args).fetch_all(&mut *conn).await? {
            let period = Period { first: r.try_get("period_first")?, last: r.try_get("period_last")? };
            used.insert((r.try_get("guarantee_id")?, period), r.try_get("used")?);
        }
    }
    Ok(used)
}

#[derive(Debug, Default, Clone)]
pub struct ClaimFilters {
    pub guarantee: Option<String>,
    pub status: Option<ClaimStatus>,
}

/// Up to `limit` of the oldest claims waiting for automated review, locked for this
/// transaction; claims another worker holds are skipped. `clock`: `None` for the
/// claims engine's share (claims on no test clock, and on clocks that are `ready`; a
/// clock that is advancing reviews its own), or the claims of that clock.
pub async fn next_for_review(
    tx: &mut Tx,
    clock: Option<&str>,
    limit: usize,
) -> Result<Vec<(Scope, Claim)>, sqlx::Error> {
    let skip = tx.skip_locked_clause();
    let on_clock = match clock {
        None => {
            "NOT IN (SELECT g.id FROM guarantees g JOIN test_clocks tc ON tc.id = g.test_clock_id \
             WHERE tc.status <> 'ready')"
        }
        Some(_) => "IN (SELECT id FROM guarantees WHERE test_clock_id = $3)",
    };
    let sql = format!(
        "SELECT account_id, {COLUMNS} FROM claims WHERE status = 'under_review' AND awaiting_operator = $1 \
         AND guarantee_id {on_clock} ORDER BY seq LIMIT $2{skip}"
    );
    let mut query = sqlx::query(&sql).bind(false).bind(limit as i64);
    if let Some(clock) = clock {
        query = query.bind(clock.to_owned());
    }
    let rows = query.fetch_all(&mut **tx).await?;
    rows.iter().map(|r| Ok((row_scope(r)?, from_row(r)?))).collect()
}

/// Locks claims of any account by id, in id order, each with its scope: for the
/// claims engine's payout batches.
pub async fn lock_many(tx: &mut Tx, ids: &[&str]) -> Result<HashMap<String, (Scope, Claim)>, sqlx::Error> {
    let suffix = format!(" ORDER BY id{}", tx.lock_clause());
    let select = format!("SELECT account_id, {COLUMNS} FROM claims");
    fetch_by_ids(tx, &select, ids, &suffix, |r| Ok((row_scope(r)?, from_row(r)?))).await
}

/// A claim in any account, locked: for operators, whose keys span accounts.
pub async fn get_any_for_update(tx: &mut Tx, id: &str) -> Result<Option<(Scope, Claim)>, sqlx::Error> {
    let lock = tx.lock_clause();
    let sql = format!("SELECT account_id, {COLUMNS} FROM claims WHERE id = $1{lock}");
    let row = sqlx::query(&sql).bind(id).fetch_optional(&mut **tx).await?;
    row.as_ref().map(|r| Ok((row_scope(r)?, from_row(r)?))).transpose()
}

/// The scope of a claim of any account: for operators, whose keys span accounts.
pub async fn scope_of(conn: &mut Conn, id: &str) -> Result<Option<Scope>, sqlx::Error> {
    let row = sqlx::query("SELECT account_id, livemode FROM claims WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(row_scope).transpose()
}
