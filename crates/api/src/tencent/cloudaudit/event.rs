//! One audit event in CloudAudit's `Event` shape, with its details as the `CloudAuditEvent`
//! JSON string. Everything shown comes from the recorded event, which holds no secret.

use crate::common::audit_lookup::spaced_utc;
use keyplane_core::account::Account;
use keyplane_core::audit::AuditEvent;
use serde_json::{json, Value};

/// The host a dialect's requests are sent to, as CloudAudit names an event's source.
pub fn event_source(dialect: &str) -> String {
    match dialect {
        "cvm" => "cvm.tencentcloudapi.com".into(),
        "legacy" => "cvm.api.qcloud.com".into(),
        "lighthouse" => "lighthouse.tencentcloudapi.com".into(),
        "cloudaudit" => "cloudaudit.tencentcloudapi.com".into(),
        "agent" => "agent.keyplane".into(),
        other => other.to_string(),
    }
}

/// The API version a dialect's events were made with.
fn api_version(dialect: &str) -> &'static str {
    match dialect {
        "legacy" => "2.0",
        "agent" => "1",
        _ => "3.0",
    }
}

/// The numeric code of a refusal (0 when the request was not refused): the authentication
/// codes of Tencent's common error table (4100 signature, 4104 unknown SecretId, 4105 token,
/// 4500 time or replay), 6000 for internal errors, 4000 for every other refusal.
pub fn numeric_code(code: Option<&str>) -> i64 {
    let Some(code) = code else {
        return 0;
    };
    match code {
        "AuthFailure.SignatureFailure" | "InvalidParameter.SignatureFailure" => 4100,
        "AuthFailure.SecretIdNotFound" | "InvalidParameter.SecretIdNotFound" => 4104,
        "AuthFailure.TokenFailure" | "InvalidRequest.TokenCheckFailed" => 4105,
        "AuthFailure.SignatureExpire" | "InvalidRequest.ReplayAttack" => 4500,
        c if c.starts_with("InternalError") => 6000,
        _ => 4000,
    }
}

/// The Chinese name of an action, as the console shows it (the action itself when it has
/// none here).
fn event_name_cn(action: &str) -> &str {
    match action {
        "CreateKeyPair" => "创建密钥对",
        "ImportKeyPair" => "导入密钥对",
        "DeleteKeyPairs" => "删除密钥对",
        "ModifyKeyPairAttribute" => "修改密钥对属性",
        "AssociateInstancesKeyPairs" | "BindInstanceKey" => "绑定密钥对",
        "DisassociateInstancesKeyPairs" | "UnBindInstanceKey" => "解绑密钥对",
        "RunInstances" | "CreateInstances" => "创建实例",
        "StartInstances" => "开机实例",
        "StopInstances" => "关机实例",
        "RebootInstances" => "重启实例",
        "TerminateInstances" => "退还实例",
        "ResetInstancesPassword" | "ResetInstancePassword" => "重置实例密码",
        "DescribeKeyPairs" => "查询密钥对列表",
        "DescribeInstances" => "查看实例列表",
        "LookUpEvents" => "检索日志",
        "RegisterHost" => "注册主机",
        other => other,
    }
}

fn kind_cn(kind: &str) -> &str {
    match kind {
        "instance" => "实例",
        "keypair" => "密钥对",
        other => other,
    }
}

/// The distinct kinds of the event's resources, in order.
fn kinds(e: &AuditEvent) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for r in &e.resources {
        if !out.contains(&r.kind.as_str()) {
            out.push(&r.kind);
        }
    }
    out
}

/// The `CloudAuditEvent` details of `e`.
fn details(e: &AuditEvent, account: &Account) -> Value {
    let r = &e.request;
    let account_id = e.account_id.clone().unwrap_or_default();
    let resources: Vec<Value> = e
        .resources
        .iter()
        .map(|x| json!({"resourceType": x.kind, "resourceId": x.id, "resourceName": x.name}))
        .collect();
    let message = e.error_message.clone().unwrap_or_default();
    json!({
        "eventVersion": 2,
        "eventID": e.event_id,
        "eventTime": spaced_utc(e.at),
        "eventType": "ApiCall",
        "eventSource": event_source(&r.dialect),
        "eventName": r.action,
        "eventRegion": r.region,
        "apiVersion": api_version(&r.dialect),
        "actionType": if e.read_only { "Read" } else { "Write" },
        "requestID": r.request_id,
        "sourceIPAddress": r.source_ip,
        "userIdentity": {
            "type": "root",
            "principalId": account_id,
            "accountId": account_id,
            "userName": account.name,
            "secretId": r.credential_id,
        },
        "errorCode": numeric_code(e.error_code.as_deref()),
        "errorMessage": message,
        // Why: CloudAudit gives the API's error code as a number; this trail keeps the
        // dialect's code string, which is what the caller was answered with.
        "apiErrorCode": e.error_code.clone().unwrap_or_default(),
        "apiErrorMessage": message,
        "resources": resources,
        "outcome": e.outcome().label(),
        "operations": {
            "total": e.ops_total,
            "pending": e.ops_pending,
            "failed": e.ops_failed,
            "error": e.op_error,
        },
        "sensitiveAction": 0,
        "eventPlatform": 0,
    })
}

