//! The one domain error type. Every dialect maps it to its own code strings with an
//! exhaustive `match`, so a new variant breaks the build until every dialect answers it.

use thiserror::Error;

/// What is wrong with a proposed key-pair name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameProblem {
    /// The name is empty.
    Empty,
    /// The name is longer than the dialect allows.
    TooLong {
        /// The maximum length in characters.
        max: usize,
    },
    /// The name is shorter than the dialect allows.
    TooShort {
        /// The minimum length in characters.
        min: usize,
    },
    /// The name holds a character the dialect does not allow.
    IllegalChar,
}

/// Everything the domain can refuse, independent of the wire dialect.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum DomainError {
    /// A key pair id does not have the namespace's shape (`skey-` + 8, `lhkp-` + 8, ...).
    #[error("the key pair id `{id}` is malformed")]
    KeyPairIdMalformed {
        /// The id as given.
        id: String,
    },
    /// No key pair with this id exists in the caller's account.
    #[error("the key pair `{id}` does not exist")]
    KeyPairNotFound {
        /// The id as given.
        id: String,
    },
    /// The key pair name breaks the dialect's naming rule.
    #[error("the key pair name `{name}` is invalid: {problem:?}")]
    KeyPairNameInvalid {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        problem: NameProblem,
    },
    /// Another key pair of the account already has this name.
    #[error("a key pair named `{name}` already exists")]
    KeyPairNameDuplicate {
        /// The name as given.
        name: String,
    },
    /// The account holds as many key pairs as it may.
    #[error("the key pair quota of {limit} is reached")]
    KeyPairQuotaExceeded {
        /// The quota.
        limit: usize,
    },
    /// The public key is not a valid OpenSSH public key of a supported type.
    #[error("the public key is malformed: {reason}")]
    PublicKeyMalformed {
        /// Why it was refused.
        reason: String,
    },
    /// The same public key is already imported into the account.
    #[error("the public key is already imported as `{existing_id}`")]
    PublicKeyDuplicate {
        /// The key pair that already holds it.
        existing_id: String,
    },
    /// The key pair is bound to instances and cannot be deleted.
    #[error("the key pair `{id}` is bound to instances")]
    KeyPairInUse {
        /// The key pair.
        id: String,
    },
    /// More values were given for a list parameter than the dialect allows.
    #[error("parameter `{param}` takes at most {max} values, got {given}")]
    TooManyValues {
        /// The wire name of the parameter.
        param: String,
        /// The limit.
        max: usize,
        /// How many were given.
        given: usize,
    },
    /// A list parameter holds the same value twice.
    #[error("parameter `{param}` holds `{value}` more than once")]
    DuplicateValue {
        /// The wire name of the parameter.
        param: String,
        /// The repeated value.
        value: String,
    },
    /// A parameter value is out of range or not one of the accepted values.
    #[error("invalid value for `{param}`: {reason}")]
    InvalidParameterValue {
        /// The wire name of the parameter.
        param: String,
        /// Why it was refused.
        reason: String,
    },
    /// Two parameters were given that cannot be combined.
    #[error("parameters `{first}` and `{second}` cannot be given together")]
    ConflictingParameters {
        /// The first parameter.
        first: String,
        /// The second parameter.
        second: String,
    },
    /// A filter name the action does not know.
    #[error("unknown filter `{name}`")]
    UnknownFilter {
        /// The filter name as given.
        name: String,
    },
    /// A filter with too many values, or too many filters.
    #[error("too many filters or filter values: {reason}")]
    FilterLimitExceeded {
        /// What exceeded the limit.
        reason: String,
    },
    /// An instance id does not have the namespace's shape.
    #[error("the instance id `{id}` is malformed")]
    InstanceIdMalformed {
        /// The id as given.
        id: String,
    },
    /// No instance with this id exists in the caller's account.
    #[error("the instance `{id}` does not exist")]
    InstanceNotFound {
        /// The id as given.
        id: String,
    },
    /// The instance exists, in another region than the one the request names.
    #[error("the instance `{id}` does not exist in this region")]
    InstanceNotInRegion {
        /// The id as given.
        id: String,
        /// The request's region.
        region: String,
    },
    /// The instance has an operation in progress.
    #[error(
        "the instance `{id}` is {}, with its {operation} operation still in progress",
        state.describe()
    )]
    InstanceBusy {
        /// The instance.
        id: String,
        /// Its state meanwhile (a transitional one while it starts, stops or reboots).
        state: crate::instance::InstanceState,
        /// The action of the operation in progress (`RunInstances`, `AttachKeyPair`, ...).
        operation: String,
    },

    /// The instance's state does not allow the operation.
    #[error(
        "the instance `{id}` is {}, which the operation does not allow",
        state.describe()
    )]
    InstanceStateInvalid {
        /// The instance.
        id: String,
        /// Its state.
        state: crate::instance::InstanceState,
    },
    /// The instance runs Windows, which has no SSH key pairs.
    #[error("the instance `{id}` runs Windows, which does not support SSH key pairs")]
    InstanceNotLinux {
        /// The instance.
        id: String,
    },
    /// The key pair is already bound to the instance.
    #[error("the key pair `{key}` is already bound to the instance `{instance}`")]
    KeyAlreadyBound {
        /// The instance.
        instance: String,
        /// The key pair.
        key: String,
    },
    /// The key pair is not bound to the instance.
    #[error("the key pair `{key}` is not bound to the instance `{instance}`")]
    KeyNotBound {
        /// The instance.
        instance: String,
        /// The key pair.
        key: String,
    },
    /// An image id does not have the namespace's shape.
    #[error("the image id `{id}` is malformed")]
    ImageIdMalformed {
        /// The id as given.
        id: String,
    },
    /// No such image.
    #[error("the image `{id}` does not exist")]
    ImageNotFound {
        /// The id as given.
        id: String,
    },
    /// The password does not meet the complexity rule.
    #[error("the password is invalid: {reason}")]
    InvalidPassword {
        /// Why.
        reason: String,
    },
    /// The account holds as many instances as it may.
    #[error("the instance quota of {limit} is reached")]
    InstanceQuotaExceeded {
        /// The quota.
        limit: usize,
    },
    /// The instance type asks for more CPUs or memory than the host can give an instance.
    #[error(
        "the instance type `{instance_type}` needs {cpus} CPUs and {memory_mib} MiB; \
         this host gives at most {max_cpus} CPUs and {max_memory_mib} MiB"
    )]
    InstanceTypeUnavailable {
        /// The type as given.
        instance_type: String,
        /// CPUs it asks for.
        cpus: u32,
        /// Memory it asks for (MiB).
        memory_mib: u64,
        /// The most CPUs an instance can get here.
        max_cpus: u32,
        /// The most memory an instance can get here (MiB).
        max_memory_mib: u64,
    },
    /// Something failed inside the server; the request may be retried.
    #[error("internal error: {0}")]
    Internal(String),
}

