//! Pushed-down reads on SQLite: key pairs and instances by ids, names and filters with their
//! order, paging and the total count in SQL, and the counts and address checks a launch needs.
//! Lists of values travel as one JSON array parameter (`IN (SELECT value FROM json_each(?))`),
//! so each query shape has one statement text and stays in the prepared-statement cache.

use crate::sql::{self, INSTANCE_COLS, KEY_COLS};
use crate::sqlite::{backend, key_pair_from_row};
use crate::sqlite_instances::{fill_keys, instance_from_row};
use keyplane_core::keypair::{KeyPair, Namespace};
use keyplane_core::query::{InstanceFilter, InstanceOrder, InstancePage, InstanceQuery};
use keyplane_core::service::{KeyPairFilter, KeyPairOrder, KeyPairPage, KeyPairQuery};
use keyplane_core::store::StoreResult;
use rusqlite::functions::FunctionFlags;
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection};

/// The SQL function giving an instance's UUID from its id ([`keyplane_core::query::instance_uuid`]).
const UUID_FUNCTION: &str = "keyplane_instance_uuid";

/// Register the functions the queries use on `conn` (every connection, reader or writer).
pub(crate) fn register_functions(conn: &Connection) -> StoreResult<()> {
    conn.create_scalar_function(
        UUID_FUNCTION,
        1,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            let id: String = ctx.get(0)?;
            Ok(keyplane_core::query::instance_uuid(&id))
        },
    )
    .map_err(backend)
}

/// `LIMIT lim OFFSET off` for placeholders. Why the `+ 0`: SQLite reads a LIMIT or OFFSET
/// that is a bare parameter while it plans the statement, and then prepares the cached
/// statement again every time a value is bound to it (a parse and a plan per call); an
/// expression is only evaluated when it runs.
fn page(lim: &str, off: &str) -> String {
    format!("LIMIT ({lim} + 0) OFFSET ({off} + 0)")
}

/// `pattern` (`*`: any run of characters, everything else itself) as a GLOB pattern.
fn glob_pattern(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 8);
    for ch in pattern.chars() {
        match ch {
            '*' => out.push('*'),
            '?' => out.push_str("[?]"),
            '[' => out.push_str("[[]"),
            c => out.push(c),
        }
    }
    out
}

/// A WHERE clause and its arguments, numbered as they are added.
struct Where {
    text: String,
    args: Vec<Value>,
}

impl Where {
    fn new(account_id: &str, namespace: Namespace) -> Where {
        Where {
            text: "account_id = ?1 AND namespace = ?2".into(),
            args: vec![
                Value::Text(account_id.into()),
                Value::Text(namespace.as_str().into()),
            ],
        }
    }

    /// Add `arg` and return its placeholder.
    fn arg(&mut self, arg: Value) -> String {
        self.args.push(arg);
        format!("?{}", self.args.len())
    }

    /// Add a list as one JSON array argument and return `(SELECT value FROM json_each(?N))`.
    fn list<T: serde::Serialize>(&mut self, values: &[T]) -> String {
        let json = serde_json::to_string(values).unwrap_or_else(|_| "[]".into());
        format!(
            "(SELECT value FROM json_each({}))",
            self.arg(Value::Text(json))
        )
    }

    fn and(&mut self, clause: &str) {
        self.text.push_str(" AND ");
        self.text.push_str(clause);
    }

    /// `column` matches `pattern` (`*` wildcards): by equality when it has none.
    fn like(&mut self, column: &str, pattern: &str) {
        if pattern.contains('*') {
            let p = self.arg(Value::Text(glob_pattern(pattern)));
            self.and(&format!("{column} GLOB {p}"));
        } else {
            let p = self.arg(Value::Text(pattern.into()));
            self.and(&format!("{column} = {p}"));
        }
    }

    /// `column IN` the list.
    fn within<T: serde::Serialize>(&mut self, column: &str, values: &[T]) {
        let l = self.list(values);
        self.and(&format!("{column} IN {l}"));
    }

