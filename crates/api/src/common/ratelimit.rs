//! Per-account, per-action request rate limits (the providers document 10 requests/s per API).

use governor::clock::DefaultClock;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use std::num::NonZeroU32;

type Key = (String, String);
type Keyed = RateLimiter<Key, DefaultKeyedStateStore<Key>, DefaultClock>;

/// An action's rate as a fraction of the configured rate: `per` of every `of` requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Share {
    /// Numerator.
    pub per: u32,
    /// Denominator (not 0).
    pub of: u32,
}

/// Actions the providers document at another rate than their 10 a second, as a share of the
/// configured rate: Lighthouse's DisassociateInstancesKeyPairs and CloudAudit's LookUpEvents
/// are documented at 20 a second, ActionTrail's LookupEvents at 2.
pub const DOCUMENTED_RATES: &[(&str, Share)] = &[
    (
        "lighthouse.DisassociateInstancesKeyPairs",
        Share { per: 2, of: 1 },
    ),
    ("cloudaudit.LookUpEvents", Share { per: 2, of: 1 }),
    ("actiontrail.LookupEvents", Share { per: 1, of: 5 }),
];

/// A keyed token bucket: one bucket per (account, dialect action), at the configured rate or
/// the action's own multiple of it.
pub struct Limiter {
    base: Option<Keyed>,
    /// Actions with a rate of their own, and their limiter.
    own: Vec<(&'static str, Keyed)>,
}

fn keyed(per_second: u32) -> Option<Keyed> {
    NonZeroU32::new(per_second).map(|n| RateLimiter::keyed(Quota::per_second(n)))
}

impl Limiter {
    /// `per_second` requests a second per key, with bursts of the same size; 0 disables it.
    pub fn new(per_second: u32) -> Limiter {
        Limiter::with_rates(per_second, &[])
    }

    /// Like [`Limiter::new`], with each action of `rates` at its share of `per_second`, and
    /// at least 1 a second (0 still disables every limit).
    pub fn with_rates(per_second: u32, rates: &[(&'static str, Share)]) -> Limiter {
        let share = |s: Share| {
            let rate = u64::from(per_second) * u64::from(s.per) / u64::from(s.of.max(1));
            u32::try_from(rate.max(1)).unwrap_or(u32::MAX)
        };
        Limiter {
            base: keyed(per_second),
            own: if per_second == 0 {
                Vec::new()
            } else {
                rates
                    .iter()
                    .filter_map(|&(action, s)| keyed(share(s)).map(|l| (action, l)))
                    .collect()
            },
        }
    }

    /// Take one token; `false` when the key is over its rate.
    pub fn check(&self, account_id: &str, action: &str) -> bool {
        let limiter = self
            .own
            .iter()
            .find(|(a, _)| *a == action)
            .map(|(_, l)| l)
            .or(self.base.as_ref());
        match limiter {
            None => true,
            Some(l) => l
                .check_key(&(account_id.to_string(), action.to_string()))
                .is_ok(),
        }
    }

    /// Drop idle buckets (called periodically).
    pub fn housekeeping(&self) {
        for l in self.base.iter().chain(self.own.iter().map(|(_, l)| l)) {
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

    #[test]
    fn documented_actions_have_their_own_rate() {
        let l = Limiter::with_rates(10, DOCUMENTED_RATES);
        let fast = "lighthouse.DisassociateInstancesKeyPairs";
        let passed = (0..45).filter(|_| l.check("a", fast)).count();
        assert!((20..=21).contains(&passed), "{passed}");
        let passed = (0..45)
            .filter(|_| l.check("a", "lighthouse.DescribeInstances"))
            .count();
        assert!((10..=11).contains(&passed), "{passed}");
        let slow = "actiontrail.LookupEvents";
        let passed = (0..45).filter(|_| l.check("a", slow)).count();
        assert!((2..=3).contains(&passed), "{passed}");
        let off = Limiter::with_rates(0, DOCUMENTED_RATES);
        assert!((0..100).all(|_| off.check("a", fast)));
        assert!((0..100).all(|_| off.check("a", slow)));
        let one = Limiter::with_rates(1, DOCUMENTED_RATES);
        assert!(
            one.check("a", slow),
            "a share of a low rate is still 1 a second"
        );
    }
}
