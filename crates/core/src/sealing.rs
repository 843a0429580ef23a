//! Account secrets at rest: sealed with AES-256-GCM under a master key kept outside the
//! database.
//!
//! Who does what: core seals a secret before it goes to the store and opens it after it comes
//! back ([`Core::account_by_name`], [`Core::account_by_secret_id`] and its siblings); the store keeps the sealed text as
//! an opaque string and knows nothing of keys. The sealed form is self-describing:
//! `v1:` + base64(12-byte random nonce ‖ ciphertext ‖ 16-byte tag), and the associated data
//! binds it to its account, its credential id and its field, so a sealed value copied to
//! another row or column does not open.
//!
//! A wrong or missing master key is found at start, never read as garbage: the store holds a
//! check value sealed with the key ([`Core::prepare_secrets`]), and secrets stored in clear by
//! earlier versions are sealed there too, all in one transaction.

use crate::account::{Account, Secret};
use crate::error::DomainError;
use crate::service::Core;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine;
use rand::RngCore;
use std::fmt;
use thiserror::Error;
use zeroize::Zeroizing;

/// Prefix of the sealed form, version 1.
const V1: &str = "v1:";
/// Setting holding a value sealed with the master key, to recognise the right key.
const CHECK_SETTING: &str = "master_key_check";
/// What the check value holds (and its associated data).
const CHECK_TEXT: &str = "keyplane master key check";

/// Why a master key or a sealed value was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SealError {
    /// The key text is not base64 of 32 bytes.
    #[error("a master key is 32 bytes in base64 (44 characters); this is not one")]
    KeyMalformed,
    /// A stored value is not in the sealed form.
    #[error("a stored secret is not sealed (no `v1:` prefix)")]
    NotSealed,
    /// A sealed value does not open with this key and associated data.
    #[error("a stored secret does not open with this master key")]
    WrongKey,
}

/// The 256-bit master key. Wiped on drop; `Debug` never shows it.
#[derive(Clone)]
pub struct MasterKey(Zeroizing<[u8; 32]>);

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey([REDACTED])")
    }
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

/// The associated data of an account secret: its field, account and credential id.
fn secret_aad(field: &str, account_id: &str, credential_id: &str) -> String {
    format!("keyplane-account-secret/v1/{field}/{account_id}/{credential_id}")
}

impl MasterKey {
    /// A fresh random key.
    pub fn generate() -> MasterKey {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(&mut bytes[..]);
        MasterKey(bytes)
    }

    /// Parse the key file's text: base64 of 32 bytes, surrounding white space ignored.
    pub fn from_text(text: &str) -> Result<MasterKey, SealError> {
        let decoded = Zeroizing::new(
            b64()
                .decode(text.trim())
                .map_err(|_| SealError::KeyMalformed)?,
        );
        let bytes: [u8; 32] = decoded
            .as_slice()
            .try_into()
            .map_err(|_| SealError::KeyMalformed)?;
        Ok(MasterKey(Zeroizing::new(bytes)))
    }

