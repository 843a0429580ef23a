//! One audit event in ActionTrail's management event shape. Everything shown comes from the
//! recorded event, which holds no secret.

use crate::common::audit_lookup::iso_utc;
use keyplane_core::account::Account;
use keyplane_core::audit::AuditEvent;
use serde_json::{json, Map, Value};

/// The host a dialect's requests are sent to (`eventSource`), its service code
/// (`serviceName`) and API version.
fn service(dialect: &str) -> (String, &'static str, &'static str) {
    match dialect {
        "ecs" => ("ecs.aliyuncs.com".into(), "Ecs", "2014-05-26"),
        "actiontrail" => (
            "actiontrail.aliyuncs.com".into(),
            "Actiontrail",
            "2020-07-06",
        ),
        "agent" => ("agent.keyplane".into(), "Agent", "1"),
        other => (other.to_string(), "", ""),
    }
}

/// ActionTrail's name of a kind of resource.
pub fn resource_type(kind: &str) -> String {
    match kind {
        "instance" => "ACS::ECS::Instance".into(),
        "keypair" => "ACS::ECS::KeyPair".into(),
        other => other.to_string(),
    }
}

/// `e` as an ActionTrail event, for `account` (whose events these are). Resources are named
/// as ECS addresses them and the ResourceName attribute finds them: an instance by its id, a
/// key pair by its name.
pub fn wire_event(e: &AuditEvent, account: &Account) -> Value {
    let r = &e.request;
    let (source, service_name, api_version) = service(&r.dialect);
    let account_id = e.account_id.clone().unwrap_or_default();
    let mut referenced: Map<String, Value> = Map::new();
    for x in &e.resources {
        let names = referenced
            .entry(resource_type(&x.kind))
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(list) = names {
            list.push(json!(x.name));
        }
    }
    let names: Vec<&str> = e.resources.iter().map(|x| x.name.as_str()).collect();
    let types: Vec<String> = e.resources.iter().map(|x| resource_type(&x.kind)).collect();
    let mut out = json!({
        "eventId": e.event_id,
        "eventVersion": 1,
        "eventName": r.action,
        "eventSource": source,
        "eventTime": iso_utc(e.at),
        "eventType": "ApiCall",
        "eventCategory": "Management",
        "eventRW": if e.read_only { "Read" } else { "Write" },
        "acsRegion": r.region,
        "serviceName": service_name,
        "apiVersion": api_version,
        "requestId": r.request_id,
        "sourceIpAddress": r.source_ip,
        "userIdentity": {
            "type": "root-account",
            "principalId": account_id,
            "accountId": account_id,
            "accessKeyId": r.credential_id,
            "userName": account.name,
        },
        "recipientAccountId": account_id,
        "resourceName": names.join(";"),
        "resourceType": types.join(";"),
        "referencedResources": referenced,
        "additionalEventData": {
            "outcome": e.outcome().label(),
            "operationsTotal": e.ops_total,
            "operationsPending": e.ops_pending,
            "operationsFailed": e.ops_failed,
        },
    });
    if let Value::Object(map) = &mut out {
        if let Some(code) = &e.error_code {
            map.insert("errorCode".into(), json!(code));
            let message = e.error_message.clone().unwrap_or_default();
            map.insert("errorMessage".into(), json!(message));
        }
        if let (Some(err), Some(Value::Object(extra))) =
            (&e.op_error, map.get_mut("additionalEventData"))
        {
            extra.insert("operationError".into(), json!(err));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyplane_core::audit::{AuditResource, RequestMeta};

    fn event() -> AuditEvent {
        AuditEvent {
            seq: 3,
            event_id: "0a1b2c3d-0000-4000-8000-00000000000e".into(),
            account_id: Some("123456789012".into()),
            at: 1_700_000_000,
            request: RequestMeta {
                dialect: "ecs".into(),
                action: "AttachKeyPair".into(),
                request_id: "5C6B2A1E-0000-4000-8000-000000000001".into(),
                credential_id: "LTAIexample".into(),
                source_ip: "127.0.0.1".into(),
                region: "cn-hangzhou".into(),
            },
            read_only: false,
            resources: vec![
                AuditResource::key_pair("kp-00000000000000000001", "ops"),
                AuditResource::instance("i-00000000000000000001"),
            ],
            error_code: None,
            error_message: None,
            ops_total: 1,
            ops_pending: 1,
            ops_failed: 0,
            op_error: None,
        }
    }

    #[test]
    fn the_management_event_shape() {
        let a = Account::generate("ops-team", false, 0);
        let w = wire_event(&event(), &a);
        assert_eq!(w["eventTime"], "2023-11-14T22:13:20Z");
        assert_eq!(w["eventSource"], "ecs.aliyuncs.com");
        assert_eq!(w["serviceName"], "Ecs");
        assert_eq!(w["eventRW"], "Write");
        assert_eq!(w["userIdentity"]["accessKeyId"], "LTAIexample");
        assert_eq!(w["resourceName"], "ops;i-00000000000000000001");
        assert_eq!(w["resourceType"], "ACS::ECS::KeyPair;ACS::ECS::Instance");
        assert_eq!(
            w["referencedResources"]["ACS::ECS::Instance"][0],
            "i-00000000000000000001"
        );
        assert_eq!(w["additionalEventData"]["outcome"], "OPERATING");
        assert!(w.get("errorCode").is_none());
    }

    #[test]
    fn refusals_carry_their_code() {
        let mut e = event();
        e.error_code = Some("SignatureDoesNotMatch".into());
        e.error_message = Some("The request signature could not be verified.".into());
        let w = wire_event(&e, &Account::generate("ops-team", false, 0));
        assert_eq!(w["errorCode"], "SignatureDoesNotMatch");
        assert_eq!(w["additionalEventData"]["outcome"], "SignatureDoesNotMatch");
    }
}
