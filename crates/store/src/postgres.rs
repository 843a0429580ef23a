//! The PostgreSQL store, for several API nodes sharing one database.
//!
//! Same tables, columns and migration numbering as [`crate::sqlite`]; the rules that SQLite gets
//! from having one writer are kept here with row locks:
//! - the key-pair quota and uniqueness: the account row is locked (`FOR NO KEY UPDATE`) while a
//!   key pair is counted and inserted, and unique constraints back the names and keys;
//! - one operation in progress per instance: `submit_operations` locks the instance rows
//!   `FOR UPDATE` (and a partial unique index backs it);
//! - each operation is claimed by exactly one worker: `FOR UPDATE SKIP LOCKED`.
//!
//! Migrations run once at startup inside a transaction holding an advisory lock, so nodes
//! starting together do not race. Serialization failures and deadlocks are retried.

use crate::postgres_schema::{MIGRATIONS, MIGRATION_LOCK};
use crate::sql::{self, ACCOUNT_COLS, KEY_COLS};
use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use keyplane_core::account::Account;
use keyplane_core::audit::AuditEvent;
use keyplane_core::keypair::{KeyPair, Namespace};
use keyplane_core::service::{KeyPairPage, KeyPairQuery};
use keyplane_core::store::{Conflict, LatencySink, SecretUpdate, Store, StoreError, StoreResult};
use std::time::Duration;
use tokio_postgres::error::SqlState;
use tokio_postgres::{NoTls, Row};

/// How often a transaction that hit a serialization failure or deadlock is run again.
pub(crate) const RETRIES: u32 = 8;

/// Connections per node.
const POOL_SIZE: usize = 16;

/// PostgreSQL-backed [`Store`].
#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
    pub(crate) latency: crate::Latency,
}

/// Why a statement failed: for good, or worth running the transaction again.
#[derive(Debug)]
pub(crate) enum Fail {
    Store(StoreError),
    Retry(String),
}

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Fail {
        Fail::Store(e)
    }
}

impl From<tokio_postgres::Error> for Fail {
    fn from(e: tokio_postgres::Error) -> Fail {
        match e.code() {
            Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE => Fail::Retry(describe(&e)),
            Some(c) if *c == SqlState::T_R_DEADLOCK_DETECTED => Fail::Retry(describe(&e)),
            _ => Fail::Store(StoreError::Backend(describe(&e))),
        }
    }
}

impl From<deadpool_postgres::PoolError> for Fail {
    fn from(e: deadpool_postgres::PoolError) -> Fail {
        let why = match &e {
            deadpool_postgres::PoolError::Backend(pg) => describe(pg),
            other => format!("PostgreSQL connection pool: {other}"),
        };
        Fail::Store(StoreError::Backend(why))
    }
}

impl Fail {
    pub(crate) fn into_store(self) -> StoreError {
        match self {
            Fail::Store(e) => e,
            Fail::Retry(why) => StoreError::Backend(why),
        }
    }
}

/// The server's message when there is one (`tokio_postgres::Error` alone says "db error").
fn describe(e: &tokio_postgres::Error) -> String {
    match (e.as_db_error(), std::error::Error::source(e)) {
        (Some(db), _) => format!("PostgreSQL: {db}"),
        (None, Some(source)) => format!("PostgreSQL: {e}: {source}"),
        (None, None) => format!("PostgreSQL: {e}"),
    }
}

/// The constraint a unique violation names, if `e` is one.
pub(crate) fn unique_violation(e: &tokio_postgres::Error) -> Option<String> {
    let db = e.as_db_error()?;
    (*db.code() == SqlState::UNIQUE_VIOLATION).then(|| db.constraint().unwrap_or("").to_string())
}

/// Map a unique violation to a [`Conflict`] by constraint name; anything else as [`Fail`].
pub(crate) fn conflict_or(e: tokio_postgres::Error, by_name: fn(&str) -> Conflict) -> Fail {
    match unique_violation(&e) {
        Some(constraint) => Fail::Store(StoreError::Conflict(by_name(&constraint))),
        None => e.into(),
    }
}

pub(crate) fn corrupt(what: &str, value: &str) -> Fail {
    Fail::Store(crate::stored::invalid(what, value))
}

