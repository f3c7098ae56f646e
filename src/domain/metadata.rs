//! Metadata: string key-value pairs with Stripe's limits and update semantics.

use std::collections::BTreeMap;

use super::input::Rejection;

pub const MAX_KEYS: usize = 50;
pub const MAX_KEY_CHARS: usize = 40;
pub const MAX_VALUE_CHARS: usize = 500;

/// Stored metadata. Keys are kept sorted, so rendering is stable.
pub type Metadata = BTreeMap<String, String>;

/// What a request asks to do to an object's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataUpdate {
    /// `metadata=""`: remove every key.
    Clear,
    /// Set these keys; a value of `None` (sent as `""`) removes the key.
    Merge(BTreeMap<String, Option<String>>),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    #[error("Metadata keys must be {MAX_KEY_CHARS} characters or fewer, and not empty: '{0}'")]
    KeyLength(String),
    #[error("Metadata keys may not contain '[' or ']': '{0}'")]
    KeyCharacters(String),
    #[error("Metadata values must be {MAX_VALUE_CHARS} characters or fewer (key '{0}')")]
    ValueLength(String),
    #[error("Metadata may have at most {MAX_KEYS} keys")]
    TooManyKeys,
}

impl MetadataUpdate {
    /// Checks one key and value against the limits.
    pub fn check_pair(key: &str, value: Option<&str>) -> Result<(), MetadataError> {
        let chars = key.chars().count();
        if chars == 0 || chars > MAX_KEY_CHARS {
            return Err(MetadataError::KeyLength(key.chars().take(60).collect()));
        }
        if key.contains(['[', ']']) {
            return Err(MetadataError::KeyCharacters(key.to_owned()));
        }
        if value.is_some_and(|v| v.chars().count() > MAX_VALUE_CHARS) {
            return Err(MetadataError::ValueLength(key.to_owned()));
        }
        Ok(())
    }

    /// The metadata after this update, or an error if it would hold too many keys.
    pub fn apply(&self, current: &Metadata) -> Result<Metadata, MetadataError> {
        let next = match self {
            MetadataUpdate::Clear => Metadata::new(),
            MetadataUpdate::Merge(changes) => {
                let mut next = current.clone();
                for (key, value) in changes {
                    match value {
                        Some(v) => next.insert(key.clone(), v.clone()),
                        None => next.remove(key),
                    };
                }
                next
            }
        };
        if next.len() > MAX_KEYS {
            return Err(MetadataError::TooManyKeys);
        }
        Ok(next)
    }
}

/// `metadata` as a request gives it: a hash of strings (`""` or `null` removes a key),
/// or `""` or `null` to clear all. Use as
/// `#[serde(default, deserialize_with = "metadata::given")] metadata: Option<MetadataUpdate>`,
/// so that `null` clears rather than counting as absent.
pub fn given<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<MetadataUpdate>, D::Error> {
    deserializer.deserialize_any(MetadataVisitor).map(Some)
}

struct MetadataVisitor;

impl<'de> serde::de::Visitor<'de> for MetadataVisitor {
    type Value = MetadataUpdate;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a hash of strings, or \"\" to clear it")
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<MetadataUpdate, E> {
        Ok(MetadataUpdate::Clear)
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<MetadataUpdate, E> {
        Ok(MetadataUpdate::Clear)
    }

    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<MetadataUpdate, E> {
        if s.is_empty() { Ok(MetadataUpdate::Clear) } else { Err(not_a_hash(s)) }
    }

    fn visit_bool<E: serde::de::Error>(self, b: bool) -> Result<MetadataUpdate, E> {
        Err(not_a_hash(&b.to_string()))
    }

    fn visit_i64<E: serde::de::Error>(self, i: i64) -> Result<MetadataUpdate, E> {
        Err(not_a_hash(&i.to_string()))
    }

    fn visit_u64<E: serde::de::Error>(self, u: u64) -> Result<MetadataUpdate, E> {
        Err(not_a_hash(&u.to_string()))
    }

    fn visit_f64<E: serde::de::Error>(self, f: f64) -> Result<MetadataUpdate, E> {
        Err(not_a_hash(&f.to_string()))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, _seq: A) -> Result<MetadataUpdate, A::Error> {
        Err(not_a_hash("a list"))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<MetadataUpdate, A::Error> {
        use crate::error::clip;
        let mut changes = BTreeMap::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = match map.next_value::<serde_json::Value>()? {
                serde_json::Value::String(s) if s.is_empty() => None,
                serde_json::Value::Null => None,
                serde_json::Value::String(s) => Some(s),
                other => {
                    return Err(Rejection::new(
                        "parameter_invalid_string",
                        format!(
                            "Invalid metadata value for key '{}': values must be strings, got {}",
                            clip(&key),
                            clip(&other.to_string())
                        ),
                    )
                    .at(clip(&key))
                    .into_error());
                }
            };
            if let Err(e) = MetadataUpdate::check_pair(&key, value.as_deref()) {
                return Err(Rejection::new("metadata_invalid", e.to_string()).at(clip(&key)).into_error());
            }
            changes.insert(key, value);
        }
        if changes.len() > MAX_KEYS {
            return Err(Rejection::new("metadata_invalid", MetadataError::TooManyKeys.to_string()).into_error());
        }
        Ok(MetadataUpdate::Merge(changes))
    }
}

