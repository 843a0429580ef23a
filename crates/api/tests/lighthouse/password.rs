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
        (stopped, InstanceState::Stopped),
    ])
    .await;
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
    let kinds = h.settle(&[]).await;
    assert_eq!(kinds.len(), 2);
    for kind in kinds {
        match kind {
            OpKind::ResetPassword {
                password_hash,
                deferred: false,
                restart: false,
            } => assert!(password_hash.expose().starts_with("$6$")),
            other => panic!("{other:?}"),
        }
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
        (&win[0], InstanceState::Stopped),
    ])
    .await;
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
    assert!(h.settle(&[]).await.is_empty(), "nothing was recorded");
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
