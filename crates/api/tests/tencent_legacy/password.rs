//! ResetInstancePassword (legacy v2) on the instances API 3.0 serves: the operation it records
//! and its refusals in the `{code, message, codeDesc}` envelope.

use super::*;
use support::Call;

const RESET: &str = "ResetInstancePassword";

/// Parameters, and the `code` and `codeDesc` they are refused with.
type Case<'a> = (Vec<(&'a str, &'a str)>, i64, &'a str);
const NEW: &str = "Kp-Reset-0rd";

/// Let the worker carry out every recorded operation; what it asked of the driver.
async fn worker_calls(h: &Harness) -> Vec<Call> {
    h.t.driver.take_calls();
    h.t.settle().await;
    h.t.driver.take_calls()
}

#[tokio::test]
async fn a_reset_with_the_power_off_flag_records_the_operation() {
    let h = harness().await;
    let running = launch(&h, &h.account, LINUX, 1, InstanceState::Running).await;
    let id = running[0].as_str();
    let a = run(
        &h,
        h.call(
            RESET,
            &[
                ("instanceIds.0", id),
                ("password", NEW),
                ("hardPowerOffFlag", "1"),
            ],
        ),
    )
    .await;
    assert_eq!((a.code(), a.desc()), (0, "Success"), "{}", a.body);
    let inst = h.core.instance_by_id(id).await.unwrap();
    assert_eq!(inst.latest_operation.as_deref(), Some(RESET));
    assert_eq!(inst.latest_operation_state, Some(OpState::Operating));
    // Shut down (a normal shutdown, forced once its grace period is over), reset, and
    // started again.
    let calls = worker_calls(&h).await;
    match &calls[..] {
        [Call::Stop { force: false, .. }, Call::SetPasswordHash {
            hash: Some(hash), ..
        }, Call::Apply { .. }, Call::Start(started)] => {
            assert!(hash.starts_with("$6$"), "{hash}");
            assert_eq!(started, id);
        }
        other => panic!("{other:?}"),
    }
    let inst = h.core.instance_by_id(id).await.unwrap();
    assert_eq!(inst.state, InstanceState::Running);
    assert_eq!(inst.latest_operation_state, Some(OpState::Success));
}

#[tokio::test]
async fn reset_refusals_have_their_codes() {
    let h = harness().await;
    let running = launch(&h, &h.account, LINUX, 1, InstanceState::Running).await;
    let stopped = launch(&h, &h.account, LINUX, 1, InstanceState::Stopped).await;
    let windows = launch(&h, &h.account, WINDOWS, 1, InstanceState::Stopped).await;
    let (running, stopped, windows) = (&running[0], &stopped[0], &windows[0]);
    let many: Vec<String> = (0..101).map(|i| format!("ins-{i:08}")).collect();
    let mut too_many: Vec<(String, String)> = many
        .iter()
        .enumerate()
        .map(|(i, id)| (format!("instanceIds.{i}"), id.clone()))
        .collect();
    too_many.push(("password".into(), NEW.into()));
    let too_many: Vec<(&str, &str)> = too_many
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let cases: Vec<Case> = vec![
        (
            vec![("instanceIds.0", running), ("password", NEW)],
            5100,
            "UnsupportedOperation.InstanceStateRunning",
        ),
        (
            vec![
                ("instanceIds.0", running),
                ("password", NEW),
                ("hardPowerOffFlag", "0"),
            ],
            5100,
            "UnsupportedOperation.InstanceStateRunning",
        ),
        (
            vec![("instanceIds.0", stopped), ("password", "abcd1234")],
            4000,
            "InvalidPassword",
        ),
        (
            vec![("instanceIds.0", windows), ("password", "Kp-Rst-0")],
            4000,
            "InvalidPassword",
        ),
        (
            vec![("instanceIds.0", "ins-zzzzzzzz"), ("password", NEW)],
            5000,
            "InvalidInstanceId.NotFound",
        ),
        (too_many, 4000, "InvalidParameterValue.LimitExceeded"),
        (vec![("instanceIds.0", stopped)], 4000, "InvalidParameter"),
        (vec![("password", NEW)], 4000, "InvalidParameter"),
        (
            vec![
                ("instanceIds.0", stopped),
                ("password", NEW),
                ("hardPowerOffFlag", "2"),
            ],
            4000,
            "InvalidParameter",
        ),
    ];
    for (params, code, desc) in cases {
        let a = run(&h, h.call(RESET, &params)).await;
        assert_eq!((a.code(), a.desc()), (code, desc), "{params:?}: {}", a.body);
        assert!(!a.message().is_empty());
    }
    assert_eq!(worker_calls(&h).await, [], "nothing was recorded");
    // A stopped instance needs no flag; a second reset during the first is refused.
    let ok = run(
        &h,
        h.call(RESET, &[("instanceIds.0", stopped), ("password", NEW)]),
    )
    .await;
    assert_eq!(ok.code(), 0, "{}", ok.body);
    let busy = run(
        &h,
        h.call(RESET, &[("instanceIds.0", stopped), ("password", NEW)]),
    )
    .await;
    assert_eq!(
        (busy.code(), busy.desc()),
        (5100, "OperationDenied.InstanceOperationInProgress")
    );
}
