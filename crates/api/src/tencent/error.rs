//! Tencent API 3.0 errors: protocol errors of this dialect, plus the domain's, each mapped
//! to its exact code string by an exhaustive `match`.

use super::cloudaudit::error::{cloudaudit_code, CloudAuditRefusal};
use super::lighthouse::error::{lighthouse_code, LighthouseRefusal};
use super::router::Product;
use crate::common::params::ParamError;
use keyplane_core::instance::InstanceState;
use keyplane_core::{DomainError, NameProblem};

/// Everything a Tencent API 3.0 request can fail with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TcError {
    /// The signature does not match, or the auth material is malformed.
    SignatureFailure(String),
    /// The signed timestamp is outside the accepted window.
    SignatureExpire(String),
    /// No account has this SecretId.
    SecretIdNotFound(String),
    /// A temporary-credential token was sent; this server issues none.
    TokenFailure,
    /// A required parameter is missing.
    MissingParameter(String),
    /// At least one of several optional parameters must be given.
    MissingAtLeastOne(String),
    /// A parameter the action does not take.
    UnknownParameter(String),
    /// A parameter of the wrong type or shape.
    InvalidParameter(String),
    /// The action does not exist in this product and version.
    InvalidAction(String),
    /// The product (service) is unknown.
    NoSuchProduct(String),
    /// The version is unknown for the product.
    NoSuchVersion(String),
    /// The region is not one this server serves.
    UnsupportedRegion(String),
    /// Over the per-account, per-action rate.
    RequestLimitExceeded(String),
    /// The body is larger than accepted.
    RequestSizeLimitExceeded(usize),
    /// A CVM wire rule refused the request.
    Cvm(CvmRefusal),
    /// A Lighthouse wire rule refused the request.
    Lighthouse(LighthouseRefusal),
    /// A CloudAudit wire rule refused the request.
    CloudAudit(CloudAuditRefusal),
    /// A domain rule refused the request.
    Domain(DomainError),
}

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

impl CvmRefusal {
    /// The wire code.
    pub fn code(&self) -> &'static str {
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

    /// The human message.
    pub fn message(&self) -> String {
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
}

impl From<CvmRefusal> for TcError {
    fn from(e: CvmRefusal) -> Self {
        TcError::Cvm(e)
    }
}

impl From<LighthouseRefusal> for TcError {
    fn from(e: LighthouseRefusal) -> Self {
        TcError::Lighthouse(e)
    }
}

impl From<CloudAuditRefusal> for TcError {
    fn from(e: CloudAuditRefusal) -> Self {
        TcError::CloudAudit(e)
    }
}

impl From<DomainError> for TcError {
    fn from(e: DomainError) -> Self {
        TcError::Domain(e)
    }
}

impl From<ParamError> for TcError {
    fn from(e: ParamError) -> Self {
        match e {
            ParamError::Missing(p) => TcError::MissingParameter(p),
            ParamError::Unknown(p) => TcError::UnknownParameter(p),
            ParamError::Invalid { param, reason } => {
                TcError::InvalidParameter(format!("The parameter `{param}` is invalid: {reason}."))
            }
        }
    }
}

impl TcError {
    /// The wire code for `product`.
    pub fn code(&self, product: Product) -> &'static str {
        match self {
            TcError::SignatureFailure(_) => "AuthFailure.SignatureFailure",
            TcError::SignatureExpire(_) => "AuthFailure.SignatureExpire",
            TcError::SecretIdNotFound(_) => "AuthFailure.SecretIdNotFound",
            TcError::TokenFailure => "AuthFailure.TokenFailure",
            TcError::MissingParameter(_) => "MissingParameter",
            TcError::MissingAtLeastOne(_) => match product {
                Product::Cvm => "MissingParameter.AtLeastOne",
                Product::Lighthouse | Product::CloudAudit => "MissingParameter",
            },
            TcError::UnknownParameter(_) => "UnknownParameter",
            TcError::InvalidParameter(_) => "InvalidParameter",
            TcError::InvalidAction(_) => "InvalidAction",
            TcError::NoSuchProduct(_) => "NoSuchProduct",
            TcError::NoSuchVersion(_) => "NoSuchVersion",
            TcError::UnsupportedRegion(_) => "UnsupportedRegion",
            TcError::RequestLimitExceeded(_) => "RequestLimitExceeded",
            TcError::RequestSizeLimitExceeded(_) => "RequestSizeLimitExceeded",
            TcError::Cvm(e) => e.code(),
            TcError::Lighthouse(e) => e.code(),
            TcError::CloudAudit(e) => e.code(),
            TcError::Domain(e) => match product {
                Product::Cvm => cvm_code(e),
                Product::Lighthouse => lighthouse_code(e),
                Product::CloudAudit => cloudaudit_code(e),
            },
        }
    }

