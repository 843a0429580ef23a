//! ModifyInstanceAttribute: `Password` replaces root's login password, in effect from the
//! instance's next StartInstance or RebootInstance, as ECS documents (a running instance keeps
//! the old one until then); `InstanceName` renames it at once. The other attributes ECS
//! documents are checked against their rules and then refused by name: a sandbox instance
//! cannot apply them (see [`UNSUPPORTED`]).

use super::launch::{check_description, check_host_name, check_name, check_password};
use super::{decode_params, Ctx, NS};
use crate::aliyun::error::{AliError, EcsRefusal};
use keyplane_core::password::ResetRule;
use serde::Deserialize;
use serde_json::{json, Value};

/// Documented attributes this server does not change, in the order they are refused.
// Why: the description is not kept, the hostname is fixed when the instance's disk is laid out,
// and security groups, CPU options, user data, MTU and the rest have nothing behind them here;
// refusing by name beats answering success for a change that never happens.
const UNSUPPORTED: &[&str] = &[
    "Description",
    "HostName",
    "UserData",
    "SecurityGroupIds",
    "CreditSpecification",
    "DeletionProtection",
    "EnableJumboFrame",
    "EnableNetworkEncryption",
    "NetworkInterfaceQueueNumber",
    "Recyclable",
    "CpuOptions",
    "PrivateDnsNameOptions",
    "RemoteConnectionOptions",
];

/// ModifyInstanceAttribute request (only the fields checked here; the rest are matched by name
/// against [`UNSUPPORTED`]).
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ModifyRequest {
    instance_id: String,
    #[serde(default)]
    region_id: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    instance_name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    host_name: Option<String>,
}

/// The first unsupported attribute given (`SecurityGroupIds.1` counts as `SecurityGroupIds`).
fn unsupported(params: &[(String, String)]) -> Option<&'static str> {
    UNSUPPORTED.iter().copied().find(|name| {
        params.iter().any(|(k, _)| {
            k == name
                || k.strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with('.'))
        })
    })
}

/// ModifyInstanceAttribute.
pub async fn modify(ctx: &Ctx<'_>, params: &[(String, String)]) -> Result<Value, AliError> {
    let req: ModifyRequest = decode_params(params)?;
    if req.instance_id.is_empty() {
        return Err(AliError::MissingParameter("InstanceId".into()));
    }
    let ids = [req.instance_id.clone()];
    let region = req.region_id.as_deref().filter(|r| !r.is_empty());
    let inst = ctx
        .core
        .get_instances_in(ctx.account, NS, &ids, region)
        .await?
        .remove(0);
    if let Some(n) = req.instance_name.as_deref().filter(|n| !n.is_empty()) {
        check_name(n)?;
    }
    if let Some(d) = req.description.as_deref().filter(|d| !d.is_empty()) {
        check_description(d)?;
    }
    if let Some(h) = req.host_name.as_deref().filter(|h| !h.is_empty()) {
        check_host_name(h)?;
    }
    let password = req.password.filter(|p| !p.is_empty());
    if let Some(p) = &password {
        check_password(p, inst.os)?;
    }
    if let Some(name) = unsupported(params) {
        return Err(EcsRefusal::AttributeUnsupported(name.into()).into());
    }
    let name = req.instance_name.filter(|n| !n.is_empty());
    let Some(password) = password else {
        if let Some(name) = &name {
            ctx.core
                .rename_instance(ctx.account, NS, &inst.id, name, ctx.req)
                .await?;
        }
        // Nothing else to change: ECS answers success.
        return Ok(json!({}));
    };
    // ECS's rule (Running or Stopped: documented "not Starting"; any other transition and an
    // operation in progress are IncorrectInstanceStatus, as on every other call) is the core's.
    ctx.core
        .submit_password_reset(ctx.account, NS, &ids, ResetRule::Ecs, &password, ctx.req)
        .await?;
    // The operation only records the hash: wait for it, so a RebootInstance right after the
    // answer is not refused as "in progress".
    super::bind::settle(ctx, &inst.id).await?;
    if let Some(name) = &name {
        ctx.core
            .rename_instance(ctx.account, NS, &inst.id, name, ctx.req)
            .await?;
    }
    Ok(json!({}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsupported_attributes_are_found_by_name() {
        let p = |k: &str| vec![(k.to_string(), "x".to_string())];
        assert_eq!(
            unsupported(&p("SecurityGroupIds.1")),
            Some("SecurityGroupIds")
        );
        assert_eq!(unsupported(&p("HostName")), Some("HostName"));
        assert_eq!(unsupported(&p("Password")), None);
        assert_eq!(unsupported(&p("InstanceName")), None);
        assert_eq!(unsupported(&p("DescriptionX")), None);
    }
}
