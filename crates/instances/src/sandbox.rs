//! Namespaces and processes of one instance.
//!
//! A running instance is held by `unshare` (in the host PID namespace) and its child, the
//! instance's init (PID 1 of the instance's PID namespace: stage 1, [`crate::init`], sets up
//! the mounts and becomes stage 2, a shell that boots the instance and then only reaps
//! orphans). Sessions join those namespaces with `nsenter`. Killing the init
//! kills every process of the instance: that is how stop ends all sessions.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use rustix::process::{Pid, Signal};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, ChildStderr, ChildStdout, Command};

use crate::error::{Error, Result};
use crate::IDS_PER_INSTANCE;

/// `PATH` given to every process we start (the server's environment is never passed on).
pub(crate) const SAFE_PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";

/// How long the init may take to set up its mounts, and to boot once its network is up.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Stage 2 of the init, run by the image's `/bin/sh` as PID 1 once the network is up: the
/// instance's own identity files, its root password when the host set a new one, the guest
/// agent once (so the SSH state is in place before any login; through the metadata service,
/// log in /var/log/keyplane-agent.log), its SSH server (for other instances of its VPC; the
/// host's sessions start `sshd -i`), then `ready`; after it the agent as a daemon that follows
/// changes, user data at first boot and the rc2.d scripts and `/etc/rc.local` in the
/// background, then it only reaps orphans.
// Why those after `ready`: nothing a login needs waits on them, and they would compete with
// the boot for the CPU.
// Why a shell loop as init: dash's `wait` reaps every child, including orphans reparented to
// PID 1; `sleep infinity` alone would leave them as zombies.
pub(crate) const BOOT_SCRIPT: &str = r#"set -u
id=$1 host=$2 addr=$3 dns=$4
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
printf '%s\n' "$host" > /etc/hostname
printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n%s\t%s\n169.254.0.23\tmetadata.tencentyun.com\n' "$addr" "$host" > /etc/hosts
[ -s /etc/machine-id ] || tr -d '-' < /proc/sys/kernel/random/uuid > /etc/machine-id
if [ -n "$dns" ]; then printf 'nameserver %s\n' "$dns" > /etc/resolv.conf; fi
if [ -f /run/keyplane/root-hash ]; then usermod -p "$(cat /run/keyplane/root-hash)" root; fi
agent=
if [ -x /run/keyplane/agent ]; then
  set -- agent --metadata --server http://169.254.0.23 --instance "$id" --ssh-dir /etc/ssh
  /run/keyplane/agent "$@" --once --log warn >> /var/log/keyplane-agent.log 2>&1 < /dev/null ||
    echo "keyplane: the guest agent did not apply the SSH state (see /var/log/keyplane-agent.log)" >&2
  agent=1
fi
/usr/sbin/sshd -f /etc/ssh/sshd_config -E /var/log/sshd.log || echo "keyplane: sshd did not start" >&2
trap 'kill -TERM -1; n=0; while kill -0 -1 2>/dev/null && [ $n -lt 100 ]; do sleep 0.1; n=$((n+1)); done; exit 0' TERM
echo ready
exec </dev/null >/dev/null 2>&1
if [ -n "$agent" ]; then
  ( exec /run/keyplane/agent "$@" --log info >> /var/log/keyplane-agent.log 2>&1 & )
fi
if [ -f /run/keyplane/user-data ]; then
  mkdir -p /var/lib/cloud/instance
  cp /run/keyplane/user-data /var/lib/cloud/instance/user-data.txt
  chmod 0700 /var/lib/cloud/instance/user-data.txt
  if head -c 2 /var/lib/cloud/instance/user-data.txt | grep -q '^#!'; then
    set -- /var/lib/cloud/instance/user-data.txt
  else
    set -- /bin/sh /var/lib/cloud/instance/user-data.txt
  fi
  ( "$@" > /var/log/cloud-init-output.log 2>&1 < /dev/null & )
fi
( for s in /etc/rc2.d/S*; do case $s in *ssh) continue;; esac; [ -x "$s" ] && "$s" start; done
  [ -x /etc/rc.local ] && /etc/rc.local ) > /var/log/boot.log 2>&1 < /dev/null &
cd /
while :; do sleep 2147483647 & wait; done
"#;

/// Runs sshd only if it really is inside instance `$1` (`$2` = sshd path inside).
// Why: should the init die and its PID be reused, `nsenter --target` would enter some other
// process's namespaces: another instance's (a login there with this instance's credentials), or
// the host's (util-linux 2.38 then fails on the user namespace, but not every version does).
// The marker exists only in this instance's private /run, so both cases fail closed.
const SESSION_SCRIPT: &str = r#"read -r id < /run/keyplane-instance && [ "$id" = "$1" ] && exec "$2" -i -e -f /etc/ssh/sshd_config
echo "keyplane: not inside instance $1, refusing" >&2
exit 1
"#;

