//! Per-key rate limits (GCRA, from the governor crate), as Stripe applies them:
//! by default 25 requests per second for a test key and 100 for a live key.

use std::num::NonZeroU32;
use std::time::Duration;

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
}
