//! In-process tests of the agents' API: registration tokens are single-use and expire, an
//! agent token works for its own instance only, long polls answer on change, reports count.

use axum::body::{to_bytes, Body};
use axum::http::Request;
use keyplane_core::keypair::Namespace;
use keyplane_core::store::InstanceStore;
use keyplane_core::Core;
use serde_json::{json, Value};
use std::sync::Arc;
use tower::ServiceExt;

mod support;
use support::TestClock;

struct Harness {
    app: axum::Router,
    core: Core,
    clock: Arc<TestClock>,
    store: Arc<keyplane_store::SqliteStore>,
}

async fn harness() -> Harness {
    let t = support::server(
        support::account("agents-test", "AKIDagents", "secret"),
        1_800_000_000,
        0,
    )
    .await;
    Harness {
        app: t.app,
        core: t.core,
        clock: t.clock,
        store: t.store,
    }
}

async fn send(
    h: &Harness,
    method: &str,
    uri: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut b = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    let req = match body {
        Some(v) => b
            .header("content-type", "application/json")
            .body(Body::from(v.to_string())),
        None => b.body(Body::empty()),
    }
    .unwrap();
    let resp = h.app.clone().oneshot(req).await.unwrap();
    let status = resp.status().as_u16();
    let bytes = to_bytes(resp.into_body(), 1 << 20).await.unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

async fn register(h: &Harness, token: &str, address: &str) -> (u16, Value) {
    let body = json!({"token": token, "hostname": "h1", "address": address, "ssh_port": 22});
    send(h, "POST", "/keyplane/agent/v1/register", None, Some(body)).await
}

#[tokio::test]
async fn registration_tokens_are_single_use_and_expire() {
    let h = harness().await;
    let acct = h.core.create_account("ops", false).await.unwrap();
    let token = h
        .core
        .issue_registration_token(&acct, Namespace::Cvm, "ap-guangzhou", 60)
        .await
        .unwrap();
    let (status, body) = register(&h, &token, "10.0.0.5").await;
    assert_eq!(status, 200, "{body}");
    let id = body["instance_id"].as_str().unwrap();
    assert!(Namespace::Cvm.is_instance_id(id), "{id}");
    let listed = h.core.list_instances(&acct, Namespace::Cvm).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].private_ip, "10.0.0.5");

    let (status, body) = register(&h, &token, "10.0.0.6").await;
    assert_eq!(status, 401, "a used token is refused: {body}");
    assert!(body["error"].as_str().unwrap().contains("already used"));

    let late = h
        .core
        .issue_registration_token(&acct, Namespace::Lighthouse, "ap-guangzhou", 60)
        .await
        .unwrap();
    h.clock.advance(61);
    let (status, body) = register(&h, &late, "10.0.0.7").await;
    assert_eq!(status, 401, "{body}");
    assert!(body["error"].as_str().unwrap().contains("expired"));

    let mut forged = token.clone();
    forged.push('0');
    assert_eq!(register(&h, &forged, "10.0.0.8").await.0, 401);
    let fresh = h
        .core
        .issue_registration_token(&acct, Namespace::Cvm, "ap-guangzhou", 60)
        .await
        .unwrap();
    assert_eq!(register(&h, &fresh, "not-an-ip").await.0, 400);

    // The registration and each refusal are in the audit trail: those of a token this server
    // issued in its account's, the forged one in no account's.
    use keyplane_core::audit::{AuditAttribute, AuditQuery};
    let of = |account: Option<String>| AuditQuery {
        account_id: account,
        attributes: vec![AuditAttribute::EventName("RegisterHost".into())],
        ascending: true,
        ..AuditQuery::default()
    };
    let page = h
        .core
        .lookup_events(&of(Some(acct.id.clone())))
        .await
        .unwrap();
    let outcomes: Vec<String> = page
        .events
        .iter()
        .map(|e| e.outcome().label().to_string())
        .collect();
    assert_eq!(
        outcomes,
        ["SUCCESS", "TokenUsed", "TokenExpired", "InvalidHost"],
        "{page:?}"
    );
    assert_eq!(page.events[0].resources[0].id, id);
    assert_eq!(page.events[0].request.dialect, "agent");
    let all = h.core.lookup_events(&of(None)).await.unwrap();
    let forged_event = all.events.iter().find(|e| e.account_id.is_none()).unwrap();
    assert_eq!(forged_event.error_code.as_deref(), Some("InvalidToken"));
    for e in &all.events {
        assert!(!format!("{e:?}").contains(&token), "a token in {e:?}");
    }
}

