//! Password resets: which instances may have root's login password replaced under each
//! dialect's rule, and the operation that becomes. The password itself never leaves this
//! module: it is hashed (SHA-512 crypt, what `/etc/shadow` holds) before anything is recorded.

use crate::account::{Account, Secret};
use crate::audit::RequestMeta;
use crate::compute::hash_password;
use crate::error::DomainError;
use crate::instance::{Instance, InstanceState, OpKind};
use crate::keypair::Namespace;
use crate::service::Core;

/// Which dialect's state rule applies to a reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetRule {
    /// CVM API 3.0 and legacy v2: stopped instances, or running ones when `force_stop` (they are
    /// shut down, reset and started again).
    Cvm {
        /// `ForceStop` (3.0) or `hardPowerOffFlag` (v2) was set.
        force_stop: bool,
    },
    /// Lighthouse: RUNNING or STOPPED; a running instance is shut down first and stays
    /// STOPPED, as documented ("the instance is shut down during the operation").
    Lighthouse,
    /// ECS: Running or Stopped; the new password takes effect at the next start or reboot.
    Ecs,
}

/// Check that `inst` may have its password reset under `rule`.
pub fn check_resettable(rule: ResetRule, inst: &Instance) -> Result<(), DomainError> {
    if inst.is_busy() {
        return Err(inst.busy_error());
    }
    let allowed = match inst.state {
        InstanceState::Stopped => true,
        InstanceState::Running => match rule {
            ResetRule::Cvm { force_stop } => force_stop,
            ResetRule::Lighthouse | ResetRule::Ecs => true,
        },
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

/// The operation a reset under `rule` becomes, for the new password's hash.
pub fn reset_operation(rule: ResetRule, password_hash: &str) -> OpKind {
    OpKind::ResetPassword {
        password_hash: Secret::new(password_hash),
        deferred: rule == ResetRule::Ecs,
        restart: matches!(rule, ResetRule::Cvm { .. }),
    }
}

impl Core {
    /// Reset root's login password on instances, one asynchronous operation per instance, all
    /// or none. The dialect has already checked the ids (shape, duplicates, count, region) and
    /// the password against its complexity rule.
    pub async fn submit_password_reset(
        &self,
        account: &Account,
        ns: Namespace,
        instance_ids: &[String],
        rule: ResetRule,
        password: &str,
        req: &RequestMeta,
    ) -> Result<(), DomainError> {
        // Check before hashing: a refused call should not cost a hash.
        for inst in self.get_instances(account, ns, instance_ids).await? {
            check_resettable(rule, &inst)?;
        }
        let kind = reset_operation(rule, &hash_password(password)?);
        self.submit(account, ns, instance_ids, req, |inst| {
            check_resettable(rule, inst)?;
            Ok((kind.clone(), None))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instance::{HostKind, OpState, OsType};

    fn inst(state: InstanceState) -> Instance {
        Instance {
            id: "ins-aaaaaaaa".into(),
            account_id: "1".into(),
            namespace: Namespace::Cvm,
            region: "ap-guangzhou".into(),
            zone: "ap-guangzhou-3".into(),
            name: "n".into(),
            host_name: "ins-aaaaaaaa".into(),
            image_id: "img-kpdeb12x".into(),
            os: OsType::Linux,
            os_name: "Debian".into(),
            instance_type: "S5.SMALL1".into(),
            state,
            host: HostKind::Sandbox,
            private_ip: "127.1.0.1".into(),
            ssh_port: 22,
            password_hash: None,
            key_ids: vec![],
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
    fn cvm_needs_stopped_or_force_stop() {
        let running = inst(InstanceState::Running);
        assert!(matches!(
            check_resettable(ResetRule::Cvm { force_stop: false }, &running),
            Err(DomainError::InstanceStateInvalid {
                state: InstanceState::Running,
                ..
            })
        ));
        assert!(check_resettable(ResetRule::Cvm { force_stop: true }, &running).is_ok());
        let stopped = inst(InstanceState::Stopped);
        assert!(check_resettable(ResetRule::Cvm { force_stop: false }, &stopped).is_ok());
        assert!(check_resettable(ResetRule::Lighthouse, &running).is_ok());
        assert!(check_resettable(ResetRule::Ecs, &running).is_ok());
    }

    #[test]
    fn transitions_and_operations_in_progress_are_refused() {
        for state in [
            InstanceState::Pending,
            InstanceState::Starting,
            InstanceState::Stopping,
            InstanceState::LaunchFailed,
        ] {
            assert!(matches!(
                check_resettable(ResetRule::Ecs, &inst(state)),
                Err(DomainError::InstanceStateInvalid { .. })
            ));
        }
        let mut busy = inst(InstanceState::Stopped);
        busy.latest_operation_state = Some(OpState::Operating);
        assert!(matches!(
            check_resettable(ResetRule::Cvm { force_stop: true }, &busy),
            Err(DomainError::InstanceBusy { .. })
        ));
    }

    #[test]
    fn each_rule_becomes_its_operation() {
        let kind = |rule| match reset_operation(rule, "$6$x") {
            OpKind::ResetPassword {
                deferred, restart, ..
            } => (deferred, restart),
            other => panic!("{other:?}"),
        };
        assert_eq!(kind(ResetRule::Cvm { force_stop: true }), (false, true));
        assert_eq!(kind(ResetRule::Lighthouse), (false, false));
        assert_eq!(kind(ResetRule::Ecs), (true, false));
        // The hash never prints.
        let debug = format!("{:?}", reset_operation(ResetRule::Ecs, "$6$secret"));
        assert!(!debug.contains("secret"), "{debug}");
    }
}
