//! The embedded SQLite store: one database file in WAL mode, synchronous=FULL, so an
//! acknowledged write survives a crash of the process (kill -9) and of the machine.

use crate::sql::{self, ACCOUNT_COLS, KEY_COLS};
use crate::sqlite_cached::Cached;
use crate::sqlite_readers::{Lease, Readers};
use async_trait::async_trait;
use keyplane_core::account::Account;
use keyplane_core::audit::AuditEvent;
use keyplane_core::keypair::{KeyPair, Namespace};
use keyplane_core::service::{KeyPairPage, KeyPairQuery};
use keyplane_core::store::{
    CallKind, Conflict, LatencySink, SecretUpdate, Store, StoreError, StoreResult,
};
use rusqlite::{params, Connection, ErrorCode, OptionalExtension, Row};
use std::path::Path;
use std::sync::Arc;

/// Schema versions, applied in order; `PRAGMA user_version` records how far a file is.
pub(crate) const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE accounts (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    is_admin INTEGER NOT NULL,
    secret_id TEXT NOT NULL UNIQUE,
    secret_key TEXT NOT NULL,
    access_key_id TEXT NOT NULL UNIQUE,
    access_key_secret TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE key_pairs (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    namespace TEXT NOT NULL,
    region TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    project_id INTEGER NOT NULL,
    public_key TEXT NOT NULL,
    fingerprint_sha256 TEXT NOT NULL,
    fingerprint_md5 TEXT NOT NULL,
    tags TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (account_id, namespace, region, name)
);
CREATE INDEX key_pairs_by_account ON key_pairs(account_id, namespace, created_at);
CREATE TABLE nonces (
    scope TEXT NOT NULL,
    nonce TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (scope, nonce)
);
CREATE INDEX nonces_by_expiry ON nonces(expires_at);
"#,
    r#"
CREATE TABLE instances (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    namespace TEXT NOT NULL,
    region TEXT NOT NULL,
    zone TEXT NOT NULL,
    name TEXT NOT NULL,
    image_id TEXT NOT NULL,
    os TEXT NOT NULL,
    os_name TEXT NOT NULL,
    instance_type TEXT NOT NULL,
    state TEXT NOT NULL,
    host TEXT NOT NULL,
    private_ip TEXT NOT NULL,
    ssh_port INTEGER NOT NULL,
    password_hash TEXT,
    effective_key_ids TEXT NOT NULL,
    desired_generation INTEGER NOT NULL,
    applied_generation INTEGER NOT NULL,
    latest_operation TEXT,
    latest_operation_state TEXT,
    latest_operation_request_id TEXT,
    latest_operation_error TEXT,
    created_at INTEGER NOT NULL,
    UNIQUE (private_ip, ssh_port)
);
CREATE INDEX instances_by_account ON instances(account_id, namespace, created_at);
CREATE TABLE instance_keys (
    instance_id TEXT NOT NULL REFERENCES instances(id) ON DELETE CASCADE,
    key_pair_id TEXT NOT NULL REFERENCES key_pairs(id),
    position INTEGER NOT NULL,
    PRIMARY KEY (instance_id, key_pair_id)
);
CREATE INDEX instance_keys_by_key ON instance_keys(key_pair_id);
CREATE TABLE operations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    action TEXT NOT NULL,
    request_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    step INTEGER NOT NULL,
    was_running INTEGER NOT NULL,
    target_generation INTEGER NOT NULL,
    state TEXT NOT NULL,
    error TEXT,
    claimed_by TEXT,
    claim_until INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX operations_open ON operations(state, id);
"#,
    r#"
CREATE UNIQUE INDEX key_pairs_public_key ON key_pairs(account_id, namespace, region, fingerprint_sha256);
CREATE TABLE settings (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"#,
    r#"
ALTER TABLE instances ADD COLUMN sandbox_owner TEXT;
"#,
    r#"
CREATE TABLE client_tokens (
    account_id TEXT NOT NULL,
    namespace TEXT NOT NULL,
    token TEXT NOT NULL,
    instance_ids TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (account_id, namespace, token)
);
"#,
    r#"
ALTER TABLE instances ADD COLUMN host_name TEXT NOT NULL DEFAULT '';
"#,
    // The highest generation handed to the instance's agent. Existing rows count their desired
    // generation as served: an agent may have fetched it before the upgrade.
    r#"
ALTER TABLE instances ADD COLUMN served_generation INTEGER NOT NULL DEFAULT 0;
UPDATE instances SET served_generation = desired_generation;
"#,
    crate::sqlite_console::MIGRATION,
    crate::READ_INDEXES,
    crate::sqlite_audit::MIGRATION,
    crate::sqlite_audit_index::MIGRATION,
    crate::key_pair_counts::SQLITE_MIGRATION,
    crate::sqlite_audit::RESOURCES_IN_EVENTS,
];

/// SQLite-backed [`Store`]: one writer connection, and for a database file a fixed set of
/// read-only connections, so reads wait neither behind writes nor behind each other.
#[derive(Clone)]
pub struct SqliteStore {
    writer: Arc<crate::sqlite_writer::Writer>,
    readers: Option<Arc<Readers>>,
    latency: crate::Latency,
}

/// `e` as a [`StoreError`]: a [`stored`] error as it was made, anything else by its message.
pub(crate) fn backend<E: std::fmt::Display + 'static>(e: E) -> StoreError {
    let any: &dyn std::any::Any = &e;
    if let Some(rusqlite::Error::FromSqlConversionFailure(_, _, inner)) = any.downcast_ref() {
        if let Some(store) = inner.downcast_ref::<StoreError>() {
            return store.clone();
        }
    }
    StoreError::Backend(e.to_string())
}

