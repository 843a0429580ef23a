//! What the operation worker does with CVM operations, seen through the instance driver: a
//! launch boots the instance, a bind writes the keys into its SSH state, and a failed step ends
//! the operation FAILED with the reason, the instance at rest in the state it really is in.

use super::*;
use support::{Call, Step};

#[tokio::test]
async fn a_launch_lays_out_and_boots_the_instance() {
    let h = harness().await;
    let (ids, _) = h.run(json!({"HostName": "web-1"})).await;
    let id = ids[0].as_str();
    assert_eq!(
        h.t.driver.calls(),
        [],
        "nothing happens before the worker runs"
    );
    h.settle(&[(id, InstanceState::Running)]).await;
    let calls = h.t.driver.take_calls();
    let [Call::Create {
        id: created,
        hostname,
        ..
    }, apply, start] = &calls[..]
    else {
        panic!("{calls:?}")
    };
    assert_eq!((created.as_str(), hostname.as_str()), (id, "web-1"));
    // The SSH state (no key, password login on) is laid out before the first start.
    let applied = Call::Apply {
        id: id.into(),
        keys: vec![],
        password_authentication: true,
    };
    assert_eq!((apply, start), (&applied, &Call::Start(id.into())));
    assert!(h.t.driver.machine(id).unwrap().running);
    let i = h.instance(id).await;
    assert_eq!(i["InstanceState"], "RUNNING");
    assert_eq!(i["LatestOperationState"], "SUCCESS");
    // Terminated, the machine is gone.
    h.ok("TerminateInstances", json!({"InstanceIds": [id]}))
        .await;
    h.settle(&[]).await;
    assert_eq!(h.t.driver.take_calls(), [Call::Destroy(id.into())]);
    assert_eq!(h.t.driver.machine(id), None);
    let r = h
        .ok("DescribeInstances", json!({"InstanceIds": [id]}))
        .await;
    assert_eq!(r["TotalCount"], 0, "{r}");
}

#[tokio::test]
async fn a_bind_writes_the_keys_and_turns_password_login_off() {
    let h = harness().await;
    let (ka, kb) = (
        h.import_key("a", KEY_A).await,
        h.import_key("b", KEY_B).await,
    );
    let (ids, _) = h.run(json!({"LoginSettings": {"KeyIds": [ka]}})).await;
    let id = ids[0].as_str();
    h.settle(&[(id, InstanceState::Running)]).await;
    // The key given at launch is in place from the first boot.
    let machine = h.t.driver.machine(id).unwrap();
    assert_eq!(machine.keys, [KEY_A]);
    assert_eq!(machine.password_authentication, Some(false));
    h.t.driver.take_calls();
    h.ok(
        "AssociateInstancesKeyPairs",
        json!({"InstanceIds": [id], "KeyIds": [kb], "ForceStop": true}),
    )
    .await;
    h.settle(&[(id, InstanceState::Running)]).await;
    // Force-stopped, the new key written in place of the old one, started again.
    let calls = h.t.driver.take_calls();
    let want = [
        Call::Stop {
            id: id.into(),
            force: true,
        },
        Call::Apply {
            id: id.into(),
            keys: vec![KEY_B.into()],
            password_authentication: false,
        },
        Call::Start(id.into()),
    ];
    assert_eq!(calls, want);
    assert_eq!(h.instance(id).await["LoginSettings"]["KeyIds"], json!([kb]));
    // Unbinding it gives password login back.
    h.stopped(&[id]).await;
    h.t.driver.take_calls();
    h.ok(
        "DisassociateInstancesKeyPairs",
        json!({"InstanceIds": [id], "KeyIds": [kb]}),
    )
    .await;
    h.settle(&[(id, InstanceState::Stopped)]).await;
    let want = [Call::Apply {
        id: id.into(),
        keys: vec![],
        password_authentication: true,
    }];
    assert_eq!(h.t.driver.take_calls(), want);
    assert!(h.t.driver.machine(id).unwrap().keys.is_empty());
}

#[tokio::test]
async fn a_failed_step_fails_the_operation_with_its_reason() {
    let h = harness().await;
    let (ids, _) = h.run(json!({"InstanceCount": 2})).await;
    h.settle(&[]).await;
    h.stopped(&[&ids[0]]).await;
    let id = ids[0].as_str();
    h.t.driver.fail(Step::Start, "no memory left");
    let start = h.ok("StartInstances", json!({"InstanceIds": [id]})).await;
    h.settle(&[]).await;
    let i = h.instance(id).await;
    assert_eq!(i["LatestOperation"], "StartInstances");
    assert_eq!(i["LatestOperationRequestId"], start["RequestId"]);
    assert_eq!(i["LatestOperationState"], "FAILED");
    let why = i["LatestOperationErrorMsg"].as_str().unwrap();
    assert!(why.contains("no memory left"), "{why}");
    assert!(!h.t.driver.machine(id).unwrap().running);
    // The other instance was not touched.
    assert_eq!(h.instance(&ids[1]).await["LatestOperationState"], "SUCCESS");
    assert!(h.t.driver.machine(&ids[1]).unwrap().running);
}

