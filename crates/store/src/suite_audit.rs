//! The audit trail on a real back end: an event is written with its change or not at all,
//! operations' ends are counted on their request's event, a refusal merges into its
//! request's event (in a batch of refusals too), lookups filter on indexes and page,
//! accounts see only their own events, and retention deletes by age and by count.

use crate::suite::{instance, key, new_op};
use keyplane_core::account::Account;
use keyplane_core::audit::{
    AuditAttribute, AuditEvent, AuditQuery, AuditResource, Outcome, RequestMeta,
};
use keyplane_core::instance::{OpKind, OpState};
use keyplane_core::keypair::Namespace;
use keyplane_core::store::Store;

/// Run the scenarios (last: it drains the operation queue).
pub(crate) async fn run(store: &dyn Store) {
    let a = Account::generate("suite-audit-a", false, 96);
    let b = Account::generate("suite-audit-b", false, 96);
    store.insert_account(&a).await.unwrap();
    store.insert_account(&b).await.unwrap();
    changes_carry_their_events(store, &a, &b).await;
    operations_settle_their_events(store, &a).await;
    refusals_merge_and_filter(store, &a).await;
    batches_of_refusals(store, &a).await;
    paging(store, &b).await;
    retention(store).await;
}

/// An event of `account`, request `request_id`, `action` at `at`, with no resources.
pub(crate) fn event(account: &Account, request_id: &str, action: &str, at: i64) -> AuditEvent {
    AuditEvent {
        seq: 0,
        event_id: format!("ev-{request_id}"),
        account_id: Some(account.id.clone()),
        at,
        request: RequestMeta {
            dialect: "cvm".into(),
            action: action.into(),
            request_id: request_id.into(),
            credential_id: account.secret_id.clone(),
            source_ip: "127.0.0.7".into(),
            region: "ap-guangzhou".into(),
        },
        read_only: false,
        resources: vec![],
        error_code: None,
        error_message: None,
        ops_total: 0,
        ops_pending: 0,
        ops_failed: 0,
        op_error: None,
    }
}

fn of(account: &Account, attributes: Vec<AuditAttribute>) -> AuditQuery {
    AuditQuery {
        account_id: Some(account.id.clone()),
        attributes,
        ..AuditQuery::default()
    }
}

async fn one(store: &dyn Store, q: AuditQuery) -> Option<AuditEvent> {
    let mut page = store.query_events(&q).await.unwrap();
    assert!(page.events.len() <= 1, "{:?}", page.events);
    page.events.pop()
}

async fn changes_carry_their_events(store: &dyn Store, a: &Account, b: &Account) {
    let k = key(a, Namespace::Cvm, "audited", 2_000);
    let mut ev = event(a, "req-audit-import", "ImportKeyPair", 2_000);
    ev.resources = vec![AuditResource::key_pair(&k.id, &k.name)];
    store.insert_key_pair(&k, 100, Some(&ev)).await.unwrap();
    let found = one(store, of(a, vec![AuditAttribute::ResourceId(k.id.clone())]))
        .await
        .expect("the import's event");
    assert_eq!(found.request, ev.request);
    assert_eq!(found.resources, ev.resources);
    assert_eq!(found.outcome(), Outcome::Success);
    assert!(found.seq > 0);
    // Found by name too, and not by another account.
    let by_name = of(a, vec![AuditAttribute::ResourceName("audited".into())]);
    assert_eq!(one(store, by_name).await.map(|e| e.seq), Some(found.seq));
    let theirs = of(b, vec![AuditAttribute::ResourceId(k.id.clone())]);
    assert_eq!(one(store, theirs).await, None);

    // A write that fails records nothing: the same name again is refused by the store.
    let dup = key(a, Namespace::Cvm, "audited", 2_001);
    let ev2 = event(a, "req-audit-dup", "ImportKeyPair", 2_001);
    assert!(store.insert_key_pair(&dup, 100, Some(&ev2)).await.is_err());
    let rid = of(a, vec![AuditAttribute::RequestId("req-audit-dup".into())]);
    assert_eq!(one(store, rid).await, None);

    // Deleting, renaming: each write carries its own.
    let ev3 = event(a, "req-audit-rename", "ModifyKeyPairAttribute", 2_002);
    store
        .update_key_pair(
            &a.id,
            Namespace::Cvm,
            &k.id,
            Some("renamed"),
            None,
            Some(&ev3),
        )
        .await
        .unwrap();
    let ev4 = event(a, "req-audit-delete", "DeleteKeyPairs", 2_003);
    store
        .delete_key_pairs(
            &a.id,
            Namespace::Cvm,
            std::slice::from_ref(&k.id),
            Some(&ev4),
        )
        .await
        .unwrap();
    for rid in ["req-audit-rename", "req-audit-delete"] {
        let q = of(a, vec![AuditAttribute::RequestId(rid.into())]);
        assert!(one(store, q).await.is_some(), "{rid}");
    }
}

