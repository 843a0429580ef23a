//! Credentials on a real back end: the credentials generation and what moves it, replacing an
//! account's credentials, and two nodes (two domain services, each over its own handle on one
//! database) that refuse a rotated credential as soon as the rotation returns, and a nonce
//! either of them saw.

use keyplane_core::account::Account;
use keyplane_core::sealing::MasterKey;
use keyplane_core::service::Clock;
use keyplane_core::store::{Conflict, SecretUpdate, Store, StoreError};
use keyplane_core::{Core, DomainError};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// The credentials generation and the calls that change credentials.
pub(crate) async fn run(store: &dyn Store) {
    let generation = || async { store.credentials_generation().await.unwrap() };
    let g0 = generation().await;
    let a = Account::generate("suite-cred-a", false, 70);
    let b = Account::generate("suite-cred-b", true, 71);
    store.insert_account(&a).await.unwrap();
    store.insert_account(&b).await.unwrap();
    assert_eq!(
        generation().await,
        g0,
        "a new account changes no credential"
    );

    // New ids and secrets; name, role and creation time stay.
    let mut fresh = Account::generate("ignored", true, 5);
    fresh.id = a.id.clone();
    store.replace_account_credentials(&fresh).await.unwrap();
    assert_eq!(generation().await, g0 + 1);
    assert!(store
        .account_by_secret_id(&a.secret_id)
        .await
        .unwrap()
        .is_none());
    assert!(store
        .account_by_access_key_id(&a.access_key_id)
        .await
        .unwrap()
        .is_none());
    let now = store
        .account_by_secret_id(&fresh.secret_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (now.name.as_str(), now.is_admin, now.created_at),
        ("suite-cred-a", false, 70)
    );
    assert_eq!(now.secret_key, fresh.secret_key);
    assert_eq!(now.access_key_secret, fresh.access_key_secret);
    let by_key = store
        .account_by_access_key_id(&fresh.access_key_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_key.id, a.id);

    // No such account; another account's ids: nothing changes.
    let ghost = Account::generate("ghost", false, 0);
    assert!(matches!(
        store.replace_account_credentials(&ghost).await,
        Err(StoreError::NotFound(_))
    ));
    let mut clash = Account::generate("clash", false, 0);
    clash.id = b.id.clone();
    clash.secret_id = fresh.secret_id.clone();
    assert_eq!(
        store.replace_account_credentials(&clash).await,
        Err(StoreError::Conflict(Conflict::Id))
    );
    let b_now = store.account_by_name(&b.name).await.unwrap().unwrap();
    assert_eq!(
        (b_now.secret_id.as_str(), &b_now.secret_key),
        (b.secret_id.as_str(), &b.secret_key)
    );
    assert_eq!(generation().await, g0 + 1, "refused changes move nothing");

    // Replacing secrets moves the generation only when a row changed.
    let mut update = SecretUpdate {
        account_id: b.id.clone(),
        old_secret_key: a.secret_key.clone(),
        new_secret_key: keyplane_core::account::Secret::new("x"),
        old_access_key_secret: b.access_key_secret.clone(),
        new_access_key_secret: keyplane_core::account::Secret::new("y"),
    };
    assert_eq!(
        store
            .replace_account_secrets(std::slice::from_ref(&update))
            .await
            .unwrap(),
        0
    );
    assert_eq!(generation().await, g0 + 1);
    update.old_secret_key = b.secret_key.clone();
    assert_eq!(store.replace_account_secrets(&[update]).await.unwrap(), 1);
    assert_eq!(generation().await, g0 + 2);
}

/// A clock a test sets.
struct TestClock(AtomicI64);

impl Clock for TestClock {
    fn now(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Two nodes over `a` and `b`, handles on one database.
pub async fn two_nodes(a: Arc<dyn Store>, b: Arc<dyn Store>) {
    const T: i64 = 1_900_000_000;
    let key = MasterKey::generate();
    let clock_a = Arc::new(TestClock(AtomicI64::new(T)));
    let clock_b = Arc::new(TestClock(AtomicI64::new(T)));
    let node_a = Core::new(a.clone(), clock_a).with_master_key(key.clone());
    let node_b = Core::new(b, clock_b.clone()).with_master_key(key);
    let name = format!("two-nodes-{}", keyplane_core::ids::random_digits(6));
    let old = node_a.create_account(&name, false).await.unwrap();
    let nodes = [&node_a, &node_b];
    for node in nodes {
        let found = node.account_by_secret_id(&old.secret_id).await.unwrap();
        assert_eq!(found.unwrap().secret_key, old.secret_key);
        let found = node
            .account_by_access_key_id(&old.access_key_id)
            .await
            .unwrap();
        assert_eq!(found.unwrap().access_key_secret, old.access_key_secret);
    }

    // Rotated through either node: once the call returns, both refuse the old credentials
    // and take the new ones (each node had the old ones in memory).
    for (changer, round) in [(&node_a, 0), (&node_b, 1)] {
        let before = node_a.account_by_name(&name).await.unwrap().unwrap();
        for node in nodes {
            assert!(node
                .account_by_secret_id(&before.secret_id)
                .await
                .unwrap()
                .is_some());
        }
        let new = changer.rotate_credentials(&name).await.unwrap();
        assert_ne!(new.secret_id, before.secret_id);
        assert_ne!(new.access_key_id, before.access_key_id);
        for node in nodes {
            let by_id = node.account_by_secret_id(&before.secret_id).await.unwrap();
            assert!(
                by_id.is_none(),
                "round {round}: the old SecretId still works"
            );
            let by_key = node
                .account_by_access_key_id(&before.access_key_id)
                .await
                .unwrap();
            assert!(by_key.is_none(), "round {round}: the old AccessKeyId works");
            let now = node.account_by_secret_id(&new.secret_id).await.unwrap();
            let now = now.expect("the new SecretId works");
            assert_eq!(
                (now.id.as_str(), &now.secret_key),
                (old.id.as_str(), &new.secret_key)
            );
            let now = node
                .account_by_access_key_id(&new.access_key_id)
                .await
                .unwrap()
                .expect("the new AccessKeyId works");
            assert_eq!(now.access_key_secret, new.access_key_secret);
        }
    }
    assert!(matches!(
        node_b.rotate_credentials("no-such-account").await,
        Err(DomainError::InvalidParameterValue { .. })
    ));

    // A nonce seen by one node is refused by the other (through the store) and again by
    // itself (from memory).
    let scope = format!("suite-two-nodes-{name}");
    assert!(node_a.remember_nonce(&scope, "n1", T + 600).await.unwrap());
    assert!(!node_b.remember_nonce(&scope, "n1", T + 600).await.unwrap());
    assert!(!node_a.remember_nonce(&scope, "n1", T + 600).await.unwrap());
    // Node B, far later, purges the store's expired nonces (n1 among them)...
    clock_b.0.store(T + 10_000, Ordering::SeqCst);
    for n in 0..8 {
        let nonce = format!("later{n}");
        assert!(node_b
            .remember_nonce(&scope, &nonce, T + 10_600)
            .await
            .unwrap());
    }
    // ... so the store alone would take n1 again at node A's time (recorded here as already
    // expired, so that it does not count as a replay either)...
    assert!(a.remember_nonce(&scope, "n1", T, T).await.unwrap());
    // ... while node A refuses it from memory.
    assert!(!node_a.remember_nonce(&scope, "n1", T + 600).await.unwrap());
}
