//! The audit trail's statements, one text for both back ends: parameters are written `$n`
//! and each first appears in increasing order, which SQLite binds by position as PostgreSQL
//! does. Only the table definitions differ (see each back end's migration).

use crate::rows::Cells;
use crate::sql::Arg;
use keyplane_core::audit::{AuditAttribute, AuditEvent, AuditQuery, AuditResource, RequestMeta};

/// Indexes of the audit tables (schema version 10 on both back ends; SQLite replaces this one
/// by a table filled apart from the changes, see [`crate::sqlite_audit_index`]): an account's
/// events newest first. Each index is a page more that every change writes (and one at a random place for
/// a random key such as a resource id), so there is no other: retention walks events in
/// `seq` order, and a lookup walks the account's events in the time range newest first,
/// probing each one's resources by their primary key (`seq` first) until the page is full.
macro_rules! audit_indexes {
    () => {
        r#"
CREATE INDEX audit_events_by_account ON audit_events(account_id, seq);
"#
    };
}
pub(crate) use audit_indexes;

/// The columns and values of a new event row (see [`upsert_args`]), and a back end's own
/// column more with its value (`$17`).
macro_rules! insert_event {
    () => {
        $crate::audit_sql::insert_event!("", "")
    };
    ($col:literal, $val:literal) => {
        concat!(
            "INSERT INTO audit_events (event_id, request_id, account_id, at, dialect, action, \
             credential_id, source_ip, region, read_only, error_code, error_message, ops_total, \
             ops_pending, ops_failed, op_error",
            $col,
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16",
            $val,
            ")"
        )
    };
}
pub(crate) use insert_event;

/// Record an event, or merge it into the event already recorded for its request (a request
/// may change several things in turn, or be refused after a change): operations add up, a
/// refusal's code and message are set. Returns the event's `seq`.
pub(crate) const UPSERT_EVENT: &str = concat!(
    insert_event!(),
    " ON CONFLICT (request_id) DO UPDATE SET \
     ops_total = audit_events.ops_total + excluded.ops_total, \
     ops_pending = audit_events.ops_pending + excluded.ops_pending, \
     ops_failed = audit_events.ops_failed + excluded.ops_failed, \
     op_error = COALESCE(audit_events.op_error, excluded.op_error), \
     error_code = COALESCE(excluded.error_code, audit_events.error_code), \
     error_message = COALESCE(excluded.error_message, audit_events.error_message), \
     account_id = COALESCE(audit_events.account_id, excluded.account_id) \
     RETURNING seq"
);

/// Merge into the event of request `$8` what [`UPSERT_EVENT`] would: `$1` operations more,
/// `$2` of them pending, a refusal's code `$3` and message `$4`, the account `$5` when the
/// event had none, `$6` failed operations more and the first failure's error `$7` when the
/// event had none. Returns the event's `seq`.
pub(crate) const MERGE_EVENT: &str = "UPDATE audit_events SET ops_total = ops_total + $1, \
     ops_pending = ops_pending + $2, error_code = COALESCE($3, error_code), \
     error_message = COALESCE($4, error_message), account_id = COALESCE(account_id, $5), \
     ops_failed = ops_failed + $6, op_error = COALESCE(op_error, $7) \
     WHERE request_id = $8 RETURNING seq";

/// The values of [`MERGE_EVENT`] for `e`.
pub(crate) fn merge_args(e: &AuditEvent) -> Vec<Arg> {
    vec![
        Arg::Int(i64::from(e.ops_total)),
        Arg::Int(i64::from(e.ops_pending)),
        Arg::OptText(e.error_code.clone()),
        Arg::OptText(e.error_message.clone()),
        Arg::OptText(e.account_id.clone()),
        Arg::Int(i64::from(e.ops_failed)),
        Arg::OptText(e.op_error.clone()),
        Arg::Text(e.request.request_id.clone()),
    ]
}

