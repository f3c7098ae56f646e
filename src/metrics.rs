//! The process's metrics (SPEC section 8), rendered in Prometheus' text format at
//! `GET /metrics`.
//!
//! Each [`Store`](crate::store::Store) carries one [`Metrics`]: the server, the claims
//! engine and the webhook dispatcher of a process share their store, and so their
//! metrics. It is a recorder of its own rather than the `metrics` crate's global one,
//! so that every server of the test suite counts for itself.
//!
//! Every label value comes from a fixed list below or from the router's route
//! templates, never from a request: no account id, key, raw path or other unbounded
//! value can become a series. The counters and gauges of fixed labels are registered
//! up front (a dashboard sees them at zero); the request series are registered on a
//! route's first request and then found again without allocating.
//!
//! Nothing here queries the database: the gauges that need a query are set by the
//! sampler (`jobs::metrics`) every few seconds, so that a scrape costs microseconds.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use ::metrics::{Counter, Gauge, Histogram, Key, KeyName, Label, Level, Metadata, Recorder, SharedString, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

/// The `route` of requests the router matched to no route (a 404 from the fallback)
/// or never saw (what the `Idempotency-Key` layer answers before routing: a replay,
/// a mismatch, a key in use).
pub const UNMATCHED_ROUTE: &str = "unmatched";

pub const HTTP_REQUESTS: &str = "casapay_http_requests_total";
pub const HTTP_DURATION: &str = "casapay_http_request_duration_seconds";
pub const CLAIMS_REVIEWED: &str = "casapay_claims_reviewed_total";
pub const ENGINE_BACKLOG: &str = "casapay_engine_backlog";
pub const REVIEW_QUEUE: &str = "casapay_review_queue";
pub const REVIEW_OVERDUE: &str = "casapay_review_overdue";
pub const WEBHOOK_ATTEMPTS: &str = "casapay_webhook_attempts_total";
pub const WEBHOOK_PENDING: &str = "casapay_webhook_pending";
pub const DB_POOL: &str = "casapay_db_pool_connections";
pub const BUILD_INFO: &str = "casapay_build_info";

/// Upper bounds of the request duration buckets, in seconds: from a cached read
/// (about a millisecond) to the request timeout (30 s by default).
const DURATION_BUCKETS: [f64; 14] =
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// What a review decided, for `casapay_claims_reviewed_total{outcome}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewOutcome {
    Approved,
    Denied,
    /// The engine handed the claim to a person.
    Referred,
}

impl ReviewOutcome {
    const ALL: [ReviewOutcome; 3] = [ReviewOutcome::Approved, ReviewOutcome::Denied, ReviewOutcome::Referred];

    pub fn label(self) -> &'static str {
        match self {
            ReviewOutcome::Approved => "approved",
            ReviewOutcome::Denied => "denied",
            ReviewOutcome::Referred => "referred",
        }
    }
}

/// How a webhook attempt ended, for `casapay_webhook_attempts_total{outcome}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// A 2xx.
    Delivered,
    /// An answer other than a 2xx.
    Rejected,
    /// No answer: timeout, connection refused or reset, TLS, a refused address.
    NoResponse,
}

impl AttemptOutcome {
    const ALL: [AttemptOutcome; 3] = [AttemptOutcome::Delivered, AttemptOutcome::Rejected, AttemptOutcome::NoResponse];

    /// The outcome of an attempt that got `status` (none: no answer).
    pub fn of(status: Option<u16>) -> Self {
        match status {
            Some(s) if (200..300).contains(&s) => AttemptOutcome::Delivered,
            Some(_) => AttemptOutcome::Rejected,
            None => AttemptOutcome::NoResponse,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            AttemptOutcome::Delivered => "delivered",
            AttemptOutcome::Rejected => "rejected",
            AttemptOutcome::NoResponse => "no_response",
        }
    }
}

