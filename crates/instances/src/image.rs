//! Images: real root filesystems that instances boot from, shared copy-on-write.
//!
//! ```text
//! <sandbox root>/images/            0711 host root
//!   <name>/                         0711 host root
//!     image.json                    0644 host root   name, OS name, size, source
//!     rootfs/                       the tree, owned by the instances' uid range
//! ```
//!
//! An image is extracted once from a root filesystem tarball with its ownership shifted into
//! the instances' uid range (`tar` runs as root of a user namespace mapped onto that range), so
//! files owned by root in the tarball are owned by root inside every instance. Instances never
//! write to it: each has its own overlay upper layer (see `layout`).
//!
//! Tarballs come from `mmdebstrap` (Debian's packages, built the first time an image is
//! needed) or from the operator (`keyplane image import`). Built tarballs are kept in an image
//! cache directory, which several servers on one host may share (a lock file serialises builds).

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Missing, PrereqError, Result};
use crate::IDS_PER_INSTANCE;
use keyplane_agent::fsutil;

/// The image every Linux instance boots unless told otherwise.
pub const DEFAULT_IMAGE: &str = "debian12";

/// Debian suite and packages of the built-in image.
const DEBIAN_SUITE: &str = "bookworm";
const DEBIAN_PACKAGES: &str = "openssh-server,python3,sudo,iproute2,ca-certificates,procps";
/// Where `mmdebstrap` fetches packages from (the host's own apt configuration is not used).
pub const DEBIAN_MIRROR: &str = "http://deb.debian.org/debian";

/// What is known about an installed image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageInfo {
    /// Image name (`debian12`).
    pub name: String,
    /// `PRETTY_NAME` of the image's `/etc/os-release` (`Debian GNU/Linux 12 (bookworm)`).
    pub os_name: String,
    /// Bytes of file data in the image.
    pub size_bytes: u64,
    /// Where it came from (`mmdebstrap bookworm` or the imported file's path).
    pub source: String,
    /// Unix time of the import.
    pub created_at: i64,
}

/// Checks an image name: 1..=64 of `[a-z0-9._-]`, starting with a letter or digit.
pub fn validate_image_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        });
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidImage(format!(
            "invalid image name {name:?} (1 to 64 of a-z, 0-9, '.', '_', '-')"
        )))
    }
}

/// The installed images of one sandbox root.
#[derive(Debug, Clone)]
pub struct ImageStore {
    dir: PathBuf,
    uid_base: u32,
}

impl ImageStore {
    /// The store under `dir`, whose images are owned by the range starting at `uid_base`.
    pub fn new(dir: PathBuf, uid_base: u32) -> Self {
        ImageStore { dir, uid_base }
    }

    /// First host uid of the range the images are owned by.
    pub fn uid_base(&self) -> u32 {
        self.uid_base
    }

