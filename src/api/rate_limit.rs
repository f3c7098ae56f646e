//! Per-key rate limits (GCRA, from the governor crate), as Stripe applies them:
//! by default 25 requests per second for a test key and 100 for a live key; and a
//! limit on failed authentication per client address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Requests per second per key; 0 turns a limit off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitConfig {
    pub test_per_second: u32,
    pub live_per_second: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig { test_per_second: 25, live_per_second: 100 }
    }
}

impl RateLimitConfig {
    pub const OFF: RateLimitConfig = RateLimitConfig { test_per_second: 0, live_per_second: 0 };
}

/// The limiters of one process, keyed by API key id.
pub struct RateLimits {
    test: Option<DefaultKeyedRateLimiter<String>>,
    live: Option<DefaultKeyedRateLimiter<String>>,
    clock: DefaultClock,
}

impl RateLimits {
    pub fn new(config: RateLimitConfig) -> Self {
        let limiter = |per_second: u32| NonZeroU32::new(per_second).map(|n| RateLimiter::keyed(Quota::per_second(n)));
        RateLimits {
            test: limiter(config.test_per_second),
            live: limiter(config.live_per_second),
            clock: DefaultClock::default(),
        }
    }

    /// Counts one request for `key_id`; on refusal, how long until one would pass.
    pub fn check(&self, key_id: &str, livemode: bool) -> Result<(), Duration> {
        let limiter = if livemode { &self.live } else { &self.test };
        match limiter {
            None => Ok(()),
            Some(l) => l.check_key(&key_id.to_owned()).map_err(|not_until| not_until.wait_time_from(self.clock.now())),
        }
    }

    /// Forgets keys that have been quiet long enough to be back at full allowance.
    pub fn shrink(&self) {
        for l in [&self.test, &self.live].into_iter().flatten() {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }
}

/// Failed authentications per client address: an address that presents more unknown
/// or revoked keys than its allowance is answered 429 for a while, without a key
/// lookup, so a flood of made-up keys costs no database round trips. Keys that
/// authenticated before in this process are never held back (see `KeyCache`).
pub struct AuthFailures {
    limiter: Option<DefaultKeyedRateLimiter<IpAddr>>,
    /// Addresses over their allowance, until when.
    blocked: Mutex<HashMap<IpAddr, Instant>>,
    clock: DefaultClock,
}

/// Most addresses remembered as blocked at once; beyond it the oldest are forgotten.
const MAX_BLOCKED: usize = 10_000;

impl AuthFailures {
    /// `per_second` failures a second per address, with bursts of `burst`; 0 turns it off.
    pub fn new(per_second: u32, burst: u32) -> Self {
        let limiter = NonZeroU32::new(per_second)
            .map(|n| RateLimiter::keyed(Quota::per_second(n).allow_burst(NonZeroU32::new(burst.max(1)).unwrap_or(n))));
        AuthFailures { limiter, blocked: Mutex::new(HashMap::new()), clock: DefaultClock::default() }
    }

    fn blocked(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Instant>> {
        self.blocked.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// How long `addr` must still wait before a key it presents is looked up, if at all.
    pub fn blocked_for(&self, addr: IpAddr) -> Option<Duration> {
        self.limiter.as_ref()?;
        let now = Instant::now();
        let mut blocked = self.blocked();
        match blocked.get(&addr) {
            Some(until) if *until > now => Some(*until - now),
            Some(_) => {
                blocked.remove(&addr);
                None
            }
            None => None,
        }
    }

    /// Counts a failed authentication from `addr`; returns the wait once the address
    /// is over its allowance.
    pub fn fail(&self, addr: IpAddr) -> Option<Duration> {
        let limiter = self.limiter.as_ref()?;
        let wait = limiter.check_key(&addr).err()?.wait_time_from(self.clock.now());
        let now = Instant::now();
        let mut blocked = self.blocked();
        if blocked.len() >= MAX_BLOCKED {
            blocked.retain(|_, until| *until > now);
            if blocked.len() >= MAX_BLOCKED {
                blocked.clear();
            }
        }
        blocked.insert(addr, now + wait);
        Some(wait)
    }

    /// Forgets addresses that are back at full allowance.
    pub fn shrink(&self) {
        let now = Instant::now();
        self.blocked().retain(|_, until| *until > now);
        if let Some(l) = &self.limiter {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_over_the_quota_is_refused_with_a_wait() {
        let limits = RateLimits::new(RateLimitConfig { test_per_second: 5, live_per_second: 0 });
        let passed = (0..20).filter(|_| limits.check("key_a", false).is_ok()).count();
        assert!((5..=6).contains(&passed), "{passed} of 20 passed");
        let wait = limits.check("key_a", false).unwrap_err();
        assert!(wait <= Duration::from_secs(1));
        assert!(limits.check("key_b", false).is_ok(), "each key has its own allowance");
        assert!((0..1000).all(|_| limits.check("key_a", true).is_ok()), "0 turns the live limit off");
    }

    #[test]
    fn an_address_over_its_failure_allowance_is_blocked_and_others_are_not() {
        let failures = AuthFailures::new(1, 3);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert_eq!((0..3).filter_map(|_| failures.fail(a)).count(), 0, "the burst passes");
        assert!(failures.blocked_for(a).is_none());
        let wait = failures.fail(a).expect("the fourth failure in a burst is over the allowance");
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(1));
        assert!(failures.blocked_for(a).is_some());
        assert!(failures.blocked_for(b).is_none(), "each address has its own allowance");
        let off = AuthFailures::new(0, 3);
        assert!((0..100).all(|_| off.fail(a).is_none()) && off.blocked_for(a).is_none(), "0 turns it off");
    }
}
