//! AssociateInstancesKeyPairs and DisassociateInstancesKeyPairs: one durable asynchronous
//! operation per instance, all or none; the answer carries only the RequestId, and the
//! instances' LatestOperation* fields track the outcome.

use super::instances::{check_ids, MAX_IDS};
use super::Ctx;
use crate::common::params::decode;
use crate::tencent::cvm::dto::InstancesKeyPairsRequest;
use crate::tencent::cvm::error::CvmError;
use crate::tencent::wire::non_empty;
use keyplane_core::binding::{BindChange, BindRule};
use keyplane_core::keypair::Namespace;
use serde_json::{json, Value};

const NS: Namespace = Namespace::Cvm;

async fn bind(
    ctx: &Ctx<'_>,
    params: Value,
    change: fn(Vec<String>) -> BindChange,
) -> Result<Value, CvmError> {
    let req: InstancesKeyPairsRequest = decode(params)?;
    let ids = check_ids(ctx, req.instance_ids, "InstanceIds")?;
    let keys = non_empty(req.key_ids, "KeyIds")?;
    ctx.core.check_key_ids(NS, "KeyIds", &keys, MAX_IDS)?;
    ctx.core
        .get_instances_in(ctx.account, NS, &ids, Some(ctx.region))
        .await?;
    let rule = BindRule::Cvm {
        force_stop: req.force_stop.unwrap_or(false),
    };
    ctx.core
        .submit_bind(ctx.account, NS, &ids, rule, change(keys), ctx.req)
        .await?;
    Ok(json!({}))
}

/// AssociateInstancesKeyPairs: the given keys replace every key bound before ("the original
/// key becomes invalid"), and password login turns off.
pub async fn associate(ctx: &Ctx<'_>, params: Value) -> Result<Value, CvmError> {
    bind(ctx, params, BindChange::Replace).await
}

/// DisassociateInstancesKeyPairs: the given keys are unbound (CVM's rule has no "not bound"
/// refusal, unlike Lighthouse's: a key that is not bound stays unbound).
pub async fn disassociate(ctx: &Ctx<'_>, params: Value) -> Result<Value, CvmError> {
    bind(ctx, params, BindChange::Remove).await
}
