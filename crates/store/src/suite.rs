//! The storage scenario suite: every back end runs exactly this.

use keyplane_core::account::Account;
use keyplane_core::keypair::{KeyPair, Namespace};
use keyplane_core::store::{Conflict, Store, StoreError};
use std::sync::Arc;

fn key(account: &Account, ns: Namespace, name: &str, at: i64) -> KeyPair {
    KeyPair {
        id: ns.new_key_id(),
        account_id: account.id.clone(),
        namespace: ns,
        region: String::new(),
        name: name.into(),
        description: "d".into(),
        project_id: 0,
        public_key: format!("ssh-ed25519 AAAA {name}"),
        fingerprint_sha256: format!("SHA256:{name}-{at}"),
        fingerprint_md5: "00".into(),
        tags: vec![("env".into(), "ci".into())],
        created_at: at,
        associated_instance_ids: vec![],
    }
}

/// Run the whole scenario against `store`, which must be empty.
pub async fn run(store: Arc<dyn Store>) {
    accounts(&*store).await;
    key_pairs(&*store).await;
    nonces(&*store).await;
    settings(&*store).await;
}

async fn accounts(store: &dyn Store) {
    let a = Account::generate("suite-a", true, 10);
    store.insert_account(&a).await.unwrap();
    let dup = Account::generate("suite-a", false, 11);
    assert_eq!(
        store.insert_account(&dup).await,
        Err(StoreError::Conflict(Conflict::AccountName))
    );
    let by_id = store
        .account_by_secret_id(&a.secret_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_id.name, "suite-a");
    assert!(by_id.is_admin);
    let by_ak = store
        .account_by_access_key_id(&a.access_key_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_ak.access_key_secret, a.access_key_secret);
    assert!(store
        .account_by_secret_id("AKIDnone")
        .await
        .unwrap()
        .is_none());
    assert_eq!(store.list_accounts().await.unwrap().len(), 1);
}

async fn key_pairs(store: &dyn Store) {
    let a = Account::generate("suite-kp-a", false, 20);
    let b = Account::generate("suite-kp-b", false, 21);
    store.insert_account(&a).await.unwrap();
    store.insert_account(&b).await.unwrap();
    let k1 = key(&a, Namespace::Cvm, "k1", 100);
    let k2 = key(&a, Namespace::Cvm, "k2", 101);
    store.insert_key_pair(&k1, 100).await.unwrap();
    store.insert_key_pair(&k2, 100).await.unwrap();
    // Same name in another namespace and in another account is fine.
    store
        .insert_key_pair(&key(&a, Namespace::Lighthouse, "k1", 102), 100)
        .await
        .unwrap();
    store
        .insert_key_pair(&key(&b, Namespace::Cvm, "k1", 103), 100)
        .await
        .unwrap();
    assert_eq!(
        store
            .insert_key_pair(&key(&a, Namespace::Cvm, "k1", 104), 100)
            .await,
        Err(StoreError::Conflict(Conflict::KeyPairName))
    );
    let listed = store
        .list_key_pairs(&a.id, Namespace::Cvm, None)
        .await
        .unwrap();
    assert_eq!(listed, vec![k1.clone(), k2.clone()]);

    store
        .update_key_pair(&a.id, Namespace::Cvm, &k1.id, Some("renamed"), None)
        .await
        .unwrap();
    assert_eq!(
        store
            .update_key_pair(&b.id, Namespace::Cvm, &k1.id, Some("x"), None)
            .await,
        Err(StoreError::NotFound(k1.id.clone())),
        "another account cannot touch the key"
    );
    assert_eq!(
        store
            .update_key_pair(&a.id, Namespace::Cvm, &k1.id, Some("k2"), None)
            .await,
        Err(StoreError::Conflict(Conflict::KeyPairName))
    );
    let listed = store
        .list_key_pairs(&a.id, Namespace::Cvm, None)
        .await
        .unwrap();
    assert_eq!(listed[0].name, "renamed");
    assert_eq!(listed[0].description, "d");

    // Delete is all or nothing and scoped to the account.
    let err = store
        .delete_key_pairs(
            &a.id,
            Namespace::Cvm,
            &[k1.id.clone(), "skey-zzzzzzzz".into()],
        )
        .await;
    assert_eq!(err, Err(StoreError::NotFound("skey-zzzzzzzz".into())));
    assert_eq!(
        store
            .list_key_pairs(&a.id, Namespace::Cvm, None)
            .await
            .unwrap()
            .len(),
        2
    );
    assert!(store
        .delete_key_pairs(&b.id, Namespace::Cvm, std::slice::from_ref(&k1.id))
        .await
        .is_err());
    store
        .delete_key_pairs(&a.id, Namespace::Cvm, &[k1.id.clone(), k2.id.clone()])
        .await
        .unwrap();
    assert!(store
        .list_key_pairs(&a.id, Namespace::Cvm, None)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store
            .list_key_pairs(&b.id, Namespace::Cvm, None)
            .await
            .unwrap()
            .len(),
        1
    );
}

async fn settings(store: &dyn Store) {
    assert_eq!(store.setting("k", "first").await.unwrap(), "first");
    assert_eq!(
        store.setting("k", "second").await.unwrap(),
        "first",
        "set once, then kept"
    );
}

async fn nonces(store: &dyn Store) {
    assert!(store.remember_nonce("s", "n1", 100, 10).await.unwrap());
    assert!(!store.remember_nonce("s", "n1", 100, 20).await.unwrap());
    assert!(store.remember_nonce("other", "n1", 100, 20).await.unwrap());
    // After expiry the nonce is forgotten.
    assert!(store.remember_nonce("s", "n1", 300, 100).await.unwrap());
}
