//! Webhook endpoints and deliveries: subscriptions, the retry schedule, and what an
//! attempt's answer means.

use serde::{Deserialize, Serialize};

use super::event::EventType;
use super::metadata::Metadata;
use super::{DAY, Timestamp, wire_enum};

wire_enum! {
    EndpointStatus {
        Enabled = "enabled",
        Disabled = "disabled",
    }
}

wire_enum! {
    /// How deliveries to an endpoint are signed: HMAC-SHA256 with a shared secret (both
    /// headers), or Ed25519 with a key whose public half the receiver holds (`v1a`).
    SignatureScheme {
        HmacSha256 = "hmac_sha256",
        Ed25519 = "ed25519",
    }
}

wire_enum! {
    /// Where a delivery stands: waiting for its next attempt, delivered, or given up on.
    DeliveryStatus {
        Pending = "pending",
        Succeeded = "succeeded",
        Failed = "failed",
    }
}

/// How long a rotated-out secret keeps signing beside the new one (each superseded
/// secret for this long after the rotation that superseded it).
pub const PREVIOUS_SECRET_TTL: i64 = DAY;
/// An endpoint whose every attempt has failed for this long is disabled.
pub const DISABLE_AFTER_FAILING: i64 = 5 * DAY;
/// The Standard Webhooks schedule: the wait after each failed attempt. Ten attempts
/// in all, spread over about three days.
pub const RETRY_DELAYS: [i64; 9] = [5, 300, 1_800, 7_200, 18_000, 36_000, 50_400, 72_000, 86_400];
/// Bounds on a receiver's `Retry-After`.
pub const RETRY_AFTER_BOUNDS: (i64, i64) = (1, DAY);
/// How much of a response body, or of an error, the attempts log keeps, in bytes.
pub const RESPONSE_BODY_LIMIT: usize = 1024;

#[derive(Debug, Clone)]
pub struct WebhookEndpoint {
    pub id: String,
    pub url: String,
    pub description: Option<String>,
    pub enabled_events: Vec<String>,
    pub status: EndpointStatus,
    pub metadata: Metadata,
    pub livemode: bool,
    pub created: Timestamp,
    pub signing: Signing,
    /// At most this many deliveries a second to this endpoint, across every dispatcher;
    /// None: no limit.
    pub rate_limit: Option<i64>,
}

impl WebhookEndpoint {
    pub const OBJECT: &'static str = "webhook_endpoint";

    /// Disables or enables the endpoint by request. A change either way starts a fresh
    /// failure count, so a re-enabled endpoint is not disabled again at its next failure.
    pub fn set_disabled(&mut self, disabled: bool) {
        let status = if disabled { EndpointStatus::Disabled } else { EndpointStatus::Enabled };
        if status != self.status {
            self.signing.failing_since = None;
        }
        self.status = status;
    }

    /// Signs with `secret` from now on; the secrets it replaces keep signing beside it
    /// until `PREVIOUS_SECRET_TTL` after their rotation (see `Signing::rotate`).
    pub fn rotate_secret(&mut self, secret: String, now: Timestamp) {
        self.signing.rotate(secret, now);
    }
}

/// The secrets that sign deliveries, and the endpoint's failure streak: stored; only
/// `secret` is ever shown, in the answers to create and rotate_secret.
#[derive(Debug, Clone, Default)]
pub struct Signing {
    pub secret: String,
    /// Secrets superseded by a rotation, newest first, each signing until it expires.
    pub previous_secrets: Vec<PreviousSecret>,
    pub failing_since: Option<Timestamp>,
}

super::input::bounded_int!(
    /// An endpoint's `rate_limit`: deliveries per second.
    RateLimit,
    1,
    10_000,
    "At most this many deliveries a second to the endpoint, across every server; null or \"\" for no limit."
);

/// A rotated-out secret and the end of its grace period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviousSecret {
    pub secret: String,
    pub expires_at: Timestamp,
}

/// How an Ed25519 signing key begins, as Standard Webhooks writes it; HMAC secrets
/// begin `whsec_`.
pub const SIGNING_KEY_PREFIX: &str = "whsk_";

