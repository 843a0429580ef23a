//! ECS instance actions: DescribeInstances, StartInstance, StopInstance, RebootInstance and
//! DeleteInstance. The lifecycle calls record one durable operation that a worker carries out;
//! on ECS a start or reboot is also what makes attached or detached key pairs take effect.

use super::{decode_params, json_list, page, regional_key_pairs, Ctx, NS};
use crate::aliyun_rpc::dto::{
    instance_out, status_name, wildcard_match, DescribeInstancesRequest, InstanceRequest,
};
use crate::aliyun_rpc::error::{AliError, EcsRefusal};
use keyplane_core::instance::{Instance, InstanceState, OpKind};
use keyplane_core::DomainError;
use serde_json::{json, Value};

/// At most this many ids in DescribeInstances.
const MAX_DESCRIBE_IDS: usize = 100;
/// Pages hold at most this many.
const MAX_PAGE: i64 = 100;
/// The states a `Status` filter may name.
const STATUSES: &[&str] = &["Pending", "Running", "Starting", "Stopping", "Stopped"];

/// DescribeInstances: unknown ids are simply not returned.
pub async fn describe(ctx: &Ctx<'_>, params: &[(String, String)]) -> Result<Value, AliError> {
    let req: DescribeInstancesRequest = decode_params(params)?;
    let ids = match req.instance_ids.as_deref().filter(|s| !s.is_empty()) {
        Some(raw) => {
            let ids = json_list(raw).map_err(EcsRefusal::DescribeInstanceIds)?;
            if ids.len() > MAX_DESCRIBE_IDS {
                return Err(EcsRefusal::DescribeInstanceIds(format!(
                    "at most {MAX_DESCRIBE_IDS} ids, not {}",
                    ids.len()
                ))
                .into());
            }
            Some(ids)
        }
        None => None,
    };
    let ips = match req
        .private_ip_addresses
        .as_deref()
        .filter(|s| !s.is_empty())
    {
        Some(raw) => Some(json_list(raw).map_err(|e| super::invalid("PrivateIpAddresses", e))?),
        None => None,
    };
    if let Some(s) = req.status.as_deref().filter(|s| !STATUSES.contains(s)) {
        return Err(EcsRefusal::Status(s.to_string()).into());
    }
    let (offset, limit, number, size) = page(req.page_number, req.page_size, MAX_PAGE)?;
    if req.dry_run == Some(true) {
        return Err(EcsRefusal::DryRun.into());
    }
    let keys = regional_key_pairs(ctx, &req.region_id).await?;
    let key_name = |inst: &Instance| {
        inst.key_ids
            .first()
            .and_then(|id| keys.iter().find(|k| &k.id == id))
            .map(|k| k.name.clone())
            .unwrap_or_default()
    };
    let eq = |want: &Option<String>, have: &str| {
        want.as_deref().is_none_or(|w| w.is_empty() || w == have)
    };
    let matching: Vec<Instance> = ctx
        .core
        .list_instances(ctx.account, NS)
        .await?
        .into_iter()
        .filter(|i| i.region == req.region_id)
        .filter(|i| ids.as_ref().is_none_or(|ids| ids.contains(&i.id)))
        .filter(|i| ips.as_ref().is_none_or(|ips| ips.contains(&i.private_ip)))
        .filter(|i| {
            let shown = if i.name.is_empty() { &i.id } else { &i.name };
            req.instance_name
                .as_deref()
                .is_none_or(|p| p.is_empty() || wildcard_match(p, shown))
        })
        .filter(|i| eq(&req.status, status_name(i.state)))
        .filter(|i| eq(&req.zone_id, &i.zone))
        .filter(|i| eq(&req.image_id, &i.image_id))
        .filter(|i| eq(&req.instance_type, &i.instance_type))
        .filter(|i| eq(&req.key_pair_name, &key_name(i)))
        .collect();
    let list: Vec<Value> = matching
        .iter()
        .skip(offset)
        .take(limit)
        .map(|i| instance_out(i, &key_name(i)))
        .collect();
    Ok(json!({
        "TotalCount": matching.len(),
        "PageNumber": number,
        "PageSize": size,
        "Instances": { "Instance": list },
    }))
}

