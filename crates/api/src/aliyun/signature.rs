//! Alibaba Cloud signatures, as pure functions: the classic RPC scheme (HMAC-SHA1,
//! `SignatureVersion=1.0`, query or form parameters) and ACS3-HMAC-SHA256 (the `Authorization`
//! header the Tea SDK sends by default).
//!
//! Both are verified byte for byte against requests captured from `aliyun-python-sdk-core` and
//! `alibabacloud-ecs20140526` (`tests/fixtures/captures/alicore-*` and `teasdk-*`).

use crate::common::digest::{hmac_sha1, hmac_sha256, sha256_hex};
use base64::Engine;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// The ACS3 algorithm name, first word of the `Authorization` header.
pub const ACS3_ALGORITHM: &str = "ACS3-HMAC-SHA256";

/// RFC 3986 unreserved characters stay; everything else is `%XX` over UTF-8.
const RFC3986: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// RFC 3986 percent-encoding as both schemes use it: space is `%20`, `*` is `%2A`, `~` stays.
pub fn pct(s: &str) -> String {
    utf8_percent_encode(s, RFC3986).to_string()
}

/// `pct(k)=pct(v)` pairs sorted by key (byte order) and joined with `&`; `Signature` is left
/// out and empty values (`SignatureType=`) are kept.
pub fn canonical_query(params: &[(String, String)]) -> String {
    let mut pairs: Vec<&(String, String)> =
        params.iter().filter(|(k, _)| k != "Signature").collect();
    pairs.sort_by(|a, b| (a.0.as_bytes(), a.1.as_bytes()).cmp(&(b.0.as_bytes(), b.1.as_bytes())));
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", pct(k), pct(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The RPC string to sign: `METHOD&%2F&pct(canonical query)`.
pub fn rpc_string_to_sign(method: &str, params: &[(String, String)]) -> String {
    format!("{method}&%2F&{}", pct(&canonical_query(params)))
}

/// The RPC signature (base64 HMAC-SHA1 keyed with `secret&`).
pub fn rpc_signature(access_key_secret: &str, string_to_sign: &str) -> String {
    let key = format!("{access_key_secret}&");
    let mac = hmac_sha1(key.as_bytes(), string_to_sign.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac)
}

/// The parsed `Authorization: ACS3-HMAC-SHA256 Credential=..,SignedHeaders=..,Signature=..`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acs3Authorization {
    /// The AccessKeyId.
    pub access_key_id: String,
    /// Lower-case header names, in the order given (the SDK sorts them).
    pub signed_headers: Vec<String>,
    /// 64 lower-case hex digits.
    pub signature: String,
}

/// Parse an ACS3 `Authorization` header; `None` when it is not well formed.
pub fn parse_acs3_authorization(value: &str) -> Option<Acs3Authorization> {
    let rest = value.trim().strip_prefix(ACS3_ALGORITHM)?;
    if !rest.starts_with(' ') {
        return None;
    }
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.trim().split(',') {
        let (k, v) = part.trim().split_once('=')?;
        let slot = match k {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed,
            "Signature" => &mut signature,
            _ => return None,
        };
        if slot.replace(v).is_some() {
            return None;
        }
    }
    let access_key_id = credential?.to_string();
    let signed_headers: Vec<String> = signed?.split(';').map(str::to_string).collect();
    if access_key_id.is_empty()
        || signed_headers
            .iter()
            .any(|h| h.is_empty() || *h != h.to_ascii_lowercase())
    {
        return None;
    }
    Some(Acs3Authorization {
        access_key_id,
        signed_headers,
        signature: signature?.to_string(),
    })
}

/// The ACS3 canonical request. `query` is the form-decoded query (re-encoded here with `%20`);
/// `header_values` returns every raw value of a header by lower-case name (repeated headers are
/// joined sorted with `,`); `hashed_payload` is the `x-acs-content-sha256` value.
pub fn acs3_canonical_request(
    method: &str,
    path: &str,
    query: &[(String, String)],
    header_values: &dyn Fn(&str) -> Vec<String>,
    signed_headers: &[String],
    hashed_payload: &str,
) -> String {
    let mut headers = String::new();
    for name in signed_headers {
        let mut values: Vec<String> = header_values(name)
            .iter()
            .map(|v| v.trim().to_string())
            .collect();
        values.sort();
        headers.push_str(name);
        headers.push(':');
        headers.push_str(&values.join(","));
        headers.push('\n');
    }
    let path = if path.is_empty() { "/" } else { path };
    format!(
        "{method}\n{path}\n{}\n{headers}\n{}\n{hashed_payload}",
        canonical_query(query),
        signed_headers.join(";")
    )
}

/// The ACS3 string to sign.
pub fn acs3_string_to_sign(canonical_request: &str) -> String {
    format!(
        "{ACS3_ALGORITHM}\n{}",
        sha256_hex(canonical_request.as_bytes())
    )
}