impl Signing {
    /// The scheme the endpoint signs with, told by its current secret.
    pub fn scheme(&self) -> SignatureScheme {
        if self.secret.starts_with(SIGNING_KEY_PREFIX) { SignatureScheme::Ed25519 } else { SignatureScheme::HmacSha256 }
    }

    /// The secrets that sign at `now`: the current one first, then those superseded
    /// less than `PREVIOUS_SECRET_TTL` ago, newest first.
    pub fn active_secrets(&self, now: Timestamp) -> Vec<&str> {
        let previous = self.previous_secrets.iter().filter(|p| now < p.expires_at).map(|p| p.secret.as_str());
        std::iter::once(self.secret.as_str()).chain(previous).collect()
    }

    /// Makes `secret` the current one at `now`. Every secret superseded less than a day
    /// ago keeps signing (several rotations within a day leave several), so a receiver
    /// that has not switched yet keeps verifying; the expired ones are dropped.
    pub fn rotate(&mut self, secret: String, now: Timestamp) {
        let superseded = std::mem::replace(&mut self.secret, secret);
        self.previous_secrets.retain(|p| now < p.expires_at);
        self.previous_secrets.insert(0, PreviousSecret { secret: superseded, expires_at: now + PREVIOUS_SECRET_TTL });
    }
}

#[derive(Debug, Clone)]
pub struct WebhookAttempt {
    pub id: String,
    pub event: String,
    pub webhook_endpoint: String,
    pub status_code: Option<i64>,
    pub latency_ms: i64,
    pub error: Option<String>,
    pub response_body: Option<String>,
    pub livemode: bool,
    pub created: Timestamp,
}

impl WebhookAttempt {
    pub const OBJECT: &'static str = "webhook_attempt";
}

/// Whether an endpoint subscribed to `kind`.
pub fn subscribes(enabled_events: &[String], kind: &str) -> bool {
    enabled_events.iter().any(|e| e == "*" || e == kind)
}

/// Checks a subscription list: `*` or known event types, at least one.
pub fn check_enabled_events(events: &[String]) -> Result<(), String> {
    if events.is_empty() {
        return Err("enabled_events must list at least one event type, or '*'.".into());
    }
    match events.iter().find(|e| e.as_str() != "*" && EventType::parse(e).is_none()) {
        Some(bad) => Err(format!(
            "Invalid enabled_events: '{bad}' is not an event type. Use '*' or one of {}.",
            EventType::names()
        )),
        None => Ok(()),
    }
}

super::input::bounded_text!(EndpointUrl, 2048, "Where to send events: https (or http where the server allows it).");
super::input::bounded_text!(EndpointDescription, 5000, "What the endpoint is for.");

/// `enabled_events` as a request gives it: event types or `*`, at least one, each
/// kept once in the order first given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnabledEvents(Vec<String>);

impl EnabledEvents {
    pub fn into_vec(self) -> Vec<String> {
        self.0
    }
}

impl<'de> serde::Deserialize<'de> for EnabledEvents {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let events = Vec::<String>::deserialize(deserializer)?;
        check_enabled_events(&events)
            .map_err(|m| super::input::Rejection::new("parameter_invalid_value", m).into_error())?;
        Ok(EnabledEvents(dedup_events(events)))
    }
}

impl utoipa::PartialSchema for EnabledEvents {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::{ArrayBuilder, ObjectBuilder, schema::Type};
        let names = std::iter::once("*").chain(EventType::ALL.iter().map(|t| t.as_str()));
        ArrayBuilder::new()
            .items(ObjectBuilder::new().schema_type(Type::String).enum_values(Some(names)))
            .min_items(Some(1))
            .description(Some("Event types, or `*` for all."))
            .into()
    }
}

impl utoipa::ToSchema for EnabledEvents {}

pub fn dedup_events(events: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    events.into_iter().filter(|e| seen.insert(e.clone())).collect()
}

