//! Instance networks: every instance has a network namespace of its own.
//!
//! ```text
//!   host netns            VPC netns (one per account and region, made by the server)
//!   127.1.x.y:22  ───┐      br0 ─┬─ v<slot> ══ eth0 (instance A: 127.1.0.1/32)
//!   (listener; sshd -i      │    └─ v<slot> ══ eth0 (instance B: 127.1.0.2/32)
//!    inside per session)    │
//!   slirp4netns ════════════╪══ tap0 10.0.2.100/24, default route (outbound only)
//! ```
//!
//! Inside an instance, the instance addresses (127.1.0.0/16) are routed over `eth0` to the
//! VPC bridge, so instances of one VPC reach each other at the addresses DescribeInstances
//! reports, on any port; `route_localnet` lets 127/8 travel over a link at all. Every other
//! loopback address stays the instance's own `lo`. Outbound traffic leaves through
//! user-mode networking (slirp4netns) with the host's loopback hidden, so nothing inside
//! reaches a host service bound to 127.0.0.1, and a listener inside is never on a host
//! interface. The only addresses on links are 127/8 ones and slirp's 10.0.2.0/24, both inside
//! namespaces the server made; nothing is added to the host's own interfaces.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use crate::error::{Error, Result};
use crate::sandbox::SAFE_PATH;

/// Link-local address of Tencent Cloud's metadata service (`metadata.tencentyun.com`).
pub const TENCENT_METADATA: Ipv4Addr = Ipv4Addr::new(169, 254, 0, 23);
/// Address of Alibaba Cloud's metadata service.
pub const ALIBABA_METADATA: Ipv4Addr = Ipv4Addr::new(100, 100, 100, 200);
/// The DNS forwarder slirp4netns offers inside.
pub const SLIRP_DNS: &str = "10.0.2.3";

/// Whether a program is installed (absolute path, executable).
fn installed(path: &str) -> bool {
    Path::new(path).exists()
}

/// Path of slirp4netns, when installed.
pub(crate) fn slirp_path() -> Option<PathBuf> {
    let p = "/usr/bin/slirp4netns";
    installed(p).then(|| PathBuf::from(p))
}

/// Name of the VPC namespace for `vpc` (an account-and-region key) under the sandbox `root`.
/// Two servers on one host (different roots) never share one.
pub(crate) fn vpc_netns_name(root: &Path, vpc: &str) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(root.as_os_str().as_encoded_bytes());
    h.update([0]);
    h.update(vpc.as_bytes());
    let digest = h.finalize();
    format!("kpvpc-{}", hex::encode(&digest[..6]))
}

