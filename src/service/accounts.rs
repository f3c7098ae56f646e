//! Accounts, API keys and authentication.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::domain::customer::Customer;
use crate::domain::metadata::Metadata;
use crate::domain::operator::{LEGACY_OPERATOR_NAME, Operator};
use crate::error::{ApiError, ApiResult};
use crate::ids::{Kind, random_secret};
use crate::store::accounts::{KeyKind, KeyRecord};
use crate::store::{self, Scope, Store};

pub const TEST_KEY_PREFIX: &str = "sk_test_";
pub const LIVE_KEY_PREFIX: &str = "sk_live_";
pub const OPERATOR_KEY_PREFIX: &str = "opk_";

/// The documentation's test key and customer, seeded by `serve --demo`.
pub const DEMO_ACCOUNT_ID: &str = "acct_demo";
pub const DEMO_TEST_KEY: &str = "sk_test_4eC39HqLyjWDarjtT1zdp7dc";
pub const DEMO_CUSTOMER_ID: &str = "cus_123456789";
pub const DEMO_CUSTOMER_SCORE: i64 = 80;

/// The longest grace period a rolled key may keep working for: 30 days.
pub const MAX_KEY_GRACE_HOURS: i64 = 720;

/// Who a key speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A platform's secret key: one account, one mode.
    Platform { scope: Scope, key_id: String },
    /// The provider's claims staff: across accounts, review routes only; the key
    /// speaks for one operator (`op_`), a person, whatever key of theirs it is.
    Operator { key_id: String, operator_id: String },
}

/// A new account and its keys, shown once.
#[derive(Debug, Serialize)]
pub struct CreatedAccount {
    pub id: String,
    pub test_key: String,
    pub live_key: String,
}

/// SHA-256 of the key, hex. Keys carry ~190 random bits, so a fast hash is enough:
/// there is nothing to brute-force that a slow hash would protect.
pub fn hash_key(key: &str) -> String {
    // Into a buffer rather than by `hex::encode`, which collects char by char: it is on
    // every request, and took 2,200 instructions of a retrieve's 83,000.
    let mut hex = [0u8; 64];
    hex::encode_to_slice(Sha256::digest(key.as_bytes()), &mut hex).expect("32 bytes are 64 hex digits");
    String::from_utf8(hex.to_vec()).expect("hex digits are ASCII")
}

fn last4(key: &str) -> String {
    key.chars().rev().take(4).collect::<Vec<_>>().into_iter().rev().collect()
}

fn key_record(key: &str, account_id: Option<&str>, kind: KeyKind, livemode: bool, now: i64) -> KeyRecord {
    KeyRecord {
        id: Kind::ApiKey.new_id(),
        account_id: account_id.map(str::to_owned),
        kind,
        livemode,
        key_hash: hash_key(key),
        last4: last4(key),
        created: now,
        expires_at: None,
        revoked_at: None,
        operator_id: None,
        operator_disabled_at: None,
    }
}

pub async fn create_account(store: &Store, name: &str, now: i64) -> ApiResult<CreatedAccount> {
    let id = Kind::Account.new_id();
    let test_key = format!("{TEST_KEY_PREFIX}{}", random_secret(32));
    let live_key = format!("{LIVE_KEY_PREFIX}{}", random_secret(32));
    let mut tx = store.begin().await?;
    store::accounts::insert_account(&mut tx, &id, name, now).await?;
    store::accounts::insert_key(&mut tx, &key_record(&test_key, Some(&id), KeyKind::Secret, false, now)).await?;
    store::accounts::insert_key(&mut tx, &key_record(&live_key, Some(&id), KeyKind::Secret, true, now)).await?;
    tx.commit().await?;
    Ok(CreatedAccount { id, test_key, live_key })
}

/// A new key for the operator named `operator` (made the first time): the keys of
/// `casapay operator-keys create` all speak for that one person.
pub async fn create_operator_key(store: &Store, now: i64) -> ApiResult<String> {
    let mut tx = store.begin().await?;
    let operator = match store::operators::find_enabled_by_name(&mut tx, LEGACY_OPERATOR_NAME).await? {
        Some(o) => o,
        None => {
            let o = Operator {
                id: Kind::Operator.new_id(),
                name: LEGACY_OPERATOR_NAME.to_owned(),
                email: None,
                created: now,
                disabled_at: None,
            };
            store::operators::insert(&mut tx, &o).await?;
            o
        }
    };
    let key = new_operator_key(&mut tx, &operator.id, now).await?;
    tx.commit().await?;
    Ok(key)
}

