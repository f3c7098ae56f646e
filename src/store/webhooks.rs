//! Webhook endpoints, the delivery outbox, and the attempts log.

use std::collections::HashMap;

use sqlx::Row;
use sqlx::any::AnyRow;

use super::batch::defer_rows;
use super::list::{Page, PageRequest, fetch_page};
use super::{Conn, Query, Scope, Tx, execute_scoped, get_bool, get_json, insert_query, read_row, row_scope, to_json};
use crate::domain::webhook::{DeliveryStatus, EndpointStatus, Signing, WebhookAttempt, WebhookEndpoint};
use crate::resource;

const ENDPOINT_COLUMNS: &str = "id, livemode, created, url, description, enabled_events, status, secret, \
    previous_secrets, failing_since, metadata, rate_limit";

fn endpoint_from_row(r: &AnyRow) -> Result<WebhookEndpoint, sqlx::Error> {
    let status: String = r.try_get("status")?;
    Ok(read_row! { r, WebhookEndpoint {
        id, url, description,
        enabled_events: get_json(r, "enabled_events")?,
        status: EndpointStatus::parse(&status)
            .ok_or_else(|| sqlx::Error::Decode(format!("unknown endpoint status {status:?}").into()))?,
        metadata: get_json(r, "metadata")?,
        livemode: get_bool(r, "livemode")?,
        created,
        signing: Signing {
            secret: r.try_get("secret")?,
            previous_secrets: get_json(r, "previous_secrets")?,
            failing_since: r.try_get("failing_since")?,
        },
        rate_limit,
    }})
}

/// Endpoint writes take a transaction: its commit makes the endpoint cache forget.
pub async fn insert_endpoint(tx: &mut Tx, scope: &Scope, e: &WebhookEndpoint) -> Result<(), sqlx::Error> {
    tx.note_endpoint_change();
    let query = insert_query(
        "INSERT INTO webhook_endpoints (id, account_id, livemode, created, url, description, enabled_events, status, \
         secret, previous_secrets, failing_since, metadata, rate_limit) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        &e.id,
        scope,
        e.created,
    );
    bind_endpoint_fields(query, e).execute(&mut **tx).await?;
    Ok(())
}

/// Binds the columns an endpoint may change, in the order both `insert_endpoint` and
/// `update_endpoint` name them.
fn bind_endpoint_fields<'q>(query: Query<'q>, e: &'q WebhookEndpoint) -> Query<'q> {
    query
        .bind(&e.url)
        .bind(e.description.clone())
        .bind(to_json(&e.enabled_events))
        .bind(e.status.as_str())
        .bind(&e.signing.secret)
        .bind(to_json(&e.signing.previous_secrets))
        .bind(e.signing.failing_since)
        .bind(to_json(&e.metadata))
        .bind(e.rate_limit)
}

pub async fn get_endpoint(conn: &mut Conn, scope: &Scope, id: &str) -> Result<Option<WebhookEndpoint>, sqlx::Error> {
    select_endpoint(conn, scope, id, "").await
}

pub async fn get_endpoint_for_update(
    tx: &mut Tx,
    scope: &Scope,
    id: &str,
) -> Result<Option<WebhookEndpoint>, sqlx::Error> {
    let lock = tx.lock_clause();
    select_endpoint(tx, scope, id, lock).await
}

async fn select_endpoint(
    conn: &mut Conn,
    scope: &Scope,
    id: &str,
    lock: &str,
) -> Result<Option<WebhookEndpoint>, sqlx::Error> {
    super::list::fetch_one(conn, "webhook_endpoints", ENDPOINT_COLUMNS, scope, id, lock, endpoint_from_row).await
}

