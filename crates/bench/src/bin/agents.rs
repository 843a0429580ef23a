//! `keyplane-bench-agents`: N simulated guest agents long-polling one server; measures the
//! time from a bind call to each agent receiving and reporting the change, and the server's
//! memory while they are connected. Run it through `scripts/bench-agents`.
#![forbid(unsafe_code)]

use anyhow::{bail, Context, Result};
use clap::Parser;
use keyplane_bench::{percentile, Client, Cred};
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

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let base = format!("http://{}", args.endpoint);
    let creds: Value = serde_json::from_str(&std::fs::read_to_string(&args.account)?)?;
    let store = SqliteStore::open(&args.data_dir.join("keyplane.db"))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let core = Core::new(Arc::new(store), Arc::new(SystemClock));
    // Only the account's id is needed: no secret is opened.
    let account = core
        .account_record_by_name(creds["account"].as_str().context("account")?)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .context("no such account")?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.agents + 16)
        .no_proxy()
        .build()?;
    println!(
        "keyplane-bench-agents: registering {} simulated hosts",
        args.agents
    );
    let mut hosts = Vec::with_capacity(args.agents);
    for n in 0..args.agents {
        let token = core
            .issue_registration_token(&account, Namespace::Cvm, "ap-guangzhou", 600)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        hosts.push(register(&http, &base, &token, n).await?);
    }
    let seen: Seen = Arc::default();
    for (id, token) in &hosts {
        tokio::spawn(agent(
            http.clone(),
            base.clone(),
            id.clone(),
            token.clone(),
            seen.clone(),
        ));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss = args.server_pid.and_then(rss_kib);
    let api = Client {
        http: http.clone(),
        endpoint: args.endpoint.clone(),
        scheme: "http",
        cred: Cred {
            id: creds["secret_id"].as_str().context("secret_id")?.into(),
            key: creds["secret_key"].as_str().context("secret_key")?.into(),
        },
    };
    let key = api
        .call(
            "CreateKeyPair",
            &json!({"KeyName": "bench_agents", "ProjectId": 0}),
        )
        .await?;
    let key_id = key["Response"]["KeyPair"]["KeyId"]
        .as_str()
        .context("KeyId")?
        .to_string();
    let mut latencies = Vec::with_capacity(args.agents);
    for chunk in hosts.chunks(args.batch) {
        let ids: Vec<&str> = chunk.iter().map(|(id, _)| id.as_str()).collect();
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
                latencies.extend(done.iter().map(|t| t.duration_since(t0)));
                break;
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
    latencies.sort();
    println!(
        "bind call -> agent has the change, {} agents connected, batches of {}: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        args.agents,
        args.batch,
        percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.last().map(|d| d.as_secs_f64() * 1e3).unwrap_or_default(),
    );
    if let Some(kib) = rss {
        println!(
            "server RSS with {} agents long-polling: {:.1} MiB",
            args.agents,
            kib as f64 / 1024.0
        );
    }
    Ok(())
}
