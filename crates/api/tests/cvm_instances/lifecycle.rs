//! Start, stop, reboot, terminate, and key binding: the operations they record and the
//! state rules.

use super::*;

#[tokio::test]
async fn lifecycle_follows_the_state_rules() {
    let h = harness().await;
    let (ids, _) = h.run(json!({"InstanceCount": 2})).await;
    let (a, b) = (ids[0].as_str(), ids[1].as_str());
    // PENDING: nothing but describe.
    assert_eq!(
        h.code("StartInstances", json!({"InstanceIds": [a]})).await,
        "UnsupportedOperation.InstanceStatePending"
    );
    h.settle(&[(a, InstanceState::Running), (b, InstanceState::Running)])
        .await;
    assert_eq!(
        h.code("StartInstances", json!({"InstanceIds": [a]})).await,
        "UnsupportedOperation.InstanceStateRunning"
    );
    let stop = h
        .ok(
            "StopInstances",
            json!({"InstanceIds": [a], "StopType": "HARD", "StoppedMode": "STOP_CHARGING"}),
        )
        .await;
    let i = h.instance(a).await;
    assert_eq!(i["InstanceState"], "STOPPING");
    assert_eq!(i["LatestOperation"], "StopInstances");
    assert_eq!(i["LatestOperationState"], "OPERATING");
    assert_eq!(i["LatestOperationRequestId"], stop["RequestId"]);
    assert_eq!(
        h.code("StopInstances", json!({"InstanceIds": [a]})).await,
        "UnsupportedOperation.InstanceStateStopping"
    );
    h.settle(&[(a, InstanceState::Stopped)]).await;
    assert_eq!(h.instance(a).await["LatestOperationState"], "SUCCESS");
    assert_eq!(
        h.code("StopInstances", json!({"InstanceIds": [a]})).await,
        "UnsupportedOperation.InstanceStateStopped"
    );
    assert_eq!(
        h.code("RebootInstances", json!({"InstanceIds": [a]})).await,
        "UnsupportedOperation.InstanceStateStopped"
    );
    // All or none: b is running, a is stopped.
    assert_eq!(
        h.code("StopInstances", json!({"InstanceIds": [b, a]}))
            .await,
        "UnsupportedOperation.InstanceStateStopped"
    );
    assert_eq!(h.instance(b).await["InstanceState"], "RUNNING");
    let start = h.ok("StartInstances", json!({"InstanceIds": [a]})).await;
    let i = h.instance(a).await;
    assert_eq!(
        (i["InstanceState"].as_str(), i["LatestOperation"].as_str()),
        (Some("STARTING"), Some("StartInstances"))
    );
    assert_eq!(i["LatestOperationRequestId"], start["RequestId"]);
    h.settle(&[(a, InstanceState::Running)]).await;
    h.ok(
        "RebootInstances",
        json!({"InstanceIds": [a, b], "ForceReboot": true}),
    )
    .await;
    assert_eq!(h.instance(b).await["InstanceState"], "REBOOTING");
    h.settle(&[(a, InstanceState::Running), (b, InstanceState::Running)])
        .await;
    // A running and a stopped instance terminate alike.
    h.stopped(&[b]).await;
    let term = h.ok("TerminateInstances", json!({"InstanceIds": [a, b], "ReleaseAddress": true, "ReleasePrepaidDataDisks": false})).await;
    let i = h.instance(b).await;
    assert_eq!(
        (i["InstanceState"].as_str(), i["LatestOperation"].as_str()),
        (Some("TERMINATING"), Some("TerminateInstances"))
    );
    assert_eq!(i["LatestOperationRequestId"], term["RequestId"]);
    assert_eq!(
        h.code("TerminateInstances", json!({"InstanceIds": [a]}))
            .await,
        "UnsupportedOperation.InstanceStateTerminating"
    );
}

