//! `keyplane-bench-scale`: do reads stay as fast when the database is large? Measures
//! DescribeKeyPairs by name and DescribeInstances by id on a fresh database and on one seeded
//! with 1,000,000 key pairs over 2,000 accounts and 100,000 instance records (Windows records:
//! no sandbox) straight through the store: through the domain core (the store's share alone),
//! and over HTTP as a client sees them (signed TC3 requests on one keep-alive connection to
//! the API served in this process on that core). Prints both, their ratios and the database's
//! size. Run it through `scripts/bench-scale`.
#![forbid(unsafe_code)]

use anyhow::{Context, Result};
use clap::Parser;
use keyplane_bench::{percentile, signed_request, Cred};
use keyplane_core::account::Account;
use keyplane_core::instance::{HostKind, Instance, InstanceState, OsType};
use keyplane_core::keypair::{KeyPair, Namespace};
use keyplane_core::sealing::MasterKey;
use keyplane_core::service::{KeyPairFilter, KeyPairQuery, SystemClock};
use keyplane_core::store::{Conflict, Store, StoreError};
use keyplane_core::Core;
use rand::Rng;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Reads at scale against reads on a fresh database.
#[derive(Debug, Parser)]
struct Args {
    /// SQLite: the directory to create the databases in (removed by the script).
    #[arg(long)]
    dir: Option<std::path::PathBuf>,
    /// PostgreSQL: a URL; each database is a fresh schema of it, dropped afterwards.
    #[arg(long)]
    postgres: Option<String>,
    /// Accounts to seed.
    #[arg(long, default_value_t = 2000)]
    accounts: usize,
    /// Key pairs per account.
    #[arg(long, default_value_t = 500)]
    keys_per_account: usize,
    /// Instance records per account.
    #[arg(long, default_value_t = 50)]
    instances_per_account: usize,
    /// Calls measured per figure.
    #[arg(long, default_value_t = 4000)]
    calls: usize,
}

struct Seeded {
    accounts: Vec<Account>,
    instances: Vec<Vec<String>>,
}

fn key_pair(account: &Account, n: usize, at: i64) -> KeyPair {
    KeyPair {
        id: Namespace::Cvm.new_key_id(),
        account_id: account.id.clone(),
        namespace: Namespace::Cvm,
        region: String::new(),
        name: format!("k{n}"),
        description: String::new(),
        project_id: 0,
        // A well-formed key: the API answers with it (and reads it as such).
        public_key: keyplane_bench::random_ed25519_line("scale"),
        fingerprint_sha256: format!("SHA256:{}-{n}", account.id),
        fingerprint_md5: String::new(),
        tags: vec![],
        created_at: at,
        associated_instance_ids: vec![],
    }
}

fn record(account: &Account, a: usize, n: usize, at: i64) -> Instance {
    let (prefix, len) = Namespace::Cvm.instance_id_shape();
    let id = keyplane_core::ids::new_id(prefix, len);
    let seq = a * 1000 + n;
    Instance {
        host_name: id.clone(),
        id,
        account_id: account.id.clone(),
        namespace: Namespace::Cvm,
        region: "ap-guangzhou".into(),
        zone: "ap-guangzhou-3".into(),
        name: format!("vm{n}"),
        image_id: "img-kpwin22x".into(),
        os: OsType::Windows,
        os_name: "Windows Server 2022".into(),
        instance_type: "S5.SMALL2".into(),
        state: InstanceState::Stopped,
        host: HostKind::Record,
        private_ip: format!("10.{}.{}.{}", seq >> 16, (seq >> 8) & 255, seq & 255),
        ssh_port: 22,
        password_hash: None,
        key_ids: vec![],
        effective_key_ids: vec![],
        desired_generation: 0,
        applied_generation: 0,
        latest_operation: None,
        latest_operation_state: None,
        latest_operation_request_id: None,
        latest_operation_error: None,
        created_at: at,
    }
}

/// Seed `accounts` accounts (their secrets sealed with `key`, as the server keeps them), 64
/// writers at a time, through the store.
async fn seed(
    store: Arc<dyn Store>,
    args: &Args,
    accounts: usize,
    key: &MasterKey,
) -> Result<Seeded> {
    let start = Instant::now();
    let mut all = Vec::new();
    for a in 0..accounts {
        let account = Account::generate(&format!("scale{a}"), false, 1);
        store.insert_account(&key.seal_account(&account)).await?;
        all.push(account);
    }
    let (kpa, ipa) = (args.keys_per_account, args.instances_per_account);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let shared = Arc::new(all.clone());
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let (store, next, accounts) = (store.clone(), next.clone(), shared.clone());
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            loop {
                let a = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(account) = accounts.get(a) else {
                    return anyhow::Ok(ids);
                };
                // A new id that is taken is drawn again, as the core does (a million ids
                // of eight characters meet one another now and then).
                for n in 0..kpa {
                    loop {
                        let kp = key_pair(account, n, n as i64);
                        match store.insert_key_pair(&kp, kpa, None).await {
                            Err(StoreError::Conflict(Conflict::Id)) => continue,
                            done => break done?,
                        }
                    }
                }
                let records: Vec<Instance> = loop {
                    let records: Vec<Instance> =
                        (0..ipa).map(|n| record(account, a, n, n as i64)).collect();
                    match store.insert_instances(&records, &[], None).await {
                        Err(StoreError::Conflict(Conflict::Id)) => continue,
                        done => break done.map(|()| records)?,
                    }
                };
                ids.push((a, records.into_iter().map(|i| i.id).collect::<Vec<_>>()));
            }
        }));
    }
    let mut instances = vec![Vec::new(); accounts];
    for t in tasks {
        for (a, ids) in t.await?? {
            instances[a] = ids;
        }
    }
    println!(
        "seeded {accounts} accounts, {} key pairs, {} instance records in {:.1}s",
        accounts * kpa,
        accounts * ipa,
        start.elapsed().as_secs_f64()
    );
    Ok(Seeded {
        accounts: all,
        instances,
    })
}

