//! Per-account, per-action request rate limits (the providers document 10 requests/s per API).

use governor::clock::DefaultClock;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use std::num::NonZeroU32;

type Key = (String, String);

/// A keyed token bucket: one bucket per (account, dialect action).
pub struct Limiter {
    inner: Option<RateLimiter<Key, DefaultKeyedStateStore<Key>, DefaultClock>>,
}

impl Limiter {
    /// `per_second` requests a second per key, with bursts of the same size; 0 disables it.
    pub fn new(per_second: u32) -> Limiter {
        Limiter {
            inner: NonZeroU32::new(per_second).map(|n| RateLimiter::keyed(Quota::per_second(n))),
        }
    }

    /// Take one token; `false` when the key is over its rate.
    pub fn check(&self, account_id: &str, action: &str) -> bool {
        match &self.inner {
            None => true,
            Some(l) => l
                .check_key(&(account_id.to_string(), action.to_string()))
                .is_ok(),
        }
    }

    /// Drop idle buckets (called periodically).
    pub fn housekeeping(&self) {
        if let Some(l) = &self.inner {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_key() {
        let l = Limiter::new(10);
        let passed = (0..25).filter(|_| l.check("a", "DescribeKeyPairs")).count();
        assert!((10..=11).contains(&passed), "{passed}");
        assert!(
            l.check("b", "DescribeKeyPairs"),
            "other accounts are independent"
        );
        assert!(
            l.check("a", "ImportKeyPair"),
            "other actions are independent"
        );
        let off = Limiter::new(0);
        assert!((0..100).all(|_| off.check("a", "x")));
    }
}
