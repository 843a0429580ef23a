//! In-process tests of the Tencent API 3.0 dialect on the router: the official clients'
//! captured requests replayed byte for byte, and the protocol's error answers.

use axum::body::{to_bytes, Body};
use axum::http::Request;
use serde_json::Value;
use std::sync::Arc;
use tower::ServiceExt;

const SECRET_ID: &str = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE";
const SECRET_KEY: &str = "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE";
/// The captures were signed around this time.
const CAPTURE_TIME: i64 = 1795482395;

mod support;
use support::{Tc3, TestClock};

struct Harness {
    app: axum::Router,
    clock: Arc<TestClock>,
}

async fn harness(rate_limit: u32) -> Harness {
    let t = support::server(
        support::account("capture", SECRET_ID, SECRET_KEY),
        CAPTURE_TIME,
        rate_limit,
    )
    .await;
    Harness {
        app: t.app,
        clock: t.clock,
    }
}

struct Answer {
    content_type: String,
    body: Value,
}

impl Answer {
    fn code(&self) -> Option<&str> {
        self.body["Response"]["Error"]["Code"].as_str()
    }
}

async fn send(h: &Harness, req: Request<Body>) -> Answer {
    let resp = h.app.clone().oneshot(req).await.unwrap();
    assert_eq!(
        resp.status(),
        200,
        "Tencent answers errors with HTTP 200 too"
    );
    let content_type = resp.headers()["content-type"].to_str().unwrap().to_string();
    let bytes = to_bytes(resp.into_body(), 1 << 20).await.unwrap();
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    assert!(body["Response"]["RequestId"].is_string(), "{body}");
    Answer { content_type, body }
}

