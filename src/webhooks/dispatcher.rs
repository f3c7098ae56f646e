//! The webhook dispatcher: takes due deliveries from the outbox with a lease, POSTs
//! the event to the endpoint, and records the attempt and what comes next.
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
use std::time::{Duration, Instant};

use rand::Rng;
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::signing::signature_headers;
use super::ssrf::{EgressPolicy, check_url};
use crate::clock::Clock;
use crate::domain::event::{Event, EventType};
use crate::domain::webhook::{
    AttemptResult, DISABLE_AFTER_FAILING, DeliveryStatus, EndpointStatus, RESPONSE_BODY_LIMIT, WebhookAttempt,
    WebhookEndpoint, classify, next_attempt_at, storable_text,
};
use crate::error::{ApiError, ApiResult};
use crate::ids::Kind;
use crate::service::{Call, record_update};
use crate::store::webhooks::{LeaseCaps, LeasedDelivery};
use crate::store::{self, Backend, Scope, Store};

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

/// A leased delivery and what it sends, read when it was leased: `None` when the
/// endpoint was deleted or the event has expired since the delivery was queued.
struct Job {
    delivery: LeasedDelivery,
    send: Option<(WebhookEndpoint, Event)>,
}

/// What one attempt came to, before it is written down.
struct Outcome {
    status_code: Option<u16>,
    retry_after: Option<String>,
    latency_ms: i64,
    error: Option<String>,
    response_body: Option<String>,
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

#[derive(Clone)]
pub struct Dispatcher {
    store: Store,
    clock: Arc<dyn Clock>,
    client: reqwest::Client,
    config: Arc<DispatcherConfig>,
    busy: Arc<Mutex<Busy>>,
    slots: Arc<Semaphore>,
}

impl Dispatcher {
    pub fn new(store: Store, clock: Arc<dyn Clock>, mut config: DispatcherConfig) -> Self {
        // A cap of zero would lease nothing, ever.
        config.per_endpoint = config.per_endpoint.max(1);
        config.per_account = config.per_account.max(1);
        let client = super::ssrf::client(config.egress, config.timeout);
        let slots = Arc::new(Semaphore::new(config.max_in_flight.max(1)));
        Dispatcher { store, clock, client, config: Arc::new(config), busy: Arc::default(), slots }
    }

