//! The instance driver: what the operation worker asks of the machines sandbox instances run
//! on. [`SandboxHost`] is the driver of this host's namespace sandboxes; another back end (a
//! microVM per instance, or an in-memory one for tests) implements the same trait.

use crate::worker::StepError;
use crate::{ImageCache, ImageInfo, InstanceSpec, Result, SandboxHost};
use async_trait::async_trait;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// One run of the guest agent on an instance's SSH state: it fetches the desired state from
/// the server as the instance's agent, applies it, and reports the generation applied.
#[derive(Clone, Copy)]
pub struct GuestAgentRun<'a> {
    /// The `keyplane` executable (`EXE agent --once ...`).
    pub exe: &'a Path,
    /// Base URL the agent reaches the API at.
    pub server_url: &'a str,
    /// The instance's agent token.
    pub token: &'a str,
    /// How long the run may take.
    pub timeout: Duration,
}

impl std::fmt::Debug for GuestAgentRun<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuestAgentRun")
            .field("exe", &self.exe)
            .field("server_url", &self.server_url)
            .field("token", &"[REDACTED]")
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// The machines sandbox instances run on, as the operation worker uses them. Every call is
/// idempotent: the worker repeats a step that a crash interrupted.
#[async_trait]
pub trait InstanceDriver: Send + Sync + 'static {
    /// Whether each instance runs the guest agent inside, which applies the SSH state at
    /// every boot before the SSH server starts.
    fn agent_inside(&self) -> bool;
    /// Most processes (and threads) of one instance at once.
    fn max_processes(&self) -> u64;
    /// The installed image `name`, if any.
    fn image(&self, name: &str) -> Result<Option<ImageInfo>>;
    /// The installed image `name`, installed first from `cache` when missing.
    async fn ensure_image(&self, name: &str, cache: &ImageCache) -> Result<ImageInfo>;
    /// Ids of the instances this driver holds.
    fn list(&self) -> Result<Vec<String>>;
    /// Whether the instance runs now; `None` when the driver holds no such instance.
    async fn running(&self, id: &str) -> Result<Option<bool>>;
    /// Creates an instance, or brings an existing one in line with `spec`.
    async fn create(&self, spec: InstanceSpec) -> Result<()>;
    /// Starts the instance (a running one stays running).
    async fn start(&self, id: &str) -> Result<()>;
    /// Stops the instance (`force`: without a grace period); a stopped one stays stopped.
    async fn stop(&self, id: &str, force: bool) -> Result<()>;
    /// Force-stops the instance and deletes everything it had.
    async fn destroy(&self, id: &str) -> Result<()>;
    /// Sets root's password from its SHA-512 crypt hash (`None` locks it), for the next boot.
    async fn set_password_hash(&self, id: &str, hash: Option<&str>) -> Result<()>;
    /// Runs the guest agent once on the instance's SSH state.
    async fn run_guest_agent(&self, id: &str, run: GuestAgentRun<'_>) -> Result<(), StepError>;
}

#[async_trait]
impl InstanceDriver for SandboxHost {
    fn agent_inside(&self) -> bool {
        self.config().guest_agent.is_some()
    }

    fn max_processes(&self) -> u64 {
        self.config().max_processes
    }

    fn image(&self, name: &str) -> Result<Option<ImageInfo>> {
        SandboxHost::image(self, name)
    }

    async fn ensure_image(&self, name: &str, cache: &ImageCache) -> Result<ImageInfo> {
        SandboxHost::ensure_image(self, name, cache).await
    }

    fn list(&self) -> Result<Vec<String>> {
        SandboxHost::list(self)
    }

    async fn running(&self, id: &str) -> Result<Option<bool>> {
        if !SandboxHost::list(self)?.iter().any(|held| held == id) {
            return Ok(None);
        }
        Ok(Some(SandboxHost::is_running(self, id).await))
    }

    async fn create(&self, spec: InstanceSpec) -> Result<()> {
        SandboxHost::create(self, spec).await
    }

    async fn start(&self, id: &str) -> Result<()> {
        SandboxHost::start(self, id).await.map(|_| ())
    }

    async fn stop(&self, id: &str, force: bool) -> Result<()> {
        SandboxHost::stop(self, id, force).await
    }

    async fn destroy(&self, id: &str) -> Result<()> {
        SandboxHost::destroy(self, id).await
    }

    async fn set_password_hash(&self, id: &str, hash: Option<&str>) -> Result<()> {
        SandboxHost::set_password_hash(self, id, hash).await
    }

    /// The agent runs on the host as the instance's root, on the instance's files.
    async fn run_guest_agent(&self, id: &str, run: GuestAgentRun<'_>) -> Result<(), StepError> {
        let mut cmd = self.guest_command(id, run.exe)?;
        cmd.args([
            "agent",
            "--once",
            "--server",
            run.server_url,
            "--instance",
            id,
        ])
        .args(["--ssh-dir", crate::GUEST_SSH_DIR])
        .env("KEYPLANE_AGENT_TOKEN", run.token)
        .env("KEYPLANE_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
        let out = tokio::time::timeout(run.timeout, cmd.output())
            .await
            .map_err(|_| StepError::GuestAgentTimeout(run.timeout))?
            .map_err(StepError::GuestAgentSpawn)?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            return Err(StepError::GuestAgentFailed(err.trim().to_string()));
        }
        Ok(())
    }
}

/// The driver of a node, or why it has none.
pub type Driver = std::result::Result<Arc<dyn InstanceDriver>, String>;
