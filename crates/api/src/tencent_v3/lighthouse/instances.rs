//! Lighthouse instance actions: DescribeInstances, StartInstances, StopInstances,
//! RebootInstances, TerminateInstances. The lifecycle calls record one durable asynchronous
//! operation per instance (all or none) that a worker carries out later.

use super::dto::{DescribeInstancesRequest, InstanceIdsRequest, StopInstancesRequest};
use super::error::LighthouseRefusal;
use super::out::InstanceOut;
use super::{check_filters, check_ids, conflict, Ctx, MAX_IDS, NS};
use crate::common::params::decode;
use crate::tencent_v3::dto::Filter;
use crate::tencent_v3::error::TcError;
use crate::tencent_v3::handlers::{invalid, page};
use keyplane_core::instance::{Instance, InstanceState, OpKind};
use keyplane_core::DomainError;
use serde_json::{json, Value};

/// Whether `inst` passes `f`; unknown filter names are refused.
fn matches(f: &Filter, inst: &Instance) -> Result<bool, TcError> {
    let any = |s: &str| f.values.iter().any(|v| v == s);
    Ok(match f.name.as_str() {
        "instance-name" => any(&inst.name),
        "private-ip-address" => any(&inst.private_ip),
        "zone" => any(&inst.zone),
        "instance-state" => any(inst.state.as_str()),
        "bundle-id" => any(&inst.instance_type),
        // Documented, but sandbox instances have no public address and carry no tags.
        "public-ip-address" | "tag-key" | "tag-value" => false,
        name if name.starts_with("tag:") && name.len() > 4 => false,
        name => {
            return Err(TcError::Domain(DomainError::UnknownFilter {
                name: name.into(),
            }))
        }
    })
}

/// Sort as documented: without OrderField, newest first; with `EXPIRED_TIME`, by expiry.
fn sort(list: &mut [Instance], field: Option<&str>, order: Option<&str>) -> Result<(), TcError> {
    let descending = match order {
        None | Some("ASC") => false,
        Some("DESC") => true,
        Some(other) => {
            return Err(invalid(
                "Order",
                format!("`{other}` is not one of ASC, DESC"),
            ))
        }
    };
    match field {
        None if order.is_some() => Err(LighthouseRefusal::OrderFieldRequired.into()),
        None => {
            list.sort_by_key(|i| std::cmp::Reverse(i.created_at));
            Ok(())
        }
        // Why: no expiry is kept (nothing is billed); instances bought for the same period
        // expire in the order they were created, so that is the order used.
        Some("EXPIRED_TIME") => {
            list.sort_by_key(|i| i.created_at);
            if descending {
                list.reverse();
            }
            Ok(())
        }
        Some(other) => Err(invalid(
            "OrderField",
            format!("`{other}` is not EXPIRED_TIME"),
        )),
    }
}

/// DescribeInstances: ids not found are simply not returned.
pub async fn describe(ctx: &Ctx<'_>, params: Value) -> Result<Value, TcError> {
    let req: DescribeInstancesRequest = decode(params)?;
    let ids = req.instance_ids.filter(|v| !v.is_empty());
    let filters = req.filters.filter(|v| !v.is_empty());
    if ids.is_some() && filters.is_some() {
        return Err(conflict("InstanceIds", "Filters"));
    }
    if let Some(ids) = &ids {
        ctx.core
            .check_instance_ids(NS, "InstanceIds", ids, MAX_IDS)?;
    }
    let filters = filters.unwrap_or_default();
    check_filters(&filters, 100)?;
    let (offset, limit) = page(req.offset, req.limit)?;
    let mut matching = Vec::new();
    for inst in ctx.core.list_instances(ctx.account, NS).await? {
        if inst.region != ctx.region() {
            continue;
        }
        let mut keep = ids.as_ref().is_none_or(|ids| ids.contains(&inst.id));
        for f in &filters {
            keep &= matches(f, &inst)?;
        }
        if keep {
            matching.push(inst);
        }
    }
    sort(
        &mut matching,
        req.order_field.as_deref(),
        req.order.as_deref(),
    )?;
    let total = matching.len();
    let set: Vec<InstanceOut> = matching
        .into_iter()
        .skip(offset)
        .take(limit)
        .map(InstanceOut::from_domain)
        .collect();
    Ok(json!({ "TotalCount": total, "InstanceSet": set }))
}