    fn instance_filter(&mut self, f: &InstanceFilter) {
        match f {
            InstanceFilter::Id(v) => self.within("id", v),
            InstanceFilter::Zone(v) => self.within("zone", v),
            InstanceFilter::Name(v) => self.within("name", v),
            InstanceFilter::NameContains(v) => {
                let json = serde_json::to_string(v).unwrap_or_else(|_| "[]".into());
                let a = self.arg(Value::Text(json));
                self.and(&format!(
                    "EXISTS (SELECT 1 FROM json_each({a}) WHERE instr(instances.name, value) > 0)"
                ));
            }
            InstanceFilter::DisplayNameLike(p) => {
                self.like("(CASE WHEN name = '' THEN id ELSE name END)", p)
            }
            InstanceFilter::State(v) => {
                let names: Vec<&str> = v.iter().map(|s| s.as_str()).collect();
                self.within("state", &names)
            }
            InstanceFilter::PrivateIp(v) => self.within("private_ip", v),
            InstanceFilter::InstanceType(v) => self.within("instance_type", v),
            InstanceFilter::ImageId(v) => self.within("image_id", v),
            InstanceFilter::Uuid(v) => self.within(&format!("{UUID_FUNCTION}(id)"), v),
            InstanceFilter::CreatedFrom(t) => {
                let a = self.arg(Value::Integer(*t));
                self.and(&format!("created_at >= {a}"));
            }
            InstanceFilter::CreatedUntil(t) => {
                let a = self.arg(Value::Integer(*t));
                self.and(&format!("created_at <= {a}"));
            }
            InstanceFilter::FirstKey(k) => {
                let a = self.arg(Value::Text(k.clone()));
                self.and(&format!(
                    "(SELECT ik.key_pair_id FROM instance_keys ik \
                     WHERE ik.instance_id = instances.id ORDER BY ik.position LIMIT 1) = {a}"
                ));
            }
            InstanceFilter::Nothing => self.and("0"),
        }
    }

    /// `EXISTS` a tag of the row whose key (`$[0]`) or value (`$[1]`) passes `cond`.
    fn tag(&mut self, cond: &str) {
        self.and(&format!(
            "EXISTS (SELECT 1 FROM json_each(key_pairs.tags) t WHERE {cond})"
        ));
    }

    fn filter(&mut self, f: &KeyPairFilter) {
        match f {
            KeyPairFilter::ProjectId(ids) => {
                let l = self.list(ids);
                self.and(&format!("project_id IN {l}"));
            }
            KeyPairFilter::KeyName(names) => {
                let l = self.list(names);
                self.and(&format!("name IN {l}"));
            }
            KeyPairFilter::Fingerprint(fps) => {
                let l = self.list(fps);
                self.and(&format!("fingerprint_sha256 IN {l}"));
            }
            KeyPairFilter::FingerprintMd5(fps) => self.within("fingerprint_md5", fps),
            KeyPairFilter::NameLike(p) => self.like("name", p),
            KeyPairFilter::TagKey(keys) => {
                let l = self.list(keys);
                self.tag(&format!("json_extract(t.value, '$[0]') IN {l}"));
            }
            KeyPairFilter::TagValue(values) => {
                let l = self.list(values);
                self.tag(&format!("json_extract(t.value, '$[1]') IN {l}"));
            }
            KeyPairFilter::Tag { key, values } => {
                let k = self.arg(Value::Text(key.clone()));
                let l = self.list(values);
                self.tag(&format!(
                    "json_extract(t.value, '$[0]') = {k} AND json_extract(t.value, '$[1]') IN {l}"
                ));
            }
        }
    }
}