impl DomainError {
    /// One value of every variant, and of every nested value that a dialect may map to a code
    /// of its own (each name problem, each instance state): what the dialects' tests run their
    /// exhaustive code maps over.
    pub fn examples() -> Vec<DomainError> {
        use crate::instance::InstanceState as S;
        let x = || String::from("x");
        let mut list = vec![
            DomainError::KeyPairIdMalformed { id: x() },
            DomainError::KeyPairNotFound { id: x() },
            DomainError::KeyPairNameDuplicate { name: x() },
            DomainError::KeyPairQuotaExceeded { limit: 1 },
            DomainError::PublicKeyMalformed { reason: x() },
            DomainError::PublicKeyDuplicate { existing_id: x() },
            DomainError::KeyPairInUse { id: x() },
            DomainError::TooManyValues {
                param: x(),
                max: 1,
                given: 2,
            },
            DomainError::DuplicateValue {
                param: x(),
                value: x(),
            },
            DomainError::InvalidParameterValue {
                param: x(),
                reason: x(),
            },
            DomainError::ConflictingParameters {
                first: x(),
                second: x(),
            },
            DomainError::UnknownFilter { name: x() },
            DomainError::FilterLimitExceeded { reason: x() },
            DomainError::InstanceIdMalformed { id: x() },
            DomainError::InstanceNotFound { id: x() },
            DomainError::InstanceNotInRegion {
                id: x(),
                region: x(),
            },
            DomainError::InstanceBusy {
                id: x(),
                state: S::Running,
                operation: x(),
            },
            DomainError::InstanceBusy {
                id: x(),
                state: S::Starting,
                operation: x(),
            },
            DomainError::InstanceNotLinux { id: x() },
            DomainError::KeyAlreadyBound {
                instance: x(),
                key: x(),
            },
            DomainError::KeyNotBound {
                instance: x(),
                key: x(),
            },
            DomainError::ImageIdMalformed { id: x() },
            DomainError::ImageNotFound { id: x() },
            DomainError::InvalidPassword { reason: x() },
            DomainError::InstanceQuotaExceeded { limit: 1 },
            DomainError::InstanceTypeUnavailable {
                instance_type: x(),
                cpus: 4,
                memory_mib: 8192,
                max_cpus: 2,
                max_memory_mib: 4096,
            },
            DomainError::Internal(x()),
        ];
        for problem in [
            NameProblem::Empty,
            NameProblem::TooShort { min: 2 },
            NameProblem::TooLong { max: 25 },
            NameProblem::IllegalChar,
        ] {
            list.push(DomainError::KeyPairNameInvalid { name: x(), problem });
        }
        for state in [
            S::Pending,
            S::LaunchFailed,
            S::Running,
            S::Stopped,
            S::Starting,
            S::Stopping,
            S::Rebooting,
            S::Terminating,
        ] {
            list.push(DomainError::InstanceStateInvalid { id: x(), state });
        }
        // A new variant fails to compile here until it is added to the list above.
        for e in &list {
            match e {
                DomainError::KeyPairIdMalformed { .. }
                | DomainError::KeyPairNotFound { .. }
                | DomainError::KeyPairNameInvalid { .. }
                | DomainError::KeyPairNameDuplicate { .. }
                | DomainError::KeyPairQuotaExceeded { .. }
                | DomainError::PublicKeyMalformed { .. }
                | DomainError::PublicKeyDuplicate { .. }
                | DomainError::KeyPairInUse { .. }
                | DomainError::TooManyValues { .. }
                | DomainError::DuplicateValue { .. }
                | DomainError::InvalidParameterValue { .. }
                | DomainError::ConflictingParameters { .. }
                | DomainError::UnknownFilter { .. }
                | DomainError::FilterLimitExceeded { .. }
                | DomainError::InstanceIdMalformed { .. }
                | DomainError::InstanceNotFound { .. }
                | DomainError::InstanceNotInRegion { .. }
                | DomainError::InstanceBusy { .. }
                | DomainError::InstanceStateInvalid { .. }
                | DomainError::InstanceNotLinux { .. }
                | DomainError::KeyAlreadyBound { .. }
                | DomainError::KeyNotBound { .. }
                | DomainError::ImageIdMalformed { .. }
                | DomainError::ImageNotFound { .. }
                | DomainError::InvalidPassword { .. }
                | DomainError::InstanceQuotaExceeded { .. }
                | DomainError::InstanceTypeUnavailable { .. }
                | DomainError::Internal(_) => {}
            }
        }
        list
    }

    /// An internal error from anything printable.
    pub fn internal(e: impl std::fmt::Display) -> Self {
        DomainError::Internal(e.to_string())
    }
}
