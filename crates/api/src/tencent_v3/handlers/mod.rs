//! Action handlers: thin translators from wire DTOs into domain calls.

pub mod bind;
pub mod images;
pub mod instances;
pub mod keypairs;
pub mod password;
pub mod run;

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
    /// Who sent the request and how, with its RequestId (recorded on the operations it
    /// starts and in the audit trail).
    pub req: &'a keyplane_core::RequestMeta,
}

/// A required optional-typed parameter.
pub fn required<T>(value: Option<T>, name: &str) -> Result<T, TcError> {
    value.ok_or_else(|| TcError::MissingParameter(name.to_string()))
}

/// `InvalidParameterValue` for `param`.
pub fn invalid(param: &str, reason: impl Into<String>) -> TcError {
    TcError::Domain(keyplane_core::DomainError::InvalidParameterValue {
        param: param.into(),
        reason: reason.into(),
    })
}

/// Offset (default 0) and Limit (default 20, 1..=100) of a Describe call.
pub fn page(offset: Option<i64>, limit: Option<i64>) -> Result<(usize, usize), TcError> {
    let offset = offset.unwrap_or(0);
    if offset < 0 {
        return Err(invalid("Offset", "must not be negative"));
    }
    let limit = limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(invalid("Limit", "must be between 1 and 100"));
    }
    Ok((offset as usize, limit as usize))
}

/// At most 10 filters of at most 5 values each, none without values.
pub fn check_filters(filters: &[super::dto::Filter]) -> Result<(), TcError> {
    use keyplane_core::DomainError;
    if filters.len() > 10 {
        return Err(TcError::Domain(DomainError::FilterLimitExceeded {
            reason: format!("{} filters given; at most 10", filters.len()),
        }));
    }
    for f in filters {
        if f.values.is_empty() {
            return Err(invalid(
                &format!("Filters.{}.Values", f.name),
                "must not be empty",
            ));
        }
        if f.values.len() > 5 {
            return Err(TcError::Domain(DomainError::FilterLimitExceeded {
                reason: format!(
                    "filter `{}` has {} values; at most 5",
                    f.name,
                    f.values.len()
                ),
            }));
        }
    }
    Ok(())
}

/// A required list parameter that must not be empty.
pub fn non_empty<T>(list: Vec<T>, name: &str) -> Result<Vec<T>, TcError> {
    if list.is_empty() {
        return Err(TcError::MissingParameter(name.to_string()));
    }
    Ok(list)
}
