//! Tencent CVM legacy v2 API at `/v2/index.php` (`cvm.api.qcloud.com`): v1-signed GET query
//! or POST form, answered `{"code": <int>, "message": "...", "codeDesc": "..."}` with HTTP 200
//! and `Content-Type: application/json` exactly. Key pairs and instances are the CVM API 3.0
//! ones: a key bound here shows there, and the other way round.

pub mod auth;
pub mod error;
pub mod handlers;
pub mod password;
pub mod router;

use crate::common::audit::Trail;
use crate::common::request::{new_request_id, RawRequest};
use crate::common::server::AppState;
use auth::{authenticate, Claimed};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use error::{LegacyError, SUCCESS_CODE, SUCCESS_DESC};
use handlers::Ctx;
use router::{check_region, LegacyAction};
use serde_json::{json, Value};
use tracing::{info, warn, Instrument};

/// Serve one legacy v2 request.
pub async fn handle(state: &AppState, raw: &RawRequest) -> Response {
    let request_id = new_request_id();
    let span = tracing::info_span!(
        "request",
        dialect = "tencent-legacy",
        request_id = %request_id,
        action = tracing::field::Empty,
        secret_id = tracing::field::Empty,
    );
    async {
        let mut claimed = Claimed::default();
        let started = std::time::Instant::now();
        let mut trail = Trail::new("legacy", &request_id, raw);
        let result = process(state, raw, &mut trail, &mut claimed).await;
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
            Err(e @ LegacyError::Domain(keyplane_core::DomainError::Internal(detail))) => {
                warn!(micros, code = e.code(), detail = %detail, "failed");
                e.code_desc()
            }
            Err(e) => {
                info!(
                    micros,
                    code = e.code(),
                    code_desc = e.code_desc(),
                    "refused"
                );
                e.code_desc()
            }
        };
        let action = claimed
            .action
            .as_deref()
            .and_then(LegacyAction::parse)
            .map_or("other", LegacyAction::name);
        let secs = elapsed.as_secs_f64();
        state.core.metrics().request("legacy", action, code, secs);
        if let Err(e) = &result {
            let (action, secret_id) = (claimed.action.as_deref(), claimed.secret_id.as_deref());
            let message = e.message();
            trail
                .refused(state, raw, action, secret_id, code, &message)
                .await;
        }
        render(result)
    }
    .instrument(span)
    .await
}

async fn process(
    state: &AppState,
    raw: &RawRequest,
    trail: &mut Trail,
    claimed: &mut Claimed,
) -> Result<Value, LegacyError> {
    if let Some(m) = raw.oversized_message() {
        return Err(LegacyError::InvalidParameter(m));
    }
    let auth = authenticate(state, raw, claimed).await?;
    trail.signed(
        &auth.account,
        &auth.account.secret_id,
        &auth.action,
        auth.region.as_deref(),
    );
    let action = LegacyAction::parse(&auth.action).ok_or_else(|| {
        LegacyError::InvalidAction(format!(
            "The action `{}` is not supported by the CVM legacy API.",
            auth.action
        ))
    })?;
    // The canonical spelling (the legacy API also takes `unBindInstanceKey`).
    trail.meta.action = action.name().to_string();
    check_region(auth.region)?;
    let ctx = Ctx {
        core: &state.core,
        account: &auth.account,
        req: &trail.meta,
    };
    match action {
        LegacyAction::BindInstanceKey => handlers::bind(&ctx, &auth.params, true).await,
        LegacyAction::UnBindInstanceKey => handlers::bind(&ctx, &auth.params, false).await,
        LegacyAction::DescribeKeyPairs => handlers::describe_key_pairs(&ctx, &auth.params).await,
        LegacyAction::ResetInstancePassword => password::reset(&ctx, &auth.params).await,
    }
}

/// Render a result in the legacy envelope: `code`, `message`, `codeDesc`, then the action's
/// own fields on success.
pub fn render(result: Result<Value, LegacyError>) -> Response {
    let body = match result {
        Ok(fields) => {
            let mut body = json!({ "code": SUCCESS_CODE, "message": "", "codeDesc": SUCCESS_DESC });
            if let (Value::Object(out), Value::Object(extra)) = (&mut body, fields) {
                out.extend(extra);
            }
            body
        }
        Err(e) => json!({ "code": e.code(), "message": e.message(), "codeDesc": e.code_desc() }),
    };
    let mut resp = (StatusCode::OK, body.to_string()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}