/// Name a resource on an event (once): kind `$2`, id `$3`, name `$4`. One row a resource: a
/// search by id or name probes the event's rows by the primary key (`seq` first) either way.
/// (`alias` is 0; rows of 1, which repeated a resource under its name, went in version 11.)
pub(crate) const INSERT_RESOURCE: &str = "INSERT INTO audit_resources (seq, kind, id, name, \
     alias) VALUES ($1, $2, $3, $4, 0) ON CONFLICT DO NOTHING";

/// Schema version 11 on both back ends: resources are no longer repeated under their names.
macro_rules! drop_alias_rows {
    () => {
        "DELETE FROM audit_resources WHERE alias = 1;"
    };
}
pub(crate) use drop_alias_rows;

/// Count one ended operation of request `$3` on its event; `$1` is 1 when it failed, `$2`
/// its error.
pub(crate) const OPERATION_ENDED: &str = "UPDATE audit_events SET \
     ops_pending = ops_pending - 1, ops_failed = ops_failed + $1, \
     op_error = COALESCE(op_error, $2) WHERE request_id = $3 AND ops_pending > 0";

/// The columns of an event row, in [`EventRow`] order (and a back end's own after them).
macro_rules! event_cols {
    ($($more:literal)?) => {
        concat!(
            "e.seq, e.event_id, e.account_id, e.at, e.dialect, e.action, e.request_id, \
             e.credential_id, e.source_ip, e.region, e.read_only, e.error_code, \
             e.error_message, e.ops_total, e.ops_pending, e.ops_failed, e.op_error"
            $(, ", ", $more)?
        )
    };
}
pub(crate) use event_cols;

/// The columns of an event row, in [`EventRow`] order.
pub(crate) const EVENT_COLS: &str = event_cols!();

/// The newest event older than `$1`: the events older than `$1` are at or below it.
pub(crate) const AGE_CUTOFF: &str = "SELECT MAX(seq) FROM audit_events WHERE at < $1";
/// The newest event past the newest `$1` (it and all below it go).
pub(crate) const COUNT_CUTOFF: &str =
    "SELECT seq FROM audit_events ORDER BY seq DESC LIMIT 1 OFFSET $1";
/// Delete the events at or below `seq` `$1` older than `$2`.
pub(crate) const PRUNE_OLDER_UPTO: &str = "DELETE FROM audit_events WHERE seq <= $1 AND at < $2";
/// Delete the events at or below `seq` `$1`.
pub(crate) const PRUNE_UPTO: &str = "DELETE FROM audit_events WHERE seq <= $1";
/// Delete the resources at or below `seq` `$1` whose event is gone.
pub(crate) const PRUNE_RESOURCES_UPTO: &str = "DELETE FROM audit_resources WHERE seq <= $1 \
     AND NOT EXISTS (SELECT 1 FROM audit_events e WHERE e.seq = audit_resources.seq)";

/// The values of [`UPSERT_EVENT`] (and of SQLite's plain insert) for `e`.
pub(crate) fn upsert_args(e: &AuditEvent) -> Vec<Arg> {
    let text = |s: &str| Arg::Text(s.to_string());
    let r = &e.request;
    vec![
        text(&e.event_id),
        text(&r.request_id),
        Arg::OptText(e.account_id.clone()),
        Arg::Int(e.at),
        text(&r.dialect),
        text(&r.action),
        text(&r.credential_id),
        text(&r.source_ip),
        text(&r.region),
        Arg::Int(i64::from(e.read_only)),
        Arg::OptText(e.error_code.clone()),
        Arg::OptText(e.error_message.clone()),
        Arg::Int(i64::from(e.ops_total)),
        Arg::Int(i64::from(e.ops_pending)),
        Arg::Int(i64::from(e.ops_failed)),
        Arg::OptText(e.op_error.clone()),
    ]
}

