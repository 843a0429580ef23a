//! ECS instance actions: DescribeInstances, StartInstance, StopInstance, RebootInstance and
//! DeleteInstance. The lifecycle calls record one durable operation that a worker carries out;
//! on ECS a start or reboot is also what makes attached or detached key pairs take effect.

use super::{decode_params, json_list, page, Ctx, NS};
use crate::aliyun::ecs::dto::{
    instance_out, status_name, DescribeInstancesRequest, InstanceRequest,
};
use crate::aliyun::error::{AliError, EcsRefusal};
use keyplane_core::instance::{Instance, InstanceState, OpKind};
use keyplane_core::keypair::KeyPair;
use keyplane_core::query::{InstanceFilter, InstanceQuery};
use keyplane_core::service::{KeyPairFilter, KeyPairQuery};
use keyplane_core::DomainError;
use serde_json::{json, Value};
use std::collections::HashMap;

/// At most this many ids in DescribeInstances.
const MAX_DESCRIBE_IDS: usize = 100;
/// Pages hold at most this many.
const MAX_PAGE: i64 = 100;
/// The states a `Status` filter may name.
const STATUSES: &[&str] = &["Pending", "Running", "Starting", "Stopping", "Stopped"];

/// DescribeInstances: unknown ids are simply not returned.
pub async fn describe(ctx: &Ctx<'_>, params: &[(String, String)]) -> Result<Value, AliError> {
    let req: DescribeInstancesRequest = decode_params(params)?;
    let ids = describe_ids(req.instance_ids.as_deref())?;
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
    let filters = filters(ctx, &req, ips).await?;
    let query = InstanceQuery {
        ids,
        region: Some(req.region_id.clone()),
        filters,
        offset,
        limit,
        ..InstanceQuery::default()
    };
    let found = ctx.core.describe_instances(ctx.account, NS, &query).await?;
    let names = key_names(ctx, &req.region_id, &found.items).await?;
    let list: Vec<Value> = found
        .items
        .iter()
        .map(|i| {
            let first = i.key_ids.first().and_then(|id| names.get(id));
            instance_out(i, first.map_or("", String::as_str))
        })
        .collect();
    Ok(json!({
        "TotalCount": found.total,
        "PageNumber": number,
        "PageSize": size,
        "Instances": { "Instance": list },
    }))
}

/// `InstanceIds`, when given: a JSON list of at most [`MAX_DESCRIBE_IDS`].
fn describe_ids(raw: Option<&str>) -> Result<Option<Vec<String>>, AliError> {
    let Some(raw) = raw.filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let ids = json_list(raw).map_err(EcsRefusal::DescribeInstanceIds)?;
    if ids.len() > MAX_DESCRIBE_IDS {
        return Err(EcsRefusal::DescribeInstanceIds(format!(
            "at most {MAX_DESCRIBE_IDS} ids, not {}",
            ids.len()
        ))
        .into());
    }
    Ok(Some(ids))
}

/// The filters of a DescribeInstances request (`ips`: its private addresses, when given).
async fn filters(
    ctx: &Ctx<'_>,
    req: &DescribeInstancesRequest,
    ips: Option<Vec<String>>,
) -> Result<Vec<InstanceFilter>, AliError> {
    let given = |v: &Option<String>| v.clone().filter(|v| !v.is_empty());
    let mut filters = Vec::new();
    if let Some(ips) = ips {
        filters.push(InstanceFilter::PrivateIp(ips));
    }
    if let Some(p) = given(&req.instance_name) {
        filters.push(InstanceFilter::DisplayNameLike(p));
    }
    if let Some(s) = given(&req.status) {
        filters.push(InstanceFilter::State(states_named(&s)));
    }
    if let Some(zone) = given(&req.zone_id) {
        filters.push(InstanceFilter::Zone(vec![zone]));
    }
    if let Some(image) = given(&req.image_id) {
        filters.push(InstanceFilter::ImageId(vec![image]));
    }
    if let Some(t) = given(&req.instance_type) {
        filters.push(InstanceFilter::InstanceType(vec![t]));
    }
    if let Some(name) = given(&req.key_pair_name) {
        // The instances whose (first) key pair is the one of that name in the region.
        filters.push(match key_pair_named(ctx, &req.region_id, &name).await? {
            Some(kp) => InstanceFilter::FirstKey(kp.id),
            None => InstanceFilter::Nothing,
        });
    }
    Ok(filters)
}

/// The states ECS shows as `status`.
fn states_named(status: &str) -> Vec<InstanceState> {
    InstanceState::ALL
        .into_iter()
        .filter(|s| status_name(*s) == status)
        .collect()
}

/// The key pair named `name` in `region`, if there is one.
async fn key_pair_named(
    ctx: &Ctx<'_>,
    region: &str,
    name: &str,
) -> Result<Option<KeyPair>, AliError> {
    let query = KeyPairQuery {
        region: Some(region.to_string()),
        filters: vec![KeyPairFilter::KeyName(vec![name.to_string()])],
        limit: 1,
        ..KeyPairQuery::default()
    };
    let page = ctx.core.describe_key_pairs(ctx.account, NS, &query).await?;
    Ok(page.items.into_iter().next())
}

/// The names of the region's key pairs that are the first of `instances`, by id.
async fn key_names(
    ctx: &Ctx<'_>,
    region: &str,
    instances: &[Instance],
) -> Result<HashMap<String, String>, AliError> {
    let mut ids: Vec<String> = instances
        .iter()
        .filter_map(|i| i.key_ids.first().cloned())
        .collect();
    ids.sort();
    ids.dedup();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let query = KeyPairQuery {
        limit: ids.len(),
        ids: Some(ids),
        region: Some(region.to_string()),
        ..KeyPairQuery::default()
    };
    let page = ctx.core.describe_key_pairs(ctx.account, NS, &query).await?;
    Ok(page.items.into_iter().map(|k| (k.id, k.name)).collect())
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
        inst.check_region(region.as_deref())?;
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
