//! The audit trail's index by account on SQLite, kept out of the changes' transactions.
//!
//! An index on `audit_events(account_id, seq)` costs every change a page of its own: the
//! events of concurrent requests of different accounts land on different leaves, one for each
//! account in a group commit. So SQLite keeps that index as a table of its own,
//! `audit_by_account`, filled in bulk by an indexer that rides along a group commit about once
//! a second (see [`crate::sqlite_writer::Chore`]): one pass appends each account's new
//! events, a page per account per second instead of a page per account per commit.
//! `audit_indexed.upto` is the highest `seq` indexed: a lookup by account reads the index for
//! the events at or below it and scans the events above it (at most about a second of
//! writes), so it sees every event written before it, indexed or not.
//!
//! Rows of `audit_events` get `seq` one above the highest present, so the mark never passes
//! the highest event (retention lowers it when it deletes the newest): a new event is always
//! above it. An event whose account a merge sets after it was indexed is indexed by the merge.
//! Retention deletes the index rows of the events it deletes. PostgreSQL, whose identities
//! are not committed in order (a mark could pass an event not yet committed), keeps the plain
//! index.

use crate::sqlite::backend;
use crate::sqlite_cached::Cached;
use keyplane_core::store::StoreResult;
use rusqlite::{params, Connection, OptionalExtension};
use std::time::Duration;

/// Schema version 11: the index by account as a table, filled from the events already there
/// (and, as on PostgreSQL, the resources' alias rows go: see [`crate::audit_sql`]).
pub(crate) const MIGRATION: &str = concat!(
    crate::audit_sql::drop_alias_rows!(),
    r#"
DROP INDEX audit_events_by_account;
CREATE TABLE audit_by_account (
    account_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (account_id, seq)
) WITHOUT ROWID;
CREATE TABLE audit_indexed (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    upto INTEGER NOT NULL
);
INSERT INTO audit_by_account (account_id, seq)
    SELECT account_id, seq FROM audit_events WHERE account_id IS NOT NULL;
INSERT INTO audit_indexed (id, upto) VALUES (1, (SELECT COALESCE(MAX(seq), 0) FROM audit_events));
"#
);

/// How often at most the indexer runs (while there are writes to ride along).
pub(crate) const EVERY: Duration = Duration::from_secs(1);

/// The events of account `$n` (SQL text for an `e.seq IN (...)` test, the account as
/// parameter `p`): the indexed ones and those above the mark.
pub(crate) fn seqs_of_account(p: &str) -> String {
    format!(
        "SELECT seq FROM audit_by_account WHERE account_id = {p} UNION ALL \
         SELECT seq FROM audit_events WHERE seq > (SELECT upto FROM audit_indexed) \
         AND account_id = {p}"
    )
}

/// Index the events above the mark, and raise the mark to the newest. (In `seq` order: sorting
/// them by account first took half as long again as the inserts it spared seeking, which touch
/// the same leaves either way.)
const INDEX_TAIL: &str = "INSERT OR IGNORE INTO audit_by_account (account_id, seq) \
     SELECT account_id, seq FROM audit_events \
     WHERE seq > (SELECT upto FROM audit_indexed) AND account_id IS NOT NULL";
const RAISE_MARK: &str = "UPDATE audit_indexed SET \
     upto = (SELECT COALESCE(MAX(seq), 0) FROM audit_events) \
     WHERE upto < (SELECT COALESCE(MAX(seq), 0) FROM audit_events)";
/// Index event `?1` now when it is at or below the mark and has an account.
const INDEX_ONE: &str = "INSERT OR IGNORE INTO audit_by_account (account_id, seq) \
     SELECT account_id, seq FROM audit_events \
     WHERE seq = ?1 AND account_id IS NOT NULL AND seq <= (SELECT upto FROM audit_indexed)";
/// The next account after `?1` that has index rows.
const NEXT_ACCOUNT: &str = "SELECT account_id FROM audit_by_account WHERE account_id > ?1 \
     ORDER BY account_id LIMIT 1";
/// Delete account `?1`'s index rows at or below `?2` whose event is gone.
const PRUNE_ACCOUNT: &str = "DELETE FROM audit_by_account WHERE account_id = ?1 AND seq <= ?2 \
     AND NOT EXISTS (SELECT 1 FROM audit_events e WHERE e.seq = audit_by_account.seq)";
