//! ResetInstancesPassword (Lighthouse): the operation it records (a running instance is shut
//! down and stays STOPPED) and every refusal with its Lighthouse code.

use super::*;

const RESET: &str = "ResetInstancesPassword";
const NEW: &str = "Kp-Reset-0rd";

#[tokio::test]
async fn a_reset_shuts_a_running_instance_down_and_leaves_it_stopped() {
    let h = harness().await;
    let ids = h.create(json!({"InstanceCount": 2})).await;
    let (running, stopped) = (ids[0].as_str(), ids[1].as_str());
    h.settle(&[
        (running, InstanceState::Running),
        (stopped, InstanceState::Running),
    ])
    .await;
    h.stopped(&[stopped]).await;
    let r = h
        .ok(
            RESET,
            json!({"InstanceIds": [running, stopped], "Password": NEW}),
        )
        .await;
    assert_eq!(r.as_object().unwrap().len(), 1, "only RequestId: {r}");
    let i = h.instance(running).await;
    assert_eq!(i["LatestOperation"], RESET);
    assert_eq!(i["LatestOperationState"], "OPERATING");
    assert_eq!(i["LatestOperationRequestId"], r["RequestId"]);
    assert_eq!(
        h.code(RESET, json!({"InstanceIds": [running], "Password": NEW}))
            .await,
        "UnsupportedOperation.LatestOperationUnfinished"
    );
    // Both are reset for the next boot; the running one is shut down first (a normal
    // shutdown) and left stopped.
    let calls = h
        .settle(&[
            (running, InstanceState::Stopped),
            (stopped, InstanceState::Stopped),
        ])
        .await;
    let hash_of = |calls: &[Call]| match calls.last() {
        Some(Call::SetPasswordHash {
            hash: Some(hash), ..
        }) => hash.clone(),
        other => panic!("{other:?}"),
    };
    let (on_running, on_stopped) = (calls_of(&calls, running), calls_of(&calls, stopped));
    let hashes = [hash_of(&on_running), hash_of(&on_stopped)];
    assert_eq!(on_running.len(), 2, "{on_running:?}");
    assert_eq!(on_running[0], stop(running, false));
    assert_eq!(on_stopped.len(), 1, "{on_stopped:?}");
    for hash in hashes {
        assert!(hash.starts_with("$6$"), "{hash}");
        assert!(!hash.contains(NEW));
    }
    assert_eq!(h.instance(running).await["LatestOperationState"], "SUCCESS");
}

#[tokio::test]
async fn reset_refusals_have_their_codes() {
    let h = harness().await;
    let id = h.create(json!({})).await.remove(0);
    let win = h
        .create(
            json!({"BlueprintId": WINDOWS, "LoginConfiguration": {"Password": "Kp-Passw0rd!x"}}),
        )
        .await;
    let many: Vec<String> = (0..101).map(|i| format!("lhins-{i:08}")).collect();
    // Still being created.
    assert_eq!(
        h.code(RESET, json!({"InstanceIds": [id], "Password": NEW}))
            .await,
        "OperationDenied.InstanceCreating"
    );
    h.settle(&[
        (&id, InstanceState::Running),
        (&win[0], InstanceState::Running),
    ])
    .await;
    h.stopped(&[&win[0]]).await;
    let cases = [
        (
            json!({"InstanceIds": [id], "Password": "abcd1234"}),
            "InvalidParameterValue.InvalidPassword",
        ),
        (
            json!({"InstanceIds": [id], "Password": "/Kp-Reset-0rd"}),
            "InvalidParameterValue.InvalidPassword",
        ),
        (
            json!({"InstanceIds": [win[0]], "Password": "Kp-Rst-0rd"}),
            "InvalidParameterValue.InvalidPassword",
        ),
        (
            json!({"InstanceIds": ["lhins-zzzzzzzz"], "Password": NEW}),
            "ResourceNotFound.InstanceIdNotFound",
        ),
        (
            json!({"InstanceIds": ["ins-aaaaaaaa"], "Password": NEW}),
            "InvalidParameterValue.InstanceIdMalformed",
        ),
        (
            json!({"InstanceIds": many, "Password": NEW}),
            "InvalidParameterValue.LimitExceeded",
        ),
        (json!({"InstanceIds": [id]}), "MissingParameter"),
        (
            json!({"InstanceIds": [id], "Password": NEW, "UserName": "u".repeat(65)}),
            "InvalidParameterValue.TooLong",
        ),
        (
            json!({"InstanceIds": [id], "Password": NEW, "ForceStop": true}),
            "UnknownParameter",
        ),
    ];
    for (body, code) in cases {
        let r = h.call_in(Some(REGION), RESET, body.clone()).await;
        assert_eq!(r["Error"]["Code"], code, "{body}: {r}");
    }
    assert_eq!(h.settle(&[]).await, [], "nothing was recorded");
    assert_eq!(h.instance(&id).await["LatestOperation"], "CreateInstances");
    // A Windows record takes a 12-character Windows password.
    h.ok(
        RESET,
        json!({"InstanceIds": [win[0]], "Password": "Kp-Reset-0rd-win"}),
    )
    .await;
    // Another region does not see the instance.
    let r = h
        .call_in(
            Some("ap-shanghai"),
            RESET,
            json!({"InstanceIds": [id], "Password": NEW}),
        )
        .await;
    assert_eq!(r["Error"]["Code"], "ResourceNotFound.InstanceNotFound");
}
