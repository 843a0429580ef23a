//! ResetInstancesPassword (CVM 2017-03-12): one durable asynchronous operation per instance,
//! all or none; the answer carries only the RequestId, and LatestOperation/LatestOperationState
//! track it. The password rule is the one CVM shares with Lighthouse ([`crate::tencent::password`]).

use super::instances::check_ids;
use super::Ctx;
use crate::common::params::{decode, lenient_bool};
use crate::tencent::cvm::error::{CvmError, CvmRefusal};
use crate::tencent::password::{check_reset, check_user_name_shape, MAX_USER_NAME};
use crate::tencent::wire::required;
use keyplane_core::keypair::Namespace;
use keyplane_core::password::ResetRule;
use serde::Deserialize;
use serde_json::{json, Value};

const NS: Namespace = Namespace::Cvm;
/// ResetInstancesPassword request.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct ResetRequest {
    #[serde(default)]
    instance_ids: Vec<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    user_name: Option<String>,
    #[serde(default, deserialize_with = "lenient_bool")]
    force_stop: Option<bool>,
}

/// ResetInstancesPassword: STOPPED instances, or RUNNING ones with `ForceStop` (shut down, the
/// password replaced, started again). Without ForceStop a running instance is refused with
/// `UnsupportedOperation.InstanceStateRunning`, as the API documents.
pub async fn reset(ctx: &Ctx<'_>, params: Value) -> Result<Value, CvmError> {
    let req: ResetRequest = decode(params)?;
    let ids = check_ids(ctx, req.instance_ids, "InstanceIds")?;
    let password = required(req.password.filter(|p| !p.is_empty()), "Password")?;
    check_user_name_shape(req.user_name.as_deref(), |len| {
        CvmRefusal::ValueTooLong {
            param: "UserName".into(),
            max: MAX_USER_NAME,
            len,
        }
        .into()
    })?;
    let instances = ctx
        .core
        .get_instances_in(ctx.account, NS, &ids, Some(ctx.region))
        .await?;
    check_reset(&password, req.user_name.as_deref(), &instances)?;
    let rule = ResetRule::Cvm {
        force_stop: req.force_stop.unwrap_or(false),
    };
    ctx.core
        .submit_password_reset(ctx.account, NS, &ids, rule, &password, ctx.req)
        .await?;
    Ok(json!({}))
}
