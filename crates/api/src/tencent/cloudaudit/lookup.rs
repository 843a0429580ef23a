//! `LookUpEvents`: StartTime and EndTime (required, unix seconds, at most 7 days apart),
//! LookupAttributes (each an AttributeKey and AttributeValue; all must hold), MaxResults (1 to
//! 50, 10 by default), NextToken paging and Mode; newest events first.

use super::error::CloudAuditRefusal;
use super::event::wire_event;
use crate::common::audit_lookup::TokenError;
use crate::common::audit_lookup::{attributes, look_up, Condition, LookupError, PageToken};
use crate::common::params::decode;
use crate::tencent::cloudaudit::error::CloudAuditError;
use keyplane_core::account::Account;
use keyplane_core::audit::{AuditAttribute, AuditPage, AuditQuery};
use keyplane_core::Core;
use serde::Deserialize;
use serde_json::{json, Value};

/// The longest range one lookup may span (LimitExceeded.OverTime: "7 days").
pub const MAX_SPAN_SECS: i64 = 7 * 24 * 3600;
/// At most this many events a page (InvalidParameterValue.MaxResult: "50").
pub const MAX_RESULTS: i64 = 50;
/// Events a page when MaxResults is not given.
// Why: LookUpEvents documents no default; CloudAudit's earlier LookupEvents API answered 10
// when MaxResults was not given, and that is kept.
pub const DEFAULT_MAX_RESULTS: usize = 10;
/// The dialects whose events CloudAudit shows: Tencent's, and the agents' registrations.
pub const DIALECTS: &[&str] = &["cvm", "legacy", "lighthouse", "cloudaudit", "agent"];

/// LookUpEvents' parameters as sent (times and numbers as any JSON, so that a wrong one is
/// answered with its own code rather than a generic decoding error).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(non_snake_case)]
struct LookUpEventsRequest {
    #[serde(default)]
    StartTime: Option<Value>,
    #[serde(default)]
    EndTime: Option<Value>,
    #[serde(default)]
    LookupAttributes: Option<Vec<AttributeIn>>,
    #[serde(default)]
    NextToken: Option<String>,
    #[serde(default)]
    MaxResults: Option<Value>,
    #[serde(default)]
    Mode: Option<String>,
}

/// One `LookupAttribute`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(non_snake_case)]
struct AttributeIn {
    #[serde(default)]
    AttributeKey: Option<String>,
    #[serde(default)]
    AttributeValue: Option<String>,
}