/// A [`crate::stored`] error raised inside a row mapping; [`backend`] gives it back unchanged.
pub(crate) fn stored(e: StoreError) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
}

/// Whether `e` is the violation of the UNIQUE constraint on `column` (`table.column`, as
/// SQLite names it in its message), and no other constraint.
pub(crate) fn violates_unique(e: &rusqlite::Error, column: &str) -> bool {
    match e {
        rusqlite::Error::SqliteFailure(f, Some(msg))
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE =>
        {
            msg.strip_prefix("UNIQUE constraint failed: ") == Some(column)
        }
        _ => false,
    }
}

pub(crate) fn is_unique_violation(e: &rusqlite::Error) -> Option<String> {
    match e {
        rusqlite::Error::SqliteFailure(f, msg) if f.code == ErrorCode::ConstraintViolation => {
            Some(msg.clone().unwrap_or_default())
        }
        _ => None,
    }
}

impl SqliteStore {
    /// Open (creating if needed) the database file at `path` and bring its schema up to date.
    pub fn open(path: &Path) -> StoreResult<SqliteStore> {
        let conn = Connection::open(path).map_err(backend)?;
        let mut store = Self::init(conn, crate::sqlite_audit_index::EVERY)?;
        store.readers = Some(Arc::new(Readers::open(path)?));
        Ok(store)
    }

    /// A private in-memory database, for tests.
    pub fn in_memory() -> StoreResult<SqliteStore> {
        Self::in_memory_indexing_every(crate::sqlite_audit_index::EVERY)
    }

    /// A private in-memory database whose audit indexer runs at most once per `every`.
    pub(crate) fn in_memory_indexing_every(every: std::time::Duration) -> StoreResult<SqliteStore> {
        Self::init(Connection::open_in_memory().map_err(backend)?, every)
    }

