//! The baseline server: bare axum that verifies a TC3-HMAC-SHA256 signature (the same
//! canonical request, key derivation and HMACs Keyplane does) against one fixed credential and
//! answers a constant. What Keyplane is measured against.

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use keyplane_api::signature::tencent::{
    parse_tc3_authorization, tc3_canonical_request, tc3_signature, tc3_string_to_sign,
};
use keyplane_api::signature::{sha256_hex, signatures_match};

/// The baseline's SecretId.
pub const SECRET_ID: &str = "AKIDbaselinebaselinebaseline0000";
/// The baseline's SecretKey.
pub const SECRET_KEY: &str = "baselinebaselinebaselinebaseline";

const ANSWER: &str = r#"{"Response":{"TotalCount":1,"KeyPairSet":[],"RequestId":"00000000-0000-0000-0000-000000000000"}}"#;

fn verify(method: &Method, headers: &HeaderMap, body: &[u8]) -> bool {
    let header = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let Some(auth) = header("authorization").and_then(|a| parse_tc3_authorization(&a)) else {
        return false;
    };
    let Some(timestamp) = header("x-tc-timestamp") else {
        return false;
    };
    if auth.secret_id != SECRET_ID {
        return false;
    }
    let canonical = tc3_canonical_request(
        method.as_str(),
        "",
        &header,
        &auth.signed_headers,
        &sha256_hex(body),
    );
    let sts = tc3_string_to_sign(&timestamp, &auth.date, &auth.service, &canonical);
    let expected = tc3_signature(SECRET_KEY, &auth.date, &auth.service, &sts);
    signatures_match(&expected, &auth.signature)
}

async fn handle(method: Method, headers: HeaderMap, body: Bytes) -> Response {
    if !verify(&method, &headers, &body) {
        return (
            StatusCode::FORBIDDEN,
            r#"{"Response":{"Error":{"Code":"AuthFailure.SignatureFailure"}}}"#,
        )
            .into_response();
    }
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        ANSWER,
    )
        .into_response()
}

/// Serve the baseline on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener) -> std::io::Result<()> {
    let app = axum::Router::new().fallback(handle);
    axum::serve(listener, app).await
}
