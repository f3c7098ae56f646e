//! Plain types and rules of the product, without I/O: unit-tested without a database.

pub mod claim;
pub mod customer;
pub mod event;
pub mod file;
pub mod guarantee;
pub mod input;
pub mod metadata;
pub mod money;
pub mod operator;
pub mod payout;
pub mod policy;
pub mod recovery;
pub mod review;
pub mod test_clock;
pub mod webhook;

/// Unix seconds.
pub type Timestamp = i64;

pub const DAY: i64 = 86_400;

/// The timestamps the API takes in: 1970-01-01T00:00:00Z to 9999-12-31T23:59:59Z.
/// Bounding them at the edge keeps every sum of a date and a duration (the 60-day
/// claim window, the waiting period) far inside an i64.
pub const TIMESTAMP_RANGE: (Timestamp, Timestamp) = (UnixTime::MIN, UnixTime::MAX);

input::bounded_int!(
    /// A time in Unix seconds as a request gives it: 1970-01-01 to 9999-12-31T23:59:59Z.
    UnixTime,
    0,
    253_402_300_799,
    "Unix seconds, 0 (1970-01-01) to 253402300799 (9999-12-31T23:59:59Z)."
);

/// A field of an update: absent, cleared (`""` or `null`), or set.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Patch<T> {
    #[default]
    Absent,
    Clear,
    Set(T),
}

/// An update's field as a request sends it: `null` or `""` clears it, a value sets
/// it, and a field left out (`#[serde(default)]`) is `Absent`. The API's deserialiser
/// recognises the name and reads `""` as "clear" before the value's type sees it.
impl<'de, T: serde::Deserialize<'de>> serde::Deserialize<'de> for Patch<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PatchVisitor<T>(std::marker::PhantomData<T>);
        impl<'de, T: serde::Deserialize<'de>> serde::de::Visitor<'de> for PatchVisitor<T> {
            type Value = Patch<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a value, or null or \"\" to clear it")
            }
            fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
                Ok(Patch::Clear)
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
                Ok(Patch::Clear)
            }
            fn visit_newtype_struct<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                T::deserialize(d).map(Patch::Set)
            }
        }
        deserializer.deserialize_newtype_struct(PATCH_NAME, PatchVisitor(std::marker::PhantomData))
    }
}

/// See `api::input::PATCH`.
pub const PATCH_NAME: &str = "casapay::Patch";

impl<T: utoipa::ToSchema> utoipa::ToSchema for Patch<T> {}

// The value's schema, or `""` or `null` to clear (the form variant has no null).
// utoipa's derive reads a generic field type's schema through this trait (public, if
// undocumented), and derives `PartialSchema` from it.
impl<T: utoipa::PartialSchema> utoipa::__dev::ComposeSchema for Patch<T> {
    fn compose(
        _generics: Vec<utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>>,
    ) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{OneOfBuilder, Type};
        OneOfBuilder::new()
            .item(T::schema())
            .item(utoipa::openapi::ObjectBuilder::new().schema_type(Type::String).enum_values(Some([""])))
            .item(utoipa::openapi::ObjectBuilder::new().schema_type(Type::Null))
            .into()
    }
}

impl<T> Patch<T> {
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Patch<U> {
        match self {
            Patch::Absent => Patch::Absent,
            Patch::Clear => Patch::Clear,
            Patch::Set(v) => Patch::Set(f(v)),
        }
    }

    /// Applies the patch to an optional field.
    pub fn apply_to(self, field: &mut Option<T>) {
        match self {
            Patch::Absent => {}
            Patch::Clear => *field = None,
            Patch::Set(v) => *field = Some(v),
        }
    }
}

/// Defines a string enum with its wire names, `as_str` and `parse`.
macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $wire:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
        pub enum $name {
            $(#[serde(rename = $wire)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $wire),+
                }
            }

            pub fn parse(s: &str) -> Option<Self> {
                match s {
                    $($wire => Some($name::$variant),)+
                    _ => None,
                }
            }

            /// The wire names, for error messages.
            pub fn names() -> String {
                [$($wire),+].join(", ")
            }
        }

        // Written by hand: utoipa's derive does not see `serde(rename)` through macro_rules.
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .enum_values(Some([$($wire),+]))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}

        // As an enum, so that an empty string is an invalid choice ("got ''"), not
        // "no value" as for text.
        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct Choice;
                impl<'de> serde::de::Visitor<'de> for Choice {
                    type Value = $name;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str(concat!("one of ", $($wire, " "),+))
                    }
                    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<$name, E> {
                        $name::parse(s).ok_or_else(|| E::unknown_variant(s, &[$($wire),+]))
                    }
                    fn visit_enum<A: serde::de::EnumAccess<'de>>(self, data: A) -> Result<$name, A::Error> {
                        use serde::de::VariantAccess;
                        let (wire, variant): (std::borrow::Cow<'de, str>, A::Variant) = data.variant()?;
                        variant.unit_variant()?;
                        $name::parse(&wire).ok_or_else(|| serde::de::Error::unknown_variant(&wire, &[$($wire),+]))
                    }
                }
                deserializer.deserialize_enum(stringify!($name), &[$($wire),+], Choice)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use wire_enum;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_range_is_the_years_1970_to_9999() {
        let in_range = |ts: i64| UnixTime::new(ts).is_ok();
        assert!(in_range(0));
        assert!(in_range(1_706_140_800));
        // 9999-12-31T23:59:59Z: 2,932,897 days from the epoch to 10000-01-01, less a second.
        assert_eq!(TIMESTAMP_RANGE.1, 2_932_897 * DAY - 1);
        assert!(in_range(TIMESTAMP_RANGE.1));
        assert!(!in_range(TIMESTAMP_RANGE.1 + 1));
        assert!(!in_range(-1));
        assert!(!in_range(i64::MAX));
        assert!(!in_range(i64::MIN));
    }
}