/// Adds a key for `operator_id`; returns it (shown once).
pub(crate) async fn new_operator_key(conn: &mut store::Conn, operator_id: &str, now: i64) -> ApiResult<String> {
    let key = format!("{OPERATOR_KEY_PREFIX}{}", random_secret(32));
    let record = KeyRecord {
        operator_id: Some(operator_id.to_owned()),
        ..key_record(&key, None, KeyKind::Operator, false, now)
    };
    store::accounts::insert_key(conn, &record).await?;
    Ok(key)
}

/// Rolls the secret keys of an account and mode: a new key, shown once; the keys it
/// replaces keep working for `grace_seconds` (0: they stop now; at most
/// `MAX_KEY_GRACE_HOURS`).
pub async fn roll_secret_key(
    store: &Store,
    account_id: &str,
    livemode: bool,
    grace_seconds: i64,
    now: i64,
) -> ApiResult<String> {
    // Out of range, `now + grace` could wrap into the past and end the old keys at once.
    let expires_at = (0..=MAX_KEY_GRACE_HOURS * 3600)
        .contains(&grace_seconds)
        .then(|| now.checked_add(grace_seconds))
        .flatten()
        .ok_or_else(|| {
            ApiError::invalid(
                "parameter_out_of_range",
                "grace_hours",
                format!("The grace period must be between 0 and {MAX_KEY_GRACE_HOURS} hours."),
            )
        })?;
    let prefix = if livemode { LIVE_KEY_PREFIX } else { TEST_KEY_PREFIX };
    let key = format!("{prefix}{}", random_secret(32));
    let mut tx = store.begin().await?;
    if !store::accounts::account_exists(&mut tx, account_id).await? {
        return Err(crate::error::ApiError::no_such(Kind::Account.object(), account_id, Some("account")));
    }
    store::accounts::expire_secret_keys(&mut tx, account_id, livemode, expires_at).await?;
    store::accounts::insert_key(&mut tx, &key_record(&key, Some(account_id), KeyKind::Secret, livemode, now)).await?;
    tx.commit().await?;
    Ok(key)
}

/// Revokes a key (secret or operator) at once. Returns whether it was a live, known key.
pub async fn revoke_key(store: &Store, key: &str, now: i64) -> ApiResult<bool> {
    Ok(store.run(async |conn| store::accounts::revoke_key(conn, &hash_key(key), now).await).await?)
}

/// Finds who `key` speaks for, or `None` for a key that is unknown, revoked or expired.
pub async fn authenticate(store: &Store, key: &str, now: i64) -> ApiResult<Option<Principal>> {
    Ok(lookup(store, &hash_key(key), now).await?.map(|found| found.principal))
}

/// A key that authenticated, as the cache keeps it.
#[derive(Debug, Clone)]
struct FoundKey {
    principal: Principal,
    /// When a rolled key stops working (`None`: until revoked).
    expires_at: Option<i64>,
}

impl FoundKey {
    fn valid_at(&self, now: i64) -> bool {
        self.expires_at.is_none_or(|at| at > now)
    }
}

async fn lookup(store: &Store, hash: &str, now: i64) -> ApiResult<Option<FoundKey>> {
    let Some(record) = store.run(async |conn| store::accounts::find_key_by_hash(conn, hash).await).await? else {
        return Ok(None);
    };
    // The row was found by its hash; compare again in constant time so that the
    // answer never depends on how much of the hash matched.
    if !bool::from(record.key_hash.as_bytes().ct_eq(hash.as_bytes())) {
        return Ok(None);
    }
    if record.revoked_at.is_some() || record.expires_at.is_some_and(|at| at <= now) {
        return Ok(None);
    }
    // A disabled operator's keys stop with it (they are revoked too, but say it twice).
    if record.operator_disabled_at.is_some() {
        return Ok(None);
    }
    let principal = match (record.kind, record.account_id, record.operator_id) {
        (KeyKind::Secret, Some(account_id), _) => {
            Principal::Platform { scope: Scope { account_id, livemode: record.livemode }, key_id: record.id }
        }
        (KeyKind::Operator, _, Some(operator_id)) => Principal::Operator { key_id: record.id, operator_id },
        (KeyKind::Secret, None, _) | (KeyKind::Operator, _, None) => return Ok(None),
    };
    Ok(Some(FoundKey { principal, expires_at: record.expires_at }))
}

/// What the [`KeyCache`] knows of a key without looking it up.
#[derive(Debug)]
pub enum KnownKey {
    /// Authenticated less than `ttl` ago.
    Valid(Principal),
    /// Looked up less than `ttl` ago and not found (or revoked, or expired).
    Invalid,
    /// Authenticated in this process before, but not within `ttl`: look it up again.
    SeenValid,
    /// Never seen valid here.
    Unseen,
}