/// A page query and its count query, with their values.
pub(crate) struct Lookup {
    /// The page: [`EVENT_COLS`] of the matching events in order, one more than the limit.
    pub page: String,
    /// Its values.
    pub page_args: Vec<Arg>,
    /// How many match, before paging.
    pub count: String,
    /// Its values.
    pub count_args: Vec<Arg>,
}

/// `e.dialect IN (...)` over `dialects` (a clause no event meets when there are none).
fn dialect_clause(args: &mut Vec<Arg>, dialects: &[String]) -> String {
    if dialects.is_empty() {
        return "1 = 0".to_string();
    }
    let list: Vec<String> = dialects
        .iter()
        .map(|d| {
            args.push(Arg::Text(d.clone()));
            format!("${}", args.len())
        })
        .collect();
    format!("e.dialect IN ({})", list.join(", "))
}

/// Where a back end keeps what a lookup reads apart from the event's columns.
pub(crate) struct Shape {
    /// The condition on `e` for the account in parameter `p` (which it may name more than
    /// once).
    pub by_account: fn(p: &str) -> String,
    /// The condition that one of the resources of `e`, as `r.kind`, `r.id` and `r.name`,
    /// meets `test`.
    pub resource: fn(test: &str) -> String,
    /// The columns a page reads: [`EVENT_COLS`], and what [`Shape::resource`] reads when the
    /// resources are a column of the event.
    pub cols: &'static str,
}

/// PostgreSQL's [`Shape`]: the index `audit_events_by_account`, and a table of resources
/// ([`resources_of`] reads them for a page).
pub(crate) const TABLES: Shape = Shape {
    by_account: account_column,
    resource: resource_rows,
    cols: EVENT_COLS,
};

fn account_column(p: &str) -> String {
    format!("e.account_id = {p}")
}

fn resource_rows(test: &str) -> String {
    format!("EXISTS (SELECT 1 FROM audit_resources r WHERE r.seq = e.seq AND {test})")
}

/// The conditions of `q` (with the cursor when `cursor`), numbering values from `$1`.
fn conditions(q: &AuditQuery, cursor: bool, shape: &Shape) -> (String, Vec<Arg>) {
    let mut args: Vec<Arg> = Vec::new();
    let mut clauses: Vec<String> = Vec::new();
    let next = |args: &mut Vec<Arg>, a: Arg| {
        args.push(a);
        format!("${}", args.len())
    };
    if let Some(account) = &q.account_id {
        let p = next(&mut args, Arg::Text(account.clone()));
        clauses.push((shape.by_account)(&p));
    }
    let p = next(&mut args, Arg::Int(q.start));
    clauses.push(format!("e.at >= {p}"));
    let p = next(&mut args, Arg::Int(q.end));
    clauses.push(format!("e.at <= {p}"));
    for attr in &q.attributes {
        if let AuditAttribute::Refused(refused) = attr {
            let test = if *refused { "IS NOT NULL" } else { "IS NULL" };
            clauses.push(format!("e.error_code {test}"));
            continue;
        }
        let (column, value) = match attr {
            AuditAttribute::Dialects(dialects) => {
                clauses.push(dialect_clause(&mut args, dialects));
                continue;
            }
            AuditAttribute::EventName(v) => ("e.action", Arg::Text(v.clone())),
            AuditAttribute::EventId(v) => ("e.event_id", Arg::Text(v.clone())),
            AuditAttribute::RequestId(v) => ("e.request_id", Arg::Text(v.clone())),
            AuditAttribute::CredentialId(v) => ("e.credential_id", Arg::Text(v.clone())),
            AuditAttribute::SourceIp(v) => ("e.source_ip", Arg::Text(v.clone())),
            AuditAttribute::ErrorCode(v) => ("e.error_code", Arg::Text(v.clone())),
            AuditAttribute::ReadOnly(v) => ("e.read_only", Arg::Int(i64::from(*v))),
            AuditAttribute::ResourceId(v) => ("r.id", Arg::Text(v.clone())),
            AuditAttribute::ResourceName(v) => ("r.name", Arg::Text(v.clone())),
            AuditAttribute::ResourceType(v) => ("r.kind", Arg::Text(v.clone())),
            AuditAttribute::Refused(_) => continue,
        };
        let p = next(&mut args, value);
        let probe = |test: String| (shape.resource)(&test);
        match column {
            "r.id" => clauses.push(probe(format!("r.id = {p}"))),
            // By name, or by id: not every resource has a name.
            "r.name" => clauses.push(probe(format!("(r.name = {p} OR r.id = {p})"))),
            "r.kind" => clauses.push(probe(format!("r.kind = {p}"))),
            _ => clauses.push(format!("{column} = {p}")),
        }
    }
    if cursor {
        if let Some(after) = q.after_seq {
            let p = next(&mut args, Arg::Int(after));
            let op = if q.ascending { ">" } else { "<" };
            clauses.push(format!("e.seq {op} {p}"));
        }
    }
    (clauses.join(" AND "), args)
}

