//! `GET /keyplane/agent/v1/instances/{id}/ssh-state[?after=N&wait=S]`: the desired SSH state,
//! at once or as a long poll until the generation passes `after`.

use super::{answer, internal, refuse};
use crate::common::request::RawRequest;
use crate::common::server::AppState;
use axum::http::StatusCode;
use axum::response::Response;
use keyplane_core::DomainError;
use serde_json::json;
use std::time::Duration;

/// Longest accepted long poll, seconds.
const MAX_WAIT_SECS: u64 = 60;

/// Answer the desired SSH state of `id`.
pub(super) async fn ssh_state(state: &AppState, raw: &RawRequest, id: &str) -> Response {
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
