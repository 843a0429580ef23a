//! CreateKeyPair, ImportKeyPair, DescribeKeyPairs and DeleteKeyPairs.

use super::*;

#[tokio::test]
async fn create_returns_the_private_key_once() {
    let h = harness().await;
    let r = h
        .ok(
            "CreateKeyPair",
            json!({"KeyName": "deploy_1", "Tags": [{"Key": "env", "Value": "ci"}]}),
        )
        .await;
    let kp = &r["KeyPair"];
    let id = kp["KeyId"].as_str().unwrap();
    assert!(is_lh_id(id, "lhkp-"), "{id}");
    assert_eq!(kp["KeyName"], "deploy_1");
    assert!(kp["PrivateKey"]
        .as_str()
        .unwrap()
        .contains("BEGIN RSA PRIVATE KEY"));
    assert!(kp["PublicKey"].as_str().unwrap().starts_with("ssh-rsa "));
    assert_eq!(kp["AssociatedInstanceIds"], json!([]));
    assert_eq!(kp["AssociatedInstanceSet"], json!([]));
    assert_eq!(kp["CreatedTime"], "2026-11-24T01:06:35Z");
    assert_eq!(kp["Tags"], json!([{"Key": "env", "Value": "ci"}]));
    let d = h.ok("DescribeKeyPairs", json!({"KeyIds": [id]})).await;
    assert_eq!(d["TotalCount"], 1);
    let again = &d["KeyPairSet"][0];
    assert!(again["PrivateKey"].is_null(), "never stored: {again}");
    assert_eq!(again["PublicKey"], kp["PublicKey"]);
}

#[tokio::test]
async fn create_and_import_refusals() {
    let h = harness().await;
    h.import_key("taken", KEY_A).await;
    let tags: Vec<Value> = (0..11)
        .map(|i| json!({"Key": format!("k{i}"), "Value": "v"}))
        .collect();
    let cases = [
        (
            json!({"KeyName": ""}),
            "InvalidParameterValue.InvalidKeyPairNameEmpty",
        ),
        (
            json!({"KeyName": "a".repeat(26)}),
            "InvalidParameterValue.InvalidKeyPairNameTooLong",
        ),
        (
            json!({"KeyName": "bad-name"}),
            "InvalidParameterValue.InvalidKeyPairNameIncludeIllegalChar",
        ),
        (
            json!({"KeyName": "taken"}),
            "InvalidParameterValue.DuplicateParameterValue",
        ),
        (
            json!({"KeyName": "many", "Tags": tags}),
            "InvalidParameterValue.LimitExceeded",
        ),
        (json!({}), "MissingParameter"),
        // ProjectId is CVM's; Lighthouse key pairs have none.
        (json!({"KeyName": "p", "ProjectId": 0}), "UnknownParameter"),
    ];
    for (body, code) in cases {
        assert_eq!(h.code("CreateKeyPair", body.clone()).await, code, "{body}");
    }
    let import = |name: &str, key: &str| json!({"KeyName": name, "PublicKey": key});
    let cases = [
        (
            import("again", KEY_A),
            "InvalidParameterValue.KeyPairPublicKeyDuplicated",
        ),
        (
            import("bad", "ssh-rsa notbase64"),
            "InvalidParameterValue.KeyPairPublicKeyMalformed",
        ),
        (
            import("taken", KEY_B),
            "InvalidParameterValue.DuplicateParameterValue",
        ),
        (json!({"KeyName": "nokey"}), "MissingParameter"),
    ];
    for (body, code) in cases {
        assert_eq!(h.code("ImportKeyPair", body.clone()).await, code, "{body}");
    }
}

