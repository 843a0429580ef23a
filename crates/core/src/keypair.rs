//! Key pairs: namespaces, naming rules, public-key validation, generation and fingerprints.

use crate::error::{DomainError, NameProblem};
use base64::Engine;
use md5::{Digest as _, Md5};
use rsa::pkcs1::{EncodeRsaPrivateKey, LineEnding};
use sha2::Sha256;
use ssh_key::public::KeyData;
use ssh_key::PublicKey;

/// Which provider's key-pair namespace a key pair lives in. Key pairs of one namespace are
/// invisible to the others (a `skey-` id is never a Lighthouse key, and so on).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Namespace {
    /// Tencent CVM (API 3.0 and legacy v2 share it).
    Cvm,
    /// Tencent Lighthouse.
    Lighthouse,
    /// Alibaba Cloud ECS.
    Ecs,
}

impl Namespace {
    /// The stable name used in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Namespace::Cvm => "cvm",
            Namespace::Lighthouse => "lighthouse",
            Namespace::Ecs => "ecs",
        }
    }

    /// Parse the storage name.
    pub fn parse(s: &str) -> Option<Namespace> {
        match s {
            "cvm" => Some(Namespace::Cvm),
            "lighthouse" => Some(Namespace::Lighthouse),
            "ecs" => Some(Namespace::Ecs),
            _ => None,
        }
    }

    /// The key pair id prefix and the number of characters after it.
    pub fn key_id_shape(self) -> (&'static str, usize) {
        match self {
            Namespace::Cvm => ("skey-", 8),
            Namespace::Lighthouse => ("lhkp-", 8),
            Namespace::Ecs => ("kp-", 20),
        }
    }

    /// The instance id prefix and the number of characters after it.
    pub fn instance_id_shape(self) -> (&'static str, usize) {
        match self {
            Namespace::Cvm => ("ins-", 8),
            Namespace::Lighthouse => ("lhins-", 8),
            Namespace::Ecs => ("i-", 20),
        }
    }

    /// Whether `id` has this namespace's instance id shape.
    pub fn is_instance_id(self, id: &str) -> bool {
        let (prefix, len) = self.instance_id_shape();
        crate::ids::is_well_formed(id, prefix, len)
    }

    /// A new key pair id of this namespace.
    pub fn new_key_id(self) -> String {
        let (prefix, len) = self.key_id_shape();
        crate::ids::new_id(prefix, len)
    }

    /// Whether `id` has this namespace's key pair id shape.
    pub fn is_key_id(self, id: &str) -> bool {
        let (prefix, len) = self.key_id_shape();
        crate::ids::is_well_formed(id, prefix, len)
    }

    /// Check a key pair name against this namespace's rule.
    pub fn check_key_name(self, name: &str) -> Result<(), DomainError> {
        let problem = match self {
            Namespace::Cvm | Namespace::Lighthouse => tencent_name_problem(name),
            Namespace::Ecs => ecs_name_problem(name),
        };
        match problem {
            None => Ok(()),
            Some(problem) => Err(DomainError::KeyPairNameInvalid {
                name: name.to_string(),
                problem,
            }),
        }
    }
}

/// Tencent: digits, letters and underscore, at most 25 characters.
fn tencent_name_problem(name: &str) -> Option<NameProblem> {
    if name.is_empty() {
        Some(NameProblem::Empty)
    } else if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        Some(NameProblem::IllegalChar)
    } else if name.chars().count() > 25 {
        Some(NameProblem::TooLong { max: 25 })
    } else {
        None
    }
}

/// Alibaba: 2 to 128 characters, starting with a letter (or a CJK character), then letters,
/// digits, `.`, `_`, `-` and `:`; it must not start with `http://` or `https://`.
fn ecs_name_problem(name: &str) -> Option<NameProblem> {
    let count = name.chars().count();
    let first_ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() && (c.is_ascii_alphabetic() || !c.is_ascii()));
    if name.is_empty() {
        Some(NameProblem::Empty)
    } else if count < 2 {
        Some(NameProblem::TooShort { min: 2 })
    } else if count > 128 {
        Some(NameProblem::TooLong { max: 128 })
    } else if !first_ok
        || name.starts_with("http://")
        || name.starts_with("https://")
        || !name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | ':'))
    {
        Some(NameProblem::IllegalChar)
    } else {
        None
    }
}