    /// Creates the store directory (0711).
    pub fn init(&self) -> Result<()> {
        std::fs::create_dir_all(&self.dir).ctx(|| format!("creating {}", self.dir.display()))?;
        std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o711))
            .ctx(|| format!("chmod {}", self.dir.display()))
    }

    /// Removes what interrupted imports left behind (staging trees start with a dot).
    pub fn remove_staging(&self) -> Result<()> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Ok(());
        };
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with('.') {
                remove_tree(&entry.path())?;
            }
        }
        Ok(())
    }

    /// The directory holding the image's `rootfs/`.
    pub fn image_dir(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// An installed image, or `None`.
    pub fn get(&self, name: &str) -> Result<Option<ImageInfo>> {
        validate_image_name(name)?;
        let path = self.image_dir(name).join("image.json");
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(std::io::Error::other)
                .ctx(|| format!("parsing {}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).ctx(|| format!("reading {}", path.display())),
        }
    }

    /// Every installed image, by name.
    pub fn list(&self) -> Result<Vec<ImageInfo>> {
        let mut out = Vec::new();
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(e).ctx(|| format!("listing {}", self.dir.display())),
        };
        for entry in entries {
            let entry = entry.ctx(|| format!("listing {}", self.dir.display()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if validate_image_name(&name).is_ok() {
                out.extend(self.get(&name)?);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Installs (or replaces) image `name` from a root filesystem tarball (plain, gzip, xz or
    /// zstd, as GNU tar detects). Device nodes in the tarball are skipped: instances get a
    /// `/dev` of their own. Instances already running keep the tree they booted from until
    /// their next start.
    pub fn import(&self, name: &str, tarball: &Path, source: &str) -> Result<ImageInfo> {
        let file = std::fs::File::open(tarball)
            .ctx(|| format!("opening the image archive {}", tarball.display()))?;
        self.install(name, source, |rootfs| self.extract(file, rootfs))
    }

    /// Installs image `name` as hard links to the files of an installed tree (`tree`, another
    /// store's `rootfs` with the same uid range, on the same file system): no file data is
    /// copied. Instances never write to an image, so sharing its files is safe.
    pub fn import_linked(&self, name: &str, tree: &Path, source: &str) -> Result<ImageInfo> {
        self.install(name, source, |rootfs| {
            let out = Command::new("/bin/cp")
                .args(["-a", "--link", "--no-target-directory"])
                .arg(tree)
                .arg(rootfs)
                .env_clear()
                .env("PATH", crate::sandbox::SAFE_PATH)
                .stdin(Stdio::null())
                .output()
                .ctx(|| "running cp".into())?;
            if out.status.success() {
                return Ok(());
            }
            Err(Error::InvalidImage(format!(
                "linking {} failed: {}",
                tree.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            )))
        })
    }

    /// Stages a new tree filled by `fill`, describes it and swaps it in for image `name`.
    fn install(
        &self,
        name: &str,
        source: &str,
        fill: impl FnOnce(&Path) -> Result<()>,
    ) -> Result<ImageInfo> {
        validate_image_name(name)?;
        self.init()?;
        let staging = self.dir.join(format!(".{name}.{}", std::process::id()));
        remove_tree(&staging)?;
        std::fs::create_dir(&staging).ctx(|| format!("creating {}", staging.display()))?;
        std::fs::set_permissions(&staging, std::fs::Permissions::from_mode(0o711))
            .ctx(|| format!("chmod {}", staging.display()))?;
        let rootfs = staging.join("rootfs");
        std::fs::create_dir(&rootfs).ctx(|| format!("creating {}", rootfs.display()))?;
        let owner = fsutil::Owner {
            uid: self.uid_base,
            gid: self.uid_base,
        };
        fsutil::chown(
            fsutil::open_dir(&rootfs).ctx(|| "opening rootfs".into())?,
            owner,
        )
        .ctx(|| format!("chown {}", rootfs.display()))?;
        let result = fill(&rootfs).and_then(|()| {
            let info = ImageInfo {
                name: name.to_owned(),
                os_name: os_name(&rootfs),
                size_bytes: tree_size(&rootfs),
                source: source.to_owned(),
                created_at: now(),
            };
            let json = serde_json::to_vec_pretty(&info).map_err(std::io::Error::other);
            let json = json.ctx(|| "encoding image.json".into())?;
            fsutil::write_atomic(&staging, "image.json", &json, 0o644, None)?;
            Ok(info)
        });
        let info = match result {
            Ok(info) => info,
            Err(e) => {
                let _ = remove_tree(&staging);
                return Err(e);
            }
        };
        let target = self.image_dir(name);
        let old = self.dir.join(format!(".{name}.old.{}", std::process::id()));
        if target.exists() {
            std::fs::rename(&target, &old).ctx(|| format!("moving {}", target.display()))?;
        }
        std::fs::rename(&staging, &target).ctx(|| format!("installing {}", target.display()))?;
        remove_tree(&old)?;
        tracing::info!(image = name, size = info.size_bytes, "image installed");
        Ok(info)
    }

    /// Runs `tar -x` as root of a user namespace mapped onto the instances' range, with the
    /// archive on standard input and `rootfs` as its working directory (so no host path above
    /// it needs to be searchable by that range).
    fn extract(&self, archive: std::fs::File, rootfs: &Path) -> Result<()> {
        let map = format!("{},0,{IDS_PER_INSTANCE}", self.uid_base);
        let out = Command::new("/usr/bin/unshare")
            .args(["--user", &format!("--map-users={map}")])
            .arg(format!("--map-groups={map}"))
            .args(["--setuid", "0", "--setgid", "0", "--"])
            .args(["tar", "--numeric-owner", "-xpf", "-", "--exclude=./dev/*"])
            .args(["--exclude=dev/*"])
            .env_clear()
            .env("PATH", crate::sandbox::SAFE_PATH)
            .current_dir(rootfs)
            .stdin(archive)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .ctx(|| "running tar in a user namespace".into())?;
        if out.status.success() {
            return Ok(());
        }
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().rev().take(5).collect();
        Err(Error::InvalidImage(format!(
            "extracting the archive failed ({}): {}",
            out.status,
            tail.into_iter().rev().collect::<Vec<_>>().join(" / ")
        )))
    }
}

/// Tarballs built or kept for import, shared by every server on the host that uses the same
/// directory.
#[derive(Debug, Clone)]
pub struct ImageCache {
    dir: PathBuf,
}

impl ImageCache {
    /// The cache in `dir`.
    pub fn new(dir: PathBuf) -> Self {
        ImageCache { dir }
    }

    /// Holds the cache's lock file `name` (exclusive, across processes) until dropped.
    fn lock(&self, name: &str) -> Result<std::fs::File> {
        let path = self.dir.join(name);
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .ctx(|| format!("opening {}", path.display()))?;
        rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)
            .ctx(|| format!("locking {}", path.display()))?;
        Ok(lock)
    }

    /// Path of the tarball of image `name`.
    pub fn tarball(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.tar"))
    }

    /// The tree of image `name` extracted once for the uid range at `uid_base`, extracting it
    /// first when missing (from the tarball, which must exist): the source servers on this host
    /// link their images from.
    pub fn shared_tree(&self, name: &str, uid_base: u32, tarball: &Path) -> Result<PathBuf> {
        let trees = ImageStore::new(self.dir.join(format!("trees-{uid_base}")), uid_base);
        let rootfs = trees.image_dir(name).join("rootfs");
        if trees.get(name)?.is_some() {
            return Ok(rootfs);
        }
        trees.init()?;
        let _lock = self.lock(".trees.lock")?;
        if trees.get(name)?.is_none() {
            trees.import(name, tarball, &tarball.display().to_string())?;
        }
        Ok(rootfs)
    }

    /// The tarball of `name`, built first when missing (only the built-in [`DEFAULT_IMAGE`]
    /// can be built). Concurrent callers, in this process or others, wait for one build.
    /// `progress` receives each line the build prints.
    pub fn ensure(&self, name: &str, progress: &mut dyn FnMut(&str)) -> Result<PathBuf> {
        validate_image_name(name)?;
        let path = self.tarball(name);
        if path.exists() {
            return Ok(path);
        }
        if name != DEFAULT_IMAGE {
            return Err(Error::InvalidImage(format!(
                "image {name} is not installed and only {DEFAULT_IMAGE} can be built; \
                 install it with `keyplane image import {name} ROOTFS.tar`"
            )));
        }
        std::fs::create_dir_all(&self.dir).ctx(|| format!("creating {}", self.dir.display()))?;
        let _lock = self.lock(".build.lock")?;
        if path.exists() {
            return Ok(path);
        }
        let tmp = self.dir.join(format!(".{name}.tar.{}", std::process::id()));
        let built = build_debian(&tmp, progress);
        if let Err(e) = built {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        std::fs::rename(&tmp, &path).ctx(|| format!("installing {}", path.display()))?;
        Ok(path)
    }
}

/// Builds the Debian 12 minimal tarball with `mmdebstrap` from [`DEBIAN_MIRROR`].
pub fn build_debian(out: &Path, progress: &mut dyn FnMut(&str)) -> Result<()> {
    let mmdebstrap = Path::new("/usr/bin/mmdebstrap");
    if !mmdebstrap.exists() {
        return Err(PrereqError {
            missing: vec![Missing::Program {
                path: mmdebstrap.into(),
                package: "mmdebstrap",
            }],
        }
        .into());
    }
    // Why these hooks: host keys and the machine id must be each instance's own (the sandbox
    // generates them per instance), and an image must not carry the build host's resolver.
    let hook = "rm -f \"$1\"/etc/ssh/ssh_host_*_key* \"$1\"/var/lib/dbus/machine-id; \
                : > \"$1\"/etc/machine-id; : > \"$1\"/etc/resolv.conf; \
                printf '#!/bin/sh -e\\n# Runs at the end of every boot, as root.\\nexit 0\\n' \
                > \"$1\"/etc/rc.local; chmod 0755 \"$1\"/etc/rc.local";
    // Why in a private mount namespace: mmdebstrap bind-mounts the host's /dev, /proc and
    // /sys into its build directory; should it be killed mid-build, those mounts would stay in
    // the host's namespace, and removing the directory would remove the host's /dev/shm.
    let mut child = Command::new("/usr/bin/unshare")
        .args(["--mount", "--propagation", "private", "--"])
        .arg(mmdebstrap)
        .args(["--variant=minbase", "--mode=root", "--format=tar"])
        .arg(format!("--include={DEBIAN_PACKAGES}"))
        .arg("--skip=output/dev")
        .arg(format!("--customize-hook={hook}"))
        .args([DEBIAN_SUITE])
        .arg(out)
        .arg(DEBIAN_MIRROR)
        .env_clear()
        .env("PATH", crate::sandbox::SAFE_PATH)
        .env("LC_ALL", "C.UTF-8")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .ctx(|| "running mmdebstrap".into())?;
    let stderr = child.stderr.take().expect("stderr is piped");
    let mut tail: Vec<String> = Vec::new();
    for line in BufReader::new(stderr).lines().map_while(|l| l.ok()) {
        progress(&line);
        tail.push(line);
        if tail.len() > 8 {
            tail.remove(0);
        }
    }
    let status = child.wait().ctx(|| "waiting for mmdebstrap".into())?;
    if status.success() {
        return Ok(());
    }
    let text = tail.join(" / ");
    let unreachable = [
        "Could not resolve",
        "Failed to fetch",
        "Temporary failure",
        "Connection",
    ]
    .iter()
    .any(|m| text.contains(m));
    Err(Error::ImageBuild(if unreachable {
        format!("the Debian archive {DEBIAN_MIRROR} cannot be reached ({status}): {text}")
    } else {
        format!("mmdebstrap failed ({status}): {text}")
    }))
}

/// `PRETTY_NAME` from the tree's os-release (never following a link out of it).
fn os_name(rootfs: &Path) -> String {
    for rel in ["etc/os-release", "usr/lib/os-release"] {
        let path = rootfs.join(rel);
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if !meta.is_file() {
            continue;
        }
        if let Ok(text) = std::fs::read_to_string(&path) {
            if let Some(v) = text.lines().find_map(|l| l.strip_prefix("PRETTY_NAME=")) {
                return v.trim_matches('"').to_owned();
            }
        }
    }
    "Linux".into()
}

/// Bytes of regular file data under `dir` (links not followed).
pub(crate) fn tree_size(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                stack.push(entry.path());
            } else if meta.is_file() {
                total += meta.len();
            }
        }
    }
    total
}

pub(crate) fn remove_tree(path: &Path) -> Result<()> {
    match std::fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).ctx(|| format!("removing {}", path.display())),
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_names_are_checked() {
        assert!(validate_image_name("debian12").is_ok());
        assert!(validate_image_name("ubuntu-24.04_min").is_ok());
        for bad in ["", ".x", "-x", "A", "a/b", "a b", &"a".repeat(65)] {
            assert!(validate_image_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn os_name_reads_pretty_name() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("etc")).unwrap();
        std::fs::write(
            dir.path().join("etc/os-release"),
            "NAME=\"Debian\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n",
        )
        .unwrap();
        assert_eq!(os_name(dir.path()), "Debian GNU/Linux 12 (bookworm)");
        assert_eq!(os_name(&dir.path().join("none")), "Linux");
    }
}