/// What the claims in `casapay_review_queue` wait for. `operator`: a decision;
/// `second_approval` and `evidence` (SPEC section 4) are reported as 0 until the
/// store knows those states.
pub const AWAITING: [&str; 3] = ["operator", "second_approval", "evidence"];

/// The methods with a label of their own; any other is `other`.
const METHODS: [&str; 9] = ["GET", "POST", "DELETE", "PUT", "PATCH", "HEAD", "OPTIONS", "TRACE", "CONNECT"];

/// The figures the sampler reads from the database.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sample {
    /// Claims waiting for the engine's automated review.
    pub claims_to_review: i64,
    /// Payouts waiting to be sent or settled.
    pub payouts_to_settle: i64,
    /// Webhook deliveries not yet delivered nor failed for good.
    pub webhooks_pending: i64,
    /// Claims waiting for a person, per [`AWAITING`] entry (same order).
    pub review_queue: [i64; AWAITING.len()],
    /// Of those, the claims past their review deadline.
    pub review_overdue: i64,
}

/// The metrics of a process, or nothing (`CASAPAY_METRICS=off`), in which case every
/// call is a no-op. Cheap to clone.
#[derive(Clone)]
pub struct Metrics(Option<Arc<Registry>>);

struct Registry {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    claims_reviewed: [Counter; ReviewOutcome::ALL.len()],
    webhook_attempts: [Counter; AttemptOutcome::ALL.len()],
    backlog_review: Gauge,
    backlog_payouts: Gauge,
    review_queue: [Gauge; AWAITING.len()],
    review_overdue: Gauge,
    webhook_pending: Gauge,
    pool_idle: Gauge,
    pool_in_use: Gauge,
    /// The request series, per route template: a short list of (method, status) each.
    http: RwLock<HashMap<Box<str>, Vec<HttpSeries>>>,
}

struct HttpSeries {
    method: &'static str,
    status: u16,
    requests: Counter,
    duration: Histogram,
}

const METADATA: Metadata<'static> = Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

fn key(name: &'static str, labels: &[(&'static str, SharedString)]) -> Key {
    Key::from_parts(name, labels.iter().map(|(k, v)| Label::new(*k, v.clone())).collect::<Vec<_>>())
}

