//! Operations as workflows a caller can wait for: the worker records an operation's end
//! through [`WorkerCore::finish_operation`], which wakes the [`Core::await_operation`]s on
//! this node that wait for that operation's instance, and no other; operations that end on
//! another node (PostgreSQL, several nodes) are seen by a bounded re-check.

use crate::error::DomainError;
use crate::instance::{Instance, OpState, Operation};
use crate::operations::WorkerCore;
use crate::service::Core;
use crate::store::StoreError;
use std::collections::hash_map::{Entry, HashMap};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// How often a wait looks again without being woken: the operation may have ended on another
/// node, whose notification does not reach this one.
const RECHECK: Duration = Duration::from_millis(250);

/// Who waits on this node for an operation to end, by instance id: an entry lives while at
/// least one [`Waiter`] of its instance does.
#[derive(Debug, Default)]
pub(crate) struct Settled(Mutex<HashMap<String, Waiting>>);

#[derive(Debug)]
struct Waiting {
    /// Sent to whenever an operation of the instance ends.
    ended: watch::Sender<()>,
    /// The [`Waiter`]s of the instance.
    waiters: usize,
}

impl Settled {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Waiting>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a wait for an operation of `instance` to end: every end recorded from now on
    /// wakes it, so it is taken before looking at the store.
    pub(crate) fn wait_for(&self, instance: &str) -> Waiter<'_> {
        let mut all = self.lock();
        let waiting = all.entry(instance.to_string()).or_insert_with(|| Waiting {
            ended: watch::channel(()).0,
            waiters: 0,
        });
        waiting.waiters += 1;
        Waiter {
            settled: self,
            instance: instance.to_string(),
            ended: waiting.ended.subscribe(),
        }
    }

    /// An operation of `instance` ended: wake whoever waits for it.
    pub(crate) fn ended(&self, instance: &str) {
        if let Some(waiting) = self.lock().get(instance) {
            waiting.ended.send_replace(());
        }
    }

    /// How many instances someone waits for.
    pub(crate) fn instances(&self) -> usize {
        self.lock().len()
    }
}

/// One registered wait; dropping it (a wait that returned, or was cancelled) unregisters it.
#[derive(Debug)]
pub(crate) struct Waiter<'a> {
    settled: &'a Settled,
    instance: String,
    ended: watch::Receiver<()>,
}

impl Waiter<'_> {
    /// Until an operation of the instance ended since the last call (or the registration).
    pub(crate) async fn ended(&mut self) {
        // The sender lives as long as this waiter's entry, so this does not fail.
        let _ = self.ended.changed().await;
    }
}

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        let mut all = self.settled.lock();
        if let Entry::Occupied(mut waiting) = all.entry(std::mem::take(&mut self.instance)) {
            waiting.get_mut().waiters -= 1;
            if waiting.get().waiters == 0 {
                waiting.remove();
            }
        }
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
    /// End `op` in `state` (with the error clients are shown, when it failed), mirrored on
    /// its instance, and wake whoever waits on this node for an operation of that instance.
    /// The store's error is returned as it is, since its text is recorded.
    pub async fn finish_operation(
        &self,
        op: &Operation,
        state: OpState,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        let done = self
            .core
            .store()
            .finish_operation(op.id, state, error)
            .await;
        // Woken even when recording failed: the waiters look at the store themselves.
        self.core.settled().ended(&op.instance_id);
        done
    }
}

impl Core {
    /// How many instances someone on this node waits for an operation of, in
    /// [`Core::await_operation`] (each counts once, however many wait for it).
    pub fn awaited_instances(&self) -> usize {
        self.settled().instances()
    }

    /// Wait, at most `timeout`, until the operation that request `request_id` started on
    /// instance `id` is no longer in progress.
    pub async fn await_operation(
        &self,
        id: &str,
        request_id: &str,
        timeout: Duration,
    ) -> Result<Awaited, DomainError> {
        let deadline = Instant::now() + timeout;
        // Registered before the first look, so an end recorded after it always wakes us.
        let mut waiter = self.settled().wait_for(id);
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
            let _ = tokio::time::timeout((deadline - now).min(RECHECK), waiter.ended()).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;

    /// Whether `f` is ready at once.
    fn ready<F: Future>(f: F) -> bool {
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        std::pin::pin!(f).poll(&mut cx).is_ready()
    }

    #[test]
    fn an_end_wakes_only_the_waiters_of_its_instance() {
        let settled = Settled::default();
        let (mut a1, mut a2, mut b) = (
            settled.wait_for("ins-a"),
            settled.wait_for("ins-a"),
            settled.wait_for("ins-b"),
        );
        assert_eq!(settled.instances(), 2);
        // Ended after the registration, before the wait: not lost.
        settled.ended("ins-a");
        settled.ended("ins-c");
        assert!(ready(a1.ended()));
        assert!(ready(a2.ended()));
        assert!(!ready(b.ended()), "another instance's end does not wake it");
        assert!(!ready(a1.ended()), "each end wakes once");
    }

    #[test]
    fn a_waiter_that_leaves_takes_its_entry_along() {
        let settled = Settled::default();
        let first = settled.wait_for("ins-a");
        let second = settled.wait_for("ins-a");
        drop(first);
        assert_eq!(settled.instances(), 1, "one still waits");
        drop(second);
        assert_eq!(settled.instances(), 0);
        // Ends with no one waiting leave nothing behind.
        settled.ended("ins-a");
        assert_eq!(settled.instances(), 0);
    }

    #[tokio::test]
    async fn a_cancelled_wait_leaves_no_entry() {
        let settled = Settled::default();
        let wait = async {
            let mut waiter = settled.wait_for("ins-a");
            waiter.ended().await;
        };
        let cancelled = tokio::time::timeout(Duration::from_millis(10), wait).await;
        assert!(cancelled.is_err(), "nothing ended");
        assert_eq!(settled.instances(), 0);
    }
}
