//! The webhook dispatcher's steps: take due deliveries from the outbox with a lease,
//! attempt each (the signed POST is `webhooks::sender`'s), and record the attempt and
//! what comes next. `jobs::dispatcher` runs them, as many at once as it has slots.
//!
//! Leases are rows, not memory: a delivery is taken by raising its fencing token and
//! setting `leased_until`; the result is written only if the token is still the one
//! taken. A dispatcher that dies mid-attempt leaves the lease to expire, and another
//! takes the delivery then; a late result from the dead one can no longer land.
//!
//! Tenants share the dispatcher: an account (in one mode) has at most `per_account`
//! attempts in flight, so its slow endpoints cannot take every slot, and each lease
//! gives every account with due deliveries a turn before any account a second one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rand::Rng;

use super::{Call, record_update};
use crate::clock::Clock;
use crate::domain::event::{Event, EventType};
use crate::domain::webhook::{
    AttemptResult, DISABLE_AFTER_FAILING, DeliveryStatus, EndpointStatus, WebhookAttempt, WebhookEndpoint, classify,
    next_attempt_at, storable_text,
};
use crate::error::{ApiError, ApiResult};
use crate::ids::Kind;
use crate::metrics::AttemptOutcome;
use crate::store::webhooks::{LeaseCaps, LeasedDelivery};
use crate::store::{self, Backend, Scope, Store};
use crate::webhooks::sender::{Outcome, Sender};

/// How deliveries are leased: the fairness caps and how long a lease lasts.
#[derive(Debug, Clone, Copy)]
pub struct LeaseConfig {
    /// Most attempts in flight to one endpoint.
    pub per_endpoint: usize,
    /// Most attempts in flight for one account in one mode.
    pub per_account: usize,
    /// How long a lease lasts, in clock seconds: longer than an attempt can take.
    pub lease_seconds: i64,
}

/// A leased delivery and what it sends, read when it was leased: `None` when the
/// endpoint was deleted or the event has expired since the delivery was queued.
pub struct Job {
    pub delivery: LeasedDelivery,
    send: Option<(WebhookEndpoint, Event)>,
}

/// Attempts in flight, per endpoint and per account and mode, to skip busy ones when
/// leasing.
#[derive(Debug, Clone, Default)]
struct Busy {
    endpoints: HashMap<String, usize>,
    accounts: HashMap<(String, bool), usize>,
}

impl Busy {
    fn add(&mut self, d: &LeasedDelivery, delta: isize) {
        fn bump<K: std::hash::Hash + Eq + Clone>(map: &mut HashMap<K, usize>, key: K, delta: isize) {
            let n = map.entry(key.clone()).or_default();
            *n = n.saturating_add_signed(delta);
            if *n == 0 {
                map.remove(&key);
            }
        }
        bump(&mut self.endpoints, d.endpoint_id.clone(), delta);
        bump(&mut self.accounts, account_key(&d.scope), delta);
    }

    fn endpoint(&self, d: &LeasedDelivery) -> usize {
        self.endpoints.get(&d.endpoint_id).copied().unwrap_or(0)
    }

    fn account(&self, d: &LeasedDelivery) -> usize {
        self.accounts.get(&account_key(&d.scope)).copied().unwrap_or(0)
    }
}

fn account_key(scope: &Scope) -> (String, bool) {
    (scope.account_id.clone(), scope.livemode)
}

/// The delivery steps and what they share: the store, the clock, the sender, the
/// lease rules and the attempts in flight. Cheap to clone.
#[derive(Clone)]
pub struct Deliveries {
    store: Store,
    clock: Arc<dyn Clock>,
    sender: Sender,
    config: LeaseConfig,
    busy: Arc<Mutex<Busy>>,
}

