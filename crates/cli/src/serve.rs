//! `keyplane serve`.

use crate::config::{self, DatabaseUrl, FileConfig};
use crate::tls::TlsSettings;
use anyhow::{Context, Result};
use clap::Args;
use keyplane_api::{ApiConfig, AppState};
use keyplane_core::audit::Retention;
use keyplane_core::compute::HostCapacity;
use keyplane_core::Core;
use keyplane_instances::worker::{Worker, WorkerConfig};
use keyplane_instances::{SandboxConfig, SandboxHost};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Flags of `keyplane serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8787].
    #[arg(long, env = "KEYPLANE_LISTEN")]
    listen: Option<String>,
    /// Address to listen on for HTTPS, or `off` [default: 127.0.0.1:8443].
    #[arg(long, env = "KEYPLANE_LISTEN_TLS")]
    listen_tls: Option<String>,
    /// TLS certificate chain (PEM) to serve instead of one issued by the server's own CA
    /// (`<data dir>/tls/ca.pem`); needs --tls-key.
    #[arg(long, env = "KEYPLANE_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// Private key (PEM) of --tls-cert.
    #[arg(long, env = "KEYPLANE_TLS_KEY")]
    tls_key: Option<PathBuf>,
    /// Where Prometheus metrics (`GET /metrics`) are served: `api` (on the API's own
    /// listeners), an address such as 127.0.0.1:9187, or `off` [default: api].
    #[arg(long, env = "KEYPLANE_LISTEN_METRICS")]
    listen_metrics: Option<String>,
    /// Data directory (database, instance files) [default: /var/lib/keyplane as root, else $HOME/.local/share/keyplane].
    #[arg(long, env = "KEYPLANE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Shared database, `postgres://user:password@host:port/database`, for several nodes
    /// [default: SQLite in the data directory].
    #[arg(long, env = "KEYPLANE_DATABASE")]
    database: Option<DatabaseUrl>,
    /// Configuration file (TOML; see `keyplane default-config`).
    #[arg(long, env = "KEYPLANE_CONFIG")]
    config: Option<PathBuf>,
    /// Requests per second per account and API action; 0 disables [default: 10].
    #[arg(long, env = "KEYPLANE_RATE_LIMIT")]
    rate_limit: Option<u32>,
    /// Largest accepted clock skew of signed requests, seconds [default: 300].
    #[arg(long, env = "KEYPLANE_MAX_CLOCK_SKEW_SECS")]
    max_clock_skew_secs: Option<i64>,
    /// Log filter, e.g. `info` or `keyplane_api=debug` [default: info].
    #[arg(long, env = "KEYPLANE_LOG")]
    log: Option<String>,
    /// Where sandbox instances and their images live [default: <data dir>/sandbox].
    #[arg(long, env = "KEYPLANE_SANDBOX_DIR")]
    sandbox_dir: Option<PathBuf>,
    /// Image tarballs, built the first time an image is needed; several servers on one host
    /// may share it [default: <data dir>/image-cache].
    #[arg(long, env = "KEYPLANE_IMAGE_CACHE")]
    image_cache: Option<PathBuf>,
    /// Give sandbox instances no outbound network access (they still reach their VPC).
    #[arg(long, env = "KEYPLANE_NO_OUTBOUND")]
    no_outbound: bool,
    /// TCP port of each sandbox instance's SSH server, on its own loopback address [default: 22].
    #[arg(long, env = "KEYPLANE_SSH_PORT")]
    ssh_port: Option<u16>,
    /// Key file account secrets are encrypted with, created (mode 0600) if missing; nodes
    /// sharing a database must share it [default: <data dir>/master.key].
    #[arg(long, env = "KEYPLANE_MASTER_KEY_FILE")]
    master_key_file: Option<PathBuf>,
    /// Keep no audit trail (changes and refused requests are then not recorded).
    #[arg(long, env = "KEYPLANE_NO_AUDIT")]
    no_audit: bool,
    /// Days audit events are kept [default: 90].
    #[arg(long, env = "KEYPLANE_AUDIT_RETENTION_DAYS", value_parser = clap::value_parser!(u32).range(1..))]
    audit_retention_days: Option<u32>,
    /// Most audit events kept; the oldest go first [default: 1000000].
    #[arg(long, env = "KEYPLANE_AUDIT_MAX_EVENTS", value_parser = clap::value_parser!(u64).range(1..))]
    audit_max_events: Option<u64>,
}

