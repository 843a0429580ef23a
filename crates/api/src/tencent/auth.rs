//! Authentication of Tencent API 3.0 requests: pick the signature scheme, check the clock
//! window and nonce, find the account, verify the signature, and extract the parameters.

use super::error::TcError;
use super::router::Product;
use super::signature::{
    parse_tc3_authorization, tc3_canonical_request, tc3_signature_with_key, tc3_string_to_sign,
    v1_signature, v1_string_to_sign, Tc3Authorization, V1Method, UNSIGNED_PAYLOAD,
};
use crate::common::digest::{sha256_hex, signatures_match};
use crate::common::params::unflatten;
use crate::common::request::RawRequest;
use crate::common::server::AppState;
use keyplane_core::account::Account;
use serde_json::{Map, Value};

/// Common parameters of v1-signed requests; everything else is a business parameter.
const V1_COMMON: &[&str] = &[
    "Action",
    "Version",
    "Region",
    "Timestamp",
    "Nonce",
    "SecretId",
    "Signature",
    "SignatureMethod",
    "Token",
    "Language",
    "RequestClient",
];

/// A request whose signature checked out.
#[derive(Debug)]
pub struct Authenticated {
    /// The signing account.
    pub account: Account,
    /// The product addressed.
    pub product: Product,
    /// The action name as sent.
    pub action: String,
    /// The region, when given.
    pub region: Option<String>,
    /// Business parameters as a JSON object.
    pub params: Value,
}

/// What the request said about itself before verification, for logs and error mapping.
#[derive(Debug, Default, Clone)]
pub struct Claimed {
    /// Action name, if any.
    pub action: Option<String>,
    /// SecretId, if any.
    pub secret_id: Option<String>,
}

fn check_clock(state: &AppState, timestamp: &str) -> Result<i64, TcError> {
    let ts: i64 = timestamp.trim().parse().map_err(|_| {
        TcError::InvalidParameter(format!(
            "The Timestamp `{timestamp}` is not a unix time in seconds."
        ))
    })?;
    if let Some(now) = state.outside_clock_window(ts) {
        return Err(TcError::SignatureExpire(format!(
            "Signature expired: the request timestamp {ts} and the server time {now} differ by more than {} seconds.",
            state.config.max_clock_skew_secs
        )));
    }
    Ok(ts)
}

async fn find_account(state: &AppState, secret_id: &str) -> Result<Account, TcError> {
    state
        .core
        .account_by_secret_id(secret_id)
        .await
        .map_err(TcError::Domain)?
        .ok_or_else(|| TcError::SecretIdNotFound(secret_id.to_string()))
}

fn utc_date(ts: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ts)
        .map(|t| {
            let d = t.date();
            format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
        })
        .unwrap_or_default()
}

/// Authenticate a request of either scheme.
pub async fn authenticate(
    state: &AppState,
    raw: &RawRequest,
    claimed: &mut Claimed,
) -> Result<Authenticated, TcError> {
    match raw.header("authorization").filter(|a| !a.trim().is_empty()) {
        Some(authz) => tc3(state, raw, &authz, claimed).await,
        None => v1(state, raw, claimed).await,
    }
}

fn required_header(raw: &RawRequest, name: &str) -> Result<String, TcError> {
    raw.header(name)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| TcError::MissingParameter(name.to_string()))
}

