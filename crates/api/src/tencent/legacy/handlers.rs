//! Action handlers: BindInstanceKey, UnBindInstanceKey and DescribeKeyPairs, translated into
//! calls of the domain core on the CVM namespace shared with API 3.0.

use super::error::LegacyError;
use crate::common::params::{decode, lenient_i64, unflatten};
use crate::common::times::TimeFormat;
use keyplane_core::account::Account;
use keyplane_core::binding::{BindChange, BindRule};
use keyplane_core::keypair::{KeyPair, Namespace};
use keyplane_core::service::{KeyPairFilter, KeyPairQuery};
use keyplane_core::{Core, DomainError};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::HashMap;

const NS: Namespace = Namespace::Cvm;
/// At most this many ids in one call (the CVM batch limit).
pub(crate) const MAX_IDS: usize = 100;

/// What a handler gets.
pub struct Ctx<'a> {
    /// The domain service.
    pub core: &'a Core,
    /// The signing account.
    pub account: &'a Account,
    /// Who sent the request and how, with its RequestId (recorded on the operations it
    /// starts and in the audit trail).
    pub req: &'a keyplane_core::RequestMeta,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BindRequest {
    #[serde(rename = "instanceIds")]
    instance_ids: Vec<String>,
    #[serde(rename = "keyId")]
    key_id: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DescribeKeyPairsRequest {
    #[serde(rename = "keyIds", default)]
    key_ids: Option<Vec<String>>,
    #[serde(rename = "keyName", default)]
    key_name: Option<String>,
    #[serde(rename = "projectId", default, deserialize_with = "lenient_i64")]
    project_id: Option<i64>,
    #[serde(default, deserialize_with = "lenient_i64")]
    offset: Option<i64>,
    #[serde(default, deserialize_with = "lenient_i64")]
    limit: Option<i64>,
}

fn invalid(param: &str, reason: &str) -> LegacyError {
    LegacyError::Domain(DomainError::InvalidParameterValue {
        param: param.into(),
        reason: reason.into(),
    })
}

/// Decode flattened pairs (`instanceIds.0=…`, 0-based) into a request.
pub(crate) fn request<T: serde::de::DeserializeOwned>(
    params: &[(String, String)],
) -> Result<T, LegacyError> {
    Ok(decode(unflatten(params, false)?)?)
}

/// BindInstanceKey (`replace`) and UnBindInstanceKey: one asynchronous operation per
/// instance, submitted all or none; the answer returns at once.
pub async fn bind(
    ctx: &Ctx<'_>,
    params: &[(String, String)],
    replace: bool,
) -> Result<Value, LegacyError> {
    let req: BindRequest = request(params)?;
    if req.key_id.is_empty() {
        return Err(LegacyError::MissingParameter("keyId".into()));
    }
    ctx.core
        .check_instance_ids(NS, "instanceIds", &req.instance_ids, MAX_IDS)?;
    let keys = vec![req.key_id];
    ctx.core.check_key_ids(NS, "keyId", &keys, 1)?;
    let change = if replace {
        BindChange::Replace(keys)
    } else {
        BindChange::Remove(keys)
    };
    ctx.core
        .submit_bind(
            ctx.account,
            NS,
            &req.instance_ids,
            BindRule::CvmLegacy,
            change,
            ctx.req,
        )
        .await?;
    Ok(Value::Object(Map::new()))
}

/// `createTime` as the legacy API prints it: `2015-11-05 17:26:21`, Beijing time.
pub fn legacy_time(ts: i64) -> String {
    const BEIJING: TimeFormat = TimeFormat {
        offset: time::macros::offset!(+8),
        separator: ' ',
        seconds: true,
        suffix: "",
    };
    BEIJING.format(ts)
}

fn key_out(kp: KeyPair, ips: &HashMap<String, String>) -> Value {
    let bind_ips: Vec<&String> = kp
        .associated_instance_ids
        .iter()
        .filter_map(|id| ips.get(id))
        .collect();
    json!({
        "keyId": kp.id,
        "keyName": kp.name,
        "pubkey": kp.public_key,
        "status": 0,
        "bindIps": bind_ips,
        "createTime": legacy_time(kp.created_at),
        "bindUnInstanceIds": kp.associated_instance_ids,
    })
}

/// DescribeKeyPairs (legacy): `keyIds.n`, `keyName`, `projectId`, `offset`, `limit`
/// (default 20, at most 100); the answer is `data.totalCount` and `data.sshSet`.
pub async fn describe_key_pairs(
    ctx: &Ctx<'_>,
    params: &[(String, String)],
) -> Result<Value, LegacyError> {
    let req: DescribeKeyPairsRequest = request(params)?;
    let ids = req.key_ids.filter(|ids| !ids.is_empty());
    if let Some(ids) = &ids {
        ctx.core.check_key_ids(NS, "keyIds", ids, MAX_IDS)?;
    }
    let offset = req.offset.unwrap_or(0);
    if offset < 0 {
        return Err(invalid("offset", "must not be negative"));
    }
    let limit = req.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(invalid("limit", "must be between 1 and 100"));
    }
    let mut filters = Vec::new();
    if let Some(name) = req.key_name.filter(|n| !n.is_empty()) {
        filters.push(KeyPairFilter::KeyName(vec![name]));
    }
    if let Some(project) = req.project_id {
        filters.push(KeyPairFilter::ProjectId(vec![project]));
    }
    let query = KeyPairQuery {
        ids,
        filters,
        region: None,
        offset: offset as usize,
        limit: limit as usize,
        ..KeyPairQuery::default()
    };
    let page = ctx.core.describe_key_pairs(ctx.account, NS, &query).await?;
    let ips: HashMap<String, String> = ctx
        .core
        .list_instances(ctx.account, NS)
        .await?
        .into_iter()
        .map(|i| (i.id, i.private_ip))
        .collect();
    let set: Vec<Value> = page.items.into_iter().map(|k| key_out(k, &ips)).collect();
    Ok(json!({ "data": { "totalCount": page.total, "sshSet": set } }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_print_in_beijing_time() {
        // 2015-11-05 09:26:21 UTC.
        assert_eq!(legacy_time(1446715581), "2015-11-05 17:26:21");
    }

    #[test]
    fn bind_parameters_decode_from_zero_based_lists() {
        let pairs = vec![
            ("instanceIds.0".to_string(), "ins-aaaaaaaa".to_string()),
            ("instanceIds.1".to_string(), "ins-bbbbbbbb".to_string()),
            ("keyId".to_string(), "skey-cccccccc".to_string()),
        ];
        let req: BindRequest = request(&pairs).unwrap();
        assert_eq!(req.instance_ids, vec!["ins-aaaaaaaa", "ins-bbbbbbbb"]);
        assert_eq!(req.key_id, "skey-cccccccc");
        let missing: Result<BindRequest, _> = request(&pairs[..2]);
        assert_eq!(
            missing.unwrap_err(),
            LegacyError::MissingParameter("keyId".into())
        );
    }
}