pub async fn update_endpoint(tx: &mut Tx, scope: &Scope, e: &WebhookEndpoint) -> Result<(), sqlx::Error> {
    tx.note_endpoint_change();
    let query = sqlx::query(
        "UPDATE webhook_endpoints SET url = $1, description = $2, enabled_events = $3, status = $4, secret = $5, \
         previous_secrets = $6, failing_since = $7, metadata = $8, rate_limit = $9 \
         WHERE id = $10 AND account_id = $11 AND livemode = $12",
    );
    execute_scoped(tx, bind_endpoint_fields(query, e), &e.id, scope).await
}

pub async fn delete_endpoint(tx: &mut Tx, scope: &Scope, id: &str) -> Result<bool, sqlx::Error> {
    tx.note_endpoint_change();
    let done = sqlx::query("DELETE FROM webhook_endpoints WHERE id = $1 AND account_id = $2 AND livemode = $3")
        .bind(id)
        .bind(&scope.account_id)
        .bind(scope.livemode)
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn list_endpoints(
    conn: &mut Conn,
    scope: &Scope,
    page: &PageRequest,
) -> Result<Page<WebhookEndpoint>, sqlx::Error> {
    fetch_page(conn, resource::WEBHOOK_ENDPOINT.table, ENDPOINT_COLUMNS, scope, page, |_| {}, endpoint_from_row).await
}

/// Enabled endpoints of one account and mode: each id with the event types it takes.
pub type EnabledEndpoints = Vec<(String, Vec<String>)>;

/// The enabled endpoints of a scope with their subscriptions: for the outbox.
pub async fn enabled_endpoints(conn: &mut Conn, scope: &Scope) -> Result<EnabledEndpoints, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, enabled_events FROM webhook_endpoints WHERE account_id = $1 AND livemode = $2 AND status = 'enabled' \
         ORDER BY seq",
    )
    .bind(&scope.account_id)
    .bind(scope.livemode)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(|r| Ok((r.try_get("id")?, get_json(r, "enabled_events")?))).collect()
}

/// `enabled_endpoints`, read once per transaction and scope: the claims engine records
/// a batch's events in one transaction, which would otherwise read them per event.
pub async fn enabled_endpoints_in(tx: &mut Tx, scope: &Scope) -> Result<EnabledEndpoints, sqlx::Error> {
    if let Some((_, found)) = tx.endpoints.iter().find(|(s, _)| s == scope) {
        return Ok(found.clone());
    }
    // A transaction that changed an endpoint sees its own change; the cache does not.
    let shared = !tx.changed_endpoints;
    if let Some(found) = tx.endpoint_cache.get(scope).filter(|_| shared) {
        tx.endpoints.push((scope.clone(), found.clone()));
        return Ok(found);
    }
    let generation = tx.endpoint_cache.generation();
    let found = enabled_endpoints(tx.conn_beside_deferred(), scope).await?;
    if shared {
        tx.endpoint_cache.fill(scope, &found, generation);
    }
    tx.endpoints.push((scope.clone(), found.clone()));
    Ok(found)
}

/// Endpoints by id alone, for the dispatcher (which works across accounts): one
/// query for a whole batch of deliveries.
pub async fn get_endpoints_any(conn: &mut Conn, ids: &[&str]) -> Result<HashMap<String, WebhookEndpoint>, sqlx::Error> {
    super::list::fetch_by_ids(
        conn,
        &format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints"),
        ids,
        "",
        endpoint_from_row,
    )
    .await
}

// Deliveries ------------------------------------------------------------------

/// A delivery to queue: `event_id` for `endpoint_id`, due at once.
pub struct NewDelivery<'a> {
    pub scope: &'a Scope,
    pub id: String,
    pub event_id: &'a str,
    pub endpoint_id: &'a str,
    pub now: i64,
}

