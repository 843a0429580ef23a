//! Where an instance comes to rest when a step of its operation failed: the state it really is
//! in, so that the calls its state allows (a start again, a terminate) are not refused for good
//! by a transitional state (STARTING, STOPPING, ...) that nothing would end; and where an
//! instance that was running rests when it cannot be booted again at server start.

use super::{StepError, Worker};
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

    /// After the boot at server start of an instance that was running (see
    /// [`Worker::restore`]) failed: it rests in what the driver reports, else STOPPED (it was
    /// not started), and the failure is logged and counted. An instance an operation took
    /// meanwhile is left to it.
    pub(super) async fn rest_after_failed_restore(&self, id: &str, error: &StepError) {
        tracing::warn!(instance = %id, error = %error, "cannot restore an instance that was running");
        self.core.metrics().restore("failed");
        let inst = match self.core.instance_by_id(id).await {
            Ok(i) if !i.is_busy() => i,
            _ => return,
        };
        let running = self.driver_says_running(id).await.unwrap_or(false);
        let state = if running {
            InstanceState::Running
        } else {
            InstanceState::Stopped
        };
        if state == inst.state {
            return;
        }
        tracing::info!(instance = %id, from = inst.state.as_str(), to = state.as_str(),
            "instance at rest after a failed restore");
        if let Err(e) = self.ops.set_instance_state(id, state).await {
            tracing::warn!(instance = %id, error = %e, "cannot set the state of an instance that was not restored");
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
        let before = state_before(op, inst.host);
        // An instance that never launched (a terminate of it failed) has no machine to ask.
        if before == InstanceState::LaunchFailed {
            return Some(before);
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
        Some(before)
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

/// The settled state an instance was in before `op`: the one recorded with the operation,
/// else (operations recorded before it was kept) as far as the operation's kind tells.
fn state_before(op: &Operation, host: HostKind) -> InstanceState {
    match op.state_before {
        Some(state) if state.is_settled() => state,
        _ => guessed_before(op, host),
    }
}

/// The state an operation of `op`'s kind most likely began in: the only state its call
/// accepts, or the likelier one where it accepts several.
fn guessed_before(op: &Operation, host: HostKind) -> InstanceState {
    match op.kind {
        OpKind::Create { .. } => InstanceState::LaunchFailed,
        OpKind::Start => InstanceState::Stopped,
        OpKind::Stop { .. } | OpKind::Reboot { .. } => InstanceState::Running,
        // An agent-managed host is a machine that runs: it registered itself.
        OpKind::Terminate if host == HostKind::Agent => InstanceState::Running,
        // Why: a terminate accepts RUNNING, STOPPED and LAUNCH_FAILED, and an operation
        // recorded before the state before it was kept does not say which; STOPPED is what a
        // machine that cannot be seen running is, and a terminate (or a start) is accepted
        // from it.
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
            state_before: None,
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

    /// The state recorded with the operation wins over the guess, when it is one an
    /// instance rests in.
    #[test]
    fn the_recorded_state_before_wins() {
        use InstanceState::{LaunchFailed, Running, Starting, Stopped};
        let cases = [
            (Some(Running), Running),
            (Some(LaunchFailed), LaunchFailed),
            (Some(Stopped), Stopped),
            (Some(Starting), Stopped),
            (None, Stopped),
        ];
        for (recorded, want) in cases {
            let mut terminate = op(OpKind::Terminate, false);
            terminate.state_before = recorded;
            assert_eq!(
                state_before(&terminate, HostKind::Sandbox),
                want,
                "{recorded:?}"
            );
        }
    }
}
