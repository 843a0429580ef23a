//! The web console's sign-in and what it shows: one-time login links exchanged for
//! expiring sessions, and an account's instances, key pairs and agents.
//!
//! Tokens are random, high-entropy strings; the store keeps only their SHA-256, so a copy of
//! the database signs nobody in. A login is single-use on every node sharing the store (the
//! store deletes it in the transaction that records the session).

use crate::account::Secret;
use crate::error::DomainError;
use crate::instance::{HostKind, Instance};
use crate::keypair::{KeyPair, Namespace};
use crate::service::Core;
use crate::store::{ConsoleAccount, ConsoleTokenKind};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// How long a login link stays valid, seconds.
pub const LOGIN_TTL_SECS: i64 = 10 * 60;
/// How long a console session lasts, seconds.
pub const SESSION_TTL_SECS: i64 = 12 * 60 * 60;
/// An agent's visits are recorded at most this often per node, seconds (it polls far more
/// often; "last seen" needs no finer grain).
pub const AGENT_SEEN_GRAIN_SECS: i64 = 10;

/// Characters in a login or session token (62 symbols each: about 285 bits).
const TOKEN_LEN: usize = 48;

/// Every namespace, in the order the console lists them.
pub const NAMESPACES: [Namespace; 3] = [Namespace::Cvm, Namespace::Lighthouse, Namespace::Ecs];

/// A one-time login, as handed to the person who asked for it.
pub struct ConsoleLogin {
    /// The token (goes into the login URL; stored nowhere).
    pub token: Secret,
    /// The account it signs in as.
    pub account: ConsoleAccount,
    /// When it stops working, unix seconds.
    pub expires_at: i64,
}

/// A console session, just begun.
pub struct ConsoleSession {
    /// The token (goes into the session cookie; stored nowhere).
    pub token: Secret,
    /// The account signed in.
    pub account: ConsoleAccount,
    /// When it ends, unix seconds.
    pub expires_at: i64,
}

/// Everything of one account the console shows.
#[derive(Debug, Clone)]
pub struct AccountOverview {
    /// Instances of every namespace, by namespace then age.
    pub instances: Vec<Instance>,
    /// Key pairs of every namespace, by namespace then age, with the instances they are bound to.
    pub key_pairs: Vec<KeyPair>,
    /// When each instance's agent was last seen (instance id to unix seconds).
    pub agents_seen: HashMap<String, i64>,
}

impl AccountOverview {
    /// The agent-managed hosts among the instances.
    pub fn agent_hosts(&self) -> impl Iterator<Item = &Instance> {
        self.instances.iter().filter(|i| i.host == HostKind::Agent)
    }

    /// The name of key pair `id`, if the account has it.
    pub fn key_name(&self, id: &str) -> Option<&str> {
        self.key_pairs
            .iter()
            .find(|k| k.id == id)
            .map(|k| k.name.as_str())
    }
}

/// Unix seconds as `YYYY-MM-DD hh:mm:ss UTC`.
pub fn utc(unix: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(unix) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        Err(_) => unix.to_string(),
    }
}

/// A UTC time as a form's `datetime-local` field sends it (`YYYY-MM-DDThh:mm`, seconds
/// optional), as unix seconds.
pub fn parse_utc(text: &str) -> Option<i64> {
    use time::macros::format_description;
    let text = text.trim();
    let with_seconds = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    let minutes = format_description!("[year]-[month]-[day]T[hour]:[minute]");
    time::PrimitiveDateTime::parse(text, with_seconds)
        .or_else(|_| time::PrimitiveDateTime::parse(text, minutes))
        .ok()
        .map(|t| t.assume_utc().unix_timestamp())
}

/// SHA-256 of a token, lowercase hex: what the store keeps.
pub fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn internal(e: crate::store::StoreError) -> DomainError {
    DomainError::internal(e)
}

