//! `keyplane agent`: the guest agent, for sandbox instances and for real hosts.

use anyhow::{bail, Context, Result};
use clap::Args;
use keyplane_agent::{Agent, AgentConfig, Registered, Reload, Target};
use keyplane_instances::{HostLayout, Owner};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Flags of `keyplane agent`.
#[derive(Debug, Args)]
pub struct AgentArgs {
    /// Base URL of any Keyplane API node, e.g. http://10.0.0.1:8787.
    #[arg(long, env = "KEYPLANE_SERVER")]
    server: String,
    /// Registration token (from `keyplane agent-token create`), used once to register this host.
    #[arg(long, env = "KEYPLANE_REGISTRATION_TOKEN")]
    token: Option<String>,
    /// Where this host's instance id and agent token are kept after registration (0600).
    #[arg(
        long,
        env = "KEYPLANE_AGENT_STATE",
        default_value = "/var/lib/keyplane-agent/state.json"
    )]
    state_file: PathBuf,
    /// The user whose `~/.ssh/keyplane_authorized_keys` holds the bound keys.
    #[arg(long, default_value = "root")]
    login_user: String,
    /// The host's sshd configuration directory (the drop-in goes to `sshd_config.d/` in it).
    #[arg(long, default_value = "/etc/ssh")]
    sshd_dir: PathBuf,
    /// Reload sshd by SIGHUP to the pid in this file [default: /run/sshd.pid when it exists,
    /// else `systemctl reload ssh`].
    #[arg(long)]
    sshd_pid_file: Option<PathBuf>,
    /// Address users reach this host's SSH server at [default: the address that routes to the server].
    #[arg(long)]
    address: Option<String>,
    /// This host's SSH port.
    #[arg(long, default_value_t = 22)]
    ssh_port: u16,
    /// Name to register the host under [default: its host name].
    #[arg(long)]
    hostname: Option<String>,
    /// Sandbox mode (used by the server): the instance id, with the agent token in
    /// KEYPLANE_AGENT_TOKEN and the instance's sshd directory in --ssh-dir.
    #[arg(long, env = "KEYPLANE_INSTANCE", requires = "ssh_dir")]
    instance: Option<String>,
    /// Sandbox mode inside the instance (what its init runs): --server is the instance's
    /// metadata service, which knows the instance that asks, so no agent token is needed.
    #[arg(long, requires = "instance")]
    metadata: bool,
    /// Sandbox mode: the instance's sshd configuration directory.
    #[arg(long)]
    ssh_dir: Option<PathBuf>,
    /// Apply the current state once and exit (0 on success).
    #[arg(long)]
    once: bool,
    /// Longest wait of one long poll, seconds.
    #[arg(long, default_value_t = 25)]
    poll_secs: u64,
    /// Log filter.
    #[arg(long, env = "KEYPLANE_LOG", default_value = "info")]
    log: String,
}

/// Run the agent.
pub fn run(args: AgentArgs) -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&args.log).context("invalid log filter")?,
        )
        .with_writer(std::io::stderr)
        .init();
    // One thread: an agent runs in every instance, and waits on the network almost always.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async {
        let (instance_id, token, target) = match (&args.instance, &args.ssh_dir) {
            (Some(id), Some(dir)) if args.metadata => {
                (id.clone(), None, Target::Sandbox(dir.clone()))
            }
            (Some(id), Some(dir)) => {
                let token = std::env::var("KEYPLANE_AGENT_TOKEN").unwrap_or_default();
                if token.is_empty() {
                    bail!("sandbox mode needs KEYPLANE_AGENT_TOKEN (or --metadata inside the instance)");
                }
                (id.clone(), Some(token), Target::Sandbox(dir.clone()))
            }
            _ => {
                let reg = registration(&args).await?;
                (
                    reg.instance_id,
                    Some(reg.agent_token),
                    Target::Host(host_layout(&args)?, reload_of(&args)),
                )
            }
        };
        let agent = Agent::new(AgentConfig {
            server: args.server.clone(),
            instance_id: instance_id.clone(),
            token,
            target,
            poll_secs: args.poll_secs,
        });
        if args.once {
            agent.run_once().await?;
        } else {
            tracing::info!(instance = %instance_id, server = %args.server, "agent running");
            agent.run(crate::listen::shutdown_signal()).await;
        }
        Ok(())
    })
}

/// The saved registration, or a new one made with `--token` and saved.
async fn registration(args: &AgentArgs) -> Result<Registered> {
    if let Ok(text) = std::fs::read_to_string(&args.state_file) {
        return serde_json::from_str(&text)
            .with_context(|| format!("invalid agent state in {}", args.state_file.display()));
    }
    let Some(token) = &args.token else {
        bail!(
            "this host is not registered yet: give --token (from `keyplane agent-token create`); \
             no state in {}",
            args.state_file.display()
        );
    };
    let hostname = match &args.hostname {
        Some(h) => h.clone(),
        None => std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "host".into()),
    };
    let address = match &args.address {
        Some(a) => a.clone(),
        None => local_address_towards(&args.server)?,
    };
    let reg = keyplane_agent::register(
        &args.server,
        token,
        &hostname,
        &address,
        args.ssh_port,
        &os_name(),
    )
    .await
    .context("registration failed")?;
    save_state(&args.state_file, &reg)?;
    tracing::info!(instance = %reg.instance_id, "registered");
    eprintln!(
        "keyplane agent: registered this host as {} ({} {})",
        reg.instance_id, reg.namespace, reg.region
    );
    Ok(reg)
}

fn save_state(path: &Path, reg: &Registered) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let tmp = dir.join(format!(".state.{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    f.write_all(serde_json::to_string(reg)?.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

/// The local address the kernel would use to reach the server.
fn local_address_towards(server: &str) -> Result<String> {
    let authority = server
        .split("://")
        .nth(1)
        .unwrap_or(server)
        .split('/')
        .next()
        .unwrap_or_default();
    let sock = std::net::UdpSocket::bind("0.0.0.0:0")?;
    sock.connect(authority)
        .with_context(|| format!("cannot find a route to {authority}; give --address"))?;
    Ok(sock.local_addr()?.ip().to_string())
}

fn os_name() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                l.strip_prefix("PRETTY_NAME=")
                    .map(|v| v.trim_matches('"').to_string())
            })
        })
        .unwrap_or_else(|| "Linux".into())
}

/// The login user's home and ids, from /etc/passwd.
fn host_layout(args: &AgentArgs) -> Result<HostLayout> {
    let passwd = std::fs::read_to_string("/etc/passwd").context("cannot read /etc/passwd")?;
    for line in passwd.lines() {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() >= 6 && f[0] == args.login_user {
            return Ok(HostLayout {
                home: PathBuf::from(f[5]),
                owner: Owner {
                    uid: f[2].parse().context("uid in /etc/passwd")?,
                    gid: f[3].parse().context("gid in /etc/passwd")?,
                },
                sshd_dir: args.sshd_dir.clone(),
            });
        }
    }
    bail!("no user `{}` in /etc/passwd", args.login_user)
}

fn reload_of(args: &AgentArgs) -> Reload {
    match &args.sshd_pid_file {
        Some(p) => Reload::PidFile(p.clone()),
        None if Path::new("/run/sshd.pid").exists() => Reload::PidFile("/run/sshd.pid".into()),
        None => Reload::Command(vec!["systemctl".into(), "reload".into(), "ssh".into()]),
    }
}
