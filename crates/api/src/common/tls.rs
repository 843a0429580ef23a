//! HTTPS: the same router behind rustls (TLS 1.2 and 1.3 only). Handshakes run concurrently,
//! each with a deadline, so a silent or broken client holds up no one; a connection that is
//! not TLS (plain HTTP sent to the TLS port, garbage) or offers only older protocols is
//! refused and closed, and the server goes on.

use super::server::{housekeeping, router, AppState};
use axum::serve::Listener;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// How long a client has to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The first byte of a TLS record carrying a handshake message.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// What plain HTTP sent to the TLS port gets before the connection closes.
const PLAIN_HTTP_REFUSAL: &[u8] = b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n\
Connection: close\r\nContent-Length: 48\r\n\r\nThis port speaks HTTPS; plain HTTP is refused.\r\n";

/// A rustls server configuration for `cert_chain` and `key`: TLS 1.3 and 1.2 only, the ring
/// provider, HTTP/1.1.
pub fn server_config(
    cert_chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<ServerConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_single_cert(cert_chain, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Load a PEM certificate chain and a PEM private key (PKCS#8, PKCS#1 or SEC1) and build the
/// server configuration from them.
pub fn config_from_pem_files(cert: &Path, key: &Path) -> io::Result<Arc<ServerConfig>> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| pem_error(cert, e))?;
    if chain.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: no certificate in the file", cert.display()),
        ));
    }
    // The key's error never carries key material, only where it failed.
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| pem_error(key, e))?;
    server_config(chain, key_der).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{} and {} do not make a usable TLS identity: {e}",
                cert.display(),
                key.display()
            ),
        )
    })
}

fn pem_error(path: &Path, e: rustls::pki_types::pem::Error) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("cannot read {}: {e}", path.display()),
    )
}

/// A listener yielding connections whose TLS handshake has completed.
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
    accepting: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    /// Accept TLS on `listener` with `config`.
    pub fn new(listener: TcpListener, config: Arc<ServerConfig>) -> io::Result<TlsListener> {
        let local = listener.local_addr()?;
        let (tx, ready) = mpsc::channel(256);
        let accepting = tokio::spawn(accept_loop(listener, TlsAcceptor::from(config), tx));
        Ok(TlsListener {
            ready,
            local,
            accepting,
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

impl Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(conn) => conn,
            // The accept loop only ends when this listener is dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    ready: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors and the like: back off briefly and go on.
                    tracing::warn!(error = %e, "cannot accept a TLS connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = ready.closed() => return,
        };
        let (acceptor, ready) = (acceptor.clone(), ready.clone());
        tokio::spawn(async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake(&acceptor, tcp)).await {
                Ok(Ok(stream)) => {
                    let _ = ready.send((stream, peer)).await;
                }
                Ok(Err(e)) => tracing::info!(%peer, error = %e, "TLS connection refused"),
                Err(_) => tracing::info!(%peer, "TLS connection refused: handshake timed out"),
            }
        });
    }
}

/// The TLS handshake, after a look at the first byte: a client speaking plain HTTP is told
/// so in plain HTTP, anything else that is not a TLS handshake is closed at once.
async fn handshake(acceptor: &TlsAcceptor, mut tcp: TcpStream) -> io::Result<TlsStream<TcpStream>> {
    let _ = tcp.set_nodelay(true);
    let mut first = [0u8; 1];
    if tcp.peek(&mut first).await? == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "closed before the handshake",
        ));
    }
    if first[0] != TLS_HANDSHAKE_RECORD {
        let plain_http = first[0].is_ascii_uppercase();
        if plain_http {
            let _ = tcp.write_all(PLAIN_HTTP_REFUSAL).await;
        }
        let _ = tcp.shutdown().await;
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            if plain_http {
                "plain HTTP sent to the TLS port"
            } else {
                "not a TLS handshake"
            },
        ));
    }
    acceptor.accept(tcp).await
}

/// Serve HTTPS on `listener` with `config` until `shutdown` resolves, then drain open
/// requests. Each connection, once its handshake is done, is served exactly as a plain HTTP
/// one ([`serve_connection`](super::listener::serve_connection)): the client's address
/// reaches handlers as `ConnectInfo<SocketAddr>`, and a request line too long for hyper gets
/// its dialect's size error.
pub async fn run_tls(
    state: Arc<AppState>,
    listener: TcpListener,
    config: Arc<ServerConfig>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let listener = TlsListener::new(listener, config)?;
    let housekeeping = housekeeping(state.clone());
    let result = super::listener::serve_listener(
        router(state).layer(axum::Extension(super::server::ServedOverTls)),
        listener,
        shutdown,
    )
    .await;
    housekeeping.abort();
    result
}