/// Keys that authenticated recently, by hash, so that most requests skip the key
/// lookup. An entry is trusted for `ttl` at most, then looked up again: a key revoked
/// or rolled without a grace period elsewhere (by the CLI, or through another
/// server on the same database) stops working within `ttl`. The expiry a rolled key
/// was given is checked on every request. Keys that were not found are remembered
/// for `ttl` too (a key created elsewhere works within `ttl` of a failed try), so a
/// client repeating a bad key costs one lookup per `ttl`. At most `capacity` keys of
/// each kind are kept.
pub struct KeyCache {
    ttl: Duration,
    capacity: usize,
    entries: Mutex<HashMap<String, (FoundKey, Instant)>>,
    /// Hashes looked up and not found, and when.
    unknown: Mutex<HashMap<String, Instant>>,
    /// Hashes that authenticated at least once in this process: never held back by
    /// the limit on failed authentication.
    seen_valid: Mutex<std::collections::HashSet<String>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Each map is consistent after any panic (each change is one insert or remove).
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl KeyCache {
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        KeyCache {
            ttl,
            capacity,
            entries: Mutex::new(HashMap::new()),
            unknown: Mutex::new(HashMap::new()),
            seen_valid: Mutex::new(std::collections::HashSet::new()),
        }
    }

    /// What is known of the key with this hash, without a lookup.
    pub fn known(&self, hash: &str, now: i64) -> KnownKey {
        if let Some(found) = self.cached(hash, now, Instant::now()) {
            return KnownKey::Valid(found.principal);
        }
        if !self.ttl.is_zero() {
            let unknown = lock(&self.unknown);
            if unknown.get(hash).is_some_and(|at| at.elapsed() < self.ttl) {
                return KnownKey::Invalid;
            }
        }
        if lock(&self.seen_valid).contains(hash) { KnownKey::SeenValid } else { KnownKey::Unseen }
    }

    /// Looks the key up in the store, and remembers the answer.
    pub async fn look_up(&self, store: &Store, hash: &str, now: i64) -> ApiResult<Option<Principal>> {
        let found = crate::service::again_if_connection_lost(store, || lookup(store, hash, now)).await?;
        self.remember(hash, found.as_ref(), Instant::now());
        Ok(found.map(|f| f.principal))
    }

    fn cached(&self, hash: &str, now: i64, at: Instant) -> Option<FoundKey> {
        if self.ttl.is_zero() {
            return None;
        }
        let entries = lock(&self.entries);
        let (found, fetched) = entries.get(hash)?;
        let fresh = at.saturating_duration_since(*fetched) < self.ttl;
        (fresh && found.valid_at(now)).then(|| found.clone())
    }

