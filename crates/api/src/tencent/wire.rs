//! What the Tencent API 3.0 products share on the wire: the `Filter` and `Tag` structures,
//! the service's time format, and the checks every product answers alike (each in its own
//! error type): action, region, rate, parameters.

use super::error::TcError;
use super::router::{Product, REGIONS};
use crate::common::server::AppState;
use keyplane_core::account::Account;
use keyplane_core::DomainError;
use serde::{Deserialize, Serialize};

/// `Filter`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct Filter {
    /// Filter name.
    pub name: String,
    /// Accepted values.
    pub values: Vec<String>,
}

/// `Tag`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct Tag {
    /// Tag key.
    pub key: String,
    /// Tag value.
    pub value: String,
}

/// ISO 8601 UTC with seconds, `Z`-terminated, as the service formats times.
pub fn iso8601(ts: i64) -> String {
    crate::common::times::TimeFormat::ISO_SECONDS.format(ts)
}

/// `InvalidAction`: `action` is none of `product`'s.
pub fn unknown_action<R>(product: Product, action: &str) -> TcError<R> {
    TcError::InvalidAction(format!(
        "The action `{action}` does not exist in {} {}.",
        product.service(),
        product.version()
    ))
}

/// The request's region must be one served here, and given unless `optional`.
pub fn check_region<R>(region: Option<&str>, optional: bool) -> Result<(), TcError<R>> {
    match region {
        None if !optional => Err(TcError::MissingParameter("Region".into())),
        Some(r) if !REGIONS.contains(&r) => Err(TcError::UnsupportedRegion(r.into())),
        _ => Ok(()),
    }
}

/// The account's rate for `product`'s `action` (`RequestLimitExceeded` past it).
pub fn check_rate<R>(
    state: &AppState,
    account: &Account,
    product: Product,
    action: &str,
) -> Result<(), TcError<R>> {
    let key = format!("{}.{action}", product.service());
    if state.limiter.check(&account.id, &key) {
        Ok(())
    } else {
        Err(TcError::RequestLimitExceeded(action.into()))
    }
}

/// A required optional-typed parameter.
pub fn required<T, R>(value: Option<T>, name: &str) -> Result<T, TcError<R>> {
    value.ok_or_else(|| TcError::MissingParameter(name.to_string()))
}

/// `InvalidParameterValue` for `param`.
pub fn invalid<R>(param: &str, reason: impl Into<String>) -> TcError<R> {
    TcError::Domain(DomainError::InvalidParameterValue {
        param: param.into(),
        reason: reason.into(),
    })
}

/// Offset (default 0) and Limit (default 20, 1..=100) of a Describe call.
pub fn page<R>(offset: Option<i64>, limit: Option<i64>) -> Result<(usize, usize), TcError<R>> {
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

/// A required list parameter that must not be empty.
pub fn non_empty<T, R>(list: Vec<T>, name: &str) -> Result<Vec<T>, TcError<R>> {
    if list.is_empty() {
        return Err(TcError::MissingParameter(name.to_string()));
    }
    Ok(list)
}

/// At most 10 filters of at most `max_values` values each, none without values.
pub fn check_filters<R>(filters: &[Filter], max_values: usize) -> Result<(), TcError<R>> {
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
        if f.values.len() > max_values {
            return Err(TcError::Domain(DomainError::FilterLimitExceeded {
                reason: format!(
                    "filter `{}` has {} values; at most {max_values}",
                    f.name,
                    f.values.len()
                ),
            }));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_times_like_the_service() {
        assert_eq!(super::iso8601(1704067200), "2024-01-01T00:00:00Z");
    }
}
