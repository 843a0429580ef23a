//! The store suite and the multi-node tests on PostgreSQL, against the server whose connection
//! URL `KEYPLANE_TEST_POSTGRES` holds (`scripts/postgres-up` prints one), each in a schema of
//! its own that is dropped afterwards. They are skipped only when asked: with
//! `KEYPLANE_TEST_POSTGRES=skip`; unset, they fail and say what to set.

use crate::postgres::PostgresStore;
use crate::suite::{instance, new_op};
use keyplane_core::account::Account;
use keyplane_core::instance::{Instance, OpKind};
use keyplane_core::keypair::{KeyPair, Namespace};
use keyplane_core::store::{Conflict, InstanceStore, Store, StoreError};
use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;
use tokio_postgres::{Config, NoTls};

const VAR: &str = "KEYPLANE_TEST_POSTGRES";

/// Run `test` with the configuration of a fresh, empty schema; drop the schema afterwards,
/// whether the test passed or not. Skips (returns) when no server is configured.
async fn with_schema<F, Fut>(name: &str, test: F)
where
    F: FnOnce(Config) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let url = match std::env::var(VAR) {
        Ok(v) if v == "skip" => {
            eprintln!("skipped {name}: {VAR}=skip");
            return;
        }
        Ok(url) => url,
        Err(_) => panic!(
            "{name}: {VAR} is not set: give it a PostgreSQL URL (scripts/postgres-up prints one), \
             or `skip` to skip the PostgreSQL tests"
        ),
    };
    let base: Config = url
        .parse()
        .expect("KEYPLANE_TEST_POSTGRES is not a valid URL");
    let schema = format!("kp_test_{}", uuid::Uuid::new_v4().simple());
    admin(&base, &format!("CREATE SCHEMA {schema}")).await;
    let mut config = base.clone();
    let options = base.get_options().unwrap_or_default();
    config.options(format!("{options} -c search_path={schema}").trim());
    let outcome = tokio::spawn(test(config)).await;
    admin(&base, &format!("DROP SCHEMA {schema} CASCADE")).await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

async fn admin(config: &Config, sql: &str) {
    let (client, conn) = config.connect(NoTls).await.expect("connect to PostgreSQL");
    let task = tokio::spawn(conn);
    client.batch_execute(sql).await.expect(sql);
    drop(client);
    let _ = task.await;
}

async fn node(config: &Config) -> Arc<PostgresStore> {
    Arc::new(PostgresStore::connect_with(config.clone()).await.unwrap())
}

