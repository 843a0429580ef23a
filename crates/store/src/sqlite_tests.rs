//! The tests of the SQLite store: the store suite in memory and on a file, its reader
//! connections, two handles on one file, grouped writes, and what reaches the files.

use super::*;
use crate::sqlite_readers::READERS;

#[tokio::test]
async fn suite_in_memory() {
    crate::suite::run(Arc::new(SqliteStore::in_memory().unwrap())).await;
}

#[tokio::test]
async fn suite_on_a_file_with_readers() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("k.db")).unwrap();
    assert!(store.readers.is_some());
    crate::suite::run(Arc::new(store)).await;
}

/// A read that panics, on the caller's thread or on a blocking one, gives its reader
/// connection back: afterwards every reader is idle and reads on all of them at once work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_read_gives_its_connection_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("k.db")).unwrap();
    let (s1, s2) = (store.clone(), store.clone());
    let inline = tokio::spawn(async move {
        s1.read_bounded(|c| -> StoreResult<()> {
            // A snapshot is taken, then the read panics.
            c.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
                r.get::<_, i64>(0)
            })
            .map_err(backend)?;
            panic!("inline read")
        })
        .await
    });
    // On the caller's thread it is the caller's panic.
    assert!(inline.await.is_err());
    let blocking = tokio::spawn(async move {
        s2.read(|c| -> StoreResult<()> {
            c.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
                r.get::<_, i64>(0)
            })
            .map_err(backend)?;
            panic!("blocking read")
        })
        .await
    });
    // On a blocking thread the panic is the read's error.
    assert!(matches!(blocking.await, Ok(Err(_))));
    let readers = store.readers.as_ref().unwrap();
    assert_eq!(readers.idle.lock().unwrap().len(), READERS);
    // None of them holds the snapshot the panicking read began: a write made now is seen
    // by a read on every reader.
    store
        .with(|c| {
            c.execute_batch("CREATE TABLE seen (n INTEGER); INSERT INTO seen VALUES (7)")
                .map_err(backend)
        })
        .await
        .unwrap();
    for _ in 0..READERS {
        let n = store
            .read_bounded(|c| {
                c.query_row("SELECT n FROM seen", [], |r| r.get::<_, i64>(0))
                    .map_err(backend)
            })
            .await
            .unwrap();
        assert_eq!(n, 7);
    }
    assert_eq!(readers.permits.available_permits(), READERS);
    let mut reads = tokio::task::JoinSet::new();
    for i in 0..2 * READERS {
        let s = store.clone();
        reads.spawn(async move {
            let one = |c: &Connection| {
                c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))
                    .map_err(backend)
            };
            if i % 2 == 0 {
                s.read_bounded(one).await
            } else {
                s.read(one).await
            }
        });
    }
    for r in reads.join_all().await {
        assert_eq!(r.unwrap(), 1);
    }
}

/// A namespace this version does not know reads back as the same error as on PostgreSQL
/// (`postgres_tests::unknown_namespaces_are_named`), never as CVM.
#[tokio::test]
async fn unknown_namespaces_are_named() {
    use keyplane_core::store::InstanceStore;
    let store = SqliteStore::in_memory().unwrap();
    let a = Account::generate("ns", false, 1);
    store.insert_account(&a).await.unwrap();
    let kp = crate::suite::key(&a, Namespace::Lighthouse, "k", 1);
    store.insert_key_pair(&kp, 500, None).await.unwrap();
    let i = crate::suite::instance(&a, 1, &[], 1);
    store.insert_instances(&[i], &[], None).await.unwrap();
    store
        .with(|c| {
            c.execute_batch(
                "UPDATE key_pairs SET namespace = 'cvm2'; UPDATE instances SET namespace = 'cvm2'",
            )
            .map_err(backend)
        })
        .await
        .unwrap();
    let read = store
        .read(|c| {
            c.row(
                &format!("SELECT {KEY_COLS} FROM key_pairs"),
                [],
                key_pair_from_row,
            )
            .map_err(backend)
        })
        .await;
    let named = crate::stored::invalid("namespace", "cvm2");
    assert_eq!(read.map(|_| ()), Err(named.clone()));
    assert_eq!(
        store.count_instances_by_state().await.map(|_| ()),
        Err(named)
    );
}