/// The statements answering `q` on a back end of `shape`.
pub(crate) fn lookup(q: &AuditQuery, shape: &Shape) -> Lookup {
    let (page_where, mut page_args) = conditions(q, true, shape);
    let order = if q.ascending { "ASC" } else { "DESC" };
    page_args.push(Arg::Int(i64::try_from(q.limit).unwrap_or(i64::MAX - 1) + 1));
    let page = format!(
        "SELECT {} FROM audit_events e WHERE {page_where} ORDER BY e.seq {order} LIMIT ${}",
        shape.cols,
        page_args.len()
    );
    let (count_where, count_args) = conditions(q, false, shape);
    Lookup {
        page,
        page_args,
        count: format!("SELECT COUNT(*) FROM audit_events e WHERE {count_where}"),
        count_args,
    }
}

/// The resources of events `seqs`, as one statement over `$1..$n`.
pub(crate) fn resources_of(seqs: &[i64]) -> String {
    let list: Vec<String> = (1..=seqs.len()).map(|i| format!("${i}")).collect();
    format!(
        "SELECT seq, kind, id, name FROM audit_resources WHERE seq IN ({}) AND alias = 0 \
         ORDER BY seq, kind, id",
        list.join(", ")
    )
}

/// An event row as read, in [`EVENT_COLS`] order.
pub(crate) struct EventRow {
    pub seq: i64,
    pub event_id: String,
    pub account_id: Option<String>,
    pub at: i64,
    pub dialect: String,
    pub action: String,
    pub request_id: String,
    pub credential_id: String,
    pub source_ip: String,
    pub region: String,
    pub read_only: i64,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub ops_total: i64,
    pub ops_pending: i64,
    pub ops_failed: i64,
    pub op_error: Option<String>,
}

impl EventRow {
    /// The event row in [`EVENT_COLS`].
    pub(crate) fn read<R: Cells>(r: &R) -> Result<EventRow, R::Error> {
        Ok(EventRow {
            seq: r.int(0)?,
            event_id: r.text(1)?,
            account_id: r.text_or_null(2)?,
            at: r.int(3)?,
            dialect: r.text(4)?,
            action: r.text(5)?,
            request_id: r.text(6)?,
            credential_id: r.text(7)?,
            source_ip: r.text(8)?,
            region: r.text(9)?,
            read_only: r.int(10)?,
            error_code: r.text_or_null(11)?,
            error_message: r.text_or_null(12)?,
            ops_total: r.int(13)?,
            ops_pending: r.int(14)?,
            ops_failed: r.int(15)?,
            op_error: r.text_or_null(16)?,
        })
    }