#[tokio::test]
async fn a_failed_start_leaves_the_instance_stopped_and_it_starts_again() {
    let h = harness().await;
    let (ids, _) = h.run(json!({})).await;
    let id = ids[0].as_str();
    h.settle(&[(id, InstanceState::Running)]).await;
    h.stopped(&[id]).await;
    h.t.driver.fail(Step::Start, "no memory left");
    h.ok("StartInstances", json!({"InstanceIds": [id]})).await;
    h.settle(&[(id, InstanceState::Stopped)]).await;
    let i = h.instance(id).await;
    assert_eq!(i["InstanceState"], "STOPPED");
    assert_eq!(i["LatestOperationState"], "FAILED");
    assert!(i["LatestOperationErrorMsg"]
        .as_str()
        .unwrap()
        .contains("no memory left"));
    // Once the driver can start it again, a second start succeeds.
    h.t.driver.heal(Step::Start);
    h.ok("StartInstances", json!({"InstanceIds": [id]})).await;
    h.settle(&[(id, InstanceState::Running)]).await;
    assert_eq!(h.instance(id).await["LatestOperationState"], "SUCCESS");
    assert!(h.t.driver.machine(id).unwrap().running);
}

#[tokio::test]
async fn a_failed_stop_leaves_the_instance_running() {
    let h = harness().await;
    let (ids, _) = h.run(json!({"InstanceCount": 2})).await;
    h.settle(&[]).await;
    let (id, other) = (ids[0].as_str(), ids[1].as_str());
    h.t.driver
        .fail_for(Step::Stop, id, "the init does not answer");
    h.ok("StopInstances", json!({"InstanceIds": [id, other]}))
        .await;
    h.settle(&[
        (id, InstanceState::Running),
        (other, InstanceState::Stopped),
    ])
    .await;
    let i = h.instance(id).await;
    assert_eq!(i["LatestOperation"], "StopInstances");
    assert_eq!(i["LatestOperationState"], "FAILED");
    assert!(h.t.driver.machine(id).unwrap().running);
    // The calls a running instance accepts are accepted again.
    h.t.driver.heal(Step::Stop);
    h.stopped(&[id]).await;
}

#[tokio::test]
async fn a_failed_reboot_rests_in_the_state_the_driver_reports() {
    let h = harness().await;
    let (ids, _) = h.run(json!({"InstanceCount": 2})).await;
    h.settle(&[]).await;
    let (halted, unstoppable) = (ids[0].as_str(), ids[1].as_str());
    // One stops but cannot start again; the other cannot even stop.
    h.t.driver.fail_for(Step::Start, halted, "no memory left");
    h.t.driver
        .fail_for(Step::Stop, unstoppable, "the init does not answer");
    h.ok(
        "RebootInstances",
        json!({"InstanceIds": [halted, unstoppable]}),
    )
    .await;
    h.settle(&[
        (halted, InstanceState::Stopped),
        (unstoppable, InstanceState::Running),
    ])
    .await;
    assert!(!h.t.driver.machine(halted).unwrap().running);
    assert!(h.t.driver.machine(unstoppable).unwrap().running);
    for id in [halted, unstoppable] {
        assert_eq!(h.instance(id).await["LatestOperationState"], "FAILED");
    }
    // A machine that stopped by itself meanwhile is seen as it is, not as it was.
    h.t.driver.power_loss();
    h.ok("RebootInstances", json!({"InstanceIds": [unstoppable]}))
        .await;
    h.settle(&[(unstoppable, InstanceState::Stopped)]).await;
}

