//! `keyplane-bench`: signed TC3 DescribeKeyPairs and ImportKeyPair load against a running
//! server; prints throughput and p50/p99 latency. Run it through `scripts/bench`.
#![forbid(unsafe_code)]

use anyhow::{bail, Context, Result};
use base64::Engine;
use clap::Parser;
use keyplane_bench::{Client, Cred};
use rand::RngCore;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Signed load against a running Keyplane server.
#[derive(Debug, Parser)]
struct Args {
    /// Server address, host:port.
    #[arg(long)]
    endpoint: String,
    /// Credentials: a file holding the JSON printed by `keyplane account create`, one per line;
    /// each concurrent worker signs with its own account.
    #[arg(long)]
    accounts: std::path::PathBuf,
    /// Concurrent workers (connections).
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Seconds of DescribeKeyPairs load.
    #[arg(long, default_value_t = 10)]
    describe_secs: u64,
    /// ImportKeyPair calls per worker (each account holds at most 500 key pairs).
    #[arg(long, default_value_t = 250)]
    imports_per_worker: usize,
}

fn random_ed25519_line(comment: &str) -> String {
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

fn report(name: &str, mut lat: Vec<Duration>, wall: Duration) {
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    println!(
        "{name:<18} {:>7} calls in {:>6.2}s  {:>8.1} calls/s  p50 {:>7.2} ms  p99 {:>7.2} ms",
        lat.len(),
        wall.as_secs_f64(),
        lat.len() as f64 / wall.as_secs_f64(),
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
    );
}

async fn run_phase<F, Fut>(clients: &[Arc<Client>], f: F) -> Result<(Vec<Duration>, Duration)>
where
    F: Fn(Arc<Client>, usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<Vec<Duration>>> + Send + 'static,
{
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (i, c) in clients.iter().enumerate() {
        let f = f.clone();
        tasks.push(tokio::spawn(f(c.clone(), i)));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    Ok((all, start.elapsed()))
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let text = std::fs::read_to_string(&args.accounts).context("reading --accounts")?;
    let creds: Vec<Cred> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Value = serde_json::from_str(l)?;
            Ok(Cred {
                id: v["secret_id"].as_str().context("secret_id")?.into(),
                key: v["secret_key"].as_str().context("secret_key")?.into(),
            })
        })
        .collect::<Result<_>>()?;
    if creds.len() < args.concurrency {
        bail!("{} accounts for {} workers", creds.len(), args.concurrency);
    }
    let clients: Vec<Arc<Client>> = creds
        .into_iter()
        .take(args.concurrency)
        .map(|cred| {
            Arc::new(Client {
                http: reqwest::Client::new(),
                endpoint: args.endpoint.clone(),
                cred,
            })
        })
        .collect();
    println!(
        "keyplane-bench: {} workers against {}",
        args.concurrency, args.endpoint
    );

    let n = args.imports_per_worker;
    let (lat, wall) = run_phase(&clients, move |c, w| async move {
        let mut lat = Vec::with_capacity(n);
        for i in 0..n {
            let body = json!({"KeyName": format!("b{w}_{i}"), "ProjectId": 0, "PublicKey": random_ed25519_line("bench")});
            let t = Instant::now();
            c.call("ImportKeyPair", &body).await?;
            lat.push(t.elapsed());
        }
        Ok(lat)
    })
    .await?;
    report("ImportKeyPair", lat, wall);

    let secs = args.describe_secs;
    let (lat, wall) = run_phase(&clients, move |c, _| async move {
        let mut lat = Vec::new();
        let end = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < end {
            let t = Instant::now();
            c.call("DescribeKeyPairs", &json!({"Limit": 20, "Offset": 0}))
                .await?;
            lat.push(t.elapsed());
        }
        Ok(lat)
    })
    .await?;
    report("DescribeKeyPairs", lat, wall);
    Ok(())
}