#[tokio::test]
async fn describe_filters_and_pages() {
    let h = harness().await;
    let a = h.import_key("web_prod", KEY_A).await;
    let r = h
        .ok(
            "ImportKeyPair",
            json!({"KeyName": "db_prod", "PublicKey": KEY_B, "Tags": [{"Key": "team", "Value": "data"}]}),
        )
        .await;
    let b = r["KeyId"].as_str().unwrap().to_string();
    let ids = |r: &Value| -> Vec<String> {
        r["KeyPairSet"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["KeyId"].as_str().unwrap().to_string())
            .collect()
    };
    let filter = |name: &str, values: Value| json!({"Filters": [{"Name": name, "Values": values}]});
    // key-name is a fuzzy match.
    let r = h
        .ok("DescribeKeyPairs", filter("key-name", json!(["prod"])))
        .await;
    assert_eq!(r["TotalCount"], 2);
    let r = h
        .ok("DescribeKeyPairs", filter("key-name", json!(["web"])))
        .await;
    assert_eq!(ids(&r), vec![a.clone()]);
    let r = h.ok("DescribeKeyPairs", filter("key-id", json!([b]))).await;
    assert_eq!(ids(&r), vec![b.clone()]);
    let r = h
        .ok("DescribeKeyPairs", filter("tag:team", json!(["data"])))
        .await;
    assert_eq!(ids(&r), vec![b.clone()]);
    let r = h
        .ok("DescribeKeyPairs", filter("tag-key", json!(["env"])))
        .await;
    assert_eq!(r["TotalCount"], 0);
    let r = h
        .ok("DescribeKeyPairs", json!({"KeyIds": [a, "lhkp-zzzzzzzz"]}))
        .await;
    assert_eq!(ids(&r), vec![a.clone()], "unknown ids are not returned");
    let r = h
        .ok("DescribeKeyPairs", json!({"Offset": 1, "Limit": 1}))
        .await;
    assert_eq!((r["TotalCount"].as_i64(), ids(&r).len()), (Some(2), 1));
    let many: Vec<String> = (0..101).map(|i| format!("lhkp-{i:08}")).collect();
    let cases = [
        (
            json!({"KeyIds": [a], "Filters": [{"Name": "key-id", "Values": [a]}]}),
            "InvalidParameter.ParameterConflict",
        ),
        (
            filter("fingerprint", json!(["x"])),
            "InvalidParameter.InvalidFilterNotSupportedName",
        ),
        (
            filter("key-name", json!(["1", "2", "3", "4", "5", "6"])),
            "InvalidParameter.FilterValueLimitExceeded",
        ),
        (json!({"Limit": 101}), "InvalidParameterValue"),
        (json!({"Offset": -1}), "InvalidParameterValue"),
        (
            json!({"KeyIds": ["lhkp-1122"]}),
            "InvalidParameterValue.KeyPairIdMalformed",
        ),
        (
            json!({"KeyIds": ["skey-12345678"]}),
            "InvalidParameterValue.KeyPairIdMalformed",
        ),
        (
            json!({"KeyIds": [a, a]}),
            "InvalidParameterValue.Duplicated",
        ),
        (
            json!({"KeyIds": many}),
            "InvalidParameterValue.LimitExceeded",
        ),
    ];
    for (body, code) in cases {
        assert_eq!(
            h.code("DescribeKeyPairs", body.clone()).await,
            code,
            "{body}"
        );
    }
}

#[tokio::test]
async fn delete_refuses_bound_keys_and_more_than_ten() {
    let h = harness().await;
    let a = h.import_key("a", KEY_A).await;
    let b = h.import_key("b", KEY_B).await;
    let ids = h
        .create(json!({"LoginConfiguration": {"KeyIds": [a]}}))
        .await;
    let d = h.ok("DescribeKeyPairs", json!({"KeyIds": [a]})).await;
    assert_eq!(d["KeyPairSet"][0]["AssociatedInstanceIds"], json!(ids));
    assert_eq!(
        d["KeyPairSet"][0]["AssociatedInstanceSet"],
        json!([{"InstanceId": ids[0], "Username": "root"}])
    );
    let eleven: Vec<String> = (0..11).map(|i| format!("lhkp-{i:08}")).collect();
    let cases = [
        (json!({"KeyIds": [a]}), "ResourceInUse.KeyPairInUse"),
        // All or none: b is not deleted either.
        (json!({"KeyIds": [b, a]}), "ResourceInUse.KeyPairInUse"),
        (
            json!({"KeyIds": eleven}),
            "InvalidParameterValue.LimitExceeded",
        ),
        (
            json!({"KeyIds": ["lhkp-zzzzzzzz"]}),
            "ResourceNotFound.KeyIdNotFound",
        ),
        (
            json!({"KeyIds": ["lhkp-1122"]}),
            "InvalidParameterValue.KeyPairIdMalformed",
        ),
        (
            json!({"KeyIds": [b, b]}),
            "InvalidParameterValue.Duplicated",
        ),
        (json!({"KeyIds": []}), "MissingParameter"),
    ];
    for (body, code) in cases {
        assert_eq!(h.code("DeleteKeyPairs", body.clone()).await, code, "{body}");
    }
    let r = h.ok("DeleteKeyPairs", json!({"KeyIds": [b]})).await;
    assert_eq!(r.as_object().unwrap().len(), 1, "only RequestId: {r}");
    let d = h.ok("DescribeKeyPairs", json!({})).await;
    assert_eq!(d["TotalCount"], 1);
}
