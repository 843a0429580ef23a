//! Where `keyplane serve` listens: binding its HTTP, HTTPS and metrics listeners, and serving
//! the API on them until SIGINT or SIGTERM.

use crate::tls::TlsSettings;
use anyhow::{Context, Result};
use keyplane_api::AppState;
use std::path::Path;
use std::sync::Arc;

/// Where the API listens.
pub(crate) struct Listen {
    pub(crate) plain: String,
    pub(crate) tls: TlsSettings,
    pub(crate) metrics: MetricsListen,
}

/// Where the metrics are served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MetricsListen {
    /// On the API's own listeners.
    Api,
    /// On a listener of their own.
    Addr(std::net::SocketAddr),
    /// Nowhere.
    Off,
}

impl MetricsListen {
    pub(crate) fn parse(s: &str) -> Result<MetricsListen> {
        match s {
            "api" | "" => Ok(MetricsListen::Api),
            "off" => Ok(MetricsListen::Off),
            addr => addr.parse().map(MetricsListen::Addr).with_context(|| {
                format!("--listen-metrics takes `api`, `off` or an address like 127.0.0.1:9187, not {addr:?}")
            }),
        }
    }
}

/// The bound listeners: plain HTTP, and HTTPS with its configuration when it is on.
pub(crate) struct Bound {
    pub(crate) plain: tokio::net::TcpListener,
    tls: Option<(tokio::net::TcpListener, Arc<rustls::ServerConfig>)>,
    /// The metrics' own listener, when they have one.
    metrics: Option<tokio::net::TcpListener>,
}

/// Bind the listeners and say where they are (HTTPS and metrics first: whoever waits for
/// the `listening on http://` line then has them all).
pub(crate) async fn bind(listen: &Listen, data_dir: &Path) -> Result<Bound> {
    let plain = tokio::net::TcpListener::bind(&listen.plain)
        .await
        .with_context(|| format!("cannot listen on {}", listen.plain))?;
    let addr = plain.local_addr()?;
    let tls = match &listen.tls.listen {
        None => {
            eprintln!("keyplane: HTTPS is off");
            None
        }
        Some(tls_listen) => {
            let tcp = tokio::net::TcpListener::bind(tls_listen).await.with_context(|| {
                format!("cannot listen for HTTPS on {tls_listen} (give --listen-tls ADDR, or --listen-tls off)")
            })?;
            let tls_addr = tcp.local_addr()?;
            let (config, identity) =
                crate::tls::server_config(&listen.tls, data_dir, &[addr.ip(), tls_addr.ip()])?;
            eprintln!("keyplane: listening on https://{tls_addr} ({identity})");
            tracing::info!(addr = %tls_addr, "listening for HTTPS");
            Some((tcp, config))
        }
    };
    let metrics = match listen.metrics {
        MetricsListen::Addr(at) => {
            let tcp = tokio::net::TcpListener::bind(at).await.with_context(|| {
                format!(
                    "cannot listen for metrics on {at} (give --listen-metrics ADDR, api or off)"
                )
            })?;
            eprintln!("keyplane: metrics on http://{}/metrics", tcp.local_addr()?);
            Some(tcp)
        }
        MetricsListen::Api => {
            eprintln!("keyplane: metrics on http://{addr}/metrics");
            None
        }
        MetricsListen::Off => None,
    };
    eprintln!(
        "keyplane: listening on http://{addr} (data directory {})",
        data_dir.display()
    );
    tracing::info!(%addr, "listening");
    Ok(Bound {
        plain,
        tls,
        metrics,
    })
}

/// Serve HTTP and HTTPS with one state until SIGINT or SIGTERM.
pub(crate) async fn serve_api(state: Arc<AppState>, bound: Bound) -> Result<()> {
    let (quit_tx, quit_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = quit_tx.send(true);
    });
    let quit = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|q| *q).await;
    };
    if let Some(tcp) = bound.metrics {
        let app = keyplane_api::metrics_router(state.clone());
        let stop = quit(quit_rx.clone());
        tokio::spawn(async move {
            if let Err(e) = axum::serve(tcp, app).with_graceful_shutdown(stop).await {
                tracing::warn!(error = %e, "the metrics listener stopped");
            }
        });
    }
    let plain = keyplane_api::run(state.clone(), bound.plain, quit(quit_rx.clone()));
    match bound.tls {
        None => plain.await?,
        Some((tcp, config)) => {
            let tls = keyplane_api::run_tls(state, tcp, config, quit(quit_rx));
            tokio::try_join!(plain, tls)?;
        }
    }
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
