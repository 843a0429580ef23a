//! Request nonces: a replay is refused from memory on the node that saw the nonce, and every
//! fresh nonce is also recorded in the store, so that every other node refuses it too.

use crate::error::DomainError;
use crate::service::Core;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// Nonces kept in memory at most; the oldest go first beyond that (the store still refuses
/// their replays).
const CAPACITY: usize = 200_000;

/// The nonces this node recorded, until they expire.
#[derive(Default)]
pub(crate) struct NonceSet {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// `scope \n nonce` -> expiry (unix seconds).
    seen: HashMap<String, i64>,
    /// The same keys in the order they were recorded, with their expiry.
    order: VecDeque<(i64, String)>,
}

fn key(scope: &str, nonce: &str) -> String {
    let mut k = String::with_capacity(scope.len() + 1 + nonce.len());
    k.push_str(scope);
    k.push('\n');
    k.push_str(nonce);
    k
}

impl NonceSet {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Record the nonce; `false` when it was recorded here before and has not expired.
    fn insert(&self, scope: &str, nonce: &str, expires_at: i64, now: i64) -> bool {
        let mut s = self.lock();
        while let Some((exp, _)) = s.order.front() {
            if *exp > now && s.order.len() < CAPACITY {
                break;
            }
            let (exp, k) = s.order.pop_front().expect("front exists");
            if s.seen.get(&k) == Some(&exp) {
                s.seen.remove(&k);
            }
        }
        let k = key(scope, nonce);
        if s.seen.get(&k).is_some_and(|exp| *exp > now) {
            return false;
        }
        s.seen.insert(k.clone(), expires_at);
        s.order.push_back((expires_at, k));
        true
    }

    /// Forget a nonce recorded by [`NonceSet::insert`] (its durable record failed).
    fn remove(&self, scope: &str, nonce: &str) {
        self.lock().seen.remove(&key(scope, nonce));
    }
}

impl Core {
    /// Record a request nonce in `scope` until `expires_at` (unix seconds): `false` when it
    /// was used before and has not expired (a replay). A replay of a nonce this node saw is
    /// refused without asking the store; a fresh one is recorded in the store too, which
    /// answers for the nonces other nodes saw.
    pub async fn remember_nonce(
        &self,
        scope: &str,
        nonce: &str,
        expires_at: i64,
    ) -> Result<bool, DomainError> {
        let now = self.now();
        let nonces = self.nonce_set();
        if !nonces.insert(scope, nonce, expires_at, now) {
            return Ok(false);
        }
        match self
            .store()
            .remember_nonce(scope, nonce, expires_at, now)
            .await
        {
            Ok(fresh) => Ok(fresh),
            Err(e) => {
                nonces.remove(scope, nonce);
                Err(DomainError::internal(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replays_are_refused_until_they_expire() {
        let set = NonceSet::default();
        assert!(set.insert("s", "n1", 110, 100));
        assert!(!set.insert("s", "n1", 111, 101), "a replay");
        assert!(set.insert("t", "n1", 110, 101), "another scope");
        assert!(set.insert("s", "n1", 200, 110), "expired: fresh again");
        assert!(!set.insert("s", "n1", 201, 150));
        set.remove("s", "n1");
        assert!(set.insert("s", "n1", 210, 150));
    }

    #[test]
    fn expired_entries_are_purged() {
        let set = NonceSet::default();
        for i in 0..100 {
            assert!(set.insert("s", &i.to_string(), 10 + i, 0));
        }
        assert!(set.insert("s", "late", 500, 200));
        let s = set.lock();
        assert_eq!((s.seen.len(), s.order.len()), (1, 1));
    }
}
