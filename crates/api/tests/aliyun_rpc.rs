//! In-process tests of the Alibaba Cloud ECS dialect on the router: every captured request of
//! the official clients replayed byte for byte, the protocol's refusals (changed bytes, reused
//! nonces, the clock window, STS tokens, unknown keys, versions and actions, throttling), the
//! error envelope in JSON and XML, and (in the submodules) every action, carried out by the
//! real operation worker over an in-memory instance driver.
#![recursion_limit = "256"]

#[path = "aliyun_rpc/attribute.rs"]
mod attribute;
#[path = "aliyun_rpc/envelopes.rs"]
mod envelopes;
#[path = "aliyun_rpc/keypairs.rs"]
mod keypairs;
#[path = "aliyun_rpc/lifecycle.rs"]
mod lifecycle;
#[path = "aliyun_rpc/state_errors.rs"]
mod state_errors;

use axum::body::{to_bytes, Body};
use axum::http::Request;
use keyplane_api::signature::aliyun::{
    acs3_canonical_request, acs3_signature, acs3_string_to_sign, pct, rpc_signature,
    rpc_string_to_sign,
};
use keyplane_api::signature::sha256_hex;
use keyplane_core::account::{Account, Secret};
use keyplane_core::service::Clock;
use keyplane_store::SqliteStore;
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tower::ServiceExt;

pub const AK: &str = "LTAI5tEXAMPLEaccessKeyID";
pub const SECRET: &str = "EXAMPLEaccessKeySecret0123456789";
/// 2026-11-24T01:06:40Z, when every Alibaba capture was signed.
pub const CAPTURE_TIME: i64 = 1_795_482_400;
pub const REGION: &str = "cn-hangzhou";

mod support;
pub use support::TestClock;

pub struct Harness {
    pub app: axum::Router,
    pub clock: Arc<TestClock>,
    pub store: Arc<SqliteStore>,
    pub t: support::TestServer,
}

pub async fn harness(rate_limit: u32) -> Harness {
    let mut a = Account::generate("capture", false, 0);
    a.access_key_id = AK.into();
    a.access_key_secret = Secret::new(SECRET);
    let t = support::server(a, CAPTURE_TIME, rate_limit).await;
    Harness {
        app: t.app.clone(),
        clock: t.clock.clone(),
        store: t.store.clone(),
        t,
    }
}

/// The server's operation worker, running until the answer is dropped.
pub fn spawn_worker(h: &Harness) -> support::WorkerRun {
    h.t.spawn_worker()
}

pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub retry_after: Option<String>,
    pub text: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("{e}: {}", self.text))
    }
    pub fn code(&self) -> String {
        self.json()["Code"].as_str().unwrap_or("").to_string()
    }
}

pub async fn send(h: &Harness, req: Request<Body>) -> Answer {
    let resp = h.app.clone().oneshot(req).await.unwrap();
    let status = resp.status().as_u16();
    let header = |n: &str| {
        resp.headers()
            .get(n)
            .map(|v| v.to_str().unwrap().to_string())
    };
    let content_type = header("content-type").unwrap_or_default();
    let retry_after = header("x-acs-retry-after");
    let bytes = to_bytes(resp.into_body(), 1 << 20).await.unwrap();
    Answer {
        status,
        content_type,
        retry_after,
        text: String::from_utf8(bytes.to_vec()).unwrap(),
    }
}

fn timestamp(ts: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ts)
        .unwrap()
        .format(time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
        ))
        .unwrap()
}

static NONCE: AtomicU64 = AtomicU64::new(1);

/// A POST signed the way aliyun-python-sdk-core signs it: every parameter in the query.
pub fn rpc(h: &Harness, action: &str, params: &[(&str, &str)]) -> Request<Body> {
    rpc_with(h, action, params, SECRET, "JSON")
}