/// Keep the mark at or below the newest event (so that the next one is above it).
const LOWER_MARK: &str = "UPDATE audit_indexed SET \
     upto = (SELECT COALESCE(MAX(seq), 0) FROM audit_events) \
     WHERE upto > (SELECT COALESCE(MAX(seq), 0) FROM audit_events)";

/// The indexer: index every event above the mark (inside the caller's transaction).
pub(crate) fn index_tail(c: &Connection) -> StoreResult<()> {
    c.exec(INDEX_TAIL, []).map_err(backend)?;
    c.exec(RAISE_MARK, []).map_err(backend)?;
    Ok(())
}

/// A merge may have set the account of event `seq`: index it if the indexer has passed it.
pub(crate) fn merged(c: &Connection, seq: i64) -> StoreResult<()> {
    c.exec(INDEX_ONE, params![seq]).map_err(backend)?;
    Ok(())
}

/// After retention deleted events at or below `upto`: delete their index rows, one account
/// at a time (each a range of the primary key), and keep the mark at or below the newest event.
pub(crate) fn pruned(c: &Connection, upto: i64) -> StoreResult<()> {
    let mut after = String::new();
    loop {
        let next: Option<String> = c
            .row(NEXT_ACCOUNT, params![after], |r| r.get(0))
            .optional()
            .map_err(backend)?;
        let Some(account) = next else { break };
        c.exec(PRUNE_ACCOUNT, params![account, upto])
            .map_err(backend)?;
        after = account;
    }
    c.exec(LOWER_MARK, []).map_err(backend)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::sqlite::{backend, SqliteStore};
    use crate::sqlite_cached::Cached;
    use keyplane_core::account::Account;
    use keyplane_core::audit::{AuditAttribute, AuditEvent, AuditQuery};
    use keyplane_core::store::{AuditStore, Store};

    /// An ImportKeyPair event of `account`, or of no account (a refusal before signing).
    fn event(account: Option<&Account>, request_id: &str, at: i64) -> AuditEvent {
        let nobody = Account::generate("nobody", false, 0);
        let mut e =
            crate::suite_audit::event(account.unwrap_or(&nobody), request_id, "ImportKeyPair", at);
        if account.is_none() {
            e.account_id = None;
        }
        e
    }

    async fn ids(store: &SqliteStore, a: &Account) -> Vec<String> {
        let q = AuditQuery {
            account_id: Some(a.id.clone()),
            limit: 1000,
            ..AuditQuery::default()
        };
        let page = store.query_events(&q).await.unwrap();
        assert_eq!(page.total as usize, page.events.len());
        page.events
            .into_iter()
            .map(|e| e.request.request_id)
            .collect()
    }

    async fn index_now(store: &SqliteStore) {
        store.with(|c| super::index_tail(c)).await.unwrap();
    }

    async fn shape(store: &SqliteStore) -> (i64, i64) {
        store
            .read(|c| {
                c.row(
                    "SELECT (SELECT COUNT(*) FROM audit_by_account), \
                     (SELECT upto FROM audit_indexed)",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .map_err(backend)
            })
            .await
            .unwrap()
    }

    async fn accounts(store: &SqliteStore) -> (Account, Account) {
        let a = Account::generate("index-a", false, 1);
        let b = Account::generate("index-b", false, 1);
        store.insert_account(&a).await.unwrap();
        store.insert_account(&b).await.unwrap();
        (a, b)
    }

    #[tokio::test]
    async fn lookups_see_events_before_and_after_the_indexer() {
        let store = SqliteStore::in_memory_indexing_every(std::time::Duration::MAX).unwrap();
        let (a, b) = accounts(&store).await;
        store
            .record_events(vec![event(Some(&a), "r1", 10), event(Some(&b), "r2", 11)])
            .await
            .unwrap();
        // Written just now, not indexed yet: found by the scan above the mark.
        assert_eq!(shape(&store).await, (0, 0));
        assert_eq!(ids(&store, &a).await, vec!["r1"]);
        index_now(&store).await;
        assert_eq!(shape(&store).await, (2, 2));
        store
            .record_events(vec![event(Some(&a), "r3", 12), event(None, "r4", 13)])
            .await
            .unwrap();
        // Half indexed, half not: both halves, newest first, each once.
        assert_eq!(ids(&store, &a).await, vec!["r3", "r1"]);
        assert_eq!(ids(&store, &b).await, vec!["r2"]);
        index_now(&store).await;
        assert_eq!(shape(&store).await, (3, 4));
        assert_eq!(ids(&store, &a).await, vec!["r3", "r1"]);
        // Paging across the mark, oldest first.
        store
            .record_events(vec![event(Some(&a), "r5", 14)])
            .await
            .unwrap();
        let mut q = AuditQuery {
            account_id: Some(a.id.clone()),
            limit: 1,
            ascending: true,
            ..AuditQuery::default()
        };
        let mut seen = Vec::new();
        loop {
            let page = store.query_events(&q).await.unwrap();
            assert_eq!(page.total, 3);
            seen.extend(page.events.iter().map(|e| e.request.request_id.clone()));
            match page.events.last() {
                Some(last) if page.more => q.after_seq = Some(last.seq),
                _ => break,
            }
        }
        assert_eq!(seen, vec!["r1", "r3", "r5"]);
    }

    #[tokio::test]
    async fn a_merge_that_names_the_account_later_is_found_by_it() {
        let store = SqliteStore::in_memory_indexing_every(std::time::Duration::MAX).unwrap();
        let (a, _) = accounts(&store).await;
        store
            .record_events(vec![event(None, "late", 10), event(None, "later", 11)])
            .await
            .unwrap();
        index_now(&store).await;
        assert_eq!(shape(&store).await, (0, 2));
        // "late" is below the mark when its account is set; "later" is set before indexing.
        let mut refused = event(Some(&a), "late", 12);
        refused.error_code = Some("InternalError".into());
        store.record_events(vec![refused]).await.unwrap();
        assert_eq!(ids(&store, &a).await, vec!["late"]);
        store
            .record_events(vec![event(None, "new", 13)])
            .await
            .unwrap();
        store
            .record_events(vec![event(Some(&a), "new", 14)])
            .await
            .unwrap();
        assert_eq!(ids(&store, &a).await, vec!["new", "late"]);
        index_now(&store).await;
        assert_eq!(ids(&store, &a).await, vec!["new", "late"]);
        assert_eq!(shape(&store).await, (2, 3));
    }

    #[tokio::test]
    async fn retention_deletes_index_rows_and_keeps_the_mark_below_new_events() {
        let store = SqliteStore::in_memory_indexing_every(std::time::Duration::MAX).unwrap();
        let (a, b) = accounts(&store).await;
        let events: Vec<AuditEvent> = (0..6)
            .map(|n| {
                let who = if n % 2 == 0 { &a } else { &b };
                event(Some(who), &format!("p{n}"), 100 + n)
            })
            .collect();
        store.record_events(events).await.unwrap();
        index_now(&store).await;
        assert_eq!(shape(&store).await, (6, 6));
        // By age, then by count: index rows go with their events.
        assert_eq!(store.prune_events(102, u64::MAX).await.unwrap(), 2);
        assert_eq!(shape(&store).await, (4, 6));
        assert_eq!(store.prune_events(0, 1).await.unwrap(), 3);
        assert_eq!(shape(&store).await, (1, 6));
        assert_eq!(ids(&store, &b).await, vec!["p5"]);
        assert!(ids(&store, &a).await.is_empty());
        // Everything goes: the next event reuses a low seq, which must be above the mark.
        assert_eq!(store.prune_events(1_000, u64::MAX).await.unwrap(), 1);
        assert_eq!(shape(&store).await, (0, 0));
        store
            .record_events(vec![event(Some(&a), "after", 200)])
            .await
            .unwrap();
        assert_eq!(ids(&store, &a).await, vec!["after"]);
        let by_rid = AuditQuery {
            account_id: Some(a.id.clone()),
            attributes: vec![AuditAttribute::RequestId("after".into())],
            ..AuditQuery::default()
        };
        assert_eq!(store.query_events(&by_rid).await.unwrap().total, 1);
    }

    /// An account's page walks its index rows (and the events above the mark) newest first,
    /// without scanning the trail or sorting its events.
    #[tokio::test]
    async fn an_account_lookup_is_planned_on_the_index() {
        let store = SqliteStore::in_memory_indexing_every(std::time::Duration::MAX).unwrap();
        let q = AuditQuery {
            account_id: Some("a".into()),
            attributes: vec![AuditAttribute::EventName("ImportKeyPair".into())],
            ..AuditQuery::default()
        };
        let l = crate::audit_sql::lookup(&q, &crate::sqlite_audit::SHAPE);
        let plan: Vec<String> = store
            .read(move |c| {
                let mut st = c
                    .prepare(&format!("EXPLAIN QUERY PLAN {}", l.page))
                    .map_err(backend)?;
                let rows = st
                    .query_map(rusqlite::params_from_iter(l.page_args.iter()), |r| {
                        r.get::<_, String>(3)
                    })
                    .map_err(backend)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(backend)
            })
            .await
            .unwrap();
        let plan = plan.join("\n");
        assert!(
            plan.contains("SEARCH e USING INTEGER PRIMARY KEY"),
            "{plan}"
        );
        assert!(
            plan.contains("audit_by_account USING PRIMARY KEY (account_id=?)"),
            "{plan}"
        );
        assert!(!plan.contains("SCAN e"), "{plan}");
        assert!(!plan.contains("ORDER BY"), "{plan}");
    }

    /// A file of version 10 (events under the plain index, resources with alias rows) reads
    /// the same after the upgrade: found by account, by resource id and by name.
    #[tokio::test]
    async fn version_10_files_upgrade() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.db");
        let a = Account::generate("upgrade", false, 1);
        {
            let c = rusqlite::Connection::open(&path).unwrap();
            for (i, sql) in crate::sqlite::MIGRATIONS[..10].iter().enumerate() {
                c.execute_batch(sql).unwrap();
                c.pragma_update(None, "user_version", (i + 1) as i64)
                    .unwrap();
            }
            c.execute_batch(&format!(
                "INSERT INTO audit_events (seq, event_id, request_id, account_id, at, dialect, \
                 action, credential_id, source_ip, region, read_only, ops_total, ops_pending, \
                 ops_failed) VALUES (1, 'ev', 'old', '{id}', 5, 'cvm', 'ImportKeyPair', '', '', \
                 '', 0, 0, 0, 0); \
                 INSERT INTO audit_resources VALUES (1, 'keypair', 'skey-1', 'mine', 0); \
                 INSERT INTO audit_resources VALUES (1, 'keypair', 'mine', 'skey-1', 1);",
                id = a.id
            ))
            .unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        store.insert_account(&a).await.unwrap();
        assert_eq!(shape(&store).await, (1, 1));
        assert_eq!(ids(&store, &a).await, vec!["old"]);
        for attr in [
            AuditAttribute::ResourceId("skey-1".into()),
            AuditAttribute::ResourceName("mine".into()),
            AuditAttribute::ResourceName("skey-1".into()),
        ] {
            let q = AuditQuery {
                account_id: Some(a.id.clone()),
                attributes: vec![attr.clone()],
                ..AuditQuery::default()
            };
            let page = store.query_events(&q).await.unwrap();
            assert_eq!(page.total, 1, "{attr:?}");
            assert_eq!(page.events[0].resources.len(), 1, "{attr:?}");
        }
        let by_alias = AuditQuery {
            attributes: vec![AuditAttribute::ResourceId("mine".into())],
            ..AuditQuery::default()
        };
        assert_eq!(store.query_events(&by_alias).await.unwrap().total, 0);
    }

    #[tokio::test]
    async fn the_writer_runs_the_indexer_along_its_groups() {
        let store = SqliteStore::in_memory_indexing_every(std::time::Duration::ZERO).unwrap();
        let (a, _) = accounts(&store).await;
        store
            .record_events(vec![event(Some(&a), "x1", 10), event(None, "x2", 11)])
            .await
            .unwrap();
        assert_eq!(shape(&store).await, (1, 2));
        assert_eq!(ids(&store, &a).await, vec!["x1"]);
    }

    #[tokio::test]
    async fn the_suite_passes_with_the_indexer_after_every_write() {
        let store = SqliteStore::in_memory_indexing_every(std::time::Duration::ZERO).unwrap();
        crate::suite::run(std::sync::Arc::new(store)).await;
    }
}
