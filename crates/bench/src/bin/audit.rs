//! `keyplane-bench-audit`: the cost of the audit trail. Two Keyplane servers, one keeping the
//! trail and one started with `--no-audit`, take the same calls from the same client in one
//! run, the scenarios alternating between them round after round; prints each scenario's
//! calls/s, p50 and p99 on both (the better round of each), and what auditing costs. Run it
//! through `scripts/bench-audit`.
#![forbid(unsafe_code)]

use anyhow::{bail, Context, Result};
use clap::Parser;
use keyplane_bench::load::{self, Stats, Until};
use keyplane_bench::{cpu_us, random_ed25519_line, signed_request, Callgrind, Cred};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Auditing on against auditing off.
#[derive(Debug, Parser)]
struct Args {
    /// The auditing server, host:port.
    #[arg(long)]
    on: String,
    /// Its accounts (the JSON lines `keyplane account create` prints).
    #[arg(long)]
    on_accounts: String,
    /// The server started with --no-audit, host:port.
    #[arg(long)]
    off: String,
    /// Its accounts.
    #[arg(long)]
    off_accounts: String,
    /// Rounds; each runs every scenario on both servers.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// ImportKeyPair calls per connection and round.
    #[arg(long, default_value_t = 850)]
    imports_per_conn: usize,
    /// Seconds each timed scenario runs, per server and round.
    #[arg(long, default_value_t = 3)]
    secs: u64,
    /// The auditing server's process id: with --off-pid, the CPU time each server spent per
    /// call is printed too (a figure that other load on the machine disturbs far less than
    /// throughput).
    #[arg(long)]
    on_pid: Option<u32>,
    /// The --no-audit server's process id.
    #[arg(long)]
    off_pid: Option<u32>,
    /// Run only the scenarios whose name contains this text (for example "refused"), to
    /// profile one path.
    #[arg(long)]
    only: Option<String>,
    /// The auditing server runs under `valgrind --tool=callgrind --instr-atstart=no
    /// --callgrind-out-file=FILE` (what `scripts/bench-audit --instructions` starts): with
    /// --off-callgrind-out, print the instructions each server executed per call, a figure
    /// the machine's other load does not move. Needs both pids.
    #[arg(long)]
    on_callgrind_out: Option<std::path::PathBuf>,
    /// The --no-audit server's callgrind output file.
    #[arg(long)]
    off_callgrind_out: Option<std::path::PathBuf>,
}

/// An amount spent (CPU microseconds, instructions) and the calls served meanwhile, summed
/// over a scenario's rounds on one side.
#[derive(Default, Clone, Copy)]
struct PerCall {
    spent: u64,
    calls: u64,
}

impl PerCall {
    fn add(&mut self, spent: u64, calls: usize) {
        self.spent += spent;
        self.calls += calls as u64;
    }

    fn per_call(self) -> f64 {
        self.spent as f64 / self.calls.max(1) as f64
    }
}

/// The two servers' instruction counters, when both run under callgrind.
fn counters(args: &Args) -> Result<Option<(Callgrind, Callgrind)>> {
    match (
        &args.on_callgrind_out,
        &args.off_callgrind_out,
        args.on_pid.zip(args.off_pid),
    ) {
        (None, None, _) => Ok(None),
        (Some(on), Some(off), Some((on_pid, off_pid))) => Ok(Some((
            Callgrind {
                pid: on_pid,
                out: on.clone(),
            },
            Callgrind {
                pid: off_pid,
                out: off.clone(),
            },
        ))),
        _ => bail!("--on-callgrind-out and --off-callgrind-out go together, with both pids"),
    }
}

