//! The worker's key changes: the steps of `OpKind::Bind` on one sandbox instance, and the
//! guest agent runs that put the desired SSH state in place.

use super::{StepError, StepResult, Worker};
use crate::driver::GuestAgentRun;
use keyplane_core::binding::next_keys;
use keyplane_core::instance::{HostKind, Instance, Operation};
use std::time::Duration;

/// How a bind operation changes the keys (the flags of `OpKind::Bind`).
#[derive(Debug, Clone, Copy)]
pub(super) struct BindHow {
    /// Every bound key is replaced by the added ones.
    pub replace: bool,
    /// Recorded now, in effect from the next start or reboot (ECS).
    pub deferred: bool,
    /// An instance that was running is started again afterwards.
    pub restart: bool,
}

impl Worker {
    /// Steps: 1 remember whether it ran, 2 stopped, 3 keys recorded, 4 applied (by the start
    /// that follows, when the instance's own agent applies it at boot), then start again if it
    /// was running and the operation says to restart it.
    pub(super) async fn bind(
        &self,
        op: &mut Operation,
        inst: &Instance,
        add: &[String],
        remove: &[String],
        how: BindHow,
    ) -> StepResult {
        let keys = next_keys(&inst.key_ids, add, remove, how.replace);
        if how.deferred {
            // ECS: recorded now, in effect from the next start or reboot.
            self.ops.set_bindings(&inst.id, &keys, None).await?;
            return Ok(());
        }
        self.stop_first(op, inst, true).await?;
        if op.step < 3 {
            op.target_generation = self.ops.set_bindings(&inst.id, &keys, Some(&keys)).await?;
            op.step = 3;
            self.save(op).await?;
        }
        let restart = op.was_running && how.restart;
        // Why: an instance that starts again applies the state itself (its agent runs before
        // its SSH server), and the start checks that it did, applying it from the host if not;
        // a run of the agent from the host first would only write the same files again.
        let applied_by_boot = restart && self.agent_inside();
        if op.step < 4 {
            if inst.host == HostKind::Sandbox && !applied_by_boot {
                self.apply(&inst.id).await?;
            }
            op.step = 4;
            self.save(op).await?;
        }
        if restart {
            let now = self.core.instance_by_id(&inst.id).await?;
            self.boot_with(&now, applied_by_boot).await?;
        }
        Ok(())
    }

    /// Run the guest agent once on the instance's files and check it reported the desired
    /// generation applied; a failed run (an agent killed mid-way, say) is retried, which is safe
    /// because applying the same state twice writes the same files.
    pub(super) async fn apply(&self, id: &str) -> StepResult {
        let mut attempt = 1u64;
        loop {
            let Err(e) = self.apply_once(id).await else {
                return Ok(());
            };
            tracing::warn!(instance = %id, attempt, error = %e, "guest agent run failed");
            tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
            if attempt == 3 {
                return Err(e);
            }
            attempt += 1;
        }
    }

    async fn apply_once(&self, id: &str) -> StepResult {
        let host = self.host()?;
        let want = self.core.instance_by_id(id).await?.desired_generation;
        let token = self.core.agent_token(id).await?;
        let run = GuestAgentRun {
            exe: &self.cfg.agent_exe,
            server_url: &self.cfg.server_url,
            token: &token,
            timeout: self.cfg.apply_timeout,
        };
        host.run_guest_agent(id, run).await?;
        let applied = self.core.instance_by_id(id).await?.applied_generation;
        if applied < want {
            return Err(StepError::GuestAgentBehind { applied, want });
        }
        Ok(())
    }
}
