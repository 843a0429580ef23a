//! How many key pairs each account holds in each namespace, kept by triggers in the same
//! transaction as every insert and delete of a key pair: a page of an account's key pairs
//! with no filter answers its total from one row instead of counting the account's index
//! entries (500 of them at the quota, on every page). Schema version 12 on both back ends.

/// Schema version 12 on SQLite: the table, filled from the key pairs there are, and its
/// triggers.
pub(crate) const SQLITE_MIGRATION: &str = r#"
CREATE TABLE key_pair_counts (
    account_id TEXT NOT NULL,
    namespace TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (account_id, namespace)
);
INSERT INTO key_pair_counts (account_id, namespace, n)
    SELECT account_id, namespace, COUNT(*) FROM key_pairs GROUP BY account_id, namespace;
CREATE TRIGGER key_pair_counted AFTER INSERT ON key_pairs BEGIN
    INSERT INTO key_pair_counts (account_id, namespace, n) VALUES (NEW.account_id, NEW.namespace, 1)
        ON CONFLICT (account_id, namespace) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER key_pair_uncounted AFTER DELETE ON key_pairs BEGIN
    UPDATE key_pair_counts SET n = n - 1
        WHERE account_id = OLD.account_id AND namespace = OLD.namespace;
END;
"#;

/// Schema version 12 on PostgreSQL, as on SQLite. Inserts for one account already queue on
/// its account row (see `insert_key_pair`), so its count row adds no wait of its own.
pub(crate) const POSTGRES_MIGRATION: &str = r#"
CREATE TABLE key_pair_counts (
    account_id TEXT NOT NULL,
    namespace TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (account_id, namespace)
);
INSERT INTO key_pair_counts (account_id, namespace, n)
    SELECT account_id, namespace, COUNT(*) FROM key_pairs GROUP BY account_id, namespace;
CREATE FUNCTION key_pair_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO key_pair_counts (account_id, namespace, n)
            VALUES (NEW.account_id, NEW.namespace, 1)
            ON CONFLICT (account_id, namespace) DO UPDATE SET n = key_pair_counts.n + 1;
    ELSE
        UPDATE key_pair_counts SET n = n - 1
            WHERE account_id = OLD.account_id AND namespace = OLD.namespace;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER key_pair_counted AFTER INSERT OR DELETE ON key_pairs
    FOR EACH ROW EXECUTE FUNCTION key_pair_count();
"#;

#[cfg(test)]
mod tests {
    use crate::sqlite::SqliteStore;
    use keyplane_core::account::Account;
    use keyplane_core::keypair::Namespace;
    use keyplane_core::service::KeyPairQuery;
    use keyplane_core::store::Store;

    /// A file of version 11 gets its counts from the key pairs it holds.
    #[tokio::test]
    async fn version_11_files_count_what_they_hold() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.db");
        let a = Account::generate("counted", false, 1);
        {
            let store = SqliteStore::open(&path).unwrap();
            store.insert_account(&a).await.unwrap();
            for n in 0..3 {
                let mut k = crate::suite::key(&a, Namespace::Cvm, &format!("k{n}"), 10 + n);
                k.fingerprint_sha256 = format!("SHA256:counted-{n}");
                store.insert_key_pair(&k, 100, None).await.unwrap();
            }
        }
        {
            let c = rusqlite::Connection::open(&path).unwrap();
            c.execute_batch(concat!(
                "DROP TRIGGER key_pair_counted; DROP TRIGGER key_pair_uncounted; \
                 DROP TABLE key_pair_counts; ALTER TABLE audit_events DROP COLUMN resources;",
                crate::sqlite_audit::resources_table!(),
                "PRAGMA user_version = 11;"
            ))
            .unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        let q = KeyPairQuery {
            offset: 1,
            limit: 1,
            ..KeyPairQuery::default()
        };
        let page = store
            .query_key_pairs(&a.id, Namespace::Cvm, &q)
            .await
            .unwrap();
        assert_eq!(page.total, 3);
        assert_eq!(page.items.len(), 1);
    }
}
