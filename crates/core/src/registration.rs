//! Registration of real hosts: an admin issues a token (single-use, expiring, for one account
//! and dialect); `keyplane agent --token` presents it once and gets its instance id and its own
//! agent token back.
//!
//! The token is self-contained and signed with the server-wide agent key, so any node can
//! check it; single use is enforced through the shared nonce store.

use crate::account::Account;
use crate::instance::{HostKind, Instance, InstanceState, OsType};
use crate::keypair::Namespace;
use crate::service::Core;
use crate::store::{Conflict, StoreError};
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use thiserror::Error;

const PREFIX: &str = "kpreg1";
/// Image id reported for registered hosts (they were not created from an image).
pub const AGENT_HOST_IMAGE: &str = "agent-host";

/// Why a registration was refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum RegistrationError {
    /// Not a token this server issued, or altered.
    #[error("the registration token is not valid")]
    Invalid,
    /// Past its expiry.
    #[error("the registration token has expired")]
    Expired,
    /// Already used.
    #[error("the registration token was already used")]
    Used,
    /// Another instance (of any account: a sandbox instance or another host) already has this
    /// address, on whatever port.
    #[error("the address {0} is already given to another instance")]
    AddressTaken(String),
    /// The host's details are unusable.
    #[error("invalid host details: {0}")]
    InvalidHost(String),
    /// A server-side failure.
    #[error("internal error: {0}")]
    Internal(String),
}

impl RegistrationError {
    /// The code the audit trail records for this refusal.
    pub fn code(&self) -> &'static str {
        match self {
            RegistrationError::Invalid => "InvalidToken",
            RegistrationError::Expired => "TokenExpired",
            RegistrationError::Used => "TokenUsed",
            RegistrationError::AddressTaken(_) => "AddressTaken",
            RegistrationError::InvalidHost(_) => "InvalidHost",
            RegistrationError::Internal(_) => "InternalError",
        }
    }
}

/// What a registering host says about itself.
#[derive(Debug, Clone)]
pub struct HostFacts {
    /// Host name (becomes the instance name).
    pub hostname: String,
    /// Address users reach its SSH server at.
    pub address: String,
    /// Its SSH port.
    pub ssh_port: u16,
    /// OS name, as the host reports it.
    pub os_name: String,
}

struct Claims {
    account_id: String,
    namespace: Namespace,
    region: String,
    expires_at: i64,
    nonce: String,
}

