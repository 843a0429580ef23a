//! The statement text of the pushed-down reads, one shape for both back ends: key pairs and
//! instances by ids, names and filters with their order, paging and the total count in SQL.
//! A [`Page`] is told its [`Dialect`] and gives the text of the page and of its count with
//! back-end-neutral [`Arg`]s, which [`crate::sqlite_query`] and [`crate::postgres_query`]
//! bind and run. Each query shape has one statement text, so it stays in each back end's
//! prepared-statement cache.
//!
//! Where the dialects differ:
//! - placeholders: `?n` on SQLite, `$n` on PostgreSQL;
//! - lists: one JSON array parameter on SQLite (`IN (SELECT value FROM json_each(?n))`), an
//!   array on PostgreSQL (`= ANY($n)`);
//! - `*` patterns: GLOB on SQLite, LIKE on PostgreSQL;
//! - tags (a JSON array of `[key, value]` pairs): `json_each` and `json_extract` on SQLite,
//!   `jsonb_array_elements` and `->>` on PostgreSQL;
//! - an instance's UUID: a function SQLite is given ([`UUID_FUNCTION`]), an expression on
//!   PostgreSQL ([`INSTANCE_UUID`]);
//! - planner steering, on SQLite only: the `+` on columns ([`Dialect::steer`]) and `LIMIT
//!   (? + 0)` ([`Dialect::page`]).

use crate::sql::{Arg, INSTANCE_COLS, KEY_COLS};
use keyplane_core::keypair::Namespace;
use keyplane_core::query::{InstanceFilter, InstanceOrder, InstanceQuery};
use keyplane_core::service::{KeyPairFilter, KeyPairOrder, KeyPairQuery};

/// The SQL function SQLite is given for an instance's UUID from its id
/// ([`keyplane_core::query::instance_uuid`]).
pub(crate) const UUID_FUNCTION: &str = "keyplane_instance_uuid";

/// An instance's UUID ([`keyplane_core::query::instance_uuid`]) computed from its id in
/// PostgreSQL: the first 16 bytes of the SHA-256, with the version-4 and variant bits set.
const INSTANCE_UUID: &str =
    "(SELECT encode(set_byte(set_byte(h.d, 6, (get_byte(h.d, 6) & 15) | 64), \
     8, (get_byte(h.d, 8) & 63) | 128), 'hex')::uuid::text FROM (SELECT substring(sha256( \
     convert_to('keyplane-instance-uuid:' || instances.id, 'UTF8')) FROM 1 FOR 16) AS d) AS h)";

