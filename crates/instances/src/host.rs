//! [`SandboxHost`]: the lifecycle of sandbox instances on this host.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::cgroup::{self, Cgroup, Resources};
use crate::error::{Error, IoContext, PrereqError, Result};
use crate::image::{ImageCache, ImageInfo, ImageStore};
use crate::layout::{self, Layout, Meta, ProcRef};
use crate::listener::{self, SessionSpawner};
use crate::sandbox::{self, BootParams, Holder, NsParams};
use crate::{net, prereq, InstanceSpec, SandboxConfig};
use keyplane_agent::fsutil::Owner;

#[path = "host_vpc.rs"]
mod vpc;

/// A running instance: its namespace holder, its listener task, its outbound networking and
/// its cgroups.
struct Running {
    holder: Holder,
    listener: JoinHandle<()>,
    addr: SocketAddr,
    /// slirp4netns (killed on drop).
    outbound: Option<tokio::process::Child>,
    /// The metadata service's tasks.
    metadata: Vec<JoinHandle<()>>,
    cgroup: Option<Cgroup>,
}

impl Drop for Running {
    fn drop(&mut self) {
        // The holder's `unshare` is killed on drop (and takes the init with it); the listener
        // task must be aborted explicitly, dropping a JoinHandle only detaches it.
        self.listener.abort();
        for task in &self.metadata {
            task.abort();
        }
    }
}

/// Per-instance slot; the async mutex serialises start/stop/destroy of one instance.
type Slot = Arc<tokio::sync::Mutex<Option<Running>>>;

/// The sandbox driver for one host: creates, starts, stops and destroys instances under a root
/// directory. Blocking file operations are small and run inline.
pub struct SandboxHost {
    layout: Layout,
    images: ImageStore,
    config: SandboxConfig,
    slots: Mutex<HashMap<String, Slot>>,
    /// Serialises creation (uid slot and address allocation).
    create_lock: Mutex<()>,
    /// Serialises image installs.
    image_lock: tokio::sync::Mutex<()>,
    /// Serialises VPC network setup; holds the VPC namespaces this process set up or found
    /// ready, which a start need not check again.
    net_lock: tokio::sync::Mutex<std::collections::HashSet<String>>,
    /// Answers each instance's metadata requests, once the server has given one.
    metadata: Mutex<Option<Arc<dyn MetadataService>>>,
    /// [`SandboxConfig::init_exe`] and [`SandboxConfig::guest_agent`] as linked into the root.
    init_exe: Option<PathBuf>,
    guest_agent: Option<PathBuf>,
}

/// What answers the metadata requests of one instance (the clouds' `latest/meta-data/...` at
/// 169.254.0.23 and 100.100.100.200): [`SandboxHost`] makes the listening socket inside the
/// instance's network, the server answers on it.
pub trait MetadataService: Send + Sync + 'static {
    /// Serve `instance`'s requests on `listener` until the task is aborted; `user_data` is
    /// what it was launched with.
    fn serve(
        &self,
        instance: &str,
        user_data: Option<Vec<u8>>,
        listener: TcpListener,
    ) -> JoinHandle<()>;
}

