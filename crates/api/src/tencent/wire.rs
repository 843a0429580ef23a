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

/// `ConflictingParameters`: `first` and `second` cannot be given together.
pub fn conflict<R>(first: &str, second: &str) -> TcError<R> {
    TcError::Domain(DomainError::ConflictingParameters {
        first: first.into(),
        second: second.into(),
    })
}

/// The ids a Describe call names, or its filters (at most one of them not empty).
pub type IdsOrFilters = (Option<Vec<String>>, Vec<Filter>);

/// The ids (named `ids_param`) or the filters of a Describe call: an empty list counts as
/// none, and not both may be given.
pub fn ids_or_filters<R>(
    ids: Option<Vec<String>>,
    ids_param: &str,
    filters: Option<Vec<Filter>>,
) -> Result<IdsOrFilters, TcError<R>> {
    let ids = ids.filter(|v| !v.is_empty());
    let filters = filters.filter(|v| !v.is_empty());
    if ids.is_some() && filters.is_some() {
        return Err(conflict(ids_param, "Filters"));
    }
    Ok((ids, filters.unwrap_or_default()))
}

/// What a Describe call selects: ids or filters, and the page.
#[derive(Debug)]
pub struct Selection {
    /// Only these (checked).
    pub ids: Option<Vec<String>>,
    /// Filters (checked for their count and values, not their names).
    pub filters: Vec<Filter>,
    /// Offset.
    pub offset: usize,
    /// Limit.
    pub limit: usize,
}

/// The selection of a Describe call, checked in the services' order: ids or filters
/// ([`ids_or_filters`]), the ids (`check_ids`), the filters (at most `max_values` values
/// each, [`check_filters`]), then the page ([`page`]).
pub fn selection<R>(
    ids: Option<Vec<String>>,
    ids_param: &str,
    filters: Option<Vec<Filter>>,
    max_values: usize,
    (offset, limit): (Option<i64>, Option<i64>),
    check_ids: impl FnOnce(&[String]) -> Result<(), DomainError>,
) -> Result<Selection, TcError<R>> {
    let (ids, filters) = ids_or_filters(ids, ids_param, filters)?;
    if let Some(ids) = &ids {
        check_ids(ids)?;
    }
    check_filters(&filters, max_values)?;
    let (offset, limit) = page(offset, limit)?;
    Ok(Selection {
        ids,
        filters,
        offset,
        limit,
    })
}

/// At most 10 filters.
pub fn check_filter_count<R>(filters: &[Filter]) -> Result<(), TcError<R>> {
    if filters.len() > 10 {
        return Err(TcError::Domain(DomainError::FilterLimitExceeded {
            reason: format!("{} filters given; at most 10", filters.len()),
        }));
    }
    Ok(())
}

/// A filter has values, at most `max_values` of them.
pub fn check_filter<R>(f: &Filter, max_values: usize) -> Result<(), TcError<R>> {
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
    Ok(())
}

/// At most 10 filters of at most `max_values` values each, none without values.
pub fn check_filters<R>(filters: &[Filter], max_values: usize) -> Result<(), TcError<R>> {
    check_filter_count(filters)?;
    filters.iter().try_for_each(|f| check_filter(f, max_values))
}

/// The items that `keep` keeps, then the page of them, with their count before paging.
/// `keep` sees every item, so that an unknown filter name is refused even after a miss.
pub fn filter_page<T, E>(
    items: impl IntoIterator<Item = T>,
    offset: usize,
    limit: usize,
    mut keep: impl FnMut(&T) -> Result<bool, E>,
) -> Result<(usize, Vec<T>), E> {
    let mut matching = Vec::new();
    for item in items {
        if keep(&item)? {
            matching.push(item);
        }
    }
    let total = matching.len();
    let page = matching.into_iter().skip(offset).take(limit).collect();
    Ok((total, page))
}

/// Whether a stop is hard, from `StopType`: `HARD`; `SOFT` and `SOFT_FIRST` (the default)
/// are soft.
pub fn hard_stop<R>(stop_type: Option<&str>) -> Result<bool, TcError<R>> {
    // Why: SOFT and SOFT_FIRST are one operation here: the sandbox's soft stop ends with a
    // kill once its grace period is over, which is SOFT_FIRST's "soft, then hard".
    match stop_type {
        None | Some("SOFT") | Some("SOFT_FIRST") => Ok(false),
        Some("HARD") => Ok(true),
        Some(other) => Err(invalid(
            "StopType",
            format!("`{other}` is not one of SOFT, HARD, SOFT_FIRST"),
        )),
    }
}

/// Whether `zone` is `<region>-<digit>` of `region` (each product refuses another with its
/// own code).
pub fn zone_of_region(zone: &str, region: &str) -> bool {
    // Why: regions have zones -1 up to -8 today; any single digit 1-9 is accepted rather
    // than keeping a per-region zone list.
    zone.strip_prefix(region)
        .and_then(|rest| rest.strip_prefix('-'))
        .is_some_and(|n| n.len() == 1 && matches!(n.as_bytes()[0], b'1'..=b'9'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tencent::error::Unrouted;

    type E = TcError;

    #[test]
    fn formats_times_like_the_service() {
        assert_eq!(iso8601(1704067200), "2024-01-01T00:00:00Z");
    }

    #[test]
    fn zones_belong_to_the_region() {
        assert!(zone_of_region("ap-guangzhou-3", "ap-guangzhou"));
        for bad in [
            "ap-beijing-3",
            "ap-guangzhou",
            "ap-guangzhou-0",
            "ap-guangzhou-33",
        ] {
            assert!(!zone_of_region(bad, "ap-guangzhou"), "{bad}");
        }
    }

    #[test]
    fn stop_types() {
        assert!(!hard_stop::<Unrouted>(None).unwrap());
        assert!(!hard_stop::<Unrouted>(Some("SOFT_FIRST")).unwrap());
        assert!(hard_stop::<Unrouted>(Some("HARD")).unwrap());
        assert!(hard_stop::<Unrouted>(Some("hard")).is_err());
    }

    #[test]
    fn a_selection_is_ids_or_filters_then_the_page() {
        let filter = |n: usize| Filter {
            name: "zone".into(),
            values: vec!["v".into(); n],
        };
        let ok = |_: &[String]| Ok(());
        let ids = Some(vec!["ins-1".to_string()]);
        let conflicting: Result<Selection, E> = selection(
            ids.clone(),
            "InstanceIds",
            Some(vec![filter(1)]),
            5,
            (None, None),
            ok,
        );
        assert!(matches!(
            conflicting,
            Err(TcError::Domain(DomainError::ConflictingParameters { .. }))
        ));
        // Empty lists count as none.
        let s: Selection = selection::<Unrouted>(
            Some(vec![]),
            "InstanceIds",
            Some(vec![]),
            5,
            (Some(3), None),
            ok,
        )
        .unwrap();
        assert!(s.ids.is_none() && s.filters.is_empty());
        assert_eq!((s.offset, s.limit), (3, 20));
        // Filter values are checked before the page.
        let both_bad: Result<Selection, E> = selection(
            None,
            "InstanceIds",
            Some(vec![filter(6)]),
            5,
            (Some(-1), None),
            ok,
        );
        assert!(matches!(
            both_bad,
            Err(TcError::Domain(DomainError::FilterLimitExceeded { .. }))
        ));
        let refused = |_: &[String]| Err(DomainError::UnknownFilter { name: "x".into() });
        assert!(selection::<Unrouted>(ids, "InstanceIds", None, 5, (None, None), refused).is_err());
    }
}
