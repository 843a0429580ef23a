//! TC3 signing keys derived once per secret, UTC date and service, and kept for the requests
//! that follow. A key is found by the secret itself, so a changed secret never finds the key
//! of the old one; the secrets kept here are wiped when they are dropped.

use super::signature::tc3_signing_key;
use std::collections::HashMap;
use std::sync::Mutex;
use zeroize::{Zeroize, Zeroizing};

/// Signing keys kept at most; beyond that the set starts again empty (yesterday's keys go).
const CAPACITY: usize = 4096;

/// `secret \n date \n service`, wiped on drop, never printed.
#[derive(PartialEq, Eq, Hash)]
struct Scope(String);

impl Drop for Scope {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// The signing keys derived so far.
#[derive(Default)]
pub struct SigningKeys {
    keys: Mutex<HashMap<Scope, Zeroizing<[u8; 32]>>>,
}

impl std::fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKeys([REDACTED])")
    }
}

impl SigningKeys {
    /// The signing key of `secret_key` for `date` and `service`, derived on first use.
    pub fn get(&self, secret_key: &str, date: &str, service: &str) -> Zeroizing<[u8; 32]> {
        let mut text = String::with_capacity(secret_key.len() + date.len() + service.len() + 2);
        text.push_str(secret_key);
        text.push('\n');
        text.push_str(date);
        text.push('\n');
        text.push_str(service);
        let scope = Scope(text);
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(key) = keys.get(&scope) {
            return key.clone();
        }
        let key = Zeroizing::new(tc3_signing_key(secret_key, date, service));
        if keys.len() >= CAPACITY {
            keys.clear();
        }
        keys.insert(scope, key.clone());
        key
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tencent::signature::{tc3_signature, tc3_signature_with_key};

    #[test]
    fn keys_are_derived_once_per_secret_date_and_service() {
        let keys = SigningKeys::default();
        let k = keys.get("secret", "2024-01-02", "cvm");
        assert_eq!(*k, tc3_signing_key("secret", "2024-01-02", "cvm"));
        assert_eq!(
            tc3_signature_with_key(&k, "sts"),
            tc3_signature("secret", "2024-01-02", "cvm", "sts")
        );
        assert_eq!(keys.keys.lock().unwrap().len(), 1);
        assert_eq!(*keys.get("secret", "2024-01-02", "cvm"), *k);
        assert_eq!(
            keys.keys.lock().unwrap().len(),
            1,
            "found, not derived again"
        );
        for (secret, date, service) in [
            ("other", "2024-01-02", "cvm"),
            ("secret", "2024-01-03", "cvm"),
            ("secret", "2024-01-02", "lighthouse"),
        ] {
            assert_eq!(
                *keys.get(secret, date, service),
                tc3_signing_key(secret, date, service)
            );
        }
        assert_eq!(keys.keys.lock().unwrap().len(), 4);
        assert!(!format!("{keys:?}").contains("secret"));
    }
}