async fn operations_settle_their_events(store: &dyn Store, a: &Account) {
    let (i1, i2) = (instance(a, 7000, &[], 2_010), instance(a, 7001, &[], 2_010));
    let launch = event(a, "req-audit-launch", "RunInstances", 2_010);
    store
        .insert_instances(&[i1.clone(), i2.clone()], &[], Some(&launch))
        .await
        .unwrap();
    let mut ops = vec![
        new_op(
            &i1,
            "StopInstances",
            OpKind::Stop { force: true },
            None,
            2_011,
        ),
        new_op(
            &i2,
            "StopInstances",
            OpKind::Stop { force: true },
            None,
            2_011,
        ),
    ];
    for op in &mut ops {
        op.request_id = "req-audit-stop".into();
    }
    let mut stop = event(a, "req-audit-stop", "StopInstances", 2_011);
    stop.resources = vec![
        AuditResource::instance(&i1.id),
        AuditResource::instance(&i2.id),
    ];
    (stop.ops_total, stop.ops_pending) = (2, 2);
    store.submit_operations(&ops, Some(&stop)).await.unwrap();
    let q = || of(a, vec![AuditAttribute::RequestId("req-audit-stop".into())]);
    assert_eq!(one(store, q()).await.unwrap().outcome(), Outcome::Operating);
    // Drain the queue: ours end one SUCCESS and one FAILED (any other is left finished).
    let mut ours = 0;
    while let Some(op) = store.claim_operation("audit", 9_000, 9_001).await.unwrap() {
        let (state, error) = if op.request_id != "req-audit-stop" {
            (OpState::Success, None)
        } else if ours == 0 {
            ours += 1;
            (OpState::Success, None)
        } else {
            ours += 1;
            (OpState::Failed, Some("the sandbox would not stop"))
        };
        store.finish_operation(op.id, state, error).await.unwrap();
        if op.request_id == "req-audit-stop" && ours == 1 {
            let e = one(store, q()).await.unwrap();
            assert_eq!((e.ops_pending, e.outcome()), (1, Outcome::Operating));
            // Finishing the same operation twice counts once.
            store.finish_operation(op.id, state, error).await.unwrap();
            assert_eq!(one(store, q()).await.unwrap().ops_pending, 1);
        }
    }
    assert_eq!(ours, 2);
    let e = one(store, q()).await.unwrap();
    assert_eq!(e.outcome(), Outcome::Failed);
    assert_eq!(e.op_error.as_deref(), Some("the sandbox would not stop"));
    assert_eq!((e.ops_total, e.ops_failed), (2, 1));
    let by_instance = of(a, vec![AuditAttribute::ResourceId(i2.id.clone())]);
    let actions: Vec<String> = store
        .query_events(&by_instance)
        .await
        .unwrap()
        .events
        .into_iter()
        .map(|e| e.request.action)
        .collect();
    assert_eq!(actions, vec!["StopInstances"]);
}

