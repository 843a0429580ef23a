//! The storage scenario suite: every back end runs exactly this.

use keyplane_core::account::Account;
use keyplane_core::instance::{
    HostKind, Instance, InstanceState, NewOperation, OpKind, OpState, OsType,
};
use keyplane_core::keypair::{KeyPair, Namespace};
use keyplane_core::service::{KeyPairFilter, KeyPairPage, KeyPairQuery};
use keyplane_core::store::{Conflict, Store, StoreError};
use std::sync::Arc;

pub(crate) fn key(account: &Account, ns: Namespace, name: &str, at: i64) -> KeyPair {
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
    instances(&*store).await;
    operations(&*store).await;
    bindings(&*store).await;
    sandbox_affinity(&*store).await;
    client_tokens(&*store).await;
    crate::suite_attributes::run(&*store).await;
    instance_counts(&*store).await;
    crate::suite_console::run(store.clone()).await;
    crate::suite_audit::run(&*store).await;
    queries(&*store).await;
    crate::suite_queries::run(&*store).await;
    crate::suite_credentials::run(&*store).await;
    crate::sealing_suite::run(store).await;
}

/// Counts by namespace and state, as metrics read them.
async fn instance_counts(store: &dyn Store) {
    let count = |all: &[(Namespace, InstanceState, u64)], state| {
        all.iter()
            .find(|(ns, s, _)| *ns == Namespace::Cvm && *s == state)
            .map_or(0, |(_, _, n)| *n)
    };
    let before = store.count_instances_by_state().await.unwrap();
    let a = Account::generate("suite-counts", false, 90);
    store.insert_account(&a).await.unwrap();
    let (i1, i2) = (instance(&a, 5000, &[], 900), instance(&a, 5001, &[], 901));
    store
        .insert_instances(&[i1.clone(), i2], &[], None)
        .await
        .unwrap();
    store
        .set_instance_state(&i1.id, InstanceState::Running)
        .await
        .unwrap();
    let after = store.count_instances_by_state().await.unwrap();
    for (state, added) in [(InstanceState::Running, 1), (InstanceState::Pending, 1)] {
        assert_eq!(
            count(&after, state),
            count(&before, state) + added,
            "{state:?}: {after:?}"
        );
    }
    assert_eq!(
        after.iter().map(|c| c.2).sum::<u64>(),
        before.iter().map(|c| c.2).sum::<u64>() + 2
    );
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
    store.insert_key_pair(&k1, 100, None).await.unwrap();
    store.insert_key_pair(&k2, 100, None).await.unwrap();
    // Same name in another namespace and in another account is fine.
    store
        .insert_key_pair(&key(&a, Namespace::Lighthouse, "k1", 102), 100, None)
        .await
        .unwrap();
    store
        .insert_key_pair(&key(&b, Namespace::Cvm, "k1", 103), 100, None)
        .await
        .unwrap();
    assert_eq!(
        store
            .insert_key_pair(&key(&a, Namespace::Cvm, "k1", 104), 100, None)
            .await,
        Err(StoreError::Conflict(Conflict::KeyPairName))
    );
    let listed = store
        .list_key_pairs(&a.id, Namespace::Cvm, None)
        .await
        .unwrap();
    assert_eq!(listed, vec![k1.clone(), k2.clone()]);

    store
        .update_key_pair(&a.id, Namespace::Cvm, &k1.id, Some("renamed"), None, None)
        .await
        .unwrap();
    assert_eq!(
        store
            .update_key_pair(&b.id, Namespace::Cvm, &k1.id, Some("x"), None, None)
            .await,
        Err(StoreError::NotFound(k1.id.clone())),
        "another account cannot touch the key"
    );
    assert_eq!(
        store
            .update_key_pair(&a.id, Namespace::Cvm, &k1.id, Some("k2"), None, None)
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
            None,
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
        .delete_key_pairs(&b.id, Namespace::Cvm, std::slice::from_ref(&k1.id), None)
        .await
        .is_err());
    store
        .delete_key_pairs(&a.id, Namespace::Cvm, &[k1.id.clone(), k2.id.clone()], None)
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

/// A record-only (Windows) instance at `127.2.0.n`, with `keys` bound and in effect.
pub(crate) fn instance(account: &Account, n: u32, keys: &[&str], at: i64) -> Instance {
    let (prefix, len) = Namespace::Cvm.instance_id_shape();
    let keys: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
    Instance {
        id: keyplane_core::ids::new_id(prefix, len),
        account_id: account.id.clone(),
        namespace: Namespace::Cvm,
        region: "ap-guangzhou".into(),
        zone: "ap-guangzhou-3".into(),
        name: format!("vm{n}"),
        host_name: format!("host{n}"),
        image_id: "img-kpwin22x".into(),
        os: OsType::Windows,
        os_name: "Windows Server 2022".into(),
        instance_type: "S5.SMALL2".into(),
        state: InstanceState::Pending,
        host: HostKind::Record,
        private_ip: format!("127.2.{}.{}", n / 250, n % 250 + 1),
        ssh_port: 22,
        password_hash: None,
        key_ids: keys.clone(),
        effective_key_ids: keys,
        desired_generation: 1,
        applied_generation: 0,
        latest_operation: None,
        latest_operation_state: None,
        latest_operation_request_id: None,
        latest_operation_error: None,
        created_at: at,
    }
}

/// An operation on `inst`.
pub(crate) fn new_op(
    inst: &Instance,
    action: &str,
    kind: OpKind,
    new_state: Option<InstanceState>,
    at: i64,
) -> NewOperation {
    NewOperation {
        account_id: inst.account_id.clone(),
        instance_id: inst.id.clone(),
        action: action.into(),
        request_id: format!("req-{action}-{}-{at}", inst.id),
        kind,
        new_state,
        state_before: Some(inst.state),
        created_at: at,
    }
}

async fn get(store: &dyn Store, id: &str) -> Instance {
    store.get_instance(id).await.unwrap().expect("instance")
}

async fn instances(store: &dyn Store) {
    let a = Account::generate("suite-inst-a", false, 30);
    let b = Account::generate("suite-inst-b", false, 31);
    store.insert_account(&a).await.unwrap();
    store.insert_account(&b).await.unwrap();
    let k1 = key(&a, Namespace::Cvm, "ik1", 300);
    store.insert_key_pair(&k1, 100, None).await.unwrap();
    let i1 = instance(&a, 1, &[&k1.id], 310);
    let i2 = instance(&a, 2, &[], 311);
    let ops = [
        new_op(
            &i1,
            "RunInstances",
            OpKind::Create {
                user_data: None,
                then_stop: false,
            },
            None,
            310,
        ),
        new_op(
            &i2,
            "RunInstances",
            OpKind::Create {
                user_data: None,
                then_stop: false,
            },
            None,
            311,
        ),
    ];
    store
        .insert_instances(&[i1.clone(), i2.clone()], &ops, None)
        .await
        .unwrap();

    // The address is unique, and a batch is recorded all or none.
    let i3 = instance(&a, 3, &[], 312);
    let mut taken = instance(&a, 1, &[], 312);
    taken.id = "ins-taken001".into();
    assert_eq!(
        store
            .insert_instances(&[i3.clone(), taken], &[], None)
            .await,
        Err(StoreError::Conflict(Conflict::Address))
    );
    assert!(store.get_instance(&i3.id).await.unwrap().is_none());
    // Whatever the port, and whichever account asks.
    let b = Account::generate("suite-instances-other", false, 301);
    store.insert_account(&b).await.unwrap();
    let mut other_port = instance(&b, 1, &[], 312);
    other_port.id = "ins-taken002".into();
    other_port.ssh_port = 2222;
    assert_eq!(
        store.insert_instances(&[other_port], &[], None).await,
        Err(StoreError::Conflict(Conflict::Address))
    );

    let listed = store.list_instances(&a.id, Namespace::Cvm).await.unwrap();
    assert_eq!(
        listed.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(),
        [i1.id.as_str(), i2.id.as_str()]
    );
    let got = &listed[0];
    assert_eq!(got.host_name, "host1");
    assert_eq!(got.key_ids, vec![k1.id.clone()]);
    assert_eq!(got.effective_key_ids, vec![k1.id.clone()]);
    assert_eq!(got.latest_operation.as_deref(), Some("RunInstances"));
    assert_eq!(got.latest_operation_state, Some(OpState::Operating));
    assert_eq!(
        got.latest_operation_request_id,
        Some(ops[0].request_id.clone())
    );
    assert_eq!(
        (got.os, got.host, got.ssh_port),
        (OsType::Windows, HostKind::Record, 22)
    );
    assert_eq!(get(store, &i2.id).await.key_ids, Vec::<String>::new());
    assert!(store
        .list_instances(&b.id, Namespace::Cvm)
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .list_instances(&a.id, Namespace::Lighthouse)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(store.all_instances().await.unwrap().len(), 2);

    // Key pairs name the instances they are bound to.
    let keys = store
        .list_key_pairs(&a.id, Namespace::Cvm, None)
        .await
        .unwrap();
    assert_eq!(keys[0].associated_instance_ids, vec![i1.id.clone()]);

    // One operation in progress per instance; a rejected batch records nothing.
    let stop = |i: &Instance| {
        new_op(
            i,
            "StopInstances",
            OpKind::Stop { force: true },
            Some(InstanceState::Stopping),
            320,
        )
    };
    assert_eq!(
        store.submit_operations(&[stop(&i1)], None).await,
        Err(StoreError::Conflict(Conflict::InstanceBusy))
    );
    assert_eq!(get(store, &i1.id).await.state, InstanceState::Pending);
    let mut ghost = stop(&i1);
    ghost.instance_id = "ins-none0000".into();
    assert_eq!(
        store.submit_operations(&[ghost], None).await,
        Err(StoreError::NotFound("ins-none0000".into()))
    );
}

async fn operations(store: &dyn Store) {
    let a = Account::generate("suite-ops", false, 40);
    store.insert_account(&a).await.unwrap();
    let i1 = instance(&a, 11, &[], 400);
    let i2 = instance(&a, 12, &[], 401);
    let create = |i: &Instance, at| {
        new_op(
            i,
            "RunInstances",
            OpKind::Create {
                user_data: None,
                then_stop: false,
            },
            None,
            at,
        )
    };
    store
        .insert_instances(
            &[i1.clone(), i2.clone()],
            &[create(&i1, 400), create(&i2, 401)],
            None,
        )
        .await
        .unwrap();
    // Drain what earlier scenarios left open, so the claims below are ours.
    while let Some(op) = store.claim_operation("drain", 1_000, 1_000).await.unwrap() {
        if op.instance_id == i1.id || op.instance_id == i2.id {
            store
                .finish_operation(op.id, OpState::Success, None)
                .await
                .unwrap();
            continue;
        }
        store
            .finish_operation(op.id, OpState::Failed, Some("drained"))
            .await
            .unwrap();
    }
    assert_eq!(
        get(store, &i1.id).await.latest_operation_state,
        Some(OpState::Success)
    );

    // Oldest first; a claimed operation is not handed out again until its lease lapses.
    let stop = OpKind::Stop { force: true };
    let stopping = Some(InstanceState::Stopping);
    store
        .submit_operations(
            &[
                new_op(&i1, "StopInstances", stop.clone(), stopping, 410),
                new_op(&i2, "StopInstances", stop.clone(), stopping, 410),
            ],
            None,
        )
        .await
        .unwrap();
    assert_eq!(get(store, &i2.id).await.state, InstanceState::Stopping);
    assert_eq!(
        store
            .submit_operations(
                &[new_op(&i2, "StartInstances", OpKind::Start, None, 411)],
                None
            )
            .await,
        Err(StoreError::Conflict(Conflict::InstanceBusy))
    );
    let op1 = store
        .claim_operation("w1", 2_000, 2_010)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (op1.instance_id.as_str(), &op1.kind),
        (i1.id.as_str(), &stop)
    );
    assert_eq!((op1.step, op1.state), (0, OpState::Operating));
    // The state the instance was in before the operation comes back with it.
    assert_eq!(op1.state_before, Some(i1.state));
    let op2 = store
        .claim_operation("w2", 2_000, 2_010)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(op2.instance_id, i2.id);
    assert_eq!(
        store.claim_operation("w3", 2_005, 2_015).await.unwrap(),
        None
    );
    assert!(store.renew_claim(op1.id, "w1", 2_020).await.unwrap());
    assert!(!store.renew_claim(op1.id, "w2", 2_020).await.unwrap());

    // Progress is kept for the next claimant once the lease lapses.
    let mut progressed = op1.clone();
    progressed.step = 2;
    progressed.was_running = true;
    progressed.target_generation = 7;
    store.save_progress(&progressed).await.unwrap();
    let again = store
        .claim_operation("w3", 2_020, 2_030)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.id, op1.id, "the oldest lapsed claim comes first");
    assert_eq!(
        (again.step, again.was_running, again.target_generation),
        (2, true, 7)
    );
    assert!(
        !store.renew_claim(op1.id, "w1", 2_040).await.unwrap(),
        "lost to w3"
    );

    store
        .finish_operation(op1.id, OpState::Success, None)
        .await
        .unwrap();
    store
        .finish_operation(op2.id, OpState::Failed, Some("boom"))
        .await
        .unwrap();
    assert!(!store.renew_claim(op1.id, "w3", 2_040).await.unwrap());
    assert_eq!(
        store.claim_operation("w4", 9_000, 9_010).await.unwrap(),
        None
    );
    let (s1, s2) = (get(store, &i1.id).await, get(store, &i2.id).await);
    assert_eq!(s1.latest_operation_state, Some(OpState::Success));
    assert_eq!(s1.latest_operation.as_deref(), Some("StopInstances"));
    assert_eq!(s2.latest_operation_state, Some(OpState::Failed));
    assert_eq!(s2.latest_operation_error.as_deref(), Some("boom"));

    // Finished: the instance takes a new operation, which clears the old error.
    store
        .submit_operations(
            &[new_op(&i2, "StartInstances", OpKind::Start, None, 420)],
            None,
        )
        .await
        .unwrap();
    let s2 = get(store, &i2.id).await;
    assert_eq!(s2.latest_operation_state, Some(OpState::Operating));
    assert_eq!(s2.latest_operation_error, None);
    let op3 = store
        .claim_operation("w5", 9_000, 9_010)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(op3.kind, OpKind::Start);
    store
        .finish_operation(op3.id, OpState::Success, None)
        .await
        .unwrap();
    store
        .set_instance_state(&i2.id, InstanceState::Running)
        .await
        .unwrap();
    assert_eq!(get(store, &i2.id).await.state, InstanceState::Running);
}

