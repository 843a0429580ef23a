//! The domain service: the one place where key-pair rules are enforced for every dialect.

use crate::account::{valid_account_name, Account};
use crate::audit::{AuditResource, RequestMeta};
use crate::error::DomainError;
use crate::keypair::{generate_rsa, parse_public_key, KeyPair, Namespace};
use crate::store::{Conflict, Store, StoreError};
use std::collections::HashSet;
use std::sync::Arc;

/// Where the time comes from; tests inject a fixed clock.
pub trait Clock: Send + Sync + 'static {
    /// Now, as unix seconds.
    fn now(&self) -> i64;
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        time::OffsetDateTime::now_utc().unix_timestamp()
    }
}

/// How many key pairs one account may hold per namespace.
pub const KEY_PAIR_QUOTA: usize = 500;

/// A filter on DescribeKeyPairs; values within one filter are alternatives, filters combine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyPairFilter {
    /// `project-id`.
    ProjectId(Vec<i64>),
    /// `key-name`: exact names.
    KeyName(Vec<String>),
    /// `tag-key`.
    TagKey(Vec<String>),
    /// `tag-value`.
    TagValue(Vec<String>),
    /// `tag:<key>`: the tag `key` with one of the values.
    Tag {
        /// Tag key.
        key: String,
        /// Accepted values.
        values: Vec<String>,
    },
    /// The key's `SHA256:` fingerprint is one of these.
    Fingerprint(Vec<String>),
    /// The key's MD5 fingerprint (32 lower-case hex digits, no colons) is one of these.
    FingerprintMd5(Vec<String>),
    /// The name matches this pattern (`*`: any run of characters, see
    /// [`crate::query::wildcard_match`]).
    NameLike(String),
}

impl KeyPairFilter {
    /// Whether `kp` passes the filter (what the stores answer in their queries).
    pub fn matches(&self, kp: &KeyPair) -> bool {
        match self {
            KeyPairFilter::Fingerprint(fps) => fps.contains(&kp.fingerprint_sha256),
            KeyPairFilter::FingerprintMd5(fps) => fps.contains(&kp.fingerprint_md5),
            KeyPairFilter::NameLike(pattern) => crate::query::wildcard_match(pattern, &kp.name),
            KeyPairFilter::ProjectId(ids) => ids.contains(&kp.project_id),
            KeyPairFilter::KeyName(names) => names.contains(&kp.name),
            KeyPairFilter::TagKey(keys) => kp.tags.iter().any(|(k, _)| keys.contains(k)),
            KeyPairFilter::TagValue(vals) => kp.tags.iter().any(|(_, v)| vals.contains(v)),
            KeyPairFilter::Tag { key, values } => {
                kp.tags.iter().any(|(k, v)| k == key && values.contains(v))
            }
        }
    }
}

/// The order of a key-pair page.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum KeyPairOrder {
    /// Oldest first, ties by id.
    #[default]
    Oldest,
    /// Oldest first, ties by name (names are unique within a region).
    OldestByName,
}

/// A DescribeKeyPairs query, already validated for shape by the dialect.
#[derive(Debug, Clone, Default)]
pub struct KeyPairQuery {
    /// Only these ids (when given).
    pub ids: Option<Vec<String>>,
    /// All filters must match.
    pub filters: Vec<KeyPairFilter>,
    /// Region (for regional namespaces).
    pub region: Option<String>,
    /// Rows to skip.
    pub offset: usize,
    /// Rows to return.
    pub limit: usize,
    /// The order of the answer.
    pub order: KeyPairOrder,
}

/// A page of key pairs with the total count before paging.
#[derive(Debug, Clone)]
pub struct KeyPairPage {
    /// Matches before paging.
    pub total: usize,
    /// The requested page.
    pub items: Vec<KeyPair>,
}

