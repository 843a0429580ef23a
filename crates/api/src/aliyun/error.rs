//! ECS and ActionTrail errors: the gateway's protocol errors, ECS and ActionTrail wire
//! refusals and the domain's, each mapped by an exhaustive `match` to its exact code string and
//! the HTTP status the official clients act on (both Alibaba SDKs raise only on a non-2xx
//! status).

use super::actiontrail::error::ActionTrailRefusal;
use crate::common::params::ParamError;
use keyplane_core::{DomainError, NameProblem};

/// Everything an ECS request can fail with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AliError {
    /// The signature material is missing or malformed.
    IncompleteSignature(String),
    /// The signature does not match; carries the server's string to sign (no secret in it), which
    /// `aliyun-python-sdk-core` compares with its own to say `InvalidAccessKeySecret`.
    SignatureDoesNotMatch(String),
    /// The SignatureNonce was used before.
    SignatureNonceUsed(String),
    /// The signed time is outside the accepted window.
    TimestampExpired(String),
    /// The signed time is not `yyyy-MM-ddTHH:mm:ssZ`.
    TimestampFormat(String),
    /// No account has this AccessKeyId.
    AccessKeyNotFound(String),
    /// An STS security token was sent; this server issues none.
    SecurityTokenRefused,
    /// A required parameter is missing.
    MissingParameter(String),
    /// A parameter of the wrong type, shape or value (the message says which).
    InvalidParameter(String),
    /// The action does not exist in ECS 2014-05-26.
    InvalidAction(String),
    /// A version other than 2014-05-26.
    InvalidVersion(String),
    /// A region this server does not serve.
    InvalidRegion(String),
    /// Over the per-account, per-action rate.
    Throttling(String),
    /// An ECS wire rule refused the request.
    Ecs(EcsRefusal),
    /// An ActionTrail wire rule refused the request.
    ActionTrail(ActionTrailRefusal),
    /// A domain rule refused the request.
    Domain(DomainError),
}

/// Refusals that are rules of the ECS wire contract rather than of the domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EcsRefusal {
    /// `DryRun=true` and every check passed.
    DryRun,
    /// AttachKeyPair/DetachKeyPair `InstanceIds` is not a JSON array of 1 to 50 distinct ids.
    BindInstanceIds(String),
    /// DescribeInstances `InstanceIds` is not a JSON array of at most 100 ids.
    DescribeInstanceIds(String),
    /// DeleteKeyPairs `KeyPairNames` is not a JSON array of 1 to 100 names.
    KeyPairNames(String),
    /// DeleteKeyPairs names a key pair that does not exist.
    KeyPairsNotFound(String),
    /// The zone is not a zone of the region.
    ZoneNotFound(String),
    /// The instance type is not shaped like `ecs.g7.large`.
    InstanceType(String),
    /// `UserData` is not base64.
    UserDataFormat,
    /// `UserData` decodes to more than 32 KiB.
    UserDataSize(usize),
    /// The instance name breaks the naming rule.
    InstanceName(String),
    /// The host name breaks the naming rule.
    HostName(String),
    /// The description breaks the rule.
    Description(String),
    /// A `Status` filter that is not an ECS status.
    Status(String),
    /// A tag key breaks the rule.
    TagKey(String),
    /// A tag value breaks the rule.
    TagValue(String),
    /// The same tag key twice.
    TagKeyDuplicate(String),
    /// More than 20 tags.
    TagCount(usize),
    /// A billing method the sandbox does not offer.
    ChargeType(String),
    /// A documented ModifyInstanceAttribute attribute this server does not change.
    AttributeUnsupported(String),
}

