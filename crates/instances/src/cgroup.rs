//! Resource limits of an instance: a cgroup (v1) per instance in the memory, cpu and pids
//! hierarchies, under the server's own cgroup.
//!
//! Every process of the instance (its init and what it starts, and each SSH session) is placed
//! in the group before it runs instance code, so memory, CPU time and process count are
//! counted and capped per instance, and the kernel's OOM killer acts inside the group only.

use std::path::{Path, PathBuf};

use crate::error::{IoContext, Result};

const ROOT: &str = "/sys/fs/cgroup";
const CONTROLLERS: [&str; 3] = ["memory", "cpu", "pids"];

/// What an instance may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resources {
    /// CPU cores (a CFS quota of this many full cores).
    pub cpus: u32,
    /// Memory limit, MiB.
    pub memory_mib: u64,
    /// Most processes and threads at once.
    pub max_processes: u64,
}

impl Default for Resources {
    fn default() -> Self {
        Resources {
            cpus: 1,
            memory_mib: 1024,
            max_processes: 1024,
        }
    }
}

/// The cgroups of one instance.
#[derive(Debug, Clone)]
pub(crate) struct Cgroup {
    /// One directory per available controller.
    dirs: Vec<(&'static str, PathBuf)>,
}

/// The server's own cgroup path in `controller` (from /proc/self/cgroup).
fn own_path(controller: &str) -> Option<String> {
    let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    text.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
        ctrls
            .split(',')
            .any(|c| c == controller)
            .then(|| path.to_owned())
    })
}

/// The group of every instance of the sandbox `root` (two servers on a host never share one).
pub(crate) fn group_name(root: &Path) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(root.as_os_str().as_encoded_bytes());
    format!("keyplane-{}", hex::encode(&digest[..6]))
}

/// Controllers mounted as cgroup v1 hierarchies on this host.
pub(crate) fn available() -> Vec<&'static str> {
    CONTROLLERS
        .into_iter()
        .filter(|c| Path::new(ROOT).join(c).join("tasks").exists())
        .collect()
}

impl Cgroup {
    /// Creates (or reuses) the instance's groups, named `<group>/<id>` below the server's own
    /// cgroup, and sets their limits.
    pub fn create(group: &str, id: &str, res: Resources) -> Result<Cgroup> {
        let mut dirs = Vec::new();
        for ctrl in available() {
            let base = own_path(ctrl).unwrap_or_else(|| "/".into());
            let dir = Path::new(ROOT)
                .join(ctrl)
                .join(base.trim_start_matches('/'))
                .join(group)
                .join(id);
            std::fs::create_dir_all(&dir).ctx(|| format!("creating {}", dir.display()))?;
            dirs.push((ctrl, dir));
        }
        let cg = Cgroup { dirs };
        cg.set_limits(res)?;
        Ok(cg)
    }

    fn set_limits(&self, res: Resources) -> Result<()> {
        for (ctrl, dir) in &self.dirs {
            let settings: Vec<(&str, String)> = match *ctrl {
                "memory" => vec![(
                    "memory.limit_in_bytes",
                    (res.memory_mib * 1024 * 1024).to_string(),
                )],
                "cpu" => vec![
                    ("cpu.cfs_period_us", "100000".into()),
                    (
                        "cpu.cfs_quota_us",
                        (u64::from(res.cpus) * 100_000).to_string(),
                    ),
                ],
                "pids" => vec![("pids.max", res.max_processes.to_string())],
                _ => vec![],
            };
            let mut settings = settings;
            // Why: with swap on the host, memory.limit_in_bytes alone lets an instance swap
            // far past its type's memory, so memsw (memory plus swap) gets the same figure.
            // The kernel keeps memsw at or above the memory limit: lift it, set the memory
            // limit, then lower it.
            if *ctrl == "memory" && dir.join("memory.memsw.limit_in_bytes").exists() {
                let bytes = (res.memory_mib * 1024 * 1024).to_string();
                settings.insert(0, ("memory.memsw.limit_in_bytes", "-1".into()));
                settings.push(("memory.memsw.limit_in_bytes", bytes));
            }
            for (file, value) in settings {
                let path = dir.join(file);
                std::fs::write(&path, &value)
                    .ctx(|| format!("writing {value} to {}", path.display()))?;
            }
        }
        Ok(())
    }

    /// The `tasks` files a process writes its pid to, to join every group.
    pub fn task_files(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(|(_, d)| d.join("tasks")).collect()
    }

    /// Memory the instance uses now (bytes), when the memory controller is there.
    pub fn memory_usage(&self) -> Option<u64> {
        let (_, dir) = self.dirs.iter().find(|(c, _)| *c == "memory")?;
        std::fs::read_to_string(dir.join("memory.usage_in_bytes"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Removes the groups once their last processes have exited (they may still be going
    /// when a stop returns); a group still busy after a second is left for the next start.
    pub async fn remove(&self) {
        for (_, dir) in &self.dirs {
            for attempt in 0..50 {
                match std::fs::remove_dir(dir) {
                    Ok(()) => break,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                    Err(e) if attempt == 49 => {
                        tracing::debug!(dir = %dir.display(), "cgroup not removed: {e}");
                    }
                    Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
                }
            }
        }
    }
}

/// Removes the empty groups of instances under `group` that earlier server processes left
/// (busy ones, of instances still running elsewhere, stay).
pub(crate) fn remove_stale(group: &str) {
    for ctrl in available() {
        let base = own_path(ctrl).unwrap_or_else(|| "/".into());
        let dir = Path::new(ROOT)
            .join(ctrl)
            .join(base.trim_start_matches('/'))
            .join(group);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                let _ = std::fs::remove_dir(entry.path());
            }
        }
    }
}

/// Shell prefix that writes its own pid to each `tasks` file given before `--`, then execs the
/// rest: how a process joins the groups before it runs anything else.
pub(crate) const JOIN_SCRIPT: &str =
    r#"while [ "$1" != -- ]; do echo $$ > "$1" || exit 125; shift; done; shift; exec "$@""#;