    fn remember(&self, hash: &str, found: Option<&FoundKey>, at: Instant) {
        if found.is_some() {
            let mut seen = lock(&self.seen_valid);
            if seen.len() >= self.capacity && !seen.contains(hash) {
                seen.clear();
            }
            seen.insert(hash.to_owned());
        }
        // Operator keys are looked up on every request: claims staff send few, and so
        // disabling an operator (`casapay operators disable`, from any process) stops
        // its keys at once on every server rather than within the ttl.
        let found = match found {
            Some(f) if matches!(f.principal, Principal::Operator { .. }) => {
                lock(&self.entries).remove(hash);
                lock(&self.unknown).remove(hash);
                return;
            }
            other => other,
        };
        if self.ttl.is_zero() {
            return;
        }
        let Some(found) = found else {
            lock(&self.entries).remove(hash);
            let mut unknown = lock(&self.unknown);
            if unknown.len() >= self.capacity && !unknown.contains_key(hash) {
                unknown.retain(|_, fetched| at.saturating_duration_since(*fetched) < self.ttl);
                if unknown.len() >= self.capacity {
                    unknown.clear();
                }
            }
            unknown.insert(hash.to_owned(), at);
            return;
        };
        lock(&self.unknown).remove(hash);
        let mut entries = lock(&self.entries);
        if entries.len() >= self.capacity && !entries.contains_key(hash) {
            entries.retain(|_, (_, fetched)| at.saturating_duration_since(*fetched) < self.ttl);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(hash.to_owned(), (found.clone(), at));
    }
}

/// Seeds the documentation's test key and customer; safe to run on every start.
pub async fn seed_demo(store: &Store, now: i64) -> ApiResult<()> {
    let mut tx = store.begin().await?;
    if !store::accounts::account_exists(&mut tx, DEMO_ACCOUNT_ID).await? {
        store::accounts::insert_account(&mut tx, DEMO_ACCOUNT_ID, "Demo", now).await?;
    }
    let hash = hash_key(DEMO_TEST_KEY);
    if store::accounts::find_key_by_hash(&mut tx, &hash).await?.is_none() {
        store::accounts::insert_key(
            &mut tx,
            &key_record(DEMO_TEST_KEY, Some(DEMO_ACCOUNT_ID), KeyKind::Secret, false, now),
        )
        .await?;
    }
    let scope = Scope { account_id: DEMO_ACCOUNT_ID.into(), livemode: false };
    let customer = Customer {
        id: DEMO_CUSTOMER_ID.into(),
        name: Some("Demo Tenant".into()),
        email: Some("tenant@example.com".into()),
        score: Some(DEMO_CUSTOMER_SCORE),
        metadata: Metadata::new(),
        // On the wall clock: the quickstarts run at today's date.
        test_clock: None,
        livemode: false,
        created: now,
    };
    store::customers::insert_if_absent(&mut tx, &scope, &customer).await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(key_id: &str, expires_at: Option<i64>) -> FoundKey {
        let scope = Scope { account_id: "acct_1".into(), livemode: false };
        FoundKey { principal: Principal::Platform { scope, key_id: key_id.into() }, expires_at }
    }

    #[test]
    fn a_key_hash_is_its_sha256_in_lowercase_hex() {
        // Stored hashes were written this way: a change here locks every key out.
        assert_eq!(hash_key("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn operator_keys_are_never_cached_so_disabling_stops_them_at_once() {
        let cache = KeyCache::new(Duration::from_secs(3600), 10);
        let hash = hash_key("opk_1");
        let op = FoundKey {
            principal: Principal::Operator { key_id: "key_1".into(), operator_id: "op_1".into() },
            expires_at: None,
        };
        cache.remember(&hash, Some(&op), Instant::now());
        assert!(cache.cached(&hash, 0, Instant::now()).is_none());
        assert!(matches!(cache.known(&hash, 0), KnownKey::SeenValid), "looked up again, never throttled");
    }

    #[test]
    fn cached_keys_are_trusted_for_the_ttl_only() {
        let cache = KeyCache::new(Duration::from_secs(1), 10);
        let t0 = Instant::now();
        let (hash, key) = (hash_key("k1"), found("k1", None));
        cache.remember(&hash, Some(&key), t0);
        assert!(cache.cached(&hash, 0, t0 + Duration::from_millis(999)).is_some());
        assert!(cache.cached(&hash, 0, t0 + Duration::from_secs(1)).is_none(), "stale: look it up again");
        cache.remember(&hash, None, t0);
        assert!(cache.cached(&hash, 0, t0).is_none(), "a failed lookup forgets the key");
    }

    #[test]
    fn a_rolled_key_stops_at_its_expiry_even_when_cached() {
        let cache = KeyCache::new(Duration::from_secs(3600), 10);
        let t0 = Instant::now();
        let (hash, key) = (hash_key("k1"), found("k1", Some(100)));
        cache.remember(&hash, Some(&key), t0);
        assert!(cache.cached(&hash, 99, t0).is_some());
        assert!(cache.cached(&hash, 100, t0).is_none());
    }

    #[test]
    fn the_cache_stays_within_its_capacity_and_a_zero_ttl_keeps_nothing() {
        let cache = KeyCache::new(Duration::from_secs(60), 3);
        let t0 = Instant::now();
        for i in 0..10 {
            let (hash, key) = (hash_key(&format!("k{i}")), found(&format!("k{i}"), None));
            cache.remember(&hash, Some(&key), t0);
            assert!(lock(&cache.entries).len() <= 3);
            assert!(cache.cached(&hash, 0, t0).is_some(), "the newest key is kept");
        }
        let off = KeyCache::new(Duration::ZERO, 3);
        let (hash, key) = (hash_key("k"), found("k", None));
        off.remember(&hash, Some(&key), t0);
        assert!(off.cached(&hash, 0, t0).is_none());
        assert!(lock(&off.entries).is_empty());
    }

    #[test]
    fn unknown_keys_are_remembered_for_the_ttl_and_valid_ones_for_good() {
        let cache = KeyCache::new(Duration::from_secs(60), 3);
        let (bad, good) = (hash_key("bad"), hash_key("good"));
        assert!(matches!(cache.known(&bad, 0), KnownKey::Unseen));
        cache.remember(&bad, None, Instant::now());
        assert!(matches!(cache.known(&bad, 0), KnownKey::Invalid), "no second lookup within the ttl");
        cache.remember(&good, Some(&found("good", None)), Instant::now());
        assert!(matches!(cache.known(&good, 0), KnownKey::Valid(_)));
        // Revoked since: the lookup fails, but the key was valid here once.
        cache.remember(&good, None, Instant::now() - Duration::from_secs(61));
        assert!(matches!(cache.known(&good, 0), KnownKey::SeenValid));
        for i in 0..10 {
            cache.remember(&hash_key(&format!("b{i}")), None, Instant::now());
            assert!(lock(&cache.unknown).len() <= 3, "bounded");
        }
    }

    #[test]
    fn key_hash_is_sha256_hex() {
        assert_eq!(hash_key("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(last4(DEMO_TEST_KEY), "p7dc");
    }
}