/// Which back end a statement is written for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// The placeholder of argument `n` (from 1).
    fn placeholder(self, n: usize) -> String {
        match self {
            Dialect::Sqlite => format!("?{n}"),
            Dialect::Postgres => format!("${n}"),
        }
    }

    /// `column` is one of the list bound at `placeholder`.
    fn in_list(self, column: &str, placeholder: &str) -> String {
        match self {
            Dialect::Sqlite => format!("{column} IN (SELECT value FROM json_each({placeholder}))"),
            Dialect::Postgres => format!("{column} = ANY({placeholder})"),
        }
    }

    /// The prefix that keeps a column from choosing the index, when `steer`: `+` on SQLite.
    /// Why: without statistics SQLite prefers the (account, namespace, created_at) index,
    /// which gives the order for free but reads every row of the account. When ids, names or
    /// addresses select a few rows, `+` keeps the account terms and the order off the indexes,
    /// so the primary key or the name or address index finds the rows and a small sort orders
    /// them. PostgreSQL plans from statistics and is not steered.
    fn steer(self, steer: bool) -> &'static str {
        match (self, steer) {
            (Dialect::Sqlite, true) => "+",
            _ => "",
        }
    }

    /// The account and namespace terms every read starts with, on arguments 1 and 2.
    fn account_terms(self, steer: bool) -> &'static str {
        match (self, steer) {
            (Dialect::Sqlite, false) => "account_id = ?1 AND namespace = ?2",
            (Dialect::Sqlite, true) => "+account_id = ?1 AND +namespace = ?2",
            (Dialect::Postgres, _) => "account_id = $1 AND namespace = $2",
        }
    }

    /// `LIMIT lim OFFSET off` for placeholders. Why the `+ 0` on SQLite: it reads a LIMIT or
    /// OFFSET that is a bare parameter while it plans the statement, and then prepares the
    /// cached statement again every time a value is bound to it (a parse and a plan per
    /// call); an expression is only evaluated when it runs.
    pub(crate) fn page(self, lim: &str, off: &str) -> String {
        match self {
            Dialect::Sqlite => format!("LIMIT ({lim} + 0) OFFSET ({off} + 0)"),
            Dialect::Postgres => format!("LIMIT {lim} OFFSET {off}"),
        }
    }

    /// `pattern` (`*`: any run of characters, everything else itself) as the argument of
    /// [`Dialect::pattern_operator`].
    fn pattern(self, pattern: &str) -> String {
        let mut out = String::with_capacity(pattern.len() + 8);
        for ch in pattern.chars() {
            match (self, ch) {
                (Dialect::Sqlite, '*') => out.push('*'),
                (Dialect::Sqlite, '?') => out.push_str("[?]"),
                (Dialect::Sqlite, '[') => out.push_str("[[]"),
                (Dialect::Postgres, '*') => out.push('%'),
                (Dialect::Postgres, '%' | '_' | '\\') => {
                    out.push('\\');
                    out.push(ch);
                }
                (_, c) => out.push(c),
            }
        }
        out
    }

    fn pattern_operator(self) -> &'static str {
        match self {
            Dialect::Sqlite => "GLOB",
            Dialect::Postgres => "LIKE",
        }
    }

    /// The collation after `name` that orders names in byte order: SQLite's default
    /// (BINARY) already does, whatever the PostgreSQL database's collation is.
    fn byte_order(self) -> &'static str {
        match self {
            Dialect::Sqlite => "",
            Dialect::Postgres => " COLLATE \"C\"",
        }
    }

    /// An always false condition.
    fn never(self) -> &'static str {
        match self {
            Dialect::Sqlite => "0",
            Dialect::Postgres => "FALSE",
        }
    }

    /// A tag of the key pair (`t`, a `[key, value]` pair) passes `cond`.
    fn tag(self, cond: &str) -> String {
        match self {
            Dialect::Sqlite => {
                format!("EXISTS (SELECT 1 FROM json_each(key_pairs.tags) t WHERE {cond})")
            }
            Dialect::Postgres => format!(
                "EXISTS (SELECT 1 FROM jsonb_array_elements(key_pairs.tags::jsonb) t WHERE {cond})"
            ),
        }
    }

    /// The key (0) or value (1) of tag `t`.
    fn tag_part(self, part: usize) -> &'static str {
        match (self, part) {
            (Dialect::Sqlite, 0) => "json_extract(t.value, '$[0]')",
            (Dialect::Sqlite, _) => "json_extract(t.value, '$[1]')",
            (Dialect::Postgres, 0) => "t->>0",
            (Dialect::Postgres, _) => "t->>1",
        }
    }

    /// The instance's name contains one of the list bound at `placeholder`.
    fn name_contains(self, placeholder: &str) -> String {
        match self {
            Dialect::Sqlite => format!(
                "EXISTS (SELECT 1 FROM json_each({placeholder}) \
                 WHERE instr(instances.name, value) > 0)"
            ),
            Dialect::Postgres => format!(
                "EXISTS (SELECT 1 FROM unnest({placeholder}::text[]) AS v(s) \
                 WHERE strpos(instances.name, v.s) > 0)"
            ),
        }
    }

    /// The instance's UUID.
    fn instance_uuid(self) -> String {
        match self {
            Dialect::Sqlite => format!("{UUID_FUNCTION}(id)"),
            Dialect::Postgres => INSTANCE_UUID.to_string(),
        }
    }
}

/// A WHERE clause and its arguments, numbered as they are added.
struct Where {
    dialect: Dialect,
    text: String,
    args: Vec<Arg>,
}

impl Where {
    fn new(dialect: Dialect, account_id: &str, namespace: Namespace, steer: bool) -> Where {
        Where {
            dialect,
            text: dialect.account_terms(steer).into(),
            args: vec![
                Arg::Text(account_id.into()),
                Arg::Text(namespace.as_str().into()),
            ],
        }
    }

