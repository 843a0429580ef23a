//! Operations as workflows a caller can wait for: the worker records an operation's end
//! through [`WorkerCore::finish_operation`], which wakes every [`Core::await_operation`] on this
//! node; operations that end on another node (PostgreSQL, several nodes) are seen by a
//! bounded re-check.

use crate::error::DomainError;
use crate::instance::{Instance, OpState};
use crate::operations::WorkerCore;
use crate::service::Core;
use crate::store::StoreError;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// How often a wait looks again without being woken: the operation may have ended on another
/// node, whose notification does not reach this one.
const RECHECK: Duration = Duration::from_millis(250);

/// Counts the operations that ended on this node; waiters watch it change.
#[derive(Debug)]
pub(crate) struct Settled(watch::Sender<u64>);

impl Default for Settled {
    fn default() -> Settled {
        Settled(watch::channel(0).0)
    }
}

/// Where a wait for an instance's operation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Awaited {
    /// The instance is gone (released meanwhile).
    Gone,
    /// The operation is no longer in progress (or the instance's latest operation is another
    /// request's): the instance as it is now.
    Settled(Instance),
    /// The operation was still in progress when the time was up.
    InProgress(Instance),
}

impl Awaited {
    /// The operation's error, when it ended failed.
    pub fn failure(&self, request_id: &str) -> Option<String> {
        match self {
            Awaited::Settled(i)
                if i.latest_operation_state == Some(OpState::Failed)
                    && i.latest_operation_request_id.as_deref() == Some(request_id) =>
            {
                Some(i.latest_operation_error.clone().unwrap_or_default())
            }
            _ => None,
        }
    }
}

impl WorkerCore {
    /// End an operation in `state` (with the error clients are shown, when it failed),
    /// mirrored on its instance, and wake whoever waits for operations on this node. The
    /// store's error is returned as it is, since its text is recorded.
    pub async fn finish_operation(
        &self,
        op_id: i64,
        state: OpState,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        let done = self
            .core
            .store()
            .finish_operation(op_id, state, error)
            .await;
        // Woken even when recording failed: the waiters look at the store themselves.
        self.core
            .settled()
            .0
            .send_modify(|n| *n = n.wrapping_add(1));
        done
    }
}

impl Core {
    /// Wait, at most `timeout`, until the operation that request `request_id` started on
    /// instance `id` is no longer in progress.
    pub async fn await_operation(
        &self,
        id: &str,
        request_id: &str,
        timeout: Duration,
    ) -> Result<Awaited, DomainError> {
        let deadline = Instant::now() + timeout;
        // Subscribed before the first look, so an end recorded after it always wakes us.
        let mut ended = self.settled().0.subscribe();
        loop {
            let inst = match self.instance_by_id(id).await {
                Ok(i) => i,
                Err(DomainError::InstanceNotFound { .. }) => return Ok(Awaited::Gone),
                Err(e) => return Err(e),
            };
            let ours = inst.latest_operation_request_id.as_deref() == Some(request_id);
            if !(ours && inst.is_busy()) {
                return Ok(Awaited::Settled(inst));
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(Awaited::InProgress(inst));
            }
            let _ = tokio::time::timeout((deadline - now).min(RECHECK), ended.changed()).await;
        }
    }
}