/// Queues deliveries in the order given (their lease order among those due at the same
/// time): one statement per chunk, deferred (`Tx::defer`).
pub async fn insert_deliveries(tx: &mut Tx, deliveries: &[NewDelivery<'_>]) -> Result<(), sqlx::Error> {
    defer_rows(
        tx,
        "webhook_deliveries",
        deliveries,
        |values| {
            format!(
                "INSERT INTO webhook_deliveries (id, account_id, livemode, created, event_id, endpoint_id, status, \
                 attempts, next_attempt_at) VALUES {values}"
            )
        },
        |sql, d| {
            let now = sql.bind(d.now);
            vec![
                sql.bind(d.id.clone()),
                sql.bind(d.scope.account_id.clone()),
                sql.bind(d.scope.livemode),
                now.clone(),
                sql.bind(d.event_id.to_owned()),
                sql.bind(d.endpoint_id.to_owned()),
                "'pending'".to_owned(),
                "0".to_owned(),
                now,
            ]
        },
    )
    .await?;
    Ok(())
}

/// A delivery taken by one dispatcher until `leased_until`; its `token` fences the
/// write of the result.
#[derive(Debug, Clone)]
pub struct LeasedDelivery {
    pub id: String,
    pub scope: Scope,
    pub event_id: String,
    pub endpoint_id: String,
    pub attempts: i64,
    pub token: i64,
}

/// How many of the first due deliveries (in lease order) one lease looks at, per
/// delivery it may take. Bounds the lease's work by the free slots rather than by the
/// backlog: behind a backlog, ranking every due delivery cost milliseconds per lease
/// and slowed the dispatcher down further the further behind it was.
const LEASE_WINDOW_PER_SLOT: i64 = 4;

/// What one lease may take: `limit` deliveries in all, and no more than `per_endpoint`
/// in flight to an endpoint or `per_account` for an account in one mode, counting those
/// in flight already (each endpoint or scope with its attempts in flight).
pub struct LeaseCaps<'a> {
    pub limit: i64,
    pub per_endpoint: i64,
    pub per_account: i64,
    pub endpoints_in_flight: &'a [(String, i64)],
    pub accounts_in_flight: &'a [(Scope, i64)],
}

