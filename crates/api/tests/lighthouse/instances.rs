//! DescribeInstances, StartInstances, StopInstances, RebootInstances, TerminateInstances:
//! the operations they record and the state rules with Lighthouse's codes.

use super::*;

fn set_ids(r: &Value) -> Vec<String> {
    r["InstanceSet"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["InstanceId"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn describe_orders_filters_and_pages() {
    let h = harness().await;
    let old = h.create(json!({"InstanceName": "old"})).await.remove(0);
    h.advance(10);
    let new = h
        .create(json!({"InstanceName": "new", "BundleId": "bundle_kp_gen_04"}))
        .await
        .remove(0);
    let r = h.ok("DescribeInstances", json!({})).await;
    assert_eq!(set_ids(&r), vec![new.clone(), old.clone()], "newest first");
    let by_expiry = json!({"OrderField": "EXPIRED_TIME", "Order": "ASC"});
    let r = h.ok("DescribeInstances", by_expiry).await;
    assert_eq!(set_ids(&r), vec![old.clone(), new.clone()]);
    let r = h
        .ok(
            "DescribeInstances",
            json!({"OrderField": "EXPIRED_TIME", "Order": "DESC", "Limit": 1}),
        )
        .await;
    assert_eq!(
        (r["TotalCount"].as_i64(), set_ids(&r)),
        (Some(2), vec![new.clone()])
    );
    let r = h
        .ok("DescribeInstances", json!({"Offset": 1, "Limit": 1}))
        .await;
    assert_eq!(set_ids(&r), vec![old.clone()]);
    let ip = h.instance(&old).await["PrivateAddresses"][0]
        .as_str()
        .unwrap()
        .to_string();
    let filter = |name: &str, values: Value| json!({"Filters": [{"Name": name, "Values": values}]});
    let cases = [
        (filter("instance-name", json!(["new"])), vec![new.clone()]),
        (filter("private-ip-address", json!([ip])), vec![old.clone()]),
        (
            filter("bundle-id", json!(["bundle_kp_gen_04"])),
            vec![new.clone()],
        ),
        (filter("instance-state", json!(["RUNNING"])), vec![]),
        (
            filter("instance-state", json!(["PENDING"])),
            vec![new.clone(), old.clone()],
        ),
        (filter("zone", json!(["ap-guangzhou-4"])), vec![]),
        (filter("tag-key", json!(["env"])), vec![]),
        (filter("public-ip-address", json!(["1.2.3.4"])), vec![]),
    ];
    for (body, want) in cases {
        let r = h.ok("DescribeInstances", body.clone()).await;
        assert_eq!(set_ids(&r), want, "{body}");
    }
    // Another region's instances are not listed.
    let r = h
        .call_in(Some("ap-shanghai"), "DescribeInstances", json!({}))
        .await;
    assert_eq!(r["TotalCount"], 0);
    let many: Vec<String> = (0..101).map(|i| format!("v{i}")).collect();
    let refusals = [
        (
            json!({"InstanceIds": [old], "Filters": [{"Name": "zone", "Values": ["x"]}]}),
            "InvalidParameter.ParameterConflict",
        ),
        (
            json!({"InstanceIds": ["ins-12345678"]}),
            "InvalidParameterValue.InstanceIdMalformed",
        ),
        (
            filter("image-id", json!(["x"])),
            "InvalidParameter.InvalidFilterNotSupportedName",
        ),
        (
            filter("instance-name", json!(many)),
            "InvalidParameter.FilterValueLimitExceeded",
        ),
        (
            json!({"Order": "ASC"}),
            "MissingParameter.OrderFieldRequired",
        ),
        (
            json!({"OrderField": "CREATED_TIME"}),
            "InvalidParameterValue",
        ),
        (
            json!({"OrderField": "EXPIRED_TIME", "Order": "UP"}),
            "InvalidParameterValue",
        ),
        (json!({"Limit": 101}), "InvalidParameterValue"),
    ];
    for (body, code) in refusals {
        assert_eq!(
            h.code("DescribeInstances", body.clone()).await,
            code,
            "{body}"
        );
    }
}

#[tokio::test]
async fn lifecycle_follows_the_state_rules() {
    let h = harness().await;
    let ids = h.create(json!({"InstanceCount": 2})).await;
    let (a, b) = (ids[0].as_str(), ids[1].as_str());
    let one = |id: &str| json!({ "InstanceIds": [id] });
    // PENDING: being created.
    for action in [
        "StartInstances",
        "StopInstances",
        "RebootInstances",
        "TerminateInstances",
    ] {
        assert_eq!(
            h.code(action, one(a)).await,
            "OperationDenied.InstanceCreating",
            "{action}"
        );
    }
    h.settle(&[(a, InstanceState::Running), (b, InstanceState::Running)])
        .await;
    let invalid = "UnsupportedOperation.InvalidInstanceState";
    assert_eq!(h.code("StartInstances", one(a)).await, invalid);
    let stop = h
        .ok(
            "StopInstances",
            json!({"InstanceIds": [a], "StopType": "HARD"}),
        )
        .await;
    let i = h.instance(a).await;
    assert_eq!(i["InstanceState"], "STOPPING");
    assert_eq!(i["LatestOperation"], "StopInstances");
    assert_eq!(i["LatestOperationState"], "OPERATING");
    assert_eq!(i["LatestOperationRequestId"], stop["RequestId"]);
    // The latest operation is still OPERATING: "the last operation is still in progress".
    let busy = h.code("StopInstances", one(a)).await;
    assert_eq!(busy, "OperationDenied.InstanceOperationInProgress");
    assert_ne!(busy, "UnsupportedOperation.LatestOperationUnfinished");
    let calls = h.settle(&[(a, InstanceState::Stopped)]).await;
    assert_eq!(calls, [super::stop(a, true)]);
    assert_eq!(h.code("StopInstances", one(a)).await, invalid);
    assert_eq!(h.code("RebootInstances", one(a)).await, invalid);
    // All or none: b is running, a is stopped.
    assert_eq!(
        h.code("StopInstances", json!({"InstanceIds": [b, a]}))
            .await,
        invalid
    );
    assert_eq!(h.instance(b).await["InstanceState"], "RUNNING");
    h.ok("StartInstances", one(a)).await;
    assert_eq!(h.instance(a).await["InstanceState"], "STARTING");
    h.settle(&[(a, InstanceState::Running)]).await;
    h.ok(
        "RebootInstances",
        json!({"InstanceIds": [a, b], "StopType": "SOFT_FIRST"}),
    )
    .await;
    assert_eq!(h.instance(b).await["InstanceState"], "REBOOTING");
    let calls = h
        .settle(&[(a, InstanceState::Running), (b, InstanceState::Running)])
        .await;
    // A soft stop first, then a start (which lays out the SSH state first).
    for id in [a, b] {
        let want = [
            super::stop(id, false),
            apply(id, &[], true),
            Call::Start(id.to_string()),
        ];
        assert_eq!(calls_of(&calls, id), want);
    }
    // LAUNCH_FAILED instances can only be terminated.
    h.t.driver.fail(Step::Create, "disk full");
    let failed = h.create(json!({})).await.remove(0);
    h.settle(&[(&failed, InstanceState::LaunchFailed)]).await;
    assert_eq!(h.code("StartInstances", one(&failed)).await, invalid);
    let term = h
        .ok("TerminateInstances", json!({"InstanceIds": [a, failed]}))
        .await;
    let i = h.instance(&failed).await;
    assert_eq!(
        (i["InstanceState"].as_str(), i["LatestOperation"].as_str()),
        (Some("TERMINATING"), Some("TerminateInstances"))
    );
    assert_eq!(i["LatestOperationRequestId"], term["RequestId"]);
}

#[tokio::test]
async fn lifecycle_refusals_have_their_codes() {
    let h = harness().await;
    let id = h.create(json!({})).await.remove(0);
    let far = h
        .call_in(
            Some("ap-shanghai"),
            "CreateInstances",
            create_body(json!({})),
        )
        .await["InstanceIdSet"][0]
        .as_str()
        .unwrap()
        .to_string();
    h.settle(&[
        (&id, InstanceState::Running),
        (&far, InstanceState::Running),
    ])
    .await;
    let many: Vec<String> = (0..101).map(|i| format!("lhins-{i:08}")).collect();
    for action in [
        "StartInstances",
        "StopInstances",
        "RebootInstances",
        "TerminateInstances",
    ] {
        let cases = [
            (
                json!({"InstanceIds": ["lhins-1122"]}),
                "InvalidParameterValue.InstanceIdMalformed",
            ),
            (
                json!({"InstanceIds": ["ins-12345678"]}),
                "InvalidParameterValue.InstanceIdMalformed",
            ),
            (
                json!({"InstanceIds": ["lhins-zzzzzzzz"]}),
                "ResourceNotFound.InstanceIdNotFound",
            ),
            (
                json!({"InstanceIds": [far]}),
                "ResourceNotFound.InstanceNotFound",
            ),
            (
                json!({"InstanceIds": [id, id]}),
                "InvalidParameterValue.Duplicated",
            ),
            (
                json!({"InstanceIds": many}),
                "InvalidParameterValue.LimitExceeded",
            ),
            (json!({"InstanceIds": []}), "MissingParameter"),
            (json!({}), "MissingParameter"),
            (
                json!({"InstanceIds": [id], "ForceStop": true}),
                "UnknownParameter",
            ),
        ];
        for (body, code) in cases {
            assert_eq!(h.code(action, body.clone()).await, code, "{action} {body}");
        }
    }
    for action in ["StopInstances", "RebootInstances"] {
        let body = json!({"InstanceIds": [id], "StopType": "GENTLE"});
        assert_eq!(
            h.code(action, body).await,
            "InvalidParameterValue",
            "{action}"
        );
    }
}

#[tokio::test]
async fn a_failed_step_leaves_the_instance_in_the_state_it_is_in() {
    let h = harness().await;
    let ids = h.create(json!({"InstanceCount": 2})).await;
    let (a, b) = (ids[0].as_str(), ids[1].as_str());
    h.settle(&[(a, InstanceState::Running), (b, InstanceState::Running)])
        .await;
    h.stopped(&[a]).await;
    h.t.driver.fail(Step::Start, "no memory left");
    h.ok("StartInstances", json!({"InstanceIds": [a]})).await;
    h.settle(&[(a, InstanceState::Stopped)]).await;
    let i = h.instance(a).await;
    assert_eq!(i["InstanceState"], "STOPPED");
    assert_eq!(i["LatestOperationState"], "FAILED");
    h.t.driver.heal(Step::Start);
    h.started(&[a]).await;
    h.t.driver
        .fail_for(Step::Stop, b, "the init does not answer");
    h.ok("StopInstances", json!({"InstanceIds": [b]})).await;
    h.settle(&[(b, InstanceState::Running)]).await;
    assert_eq!(h.instance(b).await["LatestOperationState"], "FAILED");
    h.ok("RebootInstances", json!({"InstanceIds": [b]})).await;
    h.settle(&[(b, InstanceState::Running)]).await;
    h.t.driver.heal(Step::Stop);
    h.stopped(&[b]).await;
}
