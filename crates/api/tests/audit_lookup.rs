//! In-process tests of the two audit lookup dialects on the router: CloudAudit `LookUpEvents`
//! (TC3) and ActionTrail `LookupEvents` (RPC signature). Each parameter rule's code, which
//! events an account finds (its own, of the provider's dialects), refusals recorded as the
//! product's, NextToken paging, and the documented rates.

use axum::body::{to_bytes, Body};
use axum::http::Request;
use keyplane_api::signature::aliyun::{pct, rpc_signature, rpc_string_to_sign};
use keyplane_core::account::Account;
use keyplane_core::service::Clock;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use tower::ServiceExt;

mod support;
use support::{Tc3, TestServer};

const NOW: i64 = 1_795_482_400;
const SECRET_ID: &str = "AKIDauditLookupTestsEXAMPLE00000001";
const SECRET_KEY: &str = "auditLookupTestsSecretKeyEXAMPLE";
const OTHER_ID: &str = "AKIDauditLookupTestsEXAMPLE00000002";
const OTHER_KEY: &str = "auditLookupTestsOtherKeyEXAMPLE0";

async fn server(rate_limit: u32) -> TestServer {
    let t = support::server(
        support::account("auditor", SECRET_ID, SECRET_KEY),
        NOW,
        rate_limit,
    )
    .await;
    t.core
        .add_account(&support::account("other", OTHER_ID, OTHER_KEY))
        .await
        .unwrap();
    t
}

struct Answer {
    status: u16,
    body: Value,
}

async fn send(t: &TestServer, req: Request<Body>) -> Answer {
    let resp = t.app.clone().oneshot(req).await.unwrap();
    let status = resp.status().as_u16();
    let bytes = to_bytes(resp.into_body(), 1 << 22).await.unwrap();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&bytes)));
    Answer { status, body }
}

/// A TC3-signed request of `service` (`cvm`, `cloudaudit`) signed with `key`.
fn tc3(
    t: &TestServer,
    id: &str,
    key: &str,
    service: &str,
    action: &str,
    body: Value,
) -> Request<Body> {
    let version = match service {
        "cloudaudit" => "2019-03-19",
        _ => "2017-03-12",
    };
    let sign = Tc3 {
        secret_id: id,
        secret_key: key,
        service,
        version,
        region: Some("ap-guangzhou"),
        ts: t.clock.now(),
    };
    support::tc3_post(&sign, action, &body.to_string())
}

/// `LookUpEvents` of the first account; its `Response`.
async fn look_up(t: &TestServer, body: Value) -> Value {
    look_up_as(t, SECRET_ID, SECRET_KEY, body).await
}

async fn look_up_as(t: &TestServer, id: &str, key: &str, body: Value) -> Value {
    let a = send(t, tc3(t, id, key, "cloudaudit", "LookUpEvents", body)).await;
    assert_eq!(a.status, 200);
    a.body["Response"].clone()
}

fn tc_code(r: &Value) -> &str {
    r["Error"]["Code"].as_str().unwrap_or("")
}

/// A window around NOW, with `extra` fields.
fn window(extra: Value) -> Value {
    let mut body = json!({"StartTime": NOW - 600, "EndTime": NOW + 600});
    if let (Value::Object(b), Value::Object(e)) = (&mut body, extra) {
        b.extend(e);
    }
    body
}

static NONCE: AtomicU64 = AtomicU64::new(1);

/// An RPC-signed (HMAC-SHA1) POST of `version` for `account`, parameters in the query.
fn rpc(
    t: &TestServer,
    account: &Account,
    version: &str,
    action: &str,
    params: &[(&str, &str)],
) -> Request<Body> {
    let nonce = format!("audit-nonce-{}", NONCE.fetch_add(1, Ordering::SeqCst));
    let ts = time::OffsetDateTime::from_unix_timestamp(t.clock.now())
        .unwrap()
        .format(time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
        ))
        .unwrap();
    let mut all: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for (k, v) in [
        ("Action", action),
        ("Format", "JSON"),
        ("Version", version),
        ("AccessKeyId", &account.access_key_id),
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureVersion", "1.0"),
        ("SignatureNonce", &nonce),
        ("Timestamp", &ts),
    ] {
        all.push((k.into(), v.into()));
    }
    let secret = account.access_key_secret.expose();
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

