//! What the fuzzer sends: action and parameter names of each dialect, and values of every
//! wrong kind (numbers out of range, huge arrays and strings, nesting, bad UTF-8, duplicates).

use rand::rngs::StdRng;
use rand::Rng;
use serde_json::Value;

/// Every action a dialect serves (from its own action table), and one it does not.
fn served_and(names: &[&'static str], unknown: &'static str) -> Vec<&'static str> {
    names.iter().copied().chain([unknown]).collect()
}

pub fn cvm_actions() -> Vec<&'static str> {
    served_and(keyplane_api::served::CvmAction::NAMES, "NoSuchAction")
}

pub fn lh_actions() -> Vec<&'static str> {
    served_and(keyplane_api::served::LighthouseAction::NAMES, "Bogus")
}

pub fn ecs_actions() -> Vec<&'static str> {
    served_and(keyplane_api::served::EcsAction::NAMES, "DescribeRegions")
}

pub fn cloudaudit_actions() -> Vec<&'static str> {
    served_and(
        keyplane_api::served::CloudAuditAction::NAMES,
        "DescribeEvents",
    )
}

pub fn actiontrail_actions() -> Vec<&'static str> {
    served_and(
        keyplane_api::served::ActionTrailAction::NAMES,
        "CreateTrail",
    )
}

pub const LEGACY_ACTIONS: &[&str] = &[
    "BindInstanceKey",
    "unBindInstanceKey",
    "DescribeKeyPairs",
    "X",
];
/// Tencent parameter names (API 3.0 and legacy spellings).
pub const TC_PARAMS: &[&str] = &[
    "KeyIds",
    "KeyId",
    "InstanceIds",
    "KeyName",
    "ProjectId",
    "PublicKey",
    "Filters",
    "Offset",
    "Limit",
    "ForceStop",
    "ImageId",
    "ImageIds",
    "Placement",
    "LoginSettings",
    "InstanceType",
    "InstanceCount",
    "InstanceName",
    "HostName",
    "ClientToken",
    "StopType",
    "StoppedMode",
    "BundleId",
    "BlueprintId",
    "InstanceChargePrepaid",
    "LoginConfiguration",
    "KeyPairName",
    "AssociateType",
    "Zones",
    "DryRun",
    "Description",
    "TagSpecification",
    "keyId",
    "instanceIds.0",
    "instanceIds.1",
    "keyIds.0",
    "keyName",
    "offset",
    "limit",
    "Filters.0.Name",
    "Filters.0.Values.0",
    "KeyIds.0",
    "InstanceIds.0",
    "KeyIds.1",
];
/// CloudAudit LookUpEvents' parameter names, and some that are not.
pub const CLOUDAUDIT_PARAMS: &[&str] = &[
    "StartTime",
    "EndTime",
    "LookupAttributes",
    "MaxResults",
    "NextToken",
    "Mode",
    "AttributeKey",
    "AttributeValue",
    "IsReturnLocation",
];
/// ActionTrail LookupEvents' parameter names (flattened), and some that are not.
pub const ACTIONTRAIL_PARAMS: &[&str] = &[
    "StartTime",
    "EndTime",
    "MaxResults",
    "NextToken",
    "Direction",
    "LookupAttribute.1.Key",
    "LookupAttribute.1.Value",
    "LookupAttribute.2.Key",
    "LookupAttribute.2.Value",
    "LookupAttribute.3.Key",
    "LookupAttribute",
    "RegionId",
];
pub const ECS_PARAMS: &[&str] = &[
    "RegionId",
    "KeyPairName",
    "KeyPairNames",
    "PublicKeyBody",
    "InstanceIds",
    "InstanceId",
    "ImageId",
    "InstanceType",
    "Amount",
    "MinAmount",
    "Password",
    "ForceStop",
    "Force",
    "PageSize",
    "PageNumber",
    "ZoneId",
    "InstanceName",
    "HostName",
    "Description",
    "Tag.1.Key",
    "Tag.1.Value",
    "Status",
    "IncludePublicKey",
    "DryRun",
    "ClientToken",
    "KeyPairFingerPrint",
    "InstanceChargeType",
    "Format",
    "OSType",
    "StoppedMode",
];

