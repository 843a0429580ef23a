//! Real sandbox instances logged into with the real `ssh` client.
//!
//! Needs root and the packages openssh-server, openssh-client, sshpass and uidmap; the tests
//! that need root print a SKIP line and pass when not run as root.

use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use keyplane_instances::{
    apply_ssh_state, ImageCache, InstanceSpec, Resources, SandboxConfig, SandboxHost, DEFAULT_IMAGE,
};
use tokio::io::AsyncBufReadExt;
use tokio::process::{Child, Command};

fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

macro_rules! require_root {
    () => {
        if !is_root() {
            eprintln!("SKIP: sandbox tests need root (user namespaces, newuidmap, nsenter)");
            return;
        }
    };
}

/// A temporary directory for a sandbox root.
fn sandbox_tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("sandbox-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap()
}

/// The image tarball every test host installs: built once per machine (mmdebstrap, about a
/// minute) into `KEYPLANE_TEST_IMAGE_CACHE` (default `/var/cache/keyplane`), shared by the
/// tests running at once through the cache's lock.
fn image_cache() -> ImageCache {
    let dir = std::env::var_os("KEYPLANE_TEST_IMAGE_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/keyplane"));
    ImageCache::new(dir)
}

fn image_tarball() -> PathBuf {
    image_cache()
        .ensure(DEFAULT_IMAGE, &mut |line| eprintln!("image build: {line}"))
        .expect("the test image (needs mmdebstrap and the Debian archive)")
}

