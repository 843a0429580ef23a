//! Lighthouse 2020-03-24 error codes: the domain's errors mapped by an exhaustive `match`, and
//! the refusals that are rules of the Lighthouse wire contract rather than of the domain.

use crate::tencent::error::{ProductCodes, TcError};
use keyplane_core::instance::InstanceState;
use keyplane_core::{DomainError, NameProblem};

/// Everything a Lighthouse request can fail with.
pub type LighthouseError = TcError<LighthouseRefusal>;

/// Refusals that are rules of the Lighthouse wire contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LighthouseRefusal {
    /// Key pairs were given for a Windows blueprint or instance.
    WindowsNotSupportKeyPair(String),
    /// No bundle has this id.
    BundleNotFound(String),
    /// The bundle does not run the blueprint's platform.
    BundleNotForPlatform {
        /// The bundle.
        bundle: String,
        /// `LINUX_UNIX` or `WINDOWS`.
        platform: &'static str,
    },
    /// A zone that is not a zone of the request's region.
    ZoneInvalid {
        /// The zone as given.
        zone: String,
        /// The request's region.
        region: String,
    },
    /// `ClientToken` longer than 64 characters.
    ClientTokenTooLong(usize),
    /// `InstanceName` longer than 60 characters.
    InstanceNameTooLong(usize),
    /// A value outside its documented range.
    OutOfRange {
        /// The parameter.
        param: String,
        /// The documented range.
        range: String,
    },
    /// Docker containers were asked for; the sandbox has no Docker.
    DockerUnavailable,
    /// An `InitCommand` was asked for; the sandbox has no TencentCloud Automation Tools agent.
    TatAgentUnavailable,
    /// A firewall template id of the wrong shape.
    FirewallTemplateIdMalformed(String),
    /// A firewall template that does not exist (none do).
    FirewallTemplateNotFound(String),
    /// `Order` without `OrderField`.
    OrderFieldRequired,
    /// Unbinding for a user the key was not bound for.
    UsernameMismatch(String),
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

impl ProductCodes for LighthouseRefusal {
    const MISSING_AT_LEAST_ONE: &'static str = "MissingParameter";

    fn code(&self) -> &'static str {
        match self {
            LighthouseRefusal::WindowsNotSupportKeyPair(_) => {
                "UnsupportedOperation.WindowsNotSupportKeyPair"
            }
            LighthouseRefusal::BundleNotFound(_) => "InvalidParameter.BundleIdNotFound",
            LighthouseRefusal::BundleNotForPlatform { .. } => {
                "InvalidParameterValue.BundleNotSupportBlueprintPlatform"
            }
            LighthouseRefusal::ZoneInvalid { .. } => "InvalidParameterValue.ZoneInvalid",
            LighthouseRefusal::ClientTokenTooLong(_) => "InvalidParameterValue.ClientTokenTooLong",
            LighthouseRefusal::InstanceNameTooLong(_) => {
                "InvalidParameterValue.InstanceNameTooLong"
            }
            LighthouseRefusal::OutOfRange { .. } => "InvalidParameterValue.OutOfRange",
            LighthouseRefusal::DockerUnavailable => "ResourceUnavailable.DockerUnavailable",
            LighthouseRefusal::TatAgentUnavailable => "ResourceUnavailable.TATAgentUnavailable",
            LighthouseRefusal::FirewallTemplateIdMalformed(_) => {
                "InvalidParameterValue.FirewallTemplateIdMalformed"
            }
            LighthouseRefusal::FirewallTemplateNotFound(_) => {
                "ResourceNotFound.FirewallTemplateNotFound"
            }
            LighthouseRefusal::OrderFieldRequired => "MissingParameter.OrderFieldRequired",
            LighthouseRefusal::UsernameMismatch(_) => {
                "UnsupportedOperation.KeyPairUnbindUsernameMismatch"
            }
            LighthouseRefusal::ValueTooLong { .. } => "InvalidParameterValue.TooLong",
        }
    }

    fn message(&self) -> String {
        match self {
            LighthouseRefusal::WindowsNotSupportKeyPair(id) => {
                format!("`{id}` is a Windows blueprint or instance: SSH key pairs are not available for Windows.")
            }
            LighthouseRefusal::BundleNotFound(id) => format!("The bundle `{id}` does not exist."),
            LighthouseRefusal::BundleNotForPlatform { bundle, platform } => {
                format!("The bundle `{bundle}` does not support the {platform} platform.")
            }
            LighthouseRefusal::ZoneInvalid { zone, region } => {
                format!("The zone `{zone}` is not a zone of the region `{region}`.")
            }
            LighthouseRefusal::ClientTokenTooLong(n) => {
                format!("The ClientToken is {n} characters long; at most 64 are allowed.")
            }
            LighthouseRefusal::InstanceNameTooLong(n) => {
                format!("The InstanceName is {n} characters long; at most 60 are allowed.")
            }
            LighthouseRefusal::OutOfRange { param, range } => {
                format!("The value of `{param}` is out of range: {range}.")
            }
            LighthouseRefusal::DockerUnavailable => {
                "Docker containers are not available: sandbox instances run no Docker.".into()
            }
            LighthouseRefusal::TatAgentUnavailable => {
                "InitCommand is not available: sandbox instances run no TencentCloud Automation Tools agent.".into()
            }
            LighthouseRefusal::FirewallTemplateIdMalformed(id) => format!(
                "The firewall template id `{id}` is malformed; expected `lhft-` and 8 lower-case letters or digits."
            ),
            LighthouseRefusal::FirewallTemplateNotFound(id) => {
                format!("The firewall template `{id}` does not exist.")
            }
            LighthouseRefusal::OrderFieldRequired => {
                "The parameter `OrderField` is required when `Order` is given.".into()
            }
            LighthouseRefusal::UsernameMismatch(user) => format!(
                "The key pairs were bound for the user `root`, not `{user}`."
            ),
            LighthouseRefusal::ValueTooLong { param, max, len } => {
                format!("The {param} is {len} characters long; at most {max} are allowed.")
            }
        }
    }

    fn domain_code(e: &DomainError) -> &'static str {
        lighthouse_code(e)
    }
}