impl Default for Metrics {
    /// On: [`Metrics::new`].
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// A fresh set of metrics, every fixed series registered (at zero).
    pub fn new() -> Self {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(HTTP_DURATION.into()), &DURATION_BUCKETS)
            .expect("the buckets are not empty")
            .build_recorder();
        let handle = recorder.handle();
        describe(&recorder);
        let r = &recorder;
        let counter = |name, labels: &[(&'static str, SharedString)]| r.register_counter(&key(name, labels), &METADATA);
        let gauge = |name, labels: &[(&'static str, SharedString)]| r.register_gauge(&key(name, labels), &METADATA);
        let claims_reviewed = ReviewOutcome::ALL.map(|o| counter(CLAIMS_REVIEWED, &[("outcome", o.label().into())]));
        let webhook_attempts = AttemptOutcome::ALL.map(|o| counter(WEBHOOK_ATTEMPTS, &[("outcome", o.label().into())]));
        for c in claims_reviewed.iter().chain(&webhook_attempts) {
            c.absolute(0);
        }
        gauge(BUILD_INFO, &[("version", env!("CARGO_PKG_VERSION").into())]).set(1.0);
        let registry = Registry {
            backlog_review: gauge(ENGINE_BACKLOG, &[("queue", "review".into())]),
            backlog_payouts: gauge(ENGINE_BACKLOG, &[("queue", "payouts".into())]),
            review_queue: AWAITING.map(|a| gauge(REVIEW_QUEUE, &[("awaiting", a.into())])),
            review_overdue: gauge(REVIEW_OVERDUE, &[]),
            webhook_pending: gauge(WEBHOOK_PENDING, &[]),
            pool_idle: gauge(DB_POOL, &[("state", "idle".into())]),
            pool_in_use: gauge(DB_POOL, &[("state", "in_use".into())]),
            claims_reviewed,
            webhook_attempts,
            http: RwLock::default(),
            handle,
            recorder,
        };
        for g in
            [&registry.backlog_review, &registry.backlog_payouts, &registry.review_overdue, &registry.webhook_pending]
                .into_iter()
                .chain(&registry.review_queue)
        {
            g.set(0.0);
        }
        Metrics(Some(Arc::new(registry)))
    }

    /// No metrics: every call does nothing, and there is nothing to render.
    pub fn off() -> Self {
        Metrics(None)
    }

    pub fn is_on(&self) -> bool {
        self.0.is_some()
    }

    /// The exposition text, or `None` when off.
    pub fn render(&self) -> Option<String> {
        self.0.as_ref().map(|r| r.handle.render())
    }

    /// Folds the recorded request durations into their buckets, so that their memory
    /// stays flat between scrapes (and when nothing scrapes).
    pub fn upkeep(&self) {
        if let Some(r) = &self.0 {
            r.handle.run_upkeep();
        }
    }

    /// Counts one answered request. `route` is the route template (or
    /// [`UNMATCHED_ROUTE`]). Allocates only for the first request of a route, method
    /// and status.
    pub fn http_request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let Some(r) = &self.0 else { return };
        let method = METHODS.into_iter().find(|m| *m == method).unwrap_or("other");
        let found = |series: &HttpSeries| series.method == method && series.status == status;
        {
            let http = r.http.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(series) = http.get(route).and_then(|all| all.iter().find(|s| found(s))) {
                series.requests.increment(1);
                series.duration.record(seconds);
                return;
            }
        }
        let mut http = r.http.write().unwrap_or_else(PoisonError::into_inner);
        let all = http.entry(route.into()).or_default();
        let index = match all.iter().position(found) {
            Some(i) => i,
            None => {
                let route: SharedString = route.to_owned().into();
                let requests = key(
                    HTTP_REQUESTS,
                    &[("method", method.into()), ("route", route.clone()), ("status", status.to_string().into())],
                );
                let duration = key(HTTP_DURATION, &[("method", method.into()), ("route", route)]);
                all.push(HttpSeries {
                    method,
                    status,
                    requests: r.recorder.register_counter(&requests, &METADATA),
                    duration: r.recorder.register_histogram(&duration, &METADATA),
                });
                all.len() - 1
            }
        };
        all[index].requests.increment(1);
        all[index].duration.record(seconds);
    }

    /// The counter of reviews with `outcome` (a no-op counter when off): counted by
    /// the transaction that decides, once it commits (`Tx::count_on_commit`).
    pub fn claims_reviewed(&self, outcome: ReviewOutcome) -> Counter {
        match &self.0 {
            Some(r) => r.claims_reviewed[outcome as usize].clone(),
            None => Counter::noop(),
        }
    }

    pub fn webhook_attempt(&self, outcome: AttemptOutcome) {
        if let Some(r) = &self.0 {
            r.webhook_attempts[outcome as usize].increment(1);
        }
    }

    /// The connections of the store's pool, read at each scrape (no query: the pool
    /// counts them).
    pub fn set_pool(&self, in_use: usize, idle: usize) {
        if let Some(r) = &self.0 {
            r.pool_in_use.set(in_use as f64);
            r.pool_idle.set(idle as f64);
        }
    }

    /// The sampler's figures.
    pub fn set_sample(&self, s: &Sample) {
        let Some(r) = &self.0 else { return };
        r.backlog_review.set(s.claims_to_review as f64);
        r.backlog_payouts.set(s.payouts_to_settle as f64);
        r.webhook_pending.set(s.webhooks_pending as f64);
        for (gauge, n) in r.review_queue.iter().zip(s.review_queue) {
            gauge.set(n as f64);
        }
        r.review_overdue.set(s.review_overdue as f64);
    }
}

/// The HELP lines.
fn describe(r: &PrometheusRecorder) {
    let d = |name: &'static str, unit: Option<Unit>, help: &'static str| (KeyName::from_const_str(name), unit, help);
    for (name, unit, help) in [
        d(HTTP_REQUESTS, None, "Requests answered, by method, route template and status."),
        d(HTTP_DURATION, Some(Unit::Seconds), "Time to answer a request, by method and route template."),
        d(CLAIMS_REVIEWED, None, "Claims reviewed: approved, denied, or referred by the engine to a person."),
        d(WEBHOOK_ATTEMPTS, None, "Webhook delivery attempts: delivered (2xx), rejected (other answer), no_response."),
    ] {
        r.describe_counter(name, unit, help.into());
    }
    for (name, help) in [
        (ENGINE_BACKLOG, "Work waiting for the claims engine: claims to review, payouts to settle."),
        (REVIEW_QUEUE, "Claims under review waiting for a person, by what they wait for."),
        (REVIEW_OVERDUE, "Claims waiting for a person past their review deadline (due_by)."),
        (WEBHOOK_PENDING, "Webhook deliveries not yet delivered nor failed for good."),
        (DB_POOL, "Connections of the database pool, idle or in use."),
        (BUILD_INFO, "The server's version (always 1)."),
    ] {
        r.describe_gauge(KeyName::from_const_str(name), None, help.into());
    }
    r.describe_histogram(
        KeyName::from_const_str(HTTP_DURATION),
        Some(Unit::Seconds),
        "Time to answer a request, by method and route template.".into(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line<'a>(text: &'a str, series: &str) -> Option<&'a str> {
        text.lines().find(|l| l.starts_with(series))
    }

    #[test]
    fn fixed_series_are_there_from_the_start_at_zero() {
        let text = Metrics::new().render().unwrap();
        for series in [
            "casapay_claims_reviewed_total{outcome=\"referred\"} 0",
            "casapay_webhook_attempts_total{outcome=\"no_response\"} 0",
            "casapay_engine_backlog{queue=\"payouts\"} 0",
            "casapay_review_queue{awaiting=\"evidence\"} 0",
            "casapay_review_overdue 0",
            "casapay_webhook_pending 0",
            "casapay_db_pool_connections{state=\"in_use\"} 0",
        ] {
            assert!(line(&text, series).is_some(), "{series} missing from:\n{text}");
        }
        assert!(text.contains(&format!("casapay_build_info{{version=\"{}\"}} 1", env!("CARGO_PKG_VERSION"))));
    }

    #[test]
    fn request_series_are_per_method_route_and_status_and_unknown_methods_are_other() {
        let m = Metrics::new();
        m.http_request("GET", "/v1/customers/{id}", 200, 0.002);
        m.http_request("GET", "/v1/customers/{id}", 200, 0.004);
        m.http_request("GET", "/v1/customers/{id}", 404, 0.001);
        m.http_request("BREW", UNMATCHED_ROUTE, 404, 0.001);
        let text = m.render().unwrap();
        let ok = "casapay_http_requests_total{method=\"GET\",route=\"/v1/customers/{id}\",status=\"200\"} 2";
        assert!(line(&text, ok).is_some(), "{text}");
        assert!(text.contains("casapay_http_requests_total{method=\"other\",route=\"unmatched\",status=\"404\"} 1"));
        let bucket =
            "casapay_http_request_duration_seconds_bucket{method=\"GET\",route=\"/v1/customers/{id}\",le=\"0.005\"} 3";
        assert!(line(&text, bucket).is_some(), "{text}");
    }

    #[test]
    fn off_records_and_renders_nothing() {
        let m = Metrics::off();
        m.http_request("GET", "/healthz", 200, 0.001);
        m.claims_reviewed(ReviewOutcome::Approved).increment(1);
        assert!(m.render().is_none() && !m.is_on());
    }
}
