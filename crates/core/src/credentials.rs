//! Which account a SecretId or AccessKeyId belongs to, answered from memory, and credential
//! rotation.
//!
//! Every signed request needs its credential's account with the secret opened. Reading the
//! account and opening its secrets for each request costs a store round trip; this node keeps
//! the opened accounts in memory instead, and stays exact with three rules:
//!
//! 1. **A store-wide credentials generation.** Every change of what a credential is or opens to
//!    ([`Store::replace_account_credentials`], [`Store::replace_account_secrets`]) increases
//!    one counter in the store, in the change's own transaction. Every node sharing the store
//!    (several servers on one PostgreSQL, a server and `keyplane account` on one SQLite file)
//!    sees the same counter.
//! 2. **Answers from memory only while confirmed.** The node answers from its cache only while
//!    a read of the counter that *began* less than [`FRESHNESS`] ago found the generation the
//!    cache was filled under. Otherwise the next lookup reads the counter first (one read at a
//!    time: lookups arriving meanwhile wait for it), and the cache is emptied when it moved.
//!    Under load that is one small read per node every [`FRESHNESS`], whatever the request
//!    rate; an account read is added only on a miss.
//! 3. **A change returns only when every node has seen it.** [`Core::rotate_credentials`]
//!    commits, empties this node's cache, and returns [`SETTLE`] (twice [`FRESHNESS`]) later.
//!    By then every other node either confirmed a read that began after the commit (and so
//!    emptied its cache) or no longer answers from memory. Once the call returns, the old
//!    credential is refused on every node at once.
//!
//! Why not PostgreSQL `LISTEN`/`NOTIFY`: a notification arrives some time after the commit,
//! with no bound on the delay and nothing at all while a node's listening connection is down,
//! so it cannot say when a change is in force everywhere, and it does not exist on SQLite,
//! where the admin command is another process. The counter gives a bound, on both back ends.
//!
//! [`Store::replace_account_credentials`]: crate::store::Store::replace_account_credentials
//! [`Store::replace_account_secrets`]: crate::store::Store::replace_account_secrets

use crate::account::Account;
use crate::error::DomainError;
use crate::service::Core;
use crate::store::{Conflict, StoreError};
use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

/// How long a confirmation of the credentials generation lets a node answer from memory.
pub const FRESHNESS: Duration = Duration::from_millis(500);
/// How long a credential change waits after its commit before it returns: by then no node
/// answers from a cache filled before the change.
pub const SETTLE: Duration = Duration::from_millis(2 * FRESHNESS.as_millis() as u64);
/// Cached accounts at most; beyond that the cache starts again empty.
const CAPACITY: usize = 50_000;

