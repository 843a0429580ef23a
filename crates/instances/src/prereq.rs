//! What the host needs for sandbox instances, and the one fix we can make ourselves.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::error::{IoContext, Missing, PrereqError, Result};
use crate::{SandboxConfig, IDS_PER_INSTANCE};
use keyplane_agent::fsutil;

const SUBUID: &str = "/etc/subuid";
const SUBGID: &str = "/etc/subgid";

/// Programs the driver runs, with the Debian package providing each.
fn programs(config: &SandboxConfig) -> Vec<(PathBuf, &'static str)> {
    let mut list = vec![
        ("/usr/bin/unshare".into(), "util-linux"),
        ("/usr/bin/nsenter".into(), "util-linux"),
        ("/usr/bin/prlimit".into(), "util-linux"),
        ("/usr/bin/newuidmap".into(), "uidmap"),
        ("/usr/bin/newgidmap".into(), "uidmap"),
        ("/bin/mount".into(), "mount"),
        ("/sbin/ip".into(), "iproute2"),
    ];
    if config.outbound {
        list.push(("/usr/bin/slirp4netns".into(), "slirp4netns"));
    }
    list
}

/// The subordinate id range the instances use: (first, count).
pub(crate) fn id_range(config: &SandboxConfig) -> (u64, u64) {
    (u64::from(config.subuid_base), u64::from(IDS_PER_INSTANCE))
}

/// Everything missing for running instances under `root`.
pub(crate) fn check(config: &SandboxConfig, root: &Path) -> Result<(), PrereqError> {
    let mut missing = Vec::new();
    if !rustix::process::geteuid().is_root() {
        missing.push(Missing::NotRoot);
    }
    for (path, package) in programs(config) {
        if !is_executable(&path) {
            missing.push(Missing::Program { path, package });
        }
    }
    let userns = std::fs::read_to_string("/proc/sys/user/max_user_namespaces");
    if userns.is_ok_and(|v| v.trim() == "0") {
        missing.push(Missing::UserNamespacesDisabled);
    }
    for file in [SUBUID, SUBGID] {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        missing.extend(check_subordinate(file, &text, id_range(config)));
    }
    let _ = root;
    if missing.is_empty() {
        Ok(())
    } else {
        Err(PrereqError { missing })
    }
}

/// Adds the root range to `/etc/subuid` and `/etc/subgid` where it is missing (root only).
pub fn setup_subordinate_ids(config: &SandboxConfig) -> Result<()> {
    if !rustix::process::geteuid().is_root() {
        return Err(PrereqError {
            missing: vec![Missing::NotRoot],
        }
        .into());
    }
    let range = id_range(config);
    for file in [SUBUID, SUBGID] {
        let text = match std::fs::read_to_string(file) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e).ctx(|| format!("reading {file}")),
        };
        let problems = check_subordinate(file, &text, range);
        if problems
            .iter()
            .any(|m| matches!(m, Missing::SubordinateIdConflict { .. }))
        {
            return Err(PrereqError { missing: problems }.into());
        }
        if let Some(Missing::SubordinateIds { line, .. }) = problems.first() {
            let mut new = text.clone();
            if !new.is_empty() && !new.ends_with('\n') {
                new.push('\n');
            }
            new.push_str(line);
            new.push('\n');
            let owner = fsutil::Owner { uid: 0, gid: 0 };
            fsutil::write_atomic(
                Path::new("/etc"),
                &file[5..],
                new.as_bytes(),
                0o644,
                Some(owner),
            )?;
            tracing::info!("added {line:?} to {file}");
        }
    }
    Ok(())
}

/// Checks one subordinate id file for a root entry covering `range`, and for overlaps with
/// other users' entries.
fn check_subordinate(file: &str, text: &str, (first, count): (u64, u64)) -> Vec<Missing> {
    let end = first + count;
    let mut covered = false;
    let mut out = Vec::new();
    for line in text.lines() {
        let mut parts = line.trim().split(':');
        let (Some(name), Some(Ok(start)), Some(Ok(len))) = (
            parts.next(),
            parts.next().map(str::parse::<u64>),
            parts.next().map(str::parse::<u64>),
        ) else {
            continue;
        };
        let is_root = name == "root" || name == "0";
        if is_root && start <= first && start + len >= end {
            covered = true;
        } else if !is_root && start < end && first < start + len {
            out.push(Missing::SubordinateIdConflict {
                file: file.into(),
                line: line.to_owned(),
            });
        }
    }
    if !covered {
        out.push(Missing::SubordinateIds {
            file: file.into(),
            line: format!("root:{first}:{count}"),
        });
    }
    out
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_program_is_named_with_its_package() {
        let expected = Missing::Program {
            path: "/nonexistent/slirp4netns".into(),
            package: "slirp4netns",
        };
        assert!(expected.to_string().contains("apt-get install slirp4netns"));
        assert!(programs(&SandboxConfig::default())
            .iter()
            .any(|(p, pkg)| p.ends_with("slirp4netns") && *pkg == "slirp4netns"));
        let offline = SandboxConfig {
            outbound: false,
            ..SandboxConfig::default()
        };
        assert!(!programs(&offline)
            .iter()
            .any(|(p, _)| p.ends_with("slirp4netns")));
    }

    #[test]
    fn subordinate_ranges() {
        let range = (100_000, 65536 * 4);
        assert_eq!(id_range(&SandboxConfig::default()), (100_000, 65536));
        let missing = check_subordinate(SUBUID, "", range);
        assert_eq!(
            missing,
            vec![Missing::SubordinateIds {
                file: SUBUID.into(),
                line: "root:100000:262144".into()
            }]
        );
        assert!(check_subordinate(SUBUID, "root:100000:1000000\n", range).is_empty());
        let conflict =
            check_subordinate(SUBUID, "root:100000:1000000\nalice:165536:65536\n", range);
        assert!(matches!(
            conflict[..],
            [Missing::SubordinateIdConflict { .. }]
        ));
        assert!(check_subordinate(SUBUID, "root:0:10\nalice:500000:65536\n", range).len() == 1);
    }
}