impl EcsRefusal {
    /// The wire code and HTTP status.
    pub fn code(&self) -> (&'static str, u16) {
        match self {
            EcsRefusal::DryRun => ("DryRunOperation", 400),
            EcsRefusal::UserDataFormat => ("InvalidUserData.Base64FormatInvalid", 400),
            EcsRefusal::UserDataSize(_) => ("InvalidUserData.SizeExceeded", 400),
            // The code seed 004 documents for an invalid InstanceIds of these two actions.
            EcsRefusal::BindInstanceIds(_) => ("DependencyViolation.IoOptimize", 400),
            EcsRefusal::DescribeInstanceIds(_) => ("InvalidInstanceIds.Malformed", 400),
            EcsRefusal::KeyPairNames(_) => ("InvalidKeyPairNames.ValueNotSupported", 400),
            EcsRefusal::KeyPairsNotFound(_) => ("InvalidKeyPair.NotFound", 404),
            EcsRefusal::ZoneNotFound(_) => ("InvalidZoneId.NotFound", 404),
            EcsRefusal::InstanceType(_) => ("InvalidInstanceType.ValueNotSupported", 400),
            EcsRefusal::InstanceName(_) => ("InvalidInstanceName.Malformed", 400),
            EcsRefusal::HostName(_) => ("InvalidHostName.Malformed", 400),
            EcsRefusal::Description(_) => ("InvalidDescription.Malformed", 400),
            EcsRefusal::Status(_) => ("InvalidStatus.NotFound", 404),
            EcsRefusal::TagKey(_) => ("InvalidTagKey.Malformed", 400),
            EcsRefusal::TagValue(_) => ("InvalidTagValue.Malformed", 400),
            EcsRefusal::TagKeyDuplicate(_) => ("Duplicate.TagKey", 400),
            EcsRefusal::TagCount(_) => ("InvalidTagCount", 400),
            EcsRefusal::ChargeType(_) => ("InvalidInstanceChargeType.NotFound", 404),
            EcsRefusal::AttributeUnsupported(_) => ("InvalidParameter", 400),
        }
    }

    /// The human message.
    pub fn message(&self) -> String {
        match self {
            EcsRefusal::DryRun => "Request validation has been passed with DryRun flag set.".into(),
            EcsRefusal::UserDataFormat => {
                "The specified parameter UserData is not valid Base64 encoded.".into()
            }
            EcsRefusal::UserDataSize(n) => format!(
                "The specified parameter UserData exceeds the size: {n} bytes before encoding, 32768 at most."
            ),
            EcsRefusal::BindInstanceIds(why) | EcsRefusal::DescribeInstanceIds(why) => {
                format!("The specified parameter InstanceIds is not valid: {why}.")
            }
            EcsRefusal::KeyPairNames(why) => {
                format!("The specified parameter \"KeyPairNames\" is not valid: {why}.")
            }
            EcsRefusal::KeyPairsNotFound(name) => {
                format!("The specified KeyPairName `{name}` does not exist.")
            }
            EcsRefusal::ZoneNotFound(z) => format!("The specified zoneId `{z}` does not exist."),
            EcsRefusal::InstanceType(t) => format!(
                "The instancetype `{t}` is not valid; use a type such as ecs.g7.large."
            ),
            EcsRefusal::InstanceName(why) => {
                format!("The specified parameter \"InstanceName\" is not valid: {why}.")
            }
            EcsRefusal::HostName(why) => {
                format!("The specified parameter HostName is not valid: {why}.")
            }
            EcsRefusal::Description(why) => {
                format!("The specified parameter \"Description\" is not valid: {why}.")
            }
            EcsRefusal::Status(s) => format!("The specified Status `{s}` is not found."),
            EcsRefusal::TagKey(k) => format!("The specified Tag.n.Key `{k}` is not valid."),
            EcsRefusal::TagValue(v) => format!("The specified Tag.n.Value `{v}` is not valid."),
            EcsRefusal::TagKeyDuplicate(k) => {
                format!("The Tag.N.Key contain duplicate key `{k}`.")
            }
            EcsRefusal::TagCount(n) => {
                format!("The specified tags are beyond the permitted range: {n} given, at most 20.")
            }
            EcsRefusal::ChargeType(t) => format!(
                "The InstanceChargeType `{t}` does not exist in our records; only PostPaid is offered."
            ),
            EcsRefusal::AttributeUnsupported(p) => format!(
                "The specified parameter \"{p}\" cannot be changed on this server; ModifyInstanceAttribute changes only Password and InstanceName here."
            ),
        }
    }
}

