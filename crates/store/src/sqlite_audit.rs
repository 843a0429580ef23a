//! [`AuditStore`] on SQLite, and the audit writes the other stores make inside their own
//! transactions.

use crate::audit_sql::{self as sql, EventRow};
use crate::sqlite::{backend, SqliteStore};
use crate::sqlite_cached::Cached;
use async_trait::async_trait;
use keyplane_core::audit::{AuditEvent, AuditPage, AuditQuery, AuditResource};
use keyplane_core::store::{AuditStore, StoreResult};
use rusqlite::{params, params_from_iter, Connection, OptionalExtension};
use std::cell::RefCell;

/// The audit tables (schema version 10).
pub(crate) const MIGRATION: &str = concat!(
    r#"
CREATE TABLE audit_events (
    seq INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL,
    request_id TEXT NOT NULL UNIQUE,
    account_id TEXT,
    at INTEGER NOT NULL,
    dialect TEXT NOT NULL,
    action TEXT NOT NULL,
    credential_id TEXT NOT NULL,
    source_ip TEXT NOT NULL,
    region TEXT NOT NULL,
    read_only INTEGER NOT NULL,
    error_code TEXT,
    error_message TEXT,
    ops_total INTEGER NOT NULL,
    ops_pending INTEGER NOT NULL,
    ops_failed INTEGER NOT NULL,
    op_error TEXT
);
"#,
    resources_table!(),
    crate::audit_sql::audit_indexes!()
);

/// The resources of events, one row each, as versions 10 to 12 kept them.
macro_rules! resources_table {
    () => {
        r#"
CREATE TABLE audit_resources (
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    name TEXT NOT NULL,
    alias INTEGER NOT NULL,
    PRIMARY KEY (seq, kind, id)
) WITHOUT ROWID;
"#
    };
}
pub(crate) use resources_table;

/// Schema version 13: an event's resources are a column of its row, a JSON array of
/// `[kind, id, name]` sorted by kind and id (see [`resources_text`]), instead of rows of a
/// table of their own. Why: a row more for each resource of each event, in a tree of its own,
/// was about a third of what an audited change cost the writer; a lookup by resource probes
/// an event's resources either way, one event at a time (see [`SHAPE`]).
pub(crate) const RESOURCES_IN_EVENTS: &str = r#"
ALTER TABLE audit_events ADD COLUMN resources TEXT NOT NULL DEFAULT '[]';
UPDATE audit_events SET resources = (
    SELECT json_group_array(json_array(r.kind, r.id, r.name) ORDER BY r.kind, r.id)
    FROM audit_resources r WHERE r.seq = audit_events.seq AND r.alias = 0)
WHERE seq IN (SELECT seq FROM audit_resources WHERE alias = 0);
DROP TABLE audit_resources;
"#;

/// SQLite's [`sql::Shape`]: the account index of [`crate::sqlite_audit_index`], and the
/// resources in the event's row.
pub(crate) const SHAPE: sql::Shape = sql::Shape {
    by_account: account_seqs,
    resource: resource_column,
    cols: sql::event_cols!("e.resources"),
};

/// Where a page of [`SHAPE`] has the `resources` column: after [`sql::EVENT_COLS`].
const RESOURCES_AT: usize = 17;

/// [`sql::Shape::resource`] over the event's `resources` column.
fn resource_column(test: &str) -> String {
    format!(
        "EXISTS (SELECT 1 FROM (SELECT value ->> 0 AS kind, value ->> 1 AS id, \
         value ->> 2 AS name FROM json_each(e.resources)) r WHERE {test})"
    )
}

/// Record the first event of a request, with its resources (`$17`). The request's later
/// events merge with [`sql::MERGE_EVENT`] instead, which a constraint failure of this one
/// says: a plain insert checks the constraint before it writes, so it needs no statement
/// journal, where an upsert keeps one open for every row.
const INSERT_EVENT: &str = sql::insert_event!(", resources", ", $17");

/// The resources of event `?1`.
const RESOURCES_OF: &str = "SELECT resources FROM audit_events WHERE seq = ?1";
/// Set the resources of event `?2` to `?1`.
const SET_RESOURCES: &str = "UPDATE audit_events SET resources = ?1 WHERE seq = ?2";

