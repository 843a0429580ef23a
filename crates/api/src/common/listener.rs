//! The accept loop: HTTP/1.1 connections served by hyper, each read through [`Sniff`], which
//! carries request lines too long for hyper's URI type past it (see [`super::sniff`]): such a
//! request reaches the router with its real target in a [`LongTarget`] extension and is
//! answered in its own dialect, on a connection that stays usable.

use super::sniff::{LongTargets, Sniff, PLACEHOLDER};
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use axum::serve::Listener;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceExt;

/// The real request target of a request whose request line was too long for hyper.
#[derive(Debug, Clone)]
pub struct LongTarget(pub String);

/// Accept connections on `listener` until `shutdown` resolves; then let open requests finish
/// (for at most 30 s).
pub async fn accept_loop(
    router: Router,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_listener(router, Plain(listener), shutdown).await
}

/// Serve every connection `listener` yields (plain TCP, or TLS streams whose handshake is
/// done) with [`serve_connection`] until `shutdown` resolves; then let open requests finish
/// (for at most 30 s).
pub async fn serve_listener<L>(
    router: Router,
    mut listener: L,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: Listener<Addr = SocketAddr>,
{
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        tokio::spawn(serve_connection(
            router.clone(),
            graceful.watcher(),
            stream,
            peer,
        ));
    }
    drop(listener);
    let _ = tokio::time::timeout(Duration::from_secs(30), graceful.shutdown()).await;
    Ok(())
}

/// Plain TCP: Nagle off on every connection; a failed accept is logged and retried.
struct Plain(TcpListener);

impl Listener for Plain {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        loop {
            match self.0.accept().await {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    return (stream, peer);
                }
                // Out of file descriptors and the like: pause rather than spin.
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

/// Serve one connection (any byte stream: plain TCP here, TLS over it elsewhere) with hyper.
pub async fn serve_connection<S>(router: Router, watcher: Watcher, stream: S, peer: SocketAddr)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let targets = Arc::new(LongTargets::default());
    let io = TokioIo::new(Sniff::new(stream, targets.clone()));
    let service = hyper::service::service_fn(move |mut req: Request<hyper::body::Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        if req.uri().path().starts_with(PLACEHOLDER) {
            if let Some(target) = targets.take(req.uri().path()) {
                tracing::info!(peer = %peer, bytes = target.len(), "request line too long");
                req.extensions_mut().insert(LongTarget(target));
            }
        }
        router.clone().oneshot(req.map(Body::new))
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .serve_connection(io, service);
    if let Err(e) = watcher.watch(conn).await {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}
