//! `keyplane serve`.

use crate::config::{self, DatabaseUrl, FileConfig};
use crate::listen::{bind, serve_api, Listen, MetricsListen};
use crate::tls::TlsSettings;
use anyhow::{Context, Result};
use clap::Args;
use keyplane_api::{ApiConfig, AppState};
use keyplane_core::audit::Retention;
use keyplane_core::compute::HostCapacity;
use keyplane_core::Core;
use keyplane_instances::worker::{Worker, WorkerConfig};
use keyplane_instances::{SandboxConfig, SandboxHost};
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
    let settings = Settings::resolve(args)?;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&settings.log).context("invalid log filter")?,
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let result = runtime.block_on(serve(settings));
    // Why a timeout: an image being installed runs on a blocking thread; stopping must not
    // wait for it (a half-installed image is staged apart and removed at the next start).
    runtime.shutdown_timeout(Duration::from_secs(2));
    result
}

/// What the server runs with: the flags, else the configuration file, else the defaults.
struct Settings {
    places: Places,
    listen: Listen,
    api: ApiConfig,
    sandbox: SandboxSettings,
    audit: AuditSettings,
    /// The log filter.
    log: String,
}

impl Settings {
    /// Resolve the flags against the configuration file they name.
    fn resolve(args: ServeArgs) -> Result<Settings> {
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
        let audit = AuditSettings::new(
            !args.no_audit && file.audit.unwrap_or(true),
            args.audit_retention_days
                .or(file.audit_retention_days)
                .unwrap_or(90),
            args.audit_max_events
                .or(file.audit_max_events)
                .unwrap_or(Retention::default().max_events),
        )?;
        let sandbox = SandboxSettings {
            dir,
            image_cache,
            ssh_port: args.ssh_port.or(file.ssh_port).unwrap_or(22),
            outbound: !args.no_outbound && file.instance_outbound.unwrap_or(true),
        };
        Ok(Settings {
            places: Places {
                data_dir,
                database,
                key_file,
            },
            listen: Listen {
                plain: listen,
                tls,
                metrics,
            },
            api,
            sandbox,
            audit,
            log,
        })
    }
}

/// Where the server keeps what it keeps.
struct Places {
    data_dir: PathBuf,
    database: Option<DatabaseUrl>,
    key_file: PathBuf,
}

/// Whether and how long the audit trail is kept.
struct AuditSettings {
    on: bool,
    retention: Retention,
}

impl AuditSettings {
    /// The audit trail, `on` or off, keeping events `retention_days` days and at most
    /// `max_events` of them; both must be at least 1.
    fn new(on: bool, retention_days: u32, max_events: u64) -> Result<AuditSettings> {
        let audit = AuditSettings {
            on,
            retention: Retention {
                max_age_secs: i64::from(retention_days) * 24 * 3600,
                max_events,
            },
        };
        if audit.retention.max_age_secs <= 0 || audit.retention.max_events == 0 {
            anyhow::bail!("audit_retention_days and audit_max_events must be at least 1");
        }
        Ok(audit)
    }
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
    let mut f = config::create_private(&path)?;
    use std::io::Write;
    f.write_all(id.as_bytes())?;
    f.sync_all()?;
    Ok(id)
}

/// Serve until SIGINT or SIGTERM, then stop gracefully.
async fn serve(s: Settings) -> Result<()> {
    let (core, host) = open_core(&s).await?;
    crate::account::bootstrap_admin(&core, &s.places.data_dir, s.places.database.as_ref()).await?;
    announce_sandbox(&host, &s.sandbox);
    let bound = bind(&s.listen, &s.places.data_dir).await?;
    let addr = bound.plain.local_addr()?;
    let guest_agent = host
        .as_ref()
        .ok()
        .and_then(|h| h.guest_agent().map(Path::to_path_buf));
    let worker_cfg = worker_config(guest_agent, &s.sandbox, addr)?;
    let state = AppState::new(core.clone(), s.api);
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
    start_audit_pruning(&s.audit, &state.core, stop_rx.clone());
    let background = start_worker(&worker, stop_rx);
    let refusals = state.refusals.clone();
    serve_api(state, bound).await?;
    // The refusals answered last are written before the server ends.
    refusals.flush().await;
    shut_down(stop_tx, background, host).await;
    Ok(())
}

/// Open the store (and say which it is), then the sandbox driver (or find why there is
/// none), and build the core on the store with the master key, the instances' SSH port and
/// the audit setting.
async fn open_core(s: &Settings) -> Result<(Core, Result<Arc<SandboxHost>, String>)> {
    let (places, sandbox) = (&s.places, &s.sandbox);
    config::ensure_data_dir(&places.data_dir)?;
    let store = config::open_store(places.database.as_ref(), &places.data_dir).await?;
    match &places.database {
        Some(url) => eprintln!(
            "keyplane: database {} (shared: run as many nodes on it as you like)",
            url.redacted()
        ),
        None => eprintln!(
            "keyplane: database {} (SQLite)",
            config::database_path(&places.data_dir).display()
        ),
    }
    let host = open_sandbox(sandbox);
    let mut core = crate::master_key::core_with_key(store, &places.key_file)
        .await?
        .with_ssh_port(sandbox.ssh_port)
        .with_audit(s.audit.on);
    if host.is_ok() {
        // Why only with a sandbox: a node that runs no instance cannot say what an instance can
        // get (its cluster's sandbox nodes check their own launches).
        core = core.with_host_capacity(HostCapacity::of_this_host());
    }
    Ok((core, host))
}

/// Say where the sandbox instances live, or why there are none.
fn announce_sandbox(host: &Result<Arc<SandboxHost>, String>, sandbox: &SandboxSettings) {
    match host {
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
}

/// Say how long the audit trail is kept and, when it is kept, apply its retention in the
/// background until `stop`.
fn start_audit_pruning(
    audit: &AuditSettings,
    core: &Core,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    if audit.on {
        eprintln!(
            "keyplane: audit trail kept {} days, at most {} events",
            audit.retention.max_age_secs / 86_400,
            audit.retention.max_events
        );
        tokio::spawn(prune_audit(core.clone(), audit.retention, stop));
    } else {
        eprintln!("keyplane: no audit trail is kept (--no-audit)");
    }
}

/// Report the images, then run the worker in the background (first restoring what it was
/// doing) until `stop`.
fn start_worker(
    worker: &Arc<Worker>,
    stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    worker.report_images();
    let worker = worker.clone();
    tokio::spawn(async move {
        worker.restore().await;
        worker.run(stop).await;
    })
}

/// Once the API has stopped: tell the background tasks to stop, give the worker 10 seconds
/// to, and stop the sandbox instances.
async fn shut_down(
    stop: tokio::sync::watch::Sender<bool>,
    background: tokio::task::JoinHandle<()>,
    host: Result<Arc<SandboxHost>, String>,
) {
    let _ = stop.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(10), background).await;
    if let Ok(host) = host {
        host.shutdown().await;
    }
    tracing::info!("stopped");
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