/// Latencies of DescribeKeyPairs by name and DescribeInstances by id, `calls` of each, on
/// random accounts and keys.
async fn sample(core: &Core, s: &Seeded, args: &Args, calls: usize) -> Result<[Vec<Duration>; 2]> {
    let mut rng = rand::thread_rng();
    let (mut by_name, mut by_id) = (Vec::new(), Vec::new());
    for _ in 0..calls {
        let a = rng.gen_range(0..s.accounts.len());
        let account = &s.accounts[a];
        let name = format!("k{}", rng.gen_range(0..args.keys_per_account));
        let query = KeyPairQuery {
            filters: vec![KeyPairFilter::KeyName(vec![name])],
            limit: 20,
            ..Default::default()
        };
        let t = Instant::now();
        let page = core
            .describe_key_pairs(account, Namespace::Cvm, &query)
            .await?;
        by_name.push(t.elapsed());
        anyhow::ensure!(page.total == 1, "the key pair is found");
        let id = s.instances[a][rng.gen_range(0..s.instances[a].len())].clone();
        let t = Instant::now();
        let found = core
            .instances_by_ids(account, Namespace::Cvm, &[id])
            .await?;
        by_id.push(t.elapsed());
        anyhow::ensure!(found.len() == 1, "the instance is found");
    }
    Ok([by_name, by_id])
}

/// The same calls over HTTP to the API at `addr`: `calls` of each, on random accounts, keys
/// and instances, each signed for its account as the SDKs sign.
async fn sample_http(
    addr: std::net::SocketAddr,
    s: &Seeded,
    args: &Args,
    calls: usize,
) -> Result<[Vec<Duration>; 2]> {
    let picks = {
        let mut rng = rand::thread_rng();
        (0..calls)
            .map(|_| rng.gen_range(0..s.accounts.len()))
            .collect()
    };
    calls_http(addr, s, args, picks).await
}

/// One call of each over HTTP for each account of `picks`, on random keys and instances.
async fn calls_http(
    addr: std::net::SocketAddr,
    s: &Seeded,
    args: &Args,
    picks: Vec<usize>,
) -> Result<[Vec<Duration>; 2]> {
    let host = addr.to_string();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let (mut by_name, mut by_id) = (Vec::new(), Vec::new());
    {
        let mut rng = rand::thread_rng();
        for a in picks {
            let account = &s.accounts[a];
            let cred = Cred {
                id: account.secret_id.clone(),
                key: account.secret_key.expose().to_string(),
            };
            let name = format!("k{}", rng.gen_range(0..args.keys_per_account));
            let body = serde_json::json!({"Filters": [{"Name": "key-name", "Values": [name]}]});
            let body = body.to_string();
            by_name.push(signed_request(&host, &cred, "DescribeKeyPairs", &body, now));
            let id = &s.instances[a][rng.gen_range(0..s.instances[a].len())];
            let body = serde_json::json!({"InstanceIds": [id]}).to_string();
            by_id.push(signed_request(
                &host,
                &cred,
                "DescribeInstances",
                &body,
                now,
            ));
        }
    }
    Ok([
        keyplane_bench::load::one_by_one(addr, &by_name).await?,
        keyplane_bench::load::one_by_one(addr, &by_id).await?,
    ])
}

