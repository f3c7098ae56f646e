//! The sampler's step (`jobs::metrics`): reads the figures behind the gauges and sets
//! them on the store's metrics.

use crate::domain::deadline::review_due_by;
use crate::error::ApiResult;
use crate::metrics::{AWAITING, Sample};
use crate::store::{Store, gauges};

/// Reads the backlogs and the review queue at `now` (two statements on one pooled
/// connection, no transaction) and sets the gauges.
pub async fn sample(store: &Store, now: i64) -> ApiResult<Sample> {
    let mut conn = store.acquire().await?;
    let backlog = gauges::backlog(&mut conn).await?;
    let waiting = gauges::waiting_for_people(&mut conn).await?;
    drop(conn);
    let mut sample = Sample {
        claims_to_review: backlog.claims_to_review,
        payouts_to_settle: backlog.payouts_to_settle,
        webhooks_pending: backlog.webhooks_pending,
        ..Sample::default()
    };
    for claim in &waiting {
        // Only the known states have a series: the labels stay a fixed list.
        if let Some(i) = AWAITING.iter().position(|a| *a == claim.awaiting) {
            sample.review_queue[i] += 1;
        }
        if review_due_by(claim.submitted_at) < now {
            sample.review_overdue += 1;
        }
    }
    store.metrics().set_sample(&sample);
    store.metrics().upkeep();
    Ok(sample)
}
