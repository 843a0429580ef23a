//! RunInstances: the records it makes and every refusal.

use super::*;

#[tokio::test]
async fn run_instances_records_pending_instances_with_their_operation() {
    let h = harness().await;
    let key = h.import_key("a", KEY_A).await;
    let (ids, request_id) = h
        .run(json!({
            "InstanceCount": 2,
            "InstanceName": "web-{R:7,F:2}",
            "LoginSettings": {"Password": "Passw0rd!", "KeyIds": [key]},
        }))
        .await;
    assert_eq!(ids.len(), 2);
    assert!(ids.iter().all(|id| is_instance_id(id)), "{ids:?}");
    let i = h.instance(&ids[0]).await;
    assert_eq!(i["InstanceState"], "PENDING");
    assert_eq!(i["LatestOperation"], "RunInstances");
    assert_eq!(i["LatestOperationState"], "OPERATING");
    assert_eq!(i["LatestOperationRequestId"], request_id.as_str());
    assert_eq!(i["InstanceName"], "web-07");
    assert_eq!(h.instance(&ids[1]).await["InstanceName"], "web-08");
    assert_eq!(
        i["Placement"],
        json!({"Zone": "ap-guangzhou-3", "ProjectId": 0, "HostId": null})
    );
    assert_eq!(i["LoginSettings"]["KeyIds"], json!([key]));
    assert_eq!(
        (i["CPU"].as_i64(), i["Memory"].as_i64()),
        (Some(2), Some(4))
    );
    assert_eq!(i["InstanceChargeType"], "POSTPAID_BY_HOUR");
    assert_eq!(i["DefaultLoginUser"], "root");
    assert_eq!(i["DefaultLoginPort"], 22);
    assert_eq!(i["RestrictState"], "NORMAL");
    assert_eq!(i["ImageId"], LINUX);
    assert!(i["OsName"].as_str().unwrap().contains("Debian"));
    assert_eq!(i["PrivateIpAddresses"].as_array().unwrap().len(), 1);
    assert!(i["Uuid"].as_str().unwrap().len() == 36);
    assert_eq!(i["CreatedTime"], "2026-11-24T01:06:35Z");
    // A Windows record, without keys: no bound keys answer null.
    let (win, _) = h
        .run(json!({"ImageId": WINDOWS, "LoginSettings": {"Password": "Passw0rd!abc"}}))
        .await;
    let w = h.instance(&win[0]).await;
    assert_eq!(w["LoginSettings"]["KeyIds"], Value::Null);
    assert_eq!(w["InstanceName"], "未命名");
    assert_eq!(w["DefaultLoginUser"], "Administrator");
    // Status.
    let s = h.ok("DescribeInstancesStatus", json!({})).await;
    assert_eq!(s["TotalCount"], 3);
    assert_eq!(s["InstanceStatusSet"][0]["InstanceState"], "PENDING");
    let s = h
        .ok(
            "DescribeInstancesStatus",
            json!({"InstanceIds": [win[0]], "Limit": 1}),
        )
        .await;
    assert_eq!(
        s["InstanceStatusSet"],
        json!([{"InstanceId": win[0], "InstanceState": "PENDING"}])
    );
}

