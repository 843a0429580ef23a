//! DescribeBlueprints, DescribeBundles and CreateInstances.

use super::*;

#[tokio::test]
async fn blueprints_are_the_sandbox_images() {
    let h = harness().await;
    let r = h.ok("DescribeBlueprints", json!({})).await;
    assert_eq!(r["TotalCount"], 2);
    let set = r["BlueprintSet"].as_array().unwrap();
    let linux = set.iter().find(|b| b["BlueprintId"] == LINUX).unwrap();
    assert_eq!(linux["PlatformType"], "LINUX_UNIX");
    assert_eq!(linux["BlueprintType"], "PURE_OS");
    assert_eq!(linux["BlueprintState"], "NORMAL");
    let windows = set.iter().find(|b| b["BlueprintId"] == WINDOWS).unwrap();
    assert_eq!(windows["PlatformType"], "WINDOWS");
    let filter = |name: &str, values: Value| json!({"Filters": [{"Name": name, "Values": values}]});
    let r = h
        .ok(
            "DescribeBlueprints",
            filter("platform-type", json!(["WINDOWS"])),
        )
        .await;
    assert_eq!(r["BlueprintSet"][0]["BlueprintId"], WINDOWS);
    assert_eq!(r["TotalCount"], 1);
    let r = h
        .ok(
            "DescribeBlueprints",
            json!({"BlueprintIds": [LINUX, "lhbp-zzzzzzzz"]}),
        )
        .await;
    assert_eq!(r["TotalCount"], 1);
    let r = h
        .ok(
            "DescribeBlueprints",
            filter("blueprint-type", json!(["DOCKER"])),
        )
        .await;
    assert_eq!(r["TotalCount"], 0);
    let cases = [
        (
            json!({"BlueprintIds": [LINUX], "Filters": [{"Name": "blueprint-id", "Values": [LINUX]}]}),
            "InvalidParameter.ParameterConflict",
        ),
        (
            json!({"BlueprintIds": ["img-kpdeb12x"]}),
            "InvalidParameterValue.BlueprintIdMalformed",
        ),
        (
            filter("os", json!(["x"])),
            "InvalidParameter.InvalidFilterNotSupportedName",
        ),
        (
            filter("platform-type", json!(["BSD"])),
            "InvalidParameterValue",
        ),
        (json!({"Limit": 0}), "InvalidParameterValue"),
    ];
    for (body, code) in cases {
        assert_eq!(
            h.code("DescribeBlueprints", body.clone()).await,
            code,
            "{body}"
        );
    }
}

#[tokio::test]
async fn bundles_and_their_platforms() {
    let h = harness().await;
    let r = h.ok("DescribeBundles", json!({})).await;
    assert_eq!(r["TotalCount"], 3);
    let b = &r["BundleSet"][1];
    assert_eq!(b["BundleId"], BUNDLE);
    assert_eq!(
        (b["CPU"].as_i64(), b["Memory"].as_i64()),
        (Some(2), Some(2))
    );
    assert_eq!(b["Price"]["InstancePrice"]["DiscountPrice"], 0.0);
    let r = h
        .ok(
            "DescribeBundles",
            json!({"BlueprintId": WINDOWS, "Zones": ["ap-guangzhou-3"]}),
        )
        .await;
    assert_eq!(r["TotalCount"], 2, "the starter bundle cannot run Windows");
    let r = h
        .ok(
            "DescribeBundles",
            json!({"Filters": [{"Name": "bundle-type", "Values": ["STARTER_BUNDLE"]}]}),
        )
        .await;
    assert_eq!(r["BundleSet"][0]["BundleId"], "bundle_kp_starter_01");
    let cases = [
        (
            json!({"Zones": ["ap-beijing-1"]}),
            "InvalidParameterValue.ZoneInvalid",
        ),
        (
            json!({"BlueprintId": "lhbp-zzzzzzzz"}),
            "ResourceNotFound.BlueprintIdNotFound",
        ),
        (
            json!({"BundleIds": [BUNDLE], "Filters": [{"Name": "bundle-id", "Values": [BUNDLE]}]}),
            "InvalidParameter.ParameterConflict",
        ),
        (
            json!({"Filters": [{"Name": "price", "Values": ["0"]}]}),
            "InvalidParameter.InvalidFilterNotSupportedName",
        ),
    ];
    for (body, code) in cases {
        assert_eq!(
            h.code("DescribeBundles", body.clone()).await,
            code,
            "{body}"
        );
    }
}

