//! Customers: the tenants whose rent is guaranteed.

use super::Timestamp;
use super::metadata::Metadata;

pub const SCORE_MAX: i64 = Score::MAX;

super::input::bounded_int!(
    /// The tenant's guarantee score.
    Score,
    0,
    100,
    "The tenant's guarantee score, 0 to 100."
);

super::input::bounded_text!(
    /// A customer's name as a request gives it.
    CustomerName,
    256,
    "The tenant's name."
);

/// An email address as a request gives it: something@somewhere, no spaces, at most
/// 512 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub const MAX_CHARS: usize = 512;

    pub fn new(email: String) -> Result<Self, super::input::Rejection> {
        use super::input::Rejection;
        if email.chars().count() > Self::MAX_CHARS {
            return Err(Rejection::new(
                "invalid_string_length",
                format!("Invalid {{param}}: must be at most {} characters.", Self::MAX_CHARS),
            ));
        }
        let ok = email
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty() && !domain.contains('@'))
            && !email.chars().any(char::is_whitespace);
        if !ok {
            return Err(Rejection::new(
                "email_invalid",
                format!("Invalid email address: {}", crate::error::clip(&email)),
            ));
        }
        Ok(Email(email))
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl<'de> serde::Deserialize<'de> for Email {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        super::input::checked(deserializer, Email::new)
    }
}

impl utoipa::PartialSchema for Email {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        let pattern = "^[^@\\s\\u0000]+@[^@\\s\\u0000]+$".to_owned();
        super::input::text_schema(Some(Self::MAX_CHARS), Some(pattern), "An email address.")
    }
}

impl utoipa::ToSchema for Email {}

#[derive(Debug, Clone)]
pub struct Customer {
    pub id: String,
    pub name: Option<String>,
    pub email: Option<String>,
    /// The tenant's guarantee score, 0..=100, or none yet.
    pub score: Option<i64>,
    pub metadata: Metadata,
    /// The test clock the customer and its objects live on, if any.
    pub test_clock: Option<String>,
    pub livemode: bool,
    pub created: Timestamp,
}

impl Customer {
    pub const OBJECT: &'static str = "customer";
}