async fn bindings(store: &dyn Store) {
    let a = Account::generate("suite-bind", false, 50);
    store.insert_account(&a).await.unwrap();
    let k1 = key(&a, Namespace::Cvm, "bk1", 500);
    let k2 = key(&a, Namespace::Cvm, "bk2", 501);
    store.insert_key_pair(&k1, 100, None).await.unwrap();
    store.insert_key_pair(&k2, 100, None).await.unwrap();
    let inst = instance(&a, 21, &[&k1.id], 502);
    store
        .insert_instances(std::slice::from_ref(&inst), &[], None)
        .await
        .unwrap();
    let id = inst.id.as_str();
    let (both, only_k2) = (vec![k1.id.clone(), k2.id.clone()], vec![k2.id.clone()]);

    // Bound keys alone do not change what is in effect.
    assert_eq!(store.set_bindings(id, &both, None).await.unwrap(), 1);
    let got = get(store, id).await;
    assert_eq!(
        (got.key_ids, got.effective_key_ids),
        (both.clone(), vec![k1.id.clone()])
    );
    // The generation moves only when the effective keys change.
    assert_eq!(store.set_bindings(id, &both, Some(&both)).await.unwrap(), 2);
    assert_eq!(store.set_bindings(id, &both, Some(&both)).await.unwrap(), 2);
    assert_eq!(get(store, id).await.desired_generation, 2);
    // Deferred (ECS): recorded now, in effect at activation.
    assert_eq!(store.set_bindings(id, &only_k2, None).await.unwrap(), 2);
    assert_eq!(store.activate_bindings(id).await.unwrap(), 3);
    assert_eq!(store.activate_bindings(id).await.unwrap(), 3);
    assert_eq!(get(store, id).await.effective_key_ids, only_k2);
    assert_eq!(
        store.set_bindings("ins-none0000", &[], None).await,
        Err(StoreError::NotFound("ins-none0000".into()))
    );

    // Only a generation handed to the agent can be reported applied.
    assert_eq!(store.served_generation(id).await.unwrap(), Some(0));
    assert!(!store.set_applied_generation(id, 1).await.unwrap());
    assert!(!store.set_applied_generation(id, -1).await.unwrap());
    assert_eq!(get(store, id).await.applied_generation, 0);
    store.record_served_generation(id, 3).await.unwrap();
    store.record_served_generation(id, 2).await.unwrap();
    assert_eq!(store.served_generation(id).await.unwrap(), Some(3));
    assert!(!store.set_applied_generation(id, 1003).await.unwrap());
    assert_eq!(get(store, id).await.applied_generation, 0);
    // The applied generation never goes back.
    assert!(store.set_applied_generation(id, 3).await.unwrap());
    assert!(store.set_applied_generation(id, 1).await.unwrap());
    assert_eq!(get(store, id).await.applied_generation, 3);
    assert_eq!(store.served_generation("ins-none0000").await.unwrap(), None);
    assert!(!store
        .set_applied_generation("ins-none0000", 0)
        .await
        .unwrap());

    let associated = |keys: Vec<KeyPair>| -> Vec<Vec<String>> {
        keys.into_iter()
            .map(|k| k.associated_instance_ids)
            .collect()
    };
    let keys = store
        .list_key_pairs(&a.id, Namespace::Cvm, None)
        .await
        .unwrap();
    assert_eq!(associated(keys), vec![vec![], vec![id.to_string()]]);

    store.delete_instance(id).await.unwrap();
    assert!(store.get_instance(id).await.unwrap().is_none());
    let keys = store
        .list_key_pairs(&a.id, Namespace::Cvm, None)
        .await
        .unwrap();
    assert_eq!(associated(keys), vec![Vec::<String>::new(), vec![]]);
    store
        .delete_key_pairs(&a.id, Namespace::Cvm, &[k1.id.clone(), k2.id.clone()], None)
        .await
        .unwrap();
}

