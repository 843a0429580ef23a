//! Keyplane sandbox driver: each Linux instance is a small machine of its own on this host.
//!
//! An instance boots a real root filesystem ([`image`]: Debian 12 by default, built with
//! mmdebstrap and shared by every instance) under a copy-on-write disk of its own (an overlay
//! whose upper layer is the instance's), in namespaces of its own: user (its root is an
//! unprivileged host uid range), mount (it pivots into its disk: no host path is visible), PID,
//! UTS, IPC and network. Its init mounts a private /proc, /dev, /run and /sys, runs user data at
//! the first boot and `/etc/rc.local` at every boot, and starts its SSH server. Memory, CPU and
//! process count are capped per instance by cgroups.
//!
//! Networking ([`net`]): instances of one VPC (account and region) share a bridge in a network
//! namespace the server makes, and reach each other at their 127.1.x.y addresses on any port;
//! outbound traffic goes through slirp4netns with the host's loopback hidden.
//!
//! SSH from the host: a user namespace cannot bind port 22 in the host's network namespace, so
//! the server listens on the instance's own loopback address (`127.x.y.z:22`) and, per
//! connection, has `sshd -i` (inetd mode) started inside every namespace of the instance with
//! the TCP connection as its standard input and output: by the instance's session helper
//! ([`sessions`]), or from outside without it. Because every connection starts a fresh
//! sshd, a configuration change (the agent's password switch) applies to the next connection.
//!
//! Entry points: [`SandboxHost`] (create/start/stop/reboot/destroy, images), the
//! [`InstanceDriver`] it implements for the operation [`worker`], and [`apply_ssh_state`]
//! (what the guest agent calls).
//!
//! # Host prerequisites
//!
//! Root; Debian packages `uidmap iproute2 slirp4netns` (plus `util-linux mount`, always
//! installed, and `mmdebstrap` to build images); user namespaces enabled; a line
//! `root:<subuid_base>:65536` (or more) in `/etc/subuid` and `/etc/subgid`
//! ([`SandboxHost::setup_prerequisites`] adds it). [`SandboxHost::check_prerequisites`] lists
//! whatever is missing.

mod cgroup;
pub mod driver;
mod error;
mod host;
pub mod image;
pub mod init;
mod layout;
mod listener;
pub mod net;
mod prereq;
mod sandbox;
pub mod sessions;
pub mod worker;

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

pub use cgroup::Resources;
pub use driver::{GuestAgentRun, InstanceDriver};
pub use error::{Error, Missing, PrereqError, Result};
pub use host::{MetadataService, SandboxHost};
pub use image::{ImageCache, ImageInfo, DEFAULT_IMAGE};
pub use keyplane_agent::fsutil::{write_atomic, Owner};
pub use keyplane_agent::host_state::{
    apply_host_ssh_state, read_host_keys, read_host_password_switch, HostLayout, HOST_KEYS_FILE,
};
pub use keyplane_agent::ssh_state::{
    apply_ssh_state, keys_path, read_ssh_keys, state_owner, DROPIN_DIR, DROPIN_FILE, KEYS_DIR,
    KEYS_FILE,
};
pub use prereq::setup_subordinate_ids;

/// Number of host uids (and gids) an instance's user namespace maps.
pub const IDS_PER_INSTANCE: u32 = 65536;

/// The instance's SSH configuration directory (`/etc/ssh` inside), relative to the working
/// directory of [`SandboxHost::guest_command`].
pub const GUEST_SSH_DIR: &str = "etc-ssh";

/// Host-wide settings of the sandbox driver.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// TCP port each instance listens on at its own address (22 in production; 0 picks a free
    /// port per instance, for tests).
    pub ssh_port: u16,
    /// First host uid/gid of the instance ranges; instance slot `n` maps its root to
    /// `subuid_base + n * 65536`.
    pub subuid_base: u32,
    /// How many instances this host may hold.
    pub max_instances: u32,
    /// Give each instance outbound network access through slirp4netns (the host's loopback
    /// stays hidden). Without it, instances reach only their VPC.
    pub outbound: bool,
    /// Most processes (and threads) of one instance at once.
    pub max_processes: u64,
    /// How long a soft stop waits for processes to exit after SIGTERM before killing them.
    pub stop_timeout: Duration,
    /// The executable that is stage 1 of every instance's init (`EXE sandbox-init ...`, see
    /// [`init`]): the keyplane executable. The host links (or copies) it into `<root>/bin`,
    /// where the instances' uids can reach it. `None`: no instance can start.
    pub init_exe: Option<PathBuf>,
    /// The guest agent executable (`EXE agent ...`): the keyplane executable, linked into
    /// `<root>/bin` too. Each instance's init runs it against its metadata service, once before
    /// sshd starts and then as a daemon. `None`: no agent runs inside.
    pub guest_agent: Option<PathBuf>,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            ssh_port: 22,
            subuid_base: 100_000,
            max_instances: 1024,
            outbound: true,
            max_processes: 1024,
            stop_timeout: Duration::from_secs(10),
            init_exe: None,
            guest_agent: None,
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
    /// Image to boot ([`DEFAULT_IMAGE`] unless another was imported).
    pub image: String,
    /// VPC key: instances with the same key reach each other (the server uses account and
    /// region).
    pub vpc: String,
    /// CPU, memory and process limits.
    pub resources: Resources,
    /// User data, run once as root at the first boot.
    pub user_data: Option<Vec<u8>>,
    /// The SSH port at `address`, when not the host's [`SandboxConfig::ssh_port`] (the port
    /// recorded for the instance, so that whichever node holds it listens where
    /// DescribeInstances says).
    pub ssh_port: Option<u16>,
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
            .field("image", &self.image)
            .field("vpc", &self.vpc)
            .field("resources", &self.resources)
            .field("user_data", &self.user_data.as_ref().map(Vec::len))
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
            image: DEFAULT_IMAGE.into(),
            vpc: String::new(),
            resources: Resources::default(),
            user_data: None,
            ssh_port: None,
        };
        assert!(!format!("{spec:?}").contains("hunter2"));
    }
}
