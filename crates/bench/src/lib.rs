//! Shared by the benchmark binaries: a TC3-signing client for the CVM API.
#![forbid(unsafe_code)]

use anyhow::{bail, Result};
use keyplane_api::tencent_v3::signature::{
    sha256_hex, tc3_canonical_request, tc3_signature, tc3_string_to_sign,
};
use serde_json::Value;
use std::time::Duration;

/// Tencent credentials.
#[derive(Clone)]
pub struct Cred {
    /// SecretId.
    pub id: String,
    /// SecretKey.
    pub key: String,
}

/// A client signing every call with TC3-HMAC-SHA256.
pub struct Client {
    /// HTTP client.
    pub http: reqwest::Client,
    /// host:port.
    pub endpoint: String,
    /// `http` or `https`.
    pub scheme: &'static str,
    /// Credentials.
    pub cred: Cred,
}

impl Client {
    /// Call a CVM 2017-03-12 action; an error envelope becomes an error.
    pub async fn call(&self, action: &str, body: &Value) -> Result<Value> {
        let body = body.to_string();
        let ts = time::OffsetDateTime::now_utc().unix_timestamp();
        let date = time::OffsetDateTime::from_unix_timestamp(ts)?
            .date()
            .to_string();
        let signed = vec!["content-type".to_string(), "host".to_string()];
        let host = self.endpoint.clone();
        let headers = |n: &str| match n {
            "content-type" => Some("application/json".to_string()),
            "host" => Some(host.clone()),
            _ => None,
        };
        let canonical =
            tc3_canonical_request("POST", "", &headers, &signed, &sha256_hex(body.as_bytes()));
        let sts = tc3_string_to_sign(&ts.to_string(), &date, "cvm", &canonical);
        let sig = tc3_signature(&self.cred.key, &date, "cvm", &sts);
        let resp = self
            .http
            .post(format!("{}://{}/", self.scheme, self.endpoint))
            .header("content-type", "application/json")
            .header("x-tc-action", action)
            .header("x-tc-version", "2017-03-12")
            .header("x-tc-region", "ap-guangzhou")
            .header("x-tc-timestamp", ts.to_string())
            .header(
                "authorization",
                format!(
                    "TC3-HMAC-SHA256 Credential={}/{date}/cvm/tc3_request, SignedHeaders=content-type;host, Signature={sig}",
                    self.cred.id
                ),
            )
            .body(body)
            .send()
            .await?;
        let v: Value = resp.json().await?;
        if let Some(code) = v["Response"]["Error"]["Code"].as_str() {
            bail!(
                "{action} failed: {code}: {}",
                v["Response"]["Error"]["Message"]
            );
        }
        Ok(v)
    }
}

/// Sort and print `name: n calls, p50, p99` of latencies.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}
