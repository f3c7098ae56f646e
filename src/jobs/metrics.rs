//! The metrics sampler: every few seconds, the figures that need a query (the
//! engine's backlog, the review queue, pending webhooks) are read once and set on
//! the store's gauges, so that a scrape only renders what is there. Its step is
//! `service::metrics::sample`.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::{Progress, Worker};
use crate::clock::Clock;
use crate::error::ApiResult;
use crate::metrics::Sample;
use crate::store::Store;

/// How often the gauges are read by default.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct MetricsSampler {
    store: Store,
    clock: Arc<dyn Clock>,
    every: Duration,
    /// Nothing wakes the sampler early; the loop needs one all the same.
    wakeup: Arc<Notify>,
}

impl MetricsSampler {
    pub fn new(store: Store, clock: Arc<dyn Clock>, every: Duration) -> Self {
        MetricsSampler { store, clock, every, wakeup: Arc::new(Notify::new()) }
    }

    /// Reads the figures now and sets the gauges: one step, for tests.
    pub async fn run_once(&self) -> ApiResult<Sample> {
        crate::service::metrics::sample(&self.store, self.clock.now()).await
    }

    /// Samples until `cancel` fires (see [`super::run`]).
    pub async fn run(self, cancel: CancellationToken) {
        tracing::debug!(every_ms = self.every.as_millis() as u64, "metrics sampler started");
        super::run(self, cancel).await;
    }
}

impl Worker for MetricsSampler {
    fn name(&self) -> &'static str {
        "metrics sampler"
    }

    fn store(&self) -> &Store {
        &self.store
    }

    fn poll_interval(&self) -> Duration {
        self.every
    }

    fn wakeup(&self) -> &Notify {
        &self.wakeup
    }

    async fn step(&self, _background: &mut JoinSet<()>) -> ApiResult<Progress> {
        self.run_once().await?;
        Ok(Progress::CaughtUp)
    }
}
