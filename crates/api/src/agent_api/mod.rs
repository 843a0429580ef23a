//! The guest agents' API, one endpoint a file: hosts register ([`register`]), agents long-poll
//! for the desired SSH state (`GET /keyplane/agent/v1/instances/{id}/ssh-state`, [`ssh_state`])
//! and report what they applied (`POST .../report`, [`report`]). Here: the routing, the token
//! check and the JSON answers they share.
//! Each request carries `Authorization: Bearer <agent token>`, valid for one instance only.
//! A sandbox instance's own agent asks through its metadata service instead
//! ([`crate::metadata`]), which answers only about the instance it runs in, without a token.

use crate::common::request::RawRequest;
use crate::common::server::AppState;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use keyplane_core::DomainError;
use serde_json::json;

mod register;
mod report;
mod ssh_state;

pub use register::register;

/// Path prefix of the agent API.
pub const PREFIX: &str = "/keyplane/agent/v1/instances/";
/// Where hosts register with a registration token.
pub const REGISTER: &str = "/keyplane/agent/v1/register";

/// A JSON answer with `status`.
fn answer(status: StatusCode, body: serde_json::Value) -> Response {
    let mut resp = (status, body.to_string()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// A refusal: `{"error": message}` with `status`.
fn refuse(status: StatusCode, message: &str) -> Response {
    answer(status, json!({ "error": message }))
}

/// A failure inside, logged; the agent sees only `internal error`.
fn internal(e: DomainError) -> Response {
    tracing::warn!(error = %e, "agent API failure");
    refuse(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
}

/// Serve one agent request.
pub async fn handle(state: &AppState, raw: &RawRequest) -> Response {
    let Some(rest) = raw.path.strip_prefix(PREFIX) else {
        return refuse(StatusCode::NOT_FOUND, "no such agent endpoint");
    };
    let Some((id, tail)) = rest.split_once('/') else {
        return refuse(StatusCode::NOT_FOUND, "no such agent endpoint");
    };
    let token = raw
        .header("authorization")
        .and_then(|a| a.strip_prefix("Bearer ").map(str::to_string))
        .unwrap_or_default();
    match state.core.check_agent_token(id, &token).await {
        Ok(true) => {}
        Ok(false) => {
            let why = "invalid agent token for this instance";
            refused_agent(state, raw, id, tail, why).await;
            return refuse(StatusCode::UNAUTHORIZED, why);
        }
        Err(e) => return internal(e),
    }
    serve_instance(state, raw, id, tail).await
}

/// Record in the audit trail an agent request refused for its token: in the trail of the
/// account of the instance it claimed to speak for, if that instance exists.
async fn refused_agent(state: &AppState, raw: &RawRequest, id: &str, tail: &str, why: &str) {
    let mut trail =
        crate::common::audit::Trail::new("agent", &crate::common::request::new_request_id(), raw);
    trail.meta.action = match tail {
        "ssh-state" => "GetSshState",
        "report" => "ReportApplied",
        _ => "Agent",
    }
    .into();
    let instance = state.core.instance_by_id(id).await.ok();
    let account = instance.as_ref().map(|i| i.account_id.as_str());
    let resources = match &instance {
        Some(i) => vec![keyplane_core::audit::AuditResource::instance(&i.id)],
        None => vec![],
    };
    let recorded = state
        .core
        .record_refusal(
            &trail.meta,
            account,
            tail == "ssh-state",
            resources,
            "InvalidAgentToken",
            why,
        )
        .await;
    if let Err(e) = recorded {
        tracing::warn!(error = %e, "cannot record the refusal in the audit trail");
    }
}

/// Serve the agent request `tail` (`ssh-state`, `report`) of instance `id`, whose caller is
/// already known to speak for it: by its agent token, or by asking on the instance's own
/// metadata channel.
pub(crate) async fn serve_instance(
    state: &AppState,
    raw: &RawRequest,
    id: &str,
    tail: &str,
) -> Response {
    match (raw.method.as_str(), tail) {
        ("GET", "ssh-state") => ssh_state::ssh_state(state, raw, id).await,
        ("POST", "report") => report::report(state, raw, id).await,
        _ => refuse(StatusCode::NOT_FOUND, "no such agent endpoint"),
    }
}
