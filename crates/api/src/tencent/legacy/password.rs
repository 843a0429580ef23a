//! ResetInstancePassword (legacy v2): the CVM instances API 3.0 serves, `instanceIds.n`,
//! `password` and `hardPowerOffFlag` (which API 3.0 renamed `ForceStop`). A shut-down
//! instance has its password replaced; a running one only with `hardPowerOffFlag=1`, when it
//! is shut down, reset and started again. One asynchronous operation per instance, all or
//! none: the answer returns at once and DescribeInstances (3.0) shows LatestOperation.

use super::error::LegacyError;
use super::handlers::{request, Ctx, MAX_IDS};
use crate::tencent::password::check_reset;
use keyplane_core::keypair::Namespace;
use keyplane_core::password::ResetRule;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

const NS: Namespace = Namespace::Cvm;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResetRequest {
    #[serde(rename = "instanceIds", default)]
    instance_ids: Vec<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(rename = "hardPowerOffFlag", default, deserialize_with = "flag")]
    hard_power_off: Option<bool>,
}

/// `hardPowerOffFlag`: `1`/`0` as the legacy API takes it (or `true`/`false`).
fn flag<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    use serde::de::Error;
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(b)),
        Some(Value::Number(n)) if n.as_i64() == Some(0) => Ok(Some(false)),
        Some(Value::Number(n)) if n.as_i64() == Some(1) => Ok(Some(true)),
        Some(Value::String(s)) => match s.to_ascii_lowercase().as_str() {
            "0" | "false" => Ok(Some(false)),
            "1" | "true" => Ok(Some(true)),
            _ => Err(D::Error::custom(format!("expected 0 or 1, got `{s}`"))),
        },
        Some(other) => Err(D::Error::custom(format!("expected 0 or 1, got {other}"))),
    }
}

/// ResetInstancePassword.
pub async fn reset(ctx: &Ctx<'_>, params: &[(String, String)]) -> Result<Value, LegacyError> {
    let req: ResetRequest = request(params)?;
    if req.instance_ids.is_empty() {
        return Err(LegacyError::MissingParameter("instanceIds".into()));
    }
    ctx.core
        .check_instance_ids(NS, "instanceIds", &req.instance_ids, MAX_IDS)?;
    let password = req
        .password
        .filter(|p| !p.is_empty())
        .ok_or_else(|| LegacyError::MissingParameter("password".into()))?;
    let instances = ctx
        .core
        .get_instances(ctx.account, NS, &req.instance_ids)
        .await?;
    // Why: the legacy pages do not state the rule; the resources are API 3.0's, and its
    // ResetInstancesPassword rule is the one applied, so both dialects accept the same passwords.
    check_reset(&password, None, &instances)?;
    let rule = ResetRule::Cvm {
        force_stop: req.hard_power_off.unwrap_or(false),
    };
    ctx.core
        .submit_password_reset(ctx.account, NS, &req.instance_ids, rule, &password, ctx.req)
        .await?;
    Ok(Value::Object(Map::new()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_decode_with_the_power_off_flag() {
        let pairs = |flag: &str| {
            vec![
                ("instanceIds.0".to_string(), "ins-aaaaaaaa".to_string()),
                ("password".to_string(), "Kp-Passw0rd".to_string()),
                ("hardPowerOffFlag".to_string(), flag.to_string()),
            ]
        };
        let req: ResetRequest = request(&pairs("1")).unwrap();
        assert_eq!(req.instance_ids, vec!["ins-aaaaaaaa"]);
        assert_eq!(req.hard_power_off, Some(true));
        let req: ResetRequest = request(&pairs("0")).unwrap();
        assert_eq!(req.hard_power_off, Some(false));
        assert!(request::<ResetRequest>(&pairs("2")).is_err());
    }
}
