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
use crate::common::request::{too_large_message, RawRequest};
use crate::common::serve::{internal_detail, Claim, Dialect, Signer, WireError};
use crate::common::server::AppState;
use auth::{authenticate, Authenticated, Claimed};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use error::{LegacyError, SUCCESS_CODE, SUCCESS_DESC};
use handlers::Ctx;
use router::{check_region, LegacyAction};
use serde_json::{json, Value};

/// The CVM legacy v2 dialect.
pub(crate) struct Legacy;

impl Claim for Claimed {
    fn label(&self) -> &'static str {
        "legacy"
    }

    fn span_name(&self) -> &'static str {
        "tencent-legacy"
    }

    fn action_label(&self) -> &'static str {
        self.action
            .as_deref()
            .and_then(LegacyAction::parse)
            .map_or("other", LegacyAction::name)
    }

    fn action(&self) -> Option<&str> {
        self.action.as_deref()
    }

    fn credential(&self) -> Option<&str> {
        self.secret_id.as_deref()
    }
}

impl WireError for LegacyError {
    fn code(&self) -> &'static str {
        self.code_desc()
    }

    fn message(&self) -> String {
        LegacyError::message(self)
    }

    fn internal(&self) -> Option<&str> {
        match self {
            LegacyError::Domain(e) => internal_detail(e),
            _ => None,
        }
    }
}

impl Dialect for Legacy {
    type Claim = Claimed;
    type Request = Authenticated;
    type Error = LegacyError;
    type Answer = Value;
    const CREDENTIAL_FIELD: &'static str = "secret_id";

    fn parse(&self, _raw: &RawRequest) -> Claimed {
        Claimed::default()
    }

    fn too_large(&self, _claim: &Self::Claim, limit: usize) -> LegacyError {
        LegacyError::InvalidParameter(too_large_message(limit))
    }

    async fn authenticate(
        &self,
        state: &AppState,
        raw: &RawRequest,
        claim: &mut Claimed,
    ) -> Result<Authenticated, LegacyError> {
        authenticate(state, raw, claim).await
    }

    fn signer<'a>(&self, req: &'a Authenticated) -> Signer<'a> {
        Signer {
            account: &req.account,
            credential: &req.account.secret_id,
            action: &req.action,
            region: req.region.as_deref(),
        }
    }

    async fn dispatch(
        &self,
        state: &AppState,
        auth: Authenticated,
        trail: &mut Trail,
    ) -> Result<Value, LegacyError> {
        dispatch(state, auth, trail).await
    }

    fn render(
        &self,
        _request_id: &str,
        _claim: &Claimed,
        result: Result<Value, LegacyError>,
    ) -> Response {
        render(result)
    }
}

async fn dispatch(
    state: &AppState,
    auth: Authenticated,
    trail: &mut Trail,
) -> Result<Value, LegacyError> {
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
