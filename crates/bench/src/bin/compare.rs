//! `keyplane-bench-compare`: Keyplane against a bare axum server that verifies the same TC3
//! signature and answers a constant, with the same client in the same run. Prints calls/s,
//! p50 and p99 of each scenario on both and Keyplane's share of the baseline. Run it through
//! `scripts/bench-compare`.
#![forbid(unsafe_code)]

use anyhow::{bail, Context, Result};
use clap::Parser;
use keyplane_bench::load::{self, Stats, Until};
use keyplane_bench::{
    baseline, cpu_us, random_ed25519_line, signed_request, Callgrind, Client, Cred,
};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncBufReadExt;

/// Keyplane against a bare axum+HMAC baseline.
#[derive(Debug, Parser)]
struct Args {
    /// Keyplane's address, host:port (omit with --serve-baseline).
    #[arg(long, default_value = "")]
    endpoint: String,
    /// Credentials, the JSON lines `keyplane account create` prints: the first account is
    /// read from, the others take the imports (each holds at most 500 key pairs).
    #[arg(long, default_value = "")]
    accounts: String,
    /// Seconds each read scenario runs, on each server.
    #[arg(long, default_value_t = 5)]
    secs: u64,
    /// ImportKeyPair calls per connection in the 16-connection import scenario.
    #[arg(long, default_value_t = 800)]
    imports_per_conn: usize,
    /// Serve the baseline on 127.0.0.1 (a port of its own) instead, printing its address.
    #[arg(long)]
    serve_baseline: bool,
    /// Keyplane's process id: the CPU time each server spends per call is printed too (a
    /// steadier figure than calls/s on a busy machine).
    #[arg(long)]
    kp_pid: Option<u32>,
    /// Run only the scenarios whose name contains this text (for example "100 of 500"), to
    /// profile one path. The 500 key pairs the reads need are imported either way.
    #[arg(long)]
    only: Option<String>,
    /// Keyplane runs under `valgrind --tool=callgrind --instr-atstart=no
    /// --callgrind-out-file=FILE` (what `scripts/bench-compare --instructions` starts): print
    /// the instructions it executes per call, which do not move with the machine's load.
    /// Needs --kp-pid.
    #[arg(long, value_name = "FILE")]
    callgrind_out: Option<std::path::PathBuf>,
}

/// Which server a request is signed for.
#[derive(Clone, Copy)]
struct Target<'a> {
    addr: SocketAddr,
    host: &'a str,
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn read_creds(path: &str) -> Result<Vec<Cred>> {
    let text = std::fs::read_to_string(path).context("reading --accounts")?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Value = serde_json::from_str(l)?;
            Ok(Cred {
                id: v["secret_id"].as_str().context("secret_id")?.into(),
                key: v["secret_key"].as_str().context("secret_key")?.into(),
            })
        })
        .collect()
}

fn baseline_cred() -> Cred {
    Cred {
        id: baseline::SECRET_ID.into(),
        key: baseline::SECRET_KEY.into(),
    }
}

/// Start the baseline as a child process (so it has a process of its own, as Keyplane has).
async fn start_baseline() -> Result<(tokio::process::Child, SocketAddr)> {
    let mut child = tokio::process::Command::new(std::env::current_exe()?)
        .arg("--serve-baseline")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let out = child.stdout.take().context("baseline stdout")?;
    let mut lines = tokio::io::BufReader::new(out).lines();
    let line = lines
        .next_line()
        .await?
        .context("the baseline said nothing")?;
    let addr = line
        .strip_prefix("listening on ")
        .context("unexpected baseline output")?
        .parse()?;
    Ok((child, addr))
}

struct Row {
    name: &'static str,
    kp: Stats,
    base: Stats,
    goal: &'static str,
    /// Server CPU time per call, microseconds: Keyplane's and the baseline's.
    cpu: Option<(f64, f64)>,
    /// Instructions Keyplane executed per call, under callgrind.
    instructions: Option<f64>,
}

/// Which processes serve: Keyplane's (when known) and the baseline's, and Keyplane's
/// instruction counter when it runs under callgrind.
#[derive(Clone, Copy)]
struct Pids<'a> {
    kp: Option<u32>,
    base: Option<u32>,
    callgrind: Option<&'a Callgrind>,
}