/// The opened accounts this node has looked up, by both credential ids.
#[derive(Default)]
pub(crate) struct CredentialCache {
    state: RwLock<CacheState>,
    /// Held while the generation is read, so that concurrent lookups share one read.
    refresh: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct CacheState {
    /// The generation the entries were read under.
    generation: Option<i64>,
    /// When the read that last confirmed `generation` began.
    confirmed: Option<Instant>,
    by_secret_id: HashMap<String, Account>,
    by_access_key_id: HashMap<String, Account>,
}

/// Which credential id a lookup gives.
#[derive(Clone, Copy)]
enum CredentialId<'a> {
    Tencent(&'a str),
    Alibaba(&'a str),
}

impl CredentialCache {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, CacheState> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, CacheState> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The generation, when confirmed within [`FRESHNESS`].
    fn fresh(&self) -> Option<i64> {
        let s = self.read();
        let confirmed = s.confirmed?;
        (confirmed.elapsed() < FRESHNESS).then_some(s.generation?)
    }

    /// Record that a read begun at `started` found `generation`; the entries go when it moved.
    fn confirm(&self, generation: i64, started: Instant) {
        let mut s = self.write();
        if s.generation != Some(generation) {
            s.by_secret_id.clear();
            s.by_access_key_id.clear();
            s.generation = Some(generation);
            s.confirmed = Some(started);
        } else if s.confirmed.is_none_or(|c| c < started) {
            s.confirmed = Some(started);
        }
    }

    fn get(&self, id: CredentialId<'_>) -> Option<Account> {
        let s = self.read();
        match id {
            CredentialId::Tencent(id) => s.by_secret_id.get(id).cloned(),
            CredentialId::Alibaba(id) => s.by_access_key_id.get(id).cloned(),
        }
    }

    /// Keep `account`, read under `generation`, unless the generation has moved since.
    fn insert(&self, generation: i64, account: &Account) {
        let mut s = self.write();
        if s.generation != Some(generation) {
            return;
        }
        if s.by_secret_id.len() >= CAPACITY {
            s.by_secret_id.clear();
            s.by_access_key_id.clear();
        }
        s.by_secret_id
            .insert(account.secret_id.clone(), account.clone());
        s.by_access_key_id
            .insert(account.access_key_id.clone(), account.clone());
    }

    /// Forget every entry and the confirmation (after a change made through this node).
    pub(crate) fn clear(&self) {
        let mut s = self.write();
        s.by_secret_id.clear();
        s.by_access_key_id.clear();
        s.generation = None;
        s.confirmed = None;
    }
}

fn store_err(e: StoreError) -> DomainError {
    DomainError::internal(e)
}

impl Core {
    /// The credentials generation, confirmed within [`FRESHNESS`] (read now if it was not).
    async fn confirmed_generation(&self) -> Result<i64, DomainError> {
        let cache = self.credential_cache();
        if let Some(g) = cache.fresh() {
            return Ok(g);
        }
        let _one_read = cache.refresh.lock().await;
        if let Some(g) = cache.fresh() {
            return Ok(g);
        }
        let started = Instant::now();
        let g = self
            .store()
            .credentials_generation()
            .await
            .map_err(store_err)?;
        cache.confirm(g, started);
        Ok(g)
    }

    async fn account_by_credential(
        &self,
        id: CredentialId<'_>,
    ) -> Result<Option<Account>, DomainError> {
        let generation = self.confirmed_generation().await?;
        let cache = self.credential_cache();
        if let Some(a) = cache.get(id) {
            return Ok(Some(a));
        }
        let stored = match id {
            CredentialId::Tencent(id) => self.store().account_by_secret_id(id).await,
            CredentialId::Alibaba(id) => self.store().account_by_access_key_id(id).await,
        };
        let opened = self.opened(stored.map_err(store_err)?)?;
        if let Some(a) = &opened {
            cache.insert(generation, a);
        }
        Ok(opened)
    }

    /// The account holding Tencent SecretId `secret_id`, secrets opened (from memory while
    /// the credentials are confirmed unchanged, see the module documentation).
    pub async fn account_by_secret_id(
        &self,
        secret_id: &str,
    ) -> Result<Option<Account>, DomainError> {
        self.account_by_credential(CredentialId::Tencent(secret_id))
            .await
    }

    /// The account holding Alibaba AccessKeyId `access_key_id`, secrets opened (from memory
    /// while the credentials are confirmed unchanged).
    pub async fn account_by_access_key_id(
        &self,
        access_key_id: &str,
    ) -> Result<Option<Account>, DomainError> {
        self.account_by_credential(CredentialId::Alibaba(access_key_id))
            .await
    }

    /// Give the account named `name` new credentials (SecretId and SecretKey, AccessKeyId
    /// and AccessKeySecret) and return it with them. The old ones stop working: when this
    /// returns, every node sharing the store refuses them ([`SETTLE`] after the commit).
    pub async fn rotate_credentials(&self, name: &str) -> Result<Account, DomainError> {
        let current = self.account_by_name(name).await?.ok_or_else(|| {
            DomainError::InvalidParameterValue {
                param: "name".into(),
                reason: format!("there is no account named `{name}`"),
            }
        })?;
        for _ in 0..5 {
            let mut fresh = Account::generate(&current.name, current.is_admin, current.created_at);
            fresh.id = current.id.clone();
            let sealed = self.master_key().seal_account(&fresh);
            match self.store().replace_account_credentials(&sealed).await {
                Ok(()) => {
                    self.credential_cache().clear();
                    tokio::time::sleep(SETTLE).await;
                    return Ok(fresh);
                }
                Err(StoreError::Conflict(Conflict::Id)) => continue,
                Err(StoreError::NotFound(_)) => {
                    return Err(DomainError::InvalidParameterValue {
                        param: "name".into(),
                        reason: format!("there is no account named `{name}`"),
                    })
                }
                Err(e) => return Err(store_err(e)),
            }
        }
        Err(DomainError::internal("could not allocate credential ids"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(name: &str) -> Account {
        Account::generate(name, false, 0)
    }

    #[test]
    fn answers_only_while_confirmed_and_forgets_when_the_generation_moves() {
        let cache = CredentialCache::default();
        assert_eq!(cache.fresh(), None, "nothing confirmed yet");
        let a = account("a");
        cache.insert(1, &a);
        assert!(
            cache.get(CredentialId::Tencent(&a.secret_id)).is_none(),
            "kept only under a confirmed generation"
        );
        cache.confirm(1, Instant::now());
        assert_eq!(cache.fresh(), Some(1));
        cache.insert(1, &a);
        let by_id = cache.get(CredentialId::Tencent(&a.secret_id)).unwrap();
        assert_eq!(by_id.id, a.id);
        let by_key = cache.get(CredentialId::Alibaba(&a.access_key_id)).unwrap();
        assert_eq!(by_key.access_key_secret, a.access_key_secret);
        // Confirmed again unchanged: the entries stay.
        cache.confirm(1, Instant::now());
        assert!(cache.get(CredentialId::Tencent(&a.secret_id)).is_some());
        // Read under the old generation, kept after it moved: refused.
        cache.confirm(2, Instant::now());
        assert!(cache.get(CredentialId::Tencent(&a.secret_id)).is_none());
        cache.insert(1, &a);
        assert!(cache.get(CredentialId::Tencent(&a.secret_id)).is_none());
        cache.insert(2, &a);
        assert!(cache.get(CredentialId::Tencent(&a.secret_id)).is_some());
        cache.clear();
        assert_eq!(cache.fresh(), None);
        assert!(cache.get(CredentialId::Alibaba(&a.access_key_id)).is_none());
    }

    #[test]
    fn a_confirmation_lasts_as_long_as_freshness_from_when_its_read_began() {
        let cache = CredentialCache::default();
        let Some(long_ago) = Instant::now().checked_sub(FRESHNESS * 2) else {
            return; // a clock too young to tell
        };
        cache.confirm(7, long_ago);
        assert_eq!(cache.fresh(), None, "the read began too long ago");
        cache.confirm(7, Instant::now());
        assert_eq!(cache.fresh(), Some(7));
        cache.confirm(7, long_ago);
        assert_eq!(
            cache.fresh(),
            Some(7),
            "an older read does not take it back"
        );
        assert!(SETTLE > FRESHNESS);
    }
}
