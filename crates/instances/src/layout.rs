//! On-disk layout of the sandbox host and of each instance, and the files rendered into it.
//!
//! ```text
//! <root>/                   0711 host root
//!   meta/<id>.json          0600 host root   slot, address, hostname, host public key
//!   run/<id>.pid            0600 host root   init pid + start time of a running instance
//!   guests/                 0711 host root
//!     <id>/                 0700 instance root (host uid subuid_base + slot * 65536)
//!       etc-ssh/            0755  -> /etc/ssh inside: sshd_config, host key, sshd_config.d/,
//!                                    keyplane/authorized_keys (the agent's)
//!       shadow              0600  -> /etc/shadow inside (root's password hash)
//!       hostname            0644  -> /etc/hostname inside
//!       home/               0700  -> /root inside
//! ```
//!
//! Host root writes into instance-owned directories only through `fsutil` (no symlink is ever
//! followed there).

use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};
use crate::fsutil::{self, Owner};
use crate::ssh_state::{DROPIN_DIR, KEYS_DIR, KEYS_FILE};

const META_DIR: &str = "meta";
const RUN_DIR: &str = "run";
const GUESTS_DIR: &str = "guests";
/// Guest subdirectory mounted over `/etc/ssh`.
pub(crate) const SSH_DIR: &str = "etc-ssh";
const HOST_KEY: &str = "ssh_host_ed25519_key";
const HOST_KEY_PUB: &str = "ssh_host_ed25519_key.pub";

/// What the host remembers about an instance (host-root owned, invisible to the guest).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Meta {
    pub id: String,
    pub slot: u32,
    pub address: Ipv4Addr,
    pub hostname: String,
    pub host_public_key: String,
}

/// Paths and file operations under the sandbox root directory.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    root: PathBuf,
}

