//! [`SandboxHost`]: the lifecycle of sandbox instances on this host.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::error::{Error, IoContext, PrereqError, Result};
use crate::fsutil::Owner;
use crate::layout::{self, Layout, Meta};
use crate::listener::{self, SessionSpawner};
use crate::sandbox::{self, Holder, NsParams};
use crate::{prereq, InstanceSpec, SandboxConfig, IDS_PER_INSTANCE};

/// A running instance: its namespace holder and its listener task.
struct Running {
    holder: Holder,
    listener: JoinHandle<()>,
    addr: SocketAddr,
}

impl Drop for Running {
    fn drop(&mut self) {
        // The holder's `unshare` is killed on drop (and takes the init with it); the listener
        // task must be aborted explicitly, dropping a JoinHandle only detaches it.
        self.listener.abort();
    }
}

/// Per-instance slot; the async mutex serialises start/stop/destroy of one instance.
type Slot = Arc<tokio::sync::Mutex<Option<Running>>>;

/// The sandbox driver for one host: creates, starts, stops and destroys instances under a root
/// directory. Blocking file operations are small and run inline.
pub struct SandboxHost {
    layout: Layout,
    config: SandboxConfig,
    slots: Mutex<HashMap<String, Slot>>,
    /// Serialises creation (uid slot and address allocation).
    create_lock: Mutex<()>,
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
        let layout = Layout::new(root);
        layout.init()?;
        for (id, pid, start_time) in layout.run_records()? {
            tracing::info!(instance = %id, pid, "killing instance left over by a previous run");
            sandbox::kill_stale(pid, start_time);
            layout.remove_run_record(&id)?;
        }
        Ok(SandboxHost {
            layout,
            config,
            slots: Mutex::new(HashMap::new()),
            create_lock: Mutex::new(()),
        })
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
        if self.config.ssh_port != 0 {
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
        let mut meta = Meta {
            id: spec.id.clone(),
            slot,
            address: spec.address,
            hostname: spec.hostname.clone(),
            host_public_key: existing
                .map(|m| m.host_public_key.clone())
                .unwrap_or_default(),
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
        self.layout.save_meta(&meta)
    }

    /// Sets (or with `None`, locks) the root password. It takes effect at the next start or
    /// reboot (like ECS's `ModifyInstanceAttribute` password): `/etc/shadow` inside is a bind
    /// mount of the file as it was at start, and the new file replaces it by rename.
    pub async fn set_password(&self, id: &str, password: Option<&str>) -> Result<()> {
        let meta = self.meta(id)?;
        let hash = password.map(layout::hash_password).transpose()?;
        self.layout
            .lay_out_guest(&meta, self.owner(meta.slot), Some(hash.as_deref()))?;
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
        let owner = self.owner(meta.slot);
        self.layout.lay_out_guest(&meta, owner, None)?;
        let bind = SocketAddr::from((meta.address, self.config.ssh_port));
        let tcp = TcpListener::bind(bind)
            .await
            .ctx(|| format!("binding {bind} for instance {id}"))?;
        let addr = tcp.local_addr().ctx(|| format!("address of {bind}"))?;
        let ns = self.ns_params(meta.slot);
        let guest_dir = self.layout.guest_dir(id);
        let holder = sandbox::spawn_holder(id, &guest_dir, &meta.hostname, &ns).await?;
        self.layout
            .write_run_record(id, holder.pid1, holder.start_time)?;
        let spawner = SessionSpawner {
            id: id.to_owned(),
            pid1: holder.pid1,
            start_time: holder.start_time,
            ns,
            sshd: self.config.sshd_path.clone(),
        };
        let listener = listener::spawn_listener(tcp, spawner);
        tracing::info!(instance = %id, %addr, pid = holder.pid1, "instance started");
        *running = Some(Running {
            holder,
            listener,
            addr,
        });
        Ok(addr)
    }

    /// Stops the instance: closes its listener, then ends every process in it (SIGTERM and
    /// up to `stop_timeout` of grace unless `force`, then SIGKILL). Stopping a stopped
    /// instance is a no-op.
    pub async fn stop(&self, id: &str, force: bool) -> Result<()> {
        self.meta(id)?;
        let slot = self.slot(id);
        let mut running = slot.lock().await;
        if let Some(mut r) = running.take() {
            r.listener.abort();
            r.holder.stop(force, self.config.stop_timeout).await;
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
        if let Some(mut r) = running.take() {
            r.listener.abort();
            r.holder.stop(true, self.config.stop_timeout).await;
        }
        self.layout.remove_guest(id)?;
        self.layout.remove_run_record(id)?;
        self.layout.remove_meta(id)?;
        drop(running);
        self.slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
        Ok(())
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
    pub fn guest_command(&self, id: &str, program: &Path) -> Result<tokio::process::Command> {
        let meta = self.meta(id)?;
        Ok(sandbox::guest_command(&self.ns_params(meta.slot), program))
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
    /// the instance's PID namespace); empty when stopped.
    pub async fn processes(&self, id: &str) -> Vec<u32> {
        let slot = self.slot(id);
        let running = slot.lock().await;
        running
            .as_ref()
            .map(|r| r.holder.processes())
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

    fn owner(&self, slot: u32) -> Owner {
        let uid = self.config.subuid_base + slot * IDS_PER_INSTANCE;
        Owner { uid, gid: uid }
    }

    fn ns_params(&self, slot: u32) -> NsParams {
        NsParams {
            uid_base: self.owner(slot).uid,
            private_network: self.config.private_network,
            max_processes: self.config.max_processes,
        }
    }
}

/// Instances live on loopback addresses; 127.0.0.1 belongs to the host.
fn check_address(address: Ipv4Addr) -> Result<()> {
    if address.is_loopback() && address != Ipv4Addr::LOCALHOST {
        Ok(())
    } else {
        Err(Error::InvalidAddress(address))
    }
}