/// Run `$body` in a transaction bound to `$tx`, committing when it returns `Ok`; run it again
/// from the start on a serialization failure or deadlock. Evaluates to `StoreResult<T>`.
macro_rules! in_transaction {
    ($store:expr, |$tx:ident| $body:block) => {{
        let mut attempt: u32 = 0;
        let _timer = $store
            .latency
            .timer("postgres", keyplane_core::store::CallKind::Write);
        loop {
            let result: Result<_, $crate::postgres::Fail> = async {
                let mut client = $store.client().await?;
                let $tx = client.transaction().await?;
                let value = $body;
                $tx.commit().await?;
                Ok(value)
            }
            .await;
            match result {
                Ok(v) => break Ok(v),
                Err($crate::postgres::Fail::Retry(why)) if attempt < $crate::postgres::RETRIES => {
                    attempt += 1;
                    tracing::debug!(attempt, %why, "retrying a PostgreSQL transaction");
                    $crate::postgres::backoff(attempt).await;
                }
                Err(e) => break Err(e.into_store()),
            }
        }
    }};
}
pub(crate) use in_transaction;

/// A short, growing, jittered pause before a retry.
pub(crate) async fn backoff(attempt: u32) {
    let jitter = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() % 4_000_000)
        .unwrap_or(0);
    let base = Duration::from_millis(2u64 << attempt.min(6));
    tokio::time::sleep(base + Duration::from_nanos(jitter.into())).await;
}

/// `url` with its password replaced by `***`, for logs and `Debug` output. Handles the URL
/// form (`postgres://user:secret@host/db`, `?password=secret`) and the key=value form
/// (`host=h password=secret`).
pub fn redact_database_url(url: &str) -> String {
    let mut out = url.to_string();
    if let Some(scheme_end) = out.find("://") {
        let rest_start = scheme_end + 3;
        let authority_end = out[rest_start..]
            .find(['/', '?'])
            .map_or(out.len(), |i| rest_start + i);
        if let Some(at) = out[rest_start..authority_end].rfind('@') {
            let userinfo = &out[rest_start..rest_start + at];
            if let Some(colon) = userinfo.find(':') {
                out.replace_range(rest_start + colon + 1..rest_start + at, "***");
            }
        }
    }
    // `password=...` as a query parameter or a key=value pair, quoted or not.
    let mut result = String::with_capacity(out.len());
    let mut rest = out.as_str();
    while let Some(i) = rest.find("password=") {
        let starts_word = i == 0 || matches!(rest.as_bytes()[i - 1], b'?' | b'&' | b' ');
        let value_start = i + "password=".len();
        result.push_str(&rest[..value_start]);
        rest = &rest[value_start..];
        if !starts_word {
            continue;
        }
        let end = if let Some(quoted) = rest.strip_prefix('\'') {
            quoted.find('\'').map_or(rest.len(), |j| j + 2)
        } else {
            rest.find(['&', ' ']).unwrap_or(rest.len())
        };
        result.push_str("***");
        rest = &rest[end..];
    }
    result.push_str(rest);
    result
}

impl PostgresStore {
    /// Connect to `url` (`postgres://user:password@host:port/database`, or libpq's key=value
    /// form) and bring the schema up to date. TLS is not supported: use a private network or
    /// a local socket.
    pub async fn connect(url: &str) -> StoreResult<PostgresStore> {
        let config: tokio_postgres::Config = url.parse().map_err(|e| {
            StoreError::Backend(format!(
                "invalid PostgreSQL URL {}: {e}",
                redact_database_url(url)
            ))
        })?;
        Self::connect_with(config).await
    }

    /// Connect with a parsed configuration and bring the schema up to date.
    pub async fn connect_with(mut config: tokio_postgres::Config) -> StoreResult<PostgresStore> {
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        if config.get_application_name().is_none() {
            config.application_name("keyplane");
        }
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(30)))
            .create_timeout(Some(Duration::from_secs(15)))
            .build()
            .map_err(|e| StoreError::Backend(format!("PostgreSQL connection pool: {e}")))?;
        let store = PostgresStore {
            pool,
            latency: crate::Latency::default(),
        };
        store.migrate().await?;
        Ok(store)
    }

    pub(crate) async fn client(&self) -> Result<deadpool_postgres::Client, Fail> {
        Ok(self.pool.get().await?)
    }

    /// Apply pending migrations in one transaction under an advisory lock: a node that starts
    /// while another migrates waits, then finds nothing left to do.
    async fn migrate(&self) -> StoreResult<()> {
        in_transaction!(self, |tx| {
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
                .await?;
            tx.batch_execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations \
                 (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
            )
            .await?;
            let row = tx
                .query_one(
                    "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
                    &[],
                )
                .await?;
            let version: i64 = row.try_get(0)?;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64);
            for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
                tx.batch_execute(sql).await?;
                tx.execute(
                    "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)",
                    &[&((i + 1) as i64), &now],
                )
                .await?;
                tracing::info!(version = i + 1, "applied a PostgreSQL migration");
            }
        })
    }
}