/// Leases up to `caps.limit` due deliveries until `leased_until`, within the caps, taking
/// turns between accounts: each account's oldest due delivery first, then each one's
/// second, and so on; oldest first among those of the same turn.
///
/// Only a window of due deliveries is considered: the first `LEASE_WINDOW_PER_SLOT *
/// limit` of endpoints and accounts with a free slot (when one endpoint's or account's
/// backlog fills them, it gets its share now and, being full then, is left out of the
/// next lease, which reaches the deliveries behind it), and the last `limit` due, for
/// the accounts with none among the first. The last due are those that became due
/// most recently, so an account's fresh event gets its turn at once even behind another
/// account's backlog. Full endpoints and accounts are dropped from the last only after
/// the limit, so that scan stays short even when they hold the whole backlog.
///
/// The candidates are chosen without locks (row locks do not mix with the window
/// functions that cap each endpoint and account); the `UPDATE` then re-checks each row
/// under its lock, so a delivery another dispatcher leased a moment earlier is not
/// leased again.
pub async fn lease_due(
    tx: &mut Tx,
    now: i64,
    leased_until: i64,
    caps: &LeaseCaps<'_>,
) -> Result<Vec<LeasedDelivery>, sqlx::Error> {
    let mut sql = super::list::Sql::new("");
    let until = sql.bind(leased_until);
    let now_p = sql.bind(now);
    let free = format!(
        "status = 'pending' AND next_attempt_at <= {now_p} AND (leased_until IS NULL OR leased_until <= {now_p})"
    );
    // Full endpoints and accounts are left out before the window; the others' free
    // slots cap their ranks. The full ones are bound first, so that the statement's text
    // depends only on how many there are of each, and a prepared one is reused.
    let (mut exclude, mut endpoint_taken, mut account_taken) = (String::new(), String::new(), String::new());
    let (full, partial): (Vec<_>, Vec<_>) =
        caps.endpoints_in_flight.iter().filter(|(_, n)| *n > 0).partition(|(_, n)| *n >= caps.per_endpoint);
    for (endpoint, _) in full {
        let p = sql.bind(endpoint.clone());
        exclude.push_str(&format!(" AND endpoint_id <> {p}"));
    }
    for (endpoint, n) in partial {
        let (p, n) = (sql.bind(endpoint.clone()), sql.bind(*n));
        endpoint_taken.push_str(&format!(" WHEN {p} THEN {n}"));
    }
    let (full, partial): (Vec<_>, Vec<_>) =
        caps.accounts_in_flight.iter().filter(|(_, n)| *n > 0).partition(|(_, n)| *n >= caps.per_account);
    for (scope, _) in full {
        let (a, l) = (sql.bind(scope.account_id.clone()), sql.bind(scope.livemode));
        exclude.push_str(&format!(" AND NOT (account_id = {a} AND livemode = {l})"));
    }
    for (scope, n) in partial {
        let (a, l, n) = (sql.bind(scope.account_id.clone()), sql.bind(scope.livemode), sql.bind(*n));
        account_taken.push_str(&format!(" WHEN account_id = {a} AND livemode = {l} THEN {n}"));
    }
    let case = |whens: &str, on: &str| {
        if whens.is_empty() { "0".to_owned() } else { format!("CASE{on}{whens} ELSE 0 END") }
    };
    let endpoint_taken = case(&endpoint_taken, " endpoint_id");
    let account_taken = case(&account_taken, "");
    let endpoint_cap = sql.bind(caps.per_endpoint);
    let account_cap = sql.bind(caps.per_account);
    let window = sql.bind(caps.limit.saturating_mul(LEASE_WINDOW_PER_SLOT));
    let lim = sql.bind(caps.limit);
    let columns = "id, next_attempt_at, seq, endpoint_id, account_id, livemode";
    sql.push(&format!(
        "UPDATE webhook_deliveries SET lease_token = lease_token + 1, leased_until = {until} \
         WHERE {free} AND id IN ( \
         WITH head AS (SELECT {columns} FROM webhook_deliveries WHERE {free}{exclude} \
             ORDER BY next_attempt_at, seq LIMIT {window}), \
         tail AS (SELECT {columns} FROM (SELECT {columns} FROM webhook_deliveries WHERE {free} \
             ORDER BY next_attempt_at DESC, seq DESC LIMIT {lim}) last WHERE TRUE{exclude}), \
         candidates AS (SELECT {columns} FROM head UNION ALL SELECT {columns} FROM tail \
             WHERE (account_id, livemode) NOT IN (SELECT account_id, livemode FROM head)), \
         by_endpoint AS (SELECT {columns}, \
             ROW_NUMBER() OVER (PARTITION BY endpoint_id ORDER BY next_attempt_at, seq) AS rank FROM candidates), \
         by_account AS (SELECT {columns}, \
             ROW_NUMBER() OVER (PARTITION BY account_id, livemode ORDER BY next_attempt_at, seq) AS turn \
             FROM by_endpoint WHERE rank <= {endpoint_cap} - {endpoint_taken}) \
         SELECT id FROM by_account WHERE turn <= {account_cap} - {account_taken} \
         ORDER BY turn, next_attempt_at, seq LIMIT {lim}) \
         RETURNING id, account_id, livemode, event_id, endpoint_id, attempts, lease_token"
    ));
    let rows = sqlx::query_with(&sql.text, sql.args).fetch_all(&mut **tx).await?;
    rows.iter()
        .map(|r| {
            Ok(read_row! { r, LeasedDelivery {
                id,
                scope: row_scope(r)?,
                event_id, endpoint_id, attempts,
                token = "lease_token",
            }})
        })
        .collect()
}

/// Records an attempt's effect on its delivery, if the lease still holds: `status`
/// and the time of the next attempt. Returns false when another dispatcher has taken
/// the delivery since (the fencing token moved on).
pub async fn finish_delivery(
    conn: &mut Conn,
    d: &LeasedDelivery,
    status: DeliveryStatus,
    attempts: i64,
    next_attempt_at: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE webhook_deliveries SET status = $1, attempts = $2, next_attempt_at = $3, leased_until = NULL \
         WHERE id = $4 AND lease_token = $5 AND status = 'pending'",
    )
    .bind(status.as_str())
    .bind(attempts)
    .bind(next_attempt_at)
    .bind(&d.id)
    .bind(d.token)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Gives a lease back unused, so the delivery can be taken again at once.
