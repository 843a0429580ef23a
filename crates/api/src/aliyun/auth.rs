//! Authentication of ECS requests: pick the scheme (ACS3-HMAC-SHA256 `Authorization` or the
//! classic RPC `Signature` parameter), check the clock window, find the account, verify the
//! signature, refuse a reused nonce and STS tokens, and extract the business parameters.

use super::error::AliError;
use super::render::Format;
use super::signature::{
    acs3_canonical_request, acs3_signature, acs3_string_to_sign, parse_acs3_authorization,
    rpc_signature, rpc_string_to_sign,
};
use crate::common::digest::{sha256_hex, signatures_match};
use crate::common::request::RawRequest;
use crate::common::server::AppState;
use keyplane_core::account::Account;
use keyplane_core::DomainError;

/// Common parameters of RPC-signed requests; everything else is a business parameter.
const RPC_COMMON: &[&str] = &[
    "Action",
    "Format",
    "Version",
    "AccessKeyId",
    "Signature",
    "SignatureMethod",
    "SignatureVersion",
    "SignatureNonce",
    "SignatureType",
    "Timestamp",
    "SecurityToken",
];

/// A request whose signature checked out.
#[derive(Debug)]
pub struct Authenticated {
    /// The signing account.
    pub account: Account,
    /// The action name as sent.
    pub action: String,
    /// The version as sent.
    pub version: String,
    /// Business parameters (query and form body), common parameters removed.
    pub params: Vec<(String, String)>,
}

/// What the request said about itself before verification, for logs and the answer's format.
#[derive(Debug, Default, Clone)]
pub struct Claimed {
    /// Action name, if any.
    pub action: Option<String>,
    /// AccessKeyId, if any.
    pub access_key_id: Option<String>,
    /// The answer format (`Format` parameter; JSON by default).
    pub format: Format,
}

/// All parameters: the form-decoded query, then the form body when there is one.
pub fn all_params(raw: &RawRequest) -> Vec<(String, String)> {
    let mut all = raw.query_params();
    all.extend(raw.form_params());
    all
}

/// Read what the request claims (action, key id, format) without trusting it.
pub fn claim(raw: &RawRequest) -> Claimed {
    let params = all_params(raw);
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    Claimed {
        action: get("Action").or_else(|| raw.header("x-acs-action")),
        access_key_id: get("AccessKeyId").or_else(|| {
            raw.header("authorization")
                .as_deref()
                .and_then(parse_acs3_authorization)
                .map(|a| a.access_key_id)
        }),
        format: Format::parse(get("Format").as_deref()),
    }
}

fn internal(e: impl std::fmt::Display) -> AliError {
    AliError::Domain(DomainError::internal(e))
}

/// Check a signed time against the clock window.
fn check_clock(state: &AppState, name: &str, value: &str) -> Result<i64, AliError> {
    let ts = time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339)
        .map_err(|_| {
            AliError::TimestampFormat(format!(
                "The specified {name} `{value}` is not a UTC time like 2026-01-01T00:00:00Z."
            ))
        })?
        .unix_timestamp();
    // Why: Alibaba accepts 15 minutes of skew; this server applies its one configured window
    // (`--max-clock-skew-secs`, 5 minutes by default) to every dialect, as the design requires,
    // so replay is bounded the same way everywhere. Clients with a synchronised clock never
    // notice.
    if state.outside_clock_window(ts).is_some() {
        let window = state.config.max_clock_skew_secs;
        return Err(AliError::TimestampExpired(format!(
            "Specified time stamp or date value is expired: {value} differs from the server time by more than {window} seconds."
        )));
    }
    Ok(ts)
}

async fn find_account(state: &AppState, access_key_id: &str) -> Result<Account, AliError> {
    state
        .core
        .account_by_access_key_id(access_key_id)
        .await
        .map_err(AliError::from)?
        .ok_or_else(|| AliError::AccessKeyNotFound(access_key_id.to_string()))
}

async fn remember_nonce(state: &AppState, key_id: &str, nonce: &str) -> Result<(), AliError> {
    let fresh = state
        .fresh_nonce(&format!("aliyun:{key_id}"), nonce)
        .await
        .map_err(internal)?;
    if fresh {
        Ok(())
    } else {
        Err(AliError::SignatureNonceUsed(nonce.to_string()))
    }
}

/// Authenticate a request of either scheme.
pub async fn authenticate(state: &AppState, raw: &RawRequest) -> Result<Authenticated, AliError> {
    let authz = raw.headers.get("authorization").map(|v| v.as_bytes());
    match authz.filter(|a| !a.trim_ascii().is_empty()) {
        Some(bytes) => match std::str::from_utf8(bytes) {
            Ok(authz) => acs3(state, raw, authz).await,
            Err(_) => Err(AliError::IncompleteSignature(
                "The request signature does not conform to Aliyun standards: the Authorization header is not valid UTF-8.".into(),
            )),
        },
        None => rpc(state, raw).await,
    }
}

fn required(value: Option<String>, name: &str) -> Result<String, AliError> {
    value
        .filter(|v| !v.is_empty())
        .ok_or_else(|| AliError::MissingParameter(name.to_string()))
}

