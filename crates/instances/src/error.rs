//! Error types of the sandbox driver.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Everything that can go wrong while laying out, starting or stopping a sandbox instance.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The instance id is empty, too long, or has characters other than `[A-Za-z0-9._-]`.
    #[error("invalid instance id {0:?}")]
    InvalidId(String),
    /// The hostname is not a valid RFC 1123 host name.
    #[error("invalid hostname {0:?}")]
    InvalidHostname(String),
    /// The address is not a loopback address other than 127.0.0.1.
    #[error("address {0} is not usable for an instance (need 127.0.0.0/8 except 127.0.0.1)")]
    InvalidAddress(std::net::Ipv4Addr),
    /// Another instance already has this address (and the port is fixed).
    #[error("address {address} is already used by instance {by}")]
    AddressTaken {
        /// The address asked for.
        address: std::net::Ipv4Addr,
        /// The instance holding it.
        by: String,
    },
    /// The configuration cannot work (e.g. uid ranges past 2^32).
    #[error("invalid sandbox configuration: {0}")]
    InvalidConfig(String),
    /// No instance with this id has been created.
    #[error("instance {0} not found")]
    NotFound(String),
    /// Every uid slot (one 65536-uid range per instance) is taken.
    #[error("no free uid range: all {0} instance slots are in use")]
    NoFreeSlot(u32),
    /// Writing an instance's files failed (a symlink refused, a malformed key, I/O).
    #[error(transparent)]
    Files(#[from] keyplane_agent::FileError),
    /// The instance's namespace holder did not come up.
    #[error("instance {id} failed to start: {detail}")]
    StartFailed {
        /// Instance id.
        id: String,
        /// What the setup script or the kernel said.
        detail: String,
    },
    /// An image is missing, malformed, or its name is invalid.
    #[error("{0}")]
    InvalidImage(String),
    /// Building an image failed.
    #[error("building the image failed: {0}")]
    ImageBuild(String),
    /// Wiring an instance's network failed.
    #[error("instance network: {0}")]
    Network(String),
    /// Hashing the instance password failed.
    #[error("password hashing failed")]
    PasswordHash,
    /// Generating the instance host key failed.
    #[error("host key generation failed: {0}")]
    HostKey(String),
    /// The host is missing something the sandbox needs.
    #[error(transparent)]
    Prerequisites(#[from] PrereqError),
    /// An I/O error, with what we were doing.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attaches a context string to I/O errors.
pub(crate) trait IoContext<T> {
    /// Wraps the error in [`Error::Io`] with `context` computed lazily.
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T, E: Into<io::Error>> IoContext<T> for std::result::Result<T, E> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::Io {
            context: context(),
            source: e.into(),
        })
    }
}

/// One thing the host lacks for running sandbox instances, with how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Missing {
    /// The server does not run as root (needed to bind port 22, call newuidmap and enter namespaces).
    NotRoot,
    /// A program is not installed.
    Program {
        /// Absolute path looked for.
        path: PathBuf,
        /// Debian package that provides it.
        package: &'static str,
    },
    /// `/etc/subuid` or `/etc/subgid` lacks a range for root covering the instance uids.
    SubordinateIds {
        /// `/etc/subuid` or `/etc/subgid`.
        file: PathBuf,
        /// The line that would fix it.
        line: String,
    },
    /// Another user's subordinate range overlaps the one the sandbox needs.
    SubordinateIdConflict {
        /// `/etc/subuid` or `/etc/subgid`.
        file: PathBuf,
        /// The conflicting line.
        line: String,
    },
    /// User namespaces are disabled (`/proc/sys/user/max_user_namespaces` is 0).
    UserNamespacesDisabled,
    /// A directory on the way to the instance root is not searchable by other users, so the
    /// unprivileged instance uids cannot reach their own files.
    NotTraversable(PathBuf),
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Missing::NotRoot => write!(f, "the sandbox driver must run as root"),
            Missing::Program { path, package } => write!(
                f,
                "{} is missing (apt-get install {package})",
                path.display()
            ),
            Missing::SubordinateIds { file, line } => {
                write!(f, "{} needs the line {line:?}", file.display())
            }
            Missing::SubordinateIdConflict { file, line } => write!(
                f,
                "{} has {line:?}, which overlaps the instance uid range (choose another subuid_base)",
                file.display()
            ),
            Missing::UserNamespacesDisabled => write!(
                f,
                "user namespaces are disabled (sysctl user.max_user_namespaces=0)"
            ),
            Missing::NotTraversable(dir) => write!(
                f,
                "{} must be searchable by others (chmod o+x) so instance uids reach their files",
                dir.display()
            ),
        }
    }
}

/// The list of things missing on this host; empty lists are never returned as errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct PrereqError {
    /// Everything that is missing, each with its fix.
    pub missing: Vec<Missing>,
}

impl fmt::Display for PrereqError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sandbox prerequisites missing:")?;
        for m in &self.missing {
            write!(f, "\n  - {m}")?;
        }
        Ok(())
    }
}