/// `e` as a CloudAudit `Event`, for `account` (whose events these are). `Resources` names the
/// event's resources as the ResourceName attribute finds them (an instance by its id, a key
/// pair by its name); `CloudAuditEvent` has the id and the name of each.
pub fn wire_event(e: &AuditEvent, account: &Account) -> Value {
    let r = &e.request;
    let kinds = kinds(e);
    let names: Vec<&str> = e.resources.iter().map(|x| x.name.as_str()).collect();
    let kinds_cn: Vec<&str> = kinds.iter().map(|k| kind_cn(k)).collect();
    let account_id: i64 = e
        .account_id
        .as_deref()
        .and_then(|id| id.parse().ok())
        .unwrap_or(0);
    json!({
        "EventId": e.event_id,
        "Username": account.name,
        "EventTime": spaced_utc(e.at),
        "CloudAuditEvent": details(e, account).to_string(),
        "ResourceTypeCn": kinds_cn.join(","),
        "ErrorCode": numeric_code(e.error_code.as_deref()),
        "EventName": r.action,
        "SecretId": r.credential_id,
        "EventSource": event_source(&r.dialect),
        "RequestID": r.request_id,
        "ResourceRegion": r.region,
        "AccountID": account_id,
        "SourceIPAddress": r.source_ip,
        "EventNameCn": event_name_cn(&r.action),
        "Resources": {
            "ResourceType": kinds.join(","),
            "ResourceName": names.join(","),
        },
        "EventRegion": r.region,
        // Why: an address's place is not known here (the trail keeps only the address).
        "Location": "",
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyplane_core::audit::{AuditResource, RequestMeta};

    fn event() -> AuditEvent {
        AuditEvent {
            seq: 7,
            event_id: "0a1b2c3d-0000-4000-8000-00000000000e".into(),
            account_id: Some("123456789012".into()),
            at: 1_700_000_000,
            request: RequestMeta {
                dialect: "cvm".into(),
                action: "AssociateInstancesKeyPairs".into(),
                request_id: "r-1".into(),
                credential_id: "AKIDexample".into(),
                source_ip: "127.0.0.1".into(),
                region: "ap-guangzhou".into(),
            },
            read_only: false,
            resources: vec![
                AuditResource::instance("ins-12345678"),
                AuditResource::key_pair("skey-12345678", "ops"),
            ],
            error_code: None,
            error_message: None,
            ops_total: 1,
            ops_pending: 0,
            ops_failed: 0,
            op_error: None,
        }
    }

    #[test]
    fn every_documented_field_is_there() {
        let a = Account::generate("ops-team", false, 0);
        let w = wire_event(&event(), &a);
        for field in [
            "EventId",
            "Username",
            "EventTime",
            "CloudAuditEvent",
            "ResourceTypeCn",
            "ErrorCode",
            "EventName",
            "SecretId",
            "EventSource",
            "RequestID",
            "ResourceRegion",
            "AccountID",
            "SourceIPAddress",
            "EventNameCn",
            "Resources",
            "EventRegion",
            "Location",
        ] {
            assert!(w.get(field).is_some(), "{field}");
        }
        assert_eq!(w["EventTime"], "2023-11-14 22:13:20");
        assert_eq!(w["AccountID"], 123_456_789_012_i64);
        assert_eq!(w["ErrorCode"], 0);
        assert_eq!(w["EventSource"], "cvm.tencentcloudapi.com");
        assert_eq!(w["Resources"]["ResourceName"], "ins-12345678,ops");
        assert_eq!(w["Resources"]["ResourceType"], "instance,keypair");
        let details: Value = serde_json::from_str(w["CloudAuditEvent"].as_str().unwrap()).unwrap();
        assert_eq!(details["userIdentity"]["secretId"], "AKIDexample");
        assert_eq!(details["outcome"], "SUCCESS");
        assert_eq!(details["resources"][1]["resourceName"], "ops");
        assert_eq!(details["actionType"], "Write");
    }

    #[test]
    fn refusals_have_their_codes() {
        let mut e = event();
        e.error_code = Some("AuthFailure.SignatureFailure".into());
        e.error_message = Some("The request signature could not be verified.".into());
        let a = Account::generate("ops-team", false, 0);
        let w = wire_event(&e, &a);
        assert_eq!(w["ErrorCode"], 4100);
        let details: Value = serde_json::from_str(w["CloudAuditEvent"].as_str().unwrap()).unwrap();
        assert_eq!(details["apiErrorCode"], "AuthFailure.SignatureFailure");
        assert_eq!(details["outcome"], "AuthFailure.SignatureFailure");
        assert_eq!(numeric_code(Some("InvalidParameterValue")), 4000);
        assert_eq!(numeric_code(Some("InternalError.SearchError")), 6000);
    }
}
