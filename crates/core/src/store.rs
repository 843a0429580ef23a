//! The storage seam. Back ends (SQLite, PostgreSQL) implement [`Store`]; the domain never
//! sees SQL.

use crate::account::Account;
use crate::audit::{AuditEvent, AuditPage, AuditQuery};
use crate::instance::{Instance, InstanceState, NewOperation, OpState, Operation};
use crate::keypair::{KeyPair, Namespace};
use crate::query::{InstancePage, InstanceQuery};
use crate::service::{KeyPairPage, KeyPairQuery};
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
    /// The account already holds this public key (in the namespace and region).
    PublicKey,
    /// The account holds as many key pairs as it may.
    Quota,
    /// The instance already has an operation in progress.
    InstanceBusy,
    /// The instance's address is taken.
    Address,
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

/// One account's secrets, replaced only if they still hold the old values (another node may
/// have replaced them first). The values are opaque to the store.
#[derive(Debug, Clone)]
pub struct SecretUpdate {
    /// The account.
    pub account_id: String,
    /// The SecretKey as stored now.
    pub old_secret_key: crate::account::Secret,
    /// What to store instead.
    pub new_secret_key: crate::account::Secret,
    /// The AccessKeySecret as stored now.
    pub old_access_key_secret: crate::account::Secret,
    /// What to store instead.
    pub new_access_key_secret: crate::account::Secret,
}

/// What a store call does, for its latency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    /// A read.
    Read,
    /// A write (a transaction).
    Write,
}

impl CallKind {
    /// `read` or `write`.
    pub fn as_str(self) -> &'static str {
        match self {
            CallKind::Read => "read",
            CallKind::Write => "write",
        }
    }
}

/// Where a store reports how long its calls took.
pub trait LatencySink: Send + Sync + 'static {
    /// A call of `kind` on back end `backend` took `seconds`, waiting for a connection included.
    fn observe(&self, backend: &'static str, kind: CallKind, seconds: f64);
}

/// Result of a store call.
pub type StoreResult<T> = Result<T, StoreError>;

/// Everything Keyplane persists. Every call that touches tenant data is scoped by account id,
/// so isolation does not depend on callers remembering to filter.
#[async_trait]
pub trait Store: InstanceStore + ConsoleStore + AuditStore + Send + Sync + 'static {
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
    /// Replace account secrets in one transaction, each only where the row still holds the
    /// old values; leaves no copy of the old values in the database files it controls.
    /// Returns how many accounts were changed. When any was, the credentials generation
    /// increases in the same transaction.
    async fn replace_account_secrets(&self, updates: &[SecretUpdate]) -> StoreResult<usize>;
    /// Give the account with `account.id` the credentials of `account` (both ids and both
    /// sealed secrets; nothing else changes), and increase the credentials generation, in one
    /// transaction; leaves no copy of the old secrets in the database files it controls.
    /// `NotFound` when there is no such account, `Conflict(Id)` when another account holds
    /// one of the new ids.
    async fn replace_account_credentials(&self, account: &Account) -> StoreResult<()>;
    /// The credentials generation: a store-wide counter that increases with every change of
    /// an account's credentials ([`Store::replace_account_secrets`],
    /// [`Store::replace_account_credentials`]), in the change's own transaction; 0 before the
    /// first. A read sees every change committed before it began.
    async fn credentials_generation(&self) -> StoreResult<i64>;

    /// Insert a key pair, atomically checking the rules a concurrent insert could break, in
    /// this order, each an indexed query inside the insert's transaction:
    /// `Conflict(KeyPairName)` if the name is taken, `Conflict(PublicKey)` if the account
    /// already holds the key, `Conflict(Quota)` if the account holds `quota` key pairs of the
    /// namespace. `audit`, when given, is recorded in the same transaction (so are the other
    /// writes' `audit` events).
    async fn insert_key_pair(
        &self,
        key_pair: &KeyPair,
        quota: usize,
        audit: Option<&AuditEvent>,
    ) -> StoreResult<()>;
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
        audit: Option<&AuditEvent>,
    ) -> StoreResult<()>;
    /// Delete key pairs, all or none; `NotFound(id)` names the first missing one.
    async fn delete_key_pairs(
        &self,
        account_id: &str,
        namespace: Namespace,
        ids: &[String],
        audit: Option<&AuditEvent>,
    ) -> StoreResult<()>;

    /// A named server-wide value, created from `initial` on first use (the agent-token key is
    /// one), the same for every node sharing the store.
    async fn setting(&self, name: &str, initial: &str) -> StoreResult<String>;

    /// Record a request nonce. Returns `false` when the same nonce was already recorded in
    /// `scope` and has not expired (a replay). Expired nonces are purged on the way.
    async fn remember_nonce(
        &self,
        scope: &str,
        nonce: &str,
        expires_at: i64,
        now: i64,
    ) -> StoreResult<bool>;

    /// The account's key pairs of a namespace that `query` selects (ids, region, filters),
    /// oldest first, paged by its offset and limit, with the number of matches before paging;
    /// answered on indexes, reading only the rows asked for.
    async fn query_key_pairs(
        &self,
        account_id: &str,
        namespace: Namespace,
        query: &KeyPairQuery,
    ) -> StoreResult<KeyPairPage>;

    /// Report each call's latency to `sink` from now on (the first sink given stays).
    fn report_latency(&self, sink: std::sync::Arc<dyn LatencySink>);
}

