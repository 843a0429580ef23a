//! Alibaba Cloud ECS, Version 2014-05-26: the key-pair family and the instance calls, as thin
//! translators from ECS parameters into domain calls.

pub mod attribute;
pub mod bind;
pub mod dto;
pub mod instances;
pub mod keypairs;
pub mod launch;

use super::auth::Authenticated;
use super::error::{AliError, EcsRefusal};
use super::region_param;
use super::router::{EcsAction, REGIONS};
use crate::common::params::{decode, unflatten};
use crate::common::server::AppState;
use keyplane_core::account::Account;
use keyplane_core::keypair::{KeyPair, Namespace};
use keyplane_core::service::KeyPairQuery;
use keyplane_core::{Core, DomainError};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The ECS namespace: `i-` + 20 instances, `kp-` + 20 key pairs, named per region.
pub const NS: Namespace = Namespace::Ecs;

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

/// Decode business parameters (`Tag.1.Key` style, 1-based) into a request struct.
pub fn decode_params<T: DeserializeOwned>(params: &[(String, String)]) -> Result<T, AliError> {
    Ok(decode(unflatten(params, true)?)?)
}

/// `InvalidParameter` with a message naming `param`.
pub fn invalid(param: &str, reason: impl std::fmt::Display) -> AliError {
    AliError::InvalidParameter(format!(
        "The specified parameter \"{param}\" is not valid: {reason}."
    ))
}

/// Page number (from 1, default 1) and size (1 to `max`, default 10) as offset and limit.
pub fn page(
    number: Option<i64>,
    size: Option<i64>,
    max: i64,
) -> Result<(usize, usize, i64, i64), AliError> {
    let number = number.unwrap_or(1);
    if number < 1 {
        return Err(invalid("PageNumber", "it must be at least 1"));
    }
    let size = size.unwrap_or(10);
    if !(1..=max).contains(&size) {
        return Err(invalid(
            "PageSize",
            format!("it must be between 1 and {max}"),
        ));
    }
    let offset = usize::try_from((number - 1).saturating_mul(size)).unwrap_or(usize::MAX);
    Ok((offset, size as usize, number, size))
}

/// A JSON array of strings (`["a","b"]`), as ECS takes id and name lists.
pub fn json_list(value: &str) -> Result<Vec<String>, String> {
    match serde_json::from_str::<serde_json::Value>(value.trim()) {
        Ok(serde_json::Value::Array(items)) => items
            .into_iter()
            .map(|v| match v {
                serde_json::Value::String(s) => Ok(s),
                other => Err(format!("`{other}` is not a string")),
            })
            .collect(),
        _ => Err("it must be a JSON array of strings such as [\"a\",\"b\"]".into()),
    }
}

/// The account's key pairs in `region`, oldest first (ties by name, so pages are stable).
pub async fn regional_key_pairs(ctx: &Ctx<'_>, region: &str) -> Result<Vec<KeyPair>, AliError> {
    let query = KeyPairQuery {
        region: Some(region.to_string()),
        limit: usize::MAX,
        ..Default::default()
    };
    let mut items = ctx
        .core
        .describe_key_pairs(ctx.account, NS, &query)
        .await?
        .items;
    items.sort_by(|a, b| (a.created_at, &a.name).cmp(&(b.created_at, &b.name)));
    Ok(items)
}

/// The key pair named `name` in `region`: ECS addresses key pairs by name.
pub async fn key_pair_by_name(
    ctx: &Ctx<'_>,
    region: &str,
    name: &str,
) -> Result<KeyPair, AliError> {
    let query = KeyPairQuery {
        region: Some(region.to_string()),
        filters: vec![keyplane_core::service::KeyPairFilter::KeyName(vec![
            name.to_string()
        ])],
        limit: 1,
        ..Default::default()
    };
    ctx.core
        .describe_key_pairs(ctx.account, NS, &query)
        .await?
        .items
        .pop()
        .ok_or_else(|| AliError::Domain(DomainError::KeyPairNotFound { id: name.into() }))
}