#[tokio::test]
async fn an_agent_acts_only_on_its_own_instance() {
    let h = harness().await;
    let acct = h.core.create_account("ops", false).await.unwrap();
    let mut hosts = Vec::new();
    for addr in ["10.0.0.1", "10.0.0.2"] {
        let t = h
            .core
            .issue_registration_token(&acct, Namespace::Cvm, "ap-guangzhou", 60)
            .await
            .unwrap();
        let (_, body) = register(&h, &t, addr).await;
        hosts.push((
            body["instance_id"].as_str().unwrap().to_string(),
            body["agent_token"].as_str().unwrap().to_string(),
        ));
    }
    let (a, a_token) = &hosts[0];
    let (b, _) = &hosts[1];
    let state = |id: &str| format!("/keyplane/agent/v1/instances/{id}/ssh-state");
    let (status, body) = send(&h, "GET", &state(a), Some(a_token), None).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"generation": 0, "authorized_keys": [], "password_authentication": true})
    );
    assert_eq!(
        send(&h, "GET", &state(b), Some(a_token), None).await.0,
        401,
        "A's token on B"
    );
    assert_eq!(
        send(&h, "GET", &state(a), None, None).await.0,
        401,
        "no token"
    );
    assert_eq!(
        send(&h, "GET", &state(a), Some("0".repeat(64).as_str()), None)
            .await
            .0,
        401
    );
    let report = |id: &str| format!("/keyplane/agent/v1/instances/{id}/report");
    let ok = json!({"generation": 0, "ok": true, "message": ""});
    assert_eq!(
        send(&h, "POST", &report(b), Some(a_token), Some(ok.clone()))
            .await
            .0,
        401
    );
    assert_eq!(
        send(&h, "POST", &report(a), Some(a_token), Some(ok))
            .await
            .0,
        200
    );
    assert_eq!(
        h.core.instance_by_id(a).await.unwrap().applied_generation,
        0
    );
    assert_eq!(
        send(&h, "POST", &report(b), Some(a_token), None).await.0,
        401,
        "B's report with A's token"
    );
    // Each refusal is in the account's trail, naming the instance it claimed.
    use keyplane_core::audit::{AuditAttribute, AuditQuery};
    let q = AuditQuery {
        account_id: Some(acct.id.clone()),
        attributes: vec![AuditAttribute::ErrorCode("InvalidAgentToken".into())],
        ..AuditQuery::default()
    };
    let refused = h.core.lookup_events(&q).await.unwrap();
    assert_eq!(refused.total, 5, "{refused:?}");
    assert!(refused
        .events
        .iter()
        .all(|e| e.read_only == (e.request.action == "GetSshState")));
    let on_b = refused
        .events
        .iter()
        .filter(|e| e.resources.iter().any(|r| &r.id == b))
        .count();
    assert_eq!(on_b, 3);
}

/// Register a host and import a key for its account: the host's id, its agent token, the key.
async fn host_and_key(h: &Harness) -> (String, String, keyplane_core::keypair::KeyPair) {
    let acct = h.core.create_account("ops", false).await.unwrap();
    let t = h
        .core
        .issue_registration_token(&acct, Namespace::Cvm, "ap-guangzhou", 60)
        .await
        .unwrap();
    let (_, body) = register(h, &t, "10.0.0.1").await;
    let id = body["instance_id"].as_str().unwrap().to_string();
    let token = body["agent_token"].as_str().unwrap().to_string();
    let key = h
        .core
        .import_key_pair(
            &acct,
            Namespace::Cvm,
            keyplane_core::service::NewKeyPair {
                name: "k".into(),
                ..Default::default()
            },
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl k",
            &keyplane_core::RequestMeta::default(),
        )
        .await
        .unwrap();
    (id, token, key)
}

