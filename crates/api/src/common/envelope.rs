//! Which envelope family (dialect) a request is in, decided once, before anything is verified, from what the
//! request says about itself: the legacy path, the `Authorization` scheme, the dialects' own
//! headers, their signature parameters, and the `Version`. Every answer, refusals included,
//! then comes in that dialect's envelope, even for requests too large or too malformed to
//! authenticate.

use super::request::RawRequest;

/// A wire dialect's envelope family: which [`crate::common::serve::Dialect`] serves a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Envelope {
    /// Tencent CVM legacy v2 (`/v2/index.php`): `{code, message, codeDesc}`.
    TencentLegacy,
    /// Alibaba Cloud RPC (ECS, ActionTrail): HTTP 4xx/5xx with `{RequestId, HostId, Code,
    /// Message, Recommend}`.
    Aliyun,
    /// Tencent API 3.0 (CVM, Lighthouse, CloudAudit): HTTP 200 with `{"Response": {"Error": ...}}`.
    TencentV3,
}

/// The legacy dialect's path.
pub const LEGACY_PATH: &str = "/v2/index.php";

/// Versions only Alibaba APIs use (ECS, ActionTrail).
const ALIYUN_VERSIONS: &[&str] = &[
    crate::aliyun::router::VERSION,
    crate::aliyun::router::ACTIONTRAIL_VERSION,
];
/// Versions only Tencent APIs use (CVM, Lighthouse, CloudAudit).
const TENCENT_VERSIONS: &[&str] = &["2017-03-12", "2020-03-24", "2019-03-19"];
/// Parameters only the Alibaba RPC signature carries.
const ALIYUN_PARAMS: &[&str] = &["AccessKeyId", "SignatureVersion", "SignatureNonce"];
/// Parameters only the Tencent v1 signature carries.
const TENCENT_PARAMS: &[&str] = &["SecretId", "Nonce"];

fn starts_with_ignore_case(s: &str, prefix: &str) -> bool {
    s.len() >= prefix.len() && s.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

/// What the `Authorization` header's scheme says, if it says anything.
fn by_authorization(raw: &RawRequest) -> Option<Envelope> {
    let value = raw.headers.get("authorization")?;
    let text = String::from_utf8_lossy(value.as_bytes());
    let scheme = text.trim_start();
    if starts_with_ignore_case(scheme, "ACS3-") {
        Some(Envelope::Aliyun)
    } else if starts_with_ignore_case(scheme, "TC3-") {
        Some(Envelope::TencentV3)
    } else {
        None
    }
}

/// What the dialects' own headers say (`x-acs-*` or `x-tc-*`), if anything.
fn by_headers(raw: &RawRequest) -> Option<Envelope> {
    let mut names = raw.headers.keys().map(|k| k.as_str());
    let (acs, tc) = names.by_ref().fold((false, false), |(a, t), n| {
        (a || n.starts_with("x-acs-"), t || n.starts_with("x-tc-"))
    });
    match (acs, tc) {
        (true, false) => Some(Envelope::Aliyun),
        (false, true) => Some(Envelope::TencentV3),
        _ => None,
    }
}

/// What the parameters say: signature parameters first, then `Version`.
fn by_params(params: &[(String, String)]) -> Option<Envelope> {
    let has = |names: &[&str]| params.iter().any(|(k, _)| names.contains(&k.as_str()));
    if has(ALIYUN_PARAMS) {
        return Some(Envelope::Aliyun);
    }
    if has(TENCENT_PARAMS) {
        return Some(Envelope::TencentV3);
    }
    let version = params.iter().find(|(k, _)| k == "Version").map(|(_, v)| v);
    match version {
        Some(v) if ALIYUN_VERSIONS.contains(&v.as_str()) => Some(Envelope::Aliyun),
        Some(v) if TENCENT_VERSIONS.contains(&v.as_str()) => Some(Envelope::TencentV3),
        _ => None,
    }
}

/// The query and form parameters a request carries, decoded leniently (an oversized body is
/// read from the part that was kept).
fn params_of(raw: &RawRequest) -> Vec<(String, String)> {
    let mut all = raw.query_params();
    if raw.media_type() == "application/x-www-form-urlencoded" {
        let body = if raw.oversized.is_some() {
            &raw.head
        } else {
            &raw.body
        };
        all.extend(form_urlencoded::parse(body).into_owned());
    }
    all
}

/// The envelope family `raw` is in. Tencent API 3.0 when nothing says otherwise.
pub fn classify(raw: &RawRequest) -> Envelope {
    if raw.path == LEGACY_PATH {
        return Envelope::TencentLegacy;
    }
    by_authorization(raw)
        .or_else(|| by_headers(raw))
        .or_else(|| by_params(&params_of(raw)))
        .unwrap_or(Envelope::TencentV3)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderMap, HeaderValue};

    fn raw(path: &str, query: &str, headers: &[(&'static str, &str)]) -> RawRequest {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.append(*k, HeaderValue::from_str(v).unwrap());
        }
        RawRequest {
            method: "GET".into(),
            path: path.into(),
            query: query.into(),
            headers: map,
            body: Vec::new(),
            head: Vec::new(),
            peer: None,
            oversized: None,
        }
    }

    #[test]
    fn requests_say_which_dialect_they_are_in() {
        let cases = [
            (
                raw("/v2/index.php", "AccessKeyId=x", &[]),
                Envelope::TencentLegacy,
            ),
            (
                raw("/", "", &[("authorization", "ACS3-HMAC-SM3 Credential=x")]),
                Envelope::Aliyun,
            ),
            (
                raw("/", "", &[("authorization", " acs3-garbled")]),
                Envelope::Aliyun,
            ),
            (
                raw("/", "", &[("authorization", "TC3-HMAC-SHA256 x")]),
                Envelope::TencentV3,
            ),
            (
                raw("/", "", &[("x-acs-action", "RunInstances")]),
                Envelope::Aliyun,
            ),
            (
                raw("/", "", &[("x-tc-action", "RunInstances")]),
                Envelope::TencentV3,
            ),
            (
                raw("/", "Action=DescribeRegions&Version=2014-05-26", &[]),
                Envelope::Aliyun,
            ),
            (
                raw("/", "Action=X&Version=2017-03-12", &[]),
                Envelope::TencentV3,
            ),
            (
                raw("/", "Action=LookupEvents&Version=2020-07-06", &[]),
                Envelope::Aliyun,
            ),
            (
                raw("/", "Action=LookUpEvents&Version=2019-03-19", &[]),
                Envelope::TencentV3,
            ),
            (raw("/", "SignatureNonce=1", &[]), Envelope::Aliyun),
            (raw("/", "SecretId=AKID", &[]), Envelope::TencentV3),
            (raw("/", "", &[]), Envelope::TencentV3),
        ];
        for (r, want) in cases {
            assert_eq!(classify(&r), want, "{} {:?}", r.query, r.headers);
        }
    }

    #[test]
    fn an_oversized_form_is_classified_by_the_part_kept() {
        let mut r = raw(
            "/",
            "",
            &[("content-type", "application/x-www-form-urlencoded")],
        );
        r.method = "POST".into();
        r.oversized = Some(1 << 20);
        r.head = b"Action=ImportKeyPair&AccessKeyId=LTAI&PublicKeyBody=AAAA".to_vec();
        assert_eq!(classify(&r), Envelope::Aliyun);
    }
}
