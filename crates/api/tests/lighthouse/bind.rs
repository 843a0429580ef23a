//! AssociateInstancesKeyPairs and DisassociateInstancesKeyPairs: the operations they record,
//! and every rule of seed 002 with its code.

use super::*;

const ASSOCIATE: &str = "AssociateInstancesKeyPairs";
const DISASSOCIATE: &str = "DisassociateInstancesKeyPairs";

fn pair(instance: &str, key: &str) -> Value {
    json!({"InstanceIds": [instance], "KeyIds": [key]})
}

fn with(mut body: Value, extra: Value) -> Value {
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

#[tokio::test]
async fn associating_a_running_instance_leaves_it_stopped() {
    let h = harness().await;
    let k = h.import_key("a", KEY_A).await;
    let id = h.create(json!({})).await.remove(0);
    h.settle(&[(&id, InstanceState::Running)]).await;
    let r = h.ok(ASSOCIATE, pair(&id, &k)).await;
    assert_eq!(r.as_object().unwrap().len(), 1, "only RequestId: {r}");
    let i = h.instance(&id).await;
    assert_eq!(i["LatestOperation"], ASSOCIATE);
    assert_eq!(i["LatestOperationState"], "OPERATING");
    assert_eq!(i["LatestOperationRequestId"], r["RequestId"]);
    // Settled (RUNNING) with a binding still OPERATING: the last operation is unfinished.
    let busy = h.code(ASSOCIATE, pair(&id, &k)).await;
    assert_eq!(busy, "UnsupportedOperation.LatestOperationUnfinished");
    // The worker force-stops, binds, and (OFFLINE, the documented default) does not restart.
    let calls = h.settle(&[(&id, InstanceState::Stopped)]).await;
    assert_eq!(calls, [stop(&id, true), apply(&id, &[KEY_A], false)]);
    assert_eq!(h.instance(&id).await["LatestOperationState"], "SUCCESS");
    // Explicit OFFLINE is the same; ONLINE ends where it began.
    h.ok(DISASSOCIATE, pair(&id, &k)).await;
    h.settle(&[(&id, InstanceState::Stopped)]).await;
    h.started(&[&id]).await;
    h.ok(
        ASSOCIATE,
        with(pair(&id, &k), json!({"AssociateType": "OFFLINE"})),
    )
    .await;
    let calls = h.settle(&[(&id, InstanceState::Stopped)]).await;
    assert_eq!(calls, [stop(&id, true), apply(&id, &[KEY_A], false)]);
    h.ok(DISASSOCIATE, pair(&id, &k)).await;
    h.settle(&[(&id, InstanceState::Stopped)]).await;
    h.started(&[&id]).await;
    h.ok(
        ASSOCIATE,
        with(
            pair(&id, &k),
            json!({"AssociateType": "ONLINE", "Username": "root"}),
        ),
    )
    .await;
    let calls = h.settle(&[(&id, InstanceState::Running)]).await;
    let started = Call::Start(id.clone());
    assert_eq!(
        calls,
        [stop(&id, true), apply(&id, &[KEY_A], false), started]
    );
}

#[tokio::test]
async fn keys_replace_and_unbind() {
    let h = harness().await;
    let (ka, kb) = (
        h.import_key("a", KEY_A).await,
        h.import_key("b", KEY_B).await,
    );
    let id = h.create(json!({})).await.remove(0);
    h.settle(&[(&id, InstanceState::Running)]).await;
    h.stopped(&[&id]).await;
    h.ok(ASSOCIATE, pair(&id, &ka)).await;
    h.settle(&[(&id, InstanceState::Stopped)]).await;
    let i = h.instance(&id).await;
    assert_eq!(i["LoginSettings"]["KeyIds"], json!([ka]));
    // "If the instance is already associated with a key, the old key will become invalid."
    h.ok(ASSOCIATE, pair(&id, &kb)).await;
    assert_eq!(
        h.settle(&[(&id, InstanceState::Stopped)]).await,
        [apply(&id, &[KEY_B], false)]
    );
    assert_eq!(
        h.instance(&id).await["LoginSettings"]["KeyIds"],
        json!([kb])
    );
    assert_eq!(
        h.code(ASSOCIATE, pair(&id, &kb)).await,
        "UnsupportedOperation.KeyPairBindDuplicate"
    );
    assert_eq!(
        h.code(DISASSOCIATE, pair(&id, &ka)).await,
        "UnsupportedOperation.KeyPairNotBoundToInstance"
    );
    let r = h.ok(DISASSOCIATE, pair(&id, &kb)).await;
    let i = h.instance(&id).await;
    assert_eq!(i["LatestOperation"], DISASSOCIATE);
    assert_eq!(i["LatestOperationRequestId"], r["RequestId"]);
    // Unbound, password login is back; the instance stays stopped.
    assert_eq!(
        h.settle(&[(&id, InstanceState::Stopped)]).await,
        [apply(&id, &[], true)]
    );
    assert_eq!(h.instance(&id).await["LoginSettings"]["KeyIds"], json!([]));
    // Username: only for ONLINE, and only the sandbox's root.
    let cases = [
        (
            ASSOCIATE,
            json!({"Username": "root"}),
            "InvalidParameter.ParameterConflict",
        ),
        (
            ASSOCIATE,
            json!({"AssociateType": "ONLINE", "Username": "ubuntu"}),
            "InvalidParameterValue",
        ),
        (
            ASSOCIATE,
            json!({"AssociateType": "LATER"}),
            "InvalidParameterValue",
        ),
        (
            DISASSOCIATE,
            json!({"DisassociateType": "OFFLINE", "Username": "root"}),
            "InvalidParameter.ParameterConflict",
        ),
        (
            DISASSOCIATE,
            json!({"DisassociateType": "ONLINE", "Username": "lighthouse"}),
            "UnsupportedOperation.KeyPairUnbindUsernameMismatch",
        ),
    ];
    for (action, extra, code) in cases {
        let body = with(pair(&id, &ka), extra.clone());
        assert_eq!(h.code(action, body).await, code, "{action} {extra}");
    }
}

#[tokio::test]
async fn every_seed_code_for_binding() {
    let h = harness().await;
    let k = h.import_key("a", KEY_A).await;
    let ids = h.create(json!({"InstanceCount": 4})).await;
    let (pending, failed, stopping) = (ids[0].as_str(), ids[1].as_str(), ids[2].as_str());
    let running = ids[3].as_str();
    let win = h
        .create(
            json!({"BlueprintId": WINDOWS, "LoginConfiguration": {"Password": "Kp-Passw0rd!x"}}),
        )
        .await
        .remove(0);
    // PENDING: OperationDenied.InstanceCreating, for both calls.
    for action in [ASSOCIATE, DISASSOCIATE] {
        assert_eq!(
            h.code(action, pair(pending, &k)).await,
            "OperationDenied.InstanceCreating",
            "{action}"
        );
    }
    h.t.driver.fail_for(Step::Create, failed, "disk full");
    h.settle(&[
        (failed, InstanceState::LaunchFailed),
        (stopping, InstanceState::Running),
        (running, InstanceState::Running),
        (&win, InstanceState::Running),
    ])
    .await;
    h.stopped(&[&win]).await;
    // Why set: STOPPING with no operation in progress is no state the worker leaves an
    // instance in; the rule for the state alone is what is checked.
    h.store
        .set_instance_state(stopping, InstanceState::Stopping)
        .await
        .unwrap();
    let many_ids: Vec<String> = (0..101).map(|i| format!("lhins-{i:08}")).collect();
    let many_keys: Vec<String> = (0..101).map(|i| format!("lhkp-{i:08}")).collect();
    let cases = [
        (
            pair(failed, &k),
            "UnsupportedOperation.InvalidInstanceState",
        ),
        (
            pair(stopping, &k),
            "UnsupportedOperation.InvalidInstanceState",
        ),
        (
            json!({"InstanceIds": [running, running], "KeyIds": [k]}),
            "InvalidParameterValue.Duplicated",
        ),
        (
            json!({"InstanceIds": [running], "KeyIds": [k, k]}),
            "InvalidParameterValue.Duplicated",
        ),
        (
            json!({"InstanceIds": many_ids, "KeyIds": [k]}),
            "InvalidParameterValue.LimitExceeded",
        ),
        (
            json!({"InstanceIds": [running], "KeyIds": many_keys}),
            "InvalidParameterValue.LimitExceeded",
        ),
        (
            pair("lhins-1122", &k),
            "InvalidParameterValue.InstanceIdMalformed",
        ),
        (
            pair("ins-12345678", &k),
            "InvalidParameterValue.InstanceIdMalformed",
        ),
        (
            pair(running, "lhkp-1122"),
            "InvalidParameterValue.KeyPairIdMalformed",
        ),
        (
            pair(running, "skey-12345678"),
            "InvalidParameterValue.KeyPairIdMalformed",
        ),
        (
            pair("lhins-zzzzzzzz", &k),
            "ResourceNotFound.InstanceIdNotFound",
        ),
        (
            pair(running, "lhkp-zzzzzzzz"),
            "ResourceNotFound.KeyIdNotFound",
        ),
        (json!({"InstanceIds": [running]}), "MissingParameter"),
        (
            json!({"InstanceIds": [running], "KeyIds": []}),
            "MissingParameter",
        ),
        (json!({"KeyIds": [k]}), "MissingParameter"),
        (
            with(pair(running, &k), json!({"ForceStop": true})),
            "UnknownParameter",
        ),
    ];
    for action in [ASSOCIATE, DISASSOCIATE] {
        for (body, code) in &cases {
            assert_eq!(h.code(action, body.clone()).await, *code, "{action} {body}");
        }
    }
    assert_eq!(
        h.code(ASSOCIATE, pair(&win, &k)).await,
        "UnsupportedOperation.WindowsNotAllowToAssociateKeyPair"
    );
    assert_eq!(
        h.code(DISASSOCIATE, pair(&win, &k)).await,
        "UnsupportedOperation.WindowsNotSupportKeyPair"
    );
    // All or none: one instance refused, nothing recorded on the other.
    let batch = json!({"InstanceIds": [running, failed], "KeyIds": [k]});
    assert_eq!(
        h.code(ASSOCIATE, batch).await,
        "UnsupportedOperation.InvalidInstanceState"
    );
    assert_eq!(
        h.instance(running).await["LatestOperation"],
        "CreateInstances"
    );
}

#[tokio::test]
async fn regions_and_the_optional_region() {
    let h = harness().await;
    let k = h.import_key("a", KEY_A).await;
    let far = h
        .call_in(
            Some("ap-shanghai"),
            "CreateInstances",
            create_body(json!({})),
        )
        .await["InstanceIdSet"][0]
        .as_str()
        .unwrap()
        .to_string();
    h.settle(&[(&far, InstanceState::Running)]).await;
    let r = h
        .call_in(
            Some("ap-shanghai"),
            "StopInstances",
            json!({"InstanceIds": [far]}),
        )
        .await;
    assert!(r["Error"].is_null(), "{r}");
    h.settle(&[(&far, InstanceState::Stopped)]).await;
    // Known to the account, but not in this region.
    assert_eq!(
        h.code(ASSOCIATE, pair(&far, &k)).await,
        "ResourceNotFound.InstanceNotFound"
    );
    // Region is documented as not required for this call: then every region is searched.
    let r = h.call_in(None, ASSOCIATE, pair(&far, &k)).await;
    assert!(r["Error"].is_null(), "{r}");
    let r = h
        .call_in(
            Some("ap-shanghai"),
            "DescribeInstances",
            json!({"InstanceIds": [far]}),
        )
        .await;
    assert_eq!(r["InstanceSet"][0]["LatestOperation"], ASSOCIATE);
}

#[tokio::test]
async fn a_key_cannot_be_bound_while_the_instance_is_in_transition() {
    let h = harness().await;
    let k = h.import_key("a", KEY_A).await;
    let id = h.create(json!({})).await.remove(0);
    assert_eq!(
        h.code(ASSOCIATE, pair(&id, &k)).await,
        "OperationDenied.InstanceCreating",
        "still being created"
    );
    h.settle(&[(&id, InstanceState::Running)]).await;
    h.ok("StopInstances", json!({"InstanceIds": [id]})).await;
    assert_eq!(
        h.code(ASSOCIATE, pair(&id, &k)).await,
        "OperationDenied.InstanceOperationInProgress",
        "stopping: the operation is in progress"
    );
}
