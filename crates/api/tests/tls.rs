//! HTTPS with the server's own CA: the issued certificate verifies for the names clients use,
//! the client's address reaches handlers, and broken clients (garbage, plain HTTP, TLS 1.0 or
//! 1.1 only) are refused while the server goes on serving; a request line too long for hyper
//! gets its dialect's size error, as over plain HTTP.

use axum::extract::ConnectInfo;
use axum::routing::get;
use axum::serve::ListenerExt;
use keyplane_api::certs::{issue_server_identity, server_names};
use keyplane_api::{config_from_pem_files, run_tls, TlsListener};
use keyplane_api::{ApiConfig, AppState};
use keyplane_core::service::SystemClock;
use keyplane_core::Core;
use keyplane_store::SqliteStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Every read in these tests ends by this deadline (a hung server fails the test).
const DEADLINE: Duration = Duration::from_secs(20);

struct Tls {
    addr: SocketAddr,
    ca: std::path::PathBuf,
    _dir: tempfile::TempDir,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// The API over HTTPS on 127.0.0.1:0 with a CA made in a fresh data directory.
async fn serve_api() -> Tls {
    let dir = tempfile::tempdir().unwrap();
    let names = server_names(&["127.0.0.1".parse().unwrap()], &["cn-hangzhou"]);
    let files = issue_server_identity(dir.path(), &names).unwrap();
    let config = config_from_pem_files(&files.cert_chain, &files.key).unwrap();
    let store = Arc::new(SqliteStore::in_memory().unwrap());
    let state = AppState::new(
        Core::new(store, Arc::new(SystemClock)),
        ApiConfig::default(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(run_tls(state, listener, config, async move {
        let _ = stopped.await;
    }));
    Tls {
        addr,
        ca: files.ca,
        _dir: dir,
        _stop: stop,
    }
}

fn client_config(ca: &Path) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(ca).unwrap())
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// GET `path` over TLS to `addr`, verifying the certificate for `name`; the whole answer.
async fn https_get(addr: SocketAddr, ca: &Path, name: &str, path: &str) -> String {
    let connector = tokio_rustls::TlsConnector::from(client_config(ca));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let server_name = ServerName::try_from(name.to_string()).unwrap();
    let mut tls = tokio::time::timeout(DEADLINE, connector.connect(server_name, tcp))
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("handshake for {name}: {e}"));
    let request = format!("GET {path} HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n");
    tls.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(DEADLINE, tls.read_to_end(&mut answer))
        .await
        .unwrap()
        .unwrap();
    String::from_utf8(answer).unwrap()
}

/// Send `bytes` on a plain TCP connection and read what comes back until the server closes.
async fn raw_exchange(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(bytes).await.unwrap();
    let mut answer = Vec::new();
    // A reset after the server's last word is a refusal too.
    let _ = tokio::time::timeout(DEADLINE, tcp.read_to_end(&mut answer))
        .await
        .expect("the server closes a refused connection");
    answer
}

async fn still_serves(t: &Tls) {
    let answer = https_get(t.addr, &t.ca, "localhost", "/healthz").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test]
async fn the_certificate_verifies_for_every_name_clients_use() {
    let t = serve_api().await;
    for name in [
        "localhost",
        "127.0.0.1",
        "cvm.localhost",
        "lighthouse.localhost",
        "ecs.cn-hangzhou.localhost",
        "vpc.cn-hangzhou.localhost",
    ] {
        let answer = https_get(t.addr, &t.ca, name, "/healthz").await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{name}: {answer}");
        assert!(answer.ends_with("ok\n"), "{name}: {answer}");
    }
}

#[tokio::test]
async fn a_name_the_certificate_does_not_cover_fails_the_handshake() {
    let t = serve_api().await;
    let connector = tokio_rustls::TlsConnector::from(client_config(&t.ca));
    let tcp = TcpStream::connect(t.addr).await.unwrap();
    let name = ServerName::try_from("example.com").unwrap();
    let r = tokio::time::timeout(DEADLINE, connector.connect(name, tcp))
        .await
        .unwrap();
    assert!(r.is_err());
    still_serves(&t).await;
}

#[tokio::test]
async fn the_client_address_reaches_handlers() {
    let dir = tempfile::tempdir().unwrap();
    let names = server_names(&[], &[]);
    let files = issue_server_identity(dir.path(), &names).unwrap();
    let config = config_from_pem_files(&files.cert_chain, &files.key).unwrap();
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let listener = TlsListener::new(tcp, config).unwrap().tap_io(|_| {});
    let app = axum::Router::new().route(
        "/peer",
        get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.to_string() }),
    );
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    });
    let answer = https_get(addr, &files.ca, "localhost", "/peer").await;
    let body = answer.split("\r\n\r\n").nth(1).unwrap();
    let peer: SocketAddr = body.parse().unwrap_or_else(|_| panic!("{answer}"));
    assert_eq!(peer.ip().to_string(), "127.0.0.1");
    assert_ne!(peer.port(), addr.port());
}

