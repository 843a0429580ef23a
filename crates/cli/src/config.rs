//! Configuration: flags, then `KEYPLANE_*` environment variables, then the config file, then
//! the embedded defaults.

use anyhow::{Context, Result};
use keyplane_core::store::Store;
use keyplane_store::{redact_database_url, PostgresStore, SqliteStore};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The documented default configuration (also printed by `keyplane default-config`).
pub const DEFAULT_CONFIG: &str = include_str!("../keyplane.example.toml");

/// Default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8787";

/// Settings that may come from the config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Listen address.
    pub listen: Option<String>,
    /// TLS listen address (`off` or empty: no TLS).
    pub listen_tls: Option<String>,
    /// Where `GET /metrics` is served: `api` (the API's listeners), an address, or `off`.
    pub listen_metrics: Option<String>,
    /// The operator's TLS certificate chain (PEM), instead of the server's own CA.
    pub tls_cert: Option<PathBuf>,
    /// The operator's TLS private key (PEM).
    pub tls_key: Option<PathBuf>,
    /// Data directory.
    pub data_dir: Option<PathBuf>,
    /// Shared database URL (`postgres://...`); SQLite in the data directory when absent.
    pub database: Option<DatabaseUrl>,
    /// Requests per second per account and action.
    pub rate_limit: Option<u32>,
    /// Accepted clock skew, seconds.
    pub max_clock_skew_secs: Option<i64>,
    /// Log filter (`info`, `keyplane_api=debug`, ...).
    pub log: Option<String>,
    /// Sandbox instance directory.
    pub sandbox_dir: Option<PathBuf>,
    /// SSH port of sandbox instances.
    pub ssh_port: Option<u16>,
    /// The master key file account secrets are encrypted with.
    pub master_key_file: Option<PathBuf>,
    /// Image tarball cache directory.
    pub image_cache: Option<PathBuf>,
    /// Outbound network access for sandbox instances (slirp4netns).
    pub instance_outbound: Option<bool>,
    /// Keep the audit trail.
    pub audit: Option<bool>,
    /// Days audit events are kept.
    pub audit_retention_days: Option<u32>,
    /// Most audit events kept.
    pub audit_max_events: Option<u64>,
}

impl FileConfig {
    /// Load `path`; a missing file is an error only when it was named explicitly.
    pub fn load(path: Option<&Path>) -> Result<FileConfig> {
        let Some(path) = path else {
            return Ok(FileConfig::default());
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))
    }
}

/// A database URL (`postgres://user:password@host:port/database`). Its `Debug` form hides
/// the password, so the flags and the config can be logged.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "String")]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// The URL with its password, for connecting.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with its password replaced by `***`.
    pub fn redacted(&self) -> String {
        redact_database_url(&self.0)
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DatabaseUrl({:?})", self.redacted())
    }
}

impl From<String> for DatabaseUrl {
    fn from(url: String) -> DatabaseUrl {
        DatabaseUrl(url)
    }
}

/// Any text is taken here and checked by [`open_store`], so that no error message (clap's
/// included) repeats a password.
impl std::str::FromStr for DatabaseUrl {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<DatabaseUrl, Self::Err> {
        Ok(DatabaseUrl(s.to_string()))
    }
}

/// Open the store: PostgreSQL at `database` (schema migrated on the way), else SQLite in
/// `data_dir` (created if needed). Shared by `serve` and the `account` commands.
pub async fn open_store(database: Option<&DatabaseUrl>, data_dir: &Path) -> Result<Arc<dyn Store>> {
    match database.filter(|url| !url.0.is_empty()) {
        Some(url) if !(url.0.starts_with("postgres://") || url.0.starts_with("postgresql://")) => {
            anyhow::bail!(
                "unsupported database URL {:?}: expected postgres://user:password@host:port/database \
                 (leave it out for SQLite in the data directory)",
                url.redacted()
            )
        }
        Some(url) => {
            let store = PostgresStore::connect(url.expose())
                .await
                .map_err(|e| anyhow::anyhow!("cannot open the database {}: {e}", url.redacted()))?;
            Ok(Arc::new(store))
        }
        None => {
            ensure_data_dir(data_dir)?;
            ensure_database_file(data_dir)?;
            let store = SqliteStore::open(&database_path(data_dir)).map_err(|e| {
                anyhow::anyhow!("cannot open the database in {}: {e}", data_dir.display())
            })?;
            Ok(Arc::new(store))
        }
    }
}

/// The default data directory: `/var/lib/keyplane` for root (sandbox instances need every
/// directory above them searchable, which root's home is not), else
/// `$HOME/.local/share/keyplane`, or `./keyplane-data`.
pub fn default_data_dir() -> PathBuf {
    if rustix::process::geteuid().is_root() {
        return PathBuf::from("/var/lib/keyplane");
    }
    match std::env::var_os("HOME") {
        Some(home) if !home.is_empty() => PathBuf::from(home).join(".local/share/keyplane"),
        _ => PathBuf::from("keyplane-data"),
    }
}

/// The database file inside a data directory.
pub fn database_path(data_dir: &Path) -> PathBuf {
    data_dir.join("keyplane.db")
}

/// Create the data directory if needed.
///
/// The directory is 0711: others may pass through it to the sandbox instances inside (which
/// run as unprivileged uids) but cannot list it; every secret file in it is 0600.
pub fn ensure_data_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o711)
            .create(dir)
            .with_context(|| format!("cannot create data directory {}", dir.display()))?;
    }
    Ok(())
}

/// Create the SQLite database file with mode 0600 (SQLite gives its WAL and shared-memory
/// files the database file's mode).
/// Create `path`, which must not exist yet, readable by its owner only (it holds a secret or
/// an identity), and open it for writing.
pub fn create_private(path: &Path) -> Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))
}

fn ensure_database_file(dir: &Path) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let db = database_path(dir);
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&db)
        .with_context(|| format!("cannot create {}", db.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_config_parses() {
        let c: FileConfig = toml::from_str(DEFAULT_CONFIG).unwrap();
        assert_eq!(c.listen.as_deref(), Some(DEFAULT_LISTEN));
        assert_eq!(c.rate_limit, Some(10));
        assert_eq!(c.database, None);
    }

    #[test]
    fn database_urls_are_checked_and_never_shown_with_their_password() {
        let url: DatabaseUrl = "postgres://kp:s3cret@db:5432/keyplane".parse().unwrap();
        assert_eq!(url.expose(), "postgres://kp:s3cret@db:5432/keyplane");
        let shown = format!("{url:?}");
        assert!(
            !shown.contains("s3cret") && shown.contains("kp:***@db"),
            "{shown}"
        );
        let c: FileConfig = toml::from_str(r#"database = "postgresql://kp:s3cret@db/k""#).unwrap();
        assert!(!format!("{c:?}").contains("s3cret"));
        let rt = tokio::runtime::Runtime::new().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let wrong: DatabaseUrl = "mysql://kp:s3cret@db/k".parse().unwrap();
        let err = rt
            .block_on(open_store(Some(&wrong), dir.path()))
            .err()
            .unwrap();
        let err = format!("{err:#}");
        assert!(
            err.contains("unsupported") && !err.contains("s3cret"),
            "{err}"
        );
    }

    #[test]
    fn an_empty_database_url_means_sqlite_in_the_data_dir() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let empty = DatabaseUrl::from(String::new());
        rt.block_on(open_store(Some(&empty), dir.path())).unwrap();
        assert!(database_path(dir.path()).exists());
    }
}