/// What a server spent on a load: CPU microseconds, and instructions when counted.
type Spent = (Option<u64>, Option<u64>);

/// Run `requests` on `addr` with `conns` connections, and what `pid` spent on them (and
/// `counter` counted).
async fn measured(
    addr: SocketAddr,
    requests: Vec<Vec<u8>>,
    conns: usize,
    until: Until,
    pid: Option<u32>,
    counter: Option<&Callgrind>,
) -> Result<(Stats, Spent)> {
    let before = pid.map(cpu_us).transpose()?;
    counter.map(Callgrind::start).transpose()?;
    let stats = load::run(addr, Arc::new(requests), conns, until).await?;
    let instructions = counter.map(Callgrind::stop).transpose()?;
    let spent = match (pid, before) {
        (Some(pid), Some(before)) => Some(cpu_us(pid)?.saturating_sub(before)),
        _ => None,
    };
    Ok((stats, (spent, instructions)))
}

fn ms(us: f64) -> f64 {
    us / 1000.0
}

fn print(rows: &[Row]) {
    println!(
        "{:<34} {:>10} {:>8} {:>8} | {:>10} {:>8} {:>8} | {:>7} {:>7}  goal",
        "scenario", "kp /s", "p50 ms", "p99 ms", "base /s", "p50 ms", "p99 ms", "/s %", "p50 x"
    );
    for r in rows {
        println!(
            "{:<34} {:>10.0} {:>8.3} {:>8.3} | {:>10.0} {:>8.3} {:>8.3} | {:>6.1}% {:>6.1}x  {}",
            r.name,
            r.kp.rate(),
            ms(r.kp.p50_us),
            ms(r.kp.p99_us),
            r.base.rate(),
            ms(r.base.p50_us),
            ms(r.base.p99_us),
            100.0 * r.kp.rate() / r.base.rate(),
            r.kp.p50_us / r.base.p50_us,
            r.goal
        );
    }
    if rows.iter().any(|r| r.cpu.is_some()) {
        println!();
        println!(
            "{:<34} {:>12} {:>12} | {:>7}",
            "server CPU per call", "kp us", "base us", "cpu x"
        );
        for r in rows {
            if let Some((k, b)) = r.cpu {
                println!("{:<34} {:>12.1} {:>12.1} | {:>6.1}x", r.name, k, b, k / b);
            }
        }
        println!("cpu x: Keyplane's CPU time per call over the baseline's (lower is better)");
    }
    if rows.iter().any(|r| r.instructions.is_some()) {
        println!();
        println!("{:<34} {:>12}", "instructions per call (callgrind)", "kp");
        for r in rows {
            if let Some(n) = r.instructions {
                println!("{:<34} {:>12.0}", r.name, n);
            }
        }
    }
}

fn checked(name: &str, s: Stats) -> Result<Stats> {
    if s.errors > 0 {
        bail!(
            "{name}: {} of {} calls failed, e.g. {}",
            s.errors,
            s.calls,
            s.first_error.unwrap_or_default()
        );
    }
    Ok(s)
}

/// Run `requests.0` on Keyplane with `conns` connections, then `requests.1` (the same calls,
/// signed for the baseline) on the baseline.
async fn both(
    name: &'static str,
    (kp, base): (Target<'_>, Target<'_>),
    pids: Pids<'_>,
    requests: (Vec<Vec<u8>>, Vec<Vec<u8>>),
    conns: usize,
    until: Until,
    goal: &'static str,
) -> Result<Row> {
    let (k, (k_cpu, k_instr)) =
        measured(kp.addr, requests.0, conns, until, pids.kp, pids.callgrind).await?;
    let (b, (b_cpu, _)) = measured(base.addr, requests.1, conns, until, pids.base, None).await?;
    let per_call = |n: u64, s: &Stats| n as f64 / s.calls.max(1) as f64;
    let cpu = k_cpu
        .zip(b_cpu)
        .map(|(k_us, b_us)| (per_call(k_us, &k), per_call(b_us, &b)));
    Ok(Row {
        name,
        instructions: k_instr.map(|n| per_call(n, &k)),
        kp: checked(name, k)?,
        base: checked(name, b)?,
        goal,
        cpu,
    })
}

