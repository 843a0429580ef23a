//! The web console at `/console/`: per-account pages of instances, key pairs, agents and the
//! audit trail (with filters), served by the API's own listeners.
//!
//! Sign-in: `keyplane console login-url` issues a one-time link (`/console/login?token=...`,
//! valid [`LOGIN_TTL_SECS`]); opening it trades the token for a session cookie (HttpOnly,
//! SameSite=Strict, Path=/console, Secure over HTTPS) lasting [`SESSION_TTL_SECS`]. Without a
//! session every page shows nothing of any account. Tokens are never logged.
//!
//! [`LOGIN_TTL_SECS`]: keyplane_core::console::LOGIN_TTL_SECS
//! [`SESSION_TTL_SECS`]: keyplane_core::console::SESSION_TTL_SECS

mod audit;
mod html;
mod pages;
mod view;

use crate::common::request::RawRequest;
use crate::common::server::AppState;
use audit::AuditFilter;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use keyplane_core::console::SESSION_TTL_SECS;
use keyplane_core::store::ConsoleAccount;

/// Where the console lives.
pub const PREFIX: &str = "/console";
/// The session cookie's name.
pub const COOKIE: &str = "keyplane_console";

const SCRIPT: &str = include_str!("console.js");
const STYLE: &str = include_str!("console.css");

/// Nothing but the console's own files; no inline script or style, no framing.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
     img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Whether `path` is the console's.
pub fn is_console_path(path: &str) -> bool {
    path == PREFIX || path.starts_with("/console/")
}

/// Serve a console request; `secure` when it came over HTTPS.
pub async fn handle(state: &AppState, raw: &RawRequest, secure: bool) -> Response {
    let response = match (raw.method.as_str(), raw.path.as_str()) {
        ("GET" | "HEAD", "/console") => redirect("/console/"),
        ("GET" | "HEAD", "/console/") => page(state, raw).await,
        ("GET" | "HEAD", "/console/login") => login(state, raw, secure).await,
        ("POST", "/console/logout") => logout(state, raw, secure).await,
        ("GET" | "HEAD", "/console/api/overview") => overview(state, raw).await,
        ("GET" | "HEAD", "/console/assets/console.js") => {
            asset("text/javascript; charset=utf-8", SCRIPT)
        }
        ("GET" | "HEAD", "/console/assets/console.css") => asset("text/css; charset=utf-8", STYLE),
        (_, "/console/" | "/console/login" | "/console/api/overview") => html(
            StatusCode::METHOD_NOT_ALLOWED,
            pages::message("Method not allowed", ""),
        ),
        _ => html(
            StatusCode::NOT_FOUND,
            pages::message("Not found", "There is no such console page."),
        ),
    };
    harden(response)
}

fn harden(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    r
}

fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

fn json(status: StatusCode, body: &impl serde::Serialize) -> Response {
    match serde_json::to_string(body) {
        Ok(text) => (status, [(header::CONTENT_TYPE, "application/json")], text).into_response(),
        Err(e) => internal(keyplane_core::DomainError::internal(e)),
    }
}

fn redirect(to: &'static str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response()
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response()
}

fn internal(e: keyplane_core::DomainError) -> Response {
    tracing::error!(error = %e, "console: internal error");
    html(
        StatusCode::INTERNAL_SERVER_ERROR,
        pages::message(
            "Internal error",
            "The server could not read its database; see its log.",
        ),
    )
}

/// The session token the browser presents, if any.
fn session_token(raw: &RawRequest) -> Option<String> {
    raw.headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// The signed-in account, or `None` (no cookie, or a session that ended).
async fn signed_in(
    state: &AppState,
    raw: &RawRequest,
) -> Result<Option<ConsoleAccount>, keyplane_core::DomainError> {
    match session_token(raw) {
        None => Ok(None),
        Some(token) => state.core.console_account(&token).await,
    }
}

fn cookie(value: &str, max_age: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let text = format!(
        "{COOKIE}={value}; Path={PREFIX}; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    );
    HeaderValue::from_str(&text).expect("tokens and attributes are visible ASCII")
}

/// What the console shows `account` now, its audit trail filtered by `filter` (a filter
/// time that cannot be read filters nothing, and the page says why).
async fn read(
    state: &AppState,
    account: &ConsoleAccount,
    filter: &AuditFilter,
) -> Result<view::View, keyplane_core::DomainError> {
    let overview = state.core.account_overview(&account.id).await?;
    // Refusals this node answered are in the trail before it is read.
    state.refusals.flush().await;
    let events = state.core.lookup_events(&filter.query(&account.id)).await?;
    Ok(view::view(&overview, &events.events, state.core.now()))
}

async fn page(state: &AppState, raw: &RawRequest) -> Response {
    let account = match signed_in(state, raw).await {
        Ok(Some(a)) => a,
        Ok(None) => return html(StatusCode::UNAUTHORIZED, pages::signed_out()),
        Err(e) => return internal(e),
    };
    let filter = AuditFilter::from_params(&raw.query_params());
    match read(state, &account, &filter).await {
        Ok(v) => html(StatusCode::OK, pages::dashboard(&account, &v, &filter)),
        Err(e) => internal(e),
    }
}

async fn overview(state: &AppState, raw: &RawRequest) -> Response {
    let account = match signed_in(state, raw).await {
        Ok(Some(a)) => a,
        Ok(None) => {
            return json(
                StatusCode::UNAUTHORIZED,
                &serde_json::json!({"error": "not signed in"}),
            )
        }
        Err(e) => return internal(e),
    };
    let filter = AuditFilter::from_params(&raw.query_params());
    match read(state, &account, &filter).await {
        Ok(v) => json(StatusCode::OK, &v),
        Err(e) => internal(e),
    }
}

async fn login(state: &AppState, raw: &RawRequest, secure: bool) -> Response {
    let token = raw
        .query_params()
        .into_iter()
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v);
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return html(StatusCode::FORBIDDEN, pages::login_refused());
    };
    match state.core.redeem_console_login(&token).await {
        Ok(Some(session)) => {
            tracing::info!(account = %session.account.id, "console: signed in");
            let mut r = redirect("/console/");
            r.headers_mut().insert(
                header::SET_COOKIE,
                cookie(session.token.expose(), SESSION_TTL_SECS, secure),
            );
            r
        }
        Ok(None) => html(StatusCode::FORBIDDEN, pages::login_refused()),
        Err(e) => internal(e),
    }
}

async fn logout(state: &AppState, raw: &RawRequest, secure: bool) -> Response {
    if let Some(token) = session_token(raw) {
        if let Err(e) = state.core.end_console_session(&token).await {
            return internal(e);
        }
    }
    let mut r = redirect("/console/");
    r.headers_mut()
        .insert(header::SET_COOKIE, cookie("", 0, secure));
    r
}