/// `resources` as the `resources` column holds them: each kind and id once (the first one
/// named), sorted by kind and id.
fn resources_text(resources: &[AuditResource]) -> String {
    let mut named: Vec<[&str; 3]> = resources
        .iter()
        .map(|r| [r.kind.as_str(), r.id.as_str(), r.name.as_str()])
        .collect();
    // Stable: of a kind and id named twice, the first stays.
    named.sort_by(|a, b| (a[0], a[1]).cmp(&(b[0], b[1])));
    named.dedup_by(|b, a| (a[0], a[1]) == (b[0], b[1]));
    serde_json::to_string(&named).unwrap_or_else(|_| "[]".to_string())
}

/// The resources of a `resources` column.
fn resources_of_text(text: &str) -> StoreResult<Vec<AuditResource>> {
    let named: Vec<(String, String, String)> = serde_json::from_str(text).map_err(backend)?;
    Ok(named
        .into_iter()
        .map(|(kind, id, name)| AuditResource { kind, id, name })
        .collect())
}

/// The values of [`INSERT_EVENT`] for `e` with its `resources` (see [`resources_text`]), as
/// [`sql::upsert_args`] gives them but borrowed (an audited write then copies none of the
/// event's text).
fn insert_values<'a>(
    e: &'a AuditEvent,
    resources: &'a dyn rusqlite::ToSql,
) -> [&'a dyn rusqlite::ToSql; 17] {
    let r = &e.request;
    [
        &e.event_id,
        &r.request_id,
        &e.account_id,
        &e.at,
        &r.dialect,
        &r.action,
        &r.credential_id,
        &r.source_ip,
        &r.region,
        &e.read_only,
        &e.error_code,
        &e.error_message,
        &e.ops_total,
        &e.ops_pending,
        &e.ops_failed,
        &e.op_error,
        resources,
    ]
}

thread_local! {
    /// The events of the group the writer thread has open, in the order their writes ran:
    /// `None` outside a group (see [`Deferred`]).
    static DEFERRED: RefCell<Option<Vec<AuditEvent>>> = const { RefCell::new(None) };
}

/// The audit events of a group commit, written together once its last write has run.
///
/// Why: each write of a group runs under a savepoint of its own, and every page a write
/// changes under a savepoint is first copied to the statement journal. An event written with
/// its change therefore copied the trail's pages (the event's leaf, the request-id index's, the
/// resources') once per write of the group, and looked its two statements up once per write.
/// Written after the group's writes, outside any savepoint, the events touch those pages once
/// and prepare their statements once, in the same transaction as the changes: an acknowledged
/// change still always has its event, and a write that failed has none (its events are
/// dropped with its savepoint).
///
/// The writer thread opens one per group; [`write_event`] and [`operation_ended`] on that
/// thread see it. Anywhere else (a write run alone, a test's connection) events are written
/// at once.
pub(crate) struct Deferred(());

impl Deferred {
    /// Start gathering the events of a group on this thread.
    pub(crate) fn open() -> Deferred {
        DEFERRED.with(|d| *d.borrow_mut() = Some(Vec::new()));
        Deferred(())
    }

    /// How many events are gathered: a mark to [`Deferred::truncate`] to.
    pub(crate) fn mark(&self) -> usize {
        DEFERRED.with(|d| d.borrow().as_ref().map_or(0, Vec::len))
    }

    /// Drop the events gathered after `mark` (their write was rolled back).
    pub(crate) fn truncate(&self, mark: usize) {
        DEFERRED.with(|d| {
            if let Some(events) = d.borrow_mut().as_mut() {
                events.truncate(mark);
            }
        });
    }

    /// Write the gathered events on `c`, inside the group's transaction, and stop gathering.
    /// An error leaves the transaction for the caller to roll back.
    pub(crate) fn write(self, c: &Connection) -> StoreResult<()> {
        let events = DEFERRED.with(|d| d.borrow_mut().take()).unwrap_or_default();
        write_now(c, &events)
    }
}

impl Drop for Deferred {
    fn drop(&mut self) {
        DEFERRED.with(|d| *d.borrow_mut() = None);
    }
}

/// Record `event` (or merge it into its request's) on `c`, inside the caller's transaction:
/// at the end of the group when the writer thread has one open (see [`Deferred`]), else now.
pub(crate) fn write_event(c: &Connection, event: Option<AuditEvent>) -> StoreResult<()> {
    let Some(e) = event else {
        return Ok(());
    };
    write_events(c, vec![e]).map(drop)
}

/// [`write_event`] for each of `events`, in order, with the statements prepared once; hands
/// back the events written at once (none when the group gathers them).
fn write_events(c: &Connection, events: Vec<AuditEvent>) -> StoreResult<Vec<AuditEvent>> {
    let Some(events) = DEFERRED.with(|d| match d.borrow_mut().as_mut() {
        Some(gathered) => {
            gathered.extend(events);
            None
        }
        None => Some(events),
    }) else {
        return Ok(Vec::new());
    };
    write_now(c, &events)?;
    Ok(events)
}