    /// The key file's text (base64 and a newline). Keep it secret.
    pub fn to_text(&self) -> Zeroizing<String> {
        Zeroizing::new(format!("{}\n", b64().encode(&self.0[..])))
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&self.0[..]))
    }

    /// Seal `plaintext`, bound to `aad`.
    pub fn seal(&self, aad: &str, plaintext: &str) -> String {
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let payload = Payload {
            msg: plaintext.as_bytes(),
            aad: aad.as_bytes(),
        };
        let sealed = self
            .cipher()
            .encrypt(Nonce::from_slice(&nonce), payload)
            .expect("AES-GCM encrypts any message of this size");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        format!("{V1}{}", b64().encode(out))
    }

    /// Open a sealed value bound to `aad`.
    pub fn open(&self, aad: &str, sealed: &str) -> Result<Secret, SealError> {
        let body = sealed.strip_prefix(V1).ok_or(SealError::NotSealed)?;
        let raw = b64().decode(body).map_err(|_| SealError::WrongKey)?;
        if raw.len() < 12 + 16 {
            return Err(SealError::WrongKey);
        }
        let (nonce, ciphertext) = raw.split_at(12);
        let payload = Payload {
            msg: ciphertext,
            aad: aad.as_bytes(),
        };
        let plain = Zeroizing::new(
            self.cipher()
                .decrypt(Nonce::from_slice(nonce), payload)
                .map_err(|_| SealError::WrongKey)?,
        );
        let text = std::str::from_utf8(&plain).map_err(|_| SealError::WrongKey)?;
        Ok(Secret::new(text))
    }

    /// `account` with both secrets sealed, as the store keeps it.
    pub fn seal_account(&self, account: &Account) -> Account {
        let mut sealed = account.clone();
        sealed.secret_key = Secret::new(self.seal(
            &secret_aad("secret_key", &account.id, &account.secret_id),
            account.secret_key.expose(),
        ));
        sealed.access_key_secret = Secret::new(self.seal(
            &secret_aad("access_key_secret", &account.id, &account.access_key_id),
            account.access_key_secret.expose(),
        ));
        sealed
    }

    /// `account` as the store keeps it, with both secrets opened.
    pub fn open_account(&self, stored: Account) -> Result<Account, SealError> {
        let mut open = stored;
        open.secret_key = self.open(
            &secret_aad("secret_key", &open.id, &open.secret_id),
            open.secret_key.expose(),
        )?;
        open.access_key_secret = self.open(
            &secret_aad("access_key_secret", &open.id, &open.access_key_id),
            open.access_key_secret.expose(),
        )?;
        Ok(open)
    }
}

/// Whether a stored secret is in the sealed form (rather than in clear, from before sealing).
pub fn is_sealed(stored: &str) -> bool {
    stored.starts_with(V1)
}

/// What [`Core::prepare_secrets`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecretsReport {
    /// Accounts whose secrets were in clear and are now sealed.
    pub sealed_now: usize,
}

/// Why the secrets cannot be used with this key.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KeyCheckError {
    /// The database's secrets were sealed with another master key.
    #[error(
        "the master key does not match this database: its secrets were encrypted with another \
         key (give the original key file; without it the stored credentials are lost)"
    )]
    WrongKey,
    /// A stored account secret does not open although the check value does.
    #[error("account `{0}`: its stored secret does not open with the master key")]
    Corrupt(String),
    /// The store failed.
    #[error("{0}")]
    Store(String),
}

impl Core {
    fn key(&self) -> &MasterKey {
        self.master_key()
    }

    /// `stored` with its secrets opened.
    pub(crate) fn opened(&self, stored: Option<Account>) -> Result<Option<Account>, DomainError> {
        stored
            .map(|a| {
                let name = a.name.clone();
                self.key()
                    .open_account(a)
                    .map_err(|e| DomainError::internal(format!("account `{name}`: {e}")))
            })
            .transpose()
    }

    /// Store `account` (its secrets sealed). Errors as [`Core::create_account`].
    pub async fn add_account(&self, account: &Account) -> Result<(), DomainError> {
        self.insert_sealed(account).await
    }

    /// The account named `name`, secrets opened.
    pub async fn account_by_name(&self, name: &str) -> Result<Option<Account>, DomainError> {
        let stored = self.store().account_by_name(name).await;
        self.opened(stored.map_err(DomainError::internal)?)
    }

    /// Every account, oldest first, with its secrets left sealed: for listing names and ids,
    /// never for signing.
    pub async fn list_accounts(&self) -> Result<Vec<Account>, crate::store::StoreError> {
        self.store().list_accounts().await
    }

    /// The account named `name`, its secrets left sealed: for its id, name and key ids (no
    /// master key is needed).
    pub async fn account_record_by_name(
        &self,
        name: &str,
    ) -> Result<Option<Account>, crate::store::StoreError> {
        self.store().account_by_name(name).await
    }

