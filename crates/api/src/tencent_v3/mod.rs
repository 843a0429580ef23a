//! Tencent Cloud API 3.0: TC3-HMAC-SHA256 (POST JSON, GET) and v1 HmacSHA1/HmacSHA256 (GET,
//! POST form), for CVM 2017-03-12, Lighthouse 2020-03-24 ([`lighthouse`]) and CloudAudit
//! 2019-03-19 ([`cloudaudit`]). Every answer is HTTP 200 with `Content-Type: application/json`
//! exactly and a `RequestId`: the official SDKs ignore error envelopes under any other content
//! type.

pub mod auth;
pub mod cloudaudit;
pub mod dto;
pub mod error;
pub mod handlers;
pub mod lighthouse;
pub mod router;
pub mod signature;
pub mod signing_keys;

use crate::common::audit::Trail;
use crate::common::request::{new_request_id, RawRequest};
use crate::common::server::AppState;
use auth::{authenticate, Authenticated, Claimed};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use error::TcError;
use handlers::{bind, images, instances, keypairs, password, run, Ctx};
use router::{CvmAction, Product, REGIONS};
use serde_json::{json, Value};
use tracing::{info, warn, Instrument};

/// Serve one Tencent API 3.0 request.
pub async fn handle(state: &AppState, raw: &RawRequest) -> Response {
    let request_id = new_request_id();
    let span = tracing::info_span!(
        "request",
        dialect = "tencent-v3",
        request_id = %request_id,
        action = tracing::field::Empty,
        secret_id = tracing::field::Empty,
    );
    async {
        let mut claimed = Claimed::default();
        let started = std::time::Instant::now();
        let mut trail = Trail::new("cvm", &request_id, raw);
        let (result, product) = process(state, raw, &mut claimed, &mut trail).await;
        let span = tracing::Span::current();
        if let Some(a) = &claimed.action {
            span.record("action", a.as_str());
        }
        if let Some(s) = &claimed.secret_id {
            span.record("secret_id", s.as_str());
        }
        let elapsed = started.elapsed();
        let micros = elapsed.as_micros() as u64;
        let code = match &result {
            Ok(_) => {
                info!(micros, "ok");
                "ok"
            }
            Err(e @ TcError::Domain(keyplane_core::DomainError::Internal(detail))) => {
                warn!(micros, code = e.code(product), detail = %detail, "failed");
                e.code(product)
            }
            Err(e) => {
                info!(micros, code = e.code(product), "refused");
                e.code(product)
            }
        };
        let (dialect, action) = match product {
            Product::Cvm => (
                "cvm",
                claimed
                    .action
                    .as_deref()
                    .and_then(CvmAction::parse)
                    .map(CvmAction::name),
            ),
            Product::Lighthouse => (
                "lighthouse",
                claimed
                    .action
                    .as_deref()
                    .and_then(router::LighthouseAction::parse)
                    .map(router::LighthouseAction::name),
            ),
            Product::CloudAudit => (
                "cloudaudit",
                claimed
                    .action
                    .as_deref()
                    .and_then(router::CloudAuditAction::parse)
                    .map(router::CloudAuditAction::name),
            ),
        };
        state.core.metrics().request(
            dialect,
            action.unwrap_or("other"),
            code,
            elapsed.as_secs_f64(),
        );
        if let Err(e) = &result {
            trail.meta.dialect = dialect.to_string();
            let (action, secret_id) = (claimed.action.as_deref(), claimed.secret_id.as_deref());
            let message = e.message();
            trail
                .refused(state, raw, action, secret_id, code, &message)
                .await;
        }
        render(&request_id, result, product)
    }
    .instrument(span)
    .await
}

async fn process(
    state: &AppState,
    raw: &RawRequest,
    claimed: &mut Claimed,
    trail: &mut Trail,
) -> (Result<Value, TcError>, Product) {
    if let Some(limit) = raw.oversized {
        return (
            Err(TcError::RequestSizeLimitExceeded(limit)),
            claimed_product(raw),
        );
    }
    let auth = match authenticate(state, raw, claimed).await {
        Ok(a) => a,
        Err(e) => return (Err(e), claimed_product(raw)),
    };
    let product = auth.product;
    (dispatch(state, auth, trail).await, product)
}