fn capture_request(name: &str, mutate: impl FnOnce(&mut Vec<u8>)) -> Request<Body> {
    let path = format!(
        "{}/tests/fixtures/captures/{name}.raw",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut bytes = std::fs::read(path).unwrap();
    mutate(&mut bytes);
    let split = bytes.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8(bytes[..split].to_vec()).unwrap();
    let body = bytes[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let mut rl = lines.next().unwrap().split(' ');
    let (method, target) = (rl.next().unwrap(), rl.next().unwrap());
    let mut b = Request::builder().method(method).uri(target);
    for l in lines {
        let (n, v) = l.split_once(':').unwrap();
        b = b.header(n, v.trim_start());
    }
    b.body(Body::from(body)).unwrap()
}

fn tencent_captures() -> Vec<String> {
    let dir = format!("{}/tests/fixtures/captures", env!("CARGO_MANIFEST_DIR"));
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix(".raw").map(str::to_string))
        .filter(|n| n.starts_with("tcsdk-") || n.starts_with("tccli-"))
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn every_captured_tencent_request_authenticates() {
    let h = harness(0).await;
    for name in tencent_captures() {
        let a = send(&h, capture_request(&name, |_| {})).await;
        assert_eq!(a.content_type, "application/json", "{name}");
        let code = a.code().unwrap_or("");
        // Every capture is signed right: only a temporary credential's token (which the
        // server never issued) is refused, with its own code; the rest authenticate, whatever
        // the action then answers (tests/lighthouse.rs checks the Lighthouse answers).
        let expected_refusal = if name.contains("-token") {
            "AuthFailure.TokenFailure"
        } else {
            ""
        };
        assert!(
            !code.starts_with("AuthFailure") || code == expected_refusal,
            "{name}: {}",
            a.body
        );
        if name.contains("cvm-DescribeKeyPairs") && !name.contains("token") {
            assert!(a.code().is_none(), "{name}: {}", a.body);
            assert_eq!(a.body["Response"]["TotalCount"], 0);
        }
    }
}

#[tokio::test]
async fn a_changed_byte_fails_every_capture() {
    let h = harness(0).await;
    for name in tencent_captures() {
        let req = capture_request(&name, |bytes| {
            // Flip one character of the signed material: the last byte of the body, or of
            // the request target when there is no body.
            let split = bytes.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
            if name.contains("unsignedpayload") {
                // The body is not signed here; the timestamp always is.
                let text = String::from_utf8(bytes.clone()).unwrap();
                *bytes = text
                    .replace("X-TC-Timestamp: 1795482395", "X-TC-Timestamp: 1795482396")
                    .into_bytes();
            } else if bytes.len() > split + 4 {
                let last = bytes.len() - 2;
                bytes[last] = if bytes[last] == b'1' { b'2' } else { b'1' };
            } else {
                let q = bytes.iter().position(|b| *b == b'=').unwrap();
                bytes[q + 1] = if bytes[q + 1] == b'x' { b'y' } else { b'x' };
            }
        });
        let a = send(&h, req).await;
        assert_eq!(
            a.code(),
            Some("AuthFailure.SignatureFailure"),
            "{name}: {}",
            a.body
        );
    }
}

/// tencentcloud-sdk-nodejs-cvm 4.1 given the endpoint `127.0.0.1:PORT` signs the service
/// label `127`; the server verifies with that label and routes by X-TC-Version.
#[tokio::test]
async fn the_node_sdk_signature_over_an_ip_endpoint_verifies() {
    const NODE: &str = "tcnode-cvm-DescribeKeyPairs-TC3-POST";
    let h = harness(0).await;
    h.clock.set(1796117195);
    let a = send(&h, capture_request(NODE, |_| {})).await;
    assert!(a.code().is_none(), "{}", a.body);
    assert_eq!(a.body["Response"]["TotalCount"], 0);
    let changed = capture_request(NODE, |bytes| {
        let i = bytes.len() - 3; // a digit of {"Limit":10}
        bytes[i] = if bytes[i] == b'1' { b'2' } else { b'1' };
    });
    let a = send(&h, changed).await;
    assert_eq!(a.code(), Some("AuthFailure.SignatureFailure"), "{}", a.body);
}

#[tokio::test]
async fn v1_nonces_cannot_be_replayed() {
    let h = harness(0).await;
    let name = "tcsdk-cvm-DescribeKeyPairs-HmacSHA256-GET";
    let first = send(&h, capture_request(name, |_| {})).await;
    assert_eq!(first.code(), None, "{}", first.body);
    let again = send(&h, capture_request(name, |_| {})).await;
    assert_eq!(again.code(), Some("AuthFailure.SignatureFailure"));
    assert!(again.body["Response"]["Error"]["Message"]
        .as_str()
        .unwrap()
        .contains("Nonce"));
}

#[tokio::test]
async fn stale_timestamps_are_refused_on_both_schemes() {
    let h = harness(0).await;
    h.clock.set(CAPTURE_TIME + 301);
    for name in [
        "tcsdk-cvm-DescribeKeyPairs-TC3-POST",
        "tcsdk-cvm-DescribeKeyPairs-HmacSHA256-GET",
    ] {
        let a = send(&h, capture_request(name, |_| {})).await;
        assert_eq!(a.code(), Some("AuthFailure.SignatureExpire"), "{name}");
    }
    h.clock.set(CAPTURE_TIME - 301);
    let a = send(
        &h,
        capture_request("tcsdk-cvm-DescribeKeyPairs-TC3-POST", |_| {}),
    )
    .await;
    assert_eq!(a.code(), Some("AuthFailure.SignatureExpire"));
    h.clock.set(CAPTURE_TIME + 299);
    let a = send(
        &h,
        capture_request("tcsdk-cvm-DescribeKeyPairs-TC3-POST", |_| {}),
    )
    .await;
    assert_eq!(a.code(), None, "{}", a.body);
}

/// Sign a TC3 POST the way the official SDK does.
fn tc3_post(secret_id: &str, secret_key: &str, ts: i64, action: &str, body: &str) -> Request<Body> {
    let t = Tc3 {
        secret_id,
        secret_key,
        service: "cvm",
        version: "2017-03-12",
        region: Some("ap-guangzhou"),
        ts,
    };
    support::tc3_post(&t, action, body)
}

#[tokio::test]
async fn protocol_errors_have_their_codes() {
    let h = harness(0).await;
    let call =
        |action: &str, body: &str| tc3_post(SECRET_ID, SECRET_KEY, CAPTURE_TIME, action, body);
    let cases = [
        (call("NoSuchAction", "{}"), "InvalidAction"),
        (
            call("ImportKeyPair", r#"{"KeyName": "k", "ProjectId": 0}"#),
            "MissingParameter",
        ),
        (
            call("DescribeKeyPairs", r#"{"Bogus": 1}"#),
            "UnknownParameter",
        ),
        (
            call("DescribeKeyPairs", r#"{"Limit": "many"}"#),
            "InvalidParameter",
        ),
        (
            call("DescribeKeyPairs", r#"{"Limit": 101}"#),
            "InvalidParameterValue",
        ),
        (call("DescribeKeyPairs", "not json"), "InvalidParameter"),
        (
            call("DeleteKeyPairs", r#"{"KeyIds": ["skey-1122"]}"#),
            "InvalidKeyPairId.Malformed",
        ),
        (
            call("DeleteKeyPairs", r#"{"KeyIds": ["skey-zzzzzzzz"]}"#),
            "InvalidKeyPairId.NotFound",
        ),
        (
            tc3_post(
                "AKIDnobody",
                SECRET_KEY,
                CAPTURE_TIME,
                "DescribeKeyPairs",
                "{}",
            ),
            "AuthFailure.SecretIdNotFound",
        ),
        (
            tc3_post(SECRET_ID, "wrong", CAPTURE_TIME, "DescribeKeyPairs", "{}"),
            "AuthFailure.SignatureFailure",
        ),
    ];
    for (req, code) in cases {
        let a = send(&h, req).await;
        assert_eq!(a.code(), Some(code), "{}", a.body);
    }
    let many: Vec<String> = (0..101).map(|i| format!("skey-{i:08}")).collect();
    let body = serde_json::json!({ "KeyIds": many }).to_string();
    let a = send(&h, call("DeleteKeyPairs", &body)).await;
    assert_eq!(a.code(), Some("InvalidParameterValue.LimitExceeded"));
}

/// DescribeKeyPairs checks the filter count, then the page, then each filter's values and name
/// in turn (DescribeInstances checks every filter's values before the page).
#[tokio::test]
async fn describe_key_pairs_checks_the_page_before_filter_values() {
    let h = harness(0).await;
    let call = |body: &str| {
        tc3_post(
            SECRET_ID,
            SECRET_KEY,
            CAPTURE_TIME,
            "DescribeKeyPairs",
            body,
        )
    };
    let six = r#"{"Name": "key-name", "Values": ["a", "b", "c", "d", "e", "f"]}"#;
    let cases = [
        (
            format!(r#"{{"Filters": [{six}], "Limit": 101}}"#),
            "InvalidParameterValue",
        ),
        (
            format!(r#"{{"Filters": [{six}]}}"#),
            "InvalidFilterValue.LimitExceeded",
        ),
        (
            format!(r#"{{"Filters": [{{"Name": "nope", "Values": ["x"]}}, {six}]}}"#),
            "InvalidFilter",
        ),
        (
            r#"{"KeyIds": ["skey-12345678"], "Filters": [{"Name": "key-name", "Values": ["x"]}]}"#
                .to_string(),
            "InvalidParameterConflict",
        ),
    ];
    for (body, code) in cases {
        let a = send(&h, call(&body)).await;
        assert_eq!(a.code(), Some(code), "{body}: {}", a.body);
    }
}

#[tokio::test]
async fn rate_limit_is_per_account_and_action() {
    let h = harness(10).await;
    let mut limited = 0;
    for _ in 0..25 {
        let a = send(
            &h,
            tc3_post(
                SECRET_ID,
                SECRET_KEY,
                CAPTURE_TIME,
                "DescribeKeyPairs",
                "{}",
            ),
        )
        .await;
        match a.code() {
            None => {}
            Some("RequestLimitExceeded") => limited += 1,
            Some(other) => panic!("{other}"),
        }
    }
    assert!(
        limited >= 10,
        "{limited} of 25 back-to-back calls were limited"
    );
    let other_action = send(
        &h,
        tc3_post(
            SECRET_ID,
            SECRET_KEY,
            CAPTURE_TIME,
            "DeleteKeyPairs",
            r#"{"KeyIds":["skey-zzzzzzzz"]}"#,
        ),
    )
    .await;
    assert_eq!(other_action.code(), Some("InvalidKeyPairId.NotFound"));
}

#[tokio::test]
async fn an_oversized_body_gets_the_size_error() {
    let h = harness(0).await;
    let big = format!(r#"{{"KeyIds": ["{}"]}}"#, "x".repeat(2 << 20));
    let a = send(
        &h,
        tc3_post(
            SECRET_ID,
            SECRET_KEY,
            CAPTURE_TIME,
            "DescribeKeyPairs",
            &big,
        ),
    )
    .await;
    assert_eq!(a.code(), Some("RequestSizeLimitExceeded"), "{}", a.body);
}