/// Which operations a worker may claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claimable<'a> {
    /// Every operation.
    Any,
    /// What one node can carry out: operations on records and agent-managed hosts, and on the
    /// sandbox instances that live on this node (`sandbox_owner`, the id of its sandbox
    /// directory). A sandbox instance not yet owned (its create operation) becomes this
    /// node's with the claim. `None`: this node has no sandbox, so no sandbox operation,
    /// except those of `adopt_unowned_before`.
    Node {
        /// This node's sandbox owner id.
        sandbox_owner: Option<&'a str>,
        /// A node without a sandbox also takes the operations of sandbox instances no node
        /// owns yet that were created at or before this time (unix seconds), so that a launch
        /// no node can carry out ends LAUNCH_FAILED instead of waiting forever; nodes with a
        /// sandbox get the time before it to take them first.
        adopt_unowned_before: Option<i64>,
    },
}

impl Claimable<'_> {
    /// `(any, owner, adopt_unowned_before)` for the store queries (`i64::MIN` adopts none).
    pub fn parts(&self) -> (bool, Option<&str>, i64) {
        match self {
            Claimable::Any => (true, None, i64::MIN),
            Claimable::Node {
                sandbox_owner,
                adopt_unowned_before,
            } => (
                false,
                *sandbox_owner,
                adopt_unowned_before.unwrap_or(i64::MIN),
            ),
        }
    }
}