/// Validate `Tag.N`: at most 20, keys 1 to 128 characters not starting with `aliyun` or `acs:`
/// and without `http://`/`https://`, values up to 128 characters, keys unique.
pub fn tags(tags: &[dto::TagIn]) -> Result<Vec<(String, String)>, AliError> {
    if tags.len() > 20 {
        return Err(EcsRefusal::TagCount(tags.len()).into());
    }
    let mut out: Vec<(String, String)> = Vec::new();
    for t in tags {
        let key = t.key.clone().unwrap_or_default();
        let value = t.value.clone().unwrap_or_default();
        let has_url = |s: &str| s.contains("http://") || s.contains("https://");
        if key.is_empty()
            || key.chars().count() > 128
            || key.starts_with("aliyun")
            || key.starts_with("acs:")
            || has_url(&key)
        {
            return Err(EcsRefusal::TagKey(key).into());
        }
        if value.chars().count() > 128 || value.starts_with("acs:") || has_url(&value) {
            return Err(EcsRefusal::TagValue(value).into());
        }
        if out.iter().any(|(k, _)| *k == key) {
            return Err(EcsRefusal::TagKeyDuplicate(key).into());
        }
        out.push((key, value));
    }
    Ok(out)
}

/// Serve one authenticated ECS request.
pub async fn dispatch(
    state: &AppState,
    auth: &Authenticated,
    req: &keyplane_core::RequestMeta,
) -> Result<Value, AliError> {
    let action = EcsAction::parse(&auth.action)
        .ok_or_else(|| AliError::InvalidAction(auth.action.clone()))?;
    match region_param(&auth.params) {
        Some(r) if !REGIONS.contains(&r) => return Err(AliError::InvalidRegion(r.to_string())),
        None | Some("") if !action.is_instance_action() => {
            return Err(AliError::MissingParameter("RegionId".into()))
        }
        _ => {}
    }
    if !state
        .limiter
        .check(&auth.account.id, &format!("ecs.{}", action.name()))
    {
        return Err(AliError::Throttling(action.name().into()));
    }
    let ctx = Ctx {
        core: &state.core,
        account: &auth.account,
        req,
    };
    let p = &auth.params;
    match action {
        EcsAction::CreateKeyPair => keypairs::create(&ctx, p).await,
        EcsAction::ImportKeyPair => keypairs::import(&ctx, p).await,
        EcsAction::DescribeKeyPairs => keypairs::describe(&ctx, p).await,
        EcsAction::DeleteKeyPairs => keypairs::delete(&ctx, p).await,
        EcsAction::AttachKeyPair => bind::attach(&ctx, p).await,
        EcsAction::DetachKeyPair => bind::detach(&ctx, p).await,
        EcsAction::DescribeImages => launch::describe_images(&ctx, p).await,
        EcsAction::RunInstances => launch::run(&ctx, p).await,
        EcsAction::CreateInstance => launch::create(&ctx, p).await,
        EcsAction::DescribeInstances => instances::describe(&ctx, p).await,
        EcsAction::StartInstance => instances::start(&ctx, p).await,
        EcsAction::StopInstance => instances::stop(&ctx, p).await,
        EcsAction::RebootInstance => instances::reboot(&ctx, p).await,
        EcsAction::DeleteInstance => instances::delete(&ctx, p).await,
        EcsAction::ModifyInstanceAttribute => attribute::modify(&ctx, p).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lists() {
        assert_eq!(json_list("[\"a\", \"b\"]").unwrap(), vec!["a", "b"]);
        assert!(json_list("a,b").is_err());
        assert!(json_list("[1]").is_err());
        assert!(json_list("{}").is_err());
    }

    #[test]
    fn pages() {
        assert_eq!(page(None, None, 50).unwrap(), (0, 10, 1, 10));
        assert_eq!(page(Some(3), Some(5), 50).unwrap(), (10, 5, 3, 5));
        assert!(page(Some(0), None, 50).is_err());
        assert!(page(None, Some(51), 50).is_err());
    }
}
