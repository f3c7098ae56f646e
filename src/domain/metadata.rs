//! Metadata: string key-value pairs with Stripe's limits and update semantics.

use std::collections::BTreeMap;

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