#[tokio::test]
async fn lifecycle_refusals_have_their_codes() {
    let h = harness().await;
    let (ids, _) = h.run(json!({})).await;
    let (win, _) = h.run(json!({"ImageId": WINDOWS})).await;
    h.settle(&[
        (&ids[0], InstanceState::Running),
        (&win[0], InstanceState::Running),
    ])
    .await;
    let id = ids[0].as_str();
    h.stopped(&[id]).await;
    // Windows records start and stop like any instance.
    h.ok(
        "StopInstances",
        json!({"InstanceIds": [win[0]], "ForceStop": "True"}),
    )
    .await;
    // A stopped instance with a key binding in progress is busy.
    let key = h.import_key("a", KEY_A).await;
    h.ok(
        "AssociateInstancesKeyPairs",
        json!({"InstanceIds": [id], "KeyIds": [key]}),
    )
    .await;
    let many: Vec<String> = (0..101).map(|i| format!("ins-{i:08}")).collect();
    let actions = [
        "StartInstances",
        "StopInstances",
        "RebootInstances",
        "TerminateInstances",
    ];
    for action in actions {
        let cases = [
            (
                json!({"InstanceIds": ["ins-1122"]}),
                "InvalidInstanceId.Malformed",
            ),
            (
                json!({"InstanceIds": ["ins-zzzzzzzz"]}),
                "InvalidInstanceId.NotFound",
            ),
            (
                json!({"InstanceIds": [id, id]}),
                "InvalidParameterValue.Duplicate",
            ),
            (
                json!({"InstanceIds": many}),
                "InvalidParameterValue.LimitExceeded",
            ),
            (json!({"InstanceIds": []}), "MissingParameter"),
            (json!({}), "MissingParameter"),
            (
                json!({"InstanceIds": [id], "Bogus": true}),
                "UnknownParameter",
            ),
        ];
        for (body, code) in cases {
            assert_eq!(h.code(action, body.clone()).await, code, "{action} {body}");
        }
    }
    let busy = "OperationDenied.InstanceOperationInProgress";
    assert_eq!(
        h.code("StartInstances", json!({"InstanceIds": [id]})).await,
        busy
    );
    assert_eq!(
        h.code("TerminateInstances", json!({"InstanceIds": [id]}))
            .await,
        busy
    );
    let stop_cases = [
        (
            json!({"InstanceIds": [id], "ForceStop": true, "StopType": "HARD"}),
            "InvalidParameter",
        ),
        (
            json!({"InstanceIds": [id], "StopType": "GENTLE"}),
            "InvalidParameterValue",
        ),
        (
            json!({"InstanceIds": [id], "StoppedMode": "FREE"}),
            "InvalidParameterValue",
        ),
    ];
    for (body, code) in stop_cases {
        assert_eq!(h.code("StopInstances", body.clone()).await, code, "{body}");
    }
    let both = json!({"InstanceIds": [id], "ForceReboot": false, "StopType": "SOFT"});
    assert_eq!(h.code("RebootInstances", both).await, "InvalidParameter");
    // Another region does not see the instance.
    let r = h
        .call_in(
            "ap-shanghai",
            "StartInstances",
            json!({"InstanceIds": [id]}),
        )
        .await;
    assert_eq!(r["Error"]["Code"], "InvalidInstanceId.NotFound");
}

