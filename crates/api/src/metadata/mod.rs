//! The instance metadata service, as the clouds serve it inside each instance: Tencent Cloud's
//! `http://metadata.tencentyun.com/latest/...` (169.254.0.23) and Alibaba Cloud's
//! `http://100.100.100.200/latest/...`.
//!
//! One router serves one instance: the sandbox driver makes its listening sockets inside that
//! instance's network namespace, so no other instance and no host process can reach them, and
//! every answer is about the instance that asks. Directories answer their entries one per line
//! (sub-directories end in `/`), leaves answer their value as plain text, as on the clouds.
//!
//! The same channel carries the instance's own guest agent: `GET|POST
//! /keyplane/agent/v1/instances/<own id>/{ssh-state,report}` as the agent API answers them, with
//! no token (only this instance can reach the socket) and for no other instance.

use crate::common::request::RawRequest;
use crate::common::server::AppState;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use std::sync::Arc;

mod tree;

/// Largest agent request body accepted on the metadata channel (a report is a few dozen bytes).
const AGENT_BODY_LIMIT: usize = 64 * 1024;

struct MetaState {
    app: Arc<AppState>,
    instance_id: String,
    user_data: Option<Vec<u8>>,
}

/// The metadata router of instance `instance_id`, launched with `user_data`.
pub fn router(app: Arc<AppState>, instance_id: String, user_data: Option<Vec<u8>>) -> Router {
    let state = Arc::new(MetaState {
        app,
        instance_id,
        user_data,
    });
    Router::new()
        .route("/", get(|| async { text("latest\n") }))
        .route("/latest", get(|| async { text("meta-data/\nuser-data\n") }))
        .route(
            "/latest/",
            get(|| async { text("meta-data/\nuser-data\n") }),
        )
        .route("/latest/user-data", get(serve_user_data))
        .route("/latest/meta-data", get(meta_root))
        .route("/latest/meta-data/", get(meta_root))
        .route("/latest/meta-data/{*path}", get(meta))
        .route("/keyplane/agent/v1/instances/{*rest}", any(agent))
        .with_state(state)
}

/// The instance's own guest agent, asking about itself.
async fn agent(
    State(s): State<Arc<MetaState>>,
    Path(rest): Path<String>,
    req: Request<Body>,
) -> Response {
    let Some(tail) = rest
        .strip_prefix(s.instance_id.as_str())
        .and_then(|r| r.strip_prefix('/'))
    else {
        return not_found();
    };
    let (parts, body) = req.into_parts();
    let Ok(body) = axum::body::to_bytes(body, AGENT_BODY_LIMIT).await else {
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            text("Request Entity Too Large\n"),
        )
            .into_response();
    };
    let raw = RawRequest {
        method: parts.method.as_str().to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().unwrap_or_default().to_string(),
        headers: parts.headers,
        body: body.to_vec(),
        head: Vec::new(),
        peer: None,
        oversized: None,
    };
    crate::agent_api::serve_instance(&s.app, &raw, &s.instance_id, tail).await
}

fn text(body: impl Into<String>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body.into(),
    )
        .into_response()
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, text("Not Found\n")).into_response()
}

async fn serve_user_data(State(s): State<Arc<MetaState>>) -> Response {
    match &s.user_data {
        Some(data) => (
            [(header::CONTENT_TYPE, "application/octet-stream")],
            data.clone(),
        )
            .into_response(),
        None => not_found(),
    }
}

async fn meta_root(state: State<Arc<MetaState>>) -> Response {
    meta(state, Path(String::new())).await
}

async fn meta(State(s): State<Arc<MetaState>>, Path(path): Path<String>) -> Response {
    let inst = match s.app.core.instance_by_id(&s.instance_id).await {
        Ok(i) => i,
        Err(_) => return not_found(),
    };
    let keys = match s.app.core.desired_ssh_state(&inst).await {
        Ok(state) => state.authorized_keys,
        Err(e) => {
            tracing::warn!(instance = %inst.id, error = %e, "metadata: cannot read the keys");
            return (StatusCode::INTERNAL_SERVER_ERROR, text("Internal Error\n")).into_response();
        }
    };
    match tree::answer(&inst, &keys, path.trim_end_matches('/')) {
        Some(body) => text(body),
        None => not_found(),
    }
}