    fn init(mut conn: Connection, index_every: std::time::Duration) -> StoreResult<SqliteStore> {
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(backend)?;
        conn.set_prepared_statement_cache_capacity(128);
        crate::sqlite_query::register_functions(&conn)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(backend)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(backend)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(backend)?;
        // Deleted and overwritten content is zeroed, not left in free pages (old secrets).
        conn.pragma_update(None, "secure_delete", "ON")
            .map_err(backend)?;
        // Each grouped write runs under a savepoint, and an upsert under a statement journal:
        // both only undo work inside the open transaction, so they are kept in memory rather
        // than written to a temporary file page by page (durability rests on the WAL alone).
        conn.pragma_update(None, "temp_store", "MEMORY")
            .map_err(backend)?;
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(backend)?;
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = conn.transaction().map_err(backend)?;
            tx.execute_batch(sql).map_err(backend)?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)
                .map_err(backend)?;
            tx.commit().map_err(backend)?;
        }
        Ok(SqliteStore {
            writer: Arc::new(crate::sqlite_writer::Writer::start(
                conn,
                Some(crate::sqlite_writer::Chore {
                    every: index_every,
                    run: crate::sqlite_audit_index::index_tail,
                }),
            )?),
            readers: None,
            latency: crate::Latency::default(),
        })
    }

    /// Run the read-only `f` on a reader connection in a blocking thread (on the writer's
    /// connection for an in-memory database, which has no readers). A read sees every write
    /// acknowledged before it began.
    pub(crate) async fn read<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let Some(readers) = self.readers.clone() else {
            return self.with(move |c| f(c)).await;
        };
        let _timer = self.latency.timer("sqlite", CallKind::Read);
        let permit = readers
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(backend)?;
        tokio::task::spawn_blocking(move || Lease::take(&readers, permit)?.run(f))
            .await
            .map_err(backend)?
    }

    /// Run the read-only `f`, which reads a bounded number of rows (a page, or rows by id or
    /// name, on indexes), on an idle reader connection right on the calling task's thread:
    /// handing such a read to a blocking thread and back costs more than the read itself.
    /// When no reader is idle it waits for one on a blocking thread, as [`Self::read`] does.
    pub(crate) async fn read_bounded<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let idle = self
            .readers
            .as_ref()
            .and_then(|r| Some((r, r.permits.clone().try_acquire_owned().ok()?)));
        let Some((readers, permit)) = idle else {
            return self.read(f).await;
        };
        let _timer = self.latency.timer("sqlite", CallKind::Read);
        Lease::take(readers, permit)?.run(f)
    }

    /// Run `f` on the write connection, in the writer's next group transaction (under a
    /// savepoint of its own: `f` nests its transactions as savepoints). Answers once the group
    /// is committed.
    pub(crate) async fn with<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    {
        let _timer = self.latency.timer("sqlite", CallKind::Write);
        self.writer.run(false, f).await
    }

    /// Run `f` on the write connection outside any group transaction.
    pub(crate) async fn with_solo<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    {
        let _timer = self.latency.timer("sqlite", CallKind::Write);
        self.writer.run(true, f).await
    }
}

fn account_from_row(r: &Row<'_>) -> rusqlite::Result<Account> {
    crate::rows::account(r)
}

pub(crate) fn key_pair_from_row(r: &Row<'_>) -> rusqlite::Result<KeyPair> {
    crate::rows::key_pair(r)
}

/// The rules an insert could break, in the order callers see them: the name, the public key,
/// the quota. Each is one indexed query; the transaction holds the write lock.
fn insert_checks(tx: &Connection, kp: &KeyPair, quota: usize) -> StoreResult<()> {
    let exists = |sql: &str, value: &str| -> StoreResult<bool> {
        let mut st = tx.prepare_cached(sql).map_err(backend)?;
        st.exists(params![
            kp.account_id,
            kp.namespace.as_str(),
            kp.region,
            value
        ])
        .map_err(backend)
    };
    if exists(
        "SELECT 1 FROM key_pairs WHERE account_id = ?1 AND namespace = ?2 AND region = ?3 \
         AND name = ?4",
        &kp.name,
    )? {
        return Err(StoreError::Conflict(Conflict::KeyPairName));
    }
    if exists(
        "SELECT 1 FROM key_pairs WHERE account_id = ?1 AND namespace = ?2 AND region = ?3 \
         AND fingerprint_sha256 = ?4",
        &kp.fingerprint_sha256,
    )? {
        return Err(StoreError::Conflict(Conflict::PublicKey));
    }
    let held: i64 = tx
        .prepare_cached(sql::COUNT_KEY_PAIRS)
        .map_err(backend)?
        .query_row(params![kp.account_id, kp.namespace.as_str()], |r| r.get(0))
        .map_err(backend)?;
    if held as usize >= quota {
        return Err(StoreError::Conflict(Conflict::Quota));
    }
    Ok(())
}