fn sign(key: &str, payload: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("any key length");
    mac.update(b"keyplane-registration:");
    mac.update(payload.as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
}

fn parse(key: &str, token: &str) -> Result<Claims, RegistrationError> {
    let mut parts = token.trim().split('.');
    let (Some(PREFIX), Some(payload), Some(sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(RegistrationError::Invalid);
    };
    let expected = sign(key, payload);
    if expected.len() != sig.len() || !bool::from(expected.as_bytes().ct_eq(sig.as_bytes())) {
        return Err(RegistrationError::Invalid);
    }
    let raw = b64()
        .decode(payload)
        .map_err(|_| RegistrationError::Invalid)?;
    let text = String::from_utf8(raw).map_err(|_| RegistrationError::Invalid)?;
    let f: Vec<&str> = text.split('|').collect();
    let [account_id, ns, region, exp, nonce] = f.as_slice() else {
        return Err(RegistrationError::Invalid);
    };
    Ok(Claims {
        account_id: account_id.to_string(),
        namespace: Namespace::parse(ns).ok_or(RegistrationError::Invalid)?,
        region: region.to_string(),
        expires_at: exp.parse().map_err(|_| RegistrationError::Invalid)?,
        nonce: nonce.to_string(),
    })
}

impl Core {
    /// A registration token for `account`: hosts presenting it become instances of
    /// `namespace` in `region`. Valid once, for `ttl_secs`.
    pub async fn issue_registration_token(
        &self,
        account: &Account,
        namespace: Namespace,
        region: &str,
        ttl_secs: i64,
    ) -> Result<String, RegistrationError> {
        if region.contains('|') || region.is_empty() {
            return Err(RegistrationError::InvalidHost(format!(
                "invalid region `{region}`"
            )));
        }
        let key = self.agent_key_for_registration().await?;
        let payload = format!(
            "{}|{}|{}|{}|{}",
            account.id,
            namespace.as_str(),
            region,
            self.now() + ttl_secs,
            crate::ids::random_token(24)
        );
        let encoded = b64().encode(payload.as_bytes());
        let sig = sign(&key, &encoded);
        Ok(format!("{PREFIX}.{encoded}.{sig}"))
    }

    async fn agent_key_for_registration(&self) -> Result<String, RegistrationError> {
        // The same server-wide key the agent tokens derive from.
        let fresh = crate::ids::random_token(48);
        self.store()
            .setting("agent_token_key", &fresh)
            .await
            .map_err(|e| RegistrationError::Internal(e.to_string()))
    }

    /// Register a host with a token: creates its instance (RUNNING, managed by its agent) and
    /// returns it with the agent token the host must use from now on. The registration is in
    /// the audit trail of the token's account, and so is a refusal once the token is known
    /// to be one this server issued (before that, of no account).
    pub async fn register_host(
        &self,
        token: &str,
        facts: HostFacts,
        req: &crate::audit::RequestMeta,
    ) -> Result<(Instance, String), RegistrationError> {
        let key = self.agent_key_for_registration().await?;
        let (account, result) = match parse(&key, token) {
            Ok(claims) => (
                Some(claims.account_id.clone()),
                self.register_claimed(claims, facts, req).await,
            ),
            Err(e) => (None, Err(e)),
        };
        if let Err(e) = &result {
            let recorded = self
                .record_refusal(
                    req,
                    account.as_deref(),
                    false,
                    vec![],
                    e.code(),
                    &e.to_string(),
                )
                .await;
            if let Err(why) = recorded {
                return Err(RegistrationError::Internal(why.to_string()));
            }
        }
        result
    }

    async fn register_claimed(
        &self,
        claims: Claims,
        facts: HostFacts,
        req: &crate::audit::RequestMeta,
    ) -> Result<(Instance, String), RegistrationError> {
        let now = self.now();
        if claims.expires_at <= now {
            return Err(RegistrationError::Expired);
        }
        let address = host_address(&facts)?;
        let fresh = self
            .remember_nonce("agent-registration", &claims.nonce, claims.expires_at + 1)
            .await
            .map_err(|e| RegistrationError::Internal(e.to_string()))?;
        if !fresh {
            return Err(RegistrationError::Used);
        }
        let inst = agent_host_instance(claims, facts, address.clone(), now);
        let event = self.audit_enabled().then(|| crate::audit::AuditEvent {
            account_id: Some(inst.account_id.clone()),
            ..self.bare_event(
                req.clone(),
                vec![crate::audit::AuditResource::instance(&inst.id)],
            )
        });
        match self
            .store()
            .insert_instances(std::slice::from_ref(&inst), &[], event.as_ref())
            .await
        {
            Ok(()) => {}
            Err(StoreError::Conflict(Conflict::Address)) => {
                return Err(RegistrationError::AddressTaken(address))
            }
            Err(e) => return Err(RegistrationError::Internal(e.to_string())),
        }
        let token = self
            .agent_token(&inst.id)
            .await
            .map_err(|e| RegistrationError::Internal(e.to_string()))?;
        Ok((inst, token))
    }
}

/// The address of a registering host in its one textual form (`::ffff:10.0.0.1` is
/// 10.0.0.1, so that the store's one-instance-per-address rule sees through spellings),
/// once its hostname and address are checked.
fn host_address(facts: &HostFacts) -> Result<String, RegistrationError> {
    if facts.hostname.is_empty() || facts.hostname.len() > 128 {
        return Err(RegistrationError::InvalidHost(
            "hostname must be 1 to 128 characters".into(),
        ));
    }
    match facts.address.parse::<std::net::IpAddr>() {
        Ok(ip) => Ok(ip.to_canonical().to_string()),
        Err(_) => Err(RegistrationError::InvalidHost(format!(
            "`{}` is not an IP address",
            facts.address
        ))),
    }
}

/// The instance of a host registered with `claims`, at `address`: RUNNING, managed by its
/// agent, with a new id of the claimed dialect's shape.
fn agent_host_instance(claims: Claims, facts: HostFacts, address: String, now: i64) -> Instance {
    let (prefix, len) = claims.namespace.instance_id_shape();
    Instance {
        id: crate::ids::new_id(prefix, len),
        account_id: claims.account_id,
        namespace: claims.namespace,
        region: claims.region.clone(),
        zone: format!("{}-1", claims.region),
        host_name: facts.hostname.clone(),
        name: facts.hostname,
        image_id: AGENT_HOST_IMAGE.into(),
        os: OsType::Linux,
        os_name: facts.os_name,
        instance_type: "AGENT.HOST".into(),
        state: InstanceState::Running,
        host: HostKind::Agent,
        private_ip: address,
        ssh_port: facts.ssh_port,
        password_hash: None,
        key_ids: vec![],
        effective_key_ids: vec![],
        desired_generation: 0,
        applied_generation: 0,
        latest_operation: None,
        latest_operation_state: None,
        latest_operation_request_id: None,
        latest_operation_error: None,
        created_at: now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_must_be_signed_by_the_key() {
        let payload = b64().encode("1|cvm|ap-guangzhou|99|n");
        let token = format!("{PREFIX}.{payload}.{}", sign("k", &payload));
        let c = parse("k", &token).ok().unwrap();
        assert_eq!(c.namespace, Namespace::Cvm);
        assert_eq!(c.expires_at, 99);
        assert!(matches!(
            parse("other", &token),
            Err(RegistrationError::Invalid)
        ));
        let other_payload = b64().encode("1|ecs|ap-guangzhou|99|n");
        let altered = format!("{PREFIX}.{other_payload}.{}", sign("k", &payload));
        assert!(matches!(
            parse("k", &altered),
            Err(RegistrationError::Invalid)
        ));
        assert!(parse("k", "garbage").is_err());
    }
}
