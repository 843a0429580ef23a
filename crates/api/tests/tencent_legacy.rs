//! In-process tests of the Tencent CVM legacy v2 dialect (`/v2/index.php`) on the router:
//! requests signed here with the library's v1 functions, instances created and stopped
//! through the core and carried through their operations by the real worker over an
//! in-memory instance driver.

use axum::body::{to_bytes, Body};
use axum::http::Request;
use base64::Engine;
use keyplane_api::signature::tencent::{v1_signature, v1_string_to_sign, V1Method};
use keyplane_core::account::Account;
use keyplane_core::compute::LaunchSpec;
use keyplane_core::instance::{InstanceState, OpKind, OpState};
use keyplane_core::keypair::Namespace;
use keyplane_core::service::{Clock, NewKeyPair};
use keyplane_core::store::InstanceStore;
use keyplane_core::Core;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tower::ServiceExt;

const SECRET_ID: &str = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE";
const SECRET_KEY: &str = "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE";
const NOW: i64 = 1795482395;
const HOST: &str = "127.0.0.1:8787";
const PATH: &str = "/v2/index.php";

mod support;
use support::TestClock;

struct Harness {
    app: axum::Router,
    clock: Arc<TestClock>,
    core: Core,
    /// The store under `core`.
    store: Arc<keyplane_store::SqliteStore>,
    account: Account,
    nonce: AtomicU64,
    t: support::TestServer,
}

async fn harness() -> Harness {
    let t = support::server(support::account("legacy", SECRET_ID, SECRET_KEY), NOW, 10).await;
    Harness {
        app: t.app.clone(),
        clock: t.clock.clone(),
        core: t.core.clone(),
        store: t.store.clone(),
        account: t.account.clone(),
        nonce: AtomicU64::new(1000),
        t,
    }
}

/// How to sign one request.
struct Call {
    http: &'static str,
    path: &'static str,
    secret_id: String,
    secret_key: String,
    timestamp: i64,
    nonce: u64,
    method: Option<&'static str>,
    common: Vec<(String, String)>,
    business: Vec<(String, String)>,
}

impl Harness {
    fn call(&self, action: &str, business: &[(&str, &str)]) -> Call {
        Call {
            http: "GET",
            path: PATH,
            secret_id: SECRET_ID.into(),
            secret_key: SECRET_KEY.into(),
            timestamp: self.clock.now(),
            nonce: self.nonce.fetch_add(1, Ordering::SeqCst),
            method: Some("HmacSHA256"),
            common: vec![
                ("Action".into(), action.into()),
                ("Region".into(), "gz".into()),
            ],
            business: business
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }
}

impl Call {
    fn request(&self) -> Request<Body> {
        let mut params = self.common.clone();
        params.push(("Timestamp".into(), self.timestamp.to_string()));
        params.push(("Nonce".into(), self.nonce.to_string()));
        params.push(("SecretId".into(), self.secret_id.clone()));
        if let Some(m) = self.method {
            params.push(("SignatureMethod".into(), m.into()));
        }
        params.extend(self.business.iter().cloned());
        let algo = V1Method::parse(self.method).unwrap();
        let plaintext = v1_string_to_sign(self.http, HOST, self.path, &params);
        params.push((
            "Signature".into(),
            v1_signature(&self.secret_key, algo, &plaintext),
        ));
        let encoded = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&params)
            .finish();
        let b = Request::builder().method(self.http).header("host", HOST);
        if self.http == "GET" {
            b.uri(format!("{}?{encoded}", self.path))
                .body(Body::empty())
                .unwrap()
        } else {
            b.uri(self.path)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(Body::from(encoded))
                .unwrap()
        }
    }
}

struct Answer {
    content_type: String,
    body: Value,
}

impl Answer {
    fn code(&self) -> i64 {
        self.body["code"].as_i64().unwrap()
    }
    fn desc(&self) -> &str {
        self.body["codeDesc"].as_str().unwrap()
    }
    fn message(&self) -> &str {
        self.body["message"].as_str().unwrap()
    }
}

async fn send(h: &Harness, req: Request<Body>) -> Answer {
    let resp = h.app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), 200, "the legacy API answers errors with 200");
    let content_type = resp.headers()["content-type"].to_str().unwrap().to_string();
    let bytes = to_bytes(resp.into_body(), 1 << 20).await.unwrap();
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    Answer { content_type, body }
}