/// Record `kind` on every instance, all or none. Checks, in order: the instance exists in the
/// region; it is not being created (`OperationDenied.InstanceCreating`); its latest operation
/// is not still OPERATING (`OperationDenied.InstanceOperationInProgress`); its state is one of
/// `from` (`UnsupportedOperation.InvalidInstanceState`). Each instance enters `to` now.
async fn lifecycle(
    ctx: &Ctx<'_>,
    ids: Vec<String>,
    from: &[InstanceState],
    kind: OpKind,
    to: InstanceState,
) -> Result<Value, TcError> {
    let ids = check_ids(ctx, ids, "InstanceIds")?;
    for inst in ctx.core.get_instances(ctx.account, NS, &ids).await? {
        ctx.check_region(&inst)?;
    }
    ctx.core
        .submit(ctx.account, NS, &ids, ctx.req, |inst| {
            let refuse = |state| DomainError::InstanceStateInvalid {
                id: inst.id.clone(),
                state,
            };
            if inst.state == InstanceState::Pending {
                return Err(refuse(InstanceState::Pending));
            }
            if inst.is_busy() {
                return Err(inst.busy_error());
            }
            if !from.contains(&inst.state) {
                return Err(refuse(inst.state));
            }
            Ok((kind.clone(), Some(to)))
        })
        .await?;
    Ok(json!({}))
}

/// Whether a stop is hard: `HARD`; `SOFT` and `SOFT_FIRST` (the default) are soft.
fn hard(stop_type: Option<&str>) -> Result<bool, TcError> {
    // Why: SOFT and SOFT_FIRST are one operation here: the sandbox's soft stop ends with a
    // kill once its grace period is over, which is SOFT_FIRST's "soft, then hard".
    match stop_type {
        None | Some("SOFT") | Some("SOFT_FIRST") => Ok(false),
        Some("HARD") => Ok(true),
        Some(other) => Err(invalid(
            "StopType",
            format!("`{other}` is not one of SOFT, HARD, SOFT_FIRST"),
        )),
    }
}

/// StartInstances: STOPPED instances only; they go STARTING, then RUNNING.
pub async fn start(ctx: &Ctx<'_>, params: Value) -> Result<Value, TcError> {
    let req: InstanceIdsRequest = decode(params)?;
    lifecycle(
        ctx,
        req.instance_ids,
        &[InstanceState::Stopped],
        OpKind::Start,
        InstanceState::Starting,
    )
    .await
}

/// StopInstances: RUNNING instances only; they go STOPPING, then STOPPED.
pub async fn stop(ctx: &Ctx<'_>, params: Value) -> Result<Value, TcError> {
    let req: StopInstancesRequest = decode(params)?;
    let force = hard(req.stop_type.as_deref())?;
    lifecycle(
        ctx,
        req.instance_ids,
        &[InstanceState::Running],
        OpKind::Stop { force },
        InstanceState::Stopping,
    )
    .await
}

/// RebootInstances: RUNNING instances only; they go REBOOTING, then RUNNING.
pub async fn reboot(ctx: &Ctx<'_>, params: Value) -> Result<Value, TcError> {
    let req: StopInstancesRequest = decode(params)?;
    let force = hard(req.stop_type.as_deref())?;
    lifecycle(
        ctx,
        req.instance_ids,
        &[InstanceState::Running],
        OpKind::Reboot { force },
        InstanceState::Rebooting,
    )
    .await
}

/// TerminateInstances.
///
/// Why: Lighthouse destroys only SHUTDOWN instances, the state IsolateInstances (returning a
/// paid instance) leaves them in. Nothing is billed here, so there is no isolation step and no
/// SHUTDOWN state: RUNNING, STOPPED and LAUNCH_FAILED instances are destroyed directly.
pub async fn terminate(ctx: &Ctx<'_>, params: Value) -> Result<Value, TcError> {
    let req: InstanceIdsRequest = decode(params)?;
    lifecycle(
        ctx,
        req.instance_ids,
        &[
            InstanceState::Running,
            InstanceState::Stopped,
            InstanceState::LaunchFailed,
        ],
        OpKind::Terminate,
        InstanceState::Terminating,
    )
    .await
}