/// Record `kind` on the instance when it is in one of the `from` states and has no operation in
/// progress; it enters `to` now.
async fn lifecycle(
    ctx: &Ctx<'_>,
    req: &InstanceRequest,
    from: &[InstanceState],
    kind: OpKind,
    to: InstanceState,
) -> Result<Value, AliError> {
    let region = req.region_id.clone().filter(|r| !r.is_empty());
    let plan = |inst: &Instance| {
        if region.as_ref().is_some_and(|r| *r != inst.region) {
            return Err(DomainError::InstanceNotFound {
                id: inst.id.clone(),
            });
        }
        // An operation in progress is the reason, whatever state it leaves the instance in
        // meanwhile (ECS answers both with IncorrectInstanceStatus; the message says which).
        if inst.is_busy() {
            return Err(inst.busy_error());
        }
        if !from.contains(&inst.state) {
            return Err(DomainError::InstanceStateInvalid {
                id: inst.id.clone(),
                state: inst.state,
            });
        }
        Ok((kind.clone(), Some(to)))
    };
    let ids = [req.instance_id.clone()];
    if req.dry_run == Some(true) {
        let inst = ctx
            .core
            .get_instances(ctx.account, NS, &ids)
            .await?
            .remove(0);
        plan(&inst)?;
        return Err(EcsRefusal::DryRun.into());
    }
    ctx.core
        .submit(ctx.account, NS, &ids, ctx.req, plan)
        .await?;
    ctx.wake.notify_one();
    Ok(json!({}))
}

/// StartInstance: Stopped instances only.
pub async fn start(ctx: &Ctx<'_>, params: &[(String, String)]) -> Result<Value, AliError> {
    let req: InstanceRequest = decode_params(params)?;
    let from = [InstanceState::Stopped, InstanceState::LaunchFailed];
    lifecycle(ctx, &req, &from, OpKind::Start, InstanceState::Starting).await
}

/// StopInstance: Running instances only; `ForceStop` stops without a grace period.
pub async fn stop(ctx: &Ctx<'_>, params: &[(String, String)]) -> Result<Value, AliError> {
    let req: InstanceRequest = decode_params(params)?;
    match req.stopped_mode.as_deref() {
        None | Some("") | Some("KeepCharging") | Some("StopCharging") | Some("Not-applicable") => {}
        Some(other) => {
            return Err(super::invalid(
                "StoppedMode",
                format!("`{other}` is not KeepCharging or StopCharging"),
            ))
        }
    }
    let kind = OpKind::Stop {
        force: req.force_stop.unwrap_or(false),
    };
    let from = [InstanceState::Running];
    lifecycle(ctx, &req, &from, kind, InstanceState::Stopping).await
}

/// RebootInstance: Running instances only; key pairs attached or detached since the last
/// start take effect.
pub async fn reboot(ctx: &Ctx<'_>, params: &[(String, String)]) -> Result<Value, AliError> {
    let req: InstanceRequest = decode_params(params)?;
    let kind = OpKind::Reboot {
        force: req.force_stop.unwrap_or(false),
    };
    let from = [InstanceState::Running];
    lifecycle(ctx, &req, &from, kind, InstanceState::Rebooting).await
}

/// DeleteInstance: Stopped instances, or Running ones with `Force=true`.
pub async fn delete(ctx: &Ctx<'_>, params: &[(String, String)]) -> Result<Value, AliError> {
    let req: InstanceRequest = decode_params(params)?;
    let mut from = vec![InstanceState::Stopped, InstanceState::LaunchFailed];
    if req.force == Some(true) {
        from.push(InstanceState::Running);
    }
    lifecycle(
        ctx,
        &req,
        &from,
        OpKind::Terminate,
        InstanceState::Terminating,
    )
    .await
}