    /// Leases what can start now: up to the free slots, and no more to one endpoint or
    /// one account than its free share of `per_endpoint` or `per_account`. The endpoints
    /// and events to send are read in the lease's transaction, one query each for the batch.
    async fn lease(&self) -> ApiResult<Vec<Job>> {
        let free = self.slots.available_permits();
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
                let this = self.clone();
                let permit = self.slots.clone().acquire_owned().await.map_err(|e| ApiError::internal(e))?;
                this.mark_busy(&job.delivery, 1);
                set.spawn(async move {
                    let _permit = permit;
                    let delivery = job.delivery.clone();
                    let result = this.attempt(job).await;
                    this.mark_busy(&delivery, -1);
                    result
                });
            }
            while let Some(joined) = set.join_next().await {
                joined.map_err(|e| ApiError::internal(e))??;
            }
        }
    }

    async fn give_back(&self, d: &LeasedDelivery) {
        let released = async {
            let mut conn = self.store.acquire().await?;
            store::webhooks::release_lease(&mut conn, d).await
        };
        if let Err(e) = released.await {
            tracing::warn!(error = %e, delivery = %d.id, "could not give a lease back; it will expire");
        }
    }

    fn mark_busy(&self, d: &LeasedDelivery, delta: isize) {
        self.busy.lock().expect("busy map").add(d, delta);
    }

    /// Runs until `cancel` fires. Attempts start as slots free up, so a slow endpoint
    /// never holds the others; on cancel no new attempt starts and those in flight
    /// finish (each is bounded by the timeout) before this returns.
    pub async fn run(self, cancel: CancellationToken) {
        let wake = self.store.outbox_signal();
        let mut set: JoinSet<()> = JoinSet::new();
        tracing::info!("webhook dispatcher started");
        loop {
            if cancel.is_cancelled() {
                break;
            }
            match self.lease().await {
                Ok(leased) => {
                    for job in leased {
                        let Ok(permit) = self.slots.clone().try_acquire_owned() else {
                            self.give_back(&job.delivery).await;
                            continue;
                        };
                        let this = self.clone();
                        this.mark_busy(&job.delivery, 1);
                        set.spawn(async move {
                            let _permit = permit;
                            let delivery = job.delivery.clone();
                            if let Err(e) = this.attempt(job).await {
                                // Even the record without the answer failed (the database
                                // is unreachable): the delivery is tried again once its
                                // lease runs out, without this attempt on record.
                                tracing::error!(error = %e, delivery = %delivery.id,
                                    "webhook attempt could not be recorded; it will be sent again when its lease expires");
                            }
                            this.mark_busy(&delivery, -1);
                        });
                    }
                }
                Err(e) => {
                    if e.is_connection_lost() {
                        self.store.note_connection_lost();
                    }
                    tracing::warn!(error = %e, "leasing webhook deliveries failed")
                }
            }
            wait_for_work(&cancel, &wake, &mut set, self.config.poll_interval).await;
        }
        while set.join_next().await.is_some() {}
        tracing::info!("webhook dispatcher stopped");
    }

    /// One attempt of one delivery, and its record.
    async fn attempt(&self, job: Job) -> ApiResult<()> {
        let d = job.delivery;
        let (endpoint, event) = match job.send {
            Some((endpoint, event)) if endpoint.status == EndpointStatus::Enabled => (endpoint, event),
            // The endpoint was deleted or disabled, or the event expired: nothing left to send.
            _ => {
                let mut conn = self.store.acquire().await?;
                store::webhooks::finish_delivery(&mut conn, &d, DeliveryStatus::Failed, d.attempts, self.clock.now())
                    .await?;
                return Ok(());
            }
        };
        let body = serde_json::to_vec(&crate::views::EventView::from(&event)).map_err(|e| ApiError::internal(e))?;
        let timestamp = self.clock.now();
        let outcome = match check_url(&endpoint.url, &self.config.egress) {
            Err(e) => Outcome {
                status_code: None,
                retry_after: None,
                latency_ms: 0,
                error: Some(e.to_string()),
                response_body: None,
            },
            Ok(url) => {
                let secrets = endpoint.signing.active_secrets(timestamp);
                let signatures = signature_headers(&secrets, &event.id, timestamp, &body);
                let request = self
                    .client
                    .post(url)
                    .header("content-type", "application/json")
                    .header("webhook-id", &event.id)
                    .header("webhook-timestamp", timestamp.to_string())
                    .header("webhook-signature", signatures.webhook_signature)
                    .header("casapay-signature", signatures.casapay_signature)
                    .body(body);
                send(request).await
            }
        };
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
            let mut conn = self.store.acquire().await?;
            if !store::webhooks::record_delivered(&mut conn, d, attempt).await? {
                tracing::warn!(delivery = %d.id, "lease lost before the attempt was recorded; result dropped");
            }
            return Ok(());
        }
        let mut tx = self.store.begin().await?;
        store::webhooks::insert_attempt(&mut tx, &d.scope, &d.id, attempt).await?;
        if !store::webhooks::finish_delivery(&mut tx, d, status, attempts, next).await? {
            // Another dispatcher holds the delivery now (or it was failed with its
            // disabled endpoint): this result is stale.
            tracing::warn!(delivery = %d.id, "lease lost before the attempt was recorded; result dropped");
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

/// Enough of a body to decode its first `RESPONSE_BODY_LIMIT` bytes whole: a character
/// that starts within them ends at most three bytes past them.
const READ_LIMIT: usize = RESPONSE_BODY_LIMIT + 3;

/// Sends one request and reads what the attempts log keeps of the answer.
async fn send(request: reqwest::RequestBuilder) -> Outcome {
    let started = Instant::now();
    match request.send().await {
        Err(e) => Outcome {
            status_code: None,
            retry_after: None,
            latency_ms: started.elapsed().as_millis() as i64,
            error: Some(describe(&e)),
            response_body: None,
        },
        Ok(mut resp) => {
            let latency_ms = started.elapsed().as_millis() as i64;
            let status = resp.status().as_u16();
            let retry_after = resp.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
            let mut body = Vec::new();
            let mut error = None;
            while body.len() < READ_LIMIT {
                match resp.chunk().await {
                    Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                    Ok(None) => break,
                    Err(e) => {
                        error = Some(describe(&e));
                        break;
                    }
                }
            }
            body.truncate(READ_LIMIT);
            // Invalid UTF-8 becomes U+FFFD here; `record` cuts the text to the limit.
            let text = String::from_utf8_lossy(&body).into_owned();
            let error = error.or_else(|| (!(200..300).contains(&status)).then(|| format!("HTTP {status}")));
            Outcome { status_code: Some(status), retry_after, latency_ms, error, response_body: Some(text) }
        }
    }
}

/// A short, secret-free description of a transport error.
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_redirect() {
        "redirect"
    } else {
        "request failed"
    };
    let mut cause = String::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        cause = s.to_string();
        source = s.source();
    }
    if cause.is_empty() { kind.to_owned() } else { format!("{kind}: {cause}") }
}

/// Waits for a reason to lease again: new work, a finished attempt (a slot is free),
/// the poll interval, or cancellation.
async fn wait_for_work(cancel: &CancellationToken, wake: &Notify, set: &mut JoinSet<()>, poll: Duration) {
    tokio::select! {
        _ = cancel.cancelled() => {}
        _ = wake.notified() => {}
        Some(_) = set.join_next(), if !set.is_empty() => {}
        _ = tokio::time::sleep(poll) => {}
    }
}
