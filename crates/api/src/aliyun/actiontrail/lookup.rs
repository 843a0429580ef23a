//! `LookupEvents`: StartTime and EndTime (`YYYY-MM-DDThh:mm:ssZ`, 7 days ago and now by
//! default), LookupAttribute.N (one or two conditions, both must hold), MaxResults (up to 50),
//! NextToken paging and Direction (BACKWARD, newest first, by default; or FORWARD).

use super::error::ActionTrailRefusal;
use super::event::wire_event;
use crate::aliyun::error::AliError;
use crate::common::audit_lookup::{
    attributes, iso_utc, look_up, parse_iso_utc, Condition, LookupError, PageToken,
};
use crate::common::params::{decode, unflatten, ParamError};
use keyplane_core::account::Account;
use keyplane_core::audit::{AuditAttribute, AuditPage, AuditQuery};
use keyplane_core::Core;
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// How far back the lookup reaches when StartTime is not given.
pub const DEFAULT_SPAN_SECS: i64 = 7 * 24 * 3600;
/// At most this many events a page.
pub const MAX_RESULTS: i64 = 50;
/// Events a page when MaxResults is not given (or 0).
// Why: LookupEvents documents no default; 20 is the value its reference shows.
pub const DEFAULT_MAX_RESULTS: usize = 20;
/// Conditions taken from LookupAttribute: the first two, as ActionTrail takes them.
pub const MAX_CONDITIONS: usize = 2;
/// The dialects whose events ActionTrail shows: Alibaba's, and the agents' registrations.
pub const DIALECTS: &[&str] = &["ecs", "actiontrail", "agent"];

/// LookupEvents' parameters as sent (undeclared ones are ignored, as the RPC gateway does).
#[derive(Debug, Deserialize)]
#[allow(non_snake_case)]
struct LookupEventsRequest {
    #[serde(default)]
    StartTime: Option<String>,
    #[serde(default)]
    EndTime: Option<String>,
    #[serde(default)]
    LookupAttribute: Option<Vec<AttributeIn>>,
    #[serde(default)]
    MaxResults: Option<String>,
    #[serde(default)]
    NextToken: Option<String>,
    #[serde(default)]
    Direction: Option<String>,
}

/// One `LookupAttribute.N`.
#[derive(Debug, Deserialize)]
#[allow(non_snake_case)]
struct AttributeIn {
    #[serde(default)]
    Key: Option<String>,
    #[serde(default)]
    Value: Option<String>,
}

fn query(param: impl Into<String>, reason: impl Into<String>) -> ActionTrailRefusal {
    ActionTrailRefusal::Query {
        param: param.into(),
        reason: reason.into(),
    }
}

fn malformed(e: ParamError) -> ActionTrailRefusal {
    match e {
        ParamError::Missing(p) => query(p, "it is missing"),
        ParamError::Unknown(p) => query(p, "it is not a parameter of LookupEvents"),
        ParamError::Invalid { param, reason } => query(param, reason),
    }
}

fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().filter(|s| !s.is_empty())
}

fn max_results(v: Option<&str>) -> Result<usize, ActionTrailRefusal> {
    match v.map(|s| s.trim().parse::<i64>()) {
        None | Some(Ok(0)) => Ok(DEFAULT_MAX_RESULTS),
        Some(Ok(n)) if (1..=MAX_RESULTS).contains(&n) => Ok(n as usize),
        _ => Err(query(
            "MaxResults",
            format!("`{}` is not an integer from 0 to 50", v.unwrap_or_default()),
        )),
    }
}

/// Whether events come oldest first.
fn ascending(v: Option<&str>) -> Result<bool, ActionTrailRefusal> {
    match v {
        None | Some("BACKWARD") => Ok(false),
        Some("FORWARD") => Ok(true),
        Some(other) => Err(query(
            "Direction",
            format!("`{other}` is neither FORWARD nor BACKWARD"),
        )),
    }
}

/// The conditions LookupAttribute asks for: the first two; of two with the same key, the
/// second.
fn conditions(
    attrs: &[AttributeIn],
    account: &Account,
) -> Result<Vec<Condition>, ActionTrailRefusal> {
    let taken = &attrs[..attrs.len().min(MAX_CONDITIONS)];
    let mut out = Vec::new();
    for (i, a) in taken.iter().enumerate() {
        let later_same_key = taken[i + 1..].iter().any(|b| b.Key == a.Key);
        if !later_same_key {
            out.push(condition(i + 1, a, account)?);
        }
    }
    Ok(out)
}

