//! Accounts and their API credentials.

use std::fmt;
use zeroize::Zeroize;

/// A secret that never prints: `Debug` and `Display` show a placeholder, and it is wiped on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wrap a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    /// The secret's bytes, for signing. Never log them.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

/// An account: the unit of isolation. Nothing of one account is visible to another.
#[derive(Debug, Clone)]
pub struct Account {
    /// Stable internal id (also shown as the owner id in ECS answers).
    pub id: String,
    /// Human name, unique.
    pub name: String,
    /// Whether the account may use admin calls.
    pub is_admin: bool,
    /// Tencent-style SecretId (`AKID` + 32).
    pub secret_id: String,
    /// Tencent-style SecretKey.
    pub secret_key: Secret,
    /// Alibaba-style AccessKeyId (`LTAI` + 20).
    pub access_key_id: String,
    /// Alibaba-style AccessKeySecret.
    pub access_key_secret: Secret,
    /// Creation time, unix seconds.
    pub created_at: i64,
}

impl Account {
    /// A new account with freshly generated credentials.
    pub fn generate(name: &str, is_admin: bool, now: i64) -> Account {
        Account {
            id: crate::ids::random_digits(12),
            name: name.to_string(),
            is_admin,
            secret_id: format!("AKID{}", crate::ids::random_token(32)),
            secret_key: Secret::new(crate::ids::random_token(32)),
            access_key_id: format!("LTAI{}", crate::ids::random_token(20)),
            access_key_secret: Secret::new(crate::ids::random_token(30)),
            created_at: now,
        }
    }
}

/// Whether an account name is acceptable: 1 to 64 letters, digits, `-`, `_` or `.`.
pub fn valid_account_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_do_not_print() {
        let a = Account::generate("alice", false, 0);
        let shown = format!("{a:?}");
        assert!(!shown.contains(a.secret_key.expose()));
        assert!(!shown.contains(a.access_key_secret.expose()));
        assert!(shown.contains("[REDACTED]"));
        assert_eq!(a.id.len(), 12);
        assert!(a.id.bytes().all(|b| b.is_ascii_digit()));
    }

    #[test]
    fn account_names() {
        assert!(valid_account_name("team-a_1.x"));
        assert!(!valid_account_name(""));
        assert!(!valid_account_name("a b"));
    }
}