impl std::fmt::Debug for SandboxHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxHost")
            .field("root", &self.layout.root())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl SandboxHost {
    /// Opens (creating if needed) the sandbox root directory and kills instances left running
    /// by an earlier server process (their listeners died with it).
    pub fn new(root_dir: PathBuf, config: SandboxConfig) -> Result<Self> {
        let (first, count) = prereq::id_range(&config);
        if config.max_instances == 0 || first + count > u64::from(u32::MAX) {
            return Err(Error::InvalidConfig(format!(
                "uid ranges {first}..{} do not fit in 32 bits",
                first + count
            )));
        }
        std::fs::create_dir_all(&root_dir).ctx(|| format!("creating {}", root_dir.display()))?;
        let root =
            std::fs::canonicalize(&root_dir).ctx(|| format!("resolving {}", root_dir.display()))?;
        let layout = Layout::new(root.clone());
        layout.init()?;
        let images = ImageStore::new(root.join("images"), config.subuid_base);
        images.init()?;
        images.remove_staging()?;
        cgroup::remove_stale(&cgroup::group_name(&root));
        let install = |exe: &Option<PathBuf>, name: &str| {
            exe.as_deref()
                .map(|e| install_executable(&root, e, name))
                .transpose()
        };
        let init_exe = install(&config.init_exe, "keyplane-init")?;
        let guest_agent = install(&config.guest_agent, "keyplane-agent")?;
        for (id, procs) in layout.run_records()? {
            tracing::info!(instance = %id, "killing instance left over by a previous run");
            for (pid, start_time) in procs {
                sandbox::kill_stale(pid, start_time);
            }
            layout.remove_run_record(&id)?;
        }
        Ok(SandboxHost {
            layout,
            images,
            config,
            slots: Mutex::new(HashMap::new()),
            create_lock: Mutex::new(()),
            image_lock: tokio::sync::Mutex::new(()),
            net_lock: tokio::sync::Mutex::new(std::collections::HashSet::new()),
            metadata: Mutex::new(None),
            init_exe,
            guest_agent,
        })
    }

    /// The guest agent executable inside the sandbox root, when there is one.
    pub fn guest_agent(&self) -> Option<&Path> {
        self.guest_agent.as_deref()
    }

    /// Serves the metadata of every instance started from now on with `service`.
    pub fn set_metadata_service(&self, service: Arc<dyn MetadataService>) {
        *self.metadata.lock().unwrap_or_else(|e| e.into_inner()) = Some(service);
    }

    /// The user data the instance was launched with.
    pub fn user_data(&self, id: &str) -> Result<Option<Vec<u8>>> {
        use base64::Engine;
        let meta = self.meta(id)?;
        Ok(meta
            .user_data
            .and_then(|d| base64::engine::general_purpose::STANDARD.decode(d).ok()))
    }

    /// The configuration this host runs with.
    pub fn config(&self) -> &SandboxConfig {
        &self.config
    }

    /// The (canonical) sandbox root directory.
    pub fn root_dir(&self) -> &Path {
        self.layout.root()
    }

    /// Lists everything the host lacks to run instances, each with its fix.
    pub fn check_prerequisites(&self) -> Result<(), PrereqError> {
        prereq::check(&self.config, self.layout.root())
    }

    /// Fixes what can be fixed here (root only): adds `root:<subuid_base>:<count>` to
    /// `/etc/subuid` and `/etc/subgid` when missing; then checks everything.
    pub fn setup_prerequisites(&self) -> Result<()> {
        prereq::setup_subordinate_ids(&self.config)?;
        Ok(self.check_prerequisites()?)
    }

    /// Creates an instance, or brings an existing one in line with `spec` (keeping its host
    /// key and uid range): lays out its directory, host key, sshd config and root password.
    pub async fn create(&self, spec: InstanceSpec) -> Result<()> {
        layout::validate_id(&spec.id)?;
        layout::validate_hostname(&spec.hostname)?;
        check_address(spec.address)?;
        let _guard = self.create_lock.lock().unwrap_or_else(|e| e.into_inner());
        let all = self.layout.list_meta()?;
        if spec.ssh_port.unwrap_or(self.config.ssh_port) != 0 {
            if let Some(other) = all
                .iter()
                .find(|m| m.address == spec.address && m.id != spec.id)
            {
                return Err(Error::AddressTaken {
                    address: spec.address,
                    by: other.id.clone(),
                });
            }
        }
        let existing = all.iter().find(|m| m.id == spec.id);
        let slot = match existing {
            Some(m) => m.slot,
            None => (0..self.config.max_instances)
                .find(|s| all.iter().all(|m| m.slot != *s))
                .ok_or(Error::NoFreeSlot(self.config.max_instances))?,
        };
        crate::image::validate_image_name(&spec.image)?;
        let mut meta = Meta {
            id: spec.id.clone(),
            slot,
            address: spec.address,
            hostname: spec.hostname.clone(),
            host_public_key: existing
                .map(|m| m.host_public_key.clone())
                .unwrap_or_default(),
            image: spec.image.clone(),
            vpc: spec.vpc.clone(),
            cpus: spec.resources.cpus,
            memory_mib: spec.resources.memory_mib,
            ssh_port: spec.ssh_port,
            user_data: match existing {
                Some(m) => m.user_data.clone(),
                None => spec.user_data.as_ref().map(|d| {
                    use base64::Engine;
                    base64::engine::general_purpose::STANDARD.encode(d)
                }),
            },
        };
        let owner = self.owner(slot);
        let hash = match (&spec.password_hash, &spec.password) {
            (Some(h), _) => Some(h.clone()),
            (None, Some(p)) => Some(layout::hash_password(p)?),
            (None, None) => None,
        };
        meta.host_public_key = self
            .layout
            .lay_out_guest(&meta, owner, Some(hash.as_deref()))?;
        if existing.is_none() {
            if let Some(data) = &spec.user_data {
                self.layout.write_user_data(&spec.id, owner, data)?;
            }
        }
        self.layout.save_meta(&meta)
    }

    /// Sets (or with `None`, locks) the root password. It takes effect at the next start or
    /// reboot (like ECS's `ModifyInstanceAttribute` password): the boot puts it into the
    /// instance's own `/etc/shadow`.
    pub async fn set_password(&self, id: &str, password: Option<&str>) -> Result<()> {
        let hash = password.map(layout::hash_password).transpose()?;
        self.set_password_hash(id, hash.as_deref()).await
    }

    /// Sets root's password from its SHA-512 crypt hash (or with `None`, locks it), for the
    /// next start or reboot, as [`SandboxHost::set_password`] does.
    pub async fn set_password_hash(&self, id: &str, hash: Option<&str>) -> Result<()> {
        let meta = self.meta(id)?;
        if hash.is_some_and(|h| !h.starts_with('$') || h.contains(['\n', ':'])) {
            return Err(Error::PasswordHash);
        }
        self.layout
            .lay_out_guest(&meta, self.owner(meta.slot), Some(hash))?;
        Ok(())
    }

    /// Starts the instance and returns the address its SSH server listens on. Starting a
    /// running instance returns its address.
    pub async fn start(&self, id: &str) -> Result<SocketAddr> {
        let meta = self.meta(id)?;
        let slot = self.slot(id);
        let mut running = slot.lock().await;
        if let Some(r) = running.as_mut() {
            if r.holder.is_alive() {
                return Ok(r.addr);
            }
            tracing::warn!(instance = %id, "instance died; restarting");
            *running = None;
        }
        self.prepare_guest(&meta)?;
        let (tcp, addr) = self.bind_ssh(id, &meta).await?;
        let cgroup = self.cgroup(&meta)?;
        let ns = self.ns_params(cgroup.as_ref());
        let guest_dir = self.layout.guest_dir(id);
        let lower = format!("../../images/{}/rootfs", meta.image);
        let slirp = self.config.outbound.then(net::slirp_path).flatten();
        let (init, agent) = self.guest_executables()?;
        let boot = BootParams {
            id,
            guest_dir: &guest_dir,
            hostname: &meta.hostname,
            address: meta.address,
            lower: &lower,
            dns: slirp.as_ref().map(|_| net::SLIRP_DNS),
            agent: agent.as_deref(),
            init: &init,
        };
        let t0 = std::time::Instant::now();
        let mut holder = sandbox::spawn_holder(&boot, &ns).await?;
        let t_disk = t0.elapsed();
        let mut procs = vec![(holder.pid1, holder.start_time)];
        self.layout.write_run_record(id, &procs)?;
        let mut outbound = match &slirp {
            Some(path) => Some(net::spawn_outbound(holder.pid1, path)?),
            None => None,
        };
        let (service, listeners) = self.attach_to_vpc(&meta, holder.pid1).await?;
        let t_vpc = t0.elapsed();
        self.finish_outbound(id, holder.pid1, outbound.as_mut(), &mut procs)
            .await?;
        let t_out = t0.elapsed();
        let metadata = match service {
            Some(service) => self.serve_metadata(&meta, service, listeners)?,
            None => Vec::new(),
        };
        holder.boot(id).await?;
        tracing::debug!(instance = %id, disk = ?t_disk, vpc = ?t_vpc, outbound = ?t_out,
            booted = ?t0.elapsed(), "instance start phases");
        self.layout.consume_boot_files(id)?;
        let listener = ssh_listener(id, tcp, &holder, ns);
        tracing::info!(instance = %id, %addr, pid = holder.pid1, "instance started");
        *running = Some(Running {
            holder,
            listener,
            addr,
            outbound,
            metadata,
            cgroup,
        });
        Ok(addr)
    }

    /// Binds instance `id`'s SSH port on its own address; returns the listener and its
    /// address.
    async fn bind_ssh(&self, id: &str, meta: &Meta) -> Result<(TcpListener, SocketAddr)> {
        let port = meta.ssh_port.unwrap_or(self.config.ssh_port);
        let bind = SocketAddr::from((meta.address, port));
        let tcp = TcpListener::bind(bind)
            .await
            .ctx(|| format!("binding {bind} for instance {id}"))?;
        let addr = tcp.local_addr().ctx(|| format!("address of {bind}"))?;
        Ok((tcp, addr))
    }

    /// Lays the instance's guest files out (migrating those of an earlier version) and checks
    /// that its image is installed.
    fn prepare_guest(&self, meta: &Meta) -> Result<()> {
        let owner = self.owner(meta.slot);
        self.layout.migrate_legacy(meta, owner)?;
        self.layout.lay_out_guest(meta, owner, None)?;
        if self.images.get(&meta.image)?.is_none() {
            return Err(Error::InvalidImage(format!(
                "image {} is not installed on this host",
                meta.image
            )));
        }
        Ok(())
    }

    /// The init and the guest agent, as the instance's init sees them: the init runs from the
    /// guest directory, the agent is bound from the disk's root (two levels below it).
    fn guest_executables(&self) -> Result<(String, Option<String>)> {
        let Some(init) = self
            .init_exe
            .as_deref()
            .and_then(|e| self.relative_to_guest(e, 0))
        else {
            return Err(Error::InvalidConfig(
                "no init executable is configured (SandboxConfig::init_exe)".into(),
            ));
        };
        let agent = self
            .guest_agent
            .as_deref()
            .and_then(|e| self.relative_to_guest(e, 2));
        Ok((init, agent))
    }

    /// Waits until the instance's outbound networking (slirp4netns, when it has any) is up,
    /// and adds its process to the instance's run record `procs`.
    async fn finish_outbound(
        &self,
        id: &str,
        pid1: u32,
        outbound: Option<&mut tokio::process::Child>,
        procs: &mut Vec<ProcRef>,
    ) -> Result<()> {
        let Some(child) = outbound else {
            return Ok(());
        };
        net::wait_outbound(pid1, child).await?;
        let slirp_proc = child
            .id()
            .and_then(|pid| sandbox::proc_stat(pid).map(|s| (pid, s.start_time)));
        if let Some(p) = slirp_proc {
            procs.push(p);
            self.layout.write_run_record(id, procs)?;
        }
        Ok(())
    }

    /// `exe` (inside the sandbox root) as a path relative to `<root>/guests/<id>` plus `up`
    /// more levels.
    fn relative_to_guest(&self, exe: &Path, up: usize) -> Option<String> {
        let rel = exe.strip_prefix(self.layout.root()).ok()?;
        Some(format!("{}{}", "../".repeat(2 + up), rel.display()))
    }

    /// Serves the instance's metadata on the listeners made inside its network.
    fn serve_metadata(
        &self,
        meta: &Meta,
        service: Arc<dyn MetadataService>,
        listeners: Vec<std::net::TcpListener>,
    ) -> Result<Vec<JoinHandle<()>>> {
        let user_data = self.user_data(&meta.id)?;
        listeners
            .into_iter()
            .map(|l| {
                let l = TcpListener::from_std(l)
                    .map_err(|e| Error::Network(format!("metadata listener: {e}")))?;
                Ok(service.serve(&meta.id, user_data.clone(), l))
            })
            .collect()
    }

    /// Stops the instance: closes its listener, then ends every process in it (SIGTERM and
    /// up to `stop_timeout` of grace unless `force`, then SIGKILL). Stopping a stopped
    /// instance is a no-op.
    pub async fn stop(&self, id: &str, force: bool) -> Result<()> {
        self.meta(id)?;
        let slot = self.slot(id);
        let mut running = slot.lock().await;
        if let Some(r) = running.take() {
            Self::halt(r, force, self.config.stop_timeout).await;
            tracing::info!(instance = %id, force, "instance stopped");
        }
        self.layout.remove_run_record(id)
    }

    /// Soft stop followed by start; returns the listening address.
    pub async fn reboot(&self, id: &str) -> Result<SocketAddr> {
        self.stop(id, false).await?;
        self.start(id).await
    }

    /// Force-stops the instance and deletes everything it had.
    pub async fn destroy(&self, id: &str) -> Result<()> {
        layout::validate_id(id)?;
        let slot = self.slot(id);
        let mut running = slot.lock().await;
        if let Some(r) = running.take() {
            Self::halt(r, true, self.config.stop_timeout).await;
        }
        let vpc = self.layout.load_meta(id)?.map(|m| vpc::vpc_key(&m));
        self.layout.remove_guest(id)?;
        self.layout.remove_run_record(id)?;
        self.layout.remove_meta(id)?;
        drop(running);
        if let Some(vpc) = vpc {
            self.remove_vpc_if_unused(&vpc).await?;
        }
        self.slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
        Ok(())
    }

    /// Ends a running instance: listener, every process, outbound networking, cgroups.
    async fn halt(mut r: Running, force: bool, grace: std::time::Duration) {
        let t0 = std::time::Instant::now();
        r.listener.abort();
        for task in r.metadata.drain(..) {
            task.abort();
        }
        // Why side by side when forced: each exit tears down namespaces of its own, which takes
        // the kernel some milliseconds, and a forced stop leaves nothing for the link to carry.
        // A normal shutdown keeps it for the instance's own stop scripts.
        let mut slirp = r.outbound.take();
        let outbound = async {
            if let Some(slirp) = slirp.as_mut() {
                let _ = slirp.kill().await;
            }
        };
        if force {
            tokio::join!(r.holder.stop(force, grace), outbound);
        } else {
            r.holder.stop(force, grace).await;
            outbound.await;
        }
        let t_stop = t0.elapsed();
        if let Some(cg) = r.cgroup.take() {
            cg.remove().await;
        }
        tracing::debug!(processes = ?t_stop, cgroups = ?t0.elapsed(), "instance stop phases");
    }

    /// Installed images.
    pub fn images(&self) -> Result<Vec<ImageInfo>> {
        self.images.list()
    }

    /// The installed image `name`, if any.
    pub fn image(&self, name: &str) -> Result<Option<ImageInfo>> {
        self.images.get(name)
    }

    /// Installs image `name` from a root filesystem tarball (blocking: run it off the async
    /// threads).
    pub fn import_image(&self, name: &str, tarball: &Path, source: &str) -> Result<ImageInfo> {
        self.images.import(name, tarball, source)
    }

    /// The installed image `name`, installed first from `cache` when missing (the cache builds
    /// the default image the first time; that takes a minute and needs the Debian archive).
    pub async fn ensure_image(&self, name: &str, cache: &ImageCache) -> Result<ImageInfo> {
        let _guard = self.image_lock.lock().await;
        if let Some(info) = self.images.get(name)? {
            return Ok(info);
        }
        let (images, cache, name) = (self.images.clone(), cache.clone(), name.to_owned());
        tokio::task::spawn_blocking(move || {
            tracing::info!(image = %name, "installing image");
            let tarball = cache.ensure(&name, &mut |line| {
                tracing::info!(image = %name, "image build: {line}");
            })?;
            let source = tarball.display().to_string();
            // Hard links to a tree extracted once per host; a fresh extraction where that
            // cannot be (another file system).
            let linked = cache
                .shared_tree(&name, images.uid_base(), &tarball)
                .and_then(|tree| images.import_linked(&name, &tree, &source));
            match linked {
                Ok(info) => Ok(info),
                Err(e) => {
                    tracing::info!(image = %name, "cannot link the shared tree ({e}); extracting");
                    images.import(&name, &tarball, &source)
                }
            }
        })
        .await
        .map_err(|e| Error::InvalidImage(format!("installing image failed: {e}")))?
    }

    /// Bytes the instance's disk holds beyond its image.
    pub fn disk_usage(&self, id: &str) -> Result<u64> {
        self.meta(id)?;
        Ok(self.layout.disk_usage(id))
    }

    /// Memory the running instance's cgroup uses now, bytes.
    pub async fn memory_usage(&self, id: &str) -> Option<u64> {
        let slot = self.slot(id);
        let running = slot.lock().await;
        running.as_ref()?.cgroup.as_ref()?.memory_usage()
    }

    /// Force-stops every running instance (for server shutdown).
    pub async fn shutdown(&self) {
        let ids: Vec<String> = self
            .slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect();
        for id in ids {
            if let Err(e) = self.stop(&id, true).await {
                tracing::warn!(instance = %id, "stop at shutdown failed: {e}");
            }
        }
        self.remove_vpcs().await;
    }

    /// Whether the instance is running (its init is alive).
    pub async fn is_running(&self, id: &str) -> bool {
        let slot = self.slot(id);
        let mut running = slot.lock().await;
        running.as_mut().is_some_and(|r| r.holder.is_alive())
    }

    /// The address the running instance's SSH server listens on.
    pub async fn ssh_addr(&self, id: &str) -> Option<SocketAddr> {
        let slot = self.slot(id);
        let running = slot.lock().await;
        running.as_ref().map(|r| r.addr)
    }

    /// The instance's SSH host public key (`ssh-ed25519 AAAA... root@host`), as generated at
    /// creation (kept by the host, not read back from the guest).
    pub fn host_public_key(&self, id: &str) -> Result<String> {
        Ok(self.meta(id)?.host_public_key)
    }

    /// The instance's sshd configuration directory on the host (`/etc/ssh` inside): the `dir`
    /// to pass to [`crate::apply_ssh_state`].
    pub fn ssh_state_dir(&self, id: &str) -> PathBuf {
        self.layout.ssh_dir(id)
    }

    /// A command running `program` as the instance's root (mapped to its unprivileged uid
    /// range, in a user namespace of its own, with a clean environment): the guest agent runs
    /// this way on the instance's files, so it can write nothing the instance's root could not.
    /// It runs in the instance's directory on the host, where the SSH state is
    /// [`GUEST_SSH_DIR`](crate::GUEST_SSH_DIR); a `program` inside the sandbox root is run by a
    /// path relative to it, so no directory above the root needs to be searchable.
    pub fn guest_command(&self, id: &str, program: &Path) -> Result<tokio::process::Command> {
        self.meta(id)?;
        let program = match program.strip_prefix(self.layout.root()) {
            Ok(rel) => Path::new("../..").join(rel),
            Err(_) => program.to_path_buf(),
        };
        let guest = self.layout.guest_dir(id);
        Ok(sandbox::guest_command(
            &self.ns_params(None),
            &guest,
            &program,
        ))
    }

    /// Host uid (and gid) of the instance's root.
    pub fn instance_uid(&self, id: &str) -> Result<u32> {
        Ok(self.owner(self.meta(id)?.slot).uid)
    }

    /// Ids of all created instances.
    pub fn list(&self) -> Result<Vec<String>> {
        let mut ids: Vec<String> = self.layout.list_meta()?.into_iter().map(|m| m.id).collect();
        ids.sort();
        Ok(ids)
    }

    /// Host PIDs of the running instance's processes (the holder, the init and everything in
    /// the instance's PID namespace, and its outbound networking); empty when stopped.
    pub async fn processes(&self, id: &str) -> Vec<u32> {
        let slot = self.slot(id);
        let running = slot.lock().await;
        running
            .as_ref()
            .map(|r| {
                let mut pids = r.holder.processes();
                pids.extend(r.outbound.as_ref().and_then(|c| c.id()));
                pids
            })
            .unwrap_or_default()
    }

    fn meta(&self, id: &str) -> Result<Meta> {
        layout::validate_id(id)?;
        self.layout
            .load_meta(id)?
            .ok_or_else(|| Error::NotFound(id.to_owned()))
    }

    fn slot(&self, id: &str) -> Slot {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots.entry(id.to_owned()).or_default().clone()
    }

    /// Host uid and gid of every instance's root.
    // Why one uid range for all instances: they boot one shared image, whose files must be
    // owned by the same host uids in every instance (per-instance ranges would need idmapped
    // mounts). Instances are kept apart by their own mount, PID, network, IPC and UTS
    // namespaces and cgroups: none can see, signal or reach another's files or processes.
    fn owner(&self, _slot: u32) -> Owner {
        let uid = self.config.subuid_base;
        Owner { uid, gid: uid }
    }

    fn ns_params(&self, cgroup: Option<&Cgroup>) -> NsParams {
        NsParams {
            uid_base: self.config.subuid_base,
            max_processes: self.config.max_processes,
            cgroup_tasks: cgroup.map(Cgroup::task_files).unwrap_or_default(),
        }
    }

    /// The instance's cgroups with the limits of its type (none where the host has no
    /// cgroup v1 hierarchies).
    fn cgroup(&self, meta: &Meta) -> Result<Option<Cgroup>> {
        if cgroup::available().is_empty() {
            return Ok(None);
        }
        let defaults = Resources::default();
        let res = Resources {
            cpus: if meta.cpus == 0 {
                defaults.cpus
            } else {
                meta.cpus
            },
            memory_mib: if meta.memory_mib == 0 {
                defaults.memory_mib
            } else {
                meta.memory_mib
            },
            max_processes: self.config.max_processes,
        };
        let group = cgroup::group_name(self.layout.root());
        Cgroup::create(&group, &meta.id, res).map(Some)
    }
}

