//! Claims table.

use std::collections::HashMap;

use sqlx::Row;
use sqlx::any::AnyRow;

use super::batch::{chunks, execute_rows};
use super::list::{Sql, fetch_by_ids};
use super::{Conn, Page, Scope, Tx, get_bool, get_json, read_row, row_scope, scoped_insert, scoped_update, to_json};
use crate::domain::claim::{
    Awaiting, Claim, ClaimReason, ClaimReview, ClaimStatus, DenialReason, Evidence, StatusTransitions,
};
use crate::domain::review::Period;
use crate::resource;

const COLUMNS: &str = "id, livemode, created, guarantee_id, amount, amount_approved, currency, status, reason, \
    invoice_id, due_date, description, payout_id, denial_reason, reviewed_at, submitted_at, under_review_at, \
    approved_at, denied_at, paid_at, awaiting_operator, metadata, review_note, decided_by, review_checks, \
    review_due_by, review_approvals, evidence_requested, evidence_files";

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
            files: get_json(r, "evidence_files")?,
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
        review: ClaimReview {
            checks: get_json(r, "review_checks")?,
            decided_by: r.try_get("decided_by")?,
            due_by: r.try_get("review_due_by")?,
            approvals: get_json(r, "review_approvals")?,
            evidence_requested: r.try_get("evidence_requested")?,
            note: r.try_get("review_note")?,
        },
        awaiting_operator: get_bool(r, "awaiting_operator")?,
        metadata: get_json(r, "metadata")?,
        livemode: get_bool(r, "livemode")?,
        created,
    }})
}

/// Inserts a claim, deferred (`Tx::defer`).
pub async fn insert(tx: &mut Tx, scope: &Scope, c: &Claim) -> Result<(), sqlx::Error> {
    let t = &c.status_transitions;
    tx.defer("claims", |sql| {
        let columns = [
            ("guarantee_id", sql.bind(c.guarantee.clone())),
            ("amount", sql.bind(c.amount)),
            ("amount_approved", sql.bind(c.amount_approved)),
            ("currency", sql.bind(c.currency.clone())),
            ("status", sql.bind(c.status.as_str())),
            ("reason", sql.bind(c.reason.as_str())),
            ("invoice_id", sql.bind(c.evidence.invoice_id.clone())),
            ("due_date", sql.bind(c.evidence.due_date)),
            ("description", sql.bind(c.evidence.description.clone())),
            ("payout_id", sql.bind(c.payout.clone())),
            ("denial_reason", sql.bind(c.denial_reason.map(|d| d.as_str()))),
            ("reviewed_at", sql.bind(c.reviewed_at)),
            ("submitted_at", sql.bind(t.submitted_at)),
            ("under_review_at", sql.bind(t.under_review_at)),
            ("approved_at", sql.bind(t.approved_at)),
            ("denied_at", sql.bind(t.denied_at)),
            ("paid_at", sql.bind(t.paid_at)),
            ("metadata", sql.bind(to_json(&c.metadata))),
            ("review_note", sql.bind(c.review.note.clone())),
            ("decided_by", sql.bind(c.review.decided_by.clone())),
            ("review_checks", sql.bind(to_json(&c.review.checks))),
            ("review_due_by", sql.bind(c.review.due_by)),
            ("review_approvals", sql.bind(to_json(&c.review.approvals))),
            ("evidence_requested", sql.bind(c.review.evidence_requested.clone())),
            ("review_awaiting", sql.bind(c.awaiting().map(|a| a.as_str()))),
            ("awaiting_operator", sql.bind(c.awaiting_operator)),
            ("evidence_files", sql.bind(to_json(&c.evidence.files))),
        ];
        scoped_insert(sql, "claims", &c.id, scope, c.created, &columns)
    })
    .await
}

super::list::scoped_reads! {
    Claim, resource::CLAIM.table, COLUMNS, from_row;
    list(f: ClaimFilters) |sql| {
        sql.and_eq_some("guarantee_id", f.guarantee);
        sql.and_eq_some("status", f.status.map(|s| s.as_str()));
    }
}