/// Text from a receiver (its body, or an error describing its answer) as both stores
/// can hold it: NUL, which PostgreSQL's `text` refuses, becomes U+FFFD, and the text is
/// cut to `RESPONSE_BODY_LIMIT` bytes on a character boundary. Invalid UTF-8 has
/// already been replaced where the bytes were decoded.
pub fn storable_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(RESPONSE_BODY_LIMIT));
    for c in text.chars().map(|c| if c == '\0' { char::REPLACEMENT_CHARACTER } else { c }) {
        if out.len() + c.len_utf8() > RESPONSE_BODY_LIMIT {
            break;
        }
        out.push(c);
    }
    out
}

/// What one delivery attempt's answer means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptResult {
    /// A 2xx.
    Delivered,
    /// 410: the receiver wants no more; the endpoint is disabled.
    Gone,
    /// Anything else; `retry_after` from a 429 or 503 that sent one.
    Failed { retry_after: Option<i64> },
}

/// Reads an answer (no status when no response came).
pub fn classify(status: Option<u16>, retry_after: Option<&str>) -> AttemptResult {
    match status {
        Some(s) if (200..300).contains(&s) => AttemptResult::Delivered,
        Some(410) => AttemptResult::Gone,
        Some(429 | 503) => {
            AttemptResult::Failed { retry_after: retry_after.and_then(|v| v.trim().parse::<i64>().ok()) }
        }
        _ => AttemptResult::Failed { retry_after: None },
    }
}