fn describe_by_name(t: Target<'_>, cred: &Cred, name: &str) -> Vec<u8> {
    let body = json!({"Filters": [{"Name": "key-name", "Values": [name]}]});
    signed_request(t.host, cred, "DescribeKeyPairs", &body.to_string(), now())
}

fn imports(t: Target<'_>, creds: &[Cred], n: usize, tag: &str) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let cred = &creds[(i / 450) % creds.len()];
            let body = json!({"KeyName": format!("{tag}_{i}"), "ProjectId": 0,
                              "PublicKey": random_ed25519_line("bench")});
            signed_request(t.host, cred, "ImportKeyPair", &body.to_string(), now())
        })
        .collect()
}

/// Both servers, what serves them, and the credentials the scenarios sign with.
struct Servers<'a> {
    kp: Target<'a>,
    base: Target<'a>,
    pids: Pids<'a>,
    /// The account the reads read from (and whose 500 key pairs they read).
    reader: &'a Cred,
    /// The accounts the 16-connection imports import into.
    writers: &'a [Cred],
    /// The baseline's credential.
    bc: Cred,
}

/// Serve the baseline on a port of its own on 127.0.0.1, printing its address.
async fn serve_baseline() -> Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("listening on {}", listener.local_addr()?);
    baseline::serve(listener).await?;
    Ok(())
}

/// The reading account and the import accounts of `creds`, once they are enough for
/// `imports_per_conn` imports on each of 16 connections.
fn split_accounts(creds: &[Cred], imports_per_conn: usize) -> Result<(&Cred, &[Cred])> {
    if creds.len() < 2 {
        bail!("--accounts needs at least two accounts");
    }
    let (reader, writers) = (&creds[0], &creds[1..]);
    if writers.len() * 450 < 16 * imports_per_conn {
        bail!(
            "{} import accounts hold {} imports; {} asked",
            writers.len(),
            writers.len() * 450,
            16 * imports_per_conn
        );
    }
    Ok((reader, writers))
}

/// Keyplane's instruction counter, when it runs under callgrind.
fn callgrind(args: &Args) -> Result<Option<Callgrind>> {
    Ok(match (&args.callgrind_out, args.kp_pid) {
        (Some(out), Some(pid)) => Some(Callgrind {
            pid,
            out: out.clone(),
        }),
        (Some(_), None) => bail!("--callgrind-out needs --kp-pid"),
        (None, _) => None,
    })
}

/// Import the 500 key pairs the reads read into the reading account, on one connection: the
/// durable import at 1 conn.
async fn seed(s: &Servers<'_>) -> Result<Row> {
    let seed: Vec<Vec<u8>> = (0..500)
        .map(|i| {
            let body = json!({"KeyName": format!("k{i}"), "ProjectId": 0,
                              "PublicKey": random_ed25519_line("bench")});
            signed_request(
                s.kp.host,
                s.reader,
                "ImportKeyPair",
                &body.to_string(),
                now(),
            )
        })
        .collect();
    let base_seed = imports(s.base, std::slice::from_ref(&s.bc), 500, "k");
    both(
        "ImportKeyPair durable, 1 conn",
        (s.kp, s.base),
        s.pids,
        (seed, base_seed),
        1,
        Until::Exhausted,
        "",
    )
    .await
}

/// Create ten Windows records (no sandbox needed) in the reading account; returns the id of
/// one to describe by id.
async fn windows_instance(endpoint: &str, reader: &Cred) -> Result<String> {
    let client = Client {
        http: reqwest::Client::new(),
        endpoint: endpoint.to_owned(),
        scheme: "http",
        cred: reader.clone(),
    };
    let run = client
        .call(
            "RunInstances",
            &json!({"ImageId": "img-kpwin22x", "Placement": {"Zone": "ap-guangzhou-3"},
                    "InstanceCount": 10, "LoginSettings": {"Password": "Kp-Passw0rd!"}}),
        )
        .await?;
    Ok(run["Response"]["InstanceIdSet"][4]
        .as_str()
        .context("RunInstances gave no ids")?
        .to_string())
}