/// The product a request refused before it was authenticated claims by its version (CVM
/// when it names none served here), so that its refusal is answered and recorded as that
/// product's.
fn claimed_product(raw: &RawRequest) -> Product {
    let version = raw.header("x-tc-version").or_else(|| {
        let mut params = raw.query_params();
        if raw.method == "POST" {
            params.extend(raw.form_params());
        }
        params
            .into_iter()
            .find(|(k, _)| k == "Version")
            .map(|(_, v)| v)
    });
    version
        .and_then(|v| Product::from_version(&v).ok())
        .unwrap_or(Product::Cvm)
}

async fn dispatch(
    state: &AppState,
    auth: Authenticated,
    trail: &mut Trail,
) -> Result<Value, TcError> {
    let Authenticated {
        account,
        product,
        action,
        region,
        params,
    } = auth;
    trail.meta.dialect = product.service().to_string();
    trail.signed(&account, &account.secret_id, &action, region.as_deref());
    let req = &trail.meta;
    match product {
        Product::Cvm => {
            let act = CvmAction::parse(&action).ok_or_else(|| {
                TcError::InvalidAction(format!(
                    "The action `{action}` does not exist in cvm 2017-03-12."
                ))
            })?;
            let region = region.ok_or_else(|| TcError::MissingParameter("Region".into()))?;
            if !REGIONS.contains(&region.as_str()) {
                return Err(TcError::UnsupportedRegion(region));
            }
            if !state
                .limiter
                .check(&account.id, &format!("cvm.{}", act.name()))
            {
                return Err(TcError::RequestLimitExceeded(act.name().into()));
            }
            let ctx = Ctx {
                core: &state.core,
                account: &account,
                region: &region,
                req,
            };
            match act {
                CvmAction::CreateKeyPair => keypairs::create(&ctx, params).await,
                CvmAction::ImportKeyPair => keypairs::import(&ctx, params).await,
                CvmAction::DescribeKeyPairs => keypairs::describe(&ctx, params).await,
                CvmAction::DeleteKeyPairs => keypairs::delete(&ctx, params).await,
                CvmAction::ModifyKeyPairAttribute => keypairs::modify(&ctx, params).await,
                CvmAction::AssociateInstancesKeyPairs => bind::associate(&ctx, params).await,
                CvmAction::DisassociateInstancesKeyPairs => bind::disassociate(&ctx, params).await,
                CvmAction::DescribeImages => images::describe(&ctx, params).await,
                CvmAction::RunInstances => run::run(&ctx, params).await,
                CvmAction::DescribeInstances => instances::describe(&ctx, params).await,
                CvmAction::DescribeInstancesStatus => instances::status(&ctx, params).await,
                CvmAction::StartInstances => instances::start(&ctx, params).await,
                CvmAction::StopInstances => instances::stop(&ctx, params).await,
                CvmAction::RebootInstances => instances::reboot(&ctx, params).await,
                CvmAction::TerminateInstances => instances::terminate(&ctx, params).await,
                CvmAction::ResetInstancesPassword => password::reset(&ctx, params).await,
            }
        }
        Product::Lighthouse => {
            lighthouse::dispatch(state, &account, &action, region, params, req).await
        }
        Product::CloudAudit => cloudaudit::dispatch(state, &account, &action, region, params).await,
    }
}

fn json_response(body: Value) -> Response {
    let mut resp = (StatusCode::OK, body.to_string()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// Render a result in the Tencent envelope.
pub fn render(request_id: &str, result: Result<Value, TcError>, product: Product) -> Response {
    let body = match result {
        Ok(mut fields) => {
            if let Value::Object(map) = &mut fields {
                map.insert("RequestId".into(), Value::String(request_id.into()));
            }
            json!({ "Response": fields })
        }
        Err(e) => json!({
            "Response": {
                "Error": { "Code": e.code(product), "Message": e.message() },
                "RequestId": request_id,
            }
        }),
    };
    json_response(body)
}