    /// The human message.
    pub fn message(&self) -> String {
        match self {
            TcError::SignatureFailure(m) | TcError::SignatureExpire(m) => m.clone(),
            TcError::SecretIdNotFound(id) => format!("The SecretId `{id}` is not found."),
            TcError::TokenFailure => {
                "Temporary credentials (X-TC-Token) are not issued by this server; sign with a permanent SecretId/SecretKey."
                    .into()
            }
            TcError::MissingParameter(p) => {
                format!("The request is missing a required parameter `{p}`.")
            }
            TcError::MissingAtLeastOne(p) => format!("At least one of {p} must be given."),
            TcError::UnknownParameter(p) => format!("The parameter `{p}` is not recognized."),
            TcError::InvalidParameter(m) => m.clone(),
            TcError::InvalidAction(m) | TcError::NoSuchProduct(m) | TcError::NoSuchVersion(m) => {
                m.clone()
            }
            TcError::UnsupportedRegion(r) => format!("The region `{r}` is not supported."),
            TcError::RequestLimitExceeded(a) => format!(
                "Your current request times ({a}) exceed the limit of this API for the account; retry later."
            ),
            TcError::RequestSizeLimitExceeded(n) => {
                format!("The request exceeds the limit of {n} bytes.")
            }
            TcError::Cvm(e) => e.message(),
            TcError::Lighthouse(e) => e.message(),
            TcError::CloudAudit(e) => e.message(),
            TcError::Domain(e) => domain_message(e),
        }
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
        DomainError::InstanceNotFound { .. } => "InvalidInstanceId.NotFound",
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

fn domain_message(e: &DomainError) -> String {
    match e {
        DomainError::KeyPairNameInvalid { name, problem } => match problem {
            NameProblem::Empty => "The key pair name must not be empty.".into(),
            NameProblem::TooShort { min } => {
                format!("The key pair name `{name}` is shorter than {min} characters.")
            }
            NameProblem::TooLong { max } => {
                format!("The key pair name `{name}` is longer than {max} characters.")
            }
            NameProblem::IllegalChar => format!(
                "The key pair name `{name}` may contain only letters, digits and underscores."
            ),
        },
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
pub(crate) mod tests {
    use super::*;

    /// The vendor's codes for `product`: its own list and the common list.
    pub(crate) fn known_codes(product: Product) -> Vec<String> {
        let mut out = Vec::new();
        let own = match product {
            Product::Cvm => include_str!("../../data/tencent_cvm_error_codes.txt"),
            Product::Lighthouse => include_str!("../../data/tencent_lighthouse_error_codes.txt"),
            Product::CloudAudit => include_str!("../../data/tencent_cloudaudit_error_codes.txt"),
        };
        for text in [
            include_str!("../../data/tencent_common_error_codes.txt"),
            own,
        ] {
            out.extend(
                text.lines()
                    .filter(|l| !l.starts_with('#') && !l.is_empty())
                    .map(str::to_string),
            );
        }
        out
    }

    /// One of every domain error (every instance state too).
    pub(crate) fn every_domain_error() -> Vec<DomainError> {
        DomainError::examples()
    }

    /// One of every protocol error.
    pub(crate) fn every_protocol_error() -> Vec<TcError> {
        let s = String::from("x");
        vec![
            TcError::SignatureFailure(s.clone()),
            TcError::SignatureExpire(s.clone()),
            TcError::SecretIdNotFound(s.clone()),
            TcError::TokenFailure,
            TcError::MissingParameter(s.clone()),
            TcError::MissingAtLeastOne(s.clone()),
            TcError::UnknownParameter(s.clone()),
            TcError::InvalidParameter(s.clone()),
            TcError::InvalidAction(s.clone()),
            TcError::NoSuchProduct(s.clone()),
            TcError::NoSuchVersion(s.clone()),
            TcError::UnsupportedRegion(s.clone()),
            TcError::RequestLimitExceeded(s.clone()),
            TcError::RequestSizeLimitExceeded(1),
        ]
    }

    #[test]
    fn every_code_we_emit_is_a_vendor_code() {
        let known = known_codes(Product::Cvm);
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
            .map(TcError::Domain)
            .chain(every_protocol_error())
            .chain(cvm.into_iter().map(TcError::Cvm));
        for e in all {
            let code = e.code(Product::Cvm);
            assert!(
                known.iter().any(|k| k == code),
                "{code} is not a CVM or common code"
            );
            assert!(!e.message().is_empty());
        }
    }

    #[test]
    fn every_cloudaudit_code_is_a_vendor_code() {
        let known = known_codes(Product::CloudAudit);
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
            .map(TcError::Domain)
            .chain(every_protocol_error())
            .chain(own.into_iter().map(TcError::CloudAudit));
        for e in all {
            let code = e.code(Product::CloudAudit);
            assert!(
                known.iter().any(|k| k == code),
                "{code} is not a CloudAudit or common code"
            );
            assert!(!e.message().is_empty());
        }
    }
}