async fn run(h: &Harness, call: Call) -> Answer {
    send(h, call.request()).await
}

/// A valid ed25519 OpenSSH public key, distinct per `seed`.
fn public_key(seed: u8) -> String {
    let mut blob = Vec::new();
    blob.extend_from_slice(&11u32.to_be_bytes());
    blob.extend_from_slice(b"ssh-ed25519");
    blob.extend_from_slice(&32u32.to_be_bytes());
    blob.extend_from_slice(&[seed; 32]);
    let b64 = base64::engine::general_purpose::STANDARD.encode(blob);
    format!("ssh-ed25519 {b64} test{seed}")
}

async fn import_key(h: &Harness, account: &Account, seed: u8) -> String {
    let spec = NewKeyPair {
        name: format!("key{seed}"),
        ..NewKeyPair::default()
    };
    h.core
        .import_key_pair(
            account,
            Namespace::Cvm,
            spec,
            &public_key(seed),
            &keyplane_core::RequestMeta::default(),
        )
        .await
        .unwrap()
        .id
}

/// Let the worker carry out every pending operation.
async fn finish_operations(h: &Harness) {
    h.t.settle().await;
}

/// Launch `n` instances of `image` for `account`, let the worker create them, and stop them
/// (with a stop operation, as StopInstances records it) when `state` is STOPPED.
async fn launch(
    h: &Harness,
    account: &Account,
    image: &str,
    n: usize,
    state: InstanceState,
) -> Vec<String> {
    let spec = LaunchSpec {
        user_data: None,
        then_stop: false,
        namespace: Namespace::Cvm,
        region: "ap-guangzhou".into(),
        zone: "ap-guangzhou-3".into(),
        image_id: image.into(),
        names: (0..n).map(|i| format!("vm{i}")).collect(),
        password: None,
        key_ids: vec![],
        instance_type: "S5.SMALL1".into(),
        ssh_port: 22,
        client_token: None,
        host_names: Vec::new(),
    };
    let ids = h
        .core
        .launch_instances(account, spec, &keyplane_core::RequestMeta::default())
        .await
        .unwrap();
    finish_operations(h).await;
    if state == InstanceState::Stopped {
        let req = keyplane_core::RequestMeta {
            action: "StopInstances".into(),
            request_id: format!("stop-{}", ids[0]),
            ..keyplane_core::RequestMeta::default()
        };
        let stop = |_: &_| Ok((OpKind::Stop { force: true }, Some(InstanceState::Stopping)));
        h.core
            .submit(account, Namespace::Cvm, &ids, &req, stop)
            .await
            .unwrap();
        finish_operations(h).await;
    }
    for id in &ids {
        let inst = h.store.get_instance(id).await.unwrap().unwrap();
        assert_eq!(inst.state, state, "{id}");
    }
    ids
}

const LINUX: &str = "img-kpdeb12x";
const WINDOWS: &str = "img-kpwin22x";

#[tokio::test]
async fn bind_on_stopped_instances_answers_success_and_starts_operations() {
    let h = harness().await;
    let ids = launch(&h, &h.account, LINUX, 2, InstanceState::Stopped).await;
    let key = import_key(&h, &h.account, 1).await;
    let a = run(
        &h,
        h.call(
            "BindInstanceKey",
            &[
                ("instanceIds.0", &ids[0]),
                ("instanceIds.1", &ids[1]),
                ("keyId", &key),
            ],
        ),
    )
    .await;
    assert_eq!(a.content_type, "application/json");
    assert_eq!(
        a.body,
        json!({"code": 0, "message": "", "codeDesc": "Success"})
    );
    for id in &ids {
        let inst = h.store.get_instance(id).await.unwrap().unwrap();
        assert_eq!(inst.latest_operation.as_deref(), Some("BindInstanceKey"));
        assert_eq!(inst.latest_operation_state, Some(OpState::Operating));
        assert!(inst.latest_operation_request_id.is_some());
    }
    // A second call while the operation runs is refused: the instance is busy.
    let busy = run(
        &h,
        h.call(
            "BindInstanceKey",
            &[("instanceIds.0", &ids[0]), ("keyId", &key)],
        ),
    )
    .await;
    assert_eq!(
        (busy.code(), busy.desc()),
        (5100, "OperationDenied.InstanceOperationInProgress")
    );
}