/// The setting that holds the credentials generation (see [`Store::credentials_generation`]).
pub(crate) const CREDENTIALS_GENERATION: &str = "credentials_generation";

/// Increase the credentials generation, inside the transaction of the change.
fn bump_credentials_generation(tx: &Connection) -> StoreResult<()> {
    tx.exec(
        "INSERT INTO settings (name, value) VALUES (?1, '1') ON CONFLICT (name) \
         DO UPDATE SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT)",
        params![CREDENTIALS_GENERATION],
    )
    .map_err(backend)?;
    Ok(())
}

/// After secrets were replaced: their old pages are zeroed (secure_delete) in the database
/// file; move them out of the write-ahead log too and empty it.
fn forget_old_secrets(c: &Connection) -> StoreResult<()> {
    c.row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .map_err(backend)
}

fn account_where(conn: &Connection, column: &str, value: &str) -> StoreResult<Option<Account>> {
    let sql = format!("SELECT {ACCOUNT_COLS} FROM accounts WHERE {column} = ?1");
    conn.prepare_cached(&sql)
        .map_err(backend)?
        .query_row(params![value], account_from_row)
        .optional()
        .map_err(backend)
}

#[async_trait]
impl Store for SqliteStore {
    fn report_latency(&self, sink: Arc<dyn LatencySink>) {
        self.latency.report_to(sink);
    }

    async fn insert_account(&self, a: &Account) -> StoreResult<()> {
        let a = a.clone();
        self.with(move |c| {
            c.exec(
                sql::INSERT_ACCOUNT,
                params![
                    a.id,
                    a.name,
                    a.is_admin as i64,
                    a.secret_id,
                    a.secret_key.expose(),
                    a.access_key_id,
                    a.access_key_secret.expose(),
                    a.created_at
                ],
            )
            .map_err(|e| match is_unique_violation(&e) {
                Some(msg) if msg.contains("accounts.name") => {
                    StoreError::Conflict(Conflict::AccountName)
                }
                Some(_) => StoreError::Conflict(Conflict::Id),
                None => backend(e),
            })?;
            Ok(())
        })
        .await
    }

    async fn account_by_name(&self, name: &str) -> StoreResult<Option<Account>> {
        let name = name.to_string();
        self.read(move |c| account_where(c, "name", &name)).await
    }

    async fn account_by_secret_id(&self, secret_id: &str) -> StoreResult<Option<Account>> {
        let v = secret_id.to_string();
        self.read(move |c| account_where(c, "secret_id", &v)).await
    }

    async fn account_by_access_key_id(&self, id: &str) -> StoreResult<Option<Account>> {
        let v = id.to_string();
        self.read(move |c| account_where(c, "access_key_id", &v))
            .await
    }

