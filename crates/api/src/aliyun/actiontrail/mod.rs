//! Alibaba Cloud ActionTrail, Version 2020-07-06: `LookupEvents` over the audit trail, on the
//! same wire as ECS (RPC HMAC-SHA1 or ACS3-HMAC-SHA256 signatures, ECS's error envelope with
//! HostId `actiontrail.aliyuncs.com`). An account finds only its own events, and only those of
//! the Alibaba dialects (ECS and ActionTrail itself) and of the agents' host registrations.

pub mod error;
pub mod event;
pub mod lookup;

use super::auth::Authenticated;
use super::error::AliError;
use super::router::ActionTrailAction;
use crate::common::server::AppState;
use serde_json::Value;

/// Serve one authenticated ActionTrail request.
pub async fn dispatch(state: &AppState, auth: &Authenticated) -> Result<Value, AliError> {
    let act = ActionTrailAction::parse(&auth.action)
        .ok_or_else(|| AliError::InvalidAction(auth.action.clone()))?;
    // Why: ActionTrail looks events up in the region of the endpoint it is called at; one
    // endpoint serves every region here, so no region is asked for and the trail is the
    // account's across regions.
    if !state
        .limiter
        .check(&auth.account.id, &format!("actiontrail.{}", act.name()))
    {
        return Err(AliError::Throttling(act.name().into()));
    }
    // Refusals this node answered are in the trail before it is read.
    state.refusals.flush().await;
    match act {
        ActionTrailAction::LookupEvents => {
            lookup::lookup_events(&state.core, &auth.account, &auth.params).await
        }
    }
}