/// Serve the API on `core` on a loopback port, rate limit off.
async fn serve(core: &Core) -> Result<std::net::SocketAddr> {
    let state = keyplane_api::AppState::new(
        core.clone(),
        keyplane_api::ApiConfig {
            rate_limit_per_second: 0,
            ..keyplane_api::ApiConfig::default()
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(keyplane_api::run(state, listener, std::future::pending()));
    Ok(addr)
}

/// Print the fresh and large figures of both calls, and their ratios.
fn print_table(title: &str, lat: Vec<[Vec<Duration>; 2]>) {
    let figures: Vec<[(Duration, Duration); 2]> =
        lat.into_iter().map(|[a, b]| [pcts(a), pcts(b)]).collect();
    println!(
        "{:<32} {:>10} {:>10} | {:>10} {:>10} | {:>7} {:>7}",
        title, "fresh p50", "p99", "large p50", "p99", "p50 x", "p99 x"
    );
    for (i, name) in ["DescribeKeyPairs by name", "DescribeInstances by id"]
        .iter()
        .enumerate()
    {
        let ((fp50, fp99), (lp50, lp99)) = (figures[0][i], figures[1][i]);
        println!(
            "{name:<32} {:>8.3}ms {:>8.3}ms | {:>8.3}ms {:>8.3}ms | {:>6.2}x {:>6.2}x",
            ms(fp50),
            ms(fp99),
            ms(lp50),
            ms(lp99),
            lp50.as_secs_f64() / fp50.as_secs_f64(),
            lp99.as_secs_f64() / fp99.as_secs_f64()
        );
    }
}

fn pcts(mut v: Vec<Duration>) -> (Duration, Duration) {
    v.sort();
    (percentile(&v, 0.5), percentile(&v, 0.99))
}

enum Backend {
    Sqlite(std::path::PathBuf),
    Postgres(Box<tokio_postgres::Config>, String),
}

async fn open(args: &Args, label: &str) -> Result<(Arc<dyn Store>, Backend)> {
    if let Some(url) = &args.postgres {
        let base: tokio_postgres::Config = url.parse().context("--postgres")?;
        let schema = format!("kp_scale_{label}_{}", std::process::id());
        admin(&base, &format!("CREATE SCHEMA {schema}")).await?;
        let mut config = base.clone();
        let options = base.get_options().unwrap_or_default();
        config.options(format!("{options} -c search_path={schema}").trim());
        let store = keyplane_store::PostgresStore::connect_with(config).await?;
        return Ok((Arc::new(store), Backend::Postgres(Box::new(base), schema)));
    }
    let dir = args.dir.as_ref().context("--dir or --postgres")?;
    let path = dir.join(format!("{label}.db"));
    let store = keyplane_store::SqliteStore::open(&path)?;
    Ok((Arc::new(store), Backend::Sqlite(path)))
}

async fn admin(config: &tokio_postgres::Config, sql: &str) -> Result<Option<i64>> {
    let (client, conn) = config.connect(tokio_postgres::NoTls).await?;
    let task = tokio::spawn(conn);
    let value = if sql.starts_with("SELECT") {
        Some(client.query_one(sql, &[]).await?.try_get(0)?)
    } else {
        client.batch_execute(sql).await?;
        None
    };
    drop(client);
    let _ = task.await;
    Ok(value)
}

/// The database's size in bytes.
async fn size(backend: &Backend) -> Result<u64> {
    match backend {
        Backend::Sqlite(path) => {
            let mut total = 0;
            for suffix in ["", "-wal", "-shm"] {
                let mut p = path.as_os_str().to_owned();
                p.push(suffix);
                total += std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
            }
            Ok(total)
        }
        Backend::Postgres(config, schema) => {
            let sql = format!(
                "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0)::BIGINT FROM pg_class c \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = '{schema}' AND c.relkind = 'r'"
            );
            Ok(admin(config, &sql).await?.unwrap_or(0) as u64)
        }
    }
}

async fn drop_backend(backend: Backend) -> Result<()> {
    if let Backend::Postgres(config, schema) = backend {
        admin(&config, &format!("DROP SCHEMA {schema} CASCADE")).await?;
    }
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    // What the API served here logs, warnings and up (an internal error's cause, say).
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let mut dbs = Vec::new();
    for (label, accounts) in [("fresh", 1), ("large", args.accounts)] {
        let (store, backend) = open(&args, label).await?;
        let key = MasterKey::generate();
        let seeded = seed(store.clone(), &args, accounts, &key).await?;
        let bytes = size(&backend).await?;
        println!(
            "{label}: database {:.1} MiB",
            bytes as f64 / (1024.0 * 1024.0)
        );
        let core = Core::new(store, Arc::new(SystemClock)).with_master_key(key);
        let addr = serve(&core).await?;
        sample(&core, &seeded, &args, 500).await?; // warm up
                                                   // Every account once: a running server has each one's credential and signing key at
                                                   // hand, the first call of an account does not (one call in two of 4,000 on 2,000).
        calls_http(addr, &seeded, &args, (0..seeded.accounts.len()).collect()).await?;
        dbs.push((core, addr, seeded, backend));
    }
    // Interleaved rounds, so that both see the same machine.
    let fresh = || [Vec::new(), Vec::new()];
    let (mut in_core, mut over_http) = (vec![fresh(), fresh()], vec![fresh(), fresh()]);
    for _ in 0..8 {
        for (i, (core, addr, seeded, _)) in dbs.iter().enumerate() {
            let [a, b] = sample(core, seeded, &args, args.calls / 8).await?;
            in_core[i][0].extend(a);
            in_core[i][1].extend(b);
            let [a, b] = sample_http(*addr, seeded, &args, args.calls / 8).await?;
            over_http[i][0].extend(a);
            over_http[i][1].extend(b);
        }
    }
    for (core, _, _, backend) in dbs {
        drop(core);
        drop_backend(backend).await?;
    }
    print_table("through the core", in_core);
    print_table("over HTTP (TC3, 1 connection)", over_http);
    Ok(())
}
