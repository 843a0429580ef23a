//! The worker's launches: the steps of `OpKind::Create` on one instance.

use super::{StepError, StepResult, Worker};
use crate::InstanceSpec;
use keyplane_core::instance::{HostKind, Instance, InstanceState, Operation};

impl Worker {
    /// Steps: 1 laid out, 2 (with `then_stop`) booted; then started, or stopped. A failure
    /// before the first boot is done ends the instance LAUNCH_FAILED.
    pub(super) async fn create(
        &self,
        op: &mut Operation,
        inst: &Instance,
        user_data: Option<&str>,
        then_stop: bool,
    ) -> StepResult {
        if inst.host == HostKind::Record {
            let state = if then_stop {
                InstanceState::Stopped
            } else {
                InstanceState::Running
            };
            return self.set_state(&inst.id, state).await;
        }
        let outcome = async {
            if op.step < 1 {
                let host = self.host()?;
                let (cpus, memory_mib) =
                    keyplane_core::compute::instance_resources(inst.namespace, &inst.instance_type);
                let spec = InstanceSpec {
                    id: inst.id.clone(),
                    address: inst.private_ip.parse()?,
                    password: None,
                    password_hash: inst.password_hash.as_ref().map(|h| h.expose().to_string()),
                    // What DescribeInstances reports as HostName, when the sandbox can use it.
                    hostname: if crate::valid_hostname(&inst.host_name) {
                        inst.host_name.clone()
                    } else {
                        inst.id.clone()
                    },
                    image: crate::DEFAULT_IMAGE.into(),
                    // One VPC per account and region, as on the clouds' default networks.
                    vpc: format!("{}/{}", inst.account_id, inst.region),
                    resources: crate::Resources {
                        cpus,
                        memory_mib,
                        max_processes: host.max_processes(),
                    },
                    ssh_port: Some(inst.ssh_port),
                    user_data: user_data
                        .map(|d| {
                            use base64::Engine;
                            base64::engine::general_purpose::STANDARD.decode(d.trim())
                        })
                        .transpose()
                        .map_err(StepError::UserData)?,
                };
                host.create(spec).await?;
                op.step = 1;
                self.save(op).await?;
            }
            self.first_boot(op, inst, then_stop).await
        }
        .await;
        // A failure past the first boot (the stop) leaves a launched instance.
        if outcome.is_err() && op.step < 2 {
            self.set_state(&inst.id, InstanceState::LaunchFailed)
                .await?;
        }
        outcome
    }

    /// The first boot of a new instance (which lays out its SSH state); with `then_stop`, step
    /// 2 records it booted, and the instance is then stopped (without a grace period).
    pub(super) async fn first_boot(
        &self,
        op: &mut Operation,
        inst: &Instance,
        then_stop: bool,
    ) -> StepResult {
        if !then_stop {
            return self.boot(inst).await;
        }
        if op.step < 2 {
            self.boot(inst).await?;
            op.step = 2;
            self.save(op).await?;
        }
        self.halt(inst, true).await
    }
}
