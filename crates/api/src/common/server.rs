//! The HTTP server: one listener, every dialect. A request is routed to its dialect by what
//! it carries (path, `Authorization` scheme, signature parameters), never by port.

use super::envelope::{classify, Envelope};
use super::listener::LongTarget;
use super::ratelimit::Limiter;
use super::request::{RawRequest, HEAD_BYTES};
use super::serve::serve;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use keyplane_core::Core;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// API settings.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Requests per second per account and action (the providers' documented 10); 0 disables.
    pub rate_limit_per_second: u32,
    /// Largest accepted clock difference between a signed timestamp and the server, seconds.
    pub max_clock_skew_secs: i64,
    /// Largest accepted request body, bytes.
    pub max_body_bytes: usize,
    /// How often an agent's long poll looks in the database for a change this node was not
    /// told about (one made through another node).
    pub agent_poll_fallback: std::time::Duration,
    /// Whether `GET /metrics` is served on the API's own listeners (it can be served on an
    /// address of its own instead, with [`metrics_router`], or not at all).
    pub metrics_on_api: bool,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            rate_limit_per_second: 10,
            max_clock_skew_secs: 300,
            max_body_bytes: 1024 * 1024,
            agent_poll_fallback: std::time::Duration::from_secs(1),
            metrics_on_api: true,
        }
    }
}

/// Shared state of every request handler.
pub struct AppState {
    /// The domain service.
    pub core: Core,
    /// Settings.
    pub config: ApiConfig,
    /// Rate limiter.
    pub limiter: Limiter,
    /// Carries the id of every instance whose desired SSH state changes on this node, so the
    /// agents' long polls answer at once.
    pub ssh_changes: tokio::sync::broadcast::Sender<String>,
    /// Refused requests' audit events on their way to the store.
    pub refusals: crate::common::audit::RefusalLog,
    /// TC3 signing keys derived so far, by secret, date and service.
    pub tc3_keys: crate::tencent::signing_keys::SigningKeys,
}

impl AppState {
    /// State over a domain service.
    pub fn new(core: Core, config: ApiConfig) -> Arc<AppState> {
        let limiter = Limiter::with_rates(
            config.rate_limit_per_second,
            crate::common::ratelimit::DOCUMENTED_RATES,
        );
        Arc::new(AppState {
            refusals: crate::common::audit::RefusalLog::start(core.clone()),
            core,
            config,
            limiter,
            ssh_changes: tokio::sync::broadcast::channel(4096).0,
            tc3_keys: Default::default(),
        })
    }
}

impl AppState {
    /// `None` when the signed unix time `ts` is within the accepted clock window; otherwise
    /// the server's time, for the dialect's refusal message.
    pub fn outside_clock_window(&self, ts: i64) -> Option<i64> {
        let now = self.core.now();
        ((now - ts).abs() > self.config.max_clock_skew_secs).then_some(now)
    }

    /// Record a signed request's nonce in `scope` (dialect and credential); `false` when it
    /// was already used. A nonce is remembered for twice the clock window, which outlives
    /// every timestamp the window still accepts.
    pub async fn fresh_nonce(
        &self,
        scope: &str,
        nonce: &str,
    ) -> Result<bool, keyplane_core::DomainError> {
        let expires = self.core.now() + 2 * self.config.max_clock_skew_secs + 1;
        self.core.remember_nonce(scope, nonce, expires).await
    }
}

/// Marks requests that arrived over HTTPS (set by [`crate::run_tls`]).
#[derive(Debug, Clone, Copy)]
pub struct ServedOverTls;

/// The axum router serving every dialect.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new().fallback(entry).with_state(state)
}

/// Where the metrics are served.
pub const METRICS_PATH: &str = "/metrics";

/// A router that serves only `GET /metrics`, for a listener of its own.
pub fn metrics_router(state: Arc<AppState>) -> Router {
    Router::new()
        .route(
            METRICS_PATH,
            axum::routing::get(|State(s): State<Arc<AppState>>| async move { metrics(&s).await }),
        )
        .with_state(state)
}

/// The metrics in Prometheus' text format, with the instance counts read from the store now.
async fn metrics(state: &AppState) -> Response {
    if let Err(e) = state.core.refresh_instance_metrics().await {
        tracing::warn!(error = %e, "metrics: cannot count the instances");
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.core.metrics().encode(),
    )
        .into_response()
}

async fn entry(State(state): State<Arc<AppState>>, req: Request<Body>) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let (parts, body) = req.into_parts();
    let limit = state.config.max_body_bytes;
    let (body, head, oversized) = match read_body(body, limit).await {
        Ok(b) => (b, Vec::new(), None),
        Err(head) => (Vec::new(), head, Some(limit)),
    };
    let mut raw = RawRequest {
        method: parts.method.as_str().to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().unwrap_or_default().to_string(),
        headers: parts.headers,
        body,
        head,
        peer,
        oversized,
    };
    // A request line too long for hyper: its real target, and its dialect's size error.
    if let Some(LongTarget(target)) = parts.extensions.get::<LongTarget>() {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        (raw.path, raw.query) = (path.to_string(), query.to_string());
        raw.oversized = Some(usize::from(u16::MAX) - 1);
    }
    if raw.path == "/healthz" {
        return (StatusCode::OK, "ok\n").into_response();
    }
    if raw.path == METRICS_PATH && state.config.metrics_on_api {
        return metrics(&state).await;
    }
    if raw.path == crate::agent_api::REGISTER {
        return crate::agent_api::register(&state, &raw).await;
    }
    if raw.path.starts_with(crate::agent_api::PREFIX) {
        return crate::agent_api::handle(&state, &raw).await;
    }
    if crate::console::is_console_path(&raw.path) {
        let secure = parts.extensions.get::<ServedOverTls>().is_some();
        return crate::console::handle(&state, &raw, secure).await;
    }
    serve_dialect(&state, &raw).await
}

/// Hand `raw` to the dialect it says it is in ([`classify`]).
pub(crate) async fn serve_dialect(state: &AppState, raw: &RawRequest) -> Response {
    match classify(raw) {
        Envelope::TencentLegacy => serve(&crate::tencent::legacy::Legacy, state, raw).await,
        Envelope::Aliyun => serve(&crate::aliyun::AliyunRpc, state, raw).await,
        Envelope::TencentV3 => serve(&crate::tencent::TencentV3, state, raw).await,
    }
}

/// The body, or, past `limit` bytes (or when it cannot be read whole), its first
/// [`HEAD_BYTES`] bytes.
async fn read_body(mut body: Body, limit: usize) -> Result<Vec<u8>, Vec<u8>> {
    use http_body_util::BodyExt;
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            out.truncate(HEAD_BYTES);
            return Err(out);
        };
        if let Ok(data) = frame.into_data() {
            if out.len() + data.len() > limit {
                let room = HEAD_BYTES.saturating_sub(out.len()).min(data.len());
                out.extend_from_slice(&data[..room]);
                out.truncate(HEAD_BYTES);
                return Err(out);
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(out)
}

/// The rate limiter's periodic clean-up, until the handle is aborted.
pub(crate) fn housekeeping(state: Arc<AppState>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            state.limiter.housekeeping();
        }
    })
}

/// Serve on `listener` until `shutdown` resolves, then drain open requests.
pub async fn run(
    state: Arc<AppState>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let housekeeping = housekeeping(state.clone());
    let app = router(state);
    let result = super::listener::accept_loop(app, listener, shutdown).await;
    housekeeping.abort();
    result
}
