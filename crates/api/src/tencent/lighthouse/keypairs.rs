//! Lighthouse key-pair actions: CreateKeyPair, ImportKeyPair, DescribeKeyPairs,
//! DeleteKeyPairs. Key pairs live in the Lighthouse namespace (`lhkp-`), apart from CVM's.

use super::dto::{
    CreateKeyPairRequest, DeleteKeyPairsRequest, DescribeKeyPairsRequest, ImportKeyPairRequest,
};
use super::out::KeyPairOut;
use super::{Ctx, MAX_IDS, NS};
use crate::common::params::decode;
use crate::tencent::lighthouse::error::LighthouseError;
use crate::tencent::wire::{filter_page, selection, Filter, Tag};
use keyplane_core::keypair::KeyPair;
use keyplane_core::service::{KeyPairQuery, NewKeyPair};
use keyplane_core::DomainError;
use serde_json::{json, Value};

/// DeleteKeyPairs takes at most this many ids.
const MAX_DELETE: usize = 10;
/// At most this many tags on a key pair.
const MAX_TAGS: usize = 10;

/// At most 10 tags; a key given twice keeps its last value ("the value is updated").
pub fn tags_of(tags: Vec<Tag>) -> Result<Vec<(String, String)>, LighthouseError> {
    if tags.len() > MAX_TAGS {
        return Err(LighthouseError::Domain(DomainError::TooManyValues {
            param: "Tags".into(),
            max: MAX_TAGS,
            given: tags.len(),
        }));
    }
    let mut out: Vec<(String, String)> = Vec::new();
    for t in tags {
        out.retain(|(k, _)| *k != t.key);
        out.push((t.key, t.value));
    }
    Ok(out)
}

fn spec(name: String, tags: Vec<Tag>) -> Result<NewKeyPair, LighthouseError> {
    Ok(NewKeyPair {
        name,
        tags: tags_of(tags)?,
        ..Default::default()
    })
}

/// CreateKeyPair: the answer carries the private key, which is not kept.
pub async fn create(ctx: &Ctx<'_>, params: Value) -> Result<Value, LighthouseError> {
    let req: CreateKeyPairRequest = decode(params)?;
    let spec = spec(req.key_name, req.tags)?;
    let created = ctx
        .core
        .create_key_pair(ctx.account, NS, spec, ctx.req)
        .await?;
    let out = KeyPairOut::from_domain(created.key_pair, Some(created.private_key));
    Ok(json!({ "KeyPair": out }))
}

/// ImportKeyPair.
pub async fn import(ctx: &Ctx<'_>, params: Value) -> Result<Value, LighthouseError> {
    let req: ImportKeyPairRequest = decode(params)?;
    let spec = spec(req.key_name, req.tags)?;
    let kp = ctx
        .core
        .import_key_pair(ctx.account, NS, spec, &req.public_key, ctx.req)
        .await?;
    Ok(json!({ "KeyId": kp.id }))
}

/// Whether `kp` passes `f`; unknown filter names are refused.
fn matches(f: &Filter, kp: &KeyPair) -> Result<bool, LighthouseError> {
    let tagged = |ok: &dyn Fn(&(String, String)) -> bool| kp.tags.iter().any(ok);
    Ok(match f.name.as_str() {
        "key-id" => f.values.contains(&kp.id),
        // Documented as a fuzzy match: a name containing any of the values.
        "key-name" => f.values.iter().any(|v| kp.name.contains(v.as_str())),
        "tag-key" => tagged(&|(k, _)| f.values.contains(k)),
        "tag-value" => tagged(&|(_, v)| f.values.contains(v)),
        name => match name.strip_prefix("tag:") {
            Some(key) if !key.is_empty() => tagged(&|(k, v)| k == key && f.values.contains(v)),
            _ => {
                return Err(LighthouseError::Domain(DomainError::UnknownFilter {
                    name: name.into(),
                }))
            }
        },
    })
}

/// DescribeKeyPairs: ids not found are simply not returned.
pub async fn describe(ctx: &Ctx<'_>, params: Value) -> Result<Value, LighthouseError> {
    let req: DescribeKeyPairsRequest = decode(params)?;
    let sel = selection(
        req.key_ids,
        "KeyIds",
        req.filters,
        5,
        (req.offset, req.limit),
        |ids| ctx.core.check_key_ids(NS, "KeyIds", ids, MAX_IDS),
    )?;
    // The fuzzy name match is Lighthouse's own: the domain gives every key pair of the
    // account (ids applied), this dialect filters and pages.
    let query = KeyPairQuery {
        ids: sel.ids,
        filters: vec![],
        region: None,
        offset: 0,
        limit: usize::MAX,
        ..KeyPairQuery::default()
    };
    let all = ctx.core.describe_key_pairs(ctx.account, NS, &query).await?;
    let (total, matching) = filter_page(all.items, sel.offset, sel.limit, |kp| {
        let mut keep = true;
        for f in &sel.filters {
            keep &= matches(f, kp)?;
        }
        Ok::<_, LighthouseError>(keep)
    })?;
    let set: Vec<KeyPairOut> = matching
        .into_iter()
        .map(|k| KeyPairOut::from_domain(k, None))
        .collect();
    Ok(json!({ "TotalCount": total, "KeyPairSet": set }))
}

/// DeleteKeyPairs: at most 10, all or none; a bound key pair is `ResourceInUse.KeyPairInUse`.
pub async fn delete(ctx: &Ctx<'_>, params: Value) -> Result<Value, LighthouseError> {
    let req: DeleteKeyPairsRequest = decode(params)?;
    if req.key_ids.is_empty() {
        return Err(LighthouseError::MissingParameter("KeyIds".into()));
    }
    ctx.core
        .check_key_ids(NS, "KeyIds", &req.key_ids, MAX_DELETE)?;
    ctx.core
        .delete_key_pairs(ctx.account, NS, &req.key_ids, ctx.req)
        .await?;
    Ok(json!({}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_tag_keys_keep_the_last_value() {
        let tag = |k: &str, v: &str| Tag {
            key: k.into(),
            value: v.into(),
        };
        let tags = tags_of(vec![tag("env", "a"), tag("team", "x"), tag("env", "b")]).unwrap();
        assert_eq!(
            tags,
            vec![("team".into(), "x".into()), ("env".into(), "b".into())]
        );
        assert!(tags_of((0..11).map(|i| tag(&i.to_string(), "v")).collect()).is_err());
    }
}
