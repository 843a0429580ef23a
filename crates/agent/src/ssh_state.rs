//! The guest-visible SSH state the agent owns: bound public keys and the password switch.
//!
//! Layout inside an sshd configuration directory (`/etc/ssh` as the guest sees it):
//!
//! ```text
//! <dir>/keyplane/authorized_keys        0600  bound public keys, one per line
//! <dir>/sshd_config.d/00-keyplane.conf  0644  PasswordAuthentication yes|no
//! ```
//!
//! Nothing else in `<dir>` is read or written. The sandbox's `sshd_config` includes
//! `sshd_config.d/*.conf` first and lists `keyplane/authorized_keys` in `AuthorizedKeysFile`.

use std::path::Path;

use crate::files::{FileError as Error, FileResult as Result, IoContext};
use crate::fsutil::{self, Owner};

/// Subdirectory (of the sshd configuration directory) holding the agent's key file.
pub const KEYS_DIR: &str = "keyplane";
/// File name of the agent's authorized keys file inside [`KEYS_DIR`].
pub const KEYS_FILE: &str = "authorized_keys";
/// Drop-in directory read by sshd's `Include`.
pub const DROPIN_DIR: &str = "sshd_config.d";
/// The agent's drop-in file.
// Why `00-`: sshd keeps the first value it reads for most keywords, so the drop-in that sorts
// first wins over others (e.g. a cloud-init `50-cloud-init.conf`).
pub const DROPIN_FILE: &str = "00-keyplane.conf";

/// Writes the desired SSH state into the sshd configuration directory `dir`.
///
/// `keys` are OpenSSH public key lines (`ssh-ed25519 AAAA... comment`); `password_auth` turns
/// `PasswordAuthentication` on or off. New files and the two subdirectories take the owner of
/// `dir` (the instance's root for a sandbox, root on a real host). Each file is replaced
/// atomically and never through a symlink. Order matters for a session racing the change:
/// when password login is being turned off the keys land first, when it is being turned back on
/// the password switch flips before the keys disappear, so there is never a moment with
/// neither way in.
pub fn apply_ssh_state(dir: &Path, keys: &[String], password_auth: bool) -> Result<()> {
    let keys_content = render_keys(keys)?;
    let dropin = render_dropin(password_auth);
    let dir_fd = fsutil::open_dir_checked(dir)?;
    let owner = fsutil::owner_of(&dir_fd).ctx(|| format!("stat {}", dir.display()))?;
    let write_keys = || -> Result<()> {
        let d = fsutil::ensure_subdir(&dir_fd, KEYS_DIR, 0o700, Some(owner))
            .ctx(|| format!("directory {}/{KEYS_DIR}", dir.display()))?;
        fsutil::write_atomic_at(&d, KEYS_FILE, keys_content.as_bytes(), 0o600, Some(owner))
    };
    let write_dropin = || -> Result<()> {
        let d = fsutil::ensure_subdir(&dir_fd, DROPIN_DIR, 0o755, Some(owner))
            .ctx(|| format!("directory {}/{DROPIN_DIR}", dir.display()))?;
        fsutil::write_atomic_at(&d, DROPIN_FILE, dropin.as_bytes(), 0o644, Some(owner))
    };
    if password_auth {
        write_dropin()?;
        write_keys()
    } else {
        write_keys()?;
        write_dropin()
    }
}

/// Reads back the keys the agent wrote (comments and blank lines skipped).
pub fn read_ssh_keys(dir: &Path) -> Result<Vec<String>> {
    let dir_fd = fsutil::open_dir_checked(dir)?;
    let keys_dir = match fsutil::open_subdir(&dir_fd, KEYS_DIR) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).ctx(|| format!("opening {}/{KEYS_DIR}", dir.display())),
    };
    let bytes = match fsutil::read_file(&keys_dir, KEYS_FILE) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).ctx(|| format!("reading {KEYS_DIR}/{KEYS_FILE}")),
    };
    Ok(String::from_utf8_lossy(&bytes)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect())
}

/// The authorized keys file content; rejects lines that would smuggle in extra entries.
pub fn render_keys(keys: &[String]) -> Result<String> {
    let mut out = String::from("# Managed by keyplane: bound key pairs. Do not edit.\n");
    for (i, key) in keys.iter().enumerate() {
        let key = key.trim();
        if key.is_empty() || key.contains(['\n', '\r', '\0']) {
            return Err(Error::InvalidKey(i));
        }
        out.push_str(key);
        out.push('\n');
    }
    Ok(out)
}

/// The drop-in content for the password switch.
fn render_dropin(password_auth: bool) -> String {
    let value = if password_auth { "yes" } else { "no" };
    format!("# Managed by keyplane: password login is off while key pairs are bound.\nPasswordAuthentication {value}\n")
}

/// Path of the agent's authorized keys file inside the sshd configuration directory `dir`.
pub fn keys_path(dir: &Path) -> std::path::PathBuf {
    dir.join(KEYS_DIR).join(KEYS_FILE)
}

/// Owner that [`apply_ssh_state`] would give new files in `dir`.
pub fn state_owner(dir: &Path) -> Result<Owner> {
    let fd = fsutil::open_dir_checked(dir)?;
    fsutil::owner_of(&fd).ctx(|| format!("stat {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_with_line_breaks_are_rejected() {
        let keys = vec!["ssh-ed25519 AAAA a".to_owned(), "x\nssh-rsa B".to_owned()];
        assert!(matches!(render_keys(&keys), Err(Error::InvalidKey(1))));
    }

    #[test]
    fn state_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let keys = vec!["ssh-ed25519 AAAAC3Nza k1".to_owned()];
        apply_ssh_state(dir.path(), &keys, false).unwrap();
        assert_eq!(read_ssh_keys(dir.path()).unwrap(), keys);
        let dropin = std::fs::read_to_string(dir.path().join(DROPIN_DIR).join(DROPIN_FILE));
        assert!(dropin.unwrap().contains("PasswordAuthentication no"));
        apply_ssh_state(dir.path(), &[], true).unwrap();
        assert!(read_ssh_keys(dir.path()).unwrap().is_empty());
        let dropin = std::fs::read_to_string(dir.path().join(DROPIN_DIR).join(DROPIN_FILE));
        assert!(dropin.unwrap().contains("PasswordAuthentication yes"));
    }
}
