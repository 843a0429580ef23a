//! Tencent Cloud signatures, as pure functions: TC3-HMAC-SHA256 and the older v1
//! HmacSHA1/HmacSHA256 scheme (also used by the legacy `/v2/index.php` API).
//!
//! Both are verified byte for byte against requests captured from the official clients
//! (`tests/fixtures/captures`).

use crate::common::digest::{hmac_sha1, hmac_sha256, sha256_hex};
use base64::Engine;

// ---- Constants used in TC3 signatures ----
/// The TC3 algorithm name, first word of the `Authorization` header.
pub const TC3_ALGORITHM: &str = "TC3-HMAC-SHA256";
/// With `X-TC-Content-SHA256: UNSIGNED-PAYLOAD` the body is not signed: this literal is
/// hashed in its place.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

/// The parsed `Authorization: TC3-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tc3Authorization {
    /// The SecretId.
    pub secret_id: String,
    /// `YYYY-MM-DD`, the UTC date of X-TC-Timestamp.
    pub date: String,
    /// The product (`cvm`, `lighthouse`).
    pub service: String,
    /// Lower-case header names, in the order given.
    pub signed_headers: Vec<String>,
    /// 64 hex digits.
    pub signature: String,
}

/// Parse a TC3 `Authorization` header; `None` when it is not well formed.
pub fn parse_tc3_authorization(value: &str) -> Option<Tc3Authorization> {
    let rest = value.trim().strip_prefix(TC3_ALGORITHM)?.trim_start();
    let mut credential = None;
    let mut signed = None;
    let mut signature = None;
    for part in rest.split(',') {
        let (k, v) = part.trim().split_once('=')?;
        match k {
            "Credential" => credential = Some(v),
            "SignedHeaders" => signed = Some(v),
            "Signature" => signature = Some(v),
            _ => return None,
        }
    }
    let mut scope = credential?.split('/');
    let secret_id = scope.next()?.to_string();
    let date = scope.next()?.to_string();
    let service = scope.next()?.to_string();
    if scope.next()? != "tc3_request" || scope.next().is_some() || secret_id.is_empty() {
        return None;
    }
    let signed_headers: Vec<String> = signed?.split(';').map(str::to_string).collect();
    if signed_headers
        .iter()
        .any(|h| h.is_empty() || *h != h.to_ascii_lowercase())
    {
        return None;
    }
    Some(Tc3Authorization {
        secret_id,
        date,
        service,
        signed_headers,
        signature: signature?.to_string(),
    })
}

/// The TC3 canonical request. `canonical_query` is `""` for POST and the raw query string,
/// exactly as received, for GET. `header` returns the raw value of a header by lower-case name.
pub fn tc3_canonical_request(
    method: &str,
    canonical_query: &str,
    header: &dyn Fn(&str) -> Option<String>,
    signed_headers: &[String],
    hashed_payload: &str,
) -> String {
    let mut canonical_headers = String::new();
    for name in signed_headers {
        let value = header(name).unwrap_or_default();
        canonical_headers.push_str(name);
        canonical_headers.push(':');
        canonical_headers.push_str(&value.trim().to_ascii_lowercase());
        canonical_headers.push('\n');
    }
    format!(
        "{method}\n/\n{canonical_query}\n{canonical_headers}\n{}\n{hashed_payload}",
        signed_headers.join(";")
    )
}

/// The TC3 string to sign.
pub fn tc3_string_to_sign(timestamp: &str, date: &str, service: &str, canonical: &str) -> String {
    format!(
        "{TC3_ALGORITHM}\n{timestamp}\n{date}/{service}/tc3_request\n{}",
        sha256_hex(canonical.as_bytes())
    )
}

/// The TC3 signing key of a secret for one UTC date (`YYYY-MM-DD`) and service.
pub fn tc3_signing_key(secret_key: &str, date: &str, service: &str) -> [u8; 32] {
    let k_date = hmac_sha256(format!("TC3{secret_key}").as_bytes(), date.as_bytes());
    let k_service = hmac_sha256(&k_date, service.as_bytes());
    hmac_sha256(&k_service, b"tc3_request")
}