/// What the `n`th attribute (1-based, as on the wire) asks for; keys and values match exactly.
fn condition(
    n: usize,
    a: &AttributeIn,
    account: &Account,
) -> Result<Condition, ActionTrailRefusal> {
    use AuditAttribute as A;
    let key = a.Key.as_deref().unwrap_or_default();
    let value = a
        .Value
        .clone()
        .ok_or_else(|| query(format!("LookupAttribute.{n}.Value"), "it is missing"))?;
    let bad_value = |takes: &str| {
        query(
            format!("LookupAttribute.{n}.Value"),
            format!("`{value}` is not one of {takes}"),
        )
    };
    let when = |holds: bool| {
        if holds {
            Condition::Always
        } else {
            Condition::Never
        }
    };
    let dialect = |d: &str| Condition::Attr(A::Dialects(vec![d.to_string()]));
    Ok(match key {
        "EventName" => Condition::Attr(A::EventName(value)),
        "EventId" => Condition::Attr(A::EventId(value)),
        "ResourceName" => Condition::Attr(A::ResourceName(value)),
        "EventAccessKeyId" => Condition::Attr(A::CredentialId(value)),
        "SourceIpAddress" => Condition::Attr(A::SourceIp(value)),
        "ServiceName" => match value.as_str() {
            "Ecs" => dialect("ecs"),
            "Actiontrail" => dialect("actiontrail"),
            _ => Condition::Never,
        },
        "ResourceType" => match value.as_str() {
            "ACS::ECS::Instance" => Condition::Attr(A::ResourceType("instance".into())),
            "ACS::ECS::KeyPair" => Condition::Attr(A::ResourceType("keypair".into())),
            _ => Condition::Never,
        },
        "EventRW" => match value.as_str() {
            "Read" => Condition::Attr(A::ReadOnly(true)),
            "Write" => Condition::Attr(A::ReadOnly(false)),
            "All" => Condition::Always,
            _ => return Err(bad_value("Read, Write and All")),
        },
        // Every event an account finds is its own, made with its AccessKey: it is the only
        // caller, no request is made by a role, and every event is an API call.
        "User" => when(value == account.name),
        "RoleName" => Condition::Never,
        "EventType" => when(value == "ApiCall"),
        // Why: the trail marks no operation as sensitive.
        "SensitiveAction" => match value.as_str() {
            "true" => Condition::Never,
            "false" => Condition::Always,
            _ => return Err(bad_value("true and false")),
        },
        other => {
            return Err(query(
                format!("LookupAttribute.{n}.Key"),
                format!("`{other}` is not one of ServiceName, EventName, User, EventId, ResourceType, ResourceName, EventRW, EventAccessKeyId, SourceIpAddress, EventType, SensitiveAction and RoleName"),
            ))
        }
    })
}

fn time(
    v: Option<&str>,
    from_token: Option<i64>,
    default: i64,
    refuse: fn(String) -> ActionTrailRefusal,
) -> Result<i64, ActionTrailRefusal> {
    match v {
        Some(s) => parse_iso_utc(s).ok_or_else(|| refuse(s.to_string())),
        None => Ok(from_token.unwrap_or(default)),
    }
}

fn answer(page: &AuditPage, next: Option<String>, q: &AuditQuery, account: &Account) -> Value {
    let events: Vec<Value> = page.events.iter().map(|e| wire_event(e, account)).collect();
    let mut out = Map::new();
    out.insert("StartTime".into(), json!(iso_utc(q.start)));
    out.insert("EndTime".into(), json!(iso_utc(q.end)));
    out.insert("Events".into(), Value::Array(events));
    if let Some(token) = next {
        out.insert("NextToken".into(), json!(token));
    }
    Value::Object(out)
}