#[tokio::test]
async fn run_instances_refusals_have_their_codes() {
    let h = harness().await;
    let key = h.import_key("a", KEY_A).await;
    let login = |p: &str| json!({"LoginSettings": {"Password": p}});
    let cases = [
        (
            json!({"Placement": null, "ImageId": LINUX}),
            "MissingParameter",
        ),
        (json!({"ImageId": null}), "MissingParameter"),
        (json!({"Placement": {"ProjectId": 0}}), "MissingParameter"),
        (
            json!({"Placement": {"Zone": "ap-beijing-3"}}),
            "InvalidZone.MismatchRegion",
        ),
        (
            json!({"Placement": {"Zone": "ap-guangzhou"}}),
            "InvalidZone.MismatchRegion",
        ),
        (
            json!({"Placement": {"Zone": "ap-guangzhou-3", "ProjectId": 7}}),
            "InvalidProjectId.NotFound",
        ),
        (
            json!({"Placement": {"Zone": "ap-guangzhou-3", "Bogus": 1}}),
            "UnknownParameter",
        ),
        (json!({"ImageId": "img-1122"}), "InvalidImageId.Malformed"),
        (
            json!({"ImageId": "img-zzzzzzzz"}),
            "InvalidImageId.NotFound",
        ),
        (
            json!({"InstanceType": "big"}),
            "InvalidInstanceType.Malformed",
        ),
        (
            json!({"InstanceType": "S5.16XLARGE256"}),
            "ResourceInsufficient.SpecifiedInstanceType",
        ),
        (
            json!({"InstanceType": "M5.4XLARGE128"}),
            "ResourceInsufficient.SpecifiedInstanceType",
        ),
        (
            json!({"InstanceChargeType": "PREPAID"}),
            "UnsupportedOperation.InstanceChargeType",
        ),
        (
            json!({"InstanceChargeType": "FREE"}),
            "InvalidParameterValue",
        ),
        (json!({"InstanceCount": 0}), "InvalidParameterValue"),
        (json!({"InstanceCount": 501}), "InvalidParameterValue"),
        (json!({"InstanceCount": 201}), "LimitExceeded.InstanceQuota"),
        (
            json!({"InstanceCount": 2, "MinCount": 3}),
            "InvalidParameterValue.InvalidParameterMinCount",
        ),
        (
            json!({"InstanceName": "x".repeat(129)}),
            "InvalidInstanceName.TooLong",
        ),
        (json!({"InstanceName": "x{R:a}"}), "InvalidParameterValue"),
        (
            json!({"HostName": "-bad-"}),
            "InvalidParameter.HostNameIllegal",
        ),
        (
            json!({"ClientToken": "t".repeat(65)}),
            "InvalidClientToken.TooLong",
        ),
        (
            json!({"UserData": "not base64!"}),
            "InvalidParameterValue.InvalidUserDataFormat",
        ),
        (
            json!({"LaunchTemplate": {"LaunchTemplateId": "lt-1"}}),
            "InvalidParameterValue.LaunchTemplateIdMalformed",
        ),
        (
            json!({"LaunchTemplate": {"LaunchTemplateId": "lt-abcdefgh"}}),
            "InvalidParameterValue.LaunchTemplateNotFound",
        ),
        (login("short1A"), "InvalidPassword"),
        (login("alllowercase"), "InvalidPassword"),
        (login("Passw0rd with space"), "InvalidPassword"),
        (
            json!({"ImageId": WINDOWS, "LoginSettings": {"Password": "Passw0rd"}}),
            "InvalidPassword",
        ),
        (
            json!({"ImageId": WINDOWS, "LoginSettings": {"KeyIds": [key]}}),
            "UnsupportedOperation.KeyPairUnsupportedWindows",
        ),
        (
            json!({"LoginSettings": {"KeyIds": ["skey-zzzzzzzz"]}}),
            "InvalidKeyPairId.NotFound",
        ),
        (
            json!({"LoginSettings": {"KeyIds": ["skey-1"]}}),
            "InvalidKeyPairId.Malformed",
        ),
        (
            json!({"LoginSettings": {"KeyIds": [key, key]}}),
            "InvalidParameterValue.Duplicate",
        ),
        (
            json!({"LoginSettings": {"KeyIds": [key], "KeepImageLogin": "true"}}),
            "InvalidParameter.ParameterConflict",
        ),
        (
            json!({"LoginSettings": {"KeepImageLogin": "TRUE"}}),
            "InvalidParameterValue",
        ),
        (json!({"DryRun": true}), "DryRunOperation"),
        (
            json!({"DryRun": "True", "InstanceCount": "2"}),
            "DryRunOperation",
        ),
        (json!({"Bogus": 1}), "UnknownParameter"),
        (json!({"InstanceCount": "many"}), "InvalidParameter"),
    ];
    for (extra, code) in cases {
        let body = run_body(extra.clone());
        let body = match body.as_object() {
            // `null` in `extra` removes the field.
            Some(m) => Value::Object(
                m.clone()
                    .into_iter()
                    .filter(|(_, v)| !v.is_null())
                    .collect(),
            ),
            None => body,
        };
        assert_eq!(h.code("RunInstances", body).await, code, "{extra}");
    }
    let r = h.ok("DescribeInstances", json!({})).await;
    assert_eq!(
        r["TotalCount"], 0,
        "nothing was created by a refused call or a dry run"
    );
}