pub fn rpc_with(
    h: &Harness,
    action: &str,
    params: &[(&str, &str)],
    secret: &str,
    format: &str,
) -> Request<Body> {
    let nonce = format!("nonce{}", NONCE.fetch_add(1, Ordering::SeqCst));
    let ts = timestamp(h.clock.now());
    let mut all: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for (k, v) in [
        ("Action", action),
        ("Format", format),
        ("Version", "2014-05-26"),
        ("AccessKeyId", AK),
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureType", ""),
        ("SignatureVersion", "1.0"),
        ("SignatureNonce", &nonce),
        ("Timestamp", &ts),
    ] {
        all.push((k.into(), v.into()));
    }
    let sig = rpc_signature(secret, &rpc_string_to_sign("POST", &all));
    all.push(("Signature".into(), sig));
    let query: Vec<String> = all
        .iter()
        .map(|(k, v)| format!("{}={}", pct(k), pct(v)))
        .collect();
    Request::builder()
        .method("POST")
        .uri(format!("/?{}", query.join("&")))
        .header("host", "127.0.0.1:8787")
        .body(Body::empty())
        .unwrap()
}

/// A POST signed with ACS3-HMAC-SHA256 the way the Tea SDK signs it.
pub fn acs3(h: &Harness, action: &str, params: &[(&str, &str)]) -> Request<Body> {
    let nonce = format!("acs3nonce{}", NONCE.fetch_add(1, Ordering::SeqCst));
    let query: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let headers: Vec<(&str, String)> = vec![
        ("host", "127.0.0.1:8787".into()),
        ("x-acs-action", action.into()),
        ("x-acs-content-sha256", sha256_hex(b"")),
        ("x-acs-date", timestamp(h.clock.now())),
        ("x-acs-signature-nonce", nonce),
        ("x-acs-version", "2014-05-26".into()),
    ];
    let signed: Vec<String> = headers.iter().map(|(n, _)| n.to_string()).collect();
    let values = |n: &str| {
        headers
            .iter()
            .filter(|(k, _)| *k == n)
            .map(|(_, v)| v.clone())
            .collect()
    };
    let canonical = acs3_canonical_request("POST", "/", &query, &values, &signed, &sha256_hex(b""));
    let sig = acs3_signature(SECRET, &acs3_string_to_sign(&canonical));
    let wire: Vec<String> = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&query)
        .finish()
        .split('&')
        .map(str::to_string)
        .collect();
    let mut b = Request::builder()
        .method("POST")
        .uri(format!("/?{}", wire.join("&")));
    for (n, v) in &headers {
        b = b.header(*n, v);
    }
    b.header(
        "authorization",
        format!(
            "ACS3-HMAC-SHA256 Credential={AK},SignedHeaders={},Signature={sig}",
            signed.join(";")
        ),
    )
    .body(Body::empty())
    .unwrap()
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

fn aliyun_captures() -> Vec<String> {
    let dir = format!("{}/tests/fixtures/captures", env!("CARGO_MANIFEST_DIR"));
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix(".raw").map(str::to_string))
        .filter(|n| n.starts_with("alicore-") || n.starts_with("teasdk-"))
        .collect();
    names.sort();
    names
}

const AUTH_CODES: &[&str] = &[
    "IncompleteSignature",
    "SignatureDoesNotMatch",
    "SignatureNonceUsed",
    "InvalidTimeStamp.Expired",
    "InvalidTimeStamp.Format",
    "InvalidAccessKeyId.NotFound",
    "InvalidSecurityToken.MismatchWithAccessKey",
];