#[tokio::test]
async fn binding_keys_records_the_operation_and_enforces_the_rules() {
    let h = harness().await;
    let ka = h.import_key("a", KEY_A).await;
    let kb = h.import_key("b", KEY_B).await;
    let (ids, _) = h
        .run(json!({"InstanceCount": 2, "LoginSettings": {"KeyIds": [ka]}}))
        .await;
    let (win, _) = h.run(json!({"ImageId": WINDOWS})).await;
    let (run, stopped) = (ids[0].as_str(), ids[1].as_str());
    h.settle(&[
        (run, InstanceState::Running),
        (stopped, InstanceState::Running),
        (&win[0], InstanceState::Running),
    ])
    .await;
    h.stopped(&[stopped, &win[0]]).await;
    let assoc = |i: &str, extra: Value| {
        let mut b = json!({"InstanceIds": [i], "KeyIds": [kb]});
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    // Running without ForceStop is refused; with it, the operation is recorded.
    let running = "UnsupportedOperation.InstanceStateRunning";
    assert_eq!(
        h.code("AssociateInstancesKeyPairs", assoc(run, json!({})))
            .await,
        running
    );
    assert_eq!(
        h.code(
            "DisassociateInstancesKeyPairs",
            assoc(run, json!({"ForceStop": false}))
        )
        .await,
        running
    );
    let r = h
        .ok(
            "AssociateInstancesKeyPairs",
            assoc(run, json!({"ForceStop": true})),
        )
        .await;
    assert_eq!(r.as_object().unwrap().len(), 1, "only RequestId: {r}");
    let i = h.instance(run).await;
    assert_eq!(i["LatestOperation"], "AssociateInstancesKeyPairs");
    assert_eq!(i["LatestOperationState"], "OPERATING");
    assert_eq!(i["LatestOperationRequestId"], r["RequestId"]);
    let busy = "OperationDenied.InstanceOperationInProgress";
    assert_eq!(
        h.code(
            "AssociateInstancesKeyPairs",
            assoc(run, json!({"ForceStop": true}))
        )
        .await,
        busy
    );
    // All or none: the busy instance fails the batch, the stopped one is untouched.
    let both = json!({"InstanceIds": [stopped, run], "KeyIds": [kb], "ForceStop": true});
    assert_eq!(h.code("AssociateInstancesKeyPairs", both).await, busy);
    assert_eq!(
        h.instance(stopped).await["LatestOperation"],
        "StopInstances"
    );
    let r = h
        .ok(
            "DisassociateInstancesKeyPairs",
            json!({"InstanceIds": [stopped], "KeyIds": [ka]}),
        )
        .await;
    let i = h.instance(stopped).await;
    assert_eq!(i["LatestOperation"], "DisassociateInstancesKeyPairs");
    assert_eq!(i["LatestOperationRequestId"], r["RequestId"]);
    let many_ids: Vec<String> = (0..101).map(|i| format!("ins-{i:08}")).collect();
    let many_keys: Vec<String> = (0..101).map(|i| format!("skey-{i:08}")).collect();
    let w = win[0].as_str();
    let cases = [
        (
            assoc(w, json!({})),
            "UnsupportedOperation.KeyPairUnsupportedWindows",
        ),
        (
            json!({"InstanceIds": ["ins-1122"], "KeyIds": [kb]}),
            "InvalidInstanceId.Malformed",
        ),
        (
            json!({"InstanceIds": ["ins-zzzzzzzz"], "KeyIds": [kb]}),
            "InvalidInstanceId.NotFound",
        ),
        (
            json!({"InstanceIds": [w], "KeyIds": ["skey-1122"]}),
            "InvalidKeyPairId.Malformed",
        ),
        (
            json!({"InstanceIds": [w], "KeyIds": ["skey-zzzzzzzz"]}),
            "InvalidKeyPairId.NotFound",
        ),
        (
            json!({"InstanceIds": many_ids, "KeyIds": [kb]}),
            "InvalidParameterValue.LimitExceeded",
        ),
        (
            json!({"InstanceIds": [w], "KeyIds": many_keys}),
            "InvalidParameterValue.LimitExceeded",
        ),
        (
            json!({"InstanceIds": [w, w], "KeyIds": [kb]}),
            "InvalidParameterValue.Duplicate",
        ),
        (json!({"InstanceIds": [w]}), "MissingParameter"),
        (
            json!({"InstanceIds": [w], "KeyIds": []}),
            "MissingParameter",
        ),
        (json!({"KeyIds": [kb]}), "MissingParameter"),
        (
            json!({"InstanceIds": [w], "KeyIds": [kb], "Force": true}),
            "UnknownParameter",
        ),
    ];
    for action in [
        "AssociateInstancesKeyPairs",
        "DisassociateInstancesKeyPairs",
    ] {
        for (body, code) in &cases {
            assert_eq!(h.code(action, body.clone()).await, *code, "{action} {body}");
        }
    }
    let r = h
        .call_in(
            "ap-shanghai",
            "AssociateInstancesKeyPairs",
            assoc(stopped, json!({})),
        )
        .await;
    assert_eq!(r["Error"]["Code"], "InvalidInstanceId.NotFound");
}