/// The ACS3 signature (hex HMAC-SHA256 keyed with the secret itself).
pub fn acs3_signature(access_key_secret: &str, string_to_sign: &str) -> String {
    hex::encode(hmac_sha256(
        access_key_secret.as_bytes(),
        string_to_sign.as_bytes(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::digest::signatures_match;
    use crate::common::testing::{capture_names, load_capture, Capture};

    const SECRET: &str = "EXAMPLEaccessKeySecret0123456789";

    fn rpc_verify(c: &Capture, secret: &str) -> bool {
        let params = c.params();
        let given = params
            .iter()
            .find(|(k, _)| k == "Signature")
            .map(|(_, v)| v.clone())
            .unwrap();
        let sts = rpc_string_to_sign(&c.method, &params);
        signatures_match(&rpc_signature(secret, &sts), &given)
    }

    fn acs3_verify(c: &Capture, secret: &str) -> bool {
        let auth = parse_acs3_authorization(&c.header("authorization").unwrap()).unwrap();
        let hashed = c.header("x-acs-content-sha256").unwrap();
        if hashed != sha256_hex(&c.body) {
            return false;
        }
        let query: Vec<(String, String)> = form_urlencoded::parse(c.query.as_bytes())
            .into_owned()
            .collect();
        let values = |n: &str| {
            c.headers
                .iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case(n))
                .map(|(_, v)| v.clone())
                .collect()
        };
        let canonical = acs3_canonical_request(
            &c.method,
            &c.path,
            &query,
            &values,
            &auth.signed_headers,
            &hashed,
        );
        let sts = acs3_string_to_sign(&canonical);
        signatures_match(&acs3_signature(secret, &sts), &auth.signature)
    }

    fn verify(c: &Capture, secret: &str) -> bool {
        if c.header("authorization").is_some() {
            acs3_verify(c, secret)
        } else {
            rpc_verify(c, secret)
        }
    }

    #[test]
    fn every_aliyun_capture_verifies_and_a_changed_byte_fails() {
        let names: Vec<String> = capture_names()
            .into_iter()
            .filter(|n| n.starts_with("alicore-") || n.starts_with("teasdk-"))
            .collect();
        assert_eq!(
            names.len(),
            17,
            "8 aliyun-python-sdk-core and 9 Tea captures"
        );
        for name in names {
            let c = load_capture(&name);
            assert!(verify(&c, SECRET), "{name} must verify");
            assert!(
                !verify(&c, "EXAMPLEaccessKeySecret0123456788"),
                "{name}: wrong secret"
            );
            // One changed signed byte: the body when there is one, else the query's last char.
            let mut changed = c.clone();
            if !changed.body.is_empty() {
                let i = changed.body.len() / 2;
                changed.body[i] ^= 0x01;
            } else {
                let q = changed
                    .query
                    .replacen("RegionId=cn-hangzhou", "RegionId=cn-hangzhoU", 1);
                assert_ne!(q, changed.query, "{name} carries RegionId");
                changed.query = q;
            }
            assert!(
                !verify(&changed, SECRET),
                "{name}: a changed byte must fail"
            );
        }
    }

    #[test]
    fn the_string_to_sign_matches_the_capture() {
        let c = load_capture("alicore-ecs-AttachKeyPair-HMACSHA1-POST");
        let sts = rpc_string_to_sign(&c.method, &c.params());
        assert!(sts.starts_with(
            "POST&%2F&AccessKeyId%3DLTAI5tEXAMPLEaccessKeyID%26Action%3DAttachKeyPair"
        ));
        assert!(
            sts.contains("%26SignatureType%3D%26"),
            "the empty SignatureType is signed"
        );
        assert!(sts.ends_with("%26Version%3D2014-05-26"));
    }

    #[test]
    fn acs3_signs_percent_20_while_the_wire_has_plus() {
        let c = load_capture("teasdk-ecs-DescribeKeyPairs-ACS3-HMAC-SHA256-POST");
        assert!(c.query.contains("my+key%2A"));
        let query: Vec<(String, String)> = form_urlencoded::parse(c.query.as_bytes())
            .into_owned()
            .collect();
        assert!(canonical_query(&query).contains("KeyPairName=my%20key%2A"));
        assert!(acs3_verify(&c, SECRET));
    }

    #[test]
    fn encodes_like_rfc3986() {
        assert_eq!(pct("a b*~-_.中"), "a%20b%2A~-_.%E4%B8%AD");
        assert_eq!(pct("[\"i-1\",\"i-2\"]"), "%5B%22i-1%22%2C%22i-2%22%5D");
    }

    #[test]
    fn parses_authorization() {
        let a = parse_acs3_authorization(
            "ACS3-HMAC-SHA256 Credential=LTAIx,SignedHeaders=host;x-acs-date,Signature=ab",
        )
        .unwrap();
        assert_eq!(a.access_key_id, "LTAIx");
        assert_eq!(a.signed_headers, vec!["host", "x-acs-date"]);
        assert_eq!(a.signature, "ab");
        for bad in [
            "ACS3-HMAC-SHA256 Credential=LTAIx,SignedHeaders=host",
            "ACS3-HMAC-SHA256Credential=a,SignedHeaders=host,Signature=ab",
            "ACS3-HMAC-SHA256 Credential=,SignedHeaders=host,Signature=ab",
            "ACS3-HMAC-SHA256 Credential=a,SignedHeaders=Host,Signature=ab",
            "ACS3-HMAC-SHA256 Credential=a,Credential=b,SignedHeaders=host,Signature=ab",
            "TC3-HMAC-SHA256 Credential=a",
        ] {
            assert!(parse_acs3_authorization(bad).is_none(), "{bad}");
        }
    }
}
