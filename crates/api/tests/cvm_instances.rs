//! In-process tests of the CVM instance, image and key-binding actions on the router: every
//! action's happy path (the operation it records, carried out by the real worker over an
//! in-memory instance driver), and every refusal with its exact code.
#![recursion_limit = "256"]

use axum::body::{to_bytes, Body};
use axum::http::Request;
use keyplane_core::instance::InstanceState;
use keyplane_core::store::InstanceStore;
use keyplane_store::SqliteStore;
use serde_json::{json, Value};
use std::sync::Arc;
use tower::ServiceExt;

const SECRET_ID: &str = "AKIDinstancesTEST00000000000000000000";
const SECRET_KEY: &str = "instancesTESTsecretKEY00000000000";
const NOW: i64 = 1_795_482_395;
const REGION: &str = "ap-guangzhou";
const KEY_A: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIRF8lXPd0sPOj9nqAd4vm2P4tUtcerb0/0/KG7LHrKJ a";
const KEY_B: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPGZAGXx9EOoGbc75pfXOHdHL78Rsj4sB3XUZF0HwvO1 b";
const LINUX: &str = "img-kpdeb12x";
const WINDOWS: &str = "img-kpwin22x";

mod support;

struct H {
    app: axum::Router,
    store: Arc<SqliteStore>,
    t: support::TestServer,
}

async fn harness() -> H {
    let t = support::server(support::account("instances", SECRET_ID, SECRET_KEY), NOW, 0).await;
    H {
        app: t.app.clone(),
        store: t.store.clone(),
        t,
    }
}

/// Sign a TC3 POST the way the official SDK does.
fn tc3_post(region: &str, action: &str, body: &str) -> Request<Body> {
    let t = support::Tc3 {
        secret_id: SECRET_ID,
        secret_key: SECRET_KEY,
        service: "cvm",
        version: "2017-03-12",
        region: Some(region),
        ts: NOW,
    };
    support::tc3_post(&t, action, body)
}

impl H {
    /// The `Response` object of a call.
    async fn call_in(&self, region: &str, action: &str, body: Value) -> Value {
        let req = tc3_post(region, action, &body.to_string());
        let resp = self.app.clone().oneshot(req).await.unwrap();
        assert_eq!(resp.status(), 200);
        let bytes = to_bytes(resp.into_body(), 1 << 22).await.unwrap();
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        assert!(v["Response"]["RequestId"].is_string(), "{v}");
        v["Response"].clone()
    }

    /// A call that must succeed.
    async fn ok(&self, action: &str, body: Value) -> Value {
        let r = self.call_in(REGION, action, body).await;
        assert!(r["Error"].is_null(), "{action}: {r}");
        r
    }

    /// The error code of a call that must fail.
    async fn code(&self, action: &str, body: Value) -> String {
        let r = self.call_in(REGION, action, body).await;
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
                json!({"KeyName": name, "ProjectId": 0, "PublicKey": public_key}),
            )
            .await;
        r["KeyId"].as_str().unwrap().to_string()
    }

    /// RunInstances with `extra` merged over a minimal Linux request; the ids and RequestId.
    async fn run(&self, extra: Value) -> (Vec<String>, String) {
        let r = self.ok("RunInstances", run_body(extra)).await;
        let ids = r["InstanceIdSet"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        (ids, r["RequestId"].as_str().unwrap().to_string())
    }

    async fn instance(&self, id: &str) -> Value {
        let r = self
            .ok("DescribeInstances", json!({"InstanceIds": [id]}))
            .await;
        assert_eq!(r["TotalCount"], 1, "{r}");
        r["InstanceSet"][0].clone()
    }

    /// Let the worker carry out every recorded operation, then check that the instances are
    /// in these states.
    async fn settle(&self, states: &[(&str, InstanceState)]) {
        self.t.settle().await;
        for (id, state) in states {
            let inst = self.store.get_instance(id).await.unwrap();
            assert_eq!(inst.map(|i| i.state), Some(*state), "{id}");
        }
    }

    /// Stop these instances through the API, and settle.
    async fn stopped(&self, ids: &[&str]) {
        self.ok("StopInstances", json!({"InstanceIds": ids})).await;
        let states: Vec<_> = ids.iter().map(|id| (*id, InstanceState::Stopped)).collect();
        self.settle(&states).await;
    }
}

fn run_body(extra: Value) -> Value {
    let mut body = json!({
        "Placement": {"Zone": "ap-guangzhou-3"},
        "ImageId": LINUX,
        "InstanceType": "S5.MEDIUM4",
    });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

fn is_instance_id(id: &str) -> bool {
    id.strip_prefix("ins-").is_some_and(|s| {
        s.len() == 8
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    })
}

#[path = "cvm_instances/describe.rs"]
mod describe;
#[path = "cvm_instances/lifecycle.rs"]
mod lifecycle;
#[path = "cvm_instances/password.rs"]
mod password;
#[path = "cvm_instances/run.rs"]
mod run;
#[path = "cvm_instances/state_errors.rs"]
mod state_errors;
#[path = "cvm_instances/worker.rs"]
mod worker;