/// The TC3 signature (hex) of `string_to_sign` with a signing key ([`tc3_signing_key`]).
pub fn tc3_signature_with_key(signing_key: &[u8; 32], string_to_sign: &str) -> String {
    hex::encode(hmac_sha256(signing_key, string_to_sign.as_bytes()))
}

/// The TC3 signature (hex) of `string_to_sign`.
pub fn tc3_signature(secret_key: &str, date: &str, service: &str, string_to_sign: &str) -> String {
    tc3_signature_with_key(&tc3_signing_key(secret_key, date, service), string_to_sign)
}

/// The v1 HMAC variants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum V1Method {
    /// `HmacSHA1` (the default when `SignatureMethod` is absent).
    HmacSha1,
    /// `HmacSHA256`.
    HmacSha256,
}

impl V1Method {
    /// Parse the `SignatureMethod` parameter.
    pub fn parse(value: Option<&str>) -> Option<V1Method> {
        match value {
            None | Some("HmacSHA1") => Some(V1Method::HmacSha1),
            Some("HmacSHA256") => Some(V1Method::HmacSha256),
            Some(_) => None,
        }
    }
}

/// The v1 plaintext: `METHOD + host + path + "?" + sorted k=v` over the decoded parameters,
/// `Signature` left out. Like the official SDKs, `_` in keys is signed as `.`.
pub fn v1_string_to_sign(
    method: &str,
    host: &str,
    path: &str,
    params: &[(String, String)],
) -> String {
    let mut pairs: Vec<(String, &str)> = params
        .iter()
        .filter(|(k, _)| k != "Signature")
        .map(|(k, v)| (k.replace('_', "."), v.as_str()))
        .collect();
    pairs.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let joined: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{method}{host}{path}?{}", joined.join("&"))
}

