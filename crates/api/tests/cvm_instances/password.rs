//! ResetInstancesPassword: the operation it records (with a crypt hash, never the password)
//! and every refusal with its CVM code.

use super::*;
use keyplane_core::instance::OpKind;

/// Claim every recorded operation; the reset operations' kinds.
async fn reset_kinds(h: &H) -> Vec<OpKind> {
    let mut kinds = Vec::new();
    while let Some(op) = h
        .store
        .claim_operation("test", NOW, NOW + 60)
        .await
        .unwrap()
    {
        if matches!(op.kind, OpKind::ResetPassword { .. }) {
            kinds.push(op.kind.clone());
        }
        h.store
            .finish_operation(op.id, OpState::Success, None)
            .await
            .unwrap();
    }
    kinds
}

#[tokio::test]
async fn a_reset_records_an_operation_holding_only_a_hash() {
    let h = harness().await;
    let (ids, _) = h.run(json!({"InstanceCount": 2})).await;
    let (stopped, running) = (ids[0].as_str(), ids[1].as_str());
    h.settle(&[
        (stopped, InstanceState::Stopped),
        (running, InstanceState::Running),
    ])
    .await;
    let password = "Kp-Reset-0rd";
    let r = h
        .ok(
            "ResetInstancesPassword",
            json!({"InstanceIds": [stopped, running], "Password": password, "UserName": "root", "ForceStop": true}),
        )
        .await;
    for id in [stopped, running] {
        let i = h.instance(id).await;
        assert_eq!(i["LatestOperation"], "ResetInstancesPassword");
        assert_eq!(i["LatestOperationState"], "OPERATING");
        assert_eq!(i["LatestOperationRequestId"], r["RequestId"]);
    }
    let kinds = reset_kinds(&h).await;
    assert_eq!(kinds.len(), 2);
    for kind in kinds {
        let OpKind::ResetPassword {
            password_hash,
            deferred,
            restart,
        } = kind
        else {
            unreachable!()
        };
        // Stopped, reset and started again; the hash is what /etc/shadow will hold.
        assert_eq!((deferred, restart), (false, true));
        let hash = password_hash.expose();
        assert!(hash.starts_with("$6$"), "{hash}");
        assert!(!hash.contains(password));
    }
    // The operation is over: a stopped instance takes a reset without ForceStop.
    h.ok(
        "ResetInstancesPassword",
        json!({"InstanceIds": [stopped], "Password": password}),
    )
    .await;
}

#[tokio::test]
async fn reset_refusals_have_their_codes() {
    let h = harness().await;
    let (ids, _) = h.run(json!({"InstanceCount": 2})).await;
    let (win, _) = h.run(json!({"ImageId": WINDOWS})).await;
    let (running, stopped, win) = (ids[0].as_str(), ids[1].as_str(), win[0].as_str());
    h.settle(&[
        (running, InstanceState::Running),
        (stopped, InstanceState::Stopped),
        (win, InstanceState::Stopped),
    ])
    .await;
    let good = "Kp-Reset-0rd";
    let many: Vec<String> = (0..101).map(|i| format!("ins-{i:08}")).collect();
    let cases = [
        // The CVM rule: three kinds of characters (two pass RunInstances' Linux rule, not this).
        (
            json!({"InstanceIds": [stopped], "Password": "abcd1234"}),
            "InvalidPassword",
        ),
        (
            json!({"InstanceIds": [stopped], "Password": "Ab1!"}),
            "InvalidPassword",
        ),
        (
            json!({"InstanceIds": [stopped], "Password": "/Kp-Reset-0rd"}),
            "InvalidPassword",
        ),
        // A Windows record takes the Windows rule (12 characters), in a mixed batch too.
        (
            json!({"InstanceIds": [win], "Password": "Kp-Rst-0"}),
            "InvalidPassword",
        ),
        (
            json!({"InstanceIds": [stopped, win], "Password": "Kp-Rst-0"}),
            "InvalidPassword",
        ),
        (
            json!({"InstanceIds": [win], "Password": "Administrator-0k"}),
            "InvalidPassword",
        ),
        // Running without ForceStop.
        (
            json!({"InstanceIds": [running], "Password": good}),
            "UnsupportedOperation.InstanceStateRunning",
        ),
        (
            json!({"InstanceIds": [running], "Password": good, "ForceStop": false}),
            "UnsupportedOperation.InstanceStateRunning",
        ),
        (
            json!({"InstanceIds": ["ins-zzzzzzzz"], "Password": good}),
            "InvalidInstanceId.NotFound",
        ),
        (
            json!({"InstanceIds": ["ins-12"], "Password": good}),
            "InvalidInstanceId.Malformed",
        ),
        (
            json!({"InstanceIds": many, "Password": good}),
            "InvalidParameterValue.LimitExceeded",
        ),
        (
            json!({"InstanceIds": [stopped, stopped], "Password": good}),
            "InvalidParameterValue.Duplicate",
        ),
        (json!({"InstanceIds": [stopped]}), "MissingParameter"),
        (json!({"Password": good}), "MissingParameter"),
        (
            json!({"InstanceIds": [stopped], "Password": good, "UserName": "u".repeat(65)}),
            "InvalidParameterValue.TooLong",
        ),
        (
            json!({"InstanceIds": [stopped], "Password": good, "UserName": "ubuntu"}),
            "InvalidParameterValue",
        ),
        (
            json!({"InstanceIds": [stopped], "Password": good, "Bogus": 1}),
            "UnknownParameter",
        ),
    ];
    for (body, code) in cases {
        assert_eq!(
            h.code("ResetInstancesPassword", body.clone()).await,
            code,
            "{body}"
        );
    }
    // Nothing was recorded by any of them.
    assert!(reset_kinds(&h).await.is_empty());
    // A Windows record takes a Windows password, as Administrator.
    h.ok(
        "ResetInstancesPassword",
        json!({"InstanceIds": [win], "Password": "Kp-Reset-0rd-win", "UserName": "Administrator"}),
    )
    .await;
    // During another operation (a key binding on the stopped instance).
    let key = h.import_key("a", KEY_A).await;
    h.ok(
        "AssociateInstancesKeyPairs",
        json!({"InstanceIds": [stopped], "KeyIds": [key]}),
    )
    .await;
    assert_eq!(
        h.code(
            "ResetInstancesPassword",
            json!({"InstanceIds": [stopped], "Password": good})
        )
        .await,
        "OperationDenied.InstanceOperationInProgress"
    );
    // Another region does not see the instance.
    let r = h
        .call_in(
            "ap-shanghai",
            "ResetInstancesPassword",
            json!({"InstanceIds": [running], "Password": good, "ForceStop": true}),
        )
        .await;
    assert_eq!(r["Error"]["Code"], "InvalidInstanceId.NotFound");
}