async fn tc3(
    state: &AppState,
    raw: &RawRequest,
    authz: &str,
    claimed: &mut Claimed,
) -> Result<Authenticated, TcError> {
    let auth = parse_tc3_authorization(authz).ok_or_else(|| {
        TcError::SignatureFailure(
            "The Authorization header is not a well-formed TC3-HMAC-SHA256 authorization.".into(),
        )
    })?;
    claimed.secret_id = Some(auth.secret_id.clone());
    let action = required_header(raw, "x-tc-action")?;
    claimed.action = Some(action.clone());
    let version = required_header(raw, "x-tc-version")?;
    let timestamp = required_header(raw, "x-tc-timestamp")?;
    let ts = check_clock(state, &timestamp)?;
    check_scope(&auth, ts)?;
    let account = find_account(state, &auth.secret_id).await?;
    if !tc3_verifies(state, raw, &auth, &account, &timestamp) {
        return Err(TcError::SignatureFailure(
            "The provided credentials could not be validated: the signature does not match. Check your SecretKey and the signing steps.".into(),
        ));
    }
    // Why: TC3 requests carry no nonce, and an identical request re-sent in the same second
    // has an identical signature; refusing repeats would break honest polling clients. Replay
    // is bounded by the 5-minute timestamp window, as on the real service.
    if raw.header("x-tc-token").is_some_and(|t| !t.is_empty()) {
        return Err(TcError::TokenFailure);
    }
    let product = Product::resolve(&auth.service, &version)?;
    Ok(Authenticated {
        account,
        product,
        action,
        region: raw.header("x-tc-region").filter(|r| !r.is_empty()),
        params: tc3_params(raw)?,
    })
}

/// The credential scope's date must be the timestamp's UTC date, and the signature must
/// cover `content-type` and `host`.
fn check_scope(auth: &Tc3Authorization, ts: i64) -> Result<(), TcError> {
    if auth.date != utc_date(ts) {
        return Err(TcError::SignatureFailure(format!(
            "The credential date {} is not the UTC date of X-TC-Timestamp {ts}.",
            auth.date
        )));
    }
    for needed in ["content-type", "host"] {
        if !auth.signed_headers.iter().any(|h| h == needed) {
            return Err(TcError::SignatureFailure(format!(
                "SignedHeaders must include `{needed}`."
            )));
        }
    }
    Ok(())
}

/// Whether the TC3 signature of `raw` is `account`'s.
fn tc3_verifies(
    state: &AppState,
    raw: &RawRequest,
    auth: &Tc3Authorization,
    account: &Account,
    timestamp: &str,
) -> bool {
    let payload = if raw.header("x-tc-content-sha256").as_deref() == Some(UNSIGNED_PAYLOAD) {
        sha256_hex(UNSIGNED_PAYLOAD.as_bytes())
    } else {
        sha256_hex(&raw.body)
    };
    let query = if raw.method == "GET" {
        raw.query.as_str()
    } else {
        ""
    };
    let signing_key = state
        .tc3_keys
        .get(account.secret_key.expose(), &auth.date, &auth.service);
    let verifies = |host: Option<String>| {
        let canonical = tc3_canonical_request(
            &raw.method,
            query,
            &|n| {
                if n == "host" {
                    host.clone()
                } else {
                    raw.header(n)
                }
            },
            &auth.signed_headers,
            &payload,
        );
        let sts = tc3_string_to_sign(timestamp, &auth.date, &auth.service, &canonical);
        signatures_match(&tc3_signature_with_key(&signing_key, &sts), &auth.signature)
    };
    let host = raw.header("host");
    // Why: the cloud is reached on the default port, where the Host header is the host name.
    // Here the endpoint has a port, and the Node.js SDK signs `host:<host name>` (the URL's
    // hostname) while it sends `Host: <name>:<port>`; the host name without the port is
    // accepted as the signed host too.
    verifies(host.clone())
        || host
            .as_deref()
            .and_then(host_without_port)
            .is_some_and(|name| verifies(Some(name.to_string())))
}

/// A TC3 request's business parameters: the query of a GET, the JSON body of a POST.
fn tc3_params(raw: &RawRequest) -> Result<Value, TcError> {
    match raw.method.as_str() {
        "GET" => Ok(unflatten(&raw.query_params(), false)?),
        "POST" => json_body(raw),
        m => Err(TcError::InvalidParameter(format!(
            "The HTTP method {m} is not supported; use POST or GET."
        ))),
    }
}