#[tokio::test]
async fn plain_http_on_the_tls_port_is_told_and_closed() {
    let t = serve_api().await;
    let answer = raw_exchange(t.addr, b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n").await;
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{text}");
    assert!(text.contains("HTTPS"), "{text}");
    still_serves(&t).await;
}

#[tokio::test]
async fn garbage_is_refused() {
    let t = serve_api().await;
    // Not a TLS record at all.
    let answer = raw_exchange(t.addr, &[0x00, 0xff, 0x13, 0x37, 0x42, 0x99, 0x01, 0x02]).await;
    assert!(answer.is_empty(), "{answer:?}");
    // A handshake record header followed by nonsense: at most a TLS alert comes back.
    let mut bogus = vec![0x16, 0x03, 0x01, 0x00, 0x20];
    bogus.extend(std::iter::repeat_n(0xab, 32));
    let answer = raw_exchange(t.addr, &bogus).await;
    assert!(answer.is_empty() || answer[0] == 0x15, "{answer:?}");
    still_serves(&t).await;
}

/// A ClientHello offering only `version` (0x0301 TLS 1.0, 0x0302 TLS 1.1), with no
/// supported_versions extension, as an old client sends it.
fn legacy_client_hello(version: u16) -> Vec<u8> {
    let [major, minor] = version.to_be_bytes();
    let mut body = vec![major, minor];
    body.extend([0x5a; 32]); // random
    body.push(0); // no session id
    body.extend([0x00, 0x04, 0x00, 0x2f, 0x00, 0x35]); // AES128-SHA, AES256-SHA
    body.extend([0x01, 0x00]); // null compression
    let mut handshake = vec![0x01];
    handshake.extend(&(body.len() as u32).to_be_bytes()[1..]);
    handshake.extend(body);
    let mut record = vec![0x16, 0x03, 0x01];
    record.extend((handshake.len() as u16).to_be_bytes());
    record.extend(handshake);
    record
}

#[tokio::test]
async fn clients_offering_only_tls_1_0_or_1_1_are_refused() {
    let t = serve_api().await;
    for version in [0x0301, 0x0302] {
        let answer = raw_exchange(t.addr, &legacy_client_hello(version)).await;
        // A TLS alert record, fatal (2), then the close.
        assert!(answer.len() >= 7, "{version:#x}: {answer:?}");
        assert_eq!(answer[0], 0x15, "{version:#x}: an alert record: {answer:?}");
        assert_eq!(answer[5], 2, "{version:#x}: a fatal alert: {answer:?}");
    }
    still_serves(&t).await;
}

/// Read one answer (head and a Content-Length body) from a kept-alive connection.
async fn read_one(s: &mut (impl tokio::io::AsyncRead + Unpin)) -> String {
    let mut out = Vec::new();
    let mut byte = [0u8; 1];
    while !out.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(DEADLINE, s.read(&mut byte))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(n, 1, "the connection stays open");
        out.push(byte[0]);
    }
    let head = String::from_utf8(out.clone()).unwrap().to_ascii_lowercase();
    let length: usize = head
        .split("content-length: ")
        .nth(1)
        .and_then(|v| v.split("\r\n").next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    tokio::time::timeout(DEADLINE, s.read_exact(&mut body))
        .await
        .unwrap()
        .unwrap();
    out.extend_from_slice(&body);
    String::from_utf8(out).unwrap()
}

#[tokio::test]
async fn a_long_request_line_over_https_gets_its_dialects_size_error() {
    let t = serve_api().await;
    let connector = tokio_rustls::TlsConnector::from(client_config(&t.ca));
    let tcp = TcpStream::connect(t.addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let mut tls = tokio::time::timeout(DEADLINE, connector.connect(name, tcp))
        .await
        .unwrap()
        .unwrap();
    // One kept-alive connection: each long request line is answered in its own dialect's
    // envelope with its size error, and the connection goes on serving.
    let pad = "A".repeat(200 * 1024);
    let ecs = format!("/?Action=DescribeKeyPairs&Version=2014-05-26&X={pad}");
    let tc3 = format!("/?Action=DescribeKeyPairs&Version=2017-03-12&X={pad}");
    let legacy = format!("/v2/index.php?Action=BindInstanceKey&X={pad}");
    for (target, status, expected) in [
        ("/healthz", "200", "ok\n"),
        (ecs.as_str(), "400", "\"Code\":\"InvalidParameter\""),
        (tc3.as_str(), "200", "\"Code\":\"RequestSizeLimitExceeded\""),
        (legacy.as_str(), "200", "\"codeDesc\":\"InvalidParameter\""),
        ("/healthz", "200", "ok\n"),
    ] {
        let req = format!("GET {target} HTTP/1.1\r\nHost: localhost\r\n\r\n");
        tls.write_all(req.as_bytes()).await.unwrap();
        let answer = read_one(&mut tls).await;
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}")),
            "{answer}"
        );
        assert!(answer.contains(expected), "{answer}");
    }
}