#[tokio::test]
async fn an_instance_whose_operation_failed_can_be_terminated() {
    let h = harness().await;
    let (ids, _) = h.run(json!({"InstanceCount": 2})).await;
    h.settle(&[]).await;
    let (id, other) = (ids[0].as_str(), ids[1].as_str());
    h.stopped(&[id]).await;
    h.t.driver.fail(Step::Start, "no memory left");
    h.ok("StartInstances", json!({"InstanceIds": [id]})).await;
    h.settle(&[(id, InstanceState::Stopped)]).await;
    // A terminate that fails leaves it where it was, to be terminated again.
    h.t.driver.fail_for(Step::Destroy, other, "device busy");
    h.ok("TerminateInstances", json!({"InstanceIds": [id, other]}))
        .await;
    h.settle(&[(other, InstanceState::Running)]).await;
    assert_eq!(h.instance(other).await["LatestOperationState"], "FAILED");
    h.t.driver.heal(Step::Destroy);
    h.ok("TerminateInstances", json!({"InstanceIds": [other]}))
        .await;
    h.settle(&[]).await;
    let r = h
        .ok("DescribeInstances", json!({"InstanceIds": [id, other]}))
        .await;
    assert_eq!(r["TotalCount"], 0, "{r}");
    assert_eq!(
        (h.t.driver.machine(id), h.t.driver.machine(other)),
        (None, None)
    );
}

/// A terminate that fails where the driver cannot tell whether the machine runs leaves the
/// instance in the state it was in before: running, stopped, or never launched.
#[tokio::test]
async fn a_failed_terminate_the_driver_cannot_see_rests_where_it_was() {
    let h = harness().await;
    let (ids, _) = h.run(json!({"InstanceCount": 2})).await;
    h.settle(&[]).await;
    let (running, stopped) = (ids[0].as_str(), ids[1].as_str());
    h.stopped(&[stopped]).await;
    h.t.driver.fail(Step::Create, "disk full");
    let (failed, _) = h.run(json!({})).await;
    let failed = failed[0].as_str();
    h.settle(&[(failed, InstanceState::LaunchFailed)]).await;
    h.t.driver.heal(Step::Create);
    h.t.driver.fail(Step::Destroy, "device busy");
    h.t.driver.fail(Step::Running, "the init does not answer");
    h.ok(
        "TerminateInstances",
        json!({"InstanceIds": [running, stopped, failed]}),
    )
    .await;
    h.settle(&[
        (running, InstanceState::Running),
        (stopped, InstanceState::Stopped),
        (failed, InstanceState::LaunchFailed),
    ])
    .await;
    for id in [running, stopped, failed] {
        assert_eq!(h.instance(id).await["LatestOperationState"], "FAILED");
    }
    // Each can be terminated again.
    h.t.driver.heal(Step::Destroy);
    h.ok(
        "TerminateInstances",
        json!({"InstanceIds": [running, stopped, failed]}),
    )
    .await;
    h.settle(&[]).await;
    let r = h
        .ok(
            "DescribeInstances",
            json!({"InstanceIds": [running, stopped, failed]}),
        )
        .await;
    assert_eq!(r["TotalCount"], 0, "{r}");
}

#[tokio::test]
async fn a_failed_restart_after_a_bind_or_a_password_reset_leaves_it_stopped() {
    let h = harness().await;
    let key = h.import_key("a", KEY_A).await;
    let (ids, _) = h.run(json!({"InstanceCount": 2})).await;
    h.settle(&[]).await;
    let (bound, reset) = (ids[0].as_str(), ids[1].as_str());
    h.t.driver.fail(Step::Start, "no memory left");
    h.ok(
        "AssociateInstancesKeyPairs",
        json!({"InstanceIds": [bound], "KeyIds": [key], "ForceStop": true}),
    )
    .await;
    h.ok(
        "ResetInstancesPassword",
        json!({"InstanceIds": [reset], "Password": "Keyplane-Test-9", "ForceStop": true}),
    )
    .await;
    h.settle(&[
        (bound, InstanceState::Stopped),
        (reset, InstanceState::Stopped),
    ])
    .await;
    for id in [bound, reset] {
        assert_eq!(h.instance(id).await["LatestOperationState"], "FAILED");
        assert!(!h.t.driver.machine(id).unwrap().running);
    }
    h.t.driver.heal(Step::Start);
    h.ok("StartInstances", json!({"InstanceIds": [bound, reset]}))
        .await;
    h.settle(&[
        (bound, InstanceState::Running),
        (reset, InstanceState::Running),
    ])
    .await;
}