fn account_from_row(r: &Row) -> Result<Account, Fail> {
    crate::rows::account(r)
}

pub(crate) fn key_pair_from_row(r: &Row) -> Result<KeyPair, Fail> {
    crate::rows::key_pair(r)
}

impl PostgresStore {
    async fn account_where(&self, column: &str, value: &str) -> StoreResult<Option<Account>> {
        async {
            let _timer = self
                .latency
                .timer("postgres", keyplane_core::store::CallKind::Read);
            let client = self.client().await?;
            let st = client
                .prepare_cached(&format!(
                    "SELECT {ACCOUNT_COLS} FROM accounts WHERE {column} = $1"
                ))
                .await?;
            client
                .query_opt(&st, &[&value])
                .await?
                .map(|r| account_from_row(&r))
                .transpose()
        }
        .await
        .map_err(Fail::into_store)
    }
}

/// Increase the credentials generation, inside the transaction of the change (the row lock
/// orders concurrent changes).
async fn bump_credentials_generation(tx: &deadpool_postgres::Transaction<'_>) -> Result<(), Fail> {
    tx.execute(
        "INSERT INTO settings (name, value) VALUES ($1, '1') ON CONFLICT (name) \
         DO UPDATE SET value = (settings.value::bigint + 1)::text",
        &[&crate::sqlite::CREDENTIALS_GENERATION],
    )
    .await?;
    Ok(())
}

#[async_trait]
impl Store for PostgresStore {
    fn report_latency(&self, sink: std::sync::Arc<dyn LatencySink>) {
        self.latency.report_to(sink);
    }

    async fn insert_account(&self, a: &Account) -> StoreResult<()> {
        in_transaction!(self, |tx| {
            tx.execute(
                sql::INSERT_ACCOUNT,
                &[
                    &a.id,
                    &a.name,
                    &a.is_admin,
                    &a.secret_id,
                    &a.secret_key.expose(),
                    &a.access_key_id,
                    &a.access_key_secret.expose(),
                    &a.created_at,
                ],
            )
            .await
            .map_err(|e| {
                conflict_or(e, |c| match c {
                    "accounts_name" => Conflict::AccountName,
                    _ => Conflict::Id,
                })
            })?;
        })
    }

    async fn account_by_name(&self, name: &str) -> StoreResult<Option<Account>> {
        self.account_where("name", name).await
    }

    async fn account_by_secret_id(&self, secret_id: &str) -> StoreResult<Option<Account>> {
        self.account_where("secret_id", secret_id).await
    }

    async fn account_by_access_key_id(&self, id: &str) -> StoreResult<Option<Account>> {
        self.account_where("access_key_id", id).await
    }

    async fn list_accounts(&self) -> StoreResult<Vec<Account>> {
        async {
            let _timer = self
                .latency
                .timer("postgres", keyplane_core::store::CallKind::Read);
            let client = self.client().await?;
            let rows = client.query(sql::LIST_ACCOUNTS, &[]).await?;
            rows.iter()
                .map(account_from_row)
                .collect::<Result<Vec<_>, _>>()
        }
        .await
        .map_err(Fail::into_store)
    }

    async fn replace_account_secrets(&self, updates: &[SecretUpdate]) -> StoreResult<usize> {
        in_transaction!(self, |tx| {
            let mut changed = 0usize;
            for u in updates {
                changed += tx
                    .execute(
                        sql::REPLACE_SECRETS,
                        &[
                            &u.new_secret_key.expose(),
                            &u.new_access_key_secret.expose(),
                            &u.account_id,
                            &u.old_secret_key.expose(),
                            &u.old_access_key_secret.expose(),
                        ],
                    )
                    .await? as usize;
            }
            if changed > 0 {
                bump_credentials_generation(&tx).await?;
            }
            changed
        })
    }

