//! `POST /keyplane/agent/v1/instances/{id}/report`: what the agent applied, counted only for
//! a generation the server issued to it.

use super::{answer, internal, refuse};
use crate::common::request::RawRequest;
use crate::common::server::AppState;
use axum::http::StatusCode;
use axum::response::Response;
use keyplane_core::DomainError;
use serde::Deserialize;
use serde_json::json;

#[derive(Debug, Deserialize)]
struct ReportBody {
    generation: i64,
    ok: bool,
    #[serde(default)]
    message: String,
}

/// Take the agent's report of `id`.
pub(super) async fn report(state: &AppState, raw: &RawRequest, id: &str) -> Response {
    use keyplane_core::agent::ReportError;
    let body: ReportBody = match serde_json::from_slice(&raw.body) {
        Ok(b) => b,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, &format!("invalid report: {e}")),
    };
    let outcome = if body.ok {
        state.core.agent_applied(id, body.generation).await
    } else {
        state.core.check_agent_report(id, body.generation).await
    };
    match outcome {
        Ok(()) if body.ok => answer(StatusCode::OK, json!({})),
        Ok(()) => {
            tracing::warn!(instance = %id, generation = body.generation, message = %body.message, "agent failed to apply");
            answer(StatusCode::OK, json!({}))
        }
        Err(e @ ReportError::NotIssued { .. }) => {
            tracing::warn!(instance = %id, error = %e, "agent report refused");
            answer(
                StatusCode::CONFLICT,
                json!({ "error": e.to_string(), "code": "GenerationNotIssued" }),
            )
        }
        Err(ReportError::Domain(DomainError::InstanceNotFound { .. })) => {
            refuse(StatusCode::NOT_FOUND, "the instance no longer exists")
        }
        Err(ReportError::Domain(e)) => internal(e),
    }
}