async fn lookup_events(t: &TestServer, account: &Account, params: &[(&str, &str)]) -> Answer {
    send(t, rpc(t, account, "2020-07-06", "LookupEvents", params)).await
}

async fn create_cvm_key(t: &TestServer, name: &str) -> Value {
    let body = json!({"KeyName": name, "ProjectId": 0});
    let a = send(
        t,
        tc3(t, SECRET_ID, SECRET_KEY, "cvm", "CreateKeyPair", body),
    )
    .await;
    assert!(a.body["Response"]["Error"].is_null(), "{}", a.body);
    a.body["Response"].clone()
}

async fn create_ecs_key(t: &TestServer, name: &str) -> Value {
    let params = [("RegionId", "cn-hangzhou"), ("KeyPairName", name)];
    let a = send(
        t,
        rpc(t, &t.account, "2014-05-26", "CreateKeyPair", &params),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    a.body
}

/// A CVM DeleteKeyPairs of a key pair that does not exist; its RequestId.
async fn refused_cvm_delete(t: &TestServer, n: usize) -> Value {
    let body = json!({"KeyIds": [format!("skey-{n:08}")]});
    let a = send(
        t,
        tc3(t, SECRET_ID, SECRET_KEY, "cvm", "DeleteKeyPairs", body),
    )
    .await;
    assert_eq!(tc_code(&a.body["Response"]), "InvalidKeyPairId.NotFound");
    a.body["Response"]["RequestId"].clone()
}

/// An ECS DeleteKeyPairs of a key pair that does not exist; its RequestId.
async fn refused_ecs_delete(t: &TestServer, n: usize) -> Value {
    let names = format!("[\"gone-{n}\"]");
    let params = [
        ("RegionId", "cn-hangzhou"),
        ("KeyPairNames", names.as_str()),
    ];
    let a = send(
        t,
        rpc(t, &t.account, "2014-05-26", "DeleteKeyPairs", &params),
    )
    .await;
    assert_eq!(a.body["Code"], "InvalidKeyPair.NotFound", "{}", a.body);
    a.body["RequestId"].clone()
}

#[tokio::test]
async fn every_cloudaudit_rule_answers_its_code() {
    let t = server(0).await;
    let cases = [
        (json!({"EndTime": NOW}), "InvalidParameter.Time"),
        (json!({"StartTime": NOW}), "InvalidParameter.Time"),
        (
            json!({"StartTime": "noon", "EndTime": NOW}),
            "InvalidParameter.Time",
        ),
        (
            json!({"StartTime": NOW, "EndTime": NOW - 1}),
            "InvalidParameterValue.Time",
        ),
        (
            json!({"StartTime": NOW - 7 * 86400 - 1, "EndTime": NOW}),
            "LimitExceeded.OverTime",
        ),
        (
            window(json!({"MaxResults": 51})),
            "InvalidParameterValue.MaxResult",
        ),
        (
            window(json!({"MaxResults": 0})),
            "InvalidParameterValue.MaxResult",
        ),
        (
            window(
                json!({"LookupAttributes": [{"AttributeKey": "Colour", "AttributeValue": "red"}]}),
            ),
            "InvalidParameterValue.attributeKey",
        ),
        (
            window(json!({"LookupAttributes": [{"AttributeValue": "red"}]})),
            "InvalidParameterValue.attributeKey",
        ),
        (
            window(json!({"LookupAttributes": [{"AttributeKey": "EventName"}]})),
            "MissingParameter",
        ),
        (
            window(
                json!({"LookupAttributes": [{"AttributeKey": "ActionType", "AttributeValue": "Both"}]}),
            ),
            "InvalidParameterValue",
        ),
        (window(json!({"Mode": "turbo"})), "InvalidParameterValue"),
        (
            window(json!({"NextToken": "not-a-token"})),
            "InvalidParameter",
        ),
        (window(json!({"Unknown": 1})), "UnknownParameter"),
    ];
    for (body, code) in cases {
        let r = look_up(&t, body.clone()).await;
        assert_eq!(tc_code(&r), code, "{body}: {r}");
    }
    let week = look_up(&t, json!({"StartTime": NOW - 7 * 86400, "EndTime": NOW})).await;
    assert!(week["Error"].is_null(), "{week}");
    // Without a region, or at an unserved one.
    let mut req = tc3(
        &t,
        SECRET_ID,
        SECRET_KEY,
        "cloudaudit",
        "LookUpEvents",
        window(json!({})),
    );
    req.headers_mut().remove("x-tc-region");
    let r = send(&t, req).await.body["Response"].clone();
    assert_eq!(tc_code(&r), "MissingParameter");
    let r = send(
        &t,
        tc3(
            &t,
            SECRET_ID,
            SECRET_KEY,
            "cloudaudit",
            "DescribeEvents",
            json!({}),
        ),
    )
    .await;
    assert_eq!(tc_code(&r.body["Response"]), "InvalidAction");
}

#[tokio::test]
async fn each_trail_shows_its_providers_events_of_the_account() {
    let t = server(0).await;
    let made = create_cvm_key(&t, "tencent_key").await;
    let key_id = made["KeyPair"]["KeyId"].as_str().unwrap().to_string();
    let ecs = create_ecs_key(&t, "alibaba-key").await;

    let r = look_up(&t, window(json!({}))).await;
    assert_eq!(
        (r["TotalCount"].clone(), r["ListOver"].clone()),
        (json!(1), json!(true))
    );
    let e = &r["Events"][0];
    assert_eq!(e["EventName"], "CreateKeyPair");
    assert_eq!(e["RequestID"], made["RequestId"]);
    assert_eq!(e["SecretId"], SECRET_ID);
    assert_eq!(e["Resources"]["ResourceName"], "tencent_key");
    assert_eq!(e["Resources"]["ResourceType"], "keypair");
    assert_eq!(e["EventSource"], "cvm.tencentcloudapi.com");
    assert_eq!(e["AccountID"], json!(t.account.id.parse::<i64>().unwrap()));
    let details: Value = serde_json::from_str(e["CloudAuditEvent"].as_str().unwrap()).unwrap();
    assert_eq!(details["resources"][0]["resourceId"], json!(key_id));
    assert_eq!(details["outcome"], "SUCCESS");
    for body in [
        json!({"LookupAttributes": [{"AttributeKey": "ResourceId", "AttributeValue": key_id}]}),
        json!({"LookupAttributes": [{"AttributeKey": "ResourceType", "AttributeValue": "cvm"}]}),
        json!({"LookupAttributes": [{"AttributeKey": "AccessKeyId", "AttributeValue": SECRET_ID}]}),
    ] {
        assert_eq!(
            look_up(&t, window(body.clone())).await["TotalCount"],
            1,
            "{body}"
        );
    }
    let theirs = look_up_as(&t, OTHER_ID, OTHER_KEY, window(json!({}))).await;
    assert_eq!(
        (theirs["TotalCount"].clone(), theirs["Events"].clone()),
        (json!(0), json!([]))
    );

    let a = lookup_events(&t, &t.account, &[]).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let events = a.body["Events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{}", a.body);
    assert_eq!(events[0]["eventName"], "CreateKeyPair");
    assert_eq!(events[0]["requestId"], ecs["RequestId"]);
    assert_eq!(events[0]["resourceName"], "alibaba-key");
    assert_eq!(
        events[0]["userIdentity"]["accessKeyId"],
        json!(t.account.access_key_id)
    );
    assert!(a.body.get("NextToken").is_none());
    assert!(a.body["RequestId"].is_string());
    let other = Account::generate("third", false, 0);
    t.core.add_account(&other).await.unwrap();
    let a = lookup_events(&t, &other, &[]).await;
    assert_eq!(a.body["Events"], json!([]));
}

#[tokio::test]
async fn refused_lookups_are_recorded_as_the_products_requests() {
    let t = server(0).await;
    let bad = tc3(
        &t,
        SECRET_ID,
        "wrong-key",
        "cloudaudit",
        "LookUpEvents",
        window(json!({})),
    );
    assert_eq!(
        tc_code(&send(&t, bad).await.body["Response"]),
        "AuthFailure.SignatureFailure"
    );
    let r = look_up(
        &t,
        window(json!({"LookupAttributes": [
            {"AttributeKey": "ApiErrorCode", "AttributeValue": "AuthFailure.SignatureFailure"}
        ]})),
    )
    .await;
    let e = &r["Events"][0];
    assert_eq!(
        (e["EventName"].clone(), e["ErrorCode"].clone()),
        (json!("LookUpEvents"), json!(4100))
    );
    assert_eq!(e["EventSource"], "cloudaudit.tencentcloudapi.com");

    let mut wrong = t.account.clone();
    wrong.access_key_secret = keyplane_core::account::Secret::new("wrong");
    let a = lookup_events(&t, &wrong, &[]).await;
    assert_eq!(
        (a.status, a.body["Code"].clone()),
        (400, json!("SignatureDoesNotMatch"))
    );
    assert_eq!(a.body["HostId"], "actiontrail.aliyuncs.com");
    let a = lookup_events(&t, &t.account, &[]).await;
    let e = &a.body["Events"][0];
    assert_eq!(e["errorCode"], "SignatureDoesNotMatch");
    assert_eq!(
        (e["eventName"].clone(), e["serviceName"].clone()),
        (json!("LookupEvents"), json!("Actiontrail"))
    );
    assert_eq!(e["eventRW"], "Read");
}

#[tokio::test]
async fn every_actiontrail_rule_answers_its_code_and_status() {
    let t = server(0).await;
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("StartTime", "2026-11-24")], "InvalidParameterStartTime"),
        (
            &[("EndTime", "2026-11-24T01:06:40+08:00")],
            "InvalidParameterEndTime",
        ),
        (
            &[
                ("StartTime", "2026-11-24T01:06:40Z"),
                ("EndTime", "2026-11-24T01:06:39Z"),
            ],
            "InvalidParameterCombination",
        ),
        (
            &[("EndTime", "2026-11-01T00:00:00Z")],
            "InvalidParameterCombination",
        ),
        (&[("MaxResults", "51")], "InvalidQueryParameter"),
        (&[("MaxResults", "x")], "InvalidQueryParameter"),
        (&[("Direction", "UP")], "InvalidQueryParameter"),
        (&[("NextToken", "abc")], "InvalidQueryParameter"),
        (
            &[
                ("LookupAttribute.1.Key", "Colour"),
                ("LookupAttribute.1.Value", "red"),
            ],
            "InvalidQueryParameter",
        ),
        (
            &[
                ("LookupAttribute.1.Key", "EventRW"),
                ("LookupAttribute.1.Value", "Both"),
            ],
            "InvalidQueryParameter",
        ),
        (
            &[("LookupAttribute.1.Key", "EventName")],
            "InvalidQueryParameter",
        ),
        (
            &[("LookupAttribute.2.Key", "EventName")],
            "InvalidQueryParameter",
        ),
    ];
    for (params, code) in cases {
        let a = lookup_events(&t, &t.account, params).await;
        assert_eq!(
            (a.status, a.body["Code"].as_str().unwrap_or("")),
            (400, *code),
            "{params:?}: {}",
            a.body
        );
        assert_eq!(a.body["HostId"], "actiontrail.aliyuncs.com");
    }
    let a = lookup_events(
        &t,
        &t.account,
        &[("MaxResults", "0"), ("Direction", "FORWARD")],
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["EndTime"], "2026-11-24T01:06:40Z");
    assert_eq!(a.body["StartTime"], "2026-11-17T01:06:40Z");
    let a = send(&t, rpc(&t, &t.account, "2020-07-06", "CreateTrail", &[])).await;
    assert_eq!(
        (a.status, a.body["Code"].clone()),
        (404, json!("InvalidAction.NotFound"))
    );
    let a = send(&t, rpc(&t, &t.account, "2017-12-04", "LookupEvents", &[])).await;
    assert_eq!(
        (a.status, a.body["Code"].clone()),
        (400, json!("InvalidVersion"))
    );
}

