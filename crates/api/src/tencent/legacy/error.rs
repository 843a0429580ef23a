//! Errors of the legacy v2 dialect and their wire form: an integer `code` from Tencent's
//! common error-code table plus a `codeDesc` string, each chosen by an exhaustive `match`.
//!
//! Sources (kept as data in `data/tencent_legacy_error_codes.txt`): the CVM legacy API's
//! common error-code page (cloud.tencent.com/document/api/213/6982: 4000 … 6200) and its
//! reworked twin (`错误码_new`, which names each of those rows with a `codeDesc` such as
//! `InvalidParameter.SignatureFailure`). Module errors carry the CVM module code string as
//! `codeDesc`, under the common code of their kind (4000, 5000, 5100, 6000).

use crate::common::params::ParamError;
use keyplane_core::{DomainError, NameProblem};

/// `code` of a successful answer.
pub const SUCCESS_CODE: i64 = 0;
/// `codeDesc` of a successful answer.
pub const SUCCESS_DESC: &str = "Success";

/// Everything a legacy v2 request can fail with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LegacyError {
    /// The signature does not match, or the auth material is malformed (4100).
    SignatureFailure(String),
    /// No account has this SecretId (4104).
    SecretIdNotFound(String),
    /// A temporary-credential token was sent; this server issues none (4105).
    TokenFailure,
    /// The Nonce was already used with this Timestamp (4500).
    NonceReused(String),
    /// The Timestamp is outside the accepted window (4500).
    TimestampExpired(String),
    /// A required parameter is missing (4000).
    MissingParameter(String),
    /// A parameter the action does not take (4000).
    UnknownParameter(String),
    /// A parameter of the wrong type or shape (4000).
    InvalidParameter(String),
    /// The region is not one this server serves (4000).
    UnsupportedRegion(String),
    /// The action does not exist in this API (6100).
    InvalidAction(String),
    /// A domain rule refused the request.
    Domain(DomainError),
}

impl From<DomainError> for LegacyError {
    fn from(e: DomainError) -> Self {
        LegacyError::Domain(e)
    }
}

impl From<ParamError> for LegacyError {
    fn from(e: ParamError) -> Self {
        match e {
            ParamError::Missing(p) => LegacyError::MissingParameter(p),
            ParamError::Unknown(p) => LegacyError::UnknownParameter(p),
            ParamError::Invalid { param, reason } => LegacyError::InvalidParameter(format!(
                "The parameter `{param}` is invalid: {reason}."
            )),
        }
    }
}

impl LegacyError {
    /// The integer common error code.
    pub fn code(&self) -> i64 {
        match self {
            LegacyError::SignatureFailure(_) => 4100,
            LegacyError::SecretIdNotFound(_) => 4104,
            LegacyError::TokenFailure => 4105,
            LegacyError::NonceReused(_) | LegacyError::TimestampExpired(_) => 4500,
            LegacyError::MissingParameter(_)
            | LegacyError::UnknownParameter(_)
            | LegacyError::InvalidParameter(_)
            | LegacyError::UnsupportedRegion(_) => 4000,
            LegacyError::InvalidAction(_) => 6100,
            LegacyError::Domain(e) => domain_code(e),
        }
    }

    /// The `codeDesc` string.
    pub fn code_desc(&self) -> &'static str {
        match self {
            LegacyError::SignatureFailure(_) => "InvalidParameter.SignatureFailure",
            LegacyError::SecretIdNotFound(_) => "InvalidParameter.SecretIdNotFound",
            LegacyError::TokenFailure => "InvalidRequest.TokenCheckFailed",
            LegacyError::NonceReused(_) | LegacyError::TimestampExpired(_) => {
                "InvalidRequest.ReplayAttack"
            }
            LegacyError::MissingParameter(_)
            | LegacyError::UnknownParameter(_)
            | LegacyError::InvalidParameter(_)
            | LegacyError::UnsupportedRegion(_) => "InvalidParameter",
            LegacyError::InvalidAction(_) => "InvalidAction.NotFound",
            // Why: the legacy pages document no per-module codeDesc for CVM key calls; the
            // resources are CVM API 3.0's own, so their module code strings are reused and a
            // client sees the same reason through either dialect.
            LegacyError::Domain(e) => crate::tencent::cvm::error::cvm_code(e),
        }
    }

    /// The human message.
    pub fn message(&self) -> String {
        match self {
            LegacyError::SignatureFailure(m)
            | LegacyError::NonceReused(m)
            | LegacyError::TimestampExpired(m)
            | LegacyError::InvalidParameter(m)
            | LegacyError::InvalidAction(m) => m.clone(),
            LegacyError::SecretIdNotFound(id) => format!("The SecretId `{id}` does not exist."),
            LegacyError::TokenFailure => {
                "Temporary credentials (Token) are not issued by this server; sign with a permanent SecretId/SecretKey."
                    .into()
            }
            LegacyError::MissingParameter(p) => {
                format!("The request is missing a required parameter `{p}`.")
            }
            LegacyError::UnknownParameter(p) => {
                format!("The parameter `{p}` is not recognized by this action.")
            }
            LegacyError::UnsupportedRegion(r) => format!("The Region `{r}` is not supported."),
            LegacyError::Domain(e) => domain_message(e),
        }
    }
}

