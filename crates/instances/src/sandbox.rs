//! Namespaces and processes of one instance.
//!
//! A running instance is held by `unshare` (in the host PID namespace) and its child, the
//! instance's init (PID 1 of the instance's PID namespace, a shell that sets up the mounts and
//! then only reaps orphans). Sessions join those namespaces with `nsenter`. Killing the init
//! kills every process of the instance: that is how stop ends all sessions.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use rustix::process::{Pid, Signal};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::error::{Error, Result};
use crate::IDS_PER_INSTANCE;

/// `PATH` given to every process we start (the server's environment is never passed on).
pub(crate) const SAFE_PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";

/// How long the init may take to set up its mounts.
const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// The instance's init, run as the instance's root inside fresh namespaces.
/// `$1` = instance directory on the host, `$2` = hostname, `$3` = `private` for a private network,
/// `$4` = instance id (written to the marker that sessions check, see [`SESSION_SCRIPT`]).
// Why bind mounts before the tmpfs mounts: the instance directory may live under /tmp.
// Why a shell loop as init: dash's `wait` reaps every child, including orphans reparented to
// PID 1; `sleep infinity` alone would leave them as zombies.
const INIT_SCRIPT: &str = r#"set -eu
g=$1
mount --bind "$g/etc-ssh" /etc/ssh
mount --bind "$g/shadow" /etc/shadow
if [ -e /etc/hostname ]; then mount --bind "$g/hostname" /etc/hostname; fi
mount --bind "$g/home" /root
mount -t tmpfs -o mode=0755,size=8m,nosuid,nodev tmpfs /run
mkdir -m 0755 /run/sshd
echo "$4" > /run/keyplane-instance
for d in /tmp /var/tmp /dev/shm; do
  if [ -d "$d" ]; then mount -t tmpfs -o mode=1777,size=64m,nosuid,nodev tmpfs "$d"; fi
done
hostname "$2"
if [ "$3" = private ]; then ip link set lo up; fi
trap 'kill -TERM -1; n=0; while kill -0 -1 && [ $n -lt 100 ]; do sleep 0.1; n=$((n+1)); done; exit 0' TERM
echo ready
exec </dev/null >/dev/null 2>&1
cd /
while :; do sleep 2147483647 & wait; done
"#;

/// Runs sshd only if it really is inside instance `$1` (`$2` = sshd path).
// Why: should the init die and its PID be reused, `nsenter --target` would enter some other
// process's namespaces: another instance's (a login there with this instance's credentials), or
// the host's (util-linux 2.38 then fails on the user namespace, but not every version does).
// The marker exists only in this instance's private /run, so both cases fail closed.
const SESSION_SCRIPT: &str = r#"read -r id < /run/keyplane-instance && [ "$id" = "$1" ] && exec "$2" -i -e -f /etc/ssh/sshd_config
echo "keyplane: not inside instance $1, refusing" >&2
exit 1
"#;

/// Namespace settings shared by the init and the sessions of one instance.
#[derive(Debug, Clone)]
pub(crate) struct NsParams {
    /// Host uid (and gid) that root inside maps to.
    pub uid_base: u32,
    /// Whether the instance has its own network namespace.
    pub private_network: bool,
    /// `RLIMIT_NPROC` of the instance's uid.
    pub max_processes: u64,
}

/// The running init of an instance.
#[derive(Debug)]
pub(crate) struct Holder {
    /// The `unshare` process (our child).
    child: Child,
    /// Host PID of the instance's init.
    pub pid1: u32,
    /// Start time (clock ticks since boot) of the init, guarding against PID reuse.
    pub start_time: u64,
}

/// A `Command` wrapped in `prlimit`, with a clean environment and its own process group.
fn limited_command(max_processes: u64) -> Command {
    let mut cmd = Command::new("/usr/bin/prlimit");
    cmd.arg(format!("--nproc={max_processes}:{max_processes}"))
        .arg("--")
        .env_clear()
        .env("PATH", SAFE_PATH)
        .current_dir("/")
        // Why: a Ctrl-C on the server's terminal must not reach the instances directly.
        .process_group(0);
    // Why no kill_on_drop: killing the holder's `unshare` or a session's `nsenter` before it
    // has reaped its child leaves that zombie to the host's init, and the instance's PID
    // namespace is not torn down until it is reaped. Both exit on their own once the init dies.
    cmd
}

