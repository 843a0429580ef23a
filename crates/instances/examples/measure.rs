//! Measures sandbox instances: processes, memory and disk per idle instance, time from start to
//! first login (p50/p99), stop times. Run as root:
//! `cargo run --release -p keyplane-instances --example measure -- 100`
//! (the image comes from `KEYPLANE_IMAGE_CACHE`, default /var/cache/keyplane, built once).

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use keyplane_instances::{
    allocate_address, ImageCache, InstanceSpec, Resources, SandboxConfig, SandboxHost,
    DEFAULT_IMAGE,
};

/// A `/proc/PID/status`-style "Key: N kB" value.
fn kb(text: &str, key: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn proc_kb(pid: u32, file: &str, key: &str) -> u64 {
    kb(
        &std::fs::read_to_string(format!("/proc/{pid}/{file}")).unwrap_or_default(),
        key,
    )
}

/// Kernel-side memory that grows with namespaces and processes, plus tmpfs pages.
fn kernel_kb() -> u64 {
    let m = std::fs::read_to_string("/proc/meminfo").unwrap();
    ["Slab:", "KernelStack:", "PageTables:", "Shmem:"]
        .iter()
        .map(|k| kb(&m, k))
        .sum()
}

async fn login(addr: std::net::SocketAddr, pw: &str) -> bool {
    let out = tokio::process::Command::new("sshpass")
        .args([
            "-p",
            pw,
            "ssh",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "LogLevel=ERROR",
        ])
        .args([
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "PubkeyAuthentication=no",
        ])
        .args([
            "-p",
            &addr.port().to_string(),
            &format!("root@{}", addr.ip()),
            "id -u",
        ])
        .output()
        .await
        .unwrap();
    out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "0"
}

/// Processes and memory added by one open SSH session (the `nsenter` parent is outside the
/// instance's PID namespace and counted separately).
async fn measure_session(host: &SandboxHost, id: &str) {
    let addr = host.ssh_addr(id).await.unwrap();
    let before: Vec<u32> = host.processes(id).await;
    let mut session = tokio::process::Command::new("sshpass")
        .args([
            "-p",
            "pw",
            "ssh",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "LogLevel=ERROR",
        ])
        .args([
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-p",
            &addr.port().to_string(),
        ])
        .args([&format!("root@{}", addr.ip()), "sleep 3"])
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let after = host.processes(id).await;
    let added: Vec<u32> = after.into_iter().filter(|p| !before.contains(p)).collect();
    let rss: u64 = added.iter().map(|p| proc_kb(*p, "status", "VmRSS:")).sum();
    let pss: u64 = added
        .iter()
        .map(|p| proc_kb(*p, "smaps_rollup", "Pss:"))
        .sum();
    println!(
        "one open session: +{} processes in the instance (+1 nsenter outside), RSS {rss} kB, PSS {pss} kB",
        added.len()
    );
    session.wait().await.unwrap();
}

/// The `i`-th measured instance's id.
fn instance_id(i: usize) -> String {
    format!("ins-m{i:04}")
}

/// A sandbox host on `dir`, its prerequisites set up, starting the `keyplane-sandbox-init`
/// built beside this example.
fn sandbox_host(dir: &std::path::Path) -> SandboxHost {
    // Examples live in target/<profile>/examples/, beside the crate's binaries one level up.
    let init_exe = std::env::current_exe()
        .unwrap()
        .parent()
        .and_then(|d| d.parent())
        .map(|d| d.join("keyplane-sandbox-init"));
    let config = SandboxConfig {
        ssh_port: 0,
        init_exe,
        ..SandboxConfig::default()
    };
    let host = SandboxHost::new(dir.to_path_buf(), config).unwrap();
    host.setup_prerequisites().unwrap();
    host
}

/// Install the default image from the cached tarball (`KEYPLANE_IMAGE_CACHE`), printing how
/// long it took.
async fn install_image(host: &SandboxHost) {
    let cache = std::env::var_os("KEYPLANE_IMAGE_CACHE")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| "/var/cache/keyplane".into());
    let t0 = Instant::now();
    host.ensure_image(DEFAULT_IMAGE, &ImageCache::new(cache))
        .await
        .unwrap();
    println!(
        "image install (from the cached tarball): {:?}",
        t0.elapsed()
    );
}

/// Create and start `n` instances one after another, logging in to each; returns the time
/// each `start()` took and the time from it to the first login.
async fn start_all(host: &SandboxHost, n: usize) -> (Vec<Duration>, Vec<Duration>) {
    let mut used: Vec<Ipv4Addr> = Vec::new();
    let (mut starts, mut logins) = (Vec::new(), Vec::new());
    for i in 0..n {
        let id = instance_id(i);
        let address = allocate_address(&used).unwrap();
        used.push(address);
        let spec = InstanceSpec {
            id: id.clone(),
            address,
            password: Some("pw".into()),
            password_hash: None,
            hostname: id.clone(),
            image: DEFAULT_IMAGE.into(),
            vpc: "bench".into(),
            resources: Resources::default(),
            user_data: None,
            ssh_port: None,
        };
        host.create(spec).await.unwrap();
        let t0 = Instant::now();
        let addr = host.start(&id).await.unwrap();
        starts.push(t0.elapsed());
        assert!(login(addr, "pw").await, "login to {id}");
        logins.push(t0.elapsed());
    }
    (starts, logins)
}