    async fn list_accounts(&self) -> StoreResult<Vec<Account>> {
        self.read(|c| {
            let mut st = c.prepare(sql::LIST_ACCOUNTS).map_err(backend)?;
            let rows = st.query_map([], account_from_row).map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
    }

    async fn replace_account_secrets(&self, updates: &[SecretUpdate]) -> StoreResult<usize> {
        let updates = updates.to_vec();
        self.with_solo(move |c| {
            let tx = c.transaction().map_err(backend)?;
            let mut changed = 0usize;
            for u in &updates {
                changed += tx
                    .exec(
                        sql::REPLACE_SECRETS,
                        params![
                            u.new_secret_key.expose(),
                            u.new_access_key_secret.expose(),
                            u.account_id,
                            u.old_secret_key.expose(),
                            u.old_access_key_secret.expose()
                        ],
                    )
                    .map_err(backend)?;
            }
            if changed > 0 {
                bump_credentials_generation(&tx)?;
            }
            tx.commit().map_err(backend)?;
            forget_old_secrets(c)?;
            Ok(changed)
        })
        .await
    }

    async fn replace_account_credentials(&self, a: &Account) -> StoreResult<()> {
        let a = a.clone();
        self.with_solo(move |c| {
            let tx = c.transaction().map_err(backend)?;
            let n = tx
                .exec(
                    sql::REPLACE_CREDENTIALS,
                    params![
                        a.secret_id,
                        a.secret_key.expose(),
                        a.access_key_id,
                        a.access_key_secret.expose(),
                        a.id
                    ],
                )
                .map_err(|e| match is_unique_violation(&e) {
                    Some(_) => StoreError::Conflict(Conflict::Id),
                    None => backend(e),
                })?;
            if n == 0 {
                return Err(StoreError::NotFound(a.id.clone()));
            }
            bump_credentials_generation(&tx)?;
            tx.commit().map_err(backend)?;
            forget_old_secrets(c)
        })
        .await
    }

    async fn credentials_generation(&self) -> StoreResult<i64> {
        self.read(|c| {
            let value: Option<String> = c
                .prepare_cached(sql::SETTING)
                .map_err(backend)?
                .query_row(params![CREDENTIALS_GENERATION], |r| r.get(0))
                .optional()
                .map_err(backend)?;
            value.map_or(Ok(0), |v| v.parse().map_err(backend))
        })
        .await
    }

    async fn insert_key_pair(
        &self,
        kp: &KeyPair,
        quota: usize,
        audit: Option<&AuditEvent>,
    ) -> StoreResult<()> {
        let (kp, audit) = (kp.clone(), audit.cloned());
        self.with(move |c| {
            let tags = serde_json::to_string(&kp.tags).map_err(backend)?;
            let tx = c.savepoint().map_err(backend)?;
            insert_checks(&tx, &kp, quota)?;
            tx.exec(
                sql::INSERT_KEY_PAIR,
                params![
                    kp.id,
                    kp.account_id,
                    kp.namespace.as_str(),
                    kp.region,
                    kp.name,
                    kp.description,
                    kp.project_id,
                    kp.public_key,
                    kp.fingerprint_sha256,
                    kp.fingerprint_md5,
                    tags,
                    kp.created_at
                ],
            )
            .map_err(|e| match is_unique_violation(&e) {
                Some(msg) if msg.contains("key_pairs.fingerprint_sha256") => {
                    StoreError::Conflict(Conflict::PublicKey)
                }
                Some(msg) if msg.ends_with("key_pairs.name") => {
                    StoreError::Conflict(Conflict::KeyPairName)
                }
                Some(_) => StoreError::Conflict(Conflict::Id),
                None => backend(e),
            })?;
            crate::sqlite_audit::write_event(&tx, audit)?;
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn list_key_pairs(
        &self,
        account_id: &str,
        namespace: Namespace,
        region: Option<&str>,
    ) -> StoreResult<Vec<KeyPair>> {
        let account_id = account_id.to_string();
        let region = region.map(str::to_string);
        self.read(move |c| {
            let mut st = c
                .prepare_cached(&format!(
                    "SELECT {KEY_COLS} FROM key_pairs WHERE account_id = ?1 AND namespace = ?2 \
                     AND (?3 IS NULL OR region = ?3) ORDER BY created_at, id"
                ))
                .map_err(backend)?;
            let rows = st
                .query_map(
                    params![account_id, namespace.as_str(), region],
                    key_pair_from_row,
                )
                .map_err(backend)?;
            let mut keys = rows.collect::<Result<Vec<_>, _>>().map_err(backend)?;
            let mut bound = c
                .prepare_cached(sql::BOUND_KEYS_OF_ACCOUNT)
                .map_err(backend)?;
            let pairs = bound
                .query_map(params![account_id], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                })
                .map_err(backend)?;
            for pair in pairs {
                let (key, instance) = pair.map_err(backend)?;
                if let Some(k) = keys.iter_mut().find(|k| k.id == key) {
                    k.associated_instance_ids.push(instance);
                }
            }
            Ok(keys)
        })
        .await
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
        let (account_id, id) = (account_id.to_string(), id.to_string());
        let (name, description) = (name.map(str::to_string), description.map(str::to_string));
        let audit = audit.cloned();
        self.with(move |c| {
            let tx = c.savepoint().map_err(backend)?;
            let n = tx
                .exec(
                    sql::UPDATE_KEY_PAIR,
                    params![name, description, id, account_id, namespace.as_str()],
                )
                .map_err(|e| match is_unique_violation(&e) {
                    Some(_) => StoreError::Conflict(Conflict::KeyPairName),
                    None => backend(e),
                })?;
            if n == 0 {
                return Err(StoreError::NotFound(id));
            }
            crate::sqlite_audit::write_event(&tx, audit)?;
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn delete_key_pairs(
        &self,
        account_id: &str,
        namespace: Namespace,
        ids: &[String],
        audit: Option<&AuditEvent>,
    ) -> StoreResult<()> {
        let account_id = account_id.to_string();
        let ids = ids.to_vec();
        let audit = audit.cloned();
        self.with(move |c| {
            let tx = c.savepoint().map_err(backend)?;
            for id in &ids {
                let n = tx
                    .exec(
                        sql::DELETE_KEY_PAIR,
                        params![id, account_id, namespace.as_str()],
                    )
                    .map_err(backend)?;
                if n == 0 {
                    return Err(StoreError::NotFound(id.clone()));
                }
            }
            crate::sqlite_audit::write_event(&tx, audit)?;
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn setting(&self, name: &str, initial: &str) -> StoreResult<String> {
        let (name, initial) = (name.to_string(), initial.to_string());
        self.with(move |c| {
            c.exec(
                "INSERT OR IGNORE INTO settings (name, value) VALUES (?1, ?2)",
                params![name, initial],
            )
            .map_err(backend)?;
            c.row(sql::SETTING, params![name], |r| r.get(0))
                .map_err(backend)
        })
        .await
    }

    async fn remember_nonce(
        &self,
        scope: &str,
        nonce: &str,
        expires_at: i64,
        now: i64,
    ) -> StoreResult<bool> {
        let (scope, nonce) = (scope.to_string(), nonce.to_string());
        self.with(move |c| {
            let tx = c.savepoint().map_err(backend)?;
            tx.exec("DELETE FROM nonces WHERE expires_at <= ?1", params![now])
                .map_err(backend)?;
            let n = tx
                .exec(
                    "INSERT OR IGNORE INTO nonces (scope, nonce, expires_at) VALUES (?1, ?2, ?3)",
                    params![scope, nonce, expires_at],
                )
                .map_err(backend)?;
            tx.commit().map_err(backend)?;
            Ok(n == 1)
        })
        .await
    }

    async fn query_key_pairs(
        &self,
        account_id: &str,
        namespace: Namespace,
        query: &KeyPairQuery,
    ) -> StoreResult<KeyPairPage> {
        let (account_id, query) = (account_id.to_string(), query.clone());
        self.read_bounded(move |c| {
            crate::sqlite_query::query_key_pairs(c, &account_id, namespace, &query)
        })
        .await
    }
}

#[cfg(test)]
#[path = "sqlite_tests.rs"]
mod tests;
