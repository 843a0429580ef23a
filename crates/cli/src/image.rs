//! `keyplane image`: the root filesystems Linux instances boot from.

use crate::config::{self, FileConfig};
use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use keyplane_instances::image::{ImageStore, DEBIAN_MIRROR};
use keyplane_instances::{ImageCache, SandboxConfig, DEFAULT_IMAGE};
use std::path::{Path, PathBuf};

/// Where the images of a server are.
#[derive(Debug, Args)]
pub struct ImagePlace {
    /// Data directory of the server [default: /var/lib/keyplane as root].
    #[arg(long, env = "KEYPLANE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Sandbox directory of the server, when not `<data dir>/sandbox`.
    #[arg(long, env = "KEYPLANE_SANDBOX_DIR")]
    sandbox_dir: Option<PathBuf>,
    /// Image tarball cache, when not `<data dir>/image-cache`.
    #[arg(long, env = "KEYPLANE_IMAGE_CACHE")]
    image_cache: Option<PathBuf>,
    /// Configuration file (TOML), for the directories above.
    #[arg(long, env = "KEYPLANE_CONFIG")]
    config: Option<PathBuf>,
}

/// `keyplane image ...`.
#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Build an image from Debian's packages with mmdebstrap and install it (the built-in
    /// `debian12`: Debian 12 minimal with openssh-server, python3, sudo, iproute2 and apt).
    Build {
        /// Image name.
        #[arg(default_value = DEFAULT_IMAGE)]
        name: String,
        /// Build again even when a tarball is cached.
        #[arg(long)]
        rebuild: bool,
        #[command(flatten)]
        place: ImagePlace,
    },
    /// List the installed images.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        place: ImagePlace,
    },
    /// Install a root filesystem tarball (tar, tar.gz, tar.xz, tar.zst) as image NAME.
    Import {
        /// Image name (a-z, 0-9, '.', '_', '-').
        name: String,
        /// The tarball: a root filesystem with /bin/sh, /usr/sbin/sshd and usermod.
        rootfs: PathBuf,
        /// Replace an installed image of that name (instances using it see the new tree at
        /// their next start).
        #[arg(long)]
        replace: bool,
        #[command(flatten)]
        place: ImagePlace,
    },
}

/// The directories of a server: (sandbox dir, image cache).
pub fn directories(
    data_dir: &Path,
    sandbox_dir: Option<PathBuf>,
    image_cache: Option<PathBuf>,
) -> (PathBuf, PathBuf) {
    (
        sandbox_dir.unwrap_or_else(|| data_dir.join("sandbox")),
        image_cache.unwrap_or_else(|| data_dir.join("image-cache")),
    )
}

impl ImagePlace {
    fn resolve(self) -> Result<(ImageStore, ImageCache)> {
        let file = FileConfig::load(self.config.as_deref())?;
        let data_dir = self
            .data_dir
            .or(file.data_dir)
            .unwrap_or_else(config::default_data_dir);
        let (sandbox, cache) = directories(
            &data_dir,
            self.sandbox_dir.or(file.sandbox_dir),
            self.image_cache.or(file.image_cache),
        );
        let config = SandboxConfig::default();
        if !rustix::process::geteuid().is_root() {
            bail!("images are installed as root (the tree is owned by the instances' uid range)");
        }
        keyplane_instances::setup_subordinate_ids(&config)?;
        std::fs::create_dir_all(&sandbox)
            .with_context(|| format!("cannot create {}", sandbox.display()))?;
        Ok((
            ImageStore::new(sandbox.join("images"), config.subuid_base),
            ImageCache::new(cache),
        ))
    }
}

/// Run an image command.
pub fn run(cmd: ImageCommand) -> Result<()> {
    match cmd {
        ImageCommand::Build {
            name,
            rebuild,
            place,
        } => {
            let (store, cache) = place.resolve()?;
            if rebuild {
                let _ = std::fs::remove_file(cache.tarball(&name));
            }
            let bar = spinner(&format!("building {name} from {DEBIAN_MIRROR}"));
            let tarball = cache.ensure(&name, &mut |line| bar.set_message(line.to_owned()));
            bar.finish_and_clear();
            let tarball = tarball?;
            install(&store, &name, &tarball, true)
        }
        ImageCommand::List { json, place } => {
            let (store, _) = place.resolve()?;
            let images = store.list()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&images)?);
                return Ok(());
            }
            println!("{:<16} {:<36} {:>10}  SOURCE", "NAME", "OS", "SIZE");
            for i in images {
                let size = format!("{:.0} MiB", i.size_bytes as f64 / 1048576.0);
                println!(
                    "{:<16} {:<36} {:>10}  {}",
                    i.name, i.os_name, size, i.source
                );
            }
            Ok(())
        }
        ImageCommand::Import {
            name,
            rootfs,
            replace,
            place,
        } => {
            let (store, _) = place.resolve()?;
            if !rootfs.is_file() {
                bail!("{} is not a file", rootfs.display());
            }
            install(&store, &name, &rootfs, replace)
        }
    }
}

fn install(store: &ImageStore, name: &str, tarball: &Path, replace: bool) -> Result<()> {
    if !replace && store.get(name)?.is_some() {
        bail!("image {name} is already installed; give --replace to install it again");
    }
    let bar = spinner(&format!("extracting {}", tarball.display()));
    let info = store.import(name, tarball, &tarball.display().to_string());
    bar.finish_and_clear();
    let info = info?;
    println!(
        "installed image {} ({}, {:.0} MiB)",
        info.name,
        info.os_name,
        info.size_bytes as f64 / 1048576.0
    );
    Ok(())
}

fn spinner(what: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {prefix} [{elapsed}] {wide_msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    bar.set_prefix(what.to_owned());
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar
}