#[tokio::test]
async fn a_launch_that_cannot_lay_out_the_instance_ends_launch_failed() {
    let h = harness().await;
    h.t.driver.fail(Step::Create, "disk full");
    let (ids, _) = h.run(json!({})).await;
    let id = ids[0].as_str();
    h.settle(&[(id, InstanceState::LaunchFailed)]).await;
    let i = h.instance(id).await;
    assert_eq!(i["InstanceState"], "LAUNCH_FAILED");
    assert_eq!(i["LatestOperation"], "RunInstances");
    assert_eq!(i["LatestOperationState"], "FAILED");
    let why = i["LatestOperationErrorMsg"].as_str().unwrap();
    assert!(why.contains("disk full"), "{why}");
    // Only termination is left to it.
    assert_eq!(
        h.code("StartInstances", json!({"InstanceIds": [id]})).await,
        "UnsupportedOperation.InstanceStateLaunchFailed"
    );
    h.ok("TerminateInstances", json!({"InstanceIds": [id]}))
        .await;
    h.settle(&[]).await;
    let r = h
        .ok("DescribeInstances", json!({"InstanceIds": [id]}))
        .await;
    assert_eq!(r["TotalCount"], 0, "{r}");
}

#[tokio::test]
async fn a_bind_whose_keys_cannot_be_written_fails() {
    let h = harness().await;
    let key = h.import_key("a", KEY_A).await;
    let (ids, _) = h.run(json!({})).await;
    let id = ids[0].as_str();
    h.settle(&[(id, InstanceState::Running)]).await;
    h.stopped(&[id]).await;
    h.t.driver.take_calls();
    h.t.driver.fail(Step::Apply, "read-only file system");
    h.ok(
        "AssociateInstancesKeyPairs",
        json!({"InstanceIds": [id], "KeyIds": [key]}),
    )
    .await;
    h.settle(&[(id, InstanceState::Stopped)]).await;
    let i = h.instance(id).await;
    assert_eq!(i["LatestOperation"], "AssociateInstancesKeyPairs");
    assert_eq!(i["LatestOperationState"], "FAILED");
    let why = i["LatestOperationErrorMsg"].as_str().unwrap();
    assert!(
        why.contains("the guest agent failed: read-only file system"),
        "{why}"
    );
    // No key reached the machine.
    assert_eq!(h.t.driver.take_calls(), []);
    assert!(h.t.driver.machine(id).unwrap().keys.is_empty());
}

#[tokio::test]
async fn a_restarted_server_boots_again_what_was_running() {
    let h = harness().await;
    let (ids, _) = h.run(json!({"InstanceCount": 2})).await;
    h.settle(&[]).await;
    let (running, stopped) = (ids[0].as_str(), ids[1].as_str());
    h.stopped(&[stopped]).await;
    h.t.driver.take_calls();
    h.t.driver.power_loss();
    h.t.worker.restore().await;
    // Only the instance that was running starts, its SSH state laid out first.
    let want = [
        Call::Apply {
            id: running.into(),
            keys: vec![],
            password_authentication: true,
        },
        Call::Start(running.into()),
    ];
    assert_eq!(h.t.driver.take_calls(), want);
    assert!(h.t.driver.machine(running).unwrap().running);
    assert!(!h.t.driver.machine(stopped).unwrap().running);
    assert_eq!(h.instance(running).await["InstanceState"], "RUNNING");
}

/// An instance that was running but cannot be booted again at server start rests in what the
/// driver reports (else STOPPED), not RUNNING, and the failure is counted; it starts again
/// once the driver can.
#[tokio::test]
async fn a_restore_that_cannot_boot_rests_stopped_and_is_counted() {
    let h = harness().await;
    let (ids, _) = h.run(json!({"InstanceCount": 3})).await;
    h.settle(&[]).await;
    let (fine, broken, unseen) = (ids[0].as_str(), ids[1].as_str(), ids[2].as_str());
    h.t.driver.power_loss();
    for id in [broken, unseen] {
        h.t.driver.fail_for(Step::Start, id, "no memory left");
    }
    h.t.driver
        .fail_for(Step::Running, unseen, "the init does not answer");
    h.t.worker.restore().await;
    assert_eq!(h.instance(fine).await["InstanceState"], "RUNNING");
    for id in [broken, unseen] {
        assert_eq!(h.instance(id).await["InstanceState"], "STOPPED", "{id}");
        assert!(!h.t.driver.machine(id).unwrap().running);
    }
    let metrics = h.t.core.metrics().encode();
    for line in [
        r#"keyplane_restores_total{outcome="started"} 1"#,
        r#"keyplane_restores_total{outcome="failed"} 2"#,
    ] {
        assert!(metrics.contains(line), "{line} in {metrics}");
    }
    h.t.driver.heal(Step::Start);
    h.ok("StartInstances", json!({"InstanceIds": [broken, unseen]}))
        .await;
    h.settle(&[
        (broken, InstanceState::Running),
        (unseen, InstanceState::Running),
    ])
    .await;
}

