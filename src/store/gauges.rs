//! The queries behind the metrics' gauges (`service::metrics::sample`): whole-database
//! figures, across accounts and modes. The sampler runs them every few seconds, never
//! a scrape; each counts along an index (`claims_people_queue_idx`,
//! `payouts_status_idx`, `webhook_deliveries_pending_idx`).

use sqlx::Row;

use super::Conn;

/// The work waiting for the background loops.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backlog {
    /// Claims under review that wait for the engine's automated review.
    pub claims_to_review: i64,
    /// Payouts not yet settled by the rail.
    pub payouts_to_settle: i64,
    /// Webhook deliveries still to be attempted (again).
    pub webhooks_pending: i64,
}

pub async fn backlog(conn: &mut Conn) -> Result<Backlog, sqlx::Error> {
    let row = sqlx::query(
        "SELECT \
           (SELECT COUNT(*) FROM claims WHERE status = 'under_review' AND awaiting_operator = $1) AS claims, \
           (SELECT COUNT(*) FROM payouts WHERE status = 'pending') AS payouts, \
           (SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'pending') AS deliveries",
    )
    .bind(false)
    .fetch_one(&mut *conn)
    .await?;
    Ok(Backlog {
        claims_to_review: row.try_get("claims")?,
        payouts_to_settle: row.try_get("payouts")?,
        webhooks_pending: row.try_get("deliveries")?,
    })
}