/// Serve `LookupEvents` for `account`.
pub async fn lookup_events(
    core: &Core,
    account: &Account,
    params: &[(String, String)],
) -> Result<Value, AliError> {
    let req: LookupEventsRequest =
        decode(unflatten(params, true).map_err(malformed)?).map_err(malformed)?;
    let token = match given(&req.NextToken) {
        None => None,
        Some(t) => Some(
            PageToken::parse(t)
                .map_err(|_| query("NextToken", "it is not a token this server issued"))?,
        ),
    };
    let now = core.now();
    let start = time(
        given(&req.StartTime),
        token.as_ref().map(|t| t.start),
        now - DEFAULT_SPAN_SECS,
        ActionTrailRefusal::StartTime,
    )?;
    let end = time(
        given(&req.EndTime),
        token.as_ref().map(|t| t.end),
        now,
        ActionTrailRefusal::EndTime,
    )?;
    // Why: LookupEvents' error table says the end must be later than the start; a range is
    // inclusive here, so an end equal to the start asks for the events of that one second.
    if end < start {
        return Err(ActionTrailRefusal::TimeOrder {
            start: iso_utc(start),
            end: iso_utc(end),
        }
        .into());
    }
    let limit = max_results(given(&req.MaxResults))?;
    let ascending = ascending(given(&req.Direction))?;
    let conditions = conditions(req.LookupAttribute.as_deref().unwrap_or_default(), account)?;
    let mut q = AuditQuery {
        account_id: Some(account.id.clone()),
        start,
        end,
        attributes: Vec::new(),
        limit,
        after_seq: None,
        ascending,
    };
    let Some(mut attrs) = attributes(conditions) else {
        let empty = AuditPage {
            events: Vec::new(),
            more: false,
            total: 0,
        };
        return Ok(answer(&empty, None, &q, account));
    };
    attrs.push(AuditAttribute::Dialects(
        DIALECTS.iter().map(|d| d.to_string()).collect(),
    ));
    q.attributes = attrs;
    match look_up(core, q.clone(), token.as_ref()).await {
        Ok((page, next)) => Ok(answer(&page, next, &q, account)),
        Err(LookupError::Token(_)) => Err(query(
            "NextToken",
            "it was issued for another query; send the parameters of the lookup it continues",
        )
        .into()),
        Err(LookupError::Domain(e)) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(key: &str, value: &str) -> AttributeIn {
        AttributeIn {
            Key: Some(key.into()),
            Value: Some(value.into()),
        }
    }

    fn code(e: ActionTrailRefusal) -> &'static str {
        e.code().0
    }

    #[test]
    fn max_results_and_direction() {
        assert_eq!(max_results(None), Ok(DEFAULT_MAX_RESULTS));
        assert_eq!(max_results(Some("0")), Ok(DEFAULT_MAX_RESULTS));
        assert_eq!(max_results(Some("50")), Ok(50));
        for bad in ["51", "-1", "ten"] {
            assert_eq!(
                code(max_results(Some(bad)).unwrap_err()),
                "InvalidQueryParameter"
            );
        }
        assert_eq!(ascending(None), Ok(false));
        assert_eq!(ascending(Some("FORWARD")), Ok(true));
        assert_eq!(
            code(ascending(Some("forward")).unwrap_err()),
            "InvalidQueryParameter"
        );
    }

    #[test]
    fn the_first_two_conditions_count_and_a_repeated_key_takes_the_second() {
        let a = Account::generate("ops", false, 0);
        let name = |v: &str| Condition::Attr(AuditAttribute::EventName(v.into()));
        let got = conditions(
            &[
                attr("EventName", "A"),
                attr("EventRW", "Write"),
                attr("Bogus", "ignored"),
            ],
            &a,
        )
        .unwrap();
        assert_eq!(
            got,
            vec![name("A"), Condition::Attr(AuditAttribute::ReadOnly(false))]
        );
        let repeated = conditions(&[attr("EventName", "A"), attr("EventName", "B")], &a);
        assert_eq!(repeated.unwrap(), vec![name("B")]);
    }

    #[test]
    fn keys_and_values() {
        let a = Account::generate("ops", false, 0);
        let c = |k: &str, v: &str| condition(1, &attr(k, v), &a);
        assert_eq!(
            c("ServiceName", "Ecs").unwrap(),
            Condition::Attr(AuditAttribute::Dialects(vec!["ecs".into()]))
        );
        assert_eq!(c("ServiceName", "ecs").unwrap(), Condition::Never);
        assert_eq!(
            c("ResourceType", "ACS::ECS::KeyPair").unwrap(),
            Condition::Attr(AuditAttribute::ResourceType("keypair".into()))
        );
        assert_eq!(c("EventRW", "All").unwrap(), Condition::Always);
        assert_eq!(c("User", "ops").unwrap(), Condition::Always);
        assert_eq!(c("User", "alice").unwrap(), Condition::Never);
        assert_eq!(
            code(c("EventRW", "write").unwrap_err()),
            "InvalidQueryParameter"
        );
        assert_eq!(
            code(c("Colour", "red").unwrap_err()),
            "InvalidQueryParameter"
        );
        let no_value = condition(
            2,
            &AttributeIn {
                Key: Some("EventName".into()),
                Value: None,
            },
            &a,
        );
        assert_eq!(
            no_value.unwrap_err().message(),
            "The specified query parameter LookupAttribute.2.Value is invalid: it is missing."
        );
    }

    #[test]
    fn times_default_or_parse() {
        let start = time(None, None, 5, ActionTrailRefusal::StartTime);
        assert_eq!(start, Ok(5));
        assert_eq!(time(None, Some(9), 5, ActionTrailRefusal::StartTime), Ok(9));
        let bad = time(Some("2020-10-08"), None, 5, ActionTrailRefusal::StartTime);
        assert_eq!(code(bad.unwrap_err()), "InvalidParameterStartTime");
        let bad = time(Some("x"), None, 5, ActionTrailRefusal::EndTime);
        assert_eq!(code(bad.unwrap_err()), "InvalidParameterEndTime");
    }
}
