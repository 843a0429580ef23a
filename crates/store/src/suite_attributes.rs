//! Instance attributes changed after launch, on a real back end: a password reset's operation
//! keeps the new password's crypt hash (never a password) across a claim, the instance's hash
//! is replaced on its own, and an instance is renamed.

use crate::suite::{instance, new_op};
use keyplane_core::account::{Account, Secret};
use keyplane_core::instance::{OpKind, OpState};
use keyplane_core::store::{Store, StoreError};

/// Run the scenarios; they claim and finish whatever operations earlier scenarios left open.
pub(crate) async fn run(store: &dyn Store) {
    passwords(store).await;
    names(store).await;
}

async fn names(store: &dyn Store) {
    let a = Account::generate("suite-names", false, 85);
    store.insert_account(&a).await.unwrap();
    let inst = instance(&a, 86, &[], 850);
    store
        .insert_instances(std::slice::from_ref(&inst), &[], None)
        .await
        .unwrap();
    store
        .set_instance_name(&inst.id, "renamed", None)
        .await
        .unwrap();
    let got = store.get_instance(&inst.id).await.unwrap().unwrap();
    assert_eq!(
        (got.name.as_str(), got.host_name.as_str()),
        ("renamed", "host86")
    );
    assert_eq!(
        store.set_instance_name("ins-nothere", "x", None).await,
        Err(StoreError::NotFound("ins-nothere".into()))
    );
}

async fn passwords(store: &dyn Store) {
    let a = Account::generate("suite-passwords", false, 80);
    store.insert_account(&a).await.unwrap();
    let mut inst = instance(&a, 81, &[], 800);
    inst.password_hash = Some(Secret::new("$6$old$hash"));
    store
        .insert_instances(std::slice::from_ref(&inst), &[], None)
        .await
        .unwrap();
    let kind = OpKind::ResetPassword {
        password_hash: Secret::new("$6$new$hash"),
        deferred: false,
        restart: true,
    };
    store
        .submit_operations(
            &[new_op(
                &inst,
                "ResetInstancesPassword",
                kind.clone(),
                None,
                810,
            )],
            None,
        )
        .await
        .unwrap();
    let got = store.get_instance(&inst.id).await.unwrap().unwrap();
    assert_eq!(
        got.latest_operation.as_deref(),
        Some("ResetInstancesPassword")
    );
    assert_eq!(got.latest_operation_state, Some(OpState::Operating));
    // Recording the operation does not change the password yet: the worker does, in its step.
    assert_eq!(got.password_hash, Some(Secret::new("$6$old$hash")));

    let op = loop {
        let op = store
            .claim_operation("pw", 20_000, 20_010)
            .await
            .unwrap()
            .expect("the reset operation is claimable");
        if op.instance_id == inst.id {
            break op;
        }
        store
            .finish_operation(op.id, OpState::Failed, Some("drained"))
            .await
            .unwrap();
    };
    assert_eq!(op.kind, kind);

    store
        .set_password_hash(&inst.id, Some("$6$new$hash"))
        .await
        .unwrap();
    let got = store.get_instance(&inst.id).await.unwrap().unwrap();
    assert_eq!(got.password_hash, Some(Secret::new("$6$new$hash")));
    store.set_password_hash(&inst.id, None).await.unwrap();
    assert!(!store
        .get_instance(&inst.id)
        .await
        .unwrap()
        .unwrap()
        .has_password());
    assert_eq!(
        store.set_password_hash("ins-nothere", Some("$6$x")).await,
        Err(StoreError::NotFound("ins-nothere".into()))
    );
    store
        .finish_operation(op.id, OpState::Success, None)
        .await
        .unwrap();
    let got = store.get_instance(&inst.id).await.unwrap().unwrap();
    assert_eq!(got.latest_operation_state, Some(OpState::Success));
}
