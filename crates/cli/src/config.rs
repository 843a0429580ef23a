//! Configuration: flags, then `KEYPLANE_*` environment variables, then the config file, then
//! the embedded defaults.

use anyhow::{Context, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};

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
    /// Data directory.
    pub data_dir: Option<PathBuf>,
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

/// Create the data directory if needed, and the database file in it with mode 0600 (SQLite
/// gives its WAL and shared-memory files the database file's mode).
///
/// The directory is 0711: others may pass through it to the sandbox instances inside (which
/// run as unprivileged uids) but cannot list it; every secret file in it is 0600.
pub fn ensure_data_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o711)
            .create(dir)
            .with_context(|| format!("cannot create data directory {}", dir.display()))?;
    }
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
    }
}
