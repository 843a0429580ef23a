//! AttachKeyPair and DetachKeyPair: one durable operation per instance under ECS's rule (any
//! settled Linux instance; the change is recorded at once and takes effect at the next
//! StartInstance or RebootInstance). The answer comes once every instance's operation is
//! finished, so its per-instance `Results` are true.

use super::{decode_params, json_list, key_pair_by_name, Ctx, NS};
use crate::aliyun::ecs::dto::BindKeyPairRequest;
use crate::aliyun::error::{AliError, EcsRefusal};
use keyplane_core::binding::{BindChange, BindRule};
use keyplane_core::workflow::Awaited;
use keyplane_core::DomainError;
use serde_json::{json, Value};
use std::time::Duration;

/// At most this many instances in one call.
pub const MAX_IDS: usize = 50;
/// How long the answer waits for the operations it started.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(10);

fn check_ids(raw: &str) -> Result<Vec<String>, AliError> {
    let ids = json_list(raw).map_err(EcsRefusal::BindInstanceIds)?;
    if ids.is_empty() || ids.len() > MAX_IDS {
        return Err(EcsRefusal::BindInstanceIds(format!(
            "it must hold 1 to {MAX_IDS} instance ids, not {}",
            ids.len()
        ))
        .into());
    }
    for (i, id) in ids.iter().enumerate() {
        if ids[..i].contains(id) {
            return Err(EcsRefusal::BindInstanceIds(format!("`{id}` is given twice")).into());
        }
    }
    Ok(ids)
}

/// Wait until the operation this request started on `id` is no longer in progress; its
/// failure, if it failed.
pub(crate) async fn settle(ctx: &Ctx<'_>, id: &str) -> Result<(), AliError> {
    let request_id = ctx.req.request_id.as_str();
    let awaited = ctx
        .core
        .await_operation(id, request_id, SETTLE_TIMEOUT)
        .await?;
    if let Some(why) = awaited.failure(request_id) {
        return Err(DomainError::Internal(why).into());
    }
    if let Awaited::InProgress(_) = awaited {
        // Why: the operation is durable and already passed every rule; the worker only
        // records the binding, so it will succeed. Answering success beats holding the
        // client past its own timeout.
        tracing::warn!(instance = %id, "binding still in progress when answering");
    }
    Ok(())
}

fn result_entry(id: &str, outcome: &Result<(), AliError>) -> Value {
    match outcome {
        Ok(()) => json!({
            "Code": "200", "InstanceId": id, "Message": "successful", "Success": "true",
        }),
        Err(e) => json!({
            "Code": e.code().0, "InstanceId": id, "Message": e.message(), "Success": "false",
        }),
    }
}

async fn bind(
    ctx: &Ctx<'_>,
    params: &[(String, String)],
    change: fn(Vec<String>) -> BindChange,
) -> Result<Value, AliError> {
    let req: BindKeyPairRequest = decode_params(params)?;
    let ids = check_ids(&req.instance_ids)?;
    let key = key_pair_by_name(ctx, &req.region_id, &req.key_pair_name).await?;
    let instances = ctx.core.instances_by_ids(ctx.account, NS, &ids).await?;
    let mut outcomes: Vec<(String, Result<(), AliError>)> = Vec::with_capacity(ids.len());
    for id in ids {
        let found = instances.iter().find(|i| i.id == id);
        let outcome = match found.map(|i| i.check_region(Some(&req.region_id))) {
            None => Err(DomainError::InstanceNotFound { id: id.clone() }.into()),
            Some(Err(e)) => Err(e.into()),
            Some(Ok(())) => ctx
                .core
                .submit_bind(
                    ctx.account,
                    NS,
                    std::slice::from_ref(&id),
                    BindRule::Ecs,
                    change(vec![key.id.clone()]),
                    ctx.req,
                )
                .await
                .map_err(AliError::from),
        };
        outcomes.push((id, outcome));
    }
    for (id, outcome) in &mut outcomes {
        if outcome.is_ok() {
            *outcome = settle(ctx, id).await;
        }
    }
    // Why: ECS documents AttachKeyPair's refusals (a Windows instance: 403
    // DependencyViolation.WindowsInstance) as errors of the call, and its per-instance Results
    // for batches; when no instance succeeded the first refusal is the call's answer, so a
    // single-instance call fails the way the documentation shows.
    if let Some((_, Err(first))) = outcomes.iter().find(|(_, o)| o.is_err()) {
        if outcomes.iter().all(|(_, o)| o.is_err()) {
            return Err(first.clone());
        }
    }
    let failed = outcomes.iter().filter(|(_, o)| o.is_err()).count();
    let results: Vec<Value> = outcomes.iter().map(|(id, o)| result_entry(id, o)).collect();
    // The live API sends the counts as strings.
    Ok(json!({
        "KeyPairName": key.name,
        "TotalCount": outcomes.len().to_string(),
        "FailCount": failed.to_string(),
        "Results": { "Result": results },
    }))
}

/// AttachKeyPair: the key pair replaces any key pair bound before; password login is off from
/// the next start or reboot.
pub async fn attach(ctx: &Ctx<'_>, params: &[(String, String)]) -> Result<Value, AliError> {
    bind(ctx, params, BindChange::Replace).await
}

/// DetachKeyPair: password login is back from the next start or reboot.
pub async fn detach(ctx: &Ctx<'_>, params: &[(String, String)]) -> Result<Value, AliError> {
    bind(ctx, params, BindChange::Remove).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_ids_are_a_json_array_of_at_most_50() {
        assert_eq!(check_ids("[\"i-a\"]").unwrap(), vec!["i-a"]);
        let many: Vec<String> = (0..51).map(|i| format!("\"i-{i}\"")).collect();
        for bad in [
            "i-a".to_string(),
            "[]".to_string(),
            "[\"i-a\",\"i-a\"]".to_string(),
            format!("[{}]", many.join(",")),
        ] {
            let e = check_ids(&bad).unwrap_err();
            assert_eq!(e.code(), ("DependencyViolation.IoOptimize", 400), "{bad}");
        }
    }
}