#[tokio::test]
async fn a_power_call_on_an_agent_managed_host_fails_and_leaves_it_running() {
    let h = harness().await;
    let token =
        h.t.core
            .issue_registration_token(
                &h.t.account,
                keyplane_core::keypair::Namespace::Cvm,
                REGION,
                60,
            )
            .await
            .unwrap();
    let body = json!({"token": token, "hostname": "h1", "address": "10.0.0.1", "ssh_port": 22});
    let req = Request::builder()
        .method("POST")
        .uri("/keyplane/agent/v1/register")
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let resp = h.app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let bytes = to_bytes(resp.into_body(), 1 << 20).await.unwrap();
    let registered: Value = serde_json::from_slice(&bytes).unwrap();
    let id = registered["instance_id"].as_str().unwrap();
    for action in ["StopInstances", "RebootInstances"] {
        h.ok(action, json!({"InstanceIds": [id]})).await;
        h.settle(&[(id, InstanceState::Running)]).await;
        let i = h.instance(id).await;
        assert_eq!(i["LatestOperationState"], "FAILED", "{action}");
        let why = i["LatestOperationErrorMsg"].as_str().unwrap();
        assert!(why.contains("on the host itself"), "{why}");
    }
    assert_eq!(h.t.driver.calls(), []);
}

/// The worker is woken when operations are recorded, not by every request: a read or a
/// refused call leaves nothing for it to look at, a launch and a stop wake it at once.
#[tokio::test]
async fn only_recorded_operations_wake_the_worker() {
    use std::time::Duration;
    let h = harness().await;
    let wake = h.t.core.operations_recorded();
    let woken = |within: Duration| {
        let wake = wake.clone();
        async move { tokio::time::timeout(within, wake.notified()).await.is_ok() }
    };
    h.ok("DescribeInstances", json!({})).await;
    h.ok("DescribeKeyPairs", json!({})).await;
    assert_eq!(
        h.code("StopInstances", json!({"InstanceIds": ["ins-00000000"]}))
            .await,
        "InvalidInstanceId.NotFound"
    );
    assert!(
        !woken(Duration::from_millis(100)).await,
        "nothing was recorded"
    );
    let (ids, _) = h.run(json!({})).await;
    assert!(woken(Duration::from_secs(10)).await, "a launch wakes it");
    h.settle(&[(ids[0].as_str(), InstanceState::Running)]).await;
    // The settling worker may have taken a wake-up of its own; none is left over.
    while woken(Duration::from_millis(10)).await {}
    h.ok("StopInstances", json!({"InstanceIds": [ids[0]]}))
        .await;
    assert!(woken(Duration::from_secs(10)).await, "a stop wakes it");
}

/// A wait for an operation ends with it, and leaves nothing registered behind: when it
/// returns, when its own bound is up, and when its caller gives up on it.
#[tokio::test]
async fn a_wait_for_an_operation_ends_with_it_and_leaves_nothing_behind() {
    use keyplane_core::workflow::Awaited;
    use std::time::Duration;
    let h = harness().await;
    let (ids, _) = h.run(json!({})).await;
    let id = ids[0].clone();
    h.settle(&[(id.as_str(), InstanceState::Running)]).await;
    h.t.driver.hold(Step::Stop);
    let _worker = h.t.spawn_worker();
    let stop = h.ok("StopInstances", json!({"InstanceIds": [id]})).await;
    let request_id = stop["RequestId"].as_str().unwrap().to_string();
    let core = h.t.core.clone();
    let long = Duration::from_secs(30);
    let gave_up = tokio::time::timeout(
        Duration::from_millis(20),
        core.await_operation(&id, &request_id, long),
    )
    .await;
    assert!(gave_up.is_err(), "the stop is held");
    assert_eq!(
        core.awaited_instances(),
        0,
        "a cancelled wait leaves no entry"
    );
    let bounded = core
        .await_operation(&id, &request_id, Duration::from_millis(20))
        .await
        .unwrap();
    assert!(matches!(bounded, Awaited::InProgress(_)), "{bounded:?}");
    assert_eq!(core.awaited_instances(), 0);
    let waiting = tokio::spawn({
        let (core, id, request_id) = (core.clone(), id.clone(), request_id.clone());
        async move { core.await_operation(&id, &request_id, long).await }
    });
    while core.awaited_instances() == 0 {
        tokio::task::yield_now().await;
    }
    h.t.driver.release(Step::Stop);
    let Awaited::Settled(inst) = waiting.await.unwrap().unwrap() else {
        panic!("the stop ended")
    };
    assert_eq!(inst.state, InstanceState::Stopped);
    assert_eq!(core.awaited_instances(), 0);
}
