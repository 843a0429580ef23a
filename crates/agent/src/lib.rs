//! The guest agent: it fetches the SSH state the server decided for its instance (bound
//! public keys, password login on or off), applies it to files it owns, and reports back.
//!
//! [`plan`] is pure (what would change); [`apply`] does the IO through
//! [`ssh_state::apply_ssh_state`] (atomic writes, right owner and modes, never through
//! a symlink, touching only the agent's own files). [`Agent::run_once`] is what a sandbox runs
//! at boot and when its keys change; [`Agent::run`] keeps a real host in line with long polls.
#![forbid(unsafe_code)]

mod client;
mod files;
pub mod fsutil;
pub mod host_state;
pub mod ssh_state;

pub use client::{register, Agent, AgentConfig, AgentError, Registered};
pub use files::{FileError, FileResult};
pub use host_state::HostLayout;

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// How sshd learns about a changed drop-in on a real host.
#[derive(Debug, Clone)]
pub enum Reload {
    /// Send SIGHUP to the pid in this file (`/run/sshd.pid`).
    PidFile(PathBuf),
    /// Run this command (`systemctl reload ssh`).
    Command(Vec<String>),
}

/// Where the agent applies the state.
#[derive(Debug, Clone)]
pub enum Target {
    /// A sandbox instance: its sshd configuration directory, whose `keyplane/authorized_keys`
    /// and `sshd_config.d/00-keyplane.conf` the agent owns (sshd runs per connection there, so
    /// no reload is needed).
    Sandbox(PathBuf),
    /// A real host: the login user's `~/.ssh/keyplane_authorized_keys` and the host's sshd
    /// drop-in, with sshd reloaded when the drop-in changes.
    Host(HostLayout, Reload),
}

/// Ask sshd to re-read its configuration.
pub fn reload_sshd(reload: &Reload) -> Result<(), String> {
    match reload {
        Reload::PidFile(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("reading {}: {e}", path.display()))?;
            let raw: i32 = text
                .trim()
                .parse()
                .map_err(|_| format!("{} holds no pid", path.display()))?;
            let pid =
                rustix::process::Pid::from_raw(raw).ok_or_else(|| format!("invalid pid {raw}"))?;
            rustix::process::kill_process(pid, rustix::process::Signal::HUP)
                .map_err(|e| format!("signalling sshd ({raw}): {e}"))
        }
        Reload::Command(argv) => {
            let (program, args) = argv.split_first().ok_or("empty reload command")?;
            let status = std::process::Command::new(program)
                .args(args)
                .status()
                .map_err(|e| format!("running {program}: {e}"))?;
            if status.success() {
                Ok(())
            } else {
                Err(format!("{} exited with {status}", argv.join(" ")))
            }
        }
    }
}

/// Wire form of the desired SSH state (`GET .../ssh-state`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DesiredState {
    /// Increases with every change.
    pub generation: i64,
    /// OpenSSH public key lines.
    pub authorized_keys: Vec<String>,
    /// Whether password login stays on.
    pub password_authentication: bool,
}

/// Wire form of the agent's report (`POST .../report`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// The generation the report is about.
    pub generation: i64,
    /// Whether it was applied.
    pub ok: bool,
    /// What went wrong, when it did.
    pub message: String,
}

/// What is on disk now, as far as the agent's own files tell.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CurrentState {
    /// Keys in the agent's file.
    pub authorized_keys: Vec<String>,
    /// The password switch, when the drop-in exists.
    pub password_authentication: Option<bool>,
}

/// What applying `desired` over `current` changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Keys to add.
    pub add: Vec<String>,
    /// Keys to remove.
    pub remove: Vec<String>,
    /// New value of the password switch, when it changes.
    pub password_authentication: Option<bool>,
}

impl Plan {
    /// Whether nothing changes.
    pub fn is_empty(&self) -> bool {
        self.add.is_empty() && self.remove.is_empty() && self.password_authentication.is_none()
    }
}

/// Compare the desired state with what is on disk.
pub fn plan(desired: &DesiredState, current: &CurrentState) -> Plan {
    let add = desired
        .authorized_keys
        .iter()
        .filter(|k| !current.authorized_keys.contains(k))
        .cloned()
        .collect();
    let remove = current
        .authorized_keys
        .iter()
        .filter(|k| !desired.authorized_keys.contains(k))
        .cloned()
        .collect();
    let password_authentication = match current.password_authentication {
        Some(now) if now == desired.password_authentication => None,
        _ => Some(desired.password_authentication),
    };
    Plan {
        add,
        remove,
        password_authentication,
    }
}

