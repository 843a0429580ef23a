//! Why a step of an operation failed. The Display text is what the operation keeps as its
//! error, which clients see (DescribeInstances' latest operation, the console), so each
//! message is worded for them.

use keyplane_core::store::StoreError;
use keyplane_core::DomainError;
use std::time::Duration;

/// A failed step of an operation.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// This node has no sandbox driver (the reason it could not start one).
    #[error("sandbox instances are unavailable on this host: {0}")]
    NoSandbox(String),
    /// The sandbox driver failed.
    #[error(transparent)]
    Sandbox(#[from] crate::Error),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A domain call failed.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// The instance's recorded private address does not parse.
    #[error(transparent)]
    Address(#[from] std::net::AddrParseError),
    /// The launch's user data is not base64.
    #[error("the user data is not base64: {0}")]
    UserData(base64::DecodeError),
    /// Start, stop or reboot asked of an agent-managed host.
    #[error(
        "an agent-managed host is started and stopped on the host itself, not through the API"
    )]
    AgentHostPower,
    /// A password reset asked of an agent-managed host.
    #[error("an agent-managed host's passwords are set on the host itself, not through the API")]
    AgentHostPassword,
    /// An agent-managed host's agent did not report the change in time.
    #[error(
        "the host's agent did not report the change applied within {timeout:?} (it reported \
         generation {reported}, {wanted} wanted); is `keyplane agent` running there?"
    )]
    AgentHostSilent {
        /// How long the worker waited.
        timeout: Duration,
        /// The generation the agent reported applied.
        reported: i64,
        /// The generation the change needs.
        wanted: i64,
    },
    /// A guest agent run took too long.
    #[error("the guest agent did not finish within {0:?}")]
    GuestAgentTimeout(Duration),
    /// The guest agent could not be run.
    #[error("cannot run the guest agent: {0}")]
    GuestAgentSpawn(std::io::Error),
    /// The guest agent exited unsuccessfully (its trimmed standard error).
    #[error("the guest agent failed: {0}")]
    GuestAgentFailed(String),
    /// The guest agent ran but did not report the generation wanted.
    #[error("the guest agent reported generation {applied}, expected {want}")]
    GuestAgentBehind {
        /// The generation it reported applied.
        applied: i64,
        /// The generation wanted.
        want: i64,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_the_ones_clients_see() {
        let cases = [
            (
                StepError::NoSandbox("no uidmap".into()),
                "sandbox instances are unavailable on this host: no uidmap",
            ),
            (
                StepError::Store(StoreError::Backend("gone".into())),
                "storage failure: gone",
            ),
            (
                StepError::AgentHostPower,
                "an agent-managed host is started and stopped on the host itself, not through the API",
            ),
            (
                StepError::AgentHostPassword,
                "an agent-managed host's passwords are set on the host itself, not through the API",
            ),
            (
                StepError::AgentHostSilent {
                    timeout: Duration::from_secs(30),
                    reported: 1,
                    wanted: 2,
                },
                "the host's agent did not report the change applied within 30s (it reported \
                 generation 1, 2 wanted); is `keyplane agent` running there?",
            ),
            (
                StepError::GuestAgentTimeout(Duration::from_millis(1500)),
                "the guest agent did not finish within 1.5s",
            ),
            (
                StepError::GuestAgentFailed("boom".into()),
                "the guest agent failed: boom",
            ),
            (
                StepError::GuestAgentBehind { applied: 3, want: 4 },
                "the guest agent reported generation 3, expected 4",
            ),
        ];
        for (e, want) in cases {
            assert_eq!(e.to_string(), want);
        }
    }
}
