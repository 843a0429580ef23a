//! In-process tests of the web console: a login link works once and expires, it is traded
//! for a session cookie with the right attributes, a session shows its own account only and
//! ends, nothing is shown without one, and what users named is escaped.

use axum::body::{to_bytes, Body};
use axum::http::{header, Request};
use keyplane_core::account::{Account, Secret};
use keyplane_core::instance::{HostKind, Instance, InstanceState, OpState, OsType};
use keyplane_core::keypair::Namespace;
use keyplane_core::service::NewKeyPair;
use keyplane_core::store::InstanceStore;
use serde_json::Value;
use tower::ServiceExt;

mod support;
use support::TestServer;

const NOW: i64 = 1_800_000_000;

struct Got {
    status: u16,
    headers: axum::http::HeaderMap,
    body: String,
}

async fn get(t: &TestServer, uri: &str, cookie: Option<&str>) -> Got {
    send(t, "GET", uri, cookie).await
}

async fn send(t: &TestServer, method: &str, uri: &str, cookie: Option<&str>) -> Got {
    let mut b = Request::builder().method(method).uri(uri);
    if let Some(c) = cookie {
        b = b.header(header::COOKIE, c);
    }
    let resp = t
        .app
        .clone()
        .oneshot(b.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = to_bytes(resp.into_body(), 1 << 20).await.unwrap();
    Got {
        status,
        headers,
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}

fn instance(a: &Account, id: &str, name: &str, ip: &str, keys: &[String]) -> Instance {
    Instance {
        id: id.into(),
        account_id: a.id.clone(),
        namespace: Namespace::Cvm,
        region: "ap-guangzhou".into(),
        zone: "ap-guangzhou-3".into(),
        name: name.into(),
        host_name: id.into(),
        image_id: "img-kpwin22x".into(),
        os: OsType::Windows,
        os_name: "Windows Server 2022".into(),
        instance_type: "S5.SMALL2".into(),
        state: InstanceState::Running,
        host: HostKind::Record,
        private_ip: ip.into(),
        ssh_port: 22,
        password_hash: Some(Secret::new("$6$salt$HASHVALUE-never-shown")),
        key_ids: keys.to_vec(),
        effective_key_ids: keys.to_vec(),
        desired_generation: 1,
        applied_generation: 1,
        latest_operation: Some("AssociateInstancesKeyPairs".into()),
        latest_operation_state: Some(OpState::Success),
        latest_operation_request_id: Some("req-console-1".into()),
        latest_operation_error: None,
        created_at: NOW,
    }
}

/// A server whose account has a key bound to an instance, and a second account with an
/// instance of its own.
async fn populated() -> (TestServer, Account) {
    let t = support::server(support::account("alice", "AKIDconsole", "secret"), NOW, 0).await;
    let created = t
        .core
        .create_key_pair(
            &t.account,
            Namespace::Cvm,
            NewKeyPair {
                name: "ops_key".into(),
                ..NewKeyPair::default()
            },
            &keyplane_core::RequestMeta::default(),
        )
        .await
        .unwrap();
    let key = created.key_pair.id.clone();
    let mine = instance(
        &t.account,
        "ins-alice001",
        "<script>alert(1)</script>",
        "127.3.0.1",
        std::slice::from_ref(&key),
    );
    t.store.insert_instances(&[mine], &[], None).await.unwrap();
    t.store
        .set_bindings("ins-alice001", std::slice::from_ref(&key), None)
        .await
        .unwrap();
    let bob = t.core.create_account("bob", false).await.unwrap();
    let theirs = instance(&bob, "ins-bob00001", "bobs", "127.3.0.2", &[]);
    t.store
        .insert_instances(&[theirs], &[], None)
        .await
        .unwrap();
    // The private key is in the answer only; it must never reach a page.
    assert!(created.private_key.contains("PRIVATE KEY"));
    (t, bob)
}

fn token_of(url_token: &str) -> String {
    format!("/console/login?token={url_token}")
}

/// Sign in as `name`; the session cookie (`name=value`).
async fn sign_in(t: &TestServer, name: &str) -> String {
    let login = t.core.issue_console_login(name).await.unwrap();
    let got = get(t, &token_of(login.token.expose()), None).await;
    assert_eq!(got.status, 303, "{}", got.body);
    assert_eq!(got.headers[header::LOCATION], "/console/");
    let set = got.headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_string();
    set.split(';').next().unwrap().to_string()
}

#[tokio::test]
async fn nothing_is_shown_without_a_session() {
    let (t, _) = populated().await;
    for cookie in [None, Some("keyplane_console=made-up"), Some("other=1")] {
        let page = get(&t, "/console/", cookie).await;
        assert_eq!(page.status, 401);
        assert!(page.body.contains("Not signed in"), "{}", page.body);
        for secret in ["alice", "ins-alice001", "ops_key", "ins-bob00001"] {
            assert!(!page.body.contains(secret), "{secret} shown: {}", page.body);
        }
        let api = get(&t, "/console/api/overview", cookie).await;
        assert_eq!(api.status, 401);
        assert!(!api.body.contains("ins-alice001"));
    }
    let redirect = get(&t, "/console", None).await;
    assert_eq!(redirect.status, 303);
    assert_eq!(get(&t, "/console/nope", None).await.status, 404);
}

#[tokio::test]
async fn a_login_link_works_once_and_sets_a_strict_cookie() {
    let (t, _) = populated().await;
    let login = t.core.issue_console_login("alice").await.unwrap();
    let url = token_of(login.token.expose());
    let first = get(&t, &url, None).await;
    assert_eq!(first.status, 303);
    let set = first.headers[header::SET_COOKIE].to_str().unwrap();
    for attr in [
        "HttpOnly",
        "SameSite=Strict",
        "Path=/console",
        "Max-Age=43200",
    ] {
        assert!(set.contains(attr), "{attr} missing: {set}");
    }
    assert!(!set.contains("Secure"), "plain HTTP: {set}");
    // The session is not the login token.
    assert!(!set.contains(login.token.expose()), "{set}");
    let again = get(&t, &url, None).await;
    assert_eq!(again.status, 403);
    assert!(again.headers.get(header::SET_COOKIE).is_none());
    assert_eq!(get(&t, "/console/login", None).await.status, 403);
    assert_eq!(get(&t, "/console/login?token=", None).await.status, 403);
}

#[tokio::test]
async fn login_links_expire_after_ten_minutes() {
    let (t, _) = populated().await;
    let late = t.core.issue_console_login("alice").await.unwrap();
    let in_time = t.core.issue_console_login("alice").await.unwrap();
    t.clock.advance(599);
    assert_eq!(
        get(&t, &token_of(in_time.token.expose()), None)
            .await
            .status,
        303
    );
    t.clock.advance(1);
    assert_eq!(
        get(&t, &token_of(late.token.expose()), None).await.status,
        403
    );
    let e = t.core.issue_console_login("nobody").await.err().unwrap();
    assert!(e.to_string().contains("no account named `nobody`"), "{e}");
}

#[tokio::test]
async fn a_session_shows_its_own_account_only() {
    let (t, _) = populated().await;
    let cookie = sign_in(&t, "alice").await;
    let page = get(&t, "/console/", Some(&cookie)).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let keys = t.core.account_key_pairs(&t.account.id).await.unwrap();
    let key = &keys[0];
    for shown in [
        "ins-alice001",
        "127.3.0.1:22",
        "RUNNING",
        "AssociateInstancesKeyPairs",
        "SUCCESS",
        "req-console-1",
        key.id.as_str(),
        key.fingerprint_sha256.as_str(),
        "ops_key",
    ] {
        assert!(
            page.body.contains(shown),
            "{shown} not shown: {}",
            page.body
        );
    }
    for hidden in [
        "ins-bob00001",
        "bobs",
        "HASHVALUE",
        "PRIVATE KEY",
        "<script>alert",
    ] {
        assert!(!page.body.contains(hidden), "{hidden} shown: {}", page.body);
    }
    assert!(page.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    let csp = page.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert_eq!(page.headers[header::CACHE_CONTROL], "no-store");

    // The live endpoint carries the same cells, as JSON text (escaped by the script).
    let api = get(&t, "/console/api/overview", Some(&cookie)).await;
    assert_eq!(api.status, 200);
    let v: Value = serde_json::from_str(&api.body).unwrap();
    let row = &v["instances"]["rows"][0];
    assert_eq!(row[0]["t"], "ins-alice001");
    assert_eq!(row[1]["t"], "<script>alert(1)</script>");
    assert_eq!(row[7]["t"], "SUCCESS");
    assert_eq!(v["instances"]["rows"].as_array().unwrap().len(), 1);
    assert_eq!(v["operating"], 0);
    assert!(!api.body.contains("HASHVALUE"));

    // Bob, signed in, sees his and not Alice's.
    let bob = sign_in(&t, "bob").await;
    let page = get(&t, "/console/", Some(&bob)).await;
    assert!(page.body.contains("ins-bob00001"));
    assert!(!page.body.contains("ins-alice001"));
}

fn meta(request_id: &str, action: &str, credential: &str) -> keyplane_core::RequestMeta {
    keyplane_core::RequestMeta {
        dialect: "cvm".into(),
        action: action.into(),
        request_id: request_id.into(),
        credential_id: credential.into(),
        source_ip: "127.0.0.5".into(),
        region: "ap-guangzhou".into(),
    }
}

#[tokio::test]
async fn the_audit_trail_is_the_accounts_own_and_filters() {
    let (t, bob) = populated().await;
    let spec = |name: &str| NewKeyPair {
        name: name.into(),
        ..NewKeyPair::default()
    };
    let mine = meta("req-audit-mine", "CreateKeyPair", "AKIDconsole");
    let created = t
        .core
        .create_key_pair(&t.account, Namespace::Cvm, spec("audited"), &mine)
        .await
        .unwrap();
    let theirs = meta("req-audit-bobs", "CreateKeyPair", &bob.secret_id);
    t.core
        .create_key_pair(&bob, Namespace::Cvm, spec("bobs_key"), &theirs)
        .await
        .unwrap();
    let refused = meta("req-audit-refused", "DeleteKeyPairs", "AKIDconsole");
    t.core
        .record_refusal(
            &refused,
            Some(&t.account.id),
            false,
            vec![],
            "InvalidKeyPair.NotFound",
            "The key pair <b>skey-x</b> does not exist.",
        )
        .await
        .unwrap();
    let cookie = sign_in(&t, "alice").await;
    let page = get(&t, "/console/", Some(&cookie)).await;
    for shown in [
        "req-audit-mine",
        "req-audit-refused",
        "CreateKeyPair",
        created.key_pair.id.as_str(),
        "127.0.0.5",
        "InvalidKeyPair.NotFound",
        "&lt;b&gt;skey-x&lt;/b&gt;",
    ] {
        assert!(
            page.body.contains(shown),
            "{shown} not shown: {}",
            page.body
        );
    }
    assert!(!page.body.contains("req-audit-bobs"));
    assert!(!page.body.contains("<b>skey-x"));
    // Filters select, and the form shows them back (escaped).
    let refusals = get(&t, "/console/?outcome=refused", Some(&cookie)).await;
    assert!(refusals.body.contains("req-audit-refused"));
    assert!(!refusals.body.contains("req-audit-mine"));
    assert!(refusals
        .body
        .contains("<option value=\"refused\" selected>"));
    let by_name = get(&t, "/console/?resource=audited&action=%22x", Some(&cookie)).await;
    assert!(
        by_name.body.contains("value=\"&quot;x\""),
        "{}",
        by_name.body
    );
    assert!(by_name.body.contains("No events match."));
    let bad = get(&t, "/console/?from=soon", Some(&cookie)).await;
    assert!(bad.body.contains("audit-problem"), "{}", bad.body);
    // The live endpoint keeps the filter it is given.
    let uri = format!("/console/api/overview?resource={}", created.key_pair.id);
    let v: Value = serde_json::from_str(&get(&t, &uri, Some(&cookie)).await.body).unwrap();
    let rows = v["audit"]["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{v}");
    assert_eq!(rows[0][1]["t"], "CreateKeyPair");
    assert_eq!(rows[0][3]["t"], "SUCCESS");
    assert_eq!(rows[0][7]["t"], "req-audit-mine");
}

#[tokio::test]
async fn the_live_endpoint_follows_operations() {
    let (t, _) = populated().await;
    let cookie = sign_in(&t, "alice").await;
    t.core.note_agent_seen("ins-alice001").await.unwrap();
    let inst = t.store.get_instance("ins-alice001").await.unwrap().unwrap();
    let op = keyplane_core::instance::NewOperation {
        account_id: inst.account_id.clone(),
        instance_id: inst.id.clone(),
        action: "StopInstances".into(),
        request_id: "req-console-2".into(),
        kind: keyplane_core::instance::OpKind::Stop { force: false },
        new_state: Some(InstanceState::Stopping),
        state_before: Some(inst.state),
        created_at: NOW,
    };
    t.store.submit_operations(&[op], None).await.unwrap();
    t.clock.advance(5);
    let v: Value =
        serde_json::from_str(&get(&t, "/console/api/overview", Some(&cookie)).await.body).unwrap();
    let row = &v["instances"]["rows"][0];
    assert_eq!(row[3]["t"], "STOPPING");
    assert_eq!(row[6]["t"], "StopInstances");
    assert_eq!(row[7]["t"], "OPERATING");
    assert_eq!(row[7]["c"], "op op-operating");
    assert_eq!(v["operating"], 1);
    let agent = &v["agents"]["rows"][0];
    assert_eq!(agent[0]["t"], "ins-alice001");
    assert!(
        agent[6]["t"].as_str().unwrap().ends_with("(5 s ago)"),
        "{agent}"
    );
}

#[tokio::test]
async fn sessions_end_by_signing_out_or_after_twelve_hours() {
    let (t, _) = populated().await;
    let cookie = sign_in(&t, "alice").await;
    let out = send(&t, "POST", "/console/logout", Some(&cookie)).await;
    assert_eq!(out.status, 303);
    let cleared = out.headers[header::SET_COOKIE].to_str().unwrap();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    assert_eq!(get(&t, "/console/", Some(&cookie)).await.status, 401);

    let cookie = sign_in(&t, "alice").await;
    t.clock.advance(12 * 3600 - 1);
    assert_eq!(get(&t, "/console/", Some(&cookie)).await.status, 200);
    t.clock.advance(1);
    assert_eq!(get(&t, "/console/", Some(&cookie)).await.status, 401);
}

#[tokio::test]
async fn assets_are_built_in() {
    let (t, _) = populated().await;
    let js = get(&t, "/console/assets/console.js", None).await;
    assert_eq!(js.status, 200);
    assert!(js.body.contains("/console/api/overview"));
    assert!(!js.body.contains("innerHTML"), "cells go in as text");
    let css = get(&t, "/console/assets/console.css", None).await;
    assert_eq!(css.status, 200);
    assert!(css.headers[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/css"));
}

#[tokio::test]
async fn over_https_the_cookie_is_secure() {
    let (t, _) = populated().await;
    // What `run_tls` marks every request with.
    let app = t
        .app
        .clone()
        .layer(axum::Extension(keyplane_api::ServedOverTls));
    let login = t.core.issue_console_login("alice").await.unwrap();
    let req = Request::get(token_of(login.token.expose()))
        .body(Body::empty())
        .unwrap();
    let resp = app.oneshot(req).await.unwrap();
    assert_eq!(resp.status().as_u16(), 303);
    let set = resp.headers()[header::SET_COOKIE].to_str().unwrap();
    assert!(set.ends_with("; Secure"), "{set}");
}
