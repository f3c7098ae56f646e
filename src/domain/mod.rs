//! Plain types and rules of the product, without I/O: unit-tested without a database.

pub mod claim;
pub mod customer;
pub mod event;
pub mod guarantee;
pub mod metadata;
pub mod money;
pub mod payout;
pub mod policy;
pub mod review;
pub mod webhook;

/// Unix seconds.
pub type Timestamp = i64;

pub const DAY: i64 = 86_400;

/// The timestamps the API takes in: 1970-01-01T00:00:00Z to 9999-12-31T23:59:59Z.
/// Bounding them at the edge keeps every sum of a date and a duration (the 60-day
/// claim window, the waiting period) far inside an i64.
pub const TIMESTAMP_RANGE: (Timestamp, Timestamp) = (0, 253_402_300_799);

/// Whether `ts` is a timestamp the API accepts.
pub fn timestamp_in_range(ts: i64) -> bool {
    (TIMESTAMP_RANGE.0..=TIMESTAMP_RANGE.1).contains(&ts)
}

/// A field of an update: absent, cleared (`""` or `null`), or set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Patch<T> {
    Absent,
    Clear,
    Set(T),
}

impl<T> Patch<T> {
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
        assert!(timestamp_in_range(0));
        assert!(timestamp_in_range(1_706_140_800));
        // 9999-12-31T23:59:59Z: 2,932,897 days from the epoch to 10000-01-01, less a second.
        assert_eq!(TIMESTAMP_RANGE.1, 2_932_897 * DAY - 1);
        assert!(timestamp_in_range(TIMESTAMP_RANGE.1));
        assert!(!timestamp_in_range(TIMESTAMP_RANGE.1 + 1));
        assert!(!timestamp_in_range(-1));
        assert!(!timestamp_in_range(i64::MAX));
        assert!(!timestamp_in_range(i64::MIN));
    }
}