/// Register a host and bind one key to it: generation 1 is desired, 0 was never fetched.
async fn host_with_a_bound_key(h: &Harness) -> (String, String) {
    let (id, token, key) = host_and_key(h).await;
    let keys = vec![key.id.clone()];
    h.store.set_bindings(&id, &keys, Some(&keys)).await.unwrap();
    (id, token)
}

#[tokio::test]
async fn a_report_counts_only_for_a_generation_the_agent_was_given() {
    let h = harness().await;
    let (id, token) = host_with_a_bound_key(&h).await;
    let report = format!("/keyplane/agent/v1/instances/{id}/report");
    let applied = |g: i64| json!({"generation": g, "ok": true, "message": ""});
    // Generation 1 is desired but the agent never fetched it; 1001 was never issued at all.
    for g in [1, 1001, -1] {
        let (status, body) = send(&h, "POST", &report, Some(&token), Some(applied(g))).await;
        assert_eq!(status, 409, "generation {g}: {body}");
        assert_eq!(body["code"], "GenerationNotIssued", "{body}");
        assert!(
            body["error"].as_str().unwrap().contains("never issued"),
            "{body}"
        );
        let failed = json!({"generation": g, "ok": false, "message": "boom"});
        let (status, _) = send(&h, "POST", &report, Some(&token), Some(failed)).await;
        assert_eq!(status, 409, "a failure report of generation {g}");
    }
    assert_eq!(
        h.core.instance_by_id(&id).await.unwrap().applied_generation,
        0,
        "nothing changed"
    );
    // Once served through ssh-state, the same report counts.
    let state = format!("/keyplane/agent/v1/instances/{id}/ssh-state");
    let (status, body) = send(&h, "GET", &state, Some(&token), None).await;
    assert_eq!((status, body["generation"].clone()), (200, json!(1)));
    let (status, body) = send(&h, "POST", &report, Some(&token), Some(applied(1))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        h.core.instance_by_id(&id).await.unwrap().applied_generation,
        1
    );
    let (status, _) = send(&h, "POST", &report, Some(&token), Some(applied(1001))).await;
    assert_eq!(status, 409, "still nothing beyond what was served");
    assert_eq!(
        h.core.instance_by_id(&id).await.unwrap().applied_generation,
        1
    );
}

#[tokio::test]
async fn what_one_node_served_counts_on_another() {
    // Two cores ("nodes") on one store: the agent fetches from one and reports to the other.
    let h = harness().await;
    let (id, token) = host_with_a_bound_key(&h).await;
    let other = keyplane_core::Core::new(h.store.clone(), h.clock.clone());
    let node2 = keyplane_api::router(keyplane_api::AppState::new(
        other,
        keyplane_api::ApiConfig::default(),
    ));
    let state = format!("/keyplane/agent/v1/instances/{id}/ssh-state");
    assert_eq!(send(&h, "GET", &state, Some(&token), None).await.0, 200);
    let req = Request::builder()
        .method("POST")
        .uri(format!("/keyplane/agent/v1/instances/{id}/report"))
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Body::from(json!({"generation": 1, "ok": true}).to_string()))
        .unwrap();
    let resp = node2.oneshot(req).await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        h.core.instance_by_id(&id).await.unwrap().applied_generation,
        1
    );
}

