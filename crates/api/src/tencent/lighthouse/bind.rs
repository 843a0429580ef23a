//! AssociateInstancesKeyPairs and DisassociateInstancesKeyPairs: LINUX_UNIX instances in
//! RUNNING or STOPPED; one durable asynchronous operation per instance, all or none. The
//! answer carries only the RequestId; DescribeInstances' LatestOperationState tracks the
//! outcome.

use super::dto::{AssociateInstancesKeyPairsRequest, DisassociateInstancesKeyPairsRequest};
use super::error::LighthouseRefusal;
use super::out::LOGIN_USER;
use super::{check_ids, settled_instances, Ctx, MAX_IDS, NS};
use crate::common::params::decode;
use crate::tencent::lighthouse::error::LighthouseError;
use crate::tencent::wire::conflict;
use crate::tencent::wire::{invalid, non_empty};
use keyplane_core::binding::{BindChange, BindRule};
use keyplane_core::DomainError;
use serde_json::{json, Value};

/// How a binding reaches the instance (`AssociateType` / `DisassociateType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// The documented behaviour, and the default: a RUNNING instance is forcibly shut down,
    /// the keys are changed, and it stays STOPPED.
    Offline,
    /// "No shutdown needed": the instance ends in the state it was in.
    Online,
}

/// The mode and the user from the type and `Username` parameters.
fn mode(
    type_param: &str,
    kind: Option<&str>,
    username: Option<&str>,
) -> Result<Mode, LighthouseError> {
    let mode = match kind {
        None | Some("OFFLINE") => Mode::Offline,
        Some("ONLINE") => Mode::Online,
        Some(other) => {
            return Err(invalid(
                type_param,
                format!("`{other}` is not one of ONLINE, OFFLINE"),
            ))
        }
    };
    if username.is_some() && mode == Mode::Offline {
        return Err(conflict(type_param, "Username"));
    }
    Ok(mode)
}

/// Check the ids and the instances (existence, region, creation), then bind through the
/// core under Lighthouse's rule (which checks the keys, states and bound keys).
async fn submit(
    ctx: &Ctx<'_>,
    instance_ids: Vec<String>,
    key_ids: Vec<String>,
    mode: Mode,
    change: fn(Vec<String>) -> BindChange,
) -> Result<(), LighthouseError> {
    let ids = check_ids(ctx, instance_ids, "InstanceIds")?;
    let keys = non_empty(key_ids, "KeyIds")?;
    ctx.core.check_key_ids(NS, "KeyIds", &keys, MAX_IDS)?;
    settled_instances(ctx, &ids).await?;
    let rule = BindRule::Lighthouse {
        online: mode == Mode::Online,
    };
    ctx.core
        .submit_bind(ctx.account, NS, &ids, rule, change(keys), ctx.req)
        .await?;
    Ok(())
}

/// AssociateInstancesKeyPairs. An OFFLINE binding (the default) leaves a RUNNING instance
/// STOPPED (处于 RUNNING 状态的实例会强制关机，然后绑定); StartInstances brings it back with the key.
///
/// The keys given replace every key bound before: the seed says "if the instance is already
/// associated with a key, the old key will become invalid"; binding a key that is already
/// bound is `UnsupportedOperation.KeyPairBindDuplicate`.
pub async fn associate(ctx: &Ctx<'_>, params: Value) -> Result<Value, LighthouseError> {
    let req: AssociateInstancesKeyPairsRequest = decode(params)?;
    let mode = mode(
        "AssociateType",
        req.associate_type.as_deref(),
        req.username.as_deref(),
    )?;
    if let Some(user) = req.username.as_deref().filter(|u| *u != LOGIN_USER) {
        return Err(invalid(
            "Username",
            format!("the sandbox image has no user `{user}`; only `{LOGIN_USER}`"),
        ));
    }
    submit(
        ctx,
        req.instance_ids,
        req.key_ids,
        mode,
        BindChange::Replace,
    )
    .await?;
    Ok(json!({}))
}

/// DisassociateInstancesKeyPairs: password login comes back (when the instance has one); a
/// key that is not bound is `UnsupportedOperation.KeyPairNotBoundToInstance`. The post-unbind
/// state follows the same rule as binding: OFFLINE leaves a RUNNING instance STOPPED.
pub async fn disassociate(ctx: &Ctx<'_>, params: Value) -> Result<Value, LighthouseError> {
    let req: DisassociateInstancesKeyPairsRequest = decode(params)?;
    let mode = mode(
        "DisassociateType",
        req.disassociate_type.as_deref(),
        req.username.as_deref(),
    )?;
    if let Some(user) = req.username.as_deref().filter(|u| *u != LOGIN_USER) {
        return Err(LighthouseRefusal::UsernameMismatch(user.into()).into());
    }
    let submitted = submit(ctx, req.instance_ids, req.key_ids, mode, BindChange::Remove).await;
    match submitted {
        // "Windows instances do not support binding key pairs" reads wrong for an unbind:
        // answer the product's other Windows code.
        Err(LighthouseError::Domain(DomainError::InstanceNotLinux { id })) => {
            Err(LighthouseRefusal::WindowsNotSupportKeyPair(id).into())
        }
        other => other.map(|()| json!({})),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_and_users() {
        assert_eq!(mode("AssociateType", None, None).unwrap(), Mode::Offline);
        assert_eq!(
            mode("AssociateType", Some("ONLINE"), Some("root")).unwrap(),
            Mode::Online
        );
        assert!(mode("AssociateType", Some("OFFLINE"), Some("root")).is_err());
        assert!(mode("AssociateType", None, Some("root")).is_err());
        assert!(mode("AssociateType", Some("SOMETIMES"), None).is_err());
    }
}
