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
use keyplane_core::instance::Instance;
use std::sync::Arc;

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
    match answer(&inst, &keys, path.trim_end_matches('/')) {
        Some(body) => text(body),
        None => not_found(),
    }
}

/// The answer at `path` (below `latest/meta-data/`, without a trailing slash), or `None`.
fn answer(inst: &Instance, keys: &[String], path: &str) -> Option<String> {
    let leaf = |v: &str| Some(v.to_string());
    let list = |entries: &[&str]| Some(entries.iter().map(|e| format!("{e}\n")).collect());
    match path {
        "" => list(&[
            "hostname",
            "instance-id",
            "instance-name",
            "local-ipv4",
            "placement/",
            "private-ipv4",
            "public-keys/",
            "region-id",
            "zone-id",
        ]),
        "instance-id" => leaf(&inst.id),
        "instance-name" => leaf(&inst.name),
        "hostname" => leaf(&inst.host_name),
        // Tencent calls it local-ipv4, Alibaba private-ipv4.
        "local-ipv4" | "private-ipv4" => leaf(&inst.private_ip),
        "placement" => list(&["region", "zone"]),
        "placement/region" | "region-id" => leaf(&inst.region),
        "placement/zone" | "zone-id" => leaf(&inst.zone),
        "public-keys" => Some(
            inst.effective_key_ids
                .iter()
                .take(keys.len())
                .enumerate()
                .map(|(i, id)| format!("{i}={id}\n"))
                .collect(),
        ),
        _ => {
            let rest = path.strip_prefix("public-keys/")?;
            let (index, field) = rest.split_once('/').unwrap_or((rest, ""));
            let key = keys.get(index.parse::<usize>().ok()?)?;
            match field {
                "" => list(&["openssh-key"]),
                "openssh-key" => Some(format!("{key}\n")),
                _ => None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyplane_core::instance::{HostKind, InstanceState, OsType};
    use keyplane_core::keypair::Namespace;

    fn inst() -> Instance {
        Instance {
            id: "ins-abc".into(),
            account_id: "acc".into(),
            namespace: Namespace::Cvm,
            region: "ap-guangzhou".into(),
            zone: "ap-guangzhou-3".into(),
            name: "web".into(),
            host_name: "web-1".into(),
            image_id: "img-kpdeb12x".into(),
            os: OsType::Linux,
            os_name: "Debian".into(),
            instance_type: "S5.SMALL1".into(),
            state: InstanceState::Running,
            host: HostKind::Sandbox,
            private_ip: "127.1.0.7".into(),
            ssh_port: 22,
            password_hash: None,
            key_ids: vec!["skey-1".into()],
            effective_key_ids: vec!["skey-1".into()],
            desired_generation: 1,
            applied_generation: 1,
            latest_operation: None,
            latest_operation_state: None,
            latest_operation_request_id: None,
            latest_operation_error: None,
            created_at: 0,
        }
    }

    #[test]
    fn answers_about_the_instance() {
        let i = inst();
        let keys = vec!["ssh-ed25519 AAAA me".to_string()];
        assert_eq!(answer(&i, &keys, "instance-id").unwrap(), "ins-abc");
        assert_eq!(answer(&i, &keys, "local-ipv4").unwrap(), "127.1.0.7");
        assert_eq!(answer(&i, &keys, "private-ipv4").unwrap(), "127.1.0.7");
        assert_eq!(
            answer(&i, &keys, "placement/zone").unwrap(),
            "ap-guangzhou-3"
        );
        assert_eq!(answer(&i, &keys, "public-keys").unwrap(), "0=skey-1\n");
        assert_eq!(
            answer(&i, &keys, "public-keys/0/openssh-key").unwrap(),
            "ssh-ed25519 AAAA me\n"
        );
        assert!(answer(&i, &keys, "public-keys/1/openssh-key").is_none());
        assert!(answer(&i, &keys, "nope").is_none());
        assert!(answer(&i, &keys, "").unwrap().contains("instance-id\n"));
    }
}
