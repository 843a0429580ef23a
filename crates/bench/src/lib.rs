//! Shared by the benchmark binaries: a TC3-signing client for the CVM API.
#![forbid(unsafe_code)]

use anyhow::{bail, Result};
use keyplane_api::signature::sha256_hex;
use keyplane_api::signature::tencent::{tc3_canonical_request, tc3_signature, tc3_string_to_sign};
use serde_json::Value;
use std::time::Duration;

pub mod baseline;
pub mod load;

/// CPU time process `pid` has used so far (user and system, all threads), in microseconds.
pub fn cpu_us(pid: u32) -> Result<u64> {
    use anyhow::Context;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    // After the command name in parentheses: state is field 3, utime 14 and stime 15.
    let rest = stat.rsplit_once(')').context("no command name")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> Result<u64> {
        Ok(fields.get(i).context("short /proc stat")?.parse::<u64>()?)
    };
    // In clock ticks (USER_HZ) per second.
    let hz = rustix::param::clock_ticks_per_second().max(1);
    Ok((ticks(11)? + ticks(12)?) * 1_000_000 / hz)
}

/// A server running under callgrind (`valgrind --tool=callgrind --instr-atstart=no
/// --callgrind-out-file=OUT`), whose executed instructions are counted over chosen spans: a
/// figure that, unlike time, does not move with what else the machine is doing.
#[derive(Debug, Clone)]
pub struct Callgrind {
    /// The server's process id.
    pub pid: u32,
    /// The `--callgrind-out-file` it was started with.
    pub out: std::path::PathBuf,
}

impl Callgrind {
    fn control(&self, args: &[&str]) -> Result<()> {
        use anyhow::Context;
        let done = std::process::Command::new("callgrind_control")
            .args(args)
            .arg(self.pid.to_string())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .context("running callgrind_control (Debian package valgrind)")?;
        anyhow::ensure!(done.success(), "callgrind_control {args:?} failed");
        Ok(())
    }

    /// Start counting.
    pub fn start(&self) -> Result<()> {
        self.control(&["--instr=on"])
    }

    /// Stop counting, and the instructions executed since [`Callgrind::start`].
    pub fn stop(&self) -> Result<u64> {
        use anyhow::Context;
        self.control(&["--instr=off"])?;
        self.control(&["--dump"])?;
        // Each dump is OUT.N, N counting up; it holds what ran since the dump before.
        let name = self.out.file_name().context("--callgrind-out-file")?;
        let dir = match self.out.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => std::path::Path::new("."),
        };
        let prefix = format!("{}.", name.to_string_lossy());
        let newest = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let n = e
                    .file_name()
                    .to_string_lossy()
                    .strip_prefix(&prefix)?
                    .parse::<u64>()
                    .ok()?;
                Some((n, e.path()))
            })
            .max()
            .context("callgrind wrote no dump")?;
        let text = std::fs::read_to_string(&newest.1)?;
        text.lines()
            .find_map(|l| l.strip_prefix("totals:"))
            .and_then(|t| t.split_whitespace().next()?.parse().ok())
            .with_context(|| format!("no totals in {}", newest.1.display()))
    }
}

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

/// A random ed25519 public key line with `comment`.
pub fn random_ed25519_line(comment: &str) -> String {
    use base64::Engine;
    use rand::RngCore;
    let mut key = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut key);
    let mut blob = Vec::new();
    for part in [b"ssh-ed25519".as_slice(), key.as_slice()] {
        blob.extend_from_slice(&(part.len() as u32).to_be_bytes());
        blob.extend_from_slice(part);
    }
    let b64 = base64::engine::general_purpose::STANDARD.encode(blob);
    format!("ssh-ed25519 {b64} {comment}")
}

/// A whole HTTP/1.1 request (keep-alive) for CVM 2017-03-12 `action`, signed with
/// TC3-HMAC-SHA256 at unix time `ts` for `host`, as the SDKs send it.
pub fn signed_request(host: &str, cred: &Cred, action: &str, body: &str, ts: i64) -> Vec<u8> {
    let date = time::OffsetDateTime::from_unix_timestamp(ts)
        .map(|t| t.date().to_string())
        .unwrap_or_default();
    let signed = vec!["content-type".to_string(), "host".to_string()];
    let headers = |n: &str| match n {
        "content-type" => Some("application/json".to_string()),
        "host" => Some(host.to_string()),
        _ => None,
    };
    let canonical =
        tc3_canonical_request("POST", "", &headers, &signed, &sha256_hex(body.as_bytes()));
    let sts = tc3_string_to_sign(&ts.to_string(), &date, "cvm", &canonical);
    let sig = tc3_signature(&cred.key, &date, "cvm", &sts);
    format!(
        "POST / HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
         X-TC-Action: {action}\r\nX-TC-Version: 2017-03-12\r\nX-TC-Region: ap-guangzhou\r\n\
         X-TC-Timestamp: {ts}\r\nAuthorization: TC3-HMAC-SHA256 Credential={}/{date}/cvm/tc3_request, \
         SignedHeaders=content-type;host, Signature={sig}\r\nContent-Length: {}\r\n\r\n{body}",
        cred.id,
        body.len()
    )
    .into_bytes()
}
