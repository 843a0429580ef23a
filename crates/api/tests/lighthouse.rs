//! In-process tests of the Lighthouse 2020-03-24 dialect on the router: the captured requests
//! of the official clients, the key-pair family, the catalog, CreateInstances and the
//! instance calls (the operations they record, carried out by the real worker over an
//! in-memory instance driver), and every refusal with its exact Lighthouse code.
#![recursion_limit = "256"]

use axum::body::{to_bytes, Body};
use axum::http::Request;
use keyplane_core::instance::InstanceState;
use keyplane_core::store::InstanceStore;
use keyplane_store::SqliteStore;
use serde_json::{json, Value};
use std::sync::Arc;
use tower::ServiceExt;

/// The captures' credentials, so their requests verify here too.
const SECRET_ID: &str = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE";
const SECRET_KEY: &str = "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE";
/// The captures were signed around this time.
const NOW: i64 = 1_795_482_395;
const REGION: &str = "ap-guangzhou";
const KEY_A: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIRF8lXPd0sPOj9nqAd4vm2P4tUtcerb0/0/KG7LHrKJ a";
const KEY_B: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPGZAGXx9EOoGbc75pfXOHdHL78Rsj4sB3XUZF0HwvO1 b";
const LINUX: &str = "lhbp-kpdeb12x";
const WINDOWS: &str = "lhbp-kpwin22x";
const BUNDLE: &str = "bundle_kp_gen_02";
const PASSWORD: &str = "Kp-Passw0rd!";

mod support;
use support::{Call, Step, TestClock};

struct H {
    app: axum::Router,
    store: Arc<SqliteStore>,
    clock: Arc<TestClock>,
    t: support::TestServer,
}

async fn harness_with(rate_limit: u32) -> H {
    let t = support::server(
        support::account("lighthouse", SECRET_ID, SECRET_KEY),
        NOW,
        rate_limit,
    )
    .await;
    H {
        app: t.app.clone(),
        store: t.store.clone(),
        clock: t.clock.clone(),
        t,
    }
}

async fn harness() -> H {
    harness_with(0).await
}

/// Sign a TC3 POST the way the official SDK does, for `service` and `version`.
fn tc3(
    service: &str,
    version: &str,
    region: Option<&str>,
    action: &str,
    body: &str,
) -> Request<Body> {
    let t = support::Tc3 {
        secret_id: SECRET_ID,
        secret_key: SECRET_KEY,
        service,
        version,
        region,
        ts: NOW,
    };
    support::tc3_post(&t, action, body)
}

async fn answer(app: &axum::Router, req: Request<Body>) -> Value {
    let resp = app.clone().oneshot(req).await.unwrap();
    assert_eq!(
        resp.status(),
        200,
        "Tencent answers errors with HTTP 200 too"
    );
    assert_eq!(resp.headers()["content-type"], "application/json");
    let bytes = to_bytes(resp.into_body(), 1 << 22).await.unwrap();
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    assert!(v["Response"]["RequestId"].is_string(), "{v}");
    v["Response"].clone()
}

impl H {
    /// The `Response` object of a Lighthouse call in `region` (`None`: no region header).
    async fn call_in(&self, region: Option<&str>, action: &str, body: Value) -> Value {
        let req = tc3(
            "lighthouse",
            "2020-03-24",
            region,
            action,
            &body.to_string(),
        );
        answer(&self.app, req).await
    }

    /// A call that must succeed.
    async fn ok(&self, action: &str, body: Value) -> Value {
        let r = self.call_in(Some(REGION), action, body).await;
        assert!(r["Error"].is_null(), "{action}: {r}");
        r
    }

    /// The error code of a call that must fail.
    async fn code(&self, action: &str, body: Value) -> String {
        let r = self.call_in(Some(REGION), action, body).await;
        let code = r["Error"]["Code"]
            .as_str()
            .unwrap_or_else(|| panic!("{action} succeeded: {r}"));
        assert!(!r["Error"]["Message"].as_str().unwrap().is_empty());
        code.to_string()
    }

    async fn import_key(&self, name: &str, public_key: &str) -> String {
        let r = self
            .ok(
                "ImportKeyPair",
                json!({"KeyName": name, "PublicKey": public_key}),
            )
            .await;
        r["KeyId"].as_str().unwrap().to_string()
    }

