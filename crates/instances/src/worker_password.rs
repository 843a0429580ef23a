//! The worker's password resets: the steps of `OpKind::ResetPassword` on one instance.

use super::{StepResult, Worker};
use keyplane_core::instance::{HostKind, Instance, Operation};

/// How a password reset takes effect (the flags of `OpKind::ResetPassword`).
#[derive(Debug, Clone, Copy)]
pub(super) struct ResetHow {
    /// Left for the next start or reboot (ECS): no stop, no start.
    pub deferred: bool,
    /// Start an instance that was running again once the password is in place.
    pub restart: bool,
}

impl Worker {
    /// Steps: 1 remember whether it ran, 2 shut down (a normal shutdown, forced once its grace
    /// period is over, as CVM's ForceStop and Lighthouse document), 3 new hash recorded and laid
    /// out for the next boot, then start again if it was running and the operation says to.
    /// Deferred (ECS): only step 3; the next start or reboot puts the password in place.
    pub(super) async fn reset_password(
        &self,
        op: &mut Operation,
        inst: &Instance,
        hash: &str,
        how: ResetHow,
    ) -> StepResult {
        if !how.deferred {
            self.stop_first(op, inst, false).await?;
        }
        if op.step < 3 {
            // Both writes replace a value with the same one when repeated, so a crash between
            // them is finished, not doubled, by the next claimant.
            if inst.host == HostKind::Sandbox {
                self.host()?.set_password_hash(&inst.id, Some(hash)).await?;
            }
            self.ops.set_password_hash(&inst.id, Some(hash)).await?;
            op.step = 3;
            self.save(op).await?;
        }
        if op.was_running && how.restart {
            let now = self.core.instance_by_id(&inst.id).await?;
            self.boot(&now).await?;
        }
        Ok(())
    }
}
