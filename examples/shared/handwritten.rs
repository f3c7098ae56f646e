//! The hand-written service's transactions (`../shared/ceiling/*.sql`, pgbench scripts of
//! what a careful engineer would send per request), ported to this schema with their
//! statements kept one for one, over sqlx's PostgreSQL driver with prepared statements
//! (as `pgbench -M prepared`). Their round trips: create guarantee 4 (BEGIN, INSERT the
//! guarantee, INSERT its event, COMMIT), retrieve 1, list 1, create claim 7 (BEGIN, lock
//! the guarantee, INSERT the claim, count it on the guarantee, INSERT its event, INSERT a
//! delivery, COMMIT). The benchmark runs them in its own process (the hand-written
//! ceiling) and `examples/floor.rs` serves them over HTTP (the floor).

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use sqlx::postgres::PgRow;
use sqlx::{Connection, PgConnection, Row};

pub const ROUND_TRIPS: [(&str, u64); 4] =
    [("create guarantee", 4), ("retrieve guarantee", 1), ("list guarantees", 1), ("create claim", 7)];

const GUARANTEE_COLUMNS: &str = "id, account_id, policy_id, tenant_id, coverage_amount, total_coverage, currency, \
    start_date, end_date, status, claims_filed, claims_paid, metadata, created";

/// The endpoint the create-claim script's delivery goes to: disabled, so that the
/// server's dispatcher leaves its deliveries alone (they are written as failed).
pub const SINK_ENDPOINT: &str = "we_handwritten_sink";

/// One connection per client, as pgbench holds them: sqlx's pool pings each
/// connection it takes back (one more round trip per request), which pgbench does not.
pub struct Connections {
    url: String,
    idle: Mutex<Vec<PgConnection>>,
}

impl Connections {
    pub async fn connect(url: &str) -> Arc<Connections> {
        let c = Arc::new(Connections { url: url.to_owned(), idle: Default::default() });
        // Checks the URL at once rather than in the first turn.
        let conn = PgConnection::connect(url).await.unwrap();
        c.idle.lock().unwrap().push(conn);
        c
    }

    async fn take(&self) -> Result<PgConnection, sqlx::Error> {
        let idle = self.idle.lock().unwrap().pop();
        match idle {
            Some(conn) => Ok(conn),
            None => PgConnection::connect(&self.url).await,
        }
    }

    fn give_back(&self, conn: PgConnection) {
        self.idle.lock().unwrap().push(conn);
    }

    pub async fn close(&self) {
        let all: Vec<_> = self.idle.lock().unwrap().drain(..).collect();
        for conn in all {
            let _ = conn.close().await;
        }
    }

    /// Runs `op` on a connection of the stash; a connection left mid-transaction by an
    /// error is closed rather than reused.
    pub async fn with<T>(
        &self,
        op: impl AsyncFnOnce(&mut PgConnection) -> Result<T, sqlx::Error>,
    ) -> Result<T, sqlx::Error> {
        let mut conn = self.take().await?;
        let result = op(&mut conn).await;
        if result.is_ok() {
            self.give_back(conn);
        }
        result
    }
}

/// The disabled endpoint the create-claim transaction writes its delivery for.
pub async fn prepare(pool: &Connections, account: &str, now: i64) {
    pool.with(async |conn| {
        sqlx::query(
            "INSERT INTO webhook_endpoints (id, account_id, livemode, created, url, enabled_events, status, secret, \
             metadata) VALUES ($1, $2, FALSE, $3, 'http://127.0.0.1:9/sink', '[\"claim.created\"]', 'disabled', \
             'whsec_sink', '{}') ON CONFLICT (id) DO NOTHING",
        )
        .bind(SINK_ENDPOINT)
        .bind(account)
        .bind(now)
        .execute(conn)
        .await
    })
    .await
    .unwrap();
}

fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", casapay::ids::random_secret(24))
}

/// A guarantee row as its API object.
pub fn guarantee_object(g: &PgRow) -> Value {
    json!({
        "id": g.get::<String, _>("id"), "object": "guarantee", "policy": g.get::<String, _>("policy_id"),
        "tenant": g.get::<String, _>("tenant_id"), "coverage_amount": g.get::<i64, _>("coverage_amount"),
        "total_coverage": g.get::<i64, _>("total_coverage"), "currency": g.get::<String, _>("currency"),
        "start_date": g.get::<i64, _>("start_date"), "end_date": g.get::<i64, _>("end_date"),
        "status": g.get::<String, _>("status"), "claims_filed": g.get::<i64, _>("claims_filed"),
        "claims_paid": g.get::<i64, _>("claims_paid"),
        "metadata": serde_json::from_str::<Value>(&g.get::<String, _>("metadata")).unwrap_or_default(),
        "created": g.get::<i64, _>("created"),
    })
}