impl Deliveries {
    pub fn new(store: Store, clock: Arc<dyn Clock>, sender: Sender, mut config: LeaseConfig) -> Self {
        // A cap of zero would lease nothing, ever.
        config.per_endpoint = config.per_endpoint.max(1);
        config.per_account = config.per_account.max(1);
        Deliveries { store, clock, sender, config, busy: Arc::default() }
    }

    /// Leases what can start now: up to `free` (the free slots), and no more to one
    /// endpoint or one account than its free share of `per_endpoint` or `per_account`.
    /// The endpoints and events to send are read in the lease's transaction, one query
    /// each for the batch.
    pub async fn lease(&self, free: usize) -> ApiResult<Vec<Job>> {
        if free == 0 {
            return Ok(Vec::new());
        }
        let (endpoints, accounts) = {
            let busy = self.busy.lock().expect("busy map");
            let endpoints: Vec<(String, i64)> = busy.endpoints.iter().map(|(e, n)| (e.clone(), *n as i64)).collect();
            let accounts: Vec<(Scope, i64)> = busy
                .accounts
                .iter()
                .map(|((account_id, livemode), n)| {
                    (Scope { account_id: account_id.clone(), livemode: *livemode }, *n as i64)
                })
                .collect();
            (endpoints, accounts)
        };
        let now = self.clock.now();
        let mut tx = self.store.begin().await?;
        let caps = LeaseCaps {
            limit: free as i64,
            per_endpoint: self.config.per_endpoint as i64,
            per_account: self.config.per_account as i64,
            endpoints_in_flight: &endpoints,
            accounts_in_flight: &accounts,
        };
        let leased = store::webhooks::lease_due(&mut tx, now, now + self.config.lease_seconds, &caps).await?;
        // The lease kept to each endpoint's and account's free share as counted above.
        // Should attempts have started since (two `run_once` on one dispatcher), keep what
        // still fits and give the rest back at once rather than hold it until the lease
        // runs out.
        let mut counts = self.busy.lock().expect("busy map").clone();
        let (mut keep, mut release) = (Vec::with_capacity(leased.len()), Vec::new());
        for d in leased {
            if counts.endpoint(&d) < self.config.per_endpoint && counts.account(&d) < self.config.per_account {
                counts.add(&d, 1);
                keep.push(d);
            } else {
                release.push(d);
            }
        }
        let ids = |f: fn(&LeasedDelivery) -> &str| keep.iter().map(f).collect::<Vec<_>>();
        let endpoints = store::webhooks::get_endpoints_any(&mut tx, &ids(|d| &d.endpoint_id)).await?;
        let events = store::events::get_many_any(&mut tx, &ids(|d| &d.event_id)).await?;
        tx.commit().await?;
        for d in &release {
            self.give_back(d).await;
        }
        Ok(keep
            .into_iter()
            .map(|d| {
                let send = endpoints.get(&d.endpoint_id).cloned().zip(events.get(&d.event_id).cloned());
                Job { delivery: d, send }
            })
            .collect())
    }

    /// Gives a lease back at once rather than hold it until it runs out.
    pub async fn give_back(&self, d: &LeasedDelivery) {
        let released = self.store.run(async |conn| store::webhooks::release_lease(conn, d).await);
        if let Err(e) = released.await {
            tracing::warn!(error = %e, delivery = %d.id, "could not give a lease back; it will expire");
        }
    }

    /// Counts an attempt in (1) or out (-1) of the attempts in flight.
    pub fn mark_busy(&self, d: &LeasedDelivery, delta: isize) {
        self.busy.lock().expect("busy map").add(d, delta);
    }