/// The v1 signature (base64) of `plaintext`.
pub fn v1_signature(secret_key: &str, method: V1Method, plaintext: &str) -> String {
    let (key, msg) = (secret_key.as_bytes(), plaintext.as_bytes());
    let b64 = &base64::engine::general_purpose::STANDARD;
    match method {
        V1Method::HmacSha1 => b64.encode(hmac_sha1(key, msg)),
        V1Method::HmacSha256 => b64.encode(hmac_sha256(key, msg)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::digest::signatures_match;
    use crate::common::testing::{capture_names, load_capture, Capture};

    const SECRET: &str = "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE";

    fn tc3_verify(c: &Capture, secret: &str) -> bool {
        let auth = parse_tc3_authorization(&c.header("authorization").unwrap()).unwrap();
        let payload = if c.header("x-tc-content-sha256").as_deref() == Some(UNSIGNED_PAYLOAD) {
            sha256_hex(UNSIGNED_PAYLOAD.as_bytes())
        } else {
            sha256_hex(&c.body)
        };
        let query = if c.method == "GET" {
            c.query.clone()
        } else {
            String::new()
        };
        let canonical = tc3_canonical_request(
            &c.method,
            &query,
            &|n| c.header(n),
            &auth.signed_headers,
            &payload,
        );
        let sts = tc3_string_to_sign(
            &c.header("x-tc-timestamp").unwrap(),
            &auth.date,
            &auth.service,
            &canonical,
        );
        signatures_match(
            &tc3_signature(secret, &auth.date, &auth.service, &sts),
            &auth.signature,
        )
    }

    fn v1_verify(c: &Capture, secret: &str) -> bool {
        let params = c.params();
        let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let method = V1Method::parse(get("SignatureMethod").as_deref()).unwrap();
        let plaintext = v1_string_to_sign(&c.method, &c.header("host").unwrap(), &c.path, &params);
        signatures_match(
            &v1_signature(secret, method, &plaintext),
            &get("Signature").unwrap(),
        )
    }

    fn tencent_captures() -> Vec<String> {
        capture_names()
            .into_iter()
            .filter(|n| n.starts_with("tcsdk-") || n.starts_with("tccli-"))
            .collect()
    }

    #[test]
    fn every_tencent_capture_verifies_and_a_changed_byte_fails() {
        let names = tencent_captures();
        assert_eq!(names.len(), 35, "26 SDK captures and 9 tccli captures");
        for name in names {
            let c = load_capture(&name);
            let tc3 = c.header("authorization").is_some();
            let verify = |c: &Capture, s: &str| {
                if tc3 {
                    tc3_verify(c, s)
                } else {
                    v1_verify(c, s)
                }
            };
            assert!(verify(&c, SECRET), "{name} must verify");
            assert!(
                !verify(&c, "Gu5t9xGARNpq86cd98joQYCN3EXAMPLF"),
                "{name}: wrong secret"
            );
            // Change one signed byte: the body when there is one, else the query.
            let mut changed = c.clone();
            if !changed.body.is_empty() && !name.contains("unsignedpayload") {
                let i = changed.body.len() / 2;
                changed.body[i] ^= 0x01;
            } else if !changed.query.is_empty() {
                changed.query.push('0');
            } else {
                changed.set_header("x-tc-timestamp", "1795482121");
            }
            assert!(
                !verify(&changed, SECRET),
                "{name}: a changed byte must fail"
            );
        }
    }

    #[test]
    fn node_sdk_signs_the_first_host_label_and_verifies_with_it() {
        // tencentcloud-sdk-nodejs-cvm 4.1 given the endpoint 127.0.0.1:PORT signs the
        // service label `127` (the host's first dot-separated label).
        // It signs the URL's host name, `127.0.0.1`, and sends `Host: 127.0.0.1:PORT`.
        let sent = load_capture("tcnode-cvm-DescribeKeyPairs-TC3-POST");
        let auth = parse_tc3_authorization(&sent.header("authorization").unwrap()).unwrap();
        assert_eq!(auth.service, "127");
        assert!(sent.header("host").unwrap().starts_with("127.0.0.1:"));
        assert!(
            !tc3_verify(&sent, SECRET),
            "the Host header as sent is not what was signed"
        );
        let mut c = sent.clone();
        c.set_header("host", "127.0.0.1");
        assert!(tc3_verify(&c, SECRET));
        assert!(!tc3_verify(&c, "Gu5t9xGARNpq86cd98joQYCN3EXAMPLF"));
        let mut changed = c.clone();
        let i = changed.body.len() / 2;
        changed.body[i] ^= 0x01;
        assert!(
            !tc3_verify(&changed, SECRET),
            "a changed body byte must fail"
        );
        let mut relabelled = c.clone();
        let authz = c.header("authorization").unwrap().replace("/127/", "/cvm/");
        relabelled.set_header("authorization", &authz);
        assert!(
            !tc3_verify(&relabelled, SECRET),
            "the label the client signed, not the product's name, verifies"
        );
    }

    #[test]
    fn tccli_signs_the_scheme_in_host() {
        let c = load_capture("tccli-cvm-DescribeKeyPairs-TC3-POST");
        assert!(c.header("host").unwrap().starts_with("http://127.0.0.1:"));
        assert!(tc3_verify(&c, SECRET));
    }

    #[test]
    fn parses_authorization() {
        let a = parse_tc3_authorization(
            "TC3-HMAC-SHA256 Credential=AKIDx/2026-11-24/cvm/tc3_request, SignedHeaders=content-type;host, Signature=ab",
        )
        .unwrap();
        assert_eq!(a.secret_id, "AKIDx");
        assert_eq!(a.service, "cvm");
        assert_eq!(a.signed_headers, vec!["content-type", "host"]);
        assert!(parse_tc3_authorization(
            "TC3-HMAC-SHA256 Credential=AKIDx/2026-11-24/cvm, SignedHeaders=host, Signature=ab"
        )
        .is_none());
        assert!(parse_tc3_authorization("HMAC Credential=a").is_none());
    }
}
