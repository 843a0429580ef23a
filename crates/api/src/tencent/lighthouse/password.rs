//! ResetInstancesPassword (Lighthouse 2020-03-24): RUNNING or STOPPED instances, one durable
//! asynchronous operation per instance, all or none. As the API documents, a running instance
//! is shut down during the operation (a normal shutdown, forced if it does not finish); it
//! then stays STOPPED, its new password in place for the next start.

use super::error::LighthouseRefusal;
use super::{check_ids, settled_instances, Ctx, NS};
use crate::common::params::decode;
use crate::tencent::lighthouse::error::LighthouseError;
use crate::tencent::password::{check_reset, check_user_name_shape, MAX_USER_NAME};
use crate::tencent::wire::required;
use keyplane_core::password::ResetRule;
use serde::Deserialize;
use serde_json::{json, Value};

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
}

/// ResetInstancesPassword.
// Why: the doc says only that a running instance is shut down ("本接口操作过程中会对实例进行关机
// 操作"), never that it is started again, as for OFFLINE key binding: it ends STOPPED and the
// caller starts it.
pub async fn reset(ctx: &Ctx<'_>, params: Value) -> Result<Value, LighthouseError> {
    let req: ResetRequest = decode(params)?;
    let ids = check_ids(ctx, req.instance_ids, "InstanceIds")?;
    let password = required(req.password.filter(|p| !p.is_empty()), "Password")?;
    check_user_name_shape(req.user_name.as_deref(), |len| {
        LighthouseRefusal::ValueTooLong {
            param: "UserName".into(),
            max: MAX_USER_NAME,
            len,
        }
        .into()
    })?;
    let instances = settled_instances(ctx, &ids).await?;
    check_reset(&password, req.user_name.as_deref(), &instances)?;
    ctx.core
        .submit_password_reset(
            ctx.account,
            NS,
            &ids,
            ResetRule::Lighthouse,
            &password,
            ctx.req,
        )
        .await?;
    Ok(json!({}))
}