    /// CreateInstances with `extra` merged over a minimal Linux request.
    async fn create(&self, extra: Value) -> Vec<String> {
        let r = self.ok("CreateInstances", create_body(extra)).await;
        r["InstanceIdSet"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    }

    async fn instance(&self, id: &str) -> Value {
        let r = self
            .ok("DescribeInstances", json!({"InstanceIds": [id]}))
            .await;
        assert_eq!(r["TotalCount"], 1, "{r}");
        r["InstanceSet"][0].clone()
    }

    /// Move the server's clock `secs` seconds on.
    fn advance(&self, secs: i64) {
        self.clock.advance(secs);
    }

    /// Let the worker carry out every recorded operation, then check that the instances are
    /// in these states; what the worker asked of the instance driver meanwhile is returned.
    async fn settle(&self, states: &[(&str, InstanceState)]) -> Vec<Call> {
        self.t.settle().await;
        for (id, state) in states {
            let inst = self.store.get_instance(id).await.unwrap();
            assert_eq!(inst.map(|i| i.state), Some(*state), "{id}");
        }
        self.t.driver.take_calls()
    }

    /// Stop these instances through the API, and settle.
    async fn stopped(&self, ids: &[&str]) {
        self.ok("StopInstances", json!({"InstanceIds": ids})).await;
        let states: Vec<_> = ids.iter().map(|id| (*id, InstanceState::Stopped)).collect();
        self.settle(&states).await;
    }

    /// Start these instances through the API, and settle.
    async fn started(&self, ids: &[&str]) {
        self.ok("StartInstances", json!({"InstanceIds": ids})).await;
        let states: Vec<_> = ids.iter().map(|id| (*id, InstanceState::Running)).collect();
        self.settle(&states).await;
    }
}

/// What the driver was asked about `id` among `calls`.
fn calls_of(calls: &[Call], id: &str) -> Vec<Call> {
    calls
        .iter()
        .filter(|c| c.instance() == id)
        .cloned()
        .collect()
}

/// The driver writing `keys` into `id`'s SSH state.
fn apply(id: &str, keys: &[&str], password_authentication: bool) -> Call {
    Call::Apply {
        id: id.into(),
        keys: keys.iter().map(|k| k.to_string()).collect(),
        password_authentication,
    }
}

/// The driver stopping `id`.
fn stop(id: &str, force: bool) -> Call {
    Call::Stop {
        id: id.into(),
        force,
    }
}

fn create_body(extra: Value) -> Value {
    let mut body = json!({
        "BundleId": BUNDLE,
        "BlueprintId": LINUX,
        "InstanceChargePrepaid": {"Period": 1},
        "LoginConfiguration": {"AutoGeneratePassword": "NO", "Password": PASSWORD},
    });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

fn is_lh_id(id: &str, prefix: &str) -> bool {
    id.strip_prefix(prefix).is_some_and(|s| {
        s.len() == 8
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    })
}

fn capture(name: &str) -> Request<Body> {
    let path = format!(
        "{}/tests/fixtures/captures/{name}.raw",
        env!("CARGO_MANIFEST_DIR")
    );
    let bytes = std::fs::read(path).unwrap();
    let split = bytes.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8(bytes[..split].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let mut rl = lines.next().unwrap().split(' ');
    let (method, target) = (rl.next().unwrap(), rl.next().unwrap());
    let mut b = Request::builder().method(method).uri(target);
    for l in lines {
        let (n, v) = l.split_once(':').unwrap();
        b = b.header(n, v.trim_start());
    }
    b.body(Body::from(bytes[split + 4..].to_vec())).unwrap()
}

#[tokio::test]
async fn captured_lighthouse_requests_reach_lighthouse() {
    let h = harness().await;
    let dir = format!("{}/tests/fixtures/captures", env!("CARGO_MANIFEST_DIR"));
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix(".raw").map(str::to_string))
        .filter(|n| n.contains("-lighthouse-"))
        .collect();
    names.sort();
    assert!(names.len() >= 11, "{names:?}");
    for name in names {
        let r = answer(&h.app, capture(&name)).await;
        if name.contains("DescribeInstances") {
            assert!(r["Error"].is_null(), "{name}: {r}");
            assert_eq!(r["TotalCount"], 0, "{name}");
            assert_eq!(r["InstanceSet"], json!([]), "{name}");
        } else {
            // Verified, routed to Lighthouse, and refused for the unknown instance.
            assert_eq!(
                r["Error"]["Code"], "ResourceNotFound.InstanceIdNotFound",
                "{name}: {r}"
            );
        }
    }
}

#[tokio::test]
async fn products_versions_and_regions() {
    let h = harness().await;
    let ask = |service: &str, version: &str, region: Option<&str>, action: &str| {
        answer(&h.app, tc3(service, version, region, action, "{}"))
    };
    // A scope naming Lighthouse with CVM's version: the label the client signed and the
    // product it addresses disagree.
    let r = ask("lighthouse", "2017-03-12", Some(REGION), "DescribeKeyPairs").await;
    assert_eq!(r["Error"]["Code"], "AuthFailure.SignatureFailure");
    let r = ask("lighthouse", "2099-01-01", Some(REGION), "DescribeKeyPairs").await;
    assert_eq!(r["Error"]["Code"], "NoSuchVersion");
    // A label naming no product served here (the Node.js SDK signs `127` for 127.0.0.1):
    // the version routes.
    let r = ask("127", "2020-03-24", Some(REGION), "DescribeKeyPairs").await;
    assert!(r["Error"].is_null(), "{r}");
    assert!(r["KeyPairSet"].is_array(), "{r}");
    let r = ask("127", "2017-03-12", Some(REGION), "DescribeKeyPairs").await;
    assert!(r["KeyPairSet"].is_array(), "{r}");
    let r = ask("localhost", "2099-01-01", Some(REGION), "DescribeKeyPairs").await;
    assert_eq!(r["Error"]["Code"], "NoSuchProduct");
    let r = ask(
        "lighthouse",
        "2020-03-24",
        Some(REGION),
        "ModifyKeyPairAttribute",
    )
    .await;
    assert_eq!(r["Error"]["Code"], "InvalidAction");
    let r = ask("lighthouse", "2020-03-24", None, "DescribeKeyPairs").await;
    assert_eq!(r["Error"]["Code"], "MissingParameter");
    let r = ask(
        "lighthouse",
        "2020-03-24",
        Some("mars-1"),
        "DescribeKeyPairs",
    )
    .await;
    assert_eq!(r["Error"]["Code"], "UnsupportedRegion");
    // Lighthouse and CVM key pairs are apart.
    h.import_key("lh", KEY_A).await;
    let cvm = ask("cvm", "2017-03-12", Some(REGION), "DescribeKeyPairs").await;
    assert_eq!(cvm["TotalCount"], 0, "{cvm}");
    let lh = h.ok("DescribeKeyPairs", json!({})).await;
    assert_eq!(lh["TotalCount"], 1);
}

#[tokio::test]
async fn associate_is_10_per_second_and_disassociate_20() {
    let h = harness_with(10).await;
    for (action, allowed) in [
        ("AssociateInstancesKeyPairs", 10),
        ("DisassociateInstancesKeyPairs", 20),
    ] {
        let mut passed = 0;
        let started = std::time::Instant::now();
        for _ in 0..40 {
            let r = h.call_in(Some(REGION), action, json!({})).await;
            match r["Error"]["Code"].as_str() {
                Some("MissingParameter") => passed += 1,
                Some("RequestLimitExceeded") => {}
                other => panic!("{action}: {other:?}"),
            }
        }
        // The burst passes, and what the bucket refilled while the loop ran (at the action's
        // rate, one more for the partial token): a slow machine gets a longer loop, not a
        // different answer.
        let refilled = (started.elapsed().as_secs_f64() * allowed as f64).ceil() as usize + 1;
        assert!(
            (allowed..=allowed + refilled).contains(&passed),
            "{action}: {passed} of 40 back-to-back calls passed ({refilled} refilled)"
        );
    }
}

#[path = "lighthouse/bind.rs"]
mod bind;
#[path = "lighthouse/create.rs"]
mod create;
#[path = "lighthouse/instances.rs"]
mod instances;
#[path = "lighthouse/keypairs.rs"]
mod keypairs;
#[path = "lighthouse/password.rs"]
mod password;
