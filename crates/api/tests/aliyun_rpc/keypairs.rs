//! Key pairs by name per region: CreateKeyPair, ImportKeyPair, DescribeKeyPairs (wildcards,
//! fingerprint, tags, paging, IncludePublicKey) and DeleteKeyPairs, with their refusals.

use super::{acs3, harness, rpc, send, REGION};
use serde_json::Value;

const KEY_A: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIRF8lXPd0sPOj9nqAd4vm2P4tUtcerb0/0/KG7LHrKJ a";
const KEY_B: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPGZAGXx9EOoGbc75pfXOHdHL78Rsj4sB3XUZF0HwvO1 b";

fn is_md5_fingerprint(v: &Value) -> bool {
    let s = v.as_str().unwrap_or("");
    s.len() == 47
        && s.split(':').count() == 16
        && s.split(':').all(|p| {
            p.len() == 2
                && p.bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        })
}

#[tokio::test]
async fn create_import_and_names_per_region() {
    let h = harness(0).await;
    let a = send(
        &h,
        rpc(
            &h,
            "CreateKeyPair",
            &[("RegionId", REGION), ("KeyPairName", "made")],
        ),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let v = a.json();
    assert!(v["KeyPairId"].as_str().unwrap().starts_with("kp-"));
    assert_eq!(v["KeyPairName"], "made");
    assert!(is_md5_fingerprint(&v["KeyPairFingerPrint"]), "{v}");
    assert!(v["PrivateKeyBody"]
        .as_str()
        .unwrap()
        .starts_with("-----BEGIN PRIVATE KEY-----\n"));

    let a = send(
        &h,
        rpc(
            &h,
            "ImportKeyPair",
            &[
                ("RegionId", REGION),
                ("KeyPairName", "laptop"),
                ("PublicKeyBody", KEY_A),
            ],
        ),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let fp = a.json()["KeyPairFingerPrint"].clone();
    assert!(is_md5_fingerprint(&fp));

    let dup = send(
        &h,
        rpc(
            &h,
            "ImportKeyPair",
            &[
                ("RegionId", REGION),
                ("KeyPairName", "laptop"),
                ("PublicKeyBody", KEY_B),
            ],
        ),
    )
    .await;
    assert_eq!(
        (dup.status, dup.code()),
        (400, "KeyPair.AlreadyExist".into())
    );
    // Names are per region.
    let other = send(
        &h,
        rpc(
            &h,
            "ImportKeyPair",
            &[
                ("RegionId", "cn-beijing"),
                ("KeyPairName", "laptop"),
                ("PublicKeyBody", KEY_A),
            ],
        ),
    )
    .await;
    assert_eq!(other.status, 200, "{}", other.text);
    for (name, code) in [
        ("1abc", "InvalidKeyPairName.Malformed"),
        ("k", "InvalidKeyPairName.Malformed"),
    ] {
        let a = send(
            &h,
            rpc(
                &h,
                "CreateKeyPair",
                &[("RegionId", REGION), ("KeyPairName", name)],
            ),
        )
        .await;
        assert_eq!((a.status, a.code()), (400, code.into()), "{name}");
    }
    let bad = send(
        &h,
        rpc(
            &h,
            "ImportKeyPair",
            &[
                ("RegionId", REGION),
                ("KeyPairName", "bad"),
                ("PublicKeyBody", "ssh-rsa AAAA"),
            ],
        ),
    )
    .await;
    assert_eq!(
        (bad.status, bad.code()),
        (400, "InvalidPublicKeyBody.Malformed".into())
    );
    let none = send(
        &h,
        rpc(
            &h,
            "ImportKeyPair",
            &[("RegionId", REGION), ("KeyPairName", "nokey")],
        ),
    )
    .await;
    assert_eq!((none.status, none.code()), (400, "MissingParameter".into()));
    let tags = send(
        &h,
        rpc(
            &h,
            "CreateKeyPair",
            &[
                ("RegionId", REGION),
                ("KeyPairName", "tagged"),
                ("Tag.1.Key", "aliyun-x"),
                ("Tag.1.Value", "v"),
            ],
        ),
    )
    .await;
    assert_eq!(
        (tags.status, tags.code()),
        (400, "InvalidTagKey.Malformed".into())
    );

    let listed = send(
        &h,
        rpc(
            &h,
            "DescribeKeyPairs",
            &[("RegionId", REGION), ("KeyPairName", "laptop")],
        ),
    )
    .await
    .json();
    assert_eq!(listed["TotalCount"], 1);
    let kp = &listed["KeyPairs"]["KeyPair"][0];
    assert_eq!(kp["KeyPairFingerPrint"], fp);
    assert!(kp.get("PublicKey").is_none(), "no PublicKey unless asked");
    assert_eq!(kp["Tags"]["Tag"], serde_json::json!([]));
    let creation = kp["CreationTime"].as_str().unwrap();
    assert_eq!(creation, "2026-11-24T01:06Z");
}

#[tokio::test]
async fn describe_filters_and_pages() {
    let h = harness(0).await;
    for (name, key, tag) in [("SshKey", KEY_A, "a"), ("mySshKey2", KEY_B, "b")] {
        let a = send(
            &h,
            acs3(
                &h,
                "ImportKeyPair",
                &[
                    ("RegionId", REGION),
                    ("KeyPairName", name),
                    ("PublicKeyBody", key),
                    ("Tag.1.Key", "env"),
                    ("Tag.1.Value", tag),
                ],
            ),
        )
        .await;
        assert_eq!(a.status, 200, "{}", a.text);
    }
    let names = |v: Value| -> Vec<String> {
        v["KeyPairs"]["KeyPair"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["KeyPairName"].as_str().unwrap().to_string())
            .collect()
    };
    for (pattern, want) in [
        ("SshKey*", vec!["SshKey"]),
        ("*SshKey*", vec!["SshKey", "mySshKey2"]),
        ("*Key2", vec!["mySshKey2"]),
        ("SshKey", vec!["SshKey"]),
        ("nothing*", vec![]),
    ] {
        let v = send(
            &h,
            rpc(
                &h,
                "DescribeKeyPairs",
                &[("RegionId", REGION), ("KeyPairName", pattern)],
            ),
        )
        .await
        .json();
        assert_eq!(names(v), want, "{pattern}");
    }
    let v = send(
        &h,
        rpc(
            &h,
            "DescribeKeyPairs",
            &[
                ("RegionId", REGION),
                ("Tag.1.Key", "env"),
                ("Tag.1.Value", "b"),
                ("IncludePublicKey", "True"),
            ],
        ),
    )
    .await
    .json();
    assert_eq!(names(v.clone()), vec!["mySshKey2"]);
    assert_eq!(v["KeyPairs"]["KeyPair"][0]["PublicKey"], KEY_B);
    assert_eq!(
        v["KeyPairs"]["KeyPair"][0]["Tags"]["Tag"][0]["TagKey"],
        "env"
    );
    let by_key = send(
        &h,
        rpc(
            &h,
            "DescribeKeyPairs",
            &[("RegionId", REGION), ("Tag.1.Key", "env")],
        ),
    )
    .await
    .json();
    assert_eq!(by_key["TotalCount"], 2, "a tag key alone matches any value");
    let fp = v["KeyPairs"]["KeyPair"][0]["KeyPairFingerPrint"]
        .as_str()
        .unwrap()
        .to_string();
    let v = send(
        &h,
        rpc(
            &h,
            "DescribeKeyPairs",
            &[("RegionId", REGION), ("KeyPairFingerPrint", &fp)],
        ),
    )
    .await
    .json();
    assert_eq!(names(v), vec!["mySshKey2"]);
    let v = send(
        &h,
        rpc(
            &h,
            "DescribeKeyPairs",
            &[("RegionId", REGION), ("PageSize", "1"), ("PageNumber", "2")],
        ),
    )
    .await
    .json();
    assert_eq!(
        (
            v["TotalCount"].clone(),
            v["PageNumber"].clone(),
            v["PageSize"].clone()
        ),
        (2.into(), 2.into(), 1.into())
    );
    assert_eq!(names(v).len(), 1);
    let a = send(
        &h,
        rpc(
            &h,
            "DescribeKeyPairs",
            &[("RegionId", REGION), ("PageSize", "51")],
        ),
    )
    .await;
    assert_eq!((a.status, a.code()), (400, "InvalidParameter".into()));
    let v = send(
        &h,
        rpc(&h, "DescribeKeyPairs", &[("RegionId", "cn-beijing")]),
    )
    .await
    .json();
    assert_eq!(
        v["TotalCount"], 0,
        "another region's key pairs are not listed"
    );
}

#[tokio::test]
async fn delete_by_names() {
    let h = harness(0).await;
    for (name, key) in [("one", KEY_A), ("two", KEY_B)] {
        let a = send(
            &h,
            rpc(
                &h,
                "ImportKeyPair",
                &[
                    ("RegionId", REGION),
                    ("KeyPairName", name),
                    ("PublicKeyBody", key),
                ],
            ),
        )
        .await;
        assert_eq!(a.status, 200);
    }
    let a = send(
        &h,
        rpc(
            &h,
            "DeleteKeyPairs",
            &[("RegionId", REGION), ("KeyPairNames", "one")],
        ),
    )
    .await;
    assert_eq!(
        (a.status, a.code()),
        (400, "InvalidKeyPairNames.ValueNotSupported".into())
    );
    let a = send(
        &h,
        rpc(
            &h,
            "DeleteKeyPairs",
            &[
                ("RegionId", REGION),
                ("KeyPairNames", "[\"one\",\"ghost\"]"),
            ],
        ),
    )
    .await;
    assert_eq!(
        (a.status, a.code()),
        (404, "InvalidKeyPair.NotFound".into())
    );
    let a = send(&h, rpc(&h, "DeleteKeyPairs", &[("RegionId", REGION)])).await;
    assert_eq!((a.status, a.code()), (400, "MissingParameter".into()));
    let a = send(
        &h,
        rpc(
            &h,
            "DeleteKeyPairs",
            &[("RegionId", REGION), ("KeyPairNames", "[\"one\", \"two\"]")],
        ),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.json().as_object().unwrap().len(), 1, "only RequestId");
    let v = send(&h, rpc(&h, "DescribeKeyPairs", &[("RegionId", REGION)]))
        .await
        .json();
    assert_eq!(v["TotalCount"], 0);
}
