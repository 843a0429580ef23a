//! Alibaba Cloud RPC APIs: ECS, Version 2014-05-26, and ActionTrail, Version 2020-07-06
//! ([`actiontrail`]), told apart by their `Version`. Both take the classic HMAC-SHA1 signature
//! (query or form parameters; `aliyun-python-sdk-ecs`) and ACS3-HMAC-SHA256 (the Tea SDKs,
//! `alibabacloud-ecs20140526`, `alibabacloud-actiontrail20200706`). Errors use HTTP 4xx/5xx
//! with `{RequestId, HostId, Code, Message, Recommend}`, because the Alibaba SDKs decide
//! success by the status alone.

pub mod actiontrail;
pub mod auth;
pub mod dto;
pub mod error;
pub mod handlers;
pub mod render;
pub mod router;
pub mod signature;

use crate::common::audit::Trail;
use crate::common::request::{new_request_id, RawRequest};
use crate::common::server::AppState;
use auth::{authenticate, claim, Authenticated};
use axum::response::Response;
use error::AliError;
use handlers::{attribute, bind, instances, keypairs, launch, Ctx};
use router::{EcsAction, Product, REGIONS, VERSION};
use serde_json::Value;
use tracing::{info, warn, Instrument};

/// Serve one Alibaba Cloud RPC request.
pub async fn handle(state: &AppState, raw: &RawRequest) -> Response {
    // Alibaba Cloud request ids are upper-case UUIDs.
    let request_id = new_request_id().to_uppercase();
    let claimed = claim(raw);
    let product = Product::claimed(raw);
    let span = tracing::info_span!(
        "request",
        dialect = product.span_name(),
        request_id = %request_id,
        action = claimed.action.as_deref().unwrap_or(""),
        access_key_id = claimed.access_key_id.as_deref().unwrap_or(""),
    );
    async {
        let started = std::time::Instant::now();
        let action = claimed.action.clone().unwrap_or_default();
        let mut trail = Trail::new(product.dialect(), &request_id, raw);
        let result = process(state, raw, &mut trail).await;
        let elapsed = started.elapsed();
        let micros = elapsed.as_micros() as u64;
        let known = product.action_name(&action);
        let record = |code: &str| {
            let secs = elapsed.as_secs_f64();
            let dialect = product.dialect();
            state.core.metrics().request(dialect, known, code, secs);
        };
        match result {
            Ok(fields) => {
                info!(micros, "ok");
                record("ok");
                render::success(&action, &request_id, fields, claimed.format)
            }
            Err(e) => {
                let (code, status) = e.code();
                if let AliError::Domain(keyplane_core::DomainError::Internal(detail)) = &e {
                    warn!(micros, code, status, detail = %detail, "failed");
                } else {
                    info!(micros, code, status, "refused");
                }
                record(code);
                let key_id = claimed.access_key_id.as_deref();
                let message = e.message();
                trail
                    .refused(state, raw, Some(action.as_str()), key_id, code, &message)
                    .await;
                render::failure(&request_id, &e, claimed.format, product.host())
            }
        }
    }
    .instrument(span)
    .await
}

async fn process(state: &AppState, raw: &RawRequest, trail: &mut Trail) -> Result<Value, AliError> {
    if let Some(m) = raw.oversized_message() {
        return Err(AliError::InvalidParameter(m));
    }
    let auth = authenticate(state, raw).await?;
    let region = auth
        .params
        .iter()
        .find(|(k, _)| k == "RegionId")
        .map(|(_, v)| v.as_str());
    trail.signed(
        &auth.account,
        &auth.account.access_key_id,
        &auth.action,
        region,
    );
    match Product::from_version(&auth.version) {
        Some(Product::Ecs) => ecs(state, &auth, &trail.meta).await,
        Some(Product::ActionTrail) => actiontrail::dispatch(state, &auth).await,
        None => Err(AliError::InvalidVersion(format!(
            "Specified parameter Version `{}` is not valid; ECS is served at {VERSION}, ActionTrail at {}.",
            auth.version,
            router::ACTIONTRAIL_VERSION
        ))),
    }
}

/// Serve one authenticated ECS request.
async fn ecs(
    state: &AppState,
    auth: &Authenticated,
    req: &keyplane_core::RequestMeta,
) -> Result<Value, AliError> {
    let action = EcsAction::parse(&auth.action)
        .ok_or_else(|| AliError::InvalidAction(auth.action.clone()))?;
    let region = auth
        .params
        .iter()
        .find(|(k, _)| k == "RegionId")
        .map(|(_, v)| v.as_str());
    match region {
        Some(r) if !REGIONS.contains(&r) => return Err(AliError::InvalidRegion(r.to_string())),
        None | Some("") if !action.is_instance_action() => {
            return Err(AliError::MissingParameter("RegionId".into()))
        }
        _ => {}
    }
    if !state
        .limiter
        .check(&auth.account.id, &format!("ecs.{}", action.name()))
    {
        return Err(AliError::Throttling(action.name().into()));
    }
    let ctx = Ctx {
        core: &state.core,
        account: &auth.account,
        req,
        wake: &state.wake,
    };
    let p = &auth.params;
    match action {
        EcsAction::CreateKeyPair => keypairs::create(&ctx, p).await,
        EcsAction::ImportKeyPair => keypairs::import(&ctx, p).await,
        EcsAction::DescribeKeyPairs => keypairs::describe(&ctx, p).await,
        EcsAction::DeleteKeyPairs => keypairs::delete(&ctx, p).await,
        EcsAction::AttachKeyPair => bind::attach(&ctx, p).await,
        EcsAction::DetachKeyPair => bind::detach(&ctx, p).await,
        EcsAction::DescribeImages => launch::describe_images(&ctx, p).await,
        EcsAction::RunInstances => launch::run(&ctx, p).await,
        EcsAction::CreateInstance => launch::create(&ctx, p).await,
        EcsAction::DescribeInstances => instances::describe(&ctx, p).await,
        EcsAction::StartInstance => instances::start(&ctx, p).await,
        EcsAction::StopInstance => instances::stop(&ctx, p).await,
        EcsAction::RebootInstance => instances::reboot(&ctx, p).await,
        EcsAction::DeleteInstance => instances::delete(&ctx, p).await,
        EcsAction::ModifyInstanceAttribute => attribute::modify(&ctx, p).await,
    }
}