/// Parameters of a new key pair (created or imported).
#[derive(Debug, Clone, Default)]
pub struct NewKeyPair {
    /// Name.
    pub name: String,
    /// Project id (Tencent); 0 by default.
    pub project_id: i64,
    /// Description.
    pub description: String,
    /// Region, for regional namespaces.
    pub region: String,
    /// Tags.
    pub tags: Vec<(String, String)>,
}

/// A created key pair and its private key, which is returned once and never stored.
pub struct CreatedKeyPair {
    /// The stored record.
    pub key_pair: KeyPair,
    /// PKCS#1 PEM private key.
    pub private_key: String,
}

/// The domain service over a store.
#[derive(Clone)]
pub struct Core {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    ssh_port: u16,
    master_key: Arc<crate::sealing::MasterKey>,
    linux_image: Arc<std::sync::RwLock<Option<crate::instance::LinuxImageFacts>>>,
    capacity: Option<crate::compute::HostCapacity>,
    metrics: Arc<crate::metrics::Metrics>,
    agent_seen: Arc<std::sync::Mutex<std::collections::HashMap<String, i64>>>,
    audit: bool,
    credentials: Arc<crate::credentials::CredentialCache>,
    nonces: Arc<crate::nonces::NonceSet>,
    settled: Arc<crate::workflow::Settled>,
    /// Notified whenever this node records operations: the worker waits on it between
    /// claims, so a new operation is taken at once and a request that records none wakes
    /// nothing.
    recorded: Arc<tokio::sync::Notify>,
}

fn store_err(e: StoreError) -> DomainError {
    DomainError::internal(e)
}

impl Core {
    /// A service over `store`, reading time from `clock`. Account secrets are sealed with a
    /// fresh random master key, known to this value only: a server gives its own with
    /// [`Core::with_master_key`].
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Core {
        let metrics: Arc<crate::metrics::Metrics> = Arc::default();
        store.report_latency(metrics.clone());
        Core {
            store,
            clock,
            ssh_port: 22,
            master_key: Arc::new(crate::sealing::MasterKey::generate()),
            linux_image: Arc::default(),
            capacity: None,
            metrics,
            agent_seen: Arc::default(),
            audit: true,
            credentials: Arc::default(),
            nonces: Arc::default(),
            settled: Arc::default(),
            recorded: Arc::default(),
        }
    }

    /// Record (the default) or do not record the audit trail.
    pub fn with_audit(mut self, on: bool) -> Core {
        self.audit = on;
        self
    }

    pub(crate) fn audit_enabled(&self) -> bool {
        self.audit
    }

    /// The opened accounts this node looked up (see [`crate::credentials`]).
    pub(crate) fn credential_cache(&self) -> &crate::credentials::CredentialCache {
        &self.credentials
    }

    /// The request nonces this node recorded (see [`Core::remember_nonce`]).
    pub(crate) fn nonce_set(&self) -> &crate::nonces::NonceSet {
        &self.nonces
    }

    /// The operations that ended on this node (see [`Core::await_operation`]).
    pub(crate) fn settled(&self) -> &crate::workflow::Settled {
        &self.settled
    }

    /// What this node notifies whenever it records operations (the worker waits on it).
    pub fn operations_recorded(&self) -> Arc<tokio::sync::Notify> {
        self.recorded.clone()
    }

    /// Wake the worker: operations were recorded.
    pub(crate) fn wake_worker(&self) {
        self.recorded.notify_one();
    }

