//! Alibaba Cloud RPC APIs: ECS, Version 2014-05-26 ([`ecs`]), and ActionTrail, Version
//! 2020-07-06 ([`actiontrail`]), beside each other over one wire layer (signatures, envelope,
//! errors) and told apart by their `Version`. Both take the classic HMAC-SHA1 signature
//! (query or form parameters; `aliyun-python-sdk-ecs`) and ACS3-HMAC-SHA256 (the Tea SDKs,
//! `alibabacloud-ecs20140526`, `alibabacloud-actiontrail20200706`). Errors use HTTP 4xx/5xx
//! with `{RequestId, HostId, Code, Message, Recommend}`, because the Alibaba SDKs decide
//! success by the status alone.

pub mod actiontrail;
pub mod auth;
pub mod ecs;
pub mod error;
pub mod render;
pub mod router;
pub mod signature;

use crate::common::audit::Trail;
use crate::common::request::{new_request_id, too_large_message, RawRequest};
use crate::common::serve::{internal_detail, Claim, Dialect, Signer, WireError};
use crate::common::server::AppState;
use auth::{authenticate, claim, Authenticated, Claimed};
use axum::response::Response;
use error::AliError;
use router::{Product, VERSION};
use serde_json::Value;

/// The Alibaba Cloud RPC dialect (ECS, ActionTrail).
pub(crate) struct AliyunRpc;

/// What an Alibaba Cloud RPC request claims: the product by its version, the action, the
/// AccessKeyId and the answer format.
pub(crate) struct RpcClaim {
    product: Product,
    claimed: Claimed,
}

impl Claim for RpcClaim {
    fn label(&self) -> &'static str {
        self.product.dialect()
    }

    fn span_name(&self) -> &'static str {
        self.product.span_name()
    }

    fn action_label(&self) -> &'static str {
        self.product
            .action_name(self.claimed.action.as_deref().unwrap_or_default())
    }

    fn action(&self) -> Option<&str> {
        self.claimed.action.as_deref()
    }

    fn credential(&self) -> Option<&str> {
        self.claimed.access_key_id.as_deref()
    }
}

impl WireError for AliError {
    fn code(&self) -> &'static str {
        AliError::code(self).0
    }

    fn message(&self) -> String {
        AliError::message(self)
    }

    fn internal(&self) -> Option<&str> {
        match self {
            AliError::Domain(e) => internal_detail(e),
            _ => None,
        }
    }
}

/// The `RegionId` parameter, when given.
pub(crate) fn region_param(params: &[(String, String)]) -> Option<&str> {
    params
        .iter()
        .find(|(k, _)| k == "RegionId")
        .map(|(_, v)| v.as_str())
}

impl Dialect for AliyunRpc {
    type Claim = RpcClaim;
    type Request = Authenticated;
    type Error = AliError;
    type Answer = Value;
    const CREDENTIAL_FIELD: &'static str = "access_key_id";

    /// Alibaba Cloud request ids are upper-case UUIDs.
    fn request_id(&self) -> String {
        new_request_id().to_uppercase()
    }

    fn parse(&self, raw: &RawRequest) -> RpcClaim {
        RpcClaim {
            product: Product::claimed(raw),
            claimed: claim(raw),
        }
    }

    fn too_large(&self, _claim: &Self::Claim, limit: usize) -> AliError {
        AliError::InvalidParameter(too_large_message(limit))
    }

    async fn authenticate(
        &self,
        state: &AppState,
        raw: &RawRequest,
        _claim: &mut RpcClaim,
    ) -> Result<Authenticated, AliError> {
        authenticate(state, raw).await
    }

    fn signer<'a>(&self, req: &'a Authenticated) -> Signer<'a> {
        Signer {
            account: &req.account,
            credential: &req.account.access_key_id,
            action: &req.action,
            region: region_param(&req.params),
        }
    }

    async fn dispatch(
        &self,
        state: &AppState,
        auth: Authenticated,
        trail: &mut Trail,
    ) -> Result<Value, AliError> {
        match Product::from_version(&auth.version) {
            Some(Product::Ecs) => ecs::dispatch(state, &auth, &trail.meta).await,
            Some(Product::ActionTrail) => actiontrail::dispatch(state, &auth).await,
            None => Err(AliError::InvalidVersion(format!(
                "Specified parameter Version `{}` is not valid; ECS is served at {VERSION}, ActionTrail at {}.",
                auth.version,
                router::ACTIONTRAIL_VERSION
            ))),
        }
    }

    fn render(
        &self,
        request_id: &str,
        claim: &RpcClaim,
        result: Result<Value, AliError>,
    ) -> Response {
        let format = claim.claimed.format;
        match result {
            Ok(fields) => {
                let action = claim.claimed.action.as_deref().unwrap_or_default();
                render::success(action, request_id, fields, format)
            }
            Err(e) => render::failure(request_id, &e, format, claim.product.host()),
        }
    }
}