async fn run(cmd: &mut Command, what: &str) -> Result<()> {
    let out = cmd
        .env_clear()
        .env("PATH", SAFE_PATH)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| Error::Network(format!("{what}: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::Network(format!(
            "{what}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// Whether the named network namespace exists and holds the VPC bridge.
async fn vpc_ready(name: &str) -> bool {
    Path::new("/run/netns").join(name).exists()
        && run(
            Command::new("/sbin/ip").args(["-n", name, "link", "show", "br0"]),
            "checking the VPC bridge",
        )
        .await
        .is_ok()
}

/// Creates the VPC namespace with its bridge when it does not exist yet. Callers serialise
/// (the host holds a lock), so no two create the same one at once.
pub(crate) async fn ensure_vpc(name: &str) -> Result<()> {
    if vpc_ready(name).await {
        return Ok(());
    }
    // A half-made namespace of a killed server is removed first.
    if Path::new("/run/netns").join(name).exists() {
        remove_vpc(name).await;
    }
    run(
        Command::new("/sbin/ip").args(["netns", "add", name]),
        "ip netns add",
    )
    .await?;
    let bridge = [
        vec!["link", "set", "lo", "up"],
        vec!["link", "add", "br0", "type", "bridge"],
        vec!["link", "set", "br0", "up"],
    ];
    for args in bridge {
        run(
            Command::new("/sbin/ip").args(["-n", name]).args(&args),
            "setting up the VPC bridge",
        )
        .await?;
    }
    Ok(())
}

/// Removes a VPC namespace (its bridge goes with it).
pub(crate) async fn remove_vpc(name: &str) {
    if Path::new("/run/netns").join(name).exists() {
        let _ = run(
            Command::new("/sbin/ip").args(["netns", "delete", name]),
            "ip netns delete",
        )
        .await;
    }
}

/// Links the instance whose init is `pid1` to its VPC and configures its addresses and
/// routes (`link` is the VPC-side interface name, unique per sandbox host). Returns listening
/// sockets on port 80 of the metadata addresses inside the instance's network when `metadata`
/// is set: the server answers there, and only that instance can reach them.
pub(crate) async fn attach(
    pid1: u32,
    vpc: &str,
    link: &str,
    address: Ipv4Addr,
    metadata: bool,
) -> Result<Vec<std::net::TcpListener>> {
    let (vpc, link) = (vpc.to_owned(), link.to_owned());
    tokio::task::spawn_blocking(move || configure(pid1, &vpc, &link, address, metadata))
        .await
        .map_err(|e| Error::Network(format!("configuring the instance's network: {e}")))?
}

/// Runs `ip -batch -` with `commands` in the network namespace of the calling thread.
fn ip_batch(commands: &str) -> std::result::Result<(), String> {
    use std::io::Write;
    let mut ip = std::process::Command::new("/sbin/ip")
        .args(["-batch", "-"])
        .env_clear()
        .env("PATH", SAFE_PATH)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("running ip: {e}"))?;
    if let Some(mut stdin) = ip.stdin.take() {
        stdin
            .write_all(commands.as_bytes())
            .map_err(|e| format!("running ip: {e}"))?;
    }
    let out = ip
        .wait_with_output()
        .map_err(|e| format!("running ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
    }
}

/// On a thread of its own: enters the VPC's network and makes the instance's link there (up,
/// on the bridge, its peer going straight into the instance's network as `eth0`), then enters
/// the instance's network and sets it up: routing of the VPC's 127.1.0.0/16 over `eth0`, the
/// metadata addresses on `lo`, and their listeners.
// Why a thread of its own: setns moves only the calling thread (and what it starts), and
// sockets stay in the namespace they were made in; the runtime's threads never move.
// Why not `ip -n`: it makes a mount namespace of its own (to show the netns's /sys), and
// tearing one down makes the kernel wait some milliseconds.
fn configure(
    pid1: u32,
    vpc: &str,
    link: &str,
    address: Ipv4Addr,
    metadata: bool,
) -> Result<Vec<std::net::TcpListener>> {
    let open = |path: String| {
        std::fs::File::open(&path).map_err(|e| Error::Network(format!("{path}: {e}")))
    };
    let vpc_ns = open(format!("/run/netns/{vpc}"))?;
    let inside_ns = open(format!("/proc/{pid1}/ns/net"))?;
    let (first, _) = crate::ADDRESS_RANGE;
    let o = first.octets();
    let add = format!("link add {link} up master br0 type veth peer name eth0 netns {pid1}\n");
    let inside = format!(
        "link set lo up\n\
         addr add {address}/32 dev eth0\n\
         link set eth0 up\n\
         route add {}.{}.0.0/16 dev eth0 table local src {address}\n\
         addr add {TENCENT_METADATA}/32 dev lo\n\
         addr add {ALIBABA_METADATA}/32 dev lo\n",
        o[0], o[1]
    );
    let delete = format!("link delete {link}\n");
    std::thread::spawn(move || -> Result<Vec<std::net::TcpListener>> {
        use std::os::fd::AsFd;
        let net = |what: &str, e: &dyn std::fmt::Display| Error::Network(format!("{what}: {e}"));
        let enter = |ns: &std::fs::File, what: &str| {
            rustix::thread::move_into_link_name_space(
                ns.as_fd(),
                Some(rustix::thread::LinkNameSpaceType::Network),
            )
            .map_err(|e| net(what, &e))
        };
        enter(&vpc_ns, "entering the VPC's network")?;
        if ip_batch(&add).is_err() {
            // A stale link of an earlier run of the same instance (killed server) is in the way.
            let _ = ip_batch(&delete);
            ip_batch(&add).map_err(|e| net("creating the instance's link", &e))?;
        }
        enter(&inside_ns, "entering the instance's network")?;
        for dev in ["all", "eth0"] {
            let knob = format!("/proc/sys/net/ipv4/conf/{dev}/route_localnet");
            std::fs::write(&knob, "1").map_err(|e| net(&knob, &e))?;
        }
        ip_batch(&inside).map_err(|e| net("configuring the instance's network", &e))?;
        if !metadata {
            return Ok(Vec::new());
        }
        [TENCENT_METADATA, ALIBABA_METADATA]
            .into_iter()
            .map(|ip| {
                let l = std::net::TcpListener::bind((ip, 80))
                    .map_err(|e| net(&format!("binding {ip}:80"), &e))?;
                l.set_nonblocking(true).map_err(|e| net("metadata", &e))?;
                Ok(l)
            })
            .collect()
    })
    .join()
    .map_err(|_| Error::Network("the network setup thread panicked".into()))?
}

/// Starts user-mode networking for the instance whose init is `pid1` ([`wait_outbound`]
/// tells when it is up).
pub(crate) fn spawn_outbound(pid1: u32, slirp: &Path) -> Result<Child> {
    // Why in a private mount namespace: slirp4netns' sandbox makes only `/` private before it
    // pivots away, so the unmount of its old root would propagate through shared submounts
    // such as /run/netns to the host, taking the VPC namespaces' bind mounts with it.
    Command::new("/usr/bin/unshare")
        .args(["--mount", "--propagation", "private", "--"])
        .arg(slirp)
        .args(["--configure", "--mtu=65520", "--disable-host-loopback"])
        .args(["--enable-sandbox", "--enable-seccomp"])
        .arg(pid1.to_string())
        .arg("tap0")
        .env_clear()
        .env("PATH", SAFE_PATH)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| Error::Network(format!("starting slirp4netns: {e}")))
}

/// Waits until slirp4netns has configured the instance's default route.
pub(crate) async fn wait_outbound(pid1: u32, child: &mut Child) -> Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    // The routing table of the instance's network, as its init sees it.
    let routes = format!("/proc/{pid1}/net/route");
    loop {
        let table = std::fs::read_to_string(&routes).unwrap_or_default();
        if table.lines().any(|l| {
            let mut f = l.split_whitespace();
            f.next() == Some("tap0") && f.next() == Some("00000000")
        }) {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(Error::Network(format!("slirp4netns exited ({status})")));
        }
        if tokio::time::Instant::now() >= deadline {
            let _ = child.start_kill();
            return Err(Error::Network(
                "slirp4netns did not configure the instance's outbound link within 10 s".into(),
            ));
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vpc_names_differ_per_root_and_vpc_and_fit_ip() {
        let a = vpc_netns_name(Path::new("/a"), "acc-1/ap-guangzhou");
        let b = vpc_netns_name(Path::new("/b"), "acc-1/ap-guangzhou");
        let c = vpc_netns_name(Path::new("/a"), "acc-2/ap-guangzhou");
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_eq!(a, vpc_netns_name(Path::new("/a"), "acc-1/ap-guangzhou"));
        assert!(a.len() <= 32);
    }
}