/// Write `events` on `c` now, in order, with the statements prepared once.
fn write_now(c: &Connection, events: &[AuditEvent]) -> StoreResult<()> {
    if events.is_empty() {
        return Ok(());
    }
    let mut insert = c.prepare_cached(INSERT_EVENT).map_err(backend)?;
    for e in events {
        write_prepared(c, &mut insert, e)?;
    }
    Ok(())
}

/// [`write_event`] with [`INSERT_EVENT`] prepared as `insert` (a batch prepares it once).
fn write_prepared(
    c: &Connection,
    insert: &mut rusqlite::Statement<'_>,
    e: &AuditEvent,
) -> StoreResult<()> {
    let resources = resources_text(&e.resources);
    match insert.execute(&insert_values(e, &resources)[..]) {
        Ok(_) => Ok(()),
        // The request recorded an event before: this one merges into it.
        Err(err) if crate::sqlite::violates_unique(&err, "audit_events.request_id") => merge(c, e),
        Err(err) => Err(backend(err)),
    }
}

/// Merge `e` into the event its request recorded before (see [`sql::MERGE_EVENT`]), adding
/// the resources it names that the event does not.
fn merge(c: &Connection, e: &AuditEvent) -> StoreResult<()> {
    let seq: i64 = c
        .prepare_cached(sql::MERGE_EVENT)
        .and_then(|mut st| st.query_row(params_from_iter(sql::merge_args(e)), |r| r.get(0)))
        .map_err(backend)?;
    if e.account_id.is_some() {
        crate::sqlite_audit_index::merged(c, seq)?;
    }
    if e.resources.is_empty() {
        return Ok(());
    }
    let text: String = c
        .row(RESOURCES_OF, params![seq], |r| r.get(0))
        .map_err(backend)?;
    let mut resources = resources_of_text(&text)?;
    resources.extend(e.resources.iter().cloned());
    let merged = resources_text(&resources);
    if merged != text {
        c.exec(SET_RESOURCES, params![merged, seq])
            .map_err(backend)?;
    }
    Ok(())
}

/// Count an ended operation of `request_id` on its event, inside the caller's transaction.
pub(crate) fn operation_ended(
    c: &Connection,
    request_id: &str,
    failed: bool,
    error: Option<&str>,
) -> StoreResult<()> {
    // The request's event may still be gathered for the end of the group: count it there (on
    // its first event with operations pending; a merge adds the counts up).
    let counted = DEFERRED.with(|d| {
        let mut d = d.borrow_mut();
        let Some(e) = d.as_mut().and_then(|events| {
            events
                .iter_mut()
                .find(|e| e.request.request_id == request_id && e.ops_pending > 0)
        }) else {
            return false;
        };
        e.ops_pending -= 1;
        e.ops_failed += u32::from(failed);
        if e.op_error.is_none() {
            e.op_error = error.map(str::to_string);
        }
        true
    });
    if counted {
        return Ok(());
    }
    c.prepare_cached(sql::OPERATION_ENDED)
        .and_then(|mut st| st.execute(params![i64::from(failed), error, request_id]))
        .map_err(backend)?;
    Ok(())
}

/// An account's events: those indexed and those above the indexer's mark.
pub(crate) fn account_seqs(p: &str) -> String {
    format!(
        "e.seq IN ({})",
        crate::sqlite_audit_index::seqs_of_account(p)
    )
}

fn lookup(c: &Connection, q: &AuditQuery) -> StoreResult<AuditPage> {
    let l = sql::lookup(q, &SHAPE);
    let rows = c
        .prepare_cached(&l.page)
        .and_then(|mut st| {
            st.query_map(params_from_iter(l.page_args.iter()), |r| {
                Ok((EventRow::read(r)?, r.get::<_, String>(RESOURCES_AT)?))
            })?
            .collect::<Result<Vec<_>, _>>()
        })
        .map_err(backend)?;
    let mut events = Vec::with_capacity(rows.len());
    for (row, resources) in rows {
        events.push(AuditEvent {
            resources: resources_of_text(&resources)?,
            ..row.into_event()
        });
    }
    let more = events.len() > q.limit;
    events.truncate(q.limit);
    let total: i64 = c
        .prepare_cached(&l.count)
        .and_then(|mut st| st.query_row(params_from_iter(l.count_args.iter()), |r| r.get(0)))
        .map_err(backend)?;
    Ok(AuditPage {
        events,
        more,
        total: u64::try_from(total).unwrap_or(0),
    })
}

