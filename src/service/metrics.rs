//! The sampler's step (`jobs::metrics`): reads the figures behind the gauges and sets
//! them on the store's metrics.

use crate::error::ApiResult;
use crate::metrics::{AWAITING, Sample};
use crate::store::{self, Store, gauges};

/// Reads the backlogs and the review queue at `now` (two statements on one pooled
/// connection, no transaction; the queue's along `claims_people_queue_idx`) and sets
/// the gauges.
pub async fn sample(store: &Store, now: i64) -> ApiResult<Sample> {
    let (backlog, waiting) = store
        .run(async |conn| {
            Ok::<_, sqlx::Error>((gauges::backlog(conn).await?, store::claims::queue_counts(conn, now).await?))
        })
        .await?;
    let mut sample = Sample {
        claims_to_review: backlog.claims_to_review,
        payouts_to_settle: backlog.payouts_to_settle,
        webhooks_pending: backlog.webhooks_pending,
        ..Sample::default()
    };
    for (awaiting, count, overdue) in &waiting {
        // Only the known states have a series: the labels stay a fixed list.
        if let Some(i) = AWAITING.iter().position(|a| a == awaiting) {
            sample.review_queue[i] += count;
        }
        sample.review_overdue += overdue;
    }
    store.metrics().set_sample(&sample);
    store.metrics().upkeep();
    Ok(sample)
}