/// Read what the agent's own files hold at `target`.
pub fn read_target(target: &Target) -> CurrentState {
    match target {
        Target::Sandbox(dir) => read_current(dir),
        Target::Host(layout, _) => CurrentState {
            authorized_keys: host_state::read_host_keys(layout).unwrap_or_default(),
            password_authentication: host_state::read_host_password_switch(&layout.sshd_dir),
        },
    }
}

/// Apply `desired` at `target` unless it is already in place; returns the plan carried out.
pub fn apply_target(target: &Target, desired: &DesiredState) -> Result<Plan, String> {
    match target {
        Target::Sandbox(dir) => apply(dir, desired).map_err(|e| e.to_string()),
        Target::Host(layout, reload) => {
            let p = plan(desired, &read_target(target));
            if !p.is_empty() {
                let changed = host_state::apply_host_ssh_state(
                    layout,
                    &desired.authorized_keys,
                    desired.password_authentication,
                )
                .map_err(|e| e.to_string())?;
                if changed {
                    reload_sshd(reload)?;
                }
            }
            Ok(p)
        }
    }
}

/// Read the agent's own files under the sshd configuration directory `ssh_dir`.
pub fn read_current(ssh_dir: &Path) -> CurrentState {
    let authorized_keys = ssh_state::read_ssh_keys(ssh_dir).unwrap_or_default();
    let dropin = ssh_dir
        .join(ssh_state::DROPIN_DIR)
        .join(ssh_state::DROPIN_FILE);
    let password_authentication = std::fs::read_to_string(dropin).ok().and_then(|text| {
        text.lines().find_map(|l| {
            let mut words = l.split_whitespace();
            match (words.next(), words.next()) {
                (Some(k), Some(v)) if k.eq_ignore_ascii_case("PasswordAuthentication") => {
                    Some(v.eq_ignore_ascii_case("yes"))
                }
                _ => None,
            }
        })
    });
    CurrentState {
        authorized_keys,
        password_authentication,
    }
}

/// Apply `desired` under `ssh_dir` unless it is already in place; returns the plan carried out.
pub fn apply(ssh_dir: &Path, desired: &DesiredState) -> Result<Plan, FileError> {
    let p = plan(desired, &read_current(ssh_dir));
    if !p.is_empty() {
        ssh_state::apply_ssh_state(
            ssh_dir,
            &desired.authorized_keys,
            desired.password_authentication,
        )?;
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desired(keys: &[&str], pw: bool) -> DesiredState {
        DesiredState {
            generation: 1,
            authorized_keys: keys.iter().map(|k| k.to_string()).collect(),
            password_authentication: pw,
        }
    }

    #[test]
    fn plans_only_what_changes() {
        let current = CurrentState {
            authorized_keys: vec!["a".into(), "b".into()],
            password_authentication: Some(false),
        };
        let p = plan(&desired(&["b", "c"], false), &current);
        assert_eq!(p.add, vec!["c"]);
        assert_eq!(p.remove, vec!["a"]);
        assert_eq!(p.password_authentication, None);
        assert!(plan(&desired(&["a", "b"], false), &current).is_empty());
        let unbind = plan(&desired(&[], true), &current);
        assert_eq!(unbind.password_authentication, Some(true));
        assert_eq!(unbind.remove.len(), 2);
    }

    #[test]
    fn a_missing_switch_is_always_written() {
        let p = plan(&desired(&[], true), &CurrentState::default());
        assert_eq!(p.password_authentication, Some(true));
    }

    #[test]
    fn applies_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let key =
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl k";
        let d = desired(&[key], false);
        let first = apply(dir.path(), &d).unwrap();
        assert_eq!(first.add, vec![key]);
        let now = read_current(dir.path());
        assert_eq!(now.authorized_keys, vec![key]);
        assert_eq!(now.password_authentication, Some(false));
        assert!(
            apply(dir.path(), &d).unwrap().is_empty(),
            "a second apply changes nothing"
        );
        let back = apply(dir.path(), &desired(&[], true)).unwrap();
        assert_eq!(back.remove, vec![key]);
        assert_eq!(read_current(dir.path()).password_authentication, Some(true));
    }
}