/// Path of the SSH server inside instances.
pub(crate) const GUEST_SSHD: &str = "/usr/sbin/sshd";

/// Namespace settings shared by the init and the sessions of one instance.
#[derive(Debug, Clone)]
pub(crate) struct NsParams {
    /// Host uid (and gid) that root inside maps to.
    pub uid_base: u32,
    /// `RLIMIT_NPROC` of the instance's processes (a backstop; the pids cgroup is the limit).
    pub max_processes: u64,
    /// The `tasks` files of the instance's cgroups, joined before anything else runs.
    pub cgroup_tasks: Vec<PathBuf>,
}

/// What stage 1 of the init needs to boot an instance.
#[derive(Debug, Clone)]
pub(crate) struct BootParams<'a> {
    pub id: &'a str,
    /// The instance's directory on the host (the init's working directory).
    pub guest_dir: &'a Path,
    pub hostname: &'a str,
    pub address: std::net::Ipv4Addr,
    /// The image tree, relative to `guest_dir`.
    pub lower: &'a str,
    /// Name server written to /etc/resolv.conf (none without outbound networking).
    pub dns: Option<&'a str>,
    /// The guest agent executable, relative to the instance's disk root (before the pivot).
    pub agent: Option<&'a str>,
    /// The executable of stage 1 ([`crate::init`]), relative to `guest_dir`.
    pub init: &'a str,
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
    /// The server's end of the init's standard input, a socket pair: the init waits for `go`
    /// there, then hands it to the session helper ([`crate::sessions`]).
    channel: Option<Arc<OwnedFd>>,
    /// Whether `go` was sent.
    booted: bool,
    /// The session helper (host PID and start time), once the instance is up.
    helper: Option<(u32, u64)>,
    /// The init's standard output (`net`, then `ready`).
    stdout: Option<BufReader<ChildStdout>>,
    stderr: Option<ChildStderr>,
}