/// When to try again after `attempts` failed attempts, or `None` when the schedule is
/// over. `jitter` in -1.0..=1.0 moves the wait by up to a tenth either way; a
/// receiver's `Retry-After` replaces the schedule's wait, within bounds.
pub fn next_attempt_at(attempts: i64, now: Timestamp, retry_after: Option<i64>, jitter: f64) -> Option<Timestamp> {
    let index = usize::try_from(attempts - 1).ok()?;
    let scheduled = *RETRY_DELAYS.get(index)?;
    let wait = match retry_after {
        Some(secs) => secs.clamp(RETRY_AFTER_BOUNDS.0, RETRY_AFTER_BOUNDS.1),
        None => scheduled + (scheduled as f64 * 0.1 * jitter.clamp(-1.0, 1.0)).round() as i64,
    };
    Some(now + wait.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscriptions() {
        let all = vec!["*".to_string()];
        assert!(subscribes(&all, "claim.approved"));
        let some = vec!["claim.approved".to_string(), "claim.denied".to_string()];
        assert!(subscribes(&some, "claim.denied"));
        assert!(!subscribes(&some, "claim.paid"));
        assert!(check_enabled_events(&some).is_ok());
        assert!(check_enabled_events(&["claim.nope".to_string()]).is_err());
        assert!(check_enabled_events(&[]).is_err());
    }

    #[test]
    fn answers() {
        assert_eq!(classify(Some(200), None), AttemptResult::Delivered);
        assert_eq!(classify(Some(204), None), AttemptResult::Delivered);
        assert_eq!(classify(Some(410), None), AttemptResult::Gone);
        assert_eq!(classify(Some(429), Some("120")), AttemptResult::Failed { retry_after: Some(120) });
        assert_eq!(classify(Some(503), Some("x")), AttemptResult::Failed { retry_after: None });
        assert_eq!(classify(Some(500), Some("120")), AttemptResult::Failed { retry_after: None }, "only 429 and 503");
        assert_eq!(classify(Some(301), None), AttemptResult::Failed { retry_after: None }, "redirects are failures");
        assert_eq!(classify(None, None), AttemptResult::Failed { retry_after: None });
    }

    #[test]
    fn schedule_with_jitter_and_retry_after() {
        assert_eq!(next_attempt_at(1, 1000, None, 0.0), Some(1005));
        assert_eq!(next_attempt_at(2, 1000, None, 0.0), Some(1300));
        assert_eq!(next_attempt_at(2, 1000, None, 1.0), Some(1330));
        assert_eq!(next_attempt_at(2, 1000, None, -1.0), Some(1270));
        assert_eq!(next_attempt_at(9, 0, None, 0.0), Some(86_400));
        assert_eq!(next_attempt_at(10, 0, None, 0.0), None, "ten attempts in all");
        assert_eq!(next_attempt_at(1, 0, Some(60), 0.0), Some(60));
        assert_eq!(next_attempt_at(1, 0, Some(0), 0.0), Some(1));
        assert_eq!(next_attempt_at(1, 0, Some(10_000_000), 0.0), Some(DAY));
    }

    #[test]
    fn previous_secret_signs_until_it_expires() {
        let s = Signing {
            secret: "new".into(),
            previous_secrets: vec![PreviousSecret { secret: "old".into(), expires_at: 100 }],
            failing_since: None,
        };
        assert_eq!(s.active_secrets(99), ["new", "old"]);
        assert_eq!(s.active_secrets(100), ["new"]);
    }

    #[test]
    fn rotations_within_a_day_each_leave_a_signing_secret() {
        let mut s = Signing { secret: "a".into(), ..Signing::default() };
        s.rotate("b".into(), 0);
        s.rotate("c".into(), 10);
        assert_eq!(s.active_secrets(10), ["c", "b", "a"]);
        assert_eq!(s.active_secrets(DAY), ["c", "b"]);
        assert_eq!(s.active_secrets(DAY + 10), ["c"]);
        s.rotate("d".into(), DAY + 5);
        assert_eq!(s.previous_secrets.iter().map(|p| p.secret.as_str()).collect::<Vec<_>>(), ["c", "b"], "a dropped");
        assert_eq!(s.active_secrets(DAY + 5), ["d", "c", "b"]);
    }

    #[test]
    fn subscriptions_are_kept_once_in_first_seen_order() {
        let given = ["b", "a", "b", "*", "a"].map(String::from).to_vec();
        assert_eq!(dedup_events(given), ["b", "a", "*"]);
    }

    #[test]
    fn receiver_text_is_made_storable() {
        assert_eq!(storable_text("a\0b"), "a\u{fffd}b");
        assert_eq!(storable_text(&"x".repeat(2000)), "x".repeat(RESPONSE_BODY_LIMIT));
        // 1,023 bytes and a two-byte character: the cut falls before it.
        let text = format!("{}\u{e9}", "x".repeat(1023));
        assert_eq!(storable_text(&text), "x".repeat(1023));
        // A NUL grows to three bytes once replaced; the limit holds for the result.
        let text = "\0".repeat(1000);
        assert_eq!(storable_text(&text).len(), 1023);
        assert!(storable_text(&text).chars().all(|c| c == char::REPLACEMENT_CHARACTER));
    }

    fn endpoint(status: EndpointStatus) -> WebhookEndpoint {
        WebhookEndpoint {
            id: "we_1".into(),
            url: "https://example.com/hook".into(),
            description: None,
            enabled_events: vec!["*".into()],
            status,
            metadata: Metadata::new(),
            livemode: false,
            created: 0,
            signing: Signing { secret: "s1".into(), failing_since: Some(50), ..Signing::default() },
            rate_limit: None,
        }
    }

    #[test]
    fn a_change_of_status_by_request_restarts_the_failure_count() {
        let mut e = endpoint(EndpointStatus::Enabled);
        e.set_disabled(false);
        assert_eq!((e.status, e.signing.failing_since), (EndpointStatus::Enabled, Some(50)), "no change");
        e.set_disabled(true);
        assert_eq!((e.status, e.signing.failing_since), (EndpointStatus::Disabled, None));
        let mut e = endpoint(EndpointStatus::Disabled);
        e.set_disabled(false);
        assert_eq!((e.status, e.signing.failing_since), (EndpointStatus::Enabled, None));
    }

    #[test]
    fn rotation_keeps_the_old_secret_for_a_day() {
        let mut e = endpoint(EndpointStatus::Enabled);
        e.rotate_secret("s2".into(), 1_000);
        assert_eq!(e.signing.active_secrets(1_000 + DAY - 1), ["s2", "s1"]);
        assert_eq!(e.signing.active_secrets(1_000 + DAY), ["s2"]);
    }
}
