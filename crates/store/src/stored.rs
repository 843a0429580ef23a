//! Reading stored values back, the same on both back ends: a value this version does not know
//! is a [`StoreError::Backend`] naming it, never a default.

use keyplane_core::keypair::Namespace;
use keyplane_core::store::StoreError;

/// The error for a stored `what` whose value `value` this version cannot read.
pub(crate) fn invalid(what: &str, value: &str) -> StoreError {
    StoreError::Backend(format!("stored {what} is invalid: {value:?}"))
}

/// The namespace stored as `value`.
pub(crate) fn namespace(value: &str) -> Result<Namespace, StoreError> {
    Namespace::parse(value).ok_or_else(|| invalid("namespace", value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_namespaces_read_back_and_unknown_ones_are_named() {
        for ns in [Namespace::Cvm, Namespace::Lighthouse, Namespace::Ecs] {
            assert_eq!(namespace(ns.as_str()), Ok(ns));
        }
        assert_eq!(
            namespace("cvm2"),
            Err(StoreError::Backend(
                "stored namespace is invalid: \"cvm2\"".into()
            ))
        );
        assert!(namespace("").is_err());
    }
}