/// Writes the fields that change over a claim's life, deferred (`Tx::defer`).
pub async fn update(tx: &mut Tx, scope: &Scope, c: &Claim) -> Result<(), sqlx::Error> {
    let t = &c.status_transitions;
    tx.defer("claims", |sql| {
        let set = [
            ("status", sql.bind(c.status.as_str())),
            ("amount_approved", sql.bind(c.amount_approved)),
            ("payout_id", sql.bind(c.payout.clone())),
            ("denial_reason", sql.bind(c.denial_reason.map(|d| d.as_str()))),
            ("reviewed_at", sql.bind(c.reviewed_at)),
            ("under_review_at", sql.bind(t.under_review_at)),
            ("approved_at", sql.bind(t.approved_at)),
            ("denied_at", sql.bind(t.denied_at)),
            ("paid_at", sql.bind(t.paid_at)),
            ("awaiting_operator", sql.bind(c.awaiting_operator)),
            ("metadata", sql.bind(to_json(&c.metadata))),
            ("review_note", sql.bind(c.review.note.clone())),
            ("decided_by", sql.bind(c.review.decided_by.clone())),
            ("review_checks", sql.bind(to_json(&c.review.checks))),
            ("review_approvals", sql.bind(to_json(&c.review.approvals))),
            ("evidence_requested", sql.bind(c.review.evidence_requested.clone())),
            ("review_awaiting", sql.bind(c.awaiting().map(|a| a.as_str()))),
            ("description", sql.bind(c.evidence.description.clone())),
            ("evidence_files", sql.bind(to_json(&c.evidence.files))),
        ];
        scoped_update(sql, "claims", &set, &c.id, scope)
    })
    .await
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
                 metadata = v.column12, review_note = v.column13, decided_by = v.column14, \
                 review_checks = v.column15, review_approvals = v.column16, evidence_requested = v.column17, \
                 review_awaiting = v.column18, description = v.column19 FROM (VALUES {values}) AS v \
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
                sql.bind(c.review.decided_by.clone()),
                sql.bind(to_json(&c.review.checks)),
                sql.bind(to_json(&c.review.approvals)),
                sql.bind(c.review.evidence_requested.clone()),
                sql.bind(c.awaiting().map(|a| a.as_str())),
                sql.bind(c.evidence.description.clone()),
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

/// A claim in any account, with its scope: for operators' reads.
pub async fn get_any(conn: &mut Conn, id: &str) -> Result<Option<(Scope, Claim)>, sqlx::Error> {
    let sql = format!("SELECT account_id, {COLUMNS} FROM claims WHERE id = $1");
    let row = sqlx::query(&sql).bind(id).fetch_optional(&mut *conn).await?;
    row.as_ref().map(|r| Ok((row_scope(r)?, from_row(r)?))).transpose()
}

/// The filters of the operators' queue (`GET /v1/review/claims`).
#[derive(Debug, Default, Clone)]
pub struct QueueFilters {
    pub reason: Option<ClaimReason>,
    pub account: Option<String>,
    /// `Some(true)`: only claims past `review.due_by` at `now`; `Some(false)`: only those not.
    pub overdue: Option<bool>,
    pub awaiting: Option<Awaiting>,
    pub now: i64,
}

/// The operators' queue across accounts: claims under review that wait for a person,
/// oldest `review.due_by` first (then id), `limit` of them after the cursor
/// `(due_by, id)`; one more is read to tell whether more follow. Walks the partial
/// index `claims_people_queue_idx` in order, so a page costs about `limit` rows
/// whatever the size of the queue (filters that drop most rows read further).
pub async fn review_queue(
    conn: &mut Conn,
    filters: &QueueFilters,
    limit: i64,
    after: Option<(i64, String)>,
) -> Result<Page<(Scope, Claim)>, sqlx::Error> {
    let mut sql = Sql::new(format!("SELECT account_id, {COLUMNS} FROM claims WHERE review_awaiting IS NOT NULL"));
    sql.and_eq_some("reason", filters.reason.map(|r| r.as_str()));
    sql.and_eq_some("account_id", filters.account.clone());
    sql.and_eq_some("review_awaiting", filters.awaiting.map(|a| a.as_str()));
    match filters.overdue {
        Some(true) => {
            let now = sql.bind(filters.now);
            sql.push(&format!(" AND review_due_by < {now}"));
        }
        Some(false) => {
            let now = sql.bind(filters.now);
            sql.push(&format!(" AND review_due_by >= {now}"));
        }
        None => {}
    }
    if let Some((due_by, id)) = after {
        // A row comparison: both backends seek the index to it (an OR of the two
        // conditions would scan the index from the start and filter).
        let (d, i) = (sql.bind(due_by), sql.bind(id));
        sql.push(&format!(" AND (review_due_by, id) > ({d}, {i})"));
    }
    let n = sql.bind(limit + 1);
    sql.push(&format!(" ORDER BY review_due_by, id LIMIT {n}"));
    let rows = sqlx::query_with(&sql.text, sql.args).fetch_all(&mut *conn).await?;
    let mut data = rows.iter().map(|r| Ok((row_scope(r)?, from_row(r)?))).collect::<Result<Vec<_>, sqlx::Error>>()?;
    let has_more = data.len() as i64 > limit;
    data.truncate(limit as usize);
    Ok(Page { data, has_more })
}

/// The queue position `(review.due_by, id)` of a claim in the queue, for a cursor.
pub async fn queue_position(conn: &mut Conn, id: &str) -> Result<Option<(i64, String)>, sqlx::Error> {
    let row = sqlx::query("SELECT review_due_by, id FROM claims WHERE id = $1 AND review_awaiting IS NOT NULL")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    row.map(|r| Ok((r.try_get::<Option<i64>, _>("review_due_by")?.unwrap_or(0), r.try_get("id")?))).transpose()
}

/// How many claims wait for a person, by what they wait for (for gauges and the console).
pub async fn queue_counts(conn: &mut Conn, now: i64) -> Result<Vec<(String, i64, i64)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT review_awaiting, COUNT(*) AS n, \
         CAST(COALESCE(SUM(CASE WHEN review_due_by < $1 THEN 1 ELSE 0 END), 0) AS BIGINT) AS overdue \
         FROM claims WHERE review_awaiting IS NOT NULL GROUP BY review_awaiting ORDER BY review_awaiting",
    )
    .bind(now)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(|r| Ok((r.try_get("review_awaiting")?, r.try_get("n")?, r.try_get("overdue")?))).collect()
}

/// The tenant's name (or customer id, when it has none) of each of these claims, by
/// claim id, in one statement: for the operators' queue.
pub async fn tenant_names(conn: &mut Conn, ids: &[&str]) -> Result<HashMap<String, String>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let mut sql = Sql::new("");
    let marks: Vec<String> = ids.iter().map(|id| sql.bind(id.to_string())).collect();
    sql.push(&format!(
        "SELECT c.id AS claim_id, COALESCE(cu.name, cu.id) AS tenant FROM claims c \
         JOIN guarantees g ON g.id = c.guarantee_id JOIN customers cu ON cu.id = g.tenant_id \
         WHERE c.id IN ({})",
        marks.join(", ")
    ));
    let rows = sqlx::query_with(&sql.text, sql.args).fetch_all(&mut *conn).await?;
    rows.iter().map(|r| Ok((r.try_get("claim_id")?, r.try_get("tenant")?))).collect()
}

/// The scope of a claim of any account: for operators, whose keys span accounts.
pub async fn scope_of(conn: &mut Conn, id: &str) -> Result<Option<Scope>, sqlx::Error> {
    let row = sqlx::query("SELECT account_id, livemode FROM claims WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(row_scope).transpose()
}
