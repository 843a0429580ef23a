//! Instances, images and operations: the records the binding rules act on.

use crate::keypair::Namespace;

/// Operating system family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OsType {
    /// Linux: a real sandbox or agent-managed host.
    Linux,
    /// Windows: a record the Windows rules act on.
    Windows,
}

impl OsType {
    /// Storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            OsType::Linux => "linux",
            OsType::Windows => "windows",
        }
    }
    /// Parse the storage name.
    pub fn parse(s: &str) -> Option<OsType> {
        match s {
            "linux" => Some(OsType::Linux),
            "windows" => Some(OsType::Windows),
            _ => None,
        }
    }
}

/// Lifecycle state, named as Tencent names it (ECS maps these to its own words).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstanceState {
    /// Being created.
    Pending,
    /// Creation failed.
    LaunchFailed,
    /// Running.
    Running,
    /// Stopped.
    Stopped,
    /// Starting.
    Starting,
    /// Stopping.
    Stopping,
    /// Rebooting.
    Rebooting,
    /// Being destroyed.
    Terminating,
}

impl InstanceState {
    /// Tencent's wire name (`RUNNING`, ...), also the storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            InstanceState::Pending => "PENDING",
            InstanceState::LaunchFailed => "LAUNCH_FAILED",
            InstanceState::Running => "RUNNING",
            InstanceState::Stopped => "STOPPED",
            InstanceState::Starting => "STARTING",
            InstanceState::Stopping => "STOPPING",
            InstanceState::Rebooting => "REBOOTING",
            InstanceState::Terminating => "TERMINATING",
        }
    }
    /// The state in words, for messages: what a person reading an error needs to know.
    pub fn describe(self) -> &'static str {
        match self {
            InstanceState::Pending => "pending (still being created)",
            InstanceState::LaunchFailed => "in launch failure (it could not be created)",
            InstanceState::Running => "running",
            InstanceState::Stopped => "stopped",
            InstanceState::Starting => "starting",
            InstanceState::Stopping => "stopping",
            InstanceState::Rebooting => "rebooting",
            InstanceState::Terminating => "terminating",
        }
    }
    /// Whether the instance rests in this state (rather than passing through it).
    pub fn is_settled(self) -> bool {
        matches!(
            self,
            InstanceState::Running | InstanceState::Stopped | InstanceState::LaunchFailed
        )
    }
    /// Every state.
    pub const ALL: [InstanceState; 8] = [
        InstanceState::Pending,
        InstanceState::LaunchFailed,
        InstanceState::Running,
        InstanceState::Stopped,
        InstanceState::Starting,
        InstanceState::Stopping,
        InstanceState::Rebooting,
        InstanceState::Terminating,
    ];

    /// Parse the storage name.
    pub fn parse(s: &str) -> Option<InstanceState> {
        InstanceState::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

/// Where an instance lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostKind {
    /// A sandbox OpenSSH server on the Keyplane host.
    Sandbox,
    /// A record only (Windows images): no process behind it.
    Record,
    /// A real host that registered itself; its `keyplane agent` applies what is decided.
    Agent,
}

impl HostKind {
    /// Storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            HostKind::Sandbox => "sandbox",
            HostKind::Record => "record",
            HostKind::Agent => "agent",
        }
    }
    /// Parse the storage name.
    pub fn parse(s: &str) -> Option<HostKind> {
        match s {
            "sandbox" => Some(HostKind::Sandbox),
            "record" => Some(HostKind::Record),
            "agent" => Some(HostKind::Agent),
            _ => None,
        }
    }
}

/// State of an asynchronous operation (Tencent's `LatestOperationState` words).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpState {
    /// In progress.
    Operating,
    /// Done.
    Success,
    /// Failed; the instance's `latest_operation_error` says why.
    Failed,
}

impl OpState {
    /// Wire and storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            OpState::Operating => "OPERATING",
            OpState::Success => "SUCCESS",
            OpState::Failed => "FAILED",
        }
    }
    /// Parse.
    pub fn parse(s: &str) -> Option<OpState> {
        match s {
            "OPERATING" => Some(OpState::Operating),
            "SUCCESS" => Some(OpState::Success),
            "FAILED" => Some(OpState::Failed),
            _ => None,
        }
    }
}

/// An image instances are created from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// `img-xxxxxxxx` (Tencent) or the ECS image id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// OS family.
    pub os: OsType,
    /// OS name as shown (`Debian 12 (Keyplane sandbox)`).
    pub os_name: String,
    /// Platform (`Debian`, `Windows`).
    pub platform: String,
    /// Description.
    pub description: String,
    /// Size, GiB (rounded up).
    pub size_gib: i64,
}

