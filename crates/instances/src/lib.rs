//! Keyplane sandbox driver: each Linux instance is a real, isolated OpenSSH server on this host.
//!
//! An instance is a set of namespaces (user, mount, PID, UTS, IPC, optionally network) held open
//! by a tiny init process. The instance's root is mapped to its own unprivileged host uid range
//! (`subuid_base + slot * 65536`, 65536 ids), so `root` inside is never root on the host, and two
//! instances cannot touch each other's files. Inside, the instance's own files are bind-mounted
//! over `/etc/ssh`, `/etc/shadow`, `/etc/hostname` and `/root`; `/run`, `/tmp`, `/var/tmp` and
//! `/dev/shm` are private tmpfs mounts.
//!
//! A user namespace cannot bind port 22 in the host network namespace, so the server listens on
//! the instance's own loopback address (`127.x.y.z:22`) and, per connection, starts
//! `sshd -i` (inetd mode) inside the instance's namespaces with the TCP connection as its
//! standard input and output. Because every connection starts a fresh sshd, a configuration
//! change (the agent's password switch) applies to the next connection without a reload.
//!
//! Entry points: [`SandboxHost`] (create/start/stop/reboot/destroy) and [`apply_ssh_state`]
//! (what the guest agent calls).
//!
//! # Host prerequisites
//!
//! Root; Debian packages `openssh-server uidmap` (plus `util-linux mount hostname`, always
//! installed; `iproute2` for [`SandboxConfig::private_network`]); user namespaces enabled; a
//! line `root:<subuid_base>:<max_instances * 65536>` in `/etc/subuid` and `/etc/subgid`
//! ([`SandboxHost::setup_prerequisites`] adds it); every directory above the sandbox root
//! searchable by others (`o+x`). [`SandboxHost::check_prerequisites`] lists whatever is missing.

mod error;
mod fsutil;
mod host;
mod host_state;
mod layout;
mod listener;
mod prereq;
mod sandbox;
mod ssh_state;
pub mod worker;

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

pub use error::{Error, Missing, PrereqError, Result};
pub use fsutil::{write_atomic, Owner};
pub use host::SandboxHost;
pub use host_state::{
    apply_host_ssh_state, read_host_keys, read_host_password_switch, HostLayout, HOST_KEYS_FILE,
};
pub use ssh_state::{
    apply_ssh_state, keys_path, read_ssh_keys, state_owner, DROPIN_DIR, DROPIN_FILE, KEYS_DIR,
    KEYS_FILE,
};

/// Number of host uids (and gids) given to each instance.
pub const IDS_PER_INSTANCE: u32 = 65536;

/// Host-wide settings of the sandbox driver.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// TCP port each instance listens on at its own address (22 in production; 0 picks a free
    /// port per instance, for tests).
    pub ssh_port: u16,
    /// First host uid/gid of the instance ranges; instance slot `n` maps its root to
    /// `subuid_base + n * 65536`.
    pub subuid_base: u32,
    /// How many instances (uid ranges) this host may hold.
    pub max_instances: u32,
    /// Give each instance a private network namespace with only loopback (no outbound network,
    /// no access to the host's loopback services). Off by default: instances share the host
    /// network, like a VM with NAT.
    pub private_network: bool,
    /// `RLIMIT_NPROC` for each instance's uid: a fork bomb inside stops there.
    pub max_processes: u64,
    /// How long a soft stop waits for processes to exit after SIGTERM before killing them.
    pub stop_timeout: Duration,
    /// Path of the OpenSSH server binary.
    pub sshd_path: PathBuf,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            ssh_port: 22,
            subuid_base: 100_000,
            max_instances: 1024,
            private_network: false,
            max_processes: 1024,
            stop_timeout: Duration::from_secs(10),
            sshd_path: PathBuf::from("/usr/sbin/sshd"),
        }
    }
}

/// What an instance is created with.
#[derive(Clone)]
pub struct InstanceSpec {
    /// Instance id (`ins-xxxxxxxx`, `i-...`): 1 to 64 characters of `[A-Za-z0-9._-]`, not
    /// starting with a dot.
    pub id: String,
    /// The instance's own loopback address (see [`allocate_address`]).
    pub address: Ipv4Addr,
    /// Root password; `None` (with no `password_hash`) leaves password login impossible.
    pub password: Option<String>,
    /// Root password as a SHA-512 crypt hash (`$6$...`); wins over `password`. The control
    /// plane keeps only the hash, never the password.
    pub password_hash: Option<String>,
    /// Host name shown inside the instance.
    pub hostname: String,
}

impl std::fmt::Debug for InstanceSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstanceSpec")
            .field("id", &self.id)
            .field("address", &self.address)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field(
                "password_hash",
                &self.password_hash.as_ref().map(|_| "<redacted>"),
            )
            .field("hostname", &self.hostname)
            .finish()
    }
}

/// Whether `name` can be an instance's host name (DNS labels of letters, digits and `-`).
pub fn valid_hostname(name: &str) -> bool {
    layout::validate_hostname(name).is_ok()
}

/// First and last address handed out by [`allocate_address`] (127.1.0.1 ..= 127.1.255.254).
pub const ADDRESS_RANGE: (Ipv4Addr, Ipv4Addr) =
    (Ipv4Addr::new(127, 1, 0, 1), Ipv4Addr::new(127, 1, 255, 254));

/// The first address of [`ADDRESS_RANGE`] not in `used`, or `None` when all are taken.
///
/// Every address in 127.0.0.0/8 reaches this host through the loopback interface without any
/// configuration; 127.0.0.1 is never used, it belongs to the host.
pub fn allocate_address(used: &[Ipv4Addr]) -> Option<Ipv4Addr> {
    let (first, last) = (u32::from(ADDRESS_RANGE.0), u32::from(ADDRESS_RANGE.1));
    let used: std::collections::HashSet<u32> = used.iter().map(|a| u32::from(*a)).collect();
    (first..=last)
        .find(|a| !used.contains(a))
        .map(Ipv4Addr::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocation_skips_used_addresses() {
        assert_eq!(allocate_address(&[]), Some(Ipv4Addr::new(127, 1, 0, 1)));
        let used = [Ipv4Addr::new(127, 1, 0, 1), Ipv4Addr::new(127, 1, 0, 2)];
        assert_eq!(allocate_address(&used), Some(Ipv4Addr::new(127, 1, 0, 3)));
    }

    #[test]
    fn spec_debug_redacts_password() {
        let spec = InstanceSpec {
            id: "ins-1".into(),
            address: Ipv4Addr::new(127, 1, 0, 1),
            password: Some("hunter2".into()),
            password_hash: None,
            hostname: "h".into(),
        };
        assert!(!format!("{spec:?}").contains("hunter2"));
    }
}