impl Core {
    /// Issue a one-time login for the account named `account_name`, valid for
    /// [`LOGIN_TTL_SECS`].
    pub async fn issue_console_login(
        &self,
        account_name: &str,
    ) -> Result<ConsoleLogin, DomainError> {
        let account = self
            .store()
            .account_by_name(account_name)
            .await
            .map_err(internal)?
            .ok_or_else(|| DomainError::InvalidParameterValue {
                param: "account".into(),
                reason: format!("there is no account named `{account_name}`"),
            })?;
        let token = Secret::new(crate::ids::random_token(TOKEN_LEN));
        let now = self.now();
        let expires_at = now + LOGIN_TTL_SECS;
        self.store()
            .insert_console_token(
                &token_hash(token.expose()),
                ConsoleTokenKind::Login,
                &account.id,
                expires_at,
                now,
            )
            .await
            .map_err(internal)?;
        Ok(ConsoleLogin {
            token,
            account: ConsoleAccount {
                id: account.id,
                name: account.name,
            },
            expires_at,
        })
    }

    /// Exchange a login token for a new session, once: `None` when the token is unknown,
    /// expired or already used (on any node).
    pub async fn redeem_console_login(
        &self,
        login_token: &str,
    ) -> Result<Option<ConsoleSession>, DomainError> {
        let token = Secret::new(crate::ids::random_token(TOKEN_LEN));
        let now = self.now();
        let expires_at = now + SESSION_TTL_SECS;
        let account = self
            .store()
            .redeem_console_login(
                &token_hash(login_token),
                &token_hash(token.expose()),
                expires_at,
                now,
            )
            .await
            .map_err(internal)?;
        Ok(account.map(|account| ConsoleSession {
            token,
            account,
            expires_at,
        }))
    }

    /// The account signed in with session token `token`, while the session lasts.
    pub async fn console_account(
        &self,
        token: &str,
    ) -> Result<Option<ConsoleAccount>, DomainError> {
        self.store()
            .console_session(&token_hash(token), self.now())
            .await
            .map_err(internal)
    }

    /// End the session with token `token` (signing out).
    pub async fn end_console_session(&self, token: &str) -> Result<(), DomainError> {
        self.store()
            .delete_console_token(&token_hash(token))
            .await
            .map_err(internal)
    }

    /// The account's instances of every namespace.
    pub async fn account_instances(&self, account_id: &str) -> Result<Vec<Instance>, DomainError> {
        let mut all = Vec::new();
        for ns in NAMESPACES {
            all.extend(
                self.store()
                    .list_instances(account_id, ns)
                    .await
                    .map_err(internal)?,
            );
        }
        Ok(all)
    }

    /// The account's key pairs of every namespace, with the instances they are bound to.
    pub async fn account_key_pairs(&self, account_id: &str) -> Result<Vec<KeyPair>, DomainError> {
        let mut all = Vec::new();
        for ns in NAMESPACES {
            all.extend(
                self.store()
                    .list_key_pairs(account_id, ns, None)
                    .await
                    .map_err(internal)?,
            );
        }
        Ok(all)
    }

    /// Everything of the account the console shows.
    pub async fn account_overview(&self, account_id: &str) -> Result<AccountOverview, DomainError> {
        Ok(AccountOverview {
            instances: self.account_instances(account_id).await?,
            key_pairs: self.account_key_pairs(account_id).await?,
            agents_seen: self
                .store()
                .agents_seen(account_id)
                .await
                .map_err(internal)?
                .into_iter()
                .collect(),
        })
    }

    /// Note that the agent of `instance_id` was just heard from. Written at most every
    /// [`AGENT_SEEN_GRAIN_SECS`] per instance by this node.
    pub async fn note_agent_seen(&self, instance_id: &str) -> Result<(), DomainError> {
        let now = self.now();
        {
            let mut last = self.agent_seen_cache();
            if last
                .get(instance_id)
                .is_some_and(|at| now - at < AGENT_SEEN_GRAIN_SECS)
            {
                return Ok(());
            }
            if last.len() > 100_000 {
                last.clear();
            }
            last.insert(instance_id.to_string(), now);
        }
        self.store()
            .record_agent_seen(instance_id, now)
            .await
            .map_err(internal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_hashes_are_sha256_hex() {
        assert_eq!(
            token_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_ne!(token_hash("abc"), token_hash("abd"));
    }

    #[test]
    fn form_times_are_utc() {
        assert_eq!(parse_utc("1970-01-01T00:01"), Some(60));
        assert_eq!(parse_utc("2000-02-29T00:00:05"), Some(951_782_405));
        assert_eq!(parse_utc("yesterday"), None);
        assert_eq!(
            utc(parse_utc("2024-02-29T23:59:59").unwrap()),
            "2024-02-29 23:59:59 UTC"
        );
    }
}
