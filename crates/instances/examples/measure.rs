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

#[tokio::main]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10);
    let tmp = tempfile::tempdir().unwrap();
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
    let host = SandboxHost::new(tmp.path().to_path_buf(), config).unwrap();
    host.setup_prerequisites().unwrap();
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
    let own_rss_before = proc_kb(std::process::id(), "status", "VmRSS:");
    let kernel_before = kernel_kb();
    let mut used: Vec<Ipv4Addr> = Vec::new();
    let (mut starts, mut logins) = (Vec::new(), Vec::new());
    for i in 0..n {
        let id = format!("ins-m{i:04}");
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
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (mut rss, mut pss, mut procs) = (0, 0, 0);
    for i in 0..n {
        for pid in host.processes(&format!("ins-m{i:04}")).await {
            procs += 1;
            rss += proc_kb(pid, "status", "VmRSS:");
            pss += proc_kb(pid, "smaps_rollup", "Pss:");
        }
    }
    let kernel_after = kernel_kb();
    let own_rss_after = proc_kb(std::process::id(), "status", "VmRSS:");
    let avg = |v: &[Duration]| v.iter().sum::<Duration>() / v.len() as u32;
    let pct = |v: &[Duration], p: f64| {
        let mut v = v.to_vec();
        v.sort();
        v[((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1]
    };
    let (mut disk, mut cg_mem) = (0, 0);
    for i in 0..n {
        let id = format!("ins-m{i:04}");
        disk += host.disk_usage(&id).unwrap();
        cg_mem += host.memory_usage(&id).await.unwrap_or(0);
    }
    println!("instances: {n}");
    println!(
        "processes per idle instance: {:.1}",
        procs as f64 / n as f64
    );
    println!(
        "RSS per idle instance: {} kB (PSS {} kB)",
        rss / n as u64,
        pss / n as u64
    );
    println!(
        "kernel memory (slab, stacks, page tables, shmem) per instance: {} kB",
        kernel_after.saturating_sub(kernel_before) / n as u64
    );
    println!(
        "server RSS growth per instance: {} kB",
        own_rss_after.saturating_sub(own_rss_before) / n as u64
    );
    println!(
        "start(): avg {:?}, max {:?}",
        avg(&starts),
        starts.iter().max().unwrap()
    );
    println!(
        "start() to first login: p50 {:?}, p99 {:?}, max {:?}",
        pct(&logins, 0.5),
        pct(&logins, 0.99),
        logins.iter().max().unwrap()
    );
    println!(
        "disk per instance after boot (its upper layer): {} kB",
        disk / 1024 / n as u64
    );
    println!(
        "cgroup memory per idle instance (processes, page cache, tmpfs): {} kB",
        cg_mem / 1024 / n as u64
    );
    if n > 3 {
        measure_session(&host, "ins-m0003").await;
    }
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
    for i in 0..n {
        host.destroy(&format!("ins-m{i:04}")).await.unwrap();
    }
}