/// Starts the namespaces and init of an instance and waits until its mounts are in place.
pub(crate) async fn spawn_holder(
    id: &str,
    guest_dir: &Path,
    hostname: &str,
    ns: &NsParams,
) -> Result<Holder> {
    let map = format!("{},0,{IDS_PER_INSTANCE}", ns.uid_base);
    let mut cmd = limited_command(ns.max_processes);
    cmd.arg("/usr/bin/unshare")
        .args(["--user", &format!("--map-users={map}")])
        .arg(format!("--map-groups={map}"))
        .args(["--setuid", "0", "--setgid", "0"])
        .args(["--mount", "--propagation", "private", "--mount-proc"])
        .args(["--pid", "--fork", "--uts", "--ipc"]);
    if ns.private_network {
        cmd.arg("--net");
    }
    cmd.args(["--", "/bin/sh", "-c", INIT_SCRIPT, "keyplane-init"])
        .arg(guest_dir)
        .arg(hostname)
        .arg(if ns.private_network {
            "private"
        } else {
            "shared"
        })
        .arg(id)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let failed = |detail: String| Error::StartFailed {
        id: id.to_owned(),
        detail,
    };
    let mut child = cmd
        .spawn()
        .map_err(|e| failed(format!("spawning unshare: {e}")))?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut stderr = child.stderr.take().expect("stderr is piped");
    // From here on the holder's Drop cleans up, even if this future is cancelled.
    let mut holder = Holder {
        child,
        pid1: 0,
        start_time: 0,
    };
    let mut line = String::new();
    let ready = tokio::time::timeout(READY_TIMEOUT, async {
        BufReader::new(stdout).read_line(&mut line).await
    })
    .await;
    if !matches!(ready, Ok(Ok(_))) || line.trim() != "ready" {
        holder.kill_unknown_init();
        let _ = holder.child.start_kill();
        let status = holder.child.wait().await.ok();
        let mut err = String::new();
        let _ = tokio::time::timeout(Duration::from_secs(2), stderr.read_to_string(&mut err)).await;
        return Err(failed(format!(
            "init did not come up (status {status:?}): {}",
            err.trim()
        )));
    }
    let unshare_pid = holder
        .child
        .id()
        .ok_or_else(|| failed("unshare exited".into()))?;
    holder.pid1 = find_child(unshare_pid).ok_or_else(|| failed("init process not found".into()))?;
    holder.start_time = proc_stat(holder.pid1)
        .map(|s| s.start_time)
        .ok_or_else(|| failed("init process vanished".into()))?;
    Ok(holder)
}

impl Drop for Holder {
    fn drop(&mut self) {
        // Why not `unshare --kill-child`: its parent-death signal is cleared when unshare
        // changes credentials (`--setuid 0`), so killing unshare would leave the init alive.
        // Why unshare is not killed: it reaps the init; killing it would leave the zombie init
        // (which holds the PID namespace until its processes are reaped) to the host's init.
        if self.pid1 == 0 {
            self.kill_unknown_init();
        } else if self.init_matches() {
            send_signal(self.pid1, Signal::KILL);
        }
    }
}