impl From<EcsRefusal> for AliError {
    fn from(e: EcsRefusal) -> Self {
        AliError::Ecs(e)
    }
}

impl From<ActionTrailRefusal> for AliError {
    fn from(e: ActionTrailRefusal) -> Self {
        AliError::ActionTrail(e)
    }
}

impl From<DomainError> for AliError {
    fn from(e: DomainError) -> Self {
        AliError::Domain(e)
    }
}

impl From<ParamError> for AliError {
    fn from(e: ParamError) -> Self {
        match e {
            ParamError::Missing(p) => AliError::MissingParameter(p),
            // Unknown parameters are dropped before decoding; this only names a bad structure.
            ParamError::Unknown(p) => {
                AliError::InvalidParameter(format!("The parameter `{p}` is not valid."))
            }
            ParamError::Invalid { param, reason } => AliError::InvalidParameter(format!(
                "The specified parameter \"{param}\" is not valid: {reason}."
            )),
        }
    }
}

impl AliError {
    /// The wire code and HTTP status.
    pub fn code(&self) -> (&'static str, u16) {
        match self {
            AliError::IncompleteSignature(_) => ("IncompleteSignature", 400),
            AliError::SignatureDoesNotMatch(_) => ("SignatureDoesNotMatch", 400),
            AliError::SignatureNonceUsed(_) => ("SignatureNonceUsed", 400),
            AliError::TimestampExpired(_) => ("InvalidTimeStamp.Expired", 400),
            AliError::TimestampFormat(_) => ("InvalidTimeStamp.Format", 400),
            AliError::AccessKeyNotFound(_) => ("InvalidAccessKeyId.NotFound", 404),
            AliError::SecurityTokenRefused => ("InvalidSecurityToken.MismatchWithAccessKey", 400),
            AliError::MissingParameter(_) => ("MissingParameter", 400),
            AliError::InvalidParameter(_) => ("InvalidParameter", 400),
            AliError::InvalidAction(_) => ("InvalidAction.NotFound", 404),
            AliError::InvalidVersion(_) => ("InvalidVersion", 400),
            AliError::InvalidRegion(_) => ("InvalidRegionId.NotFound", 404),
            AliError::Throttling(_) => ("Throttling.User", 400),
            AliError::Ecs(e) => e.code(),
            AliError::ActionTrail(e) => e.code(),
            AliError::Domain(e) => domain_code(e),
        }
    }

    /// The human message.
    pub fn message(&self) -> String {
        match self {
            AliError::IncompleteSignature(m)
            | AliError::TimestampExpired(m)
            | AliError::TimestampFormat(m)
            | AliError::InvalidParameter(m)
            | AliError::InvalidVersion(m) => m.clone(),
            AliError::SignatureDoesNotMatch(sts) => format!(
                "Specified signature is not matched with our calculation. server string to sign is:{sts}"
            ),
            AliError::SignatureNonceUsed(n) => {
                format!("Specified signature nonce was used already: {n}.")
            }
            AliError::AccessKeyNotFound(id) => format!("Specified access key `{id}` is not found."),
            AliError::SecurityTokenRefused => {
                "The security token does not match the AccessKeyId: this server issues no STS tokens; sign with a permanent AccessKey pair."
                    .into()
            }
            AliError::MissingParameter(p) => format!(
                "The input parameter \"{p}\" that is mandatory for processing this request is not supplied."
            ),
            AliError::InvalidAction(a) => format!(
                "Specified api `{a}` is not found, please check your url and method."
            ),
            AliError::InvalidRegion(r) => format!("The specified RegionId `{r}` does not exist."),
            AliError::Throttling(a) => {
                format!("Request was denied due to user flow control ({a}); retry later.")
            }
            AliError::Ecs(e) => e.message(),
            AliError::ActionTrail(e) => e.message(),
            AliError::Domain(e) => domain_message(e),
        }
    }
}

