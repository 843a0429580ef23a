//! Stage 1 of an instance's init, run by this executable (`keyplane sandbox-init ...`) as the
//! instance's root inside its fresh namespaces, with the instance directory as working
//! directory (so no host path above it needs to be searchable by the instance's uids).
//!
//! It mounts the instance's disk (an overlay of its own upper layer over the shared image), a
//! private /proc, /dev, /run, /tmp and a read-only /sys, pivots into the disk and detaches the
//! host's tree for good, sets the host name, says `net` and waits for the host to wire its
//! network (`go` on its standard input), starts the helper for the host's SSH sessions
//! ([`crate::sessions`]) and becomes stage 2: the image's own `/bin/sh` running the boot
//! script. Every step before is a system call.

use std::ffi::{OsStr, OsString};
use std::io::{BufRead, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;

use rustix::mount::{mount, mount_bind, mount_remount, unmount, MountFlags, UnmountFlags};

/// The subcommand of the keyplane executable that runs [`run`].
pub const SUBCOMMAND: &str = "sandbox-init";

/// The device nodes an instance gets, bound from the host's (they are the harmless ones).
const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

/// What stage 1 is given (in this order on its command line).
#[derive(Debug)]
struct Args {
    id: OsString,
    hostname: OsString,
    address: OsString,
    /// The image tree, relative to the instance directory.
    lower: OsString,
    /// Name server for /etc/resolv.conf, or empty.
    dns: OsString,
    /// The guest agent executable relative to the disk's root (before the pivot), or empty.
    agent: OsString,
}

impl Args {
    fn parse(args: Vec<OsString>) -> Result<Args, String> {
        let n = args.len();
        let mut it = args.into_iter();
        let mut next = || it.next();
        match (next(), next(), next(), next(), next(), next()) {
            (Some(id), Some(hostname), Some(address), Some(lower), Some(dns), Some(agent))
                if n == 6 =>
            {
                Ok(Args {
                    id,
                    hostname,
                    address,
                    lower,
                    dns,
                    agent,
                })
            }
            _ => Err(format!(
                "usage: keyplane {SUBCOMMAND} ID HOSTNAME ADDRESS LOWER DNS AGENT (got {n} arguments)"
            )),
        }
    }
}

/// Runs stage 1 with `args` (what follows the subcommand) and never returns: it becomes stage
/// 2, or exits 1 after saying on standard error what failed.
pub fn run(args: Vec<OsString>) -> ! {
    let err = match Args::parse(args).and_then(|a| stage1(&a).map(|()| a)) {
        Ok(a) => {
            start_session_helper();
            // Only returns when the exec failed.
            let e = std::process::Command::new("/bin/sh")
                .arg0("keyplane-init")
                .args([OsStr::new("-c"), OsStr::new(crate::sandbox::BOOT_SCRIPT)])
                .arg("keyplane-init")
                .args([&a.id, &a.hostname, &a.address, &a.dns])
                .stdin(std::process::Stdio::null())
                .exec();
            format!("starting the boot script: {e}")
        }
        Err(e) => e,
    };
    let _ = writeln!(std::io::stderr(), "keyplane-init: {err}");
    std::process::exit(1)
}

/// Starts the helper that runs the host's SSH sessions ([`crate::sessions`]) with the server's
/// channel (this process's standard input) as its own. Without it the server starts sessions
/// from outside, so a failure only says so.
fn start_session_helper() {
    let started = std::process::Command::new("/proc/self/exe")
        .arg0(crate::sessions::PROCESS_NAME)
        .arg(crate::sessions::SUBCOMMAND)
        .env_clear()
        .env("PATH", crate::sandbox::SAFE_PATH)
        .current_dir("/")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    if let Err(e) = started {
        let _ = writeln!(std::io::stderr(), "keyplane-init: no session helper: {e}");
    }
}

fn ctx(what: impl FnOnce() -> String) -> impl FnOnce(std::io::Error) -> String {
    move |e| format!("{}: {e}", what())
}

fn mnt(
    source: &str,
    target: &str,
    fstype: &str,
    flags: MountFlags,
    data: &str,
) -> Result<(), String> {
    let data = std::ffi::CString::new(data).map_err(|e| e.to_string())?;
    mount(source, target, fstype, flags, data.as_c_str())
        .map_err(|e| format!("mounting {fstype} on {target}: {e}"))
}

fn mkdirs(paths: &[&str]) -> Result<(), String> {
    for p in paths {
        std::fs::create_dir_all(p).map_err(ctx(|| format!("creating {p}")))?;
    }
    Ok(())
}

/// An empty file at `target` with `source` bound over it (read-only when asked).
fn bind_file(source: &Path, target: &str, read_only: bool) -> Result<(), String> {
    std::fs::File::create(target).map_err(ctx(|| format!("creating {target}")))?;
    mount_bind(source, target)
        .map_err(|e| format!("binding {} on {target}: {e}", source.display()))?;
    if read_only {
        // Why the flags: in a user namespace the kernel refuses a remount that drops a flag the
        // source mount has locked (nosuid, nodev, noexec, its atime mode): give them again.
        let keep = rustix::fs::statvfs(target)
            .map(|s| s.f_flag)
            .map_err(|e| format!("reading the flags of {target}: {e}"))?;
        let mut flags = MountFlags::BIND | MountFlags::RDONLY;
        for (bit, flag) in [
            (rustix::fs::StatVfsMountFlags::NOSUID, MountFlags::NOSUID),
            (rustix::fs::StatVfsMountFlags::NODEV, MountFlags::NODEV),
            (rustix::fs::StatVfsMountFlags::NOEXEC, MountFlags::NOEXEC),
            (rustix::fs::StatVfsMountFlags::NOATIME, MountFlags::NOATIME),
            (
                rustix::fs::StatVfsMountFlags::NODIRATIME,
                MountFlags::NODIRATIME,
            ),
            (
                rustix::fs::StatVfsMountFlags::RELATIME,
                MountFlags::RELATIME,
            ),
        ] {
            if keep.contains(bit) {
                flags |= flag;
            }
        }
        mount_remount(target, flags, "").map_err(|e| format!("making {target} read-only: {e}"))?;
    }
    Ok(())
}

fn symlink(to: &str, at: &str) -> Result<(), String> {
    std::os::unix::fs::symlink(to, at).map_err(ctx(|| format!("linking {at} to {to}")))
}

/// The mounts, the pivot, `net`, then the wait for `go`.
fn stage1(a: &Args) -> Result<(), String> {
    mount_disk(&a.lower)?;
    mount_system()?;
    fill_run(a)?;
    pivot_into_disk(&a.hostname)?;
    wait_for_network()
}

/// Mounts the instance's disk on `disk/root`, its own upper layer over the image tree `lower`,
/// and enters it.
fn mount_disk(lower: &OsStr) -> Result<(), String> {
    use MountFlags as F;
    mkdirs(&["disk/root"])?;
    let lower = lower.to_str().ok_or("the image path is not UTF-8")?;
    // Why `userxattr`: in a user namespace overlayfs keeps its metadata (opaque and impure
    // directories) in user.overlay.* attributes; without them it answers EXDEV to the renames
    // dpkg makes when it unpacks a package.
    let options = format!("lowerdir={lower},upperdir=disk/upper,workdir=disk/work,userxattr");
    mnt("overlay", "disk/root", "overlay", F::empty(), &options)?;
    std::env::set_current_dir("disk/root").map_err(ctx(|| "entering disk/root".into()))?;
    Ok(())
}

/// Mounts the disk's /proc, /dev, /sys, /run and /tmp (and binds the instance's /etc/ssh).
fn mount_system() -> Result<(), String> {
    use MountFlags as F;
    mkdirs(&["etc/ssh", "proc", "dev", "sys", "run", "tmp"])?;
    mount_bind("../../etc-ssh", "etc/ssh").map_err(|e| format!("binding etc/ssh: {e}"))?;
    mnt("proc", "proc", "proc", F::NOSUID | F::NODEV | F::NOEXEC, "")?;
    mount_dev()?;
    // A sysfs needs a network namespace of its own, which the instance has; should the kernel
    // still refuse, the instance goes without /sys.
    let _ = mnt(
        "sysfs",
        "sys",
        "sysfs",
        F::RDONLY | F::NOSUID | F::NODEV | F::NOEXEC,
        "",
    );
    mnt(
        "tmpfs",
        "run",
        "tmpfs",
        F::NOSUID | F::NODEV,
        "mode=0755,size=64m",
    )?;
    mnt("tmpfs", "tmp", "tmpfs", F::NOSUID | F::NODEV, "mode=1777")?;
    Ok(())
}

/// Mounts a /dev of the instance's own: the harmless host devices, its own ptys and a /dev/shm.
fn mount_dev() -> Result<(), String> {
    use MountFlags as F;
    mnt("tmpfs", "dev", "tmpfs", F::NOSUID, "mode=0755,size=256k")?;
    for d in DEVICES {
        bind_file(&Path::new("/dev").join(d), &format!("dev/{d}"), false)?;
    }
    mkdirs(&["dev/pts", "dev/shm"])?;
    mnt(
        "devpts",
        "dev/pts",
        "devpts",
        F::NOSUID | F::NOEXEC,
        "newinstance,ptmxmode=0666,mode=0620,gid=5",
    )?;
    symlink("pts/ptmx", "dev/ptmx")?;
    symlink("/proc/self/fd", "dev/fd")?;
    symlink("/proc/self/fd/0", "dev/stdin")?;
    symlink("/proc/self/fd/1", "dev/stdout")?;
    symlink("/proc/self/fd/2", "dev/stderr")?;
    mnt(
        "tmpfs",
        "dev/shm",
        "tmpfs",
        F::NOSUID | F::NODEV,
        "mode=1777,size=64m",
    )?;
    Ok(())
}

/// Fills the instance's /run/keyplane: the boot files, the instance marker and the agent.
fn fill_run(a: &Args) -> Result<(), String> {
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create("run/keyplane")
        .map_err(ctx(|| "creating run/keyplane".into()))?;
    copy_boot_files(Path::new("../../boot"), Path::new("run/keyplane"))?;
    let mut marker = a.id.as_encoded_bytes().to_vec();
    marker.push(b'\n');
    std::fs::write("run/keyplane-instance", marker)
        .map_err(ctx(|| "writing run/keyplane-instance".into()))?;
    if !a.agent.is_empty() {
        bind_file(Path::new(&a.agent), "run/keyplane/agent", true)?;
    }
    Ok(())
}

/// Pivots into the disk, leaving the host's tree behind for good, sets the host name and
/// makes /run/sshd and /var/log.
fn pivot_into_disk(hostname: &OsStr) -> Result<(), String> {
    // Why `pivot_root . .` and the detach: the host's root is stacked under the new one and
    // detached, so no mount the instance can remove ever uncovers a host path.
    rustix::process::pivot_root(".", ".").map_err(|e| format!("pivot_root: {e}"))?;
    unmount(".", UnmountFlags::DETACH).map_err(|e| format!("detaching the host's root: {e}"))?;
    std::env::set_current_dir("/").map_err(ctx(|| "entering /".into()))?;
    rustix::system::sethostname(hostname.as_encoded_bytes())
        .map_err(|e| format!("setting the host name: {e}"))?;
    std::fs::DirBuilder::new()
        .mode(0o755)
        .create("/run/sshd")
        .map_err(ctx(|| "creating /run/sshd".into()))?;
    mkdirs(&["/var/log"])?;
    Ok(())
}

/// Says `net`, then waits for the host to wire the network and say `go`.
fn wait_for_network() -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    out.write_all(b"net\n")
        .and_then(|()| out.flush())
        .map_err(ctx(|| "saying net".into()))?;
    drop(out);
    let mut go = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut go)
        .map_err(ctx(|| "waiting for go".into()))?;
    if go.trim_end() != "go" {
        return Err("the host did not say go".into());
    }
    Ok(())
}

/// Copies what the host laid out for the next boot (the root password's hash, user data) into
/// the instance's private /run, with the same modes.
fn copy_boot_files(from: &Path, to: &Path) -> Result<(), String> {
    let entries = match std::fs::read_dir(from) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("reading {}: {e}", from.display())),
    };
    for entry in entries {
        let entry = entry.map_err(ctx(|| format!("reading {}", from.display())))?;
        let meta = entry
            .metadata()
            .map_err(ctx(|| format!("reading {}", entry.path().display())))?;
        if !meta.is_file() {
            continue;
        }
        let target = to.join(entry.file_name());
        std::fs::copy(entry.path(), &target)
            .map_err(ctx(|| format!("copying {}", entry.path().display())))?;
        std::fs::set_permissions(
            &target,
            std::fs::Permissions::from_mode(meta.permissions().mode()),
        )
        .map_err(ctx(|| format!("setting the mode of {}", target.display())))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_six() {
        let args = |n: usize| (0..n).map(|i| OsString::from(i.to_string())).collect();
        assert!(Args::parse(args(6)).is_ok());
        assert!(Args::parse(args(5)).unwrap_err().contains("got 5"));
        assert!(Args::parse(args(7)).is_err());
    }
}