#[tokio::test]
async fn create_records_pending_instances() {
    let h = harness().await;
    let r = h
        .ok(
            "CreateInstances",
            create_body(
                json!({"InstanceCount": 3, "InstanceName": "web", "Zones": ["ap-guangzhou-4"],
                               "AutoVoucher": true, "Tags": [{"Key": "a", "Value": "b"}],
                               "ClientToken": "t-1", "Containers": []}),
            ),
        )
        .await;
    let ids = r["InstanceIdSet"].as_array().unwrap();
    assert_eq!(ids.len(), 3);
    let id = ids[0].as_str().unwrap();
    assert!(is_lh_id(id, "lhins-"), "{id}");
    let i = h.instance(id).await;
    assert_eq!(i["InstanceState"], "PENDING");
    assert_eq!(i["LatestOperation"], "CreateInstances");
    assert_eq!(i["LatestOperationState"], "OPERATING");
    assert_eq!(i["LatestOperationRequestId"], r["RequestId"]);
    assert_eq!(
        (i["BundleId"].as_str(), i["BlueprintId"].as_str()),
        (Some(BUNDLE), Some(LINUX))
    );
    assert_eq!(
        (i["CPU"].as_i64(), i["Memory"].as_i64()),
        (Some(2), Some(2))
    );
    assert_eq!(i["InstanceName"], "web");
    assert_eq!(i["Zone"], "ap-guangzhou-4");
    assert_eq!(i["PlatformType"], "LINUX_UNIX");
    assert_eq!(i["InstanceChargeType"], "PREPAID");
    assert_eq!(i["LoginSettings"]["KeyIds"], json!([]));
    let ip = i["PrivateAddresses"][0].as_str().unwrap();
    assert!(ip.starts_with("127.1."), "{ip}");
    h.settle(&[(id, InstanceState::Running)]).await;
    let i = h.instance(id).await;
    assert_eq!(i["InstanceState"], "RUNNING");
    assert_eq!(i["LatestOperationState"], "SUCCESS");
    // Without a name the service names it after the system.
    let (win,) = {
        let v = h
            .create(json!({"BlueprintId": WINDOWS, "LoginConfiguration": {"Password": "Kp-Passw0rd!x"}}))
            .await;
        (v[0].clone(),)
    };
    let w = h.instance(&win).await;
    assert!(w["InstanceName"].as_str().unwrap().starts_with("Windows-"));
    assert_eq!(w["PlatformType"], "WINDOWS");
}

#[tokio::test]
async fn dry_run_answers_only_a_request_id() {
    let h = harness().await;
    let r = h
        .ok("CreateInstances", create_body(json!({"DryRun": true})))
        .await;
    assert_eq!(r.as_object().unwrap().len(), 1, "{r}");
    let d = h.ok("DescribeInstances", json!({})).await;
    assert_eq!(d["TotalCount"], 0);
    // A failing check still fails under DryRun.
    let body = create_body(json!({"DryRun": true, "BundleId": "bundle_nope"}));
    assert_eq!(
        h.code("CreateInstances", body).await,
        "InvalidParameter.BundleIdNotFound"
    );
}

#[tokio::test]
async fn create_with_keys_binds_them() {
    let h = harness().await;
    let k = h.import_key("boot", KEY_A).await;
    let ids = h
        .create(json!({"LoginConfiguration": {"KeyIds": [k]}}))
        .await;
    assert_eq!(
        h.instance(&ids[0]).await["LoginSettings"]["KeyIds"],
        json!([k])
    );
}