/// A stored key pair. The private key is never part of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPair {
    /// `skey-xxxxxxxx`, `lhkp-xxxxxxxx` or `kp-...`.
    pub id: String,
    /// Owning account.
    pub account_id: String,
    /// Provider namespace.
    pub namespace: Namespace,
    /// Region, for namespaces whose key pairs are regional (ECS); empty otherwise.
    pub region: String,
    /// Name, unique within account, namespace and region.
    pub name: String,
    /// Free-form description.
    pub description: String,
    /// Project id (Tencent); 0 is the default project.
    pub project_id: i64,
    /// The OpenSSH public key line.
    pub public_key: String,
    /// `SHA256:...` fingerprint as OpenSSH prints it.
    pub fingerprint_sha256: String,
    /// MD5 fingerprint of the key blob, lower-case hex without separators.
    pub fingerprint_md5: String,
    /// Tags as key/value pairs.
    pub tags: Vec<(String, String)>,
    /// Creation time, unix seconds.
    pub created_at: i64,
    /// Instances the key is bound to (filled by the store).
    pub associated_instance_ids: Vec<String>,
}

/// A validated public key with its fingerprints.
#[derive(Debug, Clone)]
pub struct ParsedPublicKey {
    /// The normalised OpenSSH line (`type base64 [comment]`).
    pub line: String,
    /// `SHA256:...`.
    pub fingerprint_sha256: String,
    /// MD5 of the blob, lower-case hex.
    pub fingerprint_md5: String,
}

/// Validate an OpenSSH public key line (rsa of at least 1024 bits, ed25519, ecdsa).
pub fn parse_public_key(text: &str) -> Result<ParsedPublicKey, DomainError> {
    let malformed = |reason: &str| DomainError::PublicKeyMalformed {
        reason: reason.to_string(),
    };
    let line = text.trim();
    if line.is_empty() {
        return Err(malformed("the public key is empty"));
    }
    if line.contains('\n') || line.contains('\r') {
        return Err(malformed("the public key must be a single line"));
    }
    let key = PublicKey::from_openssh(line)
        .map_err(|e| malformed(&format!("not an OpenSSH public key ({e})")))?;
    match key.key_data() {
        KeyData::Rsa(rsa) => {
            let bits = rsa_bits(rsa.n.as_bytes());
            if bits < 1024 {
                return Err(malformed("RSA keys must have at least 1024 bits"));
            }
        }
        KeyData::Ed25519(_) | KeyData::Ecdsa(_) => {}
        _ => return Err(malformed("only rsa, ed25519 and ecdsa keys are supported")),
    }
    let blob = key
        .to_bytes()
        .map_err(|e| malformed(&format!("cannot encode key ({e})")))?;
    let b64 = base64::engine::general_purpose::STANDARD.encode(&blob);
    let comment = key.comment();
    let normalized = if comment.is_empty() {
        format!("{} {}", key.algorithm().as_str(), b64)
    } else {
        format!("{} {} {}", key.algorithm().as_str(), b64, comment)
    };
    Ok(ParsedPublicKey {
        line: normalized,
        fingerprint_sha256: sha256_fingerprint(&blob),
        fingerprint_md5: hex_lower(&Md5::digest(&blob)),
    })
}

fn rsa_bits(modulus: &[u8]) -> usize {
    let trimmed: Vec<u8> = modulus.iter().copied().skip_while(|b| *b == 0).collect();
    match trimmed.first() {
        None => 0,
        Some(first) => (trimmed.len() - 1) * 8 + (8 - first.leading_zeros() as usize),
    }
}

