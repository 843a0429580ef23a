//! Correctly signed requests of each dialect around the fuzzer's values.

use super::values::*;
use super::{nonce, support, AK, AK_SECRET, HOST, MAX_QUERY, NOW, SECRET_ID, SECRET_KEY};
use axum::body::Body;
use axum::http::Request;
use keyplane_api::signature::aliyun as ali;
use keyplane_api::signature::tencent as tc;
use rand::rngs::StdRng;
use rand::Rng;
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    CvmTc3,
    CvmV1,
    Legacy,
    Lighthouse,
    EcsRpc,
    EcsAcs3,
    CloudAudit,
    ActionTrail,
}

pub const DIALECTS: [Dialect; 8] = [
    Dialect::CvmTc3,
    Dialect::CvmV1,
    Dialect::Legacy,
    Dialect::Lighthouse,
    Dialect::EcsRpc,
    Dialect::EcsAcs3,
    Dialect::CloudAudit,
    Dialect::ActionTrail,
];

/// A Tencent API 3.0 product the fuzzer signs for with TC3.
#[derive(Clone, Copy)]
pub enum TcProduct {
    Cvm,
    Lighthouse,
    CloudAudit,
}

/// An Alibaba RPC product the fuzzer signs for.
#[derive(Clone, Copy)]
pub enum AliProduct {
    Ecs,
    ActionTrail,
}

impl AliProduct {
    fn version(self) -> &'static str {
        match self {
            AliProduct::Ecs => "2014-05-26",
            AliProduct::ActionTrail => "2020-07-06",
        }
    }

    fn actions(self) -> Vec<&'static str> {
        match self {
            AliProduct::Ecs => ecs_actions(),
            AliProduct::ActionTrail => actiontrail_actions(),
        }
    }

    fn params(self) -> &'static [&'static str] {
        match self {
            AliProduct::Ecs => ECS_PARAMS,
            AliProduct::ActionTrail => ACTIONTRAIL_PARAMS,
        }
    }
}

pub fn tc3_request(rng: &mut StdRng, product: TcProduct) -> Request<Body> {
    let (service, version, actions, names) = match product {
        TcProduct::Lighthouse => ("lighthouse", "2020-03-24", lh_actions(), TC_PARAMS),
        TcProduct::Cvm => ("cvm", "2017-03-12", cvm_actions(), TC_PARAMS),
        TcProduct::CloudAudit => (
            "cloudaudit",
            "2019-03-19",
            cloudaudit_actions(),
            CLOUDAUDIT_PARAMS,
        ),
    };
    let body: Vec<u8> = match rng.gen_range(0..8) {
        0 => vec![b'{', 0xff, 0xfe, b'}'],
        1 => b"{\"KeyIds\":[\"a\"],\"KeyIds\":{\"x\":1}}".to_vec(),
        2 => json_value(rng, 0).to_string().into_bytes(),
        _ => {
            let mut m = serde_json::Map::new();
            for _ in 0..rng.gen_range(0..6) {
                m.insert(pick(rng, names).to_string(), json_value(rng, 0));
            }
            Value::Object(m).to_string().into_bytes()
        }
    };
    let region = ["ap-guangzhou", "ap-nowhere", ""][rng.gen_range(0..3)];
    let t = support::Tc3 {
        secret_id: SECRET_ID,
        secret_key: SECRET_KEY,
        service,
        version,
        region: (!region.is_empty()).then_some(region),
        ts: NOW,
    };
    let action = pick(rng, &actions);
    support::tc3_post_bytes(&t, action, &body)
}

/// A v1-signed request (CVM API 3.0 at `/`, or the legacy API at `/v2/index.php`).
pub fn v1_request(rng: &mut StdRng, legacy: bool) -> Request<Body> {
    let (path, actions) = if legacy {
        ("/v2/index.php", LEGACY_ACTIONS.to_vec())
    } else {
        ("/", cvm_actions())
    };
    let method = if rng.gen_bool(0.5) { "GET" } else { "POST" };
    let sig_method = ["HmacSHA1", "HmacSHA256"][rng.gen_range(0..2)];
    let mut params: Vec<(String, Vec<u8>)> = vec![
        ("Action".into(), pick(rng, &actions).into()),
        (
            "Region".into(),
            ["ap-guangzhou", "gz", "mars"][rng.gen_range(0..3)].into(),
        ),
        ("Timestamp".into(), NOW.to_string().into_bytes()),
        ("Nonce".into(), nonce().to_string().into_bytes()),
        ("SecretId".into(), SECRET_ID.into()),
        ("SignatureMethod".into(), sig_method.into()),
    ];
    if !legacy {
        params.push(("Version".into(), "2017-03-12".into()));
    }
    params.extend(wire_params(rng, TC_PARAMS));
    let plain = tc::v1_string_to_sign(method, HOST, path, &decoded(&params));
    let algo = tc::V1Method::parse(Some(sig_method)).unwrap();
    params.push((
        "Signature".into(),
        tc::v1_signature(SECRET_KEY, algo, &plain).into_bytes(),
    ));
    let encoded = encode(&params);
    let b = Request::builder().method(method).header("host", HOST);
    if method == "GET" && encoded.len() <= MAX_QUERY {
        b.uri(format!("{path}?{encoded}"))
            .body(Body::empty())
            .unwrap()
    } else {
        b.uri(path)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(encoded))
            .unwrap()
    }
}

