//! The operation worker: claims durable operations and carries them out on sandbox instances
//! through the [`InstanceDriver`] (or on records, for Windows). Every operation is a sequence
//! of idempotent steps whose progress is saved, so a worker that dies mid-way leaves the rest
//! to the next claimant and nothing is applied twice.

use crate::driver::{Driver, InstanceDriver};
use keyplane_core::instance::{HostKind, Instance, InstanceState, OpKind, OpState, Operation};
use keyplane_core::keypair::Namespace;
use keyplane_core::operations::WorkerCore;
use keyplane_core::store::Claimable;
use keyplane_core::{Core, DomainError};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Notify, Semaphore};

#[path = "worker_password.rs"]
mod password;

#[path = "worker_rest.rs"]
mod rest;

#[path = "worker_launch.rs"]
mod launch;

#[path = "worker_keys.rs"]
mod keys;
use keys::BindHow;

#[path = "worker_agent_host.rs"]
mod agent_host;

#[path = "worker_error.rs"]
mod error;
pub use error::StepError;

/// Worker settings.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Operations carried out at once.
    pub concurrency: usize,
    /// How long a claim lasts without renewal, seconds.
    pub lease_secs: i64,
    /// The `keyplane` executable (runs as the guest agent).
    pub agent_exe: PathBuf,
    /// Base URL the agent reaches the API at.
    pub server_url: String,
    /// How long one agent run may take.
    pub apply_timeout: Duration,
    /// The id of this node's sandbox directory: the sandbox instances it holds are operated by
    /// this node only. `None` when the node has no sandbox.
    pub sandbox_owner: Option<String>,
    /// Image tarballs (built the first time an image is needed).
    pub image_cache: PathBuf,
}

/// The operation worker of one server process.
pub struct Worker {
    core: Core,
    ops: WorkerCore,
    host: Driver,
    cfg: WorkerConfig,
    id: String,
    wake: Arc<Notify>,
    ssh_changes: tokio::sync::broadcast::Sender<String>,
}

type StepResult = Result<(), StepError>;

/// How long a node without a sandbox leaves a new sandbox launch to nodes that have one.
const ADOPT_GRACE_SECS: i64 = 3;

impl Worker {
    /// A worker over `core`; `host` is the instance driver or why there is none. It waits for
    /// new work on [`Core::operations_recorded`]; it notifies `ssh_changes` whenever an
    /// instance's desired SSH state changes (agents' long polls wait on it).
    pub fn new(
        core: Core,
        host: Driver,
        cfg: WorkerConfig,
        ssh_changes: tokio::sync::broadcast::Sender<String>,
    ) -> Arc<Worker> {
        let id = format!(
            "worker-{}-{}",
            std::process::id(),
            keyplane_core::ids::random_token(8)
        );
        Arc::new(Worker {
            wake: core.operations_recorded(),
            ops: core.worker_handle(),
            core,
            host,
            cfg,
            id,
            ssh_changes,
        })
    }

    /// Whether sandbox instances run the guest agent inside (it applies the SSH state at
    /// every boot).
    fn agent_inside(&self) -> bool {
        self.host.as_ref().is_ok_and(|h| h.agent_inside())
    }

    fn host(&self) -> Result<&Arc<dyn InstanceDriver>, StepError> {
        self.host
            .as_ref()
            .map_err(|why| StepError::NoSandbox(why.clone()))
    }

    /// Reports the installed default image's OS name and size to the image calls (the first
    /// Linux launch installs it when it is not there yet).
    pub fn report_images(&self) {
        if let Ok(Ok(Some(info))) = self.host().map(|h| h.image(crate::DEFAULT_IMAGE)) {
            self.report_image(info);
        }
    }

    fn report_image(&self, info: crate::ImageInfo) {
        self.core
            .set_linux_image(keyplane_core::instance::LinuxImageFacts {
                os_name: info.os_name,
                size_bytes: info.size_bytes,
            });
    }

    /// Installs the default image when missing (building its tarball the first time, which
    /// takes a minute), and reports it.
    async fn prepare_images(&self) -> StepResult {
        let host = self.host()?;
        let cache = crate::ImageCache::new(self.cfg.image_cache.clone());
        let info = host.ensure_image(crate::DEFAULT_IMAGE, &cache).await?;
        self.report_image(info);
        Ok(())
    }

