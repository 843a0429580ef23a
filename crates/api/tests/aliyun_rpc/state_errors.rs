//! ECS state errors name the real state: AttachKeyPair or StopInstance while RunInstances'
//! own operation is still in progress says so, and a failed launch is not passed off as a
//! plain stop.

use super::{harness, rpc, send, Harness, REGION};
use keyplane_core::instance::{InstanceState, OpState};
use keyplane_core::store::InstanceStore;

const LINUX: &str = "debian_12_keyplane_sandbox_x64.vhd";
const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIRF8lXPd0sPOj9nqAd4vm2P4tUtcerb0/0/KG7LHrKJ a";

async fn run_and_import(h: &Harness) -> String {
    let a = send(
        h,
        rpc(
            h,
            "ImportKeyPair",
            &[
                ("RegionId", REGION),
                ("KeyPairName", "ops"),
                ("PublicKeyBody", KEY),
            ],
        ),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let a = send(
        h,
        rpc(
            h,
            "RunInstances",
            &[
                ("RegionId", REGION),
                ("ImageId", LINUX),
                ("InstanceType", "ecs.g7.large"),
                ("Password", "Kp-Passw0rd!"),
            ],
        ),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    a.json()["InstanceIdSets"]["InstanceIdSet"][0]
        .as_str()
        .unwrap()
        .to_string()
}

fn attach(h: &Harness, id: &str) -> axum::http::Request<axum::body::Body> {
    let ids = format!("[\"{id}\"]");
    rpc(
        h,
        "AttachKeyPair",
        &[
            ("RegionId", REGION),
            ("KeyPairName", "ops"),
            ("InstanceIds", &ids),
        ],
    )
}

#[tokio::test]
async fn calls_during_run_instances_say_its_operation_is_in_progress() {
    let h = harness(0).await;
    // No worker: RunInstances' create operation stays in progress.
    let id = run_and_import(&h).await;
    for req in [
        attach(&h, &id),
        rpc(&h, "StopInstance", &[("InstanceId", &id)]),
    ] {
        let a = send(&h, req).await;
        assert_eq!(
            (a.status, a.code()),
            (403, "IncorrectInstanceStatus".into())
        );
        let message = a.json()["Message"].as_str().unwrap().to_string();
        assert!(
            message.contains("is Pending, with its RunInstances operation still in progress"),
            "{message}"
        );
    }
}

#[tokio::test]
async fn a_failed_launch_is_named_as_such() {
    let h = harness(0).await;
    // The sandbox cannot be created.
    h.t.driver.fail(super::support::Step::Create, "no sandbox");
    let id = run_and_import(&h).await;
    h.t.settle().await;
    let inst = h.store.get_instance(&id).await.unwrap().unwrap();
    assert_eq!(inst.state, InstanceState::LaunchFailed);
    assert_eq!(inst.latest_operation_state, Some(OpState::Failed));
    let why = inst.latest_operation_error.unwrap();
    assert!(why.contains("no sandbox"), "{why}");
    let a = send(&h, attach(&h, &id)).await;
    assert_eq!(
        (a.status, a.code()),
        (403, "IncorrectInstanceStatus".into())
    );
    let message = a.json()["Message"].as_str().unwrap().to_string();
    assert!(message.contains("Stopped (its launch failed)"), "{message}");
}