    async fn replace_account_credentials(&self, a: &Account) -> StoreResult<()> {
        in_transaction!(self, |tx| {
            let n = tx
                .execute(
                    sql::REPLACE_CREDENTIALS,
                    &[
                        &a.secret_id,
                        &a.secret_key.expose(),
                        &a.access_key_id,
                        &a.access_key_secret.expose(),
                        &a.id,
                    ],
                )
                .await
                .map_err(|e| conflict_or(e, |_| Conflict::Id))?;
            if n == 0 {
                return Err(Fail::Store(StoreError::NotFound(a.id.clone())));
            }
            bump_credentials_generation(&tx).await?;
        })
    }

    async fn credentials_generation(&self) -> StoreResult<i64> {
        async {
            let _timer = self
                .latency
                .timer("postgres", keyplane_core::store::CallKind::Read);
            let client = self.client().await?;
            let st = client.prepare_cached(sql::SETTING).await?;
            match client
                .query_opt(&st, &[&crate::sqlite::CREDENTIALS_GENERATION])
                .await?
            {
                Some(row) => {
                    let v: String = row.try_get(0)?;
                    v.parse::<i64>()
                        .map_err(|_| corrupt("credentials generation", &v))
                }
                None => Ok(0),
            }
        }
        .await
        .map_err(Fail::into_store)
    }

    async fn insert_key_pair(
        &self,
        kp: &KeyPair,
        quota: usize,
        audit: Option<&AuditEvent>,
    ) -> StoreResult<()> {
        let tags = serde_json::to_string(&kp.tags).map_err(crate::sqlite::backend)?;
        in_transaction!(self, |tx| {
            // Every insert for the account, on any node, queues here: the count below cannot
            // go stale before the insert commits.
            let lock = tx
                .prepare_cached("SELECT id FROM accounts WHERE id = $1 FOR NO KEY UPDATE")
                .await?;
            if tx.query_opt(&lock, &[&kp.account_id]).await?.is_none() {
                return Err(Fail::Store(StoreError::NotFound(kp.account_id.clone())));
            }
            // The rules in the order callers see them: the name, the public key, the quota.
            for (column, value, conflict) in [
                ("name", &kp.name, Conflict::KeyPairName),
                (
                    "fingerprint_sha256",
                    &kp.fingerprint_sha256,
                    Conflict::PublicKey,
                ),
            ] {
                let taken = tx
                    .prepare_cached(&format!(
                        "SELECT 1 FROM key_pairs WHERE account_id = $1 AND namespace = $2 \
                         AND region = $3 AND {column} = $4"
                    ))
                    .await?;
                let args: [&(dyn tokio_postgres::types::ToSql + Sync); 4] =
                    [&kp.account_id, &kp.namespace.as_str(), &kp.region, value];
                if tx.query_opt(&taken, &args).await?.is_some() {
                    return Err(Fail::Store(StoreError::Conflict(conflict)));
                }
            }
            let count = tx.prepare_cached(sql::COUNT_KEY_PAIRS).await?;
            let held: i64 = tx
                .query_one(&count, &[&kp.account_id, &kp.namespace.as_str()])
                .await?
                .try_get(0)?;
            if held as usize >= quota {
                return Err(Fail::Store(StoreError::Conflict(Conflict::Quota)));
            }
            let insert = tx.prepare_cached(sql::INSERT_KEY_PAIR).await?;
            tx.execute(
                &insert,
                &[
                    &kp.id,
                    &kp.account_id,
                    &kp.namespace.as_str(),
                    &kp.region,
                    &kp.name,
                    &kp.description,
                    &kp.project_id,
                    &kp.public_key,
                    &kp.fingerprint_sha256,
                    &kp.fingerprint_md5,
                    &tags,
                    &kp.created_at,
                ],
            )
            .await
            .map_err(|e| {
                conflict_or(e, |c| match c {
                    "key_pairs_public_key" => Conflict::PublicKey,
                    "key_pairs_name" => Conflict::KeyPairName,
                    _ => Conflict::Id,
                })
            })?;
            crate::postgres_audit::write_event(&tx, audit).await?;
        })
    }

