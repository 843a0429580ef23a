//! Credentials changed while servers run: two API nodes on one database file (as `keyplane
//! serve` twice), and an admin service on a third handle (as `keyplane account rotate`). A
//! rotated credential is refused by both nodes as soon as the rotation returns, on the TC3, v1
//! and ECS signatures, and the new one works at once; a signed request served by one node is
//! refused by the other.

use axum::body::{to_bytes, Body};
use axum::http::Request;
use keyplane_api::signature::aliyun::{pct, rpc_signature, rpc_string_to_sign};
use keyplane_api::signature::tencent::{v1_signature, v1_string_to_sign, V1Method};
use keyplane_api::{router, ApiConfig, AppState};
use keyplane_core::account::Account;
use keyplane_core::sealing::MasterKey;
use keyplane_core::Core;
use keyplane_store::SqliteStore;
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tower::ServiceExt;

mod support;
use support::{Tc3, TestClock};

const NOW: i64 = 1_800_000_000;
static NONCE: AtomicU64 = AtomicU64::new(1);

/// A node: the router of a server over its own handle on the database file.
async fn node(path: &std::path::Path, key: &MasterKey, clock: Arc<TestClock>) -> axum::Router {
    let store = Arc::new(SqliteStore::open(path).unwrap());
    let core = Core::new(store, clock).with_master_key(key.clone());
    let config = ApiConfig {
        rate_limit_per_second: 0,
        ..ApiConfig::default()
    };
    router(AppState::new(core, config))
}

/// The answer's body and its error code (Tencent or ECS), if any.
async fn send(app: &axum::Router, req: Request<Body>) -> (Value, Option<String>) {
    let resp = app.clone().oneshot(req).await.unwrap();
    let bytes = to_bytes(resp.into_body(), 1 << 20).await.unwrap();
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    let code = body["Response"]["Error"]["Code"]
        .as_str()
        .or(body["Code"].as_str())
        .map(str::to_string);
    (body, code)
}

fn tc3(a: &Account) -> Request<Body> {
    let t = Tc3 {
        secret_id: &a.secret_id,
        secret_key: a.secret_key.expose(),
        service: "cvm",
        version: "2017-03-12",
        region: Some("ap-guangzhou"),
        ts: NOW,
    };
    support::tc3_post(&t, "DescribeKeyPairs", "{}")
}

/// A v1-signed (HmacSHA256) GET with the nonce `nonce`.
fn v1(a: &Account, nonce: u64) -> Request<Body> {
    let host = "127.0.0.1:8787";
    let mut params: Vec<(String, String)> = [
        ("Action", "DescribeKeyPairs".to_string()),
        ("Version", "2017-03-12".into()),
        ("Region", "ap-guangzhou".into()),
        ("Timestamp", NOW.to_string()),
        ("Nonce", nonce.to_string()),
        ("SecretId", a.secret_id.clone()),
        ("SignatureMethod", "HmacSHA256".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let sts = v1_string_to_sign("GET", host, "/", &params);
    let sig = v1_signature(a.secret_key.expose(), V1Method::HmacSha256, &sts);
    params.push(("Signature".into(), sig));
    let query: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{}={}", pct(k), pct(v)))
        .collect();
    Request::builder()
        .uri(format!("/?{}", query.join("&")))
        .header("host", host)
        .body(Body::empty())
        .unwrap()
}

/// An ECS DescribeKeyPairs signed with the RPC signature.
fn ecs(a: &Account) -> Request<Body> {
    let nonce = format!("cred-nonce-{}", NONCE.fetch_add(1, Ordering::SeqCst));
    let ts = time::OffsetDateTime::from_unix_timestamp(NOW)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let mut all: Vec<(String, String)> = [
        ("Action", "DescribeKeyPairs"),
        ("Format", "JSON"),
        ("Version", "2014-05-26"),
        ("AccessKeyId", &a.access_key_id),
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureVersion", "1.0"),
        ("SignatureNonce", &nonce),
        ("Timestamp", &ts),
        ("RegionId", "cn-hangzhou"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let sig = rpc_signature(
        a.access_key_secret.expose(),
        &rpc_string_to_sign("POST", &all),
    );
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

/// Every scheme signed with `a`'s credentials answers (`None`) or fails with these codes.
async fn check(app: &axum::Router, a: &Account, tencent: Option<&str>, ecs_code: Option<&str>) {
    let (body, code) = send(app, tc3(a)).await;
    assert_eq!(code.as_deref(), tencent, "TC3: {body}");
    let nonce = NONCE.fetch_add(1, Ordering::SeqCst);
    let (body, code) = send(app, v1(a, nonce)).await;
    assert_eq!(code.as_deref(), tencent, "v1: {body}");
    let (body, code) = send(app, ecs(a)).await;
    assert_eq!(code.as_deref(), ecs_code, "ECS: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_credential_stops_working_on_every_node_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keyplane.db");
    let key = MasterKey::generate();
    let clock = TestClock::at(NOW);
    let admin = Core::new(Arc::new(SqliteStore::open(&path).unwrap()), clock.clone())
        .with_master_key(key.clone());
    let old = admin.create_account("rotating", false).await.unwrap();
    let nodes = [
        node(&path, &key, clock.clone()).await,
        node(&path, &key, clock.clone()).await,
    ];
    for app in &nodes {
        check(app, &old, None, None).await;
    }
    let new = admin.rotate_credentials("rotating").await.unwrap();
    for app in &nodes {
        check(
            app,
            &old,
            Some("AuthFailure.SecretIdNotFound"),
            Some("InvalidAccessKeyId.NotFound"),
        )
        .await;
        check(app, &new, None, None).await;
    }
    // And once more, now that both nodes hold the new credentials in memory.
    let newer = admin.rotate_credentials("rotating").await.unwrap();
    for app in &nodes {
        check(
            app,
            &new,
            Some("AuthFailure.SecretIdNotFound"),
            Some("InvalidAccessKeyId.NotFound"),
        )
        .await;
        check(app, &newer, None, None).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_request_is_served_once_by_either_node() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keyplane.db");
    let key = MasterKey::generate();
    let clock = TestClock::at(NOW);
    let admin = Core::new(Arc::new(SqliteStore::open(&path).unwrap()), clock.clone())
        .with_master_key(key.clone());
    let a = admin.create_account("replays", false).await.unwrap();
    let (first, second) = (
        node(&path, &key, clock.clone()).await,
        node(&path, &key, clock.clone()).await,
    );
    let nonce = NONCE.fetch_add(1, Ordering::SeqCst);
    let (body, code) = send(&first, v1(&a, nonce)).await;
    assert_eq!(code, None, "{body}");
    for app in [&first, &second, &first] {
        let (body, code) = send(app, v1(&a, nonce)).await;
        assert_eq!(
            code.as_deref(),
            Some("AuthFailure.SignatureFailure"),
            "{body}"
        );
    }
}