async fn refusals_merge_and_filter(store: &dyn Store, a: &Account) {
    // A request that changed something and was then refused is one event.
    let i = instance(a, 7002, &[], 2_020);
    let mut made = event(a, "req-audit-mixed", "CreateInstance", 2_020);
    made.resources = vec![AuditResource::instance(&i.id)];
    store
        .insert_instances(std::slice::from_ref(&i), &[], Some(&made))
        .await
        .unwrap();
    let mut refused = event(a, "req-audit-mixed", "CreateInstance", 2_021);
    refused.event_id = "ev-other".into();
    refused.error_code = Some("InternalError".into());
    refused.error_message = Some("stop failed".into());
    store.record_events(vec![refused]).await.unwrap();
    let q = of(a, vec![AuditAttribute::RequestId("req-audit-mixed".into())]);
    let e = one(store, q).await.unwrap();
    assert_eq!(e.event_id, "ev-req-audit-mixed");
    assert_eq!(e.outcome(), Outcome::Refused("InternalError".into()));
    assert_eq!(e.resources, made.resources);

    // A refusal of no account, and filters on each attribute.
    let mut anonymous = event(a, "req-audit-anon", "DescribeKeyPairs", 2_022);
    anonymous.account_id = None;
    anonymous.read_only = true;
    anonymous.request.credential_id = "AKIDunknown".into();
    anonymous.request.source_ip = "127.0.0.99".into();
    anonymous.error_code = Some("AuthFailure.SecretIdNotFound".into());
    store.record_events(vec![anonymous]).await.unwrap();
    let mine = of(a, vec![AuditAttribute::CredentialId("AKIDunknown".into())]);
    assert_eq!(one(store, mine).await, None);
    let everyone = |attributes| AuditQuery {
        attributes,
        ..AuditQuery::default()
    };
    for attr in [
        AuditAttribute::CredentialId("AKIDunknown".into()),
        AuditAttribute::SourceIp("127.0.0.99".into()),
        AuditAttribute::ErrorCode("AuthFailure.SecretIdNotFound".into()),
        AuditAttribute::EventId("ev-req-audit-anon".into()),
    ] {
        let found = one(store, everyone(vec![attr.clone()])).await;
        assert_eq!(
            found.map(|e| e.request.request_id),
            Some("req-audit-anon".into()),
            "{attr:?}"
        );
    }
    let refused = store
        .query_events(&everyone(vec![AuditAttribute::Refused(true)]))
        .await
        .unwrap();
    let ids: Vec<&str> = refused
        .events
        .iter()
        .map(|e| e.request.request_id.as_str())
        .collect();
    assert_eq!(ids, vec!["req-audit-anon", "req-audit-mixed"]);
    let accepted = store
        .query_events(&everyone(vec![AuditAttribute::Refused(false)]))
        .await
        .unwrap();
    assert!(accepted.events.iter().all(|e| e.error_code.is_none()));
    assert!(!accepted.events.is_empty());
    let reads = store
        .query_events(&everyone(vec![AuditAttribute::ReadOnly(true)]))
        .await
        .unwrap();
    assert!(reads.events.iter().all(|e| e.read_only));
    assert!(reads
        .events
        .iter()
        .any(|e| e.request.request_id == "req-audit-anon"));
    // The dialects bound what is found: one of those named, none when none are.
    let mut legacy = event(a, "req-audit-legacy", "BindInstanceKey", 2_022);
    legacy.request.dialect = "legacy".into();
    store.record_events(vec![legacy]).await.unwrap();
    let in_dialects = |names: &[&str]| {
        let names = names.iter().map(|n| n.to_string()).collect();
        of(
            a,
            vec![
                AuditAttribute::Dialects(names),
                AuditAttribute::EventName("BindInstanceKey".into()),
            ],
        )
    };
    let found = one(store, in_dialects(&["cvm", "legacy"])).await;
    assert_eq!(found.map(|e| e.request.dialect), Some("legacy".into()));
    assert_eq!(one(store, in_dialects(&["ecs", "cvm"])).await, None);
    assert_eq!(one(store, in_dialects(&[])).await, None);
    // The time range bounds what is found.
    let late = AuditQuery {
        start: 2_022,
        end: 2_022,
        ..everyone(vec![])
    };
    let found = store.query_events(&late).await.unwrap();
    assert!(found.events.iter().all(|e| e.at == 2_022), "{found:?}");
}