impl Layout {
    pub fn new(root: PathBuf) -> Self {
        Layout { root }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Creates the host-owned skeleton with its modes.
    pub fn init(&self) -> Result<()> {
        for (dir, mode) in [
            (self.root.clone(), 0o711),
            (self.root.join(META_DIR), 0o700),
            (self.root.join(RUN_DIR), 0o700),
            (self.root.join(GUESTS_DIR), 0o711),
        ] {
            std::fs::create_dir_all(&dir).ctx(|| format!("creating {}", dir.display()))?;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode))
                .ctx(|| format!("chmod {}", dir.display()))?;
        }
        Ok(())
    }

    /// The instance's directory on the host.
    pub fn guest_dir(&self, id: &str) -> PathBuf {
        self.root.join(GUESTS_DIR).join(id)
    }

    /// The instance's sshd configuration directory (`/etc/ssh` inside) on the host.
    pub fn ssh_dir(&self, id: &str) -> PathBuf {
        self.guest_dir(id).join(SSH_DIR)
    }

    pub fn load_meta(&self, id: &str) -> Result<Option<Meta>> {
        let path = self.root.join(META_DIR).join(format!("{id}.json"));
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(std::io::Error::other)
                .ctx(|| format!("parsing {}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).ctx(|| format!("reading {}", path.display())),
        }
    }

    pub fn save_meta(&self, meta: &Meta) -> Result<()> {
        let json = serde_json::to_vec_pretty(meta).map_err(std::io::Error::other);
        let json = json.ctx(|| format!("encoding metadata of {}", meta.id))?;
        let name = format!("{}.json", meta.id);
        fsutil::write_atomic(&self.root.join(META_DIR), &name, &json, 0o600, None)
    }

    pub fn list_meta(&self) -> Result<Vec<Meta>> {
        let dir = self.root.join(META_DIR);
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&dir).ctx(|| format!("listing {}", dir.display()))? {
            let entry = entry.ctx(|| format!("listing {}", dir.display()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(id) = name.strip_suffix(".json") {
                if validate_id(id).is_ok() {
                    out.extend(self.load_meta(id)?);
                }
            }
        }
        Ok(out)
    }

    pub fn remove_meta(&self, id: &str) -> Result<()> {
        remove_if_exists(&self.root.join(META_DIR).join(format!("{id}.json")))
    }

    /// Records a running instance's init process (`pid starttime`) for stale cleanup.
    pub fn write_run_record(&self, id: &str, pid: u32, start_time: u64) -> Result<()> {
        let dir = self.root.join(RUN_DIR);
        let line = format!("{pid} {start_time}\n");
        fsutil::write_atomic(&dir, &format!("{id}.pid"), line.as_bytes(), 0o600, None)
    }

    /// All run records: (instance id, pid, start time).
    pub fn run_records(&self) -> Result<Vec<(String, u32, u64)>> {
        let dir = self.root.join(RUN_DIR);
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&dir).ctx(|| format!("listing {}", dir.display()))? {
            let entry = entry.ctx(|| format!("listing {}", dir.display()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(id) = name.strip_suffix(".pid") else {
                continue;
            };
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            let mut parts = text.split_whitespace().map(str::parse::<u64>);
            if let (Some(Ok(pid)), Some(Ok(start))) = (parts.next(), parts.next()) {
                out.push((id.to_owned(), pid as u32, start));
            }
        }
        Ok(out)
    }

    pub fn remove_run_record(&self, id: &str) -> Result<()> {
        remove_if_exists(&self.root.join(RUN_DIR).join(format!("{id}.pid")))
    }

    /// Removes the instance's directory tree (symlink-safe: std's `remove_dir_all` never
    /// follows links).
    pub fn remove_guest(&self, id: &str) -> Result<()> {
        let dir = self.guest_dir(id);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).ctx(|| format!("removing {}", dir.display())),
        }
    }

    /// Creates or repairs the instance directory; returns the host public key.
    ///
    /// The host key is kept if present; the shadow file is rewritten when `password_hash` is
    /// given (a SHA-512 crypt hash; `Some(None)` locks password login) or when it does not
    /// exist yet.
    pub fn lay_out_guest(
        &self,
        meta: &Meta,
        owner: Owner,
        password_hash: Option<Option<&str>>,
    ) -> Result<String> {
        let id = meta.id.as_str();
        let ctx = |what: &str| format!("laying out {what} of instance {id}");
        let guests = fsutil::open_dir(&self.root.join(GUESTS_DIR)).ctx(|| ctx("guests"))?;
        let guest = fsutil::ensure_subdir(&guests, id, 0o700, Some(owner)).ctx(|| ctx("dir"))?;
        let ssh = fsutil::ensure_subdir(&guest, SSH_DIR, 0o755, Some(owner)).ctx(|| ctx("ssh"))?;
        fsutil::ensure_subdir(&ssh, DROPIN_DIR, 0o755, Some(owner)).ctx(|| ctx("drop-ins"))?;
        let keys = fsutil::ensure_subdir(&ssh, KEYS_DIR, 0o700, Some(owner)).ctx(|| ctx("keys"))?;
        if !fsutil::exists(&keys, KEYS_FILE).ctx(|| ctx("keys"))? {
            fsutil::write_atomic_at(&keys, KEYS_FILE, b"", 0o600, Some(owner))?;
        }
        fsutil::ensure_subdir(&guest, "home", 0o700, Some(owner)).ctx(|| ctx("home"))?;
        let config = render_sshd_config(id);
        fsutil::write_atomic_at(&ssh, "sshd_config", config.as_bytes(), 0o644, Some(owner))?;
        let hostname = format!("{}\n", meta.hostname);
        fsutil::write_atomic_at(&guest, "hostname", hostname.as_bytes(), 0o644, Some(owner))?;
        let public_key = self.ensure_host_key(&ssh, meta, owner)?;
        let shadow_missing = !fsutil::exists(&guest, "shadow").ctx(|| ctx("shadow"))?;
        if password_hash.is_some() || shadow_missing {
            let shadow = render_shadow(password_hash.flatten());
            fsutil::write_atomic_at(&guest, "shadow", shadow.as_bytes(), 0o600, Some(owner))?;
        }
        Ok(public_key)
    }

    /// Keeps the existing host key pair, or generates a new ed25519 one.
    fn ensure_host_key(
        &self,
        ssh: impl std::os::fd::AsFd,
        meta: &Meta,
        owner: Owner,
    ) -> Result<String> {
        let ssh = ssh.as_fd();
        let have_private =
            fsutil::exists(ssh, HOST_KEY).ctx(|| format!("host key of {}", meta.id))?;
        if have_private && !meta.host_public_key.is_empty() {
            return Ok(meta.host_public_key.clone());
        }
        let comment = format!("root@{}", meta.hostname);
        let (private, public) = generate_host_key(&comment)?;
        fsutil::write_atomic_at(ssh, HOST_KEY, private.as_bytes(), 0o600, Some(owner))?;
        let public_line = format!("{public}\n");
        fsutil::write_atomic_at(
            ssh,
            HOST_KEY_PUB,
            public_line.as_bytes(),
            0o644,
            Some(owner),
        )?;
        Ok(public)
    }
}

fn remove_if_exists(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).ctx(|| format!("removing {}", path.display())),
    }
}

