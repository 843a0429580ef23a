//! CloudAudit 2019-03-19 error codes: the refusals of `LookUpEvents`' parameter rules, and the
//! domain's errors mapped by an exhaustive `match`.

use crate::tencent::error::{ProductCodes, TcError};
use keyplane_core::DomainError;

/// Everything a CloudAudit request can fail with.
pub type CloudAuditError = TcError<CloudAuditRefusal>;

/// Refusals that are rules of CloudAudit's `LookUpEvents`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloudAuditRefusal {
    /// `StartTime` or `EndTime` is missing or not an integer (unix seconds); names which.
    TimeRequired(String),
    /// `StartTime` is after `EndTime`.
    TimeOrder {
        /// StartTime.
        start: i64,
        /// EndTime.
        end: i64,
    },
    /// The range spans more than the 7 days a lookup may.
    OverTime {
        /// Its length in seconds.
        span: i64,
    },
    /// `MaxResults` is not an integer from 1 to 50; what it was.
    MaxResult(String),
    /// An `AttributeKey` that is not one of the documented keys (or none).
    AttributeKey(String),
    /// A value a parameter or an attribute does not take.
    InvalidValue {
        /// The parameter (`LookupAttributes.0.AttributeValue`, `Mode`).
        param: String,
        /// What it takes.
        reason: String,
    },
    /// A `NextToken` this server did not issue for this query; why.
    NextToken(String),
}

impl ProductCodes for CloudAuditRefusal {
    const MISSING_AT_LEAST_ONE: &'static str = "MissingParameter";

    fn code(&self) -> &'static str {
        match self {
            CloudAuditRefusal::TimeRequired(_) => "InvalidParameter.Time",
            CloudAuditRefusal::TimeOrder { .. } => "InvalidParameterValue.Time",
            CloudAuditRefusal::OverTime { .. } => "LimitExceeded.OverTime",
            CloudAuditRefusal::MaxResult(_) => "InvalidParameterValue.MaxResult",
            CloudAuditRefusal::AttributeKey(_) => "InvalidParameterValue.attributeKey",
            CloudAuditRefusal::InvalidValue { .. } => "InvalidParameterValue",
            CloudAuditRefusal::NextToken(_) => "InvalidParameter",
        }
    }

    fn message(&self) -> String {
        match self {
            CloudAuditRefusal::TimeRequired(why) => format!(
                "StartTime and EndTime are required, as integer unix timestamps in seconds: {why}."
            ),
            CloudAuditRefusal::TimeOrder { start, end } => {
                format!("The StartTime ({start}) must not be later than the EndTime ({end}).")
            }
            CloudAuditRefusal::OverTime { span } => format!(
                "A lookup may span at most 7 days (604800 seconds); StartTime to EndTime is {span} seconds."
            ),
            CloudAuditRefusal::MaxResult(given) => {
                format!("MaxResults must be an integer from 1 to 50, not {given}.")
            }
            CloudAuditRefusal::AttributeKey(key) => format!(
                "The AttributeKey `{key}` is not valid; use RequestId, EventName, ActionType, ReadOnly, Username, PrincipalId, ResourceId, ResourceName, ResourceType, AccessKeyId, SourceIPAddress, ApiErrorCode, CamErrorCode, SensitiveAction or Tags."
            ),
            CloudAuditRefusal::InvalidValue { param, reason } => {
                format!("The value of `{param}` is invalid: {reason}.")
            }
            CloudAuditRefusal::NextToken(why) => format!("The NextToken is invalid: {why}."),
        }
    }

    fn domain_code(e: &DomainError) -> &'static str {
        cloudaudit_code(e)
    }
}

/// CloudAudit 2019-03-19 codes for domain errors (a lookup meets only `Internal`; the rest
/// are answered in the error classes CloudAudit lists).
pub fn cloudaudit_code(e: &DomainError) -> &'static str {
    match e {
        DomainError::Internal(_) => "InternalError.SearchError",
        DomainError::InvalidParameterValue { .. }
        | DomainError::TooManyValues { .. }
        | DomainError::DuplicateValue { .. }
        | DomainError::KeyPairIdMalformed { .. }
        | DomainError::KeyPairNameInvalid { .. }
        | DomainError::PublicKeyMalformed { .. }
        | DomainError::InstanceIdMalformed { .. }
        | DomainError::ImageIdMalformed { .. }
        | DomainError::InvalidPassword { .. } => "InvalidParameterValue",
        DomainError::ConflictingParameters { .. }
        | DomainError::UnknownFilter { .. }
        | DomainError::FilterLimitExceeded { .. } => "InvalidParameter",
        DomainError::KeyPairNotFound { .. }
        | DomainError::InstanceNotFound { .. }
        | DomainError::InstanceNotInRegion { .. }
        | DomainError::ImageNotFound { .. } => "ResourceNotFound",
        DomainError::KeyPairNameDuplicate { .. }
        | DomainError::PublicKeyDuplicate { .. }
        | DomainError::KeyPairQuotaExceeded { .. }
        | DomainError::KeyPairInUse { .. }
        | DomainError::InstanceBusy { .. }
        | DomainError::InstanceStateInvalid { .. }
        | DomainError::InstanceNotLinux { .. }
        | DomainError::KeyAlreadyBound { .. }
        | DomainError::KeyNotBound { .. }
        | DomainError::InstanceQuotaExceeded { .. }
        | DomainError::InstanceTypeUnavailable { .. } => "FailedOperation",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tencent::error::tests::{every_domain_error, every_protocol_error, known_codes};

    #[test]
    fn every_cloudaudit_code_is_a_vendor_code() {
        let known = known_codes(include_str!(
            "../../../data/tencent_cloudaudit_error_codes.txt"
        ));
        let s = String::from("x");
        let own = [
            CloudAuditRefusal::TimeRequired(s.clone()),
            CloudAuditRefusal::TimeOrder { start: 2, end: 1 },
            CloudAuditRefusal::OverTime { span: 1 },
            CloudAuditRefusal::MaxResult(s.clone()),
            CloudAuditRefusal::AttributeKey(s.clone()),
            CloudAuditRefusal::InvalidValue {
                param: s.clone(),
                reason: s.clone(),
            },
            CloudAuditRefusal::NextToken(s.clone()),
        ];
        let all = every_domain_error()
            .into_iter()
            .map(CloudAuditError::Domain)
            .chain(every_protocol_error())
            .chain(own.into_iter().map(CloudAuditError::Refusal));
        for e in all {
            let code = e.code();
            assert!(
                known.iter().any(|k| k == code),
                "{code} is not a CloudAudit or common code"
            );
            assert!(!e.message().is_empty());
        }
    }
}