    /// When this node last recorded each agent as seen (see [`Core::note_agent_seen`]).
    pub(crate) fn agent_seen_cache(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, i64>> {
        self.agent_seen.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What this node counts and times.
    pub fn metrics(&self) -> &crate::metrics::Metrics {
        &self.metrics
    }

    /// Brings the instance counts of [`Core::metrics`] up to date from the store (every
    /// node's instances), before a scrape.
    pub async fn refresh_instance_metrics(&self) -> Result<(), DomainError> {
        let counts = self
            .store
            .count_instances_by_state()
            .await
            .map_err(store_err)?;
        self.metrics.set_instances(
            counts
                .iter()
                .map(|(ns, state, n)| (ns.as_str(), state.as_str(), *n)),
        );
        Ok(())
    }

    /// The same service, sealing and opening account secrets with `key`.
    pub fn with_master_key(mut self, key: crate::sealing::MasterKey) -> Core {
        self.master_key = Arc::new(key);
        // Accounts opened with another key are not this service's to answer.
        self.credentials = Arc::default();
        self
    }

    pub(crate) fn master_key(&self) -> &crate::sealing::MasterKey {
        &self.master_key
    }

    /// Records what the host reports of the installed Linux image (its OS name and size),
    /// which the image calls then answer.
    pub fn set_linux_image(&self, facts: crate::instance::LinuxImageFacts) {
        *self.linux_image.write().unwrap_or_else(|e| e.into_inner()) = Some(facts);
    }

    /// The images of a namespace, the Linux one with the installed image's real OS name and
    /// size once the host has reported them.
    pub fn images(&self, ns: crate::keypair::Namespace) -> Vec<crate::instance::Image> {
        let facts = self
            .linux_image
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut list = crate::instance::images(ns);
        if let Some(f) = facts {
            for image in &mut list {
                if image.os == crate::instance::OsType::Linux {
                    image.os_name = f.os_name.clone();
                    image.size_gib = f.size_gib();
                }
            }
        }
        list
    }

    /// The same service, with sandbox instances' SSH servers on `port` (22 by default).
    pub fn with_ssh_port(mut self, port: u16) -> Core {
        self.ssh_port = port;
        self
    }

    /// The same service, refusing Linux launches of instance types larger than `capacity`
    /// (the sandbox host's CPUs and memory); without it every type is accepted.
    pub fn with_host_capacity(mut self, capacity: crate::compute::HostCapacity) -> Core {
        self.capacity = Some(capacity);
        self
    }

    /// The CPUs and memory a sandbox instance of this node can get at most.
    pub fn host_capacity(&self) -> Option<crate::compute::HostCapacity> {
        self.capacity
    }

    /// The port new sandbox instances' SSH servers listen on.
    pub fn ssh_port(&self) -> u16 {
        self.ssh_port
    }

    /// The underlying store: for core's own rules only (dialects, the worker and the CLI reach
    /// it through the domain methods).
    pub(crate) fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Now, as unix seconds.
    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// Create an account with fresh credentials.
    pub async fn create_account(&self, name: &str, is_admin: bool) -> Result<Account, DomainError> {
        if !valid_account_name(name) {
            return Err(DomainError::InvalidParameterValue {
                param: "name".into(),
                reason: "1 to 64 letters, digits, '-', '_' or '.'".into(),
            });
        }
        let account = Account::generate(name, is_admin, self.now());
        self.insert_sealed(&account).await?;
        Ok(account)
    }

    /// Insert `account` with its secrets sealed.
    pub(crate) async fn insert_sealed(&self, account: &Account) -> Result<(), DomainError> {
        let sealed = self.master_key.seal_account(account);
        match self.store.insert_account(&sealed).await {
            Ok(()) => Ok(()),
            Err(StoreError::Conflict(Conflict::AccountName)) => {
                Err(DomainError::InvalidParameterValue {
                    param: "name".into(),
                    reason: format!("an account named `{}` already exists", account.name),
                })
            }
            Err(e) => Err(store_err(e)),
        }
    }

    /// Check ids for shape, duplicates and count; the first bad one decides the error.
    pub fn check_key_ids(
        &self,
        namespace: Namespace,
        param: &str,
        ids: &[String],
        max: usize,
    ) -> Result<(), DomainError> {
        if ids.len() > max {
            return Err(DomainError::TooManyValues {
                param: param.into(),
                max,
                given: ids.len(),
            });
        }
        let mut seen = HashSet::new();
        for id in ids {
            if !namespace.is_key_id(id) {
                return Err(DomainError::KeyPairIdMalformed { id: id.clone() });
            }
            if !seen.insert(id.as_str()) {
                return Err(DomainError::DuplicateValue {
                    param: param.into(),
                    value: id.clone(),
                });
            }
        }
        Ok(())
    }

    async fn insert_new(
        &self,
        account: &Account,
        namespace: Namespace,
        spec: &NewKeyPair,
        public: crate::keypair::ParsedPublicKey,
        req: &RequestMeta,
    ) -> Result<KeyPair, DomainError> {
        for _ in 0..5 {
            let kp = KeyPair {
                id: namespace.new_key_id(),
                account_id: account.id.clone(),
                namespace,
                region: spec.region.clone(),
                name: spec.name.clone(),
                description: spec.description.clone(),
                project_id: spec.project_id,
                public_key: public.line.clone(),
                fingerprint_sha256: public.fingerprint_sha256.clone(),
                fingerprint_md5: public.fingerprint_md5.clone(),
                tags: spec.tags.clone(),
                created_at: self.now(),
                associated_instance_ids: Vec::new(),
            };
            let event = self.change_event(
                req,
                account,
                vec![AuditResource::key_pair(&kp.id, &kp.name)],
                0,
            );
            match self
                .store
                .insert_key_pair(&kp, KEY_PAIR_QUOTA, event.as_ref())
                .await
            {
                Ok(()) => return Ok(kp),
                Err(StoreError::Conflict(Conflict::Id)) => continue,
                Err(StoreError::Conflict(Conflict::KeyPairName)) => {
                    return Err(DomainError::KeyPairNameDuplicate {
                        name: spec.name.clone(),
                    })
                }
                Err(StoreError::Conflict(Conflict::PublicKey)) => {
                    let query = KeyPairQuery {
                        filters: vec![KeyPairFilter::Fingerprint(vec![public
                            .fingerprint_sha256
                            .clone()])],
                        region: Some(spec.region.clone()),
                        limit: 1,
                        ..KeyPairQuery::default()
                    };
                    let existing_id = self
                        .store
                        .query_key_pairs(&account.id, namespace, &query)
                        .await
                        .map_err(store_err)?
                        .items
                        .pop()
                        .map(|k| k.id)
                        .unwrap_or_default();
                    return Err(DomainError::PublicKeyDuplicate { existing_id });
                }
                Err(StoreError::Conflict(Conflict::Quota)) => {
                    return Err(DomainError::KeyPairQuotaExceeded {
                        limit: KEY_PAIR_QUOTA,
                    })
                }
                Err(e) => return Err(store_err(e)),
            }
        }
        Err(DomainError::internal("could not allocate a key pair id"))
    }

    /// Create a key pair; the private key is in the answer and nowhere else.
    pub async fn create_key_pair(
        &self,
        account: &Account,
        namespace: Namespace,
        spec: NewKeyPair,
        req: &RequestMeta,
    ) -> Result<CreatedKeyPair, DomainError> {
        namespace.check_key_name(&spec.name)?;
        if spec.project_id < 0 {
            return Err(DomainError::InvalidParameterValue {
                param: "ProjectId".into(),
                reason: "must not be negative".into(),
            });
        }
        let name = spec.name.clone();
        let generated = generate_rsa(&name)?;
        let key_pair = self
            .insert_new(account, namespace, &spec, generated.public.clone(), req)
            .await?;
        Ok(CreatedKeyPair {
            key_pair,
            private_key: generated.private_pem.clone(),
        })
    }

    /// Import an existing OpenSSH public key.
    pub async fn import_key_pair(
        &self,
        account: &Account,
        namespace: Namespace,
        spec: NewKeyPair,
        public_key: &str,
        req: &RequestMeta,
    ) -> Result<KeyPair, DomainError> {
        namespace.check_key_name(&spec.name)?;
        if spec.project_id < 0 {
            return Err(DomainError::InvalidParameterValue {
                param: "ProjectId".into(),
                reason: "must not be negative".into(),
            });
        }
        let parsed = parse_public_key(public_key)?;
        self.insert_new(account, namespace, &spec, parsed, req)
            .await
    }

    /// Describe key pairs with ids, filters and paging.
    pub async fn describe_key_pairs(
        &self,
        account: &Account,
        namespace: Namespace,
        query: &KeyPairQuery,
    ) -> Result<KeyPairPage, DomainError> {
        self.store
            .query_key_pairs(&account.id, namespace, query)
            .await
            .map_err(store_err)
    }

    /// Fetch key pairs by id; the first unknown id is `KeyPairNotFound`.
    pub async fn get_key_pairs(
        &self,
        account: &Account,
        namespace: Namespace,
        ids: &[String],
    ) -> Result<Vec<KeyPair>, DomainError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let query = KeyPairQuery {
            ids: Some(ids.to_vec()),
            limit: ids.len(),
            ..KeyPairQuery::default()
        };
        let found = self
            .store
            .query_key_pairs(&account.id, namespace, &query)
            .await
            .map_err(store_err)?
            .items;
        ids.iter()
            .map(|id| {
                found
                    .iter()
                    .find(|k| &k.id == id)
                    .cloned()
                    .ok_or_else(|| DomainError::KeyPairNotFound { id: id.clone() })
            })
            .collect()
    }

    /// Delete key pairs, all or none. Bound key pairs cannot be deleted.
    pub async fn delete_key_pairs(
        &self,
        account: &Account,
        namespace: Namespace,
        ids: &[String],
        req: &RequestMeta,
    ) -> Result<(), DomainError> {
        let found = self.get_key_pairs(account, namespace, ids).await?;
        if let Some(bound) = found.iter().find(|k| !k.associated_instance_ids.is_empty()) {
            return Err(DomainError::KeyPairInUse {
                id: bound.id.clone(),
            });
        }
        let resources = found
            .iter()
            .map(|k| AuditResource::key_pair(&k.id, &k.name))
            .collect();
        let event = self.change_event(req, account, resources, 0);
        match self
            .store
            .delete_key_pairs(&account.id, namespace, ids, event.as_ref())
            .await
        {
            Ok(()) => Ok(()),
            Err(StoreError::NotFound(id)) => Err(DomainError::KeyPairNotFound { id }),
            Err(e) => Err(store_err(e)),
        }
    }

    /// Rename and/or re-describe a key pair.
    pub async fn modify_key_pair(
        &self,
        account: &Account,
        namespace: Namespace,
        id: &str,
        name: Option<&str>,
        description: Option<&str>,
        req: &RequestMeta,
    ) -> Result<(), DomainError> {
        if let Some(name) = name {
            namespace.check_key_name(name)?;
        }
        // Unknown ids answer before a taken name; the store's unique index decides the name.
        let old = self
            .get_key_pairs(account, namespace, &[id.to_string()])
            .await?;
        let resources = old
            .iter()
            .map(|k| AuditResource::key_pair(&k.id, name.unwrap_or(&k.name)))
            .collect();
        let event = self.change_event(req, account, resources, 0);
        match self
            .store
            .update_key_pair(
                &account.id,
                namespace,
                id,
                name,
                description,
                event.as_ref(),
            )
            .await
        {
            Ok(()) => Ok(()),
            Err(StoreError::NotFound(_)) => Err(DomainError::KeyPairNotFound { id: id.into() }),
            Err(StoreError::Conflict(_)) => Err(DomainError::KeyPairNameDuplicate {
                name: name.unwrap_or_default().into(),
            }),
            Err(e) => Err(store_err(e)),
        }
    }
}