#[tokio::test]
async fn a_long_poll_answers_when_the_state_changes() {
    // The database fallback is out of reach and the poll waits 60 s: only this node's change
    // notice can answer it within 30 s.
    let config = keyplane_api::ApiConfig {
        rate_limit_per_second: 0,
        agent_poll_fallback: std::time::Duration::from_secs(3600),
        ..keyplane_api::ApiConfig::default()
    };
    let t = support::server_with(
        support::account("agents-test", "AKIDagents", "secret"),
        1_800_000_000,
        config,
    )
    .await;
    let h = Harness {
        app: t.app,
        core: t.core,
        clock: t.clock,
        store: t.store,
    };
    let (id, token, key) = host_and_key(&h).await;
    let listeners = t.state.ssh_changes.receiver_count();
    let uri = format!("/keyplane/agent/v1/instances/{id}/ssh-state?after=0&wait=60");
    let poll = {
        let h_app = h.app.clone();
        let token = token.clone();
        tokio::spawn(async move {
            let req = Request::builder()
                .uri(uri)
                .header("authorization", format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap();
            let resp = h_app.oneshot(req).await.unwrap();
            let bytes = to_bytes(resp.into_body(), 1 << 20).await.unwrap();
            serde_json::from_slice::<Value>(&bytes).unwrap()
        })
    };
    // The change comes once the poll waits for it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while t.state.ssh_changes.receiver_count() == listeners {
        assert!(
            std::time::Instant::now() < deadline,
            "the long poll never started waiting"
        );
        tokio::task::yield_now().await;
    }
    let keys = vec![key.id.clone()];
    h.store.set_bindings(&id, &keys, Some(&keys)).await.unwrap();
    t.state.ssh_changes.send(id.clone()).unwrap();
    let body = tokio::time::timeout(std::time::Duration::from_secs(30), poll)
        .await
        .expect("the change notice answers the poll, not its 60 s deadline")
        .unwrap();
    assert_eq!(body["generation"], 1, "{body}");
    assert_eq!(body["password_authentication"], false);
    assert_eq!(body["authorized_keys"], json!([key.public_key]));
}

#[tokio::test]
async fn an_address_given_to_an_instance_is_refused_on_any_port() {
    let h = harness().await;
    let alice = h.core.create_account("alice", false).await.unwrap();
    let bob = h.core.create_account("bob", false).await.unwrap();
    // Alice's sandbox instance gets the first sandbox address, 127.1.0.1.
    let spec = keyplane_core::compute::LaunchSpec {
        namespace: Namespace::Cvm,
        region: "ap-guangzhou".into(),
        zone: "ap-guangzhou-3".into(),
        image_id: "img-kpdeb12x".into(),
        names: vec!["web".into()],
        host_names: vec![],
        password: None,
        key_ids: vec![],
        instance_type: "S5.SMALL1".into(),
        ssh_port: 22,
        client_token: None,
        user_data: None,
        then_stop: false,
    };
    let ids = h
        .core
        .launch_instances(&alice, spec, &keyplane_core::RequestMeta::default())
        .await
        .unwrap();
    let sandbox = h.core.instance_by_id(&ids[0]).await.unwrap();
    assert_eq!(sandbox.private_ip, "127.1.0.1");
    let token = |acct| {
        let core = h.core.clone();
        async move {
            core.issue_registration_token(acct, Namespace::Cvm, "ap-guangzhou", 60)
                .await
                .unwrap()
        }
    };
    let with_port = |t: String, address: &str, port: u16| json!({"token": t, "hostname": "h", "address": address, "ssh_port": port});
    let post = |body| send(&h, "POST", "/keyplane/agent/v1/register", None, Some(body));
    // Another account's host on the sandbox's address, another port; the same in IPv6 form.
    for (acct, address, port) in [
        (&bob, "127.1.0.1", 2222),
        (&alice, "127.1.0.1", 22),
        (&bob, "::ffff:127.1.0.1", 2200),
    ] {
        let (status, body) = post(with_port(token(acct).await, address, port)).await;
        assert_eq!(status, 409, "{address}:{port}: {body}");
        assert!(
            body["error"].as_str().unwrap().contains("already given"),
            "{body}"
        );
    }
    // A host's address is its own too: another host, of any account, cannot take it.
    let (status, body) = post(with_port(token(&bob).await, "10.0.0.5", 22)).await;
    assert_eq!(status, 200, "{body}");
    for (acct, port) in [(&alice, 2222), (&bob, 22), (&bob, 23)] {
        let (status, _) = post(with_port(token(acct).await, "10.0.0.5", port)).await;
        assert_eq!(status, 409, "10.0.0.5:{port}");
    }
    assert_eq!(
        h.core
            .list_instances(&bob, Namespace::Cvm)
            .await
            .unwrap()
            .len(),
        1,
        "nothing registered by the refused attempts"
    );
}
