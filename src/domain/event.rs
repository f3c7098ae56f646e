//! Events: the record of every state change, delivered to webhooks.

use serde_json::value::RawValue;

use super::{Timestamp, wire_enum};

/// The API version that responses and events are rendered in.
pub const API_VERSION: &str = "2025-01-01";

/// How long events are kept.
pub const RETENTION_SECONDS: i64 = 30 * super::DAY;

wire_enum! {
    EventType {
        CustomerCreated = "customer.created",
        CustomerUpdated = "customer.updated",
        PolicyCreated = "guarantee_policy.created",
        PolicyUpdated = "guarantee_policy.updated",
        GuaranteeCreated = "guarantee.created",
        GuaranteeActivated = "guarantee.activated",
        GuaranteeUpdated = "guarantee.updated",
        GuaranteeCancelled = "guarantee.cancelled",
        GuaranteeExpired = "guarantee.expired",
        GuaranteeClaimed = "guarantee.claimed",
        ClaimSubmitted = "claim.submitted",
        ClaimUpdated = "claim.updated",
        ClaimReviewUpdated = "claim.review_updated",
        ClaimEvidenceRequested = "claim.evidence_requested",
        ClaimApproved = "claim.approved",
        ClaimDenied = "claim.denied",
        ClaimPaid = "claim.paid",
        PayoutPaid = "payout.paid",
        PayoutFailed = "payout.failed",
        RecoveryCreated = "recovery.created",
        RecoveryUpdated = "recovery.updated",
        RecoveryPaymentRecorded = "recovery.payment_recorded",
        RecoveryRecovered = "recovery.recovered",
        RecoveryInstallmentMissed = "recovery.installment_missed",
        RecoveryWrittenOff = "recovery.written_off",
        WebhookEndpointDisabled = "webhook_endpoint.disabled",
        FileCreated = "file.created",
        TestClockCreated = "test_helpers.test_clock.created",
        TestClockAdvancing = "test_helpers.test_clock.advancing",
        TestClockReady = "test_helpers.test_clock.ready",
        TestClockDeleted = "test_helpers.test_clock.deleted",
    }
}

/// What the event records: JSON as it was rendered when the event was written.
#[derive(Debug, Clone)]
pub struct EventData {
    /// The object's view as of the change.
    pub object: Box<RawValue>,
    /// On updates: the fields that changed, with their values before.
    pub previous_attributes: Option<Box<RawValue>>,
}

/// The request that made the change, if a request did.
#[derive(Debug, Clone)]
pub struct EventRequest {
    pub id: Option<String>,
    pub idempotency_key: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Event {
    pub id: String,
    pub created: Timestamp,
    pub data: EventData,
    pub livemode: bool,
    pub pending_webhooks: i64,
    pub request: EventRequest,
    /// The event type, such as `claim.approved`.
    pub kind: String,
}

impl Event {
    pub const OBJECT: &'static str = "event";
}

/// The fields of `before` whose values differ in `after`, with their old values:
/// the `previous_attributes` of an update event. Nested objects (metadata) are
/// compared key by key, as Stripe does; a key that was added shows as `""`.
pub fn previous_attributes(
    before: &serde_json::Value,
    after: &serde_json::Value,
) -> serde_json::Map<String, serde_json::Value> {
    use serde_json::Value;
    let mut out = serde_json::Map::new();
    let (Value::Object(b), Value::Object(a)) = (before, after) else {
        return out;
    };
    for (key, old) in b {
        if let Some(previous) = previous_attribute(key, old, a.get(key).unwrap_or(&Value::Null)) {
            out.insert(key.clone(), previous);
        }
    }
    out
}

/// What `previous_attributes` shows of one field: nothing when it did not change,
/// else its old value (for metadata, the keys that changed).
pub fn previous_attribute(key: &str, old: &serde_json::Value, new: &serde_json::Value) -> Option<serde_json::Value> {
    use serde_json::Value;
    if old == new {
        return None;
    }
    match (old, new) {
        (Value::Object(old_map), Value::Object(new_map)) if key == "metadata" => {
            let mut diff = serde_json::Map::new();
            for (k, v) in old_map {
                if new_map.get(k) != Some(v) {
                    diff.insert(k.clone(), v.clone());
                }
            }
            for k in new_map.keys() {
                if !old_map.contains_key(k) {
                    diff.insert(k.clone(), Value::String(String::new()));
                }
            }
            Some(Value::Object(diff))
        }
        _ => Some(old.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn previous_attributes_lists_changed_fields_with_old_values() {
        let before = json!({"id": "x", "status": "active", "end_date": 10, "metadata": {"a": "1", "b": "2"}});
        let after = json!({"id": "x", "status": "active", "end_date": 20, "metadata": {"a": "1", "c": "3"}});
        let prev = previous_attributes(&before, &after);
        assert_eq!(serde_json::Value::Object(prev), json!({"end_date": 10, "metadata": {"b": "2", "c": ""}}));
    }

    #[test]
    fn event_type_names() {
        assert_eq!(EventType::parse("claim.approved"), Some(EventType::ClaimApproved));
        assert_eq!(EventType::PolicyCreated.as_str(), "guarantee_policy.created");
    }
}