/// What `n` idle instances use, summed over them (kB, disk and cgroup memory in bytes).
struct Usage {
    procs: u64,
    rss: u64,
    pss: u64,
    /// Kernel memory added since the instances were started.
    kernel: u64,
    /// This process's RSS growth since then.
    own_rss: u64,
    disk: u64,
    cg_mem: u64,
}

/// Measure what the `n` instances use, given the kernel memory and own RSS before they
/// started.
async fn usage(host: &SandboxHost, n: usize, kernel_before: u64, own_rss_before: u64) -> Usage {
    let (mut rss, mut pss, mut procs) = (0, 0, 0);
    for i in 0..n {
        for pid in host.processes(&instance_id(i)).await {
            procs += 1;
            rss += proc_kb(pid, "status", "VmRSS:");
            pss += proc_kb(pid, "smaps_rollup", "Pss:");
        }
    }
    let kernel_after = kernel_kb();
    let own_rss_after = proc_kb(std::process::id(), "status", "VmRSS:");
    let (mut disk, mut cg_mem) = (0, 0);
    for i in 0..n {
        let id = instance_id(i);
        disk += host.disk_usage(&id).unwrap();
        cg_mem += host.memory_usage(&id).await.unwrap_or(0);
    }
    Usage {
        procs,
        rss,
        pss,
        kernel: kernel_after.saturating_sub(kernel_before),
        own_rss: own_rss_after.saturating_sub(own_rss_before),
        disk,
        cg_mem,
    }
}

/// The mean of `v`.
fn avg(v: &[Duration]) -> Duration {
    v.iter().sum::<Duration>() / v.len() as u32
}

/// The `p`-th percentile of `v` (nearest rank).
fn pct(v: &[Duration], p: f64) -> Duration {
    let mut v = v.to_vec();
    v.sort();
    v[((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1]
}

/// Print the per-instance figures of `n` instances, and their start and login times.
fn print_usage(n: usize, u: &Usage, starts: &[Duration], logins: &[Duration]) {
    println!("instances: {n}");
    println!(
        "processes per idle instance: {:.1}",
        u.procs as f64 / n as f64
    );
    println!(
        "RSS per idle instance: {} kB (PSS {} kB)",
        u.rss / n as u64,
        u.pss / n as u64
    );
    println!(
        "kernel memory (slab, stacks, page tables, shmem) per instance: {} kB",
        u.kernel / n as u64
    );
    println!(
        "server RSS growth per instance: {} kB",
        u.own_rss / n as u64
    );
    println!(
        "start(): avg {:?}, max {:?}",
        avg(starts),
        starts.iter().max().unwrap()
    );
    println!(
        "start() to first login: p50 {:?}, p99 {:?}, max {:?}",
        pct(logins, 0.5),
        pct(logins, 0.99),
        logins.iter().max().unwrap()
    );
    println!(
        "disk per instance after boot (its upper layer): {} kB",
        u.disk / 1024 / n as u64
    );
    println!(
        "cgroup memory per idle instance (processes, page cache, tmpfs): {} kB",
        u.cg_mem / 1024 / n as u64
    );
}

/// Time a login to a running instance and a soft stop of it (the first instance), a forced
/// stop (the second) and a reboot (the third), all idle.
async fn time_operations(host: &SandboxHost) {
    let addr = host.ssh_addr("ins-m0000").await.unwrap();
    let t0 = Instant::now();
    assert!(login(addr, "pw").await);
    println!(
        "login to a running instance (sshpass + ssh + sshd -i): {:?}",
        t0.elapsed()
    );
    let t0 = Instant::now();
    host.stop("ins-m0000", false).await.unwrap();
    println!("soft stop (idle): {:?}", t0.elapsed());
    let t0 = Instant::now();
    host.stop("ins-m0001", true).await.unwrap();
    println!("forced stop (idle): {:?}", t0.elapsed());
    let t0 = Instant::now();
    host.reboot("ins-m0002").await.unwrap();
    println!("reboot (idle): {:?}", t0.elapsed());
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10);
    let tmp = tempfile::tempdir().unwrap();
    let host = sandbox_host(tmp.path());
    install_image(&host).await;
    let own_rss_before = proc_kb(std::process::id(), "status", "VmRSS:");
    let kernel_before = kernel_kb();
    let (starts, logins) = start_all(&host, n).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let usage = usage(&host, n, kernel_before, own_rss_before).await;
    print_usage(n, &usage, &starts, &logins);
    if n > 3 {
        measure_session(&host, "ins-m0003").await;
    }
    time_operations(&host).await;
    for i in 0..n {
        host.destroy(&instance_id(i)).await.unwrap();
    }
}
