//! Tencent Lighthouse, Version 2020-03-24: the key-pair family on lightweight instances and
//! the instance calls its rules depend on. Same wire as CVM API 3.0 (TC3 or v1 signatures,
//! credential scope service `lighthouse`); resources are `lhkp-` key pairs and `lhins-`
//! instances in their own namespace, answered with Lighthouse's own error codes.

pub mod bind;
pub mod catalog;
pub mod create;
pub mod dto;
pub mod error;
pub mod instances;
pub mod keypairs;
pub mod out;
pub mod password;

use super::router::{LighthouseAction, Product};
use super::wire::{check_rate, check_region, non_empty, unknown_action, zone_of_region};
use crate::common::server::AppState;
use error::{LighthouseError, LighthouseRefusal};
use keyplane_core::account::Account;
use keyplane_core::instance::{Instance, InstanceState};
use keyplane_core::keypair::Namespace;
use keyplane_core::{Core, DomainError};
use serde_json::Value;

/// The namespace of Lighthouse key pairs and instances.
pub const NS: Namespace = Namespace::Lighthouse;
/// At most this many instances (or key pairs to bind) in one call.
pub const MAX_IDS: usize = 100;

/// What a Lighthouse handler gets.
pub struct Ctx<'a> {
    /// The domain service.
    pub core: &'a Core,
    /// The signing account.
    pub account: &'a Account,
    /// The request's region; only the binding calls may omit it (see [`dispatch`]).
    pub region: Option<&'a str>,
    /// Who sent the request and how, with its RequestId (recorded on the operations it
    /// starts and in the audit trail).
    pub req: &'a keyplane_core::RequestMeta,
}

impl Ctx<'_> {
    /// The region (empty when the call did not name one).
    pub fn region(&self) -> &str {
        self.region.unwrap_or_default()
    }
}

/// A zone must be `<region>-<digit>` of the request's region.
pub fn check_zone(zone: &str, region: &str) -> Result<(), LighthouseError> {
    if zone_of_region(zone, region) {
        Ok(())
    } else {
        Err(LighthouseRefusal::ZoneInvalid {
            zone: zone.into(),
            region: region.into(),
        }
        .into())
    }
}

/// Check a list of instance ids for presence, shape, duplicates and count.
pub fn check_ids(
    ctx: &Ctx<'_>,
    ids: Vec<String>,
    param: &str,
) -> Result<Vec<String>, LighthouseError> {
    let ids = non_empty(ids, param)?;
    ctx.core.check_instance_ids(NS, param, &ids, MAX_IDS)?;
    Ok(ids)
}

/// The instances (all must exist in the account and the request's region), refusing any
/// still being created with `OperationDenied.InstanceCreating`.
pub async fn settled_instances(
    ctx: &Ctx<'_>,
    ids: &[String],
) -> Result<Vec<Instance>, LighthouseError> {
    let instances = ctx
        .core
        .get_instances_in(ctx.account, NS, ids, ctx.region)
        .await?;
    if let Some(inst) = instances.iter().find(|i| i.state == InstanceState::Pending) {
        return Err(DomainError::InstanceStateInvalid {
            id: inst.id.clone(),
            state: inst.state,
        }
        .into());
    }
    Ok(instances)
}

/// Serve one authenticated Lighthouse request.
pub async fn dispatch(
    state: &AppState,
    account: &Account,
    action: &str,
    region: Option<String>,
    params: Value,
    req: &keyplane_core::RequestMeta,
) -> Result<Value, LighthouseError> {
    use LighthouseAction as A;
    let act = LighthouseAction::parse(action)
        .ok_or_else(|| unknown_action(Product::Lighthouse, action))?;
    // Why: AssociateInstancesKeyPairs documents Region as "not required for this API" (and
    // Disassociate is its mirror); without one, instances of every region are found.
    let region_optional = matches!(
        act,
        A::AssociateInstancesKeyPairs | A::DisassociateInstancesKeyPairs
    );
    check_region(region.as_deref(), region_optional)?;
    // DisassociateInstancesKeyPairs has its documented rate of its own in the limiter.
    check_rate(state, account, Product::Lighthouse, act.name())?;
    let ctx = Ctx {
        core: &state.core,
        account,
        region: region.as_deref(),
        req,
    };
    match act {
        A::DescribeBlueprints => catalog::describe_blueprints(&ctx, params).await,
        A::DescribeBundles => catalog::describe_bundles(&ctx, params).await,
        A::CreateInstances => create::create(&ctx, params).await,
        A::DescribeInstances => instances::describe(&ctx, params).await,
        A::StartInstances => instances::start(&ctx, params).await,
        A::StopInstances => instances::stop(&ctx, params).await,
        A::RebootInstances => instances::reboot(&ctx, params).await,
        A::TerminateInstances => instances::terminate(&ctx, params).await,
        A::CreateKeyPair => keypairs::create(&ctx, params).await,
        A::ImportKeyPair => keypairs::import(&ctx, params).await,
        A::DescribeKeyPairs => keypairs::describe(&ctx, params).await,
        A::DeleteKeyPairs => keypairs::delete(&ctx, params).await,
        A::AssociateInstancesKeyPairs => bind::associate(&ctx, params).await,
        A::DisassociateInstancesKeyPairs => bind::disassociate(&ctx, params).await,
        A::ResetInstancesPassword => password::reset(&ctx, params).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zone_of_another_region_is_zone_invalid() {
        assert!(check_zone("ap-guangzhou-3", "ap-guangzhou").is_ok());
        assert!(matches!(
            check_zone("ap-beijing-3", "ap-guangzhou"),
            Err(LighthouseError::Refusal(
                LighthouseRefusal::ZoneInvalid { .. }
            ))
        ));
    }
}
