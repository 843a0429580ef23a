//! Requests meant for ECS that used to be answered in Tencent's envelope: an oversized signed
//! POST form, an ACS3 `Authorization` of another algorithm or garbled, and an unsigned GET that
//! only names ECS's Version. Each gets ECS's envelope, code and HTTP status.

use super::{harness, rpc, send, Answer, AK, REGION};
use axum::body::Body;
use axum::http::Request;

fn assert_ecs(a: &Answer, status: u16, code: &str) {
    assert_eq!(
        (a.status, a.code()),
        (status, code.to_string()),
        "{}",
        a.text
    );
    let env = a.json();
    for k in ["RequestId", "HostId", "Code", "Message", "Recommend"] {
        assert!(env[k].is_string(), "{k} in {env}");
    }
    assert!(
        env.get("Response").is_none(),
        "not Tencent's envelope: {env}"
    );
}

#[tokio::test]
async fn an_oversized_signed_form_is_refused_in_the_ecs_envelope() {
    let h = harness(0).await;
    // A correctly signed request, its parameters moved to a form body padded past 1 MiB.
    let signed = rpc(
        &h,
        "ImportKeyPair",
        &[("RegionId", REGION), ("KeyPairName", "k")],
    );
    let query = signed.uri().query().unwrap().to_string();
    let body = format!("{query}&PublicKeyBody={}", "A".repeat(1_100_000));
    let req = Request::builder()
        .method("POST")
        .uri("/")
        .header("host", "127.0.0.1:8787")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(body))
        .unwrap();
    let a = send(&h, req).await;
    assert_ecs(&a, 400, "InvalidParameter");
    assert!(a.json()["Message"]
        .as_str()
        .unwrap()
        .contains("exceeds the limit"));
}

#[tokio::test]
async fn other_or_garbled_acs3_authorizations_get_ecs_answers() {
    let h = harness(0).await;
    for authz in [
        format!("ACS3-HMAC-SM3 Credential={AK},SignedHeaders=host;x-acs-action,Signature=00"),
        format!("acs3-hmac-sha256 Credential={AK},Signature=zz"),
        "ACS3-HMAC-SHA256 ,,,===".to_string(),
        "ACS3-".to_string(),
    ] {
        let req = Request::builder()
            .method("POST")
            .uri("/")
            .header("host", "127.0.0.1:8787")
            .header("authorization", authz.as_str())
            .body(Body::empty())
            .unwrap();
        let a = send(&h, req).await;
        assert_ecs(&a, 400, "IncompleteSignature");
    }
}

#[tokio::test]
async fn an_unsigned_request_naming_the_ecs_version_gets_an_ecs_answer() {
    let h = harness(0).await;
    let req = Request::builder()
        .method("GET")
        .uri("/?Action=DescribeRegions&Version=2014-05-26&RegionId=cn-hangzhou")
        .body(Body::empty())
        .unwrap();
    assert_ecs(&send(&h, req).await, 400, "IncompleteSignature");
    // An ACS3-style request without an Authorization: its x-acs-* headers say ECS.
    let req = Request::builder()
        .method("POST")
        .uri("/")
        .header("x-acs-action", "DescribeKeyPairs")
        .header("x-acs-version", "2014-05-26")
        .body(Body::empty())
        .unwrap();
    assert_ecs(&send(&h, req).await, 400, "IncompleteSignature");
}
