//! Tencent CloudAudit, Version 2019-03-19: `LookUpEvents` over the audit trail, on the same
//! wire as CVM API 3.0 (TC3 or v1 signatures, credential scope service `cloudaudit`). An
//! account finds only its own events, and only those of the Tencent dialects (CVM 3.0, the
//! legacy v2 API, Lighthouse, CloudAudit itself) and of the agents' host registrations.

pub mod error;
pub mod event;
pub mod lookup;

use super::router::{CloudAuditAction, Product};
use super::wire::{check_rate, check_region, unknown_action};
use crate::common::server::AppState;
use crate::tencent::cloudaudit::error::CloudAuditError;
use keyplane_core::account::Account;
use serde_json::Value;

/// Serve one authenticated CloudAudit request.
pub async fn dispatch(
    state: &AppState,
    account: &Account,
    action: &str,
    region: Option<String>,
    params: Value,
) -> Result<Value, CloudAuditError> {
    let act = CloudAuditAction::parse(action)
        .ok_or_else(|| unknown_action(Product::CloudAudit, action))?;
    // Why: the region names the endpoint the lookup is sent to, not the events it finds: the
    // trail is the account's across regions, as CloudAudit's is.
    check_region(region.as_deref(), false)?;
    check_rate(state, account, Product::CloudAudit, act.name())?;
    // Refusals this node answered are in the trail before it is read.
    state.refusals.flush().await;
    match act {
        CloudAuditAction::LookUpEvents => {
            lookup::look_up_events(&state.core, account, params).await
        }
    }
}