#[async_trait]
impl AuditStore for SqliteStore {
    async fn record_events(&self, events: Vec<AuditEvent>) -> StoreResult<()> {
        let written = self
            .with(move |c| {
                let tx = c.savepoint().map_err(backend)?;
                let written = write_events(&tx, events)?;
                tx.commit().map_err(backend)?;
                Ok(written)
            })
            .await?;
        // Why hand the events back when they were written at once: freed here, on the threads
        // that allocated them, their memory goes back to those threads' heaps.
        drop(written);
        Ok(())
    }

    async fn query_events(&self, query: &AuditQuery) -> StoreResult<AuditPage> {
        let query = query.clone();
        self.read(move |c| lookup(c, &query)).await
    }

    async fn prune_events(&self, before: i64, keep: u64) -> StoreResult<u64> {
        let keep = i64::try_from(keep).unwrap_or(i64::MAX);
        // The scans for the cutoffs run on a reader: the writer (and every change waiting on
        // it) is held only for the deletes, which walk the oldest events by `seq`.
        let (by_age, by_count) = self
            .read(move |c| {
                let age: Option<i64> = c
                    .row(sql::AGE_CUTOFF, params![before], |r| r.get(0))
                    .map_err(backend)?;
                let count: Option<i64> = c
                    .row(sql::COUNT_CUTOFF, params![keep], |r| r.get(0))
                    .optional()
                    .map_err(backend)?;
                Ok((age, count))
            })
            .await?;
        if by_age.is_none() && by_count.is_none() {
            return Ok(0);
        }
        self.with(move |c| {
            let tx = c.savepoint().map_err(backend)?;
            let mut gone = 0;
            if let Some(cutoff) = by_age {
                gone += tx
                    .exec(sql::PRUNE_OLDER_UPTO, params![cutoff, before])
                    .map_err(backend)?;
            }
            if let Some(cutoff) = by_count {
                gone += tx.exec(sql::PRUNE_UPTO, params![cutoff]).map_err(backend)?;
            }
            let upto = by_age.max(by_count).unwrap_or(0);
            crate::sqlite_audit_index::pruned(&tx, upto)?;
            tx.commit().map_err(backend)?;
            Ok(gone as u64)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyplane_core::audit::RequestMeta;
    use rusqlite::types::ToSqlOutput;
    use rusqlite::ToSql;

    /// Every table of the store on `c`.
    fn schema(c: &Connection) {
        for sql in crate::sqlite::MIGRATIONS {
            c.execute_batch(sql).unwrap();
        }
    }

    fn event(request_id: &str, region: &str) -> AuditEvent {
        AuditEvent {
            seq: 0,
            event_id: format!("ev-{request_id}-{region}"),
            account_id: None,
            at: 7,
            request: RequestMeta {
                dialect: "cvm".into(),
                action: "ImportKeyPair".into(),
                request_id: request_id.into(),
                credential_id: "AKID".into(),
                source_ip: "127.0.0.1".into(),
                region: region.into(),
            },
            read_only: false,
            resources: vec![],
            error_code: None,
            error_message: None,
            ops_total: 1,
            ops_pending: 1,
            ops_failed: 0,
            op_error: None,
        }
    }

    /// Only the request's own event already being there merges into it: another constraint
    /// that refuses the event is an error, with its own reason.
    #[test]
    fn only_the_request_id_constraint_merges() {
        let c = Connection::open_in_memory().unwrap();
        schema(&c);
        c.execute_batch(
            "CREATE TRIGGER refuse BEFORE INSERT ON audit_events WHEN NEW.region = 'nowhere' \
             BEGIN SELECT RAISE(ABORT, 'region refused'); END;",
        )
        .unwrap();
        write_event(&c, Some(event("rq-1", "ap-guangzhou"))).unwrap();
        write_event(&c, Some(event("rq-1", "ap-guangzhou"))).unwrap();
        let total: i64 = c
            .query_row("SELECT ops_total FROM audit_events", [], |r| r.get(0))
            .unwrap();
        assert_eq!(total, 2, "the second event of rq-1 merged into the first");
        for request_id in ["rq-1", "rq-2"] {
            let refused = write_event(&c, Some(event(request_id, "nowhere")));
            let why = refused.expect_err(request_id).to_string();
            assert!(why.contains("region refused"), "{request_id}: {why}");
        }
    }

    /// A group's events are written with it, after its writes: those of a write that failed
    /// go with its savepoint, an operation ended in the group is counted on its event, and a
    /// request's second event merges into its first.
    #[tokio::test]
    async fn a_groups_events_follow_its_writes() {
        let c = Connection::open_in_memory().unwrap();
        schema(&c);
        c.execute_batch("CREATE TABLE t (n INTEGER NOT NULL)")
            .unwrap();
        let w = crate::sqlite_writer::Writer::start(c, None).unwrap();
        let job = |n: Option<i64>, e: AuditEvent, end: bool| {
            w.run(false, move |c| {
                write_event(c, Some(e))?;
                if end {
                    operation_ended(c, "rq-1", true, Some("it broke"))?;
                }
                c.execute("INSERT INTO t (n) VALUES (?1)", params![n])
                    .map(drop)
                    .map_err(backend)
            })
        };
        // Three writes queued while the writer is busy, so that they share one group.
        let busy = w.run(false, |_| {
            std::thread::sleep(std::time::Duration::from_millis(200));
            Ok(())
        });
        let (_, a, b, c2) = tokio::join!(
            busy,
            job(Some(1), event("rq-1", "ap-guangzhou"), false),
            job(None, event("rq-2", "ap-guangzhou"), false),
            job(Some(3), event("rq-1", "ap-beijing"), true),
        );
        a.unwrap();
        assert!(b.is_err(), "a NULL in a NOT NULL column fails the write");
        c2.unwrap();
        let rows: Vec<(String, i64, i64, i64, Option<String>)> = w
            .run(true, |c| {
                let mut st = c
                    .prepare(
                        "SELECT request_id, ops_total, ops_pending, ops_failed, op_error \
                         FROM audit_events ORDER BY seq",
                    )
                    .map_err(backend)?;
                let rows = st
                    .query_map([], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                    })
                    .map_err(backend)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(backend)
            })
            .await
            .unwrap();
        assert_eq!(
            rows,
            vec![("rq-1".into(), 2, 1, 1, Some("it broke".into()))]
        );
    }

    #[test]
    fn the_resources_column_follows_the_event_columns() {
        assert_eq!(sql::EVENT_COLS.split(',').count(), RESOURCES_AT);
        assert!(SHAPE.cols.ends_with(", e.resources"));
    }

    /// The column keeps each kind and id once, the first name given, sorted, and reads back
    /// what any text was.
    #[test]
    fn resources_column_round_trips() {
        let r = |kind: &str, id: &str, name: &str| AuditResource {
            kind: kind.into(),
            id: id.into(),
            name: name.into(),
        };
        let given = vec![
            r("keypair", "skey-2", "two \"quoted\" \u{7f16}"),
            r("instance", "ins-1", ""),
            r("keypair", "skey-1", "one"),
            r("keypair", "skey-2", "renamed"),
        ];
        let text = resources_text(&given);
        assert_eq!(
            resources_of_text(&text).unwrap(),
            vec![given[1].clone(), given[2].clone(), given[0].clone()]
        );
        assert_eq!(resources_text(&[]), "[]");
        assert!(resources_of_text("{").is_err());
    }

    #[test]
    fn borrowed_values_are_the_shared_ones() {
        let e = AuditEvent {
            seq: 0,
            event_id: "ev".into(),
            account_id: Some("acct".into()),
            at: 7,
            request: RequestMeta {
                dialect: "cvm".into(),
                action: "ImportKeyPair".into(),
                request_id: "rq".into(),
                credential_id: "AKID".into(),
                source_ip: "127.0.0.1".into(),
                region: "ap-guangzhou".into(),
            },
            read_only: true,
            resources: vec![],
            error_code: Some("Code".into()),
            error_message: None,
            ops_total: 3,
            ops_pending: 2,
            ops_failed: 1,
            op_error: Some("failed".into()),
        };
        let shared = sql::upsert_args(&e);
        let resources = resources_text(&e.resources);
        let borrowed = insert_values(&e, &resources);
        assert_eq!(shared.len() + 1, borrowed.len());
        for (a, b) in shared.iter().zip(borrowed) {
            let (a, b) = (a.to_sql().unwrap(), b.to_sql().unwrap());
            let value = |v: ToSqlOutput<'_>| match v {
                ToSqlOutput::Borrowed(v) => rusqlite::types::Value::from(v),
                ToSqlOutput::Owned(v) => v,
                _ => unreachable!(),
            };
            assert_eq!(value(a), value(b));
        }
    }
}