    /// Add `arg` and return its placeholder.
    fn arg(&mut self, arg: Arg) -> String {
        self.args.push(arg);
        self.dialect.placeholder(self.args.len())
    }

    fn and(&mut self, clause: &str) {
        self.text.push_str(" AND ");
        self.text.push_str(clause);
    }

    /// Add the list and return `column` is one of it.
    fn in_list(&mut self, column: &str, list: Arg) -> String {
        let p = self.arg(list);
        self.dialect.in_list(column, &p)
    }

    /// `column` is one of the list.
    fn within(&mut self, column: &str, list: Arg) {
        let clause = self.in_list(column, list);
        self.and(&clause);
    }

    /// `column` matches `pattern` (`*` wildcards): by equality when it has none.
    fn like(&mut self, column: &str, pattern: &str) {
        if pattern.contains('*') {
            let p = self.arg(Arg::Text(self.dialect.pattern(pattern)));
            let op = self.dialect.pattern_operator();
            self.and(&format!("{column} {op} {p}"));
        } else {
            let p = self.arg(Arg::Text(pattern.into()));
            self.and(&format!("{column} = {p}"));
        }
    }

    /// `column` compares by `op` to `arg`.
    fn compare(&mut self, column: &str, op: &str, arg: Arg) {
        let p = self.arg(arg);
        self.and(&format!("{column} {op} {p}"));
    }

    fn instance_filter(&mut self, f: &InstanceFilter) {
        let texts = |v: &[String]| Arg::Texts(v.to_vec());
        match f {
            InstanceFilter::Id(v) => self.within("id", texts(v)),
            InstanceFilter::Zone(v) => self.within("zone", texts(v)),
            InstanceFilter::Name(v) => self.within("name", texts(v)),
            InstanceFilter::NameContains(v) => {
                let p = self.arg(texts(v));
                let clause = self.dialect.name_contains(&p);
                self.and(&clause);
            }
            InstanceFilter::DisplayNameLike(p) => {
                self.like("(CASE WHEN name = '' THEN id ELSE name END)", p)
            }
            InstanceFilter::State(v) => {
                let names = v.iter().map(|s| s.as_str().to_string()).collect();
                self.within("state", Arg::Texts(names))
            }
            InstanceFilter::PrivateIp(v) => self.within("private_ip", texts(v)),
            InstanceFilter::InstanceType(v) => self.within("instance_type", texts(v)),
            InstanceFilter::ImageId(v) => self.within("image_id", texts(v)),
            InstanceFilter::Uuid(v) => self.within(&self.dialect.instance_uuid(), texts(v)),
            InstanceFilter::CreatedFrom(t) => self.compare("created_at", ">=", Arg::Int(*t)),
            InstanceFilter::CreatedUntil(t) => self.compare("created_at", "<=", Arg::Int(*t)),
            InstanceFilter::FirstKey(k) => self.compare(
                "(SELECT ik.key_pair_id FROM instance_keys ik \
                 WHERE ik.instance_id = instances.id ORDER BY ik.position LIMIT 1)",
                "=",
                Arg::Text(k.clone()),
            ),
            InstanceFilter::Nothing => self.and(self.dialect.never()),
        }
    }

    /// A tag of the row passes the clause.
    fn tag(&mut self, cond: &str) {
        let clause = self.dialect.tag(cond);
        self.and(&clause);
    }

    fn filter(&mut self, f: &KeyPairFilter) {
        let texts = |v: &[String]| Arg::Texts(v.to_vec());
        match f {
            KeyPairFilter::ProjectId(ids) => self.within("project_id", Arg::Ints(ids.clone())),
            KeyPairFilter::KeyName(names) => self.within("name", texts(names)),
            KeyPairFilter::Fingerprint(fps) => self.within("fingerprint_sha256", texts(fps)),
            KeyPairFilter::FingerprintMd5(fps) => self.within("fingerprint_md5", texts(fps)),
            KeyPairFilter::NameLike(p) => self.like("name", p),
            KeyPairFilter::TagKey(keys) => {
                let cond = self.in_list(self.dialect.tag_part(0), texts(keys));
                self.tag(&cond);
            }
            KeyPairFilter::TagValue(values) => {
                let cond = self.in_list(self.dialect.tag_part(1), texts(values));
                self.tag(&cond);
            }
            KeyPairFilter::Tag { key, values } => {
                let (key_part, value_part) = (self.dialect.tag_part(0), self.dialect.tag_part(1));
                let k = self.arg(Arg::Text(key.clone()));
                let values = self.in_list(value_part, texts(values));
                self.tag(&format!("{key_part} = {k} AND {values}"));
            }
        }
    }

