//! Whether an answer is in its dialect's envelope, with a code from the vendor's list.

use super::requests::Dialect;
use serde_json::Value;
use std::collections::HashSet;

/// Codes of a vendor list file (`CODE` or `CODE STATUS` lines; `#` comments).
pub fn codes(text: &str) -> HashSet<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

pub struct Lists {
    tencent: HashSet<String>,
    /// `(code, codeDesc)` rows.
    legacy: HashSet<(i64, String)>,
    ecs: HashSet<String>,
    actiontrail: HashSet<String>,
}

pub fn lists() -> Lists {
    let mut tencent = codes(include_str!("../../data/tencent_common_error_codes.txt"));
    tencent.extend(codes(include_str!(
        "../../data/tencent_cvm_error_codes.txt"
    )));
    tencent.extend(codes(include_str!(
        "../../data/tencent_lighthouse_error_codes.txt"
    )));
    tencent.extend(codes(include_str!(
        "../../data/tencent_cloudaudit_error_codes.txt"
    )));
    Lists {
        tencent,
        legacy: include_str!("../../data/tencent_legacy_error_codes.txt")
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .filter_map(|l| {
                let mut cols = l.split('\t');
                Some((cols.next()?.parse().ok()?, cols.next()?.to_string()))
            })
            .collect(),
        ecs: codes(include_str!("../../data/aliyun_ecs_error_codes.txt")),
        actiontrail: codes(include_str!(
            "../../data/aliyun_actiontrail_error_codes.txt"
        )),
    }
}

/// The error code of an answer in `d`'s envelope (`None` for a success), or why the answer
/// is not in that envelope.
pub fn check(
    d: Dialect,
    status: u16,
    content_type: &str,
    body: &[u8],
    l: &Lists,
) -> Result<Option<String>, String> {
    if status >= 500 {
        return Err(format!("HTTP {status}"));
    }
    match d {
        Dialect::CvmTc3 | Dialect::CvmV1 | Dialect::Lighthouse | Dialect::CloudAudit => {
            let v: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
            let r = &v["Response"];
            if status != 200 || content_type != "application/json" || !r["RequestId"].is_string() {
                return Err(format!("not Tencent's envelope ({status}, {content_type})"));
            }
            match r["Error"]["Code"].as_str() {
                Some(c) if !l.tencent.contains(c) => Err(format!("code {c} not in the lists")),
                Some(c) if c.starts_with("InternalError") => Err(c.to_string()),
                code => Ok(code.map(str::to_string)),
            }
        }
        Dialect::Legacy => {
            let v: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
            let (Some(code), Some(desc)) = (v["code"].as_i64(), v["codeDesc"].as_str()) else {
                return Err("not the legacy envelope".into());
            };
            if status != 200 || !v["message"].is_string() {
                return Err("not the legacy envelope".into());
            }
            // Module errors carry CVM's code string under a common code of their kind.
            let listed = l.legacy.contains(&(code, desc.to_string()))
                || (l.legacy.iter().any(|(c, _)| *c == code) && l.tencent.contains(desc));
            if !listed || code == 6000 {
                return Err(format!(
                    "code {code} / {desc} not in the lists (or internal)"
                ));
            }
            Ok((code != 0).then(|| desc.to_string()))
        }
        Dialect::EcsRpc | Dialect::EcsAcs3 | Dialect::ActionTrail => {
            let listed = if d == Dialect::ActionTrail {
                &l.actiontrail
            } else {
                &l.ecs
            };
            let text = String::from_utf8_lossy(body);
            let code = if content_type.starts_with("text/xml") {
                let start = text.find("<Code>").map(|i| i + 6);
                let end = text.find("</Code>");
                match (start, end) {
                    (Some(s), Some(e)) if s <= e => Some(text[s..e].to_string()),
                    _ if status == 200 && text.contains("<RequestId>") => None,
                    _ => return Err("not ECS's XML envelope".into()),
                }
            } else {
                let v: Value =
                    serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
                if !v["RequestId"].is_string() || v.get("Response").is_some() {
                    return Err("not ECS's envelope".into());
                }
                v["Code"].as_str().map(str::to_string)
            };
            match (status, code) {
                (200, None) => Ok(None),
                (s, Some(c)) if s >= 400 && listed.contains(&c) => Ok(Some(c)),
                (s, c) => Err(format!("ECS answer {s} with code {c:?}")),
            }
        }
    }
}
