//! What the guest agent is told and how it proves which instance it speaks for.

use crate::error::DomainError;
use crate::instance::Instance;
use crate::service::Core;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Name of the setting holding the key agent tokens are derived from.
const AGENT_KEY_SETTING: &str = "agent_token_key";

/// Why an agent's report was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    /// The report names a generation the server never handed to this agent.
    #[error(
        "generation {generation} was never issued to this agent (the latest issued is {issued})"
    )]
    NotIssued {
        /// The generation the report names.
        generation: i64,
        /// The highest generation the agent was served.
        issued: i64,
    },
    /// Any other failure (the instance is gone, the store failed).
    #[error(transparent)]
    Domain(#[from] DomainError),
}

/// The SSH state an instance should be in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredSshState {
    /// Increases with every change.
    pub generation: i64,
    /// OpenSSH public key lines of the effective key pairs.
    pub authorized_keys: Vec<String>,
    /// Password login on (no key bound) or off.
    pub password_authentication: bool,
}

fn token_for(key: &str, instance_id: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("any key length");
    mac.update(b"keyplane-agent:");
    mac.update(instance_id.as_bytes());
    hex_lower(&mac.finalize().into_bytes())
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Core {
    async fn agent_key(&self) -> Result<String, DomainError> {
        let fresh = crate::ids::random_token(48);
        self.store()
            .setting(AGENT_KEY_SETTING, &fresh)
            .await
            .map_err(DomainError::internal)
    }

    /// The token an instance's agent presents: an HMAC of its id under a server-wide key, so
    /// it is valid for that one instance only.
    pub async fn agent_token(&self, instance_id: &str) -> Result<String, DomainError> {
        Ok(token_for(&self.agent_key().await?, instance_id))
    }

    /// Whether `token` is the agent token of `instance_id` (constant-time).
    pub async fn check_agent_token(
        &self,
        instance_id: &str,
        token: &str,
    ) -> Result<bool, DomainError> {
        let expected = self.agent_token(instance_id).await?;
        Ok(
            expected.len() == token.len()
                && bool::from(expected.as_bytes().ct_eq(token.as_bytes())),
        )
    }

    /// An instance by id, whatever its account.
    pub async fn instance_by_id(&self, id: &str) -> Result<Instance, DomainError> {
        self.store()
            .get_instance(id)
            .await
            .map_err(DomainError::internal)?
            .ok_or_else(|| DomainError::InstanceNotFound { id: id.into() })
    }

    /// An instance by id, whatever its account; `None` when there is none (or no longer).
    pub async fn find_instance(
        &self,
        id: &str,
    ) -> Result<Option<Instance>, crate::store::StoreError> {
        self.store().get_instance(id).await
    }

    /// The SSH state `instance` should be in now.
    pub async fn desired_ssh_state(
        &self,
        instance: &Instance,
    ) -> Result<DesiredSshState, DomainError> {
        let query = crate::service::KeyPairQuery {
            ids: Some(instance.effective_key_ids.clone()),
            limit: instance.effective_key_ids.len(),
            ..Default::default()
        };
        let keys = if instance.effective_key_ids.is_empty() {
            Vec::new()
        } else {
            self.store()
                .query_key_pairs(&instance.account_id, instance.namespace, &query)
                .await
                .map_err(DomainError::internal)?
                .items
        };
        let authorized_keys: Vec<String> = instance
            .effective_key_ids
            .iter()
            .filter_map(|id| keys.iter().find(|k| &k.id == id))
            .map(|k| k.public_key.clone())
            .collect();
        Ok(DesiredSshState {
            generation: instance.desired_generation,
            password_authentication: authorized_keys.is_empty(),
            authorized_keys,
        })
    }

    /// The SSH state `instance` should be in now, recorded as handed to its agent: only a
    /// generation served this way counts when the agent reports it applied. The record is
    /// durable, so a report may reach any node sharing the store.
    pub async fn serve_ssh_state(
        &self,
        instance: &Instance,
    ) -> Result<DesiredSshState, DomainError> {
        let desired = self.desired_ssh_state(instance).await?;
        self.store()
            .record_served_generation(&instance.id, desired.generation)
            .await
            .map_err(DomainError::internal)?;
        Ok(desired)
    }

    /// Check that a report names a generation served to the agent of `instance_id`, without
    /// recording anything (a failure report).
    pub async fn check_agent_report(
        &self,
        instance_id: &str,
        generation: i64,
    ) -> Result<(), ReportError> {
        let issued = self
            .store()
            .served_generation(instance_id)
            .await
            .map_err(DomainError::internal)?
            .ok_or_else(|| DomainError::InstanceNotFound {
                id: instance_id.into(),
            })?;
        if (0..=issued).contains(&generation) {
            Ok(())
        } else {
            Err(ReportError::NotIssued { generation, issued })
        }
    }

    /// Record that the agent applied `generation`, which must be one it was served
    /// ([`Core::serve_ssh_state`]); anything else is refused and changes nothing.
    pub async fn agent_applied(
        &self,
        instance_id: &str,
        generation: i64,
    ) -> Result<(), ReportError> {
        let recorded = self
            .store()
            .set_applied_generation(instance_id, generation)
            .await
            .map_err(DomainError::internal)?;
        if recorded {
            return Ok(());
        }
        // Not recorded: say why (no such instance, or a generation never served).
        self.check_agent_report(instance_id, generation).await?;
        // Served meanwhile (a concurrent fetch): record it now.
        if self
            .store()
            .set_applied_generation(instance_id, generation)
            .await
            .map_err(DomainError::internal)?
        {
            Ok(())
        } else {
            Err(DomainError::InstanceNotFound {
                id: instance_id.into(),
            }
            .into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_per_instance() {
        let a = token_for("k", "ins-aaaaaaaa");
        assert_eq!(a.len(), 64);
        assert_ne!(a, token_for("k", "ins-bbbbbbbb"));
        assert_ne!(a, token_for("other", "ins-aaaaaaaa"));
    }
}
