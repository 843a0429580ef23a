//! `keyplane agent`: the guest agent.

use anyhow::{bail, Context, Result};
use clap::Args;
use keyplane_agent::{Agent, AgentConfig};
use std::path::PathBuf;

/// Flags of `keyplane agent`.
#[derive(Debug, Args)]
pub struct AgentArgs {
    /// Base URL of a Keyplane API node, e.g. http://127.0.0.1:8787.
    #[arg(long, env = "KEYPLANE_SERVER")]
    server: String,
    /// The instance this agent speaks for.
    #[arg(long, env = "KEYPLANE_INSTANCE")]
    instance: String,
    /// The sshd configuration directory whose Keyplane files the agent owns
    /// (`keyplane/authorized_keys` and `sshd_config.d/00-keyplane.conf` under it).
    #[arg(long, env = "KEYPLANE_SSH_DIR", default_value = "/etc/ssh")]
    ssh_dir: PathBuf,
    /// File holding the agent token (else KEYPLANE_AGENT_TOKEN).
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// Apply the current state once and exit (0 on success).
    #[arg(long)]
    once: bool,
    /// Longest wait of one long poll, seconds.
    #[arg(long, default_value_t = 25)]
    poll_secs: u64,
    /// Log filter [default: info].
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
    let token = match &args.token_file {
        Some(f) => std::fs::read_to_string(f)
            .with_context(|| format!("cannot read {}", f.display()))?
            .trim()
            .to_string(),
        None => std::env::var("KEYPLANE_AGENT_TOKEN").unwrap_or_default(),
    };
    if token.is_empty() {
        bail!("no agent token: give --token-file or KEYPLANE_AGENT_TOKEN");
    }
    let agent = Agent::new(AgentConfig {
        server: args.server,
        instance_id: args.instance,
        token,
        ssh_dir: args.ssh_dir,
        poll_secs: args.poll_secs,
    });
    let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    rt.block_on(async {
        if args.once {
            agent.run_once().await?;
        } else {
            agent.run(crate::serve::shutdown_signal()).await;
        }
        Ok(())
    })
}
