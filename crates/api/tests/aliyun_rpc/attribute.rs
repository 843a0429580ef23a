//! ModifyInstanceAttribute, carried out by the real worker: `Password` becomes a deferred
//! operation holding a crypt hash (in effect from the next start or reboot), `InstanceName`
//! renames, the other documented attributes are checked by their rules and refused by name,
//! and bad input gets ECS's codes.

use super::support::Step;
use super::{harness, rpc, send, spawn_worker, Answer, Harness, REGION};
use keyplane_core::instance::InstanceState;
use keyplane_core::store::InstanceStore;

const LINUX: &str = "debian_12_keyplane_sandbox_x64.vhd";
const WINDOWS: &str = "win2022_keyplane_record_x64.vhd";
const OLD: &str = "Kp-Passw0rd!";
const NEW: &str = "Kp-Reset-0rd";

/// Parameters, and the code and HTTP status they are refused with.
type Case<'a> = (Vec<(&'a str, &'a str)>, &'a str, u16);

/// Wait (polling, up to a deadline) until `id` is created and has no operation in progress.
async fn settle(h: &Harness, id: &str) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    while let Some(i) = h.store.get_instance(id).await.unwrap() {
        if !i.is_busy() && i.state != InstanceState::Pending {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{id} still busy");
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
}

async fn run(h: &Harness, image: &str) -> String {
    let a = send(
        h,
        rpc(
            h,
            "RunInstances",
            &[
                ("RegionId", REGION),
                ("ImageId", image),
                ("InstanceType", "ecs.g7.large"),
                ("Password", OLD),
            ],
        ),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let id = a.json()["InstanceIdSets"]["InstanceIdSet"][0]
        .as_str()
        .unwrap()
        .to_string();
    settle(h, &id).await;
    id
}

/// `action` (StartInstance, StopInstance) on `id`, settled.
async fn power(h: &Harness, action: &str, id: &str) {
    let a = send(h, rpc(h, action, &[("InstanceId", id)])).await;
    assert_eq!(a.status, 200, "{action}: {}", a.text);
    settle(h, id).await;
}

async fn state(h: &Harness, id: &str) -> InstanceState {
    h.store.get_instance(id).await.unwrap().unwrap().state
}

async fn modify(h: &Harness, id: &str, extra: &[(&str, &str)]) -> Answer {
    let mut params = vec![("InstanceId", id)];
    params.extend_from_slice(extra);
    send(h, rpc(h, "ModifyInstanceAttribute", &params)).await
}

fn refused(a: &Answer, code: &str, status: u16) {
    assert_eq!((a.code().as_str(), a.status), (code, status), "{}", a.text);
}

async fn hash(h: &Harness, id: &str) -> String {
    let inst = h.store.get_instance(id).await.unwrap().unwrap();
    inst.password_hash.unwrap().expose().to_string()
}

#[tokio::test]
async fn a_password_is_recorded_as_a_hash_for_the_next_boot() {
    let h = harness(0).await;
    let _w = spawn_worker(&h);
    let id = run(&h, LINUX).await;
    let before = hash(&h, &id).await;
    let a = modify(&h, &id, &[("Password", NEW), ("RegionId", REGION)]).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert!(a.json()["RequestId"].is_string());
    // The answer comes once the operation is done: its state and the new hash are there.
    let inst = h.store.get_instance(&id).await.unwrap().unwrap();
    assert_eq!(
        inst.latest_operation.as_deref(),
        Some("ModifyInstanceAttribute")
    );
    assert!(!inst.is_busy());
    assert_eq!(
        inst.state,
        InstanceState::Running,
        "not restarted: deferred"
    );
    let after = hash(&h, &id).await;
    assert_ne!(after, before);
    assert!(after.starts_with("$6$") && !after.contains(NEW));
    // A reboot right after is not refused as "in progress".
    let a = send(&h, rpc(&h, "RebootInstance", &[("InstanceId", &id)])).await;
    assert_eq!(a.status, 200, "{}", a.text);
    settle(&h, &id).await;
    // Nothing to change is a success that records nothing.
    let a = modify(&h, &id, &[]).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(hash(&h, &id).await, after);
    // InstanceName is changed at once, alone or with a password.
    let a = modify(&h, &id, &[("InstanceName", "renamed")]).await;
    assert_eq!(a.status, 200, "{}", a.text);
    let shown = |v: serde_json::Value| v["Instances"]["Instance"][0]["InstanceName"].clone();
    let ids = format!("[\"{id}\"]");
    let describe = rpc(
        &h,
        "DescribeInstances",
        &[("RegionId", REGION), ("InstanceIds", &ids)],
    );
    assert_eq!(shown(send(&h, describe).await.json()), "renamed");
    let a = modify(&h, &id, &[("InstanceName", "web-2"), ("Password", OLD)]).await;
    assert_eq!(a.status, 200, "{}", a.text);
    let describe = rpc(
        &h,
        "DescribeInstances",
        &[("RegionId", REGION), ("InstanceIds", &ids)],
    );
    assert_eq!(shown(send(&h, describe).await.json()), "web-2");
    assert_ne!(hash(&h, &id).await, after);
}

#[tokio::test]
async fn modify_refusals_have_their_codes() {
    let h = harness(0).await;
    let _w = spawn_worker(&h);
    let id = run(&h, LINUX).await;
    let win = run(&h, WINDOWS).await;
    let before = hash(&h, &id).await;
    let long = "a".repeat(257);
    let cases: Vec<Case> = vec![
        (
            vec![("Password", "abcdefgh")],
            "InvalidPassword.Malformed",
            400,
        ),
        (vec![("Password", "Ab1!")], "InvalidPassword.Malformed", 400),
        (
            vec![("Password", "Kp Passw0rd")],
            "InvalidPassword.Malformed",
            400,
        ),
        (
            vec![("InstanceName", "1web")],
            "InvalidInstanceName.Malformed",
            400,
        ),
        (
            vec![("Description", &long)],
            "InvalidDescription.Malformed",
            400,
        ),
        (vec![("HostName", "-bad")], "InvalidHostName.Malformed", 400),
        // Valid, but not changed here: refused by name, and the password with it.
        (
            vec![("Password", NEW), ("HostName", "web-1")],
            "InvalidParameter",
            400,
        ),
        (
            vec![("Description", "a web server")],
            "InvalidParameter",
            400,
        ),
        (
            vec![("SecurityGroupIds.1", "sg-1")],
            "InvalidParameter",
            400,
        ),
        (
            vec![("Password", NEW), ("RegionId", "cn-beijing")],
            "InvalidInstanceId.NotFound",
            404,
        ),
    ];
    for (extra, code, status) in cases {
        refused(&modify(&h, &id, &extra).await, code, status);
    }
    refused(
        &modify(&h, "i-nothere0000000000000", &[("Password", NEW)]).await,
        "InvalidInstanceId.NotFound",
        404,
    );
    refused(
        &send(&h, rpc(&h, "ModifyInstanceAttribute", &[("Password", NEW)])).await,
        "MissingParameter",
        400,
    );
    // A Windows password must not start with `/`; a Linux one may.
    refused(
        &modify(&h, &win, &[("Password", "/Kp-Reset-0rd")]).await,
        "InvalidPassword.Malformed",
        400,
    );
    assert_eq!(hash(&h, &id).await, before, "no refusal changed anything");
    // While it starts (ECS: "the instance cannot be in the Starting state"): the driver holds
    // the start back until the refusal is checked.
    power(&h, "StopInstance", &id).await;
    h.t.driver.hold(Step::Start);
    let a = send(&h, rpc(&h, "StartInstance", &[("InstanceId", &id)])).await;
    assert_eq!(a.status, 200, "{}", a.text);
    h.t.wait_for_state(&id, InstanceState::Starting).await;
    refused(
        &modify(&h, &id, &[("Password", NEW)]).await,
        "IncorrectInstanceStatus",
        403,
    );
    h.t.driver.release(Step::Start);
    settle(&h, &id).await;
    assert_eq!(state(&h, &id).await, InstanceState::Running);
    power(&h, "StopInstance", &id).await;
    assert_eq!(state(&h, &id).await, InstanceState::Stopped);
    let a = modify(&h, &id, &[("Password", "/Kp-Reset-0rd")]).await;
    assert_eq!(a.status, 200, "{}", a.text);
}
