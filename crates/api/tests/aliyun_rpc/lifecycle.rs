//! Instances and bindings, carried out by the real worker: DescribeImages, RunInstances,
//! CreateInstance, DescribeInstances, AttachKeyPair/DetachKeyPair (per-instance results, the
//! Windows rule, deferred until start or reboot), Start/Stop/Reboot/DeleteInstance.

use super::{harness, rpc, send, spawn_worker, Harness, REGION};
use keyplane_core::store::InstanceStore;
use serde_json::Value;

const LINUX: &str = "debian_12_keyplane_sandbox_x64.vhd";
const WINDOWS: &str = "win2022_keyplane_record_x64.vhd";
const KEY_A: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIRF8lXPd0sPOj9nqAd4vm2P4tUtcerb0/0/KG7LHrKJ a";
const KEY_B: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPGZAGXx9EOoGbc75pfXOHdHL78Rsj4sB3XUZF0HwvO1 b";

/// Wait (polling, up to a deadline) until `id` has no operation in progress.
async fn settle(h: &Harness, id: &str) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    while let Some(i) = h.store.get_instance(id).await.unwrap() {
        if !i.is_busy() {
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
                ("Password", "Kp-Passw0rd!"),
                ("InstanceName", "web"),
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

async fn instance(h: &Harness, id: &str) -> Value {
    let ids = format!("[\"{id}\"]");
    let v = send(
        h,
        rpc(
            h,
            "DescribeInstances",
            &[("RegionId", REGION), ("InstanceIds", &ids)],
        ),
    )
    .await
    .json();
    assert_eq!(v["TotalCount"], 1, "{v}");
    v["Instances"]["Instance"][0].clone()
}

async fn effective(h: &Harness, id: &str) -> Vec<String> {
    h.store
        .get_instance(id)
        .await
        .unwrap()
        .unwrap()
        .effective_key_ids
}

async fn import(h: &Harness, name: &str, key: &str) {
    let a = send(
        h,
        rpc(
            h,
            "ImportKeyPair",
            &[
                ("RegionId", REGION),
                ("KeyPairName", name),
                ("PublicKeyBody", key),
            ],
        ),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
}

#[tokio::test]
async fn images_and_instances() {
    let h = harness(0).await;
    let _w = spawn_worker(&h);
    let v = send(
        &h,
        rpc(
            &h,
            "DescribeImages",
            &[("RegionId", REGION), ("OSType", "windows")],
        ),
    )
    .await
    .json();
    assert_eq!(v["TotalCount"], 1);
    assert_eq!(v["Images"]["Image"][0]["ImageId"], WINDOWS);
    let id = run(&h, LINUX).await;
    assert!(id.starts_with("i-") && id.len() == 22, "{id}");
    let i = instance(&h, &id).await;
    assert_eq!(i["Status"], "Running");
    assert_eq!(i["OSType"], "linux");
    assert_eq!(i["InstanceName"], "web");
    assert_eq!(i["KeyPairName"], "");
    assert!(i["VpcAttributes"]["PrivateIpAddress"]["IpAddress"][0]
        .as_str()
        .unwrap()
        .starts_with("127.1."));
    let v = send(
        &h,
        rpc(
            &h,
            "DescribeInstances",
            &[("RegionId", REGION), ("Status", "Stopped")],
        ),
    )
    .await
    .json();
    assert_eq!(v["TotalCount"], 0);
    let a = send(
        &h,
        rpc(
            &h,
            "DescribeInstances",
            &[("RegionId", REGION), ("Status", "Gone")],
        ),
    )
    .await;
    assert_eq!((a.status, a.code()), (404, "InvalidStatus.NotFound".into()));
    let a = send(
        &h,
        rpc(
            &h,
            "DescribeInstances",
            &[("RegionId", REGION), ("InstanceIds", "i-1,i-2")],
        ),
    )
    .await;
    assert_eq!(
        (a.status, a.code()),
        (400, "InvalidInstanceIds.Malformed".into())
    );

    for (params, code, status) in [
        (
            vec![("InstanceType", "ecs.g7.large")],
            "MissingParameter",
            400,
        ),
        (
            vec![("ImageId", "nope.vhd"), ("InstanceType", "ecs.g7.large")],
            "InvalidImageId.NotFound",
            404,
        ),
        (
            vec![("ImageId", LINUX), ("InstanceType", "big")],
            "InvalidInstanceType.ValueNotSupported",
            400,
        ),
        (
            vec![("ImageId", LINUX), ("InstanceType", "ecs.g7.32xlarge")],
            "OperationDenied.NoStock",
            403,
        ),
        (
            vec![
                ("ImageId", LINUX),
                ("InstanceType", "ecs.g7.large"),
                ("Password", "short"),
            ],
            "InvalidPassword.Malformed",
            400,
        ),
        (
            vec![
                ("ImageId", LINUX),
                ("InstanceType", "ecs.g7.large"),
                ("ZoneId", "cn-beijing-a"),
            ],
            "InvalidZoneId.NotFound",
            404,
        ),
        (
            vec![
                ("ImageId", LINUX),
                ("InstanceType", "ecs.g7.large"),
                ("KeyPairName", "ghost"),
            ],
            "InvalidKeyPairName.NotFound",
            404,
        ),
        (
            vec![
                ("ImageId", LINUX),
                ("InstanceType", "ecs.g7.large"),
                ("DryRun", "true"),
            ],
            "DryRunOperation",
            400,
        ),
    ] {
        let mut p = vec![("RegionId", REGION)];
        p.extend(params);
        let a = send(&h, rpc(&h, "RunInstances", &p)).await;
        assert_eq!(
            (a.status, a.code()),
            (status, code.to_string()),
            "{}",
            a.text
        );
    }

    let a = send(
        &h,
        rpc(
            &h,
            "CreateInstance",
            &[
                ("RegionId", REGION),
                ("ImageId", LINUX),
                ("InstanceType", "ecs.g7.large"),
            ],
        ),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let created = a.json()["InstanceId"].as_str().unwrap().to_string();
    settle(&h, &created).await;
    let i = instance(&h, &created).await;
    assert_eq!(
        i["Status"], "Stopped",
        "CreateInstance leaves the instance stopped"
    );
    assert_eq!(i["InstanceName"], created.as_str(), "no name: the id");
}

#[tokio::test]
async fn attach_is_deferred_to_the_next_reboot_and_windows_fails() {
    let h = harness(0).await;
    let _w = spawn_worker(&h);
    import(&h, "ops", KEY_A).await;
    import(&h, "ops2", KEY_B).await;
    let linux = run(&h, LINUX).await;
    let windows = run(&h, WINDOWS).await;
    let both = format!("[\"{linux}\",\"{windows}\"]");
    let a = send(
        &h,
        rpc(
            &h,
            "AttachKeyPair",
            &[
                ("RegionId", REGION),
                ("KeyPairName", "ops"),
                ("InstanceIds", &both),
            ],
        ),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let v = a.json();
    assert_eq!(
        (v["TotalCount"].clone(), v["FailCount"].clone()),
        ("2".into(), "1".into())
    );
    assert_eq!(v["KeyPairName"], "ops");
    let results = v["Results"]["Result"].as_array().unwrap();
    assert_eq!(results[0]["InstanceId"], linux.as_str());
    assert_eq!(
        (
            results[0]["Code"].clone(),
            results[0]["Success"].clone(),
            results[0]["Message"].clone()
        ),
        ("200".into(), "true".into(), "successful".into())
    );
    assert_eq!(results[1]["Code"], "DependencyViolation.WindowsInstance");
    assert_eq!(results[1]["Success"], "false");

    // Recorded at once, in effect only from the next reboot: the machine has no key yet.
    assert_eq!(instance(&h, &linux).await["KeyPairName"], "ops");
    assert!(effective(&h, &linux).await.is_empty());
    assert!(h.t.driver.machine(&linux).unwrap().keys.is_empty());
    let a = send(
        &h,
        rpc(
            &h,
            "RebootInstance",
            &[("InstanceId", &linux), ("ForceStop", "true")],
        ),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    settle(&h, &linux).await;
    let ops_id = h.store.get_instance(&linux).await.unwrap().unwrap().key_ids;
    assert_eq!(effective(&h, &linux).await, ops_id);
    // The reboot wrote it into the machine's SSH state before it started again.
    let machine = h.t.driver.machine(&linux).unwrap();
    assert_eq!(
        (machine.keys, machine.running),
        (vec![KEY_A.to_string()], true)
    );

    // A new key replaces the old one.
    let one = format!("[\"{linux}\"]");
    let a = send(
        &h,
        rpc(
            &h,
            "AttachKeyPair",
            &[
                ("RegionId", REGION),
                ("KeyPairName", "ops2"),
                ("InstanceIds", &one),
            ],
        ),
    )
    .await;
    assert_eq!(a.status, 200);
    assert_eq!(instance(&h, &linux).await["KeyPairName"], "ops2");
    assert_eq!(
        h.store
            .get_instance(&linux)
            .await
            .unwrap()
            .unwrap()
            .key_ids
            .len(),
        1
    );

    // Windows alone: the call itself fails, 403.
    let win = format!("[\"{windows}\"]");
    let a = send(
        &h,
        rpc(
            &h,
            "AttachKeyPair",
            &[
                ("RegionId", REGION),
                ("KeyPairName", "ops"),
                ("InstanceIds", &win),
            ],
        ),
    )
    .await;
    assert_eq!(
        (a.status, a.code()),
        (403, "DependencyViolation.WindowsInstance".into())
    );
    let a = send(
        &h,
        rpc(
            &h,
            "AttachKeyPair",
            &[
                ("RegionId", REGION),
                ("KeyPairName", "ghost"),
                ("InstanceIds", &one),
            ],
        ),
    )
    .await;
    assert_eq!(
        (a.status, a.code()),
        (404, "InvalidKeyPairName.NotFound".into())
    );
    let many: Vec<String> = (0..51).map(|i| format!("\"i-{i:020}\"")).collect();
    let many = format!("[{}]", many.join(","));
    let a = send(
        &h,
        rpc(
            &h,
            "AttachKeyPair",
            &[
                ("RegionId", REGION),
                ("KeyPairName", "ops"),
                ("InstanceIds", &many),
            ],
        ),
    )
    .await;
    assert_eq!(
        (a.status, a.code()),
        (400, "DependencyViolation.IoOptimize".into())
    );
    let a = send(
        &h,
        rpc(
            &h,
            "AttachKeyPair",
            &[
                ("RegionId", REGION),
                ("KeyPairName", "ops"),
                ("InstanceIds", "[\"i-00000000000000000000\"]"),
            ],
        ),
    )
    .await;
    assert_eq!(
        (a.status, a.code()),
        (404, "InvalidInstanceId.NotFound".into())
    );
    let a = send(
        &h,
        rpc(
            &h,
            "DeleteKeyPairs",
            &[("RegionId", REGION), ("KeyPairNames", "[\"ops2\"]")],
        ),
    )
    .await;
    assert_eq!(
        (a.status, a.code()),
        (
            400,
            "InvalidParameter.KeypairAlreadyAttachedInstance".into()
        )
    );

    // Detach: recorded now, password login back from the next start.
    let a = send(
        &h,
        rpc(
            &h,
            "DetachKeyPair",
            &[
                ("RegionId", REGION),
                ("KeyPairName", "ops2"),
                ("InstanceIds", &one),
            ],
        ),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.json()["FailCount"], "0");
    assert_eq!(instance(&h, &linux).await["KeyPairName"], "");
    assert_eq!(
        effective(&h, &linux).await.len(),
        1,
        "still in effect until a start"
    );
    let a = send(&h, rpc(&h, "StopInstance", &[("InstanceId", &linux)])).await;
    assert_eq!(a.status, 200);
    settle(&h, &linux).await;
    let a = send(&h, rpc(&h, "StartInstance", &[("InstanceId", &linux)])).await;
    assert_eq!(a.status, 200);
    settle(&h, &linux).await;
    assert!(effective(&h, &linux).await.is_empty());
}

#[tokio::test]
async fn lifecycle_rules() {
    let h = harness(0).await;
    let _w = spawn_worker(&h);
    let id = run(&h, LINUX).await;
    let a = send(&h, rpc(&h, "StartInstance", &[("InstanceId", &id)])).await;
    assert_eq!(
        (a.status, a.code()),
        (403, "IncorrectInstanceStatus".into())
    );
    let a = send(
        &h,
        rpc(
            &h,
            "StopInstance",
            &[("InstanceId", &id), ("DryRun", "true")],
        ),
    )
    .await;
    assert_eq!((a.status, a.code()), (400, "DryRunOperation".into()));
    let a = send(&h, rpc(&h, "DeleteInstance", &[("InstanceId", &id)])).await;
    assert_eq!(
        (a.status, a.code()),
        (403, "IncorrectInstanceStatus".into())
    );
    let a = send(&h, rpc(&h, "StopInstance", &[("InstanceId", "i-nothere")])).await;
    assert_eq!(
        (a.status, a.code()),
        (404, "InvalidInstanceId.NotFound".into())
    );
    let a = send(
        &h,
        rpc(
            &h,
            "StopInstance",
            &[("InstanceId", &id), ("ForceStop", "true")],
        ),
    )
    .await;
    assert_eq!(a.status, 200);
    settle(&h, &id).await;
    assert_eq!(instance(&h, &id).await["Status"], "Stopped");
    let a = send(&h, rpc(&h, "RebootInstance", &[("InstanceId", &id)])).await;
    assert_eq!(
        (a.status, a.code()),
        (403, "IncorrectInstanceStatus".into())
    );
    let a = send(&h, rpc(&h, "StartInstance", &[("InstanceId", &id)])).await;
    assert_eq!(a.status, 200);
    settle(&h, &id).await;
    let a = send(
        &h,
        rpc(
            &h,
            "DeleteInstance",
            &[("InstanceId", &id), ("Force", "true")],
        ),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    settle(&h, &id).await;
    let v = send(&h, rpc(&h, "DescribeInstances", &[("RegionId", REGION)]))
        .await
        .json();
    assert_eq!(v["TotalCount"], 0);
}

#[tokio::test]
async fn a_failed_start_or_stop_leaves_the_instance_as_it_is() {
    use super::support::Step;
    let h = harness(0).await;
    let _w = spawn_worker(&h);
    let id = run(&h, LINUX).await;
    let call = |action: &'static str| {
        let (h, id) = (&h, id.clone());
        async move {
            let a = send(h, rpc(h, action, &[("InstanceId", &id)])).await;
            assert_eq!(a.status, 200, "{action}: {}", a.text);
            settle(h, &id).await;
            instance(h, &id).await
        }
    };
    h.t.driver.fail(Step::Stop, "the init does not answer");
    let i = call("StopInstance").await;
    assert_eq!(i["Status"], "Running", "{i}");
    h.t.driver.heal(Step::Stop);
    assert_eq!(call("StopInstance").await["Status"], "Stopped");
    h.t.driver.fail(Step::Start, "no memory left");
    assert_eq!(call("StartInstance").await["Status"], "Stopped");
    h.t.driver.heal(Step::Start);
    assert_eq!(call("StartInstance").await["Status"], "Running");
    assert!(h.t.driver.machine(&id).unwrap().running);
    // A reboot that stops it but cannot start it again leaves it stopped, which a delete takes.
    h.t.driver.fail(Step::Start, "no memory left");
    assert_eq!(call("RebootInstance").await["Status"], "Stopped");
    let a = send(&h, rpc(&h, "DeleteInstance", &[("InstanceId", &id)])).await;
    assert_eq!(a.status, 200, "{}", a.text);
    settle(&h, &id).await;
    assert_eq!(h.t.driver.machine(&id), None);
}

/// A forced delete of a running instance that fails where the driver cannot tell whether the
/// machine runs leaves it Running, as it was; a delete of a stopped one leaves it Stopped.
#[tokio::test]
async fn a_failed_delete_the_driver_cannot_see_rests_where_it_was() {
    use super::support::Step;
    let h = harness(0).await;
    let _w = spawn_worker(&h);
    let (running, stopped) = (run(&h, LINUX).await, run(&h, LINUX).await);
    let a = send(&h, rpc(&h, "StopInstance", &[("InstanceId", &stopped)])).await;
    assert_eq!(a.status, 200, "{}", a.text);
    settle(&h, &stopped).await;
    h.t.driver.fail(Step::Destroy, "device busy");
    h.t.driver.fail(Step::Running, "the init does not answer");
    for (id, force) in [(&running, "true"), (&stopped, "false")] {
        let a = send(
            &h,
            rpc(
                &h,
                "DeleteInstance",
                &[("InstanceId", id), ("Force", force)],
            ),
        )
        .await;
        assert_eq!(a.status, 200, "{}", a.text);
        settle(&h, id).await;
    }
    assert_eq!(instance(&h, &running).await["Status"], "Running");
    assert_eq!(instance(&h, &stopped).await["Status"], "Stopped");
    // Once the machines can be destroyed, a delete takes each.
    h.t.driver.heal(Step::Destroy);
    for id in [&running, &stopped] {
        let a = send(
            &h,
            rpc(
                &h,
                "DeleteInstance",
                &[("InstanceId", id), ("Force", "true")],
            ),
        )
        .await;
        assert_eq!(a.status, 200, "{}", a.text);
        settle(&h, id).await;
        assert_eq!(h.t.driver.machine(id), None);
    }
}