/// A node claims operations on records and on the sandbox instances it holds only; a sandbox
/// instance's first claim makes the claiming node its owner.
async fn sandbox_affinity(store: &dyn Store) {
    use keyplane_core::store::Claimable;
    let a = Account::generate("suite-affinity", false, 50);
    store.insert_account(&a).await.unwrap();
    let mut sandbox = instance(&a, 41, &[], 500);
    sandbox.host = HostKind::Sandbox;
    sandbox.os = OsType::Linux;
    let record = instance(&a, 42, &[], 501);
    // Finish what earlier scenarios left open, so the claims below see only ours.
    while let Some(op) = store.claim_operation("drain", 5_000, 5_001).await.unwrap() {
        store
            .finish_operation(op.id, OpState::Success, None)
            .await
            .unwrap();
    }
    let create = |i: &Instance, at| {
        new_op(
            i,
            "RunInstances",
            OpKind::Create {
                user_data: None,
                then_stop: false,
            },
            None,
            at,
        )
    };
    store
        .insert_instances(
            &[sandbox.clone(), record.clone()],
            &[create(&sandbox, 500), create(&record, 501)],
            None,
        )
        .await
        .unwrap();
    let now = 6_000;
    let no_sandbox = Claimable::Node {
        sandbox_owner: None,
        adopt_unowned_before: Some(499),
    };
    let first = store
        .claim_operation_scoped("w", now, now + 10, no_sandbox)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        first.instance_id, record.id,
        "a node without a sandbox takes the record's operation"
    );
    assert_eq!(
        store
            .claim_operation_scoped("w", now, now + 10, no_sandbox)
            .await
            .unwrap(),
        None,
        "but never a sandbox instance's"
    );
    let n1 = Claimable::Node {
        sandbox_owner: Some("node-1"),
        adopt_unowned_before: None,
    };
    let n2 = Claimable::Node {
        sandbox_owner: Some("node-2"),
        adopt_unowned_before: None,
    };
    let op = store
        .claim_operation_scoped("w1", now, now + 10, n1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(op.instance_id, sandbox.id);
    store
        .finish_operation(op.id, OpState::Success, None)
        .await
        .unwrap();
    store
        .finish_operation(first.id, OpState::Success, None)
        .await
        .unwrap();
    store
        .submit_operations(
            &[new_op(
                &sandbox,
                "StopInstances",
                OpKind::Stop { force: false },
                None,
                now,
            )],
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .claim_operation_scoped("w2", now, now + 10, n2)
            .await
            .unwrap(),
        None,
        "another node's sandbox is not ours to operate"
    );
    let op = store
        .claim_operation_scoped("w1", now, now + 10, n1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(op.instance_id, sandbox.id, "its owner takes it");
    store
        .finish_operation(op.id, OpState::Success, None)
        .await
        .unwrap();

    // A launch no node with a sandbox took in time is taken by a node without one (which
    // fails it); an owned instance's operations never are.
    let mut orphan = instance(&a, 43, &[], 700);
    orphan.host = HostKind::Sandbox;
    orphan.os = OsType::Linux;
    store
        .insert_instances(&[orphan.clone()], &[create(&orphan, 700)], None)
        .await
        .unwrap();
    let late = |before| Claimable::Node {
        sandbox_owner: None,
        adopt_unowned_before: Some(before),
    };
    let early = store.claim_operation_scoped("w3", now, now + 10, late(699));
    assert_eq!(early.await.unwrap(), None, "too early to adopt");
    let op = store
        .claim_operation_scoped("w3", now, now + 10, late(700))
        .await
        .unwrap()
        .expect("the orphaned launch is adopted");
    assert_eq!(op.instance_id, orphan.id);
    store
        .finish_operation(op.id, OpState::Failed, Some("no sandbox"))
        .await
        .unwrap();
    store
        .submit_operations(
            &[new_op(&sandbox, "StartInstances", OpKind::Start, None, now)],
            None,
        )
        .await
        .unwrap();
    let owned = store.claim_operation_scoped("w3", now, now + 10, late(i64::MAX));
    assert_eq!(
        owned.await.unwrap(),
        None,
        "an owned sandbox is never adopted"
    );
    let op = store.claim_operation_scoped("w1", now, now + 10, n1).await;
    store
        .finish_operation(op.unwrap().unwrap().id, OpState::Success, None)
        .await
        .unwrap();
}

/// A launch under a client token happens once; the token is per account.
async fn client_tokens(store: &dyn Store) {
    let a = Account::generate("suite-tokens-a", false, 60);
    let b = Account::generate("suite-tokens-b", false, 61);
    store.insert_account(&a).await.unwrap();
    store.insert_account(&b).await.unwrap();
    let first = vec![instance(&a, 51, &[], 600), instance(&a, 52, &[], 600)];
    let ids = store
        .insert_instances_once(&first, &[], "tok-1", None)
        .await
        .unwrap();
    assert_eq!(ids, vec![first[0].id.clone(), first[1].id.clone()]);
    let again = vec![instance(&a, 53, &[], 601)];
    assert_eq!(
        store
            .insert_instances_once(&again, &[], "tok-1", None)
            .await
            .unwrap(),
        ids,
        "the same token returns the first launch"
    );
    assert!(
        store.get_instance(&again[0].id).await.unwrap().is_none(),
        "and creates nothing"
    );
    let other = vec![instance(&b, 54, &[], 602)];
    assert_eq!(
        store
            .insert_instances_once(&other, &[], "tok-1", None)
            .await
            .unwrap(),
        vec![other[0].id.clone()],
        "tokens are per account"
    );
}

fn query(ids: Option<&[&KeyPair]>, filters: Vec<KeyPairFilter>) -> KeyPairQuery {
    KeyPairQuery {
        ids: ids.map(|ks| ks.iter().map(|k| k.id.clone()).collect()),
        filters,
        region: None,
        offset: 0,
        limit: 100,
        ..KeyPairQuery::default()
    }
}

fn ids_of(page: &KeyPairPage) -> Vec<String> {
    page.items.iter().map(|k| k.id.clone()).collect()
}

/// The pushed-down reads: what they select, their order, paging and totals, and the order in
/// which an insert's checks answer.
async fn queries(store: &dyn Store) {
    let a = Account::generate("suite-q-a", false, 60);
    let b = Account::generate("suite-q-b", false, 61);
    store.insert_account(&a).await.unwrap();
    store.insert_account(&b).await.unwrap();
    let mut keys = Vec::new();
    for n in 0..7i64 {
        let mut k = key(&a, Namespace::Cvm, &format!("q{n}"), 600 + n / 2);
        k.project_id = n % 3;
        k.tags = vec![
            ("env".into(), format!("e{}", n % 2)),
            (format!("t{n}"), "x".into()),
        ];
        store.insert_key_pair(&k, 100, None).await.unwrap();
        keys.push(k);
    }
    let other = key(&b, Namespace::Cvm, "q0", 600);
    store.insert_key_pair(&other, 100, None).await.unwrap();
    let mut ecs = key(&a, Namespace::Ecs, "q0", 600);
    ecs.region = "cn-hangzhou".into();
    store.insert_key_pair(&ecs, 100, None).await.unwrap();
    let aid = a.id.as_str();
    let run = |q: KeyPairQuery| async move {
        store
            .query_key_pairs(aid, Namespace::Cvm, &q)
            .await
            .unwrap()
    };
    // Everything, oldest first (ties by id), paged, with the total before paging.
    let mut ordered = keys.clone();
    ordered.sort_by(|x, y| (x.created_at, &x.id).cmp(&(y.created_at, &y.id)));
    let by = |f: &dyn Fn(&KeyPair) -> bool| -> Vec<String> {
        ordered
            .iter()
            .filter(|k| f(k))
            .map(|k| k.id.clone())
            .collect()
    };
    let all = run(query(None, vec![])).await;
    assert_eq!(all.total, 7);
    assert_eq!(all.items, ordered);
    let mut page = query(None, vec![]);
    (page.offset, page.limit) = (2, 3);
    let p = run(page.clone()).await;
    assert_eq!((p.total, p.items.as_slice()), (7, &ordered[2..5]));
    page.offset = 6;
    let p = run(page.clone()).await;
    assert_eq!((p.total, p.items.len()), (7, 1));
    page.offset = 10;
    assert_eq!(run(page).await.total, 7, "a page past the end still counts");

    // By ids: only the account's own, unknown ones left out.
    let q = KeyPairQuery {
        ids: Some(vec![
            keys[3].id.clone(),
            other.id.clone(),
            "skey-zzzzzzzz".into(),
            keys[1].id.clone(),
        ]),
        ..query(None, vec![])
    };
    assert_eq!(
        ids_of(&run(q).await),
        vec![keys[1].id.clone(), keys[3].id.clone()]
    );
    assert_eq!(run(query(Some(&[]), vec![])).await.total, 0);

    // Each filter, and filters combined.
    let name = KeyPairFilter::KeyName(vec!["q2".into(), "q4".into(), "nope".into()]);
    assert_eq!(
        ids_of(&run(query(None, vec![name.clone()])).await),
        by(&|k| k.name == "q2" || k.name == "q4")
    );
    let project = KeyPairFilter::ProjectId(vec![1]);
    assert_eq!(
        ids_of(&run(query(None, vec![project.clone()])).await),
        by(&|k| k.project_id == 1)
    );
    assert_eq!(
        ids_of(&run(query(None, vec![name, project])).await),
        by(&|k| k.name == "q4")
    );
    let tag_key = KeyPairFilter::TagKey(vec!["t3".into(), "t4".into()]);
    assert_eq!(
        ids_of(&run(query(None, vec![tag_key])).await),
        vec![keys[3].id.clone(), keys[4].id.clone()]
    );
    let tag_value = KeyPairFilter::TagValue(vec!["e1".into()]);
    assert_eq!(
        ids_of(&run(query(None, vec![tag_value])).await),
        by(&|k| k.tags[0].1 == "e1")
    );
    let tag = KeyPairFilter::Tag {
        key: "env".into(),
        values: vec!["e0".into()],
    };
    assert_eq!(
        ids_of(&run(query(None, vec![tag])).await),
        by(&|k| k.tags[0].1 == "e0")
    );
    let crossed = KeyPairFilter::Tag {
        key: "t3".into(),
        values: vec!["e1".into()],
    };
    assert_eq!(
        run(query(None, vec![crossed])).await.total,
        0,
        "key and value of one tag"
    );
    let fp = KeyPairFilter::Fingerprint(vec![keys[6].fingerprint_sha256.clone()]);
    assert_eq!(
        ids_of(&run(query(None, vec![fp])).await),
        vec![keys[6].id.clone()]
    );
    assert_eq!(
        run(query(None, vec![KeyPairFilter::KeyName(vec![])]))
            .await
            .total,
        0
    );
    for f in [
        KeyPairFilter::ProjectId(vec![0, 2]),
        KeyPairFilter::TagValue(vec!["x".into()]),
        KeyPairFilter::TagKey(vec!["env".into()]),
    ] {
        assert_eq!(
            ids_of(&run(query(None, vec![f.clone()])).await),
            by(&|k| f.matches(k)),
            "{f:?}"
        );
    }

    // Regions: ECS key pairs are regional.
    let regional = |region: &str| KeyPairQuery {
        region: Some(region.into()),
        ..query(None, vec![])
    };
    let q = store
        .query_key_pairs(&a.id, Namespace::Ecs, &regional("cn-hangzhou"))
        .await
        .unwrap();
    assert_eq!(ids_of(&q), vec![ecs.id.clone()]);
    let q = store
        .query_key_pairs(&a.id, Namespace::Ecs, &regional("cn-beijing"))
        .await
        .unwrap();
    assert_eq!(q.total, 0);

    // An insert answers the name first, then the public key, then the quota.
    let mut dup = key(&a, Namespace::Cvm, "q0", 700);
    dup.fingerprint_sha256 = keys[1].fingerprint_sha256.clone();
    assert_eq!(
        store.insert_key_pair(&dup, 1, None).await,
        Err(StoreError::Conflict(Conflict::KeyPairName))
    );
    dup.name = "fresh".into();
    assert_eq!(
        store.insert_key_pair(&dup, 1, None).await,
        Err(StoreError::Conflict(Conflict::PublicKey))
    );
    dup.fingerprint_sha256 = "SHA256:fresh".into();
    assert_eq!(
        store.insert_key_pair(&dup, 7, None).await,
        Err(StoreError::Conflict(Conflict::Quota))
    );
    store.insert_key_pair(&dup, 8, None).await.unwrap();

    // Instances by id, counted, their addresses, and the keys' associations.
    let i1 = instance(&a, 900, &[&keys[0].id], 610);
    let i2 = instance(&a, 901, &[&keys[0].id, &keys[1].id], 611);
    let i3 = instance(&b, 902, &[], 612);
    store
        .insert_instances(&[i1.clone(), i2.clone(), i3.clone()], &[], None)
        .await
        .unwrap();
    let ask = [
        i2.id.clone(),
        i3.id.clone(),
        "ins-zzzzzzzz".into(),
        i1.id.clone(),
    ];
    let found = store
        .instances_by_ids(&a.id, Namespace::Cvm, &ask)
        .await
        .unwrap();
    assert_eq!(
        found.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(),
        vec![i1.id.as_str(), i2.id.as_str()]
    );
    assert_eq!(
        found[1].key_ids,
        vec![keys[0].id.clone(), keys[1].id.clone()]
    );
    assert!(store
        .instances_by_ids(&a.id, Namespace::Lighthouse, &ask)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store.count_instances(&a.id, Namespace::Cvm).await.unwrap(),
        2
    );
    assert_eq!(
        store.count_instances(&b.id, Namespace::Cvm).await.unwrap(),
        1
    );
    assert_eq!(
        store.count_instances(&b.id, Namespace::Ecs).await.unwrap(),
        0
    );
    let mut taken = store
        .taken_addresses(&[
            i3.private_ip.clone(),
            "127.9.9.9".into(),
            i1.private_ip.clone(),
        ])
        .await
        .unwrap();
    taken.sort();
    let mut want = vec![i1.private_ip.clone(), i3.private_ip.clone()];
    want.sort();
    assert_eq!(taken, want);
    let q = run(query(Some(&[&keys[0], &keys[1], &keys[2]]), vec![])).await;
    let assoc = |k: &KeyPair| {
        let found = q.items.iter().find(|f| f.id == k.id).expect("asked for");
        found.associated_instance_ids.clone()
    };
    assert_eq!(assoc(&keys[0]), vec![i1.id.clone(), i2.id.clone()]);
    assert_eq!(assoc(&keys[1]), vec![i2.id.clone()]);
    assert!(assoc(&keys[2]).is_empty());
    for i in [&i1, &i2, &i3] {
        store.delete_instance(&i.id).await.unwrap();
    }
}