/// A `Command` that joins the instance's cgroups, then runs under `prlimit`, with a clean
/// environment and its own process group.
fn limited_command(ns: &NsParams) -> Command {
    let mut cmd = Command::new("/bin/sh");
    cmd.args(["-c", crate::cgroup::JOIN_SCRIPT, "keyplane-join"])
        .args(&ns.cgroup_tasks)
        .arg("--")
        .arg("/usr/bin/prlimit")
        .arg(format!("--nproc={0}:{0}", ns.max_processes))
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

/// Starts the namespaces and stage 1 of the init of an instance, and waits until its disk is
/// mounted and it waits for its network ([`Holder::boot`] goes on from there).
pub(crate) async fn spawn_holder(boot: &BootParams<'_>, ns: &NsParams) -> Result<Holder> {
    let map = format!("{},0,{IDS_PER_INSTANCE}", ns.uid_base);
    let (channel, init_end) = crate::sessions::channel()
        .map_err(|e| start_failed(boot.id, format!("creating the init's channel: {e}")))?;
    let mut cmd = limited_command(ns);
    cmd.arg("/usr/bin/unshare")
        .args(["--user", &format!("--map-users={map}")])
        .arg(format!("--map-groups={map}"))
        .args(["--setuid", "0", "--setgid", "0"])
        .args(["--mount", "--propagation", "private"])
        .args(["--pid", "--fork", "--uts", "--ipc", "--net"])
        .args(["--", boot.init, crate::init::SUBCOMMAND])
        .arg(boot.id)
        .arg(boot.hostname)
        .arg(boot.address.to_string())
        .arg(boot.lower)
        .arg(boot.dns.unwrap_or(""))
        .arg(boot.agent.unwrap_or(""))
        .current_dir(boot.guest_dir)
        .stdin(Stdio::from(init_end))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd
        .spawn()
        .map_err(|e| start_failed(boot.id, format!("spawning unshare: {e}")))?;
    // `cmd` still holds the init's end; the channel must close when the init and the helper
    // are gone.
    drop(cmd);
    // From here on the holder's Drop cleans up, even if this future is cancelled.
    let mut holder = Holder {
        child,
        pid1: 0,
        start_time: 0,
        channel: Some(Arc::new(channel)),
        booted: false,
        helper: None,
        stdout: None,
        stderr: None,
    };
    holder.stdout = holder.child.stdout.take().map(BufReader::new);
    holder.stderr = holder.child.stderr.take();
    holder.expect_line(boot.id, "net").await?;
    let unshare_pid = holder.child.id();
    let pid1 = unshare_pid.and_then(find_child);
    let stat = pid1.and_then(proc_stat);
    let (Some(pid1), Some(stat)) = (pid1, stat) else {
        return Err(start_failed(boot.id, "init process not found".into()));
    };
    holder.pid1 = pid1;
    holder.start_time = stat.start_time;
    Ok(holder)
}

fn start_failed(id: &str, detail: String) -> Error {
    Error::StartFailed {
        id: id.to_owned(),
        detail,
    }
}

impl Holder {
    /// Lets stage 1 go on into the boot (its network is wired) and waits until the instance is
    /// up.
    pub async fn boot(&mut self, id: &str) -> Result<()> {
        let Some(channel) = self.channel.clone().filter(|_| !self.booted) else {
            return Err(start_failed(id, "the init was already booted".into()));
        };
        self.booted = true;
        // A few bytes into an empty socket buffer: this does not block.
        let sent = rustix::net::send(channel.as_fd(), b"go\n", rustix::net::SendFlags::NOSIGNAL);
        if let Err(e) = sent {
            return Err(self.fail(id, format!("the init went away: {e}")).await);
        }
        self.expect_line(id, "ready").await?;
        self.stdout = None;
        self.stderr = None;
        self.helper = find_helper(self.pid1);
        if self.helper.is_none() {
            tracing::warn!(instance = %id, "no session helper in the instance; sessions start from outside");
        }
        Ok(())
    }

    /// The channel to the instance's session helper and its host PID and start time, when
    /// it was there at boot.
    pub fn session_channel(&self) -> Option<(Arc<OwnedFd>, u32, u64)> {
        let (pid, start) = self.helper?;
        Some((self.channel.clone()?, pid, start))
    }

    /// Reads the init's next line and checks it is `want`; otherwise kills it and says why.
    async fn expect_line(&mut self, id: &str, want: &str) -> Result<()> {
        let mut line = String::new();
        let read = match self.stdout.as_mut() {
            Some(out) => tokio::time::timeout(READY_TIMEOUT, out.read_line(&mut line)).await,
            None => return Err(start_failed(id, "the init's output is closed".into())),
        };
        if matches!(read, Ok(Ok(n)) if n > 0) && line.trim() == want {
            return Ok(());
        }
        let why = match read {
            Err(_) => format!("init did not say {want:?} within {READY_TIMEOUT:?}"),
            _ => format!("init stopped before saying {want:?}"),
        };
        Err(self.fail(id, why).await)
    }

    /// Kills a failed init and gathers what it printed.
    async fn fail(&mut self, id: &str, why: String) -> Error {
        if self.pid1 == 0 {
            self.kill_unknown_init();
        } else if self.init_matches() {
            send_signal(self.pid1, Signal::KILL);
        }
        let _ = self.child.start_kill();
        let status = self.child.wait().await.ok();
        let mut err = String::new();
        if let Some(mut stderr) = self.stderr.take() {
            let _ =
                tokio::time::timeout(Duration::from_secs(2), stderr.read_to_string(&mut err)).await;
        }
        start_failed(id, format!("{why} (status {status:?}): {}", err.trim()))
    }
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

/// A command that runs `program` as the instance's root (its uid range, user namespace only),
/// against host paths relative to `guest_dir` (its working directory): how the server runs the
/// guest agent on an instance's files whether or not the instance is running.
pub(crate) fn guest_command(ns: &NsParams, guest_dir: &Path, program: &Path) -> Command {
    let map = format!("{},0,{IDS_PER_INSTANCE}", ns.uid_base);
    let mut cmd = limited_command(ns);
    cmd.arg("/usr/bin/unshare")
        .args(["--user", &format!("--map-users={map}")])
        .arg(format!("--map-groups={map}"))
        .args(["--setuid", "0", "--setgid", "0", "--"])
        .arg(program)
        .current_dir(guest_dir);
    cmd
}

/// The command that runs one SSH session: `sshd -i` inside every namespace of the instance.
pub(crate) fn session_command(id: &str, pid1: u32, ns: &NsParams) -> Command {
    let mut cmd = limited_command(ns);
    cmd.arg("/usr/bin/nsenter")
        .args(["--target", &pid1.to_string()])
        .args(["--user", "--mount", "--pid", "--uts", "--ipc", "--net"])
        .args([
            "--",
            "/bin/sh",
            "-c",
            SESSION_SCRIPT,
            "keyplane-session",
            id,
        ])
        .arg(GUEST_SSHD);
    cmd
}

/// The session helper among the init's children: the one that runs as
/// [`crate::sessions::PROCESS_NAME`] (stage 1 starts it before anything else).
fn find_helper(pid1: u32) -> Option<(u32, u64)> {
    let path = format!("/proc/{pid1}/task/{pid1}/children");
    let children = std::fs::read_to_string(path).ok()?;
    children
        .split_whitespace()
        .filter_map(|p| p.parse::<u32>().ok())
        .find(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                c.split(|&b| b == 0).next() == Some(crate::sessions::PROCESS_NAME.as_bytes())
            })
        })
        .and_then(|pid| Some((pid, proc_stat(pid)?.start_time)))
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