#[tokio::test]
async fn create_refusals() {
    let h = harness().await;
    let k = h.import_key("k", KEY_A).await;
    let six: Vec<String> = (0..6).map(|i| format!("lhkp-{i:08}")).collect();
    let tags: Vec<Value> = (0..11)
        .map(|i| json!({"Key": format!("k{i}"), "Value": "v"}))
        .collect();
    let login = |v: Value| json!({ "LoginConfiguration": v });
    let cases = [
        (json!({"InstanceChargePrepaid": null}), "MissingParameter"),
        (json!({"InstanceChargePrepaid": {}}), "MissingParameter"),
        (
            json!({"InstanceChargePrepaid": {"Period": 13}}),
            "InvalidParameterValue.OutOfRange",
        ),
        (
            json!({"InstanceChargePrepaid": {"Period": 1, "RenewFlag": "SOMETIMES"}}),
            "InvalidParameterValue",
        ),
        (
            json!({"BundleId": "bundle_nope"}),
            "InvalidParameter.BundleIdNotFound",
        ),
        (
            json!({"BundleId": "bundle_kp_starter_01", "BlueprintId": WINDOWS}),
            "InvalidParameterValue.BundleNotSupportBlueprintPlatform",
        ),
        (
            json!({"BlueprintId": "img-kpdeb12x"}),
            "InvalidParameterValue.BlueprintIdMalformed",
        ),
        (
            json!({"BlueprintId": "lhbp-zzzzzzzz"}),
            "ResourceNotFound.BlueprintIdNotFound",
        ),
        (
            json!({"InstanceCount": 31}),
            "InvalidParameterValue.OutOfRange",
        ),
        (
            json!({"InstanceCount": 0}),
            "InvalidParameterValue.OutOfRange",
        ),
        (
            json!({"Zones": ["ap-beijing-1"]}),
            "InvalidParameterValue.ZoneInvalid",
        ),
        (
            json!({"InstanceName": "n".repeat(61)}),
            "InvalidParameterValue.InstanceNameTooLong",
        ),
        (
            json!({"ClientToken": "t".repeat(65)}),
            "InvalidParameterValue.ClientTokenTooLong",
        ),
        (
            login(json!({"Password": "password"})),
            "InvalidParameterValue.InvalidPassword",
        ),
        (
            login(json!({"Password": PASSWORD, "KeyIds": [k]})),
            "InvalidParameter.ParameterConflict",
        ),
        (
            login(json!({"AutoGeneratePassword": "YES", "Password": PASSWORD})),
            "InvalidParameter.ParameterConflict",
        ),
        (
            login(json!({"AutoGeneratePassword": "NO"})),
            "MissingParameter",
        ),
        (
            login(json!({"AutoGeneratePassword": "MAYBE"})),
            "InvalidParameterValue",
        ),
        (
            json!({"BlueprintId": WINDOWS, "LoginConfiguration": {"KeyIds": [k]}}),
            "UnsupportedOperation.WindowsNotSupportKeyPair",
        ),
        (
            login(json!({"KeyIds": six})),
            "InvalidParameterValue.LimitExceeded",
        ),
        (
            login(json!({"KeyIds": ["lhkp-zzzzzzzz"]})),
            "ResourceNotFound.KeyIdNotFound",
        ),
        (
            login(json!({"KeyIds": ["skey-12345678"]})),
            "InvalidParameterValue.KeyPairIdMalformed",
        ),
        (
            json!({"Containers": [{"ContainerImage": "nginx"}]}),
            "ResourceUnavailable.DockerUnavailable",
        ),
        (
            json!({"InitCommand": {"Content": "ZWNobyBoaQ=="}}),
            "ResourceUnavailable.TATAgentUnavailable",
        ),
        (
            json!({"FirewallTemplateId": "fw-1"}),
            "InvalidParameterValue.FirewallTemplateIdMalformed",
        ),
        (
            json!({"FirewallTemplateId": "lhft-abcdefgh"}),
            "ResourceNotFound.FirewallTemplateNotFound",
        ),
        (
            json!({"InstanceCount": 2, "DomainName": "example.com"}),
            "InvalidParameter.ParameterConflict",
        ),
        (json!({"Tags": tags}), "InvalidParameterValue.LimitExceeded"),
        (json!({"ImageId": "x"}), "UnknownParameter"),
        (json!({"BundleId": null}), "InvalidParameter"),
    ];
    for (extra, code) in cases {
        let body = create_body(extra.clone());
        assert_eq!(h.code("CreateInstances", body).await, code, "{extra}");
    }
    let d = h.ok("DescribeInstances", json!({})).await;
    assert_eq!(d["TotalCount"], 0, "nothing was created");
}