/// `name` of a `name:port` Host header (`[::1]` of `[::1]:8787`), when it has a port.
fn host_without_port(host: &str) -> Option<&str> {
    let (name, port) = host.rsplit_once(':')?;
    let bracketed_v6 = name.starts_with('[') && name.ends_with(']');
    let ok = !port.is_empty()
        && port.bytes().all(|b| b.is_ascii_digit())
        && (bracketed_v6 || !name.contains(':') || name.contains("//"));
    ok.then_some(name)
}

fn json_body(raw: &RawRequest) -> Result<Value, TcError> {
    if raw.media_type() != "application/json" {
        return Err(TcError::InvalidParameter(format!(
            "TC3 POST requests must carry a JSON body with Content-Type application/json, not `{}`.",
            raw.header("content-type").unwrap_or_default()
        )));
    }
    if raw.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Map::new()));
    }
    match serde_json::from_slice::<Value>(&raw.body) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(TcError::InvalidParameter(
            "The request body must be a JSON object.".into(),
        )),
        Err(e) => Err(TcError::InvalidParameter(format!(
            "The request body is not valid JSON: {e}."
        ))),
    }
}

async fn v1(
    state: &AppState,
    raw: &RawRequest,
    claimed: &mut Claimed,
) -> Result<Authenticated, TcError> {
    let mut all = raw.query_params();
    if raw.method == "POST" {
        all.extend(raw.form_params());
    }
    let get = |k: &str| all.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    claimed.action = get("Action");
    claimed.secret_id = get("SecretId");
    let required = |k: &str| {
        get(k)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| TcError::MissingParameter(k.into()))
    };
    let action = required("Action")?;
    if get("Signature").is_none() {
        return Err(TcError::SignatureFailure(
            "The request is not signed: give a TC3-HMAC-SHA256 Authorization header or the Signature parameter.".into(),
        ));
    }
    let secret_id = required("SecretId")?;
    let version = required("Version")?;
    let timestamp = required("Timestamp")?;
    let nonce = required("Nonce")?;
    let signature = required("Signature")?;
    let method = V1Method::parse(get("SignatureMethod").as_deref()).ok_or_else(|| {
        TcError::SignatureFailure("SignatureMethod must be HmacSHA1 or HmacSHA256.".into())
    })?;
    let ts = check_clock(state, &timestamp)?;
    let account = find_account(state, &secret_id).await?;
    let host = raw.header("host").unwrap_or_default();
    let plaintext = v1_string_to_sign(&raw.method, &host, &raw.path, &all);
    let expected = v1_signature(account.secret_key.expose(), method, &plaintext);
    if !signatures_match(&expected, &signature) {
        return Err(TcError::SignatureFailure(
            "The provided credentials could not be validated: the signature does not match. Check your SecretKey and the signing steps.".into(),
        ));
    }
    let fresh = state
        .fresh_nonce(&format!("tc-v1:{secret_id}"), &format!("{ts}:{nonce}"))
        .await?;
    if !fresh {
        return Err(TcError::SignatureFailure(format!(
            "The Nonce {nonce} with Timestamp {ts} was already used: a signed request cannot be replayed."
        )));
    }
    if get("Token").is_some_and(|t| !t.is_empty()) {
        return Err(TcError::TokenFailure);
    }
    let product = Product::from_version(&version)?;
    let region = get("Region").filter(|r| !r.is_empty());
    let business: Vec<(String, String)> = all
        .into_iter()
        .filter(|(k, _)| !V1_COMMON.contains(&k.as_str()))
        .collect();
    Ok(Authenticated {
        account,
        product,
        action,
        region,
        params: unflatten(&business, false)?,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn host_without_port() {
        use super::host_without_port as f;
        assert_eq!(f("127.0.0.1:8787"), Some("127.0.0.1"));
        assert_eq!(f("cvm.localhost:8443"), Some("cvm.localhost"));
        assert_eq!(f("[::1]:8787"), Some("[::1]"));
        assert_eq!(f("localhost"), None);
        assert_eq!(f("[::1]"), None);
        assert_eq!(f("::1"), None);
        assert_eq!(f("127.0.0.1:"), None);
    }
}