/// Create guarantee: the new guarantee's object (as its event holds it).
pub async fn create_guarantee(
    conn: &mut PgConnection,
    account: &str,
    now: i64,
    policy: &str,
    tenant: &str,
    (start_date, end_date): (i64, i64),
) -> Result<Value, sqlx::Error> {
    let mut tx = conn.begin().await?;
    let g = sqlx::query(&format!(
        "INSERT INTO guarantees (id, account_id, livemode, created, status, policy_id, tenant_id, \
         coverage_amount, total_coverage, currency, start_date, end_date, metadata) \
         VALUES ($1, $2, FALSE, $3, 'active', $4, $5, 1000, 12000, 'eur', $6, $7, '{{}}') \
         RETURNING {GUARANTEE_COLUMNS}"
    ))
    .bind(new_id("gua"))
    .bind(account)
    .bind(now)
    .bind(policy)
    .bind(tenant)
    .bind(start_date)
    .bind(end_date)
    .fetch_one(&mut *tx)
    .await?;
    let object = guarantee_object(&g);
    sqlx::query(
        "INSERT INTO events (id, account_id, livemode, created, type, object) \
         VALUES ($1, $2, FALSE, $3, 'guarantee.created', $4)",
    )
    .bind(new_id("evt"))
    .bind(account)
    .bind(now)
    .bind(object.to_string())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(object)
}

/// Create claim: the new claim's object (as its event holds it).
pub async fn create_claim(
    conn: &mut PgConnection,
    account: &str,
    now: i64,
    guarantee: &str,
    invoice: &str,
    due_date: i64,
) -> Result<Value, sqlx::Error> {
    let mut tx = conn.begin().await?;
    let g = sqlx::query(
        "SELECT id, account_id, status, coverage_amount, total_coverage, claims_filed, claims_paid, end_date \
         FROM guarantees WHERE id = $1 AND account_id = $2 AND livemode = FALSE FOR UPDATE",
    )
    .bind(guarantee)
    .bind(account)
    .fetch_one(&mut *tx)
    .await?;
    let guarantee: String = g.get("id");
    // Under review and waiting for a person: the server's engine leaves it be.
    let c = sqlx::query(
        "INSERT INTO claims (id, account_id, livemode, created, guarantee_id, amount, currency, status, \
         reason, invoice_id, due_date, awaiting_operator, metadata) \
         VALUES ($1, $2, FALSE, $3, $4, 1000, 'eur', 'under_review', 'missed_payment', $5, $6, TRUE, '{}') \
         RETURNING id, created",
    )
    .bind(new_id("clm"))
    .bind(account)
    .bind(now)
    .bind(&guarantee)
    .bind(invoice)
    .bind(due_date)
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query("UPDATE guarantees SET claims_filed = claims_filed + 1 WHERE id = $1")
        .bind(&guarantee)
        .execute(&mut *tx)
        .await?;
    let object = json!({
        "object": "claim", "id": c.get::<String, _>("id"), "guarantee": guarantee, "amount": 1000,
        "currency": "eur", "status": "under_review", "reason": "missed_payment",
        "evidence": {"invoice_id": invoice, "due_date": due_date}, "created": c.get::<i64, _>("created"),
    });
    let event: String = sqlx::query_scalar(
        "INSERT INTO events (id, account_id, livemode, created, type, object) \
         VALUES ($1, $2, FALSE, $3, 'claim.created', $4) RETURNING id",
    )
    .bind(new_id("evt"))
    .bind(account)
    .bind(now)
    .bind(object.to_string())
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO webhook_deliveries (id, account_id, livemode, created, event_id, endpoint_id, status, \
         attempts, next_attempt_at) VALUES ($1, $2, FALSE, $3, $4, $5, 'failed', 0, $3)",
    )
    .bind(new_id("whd"))
    .bind(account)
    .bind(now)
    .bind(&event)
    .bind(SINK_ENDPOINT)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(object)
}

/// Retrieve guarantee: its row, if it is the account's.
pub async fn retrieve_guarantee(
    conn: &mut PgConnection,
    account: &str,
    id: &str,
) -> Result<Option<PgRow>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {GUARANTEE_COLUMNS} FROM guarantees WHERE id = $1 AND account_id = $2 AND livemode = FALSE"
    ))
    .bind(id)
    .bind(account)
    .fetch_optional(conn)
    .await
}

/// List guarantees: the account's newest `limit`.
pub async fn list_guarantees(conn: &mut PgConnection, account: &str, limit: i64) -> Result<Vec<PgRow>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {GUARANTEE_COLUMNS} FROM guarantees WHERE account_id = $1 AND livemode = FALSE \
         ORDER BY created DESC LIMIT $2"
    ))
    .bind(account)
    .bind(limit)
    .fetch_all(conn)
    .await
}