/// Run the server until SIGINT or SIGTERM.
pub fn run(args: ServeArgs) -> Result<()> {
    let file = FileConfig::load(args.config.as_deref())?;
    let tls = TlsSettings::resolve(args.listen_tls, args.tls_cert, args.tls_key, &file)?;
    let listen = args
        .listen
        .or(file.listen)
        .unwrap_or_else(|| config::DEFAULT_LISTEN.to_string());
    let data_dir = args
        .data_dir
        .or(file.data_dir)
        .unwrap_or_else(config::default_data_dir);
    let database = args
        .database
        .or(file.database)
        .filter(|url| !url.expose().is_empty());
    let metrics = MetricsListen::parse(
        args.listen_metrics
            .or(file.listen_metrics)
            .as_deref()
            .unwrap_or("api"),
    )?;
    let api = ApiConfig {
        metrics_on_api: metrics == MetricsListen::Api,
        rate_limit_per_second: args.rate_limit.or(file.rate_limit).unwrap_or(10),
        max_clock_skew_secs: args
            .max_clock_skew_secs
            .or(file.max_clock_skew_secs)
            .unwrap_or(300),
        ..ApiConfig::default()
    };
    let log = args.log.or(file.log).unwrap_or_else(|| "info".into());
    let key_file = crate::master_key::path(
        args.master_key_file.or(file.master_key_file).as_deref(),
        &data_dir,
    );
    let (dir, image_cache) = crate::image::directories(
        &data_dir,
        args.sandbox_dir.or(file.sandbox_dir),
        args.image_cache.or(file.image_cache),
    );
    let audit = AuditSettings {
        on: !args.no_audit && file.audit.unwrap_or(true),
        retention: Retention {
            max_age_secs: i64::from(
                args.audit_retention_days
                    .or(file.audit_retention_days)
                    .unwrap_or(90),
            ) * 24
                * 3600,
            max_events: args
                .audit_max_events
                .or(file.audit_max_events)
                .unwrap_or(Retention::default().max_events),
        },
    };
    if audit.retention.max_age_secs <= 0 || audit.retention.max_events == 0 {
        anyhow::bail!("audit_retention_days and audit_max_events must be at least 1");
    }
    let sandbox = SandboxSettings {
        dir,
        image_cache,
        ssh_port: args.ssh_port.or(file.ssh_port).unwrap_or(22),
        outbound: !args.no_outbound && file.instance_outbound.unwrap_or(true),
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&log).context("invalid log filter")?,
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let listen = Listen {
        plain: listen,
        tls,
        metrics,
    };
    let places = Places {
        data_dir,
        database,
        key_file,
    };
    let result = runtime.block_on(serve(places, listen, api, sandbox, audit));
    // Why a timeout: an image being installed runs on a blocking thread; stopping must not
    // wait for it (a half-installed image is staged apart and removed at the next start).
    runtime.shutdown_timeout(Duration::from_secs(2));
    result
}

/// Where the server keeps what it keeps.
struct Places {
    data_dir: PathBuf,
    database: Option<DatabaseUrl>,
    key_file: PathBuf,
}

/// Where the API listens.
struct Listen {
    plain: String,
    tls: TlsSettings,
    metrics: MetricsListen,
}

/// Where the metrics are served.
#[derive(Debug, Clone, PartialEq, Eq)]
enum MetricsListen {
    /// On the API's own listeners.
    Api,
    /// On a listener of their own.
    Addr(std::net::SocketAddr),
    /// Nowhere.
    Off,
}