/// Generates an ed25519 host key: (OpenSSH private key PEM, public key line).
fn generate_host_key(comment: &str) -> Result<(String, String)> {
    use ssh_key::{Algorithm, LineEnding, PrivateKey};
    let mut key = PrivateKey::random(&mut rand::rngs::OsRng, Algorithm::Ed25519)
        .map_err(|e| Error::HostKey(e.to_string()))?;
    key.set_comment(comment);
    let private = key
        .to_openssh(LineEnding::LF)
        .map_err(|e| Error::HostKey(e.to_string()))?;
    let public = key
        .public_key()
        .to_openssh()
        .map_err(|e| Error::HostKey(e.to_string()))?;
    Ok((private.to_string(), public))
}

/// SHA-512 crypt hash (`$6$...`) of the password, as `/etc/shadow` wants it.
pub(crate) fn hash_password(password: &str) -> Result<String> {
    sha_crypt::sha512_simple(password, &sha_crypt::Sha512Params::default())
        .map_err(|_| Error::PasswordHash)
}

/// The instance's `/etc/shadow`: one line, for root.
///
/// Without a password the hash field is `*`. Why not `!`: OpenSSH (without PAM) treats a hash
/// starting with `!` as a locked account and refuses key logins too; `*` only matches no password.
pub(crate) fn render_shadow(hash: Option<&str>) -> String {
    let days = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() / 86_400)
        .unwrap_or(0);
    // Why a real last-change day: sshd without PAM forces a password change when it is 0.
    format!("root:{}:{days}:0:99999:7:::\n", hash.unwrap_or("*"))
}

/// The instance's sshd configuration (paths as seen inside the instance).
pub(crate) fn render_sshd_config(id: &str) -> String {
    format!(
        "# Generated by keyplane for instance {id}; rewritten on every start.\n\
         # The agent's drop-ins come first: sshd keeps the first value of a keyword.\n\
         Include /etc/ssh/{DROPIN_DIR}/*.conf\n\
         HostKey /etc/ssh/{HOST_KEY}\n\
         PermitRootLogin yes\n\
         AllowUsers root\n\
         UsePAM no\n\
         KbdInteractiveAuthentication no\n\
         AuthorizedKeysFile .ssh/authorized_keys /etc/ssh/{KEYS_DIR}/{KEYS_FILE}\n\
         # Why StrictModes no: in the user namespace the host's / and /etc appear owned by\n\
         # nobody, so sshd's ownership walk would reject every key file outside the home.\n\
         StrictModes no\n\
         PrintMotd no\n\
         PrintLastLog no\n\
         UseDNS no\n\
         X11Forwarding no\n\
         PidFile none\n\
         LoginGraceTime 60\n\
         AcceptEnv LANG LC_*\n\
         Subsystem sftp internal-sftp\n"
    )
}

/// Checks an instance id: 1..=64 of `[A-Za-z0-9._-]`, not starting with a dot.
pub(crate) fn validate_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidId(id.to_owned()))
    }
}

/// Checks an RFC 1123 host name (labels of 1..=63 letters, digits, hyphens; 253 in all).
pub(crate) fn validate_hostname(name: &str) -> Result<()> {
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if !name.is_empty() && name.len() <= 253 && name.split('.').all(label_ok) {
        Ok(())
    } else {
        Err(Error::InvalidHostname(name.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_hostnames_are_checked() {
        assert!(validate_id("ins-abc12345").is_ok());
        assert!(validate_id("i-bp1.x_y").is_ok());
        for bad in ["", ".hidden", "a/b", "..", "x y", &"a".repeat(65)] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
        assert!(validate_hostname("web-1.example").is_ok());
        for bad in ["", "-a", "a..b", "a_b", "ä"] {
            assert!(validate_hostname(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn shadow_hash_verifies() {
        let hash = hash_password("s3cret pass").unwrap();
        assert!(hash.starts_with("$6$"));
        assert!(sha_crypt::sha512_check("s3cret pass", &hash).is_ok());
        let line = render_shadow(Some(&hash));
        assert!(line.starts_with(&format!("root:{hash}:")));
        assert!(render_shadow(None).starts_with("root:*:"));
    }

    #[test]
    fn config_includes_dropins_before_everything() {
        let cfg = render_sshd_config("ins-1");
        let include = cfg.find("Include").unwrap();
        let first_keyword = cfg.find("HostKey").unwrap();
        assert!(include < first_keyword);
        assert!(!cfg.contains("PasswordAuthentication"));
    }
}
