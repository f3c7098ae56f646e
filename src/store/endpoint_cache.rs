//! The enabled webhook endpoints of each scope, kept between transactions, so that a
//! write's outbox does not read them on every request (a round trip per write).
//!
//! Correct only while this process hears of every change to endpoints, so the cache is
//! off until told it is `live`:
//! - SQLite: one server owns a file (serve's lock), and its own changes invalidate the
//!   cache when their transaction commits (`Tx::commit`);
//! - PostgreSQL: other replicas change endpoints too. A trigger (migration 0017) sends
//!   `NOTIFY casapay_webhook_endpoints` on every change that matters to the outbox, and
//!   the listener job (`jobs::endpoint_listener`) invalidates the cache on each. While its
//!   connection is down the cache is off, and every change it might have missed is
//!   forgotten with the whole cache when it comes back.
//!
//! A change made on another replica reaches this one's outbox when its notification
//! arrives (milliseconds after its commit); one made here, before its write is answered.
//!
//! A fill races an invalidation: it reads the endpoints, a change commits and
//! invalidates, and the fill then stores what it read before. Each fill carries the
//! generation it started at and is dropped if an invalidation came in between.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::Scope;
use super::webhooks::EnabledEndpoints;

/// The PostgreSQL channel the endpoints trigger notifies.
pub const CHANNEL: &str = "casapay_webhook_endpoints";

/// Scopes kept at most; past that the cache starts again empty, so its memory stays bounded.
const MAX_SCOPES: usize = 10_000;

#[derive(Default)]
pub struct EndpointCache {
    live: AtomicBool,
    generation: AtomicU64,
    entries: Mutex<HashMap<Scope, EnabledEndpoints>>,
}

impl EndpointCache {
    /// The scope's endpoints, when the cache is live and holds them.
    pub fn get(&self, scope: &Scope) -> Option<EnabledEndpoints> {
        if !self.live.load(Ordering::Acquire) {
            return None;
        }
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).get(scope).cloned()
    }

    /// Taken before reading the endpoints that `fill` will store.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Keeps what a read found, unless the cache is off or was invalidated since
    /// `generation` was taken.
    pub fn fill(&self, scope: &Scope, found: &EnabledEndpoints, generation: u64) {
        if !self.live.load(Ordering::Acquire) {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        // Checked under the lock, which `invalidate` takes to clear.
        if self.generation.load(Ordering::Acquire) != generation {
            return;
        }
        if entries.len() >= MAX_SCOPES {
            entries.clear();
        }
        entries.insert(scope.clone(), found.clone());
    }

    /// Forgets every scope's endpoints: some endpoint changed.
    pub fn invalidate(&self) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        self.generation.fetch_add(1, Ordering::AcqRel);
        entries.clear();
    }

    /// Turns the cache on or off; either way it starts empty.
    pub fn set_live(&self, live: bool) {
        self.invalidate();
        self.live.store(live, Ordering::Release);
        // A fill that read before the switch and stores after it is dropped by this.
        self.invalidate();
    }

    pub fn is_live(&self) -> bool {
        self.live.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(account: &str) -> Scope {
        Scope { account_id: account.into(), livemode: false }
    }

    fn endpoints(id: &str) -> EnabledEndpoints {
        vec![(id.to_owned(), vec!["*".to_owned()])]
    }

    #[test]
    fn off_until_live_and_empty_again_when_switched() {
        let cache = EndpointCache::default();
        let generation = cache.generation();
        cache.fill(&scope("a"), &endpoints("we_1"), generation);
        assert_eq!(cache.get(&scope("a")), None, "off: keeps nothing");
        cache.set_live(true);
        let generation = cache.generation();
        cache.fill(&scope("a"), &endpoints("we_1"), generation);
        assert_eq!(cache.get(&scope("a")), Some(endpoints("we_1")));
        assert_eq!(cache.get(&scope("b")), None);
        cache.set_live(false);
        assert_eq!(cache.get(&scope("a")), None);
        cache.set_live(true);
        assert_eq!(cache.get(&scope("a")), None, "what it held before going off is gone");
    }

    #[test]
    fn a_fill_that_read_before_an_invalidation_is_dropped() {
        let cache = EndpointCache::default();
        cache.set_live(true);
        let generation = cache.generation();
        cache.invalidate();
        cache.fill(&scope("a"), &endpoints("we_old"), generation);
        assert_eq!(cache.get(&scope("a")), None);
    }

    #[test]
    fn invalidate_forgets_every_scope() {
        let cache = EndpointCache::default();
        cache.set_live(true);
        for account in ["a", "b"] {
            let generation = cache.generation();
            cache.fill(&scope(account), &endpoints("we_1"), generation);
        }
        cache.invalidate();
        assert_eq!((cache.get(&scope("a")), cache.get(&scope("b"))), (None, None));
    }

    /// Every write of `store::webhooks` that can change which endpoints are enabled, or
    /// for what, marks its transaction (whose commit then invalidates the cache).
    #[test]
    fn every_endpoint_write_that_matters_marks_its_transaction() {
        let source = include_str!("webhooks.rs");
        let mut checked = 0;
        for function in source.split("\npub async fn ").skip(1) {
            let body = function.split("\n}\n").next().unwrap();
            let writes =
                ["INSERT INTO webhook_endpoints", "DELETE FROM webhook_endpoints", "UPDATE webhook_endpoints SET"]
                    .iter()
                    .any(|w| body.contains(w));
            // The dispatcher's rate slots change counters only.
            let matters = body.contains("status") || body.contains("enabled_events") || !body.contains("UPDATE");
            if writes && matters {
                let name = body.split('(').next().unwrap();
                assert!(
                    body.contains("tx.note_endpoint_change()"),
                    "{name} changes endpoints without marking its transaction"
                );
                checked += 1;
            }
        }
        assert_eq!(checked, 3, "insert, update and delete");
    }

    #[test]
    fn stays_bounded() {
        let cache = EndpointCache::default();
        cache.set_live(true);
        for i in 0..MAX_SCOPES + 5 {
            let generation = cache.generation();
            cache.fill(&scope(&format!("acct_{i}")), &endpoints("we_1"), generation);
        }
        assert!(cache.entries.lock().unwrap().len() <= MAX_SCOPES);
    }
}