    /// Check the master key against the database and seal any secret still stored in clear
    /// (from before secrets were sealed), in one transaction. Run at start, before serving.
    pub async fn prepare_secrets(&self) -> Result<SecretsReport, KeyCheckError> {
        let store_err = |e: crate::store::StoreError| KeyCheckError::Store(e.to_string());
        let fresh = self.key().seal(CHECK_TEXT, CHECK_TEXT);
        let check = self
            .store()
            .setting(CHECK_SETTING, &fresh)
            .await
            .map_err(store_err)?;
        match self.key().open(CHECK_TEXT, &check) {
            Ok(s) if s.expose() == CHECK_TEXT => {}
            _ => return Err(KeyCheckError::WrongKey),
        }
        let accounts = self.store().list_accounts().await.map_err(store_err)?;
        let mut updates = Vec::new();
        for a in accounts {
            let (sk, aks) = (a.secret_key.expose(), a.access_key_secret.expose());
            if is_sealed(sk) && is_sealed(aks) {
                // Sealed already: it must open with this key.
                let name = a.name.clone();
                self.key()
                    .open_account(a)
                    .map_err(|_| KeyCheckError::Corrupt(name))?;
                continue;
            }
            if is_sealed(sk) != is_sealed(aks) {
                return Err(KeyCheckError::Corrupt(a.name.clone()));
            }
            let sealed = self.key().seal_account(&a);
            updates.push(crate::store::SecretUpdate {
                account_id: a.id.clone(),
                old_secret_key: a.secret_key.clone(),
                new_secret_key: sealed.secret_key.clone(),
                old_access_key_secret: a.access_key_secret.clone(),
                new_access_key_secret: sealed.access_key_secret.clone(),
            });
        }
        let sealed_now = if updates.is_empty() {
            0
        } else {
            self.store()
                .replace_account_secrets(&updates)
                .await
                .map_err(store_err)?
        };
        Ok(SecretsReport { sealed_now })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_their_key_and_binding() {
        let key = MasterKey::generate();
        let sealed = key.seal("a", "hunter2");
        assert!(is_sealed(&sealed));
        assert!(!sealed.contains("hunter2"));
        assert_eq!(key.open("a", &sealed).unwrap().expose(), "hunter2");
        assert_ne!(sealed, key.seal("a", "hunter2"), "a fresh nonce each time");
        assert_eq!(key.open("b", &sealed), Err(SealError::WrongKey));
        let other = MasterKey::generate();
        assert_eq!(other.open("a", &sealed), Err(SealError::WrongKey));
        assert_eq!(key.open("a", "hunter2"), Err(SealError::NotSealed));
        assert_eq!(key.open("a", "v1:AAAA"), Err(SealError::WrongKey));
    }

    #[test]
    fn accounts_are_bound_to_their_ids() {
        let key = MasterKey::generate();
        let a = Account::generate("alice", false, 0);
        let sealed = key.seal_account(&a);
        assert!(!format!("{:?}", sealed.secret_key.expose()).contains(a.secret_key.expose()));
        let opened = key.open_account(sealed.clone()).unwrap();
        assert_eq!(opened.secret_key, a.secret_key);
        assert_eq!(opened.access_key_secret, a.access_key_secret);
        // Swapped columns or a value moved to another account do not open.
        let mut swapped = sealed.clone();
        std::mem::swap(&mut swapped.secret_key, &mut swapped.access_key_secret);
        assert!(key.open_account(swapped).is_err());
        let mut moved = sealed;
        moved.id = "999999999999".into();
        assert!(key.open_account(moved).is_err());
    }

    #[test]
    fn key_text_round_trips_and_is_checked() {
        let key = MasterKey::generate();
        let again = MasterKey::from_text(&key.to_text()).unwrap();
        assert_eq!(again.open("x", &key.seal("x", "s")).unwrap().expose(), "s");
        assert!(matches!(
            MasterKey::from_text("short"),
            Err(SealError::KeyMalformed)
        ));
        assert!(format!("{key:?}").contains("REDACTED"));
    }
}
