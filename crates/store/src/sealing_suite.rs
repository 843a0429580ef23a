//! Sealed account secrets on a real back end: the store keeps core's sealed text as it is
//! given, secrets stored in clear by earlier versions are sealed at start (in one
//! transaction), and a wrong master key is refused rather than read as garbage.

use keyplane_core::account::Account;
use keyplane_core::sealing::{is_sealed, KeyCheckError, MasterKey};
use keyplane_core::service::SystemClock;
use keyplane_core::store::Store;
use keyplane_core::Core;
use std::sync::Arc;

/// Run the sealing scenario on `store`. It seals every account in the store, so it runs
/// after the scenarios that compare stored secrets with what they inserted.
pub async fn run(store: Arc<dyn Store>) {
    // Two accounts as a version without sealing stored them: secrets in clear.
    let a = Account::generate("suite-seal-a", false, 900);
    let b = Account::generate("suite-seal-b", false, 901);
    store.insert_account(&a).await.unwrap();
    store.insert_account(&b).await.unwrap();
    let key = MasterKey::generate();
    let core = Core::new(store.clone(), Arc::new(SystemClock)).with_master_key(key.clone());
    let report = core.prepare_secrets().await.unwrap();
    assert!(report.sealed_now >= 2, "{report:?}");
    for plain in [&a, &b] {
        let stored = store.account_by_name(&plain.name).await.unwrap().unwrap();
        assert!(is_sealed(stored.secret_key.expose()));
        assert!(is_sealed(stored.access_key_secret.expose()));
        assert!(!stored
            .secret_key
            .expose()
            .contains(plain.secret_key.expose()));
        let opened = core
            .account_by_secret_id(&plain.secret_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(opened.secret_key, plain.secret_key);
        assert_eq!(opened.access_key_secret, plain.access_key_secret);
        let opened = core
            .account_by_access_key_id(&plain.access_key_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(opened.access_key_secret, plain.access_key_secret);
    }
    // Nothing left to seal; new accounts are sealed as they are stored.
    assert_eq!(core.prepare_secrets().await.unwrap().sealed_now, 0);
    let c = core.create_account("suite-seal-c", false).await.unwrap();
    let stored = store
        .account_by_name("suite-seal-c")
        .await
        .unwrap()
        .unwrap();
    assert!(is_sealed(stored.secret_key.expose()));
    assert_ne!(stored.secret_key, c.secret_key);
    let opened = core.account_by_name("suite-seal-c").await.unwrap().unwrap();
    assert_eq!(opened.access_key_secret, c.access_key_secret);

    // Another key: refused at start, and no secret opens with it.
    let wrong =
        Core::new(store.clone(), Arc::new(SystemClock)).with_master_key(MasterKey::generate());
    assert_eq!(wrong.prepare_secrets().await, Err(KeyCheckError::WrongKey));
    assert!(wrong.account_by_name("suite-seal-c").await.is_err());
    // The right key still works after the refusal changed nothing.
    let again = Core::new(store, Arc::new(SystemClock)).with_master_key(key);
    assert_eq!(again.prepare_secrets().await.unwrap().sealed_now, 0);
}