#[tokio::test]
async fn next_tokens_walk_each_event_once_and_only_for_their_query() {
    let t = server(0).await;
    // Refused requests are events too, and quicker to make than key pairs.
    let mut made = Vec::new();
    for n in 0..12 {
        made.push(refused_cvm_delete(&t, n).await);
    }
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut last = Value::Null;
    for _ in 0..10 {
        let mut body = window(json!({"MaxResults": 5}));
        if let Some(tok) = &token {
            body["NextToken"] = json!(tok);
        }
        last = look_up(&t, body).await;
        assert_eq!(last["TotalCount"], 12);
        seen.extend(
            last["Events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["RequestID"].clone()),
        );
        match last["NextToken"].as_str() {
            Some(tok) => token = Some(tok.to_string()),
            None => break,
        }
    }
    assert_eq!(last["ListOver"], true);
    made.reverse();
    assert_eq!(seen, made, "newest first, each once");
    let first = look_up(&t, window(json!({"MaxResults": 5}))).await;
    let tok = first["NextToken"].as_str().unwrap();
    let moved = json!({"StartTime": NOW - 601, "EndTime": NOW + 600, "NextToken": tok});
    assert_eq!(tc_code(&look_up(&t, moved).await), "InvalidParameter");
    let filtered = window(json!({"NextToken": tok, "LookupAttributes": [
        {"AttributeKey": "EventName", "AttributeValue": "CreateKeyPair"}
    ]}));
    assert_eq!(tc_code(&look_up(&t, filtered).await), "InvalidParameter");
    let theirs = look_up_as(&t, OTHER_ID, OTHER_KEY, window(json!({"NextToken": tok}))).await;
    assert_eq!(
        tc_code(&theirs),
        "InvalidParameter",
        "a token is its account's"
    );

    let mut names = Vec::new();
    for n in 0..5 {
        names.push(refused_ecs_delete(&t, n).await);
    }
    let mut walked = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut params = vec![("MaxResults", "2"), ("Direction", "FORWARD")];
        if let Some(tok) = &token {
            params.push(("NextToken", tok.as_str()));
        }
        let a = lookup_events(&t, &t.account, &params).await;
        assert_eq!(a.status, 200, "{}", a.body);
        walked.extend(
            a.body["Events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["requestId"].clone()),
        );
        match a.body["NextToken"].as_str() {
            Some(tok) => token = Some(tok.to_string()),
            None => break,
        }
    }
    assert_eq!(walked, names, "oldest first, each once");
    // Defaulted times stay those of the first page while the clock moves on.
    let a = lookup_events(&t, &t.account, &[("MaxResults", "2")]).await;
    let tok = a.body["NextToken"].as_str().unwrap().to_string();
    t.clock.advance(30);
    let b = lookup_events(&t, &t.account, &[("MaxResults", "2"), ("NextToken", &tok)]).await;
    assert_eq!(b.status, 200, "{}", b.body);
    assert_eq!(b.body["EndTime"], a.body["EndTime"]);
    let c = lookup_events(
        &t,
        &t.account,
        &[("Direction", "FORWARD"), ("NextToken", &tok)],
    )
    .await;
    assert_eq!(c.body["Code"], "InvalidQueryParameter");
}

#[tokio::test]
async fn lookups_are_limited_at_their_documented_rates() {
    let t = server(10).await;
    // What refills while the burst runs is allowed for.
    let refilled = |started: std::time::Instant, rate: f64| {
        (started.elapsed().as_secs_f64() * rate).ceil() as usize + 1
    };
    let started = std::time::Instant::now();
    let mut passed = 0;
    for _ in 0..45 {
        let r = look_up(&t, window(json!({}))).await;
        match tc_code(&r) {
            "" => passed += 1,
            code => assert_eq!(code, "RequestLimitExceeded"),
        }
    }
    let most = 20 + refilled(started, 20.0);
    assert!(
        (20..=most).contains(&passed),
        "CloudAudit: 20 a second, {passed} passed"
    );
    let started = std::time::Instant::now();
    let mut passed = 0;
    for _ in 0..10 {
        let a = lookup_events(&t, &t.account, &[]).await;
        match a.status {
            200 => passed += 1,
            _ => assert_eq!(a.body["Code"], "Throttling.User"),
        }
    }
    let most = 2 + refilled(started, 2.0);
    assert!(
        (2..=most).contains(&passed),
        "ActionTrail: 2 a second, {passed} passed"
    );
}
