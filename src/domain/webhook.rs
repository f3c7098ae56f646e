//! Webhook endpoints and deliveries: subscriptions, the retry schedule, and what an
//! attempt's answer means.

use serde::Serialize;

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
    /// Where a delivery stands: waiting for its next attempt, delivered, or given up on.
    DeliveryStatus {
        Pending = "pending",
        Succeeded = "succeeded",
        Failed = "failed",
    }
}

/// How long a rotated-out secret keeps signing beside the new one.
pub const PREVIOUS_SECRET_TTL: i64 = DAY;
/// An endpoint whose every attempt has failed for this long is disabled.
pub const DISABLE_AFTER_FAILING: i64 = 5 * DAY;
/// The Standard Webhooks schedule: the wait after each failed attempt. Ten attempts
/// in all, spread over about three days.
pub const RETRY_DELAYS: [i64; 9] = [5, 300, 1_800, 7_200, 18_000, 36_000, 50_400, 72_000, 86_400];
/// Bounds on a receiver's `Retry-After`.
pub const RETRY_AFTER_BOUNDS: (i64, i64) = (1, DAY);
/// How much of a response body the attempts log keeps.
pub const RESPONSE_BODY_LIMIT: usize = 1024;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WebhookEndpoint {
    pub id: String,
    #[schema(value_type = String)]
    pub object: &'static str,
    pub url: String,
    pub description: Option<String>,
    pub enabled_events: Vec<String>,
    pub status: EndpointStatus,
    /// Shown once: in the answers to create and rotate_secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    pub metadata: Metadata,
    pub livemode: bool,
    pub created: Timestamp,
    #[serde(skip)]
    pub signing: Signing,
}

impl WebhookEndpoint {
    pub const OBJECT: &'static str = "webhook_endpoint";
}

/// The secrets that sign deliveries, and the endpoint's failure streak: stored, never
/// rendered.
#[derive(Debug, Clone, Default)]
pub struct Signing {
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_secret_expires_at: Option<Timestamp>,
    pub failing_since: Option<Timestamp>,
}

impl Signing {
    /// The secrets that sign at `now`: the current one first.
    pub fn active_secrets(&self, now: Timestamp) -> Vec<&str> {
        let mut secrets = vec![self.secret.as_str()];
        if let (Some(prev), Some(until)) = (&self.previous_secret, self.previous_secret_expires_at)
            && now < until
        {
            secrets.push(prev);
        }
        secrets
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WebhookAttempt {
    pub id: String,
    #[schema(value_type = String)]
    pub object: &'static str,
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
            previous_secret: Some("old".into()),
            previous_secret_expires_at: Some(100),
            failing_since: None,
        };
        assert_eq!(s.active_secrets(99), ["new", "old"]);
        assert_eq!(s.active_secrets(100), ["new"]);
    }
}