/// The common error code under which a domain error travels: 4000 for what the caller sent
/// wrong, 5000 for what does not exist (or belongs to another account), 5100 for an
/// operation the resource's state refuses, 6000 for our own failures.
pub fn domain_code(e: &DomainError) -> i64 {
    match e {
        DomainError::KeyPairIdMalformed { .. }
        | DomainError::KeyPairNameInvalid { .. }
        | DomainError::KeyPairNameDuplicate { .. }
        | DomainError::PublicKeyMalformed { .. }
        | DomainError::PublicKeyDuplicate { .. }
        | DomainError::TooManyValues { .. }
        | DomainError::DuplicateValue { .. }
        | DomainError::InvalidParameterValue { .. }
        | DomainError::ConflictingParameters { .. }
        | DomainError::UnknownFilter { .. }
        | DomainError::FilterLimitExceeded { .. }
        | DomainError::InstanceIdMalformed { .. }
        | DomainError::ImageIdMalformed { .. }
        | DomainError::InvalidPassword { .. } => 4000,
        DomainError::KeyPairNotFound { .. }
        | DomainError::InstanceNotFound { .. }
        | DomainError::InstanceNotInRegion { .. }
        | DomainError::ImageNotFound { .. } => 5000,
        DomainError::KeyPairQuotaExceeded { .. }
        | DomainError::KeyPairInUse { .. }
        | DomainError::InstanceBusy { .. }
        | DomainError::InstanceStateInvalid { .. }
        | DomainError::InstanceNotLinux { .. }
        | DomainError::KeyAlreadyBound { .. }
        | DomainError::KeyNotBound { .. }
        | DomainError::InstanceQuotaExceeded { .. }
        | DomainError::InstanceTypeUnavailable { .. } => 5100,
        DomainError::Internal(_) => 6000,
    }
}

fn domain_message(e: &DomainError) -> String {
    match e {
        DomainError::KeyPairNameInvalid { name, problem } => match problem {
            NameProblem::Empty => "The key name must not be empty.".into(),
            NameProblem::TooShort { min } => {
                format!("The key name `{name}` is shorter than {min} characters.")
            }
            NameProblem::TooLong { max } => {
                format!("The key name `{name}` is longer than {max} characters.")
            }
            NameProblem::IllegalChar => {
                format!("The key name `{name}` may contain only letters, digits and underscores.")
            }
        },
        DomainError::InstanceStateInvalid { id, state } => format!(
            "The instance `{id}` is {}; keys can only be bound to or unbound from a shut-down instance.",
            state.as_str()
        ),
        DomainError::InstanceNotInRegion { id, .. } => {
            domain_message(&DomainError::InstanceNotFound { id: id.clone() })
        }
        DomainError::Internal(_) => "An internal error occurred; retry later.".into(),
        other => {
            let mut s = other.to_string();
            if let Some(first) = s.get(..1) {
                let upper = first.to_uppercase();
                s.replace_range(..1, &upper);
            }
            s.push('.');
            s
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(code, codeDesc)` rows of the data file.
    fn known() -> Vec<(i64, String)> {
        include_str!("../../../data/tencent_legacy_error_codes.txt")
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(|l| {
                let mut cols = l.split('\t');
                let code = cols.next().unwrap().parse().expect("integer code");
                let desc = cols.next().expect("codeDesc column").to_string();
                assert!(cols.next().is_some_and(|m| !m.is_empty()), "meaning: {l}");
                (code, desc)
            })
            .collect()
    }

    /// One value of every variant, with every nested variant that changes the code.
    fn every_error() -> Vec<LegacyError> {
        let s = String::from("x");
        let domain = DomainError::examples();
        let protocol = [
            LegacyError::SignatureFailure(s.clone()),
            LegacyError::SecretIdNotFound(s.clone()),
            LegacyError::TokenFailure,
            LegacyError::NonceReused(s.clone()),
            LegacyError::TimestampExpired(s.clone()),
            LegacyError::MissingParameter(s.clone()),
            LegacyError::UnknownParameter(s.clone()),
            LegacyError::InvalidParameter(s.clone()),
            LegacyError::UnsupportedRegion(s.clone()),
            LegacyError::InvalidAction(s.clone()),
        ];
        domain
            .into_iter()
            .map(LegacyError::Domain)
            .chain(protocol)
            .collect()
    }

    #[test]
    fn every_code_we_emit_is_in_the_vendor_table() {
        let known = known();
        assert!(known.contains(&(SUCCESS_CODE, SUCCESS_DESC.to_string())));
        for e in every_error() {
            let pair = (e.code(), e.code_desc().to_string());
            assert!(
                known.contains(&pair),
                "{pair:?} ({e:?}) is not in the table"
            );
            assert!(!e.message().is_empty());
        }
    }

    #[test]
    fn module_descs_are_cvm_api_3_codes() {
        let v3: Vec<&str> = [
            include_str!("../../../data/tencent_common_error_codes.txt"),
            include_str!("../../../data/tencent_cvm_error_codes.txt"),
        ]
        .into_iter()
        .flat_map(str::lines)
        .filter(|l| !l.starts_with('#'))
        .collect();
        for e in every_error() {
            if let LegacyError::Domain(_) = e {
                assert!(v3.contains(&e.code_desc()), "{}", e.code_desc());
            }
        }
    }

    #[test]
    fn the_common_rows_match_the_vendor_pages() {
        let known = known();
        for (code, desc) in [
            (4000, "InvalidParameter"),
            (4100, "InvalidParameter.SignatureFailure"),
            (4104, "InvalidParameter.SecretIdNotFound"),
            (4105, "InvalidRequest.TokenCheckFailed"),
            (4500, "InvalidRequest.ReplayAttack"),
            (5100, "InternalError.ResourceOpFailed"),
            (6000, "InternalError"),
            (6100, "InvalidAction.NotFound"),
        ] {
            assert!(known.contains(&(code, desc.to_string())), "{code} {desc}");
        }
    }
}
