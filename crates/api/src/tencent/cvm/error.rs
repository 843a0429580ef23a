//! CVM 2017-03-12 errors: the refusals that are rules of the CVM wire contract, and the
//! domain's errors mapped to CVM's codes by an exhaustive `match`.

use crate::tencent::error::{ProductCodes, TcError};
use keyplane_core::instance::InstanceState;
use keyplane_core::{DomainError, NameProblem};

/// Everything a CVM request can fail with.
pub type CvmError = TcError<CvmRefusal>;

/// Refusals that are rules of the CVM wire contract rather than of the domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CvmRefusal {
    /// `DryRun` was set and every check passed.
    DryRun,
    /// The zone is not a zone of the request's region.
    ZoneMismatchRegion {
        /// The zone as given.
        zone: String,
        /// The request's region.
        region: String,
    },
    /// DescribeImages got both `ImageIds` and `Filters`.
    ImageIdsWithFilters,
    /// A documented billing mode the sandbox does not offer.
    ChargeTypeUnsupported(String),
    /// A project other than the default project 0.
    ProjectNotFound(i64),
    /// `ClientToken` longer than 64 characters.
    ClientTokenTooLong(usize),
    /// `InstanceName` longer than 128 characters.
    InstanceNameTooLong(usize),
    /// `HostName` breaks the naming rule.
    HostNameIllegal(String),
    /// Login settings that cannot be combined.
    LoginConflict(String),
    /// `UserData` is not base64.
    UserDataInvalid,
    /// `UserData` decodes to more than 16 KiB.
    UserDataTooLarge(usize),
    /// A launch template id of the wrong shape.
    LaunchTemplateIdMalformed(String),
    /// A launch template that does not exist (none do).
    LaunchTemplateNotFound(String),
    /// `InstanceType` is not shaped like `S5.MEDIUM4`.
    InstanceTypeMalformed(String),
    /// `MinCount` is larger than `InstanceCount`.
    MinCountInvalid {
        /// MinCount.
        min: i64,
        /// InstanceCount.
        count: i64,
    },
    /// A string parameter longer than documented (`UserName`: 64).
    ValueTooLong {
        /// The parameter.
        param: String,
        /// The documented maximum, in characters.
        max: usize,
        /// Its length.
        len: usize,
    },
}

impl ProductCodes for CvmRefusal {
    const MISSING_AT_LEAST_ONE: &'static str = "MissingParameter.AtLeastOne";