/// An integer from a JSON number or a decimal string.
fn integer(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn time(v: Option<&Value>, name: &str) -> Result<i64, CloudAuditRefusal> {
    match v {
        None => Err(CloudAuditRefusal::TimeRequired(format!(
            "{name} is missing"
        ))),
        Some(v) => {
            integer(v).ok_or_else(|| CloudAuditRefusal::TimeRequired(format!("{name} is {v}")))
        }
    }
}

/// StartTime and EndTime, in order and at most [`MAX_SPAN_SECS`] apart.
fn time_range(start: Option<&Value>, end: Option<&Value>) -> Result<(i64, i64), CloudAuditRefusal> {
    let (start, end) = (time(start, "StartTime")?, time(end, "EndTime")?);
    if start > end {
        return Err(CloudAuditRefusal::TimeOrder { start, end });
    }
    let span = end.saturating_sub(start);
    if span > MAX_SPAN_SECS {
        return Err(CloudAuditRefusal::OverTime { span });
    }
    Ok((start, end))
}

fn max_results(v: Option<&Value>) -> Result<usize, CloudAuditRefusal> {
    let Some(v) = v else {
        return Ok(DEFAULT_MAX_RESULTS);
    };
    match integer(v) {
        Some(n) if (1..=MAX_RESULTS).contains(&n) => Ok(n as usize),
        _ => Err(CloudAuditRefusal::MaxResult(v.to_string())),
    }
}

fn mode(v: Option<&str>) -> Result<(), CloudAuditRefusal> {
    match v {
        None | Some("standard") | Some("quick") => Ok(()),
        Some(other) => Err(CloudAuditRefusal::InvalidValue {
            param: "Mode".into(),
            reason: format!("`{other}` is neither standard nor quick"),
        }),
    }
}

fn invalid(i: usize, reason: String) -> CloudAuditRefusal {
    CloudAuditRefusal::InvalidValue {
        param: format!("LookupAttributes.{i}.AttributeValue"),
        reason,
    }
}

/// What the `i`th attribute asks for. Keys are the documented ones: those the SDK's model
/// lists, and ReadOnly and Username, which its error list names.
fn condition(i: usize, a: &AttributeIn, account: &Account) -> Result<Condition, CloudAuditError> {
    use AuditAttribute as A;
    let key = a.AttributeKey.as_deref().unwrap_or_default();
    let known = [
        "RequestId",
        "EventName",
        "ActionType",
        "ReadOnly",
        "Username",
        "PrincipalId",
        "ResourceId",
        "ResourceName",
        "ResourceType",
        "AccessKeyId",
        "SourceIPAddress",
        "ApiErrorCode",
        "CamErrorCode",
        "SensitiveAction",
        "Tags",
    ];
    if !known.contains(&key) {
        return Err(CloudAuditRefusal::AttributeKey(key.to_string()).into());
    }
    let value = a.AttributeValue.clone().ok_or_else(|| {
        CloudAuditError::MissingParameter(format!("LookupAttributes.{i}.AttributeValue"))
    })?;
    let is = |words: &[&str]| words.iter().any(|w| value.eq_ignore_ascii_case(w));
    let when = |holds: bool| {
        if holds {
            Condition::Always
        } else {
            Condition::Never
        }
    };
    Ok(match key {
        "RequestId" => Condition::Attr(A::RequestId(value)),
        "EventName" => Condition::Attr(A::EventName(value)),
        "ResourceId" => Condition::Attr(A::ResourceId(value)),
        "ResourceName" => Condition::Attr(A::ResourceName(value)),
        "AccessKeyId" => Condition::Attr(A::CredentialId(value)),
        "SourceIPAddress" => Condition::Attr(A::SourceIp(value)),
        "ApiErrorCode" | "CamErrorCode" => Condition::Attr(A::ErrorCode(value)),
        "ActionType" | "ReadOnly" => {
            let read = if key == "ActionType" {
                ["Read", "Write"]
            } else {
                ["true", "false"]
            };
            match (is(&read[..1]), is(&read[1..])) {
                (true, _) => Condition::Attr(A::ReadOnly(true)),
                (_, true) => Condition::Attr(A::ReadOnly(false)),
                _ => {
                    let reason = format!("`{value}` is neither {} nor {}", read[0], read[1]);
                    return Err(invalid(i, reason).into());
                }
            }
        }
        // Every event an account finds is its own: its name and its id are the only caller.
        "Username" => when(value == account.name),
        "PrincipalId" => when(value == account.id),
        "ResourceType" => resource_type(&value),
        // Why: the trail marks no operation as sensitive and records no tags.
        "SensitiveAction" if is(&["1", "true"]) => Condition::Never,
        "SensitiveAction" if is(&["0", "false"]) => Condition::Always,
        "SensitiveAction" => {
            return Err(invalid(i, format!("`{value}` is neither 1 nor 0")).into());
        }
        _ => Condition::Never,
    })
}

/// A ResourceType: a product (`cvm`, `lighthouse`, `cloudaudit`: its requests) or a kind of
/// resource (`instance`, `keypair`: events naming one).
fn resource_type(value: &str) -> Condition {
    let dialects = |names: &[&str]| {
        let names = names.iter().map(|n| n.to_string()).collect();
        Condition::Attr(AuditAttribute::Dialects(names))
    };
    match value {
        "cvm" => dialects(&["cvm", "legacy"]),
        "lighthouse" => dialects(&["lighthouse"]),
        "cloudaudit" => dialects(&["cloudaudit"]),
        "instance" | "keypair" => Condition::Attr(AuditAttribute::ResourceType(value.into())),
        _ => Condition::Never,
    }
}

fn token(raw: &str) -> Result<Option<PageToken>, CloudAuditRefusal> {
    if raw.trim().is_empty() {
        return Ok(None);
    }
    PageToken::parse(raw)
        .map(Some)
        .map_err(|_| CloudAuditRefusal::NextToken("it is not a token this server issued".into()))
}

fn answer(page: &AuditPage, next: Option<String>, account: &Account) -> Value {
    let events: Vec<Value> = page.events.iter().map(|e| wire_event(e, account)).collect();
    json!({
        "Events": events,
        "NextToken": next,
        "ListOver": next.is_none(),
        "TotalCount": page.total,
    })
}

/// Serve `LookUpEvents` for `account`.
pub async fn look_up_events(
    core: &Core,
    account: &Account,
    params: Value,
) -> Result<Value, CloudAuditError> {
    let req: LookUpEventsRequest = decode(params)?;
    let (start, end) = time_range(req.StartTime.as_ref(), req.EndTime.as_ref())?;
    let limit = max_results(req.MaxResults.as_ref())?;
    mode(req.Mode.as_deref())?;
    let token = token(req.NextToken.as_deref().unwrap_or_default())?;
    let mut conditions = Vec::new();
    for (i, a) in req.LookupAttributes.iter().flatten().enumerate() {
        conditions.push(condition(i, a, account)?);
    }
    let empty = AuditPage {
        events: Vec::new(),
        more: false,
        total: 0,
    };
    let Some(mut attributes) = attributes(conditions) else {
        return Ok(answer(&empty, None, account));
    };
    attributes.push(AuditAttribute::Dialects(
        DIALECTS.iter().map(|d| d.to_string()).collect(),
    ));
    let q = AuditQuery {
        account_id: Some(account.id.clone()),
        start,
        end,
        attributes,
        limit,
        after_seq: None,
        ascending: false,
    };
    match look_up(core, q, token.as_ref()).await {
        Ok((page, next)) => Ok(answer(&page, next, account)),
        Err(LookupError::Token(TokenError::OtherQuery | TokenError::Malformed)) => Err(
            CloudAuditRefusal::NextToken(
                "it was issued for another query; send the StartTime, EndTime and LookupAttributes of the lookup it continues".into(),
            )
            .into(),
        ),
        Err(LookupError::Domain(e)) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tencent::error::ProductCodes;

    fn account() -> Account {
        Account::generate("auditor", false, 0)
    }

    fn attr(key: &str, value: &str) -> AttributeIn {
        AttributeIn {
            AttributeKey: Some(key.into()),
            AttributeValue: Some(value.into()),
        }
    }

    fn code(e: CloudAuditRefusal) -> &'static str {
        e.code()
    }

    #[test]
    fn times_are_required_integers_in_order_within_seven_days() {
        let n = |v: i64| Some(json!(v));
        assert_eq!(time_range(n(1).as_ref(), n(2).as_ref()), Ok((1, 2)));
        let s = Some(json!("100"));
        assert_eq!(time_range(s.as_ref(), s.as_ref()), Ok((100, 100)));
        let none = time_range(None, n(2).as_ref()).unwrap_err();
        assert_eq!(code(none), "InvalidParameter.Time");
        let text = Some(json!("yesterday"));
        let bad = time_range(n(1).as_ref(), text.as_ref()).unwrap_err();
        assert_eq!(code(bad), "InvalidParameter.Time");
        let late = time_range(n(3).as_ref(), n(2).as_ref()).unwrap_err();
        assert_eq!(code(late), "InvalidParameterValue.Time");
        let week = time_range(n(0).as_ref(), n(MAX_SPAN_SECS).as_ref());
        assert_eq!(week, Ok((0, MAX_SPAN_SECS)));
        let over = time_range(n(0).as_ref(), n(MAX_SPAN_SECS + 1).as_ref()).unwrap_err();
        assert_eq!(code(over), "LimitExceeded.OverTime");
    }

    #[test]
    fn max_results_is_one_to_fifty() {
        assert_eq!(max_results(None), Ok(DEFAULT_MAX_RESULTS));
        assert_eq!(max_results(Some(&json!(50))), Ok(50));
        assert_eq!(max_results(Some(&json!("7"))), Ok(7));
        for bad in [json!(0), json!(51), json!(-1), json!("x"), json!(1.5)] {
            let e = max_results(Some(&bad)).unwrap_err();
            assert_eq!(code(e), "InvalidParameterValue.MaxResult", "{bad}");
        }
    }

    #[test]
    fn attributes_become_conditions() {
        let a = account();
        let c = |k: &str, v: &str| condition(0, &attr(k, v), &a);
        assert_eq!(
            c("ResourceId", "ins-1").unwrap(),
            Condition::Attr(AuditAttribute::ResourceId("ins-1".into()))
        );
        assert_eq!(
            c("ActionType", "Write").unwrap(),
            Condition::Attr(AuditAttribute::ReadOnly(false))
        );
        assert_eq!(
            c("ActionType", "read").unwrap(),
            Condition::Attr(AuditAttribute::ReadOnly(true))
        );
        assert_eq!(
            c("ReadOnly", "true").unwrap(),
            Condition::Attr(AuditAttribute::ReadOnly(true))
        );
        assert_eq!(c("Username", &a.name).unwrap(), Condition::Always);
        assert_eq!(c("Username", "someone").unwrap(), Condition::Never);
        assert_eq!(c("PrincipalId", &a.id).unwrap(), Condition::Always);
        assert_eq!(c("ResourceType", "cos").unwrap(), Condition::Never);
        assert_eq!(
            c("ResourceType", "keypair").unwrap(),
            Condition::Attr(AuditAttribute::ResourceType("keypair".into()))
        );
        assert_eq!(c("SensitiveAction", "1").unwrap(), Condition::Never);
        let bad_key = c("EventNameX", "x").unwrap_err();
        assert_eq!(bad_key.code(), "InvalidParameterValue.attributeKey");
        let bad_rw = c("ActionType", "Both").unwrap_err();
        assert_eq!(bad_rw.code(), "InvalidParameterValue");
        let missing = condition(
            1,
            &AttributeIn {
                AttributeKey: Some("EventName".into()),
                AttributeValue: None,
            },
            &a,
        )
        .unwrap_err();
        assert_eq!(
            missing,
            CloudAuditError::MissingParameter("LookupAttributes.1.AttributeValue".into())
        );
    }

    #[test]
    fn tokens_and_modes() {
        assert_eq!(token(""), Ok(None));
        assert_eq!(code(token("garbage").unwrap_err()), "InvalidParameter");
        assert_eq!(mode(Some("quick")), Ok(()));
        assert_eq!(
            code(mode(Some("fast")).unwrap_err()),
            "InvalidParameterValue"
        );
    }
}