async fn rpc(state: &AppState, raw: &RawRequest) -> Result<Authenticated, AliError> {
    let all = all_params(raw);
    let get = |k: &str| all.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let signature = get("Signature").filter(|s| !s.is_empty()).ok_or_else(|| {
        AliError::IncompleteSignature(
            "The request signature does not conform to Aliyun standards: the Signature parameter is missing.".into(),
        )
    })?;
    let key_id = required(get("AccessKeyId"), "AccessKeyId")?;
    match get("SignatureMethod").as_deref() {
        Some("HMAC-SHA1") => {}
        other => {
            return Err(AliError::IncompleteSignature(format!(
                "The request signature does not conform to Aliyun standards: SignatureMethod must be HMAC-SHA1, not {other:?}."
            )))
        }
    }
    if get("SignatureVersion").as_deref() != Some("1.0") {
        return Err(AliError::IncompleteSignature(
            "The request signature does not conform to Aliyun standards: SignatureVersion must be 1.0.".into(),
        ));
    }
    let action = required(get("Action"), "Action")?;
    let version = required(get("Version"), "Version")?;
    let timestamp = required(get("Timestamp"), "Timestamp")?;
    let nonce = required(get("SignatureNonce"), "SignatureNonce")?;
    check_clock(state, "Timestamp", &timestamp)?;
    let account = find_account(state, &key_id).await?;
    // The empty `SignatureType=` that aliyun-python-sdk-core sends is an ordinary signed pair.
    let sts = rpc_string_to_sign(&raw.method, &all);
    let expected = rpc_signature(account.access_key_secret.expose(), &sts);
    if !signatures_match(&expected, &signature) {
        return Err(AliError::SignatureDoesNotMatch(sts));
    }
    remember_nonce(state, &key_id, &nonce).await?;
    if get("SecurityToken").is_some_and(|t| !t.is_empty()) {
        return Err(AliError::SecurityTokenRefused);
    }
    let params = all
        .into_iter()
        .filter(|(k, _)| !RPC_COMMON.contains(&k.as_str()))
        .collect();
    Ok(Authenticated {
        account,
        action,
        version,
        params,
    })
}

fn header_values(raw: &RawRequest, name: &str) -> Vec<String> {
    raw.headers
        .get_all(name)
        .iter()
        .filter_map(|v| std::str::from_utf8(v.as_bytes()).ok())
        .map(str::to_string)
        .collect()
}

async fn acs3(state: &AppState, raw: &RawRequest, authz: &str) -> Result<Authenticated, AliError> {
    let scheme = authz.split_whitespace().next().unwrap_or_default();
    if scheme != super::signature::ACS3_ALGORITHM {
        return Err(AliError::IncompleteSignature(format!(
            "The request signature does not conform to Aliyun standards: the signature algorithm \
             `{scheme}` is not supported here; sign with {}.",
            super::signature::ACS3_ALGORITHM
        )));
    }
    let auth = parse_acs3_authorization(authz).ok_or_else(|| {
        AliError::IncompleteSignature(
            "The request signature does not conform to Aliyun standards: the Authorization header is not a well-formed ACS3-HMAC-SHA256 authorization.".into(),
        )
    })?;
    // Every x-acs-* header sent, and host, must be signed, so none can be swapped in transit.
    let unsigned = raw
        .headers
        .keys()
        .map(|k| k.as_str())
        .filter(|k| k.starts_with("x-acs-") || *k == "host")
        .find(|k| !auth.signed_headers.iter().any(|h| h == k));
    if let Some(name) = unsigned {
        return Err(AliError::IncompleteSignature(format!(
            "The request signature does not conform to Aliyun standards: the header `{name}` must be in SignedHeaders."
        )));
    }
    let header = |n: &str| raw.header(n).filter(|v| !v.is_empty());
    let action = required(header("x-acs-action"), "x-acs-action")?;
    let version = required(header("x-acs-version"), "x-acs-version")?;
    let date = required(header("x-acs-date"), "x-acs-date")?;
    let nonce = required(header("x-acs-signature-nonce"), "x-acs-signature-nonce")?;
    let hashed = required(header("x-acs-content-sha256"), "x-acs-content-sha256")?;
    check_clock(state, "x-acs-date", &date)?;
    let account = find_account(state, &auth.access_key_id).await?;
    let body_hash = sha256_hex(&raw.body);
    if !signatures_match(&body_hash, &hashed) {
        return Err(AliError::SignatureDoesNotMatch(format!(
            "(x-acs-content-sha256 {hashed} is not the SHA-256 of the body, {body_hash})"
        )));
    }
    let query = raw.query_params();
    let canonical = acs3_canonical_request(
        &raw.method,
        &raw.path,
        &query,
        &|n| header_values(raw, n),
        &auth.signed_headers,
        &hashed,
    );
    let sts = acs3_string_to_sign(&canonical);
    let expected = acs3_signature(account.access_key_secret.expose(), &sts);
    if !signatures_match(&expected, &auth.signature) {
        return Err(AliError::SignatureDoesNotMatch(sts));
    }
    remember_nonce(state, &auth.access_key_id, &nonce).await?;
    if header("x-acs-security-token").is_some() {
        return Err(AliError::SecurityTokenRefused);
    }
    let mut params = query;
    params.extend(raw.form_params());
    Ok(Authenticated {
        account,
        action,
        version,
        params,
    })
}
