//! The one serve path of every wire dialect. A [`Dialect`] says how its requests are parsed,
//! authenticated, dispatched and rendered; [`serve`] owns everything around that: the request
//! span, the access log, the request metric, the size limit, and the audit trail (who signed,
//! and the refusal event of a refused request).

use super::audit::Trail;
use super::request::{new_request_id, RawRequest};
use super::server::AppState;
use axum::response::Response;
use keyplane_core::account::Account;
use tracing::{info, warn, Instrument};

/// What a request says about itself before it is verified (product, action, credential),
/// filled in further while it is authenticated.
pub(crate) trait Claim {
    /// The dialect label the request is measured and audited under (`cvm`, `ecs`, ...).
    fn label(&self) -> &'static str;
    /// The `dialect` field of the request's span (`tencent-v3`, `aliyun-ecs`, ...).
    fn span_name(&self) -> &'static str;
    /// The served action it names, as measured (`other` for anything else).
    fn action_label(&self) -> &'static str;
    /// The action name as sent.
    fn action(&self) -> Option<&str>;
    /// The credential id as sent.
    fn credential(&self) -> Option<&str>;
}

/// An error a dialect answers in its envelope.
pub(crate) trait WireError {
    /// The code the refusal is answered, measured and recorded with.
    fn code(&self) -> &'static str;
    /// The human message.
    fn message(&self) -> String;
    /// What went wrong inside, when the request failed rather than was refused.
    fn internal(&self) -> Option<&str>;
}

/// The detail of a domain error that is a failure inside rather than a refusal.
pub(crate) fn internal_detail(e: &keyplane_core::DomainError) -> Option<&str> {
    match e {
        keyplane_core::DomainError::Internal(detail) => Some(detail),
        _ => None,
    }
}

/// Who signed a request, as the audit trail records it.
pub(crate) struct Signer<'a> {
    /// The signing account.
    pub account: &'a Account,
    /// The credential it signed with.
    pub credential: &'a str,
    /// The action, as sent.
    pub action: &'a str,
    /// The region, when the request names one.
    pub region: Option<&'a str>,
}

/// A wire dialect: how its requests are parsed, authenticated, dispatched and answered.
pub(crate) trait Dialect: Sync {
    /// What a request says about itself before it is verified.
    type Claim: Claim + Send;
    /// A request whose signature checked out.
    type Request: Send;
    /// Everything a request can be refused with.
    type Error: WireError + Send;
    /// An action's answer fields, as the dialect renders them.
    type Answer: Send;

    /// The span field the credential id is logged under (`secret_id`, `access_key_id`).
    const CREDENTIAL_FIELD: &'static str;

    /// A fresh request id, shaped like the provider's.
    fn request_id(&self) -> String {
        new_request_id()
    }

    /// Read what the request claims, trusting none of it.
    fn parse(&self, raw: &RawRequest) -> Self::Claim;

    /// The refusal of a request larger than `limit` bytes.
    fn too_large(&self, claim: &Self::Claim, limit: usize) -> Self::Error;

    /// Verify the request's signature, noting in `claim` what it says as it is read.
    async fn authenticate(
        &self,
        state: &AppState,
        raw: &RawRequest,
        claim: &mut Self::Claim,
    ) -> Result<Self::Request, Self::Error>;

    /// Who signed an authenticated request.
    fn signer<'a>(&self, req: &'a Self::Request) -> Signer<'a>;

    /// Serve an authenticated request: the action's answer fields.
    async fn dispatch(
        &self,
        state: &AppState,
        req: Self::Request,
        trail: &mut Trail,
    ) -> Result<Self::Answer, Self::Error>;

    /// The answer in the dialect's envelope.
    fn render(
        &self,
        request_id: &str,
        claim: &Self::Claim,
        result: Result<Self::Answer, Self::Error>,
    ) -> Response;
}

/// Serve one request of dialect `d`.
pub(crate) async fn serve<D: Dialect>(d: &D, state: &AppState, raw: &RawRequest) -> Response {
    let request_id = d.request_id();
    let mut claim = d.parse(raw);
    let span = tracing::info_span!(
        "request",
        dialect = claim.span_name(),
        request_id = %request_id,
        action = tracing::field::Empty,
        secret_id = tracing::field::Empty,
        access_key_id = tracing::field::Empty,
    );
    async {
        let started = std::time::Instant::now();
        let mut trail = Trail::new(claim.label(), &request_id, raw);
        let result = process(d, state, raw, &mut claim, &mut trail).await;
        let span = tracing::Span::current();
        if let Some(a) = claim.action() {
            span.record("action", a);
        }
        if let Some(c) = claim.credential() {
            span.record(D::CREDENTIAL_FIELD, c);
        }
        let elapsed = started.elapsed();
        let micros = elapsed.as_micros() as u64;
        let code = match &result {
            Ok(_) => {
                info!(micros, "ok");
                "ok"
            }
            Err(e) => {
                let code = e.code();
                match e.internal() {
                    Some(detail) => warn!(micros, code, detail = %detail, "failed"),
                    None => info!(micros, code, "refused"),
                }
                code
            }
        };
        let secs = elapsed.as_secs_f64();
        let metrics = state.core.metrics();
        metrics.request(claim.label(), claim.action_label(), code, secs);
        if let Err(e) = &result {
            trail.meta.dialect = claim.label().to_string();
            let (action, credential) = (claim.action(), claim.credential());
            let message = e.message();
            trail
                .refused(state, raw, action, credential, code, &message)
                .await;
        }
        d.render(&request_id, &claim, result)
    }
    .instrument(span)
    .await
}

/// Size limit, authentication, then the dialect's own dispatch.
async fn process<D: Dialect>(
    d: &D,
    state: &AppState,
    raw: &RawRequest,
    claim: &mut D::Claim,
    trail: &mut Trail,
) -> Result<D::Answer, D::Error> {
    if let Some(limit) = raw.oversized {
        return Err(d.too_large(claim, limit));
    }
    let req = d.authenticate(state, raw, claim).await?;
    if trail.meta.dialect != claim.label() {
        trail.meta.dialect = claim.label().to_string();
    }
    let s = d.signer(&req);
    trail.signed(s.account, s.credential, s.action, s.region);
    d.dispatch(state, req, trail).await
}