/// An instance's state as ECS reports it, and what lies behind it where ECS has no word.
fn status_words(state: keyplane_core::instance::InstanceState) -> String {
    use keyplane_core::instance::InstanceState as S;
    match state {
        S::LaunchFailed => "Stopped (its launch failed)".into(),
        S::Pending => "Pending (still being created)".into(),
        S::Running | S::Stopped | S::Starting | S::Stopping | S::Rebooting | S::Terminating => {
            super::ecs::dto::status_name(state).into()
        }
    }
}

/// ECS codes and statuses for domain errors.
pub fn domain_code(e: &DomainError) -> (&'static str, u16) {
    match e {
        // ECS names key pairs; an id only reaches the domain after a name was resolved.
        DomainError::KeyPairIdMalformed { .. } | DomainError::KeyPairNotFound { .. } => {
            ("InvalidKeyPairName.NotFound", 404)
        }
        DomainError::KeyPairNameInvalid { .. } => ("InvalidKeyPairName.Malformed", 400),
        DomainError::KeyPairNameDuplicate { .. } => ("KeyPair.AlreadyExist", 400),
        DomainError::KeyPairQuotaExceeded { .. } => ("QuotaExceed.KeyPair", 403),
        DomainError::PublicKeyMalformed { .. } => ("InvalidPublicKeyBody.Malformed", 400),
        // Why: ECS documents no separate code for importing a public key twice; the one it
        // gives for "duplicate key pairs cannot be added" is used.
        DomainError::PublicKeyDuplicate { .. } => ("KeyPair.AlreadyExist", 400),
        DomainError::KeyPairInUse { .. } => {
            ("InvalidParameter.KeypairAlreadyAttachedInstance", 400)
        }
        DomainError::TooManyValues { .. }
        | DomainError::DuplicateValue { .. }
        | DomainError::InvalidParameterValue { .. }
        | DomainError::FilterLimitExceeded { .. } => ("InvalidParameter", 400),
        DomainError::ConflictingParameters { .. } => ("InvalidParameter.Conflict", 400),
        DomainError::UnknownFilter { .. } => ("InvalidFilterKey.NotFound", 404),
        // ECS answers an id of the wrong shape as one that does not exist.
        DomainError::InstanceIdMalformed { .. }
        | DomainError::InstanceNotFound { .. }
        | DomainError::InstanceNotInRegion { .. } => ("InvalidInstanceId.NotFound", 404),
        DomainError::InstanceBusy { .. } | DomainError::InstanceStateInvalid { .. } => {
            ("IncorrectInstanceStatus", 403)
        }
        DomainError::InstanceNotLinux { .. } => ("DependencyViolation.WindowsInstance", 403),
        // Why: these come from Lighthouse's duplicate/not-bound rules, which ECS does not have
        // (a new key replaces the old; detaching an unbound key is a no-op).
        DomainError::KeyAlreadyBound { .. } | DomainError::KeyNotBound { .. } => {
            ("InvalidParameter", 400)
        }
        DomainError::ImageIdMalformed { .. } | DomainError::ImageNotFound { .. } => {
            ("InvalidImageId.NotFound", 404)
        }
        DomainError::InvalidPassword { .. } => ("InvalidPassword.Malformed", 400),
        DomainError::InstanceQuotaExceeded { .. } => ("QuotaExceed.AfterpayInstance", 400),
        DomainError::InstanceTypeUnavailable { .. } => ("OperationDenied.NoStock", 403),
        DomainError::Internal(_) => ("InternalError", 500),
    }
}

