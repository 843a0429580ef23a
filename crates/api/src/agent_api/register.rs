//! `POST /keyplane/agent/v1/register`: a host trades a registration token for an instance of
//! its own and the agent token that speaks for it.

use super::{answer, refuse};
use crate::common::request::RawRequest;
use crate::common::server::AppState;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
struct RegisterBody {
    token: String,
    hostname: String,
    address: String,
    #[serde(default = "default_ssh_port")]
    ssh_port: u16,
    #[serde(default)]
    os_name: String,
}

fn default_ssh_port() -> u16 {
    22
}

/// `POST /keyplane/agent/v1/register`: a host presents a registration token once and becomes
/// an instance of the token's account and dialect.
pub async fn register(state: &AppState, raw: &RawRequest) -> Response {
    use keyplane_core::registration::{HostFacts, RegistrationError};
    if raw.method != "POST" {
        return refuse(StatusCode::METHOD_NOT_ALLOWED, "use POST");
    }
    let body: RegisterBody = match serde_json::from_slice(&raw.body) {
        Ok(b) => b,
        Err(e) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                &format!("invalid registration: {e}"),
            )
        }
    };
    let facts = HostFacts {
        hostname: body.hostname,
        address: body.address,
        ssh_port: body.ssh_port,
        os_name: if body.os_name.is_empty() {
            "Linux".into()
        } else {
            body.os_name
        },
    };
    let mut trail =
        crate::common::audit::Trail::new("agent", &crate::common::request::new_request_id(), raw);
    trail.meta.action = "RegisterHost".into();
    match state
        .core
        .register_host(&body.token, facts, &trail.meta)
        .await
    {
        Ok((inst, token)) => {
            tracing::info!(instance = %inst.id, account = %inst.account_id, "host registered");
            answer(
                StatusCode::OK,
                json!({
                    "instance_id": inst.id,
                    "agent_token": token,
                    "namespace": inst.namespace.as_str(),
                    "region": inst.region,
                }),
            )
        }
        Err(
            e @ (RegistrationError::Invalid | RegistrationError::Expired | RegistrationError::Used),
        ) => refuse(StatusCode::UNAUTHORIZED, &e.to_string()),
        Err(e @ RegistrationError::AddressTaken(_)) => refuse(StatusCode::CONFLICT, &e.to_string()),
        Err(e @ RegistrationError::InvalidHost(_)) => {
            refuse(StatusCode::BAD_REQUEST, &e.to_string())
        }
        Err(e @ RegistrationError::Internal(_)) => {
            tracing::warn!(error = %e, "registration failed");
            refuse(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
    }
}
