//! The claims engine: a loop that reviews claims, sends payouts and moves guarantees
//! through their dates. Every replica may run one; the store's row claiming
//! (`FOR UPDATE SKIP LOCKED` on PostgreSQL, the single writer on SQLite, and leases
//! with a fencing token for payouts, whose rail is called outside any transaction)
//! shares the work without doing anything twice.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::{Progress, Worker};
use crate::clock::Clock;
use crate::error::ApiResult;
use crate::service::rail::PayoutRail;
use crate::service::review::{self, PayoutConfig};
use crate::store::{Backend, Store};

#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// How often the engine looks for work when nothing wakes it sooner.
    pub poll_interval: Duration,
    /// The most claims, payouts and guarantees each step handles; each kind is one
    /// transaction, so this is also how much work one commit records.
    pub batch_size: usize,
    /// How many steps `run` takes at once on PostgreSQL, where row locks let them take
    /// different batches. SQLite has one writer, so there it is always one.
    pub workers: usize,
    /// How payouts are leased and how long the rail may take.
    pub payouts: PayoutConfig,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            poll_interval: Duration::from_millis(250),
            batch_size: 100,
            workers: 2,
            payouts: PayoutConfig::default(),
        }
    }
}

/// What one step did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StepReport {
    pub guarantees_changed: usize,
    pub claims_reviewed: usize,
    pub payouts_sent: usize,
    /// Recoveries with installments newly missed (on no test clock).
    pub installments_missed: usize,
    /// Pieces of test clock advances taken (a batch of changes, or the end of one).
    pub clock_steps: usize,
}

impl StepReport {
    pub fn is_idle(&self) -> bool {
        *self == StepReport::default()
    }
}

#[derive(Clone)]
pub struct Engine {
    store: Store,
    clock: Arc<dyn Clock>,
    rail: Arc<dyn PayoutRail>,
    config: EngineConfig,
    /// Brings an idle worker in when another finds a full batch. Filing a claim does not
    /// wake the engine: between polls, claims gather into one batch and one commit.
    wakeup: Arc<Notify>,
    /// When housekeeping (event and idempotency key retention) is next due, in clock seconds.
    next_housekeeping: Arc<AtomicI64>,
}

/// How often housekeeping runs.
const HOUSEKEEPING_EVERY: i64 = 60;

impl Engine {
    pub fn new(store: Store, clock: Arc<dyn Clock>, rail: Arc<dyn PayoutRail>, config: EngineConfig) -> Self {
        let wakeup = Arc::new(Notify::new());
        Engine { store, clock, rail, config, wakeup, next_housekeeping: Arc::new(AtomicI64::new(0)) }
    }

    /// One pass: time-driven guarantee changes, then reviews, then payouts, then the
    /// recoveries' missed installments, each up to the batch size.
    pub async fn run_once(&self) -> ApiResult<StepReport> {
        let mut report = StepReport::default();
        let batch = self.config.batch_size.max(1);
        let now = self.clock.now();
        let due = self.next_housekeeping.load(Ordering::Relaxed);
        if now >= due
            && self
                .next_housekeeping
                .compare_exchange(due, now + HOUSEKEEPING_EVERY, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            let events = crate::service::events::purge_expired(&self.store, now).await?;
            let keys = crate::service::idempotency::purge_expired(&self.store, now).await?;
            let clocks = crate::service::test_clocks::purge_expired(&self.store, now, batch as i64).await?;
            if events + keys + clocks as u64 > 0 {
                tracing::info!(events, idempotency_keys = keys, test_clocks = clocks, "expired records removed");
            }
        }
        report.guarantees_changed = review::transition_guarantees(&self.store, self.clock.now(), batch as i64).await?;
        report.claims_reviewed = review::review_due(&self.store, None, self.clock.now(), batch).await?;
        report.payouts_sent =
            review::pay_due(&self.store, None, self.rail.as_ref(), self.clock.as_ref(), batch, &self.config.payouts)
                .await?;
        report.installments_missed = review::miss_due_installments(&self.store, self.clock.now(), batch as i64).await?;
        report.clock_steps = crate::service::test_clocks::advance_step(
            &self.store,
            self.rail.as_ref(),
            self.clock.as_ref(),
            batch,
            &self.config.payouts,
        )
        .await?;
        Ok(report)
    }

    /// Steps until there is nothing left to do: for tests and for draining at start.
    pub async fn run_until_idle(&self) -> ApiResult<StepReport> {
        let mut total = StepReport::default();
        // Bounded: every step that finds work changes at least one row for good.
        for _ in 0..100_000 {
            let step = self.run_once().await?;
            if step.is_idle() {
                return Ok(total);
            }
            total.guarantees_changed += step.guarantees_changed;
            total.claims_reviewed += step.claims_reviewed;
            total.payouts_sent += step.payouts_sent;
            total.installments_missed += step.installments_missed;
            total.clock_steps += step.clock_steps;
        }
        Ok(total)
    }

    /// Runs until `cancel` fires, with `workers` loops (see [`super::run`]) stepping at
    /// once. A step in progress finishes (its transaction commits or rolls back) before
    /// it stops.
    pub async fn run(self, cancel: CancellationToken) {
        let workers = match self.store.backend() {
            Backend::Postgres => self.config.workers.max(1),
            Backend::Sqlite => 1,
        };
        tracing::info!(poll_ms = self.config.poll_interval.as_millis() as u64, workers, "claims engine started");
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..workers {
            tasks.spawn(super::run(self.clone(), cancel.clone()));
        }
        while tasks.join_next().await.is_some() {}
        tracing::info!("claims engine stopped");
    }
}

impl Worker for Engine {
    fn name(&self) -> &'static str {
        "claims engine"
    }

    fn store(&self) -> &Store {
        &self.store
    }

    fn poll_interval(&self) -> Duration {
        self.config.poll_interval
    }

    fn wakeup(&self) -> &Notify {
        &self.wakeup
    }

    async fn step(&self, _background: &mut JoinSet<()>) -> ApiResult<Progress> {
        let started = std::time::Instant::now();
        let report = self.run_once().await?;
        if !report.is_idle() {
            tracing::debug!(?report, elapsed_ms = started.elapsed().as_millis() as u64, "engine step");
        }
        // A full batch of any kind means more is waiting: the loop goes again at once
        // and brings another worker in.
        let batch = self.config.batch_size.max(1);
        // A clock advance in progress is always more work: the step that ends it is a
        // step of its own.
        let full = [report.guarantees_changed, report.claims_reviewed, report.payouts_sent, report.installments_missed]
            .iter()
            .any(|n| *n >= batch)
            || report.clock_steps > 0;
        Ok(if full { Progress::Full } else { Progress::CaughtUp })
    }
}
