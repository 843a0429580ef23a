//! Waiting for an operation across nodes: a wait on one node sees an operation that another
//! node's worker ended, by its bounded re-check (no notification crosses nodes), and leaves
//! nothing registered behind.

use crate::suite::{instance, new_op};
use keyplane_core::account::Account;
use keyplane_core::instance::{InstanceState, OpKind, OpState};
use keyplane_core::service::SystemClock;
use keyplane_core::store::Store;
use keyplane_core::workflow::Awaited;
use keyplane_core::Core;
use std::sync::Arc;
use std::time::Duration;

/// Two nodes over `a` and `b`, handles on one database: a wait on the first for an operation
/// the second ends.
pub(crate) async fn two_nodes(a: Arc<dyn Store>, b: Arc<dyn Store>) {
    let (node_a, node_b) = (
        Core::new(a.clone(), Arc::new(SystemClock)),
        Core::new(b, Arc::new(SystemClock)),
    );
    let account = Account::generate("suite-await", false, 10);
    a.insert_account(&account).await.unwrap();
    let inst = instance(&account, 1, &[], 10);
    a.insert_instances(std::slice::from_ref(&inst), &[], None)
        .await
        .unwrap();
    let stopping = Some(InstanceState::Stopping);
    let stop = new_op(
        &inst,
        "StopInstances",
        OpKind::Stop { force: false },
        stopping,
        20,
    );
    let request_id = stop.request_id.clone();
    a.submit_operations(&[stop], None).await.unwrap();
    let waiting = tokio::spawn({
        let (node, id, request_id) = (node_a.clone(), inst.id.clone(), request_id.clone());
        async move {
            node.await_operation(&id, &request_id, Duration::from_secs(600))
                .await
        }
    });
    while node_a.awaited_instances() == 0 {
        tokio::task::yield_now().await;
    }
    let now = node_b.now();
    let scope = keyplane_core::store::Claimable::Any;
    let worker_b = node_b.worker_handle();
    let op = worker_b
        .claim_operation("worker-b", now, now + 10, scope)
        .await
        .unwrap()
        .expect("the stop is there to claim");
    worker_b
        .set_instance_state(&inst.id, InstanceState::Stopped)
        .await
        .unwrap();
    worker_b
        .finish_operation(&op, OpState::Success, None)
        .await
        .unwrap();
    // Seen long before the wait's own bound, at which it would look one last time anyway.
    let seen = tokio::time::timeout(Duration::from_secs(20), waiting)
        .await
        .expect("the wait sees the end without waiting out its bound");
    let Awaited::Settled(seen) = seen.unwrap().unwrap() else {
        panic!("the stop ended on the other node")
    };
    assert_eq!(
        (seen.state, seen.latest_operation_state),
        (InstanceState::Stopped, Some(OpState::Success))
    );
    assert_eq!(node_a.awaited_instances(), 0);
}