/// One server and the accounts it holds.
struct Side {
    addr: SocketAddr,
    host: String,
    creds: Vec<Cred>,
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn side(endpoint: &str, accounts: &str) -> Result<Side> {
    let text = std::fs::read_to_string(accounts).with_context(|| format!("reading {accounts}"))?;
    let creds = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Value = serde_json::from_str(l)?;
            Ok(Cred {
                id: v["secret_id"].as_str().context("secret_id")?.into(),
                key: v["secret_key"].as_str().context("secret_key")?.into(),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    if creds.len() < 2 {
        bail!("{accounts}: at least two accounts are needed");
    }
    Ok(Side {
        addr: endpoint
            .parse()
            .with_context(|| format!("{endpoint} is not host:port"))?,
        host: endpoint.to_string(),
        creds,
    })
}

/// What a scenario sends: `n` requests for a side, the first of them its `first`-th call of
/// that kind (so names and accounts never repeat).
type Requests = fn(&Side, usize, usize) -> Vec<Vec<u8>>;

/// Durable imports, spread over the writing accounts (450 each at most, under the quota).
fn imports(s: &Side, n: usize, first: usize) -> Vec<Vec<u8>> {
    let writers = &s.creds[1..];
    (first..first + n)
        .map(|k| {
            let cred = &writers[(k / 450) % writers.len()];
            let body = json!({"KeyName": format!("a_{k}"), "ProjectId": 0,
                              "PublicKey": random_ed25519_line("bench")});
            signed_request(&s.host, cred, "ImportKeyPair", &body.to_string(), now())
        })
        .collect()
}

/// Refused calls (a public key that is no key): each one an audit event of its own.
fn refusals(s: &Side, n: usize, first: usize) -> Vec<Vec<u8>> {
    (first..first + n)
        .map(|k| {
            let body = json!({"KeyName": format!("r_{k}"), "ProjectId": 0,
                              "PublicKey": "ssh-ed25519 not-a-key"});
            signed_request(
                &s.host,
                &s.creds[0],
                "ImportKeyPair",
                &body.to_string(),
                now(),
            )
        })
        .collect()
}

/// Reads, which record nothing.
fn reads(s: &Side, _n: usize, _first: usize) -> Vec<Vec<u8>> {
    let body = json!({"Filters": [{"Name": "key-name", "Values": ["a_1"]}]});
    vec![signed_request(
        &s.host,
        &s.creds[1],
        "DescribeKeyPairs",
        &body.to_string(),
        now(),
    )]
}

struct Scenario {
    name: &'static str,
    requests: Requests,
    conns: usize,
    /// Run until sent once (durable writes), or for the timed seconds (cycling).
    timed: bool,
    /// Every answer is a refusal.
    refused: bool,
    /// Each call stores a key pair (so takes room in an account's quota).
    stores: bool,
}

async fn measure(s: &Side, sc: &Scenario, args: &Args, first: usize) -> Result<Stats> {
    let n = sc.conns * args.imports_per_conn;
    let until = if sc.timed {
        Until::Elapsed(Duration::from_secs(args.secs))
    } else {
        Until::Exhausted
    };
    let requests = Arc::new((sc.requests)(s, n, first));
    let stats = load::run(s.addr, requests, sc.conns, until).await?;
    let expected = if sc.refused { stats.calls } else { 0 };
    if stats.errors != expected {
        bail!(
            "{}: {} of {} calls were refused ({} expected), e.g. {}",
            sc.name,
            stats.errors,
            stats.calls,
            expected,
            stats.first_error.clone().unwrap_or_default()
        );
    }
    Ok(stats)
}

fn better(a: Option<Stats>, b: Stats) -> Stats {
    match a {
        Some(a) if a.rate() >= b.rate() => a,
        _ => b,
    }
}

impl Args {
    /// Whether --only picks `sc` (every scenario without it).
    fn chosen(&self, sc: &Scenario) -> bool {
        self.only
            .as_ref()
            .is_none_or(|o| sc.name.contains(o.as_str()))
    }
}

/// Both servers, their process ids (when both are known) and their instruction counters
/// (when both run under callgrind).
struct Servers {
    on: Side,
    off: Side,
    pids: Option<(u32, u32)>,
    callgrind: Option<(Callgrind, Callgrind)>,
}

impl Servers {
    /// The auditing server's or the --no-audit server's pid.
    fn pid(&self, is_on: bool) -> Option<u32> {
        self.pids
            .map(|(on_pid, off_pid)| if is_on { on_pid } else { off_pid })
    }

    /// The auditing server's or the --no-audit server's instruction counter.
    fn counter(&self, is_on: bool) -> Option<&Callgrind> {
        self.callgrind
            .as_ref()
            .map(|(on_c, off_c)| if is_on { on_c } else { off_c })
    }
}

/// The servers `args` names, once their accounts hold every round's imports.
fn servers(args: &Args) -> Result<Servers> {
    let on = side(&args.on, &args.on_accounts)?;
    let off = side(&args.off, &args.off_accounts)?;
    let capacity = (on.creds.len().min(off.creds.len()) - 1) * 450;
    if capacity < args.rounds * 17 * args.imports_per_conn {
        bail!(
            "the accounts hold {capacity} imports; {} rounds of {} need more",
            args.rounds,
            17 * args.imports_per_conn
        );
    }
    Ok(Servers {
        on,
        off,
        pids: args.on_pid.zip(args.off_pid),
        callgrind: counters(args)?,
    })
}

/// The scenarios, in the order they run and are printed.
fn scenarios() -> [Scenario; 4] {
    [
        Scenario {
            name: "ImportKeyPair durable, 16 conns",
            requests: imports,
            conns: 16,
            timed: false,
            refused: false,
            stores: true,
        },
        Scenario {
            name: "ImportKeyPair durable, 1 conn",
            requests: imports,
            conns: 1,
            timed: false,
            refused: false,
            stores: true,
        },
        Scenario {
            name: "refused ImportKeyPair, 16 conns",
            requests: refusals,
            conns: 16,
            timed: true,
            refused: true,
            stores: false,
        },
        Scenario {
            name: "DescribeKeyPairs by name, 16 conns",
            requests: reads,
            conns: 16,
            timed: true,
            refused: false,
            stores: false,
        },
    ]
}

/// What one scenario measured over its rounds, on the auditing server (`.0`) and the
/// --no-audit one (`.1`): its best round, the CPU time spent and the instructions executed.
#[derive(Default, Clone)]
struct Tally {
    best: (Option<Stats>, Option<Stats>),
    cpu: (PerCall, PerCall),
    counted: (PerCall, PerCall),
}

/// The auditing server's half of `pair` or the --no-audit server's.
fn half<T>(pair: &mut (T, T), is_on: bool) -> &mut T {
    if is_on {
        &mut pair.0
    } else {
        &mut pair.1
    }
}

/// Run `sc` once on one server (its calls starting at the `first`-th), adding what it
/// measured, spent and executed to `tally`.
async fn run_on(
    servers: &Servers,
    is_on: bool,
    sc: &Scenario,
    args: &Args,
    first: usize,
    tally: &mut Tally,
) -> Result<()> {
    let s = if is_on { &servers.on } else { &servers.off };
    let pid = servers.pid(is_on);
    let counter = servers.counter(is_on);
    let before = pid.map(cpu_us).transpose()?;
    counter.map(Callgrind::start).transpose()?;
    let stats = measure(s, sc, args, first).await?;
    if let Some(n) = counter.map(Callgrind::stop).transpose()? {
        half(&mut tally.counted, is_on).add(n, stats.calls);
    }
    if let (Some(pid), Some(before)) = (pid, before) {
        let used = cpu_us(pid)?.saturating_sub(before);
        half(&mut tally.cpu, is_on).add(used, stats.calls);
    }
    let slot = half(&mut tally.best, is_on);
    *slot = Some(better(slot.take(), stats));
    Ok(())
}

/// Every round: each chosen scenario on both servers, the two taking turns to go first.
/// Returns one tally per scenario.
async fn rounds(servers: &Servers, scenarios: &[Scenario], args: &Args) -> Result<Vec<Tally>> {
    let mut tallies = vec![Tally::default(); scenarios.len()];
    // Calls of each kind sent so far, per side (the same on both).
    let mut sent = 0;
    for round in 0..args.rounds {
        for (i, sc) in scenarios.iter().enumerate() {
            if !args.chosen(sc) {
                continue;
            }
            // Alternate which side goes first, so neither always meets a warmer machine.
            let order = if (round + i) % 2 == 0 {
                [true, false]
            } else {
                [false, true]
            };
            for is_on in order {
                run_on(servers, is_on, sc, args, sent, &mut tallies[i]).await?;
            }
            if sc.stores {
                sent += sc.conns * args.imports_per_conn;
            }
        }
    }
    Ok(tallies)
}

/// The chosen scenarios, each with its tally.
fn chosen_tallies<'a>(
    scenarios: &'a [Scenario],
    tallies: &'a [Tally],
    args: &'a Args,
) -> impl Iterator<Item = (&'a Scenario, &'a Tally)> {
    scenarios
        .iter()
        .zip(tallies)
        .filter(|(sc, _)| args.chosen(sc))
}

/// The table of calls/s, p50 and p99 on both servers (each scenario's best round), and the
/// throughput auditing costs.
fn print_rates(scenarios: &[Scenario], tallies: &[Tally], args: &Args) -> Result<()> {
    println!(
        "{:<36} {:>9} {:>8} {:>8} | {:>9} {:>8} {:>8} | {:>7}",
        "scenario (best of rounds)",
        "on /s",
        "p50 ms",
        "p99 ms",
        "off /s",
        "p50 ms",
        "p99 ms",
        "cost"
    );
    for (sc, t) in chosen_tallies(scenarios, tallies, args) {
        let (a, b) = &t.best;
        let (a, b) = (
            a.as_ref().context("no round ran")?,
            b.as_ref().context("no round ran")?,
        );
        println!(
            "{:<36} {:>9.0} {:>8.3} {:>8.3} | {:>9.0} {:>8.3} {:>8.3} | {:>6.1}%",
            sc.name,
            a.rate(),
            a.p50_us / 1000.0,
            a.p99_us / 1000.0,
            b.rate(),
            b.p50_us / 1000.0,
            b.p99_us / 1000.0,
            100.0 * (1.0 - a.rate() / b.rate())
        );
    }
    println!("cost: throughput lost to auditing (goal: under 10%)");
    Ok(())
}

/// A table of a figure per call on both servers (`pick` takes it from a scenario's tally,
/// as on and off), with its heading, unit labels, decimals and closing line.
fn print_per_call<'a>(
    chosen: impl Iterator<Item = (&'a Scenario, &'a Tally)>,
    heading: [&str; 3],
    decimals: usize,
    pick: impl Fn(&Tally) -> (f64, f64),
    closing: &str,
) {
    println!();
    println!(
        "{:<36} {:>12} {:>12} | {:>7}",
        heading[0], heading[1], heading[2], "cost"
    );
    for (sc, t) in chosen {
        let (a, b) = pick(t);
        println!(
            "{:<36} {:>12.decimals$} {:>12.decimals$} | {:>6.1}%",
            sc.name,
            a,
            b,
            100.0 * (a / b - 1.0)
        );
    }
    println!("{closing}");
}

/// The table of server CPU time per call on both servers, over all rounds.
fn print_cpu(scenarios: &[Scenario], tallies: &[Tally], args: &Args) {
    print_per_call(
        chosen_tallies(scenarios, tallies, args),
        ["server CPU per call (all rounds)", "on us", "off us"],
        1,
        |t| (t.cpu.0.per_call(), t.cpu.1.per_call()),
        "cost: CPU time auditing adds to each call",
    );
}

/// The table of instructions per call on both servers, under callgrind.
fn print_instructions(scenarios: &[Scenario], tallies: &[Tally], args: &Args) {
    print_per_call(
        chosen_tallies(scenarios, tallies, args),
        ["instructions per call (callgrind)", "on", "off"],
        0,
        |t| (t.counted.0.per_call(), t.counted.1.per_call()),
        "cost: instructions auditing adds to each call (calls/s above are callgrind's)",
    );
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let servers = servers(&args)?;
    let scenarios = scenarios();
    let tallies = rounds(&servers, &scenarios, &args).await?;
    print_rates(&scenarios, &tallies, &args)?;
    if servers.pids.is_some() {
        print_cpu(&scenarios, &tallies, &args);
    }
    if servers.callgrind.is_some() {
        print_instructions(&scenarios, &tallies, &args);
    }
    Ok(())
}
