//! Tencent Cloud: one wire layer and the products beside each other over it.
//!
//! API 3.0 (this module's [`TencentV3`] dialect): TC3-HMAC-SHA256 (POST JSON, GET) and v1
//! HmacSHA1/HmacSHA256 (GET, POST form), for CVM 2017-03-12 ([`cvm`]), Lighthouse 2020-03-24
//! ([`lighthouse`]) and CloudAudit 2019-03-19 ([`cloudaudit`]). The wire layer they share:
//! the signatures ([`signature`], [`auth`]), the envelope (here), the common errors
//! ([`error`]) and what the products share ([`wire`], [`password`]). Every answer is HTTP 200
//! with `Content-Type: application/json` exactly and a `RequestId`: the official SDKs ignore
//! error envelopes under any other content type.
//!
//! The legacy CVM v2 API ([`legacy`]) is a dialect of its own, with its own envelope, over the
//! same signatures and CVM's resources.

pub mod auth;
pub mod cloudaudit;
pub mod cvm;
pub mod error;
pub mod legacy;
pub mod lighthouse;
pub mod password;
pub mod router;
pub mod signature;
pub mod signing_keys;
pub mod wire;

use crate::common::answer::Answer;
use crate::common::audit::Trail;
use crate::common::request::RawRequest;
use crate::common::serve::{Claim, Dialect, Signer, WireError};
use crate::common::server::AppState;
use auth::{authenticate, Authenticated, Claimed};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use cloudaudit::error::CloudAuditError;
use cvm::error::CvmError;
use error::TcError;
use lighthouse::error::LighthouseError;
use router::{CvmAction, Product};
use serde_json::json;

/// The Tencent API 3.0 dialect (CVM, Lighthouse, CloudAudit).
pub(crate) struct TencentV3;

/// What a Tencent API 3.0 request claims: the product (by its version until it is
/// authenticated), the action and the SecretId.
pub(crate) struct V3Claim {
    product: Product,
    claimed: Claimed,
}

impl Claim for V3Claim {
    fn label(&self) -> &'static str {
        self.product.service()
    }

    fn span_name(&self) -> &'static str {
        "tencent-v3"
    }

    fn action_label(&self) -> &'static str {
        let action = self.claimed.action.as_deref();
        let name = match self.product {
            Product::Cvm => action.and_then(CvmAction::parse).map(CvmAction::name),
            Product::Lighthouse => action
                .and_then(router::LighthouseAction::parse)
                .map(router::LighthouseAction::name),
            Product::CloudAudit => action
                .and_then(router::CloudAuditAction::parse)
                .map(router::CloudAuditAction::name),
        };
        name.unwrap_or("other")
    }

    fn action(&self) -> Option<&str> {
        self.claimed.action.as_deref()
    }

    fn credential(&self) -> Option<&str> {
        self.claimed.secret_id.as_deref()
    }
}

/// Everything a Tencent API 3.0 request can fail with: the error of the product it
/// addresses (by its version, until it is authenticated).
pub(crate) enum V3Error {
    /// A CVM request's.
    Cvm(CvmError),
    /// A Lighthouse request's.
    Lighthouse(LighthouseError),
    /// A CloudAudit request's.
    CloudAudit(CloudAuditError),
}

impl V3Error {
    /// An error met before the request reached its product, answered as `product`'s.
    fn routed(product: Product, e: TcError) -> V3Error {
        match product {
            Product::Cvm => V3Error::Cvm(e.routed()),
            Product::Lighthouse => V3Error::Lighthouse(e.routed()),
            Product::CloudAudit => V3Error::CloudAudit(e.routed()),
        }
    }
}

impl WireError for V3Error {
    fn code(&self) -> &'static str {
        match self {
            V3Error::Cvm(e) => e.code(),
            V3Error::Lighthouse(e) => e.code(),
            V3Error::CloudAudit(e) => e.code(),
        }
    }

    fn message(&self) -> String {
        match self {
            V3Error::Cvm(e) => e.message(),
            V3Error::Lighthouse(e) => e.message(),
            V3Error::CloudAudit(e) => e.message(),
        }
    }

    fn internal(&self) -> Option<&str> {
        match self {
            V3Error::Cvm(e) => e.internal(),
            V3Error::Lighthouse(e) => e.internal(),
            V3Error::CloudAudit(e) => e.internal(),
        }
    }
}

impl Dialect for TencentV3 {
    type Claim = V3Claim;
    type Request = Authenticated;
    type Error = V3Error;
    type Answer = Answer;
    const CREDENTIAL_FIELD: &'static str = "secret_id";

    fn parse(&self, raw: &RawRequest) -> V3Claim {
        V3Claim {
            product: claimed_product(raw),
            claimed: Claimed::default(),
        }
    }

    fn too_large(&self, claim: &V3Claim, limit: usize) -> V3Error {
        V3Error::routed(claim.product, TcError::RequestSizeLimitExceeded(limit))
    }

    async fn authenticate(
        &self,
        state: &AppState,
        raw: &RawRequest,
        claim: &mut V3Claim,
    ) -> Result<Authenticated, V3Error> {
        match authenticate(state, raw, &mut claim.claimed).await {
            Ok(auth) => {
                claim.product = auth.product;
                Ok(auth)
            }
            Err(e) => Err(V3Error::routed(claim.product, e)),
        }
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
    ) -> Result<Answer, V3Error> {
        dispatch(state, auth, &trail.meta).await
    }

    fn render(
        &self,
        request_id: &str,
        _claim: &V3Claim,
        result: Result<Answer, V3Error>,
    ) -> Response {
        render(request_id, result)
    }
}

/// The product a request claims by its version (CVM when it names none served here), so
/// that a refusal before it is authenticated is answered and recorded as that product's.
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
    req: &keyplane_core::RequestMeta,
) -> Result<Answer, V3Error> {
    let Authenticated {
        account,
        product,
        action,
        region,
        params,
    } = auth;
    match product {
        Product::Cvm => cvm::dispatch(state, &account, &action, region, params, req)
            .await
            .map_err(V3Error::Cvm),
        Product::Lighthouse => lighthouse::dispatch(state, &account, &action, region, params, req)
            .await
            .map(Answer::from)
            .map_err(V3Error::Lighthouse),
        Product::CloudAudit => cloudaudit::dispatch(state, &account, &action, region, params)
            .await
            .map(Answer::from)
            .map_err(V3Error::CloudAudit),
    }
}

fn json_response(body: String) -> Response {
    let mut resp = (StatusCode::OK, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// Render a result in the Tencent envelope: `{"Response": {fields..., "RequestId": id}}`.
fn render(request_id: &str, result: Result<Answer, V3Error>) -> Response {
    match result {
        Ok(fields) => {
            let mut body = String::with_capacity(fields.as_str().len() + 80);
            body.push_str(r#"{"Response":"#);
            fields.write_with("RequestId", request_id, &mut body);
            body.push('}');
            json_response(body)
        }
        Err(e) => json_response(
            json!({
                "Response": {
                    "Error": { "Code": e.code(), "Message": e.message() },
                    "RequestId": request_id,
                }
            })
            .to_string(),
        ),
    }
}
