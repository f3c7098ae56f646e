//! Object ids: a resource prefix and an opaque random string.

use rand::Rng;
use rand::distr::Alphanumeric;

/// The kinds of object that carry an id, with their prefix and object name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Account,
    Customer,
    Policy,
    Guarantee,
    Claim,
    Payout,
    Event,
    WebhookEndpoint,
    WebhookAttempt,
    WebhookDelivery,
    Request,
    ApiKey,
    File,
    Operator,
    ClaimAction,
    TestClock,
    Recovery,
    RecoveryAction,
}

impl Kind {
    pub const fn prefix(self) -> &'static str {
        match self {
            Kind::Account => "acct_",
            Kind::Customer => "cus_",
            Kind::Policy => "gpol_",
            Kind::Guarantee => "grt_",
            Kind::Claim => "clm_",
            Kind::Payout => "po_",
            Kind::Event => "evt_",
            Kind::WebhookEndpoint => "we_",
            Kind::WebhookAttempt => "wha_",
            Kind::WebhookDelivery => "whd_",
            Kind::Request => "req_",
            Kind::ApiKey => "key_",
            Kind::File => "file_",
            Kind::Operator => "op_",
            Kind::ClaimAction => "act_",
            Kind::TestClock => "clock_",
            Kind::Recovery => "rec_",
            Kind::RecoveryAction => "ract_",
        }
    }

    /// The `object` name, used in "No such ..." messages.
    pub const fn object(self) -> &'static str {
        match self {
            Kind::Account => "account",
            Kind::Customer => "customer",
            Kind::Policy => "guarantee_policy",
            Kind::Guarantee => "guarantee",
            Kind::Claim => "claim",
            Kind::Payout => "payout",
            Kind::Event => "event",
            Kind::WebhookEndpoint => "webhook_endpoint",
            Kind::WebhookAttempt => "webhook_attempt",
            Kind::WebhookDelivery => "webhook_delivery",
            Kind::Request => "request",
            Kind::ApiKey => "api_key",
            Kind::File => "file",
            Kind::Operator => "operator",
            Kind::ClaimAction => "claim_action",
            Kind::TestClock => "test_helpers.test_clock",
            Kind::Recovery => "recovery",
            Kind::RecoveryAction => "recovery_action",
        }
    }

    /// A fresh id: the prefix and 24 random base62 characters (about 143 bits).
    pub fn new_id(self) -> String {
        let mut id = String::with_capacity(self.prefix().len() + 24);
        id.push_str(self.prefix());
        id.extend(rand::rng().sample_iter(Alphanumeric).take(24).map(char::from));
        id
    }

    /// Whether `s` is shaped like an id of this kind. Anything else can only be a
    /// missing object, so callers answer 404 without asking the store.
    pub fn matches(self, s: &str) -> bool {
        match s.strip_prefix(self.prefix()) {
            Some(rest) => {
                !rest.is_empty() && rest.len() <= 64 && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            }
            None => false,
        }
    }
}

/// Defines the id type of a kind, as requests give it: a string that must be shaped
/// like an id of the kind, or it names no object (404 `resource_missing`).
macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident, $kind:expr) => {
        crate::domain::input::text_newtype!($(#[$meta])* $name);

        impl $name {
            pub const KIND: Kind = $kind;

            pub fn new(id: String) -> Result<Self, crate::domain::input::Rejection> {
                if Self::KIND.matches(&id) {
                    return Ok($name(id));
                }
                Err(crate::domain::input::Rejection::new(
                    "resource_missing",
                    format!("No such {}: '{}'", Self::KIND.object(), crate::error::clip(&id)),
                ))
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                let pattern = format!("^{}[A-Za-z0-9_]{{1,64}}$", Self::KIND.prefix());
                crate::domain::input::text_schema(None, Some(pattern), &format!("The id of a {}.", Self::KIND.object()))
            }
        }
    };
}

id_type!(CustomerId, Kind::Customer);
id_type!(PolicyId, Kind::Policy);
id_type!(GuaranteeId, Kind::Guarantee);
id_type!(ClaimId, Kind::Claim);
id_type!(PayoutId, Kind::Payout);
id_type!(EventId, Kind::Event);
id_type!(WebhookEndpointId, Kind::WebhookEndpoint);
id_type!(WebhookAttemptId, Kind::WebhookAttempt);
id_type!(FileId, Kind::File);
id_type!(AccountId, Kind::Account);
id_type!(TestClockId, Kind::TestClock);
id_type!(RecoveryId, Kind::Recovery);

/// A random secret of `len` base62 characters, for API keys.
pub fn random_secret(len: usize) -> String {
    rand::rng().sample_iter(Alphanumeric).take(len).map(char::from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_ids_have_prefix_and_parse_back() {
        let id = Kind::Guarantee.new_id();
        assert!(id.starts_with("grt_"));
        assert_eq!(id.len(), 28);
        assert!(Kind::Guarantee.matches(&id));
        assert!(!Kind::Claim.matches(&id));
        assert_ne!(id, Kind::Guarantee.new_id());
    }

    #[test]
    fn malformed_ids_do_not_match() {
        assert!(Kind::Customer.matches("cus_123456789"));
        for bad in ["cus_", "cus", "grt_abc", "cus_a b", "cus_é", "", "cus_'; drop table"] {
            assert!(!Kind::Customer.matches(bad), "{bad}");
        }
        assert!(!Kind::Customer.matches(&format!("cus_{}", "a".repeat(65))));
    }
}
