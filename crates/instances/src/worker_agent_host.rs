//! The worker on agent-managed hosts: a real host's own agent applies key changes live, and
//! what is not the API's to decide (power, the host's own passwords) is refused.

use super::{StepError, StepResult, Worker};
use keyplane_core::binding::next_keys;
use keyplane_core::instance::{Instance, OpKind, Operation};
use std::time::Duration;

impl Worker {
    /// A real host's own agent applies changes live: record the keys, wake its long poll,
    /// and wait for its report. Power operations belong to the host's owner.
    pub(super) async fn execute_on_agent_host(
        &self,
        op: &mut Operation,
        inst: &Instance,
    ) -> StepResult {
        match op.kind.clone() {
            OpKind::Bind {
                add,
                remove,
                replace,
                ..
            } => {
                if op.step < 3 {
                    let keys = next_keys(&inst.key_ids, &add, &remove, replace);
                    op.target_generation =
                        self.ops.set_bindings(&inst.id, &keys, Some(&keys)).await?;
                    op.step = 3;
                    self.save(op).await?;
                }
                // No receiver (no agent polling this node) is fine: agents poll every second.
                let _ = self.ssh_changes.send(inst.id.clone());
                self.wait_applied(&inst.id, op.target_generation).await
            }
            OpKind::Terminate => self
                .ops
                .delete_instance(&inst.id)
                .await
                .map_err(StepError::from),
            OpKind::Create { .. } => Ok(()),
            OpKind::Start | OpKind::Stop { .. } | OpKind::Reboot { .. } => {
                Err(StepError::AgentHostPower)
            }
            // Why: the agent keeps only the SSH state the API decides; the host's own accounts
            // and their passwords belong to its owner.
            OpKind::ResetPassword { .. } => Err(StepError::AgentHostPassword),
        }
    }

    /// Wait until the instance's agent reports `generation` applied.
    async fn wait_applied(&self, id: &str, generation: i64) -> StepResult {
        let deadline = tokio::time::Instant::now() + self.cfg.apply_timeout;
        loop {
            let inst = self.core.instance_by_id(id).await?;
            if inst.applied_generation >= generation {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(StepError::AgentHostSilent {
                    timeout: self.cfg.apply_timeout,
                    reported: inst.applied_generation,
                    wanted: generation,
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
