//! How the types of request input refuse a value.
//!
//! Input types (amounts, currencies, ids, bounded numbers and text, metadata) check
//! themselves as they deserialise, so a request type made of them is both the parser
//! and, through `utoipa`, the document. A refusal travels through serde's
//! `Error::custom` as a [`Rejection`], which the API's deserialiser turns into
//! Stripe's error with the param's full name (`evidence[due_date]`): a field type
//! does not know its own name, so its message says `{param}` where the name goes.

use std::fmt;

/// The codes a field type may refuse a value with.
const CODES: &[&str] = &[
    "parameter_missing",
    "parameter_invalid",
    "parameter_invalid_integer",
    "parameter_invalid_string",
    "parameter_invalid_boolean",
    "parameter_invalid_object",
    "parameter_invalid_array",
    "parameter_invalid_value",
    "parameter_out_of_range",
    "invalid_string_length",
    "amount_too_small",
    "amount_too_large",
    "invalid_currency",
    "email_invalid",
    "metadata_invalid",
    "resource_missing",
    "url_invalid",
];

/// Marks a serialised rejection (a control character no param name or message has).
const MARK: char = '\u{1}';

/// A field type's refusal of a value: a Stripe error code and a message in which
/// `{param}` stands for the param's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    code: &'static str,
    message: String,
    /// A part of the value the refusal is about (`key` of `metadata[key]`).
    suffix: Option<String>,
}

impl Rejection {
    /// `code` must be one of the codes above (others read as `parameter_invalid`).
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        debug_assert!(CODES.contains(&code), "unknown rejection code {code}");
        Rejection { code, message: message.into(), suffix: None }
    }

    /// The refusal is about `part` of the value: the param becomes `name[part]`.
    pub fn at(mut self, part: impl Into<String>) -> Self {
        self.suffix = Some(part.into());
        self
    }

    /// A 400 "Invalid {param}: must be between LO and HI, got V."
    pub fn out_of_range(lo: i64, hi: i64, got: i64) -> Self {
        Rejection::new(
            "parameter_out_of_range",
            format!("Invalid {{param}}: must be between {lo} and {hi}, got {got}."),
        )
    }

    /// As a serde error of any deserialiser.
    pub fn into_error<E: serde::de::Error>(self) -> E {
        E::custom(self)
    }

    pub fn code(&self) -> &'static str {
        self.code
    }

    pub fn suffix(&self) -> Option<&str> {
        self.suffix.as_deref()
    }

    /// The message with the param's name in place.
    pub fn message(&self, param: &str) -> String {
        self.message.replace("{param}", param)
    }

    /// Reads back what `Display` wrote, if `text` is a rejection.
    pub fn decode(text: &str) -> Option<Rejection> {
        let rest = text.strip_prefix(MARK)?;
        let mut parts = rest.splitn(3, MARK);
        let index: usize = parts.next()?.parse().ok()?;
        let suffix = parts.next()?;
        let message = parts.next()?;
        Some(Rejection {
            code: CODES.get(index).copied().unwrap_or("parameter_invalid"),
            message: message.to_owned(),
            suffix: (!suffix.is_empty()).then(|| suffix.to_owned()),
        })
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let index = CODES.iter().position(|c| *c == self.code).unwrap_or(1);
        write!(f, "{MARK}{index}{MARK}{}{MARK}{}", self.suffix.as_deref().unwrap_or(""), self.message)
    }
}

/// Deserialises a `T` and checks it into a field type, for the field types'
/// `Deserialize`: a refusal becomes the deserialiser's error.
pub fn checked<'de, D, T, U>(deserializer: D, check: impl FnOnce(T) -> Result<U, Rejection>) -> Result<U, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    check(T::deserialize(deserializer)?).map_err(Rejection::into_error)
}

/// The schema of an integer field type.
pub fn integer_schema(
    min: i64,
    max: i64,
    description: &str,
) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    use utoipa::openapi::{KnownFormat, ObjectBuilder, SchemaFormat, schema::Type};
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
        .minimum(Some(min))
        .maximum(Some(max))
        .description(Some(description))
        .into()
}

/// The schema of a text field type: at least one character, at most `max`, matching
/// `pattern` if it has one.
pub fn text_schema(
    max: Option<usize>,
    pattern: Option<String>,
    description: &str,
) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    use utoipa::openapi::{ObjectBuilder, schema::Type};
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(max)
        .pattern(pattern)
        .description(Some(description))
        .into()
}

/// The parts every text-like field type shares: the newtype, its accessors, and a
/// `Deserialize` through its `new`.
macro_rules! text_newtype {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                $crate::domain::input::checked(deserializer, $name::new)
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}
pub(crate) use text_newtype;

/// Defines an integer newtype within `MIN..=MAX` that refuses other values as it
/// deserialises (`parameter_out_of_range`), with its schema from the same bounds.
macro_rules! bounded_int {
    ($(#[$meta:meta])* $name:ident, $lo:expr, $hi:expr, $what:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
        pub struct $name(i64);

        impl $name {
            pub const MIN: i64 = $lo;
            pub const MAX: i64 = $hi;

            pub fn new(value: i64) -> Result<Self, $crate::domain::input::Rejection> {
                if (Self::MIN..=Self::MAX).contains(&value) {
                    Ok($name(value))
                } else {
                    Err($crate::domain::input::Rejection::out_of_range(Self::MIN, Self::MAX, value))
                }
            }

            pub fn get(self) -> i64 {
                self.0
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                $crate::domain::input::checked(deserializer, $name::new)
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                $crate::domain::input::integer_schema(Self::MIN, Self::MAX, $what)
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}
pub(crate) use bounded_int;

/// Defines a text newtype of 1 to `MAX` characters (`invalid_string_length` beyond;
/// the API's deserialiser refuses an empty string), with its schema from the same
/// bounds.
macro_rules! bounded_text {
    ($(#[$meta:meta])* $name:ident, $max:expr, $what:literal) => {
        $crate::domain::input::text_newtype!($(#[$meta])* $name);

        impl $name {
            pub const MAX_CHARS: usize = $max;

            pub fn new(value: String) -> Result<Self, $crate::domain::input::Rejection> {
                if value.chars().count() > Self::MAX_CHARS {
                    return Err($crate::domain::input::Rejection::new(
                        "invalid_string_length",
                        format!("Invalid {{param}}: must be at most {} characters.", Self::MAX_CHARS),
                    ));
                }
                Ok($name(value))
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                $crate::domain::input::text_schema(Some(Self::MAX_CHARS), None, $what)
            }
        }
    };
}
pub(crate) use bounded_text;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rejection_survives_its_trip_through_a_serde_message() {
        let r = Rejection::new("metadata_invalid", "Metadata keys may not contain '[': {param}").at("a[b");
        let back = Rejection::decode(&r.to_string()).unwrap();
        assert_eq!(back, r);
        assert_eq!(back.message("metadata"), "Metadata keys may not contain '[': metadata");
        assert_eq!(Rejection::decode("invalid type: string"), None);
    }
}
