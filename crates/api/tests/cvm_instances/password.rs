//! ResetInstancesPassword: the operation it records (with a crypt hash, never the password)
//! and every refusal with its CVM code.

use super::*;
use support::Call;

/// What the driver was asked about `id` since the last look.
fn calls_of(h: &H, id: &str) -> Vec<Call> {
    h.t.driver
        .calls()
        .into_iter()
        .filter(|c| c.instance() == id)
        .collect()
}

#[tokio::test]
async fn a_reset_records_an_operation_holding_only_a_hash() {
    let h = harness().await;
    let (ids, _) = h.run(json!({"InstanceCount": 2})).await;
    let (stopped, running) = (ids[0].as_str(), ids[1].as_str());
    h.settle(&[
        (stopped, InstanceState::Running),
        (running, InstanceState::Running),
    ])
    .await;
    h.stopped(&[stopped]).await;
    h.t.driver.take_calls();
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
    h.settle(&[
        (stopped, InstanceState::Stopped),
        (running, InstanceState::Running),
    ])
    .await;
    let hash_of = |calls: &[Call]| match calls
        .iter()
        .find(|c| matches!(c, Call::SetPasswordHash { .. }))
    {
        Some(Call::SetPasswordHash {
            hash: Some(hash), ..
        }) => hash.clone(),
        other => panic!("no password hash set: {other:?} in {calls:?}"),
    };
    // Stopped (a normal shutdown), reset and started again; the hash is what /etc/shadow
    // will hold. The stopped instance is only reset.
    let calls = calls_of(&h, running);
    let hash = hash_of(&calls);
    let want = [
        Call::Stop {
            id: running.into(),
            force: false,
        },
        Call::SetPasswordHash {
            id: running.into(),
            hash: Some(hash.clone()),
        },
    ];
    assert_eq!(calls[..2], want, "{calls:?}");
    assert_eq!(
        calls.last(),
        Some(&Call::Start(running.into())),
        "{calls:?}"
    );
    let calls = calls_of(&h, stopped);
    assert_eq!(
        calls,
        [Call::SetPasswordHash {
            id: stopped.into(),
            hash: Some(hash_of(&calls))
        }]
    );
    for hash in [hash, hash_of(&calls)] {
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
        (stopped, InstanceState::Running),
        (win, InstanceState::Running),
    ])
    .await;
    h.stopped(&[stopped, win]).await;
    h.t.driver.take_calls();
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
    // Nothing was recorded by any of them: the worker finds nothing to do.
    h.settle(&[
        (running, InstanceState::Running),
        (stopped, InstanceState::Stopped),
    ])
    .await;
    assert_eq!(h.t.driver.take_calls(), []);
    assert_eq!(
        h.instance(stopped).await["LatestOperation"],
        "StopInstances"
    );
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