/// What the host knows of the installed Linux image: its real OS name and size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinuxImageFacts {
    /// `PRETTY_NAME` of its os-release (`Debian GNU/Linux 12 (bookworm)`).
    pub os_name: String,
    /// Bytes of file data in the image.
    pub size_bytes: u64,
}

impl LinuxImageFacts {
    /// The size in GiB, rounded up (at least 1).
    pub fn size_gib(&self) -> i64 {
        (self.size_bytes.div_ceil(1 << 30)).max(1) as i64
    }
}

/// The sandbox images every account sees, per namespace (before the host has reported the
/// installed Linux image, see [`crate::Core::images`]).
pub fn images(ns: Namespace) -> Vec<Image> {
    let (linux_id, windows_id) = match ns {
        Namespace::Cvm => ("img-kpdeb12x", "img-kpwin22x"),
        Namespace::Lighthouse => ("lhbp-kpdeb12x", "lhbp-kpwin22x"),
        Namespace::Ecs => (
            "debian_12_keyplane_sandbox_x64.vhd",
            "win2022_keyplane_record_x64.vhd",
        ),
    };
    vec![
        Image {
            id: linux_id.into(),
            name: "Debian 12 (Keyplane sandbox)".into(),
            os: OsType::Linux,
            os_name: "Debian 12.0 64bit".into(),
            platform: "Debian".into(),
            description: "Debian 12 minimal (openssh-server, python3, sudo, iproute2, apt): \
                          a small machine of its own on the Keyplane host; log in as root."
                .into(),
            size_gib: 1,
        },
        Image {
            id: windows_id.into(),
            name: "Windows Server 2022 (Keyplane record)".into(),
            os: OsType::Windows,
            os_name: "Windows Server 2022 DataCenter 64bit".into(),
            platform: "Windows".into(),
            description: "A record only: the Windows rules act on it; nothing runs.".into(),
            size_gib: 50,
        },
    ]
}

/// An instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// `ins-xxxxxxxx`, `lhins-xxxxxxxx` or `i-...`.
    pub id: String,
    /// Owning account.
    pub account_id: String,
    /// Provider namespace.
    pub namespace: Namespace,
    /// Region.
    pub region: String,
    /// Zone.
    pub zone: String,
    /// Display name.
    pub name: String,
    /// Host name inside the instance (its id unless another was asked for).
    pub host_name: String,
    /// Image it was created from.
    pub image_id: String,
    /// OS family.
    pub os: OsType,
    /// OS name.
    pub os_name: String,
    /// Instance type label.
    pub instance_type: String,
    /// Lifecycle state.
    pub state: InstanceState,
    /// Where it lives.
    pub host: HostKind,
    /// Its own address (a loopback address for sandboxes).
    pub private_ip: String,
    /// SSH port at that address.
    pub ssh_port: u16,
    /// SHA-512 crypt hash of the login password set at creation (what `/etc/shadow` holds);
    /// `None` when the instance was created without one.
    pub password_hash: Option<crate::account::Secret>,
    /// Bound key pairs (what Describe shows), in binding order.
    pub key_ids: Vec<String>,
    /// Key pairs in effect on the instance. Equal to `key_ids` except on ECS between an
    /// attach/detach and the next start or reboot.
    pub effective_key_ids: Vec<String>,
    /// Increases whenever the desired SSH state changes.
    pub desired_generation: i64,
    /// The generation the agent last reported applied.
    pub applied_generation: i64,
    /// Latest operation (wire action name).
    pub latest_operation: Option<String>,
    /// Its state.
    pub latest_operation_state: Option<OpState>,
    /// Its request id.
    pub latest_operation_request_id: Option<String>,
    /// Why it failed, when it did.
    pub latest_operation_error: Option<String>,
    /// Creation time, unix seconds.
    pub created_at: i64,
}

impl Instance {
    /// Whether a login password was set at creation.
    pub fn has_password(&self) -> bool {
        self.password_hash.is_some()
    }

    /// Refuse it unless it is in `region`, when the request names one (instances live in a
    /// region: one of another is not found from this one).
    pub fn check_region(&self, region: Option<&str>) -> Result<(), crate::error::DomainError> {
        match region {
            Some(r) if r != self.region => Err(crate::error::DomainError::InstanceNotInRegion {
                id: self.id.clone(),
                region: r.into(),
            }),
            _ => Ok(()),
        }
    }

