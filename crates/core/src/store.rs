//! The storage seam. Back ends (SQLite, PostgreSQL) implement [`Store`]; the domain never
//! sees SQL.

use crate::account::Account;
use crate::keypair::{KeyPair, Namespace};
use async_trait::async_trait;
use thiserror::Error;

/// Which uniqueness rule a write broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conflict {
    /// Another account has this name.
    AccountName,
    /// Another key pair of the account (and namespace, region) has this name.
    KeyPairName,
    /// The generated id is taken (astronomically rare; the caller retries).
    Id,
}

/// A storage failure.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// A uniqueness rule was broken.
    #[error("conflict: {0:?}")]
    Conflict(Conflict),
    /// The addressed row does not exist (for this account).
    #[error("not found: {0}")]
    NotFound(String),
    /// The back end failed.
    #[error("storage failure: {0}")]
    Backend(String),
}

/// Result of a store call.
pub type StoreResult<T> = Result<T, StoreError>;

/// Everything Keyplane persists. Every call that touches tenant data is scoped by account id,
/// so isolation does not depend on callers remembering to filter.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Insert a new account; `Conflict(AccountName)` if the name is taken.
    async fn insert_account(&self, account: &Account) -> StoreResult<()>;
    /// Look an account up by name.
    async fn account_by_name(&self, name: &str) -> StoreResult<Option<Account>>;
    /// Look an account up by its Tencent SecretId.
    async fn account_by_secret_id(&self, secret_id: &str) -> StoreResult<Option<Account>>;
    /// Look an account up by its Alibaba AccessKeyId.
    async fn account_by_access_key_id(&self, access_key_id: &str) -> StoreResult<Option<Account>>;
    /// All accounts, oldest first.
    async fn list_accounts(&self) -> StoreResult<Vec<Account>>;

    /// Insert a key pair; `Conflict(KeyPairName)` if the name is taken.
    async fn insert_key_pair(&self, key_pair: &KeyPair) -> StoreResult<()>;
    /// The account's key pairs of a namespace (and region, when given), oldest first.
    async fn list_key_pairs(
        &self,
        account_id: &str,
        namespace: Namespace,
        region: Option<&str>,
    ) -> StoreResult<Vec<KeyPair>>;
    /// Rename and/or re-describe a key pair; `NotFound` or `Conflict(KeyPairName)`.
    async fn update_key_pair(
        &self,
        account_id: &str,
        namespace: Namespace,
        id: &str,
        name: Option<&str>,
        description: Option<&str>,
    ) -> StoreResult<()>;
    /// Delete key pairs, all or none; `NotFound(id)` names the first missing one.
    async fn delete_key_pairs(
        &self,
        account_id: &str,
        namespace: Namespace,
        ids: &[String],
    ) -> StoreResult<()>;

    /// Record a request nonce. Returns `false` when the same nonce was already recorded in
    /// `scope` and has not expired (a replay). Expired nonces are purged on the way.
    async fn remember_nonce(
        &self,
        scope: &str,
        nonce: &str,
        expires_at: i64,
        now: i64,
    ) -> StoreResult<bool>;
}