fn not_a_hash<E: serde::de::Error>(shown: &str) -> E {
    Rejection::new(
        "parameter_invalid_object",
        format!("Invalid hash: {{param}} must be an object of strings, got {}", crate::error::clip(shown)),
    )
    .into_error()
}

/// The document's `metadata` of a request.
impl utoipa::PartialSchema for MetadataUpdate {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, OneOfBuilder, SchemaType, Type};
        let value = ObjectBuilder::new()
            .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
            .max_length(Some(MAX_VALUE_CHARS));
        let hash = ObjectBuilder::new()
            .schema_type(Type::Object)
            .max_properties(Some(MAX_KEYS))
            .property_names(Some(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .min_length(Some(1))
                    .max_length(Some(MAX_KEY_CHARS))
                    .pattern(Some("^[^\\[\\]\\u0000]*$")),
            ))
            .additional_properties(Some(AdditionalProperties::RefOr(value.into())));
        OneOfBuilder::new()
            .description(Some(
                "Up to 50 keys (1 to 40 characters, no brackets) with string values up to 500 characters; \
                 a value \"\" (or null, in JSON) removes the key; `\"\"` instead of a hash removes every key.",
            ))
            .item(hash)
            .item(ObjectBuilder::new().schema_type(Type::String).enum_values(Some([""])))
            .into()
    }
}

impl utoipa::ToSchema for MetadataUpdate {
    fn name() -> std::borrow::Cow<'static, str> {
        "MetadataParam".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn merge(pairs: &[(&str, Option<&str>)]) -> MetadataUpdate {
        MetadataUpdate::Merge(pairs.iter().map(|(k, v)| (k.to_string(), v.map(str::to_string))).collect())
    }

    #[test]
    fn merge_sets_and_removes_keys() {
        let current: Metadata = [("a".into(), "1".into()), ("b".into(), "2".into())].into();
        let next = merge(&[("b", None), ("c", Some("3"))]).apply(&current).unwrap();
        assert_eq!(next, [("a".into(), "1".into()), ("c".into(), "3".into())].into());
    }

    #[test]
    fn clear_removes_everything() {
        let current: Metadata = [("a".into(), "1".into())].into();
        assert!(MetadataUpdate::Clear.apply(&current).unwrap().is_empty());
    }

    #[test]
    fn limits_are_enforced() {
        assert!(MetadataUpdate::check_pair(&"k".repeat(40), Some("v")).is_ok());
        assert!(MetadataUpdate::check_pair(&"k".repeat(41), Some("v")).is_err());
        assert!(MetadataUpdate::check_pair("", Some("v")).is_err());
        assert!(MetadataUpdate::check_pair("a[b]", Some("v")).is_err());
        assert!(MetadataUpdate::check_pair("k", Some(&"v".repeat(500))).is_ok());
        assert!(MetadataUpdate::check_pair("k", Some(&"v".repeat(501))).is_err());
        let fifty: Metadata = (0..50).map(|i| (format!("k{i}"), "v".to_string())).collect();
        assert!(merge(&[("k0", Some("x"))]).apply(&fifty).is_ok());
        assert_eq!(merge(&[("new", Some("x"))]).apply(&fifty), Err(MetadataError::TooManyKeys));
        // Removing one key makes room for another in the same update.
        assert!(merge(&[("k0", None), ("new", Some("x"))]).apply(&fifty).is_ok());
    }
}
