//! CVM instance actions: DescribeInstances, DescribeInstancesStatus, StartInstances,
//! StopInstances, RebootInstances, TerminateInstances. The lifecycle calls record one durable
//! asynchronous operation per instance (all or none) that a worker carries out later.

use super::Ctx;
use crate::common::answer::Answer;
use crate::common::params::decode;
use crate::tencent::cvm::dto::*;
use crate::tencent::cvm::error::CvmError;
use crate::tencent::wire::{hard_stop, invalid, non_empty, page, selection};
use keyplane_core::instance::{Instance, InstanceState, OpKind};
use keyplane_core::keypair::Namespace;
use keyplane_core::query::{InstanceFilter, InstanceQuery};
use keyplane_core::DomainError;
use serde_json::{json, Value};

const NS: Namespace = Namespace::Cvm;
/// At most this many instances in one call.
pub const MAX_IDS: usize = 100;

/// Check a list of instance ids for presence, shape, duplicates and count.
pub fn check_ids(ctx: &Ctx<'_>, ids: Vec<String>, param: &str) -> Result<Vec<String>, CvmError> {
    let ids = non_empty(ids, param)?;
    ctx.core.check_instance_ids(NS, param, &ids, MAX_IDS)?;
    Ok(ids)
}

/// The account's instances in the request's region, oldest first: those of `ids` when
/// given (read by id), else all of them.
async fn selected(ctx: &Ctx<'_>, ids: Option<&[String]>) -> Result<Vec<Instance>, CvmError> {
    let all = match ids {
        Some(ids) => ctx.core.instances_by_ids(ctx.account, NS, ids).await?,
        None => ctx.core.list_instances(ctx.account, NS).await?,
    };
    Ok(all.into_iter().filter(|i| i.region == ctx.region).collect())
}

fn parse_time(param: &str, v: &str) -> Result<i64, CvmError> {
    time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339)
        .map(|t| t.unix_timestamp())
        .map_err(|_| {
            invalid(
                param,
                format!("`{v}` is not a time like 2024-01-01T00:00:00Z"),
            )
        })
}

/// `f` as the store's filter; unknown filter names and malformed values are refused.
fn filter_of(f: &Filter) -> Result<Option<InstanceFilter>, CvmError> {
    let values = || f.values.clone();
    let times = |param: &str| -> Result<Vec<i64>, CvmError> {
        f.values.iter().map(|v| parse_time(param, v)).collect()
    };
    // Constant filters: every instance here has these values, or none has.
    let all_or_none = |holds: bool| (!holds).then_some(InstanceFilter::Nothing);
    Ok(match f.name.as_str() {
        "zone" => Some(InstanceFilter::Zone(values())),
        "project-id" => {
            for v in &f.values {
                v.parse::<i64>()
                    .map_err(|_| invalid("project-id", format!("`{v}` is not an integer")))?;
            }
            all_or_none(f.values.iter().any(|v| v == "0"))
        }
        "instance-id" => Some(InstanceFilter::Id(values())),
        "uuid" => Some(InstanceFilter::Uuid(values())),
        "instance-name" => Some(InstanceFilter::NameContains(values())),
        "instance-charge-type" => all_or_none(f.values.iter().any(|v| v == "POSTPAID_BY_HOUR")),
        "instance-state" => Some(InstanceFilter::State(
            f.values
                .iter()
                .filter_map(|v| InstanceState::parse(v))
                .collect(),
        )),
        "private-ip-address" => Some(InstanceFilter::PrivateIp(values())),
        "creation-start-time" => {
            let earliest = times("creation-start-time")?.into_iter().min();
            earliest.map(InstanceFilter::CreatedFrom)
        }
        "creation-end-time" => {
            let latest = times("creation-end-time")?.into_iter().max();
            latest.map(InstanceFilter::CreatedUntil)
        }
        // Documented, but nothing here has public or IPv6 addresses, dedicated hosts or
        // clusters, VPCs, security groups or tags.
        "public-ip-address"
        | "ipv6-address"
        | "host-id"
        | "dedicated-cluster-id"
        | "vpc-id"
        | "subnet-id"
        | "security-group-id"
        | "tag-key"
        | "tag-value" => Some(InstanceFilter::Nothing),
        name if name.starts_with("tag:") && name.len() > 4 => Some(InstanceFilter::Nothing),
        name => {
            return Err(CvmError::Domain(DomainError::UnknownFilter {
                name: name.into(),
            }));
        }
    })
}

/// DescribeInstances: unknown ids are simply not returned.
pub async fn describe(ctx: &Ctx<'_>, params: Value) -> Result<Answer, CvmError> {
    let req: DescribeInstancesRequest = decode(params)?;
    let sel = selection(
        req.instance_ids,
        "InstanceIds",
        req.filters,
        5,
        (req.offset, req.limit),
        |ids| ctx.core.check_instance_ids(NS, "InstanceIds", ids, MAX_IDS),
    )?;
    let mut pushed = Vec::with_capacity(sel.filters.len());
    for f in &sel.filters {
        pushed.extend(filter_of(f)?);
    }
    let query = InstanceQuery {
        ids: sel.ids,
        region: Some(ctx.region.to_string()),
        filters: pushed,
        offset: sel.offset,
        limit: sel.limit,
        ..InstanceQuery::default()
    };
    let found = ctx.core.describe_instances(ctx.account, NS, &query).await?;
    let instance_set = found
        .items
        .into_iter()
        .map(InstanceOut::from_domain)
        .collect();
    Ok(Answer::of(&DescribeInstancesOut {
        total_count: found.total,
        instance_set,
    }))
}