    /// The page of `table`'s `cols` this clause matches, in `order`, from `offset` and at
    /// most `limit` of them.
    fn page(
        mut self,
        cols: &str,
        table: &'static str,
        order: &str,
        (offset, limit): (usize, usize),
    ) -> Page {
        let lim = self.arg(Arg::Int(i64::try_from(limit).unwrap_or(i64::MAX)));
        let off = self.arg(Arg::Int(i64::try_from(offset).unwrap_or(i64::MAX)));
        Page {
            rows: format!(
                "SELECT {cols} FROM {table} WHERE {} ORDER BY {order} {}",
                self.text,
                self.dialect.page(&lim, &off)
            ),
            table,
            filter: self.text,
            args: self.args,
            offset,
            limit,
            kept_count: None,
        }
    }
}

/// A page read: the statement of its rows and of the count of every match, and their
/// arguments.
#[derive(Debug)]
pub(crate) struct Page {
    /// The statement of the page's rows, bound to [`Page::args`].
    pub(crate) rows: String,
    table: &'static str,
    filter: String,
    /// The arguments of [`Page::rows`]: those of [`Page::count`], then the limit and offset.
    pub(crate) args: Vec<Arg>,
    offset: usize,
    limit: usize,
    /// The statement of the total when a count kept by the database is it (every key pair of
    /// the account and namespace matches: `key_pair_counts`), bound to the same arguments.
    kept_count: Option<String>,
}

impl Page {
    /// The statement counting every match, bound to [`Page::count_args`].
    pub(crate) fn count(&self) -> String {
        if let Some(kept) = &self.kept_count {
            return kept.clone();
        }
        format!("SELECT COUNT(*) FROM {} WHERE {}", self.table, self.filter)
    }

    /// Room for the rows a page is likely to hold: its limit, up to the 100 of a full page.
    pub(crate) fn capacity(&self) -> usize {
        self.limit.min(100)
    }

    /// The arguments of [`Page::count`].
    pub(crate) fn count_args(&self) -> &[Arg] {
        &self.args[..self.args.len() - 2]
    }

    /// How many match in all when the page of `found` rows says it: a first page that is not
    /// full holds every match. `None`: ask [`Page::count`].
    pub(crate) fn total(&self, found: usize) -> Option<usize> {
        (self.offset == 0 && found < self.limit).then_some(found)
    }
}

/// The page of key pairs `query` asks for ([`KEY_COLS`]).
pub(crate) fn key_pairs(
    dialect: Dialect,
    account_id: &str,
    namespace: Namespace,
    query: &KeyPairQuery,
) -> Page {
    // Ids, names and fingerprints select a few rows (see `Dialect::steer`): the order is kept
    // off the account index for any of them, the account terms only when ids are given.
    let selective = query.ids.is_some()
        || query.filters.iter().any(|f| match f {
            KeyPairFilter::KeyName(_) | KeyPairFilter::Fingerprint(_) => true,
            KeyPairFilter::NameLike(p) => !p.contains('*'),
            _ => false,
        });
    let mut w = Where::new(dialect, account_id, namespace, query.ids.is_some());
    let p = dialect.steer(selective);
    let order = match query.order {
        KeyPairOrder::Oldest => format!("{p}created_at, {p}id"),
        KeyPairOrder::OldestByName => format!("{p}created_at, {p}name{}", dialect.byte_order()),
    };
    if let Some(region) = &query.region {
        w.compare("region", "=", Arg::Text(region.clone()));
    }
    if let Some(ids) = &query.ids {
        w.within("id", Arg::Texts(ids.clone()));
    }
    for f in &query.filters {
        w.filter(f);
    }
    let everything = query.region.is_none() && query.ids.is_none() && query.filters.is_empty();
    let mut page = w.page(KEY_COLS, "key_pairs", &order, (query.offset, query.limit));
    if everything {
        // The account and namespace are the first two arguments (`Where::new`).
        page.kept_count = Some(format!(
            "SELECT COALESCE((SELECT n FROM key_pair_counts WHERE account_id = {} \
             AND namespace = {}), 0)",
            dialect.placeholder(1),
            dialect.placeholder(2)
        ));
    }
    page
}