/// A host with the default image installed.
async fn test_host(root: &Path) -> SandboxHost {
    let default = SandboxHost::new(root.join("setup"), SandboxConfig::default()).unwrap();
    default.setup_prerequisites().unwrap();
    let config = SandboxConfig {
        ssh_port: 0,
        max_instances: 8,
        stop_timeout: Duration::from_secs(3),
        init_exe: Some(env!("CARGO_BIN_EXE_keyplane-sandbox-init").into()),
        ..SandboxConfig::default()
    };
    let host = SandboxHost::new(root.join("sandbox"), config).unwrap();
    host.check_prerequisites().unwrap();
    image_tarball();
    host.ensure_image(DEFAULT_IMAGE, &image_cache())
        .await
        .unwrap();
    host
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_are_extracted_once_and_linked_into_each_host() {
    require_root!();
    let tmp = sandbox_tempdir();
    let host = test_host(tmp.path()).await;
    let linked = host.image(DEFAULT_IMAGE).unwrap().expect("installed");
    let tree = host
        .root_dir()
        .join("images")
        .join(DEFAULT_IMAGE)
        .join("rootfs");
    let cache_tree = image_cache()
        .shared_tree(DEFAULT_IMAGE, host.config().subuid_base, &image_tarball())
        .unwrap();
    let ino = |p: &Path| std::fs::metadata(p).unwrap().ino();
    assert_eq!(
        ino(&tree.join("usr/sbin/sshd")),
        ino(&cache_tree.join("usr/sbin/sshd")),
        "the host's image shares the cache's files"
    );
    assert!(
        linked.os_name.starts_with("Debian GNU/Linux 12"),
        "{linked:?}"
    );
    let extracted = host
        .import_image("debian12-copy", &image_tarball(), "test")
        .unwrap();
    assert_eq!(extracted.os_name, linked.os_name);
    assert_eq!(extracted.size_bytes, linked.size_bytes);
    let meta = std::fs::symlink_metadata(tree.join("etc/passwd")).unwrap();
    assert_eq!(
        meta.uid(),
        host.config().subuid_base,
        "owned by the instances' root"
    );
}

fn spec(id: &str, last_octet: u8, password: &str) -> InstanceSpec {
    spec_in(id, last_octet, password, "vpc-a")
}

fn spec_in(id: &str, last_octet: u8, password: &str, vpc: &str) -> InstanceSpec {
    InstanceSpec {
        id: id.into(),
        address: Ipv4Addr::new(127, 1, 0, last_octet),
        password: Some(password.into()),
        password_hash: None,
        hostname: format!("{id}-host"),
        image: DEFAULT_IMAGE.into(),
        vpc: vpc.into(),
        resources: Resources {
            cpus: 1,
            memory_mib: 256,
            max_processes: 256,
        },
        user_data: None,
        ssh_port: None,
    }
}

enum Auth<'a> {
    Password(&'a str),
    Key(&'a Path),
}

/// The real ssh client running `command` in the instance, checking the instance's host key.
fn ssh_command(
    host: &SandboxHost,
    id: &str,
    addr: SocketAddr,
    auth: Auth<'_>,
    command: &str,
) -> Command {
    let known_hosts = host.root_dir().join(format!("known_hosts-{id}"));
    let line = format!(
        "[{}]:{} {}\n",
        addr.ip(),
        addr.port(),
        host.host_public_key(id).unwrap()
    );
    std::fs::write(&known_hosts, line).unwrap();
    let mut cmd = match auth {
        Auth::Password(pw) => {
            let mut c = Command::new("sshpass");
            c.arg("-e").env("SSHPASS", pw).arg("ssh");
            c.args([
                "-o",
                "PubkeyAuthentication=no",
                "-o",
                "PreferredAuthentications=password",
            ]);
            c.args(["-o", "NumberOfPasswordPrompts=1"]);
            c
        }
        Auth::Key(key) => {
            let mut c = Command::new("ssh");
            c.args(["-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o"])
                .arg("PasswordAuthentication=no")
                .arg("-i")
                .arg(key);
            c
        }
    };
    cmd.args([
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "ConnectTimeout=5",
        "-o",
        "LogLevel=ERROR",
    ])
    .arg("-o")
    .arg(format!("UserKnownHostsFile={}", known_hosts.display()))
    .args(["-p", &addr.port().to_string()])
    .arg(format!("root@{}", addr.ip()))
    .arg(command)
    .stdin(std::process::Stdio::null())
    .kill_on_drop(true);
    cmd
}

/// Runs `command` in the instance with the real ssh client and waits for it.
async fn ssh(
    host: &SandboxHost,
    id: &str,
    addr: SocketAddr,
    auth: Auth<'_>,
    command: &str,
) -> Output {
    ssh_command(host, id, addr, auth, command)
        .output()
        .await
        .unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn assert_ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed: {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn assert_denied(out: &Output, what: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("Permission denied"),
        "{what} should be refused: {:?} stdout {} stderr {stderr}",
        out.status,
        String::from_utf8_lossy(&out.stdout)
    );
}

/// Generates a client key pair; returns (private key path, public key line).
async fn client_key(dir: &Path) -> (PathBuf, String) {
    let path = dir.join("client_ed25519");
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "test@keyplane", "-f"])
        .arg(&path)
        .output()
        .await
        .unwrap();
    assert_ok(&out, "ssh-keygen");
    let public = std::fs::read_to_string(path.with_extension("pub")).unwrap();
    (path, public.trim().to_owned())
}

/// Uid of a host process; `None` once it has exited (a session's short-lived processes may
/// end between the listing and the look).
fn host_uid(pid: u32) -> Option<u32> {
    std::fs::metadata(format!("/proc/{pid}"))
        .ok()
        .map(|m| m.uid())
}

/// An interactive-like session running `sleep 300`, once it has started.
async fn live_session(host: &SandboxHost, id: &str, addr: SocketAddr, pw: &str) -> Child {
    let mut session = ssh_command(
        host,
        id,
        addr,
        Auth::Password(pw),
        "echo started; sleep 300",
    )
    .stdout(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    let mut out = tokio::io::BufReader::new(session.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).await.unwrap();
    assert_eq!(line.trim(), "started");
    session
}

async fn assert_session_ended(mut session: Child) {
    let status = tokio::time::timeout(Duration::from_secs(10), session.wait()).await;
    assert!(!status.expect("session still running").unwrap().success());
}

async fn connection_refused(addr: SocketAddr) -> bool {
    matches!(
        tokio::net::TcpStream::connect(addr).await,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused
    )
}

/// Root inside, an unprivileged uid outside; root writes its own /etc (not the host's) and
/// sees only its own processes. Returns the instance's host PIDs.
async fn assert_root_inside_only(
    host: &SandboxHost,
    id: &str,
    addr: SocketAddr,
    pw: &str,
) -> Vec<u32> {
    let script = "id -un; hostname; cat /proc/self/uid_map; \
        touch /etc/keyplane-inside && echo WROTE; useradd -m deploy && echo USERADD; \
        ps -e --no-headers | wc -l; cat /etc/hostname; exit 0";
    let out = ssh(host, id, addr, Auth::Password(pw), script).await;
    assert_ok(&out, "inspection");
    let text = stdout(&out);
    let uid = host.instance_uid(id).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("root"));
    assert_eq!(lines.next(), Some(format!("{id}-host").as_str()));
    let map: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(map, ["0", &uid.to_string(), "65536"]);
    assert_eq!(lines.next(), Some("WROTE"), "{text}");
    assert_eq!(lines.next(), Some("USERADD"), "{text}");
    let procs_inside: usize = lines.next().unwrap().trim().parse().unwrap();
    assert!(procs_inside < 20, "only the instance's processes: {text}");
    assert_eq!(lines.next(), Some(format!("{id}-host").as_str()));
    assert!(!Path::new("/etc/keyplane-inside").exists());
    let procs = host.processes(id).await;
    assert!(procs.len() >= 2, "{procs:?}");
    assert!(procs.iter().any(|p| host_uid(*p) == Some(uid)), "{procs:?}");
    assert!(procs
        .iter()
        .filter_map(|p| host_uid(*p))
        .filter(|u| *u != 0)
        .all(|u| u == uid));
    procs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_and_key_logins_follow_the_ssh_state() {
    require_root!();
    let tmp = sandbox_tempdir();
    let host = test_host(tmp.path()).await;
    let (id, pw) = ("ins-login01", "Pw-login-1");
    host.create(spec(id, 11, pw)).await.unwrap();

    let started = Instant::now();
    let addr = host.start(id).await.unwrap();
    let out = ssh(&host, id, addr, Auth::Password(pw), "id -u").await;
    eprintln!(
        "MEASURE first password login {:?} after start",
        started.elapsed()
    );
    assert_ok(&out, "password login");
    assert_eq!(stdout(&out), "0");

    let procs = assert_root_inside_only(&host, id, addr, pw).await;

    // Bind a key: key login works, password login is refused on the very next connection.
    let (key, public) = client_key(tmp.path()).await;
    apply_ssh_state(
        &host.ssh_state_dir(id),
        std::slice::from_ref(&public),
        false,
    )
    .unwrap();
    let uid = host.instance_uid(id).unwrap();
    let keys_file = host.ssh_state_dir(id).join("keyplane/authorized_keys");
    let meta = std::fs::metadata(&keys_file).unwrap();
    assert_eq!((meta.uid(), meta.mode() & 0o777), (uid, 0o600));
    assert_ok(
        &ssh(&host, id, addr, Auth::Key(&key), "true").await,
        "key login",
    );
    assert_denied(
        &ssh(&host, id, addr, Auth::Password(pw), "true").await,
        "password login",
    );

    // Unbind: password login is back, the key is refused.
    apply_ssh_state(&host.ssh_state_dir(id), &[], true).unwrap();
    assert_ok(
        &ssh(&host, id, addr, Auth::Password(pw), "true").await,
        "password login",
    );
    assert_denied(
        &ssh(&host, id, addr, Auth::Key(&key), "true").await,
        "key login",
    );

    // Stop: refused. Start again: works, same host key.
    host.stop(id, false).await.unwrap();
    assert!(!host.is_running(id).await);
    assert!(connection_refused(addr).await);
    assert!(procs
        .iter()
        .all(|p| !Path::new(&format!("/proc/{p}")).exists()));
    let addr = host.start(id).await.unwrap();
    assert_ok(
        &ssh(&host, id, addr, Auth::Password(pw), "true").await,
        "login after restart",
    );
    let out = ssh(
        &host,
        id,
        addr,
        Auth::Password(pw),
        "ls /etc/keyplane-inside; id deploy",
    )
    .await;
    assert_ok(&out, "the disk survives a restart");
    host.destroy(id).await.unwrap();
    assert!(connection_refused(addr).await);
    assert!(!host.ssh_state_dir(id).exists());
    assert!(
        !host.root_dir().join("guests").join(id).exists(),
        "the disk is gone"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_ends_sessions_and_instances_are_isolated() {
    require_root!();
    let tmp = sandbox_tempdir();
    let host = test_host(tmp.path()).await;
    let (a, b) = ("ins-iso-a", "ins-iso-b");
    host.create(spec(a, 21, "Pw-a")).await.unwrap();
    host.create(spec(b, 22, "Pw-b")).await.unwrap();
    let addr_a = host.start(a).await.unwrap();
    let addr_b = host.start(b).await.unwrap();

    // Files persist in /root across a reboot; /tmp does not. B sees nothing of A's files,
    // nor of the host's.
    let setup = "echo kept > /root/persist; echo gone > /tmp/scratch; echo a > /etc/which";
    assert_ok(
        &ssh(&host, a, addr_a, Auth::Password("Pw-a"), setup).await,
        "write files",
    );
    let a_dir = host.ssh_state_dir(a);
    let peek = format!("ls {} 2>&1; cat /etc/which 2>&1; exit 0", a_dir.display());
    let out = ssh(&host, b, addr_b, Auth::Password("Pw-b"), &peek).await;
    let text = stdout(&out);
    assert_eq!(
        text.matches("No such file or directory").count(),
        2,
        "{text}"
    );

    // A live session dies with a forced stop.
    let session = live_session(&host, a, addr_a, "Pw-a").await;
    let stopped = Instant::now();
    host.stop(a, true).await.unwrap();
    eprintln!(
        "MEASURE forced stop with a live session took {:?}",
        stopped.elapsed()
    );
    assert_session_ended(session).await;
    eprintln!(
        "MEASURE forced stop ended the session in {:?}",
        stopped.elapsed()
    );
    assert!(connection_refused(addr_a).await);
    assert!(host.is_running(b).await, "stopping A must not touch B");

    // Start + reboot (soft stop ends sessions too) with a new password.
    let addr_a = host.start(a).await.unwrap();
    let session = live_session(&host, a, addr_a, "Pw-a").await;
    host.set_password(a, Some("Pw-a2")).await.unwrap();
    let addr_a = host.reboot(a).await.unwrap();
    assert_session_ended(session).await;
    let out = ssh(
        &host,
        a,
        addr_a,
        Auth::Password("Pw-a2"),
        "cat /root/persist; ls /tmp",
    )
    .await;
    assert_ok(&out, "login after reboot");
    assert_eq!(stdout(&out), "kept");
    assert_denied(
        &ssh(&host, a, addr_a, Auth::Password("Pw-a"), "true").await,
        "old password",
    );
    host.shutdown().await;
    assert!(!host.is_running(a).await && !host.is_running(b).await);
}

/// Polls until `alive(pids)` turns false, for up to 10 seconds.
async fn gone_within(alive: &impl Fn(&[u32]) -> bool, pids: &[u32]) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(pids) {
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_or_crashed_hosts_leave_no_instances() {
    require_root!();
    let tmp = sandbox_tempdir();
    // Alive = exists and is not a zombie (a killed child stays a zombie until it is reaped).
    let alive = |pids: &[u32]| {
        pids.iter().any(|p| {
            let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
            stat.rsplit_once(") ")
                .is_some_and(|(_, rest)| !rest.starts_with('Z'))
        })
    };

    // Dropping the host (e.g. a panic) kills its instances.
    let host = test_host(tmp.path()).await;
    host.create(spec("ins-drop", 31, "pw")).await.unwrap();
    host.start("ins-drop").await.unwrap();
    let pids = host.processes("ins-drop").await;
    drop(host);
    assert!(gone_within(&alive, &pids).await, "{pids:?}");

    // A server that died without cleaning up: the next one kills the leftovers on open.
    let host = test_host(tmp.path()).await;
    host.start("ins-drop").await.unwrap();
    let pids = host.processes("ins-drop").await;
    std::mem::forget(host);
    assert!(alive(&pids));
    let host = test_host(tmp.path()).await;
    // The holder `unshare` was our child (forgotten, so never reaped): skip it.
    let unshare = pids.iter().copied().min().unwrap();
    let rest: Vec<u32> = pids.into_iter().filter(|p| *p != unshare).collect();
    assert!(gone_within(&alive, &rest).await, "{rest:?}");
    assert!(!host.is_running("ins-drop").await);
    host.destroy("ins-drop").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_instances_and_leaves_no_vpc_behind() {
    require_root!();
    let tmp = sandbox_tempdir();
    let host = test_host(tmp.path()).await;
    host.create(spec("ins-shut", 41, "pw")).await.unwrap();
    host.start("ins-shut").await.unwrap();
    let vpc = Path::new("/run/netns").join(host.vpc_netns("ins-shut").unwrap());
    assert!(vpc.exists(), "{} while the instance runs", vpc.display());
    host.shutdown().await;
    assert!(!host.is_running("ins-shut").await);
    assert!(!vpc.exists(), "{} after shutdown", vpc.display());
    // The next start sets it up again.
    host.start("ins-shut").await.unwrap();
    assert!(vpc.exists());
    host.destroy("ins-shut").await.unwrap();
    assert!(!vpc.exists(), "the last instance of a VPC takes it along");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_reach_their_vpc_and_nothing_of_the_host() {
    require_root!();
    let tmp = sandbox_tempdir();
    let host = test_host(tmp.path()).await;
    let probe = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = probe.local_addr().unwrap().port();
    let (a, b, other) = ("ins-net-a", "ins-net-b", "ins-net-x");
    host.create(spec_in(a, 41, "pw", "vpc-1")).await.unwrap();
    host.create(spec_in(b, 42, "pw", "vpc-1")).await.unwrap();
    host.create(spec_in(other, 43, "pw", "vpc-2"))
        .await
        .unwrap();
    let addr_a = host.start(a).await.unwrap();
    let addr_b = host.start(b).await.unwrap();
    let addr_x = host.start(other).await.unwrap();

    // A listener inside A on port 8080: B (same VPC) reaches it, the other VPC and the host
    // do not; nothing inside reaches the host's loopback services.
    let serve = "nohup python3 -m http.server 8080 --bind 0.0.0.0 >/dev/null 2>&1 & \
        for i in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/8080) 2>/dev/null && break; sleep 0.1; done; echo up";
    assert_ok(
        &ssh(&host, a, addr_a, Auth::Password("pw"), serve).await,
        "listener",
    );
    let reach = format!(
        "(exec 3<>/dev/tcp/127.1.0.41/8080) 2>/dev/null && echo VPC; \
         (exec 3<>/dev/tcp/127.0.0.1/{port}) 2>/dev/null && echo HOST; \
         (exec 3<>/dev/tcp/10.0.2.2/{port}) 2>/dev/null && echo GATEWAY; exit 0"
    );
    let from_b = stdout(&ssh(&host, b, addr_b, Auth::Password("pw"), &reach).await);
    assert_eq!(from_b, "VPC", "same VPC reaches A, never the host");
    let from_x = stdout(&ssh(&host, other, addr_x, Auth::Password("pw"), &reach).await);
    assert_eq!(from_x, "", "another VPC reaches nothing");
    assert!(
        tokio::net::TcpStream::connect("127.1.0.41:8080")
            .await
            .is_err(),
        "a listener inside is not on the host"
    );

    // Unmounting everything exposes nothing of the host; no host process is visible.
    let marker = format!("kp-host-marker-{port}");
    std::fs::write(tmp.path().join(&marker), "host").unwrap();
    std::fs::write(std::env::temp_dir().join(&marker), "host").unwrap();
    let escape = format!(
        "for m in $(awk '{{print $2}}' /proc/mounts | sort -r); do umount -l \"$m\" 2>/dev/null; done; \
         find / -name {marker} 2>/dev/null; ls /proc 2>/dev/null | grep -c '^[0-9]'; exit 0"
    );
    let text = stdout(&ssh(&host, a, addr_a, Auth::Password("pw"), &escape).await);
    let _ = std::fs::remove_file(std::env::temp_dir().join(&marker));
    assert!(!text.contains(&marker), "{text}");
    let visible: usize = text
        .lines()
        .last()
        .unwrap_or("0")
        .trim()
        .parse()
        .unwrap_or(0);
    assert!(visible < 20, "only the instance's processes: {text}");
    for id in [a, b, other] {
        host.destroy(id).await.unwrap();
    }
}
