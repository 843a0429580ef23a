//! Authentication of legacy v2 requests: the v1 signature (HmacSHA1 by default, HmacSHA256)
//! over `METHOD + Host + /v2/index.php + ? + sorted params`, the clock window, and the nonce.

use super::error::LegacyError;
use crate::common::digest::signatures_match;
use crate::common::request::RawRequest;
use crate::common::server::AppState;
use crate::tencent::signature::{v1_signature, v1_string_to_sign, V1Method};
use keyplane_core::account::Account;

/// Common parameters; everything else is a business parameter of the action.
// Why: the legacy pages list Action, Region, Timestamp, Nonce, SecretId, Signature (plus
// SignatureMethod and Token); the SDKs that sign v1 also send RequestClient, Version and
// Language. Those three are accepted and ignored rather than refused as unknown.
const COMMON: &[&str] = &[
    "Action",
    "Region",
    "Timestamp",
    "Nonce",
    "SecretId",
    "Signature",
    "SignatureMethod",
    "Token",
    "RequestClient",
    "Version",
    "Language",
];

/// Nonce scope prefix, distinct from API 3.0's `tc-v1:` so the two dialects never collide.
pub const NONCE_SCOPE: &str = "tc-v2:";

/// A request whose signature checked out.
#[derive(Debug)]
pub struct Authenticated {
    /// The signing account.
    pub account: Account,
    /// The action name as sent.
    pub action: String,
    /// The `Region` parameter, when given.
    pub region: Option<String>,
    /// Business parameters (everything but the common ones), decoded, in order.
    pub params: Vec<(String, String)>,
}

/// What the request said about itself before verification, for logs.
#[derive(Debug, Default, Clone)]
pub struct Claimed {
    /// Action name, if any.
    pub action: Option<String>,
    /// SecretId, if any.
    pub secret_id: Option<String>,
}

fn check_clock(state: &AppState, timestamp: &str) -> Result<i64, LegacyError> {
    let ts: i64 = timestamp.trim().parse().map_err(|_| {
        LegacyError::InvalidParameter(format!(
            "The Timestamp `{timestamp}` is not a unix time in seconds."
        ))
    })?;
    if let Some(now) = state.outside_clock_window(ts) {
        let window = state.config.max_clock_skew_secs;
        return Err(LegacyError::TimestampExpired(format!(
            "The Timestamp {ts} and the server time {now} differ by more than {window} seconds."
        )));
    }
    Ok(ts)
}

async fn find_account(state: &AppState, secret_id: &str) -> Result<Account, LegacyError> {
    state
        .core
        .account_by_secret_id(secret_id)
        .await
        .map_err(LegacyError::Domain)?
        .ok_or_else(|| LegacyError::SecretIdNotFound(secret_id.to_string()))
}

/// All parameters: the query, plus the form body of a POST.
pub fn all_params(raw: &RawRequest) -> Result<Vec<(String, String)>, LegacyError> {
    let mut all = raw.query_params();
    match raw.method.as_str() {
        "GET" => {}
        "POST" => all.extend(raw.form_params()),
        m => {
            return Err(LegacyError::InvalidParameter(format!(
                "The HTTP method {m} is not supported; use GET or POST."
            )))
        }
    }
    Ok(all)
}

/// Authenticate a v1-signed legacy request.
pub async fn authenticate(
    state: &AppState,
    raw: &RawRequest,
    claimed: &mut Claimed,
) -> Result<Authenticated, LegacyError> {
    let all = all_params(raw)?;
    let get = |k: &str| all.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    claimed.action = get("Action");
    claimed.secret_id = get("SecretId");
    let required = |k: &str| {
        get(k)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| LegacyError::MissingParameter(k.into()))
    };
    let action = required("Action")?;
    let secret_id = required("SecretId")?;
    let timestamp = required("Timestamp")?;
    let nonce = required("Nonce")?;
    let signature = get("Signature").filter(|v| !v.is_empty()).ok_or_else(|| {
        LegacyError::SignatureFailure("The request is not signed: Signature is missing.".into())
    })?;
    let method = V1Method::parse(get("SignatureMethod").as_deref()).ok_or_else(|| {
        LegacyError::SignatureFailure("SignatureMethod must be HmacSHA1 or HmacSHA256.".into())
    })?;
    let ts = check_clock(state, &timestamp)?;
    let account = find_account(state, &secret_id).await?;
    let host = raw.header("host").unwrap_or_default();
    let plaintext = v1_string_to_sign(&raw.method, &host, &raw.path, &all);
    let expected = v1_signature(account.secret_key.expose(), method, &plaintext);
    if !signatures_match(&expected, &signature) {
        return Err(LegacyError::SignatureFailure(
            "The signature does not match: sign METHOD + Host + /v2/index.php + ? + the sorted parameters with your SecretKey.".into(),
        ));
    }
    let fresh = state
        .fresh_nonce(
            &format!("{NONCE_SCOPE}{secret_id}"),
            &format!("{ts}:{nonce}"),
        )
        .await
        .map_err(LegacyError::Domain)?;
    if !fresh {
        return Err(LegacyError::NonceReused(format!(
            "The Nonce {nonce} with Timestamp {ts} was already used: a signed request cannot be replayed."
        )));
    }
    if get("Token").is_some_and(|t| !t.is_empty()) {
        return Err(LegacyError::TokenFailure);
    }
    let region = get("Region");
    let params = all
        .into_iter()
        .filter(|(k, _)| !COMMON.contains(&k.as_str()))
        .collect();
    Ok(Authenticated {
        account,
        action,
        region,
        params,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// The worked example of the legacy signature page (云服务器API（旧版）/调用方式/签名方法).
    #[test]
    fn the_vendor_worked_example_verifies() {
        let params = p(&[
            ("Action", "DescribeInstances"),
            ("SecretId", "AKIDz8krbsJ5yKBZQpn74WFkmLPx3gnPhESA"),
            ("Timestamp", "1465185768"),
            ("Nonce", "11886"),
            ("Region", "ap-guangzhou"),
            ("SignatureMethod", "HmacSHA256"),
            ("InstanceIds.0", "ins-09dx96dg"),
        ]);
        let plaintext = v1_string_to_sign("GET", "cvm.api.qcloud.com", "/v2/index.php", &params);
        assert_eq!(
            plaintext,
            "GETcvm.api.qcloud.com/v2/index.php?Action=DescribeInstances&InstanceIds.0=ins-09dx96dg&Nonce=11886&Region=ap-guangzhou&SecretId=AKIDz8krbsJ5yKBZQpn74WFkmLPx3gnPhESA&SignatureMethod=HmacSHA256&Timestamp=1465185768"
        );
        let key = "Gu5t9xGARNpq86cd98joQYCN3Cozk1qA";
        assert_eq!(
            v1_signature(key, V1Method::HmacSha256, &plaintext),
            "0EEm/HtGRr/VJXTAD9tYMth1Bzm3lLHz5RCDv1GdM8s="
        );
        assert_eq!(
            v1_signature(key, V1Method::HmacSha1, &plaintext),
            "RVSD1I6ip2Zo56I2HdqRVrt+1TE="
        );
    }

    #[test]
    fn the_nonce_scope_differs_from_api_3() {
        assert_ne!(NONCE_SCOPE, "tc-v1:");
    }
}
