//! [`ConsoleStore`] on PostgreSQL: the web console's login and session hashes, shared by
//! every node, and when each instance's agent was last seen.

use crate::postgres::{in_transaction, Fail, PostgresStore};
use crate::sql;
use async_trait::async_trait;
use keyplane_core::store::{ConsoleAccount, ConsoleStore, ConsoleTokenKind, StoreResult};
use tokio_postgres::error::SqlState;

/// The console's tables (schema version 8), as [`crate::sqlite_console::MIGRATION`].
pub(crate) const MIGRATION: &str = r#"
CREATE TABLE console_tokens (
    token_hash TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX console_tokens_by_expiry ON console_tokens(expires_at);
CREATE TABLE agents_seen (
    instance_id TEXT PRIMARY KEY REFERENCES instances(id) ON DELETE CASCADE,
    seen_at BIGINT NOT NULL
);
"#;

#[async_trait]
impl ConsoleStore for PostgresStore {
    async fn insert_console_token(
        &self,
        hash: &str,
        kind: ConsoleTokenKind,
        account_id: &str,
        expires_at: i64,
        now: i64,
    ) -> StoreResult<()> {
        in_transaction!(self, |tx| {
            tx.execute(
                "DELETE FROM console_tokens WHERE token_hash IN (SELECT token_hash \
                 FROM console_tokens WHERE expires_at <= $1 LIMIT 256 FOR UPDATE SKIP LOCKED)",
                &[&now],
            )
            .await?;
            tx.execute(
                sql::INSERT_CONSOLE_TOKEN,
                &[&hash, &kind.as_str(), &account_id, &expires_at, &now],
            )
            .await?;
        })
    }

    async fn redeem_console_login(
        &self,
        login_hash: &str,
        session_hash: &str,
        session_expires_at: i64,
        now: i64,
    ) -> StoreResult<Option<ConsoleAccount>> {
        in_transaction!(self, |tx| {
            // The delete is the claim: of concurrent redeemers on any node, one deletes the
            // row and the others find none.
            let claimed = tx
                .query_opt(
                    "DELETE FROM console_tokens WHERE token_hash = $1 AND kind = 'login' \
                     AND expires_at > $2 RETURNING account_id",
                    &[&login_hash, &now],
                )
                .await?;
            match claimed {
                None => None,
                Some(row) => {
                    let id: String = row.try_get(0)?;
                    let name: String = tx
                        .query_one("SELECT name FROM accounts WHERE id = $1", &[&id])
                        .await?
                        .try_get(0)?;
                    tx.execute(
                        sql::INSERT_CONSOLE_SESSION,
                        &[&session_hash, &id, &session_expires_at, &now],
                    )
                    .await?;
                    Some(ConsoleAccount { id, name })
                }
            }
        })
    }

    async fn console_session(&self, hash: &str, now: i64) -> StoreResult<Option<ConsoleAccount>> {
        async {
            let _timer = self
                .latency
                .timer("postgres", keyplane_core::store::CallKind::Read);
            let client = self.client().await?;
            let row = client
                .query_opt(
                    "SELECT t.account_id, a.name FROM console_tokens t \
                     JOIN accounts a ON a.id = t.account_id \
                     WHERE t.token_hash = $1 AND t.kind = 'session' AND t.expires_at > $2",
                    &[&hash, &now],
                )
                .await?;
            match row {
                None => Ok(None),
                Some(r) => Ok(Some(ConsoleAccount {
                    id: r.try_get(0)?,
                    name: r.try_get(1)?,
                })),
            }
        }
        .await
        .map_err(Fail::into_store)
    }

    async fn delete_console_token(&self, hash: &str) -> StoreResult<()> {
        async {
            let _timer = self
                .latency
                .timer("postgres", keyplane_core::store::CallKind::Write);
            let client = self.client().await?;
            client.execute(sql::DELETE_CONSOLE_TOKEN, &[&hash]).await?;
            Ok(())
        }
        .await
        .map_err(Fail::into_store)
    }

    async fn record_agent_seen(&self, instance_id: &str, at: i64) -> StoreResult<()> {
        async {
            let _timer = self
                .latency
                .timer("postgres", keyplane_core::store::CallKind::Write);
            let client = self.client().await?;
            let done = client
                .execute(
                    "INSERT INTO agents_seen (instance_id, seen_at) \
                     SELECT id, $2 FROM instances WHERE id = $1 \
                     ON CONFLICT (instance_id) DO UPDATE \
                     SET seen_at = GREATEST(agents_seen.seen_at, EXCLUDED.seen_at)",
                    &[&instance_id, &at],
                )
                .await;
            match done {
                // Deleted between the select and the insert: nothing to record.
                Err(e) if e.code() == Some(&SqlState::FOREIGN_KEY_VIOLATION) => Ok(()),
                Err(e) => Err(Fail::from(e)),
                Ok(_) => Ok(()),
            }
        }
        .await
        .map_err(Fail::into_store)
    }

    async fn agents_seen(&self, account_id: &str) -> StoreResult<Vec<(String, i64)>> {
        async {
            let _timer = self
                .latency
                .timer("postgres", keyplane_core::store::CallKind::Read);
            let client = self.client().await?;
            let rows = client.query(sql::AGENTS_SEEN, &[&account_id]).await?;
            rows.iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
                .collect::<Result<Vec<_>, Fail>>()
        }
        .await
        .map_err(Fail::into_store)
    }
}
