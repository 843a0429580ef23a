//! `keyplane console ...`: sign-in links for the web console.

use crate::account::{open, DataDirArg};
use anyhow::{Context, Result};
use clap::Subcommand;

/// Console commands.
#[derive(Debug, Subcommand)]
pub enum ConsoleCommand {
    /// Print a one-time login URL for the web console of an account. It works once, within
    /// 10 minutes, and signs the browser in for 12 hours. Only a hash of its token is stored.
    LoginUrl {
        /// The account to sign in as.
        #[arg(long)]
        account: String,
        /// The server as the browser reaches it (scheme, host and port; the path is added).
        #[arg(
            long,
            env = "KEYPLANE_CONSOLE_URL",
            default_value = "http://127.0.0.1:8787"
        )]
        url: String,
        #[command(flatten)]
        data: DataDirArg,
    },
}

/// The login URL for `token` on the server at `base`.
fn login_url(base: &str, token: &str) -> String {
    format!("{}/console/login?token={token}", base.trim_end_matches('/'))
}

/// Run a console command.
pub fn run(cmd: ConsoleCommand) -> Result<()> {
    let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    rt.block_on(async {
        match cmd {
            ConsoleCommand::LoginUrl { account, url, data } => {
                let core = open(data).await?;
                let login = core
                    .issue_console_login(&account)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                println!("{}", login_url(&url, login.token.expose()));
                eprintln!(
                    "keyplane: this link signs in as `{}` once, until {}",
                    login.account.name,
                    crate::read::utc(login.expires_at)
                );
                Ok(())
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_has_one_slash_before_the_path() {
        assert_eq!(
            login_url("http://127.0.0.1:8787/", "abc"),
            "http://127.0.0.1:8787/console/login?token=abc"
        );
        assert_eq!(
            login_url("https://kp.example:8443", "abc"),
            "https://kp.example:8443/console/login?token=abc"
        );
    }
}