#[tokio::test]
async fn suite_on_postgres() {
    with_schema("suite_on_postgres", |config| async move {
        crate::suite::run(node(&config).await).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_on_two_nodes() {
    with_schema("credentials_on_two_nodes", |config| async move {
        let (a, b) = (node(&config).await, node(&config).await);
        crate::suite_credentials::two_nodes(a, b).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_sees_an_operation_another_node_ended() {
    with_schema(
        "a_wait_sees_an_operation_another_node_ended",
        |config| async move {
            let (a, b) = (node(&config).await, node(&config).await);
            crate::suite_workflow::two_nodes(a, b).await;
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nodes_starting_together_migrate_once() {
    with_schema(
        "nodes_starting_together_migrate_once",
        |config| async move {
            let starts: Vec<_> = (0..6)
                .map(|_| {
                    let config = config.clone();
                    tokio::spawn(async move { PostgresStore::connect_with(config).await })
                })
                .collect();
            for s in starts {
                s.await.unwrap().expect("every node starts");
            }
            let (client, conn) = config.connect(NoTls).await.unwrap();
            tokio::spawn(conn);
            let rows = client
                .query(
                    "SELECT version FROM schema_migrations ORDER BY version",
                    &[],
                )
                .await
                .unwrap();
            let versions: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
            let expected: Vec<i64> =
                (1..=crate::postgres_schema::MIGRATIONS.len() as i64).collect();
            assert_eq!(versions, expected);
        },
    )
    .await;
}

/// A namespace this version does not know reads back as the same error as on SQLite
/// (`sqlite::tests::unknown_namespaces_are_named`).
#[tokio::test]
async fn unknown_namespaces_are_named() {
    with_schema("unknown_namespaces_are_named", |config| async move {
        let store = node(&config).await;
        let a = Account::generate("ns", false, 1);
        store.insert_account(&a).await.unwrap();
        let kp = crate::suite::key(&a, Namespace::Lighthouse, "k", 1);
        store.insert_key_pair(&kp, 500, None).await.unwrap();
        let i = instance(&a, 1, &[], 1);
        store.insert_instances(&[i], &[], None).await.unwrap();
        let (client, conn) = config.connect(NoTls).await.unwrap();
        tokio::spawn(conn);
        client
            .batch_execute(
                "UPDATE key_pairs SET namespace = 'cvm2'; UPDATE instances SET namespace = 'cvm2'",
            )
            .await
            .unwrap();
        let row = client
            .query_one(
                &format!("SELECT {} FROM key_pairs", crate::sql::KEY_COLS),
                &[],
            )
            .await
            .unwrap();
        let named = crate::stored::invalid("namespace", "cvm2");
        let read = crate::postgres::key_pair_from_row(&row).map_err(|e| e.into_store());
        assert_eq!(read.map(|_| ()), Err(named.clone()));
        assert_eq!(
            store.count_instances_by_state().await.map(|_| ()),
            Err(named)
        );
    })
    .await;
}

/// 2 nodes x 8 workers claim from 200 open operations: each is claimed exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn operations_are_claimed_exactly_once_across_nodes() {
    with_schema("operations_are_claimed_exactly_once", |config| async move {
        let nodes = [node(&config).await, node(&config).await];
        let a = Account::generate("claims", false, 1);
        nodes[0].insert_account(&a).await.unwrap();
        let instances: Vec<Instance> = (0..200).map(|n| instance(&a, n, &[], 10)).collect();
        let ops: Vec<_> = instances
            .iter()
            .map(|i| {
                new_op(
                    i,
                    "RunInstances",
                    OpKind::Create {
                        user_data: None,
                        then_stop: false,
                    },
                    None,
                    10,
                )
            })
            .collect();
        nodes[1]
            .insert_instances(&instances, &ops, None)
            .await
            .unwrap();

        let mut workers = Vec::new();
        for (n, store) in nodes.iter().enumerate() {
            for w in 0..8 {
                let store = store.clone();
                let name = format!("node{n}-worker{w}");
                workers.push(tokio::spawn(async move {
                    let mut claimed = Vec::new();
                    // A long lease: nothing lapses during the test.
                    while let Some(op) = store.claim_operation(&name, 100, 10_000).await.unwrap() {
                        claimed.push((op.id, op.instance_id));
                    }
                    claimed
                }));
            }
        }
        let mut all = Vec::new();
        let mut busy_workers = 0;
        for w in workers {
            let claimed = w.await.unwrap();
            busy_workers += usize::from(!claimed.is_empty());
            all.extend(claimed);
        }
        assert_eq!(all.len(), 200, "every operation claimed, none twice");
        let ids: BTreeSet<i64> = all.iter().map(|(id, _)| *id).collect();
        assert_eq!(ids.len(), 200, "an operation was handed to two workers");
        let instance_ids: BTreeSet<&str> = all.iter().map(|(_, i)| i.as_str()).collect();
        assert_eq!(instance_ids.len(), 200);
        assert!(busy_workers > 1, "the claims were spread over workers");
    })
    .await;
}

fn key(account: &Account, name: &str, n: usize) -> KeyPair {
    KeyPair {
        id: Namespace::Cvm.new_key_id(),
        account_id: account.id.clone(),
        namespace: Namespace::Cvm,
        region: String::new(),
        name: name.into(),
        description: String::new(),
        project_id: 0,
        public_key: format!("ssh-ed25519 AAAA {name}"),
        fingerprint_sha256: format!("SHA256:{name}-{n}"),
        fingerprint_md5: "00".into(),
        tags: vec![],
        created_at: n as i64,
        associated_instance_ids: vec![],
    }
}

/// Concurrent inserts on two nodes: the quota, the name and the public key hold.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn key_pair_rules_hold_across_nodes() {
    with_schema("key_pair_rules_hold_across_nodes", |config| async move {
        let nodes = [node(&config).await, node(&config).await];
        let a = Account::generate("rules", false, 1);
        nodes[0].insert_account(&a).await.unwrap();
        let race = |keys: Vec<KeyPair>, quota: usize| {
            let tasks: Vec<_> = keys
                .into_iter()
                .enumerate()
                .map(|(n, k)| {
                    let store = nodes[n % 2].clone();
                    tokio::spawn(async move { store.insert_key_pair(&k, quota, None).await })
                })
                .collect();
            async move {
                let mut out = Vec::new();
                for t in tasks {
                    out.push(t.await.unwrap());
                }
                out
            }
        };
        let count = |results: &[Result<(), StoreError>], want: Result<(), StoreError>| {
            results.iter().filter(|r| **r == want).count()
        };

        let quota = race((0..40).map(|n| key(&a, &format!("q{n}"), n)).collect(), 10).await;
        assert_eq!(count(&quota, Ok(())), 10);
        assert_eq!(
            count(&quota, Err(StoreError::Conflict(Conflict::Quota))),
            30
        );

        let same_name = race((0..16).map(|n| key(&a, "same", 100 + n)).collect(), 100).await;
        assert_eq!(count(&same_name, Ok(())), 1);
        let name_taken = Err(StoreError::Conflict(Conflict::KeyPairName));
        assert_eq!(count(&same_name, name_taken), 15);

        let same_key = race(
            (0..16)
                .map(|n| {
                    let mut k = key(&a, &format!("pk{n}"), 200);
                    k.fingerprint_sha256 = "SHA256:one-key".into();
                    k
                })
                .collect(),
            100,
        )
        .await;
        assert_eq!(count(&same_key, Ok(())), 1);
        let key_taken = Err(StoreError::Conflict(Conflict::PublicKey));
        assert_eq!(count(&same_key, key_taken), 15);
        let held = nodes[1]
            .list_key_pairs(&a.id, Namespace::Cvm, None)
            .await
            .unwrap();
        assert_eq!(held.len(), 12);
    })
    .await;
}

/// Concurrent submissions for one instance on two nodes: exactly one is recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_operation_per_instance_across_nodes() {
    with_schema(
        "one_operation_per_instance_across_nodes",
        |config| async move {
            let nodes = [node(&config).await, node(&config).await];
            let a = Account::generate("busy", false, 1);
            nodes[0].insert_account(&a).await.unwrap();
            let (x, y) = (instance(&a, 1, &[], 10), instance(&a, 2, &[], 10));
            nodes[0]
                .insert_instances(&[x.clone(), y.clone()], &[], None)
                .await
                .unwrap();
            for round in 0..10 {
                let tasks: Vec<_> = (0..16)
                    .map(|n| {
                        let store = nodes[n % 2].clone();
                        // Even rounds: everyone submits x alone. Odd rounds: half submit (x, y),
                        // half (y, x): overlapping batches in both orders.
                        let batch: Vec<&Instance> = match (round % 2, n % 2) {
                            (0, _) => vec![&x],
                            (_, 0) => vec![&x, &y],
                            _ => vec![&y, &x],
                        };
                        let batch: Vec<_> = batch
                            .into_iter()
                            .map(|i| new_op(i, "StartInstances", OpKind::Start, None, n as i64))
                            .collect();
                        tokio::spawn(async move { store.submit_operations(&batch, None).await })
                    })
                    .collect();
                let mut ok = 0;
                for t in tasks {
                    match t.await.unwrap() {
                        Ok(()) => ok += 1,
                        Err(e) => assert_eq!(e, StoreError::Conflict(Conflict::InstanceBusy)),
                    }
                }
                assert_eq!(ok, 1, "round {round}: exactly one batch is recorded");
                for _ in 0..(1 + round % 2) {
                    let op = nodes[1].claim_operation("w", 0, 0).await.unwrap().unwrap();
                    let done = keyplane_core::instance::OpState::Success;
                    nodes[1].finish_operation(op.id, done, None).await.unwrap();
                }
                assert_eq!(nodes[0].claim_operation("w", 0, 0).await.unwrap(), None);
            }
        },
    )
    .await;
}

#[test]
fn database_urls_are_redacted() {
    use crate::postgres::redact_database_url as r;
    assert_eq!(
        r("postgres://kp:s3cret@db:5432/keyplane"),
        "postgres://kp:***@db:5432/keyplane"
    );
    assert_eq!(
        r("postgresql://kp:p@ss@db/k?sslmode=disable"),
        "postgresql://kp:***@db/k?sslmode=disable"
    );
    assert_eq!(r("postgres://kp@db/k"), "postgres://kp@db/k");
    assert_eq!(
        r("postgres://db/k?user=kp&password=s3cret&x=1"),
        "postgres://db/k?user=kp&password=***&x=1"
    );
    assert_eq!(
        r("host=db user=kp password=s3cret dbname=k"),
        "host=db user=kp password=*** dbname=k"
    );
    assert_eq!(
        r("host=db password='a b' dbname=k"),
        "host=db password=*** dbname=k"
    );
    assert_eq!(r("host=db mypassword=x"), "host=db mypassword=x");
}

#[test]
fn invalid_urls_are_refused_without_the_password() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let err = rt
        .block_on(PostgresStore::connect("postgres://kp:s3cret@db:notaport/k"))
        .err()
        .unwrap();
    let text = err.to_string();
    assert!(text.contains("invalid PostgreSQL URL"), "{text}");
    assert!(!text.contains("s3cret"), "{text}");
}

/// Under SERIALIZABLE, racing inserts fail to serialize and are run again: the rules still hold
/// and no caller sees the serialization failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serialization_failures_are_retried() {
    with_schema(
        "serialization_failures_are_retried",
        |mut config| async move {
            let options = config.get_options().unwrap_or_default().to_string();
            config.options(format!(
                "{options} -c default_transaction_isolation=serializable"
            ));
            let nodes = [node(&config).await, node(&config).await];
            let a = Account::generate("serial", false, 1);
            nodes[0].insert_account(&a).await.unwrap();
            let tasks: Vec<_> = (0..12)
                .map(|n| {
                    let store = nodes[n % 2].clone();
                    let k = key(&a, &format!("s{n}"), n);
                    tokio::spawn(async move { store.insert_key_pair(&k, 5, None).await })
                })
                .collect();
            let mut results = Vec::new();
            for t in tasks {
                results.push(t.await.unwrap());
            }
            let quota = Err(StoreError::Conflict(Conflict::Quota));
            assert_eq!(
                results.iter().filter(|r| r.is_ok()).count(),
                5,
                "{results:?}"
            );
            assert_eq!(
                results.iter().filter(|r| **r == quota).count(),
                7,
                "{results:?}"
            );
        },
    )
    .await;
}

/// A column's declared type in SQLite's words (`TEXT`, `INTEGER`, and `BOOLEAN` for a
/// [`FLAGS`] column) and whether it is NOT NULL (a primary key's column counts as NOT NULL, as
/// PostgreSQL makes it).
type Column = (String, bool);

/// Tables, their columns and their named indexes: `table -> column -> type`, `indexes`.
type Shape = (
    std::collections::BTreeMap<String, std::collections::BTreeMap<String, Column>>,
    BTreeSet<String>,
);

/// The columns SQLite keeps as INTEGER 0 or 1 and PostgreSQL as BOOLEAN (each reads them with
/// [`crate::rows::Cells::flag`]).
const FLAGS: &[(&str, &str)] = &[("accounts", "is_admin"), ("operations", "was_running")];

/// A PostgreSQL column type (`information_schema.columns.data_type`) in SQLite's words: its
/// integers are all BIGINT (each back end reads them as i64); any other type stays as it is
/// and shows as a difference.
fn sqlite_type(postgres: &str) -> String {
    match postgres {
        "text" => "TEXT".into(),
        "bigint" => "INTEGER".into(),
        "boolean" => "BOOLEAN".into(),
        other => other.into(),
    }
}

/// The tables that only PostgreSQL has: its bookkeeping of the migrations (SQLite counts them
/// in `PRAGMA user_version`), and the resources of audit events as rows (SQLite keeps them in
/// a column, see [`SQLITE_ONLY_COLUMNS`]).
const POSTGRES_ONLY_TABLES: &[&str] = &["schema_migrations", "audit_resources"];

/// The indexes only PostgreSQL needs: SQLite's single writer already keeps an instance to one
/// operation in progress (see `postgres_schema`); and the index by account, which SQLite keeps
/// as a table of its own (see `sqlite_audit_index`).
const POSTGRES_ONLY_INDEXES: &[&str] = &["operations_one_open", "audit_events_by_account"];

/// The tables only SQLite has: its index of the audit trail by account.
const SQLITE_ONLY_TABLES: &[&str] = &["audit_by_account", "audit_indexed"];

/// The columns only SQLite has: an event's resources, which PostgreSQL keeps as rows of
/// `audit_resources` (see `sqlite_audit::RESOURCES_IN_EVENTS`).
const SQLITE_ONLY_COLUMNS: &[(&str, &str)] = &[("audit_events", "resources")];

fn sqlite_shape(c: &rusqlite::Connection) -> rusqlite::Result<Shape> {
    let mut tables = std::collections::BTreeMap::new();
    let names: Vec<String> = c
        .prepare(
            "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
        )?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for t in names {
        let columns = c
            .prepare("SELECT name, upper(type), \"notnull\" OR pk > 0 FROM pragma_table_info(?1)")?
            .query_map([&t], |r| {
                let (name, mut ty): (String, String) = (r.get(0)?, r.get(1)?);
                if ty == "INTEGER" && FLAGS.contains(&(t.as_str(), name.as_str())) {
                    ty = "BOOLEAN".into();
                }
                Ok((name, (ty, r.get(2)?)))
            })?
            .collect::<rusqlite::Result<_>>()?;
        tables.insert(t, columns);
    }
    // Unnamed indexes (`sqlite_autoindex_*`) are those of primary keys and UNIQUE constraints,
    // which PostgreSQL names as constraints instead.
    let indexes = c
        .prepare(
            "SELECT name FROM sqlite_schema WHERE type = 'index' \
             AND name NOT LIKE 'sqlite_autoindex_%'",
        )?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok((tables, indexes))
}

async fn postgres_shape(client: &tokio_postgres::Client) -> Shape {
    let mut tables = Shape::default().0;
    for r in client
        .query(
            "SELECT c.table_name::text, c.column_name::text, c.data_type::text, \
             c.is_nullable = 'NO' FROM information_schema.columns c \
             JOIN information_schema.tables t USING (table_schema, table_name) \
             WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'",
            &[],
        )
        .await
        .unwrap()
    {
        let ty: String = r.get(2);
        tables
            .entry(r.get(0))
            .or_default()
            .insert(r.get(1), (sqlite_type(&ty), r.get(3)));
    }
    // The indexes that back a constraint (primary keys, UNIQUE) are named by the constraint.
    let indexes = client
        .query(
            "SELECT i.relname::text FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid \
             JOIN pg_namespace n ON n.oid = i.relnamespace \
             WHERE n.nspname = current_schema() \
             AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = x.indexrelid)",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    (tables, indexes)
}

/// After every migration the two back ends have the same tables, columns (their types, mapped
/// by [`sqlite_type`], and nullability) and indexes, but for each one's own bookkeeping
/// ([`POSTGRES_ONLY_TABLES`], [`POSTGRES_ONLY_INDEXES`], [`SQLITE_ONLY_TABLES`],
/// [`SQLITE_ONLY_COLUMNS`]).
#[tokio::test]
async fn schemas_match() {
    with_schema("schemas_match", |config| async move {
        let _store = node(&config).await;
        let (client, conn) = config.connect(NoTls).await.unwrap();
        tokio::spawn(conn);
        let (mut pg_tables, mut pg_indexes) = postgres_shape(&client).await;
        for t in POSTGRES_ONLY_TABLES {
            assert!(
                pg_tables.remove(*t).is_some(),
                "PostgreSQL has no table {t}"
            );
        }
        for i in POSTGRES_ONLY_INDEXES {
            assert!(pg_indexes.remove(*i), "PostgreSQL has no index {i}");
        }
        let sqlite = crate::sqlite::SqliteStore::in_memory().unwrap();
        let (mut lite_tables, lite_indexes) = sqlite
            .with(|c| sqlite_shape(c).map_err(crate::sqlite::backend))
            .await
            .unwrap();
        for t in SQLITE_ONLY_TABLES {
            assert!(lite_tables.remove(*t).is_some(), "SQLite has no table {t}");
        }
        for (t, c) in SQLITE_ONLY_COLUMNS {
            let gone = lite_tables.get_mut(*t).and_then(|t| t.remove(*c));
            assert!(gone.is_some(), "SQLite has no column {t}.{c}");
        }
        // Both shapes are read in full: every migration's tables and indexes are there.
        for t in [
            "accounts",
            "key_pairs",
            "instances",
            "operations",
            "audit_events",
        ] {
            assert!(lite_tables.contains_key(t), "SQLite has no table {t}");
        }
        for i in ["key_pairs_by_name", "key_pairs_public_key"] {
            assert!(lite_indexes.contains(i), "SQLite has no index {i}");
        }
        // Types and nullability are read: a nullable text, an integer, a flag.
        let column = |table: &str, column: &str| lite_tables[table][column].clone();
        assert_eq!(column("instances", "password_hash"), ("TEXT".into(), false));
        assert_eq!(column("instances", "ssh_port"), ("INTEGER".into(), true));
        assert_eq!(column("accounts", "is_admin"), ("BOOLEAN".into(), true));
        assert_eq!(column("accounts", "id"), ("TEXT".into(), true));
        for (table, columns) in &lite_tables {
            for (name, lite) in columns {
                let pg = pg_tables.get(table).and_then(|t| t.get(name));
                assert_eq!(
                    Some(lite),
                    pg,
                    "{table}.{name}: SQLite's, then PostgreSQL's"
                );
            }
        }
        assert_eq!(lite_tables, pg_tables);
        assert_eq!(lite_indexes, pg_indexes);
    })
    .await;
}