/// Serves SSH on `tcp`, each session started inside booted instance `id` (init in `holder`).
fn ssh_listener(id: &str, tcp: TcpListener, holder: &Holder, ns: NsParams) -> JoinHandle<()> {
    let spawner = SessionSpawner {
        id: id.to_owned(),
        pid1: holder.pid1,
        start_time: holder.start_time,
        ns,
        helper: holder.session_channel(),
    };
    listener::spawn_listener(tcp, spawner)
}

/// Instances live on loopback addresses; 127.0.0.1 belongs to the host.
fn check_address(address: Ipv4Addr) -> Result<()> {
    if address.is_loopback() && address != Ipv4Addr::LOCALHOST {
        Ok(())
    } else {
        Err(Error::InvalidAddress(address))
    }
}

/// Links `exe` into `<root>/bin/<name>` (mode 0755, the directory too), copying it when it is
/// on another file system: instances run it as their own unprivileged uids, which may not reach
/// the original (say, under /root). Replaces an earlier one atomically.
fn install_executable(root: &Path, exe: &Path, name: &str) -> Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let dir = root.join("bin");
    std::fs::create_dir_all(&dir).ctx(|| format!("creating {}", dir.display()))?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))
        .ctx(|| format!("setting the mode of {}", dir.display()))?;
    let target = dir.join(name);
    let tmp = dir.join(format!(".{name}.{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    if std::fs::hard_link(exe, &tmp).is_err() {
        std::fs::copy(exe, &tmp)
            .ctx(|| format!("copying {} to {}", exe.display(), tmp.display()))?;
    }
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))
        .ctx(|| format!("setting the mode of {}", tmp.display()))?;
    std::fs::rename(&tmp, &target).ctx(|| format!("installing {}", target.display()))?;
    Ok(target)
}
