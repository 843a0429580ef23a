//! Pushed-down reads on PostgreSQL, the same as [`crate::sqlite_query`]: key pairs by ids,
//! names and filters with paging and the total count in SQL, and the instance counts and
//! address checks a launch needs. Lists travel as arrays (`= ANY($n)`).

use crate::postgres::{key_pair_from_row, Fail, KEY_COLS};
use deadpool_postgres::GenericClient;
use keyplane_core::keypair::{KeyPair, Namespace};
use keyplane_core::service::{KeyPairFilter, KeyPairPage, KeyPairQuery};
use tokio_postgres::types::ToSql;

type Arg = Box<dyn ToSql + Sync + Send>;

/// A WHERE clause and its arguments, numbered as they are added.
struct Where {
    text: String,
    args: Vec<Arg>,
}

impl Where {
    fn new(account_id: &str, namespace: Namespace) -> Where {
        Where {
            text: "account_id = $1 AND namespace = $2".into(),
            args: vec![
                Box::new(account_id.to_string()),
                Box::new(namespace.as_str().to_string()),
            ],
        }
    }

    fn arg(&mut self, arg: Arg) -> String {
        self.args.push(arg);
        format!("${}", self.args.len())
    }

    fn and(&mut self, clause: &str) {
        self.text.push_str(" AND ");
        self.text.push_str(clause);
    }

    fn tag(&mut self, cond: &str) {
        self.and(&format!(
            "EXISTS (SELECT 1 FROM jsonb_array_elements(key_pairs.tags::jsonb) t WHERE {cond})"
        ));
    }

    fn texts(&mut self, v: &[String]) -> String {
        self.arg(Box::new(v.to_vec()))
    }

    fn filter(&mut self, f: &KeyPairFilter) {
        match f {
            KeyPairFilter::ProjectId(ids) => {
                let a = self.arg(Box::new(ids.clone()));
                self.and(&format!("project_id = ANY({a})"));
            }
            KeyPairFilter::KeyName(names) => {
                let a = self.texts(names);
                self.and(&format!("name = ANY({a})"));
            }
            KeyPairFilter::Fingerprint(fps) => {
                let a = self.texts(fps);
                self.and(&format!("fingerprint_sha256 = ANY({a})"));
            }
            KeyPairFilter::TagKey(keys) => {
                let a = self.texts(keys);
                self.tag(&format!("t->>0 = ANY({a})"));
            }
            KeyPairFilter::TagValue(values) => {
                let a = self.texts(values);
                self.tag(&format!("t->>1 = ANY({a})"));
            }
            KeyPairFilter::Tag { key, values } => {
                let k = self.arg(Box::new(key.clone()));
                let a = self.texts(values);
                self.tag(&format!("t->>0 = {k} AND t->>1 = ANY({a})"));
            }
        }
    }

    fn refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.args
            .iter()
            .map(|a| a.as_ref() as &(dyn ToSql + Sync))
            .collect()
    }
}

/// The page of key pairs `query` asks for, with the total before paging.
pub(crate) async fn query_key_pairs(
    c: &impl GenericClient,
    account_id: &str,
    namespace: Namespace,
    query: &KeyPairQuery,
) -> Result<KeyPairPage, Fail> {
    let mut w = Where::new(account_id, namespace);
    if let Some(region) = &query.region {
        let r = w.arg(Box::new(region.clone()));
        w.and(&format!("region = {r}"));
    }
    if let Some(ids) = &query.ids {
        let a = w.texts(ids);
        w.and(&format!("id = ANY({a})"));
    }
    for f in &query.filters {
        w.filter(f);
    }
    let filter_text = w.text.clone();
    let lim = w.arg(Box::new(i64::try_from(query.limit).unwrap_or(i64::MAX)));
    let off = w.arg(Box::new(i64::try_from(query.offset).unwrap_or(i64::MAX)));
    let st = c
        .prepare_cached(&format!(
            "SELECT {KEY_COLS} FROM key_pairs WHERE {filter_text} \
             ORDER BY created_at, id LIMIT {lim} OFFSET {off}"
        ))
        .await?;
    let args = w.refs();
    let mut items = c
        .query(&st, &args)
        .await?
        .iter()
        .map(key_pair_from_row)
        .collect::<Result<Vec<KeyPair>, _>>()?;
    // A first page that is not full holds every match: no count needed.
    let total = if query.offset == 0 && items.len() < query.limit {
        items.len()
    } else {
        let st = c
            .prepare_cached(&format!(
                "SELECT COUNT(*) FROM key_pairs WHERE {filter_text}"
            ))
            .await?;
        let n: i64 = c
            .query_one(&st, &args[..args.len() - 2])
            .await?
            .try_get(0)?;
        n as usize
    };
    fill_associations(c, &mut items).await?;
    Ok(KeyPairPage { total, items })
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
    let st = c
        .prepare_cached("SELECT COUNT(*) FROM instances WHERE account_id = $1 AND namespace = $2")
        .await?;
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