/// The page of key pairs `query` asks for, with the total before paging.
pub(crate) fn query_key_pairs(
    c: &Connection,
    account_id: &str,
    namespace: Namespace,
    query: &KeyPairQuery,
) -> StoreResult<KeyPairPage> {
    let mut w = Where::new(account_id, namespace);
    // Why `+`: without statistics SQLite prefers the (account, namespace, created_at) index,
    // which gives the order for free but reads every key of the account. When ids or names
    // select a few rows, `+` keeps the account terms and the order off the indexes, so the
    // primary key or the name index finds the rows and a small sort orders them.
    let selective = query.ids.is_some()
        || query.filters.iter().any(|f| match f {
            KeyPairFilter::KeyName(_) | KeyPairFilter::Fingerprint(_) => true,
            KeyPairFilter::NameLike(p) => !p.contains('*'),
            _ => false,
        });
    if query.ids.is_some() {
        w.text = "+account_id = ?1 AND +namespace = ?2".into();
    }
    let order = match (query.order, selective) {
        (KeyPairOrder::Oldest, true) => "+created_at, +id",
        (KeyPairOrder::Oldest, false) => "created_at, id",
        (KeyPairOrder::OldestByName, true) => "+created_at, +name",
        (KeyPairOrder::OldestByName, false) => "created_at, name",
    };
    if let Some(region) = &query.region {
        let r = w.arg(Value::Text(region.clone()));
        w.and(&format!("region = {r}"));
    }
    if let Some(ids) = &query.ids {
        let l = w.list(ids);
        w.and(&format!("id IN {l}"));
    }
    for f in &query.filters {
        w.filter(f);
    }
    let (mut items, total) = paged(
        c,
        w,
        &format!("SELECT {KEY_COLS} FROM key_pairs"),
        "key_pairs",
        order,
        (query.offset, query.limit),
        key_pair_from_row,
    )?;
    fill_associations(c, &mut items)?;
    Ok(KeyPairPage { total, items })
}