    fn code(&self) -> &'static str {
        match self {
            CvmRefusal::DryRun => "DryRunOperation",
            CvmRefusal::ZoneMismatchRegion { .. } => "InvalidZone.MismatchRegion",
            CvmRefusal::ImageIdsWithFilters => {
                "InvalidParameter.InvalidParameterCoexistImageIdsFilters"
            }
            CvmRefusal::ChargeTypeUnsupported(_) => "UnsupportedOperation.InstanceChargeType",
            CvmRefusal::ProjectNotFound(_) => "InvalidProjectId.NotFound",
            CvmRefusal::ClientTokenTooLong(_) => "InvalidClientToken.TooLong",
            CvmRefusal::InstanceNameTooLong(_) => "InvalidInstanceName.TooLong",
            CvmRefusal::HostNameIllegal(_) => "InvalidParameter.HostNameIllegal",
            CvmRefusal::LoginConflict(_) => "InvalidParameter.ParameterConflict",
            CvmRefusal::UserDataInvalid => "InvalidParameterValue.InvalidUserDataFormat",
            CvmRefusal::UserDataTooLarge(_) => "InvalidParameterValue.TooLarge",
            CvmRefusal::LaunchTemplateIdMalformed(_) => {
                "InvalidParameterValue.LaunchTemplateIdMalformed"
            }
            CvmRefusal::LaunchTemplateNotFound(_) => "InvalidParameterValue.LaunchTemplateNotFound",
            CvmRefusal::InstanceTypeMalformed(_) => "InvalidInstanceType.Malformed",
            CvmRefusal::MinCountInvalid { .. } => "InvalidParameterValue.InvalidParameterMinCount",
            CvmRefusal::ValueTooLong { .. } => "InvalidParameterValue.TooLong",
        }
    }

    fn message(&self) -> String {
        match self {
            CvmRefusal::DryRun => {
                "Request validation passed; the request would have succeeded, but the DryRun flag is set."
                    .into()
            }
            CvmRefusal::ZoneMismatchRegion { zone, region } => {
                format!("The zone `{zone}` does not exist in the region `{region}`.")
            }
            CvmRefusal::ImageIdsWithFilters => {
                "The parameters `ImageIds` and `Filters` cannot be given together.".into()
            }
            CvmRefusal::ChargeTypeUnsupported(t) => format!(
                "The instance charge type `{t}` is not supported here; use POSTPAID_BY_HOUR."
            ),
            CvmRefusal::ProjectNotFound(p) => {
                format!("The project `{p}` does not exist; only the default project 0 does.")
            }
            CvmRefusal::ClientTokenTooLong(n) => {
                format!("The ClientToken is {n} characters long; at most 64 are allowed.")
            }
            CvmRefusal::InstanceNameTooLong(n) => {
                format!("The InstanceName is {n} characters long; at most 128 are allowed.")
            }
            CvmRefusal::HostNameIllegal(why) => format!("The HostName is invalid: {why}."),
            CvmRefusal::LoginConflict(why) => format!("The LoginSettings conflict: {why}."),
            CvmRefusal::UserDataInvalid => "The UserData must be base64-encoded.".into(),
            CvmRefusal::UserDataTooLarge(n) => {
                format!("The UserData decodes to {n} bytes; at most 16384 are allowed.")
            }
            CvmRefusal::LaunchTemplateIdMalformed(id) => format!(
                "The launch template id `{id}` is malformed; expected `lt-` and 8 lower-case letters or digits."
            ),
            CvmRefusal::LaunchTemplateNotFound(id) => {
                format!("The launch template `{id}` does not exist.")
            }
            CvmRefusal::InstanceTypeMalformed(t) => format!(
                "The instance type `{t}` is malformed; expected a family and a size such as `S5.MEDIUM4`."
            ),
            CvmRefusal::MinCountInvalid { min, count } => {
                format!("MinCount ({min}) must not be larger than InstanceCount ({count}).")
            }
            CvmRefusal::ValueTooLong { param, max, len } => {
                format!("The {param} is {len} characters long; at most {max} are allowed.")
            }
        }
    }

    fn domain_message(e: &DomainError) -> String {
        match e {
            DomainError::InstanceNotInRegion { id, .. } => {
                crate::tencent::error::domain_message(&DomainError::InstanceNotFound {
                    id: id.clone(),
                })
            }
            other => crate::tencent::error::domain_message(other),
        }
    }

    fn domain_code(e: &DomainError) -> &'static str {
        cvm_code(e)
    }
}