/// DescribeInstancesStatus.
pub async fn status(ctx: &Ctx<'_>, params: Value) -> Result<Value, CvmError> {
    let req: DescribeInstancesStatusRequest = decode(params)?;
    let ids = req.instance_ids.filter(|v| !v.is_empty());
    if let Some(ids) = &ids {
        ctx.core
            .check_instance_ids(NS, "InstanceIds", ids, MAX_IDS)?;
    }
    let (offset, limit) = page(req.offset, req.limit)?;
    let matching: Vec<Instance> = selected(ctx, ids.as_deref()).await?;
    let total = matching.len();
    let set: Vec<Value> = matching
        .into_iter()
        .skip(offset)
        .take(limit)
        .map(|i| json!({ "InstanceId": i.id, "InstanceState": i.state.as_str() }))
        .collect();
    Ok(json!({ "TotalCount": total, "InstanceStatusSet": set }))
}

/// Record `kind` on every instance, all or none, when each is in one of the `from` states and
/// has no operation in progress; each enters `to` now.
async fn lifecycle(
    ctx: &Ctx<'_>,
    ids: &[String],
    from: &[InstanceState],
    kind: OpKind,
    to: InstanceState,
) -> Result<Value, CvmError> {
    let region = ctx.region.to_string();
    ctx.core
        .submit(ctx.account, NS, ids, ctx.req, |inst| {
            inst.check_region(Some(&region))?;
            // A transitional state (PENDING, STOPPING, ...) answers with its own code; a
            // settled one with an operation in progress (a key binding, which may have stopped
            // it for now) is "in progress", whether or not its state would allow the call.
            if inst.is_busy() && inst.state.is_settled() {
                return Err(inst.busy_error());
            }
            if !from.contains(&inst.state) {
                return Err(DomainError::InstanceStateInvalid {
                    id: inst.id.clone(),
                    state: inst.state,
                });
            }
            if inst.is_busy() {
                return Err(inst.busy_error());
            }
            Ok((kind.clone(), Some(to)))
        })
        .await?;
    Ok(json!({}))
}

/// Whether a stop is hard, from `StopType` and the deprecated flag (`ForceStop` /
/// `ForceReboot`), which cannot be combined.
fn hard(flag_name: &str, flag: Option<bool>, stop_type: Option<&str>) -> Result<bool, CvmError> {
    if flag.is_some() && stop_type.is_some() {
        return Err(CvmError::InvalidParameter(format!(
            "The parameters `{flag_name}` and `StopType` cannot be given together; `{flag_name}` is deprecated, use `StopType`."
        )));
    }
    // The deprecated flag means "soft first", which is a soft stop here (see `hard_stop`).
    hard_stop(stop_type)
}

/// StartInstances: STOPPED instances only.
pub async fn start(ctx: &Ctx<'_>, params: Value) -> Result<Value, CvmError> {
    let req: StartInstancesRequest = decode(params)?;
    let ids = check_ids(ctx, req.instance_ids, "InstanceIds")?;
    lifecycle(
        ctx,
        &ids,
        &[InstanceState::Stopped],
        OpKind::Start,
        InstanceState::Starting,
    )
    .await
}

/// StopInstances: RUNNING instances only.
pub async fn stop(ctx: &Ctx<'_>, params: Value) -> Result<Value, CvmError> {
    let req: StopInstancesRequest = decode(params)?;
    let ids = check_ids(ctx, req.instance_ids, "InstanceIds")?;
    let force = hard("ForceStop", req.force_stop, req.stop_type.as_deref())?;
    match req.stopped_mode.as_deref() {
        None | Some("KEEP_CHARGING") | Some("STOP_CHARGING") => {}
        Some(other) => {
            return Err(invalid(
                "StoppedMode",
                format!("`{other}` is not one of KEEP_CHARGING, STOP_CHARGING"),
            ))
        }
    }
    lifecycle(
        ctx,
        &ids,
        &[InstanceState::Running],
        OpKind::Stop { force },
        InstanceState::Stopping,
    )
    .await
}

/// RebootInstances: RUNNING instances only.
pub async fn reboot(ctx: &Ctx<'_>, params: Value) -> Result<Value, CvmError> {
    let req: RebootInstancesRequest = decode(params)?;
    let ids = check_ids(ctx, req.instance_ids, "InstanceIds")?;
    let force = hard("ForceReboot", req.force_reboot, req.stop_type.as_deref())?;
    lifecycle(
        ctx,
        &ids,
        &[InstanceState::Running],
        OpKind::Reboot { force },
        InstanceState::Rebooting,
    )
    .await
}

/// TerminateInstances: RUNNING, STOPPED or LAUNCH_FAILED instances.
pub async fn terminate(ctx: &Ctx<'_>, params: Value) -> Result<Value, CvmError> {
    let req: TerminateInstancesRequest = decode(params)?;
    let ids = check_ids(ctx, req.instance_ids, "InstanceIds")?;
    lifecycle(
        ctx,
        &ids,
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