/// The rows of `select` (a `SELECT ... FROM table`) that `w` matches, in `order`, from
/// `offset` and at most `limit` of them; and how many match in all (counted only when the
/// page does not say it: a first page that is not full holds every match).
fn paged<T>(
    c: &Connection,
    mut w: Where,
    select: &str,
    table: &str,
    order: &str,
    (offset, limit): (usize, usize),
    row: fn(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> StoreResult<(Vec<T>, usize)> {
    let lim = w.arg(Value::Integer(i64::try_from(limit).unwrap_or(i64::MAX)));
    let off = w.arg(Value::Integer(i64::try_from(offset).unwrap_or(i64::MAX)));
    let mut st = c
        .prepare_cached(&format!(
            "{select} WHERE {} ORDER BY {order} {}",
            w.text,
            page(&lim, &off)
        ))
        .map_err(backend)?;
    let items = st
        .query_map(params_from_iter(w.args.iter()), row)
        .map_err(backend)?
        .collect::<Result<Vec<T>, _>>()
        .map_err(backend)?;
    if offset == 0 && items.len() < limit {
        let total = items.len();
        return Ok((items, total));
    }
    let count_args = &w.args[..w.args.len() - 2];
    let mut st = c
        .prepare_cached(&format!("SELECT COUNT(*) FROM {table} WHERE {}", w.text))
        .map_err(backend)?;
    let n: i64 = st
        .query_row(params_from_iter(count_args.iter()), |r| r.get(0))
        .map_err(backend)?;
    Ok((items, n as usize))
}

/// The page of instances `query` asks for, with the total before paging.
pub(crate) fn query_instances(
    c: &Connection,
    account_id: &str,
    namespace: Namespace,
    query: &InstanceQuery,
) -> StoreResult<InstancePage> {
    let mut w = Where::new(account_id, namespace);
    // Why `+`: as for key pairs, when ids or addresses select a few rows the primary key or
    // the address index finds them, not the account index (see `query_key_pairs`).
    let selective = query.ids.is_some()
        || query
            .filters
            .iter()
            .any(|f| matches!(f, InstanceFilter::Id(_) | InstanceFilter::PrivateIp(_)));
    if selective {
        w.text = "+account_id = ?1 AND +namespace = ?2".into();
    }
    let order = match (query.order, selective) {
        (InstanceOrder::Oldest, true) => "+created_at, +id",
        (InstanceOrder::Oldest, false) => "created_at, id",
        (InstanceOrder::Newest, true) => "+created_at DESC, +id",
        (InstanceOrder::Newest, false) => "created_at DESC, id",
        (InstanceOrder::NewestReversed, true) => "+created_at DESC, +id DESC",
        (InstanceOrder::NewestReversed, false) => "created_at DESC, id DESC",
    };
    if let Some(region) = &query.region {
        let r = w.arg(Value::Text(region.clone()));
        w.and(&format!("region = {r}"));
    }
    if let Some(ids) = &query.ids {
        w.within("id", ids);
    }
    for f in &query.filters {
        w.instance_filter(f);
    }
    let (mut items, total) = paged(
        c,
        w,
        &format!("SELECT {INSTANCE_COLS} FROM instances"),
        "instances",
        order,
        (query.offset, query.limit),
        instance_from_row,
    )?;
    fill_keys(c, &mut items)?;
    Ok(InstancePage { total, items })
}

/// Fill each key pair's bound instances, oldest instance first.
pub(crate) fn fill_associations(c: &Connection, keys: &mut [KeyPair]) -> StoreResult<()> {
    if keys.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = keys.iter().map(|k| k.id.as_str()).collect();
    let json = serde_json::to_string(&ids).map_err(backend)?;
    let mut st = c
        .prepare_cached(
            "SELECT ik.key_pair_id, ik.instance_id FROM instance_keys ik \
             JOIN instances i ON i.id = ik.instance_id \
             WHERE ik.key_pair_id IN (SELECT value FROM json_each(?1)) \
             ORDER BY i.created_at, i.id",
        )
        .map_err(backend)?;
    let rows = st
        .query_map(params![json], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })
        .map_err(backend)?;
    for row in rows {
        let (key, instance) = row.map_err(backend)?;
        if let Some(k) = keys.iter_mut().find(|k| k.id == key) {
            k.associated_instance_ids.push(instance);
        }
    }
    Ok(())
}

/// How many instances the account holds in the namespace.
pub(crate) fn count_instances(
    c: &Connection,
    account_id: &str,
    namespace: Namespace,
) -> StoreResult<usize> {
    let mut st = c.prepare_cached(sql::COUNT_INSTANCES).map_err(backend)?;
    let n: i64 = st
        .query_row(params![account_id, namespace.as_str()], |r| r.get(0))
        .map_err(backend)?;
    Ok(n as usize)
}

/// Which of `addresses` are taken.
pub(crate) fn taken_addresses(c: &Connection, addresses: &[String]) -> StoreResult<Vec<String>> {
    let json = serde_json::to_string(addresses).map_err(backend)?;
    let mut st = c
        .prepare_cached(
            "SELECT DISTINCT private_ip FROM instances \
             WHERE private_ip IN (SELECT value FROM json_each(?1))",
        )
        .map_err(backend)?;
    let rows = st
        .query_map(params![json], |r| r.get::<_, String>(0))
        .map_err(backend)?;
    rows.collect::<Result<_, _>>().map_err(backend)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::StatementStatus;

    #[test]
    fn a_page_is_bound_without_preparing_the_statement_again() {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch(
            "CREATE TABLE t (id INTEGER PRIMARY KEY); INSERT INTO t VALUES (1), (2), (3);",
        )
        .unwrap();
        let mut st = c
            .prepare(&format!(
                "SELECT id FROM t ORDER BY id {}",
                page("?1", "?2")
            ))
            .unwrap();
        for (limit, offset, want) in [(2, 0, vec![1, 2]), (5, 1, vec![2, 3]), (1, 2, vec![3])] {
            let got: Vec<i64> = st
                .query_map(params![limit, offset], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert_eq!(got, want);
        }
        assert_eq!(st.get_status(StatementStatus::RePrepare), 0);
    }
}
