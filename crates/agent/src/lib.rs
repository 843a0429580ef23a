//! The guest agent: it fetches the SSH state the server decided for its instance (bound
//! public keys, password login on or off), applies it to files it owns, and reports back.
//!
//! [`plan`] is pure (what would change); [`apply`] does the IO through
//! [`keyplane_instances::apply_ssh_state`] (atomic writes, right owner and modes, never through
//! a symlink, touching only the agent's own files). [`Agent::run_once`] is what a sandbox runs
//! at boot and when its keys change; [`Agent::run`] keeps a real host in line with long polls.
#![forbid(unsafe_code)]

mod client;

pub use client::{Agent, AgentConfig, AgentError};

use serde::{Deserialize, Serialize};
use std::path::Path;

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

/// Read the agent's own files under the sshd configuration directory `ssh_dir`.
pub fn read_current(ssh_dir: &Path) -> CurrentState {
    let authorized_keys = keyplane_instances::read_ssh_keys(ssh_dir).unwrap_or_default();
    let dropin = ssh_dir
        .join(keyplane_instances::DROPIN_DIR)
        .join(keyplane_instances::DROPIN_FILE);
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
pub fn apply(ssh_dir: &Path, desired: &DesiredState) -> Result<Plan, keyplane_instances::Error> {
    let p = plan(desired, &read_current(ssh_dir));
    if !p.is_empty() {
        keyplane_instances::apply_ssh_state(
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