#[tokio::test]
async fn unbind_accepts_the_lower_case_spelling_and_a_post_form() {
    let h = harness().await;
    let ids = launch(&h, &h.account, LINUX, 1, InstanceState::Stopped).await;
    let key = import_key(&h, &h.account, 2).await;
    let mut call = h.call(
        "unBindInstanceKey",
        &[("instanceIds.0", &ids[0]), ("keyId", &key)],
    );
    call.http = "POST";
    let a = run(&h, call).await;
    assert_eq!(a.code(), 0, "{}", a.body);
    let inst = h.store.get_instance(&ids[0]).await.unwrap().unwrap();
    assert_eq!(inst.latest_operation.as_deref(), Some("UnBindInstanceKey"));
    assert_eq!(inst.latest_operation_state, Some(OpState::Operating));
}

#[tokio::test]
async fn the_instance_rules_of_the_seed_are_enforced() {
    let h = harness().await;
    let running = launch(&h, &h.account, LINUX, 1, InstanceState::Running).await;
    let windows = launch(&h, &h.account, WINDOWS, 1, InstanceState::Stopped).await;
    let key = import_key(&h, &h.account, 3).await;
    for (action, id, desc) in [
        (
            "BindInstanceKey",
            &running[0],
            "UnsupportedOperation.InstanceStateRunning",
        ),
        (
            "UnBindInstanceKey",
            &running[0],
            "UnsupportedOperation.InstanceStateRunning",
        ),
        (
            "BindInstanceKey",
            &windows[0],
            "UnsupportedOperation.KeyPairUnsupportedWindows",
        ),
    ] {
        let a = run(
            &h,
            h.call(action, &[("instanceIds.0", id), ("keyId", &key)]),
        )
        .await;
        assert_eq!((a.code(), a.desc()), (5100, desc), "{}", a.body);
        assert_eq!(a.content_type, "application/json");
        assert_eq!(
            a.body.as_object().unwrap().len(),
            3,
            "exactly code, message, codeDesc: {}",
            a.body
        );
    }
}

#[tokio::test]
async fn malformed_missing_and_unknown_parameters() {
    let h = harness().await;
    let ids = launch(&h, &h.account, LINUX, 1, InstanceState::Stopped).await;
    let key = import_key(&h, &h.account, 4).await;
    let too_many: Vec<(String, String)> = (0..101)
        .map(|i| (format!("instanceIds.{i}"), format!("ins-{i:08}")))
        .collect();
    let mut many_call = h.call("BindInstanceKey", &[("keyId", &key)]);
    many_call.business.extend(too_many);
    let cases: Vec<(Call, i64, &str, &str)> = vec![
        (
            h.call(
                "BindInstanceKey",
                &[("instanceIds.0", "ins-123"), ("keyId", &key)],
            ),
            4000,
            "InvalidInstanceId.Malformed",
            "ins-123",
        ),
        (
            h.call(
                "BindInstanceKey",
                &[("instanceIds.0", &ids[0]), ("keyId", "skey-1")],
            ),
            4000,
            "InvalidKeyPairId.Malformed",
            "skey-1",
        ),
        (
            h.call(
                "BindInstanceKey",
                &[
                    ("instanceIds.0", &ids[0]),
                    ("instanceIds.1", &ids[0]),
                    ("keyId", &key),
                ],
            ),
            4000,
            "InvalidParameterValue.Duplicate",
            "instanceIds",
        ),
        (
            many_call,
            4000,
            "InvalidParameterValue.LimitExceeded",
            "100",
        ),
        (
            h.call("BindInstanceKey", &[("instanceIds.0", &ids[0])]),
            4000,
            "InvalidParameter",
            "keyId",
        ),
        (
            h.call(
                "BindInstanceKey",
                &[("instanceIds.0", &ids[0]), ("keyId", "")],
            ),
            4000,
            "InvalidParameter",
            "keyId",
        ),
        (
            h.call("UnBindInstanceKey", &[("keyId", &key)]),
            4000,
            "InvalidParameter",
            "instanceIds",
        ),
        (
            h.call(
                "BindInstanceKey",
                &[("instanceIds.1", &ids[0]), ("keyId", &key)],
            ),
            4000,
            "InvalidParameter",
            "instanceIds.1",
        ),
        (
            h.call(
                "BindInstanceKey",
                &[("instanceIds.0", &ids[0]), ("keyId", &key), ("bogus", "1")],
            ),
            4000,
            "InvalidParameter",
            "bogus",
        ),
        (
            h.call("RunInstances", &[]),
            6100,
            "InvalidAction.NotFound",
            "RunInstances",
        ),
        (
            h.call("DescribeKeyPairs", &[("limit", "101")]),
            4000,
            "InvalidParameterValue",
            "limit",
        ),
    ];
    for (call, code, desc, needle) in cases {
        let a = run(&h, call).await;
        assert_eq!((a.code(), a.desc()), (code, desc), "{}", a.body);
        assert!(a.message().contains(needle), "{}", a.body);
    }
    let mut no_region = h.call("DescribeKeyPairs", &[]);
    no_region.common.retain(|(k, _)| k != "Region");
    let a = run(&h, no_region).await;
    assert_eq!((a.code(), a.desc()), (4000, "InvalidParameter"));
    assert!(a.message().contains("Region"));
}