/// The read scenarios `chosen` picks, each run for `secs`: key pairs by name and a page of
/// them, and `instance` by id.
async fn reads(
    s: &Servers<'_>,
    instance: &str,
    secs: Until,
    chosen: impl Fn(&str) -> bool,
) -> Result<Vec<Row>> {
    let (kp, base, pids, reader, bc) = (s.kp, s.base, s.pids, s.reader, &s.bc);
    let mut rows = Vec::new();
    let by_name = |t: Target<'_>, c: &Cred| vec![describe_by_name(t, c, "k250")];
    for (name, conns, goal) in [
        ("DescribeKeyPairs by name, 1 conn", 1, "p50 <= 3x"),
        ("DescribeKeyPairs by name, 64 conns", 64, ">= 35%"),
    ] {
        if !chosen(name) {
            continue;
        }
        let row = both(
            name,
            (kp, base),
            pids,
            (by_name(kp, reader), by_name(base, bc)),
            conns,
            secs,
            goal,
        );
        rows.push(row.await?);
    }
    let page = |t: Target<'_>, c: &Cred| {
        let body = json!({"Offset": 100, "Limit": 100}).to_string();
        vec![signed_request(t.host, c, "DescribeKeyPairs", &body, now())]
    };
    if chosen("DescribeKeyPairs 100 of 500, 64 conns") {
        rows.push(
            both(
                "DescribeKeyPairs 100 of 500, 64 conns",
                (kp, base),
                pids,
                (page(kp, reader), page(base, bc)),
                64,
                secs,
                ">= 10%",
            )
            .await?,
        );
    }
    let by_id = |t: Target<'_>, c: &Cred| {
        let body = json!({"InstanceIds": [instance]}).to_string();
        vec![signed_request(t.host, c, "DescribeInstances", &body, now())]
    };
    if chosen("DescribeInstances by id, 64 conns") {
        rows.push(
            both(
                "DescribeInstances by id, 64 conns",
                (kp, base),
                pids,
                (by_id(kp, reader), by_id(base, bc)),
                64,
                secs,
                "",
            )
            .await?,
        );
    }
    Ok(rows)
}

/// `n` durable imports on 16 connections, into the import accounts.
async fn imports_16(s: &Servers<'_>, n: usize) -> Result<Row> {
    both(
        "ImportKeyPair durable, 16 conns",
        (s.kp, s.base),
        s.pids,
        (
            imports(s.kp, s.writers, n, "w"),
            imports(s.base, std::slice::from_ref(&s.bc), n, "w"),
        ),
        16,
        Until::Exhausted,
        ">= ~4,500/s",
    )
    .await
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    if args.serve_baseline {
        return serve_baseline().await;
    }
    let creds = read_creds(&args.accounts)?;
    let (reader, writers) = split_accounts(&creds, args.imports_per_conn)?;
    let (child, base_addr) = start_baseline().await?;
    let callgrind = callgrind(&args)?;
    let pids = Pids {
        kp: args.kp_pid,
        base: child.id(),
        callgrind: callgrind.as_ref(),
    };
    let kp_addr: SocketAddr = args.endpoint.parse().context("--endpoint")?;
    let (kp_host, base_host) = (args.endpoint.clone(), base_addr.to_string());
    let servers = Servers {
        kp: Target {
            addr: kp_addr,
            host: &kp_host,
        },
        base: Target {
            addr: base_addr,
            host: &base_host,
        },
        pids,
        reader,
        writers,
        bc: baseline_cred(),
    };
    let secs = Until::Elapsed(Duration::from_secs(args.secs));
    let mut rows = Vec::new();
    let chosen = |name: &str| args.only.as_ref().is_none_or(|o| name.contains(o.as_str()));
    let seeded = seed(&servers).await?;
    if chosen(seeded.name) {
        rows.push(seeded);
    }
    let instance = windows_instance(&args.endpoint, reader).await?;
    rows.extend(reads(&servers, &instance, secs, &chosen).await?);
    if chosen("ImportKeyPair durable, 16 conns") {
        rows.push(imports_16(&servers, 16 * args.imports_per_conn).await?);
    }
    print(&rows);
    Ok(())
}
