//! `keyplane agent-token create`: registration tokens for real hosts.

use crate::account::{open, DataDirArg};
use anyhow::{bail, Context, Result};
use clap::Subcommand;
use keyplane_core::keypair::Namespace;

/// Registration-token commands.
#[derive(Debug, Subcommand)]
pub enum AgentTokenCommand {
    /// Issue a registration token: a host running `keyplane agent --token TOKEN` becomes an
    /// instance of ACCOUNT in the dialect's namespace. Single use; expires after --ttl-secs.
    Create {
        /// The account the host will belong to.
        #[arg(long)]
        account: String,
        /// Which dialect's instances the host joins: cvm (CVM 3.0 and legacy), lighthouse or ecs.
        #[arg(long, default_value = "cvm")]
        dialect: String,
        /// Region the host is listed in.
        #[arg(long, default_value = "ap-guangzhou")]
        region: String,
        /// Seconds the token stays valid.
        #[arg(long, default_value_t = 3600)]
        ttl_secs: i64,
        #[command(flatten)]
        data: DataDirArg,
    },
}

/// Run a registration-token command.
pub fn run(cmd: AgentTokenCommand) -> Result<()> {
    let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    rt.block_on(async {
        match cmd {
            AgentTokenCommand::Create {
                account,
                dialect,
                region,
                ttl_secs,
                data,
            } => {
                let Some(namespace) = Namespace::parse(&dialect) else {
                    bail!("unknown dialect `{dialect}`: use cvm, lighthouse or ecs");
                };
                if !(60..=30 * 24 * 3600).contains(&ttl_secs) {
                    bail!("--ttl-secs must be between 60 and 2592000");
                }
                let core = open(data).await?;
                let Some(acct) = core
                    .account_record_by_name(&account)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?
                else {
                    bail!("no account named `{account}`");
                };
                let token = core
                    .issue_registration_token(&acct, namespace, &region, ttl_secs)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                println!("{token}");
                eprintln!(
                    "keyplane: on the host, run: keyplane agent --server http://<this server>:8787 --token {token}\n\
                     keyplane: the token registers one host, within {ttl_secs} s."
                );
            }
        }
        Ok(())
    })
}