fn domain_message(e: &DomainError) -> String {
    match e {
        DomainError::KeyPairIdMalformed { id } | DomainError::KeyPairNotFound { id } => {
            format!("The specified KeyPairName does not exist ({id}).")
        }
        DomainError::KeyPairNameInvalid { name, problem } => {
            let why = match problem {
                NameProblem::Empty => "it is empty".to_string(),
                NameProblem::TooShort { min } => format!("it is shorter than {min} characters"),
                NameProblem::TooLong { max } => format!("it is longer than {max} characters"),
                NameProblem::IllegalChar => "it must start with a letter and hold only letters, digits, '.', '_', '-' and ':', and not start with http:// or https://".into(),
            };
            format!("Specified Key Pair name `{name}` is not valid: {why}.")
        }
        DomainError::KeyPairNameDuplicate { name } => {
            format!("The key pair already exist: `{name}`.")
        }
        DomainError::KeyPairQuotaExceeded { limit } => {
            format!("The key pair quota exceeds ({limit}).")
        }
        DomainError::PublicKeyMalformed { reason } => {
            format!("The PublicKeyBody format is not supported: {reason}.")
        }
        DomainError::PublicKeyDuplicate { .. } => {
            "The key pair already exist: this public key is already imported in the region.".into()
        }
        DomainError::KeyPairInUse { .. } => {
            "The specified parameter \"KeyPairNames\" attached to instances can not be deleted."
                .into()
        }
        DomainError::InstanceIdMalformed { id }
        | DomainError::InstanceNotFound { id }
        | DomainError::InstanceNotInRegion { id, .. } => {
            format!("The specified InstanceId `{id}` does not exist.")
        }
        DomainError::InstanceBusy {
            id,
            state,
            operation,
        } => format!(
            "The current status of the resource does not support this operation: instance `{id}` is {}, with its {operation} operation still in progress.",
            super::ecs::dto::status_name(*state)
        ),
        DomainError::InstanceStateInvalid { id, state } => format!(
            "The current status of the resource does not support this operation: instance `{id}` is {}.",
            status_words(*state)
        ),
        DomainError::InstanceNotLinux { .. } => {
            "The instance creating is windows, cannot use ssh key pair to login".into()
        }
        DomainError::ImageIdMalformed { id } | DomainError::ImageNotFound { id } => {
            format!("The specified ImageId `{id}` does not exist.")
        }
        DomainError::InvalidPassword { reason } => {
            format!("The specified parameter \"Password\" is not valid: {reason}.")
        }
        DomainError::InstanceQuotaExceeded { limit } => {
            format!("Living afterpay instances quota exceeded ({limit}).")
        }
        DomainError::InstanceTypeUnavailable { .. } => format!(
            "Sales of this resource are temporarily suspended in the specified region; please try again later. ({e})"
        ),
        DomainError::Internal(_) => {
            "The request processing has failed due to some unknown error, exception or failure."
                .into()
        }
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

    fn vendor_codes() -> Vec<(String, u16)> {
        codes_of(include_str!("../../data/aliyun_ecs_error_codes.txt"))
    }

    fn codes_of(text: &str) -> Vec<(String, u16)> {
        text.lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(|l| {
                let (code, status) = l.split_once(' ').expect("CODE STATUS");
                (code.to_string(), status.trim().parse().expect("status"))
            })
            .collect()
    }

    fn every_domain_error() -> Vec<DomainError> {
        DomainError::examples()
    }

    fn protocol_errors() -> Vec<AliError> {
        let s = String::from("x");
        vec![
            AliError::IncompleteSignature(s.clone()),
            AliError::SignatureDoesNotMatch(s.clone()),
            AliError::SignatureNonceUsed(s.clone()),
            AliError::TimestampExpired(s.clone()),
            AliError::TimestampFormat(s.clone()),
            AliError::AccessKeyNotFound(s.clone()),
            AliError::SecurityTokenRefused,
            AliError::MissingParameter(s.clone()),
            AliError::InvalidParameter(s.clone()),
            AliError::InvalidAction(s.clone()),
            AliError::InvalidVersion(s.clone()),
            AliError::InvalidRegion(s.clone()),
            AliError::Throttling(s.clone()),
        ]
    }

    #[test]
    fn every_actiontrail_code_is_a_vendor_code_with_its_status() {
        let known = codes_of(include_str!(
            "../../data/aliyun_actiontrail_error_codes.txt"
        ));
        let s = String::from("x");
        let own = [
            ActionTrailRefusal::StartTime(s.clone()),
            ActionTrailRefusal::EndTime(s.clone()),
            ActionTrailRefusal::TimeOrder {
                start: s.clone(),
                end: s.clone(),
            },
            ActionTrailRefusal::Query {
                param: s.clone(),
                reason: s.clone(),
            },
        ];
        // A lookup meets no domain error but the store's failure.
        let internal = AliError::Domain(DomainError::Internal(s.clone()));
        let all = protocol_errors()
            .into_iter()
            .chain(own.into_iter().map(AliError::ActionTrail))
            .chain([internal]);
        for e in all {
            let (code, status) = e.code();
            assert!(
                known.iter().any(|(k, st)| k == code && *st == status),
                "{code} {status} is not in data/aliyun_actiontrail_error_codes.txt"
            );
            assert!(!e.message().is_empty());
        }
    }

    #[test]
    fn every_code_we_emit_is_a_vendor_code_with_its_status() {
        let known = vendor_codes();
        let s = String::from("x");
        let protocol = protocol_errors();
        let ecs = [
            EcsRefusal::DryRun,
            EcsRefusal::UserDataFormat,
            EcsRefusal::UserDataSize(40_000),
            EcsRefusal::BindInstanceIds(s.clone()),
            EcsRefusal::DescribeInstanceIds(s.clone()),
            EcsRefusal::KeyPairNames(s.clone()),
            EcsRefusal::KeyPairsNotFound(s.clone()),
            EcsRefusal::ZoneNotFound(s.clone()),
            EcsRefusal::InstanceType(s.clone()),
            EcsRefusal::InstanceName(s.clone()),
            EcsRefusal::HostName(s.clone()),
            EcsRefusal::Description(s.clone()),
            EcsRefusal::Status(s.clone()),
            EcsRefusal::TagKey(s.clone()),
            EcsRefusal::TagValue(s.clone()),
            EcsRefusal::TagKeyDuplicate(s.clone()),
            EcsRefusal::TagCount(21),
            EcsRefusal::ChargeType(s.clone()),
            EcsRefusal::AttributeUnsupported(s.clone()),
        ];
        let all = protocol
            .into_iter()
            .chain(ecs.into_iter().map(AliError::Ecs))
            .chain(every_domain_error().into_iter().map(AliError::Domain));
        for e in all {
            let (code, status) = e.code();
            assert!(
                known.iter().any(|(k, st)| k == code && *st == status),
                "{code} {status} is not in data/aliyun_ecs_error_codes.txt"
            );
            assert!(!e.message().is_empty());
        }
    }

    #[test]
    fn statuses_follow_the_classes_the_clients_act_on() {
        let win = AliError::Domain(DomainError::InstanceNotLinux { id: "i-x".into() });
        assert_eq!(win.code(), ("DependencyViolation.WindowsInstance", 403));
        let nf = AliError::Domain(DomainError::KeyPairNotFound { id: "k".into() });
        assert_eq!(nf.code(), ("InvalidKeyPairName.NotFound", 404));
        assert_eq!(
            AliError::Domain(DomainError::Internal("boom".into()))
                .code()
                .1,
            500
        );
        let sts = AliError::SignatureDoesNotMatch("POST&%2F&x".into()).message();
        assert!(sts.ends_with("server string to sign is:POST&%2F&x"));
    }
}
