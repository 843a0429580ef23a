//! Where an instance comes to rest when a step of its operation failed: the state it really is
//! in, so that the calls its state allows (a start again, a terminate) are not refused for good
//! by a transitional state (STARTING, STOPPING, ...) that nothing would end.

use super::Worker;
use keyplane_core::instance::{HostKind, Instance, InstanceState, OpKind, Operation};

impl Worker {
    /// After a failed step of `op`: set its instance's state to what the driver reports (running
    /// or not) when it can tell, otherwise to the state it was in before the operation. Creation
    /// failures stay LAUNCH_FAILED. Called before the operation is recorded as ended, so that a
    /// caller who sees it FAILED sees the resting state with it.
    pub(super) async fn come_to_rest(&self, op: &Operation) {
        let inst = match self.core.instance_by_id(&op.instance_id).await {
            Ok(i) => i,
            // Gone (a terminate got as far as deleting the record): nothing is left to set.
            Err(_) => return,
        };
        let Some(state) = self.resting_state(op, &inst).await else {
            return;
        };
        if state == inst.state {
            return;
        }
        tracing::info!(instance = %inst.id, operation = op.id, from = inst.state.as_str(),
            to = state.as_str(), "instance at rest after a failed operation");
        if let Err(e) = self.ops.set_instance_state(&inst.id, state).await {
            tracing::warn!(instance = %inst.id, error = %e, "cannot set the state of an instance whose operation failed");
        }
    }

    /// The state `inst` rests in after `op` failed; `None` to leave it as it is.
    async fn resting_state(&self, op: &Operation, inst: &Instance) -> Option<InstanceState> {
        if inst.state == InstanceState::LaunchFailed {
            return None;
        }
        if let OpKind::Create { .. } = op.kind {
            // Past its first boot (step 2) the instance was launched: only a failed stop after
            // it is left, and the driver tells whether it runs.
            if op.step < 2 {
                return Some(InstanceState::LaunchFailed);
            }
        }
        if inst.host == HostKind::Sandbox {
            if let Some(running) = self.driver_says_running(&inst.id).await {
                return Some(if running {
                    InstanceState::Running
                } else {
                    InstanceState::Stopped
                });
            }
        }
        if inst.state.is_settled() {
            return None;
        }
        Some(state_before(op, inst.host))
    }

    /// Whether the driver reports the machine running; `None` when it cannot tell (no driver
    /// on this node, or it failed to answer). A machine the driver does not hold does not run.
    async fn driver_says_running(&self, id: &str) -> Option<bool> {
        let host = self.host().ok()?;
        match host.running(id).await {
            Ok(running) => Some(running.unwrap_or(false)),
            Err(e) => {
                tracing::warn!(instance = %id, error = %e, "cannot tell whether an instance runs");
                None
            }
        }
    }
}

/// The settled state an instance was in before `op`, as far as the operation's kind tells: the
/// only state its call accepts, or the likelier one where it accepts several.
fn state_before(op: &Operation, host: HostKind) -> InstanceState {
    match op.kind {
        OpKind::Create { .. } => InstanceState::LaunchFailed,
        OpKind::Start => InstanceState::Stopped,
        OpKind::Stop { .. } | OpKind::Reboot { .. } => InstanceState::Running,
        // An agent-managed host is a machine that runs: it registered itself.
        OpKind::Terminate if host == HostKind::Agent => InstanceState::Running,
        // Why: a terminate accepts RUNNING, STOPPED and LAUNCH_FAILED, and which one it left is
        // not kept; STOPPED is what a machine that cannot be seen running is, and a terminate
        // (or a start) is accepted from it.
        OpKind::Terminate => InstanceState::Stopped,
        OpKind::Bind { .. } | OpKind::ResetPassword { .. } => {
            if op.was_running {
                InstanceState::Running
            } else {
                InstanceState::Stopped
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyplane_core::instance::OpState;

    fn op(kind: OpKind, was_running: bool) -> Operation {
        Operation {
            id: 1,
            account_id: "acc".into(),
            instance_id: "ins-00000001".into(),
            action: "Action".into(),
            request_id: "req".into(),
            kind,
            step: 0,
            was_running,
            target_generation: 0,
            state: OpState::Operating,
            created_at: 0,
        }
    }

    #[test]
    fn the_state_before_is_the_one_the_call_accepts() {
        use HostKind::{Agent, Record};
        use InstanceState::{Running, Stopped};
        let bind = OpKind::Bind {
            add: vec![],
            remove: vec![],
            replace: false,
            deferred: false,
            restart: true,
        };
        let cases = [
            (OpKind::Start, false, Record, Stopped),
            (OpKind::Stop { force: true }, false, Record, Running),
            (OpKind::Reboot { force: false }, false, Agent, Running),
            (OpKind::Terminate, false, Record, Stopped),
            (OpKind::Terminate, false, Agent, Running),
            (bind.clone(), true, Record, Running),
            (bind, false, Record, Stopped),
        ];
        for (kind, was_running, host, want) in cases {
            let got = state_before(&op(kind.clone(), was_running), host);
            assert_eq!(got, want, "{kind:?}");
        }
    }
}
