//! Tencent CVM, Version 2017-03-12: the key-pair family and the instance calls, as thin
//! translators from wire DTOs into domain calls.

pub mod bind;
pub mod dto;
pub mod error;
pub mod images;
pub mod instances;
pub mod keypairs;
pub mod password;
pub mod run;

use super::router::{CvmAction, Product};
use super::wire::{check_rate, check_region, unknown_action};
use crate::common::answer::Answer;
use crate::common::server::AppState;
use error::CvmError;
use keyplane_core::account::Account;
use keyplane_core::Core;
use serde_json::Value;

/// What a handler gets: the domain, the authenticated account, and the request's region.
pub struct Ctx<'a> {
    /// The domain service.
    pub core: &'a Core,
    /// The signing account.
    pub account: &'a Account,
    /// Region of the request.
    pub region: &'a str,
    /// Who sent the request and how, with its RequestId (recorded on the operations it
    /// starts and in the audit trail).
    pub req: &'a keyplane_core::RequestMeta,
}

/// Serve one authenticated CVM request.
pub async fn dispatch(
    state: &AppState,
    account: &Account,
    action: &str,
    region: Option<String>,
    params: Value,
    req: &keyplane_core::RequestMeta,
) -> Result<Answer, CvmError> {
    let act = CvmAction::parse(action).ok_or_else(|| unknown_action(Product::Cvm, action))?;
    check_region(region.as_deref(), false)?;
    check_rate(state, account, Product::Cvm, act.name())?;
    let ctx = Ctx {
        core: &state.core,
        account,
        region: region.as_deref().unwrap_or_default(),
        req,
    };
    Ok(match act {
        CvmAction::CreateKeyPair => keypairs::create(&ctx, params).await?.into(),
        CvmAction::ImportKeyPair => keypairs::import(&ctx, params).await?.into(),
        CvmAction::DescribeKeyPairs => keypairs::describe(&ctx, params).await?,
        CvmAction::DeleteKeyPairs => keypairs::delete(&ctx, params).await?.into(),
        CvmAction::ModifyKeyPairAttribute => keypairs::modify(&ctx, params).await?.into(),
        CvmAction::AssociateInstancesKeyPairs => bind::associate(&ctx, params).await?.into(),
        CvmAction::DisassociateInstancesKeyPairs => bind::disassociate(&ctx, params).await?.into(),
        CvmAction::DescribeImages => images::describe(&ctx, params).await?.into(),
        CvmAction::RunInstances => run::run(&ctx, params).await?.into(),
        CvmAction::DescribeInstances => instances::describe(&ctx, params).await?,
        CvmAction::DescribeInstancesStatus => instances::status(&ctx, params).await?.into(),
        CvmAction::StartInstances => instances::start(&ctx, params).await?.into(),
        CvmAction::StopInstances => instances::stop(&ctx, params).await?.into(),
        CvmAction::RebootInstances => instances::reboot(&ctx, params).await?.into(),
        CvmAction::TerminateInstances => instances::terminate(&ctx, params).await?.into(),
        CvmAction::ResetInstancesPassword => password::reset(&ctx, params).await?.into(),
    })
}