/// The page of instances `query` asks for ([`INSTANCE_COLS`]).
pub(crate) fn instances(
    dialect: Dialect,
    account_id: &str,
    namespace: Namespace,
    query: &InstanceQuery,
) -> Page {
    // As for key pairs, when ids or addresses select a few rows the primary key or the
    // address index finds them (see `Dialect::steer`).
    let selective = query.ids.is_some()
        || query
            .filters
            .iter()
            .any(|f| matches!(f, InstanceFilter::Id(_) | InstanceFilter::PrivateIp(_)));
    let mut w = Where::new(dialect, account_id, namespace, selective);
    let p = dialect.steer(selective);
    let order = match query.order {
        InstanceOrder::Oldest => format!("{p}created_at, {p}id"),
        InstanceOrder::Newest => format!("{p}created_at DESC, {p}id"),
        InstanceOrder::NewestReversed => format!("{p}created_at DESC, {p}id DESC"),
    };
    if let Some(region) = &query.region {
        w.compare("region", "=", Arg::Text(region.clone()));
    }
    if let Some(ids) = &query.ids {
        w.within("id", Arg::Texts(ids.clone()));
    }
    for f in &query.filters {
        w.instance_filter(f);
    }
    w.page(
        INSTANCE_COLS,
        "instances",
        &order,
        (query.offset, query.limit),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyplane_core::instance::InstanceState;

    fn every_key_pair_filter() -> KeyPairQuery {
        KeyPairQuery {
            ids: Some(vec!["skey-1".into()]),
            region: Some("ap-guangzhou".into()),
            filters: vec![
                KeyPairFilter::ProjectId(vec![0, 7]),
                KeyPairFilter::KeyName(vec!["a".into()]),
                KeyPairFilter::Fingerprint(vec!["f".into()]),
                KeyPairFilter::FingerprintMd5(vec!["m".into()]),
                KeyPairFilter::NameLike("a*[?%_".into()),
                KeyPairFilter::NameLike("exact".into()),
                KeyPairFilter::TagKey(vec!["k".into()]),
                KeyPairFilter::TagValue(vec!["v".into()]),
                KeyPairFilter::Tag {
                    key: "k".into(),
                    values: vec!["v".into()],
                },
            ],
            order: KeyPairOrder::OldestByName,
            offset: 20,
            limit: 10,
        }
    }

    fn every_instance_filter() -> InstanceQuery {
        InstanceQuery {
            filters: vec![
                InstanceFilter::Zone(vec!["z".into()]),
                InstanceFilter::Name(vec!["n".into()]),
                InstanceFilter::NameContains(vec!["c".into()]),
                InstanceFilter::DisplayNameLike("web-*".into()),
                InstanceFilter::State(vec![InstanceState::Running]),
                InstanceFilter::InstanceType(vec!["t".into()]),
                InstanceFilter::ImageId(vec!["img".into()]),
                InstanceFilter::Uuid(vec!["u".into()]),
                InstanceFilter::CreatedFrom(1),
                InstanceFilter::CreatedUntil(2),
                InstanceFilter::FirstKey("skey-1".into()),
                InstanceFilter::Nothing,
            ],
            order: InstanceOrder::NewestReversed,
            limit: 100,
            ..InstanceQuery::default()
        }
    }

    /// The placeholders of `text` (`?` or `$` and a number), in order of appearance.
    fn placeholders(text: &str, mark: char) -> Vec<usize> {
        text.split(mark)
            .skip(1)
            .filter_map(|part| {
                let digits: String = part.chars().take_while(char::is_ascii_digit).collect();
                digits.parse().ok()
            })
            .collect()
    }

    #[test]
    fn sqlite_statements_keep_their_text() {
        let page = key_pairs(
            Dialect::Sqlite,
            "acct",
            Namespace::Cvm,
            &every_key_pair_filter(),
        );
        let filter = "+account_id = ?1 AND +namespace = ?2 AND region = ?3 \
             AND id IN (SELECT value FROM json_each(?4)) \
             AND project_id IN (SELECT value FROM json_each(?5)) \
             AND name IN (SELECT value FROM json_each(?6)) \
             AND fingerprint_sha256 IN (SELECT value FROM json_each(?7)) \
             AND fingerprint_md5 IN (SELECT value FROM json_each(?8)) \
             AND name GLOB ?9 AND name = ?10 \
             AND EXISTS (SELECT 1 FROM json_each(key_pairs.tags) t WHERE \
             json_extract(t.value, '$[0]') IN (SELECT value FROM json_each(?11))) \
             AND EXISTS (SELECT 1 FROM json_each(key_pairs.tags) t WHERE \
             json_extract(t.value, '$[1]') IN (SELECT value FROM json_each(?12))) \
             AND EXISTS (SELECT 1 FROM json_each(key_pairs.tags) t WHERE \
             json_extract(t.value, '$[0]') = ?13 AND \
             json_extract(t.value, '$[1]') IN (SELECT value FROM json_each(?14)))";
        assert_eq!(
            page.rows,
            format!(
                "SELECT {KEY_COLS} FROM key_pairs WHERE {filter} \
                 ORDER BY +created_at, +name LIMIT (?15 + 0) OFFSET (?16 + 0)"
            )
        );
        assert_eq!(
            page.count(),
            format!("SELECT COUNT(*) FROM key_pairs WHERE {filter}")
        );
        assert_eq!(page.args[8], Arg::Text("a*[[][?]%_".into()));
        assert_eq!(page.args[4], Arg::Ints(vec![0, 7]));
        assert_eq!(page.count_args().len(), 14);
        assert_eq!(page.args[14..], [Arg::Int(10), Arg::Int(20)]);

        // A name selects a few rows: the order is kept off the index, the account terms not.
        let by_name = KeyPairQuery {
            filters: vec![KeyPairFilter::KeyName(vec!["a".into()])],
            limit: 10,
            ..KeyPairQuery::default()
        };
        assert_eq!(
            key_pairs(Dialect::Sqlite, "acct", Namespace::Cvm, &by_name).rows,
            format!(
                "SELECT {KEY_COLS} FROM key_pairs WHERE account_id = ?1 AND namespace = ?2 \
                 AND name IN (SELECT value FROM json_each(?3)) \
                 ORDER BY +created_at, +id LIMIT (?4 + 0) OFFSET (?5 + 0)"
            )
        );

        let page = instances(
            Dialect::Sqlite,
            "acct",
            Namespace::Cvm,
            &every_instance_filter(),
        );
        assert_eq!(
            page.rows,
            format!(
                "SELECT {INSTANCE_COLS} FROM instances WHERE account_id = ?1 AND namespace = ?2 \
                 AND zone IN (SELECT value FROM json_each(?3)) \
                 AND name IN (SELECT value FROM json_each(?4)) \
                 AND EXISTS (SELECT 1 FROM json_each(?5) WHERE instr(instances.name, value) > 0) \
                 AND (CASE WHEN name = '' THEN id ELSE name END) GLOB ?6 \
                 AND state IN (SELECT value FROM json_each(?7)) \
                 AND instance_type IN (SELECT value FROM json_each(?8)) \
                 AND image_id IN (SELECT value FROM json_each(?9)) \
                 AND keyplane_instance_uuid(id) IN (SELECT value FROM json_each(?10)) \
                 AND created_at >= ?11 AND created_at <= ?12 \
                 AND (SELECT ik.key_pair_id FROM instance_keys ik \
                 WHERE ik.instance_id = instances.id ORDER BY ik.position LIMIT 1) = ?13 \
                 AND 0 ORDER BY created_at DESC, id DESC LIMIT (?14 + 0) OFFSET (?15 + 0)"
            )
        );
        assert_eq!(page.args[6], Arg::Texts(vec!["RUNNING".into()]));

        let by_address = InstanceQuery {
            filters: vec![InstanceFilter::PrivateIp(vec!["10.0.0.1".into()])],
            order: InstanceOrder::Newest,
            limit: 10,
            ..InstanceQuery::default()
        };
        assert_eq!(
            instances(Dialect::Sqlite, "acct", Namespace::Cvm, &by_address).rows,
            format!(
                "SELECT {INSTANCE_COLS} FROM instances WHERE +account_id = ?1 \
                 AND +namespace = ?2 AND private_ip IN (SELECT value FROM json_each(?3)) \
                 ORDER BY +created_at DESC, +id LIMIT (?4 + 0) OFFSET (?5 + 0)"
            )
        );
    }

    #[test]
    fn postgres_statements_take_arrays_and_like() {
        let page = key_pairs(
            Dialect::Postgres,
            "acct",
            Namespace::Cvm,
            &every_key_pair_filter(),
        );
        assert_eq!(
            page.rows,
            format!(
                "SELECT {KEY_COLS} FROM key_pairs WHERE account_id = $1 AND namespace = $2 \
                 AND region = $3 AND id = ANY($4) AND project_id = ANY($5) \
                 AND name = ANY($6) AND fingerprint_sha256 = ANY($7) \
                 AND fingerprint_md5 = ANY($8) AND name LIKE $9 AND name = $10 \
                 AND EXISTS (SELECT 1 FROM jsonb_array_elements(key_pairs.tags::jsonb) t \
                 WHERE t->>0 = ANY($11)) \
                 AND EXISTS (SELECT 1 FROM jsonb_array_elements(key_pairs.tags::jsonb) t \
                 WHERE t->>1 = ANY($12)) \
                 AND EXISTS (SELECT 1 FROM jsonb_array_elements(key_pairs.tags::jsonb) t \
                 WHERE t->>0 = $13 AND t->>1 = ANY($14)) \
                 ORDER BY created_at, name COLLATE \"C\" LIMIT $15 OFFSET $16"
            )
        );
        assert_eq!(page.args[8], Arg::Text("a%[?\\%\\_".into()));
        let page = instances(
            Dialect::Postgres,
            "acct",
            Namespace::Cvm,
            &every_instance_filter(),
        );
        assert!(page.rows.contains(
            "AND EXISTS (SELECT 1 FROM unnest($5::text[]) AS v(s) \
             WHERE strpos(instances.name, v.s) > 0) \
             AND (CASE WHEN name = '' THEN id ELSE name END) LIKE $6"
        ));
        assert!(page
            .rows
            .contains(&format!("AND {INSTANCE_UUID} = ANY($10)")));
        assert!(page
            .rows
            .ends_with("AND FALSE ORDER BY created_at DESC, id DESC LIMIT $14 OFFSET $15"));
    }

    #[test]
    fn every_argument_has_its_placeholder_in_order() {
        for (dialect, mark) in [(Dialect::Sqlite, '?'), (Dialect::Postgres, '$')] {
            let pages = [
                key_pairs(dialect, "a", Namespace::Ecs, &every_key_pair_filter()),
                key_pairs(dialect, "a", Namespace::Ecs, &KeyPairQuery::default()),
                instances(dialect, "a", Namespace::Ecs, &every_instance_filter()),
                instances(dialect, "a", Namespace::Ecs, &InstanceQuery::default()),
            ];
            for page in pages {
                let want: Vec<usize> = (1..=page.args.len()).collect();
                assert_eq!(placeholders(&page.rows, mark), want, "{}", page.rows);
                assert_eq!(
                    placeholders(&page.count(), mark),
                    want[..want.len() - 2],
                    "{}",
                    page.count()
                );
            }
        }
    }

    #[test]
    fn a_first_page_that_is_not_full_is_the_total() {
        let page = |offset, limit| {
            let q = KeyPairQuery {
                offset,
                limit,
                ..KeyPairQuery::default()
            };
            key_pairs(Dialect::Sqlite, "a", Namespace::Cvm, &q)
        };
        assert_eq!(page(0, 10).total(3), Some(3));
        assert_eq!(page(0, 10).total(10), None);
        assert_eq!(page(5, 10).total(3), None);
    }
}