#[tokio::test]
async fn every_captured_request_authenticates_and_answers() {
    let h = harness(0).await;
    let names = aliyun_captures();
    assert_eq!(names.len(), 17);
    for name in names {
        let a = send(&h, capture_request(&name, |_| {})).await;
        let code = if a.status == 200 {
            String::new()
        } else {
            a.code()
        };
        if name.contains("-sts-") {
            assert_eq!(code, "InvalidSecurityToken.MismatchWithAccessKey", "{name}");
            assert_eq!(a.status, 400);
            continue;
        }
        assert!(!AUTH_CODES.contains(&code.as_str()), "{name}: {}", a.text);
        assert!(a.json()["RequestId"].is_string(), "{name}: {}", a.text);
        assert!(a.content_type.starts_with("application/json"), "{name}");
        if name.contains("DescribeKeyPairs") || name.contains("DescribeInstances") {
            assert_eq!(a.status, 200, "{name}: {}", a.text);
            assert_eq!(a.json()["TotalCount"], 0, "{name}");
        }
        if name.contains("AttachKeyPair") || name.contains("DetachKeyPair") {
            // Signed and understood: the key pair `k1` does not exist in this account.
            assert_eq!(
                (a.status, code.as_str()),
                (404, "InvalidKeyPairName.NotFound"),
                "{name}"
            );
        }
        if name.contains("ImportKeyPair") {
            // The captured public keys are placeholders, not real keys.
            assert_eq!(
                (a.status, code.as_str()),
                (400, "InvalidPublicKeyBody.Malformed"),
                "{name}"
            );
        }
    }
}

#[tokio::test]
async fn a_replayed_nonce_is_refused() {
    let h = harness(0).await;
    for name in [
        "alicore-ecs-DescribeKeyPairs-HMACSHA1-POST",
        "teasdk-ecs-DescribeKeyPairs-ACS3-HMAC-SHA256-POST",
    ] {
        assert_eq!(send(&h, capture_request(name, |_| {})).await.status, 200);
        let again = send(&h, capture_request(name, |_| {})).await;
        assert_eq!(
            (again.status, again.code()),
            (400, "SignatureNonceUsed".into()),
            "{name}"
        );
    }
}

#[tokio::test]
async fn a_changed_byte_fails_with_the_servers_string_to_sign() {
    let h = harness(0).await;
    let flip = |b: &mut Vec<u8>| {
        let s = String::from_utf8(b.clone()).unwrap().replacen(
            "RegionId=cn-hangzhou",
            "RegionId=cn-shanghai",
            1,
        );
        *b = s.into_bytes();
    };
    let a = send(
        &h,
        capture_request("alicore-ecs-DescribeKeyPairs-HMACSHA1-POST", flip),
    )
    .await;
    assert_eq!((a.status, a.code()), (400, "SignatureDoesNotMatch".into()));
    let msg = a.json()["Message"].as_str().unwrap().to_string();
    assert!(msg.starts_with("Specified signature is not matched with our calculation. server string to sign is:POST&%2F&AccessKeyId"), "{msg}");
    let a = send(
        &h,
        capture_request("teasdk-ecs-DescribeKeyPairs-ACS3-HMAC-SHA256-POST", flip),
    )
    .await;
    assert_eq!((a.status, a.code()), (400, "SignatureDoesNotMatch".into()));
    let a = send(
        &h,
        rpc_with(
            &h,
            "DescribeKeyPairs",
            &[("RegionId", REGION)],
            "wrong",
            "JSON",
        ),
    )
    .await;
    assert_eq!((a.status, a.code()), (400, "SignatureDoesNotMatch".into()));
}

