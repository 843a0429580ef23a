//! The binding rules of each dialect, in one place: which instances may have key pairs
//! bound or unbound, and what operation that becomes.

use crate::account::Account;
use crate::audit::{AuditResource, RequestMeta};
use crate::error::DomainError;
use crate::instance::{Instance, InstanceState, OpKind, OsType};
use crate::keypair::Namespace;
use crate::service::Core;

/// Which dialect's state rule applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindRule {
    /// CVM API 3.0: stopped instances, or running ones when `force_stop` (stopped first, then
    /// started again once the keys are in place).
    Cvm {
        /// ForceStop was given.
        force_stop: bool,
    },
    /// CVM legacy v2: the instance must be shut down.
    CvmLegacy,
    /// Lighthouse: RUNNING or STOPPED; a running instance is shut down first, and started
    /// again only when `online`. Binding a key that is already bound, or unbinding one that is
    /// not, is refused.
    Lighthouse {
        /// `AssociateType`/`DisassociateType` ONLINE ("no shutdown needed"); OFFLINE, the
        /// default, leaves a running instance STOPPED.
        online: bool,
    },
    /// ECS: any settled state; the change takes effect at the next start or reboot.
    Ecs,
}

/// What a bind call does to the bound keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindChange {
    /// Bind these keys in place of every key bound before.
    Replace(Vec<String>),
    /// Bind these keys in addition.
    Add(Vec<String>),
    /// Unbind these keys.
    Remove(Vec<String>),
}

/// Check that `inst` may have its keys changed under `rule`.
pub fn check_bindable(rule: BindRule, inst: &Instance) -> Result<(), DomainError> {
    if inst.os == OsType::Windows {
        return Err(DomainError::InstanceNotLinux {
            id: inst.id.clone(),
        });
    }
    if inst.is_busy() {
        return Err(inst.busy_error());
    }
    // Why: a real, agent-managed host is never stopped by the API; its agent applies the change
    // live, so every dialect may bind to it while it runs.
    if inst.host == crate::instance::HostKind::Agent {
        return match inst.state {
            InstanceState::Running => Ok(()),
            state => Err(DomainError::InstanceStateInvalid {
                id: inst.id.clone(),
                state,
            }),
        };
    }
    let allowed = match inst.state {
        InstanceState::Stopped => true,
        InstanceState::Running => matches!(
            rule,
            BindRule::Cvm { force_stop: true } | BindRule::Lighthouse { .. } | BindRule::Ecs
        ),
        _ => false,
    };
    if !allowed {
        return Err(DomainError::InstanceStateInvalid {
            id: inst.id.clone(),
            state: inst.state,
        });
    }
    Ok(())
}

/// Check a change against the keys bound now (Lighthouse's duplicate and not-bound rules).
pub fn check_change(
    rule: BindRule,
    inst: &Instance,
    change: &BindChange,
) -> Result<(), DomainError> {
    if !matches!(rule, BindRule::Lighthouse { .. }) {
        return Ok(());
    }
    match change {
        BindChange::Add(keys) | BindChange::Replace(keys) => {
            if let Some(k) = keys.iter().find(|k| inst.key_ids.contains(k)) {
                return Err(DomainError::KeyAlreadyBound {
                    instance: inst.id.clone(),
                    key: k.clone(),
                });
            }
        }
        BindChange::Remove(keys) => {
            if let Some(k) = keys.iter().find(|k| !inst.key_ids.contains(k)) {
                return Err(DomainError::KeyNotBound {
                    instance: inst.id.clone(),
                    key: k.clone(),
                });
            }
        }
    }
    Ok(())
}

/// The operation a change becomes.
pub fn bind_operation(rule: BindRule, change: &BindChange) -> OpKind {
    let deferred = rule == BindRule::Ecs;
    // Why: Lighthouse's OFFLINE (the default) does not start the instance again. The seed and
    // the SDK say only "instances in RUNNING status will be forcibly shut down before binding",
    // never that they are started afterwards, and AssociateType documents OFFLINE as the
    // binding that shuts the instance down: a RUNNING instance ends STOPPED, and the caller
    // starts it. ONLINE promises no shutdown; the sandbox applies keys to a stopped server, so
    // a running instance is stopped and started again within the operation and ends RUNNING,
    // as ONLINE documents, though its sessions are closed. CVM's ForceStop starts the instance
    // again once the keys are in place.
    let restart = match rule {
        BindRule::Lighthouse { online } => online,
        BindRule::Cvm { .. } | BindRule::CvmLegacy | BindRule::Ecs => true,
    };
    match change {
        BindChange::Replace(keys) => OpKind::Bind {
            add: keys.clone(),
            remove: vec![],
            replace: true,
            deferred,
            restart,
        },
        BindChange::Add(keys) => OpKind::Bind {
            add: keys.clone(),
            remove: vec![],
            replace: false,
            deferred,
            restart,
        },
        BindChange::Remove(keys) => OpKind::Bind {
            add: vec![],
            remove: keys.clone(),
            replace: false,
            deferred,
            restart,
        },
    }
}

/// The bound keys after applying a bind operation to `current`.
pub fn next_keys(
    current: &[String],
    add: &[String],
    remove: &[String],
    replace: bool,
) -> Vec<String> {
    let mut keys: Vec<String> = if replace {
        Vec::new()
    } else {
        current.to_vec()
    };
    keys.retain(|k| !remove.contains(k));
    for k in add {
        if !keys.contains(k) {
            keys.push(k.clone());
        }
    }
    keys
}