pub fn ecs_rpc_request(rng: &mut StdRng, product: AliProduct) -> Request<Body> {
    let ts = time::OffsetDateTime::from_unix_timestamp(NOW)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let mut params: Vec<(String, Vec<u8>)> = wire_params(rng, product.params());
    for (k, v) in [
        ("Action", pick(rng, &product.actions()).to_string()),
        (
            "Format",
            ["JSON", "XML", "json"][rng.gen_range(0..3)].to_string(),
        ),
        ("Version", product.version().to_string()),
        ("AccessKeyId", AK.to_string()),
        ("SignatureMethod", "HMAC-SHA1".to_string()),
        ("SignatureVersion", "1.0".to_string()),
        ("SignatureNonce", nonce().to_string()),
        ("Timestamp", ts),
    ] {
        params.push((k.into(), v.into_bytes()));
    }
    let form = rng.gen_bool(0.5) || encode(&params).len() > MAX_QUERY;
    let method = "POST";
    let sig = ali::rpc_signature(
        AK_SECRET,
        &ali::rpc_string_to_sign(method, &decoded(&params)),
    );
    params.push(("Signature".into(), sig.into_bytes()));
    let b = Request::builder().method(method).header("host", HOST);
    if form {
        b.uri("/")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(encode(&params)))
            .unwrap()
    } else {
        b.uri(format!("/?{}", encode(&params)))
            .body(Body::empty())
            .unwrap()
    }
}

pub fn ecs_acs3_request(rng: &mut StdRng, product: AliProduct) -> Request<Body> {
    let mut params = wire_params(rng, product.params());
    // Too long for a request line: the parameters go in a form body (signed by its hash).
    let as_form = encode(&params).len() > MAX_QUERY;
    let body: Vec<u8> = if as_form {
        encode(&std::mem::take(&mut params)).into_bytes()
    } else if rng.gen_bool(0.2) {
        vec![0xff, 0x00, 0xfe]
    } else {
        Vec::new()
    };
    let query = decoded(&params);
    let hashed = keyplane_api::signature::sha256_hex(&body);
    let date = time::OffsetDateTime::from_unix_timestamp(NOW)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let headers: Vec<(&str, String)> = vec![
        ("host", HOST.into()),
        ("x-acs-action", pick(rng, &product.actions()).into()),
        ("x-acs-content-sha256", hashed.clone()),
        ("x-acs-date", date),
        ("x-acs-signature-nonce", format!("acs3-{}", nonce())),
        ("x-acs-version", product.version().into()),
    ];
    let signed: Vec<String> = headers.iter().map(|(n, _)| n.to_string()).collect();
    let values = |n: &str| {
        headers
            .iter()
            .filter(|(k, _)| *k == n)
            .map(|(_, v)| v.clone())
            .collect()
    };
    let canonical = ali::acs3_canonical_request("POST", "/", &query, &values, &signed, &hashed);
    let sig = ali::acs3_signature(AK_SECRET, &ali::acs3_string_to_sign(&canonical));
    let mut b = Request::builder()
        .method("POST")
        .uri(format!("/?{}", encode(&params)));
    for (n, v) in &headers {
        b = b.header(*n, v);
    }
    if as_form {
        b = b.header("content-type", "application/x-www-form-urlencoded");
    }
    b.header(
        "authorization",
        format!(
            "ACS3-HMAC-SHA256 Credential={AK},SignedHeaders={},Signature={sig}",
            signed.join(";")
        ),
    )
    .body(Body::from(body))
    .unwrap()
}

pub fn request(rng: &mut StdRng, d: Dialect) -> Request<Body> {
    match d {
        Dialect::CvmTc3 => tc3_request(rng, TcProduct::Cvm),
        Dialect::Lighthouse => tc3_request(rng, TcProduct::Lighthouse),
        Dialect::CloudAudit => tc3_request(rng, TcProduct::CloudAudit),
        Dialect::CvmV1 => v1_request(rng, false),
        Dialect::Legacy => v1_request(rng, true),
        Dialect::EcsRpc => ecs_rpc_request(rng, AliProduct::Ecs),
        Dialect::EcsAcs3 => ecs_acs3_request(rng, AliProduct::Ecs),
        Dialect::ActionTrail if rng.gen_bool(0.5) => ecs_rpc_request(rng, AliProduct::ActionTrail),
        Dialect::ActionTrail => ecs_acs3_request(rng, AliProduct::ActionTrail),
    }
}