#[tokio::test]
async fn run_instances_accepts_every_documented_field() {
    let h = harness().await;
    let key = h.import_key("a", KEY_A).await;
    let body = json!({
        "InstanceChargeType": "POSTPAID_BY_HOUR",
        "InstanceChargePrepaid": {"Period": 1, "RenewFlag": "NOTIFY_AND_MANUAL_RENEW"},
        "Placement": {"Zone": "ap-guangzhou-7", "ProjectId": 0, "HostIds": [], "HostId": "",
            "DedicatedResourcePackTenancy": "", "DedicatedResourcePackIds": [], "RackId": ""},
        "InstanceType": "SA2.2XLARGE16",
        "ImageId": LINUX,
        "SystemDisk": {"DiskType": "CLOUD_PREMIUM", "DiskId": "", "DiskSize": 50, "CdcId": "",
            "DiskName": "sys", "Encrypt": false, "KmsKeyId": ""},
        "DataDisks": [{"DiskSize": 100, "DiskType": "CLOUD_SSD", "DiskId": "", "DeleteWithInstance": true,
            "SnapshotId": "", "Encrypt": "false", "KmsKeyId": "", "ThroughputPerformance": 0, "CdcId": "",
            "BurstPerformance": false, "DiskName": "data"}],
        "VirtualPrivateCloud": {"VpcId": "vpc-abcdefgh", "SubnetId": "subnet-abcdefgh", "AsVpcGateway": false,
            "PrivateIpAddresses": ["10.0.0.2"], "Ipv6AddressCount": 0},
        "InternetAccessible": {"InternetChargeType": "TRAFFIC_POSTPAID_BY_HOUR", "InternetMaxBandwidthOut": 10,
            "PublicIpAssigned": true, "BandwidthPackageId": "", "InternetServiceProvider": "BGP",
            "IPv4AddressType": "WanIP", "IPv6AddressType": "", "AntiDDoSPackageId": ""},
        "InstanceCount": 1,
        "MinCount": 1,
        "InstanceName": "full",
        "LoginSettings": {"Password": "Passw0rd!", "KeyIds": [key], "KeepImageLogin": "false"},
        "SecurityGroupIds": ["sg-abcdefgh"],
        "EnhancedService": {"SecurityService": {"Enabled": true}, "MonitorService": {"Enabled": true},
            "AutomationService": {"Enabled": false}},
        "ClientToken": "token-1",
        "HostName": "full-host.example",
        "ActionTimer": {"TimerAction": "TerminateInstances", "ActionTime": "2030-01-01T00:00:00Z",
            "Externals": {"ReleaseAddress": true, "UnsupportNetworks": [],
                "StorageBlockAttr": {"Type": "LOCAL_PRO", "MinSize": 1, "MaxSize": 2}},
            "ActionTimerId": "", "Status": "", "InstanceId": ""},
        "DisasterRecoverGroupIds": [],
        "TagSpecification": [{"ResourceType": "instance", "Tags": [{"Key": "env", "Value": "ci"}]}],
        "InstanceMarketOptions": {"SpotOptions": {"MaxPrice": "1", "SpotInstanceType": "one-time"}, "MarketType": "spot"},
        "UserData": "IyEvYmluL3NoCmVjaG8gaGk=",
        "Metadata": {"Items": [{"Key": "k", "Value": "v"}]},
        "DryRun": false,
        "CpuTopology": {"CoreCount": 4, "ThreadPerCore": 2},
        "CamRoleName": "",
        "HpcClusterId": "",
        "DedicatedClusterId": "",
        "ChcIds": [],
        "PartitionNumber": 0,
        "DisableApiTermination": false,
        "EnableJumboFrame": false,
        "NetworkInterfaces": [{"InterfaceType": "", "VpcId": "", "SubnetId": "", "PrivateIpv4AddressCount": 1,
            "NetworkInterfaceId": "", "SecurityGroupIds": [], "DeleteWithInstance": true}],
    });
    let r = h.ok("RunInstances", body).await;
    let id = r["InstanceIdSet"][0].as_str().unwrap().to_string();
    let i = h.instance(&id).await;
    assert_eq!(
        (i["CPU"].as_i64(), i["Memory"].as_i64()),
        (Some(8), Some(16))
    );
    assert_eq!(i["Placement"]["Zone"], "ap-guangzhou-7");
}

#[tokio::test]
async fn a_repeated_client_token_returns_the_first_launch() {
    let h = harness().await;
    let body = json!({"ImageId": LINUX, "Placement": {"Zone": "ap-guangzhou-3"}, "InstanceCount": 2,
        "ClientToken": "retry-1", "LoginSettings": {"Password": "Passw0rd!"}});
    let first = h.ok("RunInstances", body.clone()).await["InstanceIdSet"].clone();
    let again = h.ok("RunInstances", body).await["InstanceIdSet"].clone();
    assert_eq!(first, again, "the retry answers the same instances");
    let all = h.ok("DescribeInstances", json!({})).await;
    assert_eq!(all["TotalCount"], 2, "and creates none");
    let other = h
        .ok(
            "RunInstances",
            json!({"ImageId": LINUX, "Placement": {"Zone": "ap-guangzhou-3"},
            "ClientToken": "retry-2", "LoginSettings": {"Password": "Passw0rd!"}}),
        )
        .await;
    assert_ne!(other["InstanceIdSet"], first);
}

#[tokio::test]
async fn host_names_are_kept_and_default_to_the_instance_id() {
    let h = harness().await;
    let named = h
        .ok("RunInstances", json!({"ImageId": LINUX, "Placement": {"Zone": "ap-guangzhou-3"},
            "InstanceCount": 2, "HostName": "web-{R:1}", "LoginSettings": {"Password": "Passw0rd!"}}))
        .await;
    let ids: Vec<String> = named["InstanceIdSet"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(h.instance(&ids[0]).await["HostName"], "web-1");
    assert_eq!(h.instance(&ids[1]).await["HostName"], "web-2");
    let plain = h
        .ok(
            "RunInstances",
            json!({"ImageId": LINUX, "Placement": {"Zone": "ap-guangzhou-3"},
            "LoginSettings": {"Password": "Passw0rd!"}}),
        )
        .await;
    let id = plain["InstanceIdSet"][0].as_str().unwrap();
    assert_eq!(h.instance(id).await["HostName"], id);
}