pub async fn release_lease(conn: &mut Conn, d: &LeasedDelivery) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE webhook_deliveries SET leased_until = NULL WHERE id = $1 AND lease_token = $2")
        .bind(&d.id)
        .bind(d.token)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Whether the delivery is still there: a reset of the test data, or the deletion of
/// its endpoint or event, deletes it, also while it is being attempted.
pub async fn delivery_exists(conn: &mut Conn, id: &str) -> Result<bool, sqlx::Error> {
    let row = sqlx::query("SELECT COUNT(*) AS n FROM webhook_deliveries WHERE id = $1")
        .bind(id)
        .fetch_one(&mut *conn)
        .await?;
    Ok(row.try_get::<i64, _>("n")? > 0)
}

/// Takes one of the deliveries an endpoint may receive in the second `now`: true when
/// it may be sent now (no `rate_limit`, or the second's count is under it). One
/// conditional update of the endpoint's row, so dispatchers on every replica share
/// the count.
pub async fn take_rate_slot(conn: &mut Conn, endpoint_id: &str, now: i64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE webhook_endpoints SET \
         rate_window_count = CASE WHEN rate_window = $1 THEN rate_window_count + 1 ELSE 1 END, rate_window = $1 \
         WHERE id = $2 AND (rate_limit IS NULL OR rate_window <> $1 OR rate_window_count < rate_limit)",
    )
    .bind(now)
    .bind(endpoint_id)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Puts a leased delivery back to wait until `next_attempt_at`, without counting an
/// attempt (its endpoint's rate limit was reached). False if the lease was lost.
pub async fn defer_delivery(conn: &mut Conn, d: &LeasedDelivery, next_attempt_at: i64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE webhook_deliveries SET next_attempt_at = $1, leased_until = NULL \
         WHERE id = $2 AND lease_token = $3 AND status = 'pending'",
    )
    .bind(next_attempt_at)
    .bind(&d.id)
    .bind(d.token)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Queues again, from its first attempt, every delivery to an endpoint that failed for
/// good and was created at or after `since`; returns the events they carry, one entry
/// per delivery.
pub async fn recover_failed(
    tx: &mut Tx,
    scope: &Scope,
    endpoint_id: &str,
    since: i64,
    now: i64,
) -> Result<Vec<String>, sqlx::Error> {
    let rows = sqlx::query(
        "UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_attempt_at = $1, leased_until = NULL, \
         lease_token = lease_token + 1 \
         WHERE endpoint_id = $2 AND account_id = $3 AND livemode = $4 AND status = 'failed' AND created >= $5 \
         RETURNING event_id",
    )
    .bind(now)
    .bind(endpoint_id)
    .bind(&scope.account_id)
    .bind(scope.livemode)
    .bind(since)
    .fetch_all(&mut **tx)
    .await?;
    rows.iter().map(|r| r.try_get("event_id")).collect()
}

/// Marks every pending delivery of a disabled endpoint failed. Returns how many.
pub async fn fail_pending_for_endpoint(conn: &mut Conn, endpoint_id: &str) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE webhook_deliveries SET status = 'failed', leased_until = NULL WHERE endpoint_id = $1 AND status = 'pending'",
    )
    .bind(endpoint_id)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected())
}