#[tokio::test]
async fn unknown_keys_and_other_accounts_resources_are_not_found() {
    let h = harness().await;
    let mine = launch(&h, &h.account, LINUX, 1, InstanceState::Stopped).await;
    let my_key = import_key(&h, &h.account, 5).await;
    let other = Account::generate("other", false, 0);
    h.core.add_account(&other).await.unwrap();
    let theirs = launch(&h, &other, LINUX, 1, InstanceState::Stopped).await;
    let their_key = import_key(&h, &other, 6).await;
    for (instance, key, desc) in [
        (&mine[0], "skey-zzzzzzzz", "InvalidKeyPairId.NotFound"),
        (&mine[0], their_key.as_str(), "InvalidKeyPairId.NotFound"),
        (&theirs[0], my_key.as_str(), "InvalidInstanceId.NotFound"),
        (
            &"ins-zzzzzzzz".to_string(),
            my_key.as_str(),
            "InvalidInstanceId.NotFound",
        ),
    ] {
        let a = run(
            &h,
            h.call(
                "BindInstanceKey",
                &[("instanceIds.0", instance), ("keyId", key)],
            ),
        )
        .await;
        assert_eq!((a.code(), a.desc()), (5000, desc), "{}", a.body);
    }
    let untouched = h.store.get_instance(&theirs[0]).await.unwrap().unwrap();
    assert_ne!(
        untouched.latest_operation.as_deref(),
        Some("BindInstanceKey")
    );
}