    /// Whether an operation is still in progress on it.
    pub fn is_busy(&self) -> bool {
        self.latest_operation_state == Some(OpState::Operating)
    }

    /// The refusal for an instance with an operation in progress: which one, and the state
    /// it is in meanwhile.
    pub fn busy_error(&self) -> crate::error::DomainError {
        crate::error::DomainError::InstanceBusy {
            id: self.id.clone(),
            state: self.state,
            operation: self.latest_operation.clone().unwrap_or_else(|| "an".into()),
        }
    }
}

/// What an operation does. Each is idempotent step by step, so a crash mid-way is finished,
/// never repeated, by whichever worker claims it next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpKind {
    /// Lay out and start a new instance, then stop it if `then_stop` is set.
    Create {
        /// User data (base64, as the client sent it, already checked by the dialect), run once
        /// as root at the first boot.
        user_data: Option<String>,
        /// Whether the instance, once booted (which lays out its SSH state), is stopped (ECS
        /// CreateInstance leaves it Stopped).
        then_stop: bool,
    },
    /// Start a stopped instance.
    Start,
    /// Stop a running instance (`force`: no grace period).
    Stop {
        /// Hard stop.
        force: bool,
    },
    /// Stop and start.
    Reboot {
        /// Hard stop.
        force: bool,
    },
    /// Destroy.
    Terminate,
    /// Change the bound keys: stop if running, bind, apply, and start again if it was running
    /// and `restart` is set.
    Bind {
        /// Keys to bind.
        add: Vec<String>,
        /// Keys to unbind.
        remove: Vec<String>,
        /// Replace every bound key by `add`.
        replace: bool,
        /// Whether the change waits for the next start/reboot (ECS) instead of applying now.
        deferred: bool,
        /// Whether an instance that was running is started again afterwards (CVM ForceStop);
        /// `false` leaves it STOPPED (Lighthouse: "forcibly shut down, then bound").
        restart: bool,
    },
    /// Replace root's login password: stop if running (and `deferred` is not set), record the
    /// new hash for the next boot, and start again if it was running and `restart` is set.
    ResetPassword {
        /// SHA-512 crypt hash of the new password (never the password itself).
        password_hash: crate::account::Secret,
        /// Whether the new password waits for the next start or reboot (ECS) instead of the
        /// operation stopping and starting the instance.
        deferred: bool,
        /// Whether an instance that was running is started again afterwards (CVM, legacy v2);
        /// `false` leaves it STOPPED (Lighthouse: "the instance is shut down").
        restart: bool,
    },
}

impl OpKind {
    /// The kind's name, as metrics label operations (`create`, `bind`, `reset_password`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            OpKind::Create { .. } => "create",
            OpKind::Start => "start",
            OpKind::Stop { .. } => "stop",
            OpKind::Reboot { .. } => "reboot",
            OpKind::Terminate => "terminate",
            OpKind::Bind { .. } => "bind",
            OpKind::ResetPassword { .. } => "reset_password",
        }
    }
}

/// A durable asynchronous operation on one instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    /// Sequence id.
    pub id: i64,
    /// Account.
    pub account_id: String,
    /// Instance.
    pub instance_id: String,
    /// Wire action name (`AssociateInstancesKeyPairs`).
    pub action: String,
    /// Request id of the call that started it.
    pub request_id: String,
    /// What to do.
    pub kind: OpKind,
    /// Progress marker: which idempotent step is done (0 = none).
    pub step: i32,
    /// Whether the instance was running when the operation began (restart it after).
    pub was_running: bool,
    /// The settled state the instance was in when the operation was recorded, where it comes
    /// to rest should a step fail and the driver cannot tell; `None` for a launch, and for
    /// operations recorded before it was kept.
    pub state_before: Option<InstanceState>,
    /// The desired generation this operation waits for, once set.
    pub target_generation: i64,
    /// State.
    pub state: OpState,
    /// Creation time, unix seconds.
    pub created_at: i64,
}

/// An operation to record, with the instance changes that go with it (in one transaction).
#[derive(Debug, Clone)]
pub struct NewOperation {
    /// Account.
    pub account_id: String,
    /// Instance.
    pub instance_id: String,
    /// Wire action name.
    pub action: String,
    /// Request id.
    pub request_id: String,
    /// What to do.
    pub kind: OpKind,
    /// The state the instance enters now (`STOPPING` for a stop, ...), if it changes.
    pub new_state: Option<InstanceState>,
    /// The state the instance is in before it (see [`Operation::state_before`]).
    pub state_before: Option<InstanceState>,
    /// Creation time, unix seconds.
    pub created_at: i64,
}
