//! HTTPS settings of `keyplane serve`, and `keyplane tls ...`.

use crate::config::{self, FileConfig};
use anyhow::{bail, Context, Result};
use clap::Subcommand;
use keyplane_api::certs;
use keyplane_api::config_from_pem_files;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Default TLS listen address.
pub const DEFAULT_LISTEN_TLS: &str = "127.0.0.1:8443";

/// TLS commands.
#[derive(Debug, Subcommand)]
pub enum TlsCommand {
    /// Print the path of the CA certificate the server creates on first start (give it to
    /// clients as the CA to trust).
    CaPath {
        /// Data directory of the server [default: /var/lib/keyplane as root, else $HOME/.local/share/keyplane].
        #[arg(long, env = "KEYPLANE_DATA_DIR")]
        data_dir: Option<PathBuf>,
        /// Configuration file (TOML), for its `data_dir`.
        #[arg(long, env = "KEYPLANE_CONFIG")]
        config: Option<PathBuf>,
    },
}

/// Run a `keyplane tls` command.
pub fn run(cmd: TlsCommand) -> Result<()> {
    match cmd {
        TlsCommand::CaPath { data_dir, config } => {
            let file = FileConfig::load(config.as_deref())?;
            let dir = data_dir
                .or(file.data_dir)
                .unwrap_or_else(config::default_data_dir);
            let path = certs::ca_path(&dir);
            if !path.exists() {
                eprintln!(
                    "keyplane: {} does not exist yet; `keyplane serve` creates it on first start",
                    path.display()
                );
            }
            println!("{}", path.display());
            Ok(())
        }
    }
}

/// Where the server's TLS identity comes from.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    /// The TLS listen address; `None` when TLS is off.
    pub listen: Option<String>,
    /// An operator's certificate chain (PEM), instead of the server's own CA.
    pub cert: Option<PathBuf>,
    /// The operator's private key (PEM).
    pub key: Option<PathBuf>,
}

impl TlsSettings {
    /// From the flag or environment values, then the config file, then the defaults;
    /// `off` or an empty address turns TLS off.
    pub fn resolve(
        listen: Option<String>,
        cert: Option<PathBuf>,
        key: Option<PathBuf>,
        file: &FileConfig,
    ) -> Result<TlsSettings> {
        let listen = listen
            .or_else(|| file.listen_tls.clone())
            .unwrap_or_else(|| DEFAULT_LISTEN_TLS.to_string());
        let listen = match listen.trim() {
            "" | "off" => None,
            addr => Some(addr.to_string()),
        };
        let cert = cert.or_else(|| file.tls_cert.clone());
        let key = key.or_else(|| file.tls_key.clone());
        if cert.is_some() != key.is_some() {
            bail!("give both --tls-cert and --tls-key (or neither, for the server's own CA)");
        }
        Ok(TlsSettings { listen, cert, key })
    }
}

/// The rustls configuration: the operator's certificate and key when given, else a server
/// certificate for `listen_ips` and the usual local names, issued by the server's own CA in
/// `data_dir` (created on first use). Returns it with a line telling where the CA is.
pub fn server_config(
    settings: &TlsSettings,
    data_dir: &Path,
    listen_ips: &[IpAddr],
) -> Result<(Arc<rustls::ServerConfig>, String)> {
    if let (Some(cert), Some(key)) = (&settings.cert, &settings.key) {
        let config = config_from_pem_files(cert, key)?;
        return Ok((config, format!("certificate {}", cert.display())));
    }
    let names = certs::server_names(listen_ips, keyplane_api::served::ALIYUN_REGIONS);
    let files = certs::issue_server_identity(data_dir, &names).with_context(|| {
        format!(
            "cannot set up the TLS certificate in {}",
            data_dir.join("tls").display()
        )
    })?;
    let config = config_from_pem_files(&files.cert_chain, &files.key)?;
    Ok((config, format!("CA {}", files.ca.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_is_on_by_default_and_can_be_turned_off() {
        let file = FileConfig::default();
        let on = TlsSettings::resolve(None, None, None, &file).unwrap();
        assert_eq!(on.listen.as_deref(), Some(DEFAULT_LISTEN_TLS));
        for off in ["off", ""] {
            let s = TlsSettings::resolve(Some(off.into()), None, None, &file).unwrap();
            assert!(s.listen.is_none());
        }
        let file: FileConfig = toml::from_str("listen_tls = \"off\"").unwrap();
        assert!(TlsSettings::resolve(None, None, None, &file)
            .unwrap()
            .listen
            .is_none());
        let half = TlsSettings::resolve(None, Some("c.pem".into()), None, &file);
        assert!(half.is_err());
    }
}