#[tokio::test]
async fn signature_clock_and_nonce_are_checked() {
    let h = harness().await;
    let mut wrong_key = h.call("DescribeKeyPairs", &[]);
    wrong_key.secret_key = "not-the-secret".into();
    let mut nobody = h.call("DescribeKeyPairs", &[]);
    nobody.secret_id = "AKIDnobody".into();
    let mut late = h.call("DescribeKeyPairs", &[]);
    late.timestamp = NOW - 301;
    let mut early = h.call("DescribeKeyPairs", &[]);
    early.timestamp = NOW + 301;
    let mut token = h.call("DescribeKeyPairs", &[]);
    token.common.push(("Token".into(), "t".into()));
    let mut bad_method = h.call("DescribeKeyPairs", &[]);
    bad_method
        .common
        .push(("SignatureMethod".into(), "MD5".into()));
    bad_method.method = None;
    for (call, code, desc) in [
        (wrong_key, 4100, "InvalidParameter.SignatureFailure"),
        (nobody, 4104, "InvalidParameter.SecretIdNotFound"),
        (late, 4500, "InvalidRequest.ReplayAttack"),
        (early, 4500, "InvalidRequest.ReplayAttack"),
        (token, 4105, "InvalidRequest.TokenCheckFailed"),
    ] {
        let a = run(&h, call).await;
        assert_eq!((a.code(), a.desc()), (code, desc), "{}", a.body);
    }
    // An unsupported SignatureMethod (signed with the default, HmacSHA1).
    let a = run(&h, bad_method).await;
    assert_eq!(a.code(), 4100, "{}", a.body);

    // A changed byte after signing fails.
    let req = h.call("DescribeKeyPairs", &[("limit", "5")]).request();
    let tampered = req.uri().to_string().replace("limit=5", "limit=6");
    let a = send(
        &h,
        Request::get(tampered)
            .header("host", HOST)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(a.code(), 4100, "{}", a.body);

    // Within the window, the same signed request works once.
    let mut edge = h.call("DescribeKeyPairs", &[]);
    edge.timestamp = NOW - 299;
    let once = edge.request();
    let twice = edge.request();
    assert_eq!(send(&h, once).await.code(), 0);
    let again = send(&h, twice).await;
    assert_eq!(
        (again.code(), again.desc()),
        (4500, "InvalidRequest.ReplayAttack")
    );
    assert!(again.message().contains("Nonce"), "{}", again.body);
}

#[tokio::test]
async fn hmac_sha1_is_the_default_and_api_3_nonces_do_not_collide() {
    let h = harness().await;
    let mut sha1 = h.call("DescribeKeyPairs", &[]);
    sha1.method = None;
    assert_eq!(run(&h, sha1).await.code(), 0);
    let mut explicit = h.call("DescribeKeyPairs", &[]);
    explicit.method = Some("HmacSHA1");
    assert_eq!(run(&h, explicit).await.code(), 0);
    // The same Timestamp and Nonce used on API 3.0 (v1 signature, path `/`) and here.
    let legacy = h.call("DescribeKeyPairs", &[]);
    let mut v3 = h.call("DescribeKeyPairs", &[]);
    v3.nonce = legacy.nonce;
    v3.path = "/";
    v3.common = vec![
        ("Action".into(), "DescribeKeyPairs".into()),
        ("Region".into(), "ap-guangzhou".into()),
        ("Version".into(), "2017-03-12".into()),
    ];
    let a = send(&h, v3.request()).await;
    assert!(a.body["Response"]["Error"].is_null(), "{}", a.body);
    assert!(a.body["Response"]["TotalCount"].is_number(), "{}", a.body);
    assert_eq!(run(&h, legacy).await.code(), 0);
}

#[tokio::test]
async fn describe_key_pairs_shows_bindings_shared_with_api_3() {
    let h = harness().await;
    let ids = launch(&h, &h.account, LINUX, 1, InstanceState::Stopped).await;
    let key = import_key(&h, &h.account, 7).await;
    let other_key = import_key(&h, &h.account, 8).await;
    let a = run(
        &h,
        h.call(
            "BindInstanceKey",
            &[("instanceIds.0", &ids[0]), ("keyId", &key)],
        ),
    )
    .await;
    assert_eq!(a.code(), 0);
    finish_operations(&h).await;
    assert_eq!(
        h.t.driver.machine(&ids[0]).unwrap().keys,
        [public_key(7)],
        "the key is in the instance's SSH state"
    );

    let a = run(&h, h.call("describekeypairs", &[("keyIds.0", &key)])).await;
    assert_eq!((a.code(), a.desc()), (0, "Success"), "{}", a.body);
    assert_eq!(a.body["data"]["totalCount"], 1);
    let k = &a.body["data"]["sshSet"][0];
    assert_eq!(k["keyId"], key.as_str());
    assert_eq!(k["keyName"], "key7");
    assert_eq!(k["pubkey"], public_key(7).as_str());
    assert_eq!(k["status"], 0);
    assert_eq!(k["bindUnInstanceIds"], json!([ids[0]]));
    let inst = h.store.get_instance(&ids[0]).await.unwrap().unwrap();
    assert_eq!(k["bindIps"], json!([inst.private_ip]));
    assert_eq!(k["createTime"], "2026-11-24 09:06:35");

    let a = run(&h, h.call("DescribeKeyPairs", &[("keyName", "key8")])).await;
    assert_eq!(a.body["data"]["totalCount"], 1);
    assert_eq!(a.body["data"]["sshSet"][0]["keyId"], other_key.as_str());
    let a = run(
        &h,
        h.call("DescribeKeyPairs", &[("offset", "1"), ("limit", "1")]),
    )
    .await;
    assert_eq!(a.body["data"]["totalCount"], 2);
    assert_eq!(a.body["data"]["sshSet"].as_array().unwrap().len(), 1);
}

#[path = "tencent_legacy/password.rs"]
mod password;