/// Lighthouse 2020-03-24 codes for domain errors.
pub fn lighthouse_code(e: &DomainError) -> &'static str {
    match e {
        DomainError::KeyPairIdMalformed { .. } => "InvalidParameterValue.KeyPairIdMalformed",
        DomainError::KeyPairNotFound { .. } => "ResourceNotFound.KeyIdNotFound",
        DomainError::KeyPairNameInvalid { problem, .. } => match problem {
            NameProblem::Empty | NameProblem::TooShort { .. } => {
                "InvalidParameterValue.InvalidKeyPairNameEmpty"
            }
            NameProblem::TooLong { .. } => "InvalidParameterValue.InvalidKeyPairNameTooLong",
            NameProblem::IllegalChar => {
                "InvalidParameterValue.InvalidKeyPairNameIncludeIllegalChar"
            }
        },
        DomainError::KeyPairNameDuplicate { .. } => "InvalidParameterValue.DuplicateParameterValue",
        DomainError::KeyPairQuotaExceeded { .. } => "LimitExceeded.KeyPairLimitExceeded",
        DomainError::PublicKeyMalformed { .. } => "InvalidParameterValue.KeyPairPublicKeyMalformed",
        DomainError::PublicKeyDuplicate { .. } => {
            "InvalidParameterValue.KeyPairPublicKeyDuplicated"
        }
        DomainError::KeyPairInUse { .. } => "ResourceInUse.KeyPairInUse",
        DomainError::TooManyValues { .. } => "InvalidParameterValue.LimitExceeded",
        DomainError::DuplicateValue { .. } => "InvalidParameterValue.Duplicated",
        DomainError::InvalidParameterValue { .. } => "InvalidParameterValue",
        DomainError::ConflictingParameters { .. } => "InvalidParameter.ParameterConflict",
        DomainError::UnknownFilter { .. } => "InvalidParameter.InvalidFilterNotSupportedName",
        DomainError::FilterLimitExceeded { .. } => "InvalidParameter.FilterValueLimitExceeded",
        DomainError::InstanceIdMalformed { .. } => "InvalidParameterValue.InstanceIdMalformed",
        DomainError::InstanceNotFound { .. } => "ResourceNotFound.InstanceIdNotFound",
        DomainError::InstanceNotInRegion { .. } => "ResourceNotFound.InstanceNotFound",
        // Why: Lighthouse lists two codes for an instance whose last operation is not over:
        // OperationDenied.InstanceOperationInProgress and UnsupportedOperation.
        // LatestOperationUnfinished. We answer the first while the instance itself is in a
        // transition (starting, stopping, rebooting, terminating), the second when it is settled
        // (RUNNING or STOPPED) but an operation on it (a key binding, say) is still OPERATING;
        // an instance still being created is OperationDenied.InstanceCreating.
        DomainError::InstanceBusy { state, .. } => match state {
            InstanceState::Pending => "OperationDenied.InstanceCreating",
            InstanceState::Running | InstanceState::Stopped | InstanceState::LaunchFailed => {
                "UnsupportedOperation.LatestOperationUnfinished"
            }
            InstanceState::Starting
            | InstanceState::Stopping
            | InstanceState::Rebooting
            | InstanceState::Terminating => "OperationDenied.InstanceOperationInProgress",
        },
        DomainError::InstanceStateInvalid { state, .. } => match state {
            InstanceState::Pending => "OperationDenied.InstanceCreating",
            InstanceState::LaunchFailed
            | InstanceState::Running
            | InstanceState::Stopped
            | InstanceState::Starting
            | InstanceState::Stopping
            | InstanceState::Rebooting
            | InstanceState::Terminating => "UnsupportedOperation.InvalidInstanceState",
        },
        DomainError::InstanceNotLinux { .. } => {
            "UnsupportedOperation.WindowsNotAllowToAssociateKeyPair"
        }
        DomainError::KeyAlreadyBound { .. } => "UnsupportedOperation.KeyPairBindDuplicate",
        DomainError::KeyNotBound { .. } => "UnsupportedOperation.KeyPairNotBoundToInstance",
        DomainError::ImageIdMalformed { .. } => "InvalidParameterValue.BlueprintIdMalformed",
        DomainError::ImageNotFound { .. } => "ResourceNotFound.BlueprintIdNotFound",
        DomainError::InvalidPassword { .. } => "InvalidParameterValue.InvalidPassword",
        DomainError::InstanceQuotaExceeded { .. } => "LimitExceeded.InstanceQuotaLimitExceeded",
        DomainError::InstanceTypeUnavailable { .. } => "ResourcesSoldOut.BundleSoldOut",
        DomainError::Internal(_) => "InternalError",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tencent::error::tests::{every_domain_error, every_protocol_error, known_codes};

    fn every_refusal() -> Vec<LighthouseRefusal> {
        let s = String::from("x");
        vec![
            LighthouseRefusal::WindowsNotSupportKeyPair(s.clone()),
            LighthouseRefusal::BundleNotFound(s.clone()),
            LighthouseRefusal::BundleNotForPlatform {
                bundle: s.clone(),
                platform: "WINDOWS",
            },
            LighthouseRefusal::ZoneInvalid {
                zone: s.clone(),
                region: s.clone(),
            },
            LighthouseRefusal::ClientTokenTooLong(65),
            LighthouseRefusal::InstanceNameTooLong(61),
            LighthouseRefusal::OutOfRange {
                param: s.clone(),
                range: s.clone(),
            },
            LighthouseRefusal::DockerUnavailable,
            LighthouseRefusal::TatAgentUnavailable,
            LighthouseRefusal::FirewallTemplateIdMalformed(s.clone()),
            LighthouseRefusal::FirewallTemplateNotFound(s.clone()),
            LighthouseRefusal::OrderFieldRequired,
            LighthouseRefusal::UsernameMismatch(s.clone()),
            LighthouseRefusal::ValueTooLong {
                param: s.clone(),
                max: 64,
                len: 65,
            },
        ]
    }

    #[test]
    fn every_code_we_emit_is_a_lighthouse_or_common_code() {
        let known = known_codes(include_str!(
            "../../../data/tencent_lighthouse_error_codes.txt"
        ));
        let all = every_domain_error()
            .into_iter()
            .map(LighthouseError::Domain)
            .chain(every_protocol_error())
            .chain(every_refusal().into_iter().map(LighthouseError::Refusal));
        for e in all {
            let code = e.code();
            assert!(
                known.iter().any(|k| k == code),
                "{code} is not a Lighthouse or common code"
            );
            assert!(!e.message().is_empty());
        }
    }

    #[test]
    fn the_seed_codes_answer_their_rules() {
        let id = || "lhins-aaaaaaaa".to_string();
        let cases = [
            (
                DomainError::KeyAlreadyBound {
                    instance: id(),
                    key: id(),
                },
                "UnsupportedOperation.KeyPairBindDuplicate",
            ),
            (
                DomainError::InstanceBusy {
                    id: id(),
                    state: InstanceState::Stopping,
                    operation: "AssociateInstancesKeyPairs".into(),
                },
                "OperationDenied.InstanceOperationInProgress",
            ),
            (
                DomainError::InstanceBusy {
                    id: id(),
                    state: InstanceState::Stopped,
                    operation: "AssociateInstancesKeyPairs".into(),
                },
                "UnsupportedOperation.LatestOperationUnfinished",
            ),
            (
                DomainError::InstanceStateInvalid {
                    id: id(),
                    state: InstanceState::Pending,
                },
                "OperationDenied.InstanceCreating",
            ),
            (
                DomainError::InstanceNotLinux { id: id() },
                "UnsupportedOperation.WindowsNotAllowToAssociateKeyPair",
            ),
            (
                DomainError::KeyNotBound {
                    instance: id(),
                    key: id(),
                },
                "UnsupportedOperation.KeyPairNotBoundToInstance",
            ),
        ];
        for (e, code) in cases {
            assert_eq!(lighthouse_code(&e), code);
        }
    }
}
