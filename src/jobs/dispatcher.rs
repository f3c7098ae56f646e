//! The webhook dispatcher: leases due deliveries from the outbox and attempts them,
//! at most `max_in_flight` at once, each attempt starting as a slot frees up, so that
//! a slow endpoint never holds the others. The steps (leases, attempts, records, the
//! fairness caps) are in `service::delivery`; the signed POST in `webhooks::sender`.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::{Progress, Worker};
use crate::clock::Clock;
use crate::error::{ApiError, ApiResult};
use crate::service::delivery::{Deliveries, Job, LeaseConfig};
use crate::store::Store;
use crate::webhooks::sender::Sender;
use crate::webhooks::ssrf::EgressPolicy;

#[derive(Debug, Clone)]
pub struct DispatcherConfig {
    /// How often to look for due deliveries when nothing wakes the dispatcher sooner.
    pub poll_interval: Duration,
    /// Most attempts in flight at once, over all endpoints.
    pub max_in_flight: usize,
    /// Most attempts in flight to one endpoint, so that a slow one cannot hold the rest.
    pub per_endpoint: usize,
    /// Most attempts in flight for one account in one mode (test or live), so that one
    /// tenant's slow endpoints cannot hold the other tenants' deliveries (nor its test
    /// endpoints its live ones).
    pub per_account: usize,
    /// How long an attempt may take; a 2xx within it is a success.
    pub timeout: Duration,
    /// How long a lease lasts, in clock seconds: longer than an attempt can take.
    pub lease_seconds: i64,
    pub egress: EgressPolicy,
}

impl Default for DispatcherConfig {
    fn default() -> Self {
        DispatcherConfig {
            poll_interval: Duration::from_millis(250),
            max_in_flight: 64,
            per_endpoint: 4,
            // A quarter of the slots: it takes four tenants whose endpoints all hang to
            // fill them, while one tenant still has four endpoints' worth of attempts.
            per_account: 16,
            timeout: Duration::from_secs(15),
            lease_seconds: 60,
            egress: EgressPolicy::default(),
        }
    }
}

#[derive(Clone)]
pub struct Dispatcher {
    store: Store,
    deliveries: Deliveries,
    poll_interval: Duration,
    slots: Arc<Semaphore>,
    /// Committed deliveries wake the dispatcher at once instead of at its next poll.
    wakeup: Arc<Notify>,
}

impl Dispatcher {
    pub fn new(store: Store, clock: Arc<dyn Clock>, config: DispatcherConfig) -> Self {
        let lease = LeaseConfig {
            per_endpoint: config.per_endpoint,
            per_account: config.per_account,
            lease_seconds: config.lease_seconds,
        };
        let sender = Sender::new(config.egress, config.timeout);
        let deliveries = Deliveries::new(store.clone(), clock, sender, lease);
        let slots = Arc::new(Semaphore::new(config.max_in_flight.max(1)));
        let wakeup = store.outbox_signal();
        Dispatcher { store, deliveries, poll_interval: config.poll_interval, slots, wakeup }
    }

    /// Leases what the free slots can start now.
    async fn lease(&self) -> ApiResult<Vec<Job>> {
        self.deliveries.lease(self.slots.available_permits()).await
    }

    /// One attempt, holding its slot and counted in flight until it is recorded.
    fn start(&self, job: Job, permit: OwnedSemaphorePermit) -> impl Future<Output = ApiResult<()>> + Send + 'static {
        let this = self.deliveries.clone();
        this.mark_busy(&job.delivery, 1);
        async move {
            let _permit = permit;
            let delivery = job.delivery.clone();
            let result = this.attempt(job).await;
            this.mark_busy(&delivery, -1);
            result
        }
    }

    /// Leases every due delivery it can and attempts them all, waiting for the
    /// results: one step, for tests and for draining. Returns the attempts made.
    pub async fn run_once(&self) -> ApiResult<usize> {
        let mut total = 0;
        loop {
            let leased = self.lease().await?;
            if leased.is_empty() {
                return Ok(total);
            }
            total += leased.len();
            let mut set = JoinSet::new();
            for job in leased {
                let permit = self.slots.clone().acquire_owned().await.map_err(|e| ApiError::internal(e))?;
                set.spawn(self.start(job, permit));
            }
            while let Some(joined) = set.join_next().await {
                joined.map_err(|e| ApiError::internal(e))??;
            }
        }
    }

    /// Runs until `cancel` fires (see [`super::run`]): on cancel no new attempt starts
    /// and those in flight finish (each is bounded by the timeout) before this returns.
    pub async fn run(self, cancel: CancellationToken) {
        tracing::info!("webhook dispatcher started");
        super::run(self, cancel).await;
        tracing::info!("webhook dispatcher stopped");
    }
}

impl Worker for Dispatcher {
    fn name(&self) -> &'static str {
        "webhook dispatcher"
    }

    fn store(&self) -> &Store {
        &self.store
    }

    fn poll_interval(&self) -> Duration {
        self.poll_interval
    }

    fn wakeup(&self) -> &Notify {
        &self.wakeup
    }

    /// Starts what the free slots allow and leaves it running: the loop steps again
    /// when an attempt finishes, so this never reports a full batch.
    async fn step(&self, background: &mut JoinSet<()>) -> ApiResult<Progress> {
        for job in self.lease().await? {
            let Ok(permit) = self.slots.clone().try_acquire_owned() else {
                self.deliveries.give_back(&job.delivery).await;
                continue;
            };
            let id = job.delivery.id.clone();
            let attempt = self.start(job, permit);
            background.spawn(async move {
                if let Err(e) = attempt.await {
                    // Even the record without the answer failed (the database is
                    // unreachable): the delivery is tried again once its lease runs
                    // out, without this attempt on record.
                    tracing::error!(error = %e, delivery = %id,
                        "webhook attempt could not be recorded; it will be sent again when its lease expires");
                }
            });
        }
        Ok(Progress::CaughtUp)
    }
}