/// Moves an event's `pending_webhooks` by `delta`.
pub async fn adjust_pending_webhooks(conn: &mut Conn, event_id: &str, delta: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE events SET pending_webhooks = pending_webhooks + $1 WHERE id = $2")
        .bind(delta)
        .bind(event_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

// Attempts ----------------------------------------------------------------------

const ATTEMPT_COLUMNS: &str =
    "id, livemode, created, endpoint_id, event_id, status_code, latency_ms, error, response_body";

fn attempt_from_row(r: &AnyRow) -> Result<WebhookAttempt, sqlx::Error> {
    Ok(read_row! { r, WebhookAttempt {
        id,
        event = "event_id",
        webhook_endpoint = "endpoint_id",
        status_code, latency_ms, error, response_body,
        livemode: get_bool(r, "livemode")?,
        created,
    }})
}

pub async fn insert_attempt(
    conn: &mut Conn,
    scope: &Scope,
    delivery_id: &str,
    a: &WebhookAttempt,
) -> Result<(), sqlx::Error> {
    insert_query(
        "INSERT INTO webhook_attempts (id, account_id, livemode, created, endpoint_id, event_id, delivery_id, \
         status_code, latency_ms, error, response_body) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        &a.id,
        scope,
        a.created,
    )
    .bind(&a.webhook_endpoint)
    .bind(&a.event)
    .bind(delivery_id)
    .bind(a.status_code)
    .bind(a.latency_ms)
    .bind(a.error.clone())
    .bind(a.response_body.clone())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// PostgreSQL only: records a delivered attempt as one statement: the attempt, the
/// delivery's success and its event's `pending_webhooks` land together or not at all,
/// in one round trip instead of a transaction of five. Returns false, writing nothing,
/// when another dispatcher has taken the delivery since.
pub async fn record_delivered(conn: &mut Conn, d: &LeasedDelivery, a: &WebhookAttempt) -> Result<bool, sqlx::Error> {
    let row = sqlx::query(
        "WITH finished AS ( \
             UPDATE webhook_deliveries SET status = 'succeeded', attempts = $1, next_attempt_at = $4, \
             leased_until = NULL WHERE id = $2 AND lease_token = $3 AND status = 'pending' RETURNING id \
         ), attempt AS ( \
             INSERT INTO webhook_attempts (id, account_id, livemode, created, endpoint_id, event_id, delivery_id, \
             status_code, latency_ms, error, response_body) \
             SELECT $5, $6, $7, $4, $8, $9, id, $10, $11, $12, $13 FROM finished \
         ), counted AS ( \
             UPDATE events SET pending_webhooks = pending_webhooks - 1 \
             WHERE id = $9 AND EXISTS (SELECT 1 FROM finished) \
         ) SELECT COUNT(*) AS finished FROM finished",
    )
    .bind(d.attempts + 1)
    .bind(&d.id)
    .bind(d.token)
    .bind(a.created)
    .bind(&a.id)
    .bind(&d.scope.account_id)
    .bind(d.scope.livemode)
    .bind(&a.webhook_endpoint)
    .bind(&a.event)
    .bind(a.status_code)
    .bind(a.latency_ms)
    .bind(a.error.clone())
    .bind(a.response_body.clone())
    .fetch_one(&mut *conn)
    .await?;
    Ok(row.try_get::<i64, _>("finished")? == 1)
}

pub async fn list_attempts(
    conn: &mut Conn,
    scope: &Scope,
    endpoint_id: &str,
    page: &PageRequest,
) -> Result<Page<WebhookAttempt>, sqlx::Error> {
    let endpoint_id = endpoint_id.to_owned();
    fetch_page(
        conn,
        resource::WEBHOOK_ATTEMPT.table,
        ATTEMPT_COLUMNS,
        scope,
        page,
        |sql| sql.and_eq("endpoint_id", endpoint_id),
        attempt_from_row,
    )
    .await
}

/// Locks an endpoint to change its status or failure streak, in a transaction that
/// may already have inserted rows referencing it (see `Tx::lock_no_key_clause`).
pub async fn get_endpoint_for_change(
    tx: &mut Tx,
    scope: &Scope,
    id: &str,
) -> Result<Option<WebhookEndpoint>, sqlx::Error> {
    let lock = tx.lock_no_key_clause();
    select_endpoint(tx, scope, id, lock).await
}