    /// One attempt of one delivery, and its record.
    pub async fn attempt(&self, job: Job) -> ApiResult<()> {
        let d = job.delivery;
        let (endpoint, event) = match job.send {
            Some((endpoint, event)) if endpoint.status == EndpointStatus::Enabled => (endpoint, event),
            // The endpoint was deleted or disabled, or the event expired: nothing left to send.
            _ => {
                let now = self.clock.now();
                self.store
                    .run(async |conn| {
                        store::webhooks::finish_delivery(conn, &d, DeliveryStatus::Failed, d.attempts, now).await
                    })
                    .await?;
                return Ok(());
            }
        };
        if endpoint.rate_limit.is_some() {
            let now = self.clock.now();
            let deferred = self
                .store
                .run(async |conn| {
                    if store::webhooks::take_rate_slot(conn, &endpoint.id, now).await? {
                        return Ok::<_, sqlx::Error>(false);
                    }
                    // This second's deliveries to the endpoint are used up: the next second,
                    // without counting an attempt.
                    store::webhooks::defer_delivery(conn, &d, now + 1).await?;
                    Ok(true)
                })
                .await?;
            if deferred {
                return Ok(());
            }
        }
        let body = serde_json::to_vec(&crate::views::EventView::from(&event)).map_err(|e| ApiError::internal(e))?;
        let outcome = self.sender.send(&endpoint, &event.id, self.clock.now(), body).await;
        self.store.metrics().webhook_attempt(AttemptOutcome::of(outcome.status_code));
        self.record(&d, endpoint.signing.failing_since, outcome).await
    }

    /// Records the attempt and its consequences, if the lease holds. What the receiver
    /// sent back is made storable first; should the store refuse the record anyway (any
    /// error), the attempt is recorded again without the answer, as a failure, so that
    /// it still counts towards the retry schedule, the attempt cap and the failure
    /// streak instead of leaving the delivery to be sent again when its lease lapses.
    async fn record(&self, d: &LeasedDelivery, failing_since: Option<i64>, outcome: Outcome) -> ApiResult<()> {
        let now = self.clock.now();
        let result = classify(outcome.status_code, outcome.retry_after.as_deref());
        let attempt = WebhookAttempt {
            id: Kind::WebhookAttempt.new_id(),
            event: d.event_id.clone(),
            webhook_endpoint: d.endpoint_id.clone(),
            status_code: outcome.status_code.map(i64::from),
            latency_ms: outcome.latency_ms,
            error: outcome.error.as_deref().map(storable_text),
            response_body: outcome.response_body.as_deref().map(storable_text),
            livemode: d.scope.livemode,
            created: now,
        };
        let Err(e) = self.write_attempt(d, failing_since, &attempt, result, now).await else {
            return Ok(());
        };
        // Deleted meanwhile (its endpoint deleted: the attempt's foreign key fails; or the
        // test data reset): nothing is left to record or to retry.
        if self.deleted(d).await {
            tracing::debug!(error = %e, delivery = %d.id, "delivery deleted while it was attempted; result dropped");
            return Ok(());
        }
        tracing::error!(error = %e, delivery = %d.id, "could not record a webhook attempt; recording it as failed, without the answer");
        // Fixed words, not the database's: the attempts log is shown to the account.
        let what = match outcome.status_code {
            Some(s) => format!("the answer (HTTP {s})"),
            None => "the outcome".to_owned(),
        };
        let fallback = WebhookAttempt {
            id: Kind::WebhookAttempt.new_id(),
            status_code: None,
            error: Some(format!("could not record attempt: {what} could not be stored, so it counts as failed")),
            response_body: None,
            ..attempt
        };
        self.write_attempt(d, failing_since, &fallback, AttemptResult::Failed { retry_after: None }, now).await
    }

