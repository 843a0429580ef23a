//! Symlink-safe file operations relative to directory descriptors.
//!
//! Instance directories are writable by the instance's root, who may plant symbolic links to
//! trick the (host root) server into writing elsewhere. Every write therefore goes through a
//! directory file descriptor opened with `O_NOFOLLOW`, creates a fresh temporary file with
//! `O_CREAT | O_EXCL | O_NOFOLLOW`, and `renameat`s it over the target: a rename replaces a
//! directory entry, it never writes through a link.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::{AtFlags, FileType, Gid, Mode, OFlags, Uid};

use crate::files::{FileError as Error, FileResult as Result, IoContext};

/// Owner (host uid and gid) given to created files and directories.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    /// Host uid.
    pub uid: u32,
    /// Host gid.
    pub gid: u32,
}

/// Opens a directory without following a symlink in its last component.
pub fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    Ok(rustix::fs::open(path, flags, Mode::empty())?)
}

/// Opens the subdirectory `name` of `dir`, refusing symlinks.
pub fn open_subdir(dir: impl AsFd, name: &str) -> io::Result<OwnedFd> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    Ok(rustix::fs::openat(dir, name, flags, Mode::empty())?)
}

/// Opens (creating if missing) the subdirectory `name` of `dir` and forces its owner and mode.
pub fn ensure_subdir(
    dir: impl AsFd,
    name: &str,
    mode: u32,
    owner: Option<Owner>,
) -> io::Result<OwnedFd> {
    match rustix::fs::mkdirat(dir.as_fd(), name, Mode::from_raw_mode(0o700)) {
        Ok(()) => {}
        Err(rustix::io::Errno::EXIST) => {}
        Err(e) => return Err(e.into()),
    }
    let fd = open_subdir(dir, name)?;
    if let Some(o) = owner {
        chown(&fd, o)?;
    }
    rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode))?;
    Ok(fd)
}

/// Changes the owner of an open file.
pub fn chown(fd: impl AsFd, owner: Owner) -> io::Result<()> {
    rustix::fs::fchown(
        fd,
        Some(Uid::from_raw(owner.uid)),
        Some(Gid::from_raw(owner.gid)),
    )?;
    Ok(())
}

/// Owner of an open file or directory.
pub fn owner_of(fd: impl AsFd) -> io::Result<Owner> {
    let st = rustix::fs::fstat(fd)?;
    Ok(Owner {
        uid: st.st_uid,
        gid: st.st_gid,
    })
}

/// Reads the regular file `name` in `dir` without following a symlink.
pub fn read_file(dir: impl AsFd, name: &str) -> io::Result<Vec<u8>> {
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK;
    let fd = rustix::fs::openat(dir, name, flags, Mode::empty())?;
    if FileType::from_raw_mode(rustix::fs::fstat(&fd)?.st_mode) != FileType::RegularFile {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not a regular file",
        ));
    }
    let mut buf = Vec::new();
    File::from(fd).read_to_end(&mut buf)?;
    Ok(buf)
}

/// Whether `name` in `dir` exists (without following a symlink).
pub fn exists(dir: impl AsFd, name: &str) -> io::Result<bool> {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(_) => Ok(true),
        Err(rustix::io::Errno::NOENT) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Atomically replaces `name` in the directory `dir` with `contents`.
///
/// Temp file in the same directory (`O_EXCL | O_NOFOLLOW`), write, fsync, owner and mode set on
/// the descriptor, `renameat` over the target, fsync of the directory. A target that is a
/// symbolic link is refused with [`Error::SymlinkRefused`]; nothing is ever written through one.
pub fn write_atomic_at(
    dir: impl AsFd,
    name: &str,
    contents: &[u8],
    mode: u32,
    owner: Option<Owner>,
) -> Result<()> {
    let dir = dir.as_fd();
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(Error::Io {
            context: format!("writing {name:?}"),
            source: io::Error::new(io::ErrorKind::InvalidInput, "not a plain file name"),
        });
    }
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Symlink => {
            return Err(Error::SymlinkRefused(name.into()));
        }
        Ok(_) | Err(rustix::io::Errno::NOENT) => {}
        Err(e) => return Err(e).ctx(|| format!("stat {name}")),
    }
    let (tmp_name, fd) = create_temp(dir, name)?;
    let written = (|| -> io::Result<()> {
        let mut file = File::from(fd);
        file.write_all(contents)?;
        if let Some(o) = owner {
            chown(&file, o)?;
        }
        rustix::fs::fchmod(&file, Mode::from_raw_mode(mode))?;
        file.sync_all()?;
        rustix::fs::renameat(dir, tmp_name.as_str(), dir, name)?;
        rustix::fs::fsync(dir)?;
        Ok(())
    })();
    if let Err(e) = written {
        let _ = rustix::fs::unlinkat(dir, tmp_name.as_str(), AtFlags::empty());
        return Err(e).ctx(|| format!("writing {name}"));
    }
    Ok(())
}

/// Creates a fresh temporary file next to `name`, never reusing or following an existing entry.
fn create_temp(dir: rustix::fd::BorrowedFd<'_>, name: &str) -> Result<(String, OwnedFd)> {
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mut last_err = None;
    for _ in 0..16 {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let tmp = format!(".{name}.tmp.{}.{n}.{nanos}", std::process::id());
        match rustix::fs::openat(dir, tmp.as_str(), flags, Mode::from_raw_mode(0o600)) {
            Ok(fd) => return Ok((tmp, fd)),
            Err(rustix::io::Errno::EXIST) => last_err = Some(rustix::io::Errno::EXIST),
            Err(e) => return Err(e).ctx(|| format!("creating temp file for {name}")),
        }
    }
    Err(last_err.unwrap_or(rustix::io::Errno::EXIST)).ctx(|| format!("temp file for {name}"))
}

/// Atomically replaces `dir/name` with `contents`, never following a symbolic link.
///
/// `dir` itself must not be a symlink (its last component is opened with `O_NOFOLLOW`), and
/// neither may `dir/name`. The new file gets `mode` and, if given, `owner`; the previous file
/// (if any) is replaced by a rename, so readers see either the old or the new content.
pub fn write_atomic(
    dir: &Path,
    name: &str,
    contents: &[u8],
    mode: u32,
    owner: Option<Owner>,
) -> Result<()> {
    let fd = open_dir_checked(dir)?;
    write_atomic_at(&fd, name, contents, mode, owner)
}

/// [`open_dir`] that reports a symlinked directory as [`Error::SymlinkRefused`].
pub fn open_dir_checked(dir: &Path) -> Result<OwnedFd> {
    open_dir(dir).or_else(|e| match std::fs::symlink_metadata(dir) {
        Ok(m) if m.file_type().is_symlink() => Err(Error::SymlinkRefused(dir.to_path_buf())),
        _ => Err(e).ctx(|| format!("opening directory {}", dir.display())),
    })
}