fn sha256_fingerprint(blob: &[u8]) -> String {
    let digest = Sha256::digest(blob);
    let b64 = base64::engine::general_purpose::STANDARD_NO_PAD.encode(digest);
    format!("SHA256:{b64}")
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A freshly generated key pair: the private key goes to the caller once and is never stored.
pub struct GeneratedKey {
    /// The public half, validated and fingerprinted.
    pub public: ParsedPublicKey,
    /// PKCS#1 PEM (`-----BEGIN RSA PRIVATE KEY-----`), as the providers return it.
    pub private_pem: String,
}

impl std::fmt::Debug for GeneratedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeneratedKey")
            .field("public", &self.public)
            .field("private_pem", &"[REDACTED]")
            .finish()
    }
}

/// Generate a 2048-bit RSA key pair whose public key carries `comment`.
pub fn generate_rsa(comment: &str) -> Result<GeneratedKey, DomainError> {
    let mut rng = rand::rngs::OsRng;
    let private = rsa::RsaPrivateKey::new(&mut rng, 2048).map_err(DomainError::internal)?;
    let pem = private
        .to_pkcs1_pem(LineEnding::LF)
        .map_err(DomainError::internal)?;
    let public = ssh_key::public::RsaPublicKey::try_from(&private.to_public_key())
        .map_err(DomainError::internal)?;
    let mut key = PublicKey::from(KeyData::Rsa(public));
    key.set_comment(comment);
    let line = key.to_openssh().map_err(DomainError::internal)?;
    Ok(GeneratedKey {
        public: parse_public_key(&line)?,
        private_pem: pem.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl user@host";

    #[test]
    fn tencent_names() {
        assert!(Namespace::Cvm.check_key_name("my_key_1").is_ok());
        let err = |n: &str| match Namespace::Cvm.check_key_name(n) {
            Err(DomainError::KeyPairNameInvalid { problem, .. }) => problem,
            other => panic!("{other:?}"),
        };
        assert_eq!(err(""), NameProblem::Empty);
        assert_eq!(err("my key"), NameProblem::IllegalChar);
        assert_eq!(err(&"a".repeat(26)), NameProblem::TooLong { max: 25 });
        assert!(Namespace::Cvm.check_key_name(&"a".repeat(25)).is_ok());
    }

    #[test]
    fn ecs_names() {
        assert!(Namespace::Ecs.check_key_name("FinanceJoshuaV25").is_ok());
        assert!(Namespace::Ecs.check_key_name("k1.a-b_c:d").is_ok());
        assert!(Namespace::Ecs.check_key_name("中文key").is_ok());
        assert!(Namespace::Ecs.check_key_name("k").is_err());
        assert!(Namespace::Ecs.check_key_name("1abc").is_err());
        assert!(Namespace::Ecs.check_key_name("http://x").is_err());
        assert!(Namespace::Ecs.check_key_name(&"a".repeat(129)).is_err());
    }

    #[test]
    fn parses_ed25519_and_fingerprints() {
        let k = parse_public_key(ED).unwrap();
        assert_eq!(k.line, ED);
        assert!(k.fingerprint_sha256.starts_with("SHA256:"));
        assert_eq!(k.fingerprint_md5.len(), 32);
    }

    #[test]
    fn refuses_garbage() {
        for bad in [
            "",
            "garbage",
            "ssh-rsa AAAA",
            "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC+x/y=z+==",
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJ",
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\nssh-rsa x",
        ] {
            assert!(
                matches!(parse_public_key(bad), Err(DomainError::PublicKeyMalformed { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn generated_keys_round_trip() {
        let g = generate_rsa("k1").unwrap();
        assert!(g.private_pem.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
        assert!(g.public.line.starts_with("ssh-rsa "));
        assert!(g.public.line.ends_with(" k1"));
        assert!(!format!("{g:?}").contains("PRIVATE"));
    }

    #[test]
    fn key_ids() {
        assert!(Namespace::Cvm.is_key_id(&Namespace::Cvm.new_key_id()));
        assert!(!Namespace::Lighthouse.is_key_id(&Namespace::Cvm.new_key_id()));
        assert!(Namespace::Ecs.is_key_id(&Namespace::Ecs.new_key_id()));
    }
}
