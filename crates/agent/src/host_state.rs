//! The SSH state on a real, agent-managed host: the bound public keys in a file the agent owns
//! under the login user's home, and an sshd drop-in that adds that file to `AuthorizedKeysFile`
//! and switches `PasswordAuthentication`.
//!
//! ```text
//! <home>/.ssh/keyplane_authorized_keys               0600 user  bound public keys
//! <sshd dir>/sshd_config.d/00-keyplane.conf          0644 root  AuthorizedKeysFile + PasswordAuthentication
//! ```
//!
//! Nothing else is read or written: keys the user or other tools put in `authorized_keys` are
//! never touched. Writes are atomic and never follow a symlink.

use std::path::{Path, PathBuf};

use crate::files::{FileResult as Result, IoContext};
use crate::fsutil::{self, Owner};
use crate::ssh_state::{render_keys, DROPIN_DIR, DROPIN_FILE};

/// The agent's key file in the login user's `~/.ssh`.
pub const HOST_KEYS_FILE: &str = "keyplane_authorized_keys";

/// Where a real host keeps what the agent manages.
#[derive(Debug, Clone)]
pub struct HostLayout {
    /// The login user's home directory.
    pub home: PathBuf,
    /// The login user (owner of the key file and `~/.ssh`).
    pub owner: Owner,
    /// The sshd configuration directory (`/etc/ssh`).
    pub sshd_dir: PathBuf,
}

fn render_host_dropin(password_auth: bool) -> String {
    let value = if password_auth { "yes" } else { "no" };
    format!(
        "# Managed by keyplane: bound key pairs, and password login off while any is bound.\n\
         AuthorizedKeysFile .ssh/authorized_keys .ssh/authorized_keys2 .ssh/{HOST_KEYS_FILE}\n\
         PasswordAuthentication {value}\n"
    )
}

/// Apply the state; returns whether the sshd drop-in changed (sshd must then reload).
pub fn apply_host_ssh_state(
    layout: &HostLayout,
    keys: &[String],
    password_auth: bool,
) -> Result<bool> {
    let keys_content = render_keys(keys)?;
    let dropin = render_host_dropin(password_auth);
    let home = fsutil::open_dir_checked(&layout.home)?;
    let sshd = fsutil::open_dir_checked(&layout.sshd_dir)?;
    let root = fsutil::owner_of(&sshd).ctx(|| format!("stat {}", layout.sshd_dir.display()))?;
    let write_keys = || -> Result<()> {
        let ssh = fsutil::ensure_subdir(&home, ".ssh", 0o700, Some(layout.owner))
            .ctx(|| format!("directory {}/.ssh", layout.home.display()))?;
        fsutil::write_atomic_at(
            &ssh,
            HOST_KEYS_FILE,
            keys_content.as_bytes(),
            0o600,
            Some(layout.owner),
        )
    };
    let d = fsutil::ensure_subdir(&sshd, DROPIN_DIR, 0o755, Some(root))
        .ctx(|| format!("directory {}/{DROPIN_DIR}", layout.sshd_dir.display()))?;
    let current = fsutil::read_file(&d, DROPIN_FILE).ok();
    let changed = current.as_deref() != Some(dropin.as_bytes());
    let write_dropin = || -> Result<()> {
        if changed {
            fsutil::write_atomic_at(&d, DROPIN_FILE, dropin.as_bytes(), 0o644, Some(root))?;
        }
        Ok(())
    };
    // Never a moment with neither way in: keys land before password login goes off, and
    // password login comes back before the keys go.
    if password_auth {
        write_dropin()?;
        write_keys()?;
    } else {
        write_keys()?;
        write_dropin()?;
    }
    Ok(changed)
}

/// The keys in the agent's file (empty when there is none).
pub fn read_host_keys(layout: &HostLayout) -> Result<Vec<String>> {
    let home = fsutil::open_dir_checked(&layout.home)?;
    let ssh = match fsutil::open_subdir(&home, ".ssh") {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).ctx(|| format!("opening {}/.ssh", layout.home.display())),
    };
    match fsutil::read_file(&ssh, HOST_KEYS_FILE) {
        Ok(bytes) => Ok(String::from_utf8_lossy(&bytes)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_owned)
            .collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e).ctx(|| format!("reading .ssh/{HOST_KEYS_FILE}")),
    }
}

/// The password switch in the agent's drop-in, if it exists.
pub fn read_host_password_switch(sshd_dir: &Path) -> Option<bool> {
    let text = std::fs::read_to_string(sshd_dir.join(DROPIN_DIR).join(DROPIN_FILE)).ok()?;
    text.lines().find_map(|l| {
        let mut w = l.split_whitespace();
        match (w.next(), w.next()) {
            (Some(k), Some(v)) if k.eq_ignore_ascii_case("PasswordAuthentication") => {
                Some(v.eq_ignore_ascii_case("yes"))
            }
            _ => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_only_its_own_files() {
        let home = tempfile::tempdir().unwrap();
        let sshd = tempfile::tempdir().unwrap();
        std::fs::create_dir(home.path().join(".ssh")).unwrap();
        std::fs::write(
            home.path().join(".ssh/authorized_keys"),
            "ssh-ed25519 AAAA users-own\n",
        )
        .unwrap();
        let owner = fsutil::owner_of(fsutil::open_dir(home.path()).unwrap()).unwrap();
        let layout = HostLayout {
            home: home.path().into(),
            owner,
            sshd_dir: sshd.path().into(),
        };
        let keys = vec!["ssh-ed25519 AAAAC3Nza bound".to_string()];
        assert!(
            apply_host_ssh_state(&layout, &keys, false).unwrap(),
            "first write changes the drop-in"
        );
        assert_eq!(read_host_keys(&layout).unwrap(), keys);
        assert_eq!(read_host_password_switch(sshd.path()), Some(false));
        assert!(
            !apply_host_ssh_state(&layout, &keys, false).unwrap(),
            "same state: no reload"
        );
        let own = std::fs::read_to_string(home.path().join(".ssh/authorized_keys")).unwrap();
        assert_eq!(
            own, "ssh-ed25519 AAAA users-own\n",
            "the user's own keys are untouched"
        );
        assert!(apply_host_ssh_state(&layout, &[], true).unwrap());
        assert!(read_host_keys(&layout).unwrap().is_empty());
        let dropin =
            std::fs::read_to_string(sshd.path().join(DROPIN_DIR).join(DROPIN_FILE)).unwrap();
        assert!(dropin.contains("AuthorizedKeysFile .ssh/authorized_keys .ssh/authorized_keys2 .ssh/keyplane_authorized_keys"));
        assert!(dropin.contains("PasswordAuthentication yes"));
    }

    #[test]
    fn refuses_a_symlinked_ssh_dir() {
        let home = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        let sshd = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), home.path().join(".ssh")).unwrap();
        let owner = fsutil::owner_of(fsutil::open_dir(home.path()).unwrap()).unwrap();
        let layout = HostLayout {
            home: home.path().into(),
            owner,
            sshd_dir: sshd.path().into(),
        };
        assert!(apply_host_ssh_state(&layout, &["ssh-ed25519 AAAA k".into()], false).is_err());
        assert!(
            std::fs::read_dir(elsewhere.path())
                .unwrap()
                .next()
                .is_none(),
            "nothing written through the link"
        );
    }
}
