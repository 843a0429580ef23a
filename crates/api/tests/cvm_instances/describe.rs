//! DescribeImages, DescribeInstances and DescribeInstancesStatus.

use super::*;

#[tokio::test]
async fn describe_images_lists_filters_and_refuses() {
    let h = harness().await;
    let all = h.ok("DescribeImages", json!({})).await;
    assert_eq!(all["TotalCount"], 2);
    let linux = &all["ImageSet"][0];
    assert_eq!(linux["ImageId"], LINUX);
    assert_eq!(linux["Platform"], "Debian");
    assert_eq!(linux["ImageType"], "PUBLIC_IMAGE");
    assert_eq!(linux["ImageState"], "NORMAL");
    assert_eq!(linux["Architecture"], "x86_64");
    assert_eq!(linux["ImageSource"], "OFFICIAL");
    assert_eq!(all["ImageSet"][1]["Platform"], "Windows");
    let only = h
        .ok(
            "DescribeImages",
            json!({"ImageIds": [WINDOWS, "img-zzzzzzzz"]}),
        )
        .await;
    assert_eq!(only["TotalCount"], 1);
    assert!(only["ImageSet"][0]["OsName"]
        .as_str()
        .unwrap()
        .contains("Windows"));
    let cases = [
        (json!({"Name": "platform", "Values": ["windows"]}), 1),
        (json!({"Name": "image-type", "Values": ["PUBLIC_IMAGE"]}), 2),
        (
            json!({"Name": "image-type", "Values": ["PRIVATE_IMAGE"]}),
            0,
        ),
        (json!({"Name": "image-name", "Values": ["Debian"]}), 1),
        (json!({"Name": "image-id", "Values": [LINUX]}), 1),
    ];
    for (filter, n) in cases {
        let r = h
            .ok(
                "DescribeImages",
                json!({"Filters": [filter], "InstanceType": "S5.SMALL1"}),
            )
            .await;
        assert_eq!(r["TotalCount"], n, "{filter}");
    }
    let paged = h
        .ok("DescribeImages", json!({"Offset": 1, "Limit": 1}))
        .await;
    assert_eq!(paged["TotalCount"], 2);
    assert_eq!(paged["ImageSet"][0]["ImageId"], WINDOWS);
    let f = json!([{"Name": "platform", "Values": ["Debian"]}]);
    let refusals = [
        (
            json!({"ImageIds": [LINUX], "Filters": f}),
            "InvalidParameter.InvalidParameterCoexistImageIdsFilters",
        ),
        (
            json!({"ImageIds": ["img-1122"]}),
            "InvalidImageId.Malformed",
        ),
        (
            json!({"Filters": [{"Name": "colour", "Values": ["x"]}]}),
            "InvalidFilter",
        ),
        (
            json!({"Filters": [{"Name": "image-type", "Values": ["ANY"]}]}),
            "InvalidParameterValue",
        ),
        (
            json!({"Filters": [{"Name": "platform", "Values": ["a","b","c","d","e","f"]}]}),
            "InvalidFilterValue.LimitExceeded",
        ),
        (json!({"Limit": 101}), "InvalidParameterValue"),
        (
            json!({"InstanceType": "huge"}),
            "InvalidInstanceType.Malformed",
        ),
        (json!({"Bogus": 1}), "UnknownParameter"),
    ];
    for (body, code) in refusals {
        assert_eq!(h.code("DescribeImages", body.clone()).await, code, "{body}");
    }
}

#[tokio::test]
async fn describe_instances_filters_pages_and_refuses() {
    let h = harness().await;
    let (ids, _) = h
        .run(json!({"InstanceCount": 3, "InstanceName": "db"}))
        .await;
    h.settle(&[(&ids[0], InstanceState::Running)]).await;
    h.stopped(&[&ids[1], &ids[2]]).await;
    let count = |r: &Value| r["TotalCount"].as_i64().unwrap();
    let filter = |name: &str, v: &str| json!({"Filters": [{"Name": name, "Values": [v]}]});
    let cases = [
        (json!({}), 3),
        (json!({"InstanceIds": [ids[1], "ins-zzzzzzzz"]}), 1),
        (filter("instance-state", "RUNNING"), 1),
        (filter("instance-state", "STOPPED"), 2),
        (filter("instance-state", "PENDING"), 0),
        (filter("zone", "ap-guangzhou-3"), 3),
        (filter("zone", "ap-guangzhou-4"), 0),
        (filter("instance-name", "db2"), 1),
        (filter("instance-id", &ids[2]), 1),
        (filter("project-id", "0"), 3),
        (filter("instance-charge-type", "POSTPAID_BY_HOUR"), 3),
        (filter("tag-key", "env"), 0),
        (filter("creation-start-time", "2026-01-01T00:00:00Z"), 3),
        (filter("creation-end-time", "2026-01-01T00:00:00Z"), 0),
    ];
    for (body, n) in cases {
        let r = h.ok("DescribeInstances", body.clone()).await;
        assert_eq!(count(&r), n, "{body}");
    }
    let ip = h.instance(&ids[0]).await["PrivateIpAddresses"][0].clone();
    let r = h
        .ok(
            "DescribeInstances",
            filter("private-ip-address", ip.as_str().unwrap()),
        )
        .await;
    assert_eq!(r["InstanceSet"][0]["InstanceId"], ids[0].as_str());
    let page = h
        .ok("DescribeInstances", json!({"Offset": 2, "Limit": 1}))
        .await;
    assert_eq!(
        (count(&page), page["InstanceSet"].as_array().unwrap().len()),
        (3, 1)
    );
    let all = h.ok("DescribeInstances", json!({})).await;
    assert_eq!(page["InstanceSet"][0], all["InstanceSet"][2]);
    // Instances belong to their region.
    let other = h
        .call_in("ap-shanghai", "DescribeInstances", json!({}))
        .await;
    assert_eq!(other["TotalCount"], 0);
    let many: Vec<String> = (0..101).map(|i| format!("ins-{i:08}")).collect();
    let refusals = [
        (
            json!({"InstanceIds": ["ins-1122"]}),
            "InvalidInstanceId.Malformed",
        ),
        (
            json!({"InstanceIds": many}),
            "InvalidParameterValue.LimitExceeded",
        ),
        (
            json!({"InstanceIds": [ids[0]], "Filters": [{"Name": "zone", "Values": ["x"]}]}),
            "InvalidParameterConflict",
        ),
        (filter("image-id", LINUX), "InvalidFilter"),
        (
            filter("creation-start-time", "yesterday"),
            "InvalidParameterValue",
        ),
        (json!({"Limit": 0}), "InvalidParameterValue"),
        (json!({"Offset": -1}), "InvalidParameterValue"),
    ];
    for (body, code) in refusals {
        assert_eq!(
            h.code("DescribeInstances", body.clone()).await,
            code,
            "{body}"
        );
    }
    assert_eq!(
        h.code("DescribeInstancesStatus", json!({"InstanceIds": ["bad"]}))
            .await,
        "InvalidInstanceId.Malformed"
    );
}
