//! The operation worker's way into the store, [`WorkerCore`]: claiming, renewing, progressing
//! and finishing durable operations, and the instance changes their steps make. Errors are the
//! store's own, whose text an operation keeps as its error when a step fails.
//!
//! These calls skip the rules the dialects go through (they carry out what the rules already
//! allowed), so they are not on [`Core`]: only the holder of a [`WorkerCore`] makes them.

use crate::instance::{HostKind, Instance, InstanceState, Operation};
use crate::store::{Claimable, Store, StoreError};
use crate::Core;
use std::sync::Arc;

/// The operation worker's handle on the core ([`Core::worker_handle`]): the store calls that
/// carry operations out, which no dialect makes.
#[derive(Clone)]
pub struct WorkerCore {
    pub(crate) core: Core,
}

impl Core {
    /// The handle the operation worker carries operations out through. Only the worker takes
    /// it; dialects translate requests into [`Core`]'s rule-checked calls instead.
    pub fn worker_handle(&self) -> WorkerCore {
        WorkerCore { core: self.clone() }
    }
}

impl WorkerCore {
    fn store(&self) -> &Arc<dyn Store> {
        self.core.store()
    }

    /// Claim the next operation `scope` allows for `worker`, until `lease_until`; `None` when
    /// there is none to claim now.
    pub async fn claim_operation(
        &self,
        worker: &str,
        now: i64,
        lease_until: i64,
        scope: Claimable<'_>,
    ) -> Result<Option<Operation>, StoreError> {
        self.store()
            .claim_operation_scoped(worker, now, lease_until, scope)
            .await
    }

    /// Extend `worker`'s claim on an operation; `false` when the claim was lost to another.
    pub async fn renew_claim(
        &self,
        op_id: i64,
        worker: &str,
        lease_until: i64,
    ) -> Result<bool, StoreError> {
        self.store().renew_claim(op_id, worker, lease_until).await
    }

    /// Record the steps of `op` done so far (and what they remembered).
    pub async fn save_progress(&self, op: &Operation) -> Result<(), StoreError> {
        self.store().save_progress(op).await
    }

    /// The sandbox instances that were running, with no operation in progress: the ones to
    /// start again when the server starts.
    pub async fn instances_to_restore(&self) -> Result<Vec<Instance>, StoreError> {
        let all = self.store().all_instances().await?;
        Ok(all
            .into_iter()
            .filter(|i| {
                i.host == HostKind::Sandbox && i.state == InstanceState::Running && !i.is_busy()
            })
            .collect())
    }

    /// Set an instance's lifecycle state, as an operation reached it.
    pub async fn set_instance_state(
        &self,
        id: &str,
        state: InstanceState,
    ) -> Result<(), StoreError> {
        self.store().set_instance_state(id, state).await
    }

    /// Replace an instance's bound keys and, when given, the keys in effect; returns the desired
    /// SSH state's generation.
    pub async fn set_bindings(
        &self,
        id: &str,
        key_ids: &[String],
        effective: Option<&[String]>,
    ) -> Result<i64, StoreError> {
        self.store().set_bindings(id, key_ids, effective).await
    }

    /// Make the bound keys the keys in effect (ECS, at a start or reboot); returns the desired
    /// generation.
    pub async fn activate_bindings(&self, id: &str) -> Result<i64, StoreError> {
        self.store().activate_bindings(id).await
    }

    /// Record the hash of an instance's new login password (`None`: no password).
    pub async fn set_password_hash(&self, id: &str, hash: Option<&str>) -> Result<(), StoreError> {
        self.store().set_password_hash(id, hash).await
    }

    /// Remove a terminated instance's record.
    pub async fn delete_instance(&self, id: &str) -> Result<(), StoreError> {
        self.store().delete_instance(id).await
    }
}