/// Two handles on one file, as a server and `keyplane account` are: a rotated credential
/// is refused by both at once, and so is a nonce either saw.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_on_two_handles() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.db");
    let a = Arc::new(SqliteStore::open(&path).unwrap());
    let b = Arc::new(SqliteStore::open(&path).unwrap());
    crate::suite_credentials::two_nodes(a, b).await;
}

/// Concurrent writes share group transactions; one that fails rolls back alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn grouped_writes_fail_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.db");
    let store = Arc::new(SqliteStore::open(&path).unwrap());
    let a = Account::generate("group", false, 1);
    store.insert_account(&a).await.unwrap();
    let mut tasks = Vec::new();
    for n in 0..64 {
        let (store, a) = (store.clone(), a.clone());
        tasks.push(tokio::spawn(async move {
            // Every fourth one repeats the name of the one before it.
            let name = if n % 4 == 3 { n - 1 } else { n };
            let kp = KeyPair {
                id: Namespace::Cvm.new_key_id(),
                account_id: a.id.clone(),
                namespace: Namespace::Cvm,
                region: String::new(),
                name: format!("g{name}"),
                description: String::new(),
                project_id: 0,
                public_key: format!("ssh-ed25519 AAAA g{n}"),
                fingerprint_sha256: format!("SHA256:g{n}"),
                fingerprint_md5: String::new(),
                tags: vec![],
                created_at: n,
                associated_instance_ids: vec![],
            };
            store.insert_key_pair(&kp, 500, None).await
        }));
    }
    let mut failed = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => {}
            Err(StoreError::Conflict(Conflict::KeyPairName)) => failed += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(failed, 16);
    drop(store);
    let store = SqliteStore::open(&path).unwrap();
    let all = store
        .list_key_pairs(&a.id, Namespace::Cvm, None)
        .await
        .unwrap();
    assert_eq!(all.len(), 48, "every acknowledged write is on disk");
}

#[tokio::test]
async fn data_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.db");
    let a = Account::generate("persist", true, 1);
    {
        let s = SqliteStore::open(&path).unwrap();
        s.insert_account(&a).await.unwrap();
    }
    let s = SqliteStore::open(&path).unwrap();
    let back = s.account_by_name("persist").await.unwrap().unwrap();
    assert_eq!(back.secret_key, a.secret_key);
}

/// Whether `needle` occurs in the database file or its write-ahead log.
fn on_disk(path: &Path, needle: &str) -> bool {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    [path.to_path_buf(), wal.into()].iter().any(|p| {
        let bytes = std::fs::read(p).unwrap_or_default();
        bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
    })
}

#[tokio::test]
async fn no_secret_is_left_in_clear_in_the_files() {
    use keyplane_core::sealing::MasterKey;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.db");
    let store = Arc::new(SqliteStore::open(&path).unwrap());
    // An account stored in clear by an earlier version, then sealed at start.
    let old = Account::generate("old", false, 1);
    store.insert_account(&old).await.unwrap();
    assert!(
        on_disk(&path, old.secret_key.expose()),
        "the test can see it"
    );
    let core =
        keyplane_core::Core::new(store.clone(), Arc::new(keyplane_core::service::SystemClock))
            .with_master_key(MasterKey::generate());
    assert_eq!(core.prepare_secrets().await.unwrap().sealed_now, 1);
    let mut created = Vec::new();
    for name in ["alice", "bob", "carol"] {
        created.push(core.create_account(name, false).await.unwrap());
    }
    drop(core);
    drop(store);
    for a in created.iter().chain([&old]) {
        assert!(
            !on_disk(&path, a.secret_key.expose()),
            "{}: secret_key",
            a.name
        );
        assert!(
            !on_disk(&path, a.access_key_secret.expose()),
            "{}: access_key_secret",
            a.name
        );
        assert!(on_disk(&path, &a.secret_id), "the ids are stored");
    }
}
