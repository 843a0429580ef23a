//! Pushed-down reads on PostgreSQL, the same as [`crate::sqlite_query`]: key pairs and
//! instances by ids, names and filters with their order, paging and the total count in SQL,
//! and the instance counts and address checks a launch needs. The statement text is
//! [`crate::query_sql`]'s; lists travel as arrays (`= ANY($n)`).

use crate::postgres::{key_pair_from_row, Fail};
use crate::postgres_instances::{fill_keys, instance_from_row};
use crate::query_sql::{self, Dialect, Page};
use crate::sql::{self, Arg};
use deadpool_postgres::GenericClient;
use keyplane_core::keypair::{KeyPair, Namespace};
use keyplane_core::query::{InstancePage, InstanceQuery};
use keyplane_core::service::{KeyPairPage, KeyPairQuery};
use tokio_postgres::types::ToSql;

/// The arguments as PostgreSQL parameters (a list is an array).
pub(crate) fn params(args: &[Arg]) -> Vec<&(dyn ToSql + Sync)> {
    args.iter()
        .map(|a| match a {
            Arg::Text(s) => s as &(dyn ToSql + Sync),
            Arg::OptText(s) => s,
            Arg::Int(i) => i,
            Arg::Texts(v) => v,
            Arg::Ints(v) => v,
        })
        .collect()
}

/// The page of key pairs `query` asks for, with the total before paging.
pub(crate) async fn query_key_pairs(
    c: &impl GenericClient,
    account_id: &str,
    namespace: Namespace,
    query: &KeyPairQuery,
) -> Result<KeyPairPage, Fail> {
    let page = query_sql::key_pairs(Dialect::Postgres, account_id, namespace, query);
    let (mut items, total) = paged(c, &page, key_pair_from_row).await?;
    fill_associations(c, &mut items).await?;
    Ok(KeyPairPage { total, items })
}

/// The rows of `page` and how many match in all.
async fn paged<T, E>(
    c: &impl GenericClient,
    page: &Page,
    row: fn(&tokio_postgres::Row) -> Result<T, E>,
) -> Result<(Vec<T>, usize), Fail>
where
    Fail: From<E>,
{
    let st = c.prepare_cached(&page.rows).await?;
    let items = c
        .query(&st, &params(&page.args))
        .await?
        .iter()
        .map(row)
        .collect::<Result<Vec<T>, E>>()?;
    if let Some(total) = page.total(items.len()) {
        return Ok((items, total));
    }
    let st = c.prepare_cached(&page.count()).await?;
    let n: i64 = c
        .query_one(&st, &params(page.count_args()))
        .await?
        .try_get(0)?;
    Ok((items, n as usize))
}

/// The page of instances `query` asks for, with the total before paging.
pub(crate) async fn query_instances(
    c: &impl GenericClient,
    account_id: &str,
    namespace: Namespace,
    query: &InstanceQuery,
) -> Result<InstancePage, Fail> {
    let page = query_sql::instances(Dialect::Postgres, account_id, namespace, query);
    let (mut items, total) = paged(c, &page, instance_from_row).await?;
    fill_keys(c, &mut items).await?;
    Ok(InstancePage { total, items })
}

/// Fill each key pair's bound instances, oldest instance first.
async fn fill_associations(c: &impl GenericClient, keys: &mut [KeyPair]) -> Result<(), Fail> {
    if keys.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = keys.iter().map(|k| k.id.as_str()).collect();
    let st = c
        .prepare_cached(
            "SELECT ik.key_pair_id, ik.instance_id FROM instance_keys ik \
             JOIN instances i ON i.id = ik.instance_id \
             WHERE ik.key_pair_id = ANY($1) ORDER BY i.created_at, i.id",
        )
        .await?;
    for row in c.query(&st, &[&ids]).await? {
        let key: String = row.try_get(0)?;
        if let Some(k) = keys.iter_mut().find(|k| k.id == key) {
            k.associated_instance_ids.push(row.try_get(1)?);
        }
    }
    Ok(())
}

/// How many instances the account holds in the namespace.
pub(crate) async fn count_instances(
    c: &impl GenericClient,
    account_id: &str,
    namespace: Namespace,
) -> Result<usize, Fail> {
    let st = c.prepare_cached(sql::COUNT_INSTANCES).await?;
    let n: i64 = c
        .query_one(&st, &[&account_id, &namespace.as_str()])
        .await?
        .try_get(0)?;
    Ok(n as usize)
}

/// Which of `addresses` are taken.
pub(crate) async fn taken_addresses(
    c: &impl GenericClient,
    addresses: &[String],
) -> Result<Vec<String>, Fail> {
    let st = c
        .prepare_cached("SELECT DISTINCT private_ip FROM instances WHERE private_ip = ANY($1)")
        .await?;
    c.query(&st, &[&addresses])
        .await?
        .iter()
        .map(|r| r.try_get(0).map_err(Fail::from))
        .collect()
}