/// Instances, their bound keys and their durable operations.
#[async_trait]
pub trait InstanceStore: Send + Sync + 'static {
    /// Insert instances and their first operations, all or none.
    async fn insert_instances(
        &self,
        instances: &[Instance],
        ops: &[NewOperation],
        audit: Option<&AuditEvent>,
    ) -> StoreResult<()>;
    /// Insert instances and their first operations under a client token, once: when the
    /// account already used `client_token` in the namespace, nothing is inserted and the ids
    /// recorded with it are returned; otherwise the instances, operations and token are
    /// recorded together (with `audit`) and the new ids returned.
    async fn insert_instances_once(
        &self,
        instances: &[Instance],
        ops: &[NewOperation],
        client_token: &str,
        audit: Option<&AuditEvent>,
    ) -> StoreResult<Vec<String>>;
    /// The account's instances of a namespace, oldest first.
    async fn list_instances(
        &self,
        account_id: &str,
        namespace: Namespace,
    ) -> StoreResult<Vec<Instance>>;
    /// One instance by id, whatever its account (for workers and agents).
    async fn get_instance(&self, id: &str) -> StoreResult<Option<Instance>>;
    /// Every instance (for restarting sandboxes when the server starts).
    async fn all_instances(&self) -> StoreResult<Vec<Instance>>;
    /// How many instances there are, by namespace and state (for metrics).
    async fn count_instances_by_state(&self) -> StoreResult<Vec<(Namespace, InstanceState, u64)>>;
    /// Record operations atomically; `Conflict(InstanceBusy)` when any instance already has one
    /// in progress (then none is recorded). Sets each instance's latest operation fields.
    async fn submit_operations(
        &self,
        ops: &[NewOperation],
        audit: Option<&AuditEvent>,
    ) -> StoreResult<()>;
    /// Claim the oldest unfinished operation whose claim has lapsed, for `worker` until
    /// `lease_until`, whatever instance it is on. No instance has two operations claimed at once.
    async fn claim_operation(
        &self,
        worker: &str,
        now: i64,
        lease_until: i64,
    ) -> StoreResult<Option<Operation>> {
        self.claim_operation_scoped(worker, now, lease_until, Claimable::Any)
            .await
    }
    /// Claim as [`InstanceStore::claim_operation`] does, only among the operations `scope`
    /// allows.
    async fn claim_operation_scoped(
        &self,
        worker: &str,
        now: i64,
        lease_until: i64,
        scope: Claimable<'_>,
    ) -> StoreResult<Option<Operation>>;
    /// Extend a claim; `false` when the claim was lost to another worker.
    async fn renew_claim(&self, op_id: i64, worker: &str, lease_until: i64) -> StoreResult<bool>;
    /// Record an operation's progress.
    async fn save_progress(&self, op: &Operation) -> StoreResult<()>;
    /// Finish an operation and mirror its state on the instance; the audit event of the
    /// request that started it counts it as ended (and failed, unless `state` is success).
    async fn finish_operation(
        &self,
        op_id: i64,
        state: OpState,
        error: Option<&str>,
    ) -> StoreResult<()>;
    /// Set an instance's lifecycle state.
    async fn set_instance_state(&self, id: &str, state: InstanceState) -> StoreResult<()>;
    /// Replace the SHA-512 crypt hash of an instance's login password (`None`: no password).
    async fn set_password_hash(&self, id: &str, hash: Option<&str>) -> StoreResult<()>;
    /// Rename an instance (its display name); `NotFound` if there is none.
    async fn set_instance_name(
        &self,
        id: &str,
        name: &str,
        audit: Option<&AuditEvent>,
    ) -> StoreResult<()>;
    /// Replace the bound keys and, when given, the effective keys; the desired generation
    /// increases when the effective keys change. Returns the desired generation.
    async fn set_bindings(
        &self,
        id: &str,
        key_ids: &[String],
        effective: Option<&[String]>,
    ) -> StoreResult<i64>;
    /// Make the effective keys the bound keys (ECS at start/reboot). Returns the desired generation.
    async fn activate_bindings(&self, id: &str) -> StoreResult<i64>;
    /// Record that `generation` of the desired SSH state was handed to the instance's agent
    /// (the highest such generation is kept).
    async fn record_served_generation(&self, id: &str, generation: i64) -> StoreResult<()>;
    /// The highest generation handed to the instance's agent; `None` if there is no instance.
    async fn served_generation(&self, id: &str) -> StoreResult<Option<i64>>;
    /// Record what the agent reported applied, if it is a generation it was served (`0 <=
    /// generation <= served`): `true` when recorded, `false` (nothing changed) otherwise. The
    /// applied generation never goes back.
    async fn set_applied_generation(&self, id: &str, generation: i64) -> StoreResult<bool>;
    /// Delete an instance and its bindings.
    async fn delete_instance(&self, id: &str) -> StoreResult<()>;

    /// The account's instances of a namespace with these ids (unknown ones left out), oldest
    /// first.
    async fn instances_by_ids(
        &self,
        account_id: &str,
        namespace: Namespace,
        ids: &[String],
    ) -> StoreResult<Vec<Instance>>;
    /// The account's instances of a namespace that `query` selects (ids, region, filters), in
    /// its order, paged by its offset and limit, with the number of matches before paging;
    /// answered on indexes, reading only the rows asked for.
    async fn query_instances(
        &self,
        account_id: &str,
        namespace: Namespace,
        query: &InstanceQuery,
    ) -> StoreResult<InstancePage>;
    /// How many instances the account holds in a namespace.
    async fn count_instances(&self, account_id: &str, namespace: Namespace) -> StoreResult<usize>;
    /// Which of `addresses` an instance (of any account) already has.
    async fn taken_addresses(&self, addresses: &[String]) -> StoreResult<Vec<String>>;
}