    /// Writes an attempt and its consequences in one transaction, if the lease holds.
    async fn write_attempt(
        &self,
        d: &LeasedDelivery,
        failing_since: Option<i64>,
        attempt: &WebhookAttempt,
        result: AttemptResult,
        now: i64,
    ) -> ApiResult<()> {
        let attempts = d.attempts + 1;
        let (status, next) = match result {
            AttemptResult::Delivered => (DeliveryStatus::Succeeded, now),
            AttemptResult::Gone => (DeliveryStatus::Failed, now),
            AttemptResult::Failed { retry_after } => {
                let jitter = rand::rng().random_range(-1.0..=1.0);
                match next_attempt_at(attempts, now, retry_after, jitter) {
                    Some(at) => (DeliveryStatus::Pending, at),
                    None => (DeliveryStatus::Failed, now),
                }
            }
        };
        let delivered = result == AttemptResult::Delivered;
        // The endpoint row is only locked when it changes: a success that ends no
        // failure streak (the usual case) leaves it alone, so attempts to one
        // endpoint are recorded in parallel, and on PostgreSQL in one statement each.
        let endpoint_changes = !delivered || failing_since.is_some();
        if !endpoint_changes && self.store.backend() == Backend::Postgres {
            if !self.store.run(async |conn| store::webhooks::record_delivered(conn, d, attempt).await).await? {
                self.dropped(d).await;
            }
            return Ok(());
        }
        let mut tx = self.store.begin().await?;
        store::webhooks::insert_attempt(&mut tx, &d.scope, &d.id, attempt).await?;
        if !store::webhooks::finish_delivery(&mut tx, d, status, attempts, next).await? {
            // Another dispatcher holds the delivery now (or it was failed with its
            // disabled endpoint, or deleted): this result is stale.
            drop(tx);
            self.dropped(d).await;
            return Ok(());
        }
        if delivered {
            store::webhooks::adjust_pending_webhooks(&mut tx, &d.event_id, -1).await?;
        }
        if endpoint_changes {
            self.update_endpoint_health(&mut tx, d, result, now).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Whether the delivery was deleted since it was leased (a reset of the test data,
    /// its endpoint or event deleted). A store that cannot tell says no.
    async fn deleted(&self, d: &LeasedDelivery) -> bool {
        let exists = self.store.run(async |conn| store::webhooks::delivery_exists(conn, &d.id).await);
        matches!(exists.await, Ok(false))
    }

    /// Says why an attempt's result was not recorded: the delivery was deleted (quietly:
    /// nothing is wrong), or its lease was lost.
    async fn dropped(&self, d: &LeasedDelivery) {
        if self.deleted(d).await {
            tracing::debug!(delivery = %d.id, "delivery deleted while it was attempted; result dropped");
        } else {
            tracing::warn!(delivery = %d.id, "lease lost before the attempt was recorded; result dropped");
        }
    }

    /// Starts or ends the endpoint's failure streak, and disables it on a 410 or
    /// after five days of failures.
    async fn update_endpoint_health(
        &self,
        tx: &mut store::Tx,
        d: &LeasedDelivery,
        result: AttemptResult,
        now: i64,
    ) -> ApiResult<()> {
        let Some(mut endpoint) = store::webhooks::get_endpoint_for_change(tx, &d.scope, &d.endpoint_id).await? else {
            return Ok(());
        };
        let before = endpoint.clone();
        let disable = match result {
            AttemptResult::Delivered => {
                endpoint.signing.failing_since = None;
                false
            }
            AttemptResult::Gone => true,
            AttemptResult::Failed { .. } => {
                let since = *endpoint.signing.failing_since.get_or_insert(now);
                now - since >= DISABLE_AFTER_FAILING
            }
        };
        if disable && endpoint.status == EndpointStatus::Enabled {
            endpoint.status = EndpointStatus::Disabled;
            store::webhooks::update_endpoint(tx, &d.scope, &endpoint).await?;
            store::webhooks::fail_pending_for_endpoint(tx, &endpoint.id).await?;
            let call = Call::job(d.scope.clone(), now);
            record_update(tx, &call, EventType::WebhookEndpointDisabled, &before, &endpoint).await?;
            tracing::warn!(endpoint = %endpoint.id, ?result, "webhook endpoint disabled");
        } else if endpoint.signing.failing_since != before.signing.failing_since {
            store::webhooks::update_endpoint(tx, &d.scope, &endpoint).await?;
        }
        Ok(())
    }
}
