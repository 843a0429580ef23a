//! State errors name the real state: an operation in progress is said to be in progress (and
//! which), not hidden behind the state it leaves the instance in meanwhile.

use super::*;

impl H {
    /// The error of a call that must fail: code and message.
    async fn error(&self, action: &str, body: Value) -> (String, String) {
        let r = self.call_in(REGION, action, body).await;
        let e = &r["Error"];
        (
            e["Code"].as_str().unwrap_or_default().to_string(),
            e["Message"].as_str().unwrap_or_default().to_string(),
        )
    }
}

#[tokio::test]
async fn an_instance_being_created_says_so() {
    let h = harness().await;
    let key = h.import_key("k", KEY_A).await;
    let (ids, _) = h.run(json!({})).await;
    let (code, message) = h
        .error(
            "AssociateInstancesKeyPairs",
            json!({"InstanceIds": [&ids[0]], "KeyIds": [key], "ForceStop": true}),
        )
        .await;
    assert_eq!(code, "OperationDenied.InstanceOperationInProgress");
    assert!(message.contains("pending"), "{message}");
    assert!(
        message.contains("RunInstances operation still in progress"),
        "{message}"
    );
}

#[tokio::test]
async fn a_bind_that_stopped_the_instance_is_the_reason_not_the_stop() {
    let h = harness().await;
    let key = h.import_key("k", KEY_A).await;
    let (ids, _) = h.run(json!({})).await;
    let id = ids[0].as_str();
    h.settle(&[(id, InstanceState::Running)]).await;
    h.ok(
        "AssociateInstancesKeyPairs",
        json!({"InstanceIds": [id], "KeyIds": [key], "ForceStop": true}),
    )
    .await;
    // The worker's first steps: the running instance is stopped while the keys go in (the
    // driver holds the keys back until the refusal is checked).
    h.t.driver.hold(support::Step::Apply);
    let worker = h.t.spawn_worker();
    h.t.wait_for_state(id, InstanceState::Stopped).await;
    let (code, message) = h.error("StopInstances", json!({"InstanceIds": [id]})).await;
    assert_eq!(
        code, "OperationDenied.InstanceOperationInProgress",
        "{message}"
    );
    assert!(
        message.contains("stopped, with its AssociateInstancesKeyPairs operation"),
        "{message}"
    );
    // Settled again (the bind started the instance again, as it was running), the state
    // itself is the reason.
    h.t.driver.release(support::Step::Apply);
    h.t.wait_settled().await;
    worker.stop().await;
    assert_eq!(h.instance(id).await["LatestOperationState"], "SUCCESS");
    let (code, message) = h
        .error("StartInstances", json!({"InstanceIds": [id]}))
        .await;
    assert_eq!(code, "UnsupportedOperation.InstanceStateRunning");
    assert!(message.contains("is running, which"), "{message}");
}
