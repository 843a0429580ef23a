//! The master key that account secrets are sealed with: a file outside the database
//! (`<data dir>/master.key` unless `--master-key-file` names another), created with mode 0600
//! on first use. Nodes sharing one PostgreSQL database must all be given the same file.

use anyhow::{bail, Context, Result};
use keyplane_core::sealing::{KeyCheckError, MasterKey};
use keyplane_core::store::Store;
use keyplane_core::Core;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The key file's name in the data directory.
pub const FILE_NAME: &str = "master.key";

/// Where the key file is: `explicit`, else in the data directory.
pub fn path(explicit: Option<&Path>, data_dir: &Path) -> PathBuf {
    explicit.map_or_else(|| data_dir.join(FILE_NAME), Path::to_path_buf)
}

/// Read the key at `path`, or create it (mode 0600) when there is no file yet. The flag says
/// whether it was created now.
pub fn load_or_create(path: &Path) -> Result<(MasterKey, bool)> {
    loop {
        match std::fs::metadata(path) {
            Ok(meta) => return read(path, &meta).map(|k| (k, false)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
        let key = MasterKey::generate();
        let created = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path);
        let mut f = match created {
            Ok(f) => f,
            // Another process (a node starting beside this one) made it first: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("cannot create the master key {}", path.display()))
            }
        };
        f.write_all(key.to_text().as_bytes())?;
        f.sync_all()?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::File::open(dir)?.sync_all()?;
        }
        return Ok((key, true));
    }
}

fn read(path: &Path, meta: &std::fs::Metadata) -> Result<MasterKey> {
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        bail!(
            "the master key file {} is accessible to other users (mode {mode:04o}); \
             make it private with `chmod 600 {}`",
            path.display(),
            path.display()
        );
    }
    let text = zeroize::Zeroizing::new(
        std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the master key {}", path.display()))?,
    );
    MasterKey::from_text(&text)
        .with_context(|| format!("invalid master key file {}", path.display()))
}

/// A domain service over `store` that seals secrets with the key at `key_path` (created if
/// missing), after checking the key against the database and sealing any secret an earlier
/// version stored in clear.
pub async fn core_with_key(store: Arc<dyn Store>, key_path: &Path) -> Result<Core> {
    let (key, created) = load_or_create(key_path)?;
    let core = Core::new(store, Arc::new(keyplane_core::service::SystemClock)).with_master_key(key);
    match core.prepare_secrets().await {
        Ok(report) => {
            if created {
                eprintln!(
                    "keyplane: created the master key {} (mode 0600): account secrets are \
                     encrypted with it; keep a copy, without it the credentials are lost",
                    key_path.display()
                );
            }
            if report.sealed_now > 0 {
                eprintln!(
                    "keyplane: encrypted the secrets of {} account(s) stored in clear",
                    report.sealed_now
                );
            }
            Ok(core)
        }
        Err(KeyCheckError::WrongKey) if created => {
            // Do not leave a key behind that can never open this database's secrets.
            let _ = std::fs::remove_file(key_path);
            bail!(
                "no master key at {}, and this database's account secrets are encrypted with \
                 one: give the original key file (--master-key-file or KEYPLANE_MASTER_KEY_FILE)",
                key_path.display()
            )
        }
        Err(e) => bail!("master key {}: {e}", key_path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_file_is_created_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let p = path(None, dir.path());
        let (_, created) = load_or_create(&p).unwrap();
        assert!(created);
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let (_, created) = load_or_create(&p).unwrap();
        assert!(!created);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = load_or_create(&p).unwrap_err().to_string();
        assert!(e.contains("chmod 600"), "{e}");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(&p, "not a key").unwrap();
        let e = format!("{:#}", load_or_create(&p).unwrap_err());
        assert!(e.contains("invalid master key file"), "{e}");
    }
}
