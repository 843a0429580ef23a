//! Action handlers: thin translators from wire DTOs into domain calls.

pub mod keypairs;

use super::error::TcError;
use keyplane_core::account::Account;
use keyplane_core::Core;

/// What a handler gets: the domain, the authenticated account, and the request's region.
pub struct Ctx<'a> {
    /// The domain service.
    pub core: &'a Core,
    /// The signing account.
    pub account: &'a Account,
    /// Region of the request.
    pub region: &'a str,
}

/// A required optional-typed parameter.
pub fn required<T>(value: Option<T>, name: &str) -> Result<T, TcError> {
    value.ok_or_else(|| TcError::MissingParameter(name.to_string()))
}