/// Which console credential a stored token hash stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsoleTokenKind {
    /// A one-time login, exchanged once for a session.
    Login,
    /// A signed-in browser session.
    Session,
}

impl ConsoleTokenKind {
    /// Storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            ConsoleTokenKind::Login => "login",
            ConsoleTokenKind::Session => "session",
        }
    }
}

/// The account a console credential signs in as (no secrets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleAccount {
    /// Account id.
    pub id: String,
    /// Account name.
    pub name: String,
}

/// The web console's credentials, stored only as hashes of their tokens, and when each
/// instance's agent was last seen.
#[async_trait]
pub trait ConsoleStore: Send + Sync + 'static {
    /// Record a console credential under the hash of its token, valid until `expires_at`;
    /// expired credentials are purged on the way.
    async fn insert_console_token(
        &self,
        hash: &str,
        kind: ConsoleTokenKind,
        account_id: &str,
        expires_at: i64,
        now: i64,
    ) -> StoreResult<()>;
    /// Use up a one-time login: in one transaction, delete the unexpired login stored under
    /// `login_hash` and record a session under `session_hash` for its account, valid until
    /// `session_expires_at`. Of all callers on all nodes sharing the store, at most one gets
    /// the account for one login; everyone else (and an unknown or expired login) gets `None`.
    async fn redeem_console_login(
        &self,
        login_hash: &str,
        session_hash: &str,
        session_expires_at: i64,
        now: i64,
    ) -> StoreResult<Option<ConsoleAccount>>;
    /// The account of the unexpired session stored under `hash`.
    async fn console_session(&self, hash: &str, now: i64) -> StoreResult<Option<ConsoleAccount>>;
    /// Delete the console credential stored under `hash` (signing out); no error if none.
    async fn delete_console_token(&self, hash: &str) -> StoreResult<()>;
    /// Record that the agent of instance `instance_id` was seen at `at` (unix seconds); the
    /// time never goes back. Nothing is recorded for an instance that does not exist.
    async fn record_agent_seen(&self, instance_id: &str, at: i64) -> StoreResult<()>;
    /// When the agents of the account's instances were last seen: (instance id, unix seconds),
    /// for the instances whose agent was ever seen.
    async fn agents_seen(&self, account_id: &str) -> StoreResult<Vec<(String, i64)>>;
}

/// The audit trail.
#[async_trait]
pub trait AuditStore: Send + Sync + 'static {
    /// Record events on their own (refused requests), in one transaction. When an event of
    /// the same request is already recorded, the two become one: the refusal's code and
    /// message are set and the resources added. The events are handed over (a batch of
    /// refusals is written without a copy of its own).
    async fn record_events(&self, events: Vec<AuditEvent>) -> StoreResult<()>;
    /// The events `query` selects, on indexes, with the number matching before paging.
    async fn query_events(&self, query: &AuditQuery) -> StoreResult<AuditPage>;
    /// Delete events older than `before` (unix seconds) and all but the newest `keep`;
    /// returns how many were deleted.
    async fn prune_events(&self, before: i64, keep: u64) -> StoreResult<u64>;
}
