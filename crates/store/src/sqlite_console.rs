//! [`ConsoleStore`] on SQLite: the web console's login and session hashes, and when each
//! instance's agent was last seen.

use crate::sql;
use crate::sqlite::{backend, SqliteStore};
use crate::sqlite_cached::Cached;
use async_trait::async_trait;
use keyplane_core::store::{ConsoleAccount, ConsoleStore, ConsoleTokenKind, StoreResult};
use rusqlite::{params, OptionalExtension};

/// The console's tables (schema version 8): tokens are kept only as hashes.
pub(crate) const MIGRATION: &str = r#"
CREATE TABLE console_tokens (
    token_hash TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    expires_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX console_tokens_by_expiry ON console_tokens(expires_at);
CREATE TABLE agents_seen (
    instance_id TEXT PRIMARY KEY REFERENCES instances(id) ON DELETE CASCADE,
    seen_at INTEGER NOT NULL
);
"#;

const ACCOUNT_OF: &str = "SELECT t.account_id, a.name FROM console_tokens t \
     JOIN accounts a ON a.id = t.account_id \
     WHERE t.token_hash = ?1 AND t.kind = ?2 AND t.expires_at > ?3";

#[async_trait]
impl ConsoleStore for SqliteStore {
    async fn insert_console_token(
        &self,
        hash: &str,
        kind: ConsoleTokenKind,
        account_id: &str,
        expires_at: i64,
        now: i64,
    ) -> StoreResult<()> {
        let (hash, account_id) = (hash.to_string(), account_id.to_string());
        self.with(move |c| {
            let tx = c.savepoint().map_err(backend)?;
            tx.exec(
                "DELETE FROM console_tokens WHERE token_hash IN \
                 (SELECT token_hash FROM console_tokens WHERE expires_at <= ?1 LIMIT 256)",
                params![now],
            )
            .map_err(backend)?;
            tx.exec(
                sql::INSERT_CONSOLE_TOKEN,
                params![hash, kind.as_str(), account_id, expires_at, now],
            )
            .map_err(backend)?;
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn redeem_console_login(
        &self,
        login_hash: &str,
        session_hash: &str,
        session_expires_at: i64,
        now: i64,
    ) -> StoreResult<Option<ConsoleAccount>> {
        let (login, session) = (login_hash.to_string(), session_hash.to_string());
        self.with(move |c| {
            // The writer's group transaction is BEGIN IMMEDIATE: the write lock is held before
            // the login is read, so two processes on one file cannot both read it and then
            // both delete it.
            let tx = c.savepoint().map_err(backend)?;
            let found = tx
                .row(ACCOUNT_OF, params![login, "login", now], |r| {
                    Ok(ConsoleAccount {
                        id: r.get(0)?,
                        name: r.get(1)?,
                    })
                })
                .optional()
                .map_err(backend)?;
            let Some(account) = found else {
                return Ok(None);
            };
            let deleted = tx
                .exec(
                    "DELETE FROM console_tokens WHERE token_hash = ?1 AND kind = 'login'",
                    params![login],
                )
                .map_err(backend)?;
            if deleted != 1 {
                return Ok(None);
            }
            tx.exec(
                sql::INSERT_CONSOLE_SESSION,
                params![session, account.id, session_expires_at, now],
            )
            .map_err(backend)?;
            tx.commit().map_err(backend)?;
            Ok(Some(account))
        })
        .await
    }

    async fn console_session(&self, hash: &str, now: i64) -> StoreResult<Option<ConsoleAccount>> {
        let hash = hash.to_string();
        self.with(move |c| {
            c.row(ACCOUNT_OF, params![hash, "session", now], |r| {
                Ok(ConsoleAccount {
                    id: r.get(0)?,
                    name: r.get(1)?,
                })
            })
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn delete_console_token(&self, hash: &str) -> StoreResult<()> {
        let hash = hash.to_string();
        self.with(move |c| {
            c.exec(sql::DELETE_CONSOLE_TOKEN, params![hash])
                .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn record_agent_seen(&self, instance_id: &str, at: i64) -> StoreResult<()> {
        let id = instance_id.to_string();
        self.with(move |c| {
            c.exec(
                "INSERT INTO agents_seen (instance_id, seen_at) \
                 SELECT id, ?2 FROM instances WHERE id = ?1 \
                 ON CONFLICT (instance_id) DO UPDATE SET seen_at = max(seen_at, excluded.seen_at)",
                params![id, at],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn agents_seen(&self, account_id: &str) -> StoreResult<Vec<(String, i64)>> {
        let account = account_id.to_string();
        self.with(move |c| {
            let mut st = c.prepare(sql::AGENTS_SEEN).map_err(backend)?;
            let rows = st
                .query_map(params![account], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
    }
}
