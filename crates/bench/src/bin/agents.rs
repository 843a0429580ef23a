//! `keyplane-bench-agents`: N simulated guest agents long-polling one server; measures the
//! time from a bind call to each agent receiving and reporting the change, and the server's
//! memory while they are connected. Run it through `scripts/bench-agents`.
#![forbid(unsafe_code)]

use anyhow::{bail, Context, Result};
use clap::Parser;
use keyplane_bench::{percentile, Client, Cred};
use keyplane_core::account::Account;
use keyplane_core::keypair::Namespace;
use keyplane_core::service::SystemClock;
use keyplane_core::Core;
use keyplane_store::SqliteStore;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Simulated agents against a running server.
#[derive(Debug, Parser)]
struct Args {
    /// Server address, host:port.
    #[arg(long)]
    endpoint: String,
    /// The server's data directory (registration tokens are issued from its database).
    #[arg(long)]
    data_dir: std::path::PathBuf,
    /// The account the simulated hosts join (its credentials JSON, from `account create`).
    #[arg(long)]
    account: std::path::PathBuf,
    /// Number of simulated agents.
    #[arg(long, default_value_t = 1000)]
    agents: usize,
    /// Instances bound per AssociateInstancesKeyPairs call.
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// The server's pid, to read its memory.
    #[arg(long)]
    server_pid: Option<u32>,
}

type Seen = Arc<Mutex<HashMap<String, Instant>>>;

async fn register(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    n: usize,
) -> Result<(String, String)> {
    let addr = format!("127.3.{}.{}", n / 250, n % 250 + 1);
    let v: Value = http
        .post(format!("{base}/keyplane/agent/v1/register"))
        .json(&json!({"token": token, "hostname": format!("sim{n}"), "address": addr, "ssh_port": 22}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok((
        v["instance_id"].as_str().context("instance_id")?.into(),
        v["agent_token"].as_str().context("agent_token")?.into(),
    ))
}

/// One simulated agent: long poll, and on every new generation note the time and report it.
async fn agent(http: reqwest::Client, base: String, id: String, token: String, seen: Seen) {
    let mut after = 0i64;
    loop {
        let url =
            format!("{base}/keyplane/agent/v1/instances/{id}/ssh-state?after={after}&wait=25");
        let Ok(resp) = http.get(&url).bearer_auth(&token).send().await else {
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        };
        let Ok(state) = resp.json::<Value>().await else {
            continue;
        };
        let generation = state["generation"].as_i64().unwrap_or(after);
        if generation > after {
            after = generation;
            seen.lock().unwrap().insert(id.clone(), Instant::now());
            let _ = http
                .post(format!("{base}/keyplane/agent/v1/instances/{id}/report"))
                .bearer_auth(&token)
                .json(&json!({"generation": generation, "ok": true, "message": ""}))
                .send()
                .await;
        }
    }
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| {
        l.strip_prefix("VmRSS:")
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
    })
}

/// The server under test: where it listens, the database it issues registration tokens
/// from, and the account the simulated hosts join.
struct Server {
    base: String,
    http: reqwest::Client,
    core: Core,
    account: Account,
}

/// Open the server's database and find the account `creds` names (only its id is needed: no
/// secret is opened).
async fn server(args: &Args, creds: &Value) -> Result<Server> {
    let store = SqliteStore::open(&args.data_dir.join("keyplane.db"))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let core = Core::new(Arc::new(store), Arc::new(SystemClock));
    let account = core
        .account_record_by_name(creds["account"].as_str().context("account")?)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .context("no such account")?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.agents + 16)
        .no_proxy()
        .build()?;
    Ok(Server {
        base: format!("http://{}", args.endpoint),
        http,
        core,
        account,
    })
}

/// Register `count` simulated hosts, each with a registration token of its own; returns each
/// one's instance id and agent token.
async fn register_hosts(server: &Server, count: usize) -> Result<Vec<(String, String)>> {
    println!("keyplane-bench-agents: registering {count} simulated hosts");
    let mut hosts = Vec::with_capacity(count);
    for n in 0..count {
        let token = server
            .core
            .issue_registration_token(&server.account, Namespace::Cvm, "ap-guangzhou", 600)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        hosts.push(register(&server.http, &server.base, &token, n).await?);
    }
    Ok(hosts)
}

