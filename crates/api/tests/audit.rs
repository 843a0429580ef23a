//! In-process tests of the audit trail as the dialects record it: a change's event names
//! its resources and caller, refusals are recorded with the code the client got (also for a
//! bad signature and an unknown credential), and no password or signed string is kept.

use axum::body::{to_bytes, Body};
use axum::http::Request;
use keyplane_core::audit::{AuditAttribute, AuditEvent, AuditQuery, Outcome};
use serde_json::{json, Value};
use tower::ServiceExt;

mod support;
use support::TestServer;

const SECRET_ID: &str = "AKIDauditTEST000000000000000000000000";
const SECRET_KEY: &str = "auditTESTsecretKEY000000000000000";
const NOW: i64 = 1_795_482_395;
const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIRF8lXPd0sPOj9nqAd4vm2P4tUtcerb0/0/KG7LHrKJ a";

fn signed(secret_id: &str, secret_key: &str, action: &str, body: &Value) -> Request<Body> {
    let t = support::Tc3 {
        secret_id,
        secret_key,
        service: "cvm",
        version: "2017-03-12",
        region: Some("ap-guangzhou"),
        ts: NOW,
    };
    support::tc3_post(&t, action, &body.to_string())
}

async fn send(t: &TestServer, req: Request<Body>) -> Value {
    let resp = t.app.clone().oneshot(req).await.unwrap();
    let bytes = to_bytes(resp.into_body(), 1 << 20).await.unwrap();
    serde_json::from_slice::<Value>(&bytes).unwrap()["Response"].clone()
}

async fn events(t: &TestServer, account: Option<&str>, attr: AuditAttribute) -> Vec<AuditEvent> {
    t.state.refusals.flush().await;
    let q = AuditQuery {
        account_id: account.map(str::to_string),
        attributes: vec![attr],
        ..AuditQuery::default()
    };
    t.core.lookup_events(&q).await.unwrap().events
}

#[tokio::test]
async fn changes_and_refusals_are_recorded_as_answered() {
    let t = support::server(support::account("audit", SECRET_ID, SECRET_KEY), NOW, 0).await;
    let me = Some(t.account.id.as_str());
    let body = json!({"KeyName": "audited", "ProjectId": 0, "PublicKey": KEY});
    let ok = send(&t, signed(SECRET_ID, SECRET_KEY, "ImportKeyPair", &body)).await;
    let key = ok["KeyId"].as_str().unwrap().to_string();
    let rid = ok["RequestId"].as_str().unwrap().to_string();
    let found = events(&t, me, AuditAttribute::RequestId(rid.clone())).await;
    let e = &found[0];
    assert_eq!(e.outcome(), Outcome::Success);
    assert_eq!(
        (e.request.dialect.as_str(), e.request.action.as_str()),
        ("cvm", "ImportKeyPair")
    );
    assert_eq!(e.request.credential_id, SECRET_ID);
    assert_eq!(e.request.region, "ap-guangzhou");
    assert_eq!(e.resources.len(), 1);
    assert_eq!(
        (e.resources[0].id.as_str(), e.resources[0].name.as_str()),
        (key.as_str(), "audited")
    );
    // Found by the key's name too.
    let by_name = events(&t, me, AuditAttribute::ResourceName("audited".into())).await;
    assert_eq!(by_name.len(), 1);

    // A rule broken, with a password in the request: the code is kept, the password is not.
    let weak = json!({"ImageId": "img-kpdeb12x", "Placement": {"Zone": "ap-guangzhou-3"},
                      "LoginSettings": {"Password": "weakpw1"}, "InstanceName": "x"});
    let refused = send(&t, signed(SECRET_ID, SECRET_KEY, "RunInstances", &weak)).await;
    let code = refused["Error"]["Code"].as_str().unwrap().to_string();
    let rid = refused["RequestId"].as_str().unwrap().to_string();
    let found = events(&t, me, AuditAttribute::RequestId(rid)).await;
    let e = &found[0];
    assert_eq!(e.outcome(), Outcome::Refused(code));
    assert!(!format!("{e:?}").contains("weakpw1"), "{e:?}");

    // A bad signature: the account whose SecretId it named sees it, without the details.
    let forged = send(
        &t,
        signed(SECRET_ID, "not-the-key", "DescribeKeyPairs", &json!({})),
    )
    .await;
    assert_eq!(forged["Error"]["Code"], "AuthFailure.SignatureFailure");
    let found = events(
        &t,
        me,
        AuditAttribute::ErrorCode("AuthFailure.SignatureFailure".into()),
    )
    .await;
    assert_eq!(found.len(), 1);
    assert!(found[0].read_only);
    assert_eq!(found[0].request.action, "DescribeKeyPairs");
    assert!(!format!("{:?}", found[0]).contains("not-the-key"));

    // An unknown SecretId: in no account's trail, only the operator's.
    let stranger = "AKIDnobody000000000000000000000000000";
    send(
        &t,
        signed(stranger, "x", "DeleteKeyPairs", &json!({"KeyIds": [key]})),
    )
    .await;
    let mine = events(&t, me, AuditAttribute::CredentialId(stranger.into())).await;
    assert!(mine.is_empty());
    let all = events(&t, None, AuditAttribute::CredentialId(stranger.into())).await;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].account_id, None);
    assert_eq!(all[0].resources[0].id, key, "the key it named");
}
