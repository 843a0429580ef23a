//! CVM key-pair actions: CreateKeyPair, ImportKeyPair, DescribeKeyPairs, DeleteKeyPairs,
//! ModifyKeyPairAttribute.

use super::Ctx;
use crate::common::answer::Answer;
use crate::common::params::decode;
use crate::tencent::cvm::dto::*;
use crate::tencent::cvm::error::CvmError;
use crate::tencent::wire::{
    check_filter, check_filter_count, ids_or_filters, invalid, page, required,
};
use keyplane_core::keypair::Namespace;
use keyplane_core::service::{KeyPairFilter, KeyPairQuery, NewKeyPair};
use keyplane_core::DomainError;
use serde_json::{json, Value};

const NS: Namespace = Namespace::Cvm;
/// At most this many ids in one call.
const MAX_IDS: usize = 100;
/// Descriptions are at most this long.
const MAX_DESCRIPTION: usize = 60;

fn tags_of(specs: Vec<TagSpecification>) -> Result<Vec<(String, String)>, CvmError> {
    let mut tags = Vec::new();
    for spec in specs {
        if spec.resource_type != "keypair" {
            return Err(invalid(
                "TagSpecification.ResourceType",
                format!("`{}` is not `keypair`", spec.resource_type),
            ));
        }
        tags.extend(spec.tags.into_iter().map(|t| (t.key, t.value)));
    }
    Ok(tags)
}

fn project(id: Option<i64>) -> Result<i64, CvmError> {
    let id = required(id, "ProjectId")?;
    if id < 0 {
        return Err(invalid("ProjectId", "must not be negative"));
    }
    Ok(id)
}

/// CreateKeyPair: the answer carries the private key, which is not kept.
pub async fn create(ctx: &Ctx<'_>, params: Value) -> Result<Value, CvmError> {
    let req: CreateKeyPairRequest = decode(params)?;
    let spec = NewKeyPair {
        name: req.key_name,
        project_id: project(req.project_id)?,
        tags: tags_of(req.tag_specification)?,
        ..Default::default()
    };
    let created = ctx
        .core
        .create_key_pair(ctx.account, NS, spec, ctx.req)
        .await?;
    let out = KeyPairOut::from_domain(created.key_pair, Some(created.private_key));
    Ok(json!({ "KeyPair": out }))
}

/// ImportKeyPair.
pub async fn import(ctx: &Ctx<'_>, params: Value) -> Result<Value, CvmError> {
    let req: ImportKeyPairRequest = decode(params)?;
    let spec = NewKeyPair {
        name: req.key_name,
        project_id: project(req.project_id)?,
        tags: tags_of(req.tag_specification)?,
        ..Default::default()
    };
    let kp = ctx
        .core
        .import_key_pair(ctx.account, NS, spec, &req.public_key, ctx.req)
        .await?;
    Ok(json!({ "KeyId": kp.id }))
}

fn filter_of(f: Filter) -> Result<KeyPairFilter, CvmError> {
    check_filter(&f, 5)?;
    Ok(match f.name.as_str() {
        "project-id" => KeyPairFilter::ProjectId(
            f.values
                .iter()
                .map(|v| {
                    v.parse()
                        .map_err(|_| invalid("project-id", format!("`{v}` is not an integer")))
                })
                .collect::<Result<_, _>>()?,
        ),
        "key-name" => KeyPairFilter::KeyName(f.values),
        "tag-key" => KeyPairFilter::TagKey(f.values),
        "tag-value" => KeyPairFilter::TagValue(f.values),
        name => match name.strip_prefix("tag:") {
            Some(key) if !key.is_empty() => KeyPairFilter::Tag {
                key: key.to_string(),
                values: f.values,
            },
            _ => {
                return Err(CvmError::Domain(DomainError::UnknownFilter {
                    name: name.into(),
                }))
            }
        },
    })
}

/// DescribeKeyPairs.
pub async fn describe(ctx: &Ctx<'_>, params: Value) -> Result<Answer, CvmError> {
    let req: DescribeKeyPairsRequest = decode(params)?;
    let (ids, filters) = ids_or_filters(req.key_ids, "KeyIds", req.filters)?;
    if let Some(ids) = &ids {
        ctx.core.check_key_ids(NS, "KeyIds", ids, MAX_IDS)?;
    }
    // Why not `selection`: CVM checks each filter's values after the page, with its name.
    check_filter_count(&filters)?;
    let (offset, limit) = page(req.offset, req.limit)?;
    let query = KeyPairQuery {
        ids,
        filters: filters
            .into_iter()
            .map(filter_of)
            .collect::<Result<_, _>>()?,
        region: None,
        offset,
        limit,
        ..KeyPairQuery::default()
    };
    let page = ctx.core.describe_key_pairs(ctx.account, NS, &query).await?;
    let key_pair_set = page
        .items
        .into_iter()
        .map(|k| KeyPairOut::from_domain(k, None))
        .collect();
    Ok(Answer::of(&DescribeKeyPairsOut {
        total_count: page.total,
        key_pair_set,
    }))
}

/// DeleteKeyPairs: all or none.
pub async fn delete(ctx: &Ctx<'_>, params: Value) -> Result<Value, CvmError> {
    let req: DeleteKeyPairsRequest = decode(params)?;
    if req.key_ids.is_empty() {
        return Err(CvmError::MissingParameter("KeyIds".into()));
    }
    ctx.core
        .check_key_ids(NS, "KeyIds", &req.key_ids, MAX_IDS)?;
    ctx.core
        .delete_key_pairs(ctx.account, NS, &req.key_ids, ctx.req)
        .await?;
    Ok(json!({}))
}

/// ModifyKeyPairAttribute.
pub async fn modify(ctx: &Ctx<'_>, params: Value) -> Result<Value, CvmError> {
    let req: ModifyKeyPairAttributeRequest = decode(params)?;
    ctx.core
        .check_key_ids(NS, "KeyId", std::slice::from_ref(&req.key_id), 1)?;
    if req.key_name.is_none() && req.description.is_none() {
        return Err(CvmError::MissingAtLeastOne("KeyName, Description".into()));
    }
    if let Some(d) = &req.description {
        if d.chars().count() > MAX_DESCRIPTION {
            return Err(invalid(
                "Description",
                format!("longer than {MAX_DESCRIPTION} characters"),
            ));
        }
    }
    ctx.core
        .modify_key_pair(
            ctx.account,
            NS,
            &req.key_id,
            req.key_name.as_deref(),
            req.description.as_deref(),
            ctx.req,
        )
        .await?;
    Ok(json!({}))
}