/// A batch of refusals (as a node's refusal log writes them), one of which, in the middle, is
/// of a request that changed something: each other refusal is an event of its own with its
/// own resources, and that one merges into the change's event.
async fn batches_of_refusals(store: &dyn Store, a: &Account) {
    let k = key(a, Namespace::Cvm, "batched", 2_500);
    let mut change = event(a, "req-batch-change", "ImportKeyPair", 2_500);
    change.resources = vec![AuditResource::key_pair(&k.id, &k.name)];
    store.insert_key_pair(&k, 100, Some(&change)).await.unwrap();
    let mut batch: Vec<AuditEvent> = (0..69)
        .map(|n| {
            let mut e = event(a, &format!("req-batch-{n}"), "BatchRefused", 2_501 + n);
            e.error_code = Some("InvalidPublicKey.Malformed".into());
            if n % 3 == 0 {
                e.resources = vec![AuditResource::instance(&format!("ins-batch-{n}"))];
            }
            e
        })
        .collect();
    let mut late = event(a, "req-batch-change", "ImportKeyPair", 2_600);
    late.event_id = "ev-late".into();
    late.error_code = Some("LimitExceeded".into());
    late.resources = vec![AuditResource::instance("ins-merged")];
    batch[40] = late;
    store.record_events(batch).await.unwrap();
    let q = AuditQuery {
        limit: 100,
        ascending: true,
        ..of(a, vec![AuditAttribute::EventName("BatchRefused".into())])
    };
    let page = store.query_events(&q).await.unwrap();
    assert_eq!(page.total, 68);
    for e in &page.events {
        let n: i64 = e.request.request_id["req-batch-".len()..].parse().unwrap();
        assert_eq!(e.at, 2_501 + n);
        assert_eq!(e.event_id, format!("ev-req-batch-{n}"));
        let named: Vec<&str> = e.resources.iter().map(|r| r.id.as_str()).collect();
        let expected = format!("ins-batch-{n}");
        assert_eq!(
            named,
            if n % 3 == 0 {
                vec![expected.as_str()]
            } else {
                vec![]
            }
        );
    }
    let q = of(
        a,
        vec![AuditAttribute::RequestId("req-batch-change".into())],
    );
    let merged = one(store, q).await.expect("the change's event");
    assert_eq!(merged.event_id, "ev-req-batch-change");
    assert_eq!(merged.outcome(), Outcome::Refused("LimitExceeded".into()));
    let ids: Vec<&str> = merged.resources.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, vec!["ins-merged", k.id.as_str()]);
}

async fn paging(store: &dyn Store, b: &Account) {
    for n in 0..5 {
        let k = key(b, Namespace::Cvm, &format!("page{n}"), 3_000 + n);
        let mut ev = event(b, &format!("req-audit-page{n}"), "CreateKeyPair", 3_000 + n);
        ev.resources = vec![AuditResource::key_pair(&k.id, &k.name)];
        store.insert_key_pair(&k, 100, Some(&ev)).await.unwrap();
    }
    let mut q = AuditQuery {
        limit: 2,
        ..of(b, vec![AuditAttribute::EventName("CreateKeyPair".into())])
    };
    let mut seen = Vec::new();
    loop {
        let page = store.query_events(&q).await.unwrap();
        assert_eq!(page.total, 5);
        seen.extend(page.events.iter().map(|e| e.at));
        match page.events.last() {
            Some(last) if page.more => q.after_seq = Some(last.seq),
            _ => break,
        }
    }
    assert_eq!(seen, vec![3_004, 3_003, 3_002, 3_001, 3_000]);
    q.ascending = true;
    q.after_seq = None;
    q.limit = 50;
    let up: Vec<i64> = store
        .query_events(&q)
        .await
        .unwrap()
        .events
        .iter()
        .map(|e| e.at)
        .collect();
    assert_eq!(up, vec![3_000, 3_001, 3_002, 3_003, 3_004]);
}

async fn retention(store: &dyn Store) {
    let all = AuditQuery {
        limit: 10_000,
        ..AuditQuery::default()
    };
    let before = store.query_events(&all).await.unwrap().total;
    assert!(before > 6, "{before}");
    // By age: everything before 3_000 goes, with its resources.
    let gone = store.prune_events(3_000, u64::MAX).await.unwrap();
    let left = store.query_events(&all).await.unwrap();
    assert_eq!(left.total, before - gone);
    assert!(left.events.iter().all(|e| e.at >= 3_000));
    assert_eq!(left.total, 5);
    // By count: the newest 2 stay.
    assert_eq!(store.prune_events(0, 2).await.unwrap(), 3);
    let left = store.query_events(&all).await.unwrap();
    let at: Vec<i64> = left.events.iter().map(|e| e.at).collect();
    assert_eq!(at, vec![3_004, 3_003]);
    assert_eq!(left.events[0].resources.len(), 1);
    assert_eq!(store.prune_events(0, 2).await.unwrap(), 0);
}