impl Core {
    /// Bind or unbind key pairs on instances, one asynchronous operation per instance, all or
    /// none. Ids must already be checked for shape, duplicates and count by the dialect.
    pub async fn submit_bind(
        &self,
        account: &Account,
        ns: Namespace,
        instance_ids: &[String],
        rule: BindRule,
        change: BindChange,
        req: &RequestMeta,
    ) -> Result<(), DomainError> {
        let keys = match &change {
            BindChange::Replace(k) | BindChange::Add(k) | BindChange::Remove(k) => k.clone(),
        };
        let named = self
            .get_key_pairs(account, ns, &keys)
            .await?
            .iter()
            .map(|k| AuditResource::key_pair(&k.id, &k.name))
            .collect();
        let kind = bind_operation(rule, &change);
        self.submit_naming(account, ns, instance_ids, req, named, |inst| {
            check_bindable(rule, inst)?;
            check_change(rule, inst, &change)?;
            Ok((kind.clone(), None))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instance::{HostKind, OpState};

    fn inst(state: InstanceState, os: OsType) -> Instance {
        Instance {
            id: "ins-aaaaaaaa".into(),
            account_id: "1".into(),
            namespace: Namespace::Cvm,
            region: "ap-guangzhou".into(),
            zone: "ap-guangzhou-3".into(),
            name: "n".into(),
            host_name: "ins-aaaaaaaa".into(),
            image_id: "img-kpdeb12x".into(),
            os,
            os_name: "Debian".into(),
            instance_type: "S5.SMALL1".into(),
            state,
            host: HostKind::Sandbox,
            private_ip: "127.1.0.1".into(),
            ssh_port: 22,
            password_hash: None,
            key_ids: vec!["skey-00000001".into()],
            effective_key_ids: vec![],
            desired_generation: 0,
            applied_generation: 0,
            latest_operation: None,
            latest_operation_state: None,
            latest_operation_request_id: None,
            latest_operation_error: None,
            created_at: 0,
        }
    }

    #[test]
    fn cvm_needs_stopped_or_force() {
        let running = inst(InstanceState::Running, OsType::Linux);
        assert!(matches!(
            check_bindable(BindRule::Cvm { force_stop: false }, &running),
            Err(DomainError::InstanceStateInvalid {
                state: InstanceState::Running,
                ..
            })
        ));
        assert!(check_bindable(BindRule::Cvm { force_stop: true }, &running).is_ok());
        assert!(check_bindable(BindRule::CvmLegacy, &running).is_err());
        assert!(check_bindable(
            BindRule::CvmLegacy,
            &inst(InstanceState::Stopped, OsType::Linux)
        )
        .is_ok());
        assert!(check_bindable(BindRule::Lighthouse { online: false }, &running).is_ok());
        assert!(
            check_bindable(BindRule::Ecs, &inst(InstanceState::Starting, OsType::Linux)).is_err()
        );
    }

    #[test]
    fn windows_and_busy_instances_are_refused() {
        let win = inst(InstanceState::Stopped, OsType::Windows);
        assert!(matches!(
            check_bindable(BindRule::Ecs, &win),
            Err(DomainError::InstanceNotLinux { .. })
        ));
        let mut busy = inst(InstanceState::Stopped, OsType::Linux);
        busy.latest_operation_state = Some(OpState::Operating);
        assert!(matches!(
            check_bindable(BindRule::Lighthouse { online: false }, &busy),
            Err(DomainError::InstanceBusy { .. })
        ));
    }

    #[test]
    fn lighthouse_refuses_duplicates_and_unbound() {
        let i = inst(InstanceState::Stopped, OsType::Linux);
        let dup = BindChange::Add(vec!["skey-00000001".into()]);
        assert!(matches!(
            check_change(BindRule::Lighthouse { online: false }, &i, &dup),
            Err(DomainError::KeyAlreadyBound { .. })
        ));
        assert!(check_change(BindRule::Cvm { force_stop: false }, &i, &dup).is_ok());
        let gone = BindChange::Remove(vec!["skey-00000002".into()]);
        assert!(matches!(
            check_change(BindRule::Lighthouse { online: false }, &i, &gone),
            Err(DomainError::KeyNotBound { .. })
        ));
    }

    #[test]
    fn only_an_online_lighthouse_binding_starts_the_instance_again() {
        let restart = |rule| match bind_operation(rule, &BindChange::Replace(vec!["k".into()])) {
            OpKind::Bind { restart, .. } => restart,
            other => panic!("{other:?}"),
        };
        assert!(!restart(BindRule::Lighthouse { online: false }));
        assert!(restart(BindRule::Lighthouse { online: true }));
        assert!(restart(BindRule::Cvm { force_stop: true }));
    }

    #[test]
    fn next_keys_replaces_adds_and_removes() {
        let cur = vec!["a".to_string(), "b".to_string()];
        assert_eq!(next_keys(&cur, &["c".into()], &[], true), vec!["c"]);
        assert_eq!(
            next_keys(&cur, &["c".into(), "a".into()], &[], false),
            vec!["a", "b", "c"]
        );
        assert_eq!(next_keys(&cur, &[], &["a".into()], false), vec!["b"]);
    }
}