impl MetricsListen {
    fn parse(s: &str) -> Result<MetricsListen> {
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
struct Bound {
    plain: tokio::net::TcpListener,
    tls: Option<(tokio::net::TcpListener, Arc<rustls::ServerConfig>)>,
    /// The metrics' own listener, when they have one.
    metrics: Option<tokio::net::TcpListener>,
}

/// Bind the listeners and say where they are (HTTPS and metrics first: whoever waits for
/// the `listening on http://` line then has them all).
async fn bind(listen: &Listen, data_dir: &Path) -> Result<Bound> {
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
async fn serve_api(state: Arc<AppState>, bound: Bound) -> Result<()> {
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

/// Whether and how long the audit trail is kept.
struct AuditSettings {
    on: bool,
    retention: Retention,
}

/// How often retention deletes what it no longer keeps.
const PRUNE_EVERY: Duration = Duration::from_secs(600);

/// Delete, now and then every [`PRUNE_EVERY`], the audit events `retention` no longer keeps
/// (any node may: deleting twice deletes nothing more).
async fn prune_audit(
    core: Core,
    retention: Retention,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        match core.prune_events(retention).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, "audit events past retention deleted"),
            Err(e) => tracing::warn!(error = %e, "cannot apply the audit retention"),
        }
        tokio::select! {
            _ = tokio::time::sleep(PRUNE_EVERY) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

struct SandboxSettings {
    dir: PathBuf,
    image_cache: PathBuf,
    ssh_port: u16,
    outbound: bool,
}

/// The sandbox driver, or why there is none on this host.
fn open_sandbox(s: &SandboxSettings) -> Result<Arc<SandboxHost>, String> {
    let config = SandboxConfig {
        ssh_port: s.ssh_port,
        outbound: s.outbound,
        ..SandboxConfig::default()
    };
    if !rustix::process::geteuid().is_root() {
        return Err("the server is not running as root (it needs to map instance uids and bind each instance's SSH port)".into());
    }
    std::fs::create_dir_all(&s.dir)
        .map_err(|e| format!("cannot create {}: {e}", s.dir.display()))?;
    // Why a probe: a host sshd listening on 0.0.0.0:22 takes port 22 on every loopback
    // address too, and each instance would then fail to start; say so once, up front.
    if let Err(e) = std::net::TcpListener::bind(("127.1.255.254", s.ssh_port)) {
        if s.ssh_port != 0 {
            return Err(format!(
                "port {} cannot be bound on instance addresses ({e}); is the host's own sshd \
                 listening on 0.0.0.0:{}? Give --ssh-port (e.g. 2222) or make it listen on \
                 specific addresses",
                s.ssh_port, s.ssh_port
            ));
        }
    }
    // This executable is every instance's init (stage 1) and its guest agent.
    let exe = std::env::current_exe()
        .map_err(|e| format!("cannot locate the keyplane executable: {e}"))?;
    let config = SandboxConfig {
        init_exe: Some(exe.clone()),
        guest_agent: Some(exe),
        ..config
    };
    let host = SandboxHost::new(s.dir.clone(), config).map_err(|e| e.to_string())?;
    host.setup_prerequisites().map_err(|e| e.to_string())?;
    Ok(Arc::new(host))
}

/// The id of a sandbox directory (created on first use): operations on the sandbox instances
/// it holds go to the node that uses it.
fn sandbox_owner_id(dir: &Path) -> Result<String> {
    let path = dir.join("owner-id");
    if let Ok(id) = std::fs::read_to_string(&path) {
        return Ok(id.trim().to_string());
    }
    let id = format!("sandbox-{}", keyplane_core::ids::random_token(16));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    use std::io::Write;
    f.write_all(id.as_bytes())?;
    f.sync_all()?;
    Ok(id)
}

async fn serve(
    places: Places,
    listen: Listen,
    api: ApiConfig,
    sandbox: SandboxSettings,
    audit: AuditSettings,
) -> Result<()> {
    let Places {
        data_dir,
        database,
        key_file,
    } = places;
    config::ensure_data_dir(&data_dir)?;
    let store = config::open_store(database.as_ref(), &data_dir).await?;
    match &database {
        Some(url) => eprintln!(
            "keyplane: database {} (shared: run as many nodes on it as you like)",
            url.redacted()
        ),
        None => eprintln!(
            "keyplane: database {} (SQLite)",
            config::database_path(&data_dir).display()
        ),
    }
    let host = open_sandbox(&sandbox);
    let mut core = crate::master_key::core_with_key(store, &key_file)
        .await?
        .with_ssh_port(sandbox.ssh_port)
        .with_audit(audit.on);
    if host.is_ok() {
        // Why only with a sandbox: a node that runs no instance cannot say what an instance can
        // get (its cluster's sandbox nodes check their own launches).
        core = core.with_host_capacity(HostCapacity::of_this_host());
    }
    bootstrap_admin(&core, &data_dir, database.as_ref()).await?;
    match &host {
        Ok(_) => eprintln!(
            "keyplane: sandbox instances in {} (SSH on port {} of each instance's own 127.1.x.y address)",
            sandbox.dir.display(),
            sandbox.ssh_port
        ),
        Err(why) => eprintln!(
            "keyplane: sandbox instances are unavailable: {why}\n\
             keyplane: Linux instances will end LAUNCH_FAILED until this is fixed; Windows records still work."
        ),
    }
    let bound = bind(&listen, &data_dir).await?;
    let addr = bound.plain.local_addr()?;
    let guest_agent = host
        .as_ref()
        .ok()
        .and_then(|h| h.guest_agent().map(Path::to_path_buf));
    let worker_cfg = worker_config(guest_agent, &sandbox, addr)?;
    let state = AppState::new(core.clone(), api);
    if let Ok(host) = &host {
        host.set_metadata_service(Arc::new(Metadata { app: state.clone() }));
    }
    let worker = Worker::new(
        core,
        host.clone()
            .map(|h| h as Arc<dyn keyplane_instances::InstanceDriver>),
        worker_cfg,
        state.ssh_changes.clone(),
    );
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    if audit.on {
        eprintln!(
            "keyplane: audit trail kept {} days, at most {} events",
            audit.retention.max_age_secs / 86_400,
            audit.retention.max_events
        );
        tokio::spawn(prune_audit(
            state.core.clone(),
            audit.retention,
            stop_rx.clone(),
        ));
    } else {
        eprintln!("keyplane: no audit trail is kept (--no-audit)");
    }
    worker.report_images();
    let background = tokio::spawn({
        let worker = worker.clone();
        async move {
            worker.restore().await;
            worker.run(stop_rx).await;
        }
    });
    let refusals = state.refusals.clone();
    serve_api(state, bound).await?;
    // The refusals answered last are written before the server ends.
    refusals.flush().await;
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(10), background).await;
    if let Ok(host) = host {
        host.shutdown().await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// The metadata service inside each sandbox instance (169.254.0.23 and 100.100.100.200).
struct Metadata {
    app: Arc<AppState>,
}

impl keyplane_instances::MetadataService for Metadata {
    fn serve(
        &self,
        instance: &str,
        user_data: Option<Vec<u8>>,
        listener: tokio::net::TcpListener,
    ) -> tokio::task::JoinHandle<()> {
        let app = keyplane_api::metadata_router(self.app.clone(), instance.to_owned(), user_data);
        let id = instance.to_owned();
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::warn!(instance = %id, error = %e, "metadata service stopped");
            }
        })
    }
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

/// On the first start, create the `admin` account and leave its credentials in a 0600 file.
/// With a shared database, the node that creates it keeps the file; a node that loses the race
/// goes on with the account the other one made.
async fn bootstrap_admin(
    core: &Core,
    data_dir: &Path,
    database: Option<&DatabaseUrl>,
) -> Result<()> {
    let accounts = core
        .list_accounts()
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if !accounts.is_empty() {
        return Ok(());
    }
    let admin = match core.create_account("admin", true).await {
        Ok(admin) => admin,
        Err(e) => {
            let made_elsewhere = core.account_by_name("admin").await;
            if matches!(made_elsewhere, Ok(Some(_))) {
                eprintln!("keyplane: another node created the admin account just now");
                return Ok(());
            }
            anyhow::bail!("cannot create the admin account: {e}");
        }
    };
    let path = data_dir.join(crate::account::ADMIN_FILE);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    use std::io::Write;
    writeln!(f, "{}", crate::account::credentials_json(&admin))?;
    f.sync_all()?;
    let place = match database {
        Some(url) => format!("--database {}", url.redacted()),
        None => format!("--data-dir {}", data_dir.display()),
    };
    eprintln!(
        "keyplane: first start: created the admin account. Its credentials are in {} (mode 0600);\n\
         keyplane: print them any time with `keyplane account credentials admin {place}`,\n\
         keyplane: and create more accounts with `keyplane account create NAME {place}`.",
        path.display(),
    );
    Ok(())
}

/// The operation worker's settings; its guest agents reach the server at `addr` over HTTP.
fn worker_config(
    guest_agent: Option<PathBuf>,
    sandbox: &SandboxSettings,
    addr: std::net::SocketAddr,
) -> Result<WorkerConfig> {
    let server_ip = if addr.ip().is_unspecified() {
        "127.0.0.1".parse()?
    } else {
        addr.ip()
    };
    let sandboxed = guest_agent.is_some();
    let agent_exe = match guest_agent {
        Some(exe) => exe,
        None => std::env::current_exe().context("cannot locate the keyplane executable")?,
    };
    Ok(WorkerConfig {
        concurrency: 16,
        lease_secs: 10,
        agent_exe,
        server_url: format!(
            "http://{}",
            std::net::SocketAddr::new(server_ip, addr.port())
        ),
        apply_timeout: Duration::from_secs(30),
        sandbox_owner: if sandboxed {
            Some(sandbox_owner_id(&sandbox.dir)?)
        } else {
            None
        },
        image_cache: sandbox.image_cache.clone(),
    })
}
