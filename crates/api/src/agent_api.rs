//! The guest agents' API: `GET /keyplane/agent/v1/instances/{id}/ssh-state[?after=N&wait=S]`
//! (long poll for the desired SSH state) and `POST .../report` (what was applied).
//! Each request carries `Authorization: Bearer <agent token>`, valid for one instance only.
//! A sandbox instance's own agent asks through its metadata service instead
//! ([`crate::metadata`]), which answers only about the instance it runs in, without a token.

use crate::common::request::RawRequest;
use crate::common::server::AppState;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use keyplane_core::DomainError;
use serde::Deserialize;
use serde_json::json;
use std::time::Duration;

/// Path prefix of the agent API.
pub const PREFIX: &str = "/keyplane/agent/v1/instances/";
/// Where hosts register with a registration token.
pub const REGISTER: &str = "/keyplane/agent/v1/register";
/// Longest accepted long poll, seconds.
const MAX_WAIT_SECS: u64 = 60;

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

#[derive(Debug, Deserialize)]
struct ReportBody {
    generation: i64,
    ok: bool,
    #[serde(default)]
    message: String,
}

fn answer(status: StatusCode, body: serde_json::Value) -> Response {
    let mut resp = (status, body.to_string()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

fn refuse(status: StatusCode, message: &str) -> Response {
    answer(status, json!({ "error": message }))
}

fn internal(e: DomainError) -> Response {
    tracing::warn!(error = %e, "agent API failure");
    refuse(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
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
        ("GET", "ssh-state") => ssh_state(state, raw, id).await,
        ("POST", "report") => report(state, raw, id).await,
        _ => refuse(StatusCode::NOT_FOUND, "no such agent endpoint"),
    }
}

async fn ssh_state(state: &AppState, raw: &RawRequest, id: &str) -> Response {
    let params = raw.query_params();
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let after: Option<i64> = match get("after").map(|v| v.parse()) {
        None => None,
        Some(Ok(v)) => Some(v),
        Some(Err(_)) => return refuse(StatusCode::BAD_REQUEST, "after must be an integer"),
    };
    let wait = match get("wait").map(|v| v.parse::<u64>()) {
        None => 0,
        Some(Ok(v)) => v.min(MAX_WAIT_SECS),
        Some(Err(_)) => return refuse(StatusCode::BAD_REQUEST, "wait must be a number of seconds"),
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(wait);
    // An agent waiting in a long poll is a connected one.
    let _connected = (wait > 0).then(|| state.core.metrics().agent_connected());
    let mut changes = state.ssh_changes.subscribe();
    loop {
        let instance = match state.core.instance_by_id(id).await {
            Ok(i) => i,
            Err(DomainError::InstanceNotFound { .. }) => {
                return refuse(StatusCode::NOT_FOUND, "the instance no longer exists")
            }
            Err(e) => return internal(e),
        };
        let changed = after.is_none_or(|a| instance.desired_generation > a);
        if changed || tokio::time::Instant::now() >= deadline {
            seen(state, id).await;
            return match state.core.serve_ssh_state(&instance).await {
                Ok(d) => answer(
                    StatusCode::OK,
                    json!({
                        "generation": d.generation,
                        "authorized_keys": d.authorized_keys,
                        "password_authentication": d.password_authentication,
                    }),
                ),
                Err(e) => internal(e),
            };
        }
        wait_for_change(&mut changes, id, deadline, state.config.agent_poll_fallback).await;
    }
}

/// Record that the agent of `id` was heard from (for the console's "last seen"); a failure
/// costs the console a stale time, never the agent its answer.
async fn seen(state: &AppState, id: &str) {
    if let Err(e) = state.core.note_agent_seen(id).await {
        tracing::warn!(instance = %id, error = %e, "cannot record when the agent was seen");
    }
}

/// Until this node changes `id`, the poll interval passes (changes made by other nodes sharing
/// the database), or the deadline.
async fn wait_for_change(
    changes: &mut tokio::sync::broadcast::Receiver<String>,
    id: &str,
    deadline: tokio::time::Instant,
    fallback: Duration,
) {
    let until = deadline.min(tokio::time::Instant::now() + fallback);
    loop {
        match tokio::time::timeout_at(until, changes.recv()).await {
            Ok(Ok(changed)) if changed != id => continue,
            // This instance changed, messages were lost (look again), or time is up.
            _ => return,
        }
    }
}

async fn report(state: &AppState, raw: &RawRequest, id: &str) -> Response {
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
