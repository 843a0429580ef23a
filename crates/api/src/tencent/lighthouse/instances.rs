//! Lighthouse instance actions: DescribeInstances, StartInstances, StopInstances,
//! RebootInstances, TerminateInstances. The lifecycle calls record one durable asynchronous
//! operation per instance (all or none) that a worker carries out later.

use super::dto::{DescribeInstancesRequest, InstanceIdsRequest, StopInstancesRequest};
use super::error::LighthouseRefusal;
use super::out::InstanceOut;
use super::{check_ids, Ctx, MAX_IDS, NS};
use crate::common::params::decode;
use crate::tencent::lighthouse::error::LighthouseError;
use crate::tencent::wire::{hard_stop, invalid, selection, Filter};
use keyplane_core::instance::{InstanceState, OpKind};
use keyplane_core::query::{InstanceFilter, InstanceOrder, InstanceQuery};
use keyplane_core::DomainError;
use serde_json::{json, Value};

/// `f` as the store's filter; unknown filter names are refused.
fn filter_of(f: &Filter) -> Result<InstanceFilter, LighthouseError> {
    let values = || f.values.clone();
    Ok(match f.name.as_str() {
        "instance-name" => InstanceFilter::Name(values()),
        "private-ip-address" => InstanceFilter::PrivateIp(values()),
        "zone" => InstanceFilter::Zone(values()),
        "instance-state" => InstanceFilter::State(
            f.values
                .iter()
                .filter_map(|v| InstanceState::parse(v))
                .collect(),
        ),
        "bundle-id" => InstanceFilter::InstanceType(values()),
        // Documented, but sandbox instances have no public address and carry no tags.
        "public-ip-address" | "tag-key" | "tag-value" => InstanceFilter::Nothing,
        name if name.starts_with("tag:") && name.len() > 4 => InstanceFilter::Nothing,
        name => {
            return Err(LighthouseError::Domain(DomainError::UnknownFilter {
                name: name.into(),
            }))
        }
    })
}

/// The order as documented: without OrderField, newest first; with `EXPIRED_TIME`, by expiry.
fn order(field: Option<&str>, order: Option<&str>) -> Result<InstanceOrder, LighthouseError> {
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
        None => Ok(InstanceOrder::Newest),
        // Why: no expiry is kept (nothing is billed); instances bought for the same period
        // expire in the order they were created, so that is the order used.
        Some("EXPIRED_TIME") if descending => Ok(InstanceOrder::NewestReversed),
        Some("EXPIRED_TIME") => Ok(InstanceOrder::Oldest),
        Some(other) => Err(invalid(
            "OrderField",
            format!("`{other}` is not EXPIRED_TIME"),
        )),
    }
}

/// DescribeInstances: ids not found are simply not returned.
pub async fn describe(ctx: &Ctx<'_>, params: Value) -> Result<Value, LighthouseError> {
    let req: DescribeInstancesRequest = decode(params)?;
    let sel = selection(
        req.instance_ids,
        "InstanceIds",
        req.filters,
        100,
        (req.offset, req.limit),
        |ids| ctx.core.check_instance_ids(NS, "InstanceIds", ids, MAX_IDS),
    )?;
    let filters = sel
        .filters
        .iter()
        .map(filter_of)
        .collect::<Result<_, _>>()?;
    let query = InstanceQuery {
        ids: sel.ids,
        region: Some(ctx.region().to_string()),
        filters,
        order: order(req.order_field.as_deref(), req.order.as_deref())?,
        offset: sel.offset,
        limit: sel.limit,
    };
    let found = ctx.core.describe_instances(ctx.account, NS, &query).await?;
    let set: Vec<InstanceOut> = found
        .items
        .into_iter()
        .map(InstanceOut::from_domain)
        .collect();
    Ok(json!({ "TotalCount": found.total, "InstanceSet": set }))
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
) -> Result<Value, LighthouseError> {
    let ids = check_ids(ctx, ids, "InstanceIds")?;
    ctx.core
        .get_instances_in(ctx.account, NS, &ids, ctx.region)
        .await?;
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

/// StartInstances: STOPPED instances only; they go STARTING, then RUNNING.
pub async fn start(ctx: &Ctx<'_>, params: Value) -> Result<Value, LighthouseError> {
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
pub async fn stop(ctx: &Ctx<'_>, params: Value) -> Result<Value, LighthouseError> {
    let req: StopInstancesRequest = decode(params)?;
    let force = hard_stop(req.stop_type.as_deref())?;
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
pub async fn reboot(ctx: &Ctx<'_>, params: Value) -> Result<Value, LighthouseError> {
    let req: StopInstancesRequest = decode(params)?;
    let force = hard_stop(req.stop_type.as_deref())?;
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
pub async fn terminate(ctx: &Ctx<'_>, params: Value) -> Result<Value, LighthouseError> {
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