    /// The event, with no resources yet.
    pub(crate) fn into_event(self) -> AuditEvent {
        let count = |n: i64| u32::try_from(n.max(0)).unwrap_or(u32::MAX);
        AuditEvent {
            seq: self.seq,
            event_id: self.event_id,
            account_id: self.account_id,
            at: self.at,
            request: RequestMeta {
                dialect: self.dialect,
                action: self.action,
                request_id: self.request_id,
                credential_id: self.credential_id,
                source_ip: self.source_ip,
                region: self.region,
            },
            read_only: self.read_only != 0,
            resources: Vec::new(),
            error_code: self.error_code,
            error_message: self.error_message,
            ops_total: count(self.ops_total),
            ops_pending: count(self.ops_pending),
            ops_failed: count(self.ops_failed),
            op_error: self.op_error,
        }
    }
}

/// A row of [`resources_of`]: the event's `seq` and the resource.
pub(crate) fn resource_row<R: Cells>(r: &R) -> Result<(i64, AuditResource), R::Error> {
    Ok((
        r.int(0)?,
        AuditResource {
            kind: r.text(1)?,
            id: r.text(2)?,
            name: r.text(3)?,
        },
    ))
}

/// Hand each event its resources (`rows` ordered by seq).
pub(crate) fn attach(events: &mut [AuditEvent], rows: Vec<(i64, AuditResource)>) {
    for (seq, res) in rows {
        if let Some(e) = events.iter_mut().find(|e| e.seq == seq) {
            e.resources.push(res);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The numbers of the `$n` parameters of `text`, in order of appearance.
    fn numbers(text: &str) -> Vec<usize> {
        text.split('$')
            .skip(1)
            .map(|part| {
                part.chars()
                    .take_while(char::is_ascii_digit)
                    .collect::<String>()
                    .parse()
                    .unwrap()
            })
            .collect()
    }

    /// Each parameter first appears after every lower-numbered one (so SQLite, which numbers
    /// `$n` by first appearance, binds as PostgreSQL does).
    fn in_order(text: &str) -> bool {
        let mut highest = 0;
        numbers(text).into_iter().all(|n| {
            let ok = n <= highest + 1;
            highest = highest.max(n);
            ok
        })
    }

    #[test]
    fn every_statement_numbers_its_parameters_in_order() {
        for text in [
            UPSERT_EVENT,
            MERGE_EVENT,
            INSERT_RESOURCE,
            OPERATION_ENDED,
            AGE_CUTOFF,
            COUNT_CUTOFF,
            PRUNE_OLDER_UPTO,
            PRUNE_UPTO,
            PRUNE_RESOURCES_UPTO,
        ] {
            assert!(in_order(text), "{text}");
        }
        assert!(!in_order("SET a = $2, b = $1"));
        assert!(in_order(&resources_of(&[1, 2, 3])));
    }

    #[test]
    fn parameters_first_appear_in_order() {
        let q = AuditQuery {
            account_id: Some("1".into()),
            attributes: vec![
                AuditAttribute::ResourceId("ins-1".into()),
                AuditAttribute::Dialects(vec!["cvm".into(), "legacy".into()]),
                AuditAttribute::EventName("X".into()),
            ],
            after_seq: Some(9),
            ..AuditQuery::default()
        };
        let l = lookup(&q, &TABLES);
        for (text, n) in [(&l.page, l.page_args.len()), (&l.count, l.count_args.len())] {
            let mut last = 0;
            for part in text.split('$').skip(1) {
                let k: usize = part
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect::<String>()
                    .parse()
                    .unwrap();
                assert_eq!(k, last + 1, "{text}");
                last = k;
            }
            assert_eq!(last, n);
        }
        assert!(l.page.contains("e.dialect IN ($5, $6)"));
        assert!(l.page.contains("e.seq < $8"));
        assert!(!l.count.contains("e.seq <"));
        let none = AuditQuery {
            attributes: vec![AuditAttribute::Dialects(vec![])],
            ..AuditQuery::default()
        };
        assert!(lookup(&none, &TABLES).page.contains("1 = 0"));
    }
}
