//! `keyplane-bench`: signed TC3 DescribeKeyPairs and ImportKeyPair load against a running
//! server; prints throughput and p50/p99 latency. Run it through `scripts/bench`.
#![forbid(unsafe_code)]

use anyhow::{bail, Context, Result};
use clap::Parser;
use keyplane_bench::{random_ed25519_line, Client, Cred};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Signed load against a running Keyplane server.
#[derive(Debug, Parser)]
struct Args {
    /// Server address, host:port.
    #[arg(long)]
    endpoint: String,
    /// The server's HTTPS address, host:port: DescribeKeyPairs runs there too, after plain HTTP.
    #[arg(long, requires = "ca")]
    tls_endpoint: Option<String>,
    /// The CA certificate (PEM) the HTTPS client trusts, e.g. `<data dir>/tls/ca.pem`.
    #[arg(long)]
    ca: Option<std::path::PathBuf>,
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

fn report(name: &str, mut lat: Vec<Duration>, wall: Duration) {
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    println!(
        "{name:<22} {:>7} calls in {:>6.2}s  {:>8.1} calls/s  p50 {:>7.2} ms  p99 {:>7.2} ms",
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

/// One client (one connection pool, so one connection) per worker.
fn make_clients(
    creds: &[Cred],
    endpoint: &str,
    scheme: &'static str,
    http: impl Fn() -> reqwest::Client,
) -> Result<Vec<Arc<Client>>> {
    Ok(creds
        .iter()
        .map(|cred| {
            Arc::new(Client {
                http: http(),
                endpoint: endpoint.to_string(),
                scheme,
                cred: cred.clone(),
            })
        })
        .collect())
}

/// Every worker calls DescribeKeyPairs back to back for `secs` seconds.
async fn describe_phase(clients: &[Arc<Client>], secs: u64) -> Result<(Vec<Duration>, Duration)> {
    run_phase(clients, move |c, _| async move {
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
    .await
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
    let creds: Vec<Cred> = creds.into_iter().take(args.concurrency).collect();
    let clients = make_clients(&creds, &args.endpoint, "http", reqwest::Client::new)?;
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

    let (lat, wall) = describe_phase(&clients, args.describe_secs).await?;
    report("DescribeKeyPairs", lat, wall);
    if let (Some(tls_endpoint), Some(ca)) = (&args.tls_endpoint, &args.ca) {
        let pem = std::fs::read(ca).with_context(|| format!("reading {}", ca.display()))?;
        let ca = reqwest::Certificate::from_pem(&pem)?;
        let https = move || {
            reqwest::Client::builder()
                .use_rustls_tls()
                .tls_built_in_root_certs(false)
                .add_root_certificate(ca.clone())
                .build()
                .expect("an HTTPS client")
        };
        let clients = make_clients(&creds, tls_endpoint, "https", https)?;
        let (lat, wall) = describe_phase(&clients, args.describe_secs).await?;
        report("DescribeKeyPairs HTTPS", lat, wall);
    }
    Ok(())
}