/// CVM 2017-03-12 codes for domain errors.
pub fn cvm_code(e: &DomainError) -> &'static str {
    match e {
        DomainError::KeyPairIdMalformed { .. } => "InvalidKeyPairId.Malformed",
        DomainError::KeyPairNotFound { .. } => "InvalidKeyPairId.NotFound",
        DomainError::KeyPairNameInvalid { problem, .. } => match problem {
            NameProblem::Empty | NameProblem::TooShort { .. } => "InvalidKeyPairNameEmpty",
            NameProblem::TooLong { .. } => "InvalidKeyPairNameTooLong",
            NameProblem::IllegalChar => "InvalidKeyPairNameIncludeIllegalChar",
        },
        DomainError::KeyPairNameDuplicate { .. } => "InvalidKeyPairName.Duplicate",
        DomainError::KeyPairQuotaExceeded { .. } => "InvalidKeyPair.LimitExceeded",
        DomainError::PublicKeyMalformed { .. } => "InvalidPublicKey.Malformed",
        DomainError::PublicKeyDuplicate { .. } => "InvalidPublicKey.Duplicate",
        DomainError::KeyPairInUse { .. } => "ResourceInUse",
        DomainError::TooManyValues { .. } => "InvalidParameterValue.LimitExceeded",
        DomainError::DuplicateValue { .. } => "InvalidParameterValue.Duplicate",
        DomainError::InvalidParameterValue { .. } => "InvalidParameterValue",
        DomainError::ConflictingParameters { .. } => "InvalidParameterConflict",
        DomainError::UnknownFilter { .. } => "InvalidFilter",
        DomainError::FilterLimitExceeded { .. } => "InvalidFilterValue.LimitExceeded",
        DomainError::InstanceIdMalformed { .. } => "InvalidInstanceId.Malformed",
        // Instances live in a region: one of another region is not found from this one.
        DomainError::InstanceNotFound { .. } | DomainError::InstanceNotInRegion { .. } => {
            "InvalidInstanceId.NotFound"
        }
        DomainError::InstanceBusy { .. } => "OperationDenied.InstanceOperationInProgress",
        DomainError::InstanceStateInvalid { state, .. } => match state {
            InstanceState::Pending => "UnsupportedOperation.InstanceStatePending",
            InstanceState::LaunchFailed => "UnsupportedOperation.InstanceStateLaunchFailed",
            InstanceState::Running => "UnsupportedOperation.InstanceStateRunning",
            InstanceState::Stopped => "UnsupportedOperation.InstanceStateStopped",
            InstanceState::Starting => "UnsupportedOperation.InstanceStateStarting",
            InstanceState::Stopping => "UnsupportedOperation.InstanceStateStopping",
            InstanceState::Rebooting => "UnsupportedOperation.InstanceStateRebooting",
            InstanceState::Terminating => "UnsupportedOperation.InstanceStateTerminating",
        },
        DomainError::InstanceNotLinux { .. } => "UnsupportedOperation.KeyPairUnsupportedWindows",
        // Why: CVM replaces bound keys instead of refusing a repeat, and ignores nothing it
        // cannot find; these two only arise from Lighthouse's stricter rules.
        DomainError::KeyAlreadyBound { .. } | DomainError::KeyNotBound { .. } => {
            "UnsupportedOperation"
        }
        DomainError::ImageIdMalformed { .. } => "InvalidImageId.Malformed",
        DomainError::ImageNotFound { .. } => "InvalidImageId.NotFound",
        DomainError::InvalidPassword { .. } => "InvalidPassword",
        DomainError::InstanceQuotaExceeded { .. } => "LimitExceeded.InstanceQuota",
        DomainError::InstanceTypeUnavailable { .. } => "ResourceInsufficient.SpecifiedInstanceType",
        DomainError::Internal(_) => "InternalError",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tencent::error::tests::{every_domain_error, every_protocol_error, known_codes};

    #[test]
    fn every_code_we_emit_is_a_vendor_code() {
        let known = known_codes(include_str!("../../../data/tencent_cvm_error_codes.txt"));
        let s = String::from("x");
        let cvm = [
            CvmRefusal::DryRun,
            CvmRefusal::ZoneMismatchRegion {
                zone: s.clone(),
                region: s.clone(),
            },
            CvmRefusal::ImageIdsWithFilters,
            CvmRefusal::ChargeTypeUnsupported(s.clone()),
            CvmRefusal::ProjectNotFound(1),
            CvmRefusal::ClientTokenTooLong(65),
            CvmRefusal::InstanceNameTooLong(129),
            CvmRefusal::HostNameIllegal(s.clone()),
            CvmRefusal::LoginConflict(s.clone()),
            CvmRefusal::UserDataInvalid,
            CvmRefusal::UserDataTooLarge(1),
            CvmRefusal::LaunchTemplateIdMalformed(s.clone()),
            CvmRefusal::LaunchTemplateNotFound(s.clone()),
            CvmRefusal::InstanceTypeMalformed(s.clone()),
            CvmRefusal::MinCountInvalid { min: 2, count: 1 },
            CvmRefusal::ValueTooLong {
                param: s.clone(),
                max: 64,
                len: 65,
            },
        ];
        let all = every_domain_error()
            .into_iter()
            .map(CvmError::Domain)
            .chain(every_protocol_error())
            .chain(cvm.into_iter().map(CvmError::Refusal));
        for e in all {
            let code = e.code();
            assert!(
                known.iter().any(|k| k == code),
                "{code} is not a CVM or common code"
            );
            assert!(!e.message().is_empty());
        }
    }
}