    async fn list_key_pairs(
        &self,
        account_id: &str,
        namespace: Namespace,
        region: Option<&str>,
    ) -> StoreResult<Vec<KeyPair>> {
        async {
            let _timer = self
                .latency
                .timer("postgres", keyplane_core::store::CallKind::Read);
            let client = self.client().await?;
            let st = client
                .prepare_cached(&format!(
                    "SELECT {KEY_COLS} FROM key_pairs WHERE account_id = $1 AND namespace = $2 \
                     AND ($3::TEXT IS NULL OR region = $3) ORDER BY created_at, id"
                ))
                .await?;
            let rows = client
                .query(&st, &[&account_id, &namespace.as_str(), &region])
                .await?;
            let mut keys = rows
                .iter()
                .map(key_pair_from_row)
                .collect::<Result<Vec<_>, _>>()?;
            let bound = client.prepare_cached(sql::BOUND_KEYS_OF_ACCOUNT).await?;
            for row in client.query(&bound, &[&account_id]).await? {
                let key: String = row.try_get(0)?;
                if let Some(k) = keys.iter_mut().find(|k| k.id == key) {
                    k.associated_instance_ids.push(row.try_get(1)?);
                }
            }
            Ok(keys)
        }
        .await
        .map_err(Fail::into_store)
    }

    async fn update_key_pair(
        &self,
        account_id: &str,
        namespace: Namespace,
        id: &str,
        name: Option<&str>,
        description: Option<&str>,
        audit: Option<&AuditEvent>,
    ) -> StoreResult<()> {
        in_transaction!(self, |tx| {
            let n = tx
                .execute(
                    sql::UPDATE_KEY_PAIR,
                    &[&name, &description, &id, &account_id, &namespace.as_str()],
                )
                .await
                .map_err(|e| conflict_or(e, |_| Conflict::KeyPairName))?;
            if n == 0 {
                return Err(Fail::Store(StoreError::NotFound(id.to_string())));
            }
            crate::postgres_audit::write_event(&tx, audit).await?;
        })
    }

    async fn delete_key_pairs(
        &self,
        account_id: &str,
        namespace: Namespace,
        ids: &[String],
        audit: Option<&AuditEvent>,
    ) -> StoreResult<()> {
        in_transaction!(self, |tx| {
            let st = tx.prepare_cached(sql::DELETE_KEY_PAIR).await?;
            for id in ids {
                let n = tx
                    .execute(&st, &[id, &account_id, &namespace.as_str()])
                    .await?;
                if n == 0 {
                    return Err(Fail::Store(StoreError::NotFound(id.clone())));
                }
            }
            crate::postgres_audit::write_event(&tx, audit).await?;
        })
    }

    async fn setting(&self, name: &str, initial: &str) -> StoreResult<String> {
        in_transaction!(self, |tx| {
            tx.execute(
                "INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
                &[&name, &initial],
            )
            .await?;
            let row = tx.query_one(sql::SETTING, &[&name]).await?;
            row.try_get::<_, String>(0)?
        })
    }

    async fn remember_nonce(
        &self,
        scope: &str,
        nonce: &str,
        expires_at: i64,
        now: i64,
    ) -> StoreResult<bool> {
        in_transaction!(self, |tx| {
            // Inserted, or taken over from an expired record: fresh. A live record: a replay.
            let remember = tx
                .prepare_cached(
                    "INSERT INTO nonces (scope, nonce, expires_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (scope, nonce) DO UPDATE SET expires_at = EXCLUDED.expires_at \
                     WHERE nonces.expires_at <= $4",
                )
                .await?;
            let fresh = tx
                .execute(&remember, &[&scope, &nonce, &expires_at, &now])
                .await?
                == 1;
            // Purge a bounded batch of expired nonces that no other node is purging.
            let purge = tx
                .prepare_cached(
                    "DELETE FROM nonces WHERE (scope, nonce) IN (SELECT scope, nonce FROM nonces \
                     WHERE expires_at <= $1 LIMIT 256 FOR UPDATE SKIP LOCKED)",
                )
                .await?;
            tx.execute(&purge, &[&now]).await?;
            fresh
        })
    }

    async fn query_key_pairs(
        &self,
        account_id: &str,
        namespace: Namespace,
        query: &KeyPairQuery,
    ) -> StoreResult<KeyPairPage> {
        async {
            let _timer = self
                .latency
                .timer("postgres", keyplane_core::store::CallKind::Read);
            let c = self.client().await?;
            crate::postgres_query::query_key_pairs(&c, account_id, namespace, query).await
        }
        .await
        .map_err(Fail::into_store)
    }
}