    /// Start again the sandboxes that were running when the server stopped.
    pub async fn restore(&self) {
        let Ok(host) = self.host() else { return };
        // Only the instances this node's sandbox holds: others live on other nodes.
        let here = host.list().unwrap_or_default();
        let all = match self.ops.instances_to_restore().await {
            Ok(a) => a,
            Err(e) => return tracing::warn!(error = %e, "cannot list instances to restore"),
        };
        for inst in all {
            if here.contains(&inst.id) {
                match self.boot(&inst).await {
                    Ok(()) => {
                        tracing::info!(instance = %inst.id, "restored");
                        self.core.metrics().restore("started");
                    }
                    Err(e) => self.rest_after_failed_restore(&inst.id, &e).await,
                }
            }
        }
    }

    /// Claim and carry out operations until `shutdown` turns true.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let slots = Arc::new(Semaphore::new(self.cfg.concurrency.max(1)));
        loop {
            if *shutdown.borrow() {
                return;
            }
            let Ok(permit) = slots.clone().acquire_owned().await else {
                return;
            };
            let now = self.core.now();
            let scope = Claimable::Node {
                sandbox_owner: self.cfg.sandbox_owner.as_deref(),
                // Why: without a sandbox here, a launch that no node with one took within the
                // grace period is ours to end LAUNCH_FAILED, with the reason.
                adopt_unowned_before: self
                    .cfg
                    .sandbox_owner
                    .is_none()
                    .then(|| now - ADOPT_GRACE_SECS),
            };
            match self
                .ops
                .claim_operation(&self.id, now, now + self.cfg.lease_secs, scope)
                .await
            {
                Ok(Some(op)) => {
                    let me = self.clone();
                    tokio::spawn(async move {
                        me.carry_out(op).await;
                        drop(permit);
                    });
                }
                Ok(None) => {
                    drop(permit);
                    tokio::select! {
                        _ = self.wake.notified() => {}
                        _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                        _ = shutdown.changed() => {}
                    }
                }
                Err(e) => {
                    drop(permit);
                    tracing::warn!(error = %e, "cannot claim operations");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    async fn carry_out(&self, mut op: Operation) {
        let renew = {
            let (core, ops, id, op_id, lease) = (
                self.core.clone(),
                self.ops.clone(),
                self.id.clone(),
                op.id,
                self.cfg.lease_secs,
            );
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_secs((lease / 3).max(1) as u64)).await;
                    let until = core.now() + lease;
                    if !matches!(ops.renew_claim(op_id, &id, until).await, Ok(true)) {
                        tracing::warn!(operation = op_id, "lost the claim on an operation");
                        return;
                    }
                }
            })
        };
        let started = std::time::Instant::now();
        let outcome = self.execute(&mut op).await;
        renew.abort();
        if outcome.is_err() {
            self.come_to_rest(&op).await;
        }
        let message = outcome.as_ref().err().map(|e| e.to_string());
        let (state, error) = match &message {
            None => (OpState::Success, None),
            Some(e) => (OpState::Failed, Some(e.as_str())),
        };
        tracing::info!(
            operation = op.id,
            instance = %op.instance_id,
            action = %op.action,
            request_id = %op.request_id,
            state = state.as_str(),
            error = error.unwrap_or(""),
            millis = started.elapsed().as_millis() as u64,
            "operation finished"
        );
        self.core.metrics().operation(
            op.kind.name(),
            state.as_str(),
            started.elapsed().as_secs_f64(),
        );
        if let Err(e) = self.ops.finish_operation(&op, state, error).await {
            tracing::warn!(operation = op.id, error = %e, "cannot record the end of an operation");
        }
    }

    async fn execute(&self, op: &mut Operation) -> StepResult {
        let inst = match self.core.instance_by_id(&op.instance_id).await {
            Ok(i) => i,
            // Terminated meanwhile: nothing left to do.
            Err(DomainError::InstanceNotFound { .. }) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        if inst.host == HostKind::Agent {
            return self.execute_on_agent_host(op, &inst).await;
        }
        match op.kind.clone() {
            OpKind::Create {
                user_data,
                then_stop,
            } => {
                self.create(op, &inst, user_data.as_deref(), then_stop)
                    .await
            }
            OpKind::Start => self.boot(&inst).await,
            OpKind::Stop { force } => self.halt(&inst, force).await,
            OpKind::Reboot { force } => {
                self.halt(&inst, force).await?;
                self.boot(&inst).await
            }
            OpKind::Terminate => self.terminate(&inst).await,
            OpKind::Bind {
                add,
                remove,
                replace,
                deferred,
                restart,
            } => {
                let how = BindHow {
                    replace,
                    deferred,
                    restart,
                };
                self.bind(op, &inst, &add, &remove, how).await
            }
            OpKind::ResetPassword {
                password_hash,
                deferred,
                restart,
            } => {
                let how = password::ResetHow { deferred, restart };
                self.reset_password(op, &inst, password_hash.expose(), how)
                    .await
            }
        }
    }

    async fn set_state(&self, id: &str, state: InstanceState) -> StepResult {
        self.ops
            .set_instance_state(id, state)
            .await
            .map_err(StepError::from)
    }

    async fn save(&self, op: &Operation) -> StepResult {
        self.ops.save_progress(op).await.map_err(StepError::from)
    }

    /// Apply the effective SSH state (making bound keys effective first on ECS, where a start
    /// or reboot is what activates them), then start the instance.
    async fn boot(&self, inst: &Instance) -> StepResult {
        self.boot_with(inst, true).await
    }

    /// Start the instance, applying its SSH state first unless the caller just did.
    async fn boot_with(&self, inst: &Instance, apply_ssh_state: bool) -> StepResult {
        if inst.host == HostKind::Record {
            return self.set_state(&inst.id, InstanceState::Running).await;
        }
        let host = self.host()?;
        if !matches!(host.image(crate::DEFAULT_IMAGE), Ok(Some(_))) {
            self.prepare_images().await?;
        }
        if inst.namespace == Namespace::Ecs {
            self.ops.activate_bindings(&inst.id).await?;
        }
        let agent_inside = self.agent_inside();
        if apply_ssh_state && !agent_inside {
            self.apply(&inst.id).await?;
        }
        host.start(&inst.id).await?;
        if apply_ssh_state && agent_inside {
            // The instance's own agent applies the state at boot, before its SSH server starts;
            // should it not have, the host applies it (the files are the same either way).
            let now = self.core.instance_by_id(&inst.id).await?;
            if now.applied_generation < now.desired_generation {
                tracing::warn!(instance = %inst.id, applied = now.applied_generation,
                    desired = now.desired_generation,
                    "the guest agent inside did not apply the SSH state at boot; applying it from the host");
                self.apply(&inst.id).await?;
            }
        }
        self.set_state(&inst.id, InstanceState::Running).await
    }

    async fn halt(&self, inst: &Instance, force: bool) -> StepResult {
        if inst.host == HostKind::Sandbox {
            self.host()?.stop(&inst.id, force).await?;
        }
        self.set_state(&inst.id, InstanceState::Stopped).await
    }

    async fn terminate(&self, inst: &Instance) -> StepResult {
        if inst.host == HostKind::Sandbox {
            if let Ok(host) = self.host() {
                host.destroy(&inst.id).await?;
            }
        }
        self.ops
            .delete_instance(&inst.id)
            .await
            .map_err(StepError::from)
    }

    /// Steps 1 and 2 of an operation that works on a stopped instance: remember whether it
    /// ran, then stop it (`force`: without a grace period) if it did.
    pub(crate) async fn stop_first(
        &self,
        op: &mut Operation,
        inst: &Instance,
        force: bool,
    ) -> StepResult {
        if op.step < 1 {
            op.was_running = inst.state == InstanceState::Running;
            op.step = 1;
            self.save(op).await?;
        }
        if op.step < 2 {
            if op.was_running {
                self.halt(inst, force).await?;
            }
            op.step = 2;
            self.save(op).await?;
        }
        Ok(())
    }
}
