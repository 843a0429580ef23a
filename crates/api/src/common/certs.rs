//! The server's own certificate authority: created on first start in `<data dir>/tls/`
//! (`ca.pem`, and `ca-key.pem` beside it, mode 0600), and the server certificate it issues at
//! every start for the names clients use (`server.pem`, `server-key.pem`, mode 0600).
//! Private keys are written to those files only, never logged.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SerialNumber,
};
use sha2::{Digest, Sha256};
use std::io::{self, Write};
use std::net::IpAddr;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use time::{Duration, OffsetDateTime};

/// The CA certificate of the server whose data directory is `data_dir`.
pub fn ca_path(data_dir: &Path) -> PathBuf {
    data_dir.join("tls").join("ca.pem")
}

/// The files of the issued server identity.
#[derive(Debug, Clone)]
pub struct ServerFiles {
    /// The CA certificate clients trust.
    pub ca: PathBuf,
    /// The server certificate followed by the CA certificate.
    pub cert_chain: PathBuf,
    /// The server's private key (mode 0600).
    pub key: PathBuf,
}

/// The names the server certificate covers: `localhost` and the loopback addresses, the
/// product host names clients are given (`cvm.localhost`, `lighthouse.localhost`,
/// `ecs.<region>.localhost` and `*.<region>.localhost` for every ECS region in `ecs_regions`,
/// since a wildcard covers one label only), `*.localhost`, and each listen address that is
/// not a wildcard address.
pub fn server_names(listen: &[IpAddr], ecs_regions: &[&str]) -> Vec<String> {
    let mut names: Vec<String> = [
        "localhost",
        "*.localhost",
        "cvm.localhost",
        "lighthouse.localhost",
        "ecs.localhost",
        "127.0.0.1",
        "::1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // `*.localhost` alone covers nothing for most clients (rustls and OpenSSL refuse a
    // wildcard over a single label); `*.<region>.localhost` is covered as usual.
    for r in ecs_regions {
        names.push(format!("ecs.{r}.localhost"));
        names.push(format!("*.{r}.localhost"));
    }
    for ip in listen.iter().filter(|ip| !ip.is_unspecified()) {
        let ip = ip.to_string();
        if !names.contains(&ip) {
            names.push(ip);
        }
    }
    names
}

/// Make sure the CA exists under `data_dir` (creating it on first use), then issue a server
/// certificate for `names` signed by it.
pub fn issue_server_identity(data_dir: &Path, names: &[String]) -> io::Result<ServerFiles> {
    let dir = data_dir.join("tls");
    std::fs::create_dir_all(&dir)?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;
    let ca_cert_path = ca_path(data_dir);
    let ca_key_path = dir.join("ca-key.pem");
    let ca_key = match std::fs::read_to_string(&ca_key_path) {
        Ok(pem) if ca_cert_path.exists() => KeyPair::from_pem(&pem).map_err(invalid)?,
        _ => {
            let key = KeyPair::generate().map_err(invalid)?;
            let cert = ca_params(&key).self_signed(&key).map_err(invalid)?;
            write_atomic(&ca_key_path, key.serialize_pem().as_bytes(), 0o600)?;
            write_atomic(&ca_cert_path, cert.pem().as_bytes(), 0o644)?;
            key
        }
    };
    // Rebuilt from the key: the same subject and key identifier as the stored certificate,
    // which is all a certificate it signs refers to.
    let ca_cert = ca_params(&ca_key).self_signed(&ca_key).map_err(invalid)?;
    let ca_pem = std::fs::read_to_string(&ca_cert_path)?;

    let key = KeyPair::generate().map_err(invalid)?;
    let mut params = CertificateParams::new(names.to_vec()).map_err(invalid)?;
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, "keyplane server");
    params.serial_number = Some(random_serial());
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::days(1);
    params.not_after = now + Duration::days(397);
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    let cert = params.signed_by(&key, &ca_cert, &ca_key).map_err(invalid)?;
    let files = ServerFiles {
        ca: ca_cert_path,
        cert_chain: dir.join("server.pem"),
        key: dir.join("server-key.pem"),
    };
    write_atomic(&files.key, key.serialize_pem().as_bytes(), 0o600)?;
    let chain = format!("{}{}", cert.pem(), ca_pem);
    write_atomic(&files.cert_chain, chain.as_bytes(), 0o644)?;
    Ok(files)
}

/// The CA's parameters, all derived from its key (the subject names the key's digest, so two
/// servers' CAs never share a name).
fn ca_params(key: &KeyPair) -> CertificateParams {
    let digest = Sha256::digest(key.public_key_der());
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(
        DnType::CommonName,
        format!("Keyplane local CA {}", hex::encode(&digest[..6])),
    );
    params
        .distinguished_name
        .push(DnType::OrganizationName, "Keyplane");
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::days(1);
    params.not_after = now + Duration::days(3650);
    params.serial_number = Some(random_serial());
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

fn random_serial() -> SerialNumber {
    let mut bytes = uuid::Uuid::new_v4().into_bytes().to_vec();
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01;
    SerialNumber::from(bytes)
}

fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

/// Write `bytes` to `path` with `mode`: a temporary file in the same directory, fsync,
/// rename, directory fsync; never through a symlink at the temporary name.
fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))?;
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ca_is_made_once_and_keys_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let names = server_names(&["0.0.0.0".parse().unwrap()], &["cn-hangzhou"]);
        assert!(names.contains(&"ecs.cn-hangzhou.localhost".to_string()));
        assert!(!names.contains(&"0.0.0.0".to_string()));
        let first = issue_server_identity(dir.path(), &names).unwrap();
        let ca = std::fs::read_to_string(&first.ca).unwrap();
        let second = issue_server_identity(dir.path(), &names).unwrap();
        assert_eq!(std::fs::read_to_string(&second.ca).unwrap(), ca, "one CA");
        for key in [dir.path().join("tls/ca-key.pem"), second.key.clone()] {
            let mode = std::fs::metadata(&key).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{}", key.display());
        }
        let chain = std::fs::read_to_string(&second.cert_chain).unwrap();
        assert!(chain.ends_with(&ca), "the chain ends with the CA");
    }
}
