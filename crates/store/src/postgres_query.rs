//! Pushed-down reads on PostgreSQL, the same as [`crate::sqlite_query`]: key pairs and
//! instances by ids, names and filters with their order, paging and the total count in SQL,
//! and the instance counts and address checks a launch needs. Lists travel as arrays
//! (`= ANY($n)`).

use crate::postgres::{key_pair_from_row, Fail};
use crate::postgres_instances::{fill_keys, instance_from_row};
use crate::sql::{self, INSTANCE_COLS, KEY_COLS};
use deadpool_postgres::GenericClient;
use keyplane_core::keypair::{KeyPair, Namespace};
use keyplane_core::query::{InstanceFilter, InstanceOrder, InstancePage, InstanceQuery};
use keyplane_core::service::{KeyPairFilter, KeyPairOrder, KeyPairPage, KeyPairQuery};
use tokio_postgres::types::ToSql;

/// An instance's UUID ([`keyplane_core::query::instance_uuid`]) computed from its id in SQL:
/// the first 16 bytes of the SHA-256, with the version-4 and variant bits set.
const INSTANCE_UUID: &str =
    "(SELECT encode(set_byte(set_byte(h.d, 6, (get_byte(h.d, 6) & 15) | 64), \
     8, (get_byte(h.d, 8) & 63) | 128), 'hex')::uuid::text FROM (SELECT substring(sha256( \
     convert_to('keyplane-instance-uuid:' || instances.id, 'UTF8')) FROM 1 FOR 16) AS d) AS h)";

/// `pattern` (`*`: any run of characters, everything else itself) as a LIKE pattern.
fn like_pattern(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 8);
    for ch in pattern.chars() {
        match ch {
            '*' => out.push('%'),
            '%' | '_' | '\\' => {
                out.push('\\');
                out.push(ch);
            }
            c => out.push(c),
        }
    }
    out
}

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

    /// `column = ANY` of the values.
    fn within(&mut self, column: &str, v: &[String]) {
        let a = self.texts(v);
        self.and(&format!("{column} = ANY({a})"));
    }

    /// `column` matches `pattern` (`*` wildcards): by equality when it has none.
    fn like(&mut self, column: &str, pattern: &str) {
        if pattern.contains('*') {
            let p = self.arg(Box::new(like_pattern(pattern)));
            self.and(&format!("{column} LIKE {p}"));
        } else {
            let p = self.arg(Box::new(pattern.to_string()));
            self.and(&format!("{column} = {p}"));
        }
    }

    fn instance_filter(&mut self, f: &InstanceFilter) {
        match f {
            InstanceFilter::Id(v) => self.within("id", v),
            InstanceFilter::Zone(v) => self.within("zone", v),
            InstanceFilter::Name(v) => self.within("name", v),
            InstanceFilter::NameContains(v) => {
                let a = self.texts(v);
                self.and(&format!(
                    "EXISTS (SELECT 1 FROM unnest({a}::text[]) AS v(s) \
                     WHERE strpos(instances.name, v.s) > 0)"
                ));
            }
            InstanceFilter::DisplayNameLike(p) => {
                self.like("(CASE WHEN name = '' THEN id ELSE name END)", p)
            }
            InstanceFilter::State(v) => {
                let names: Vec<String> = v.iter().map(|s| s.as_str().to_string()).collect();
                self.within("state", &names)
            }
            InstanceFilter::PrivateIp(v) => self.within("private_ip", v),
            InstanceFilter::InstanceType(v) => self.within("instance_type", v),
            InstanceFilter::ImageId(v) => self.within("image_id", v),
            InstanceFilter::Uuid(v) => self.within(INSTANCE_UUID, v),
            InstanceFilter::CreatedFrom(t) => {
                let a = self.arg(Box::new(*t));
                self.and(&format!("created_at >= {a}"));
            }
            InstanceFilter::CreatedUntil(t) => {
                let a = self.arg(Box::new(*t));
                self.and(&format!("created_at <= {a}"));
            }
            InstanceFilter::FirstKey(k) => {
                let a = self.arg(Box::new(k.clone()));
                self.and(&format!(
                    "(SELECT ik.key_pair_id FROM instance_keys ik \
                     WHERE ik.instance_id = instances.id ORDER BY ik.position LIMIT 1) = {a}"
                ));
            }
            InstanceFilter::Nothing => self.and("FALSE"),
        }
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
            KeyPairFilter::FingerprintMd5(fps) => self.within("fingerprint_md5", fps),
            KeyPairFilter::NameLike(p) => self.like("name", p),
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
    // Names in byte order, as on SQLite, whatever the database's collation.
    let order = match query.order {
        KeyPairOrder::Oldest => "created_at, id",
        KeyPairOrder::OldestByName => "created_at, name COLLATE \"C\"",
    };
    let (mut items, total) = paged(
        c,
        w,
        &format!("SELECT {KEY_COLS} FROM key_pairs"),
        "key_pairs",
        order,
        (query.offset, query.limit),
        key_pair_from_row,
    )
    .await?;
    fill_associations(c, &mut items).await?;
    Ok(KeyPairPage { total, items })
}

/// The rows of `select` (a `SELECT ... FROM table`) that `w` matches, in `order`, from
/// `offset` and at most `limit` of them; and how many match in all (counted only when the
/// page does not say it: a first page that is not full holds every match).
async fn paged<T, E>(
    c: &impl GenericClient,
    mut w: Where,
    select: &str,
    table: &str,
    order: &str,
    (offset, limit): (usize, usize),
    row: fn(&tokio_postgres::Row) -> Result<T, E>,
) -> Result<(Vec<T>, usize), Fail>
where
    Fail: From<E>,
{
    let filter_text = w.text.clone();
    let lim = w.arg(Box::new(i64::try_from(limit).unwrap_or(i64::MAX)));
    let off = w.arg(Box::new(i64::try_from(offset).unwrap_or(i64::MAX)));
    let st = c
        .prepare_cached(&format!(
            "{select} WHERE {filter_text} ORDER BY {order} LIMIT {lim} OFFSET {off}"
        ))
        .await?;
    let args = w.refs();
    let items = c
        .query(&st, &args)
        .await?
        .iter()
        .map(row)
        .collect::<Result<Vec<T>, E>>()?;
    if offset == 0 && items.len() < limit {
        let total = items.len();
        return Ok((items, total));
    }
    let st = c
        .prepare_cached(&format!("SELECT COUNT(*) FROM {table} WHERE {filter_text}"))
        .await?;
    let n: i64 = c
        .query_one(&st, &args[..args.len() - 2])
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
    let mut w = Where::new(account_id, namespace);
    if let Some(region) = &query.region {
        let r = w.arg(Box::new(region.clone()));
        w.and(&format!("region = {r}"));
    }
    if let Some(ids) = &query.ids {
        w.within("id", ids);
    }
    for f in &query.filters {
        w.instance_filter(f);
    }
    let order = match query.order {
        InstanceOrder::Oldest => "created_at, id",
        InstanceOrder::Newest => "created_at DESC, id",
        InstanceOrder::NewestReversed => "created_at DESC, id DESC",
    };
    let (mut items, total) = paged(
        c,
        w,
        &format!("SELECT {INSTANCE_COLS} FROM instances"),
        "instances",
        order,
        (query.offset, query.limit),
        instance_from_row,
    )
    .await?;
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