impl Holder {
    /// Whether the init (and so the instance) is still alive.
    pub fn is_alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None)) && self.init_matches()
    }

    /// Kills the init while its PID is not known yet (start failed or was cancelled).
    fn kill_unknown_init(&mut self) {
        if let Some(pid) = self.child.id().and_then(find_child) {
            send_signal(pid, Signal::KILL);
        }
    }

    fn init_matches(&self) -> bool {
        init_alive(self.pid1, self.start_time)
    }

    /// Stops the instance: SIGTERM to every process and a grace period (unless `force`), then
    /// SIGKILL of the init, which takes the whole PID namespace with it.
    pub async fn stop(&mut self, force: bool, grace: Duration) {
        if !force && self.init_matches() {
            send_signal(self.pid1, Signal::TERM);
            if tokio::time::timeout(grace, self.child.wait()).await.is_ok() {
                return;
            }
        }
        if self.init_matches() {
            send_signal(self.pid1, Signal::KILL);
        }
        if tokio::time::timeout(Duration::from_secs(5), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}

/// The command that runs one SSH session: `sshd -i` inside the instance's namespaces.
/// A command that runs `program` as the instance's root (its uid range, user namespace only),
/// against host paths: how the server runs the guest agent on an instance's files whether or
/// not the instance is running.
pub(crate) fn guest_command(ns: &NsParams, program: &Path) -> Command {
    let map = format!("{},0,{IDS_PER_INSTANCE}", ns.uid_base);
    let mut cmd = limited_command(ns.max_processes);
    cmd.arg("/usr/bin/unshare")
        .args(["--user", &format!("--map-users={map}")])
        .arg(format!("--map-groups={map}"))
        .args(["--setuid", "0", "--setgid", "0", "--"])
        .arg(program);
    cmd
}

pub(crate) fn session_command(id: &str, pid1: u32, ns: &NsParams, sshd: &Path) -> Command {
    let mut cmd = limited_command(ns.max_processes);
    cmd.arg("/usr/bin/nsenter")
        .args(["--target", &pid1.to_string()])
        .args(["--user", "--mount", "--pid", "--uts", "--ipc"]);
    if ns.private_network {
        cmd.arg("--net");
    }
    cmd.args([
        "--",
        "/bin/sh",
        "-c",
        SESSION_SCRIPT,
        "keyplane-session",
        id,
    ])
    .arg(sshd);
    cmd
}

/// Whether the process `pid` is still the init started at `start_time` and not a zombie.
pub(crate) fn init_alive(pid: u32, start_time: u64) -> bool {
    proc_stat(pid).is_some_and(|s| s.start_time == start_time && s.state != 'Z')
}

/// Sends a signal, ignoring a process that is already gone.
pub(crate) fn send_signal(pid: u32, sig: Signal) {
    if let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) {
        let _ = rustix::process::kill_process(pid, sig);
    }
}

/// Kills an init left behind by an earlier server process, if it is still the same process.
pub(crate) fn kill_stale(pid: u32, start_time: u64) {
    if proc_stat(pid).is_some_and(|s| s.start_time == start_time) {
        send_signal(pid, Signal::KILL);
    }
}

/// The few fields of `/proc/PID/stat` we use.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ProcStat {
    pub state: char,
    pub ppid: u32,
    pub start_time: u64,
}

/// Reads `/proc/PID/stat`.
pub(crate) fn proc_stat(pid: u32) -> Option<ProcStat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces) start at field 3 (state).
    let rest = text.get(text.rfind(')')? + 1..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(ProcStat {
        state: fields.first()?.chars().next()?,
        ppid: fields.get(1)?.parse().ok()?,
        start_time: fields.get(19)?.parse().ok()?,
    })
}

/// The (single) child process of `parent`.
pub(crate) fn find_child(parent: u32) -> Option<u32> {
    let path = format!("/proc/{parent}/task/{parent}/children");
    if let Ok(text) = std::fs::read_to_string(path) {
        if let Some(pid) = text.split_whitespace().next().and_then(|p| p.parse().ok()) {
            return Some(pid);
        }
    }
    // Fallback for kernels without CONFIG_PROC_CHILDREN: scan /proc.
    std::fs::read_dir("/proc")
        .ok()?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .find(|&pid| proc_stat(pid).is_some_and(|s| s.ppid == parent))
}

/// Host processes belonging to the instance whose init is `pid1` (the init's PID namespace),
/// plus the holder `unshare` itself.
pub(crate) fn instance_processes(unshare_pid: Option<u32>, pid1: u32) -> Vec<u32> {
    let Ok(ns) = std::fs::read_link(format!("/proc/{pid1}/ns/pid")) else {
        return Vec::new();
    };
    let mut pids: Vec<u32> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| std::fs::read_link(format!("/proc/{pid}/ns/pid")).is_ok_and(|p| p == ns))
        .collect();
    pids.extend(unshare_pid);
    pids.sort_unstable();
    pids
}

impl Holder {
    /// Host PIDs of the instance's processes (for measurements and diagnostics).
    pub fn processes(&self) -> Vec<u32> {
        instance_processes(self.child.id(), self.pid1)
    }
}
