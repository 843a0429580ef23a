//! `keyplane account ...`: admin commands on the database; safe while the server runs.

use crate::config::{self, DatabaseUrl};
use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use keyplane_core::account::Account;
use keyplane_core::Core;
use serde_json::json;
use std::path::{Path, PathBuf};

/// Where the database is.
#[derive(Debug, Args)]
pub struct DataDirArg {
    /// Data directory of the server [default: /var/lib/keyplane as root, else $HOME/.local/share/keyplane].
    #[arg(long, env = "KEYPLANE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// The server's shared database, `postgres://...` [default: SQLite in the data directory].
    #[arg(long, env = "KEYPLANE_DATABASE")]
    database: Option<DatabaseUrl>,
    /// The server's master key file, which account secrets are encrypted with
    /// [default: <data dir>/master.key].
    #[arg(long, env = "KEYPLANE_MASTER_KEY_FILE")]
    master_key_file: Option<PathBuf>,
}

/// Account commands.
#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Create an account and print its credentials as JSON (the only time they are shown
    /// besides `account credentials`).
    Create {
        /// Account name: letters, digits, '-', '_' or '.'.
        name: String,
        /// Make it an admin account.
        #[arg(long)]
        admin: bool,
        #[command(flatten)]
        data: DataDirArg,
    },
    /// List accounts (no secrets).
    List {
        #[command(flatten)]
        data: DataDirArg,
    },
    /// Give an account new credentials (SecretId/SecretKey and AccessKeyId/AccessKeySecret)
    /// and print them as JSON. The old ones stop working: when the command returns, every
    /// server on this database refuses them. The data directory's admin-credentials.json is
    /// updated when it holds this account.
    Rotate {
        /// Account name.
        name: String,
        #[command(flatten)]
        data: DataDirArg,
    },
    /// Print an account's credentials as JSON.
    Credentials {
        /// Account name.
        name: String,
        #[command(flatten)]
        data: DataDirArg,
    },
}

/// The JSON that carries an account's credentials.
pub fn credentials_json(a: &Account) -> String {
    json!({
        "account": a.name,
        "account_id": a.id,
        "admin": a.is_admin,
        "secret_id": a.secret_id,
        "secret_key": a.secret_key.expose(),
        "access_key_id": a.access_key_id,
        "access_key_secret": a.access_key_secret.expose(),
    })
    .to_string()
}

/// The file the first start leaves the admin's credentials in.
pub(crate) const ADMIN_FILE: &str = "admin-credentials.json";

/// On the first start, create the `admin` account and leave its credentials in a 0600 file.
/// With a shared database, the node that creates it keeps the file; a node that loses the race
/// goes on with the account the other one made.
pub(crate) async fn bootstrap_admin(
    core: &Core,
    data_dir: &Path,
    database: Option<&DatabaseUrl>,
) -> Result<()> {
    let accounts = core
        .list_accounts()
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if !accounts.is_empty() {
        return Ok(());
    }
    let admin = match core.create_account("admin", true).await {
        Ok(admin) => admin,
        Err(e) => {
            let made_elsewhere = core.account_by_name("admin").await;
            if matches!(made_elsewhere, Ok(Some(_))) {
                eprintln!("keyplane: another node created the admin account just now");
                return Ok(());
            }
            anyhow::bail!("cannot create the admin account: {e}");
        }
    };
    let path = data_dir.join(ADMIN_FILE);
    let mut f = config::create_private(&path)?;
    use std::io::Write;
    writeln!(f, "{}", credentials_json(&admin))?;
    f.sync_all()?;
    let place = match database {
        Some(url) => format!("--database {}", url.redacted()),
        None => format!("--data-dir {}", data_dir.display()),
    };
    eprintln!(
        "keyplane: first start: created the admin account. Its credentials are in {} (mode 0600);\n\
         keyplane: print them any time with `keyplane account credentials admin {place}`,\n\
         keyplane: and create more accounts with `keyplane account create NAME {place}`.",
        path.display(),
    );
    Ok(())
}

/// When the data directory's admin credentials file holds `a`'s account, give it `a`'s
/// (new) credentials, replacing it atomically.
fn refresh_admin_file(dir: &std::path::Path, a: &Account) -> Result<()> {
    let Ok(text) = std::fs::read_to_string(dir.join(ADMIN_FILE)) else {
        return Ok(());
    };
    let held: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    if held["account_id"].as_str() != Some(a.id.as_str()) {
        return Ok(());
    }
    let contents = format!("{}\n", credentials_json(a));
    keyplane_agent::fsutil::write_atomic(dir, ADMIN_FILE, contents.as_bytes(), 0o600, None)
        .with_context(|| format!("cannot update {}", dir.join(ADMIN_FILE).display()))?;
    eprintln!(
        "keyplane: {} holds the new credentials",
        dir.join(ADMIN_FILE).display()
    );
    Ok(())
}

pub(crate) async fn open(data: DataDirArg) -> Result<Core> {
    let dir = data.data_dir.unwrap_or_else(config::default_data_dir);
    let store = config::open_store(data.database.as_ref(), &dir).await?;
    let key = crate::master_key::path(data.master_key_file.as_deref(), &dir);
    crate::master_key::core_with_key(store, &key).await
}

/// Run an account command.
pub fn run(cmd: AccountCommand) -> Result<()> {
    let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    rt.block_on(async {
        match cmd {
            AccountCommand::Create { name, admin, data } => {
                let core = open(data).await?;
                let a = core
                    .create_account(&name, admin)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                println!("{}", credentials_json(&a));
            }
            AccountCommand::List { data } => {
                let core = open(data).await?;
                let all = core
                    .list_accounts()
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                for a in all {
                    println!(
                        "{}",
                        json!({"account": a.name, "account_id": a.id, "admin": a.is_admin,
                               "secret_id": a.secret_id, "access_key_id": a.access_key_id})
                    );
                }
            }
            AccountCommand::Rotate { name, data } => {
                let dir = data
                    .data_dir
                    .clone()
                    .unwrap_or_else(config::default_data_dir);
                let core = open(data).await?;
                let a = core
                    .rotate_credentials(&name)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                refresh_admin_file(&dir, &a)?;
                println!("{}", credentials_json(&a));
            }
            AccountCommand::Credentials { name, data } => {
                let core = open(data).await?;
                let Some(a) = core
                    .account_by_name(&name)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?
                else {
                    bail!("no account named `{name}`");
                };
                println!("{}", credentials_json(&a));
            }
        }
        Ok(())
    })
}