/// A value as the fuzzer chooses it: JSON (for TC3 bodies) or raw bytes (for query/form).
pub fn scalar(rng: &mut StdRng) -> Value {
    match rng.gen_range(0..9) {
        0 => Value::from(rng.gen::<i64>()),
        1 => Value::from(rng.gen_range(-3i64..200)),
        2 => Value::from(rng.gen::<f64>() * 1e12),
        3 => Value::from(rng.gen::<bool>()),
        4 => Value::Null,
        5 => Value::from(long_string(rng)),
        6 => Value::from(
            ["ins-", "skey-", "lhins-", "lhkp-", "i-", "img-kpdeb12x"][rng.gen_range(0..6)]
                .to_string()
                + &rng.gen_range(0..u32::MAX).to_string(),
        ),
        7 => Value::from("\u{0}\u{202e}'\"<>&%;\\\n\r\t😀"),
        _ => Value::from(""),
    }
}

pub fn long_string(rng: &mut StdRng) -> String {
    let len = match rng.gen_range(0..10) {
        0 => rng.gen_range(1000..60_000),
        _ => rng.gen_range(0..40),
    };
    let c = ['a', 'Z', '9', '-', '.', '*', ' ', 'é'][rng.gen_range(0..8)];
    std::iter::repeat_n(c, len).collect()
}

pub fn json_value(rng: &mut StdRng, depth: u32) -> Value {
    if depth > 2 {
        return scalar(rng);
    }
    match rng.gen_range(0..10) {
        // A huge array (of short values, so the request stays bounded) or a small one.
        0 if depth == 0 => Value::Array(
            (0..rng.gen_range(100..5000))
                .map(|i| match i % 3 {
                    0 => Value::from(format!("ins-{i:08}")),
                    1 => Value::from(i),
                    _ => Value::Null,
                })
                .collect(),
        ),
        0..=2 => Value::Array(
            (0..rng.gen_range(0..6))
                .map(|_| json_value(rng, depth + 1))
                .collect(),
        ),
        3 => {
            let mut m = serde_json::Map::new();
            for _ in 0..rng.gen_range(0..5) {
                let k = TC_PARAMS[rng.gen_range(0..TC_PARAMS.len())].to_string();
                m.insert(k, json_value(rng, depth + 1));
            }
            Value::Object(m)
        }
        _ => scalar(rng),
    }
}

/// Bytes of a query/form value: text, a number, JSON text, or bad UTF-8.
pub fn wire_value(rng: &mut StdRng) -> Vec<u8> {
    match rng.gen_range(0..6) {
        0 => vec![0xff, 0xfe, b'a', 0xc3, 0x28, 0x80],
        1 => json_value(rng, 0).to_string().into_bytes(),
        2 => rng.gen::<i64>().to_string().into_bytes(),
        _ => match scalar(rng) {
            Value::String(s) => s.into_bytes(),
            other => other.to_string().into_bytes(),
        },
    }
}

/// Business parameters for a query/form dialect: known and unknown names, some repeated.
pub fn wire_params(rng: &mut StdRng, names: &[&str]) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    for _ in 0..rng.gen_range(0..8) {
        let name = if rng.gen_range(0..6) == 0 {
            format!("Unknown{}", rng.gen_range(0..5))
        } else {
            names[rng.gen_range(0..names.len())].to_string()
        };
        out.push((name, wire_value(rng)));
    }
    if let Some(first) = out.first().cloned() {
        if rng.gen_bool(0.3) {
            out.push(first); // a duplicate parameter
        }
    }
    out
}

pub fn pct_bytes(b: &[u8]) -> String {
    percent_encoding::percent_encode(b, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// What the server decodes a wire value to (and so what it signs).
pub fn decoded(params: &[(String, Vec<u8>)]) -> Vec<(String, String)> {
    params
        .iter()
        .map(|(k, v)| (k.clone(), String::from_utf8_lossy(v).into_owned()))
        .collect()
}

pub fn encode(params: &[(String, Vec<u8>)]) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{}={}", pct_bytes(k.as_bytes()), pct_bytes(v)))
        .collect::<Vec<_>>()
        .join("&")
}

pub fn pick<'a>(rng: &mut StdRng, list: &[&'a str]) -> &'a str {
    list[rng.gen_range(0..list.len())]
}
