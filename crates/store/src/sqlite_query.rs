//! Pushed-down reads on SQLite: key pairs and instances by ids, names and filters with their
//! order, paging and the total count in SQL, and the counts and address checks a launch needs.
//! The statement text is [`crate::query_sql`]'s; lists of values travel as one JSON array
//! parameter, so each query shape has one statement text and stays in the prepared-statement
//! cache.

use crate::query_sql::{self, Dialect, Page, UUID_FUNCTION};
use crate::sql::{self, Arg};
use crate::sqlite::{backend, key_pair_from_row};
use crate::sqlite_instances::{fill_keys, instance_from_row};
use keyplane_core::keypair::{KeyPair, Namespace};
use keyplane_core::query::{InstancePage, InstanceQuery};
use keyplane_core::service::{KeyPairPage, KeyPairQuery};
use keyplane_core::store::StoreResult;
use rusqlite::functions::FunctionFlags;
use rusqlite::types::{ToSqlOutput, Value};
use rusqlite::{params, params_from_iter, Connection, ToSql};

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

/// A list is bound as one JSON array text.
impl ToSql for Arg {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        let json = |v: Result<String, serde_json::Error>| {
            v.map(|t| ToSqlOutput::Owned(Value::Text(t)))
                .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
        };
        match self {
            Arg::Text(s) => s.to_sql(),
            Arg::OptText(s) => s.to_sql(),
            Arg::Int(i) => i.to_sql(),
            Arg::Texts(v) => json(serde_json::to_string(v)),
            Arg::Ints(v) => json(serde_json::to_string(v)),
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
    let page = query_sql::key_pairs(Dialect::Sqlite, account_id, namespace, query);
    let (mut items, total) = paged(c, &page, key_pair_from_row)?;
    fill_associations(c, &mut items)?;
    Ok(KeyPairPage { total, items })
}

/// The rows of `page` and how many match in all.
fn paged<T>(
    c: &Connection,
    page: &Page,
    row: fn(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> StoreResult<(Vec<T>, usize)> {
    let mut st = c.prepare_cached(&page.rows).map_err(backend)?;
    let mut items = Vec::with_capacity(page.capacity());
    for item in st
        .query_map(params_from_iter(page.args.iter()), row)
        .map_err(backend)?
    {
        items.push(item.map_err(backend)?);
    }
    if let Some(total) = page.total(items.len()) {
        return Ok((items, total));
    }
    let mut st = c.prepare_cached(&page.count()).map_err(backend)?;
    let n: i64 = st
        .query_row(params_from_iter(page.count_args().iter()), |r| r.get(0))
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
    let page = query_sql::instances(Dialect::Sqlite, account_id, namespace, query);
    let (mut items, total) = paged(c, &page, instance_from_row)?;
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
                Dialect::Sqlite.page("?1", "?2")
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