#[tokio::test]
async fn the_clock_window_and_unknown_keys() {
    let h = harness(0).await;
    h.clock.set(CAPTURE_TIME + 301);
    let a = send(
        &h,
        capture_request("alicore-ecs-DescribeKeyPairs-HMACSHA1-POST", |_| {}),
    )
    .await;
    assert_eq!(
        (a.status, a.code()),
        (400, "InvalidTimeStamp.Expired".into())
    );
    h.clock.set(CAPTURE_TIME - 299);
    let a = send(
        &h,
        capture_request("teasdk-ecs-DescribeKeyPairs-ACS3-HMAC-SHA256-POST", |_| {}),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let other_key = |b: &mut Vec<u8>| {
        let s = String::from_utf8(b.clone())
            .unwrap()
            .replace(AK, "LTAI5tEXAMPLEotherKeyID1");
        *b = s.into_bytes();
    };
    let a = send(
        &h,
        capture_request("alicore-ecs-ImportKeyPair-HMACSHA1-POST", other_key),
    )
    .await;
    assert_eq!(
        (a.status, a.code()),
        (404, "InvalidAccessKeyId.NotFound".into())
    );
}

#[tokio::test]
async fn protocol_refusals() {
    let h = harness(0).await;
    let a = send(&h, rpc(&h, "DescribeKeyPair", &[("RegionId", REGION)])).await;
    assert_eq!((a.status, a.code()), (404, "InvalidAction.NotFound".into()));
    let a = send(&h, rpc(&h, "DescribeKeyPairs", &[])).await;
    assert_eq!((a.status, a.code()), (400, "MissingParameter".into()));
    assert!(a.json()["Message"]
        .as_str()
        .unwrap()
        .contains("\"RegionId\""));
    let a = send(&h, rpc(&h, "DescribeKeyPairs", &[("RegionId", "mars-1")])).await;
    assert_eq!(
        (a.status, a.code()),
        (404, "InvalidRegionId.NotFound".into())
    );
    let unsigned = Request::builder()
        .method("GET")
        .uri("/?Action=DescribeKeyPairs&AccessKeyId=LTAI5tEXAMPLEaccessKeyID&RegionId=cn-hangzhou")
        .body(Body::empty())
        .unwrap();
    let a = send(&h, unsigned).await;
    assert_eq!((a.status, a.code()), (400, "IncompleteSignature".into()));
    // Unknown parameters are ignored, as ECS ignores them.
    let a = send(
        &h,
        rpc(
            &h,
            "DescribeKeyPairs",
            &[("RegionId", REGION), ("Bogus", "1")],
        ),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let a = send(
        &h,
        rpc(
            &h,
            "DescribeKeyPairs",
            &[("RegionId", REGION), ("PageSize", "x")],
        ),
    )
    .await;
    assert_eq!((a.status, a.code()), (400, "InvalidParameter".into()));
    let env = a.json();
    for k in ["RequestId", "HostId", "Code", "Message", "Recommend"] {
        assert!(env[k].is_string(), "{k} in {env}");
    }
}

#[tokio::test]
async fn xml_answers_and_errors() {
    let h = harness(0).await;
    let a = send(
        &h,
        rpc_with(
            &h,
            "DescribeKeyPairs",
            &[("RegionId", REGION)],
            SECRET,
            "xml",
        ),
    )
    .await;
    assert_eq!(a.status, 200);
    assert_eq!(a.content_type, "text/xml;charset=utf-8");
    assert!(a.text.contains("<DescribeKeyPairsResponse>"), "{}", a.text);
    assert!(a.text.contains("<TotalCount>0</TotalCount>"));
    let a = send(&h, rpc_with(&h, "DescribeKeyPairs", &[], SECRET, "XML")).await;
    assert_eq!(a.status, 400);
    assert_eq!(a.content_type, "text/xml;charset=utf-8");
    assert!(a.text.contains("<Error>") && a.text.contains("<Code>MissingParameter</Code>"));
}

#[tokio::test]
async fn throttling_carries_retry_after() {
    let h = harness(1).await;
    let first = send(&h, rpc(&h, "DescribeKeyPairs", &[("RegionId", REGION)])).await;
    assert_eq!(first.status, 200);
    let a = send(&h, rpc(&h, "DescribeKeyPairs", &[("RegionId", REGION)])).await;
    assert_eq!((a.status, a.code()), (400, "Throttling.User".into()));
    assert_eq!(a.retry_after.as_deref(), Some("1000"));
}

#[tokio::test]
async fn acs3_requests_from_scratch() {
    let h = harness(0).await;
    let a = send(
        &h,
        acs3(
            &h,
            "DescribeKeyPairs",
            &[("RegionId", REGION), ("KeyPairName", "my key*")],
        ),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.json()["PageSize"], 10);
}