/// Start an agent for each of `hosts`; returns when each last saw a change.
fn spawn_agents(server: &Server, hosts: &[(String, String)]) -> Seen {
    let seen: Seen = Arc::default();
    for (id, token) in hosts {
        tokio::spawn(agent(
            server.http.clone(),
            server.base.clone(),
            id.clone(),
            token.clone(),
            seen.clone(),
        ));
    }
    seen
}

/// An API client signing with the account's credentials.
fn api_client(server: &Server, endpoint: &str, creds: &Value) -> Result<Client> {
    Ok(Client {
        http: server.http.clone(),
        endpoint: endpoint.to_owned(),
        scheme: "http",
        cred: Cred {
            id: creds["secret_id"].as_str().context("secret_id")?.into(),
            key: creds["secret_key"].as_str().context("secret_key")?.into(),
        },
    })
}

/// Create the key pair the hosts are bound to; returns its id.
async fn create_key(api: &Client) -> Result<String> {
    let key = api
        .call(
            "CreateKeyPair",
            &json!({"KeyName": "bench_agents", "ProjectId": 0}),
        )
        .await?;
    Ok(key["Response"]["KeyPair"]["KeyId"]
        .as_str()
        .context("KeyId")?
        .to_string())
}

/// Bind `key_id` to `ids` in one call and wait (60 s at most) until every one's agent has the
/// change; returns the time each took, from the call.
async fn bind_batch(
    api: &Client,
    key_id: &str,
    ids: &[&str],
    seen: &Seen,
) -> Result<Vec<Duration>> {
    let t0 = Instant::now();
    api.call(
        "AssociateInstancesKeyPairs",
        &json!({"InstanceIds": ids, "KeyIds": [key_id], "ForceStop": true}),
    )
    .await?;
    let deadline = t0 + Duration::from_secs(60);
    loop {
        let done: Vec<Instant> = {
            let seen = seen.lock().unwrap();
            ids.iter().filter_map(|id| seen.get(*id).copied()).collect()
        };
        if done.len() == ids.len() {
            return Ok(done.iter().map(|t| t.duration_since(t0)).collect());
        }
        if Instant::now() > deadline {
            bail!(
                "{} of {} agents saw the change within 60 s",
                done.len(),
                ids.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Bind `key_id` to `hosts`, `batch` at a time; returns every agent's latency, sorted.
async fn bind_all(
    api: &Client,
    key_id: &str,
    hosts: &[(String, String)],
    batch: usize,
    seen: &Seen,
) -> Result<Vec<Duration>> {
    let mut latencies = Vec::with_capacity(hosts.len());
    for chunk in hosts.chunks(batch) {
        let ids: Vec<&str> = chunk.iter().map(|(id, _)| id.as_str()).collect();
        latencies.extend(bind_batch(api, key_id, &ids, seen).await?);
    }
    latencies.sort();
    Ok(latencies)
}

/// Print the latencies' p50, p99 and max, and the server's memory with the agents connected.
fn print(args: &Args, latencies: &[Duration], rss: Option<u64>) {
    println!(
        "bind call -> agent has the change, {} agents connected, batches of {}: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        args.agents,
        args.batch,
        percentile(latencies, 0.5).as_secs_f64() * 1e3,
        percentile(latencies, 0.99).as_secs_f64() * 1e3,
        latencies.last().map(|d| d.as_secs_f64() * 1e3).unwrap_or_default(),
    );
    if let Some(kib) = rss {
        println!(
            "server RSS with {} agents long-polling: {:.1} MiB",
            args.agents,
            kib as f64 / 1024.0
        );
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let creds: Value = serde_json::from_str(&std::fs::read_to_string(&args.account)?)?;
    let server = server(&args, &creds).await?;
    let hosts = register_hosts(&server, args.agents).await?;
    let seen = spawn_agents(&server, &hosts);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss = args.server_pid.and_then(rss_kib);
    let api = api_client(&server, &args.endpoint, &creds)?;
    let key_id = create_key(&api).await?;
    let latencies = bind_all(&api, &key_id, &hosts, args.batch, &seen).await?;
    print(&args, &latencies, rss);
    Ok(())
}
