//! Launching instances: the checks a launch passes before anything is written, the records
//! (one [`Instance`] and its create [`NewOperation`] per name) and their insert.

use crate::account::{Account, Secret};
use crate::audit::{AuditResource, RequestMeta};
use crate::compute::{hash_password, store_err, LaunchSpec, INSTANCE_QUOTA};
use crate::error::DomainError;
use crate::instance::{HostKind, Image, Instance, InstanceState, NewOperation, OpKind, OsType};
use crate::keypair::KeyPair;
use crate::service::Core;
use crate::store::{Conflict, StoreError};

/// A launch that has passed its checks: what the records and their insert need.
struct Launch<'a> {
    account: &'a Account,
    spec: &'a LaunchSpec,
    req: &'a RequestMeta,
    image: Image,
    /// The key pairs to bind at creation (named in the audit event).
    keys: Vec<KeyPair>,
    password_hash: Option<String>,
}

impl Launch<'_> {
    /// The instances and their create operations, one per name, on these addresses.
    fn records(&self, addresses: Vec<String>, now: i64) -> (Vec<Instance>, Vec<NewOperation>) {
        let mut instances = Vec::new();
        let mut ops = Vec::new();
        for (n, (name, ip)) in self.spec.names.iter().zip(addresses).enumerate() {
            let (inst, op) = self.record(n, name, ip, now);
            ops.push(op);
            instances.push(inst);
        }
        (instances, ops)
    }

    /// The `n`th instance, named `name` on address `ip`, and its create operation.
    fn record(&self, n: usize, name: &str, ip: String, now: i64) -> (Instance, NewOperation) {
        let (account, spec, image) = (self.account, self.spec, &self.image);
        let (prefix, len) = spec.namespace.instance_id_shape();
        let id = crate::ids::new_id(prefix, len);
        let inst = Instance {
            host_name: spec
                .host_names
                .get(n)
                .cloned()
                .unwrap_or_else(|| id.clone()),
            id,
            account_id: account.id.clone(),
            namespace: spec.namespace,
            region: spec.region.clone(),
            zone: spec.zone.clone(),
            name: name.to_owned(),
            image_id: image.id.clone(),
            os: image.os,
            os_name: image.os_name.clone(),
            instance_type: spec.instance_type.clone(),
            state: InstanceState::Pending,
            host: if image.os == OsType::Linux {
                HostKind::Sandbox
            } else {
                HostKind::Record
            },
            private_ip: ip,
            ssh_port: spec.ssh_port,
            password_hash: self.password_hash.clone().map(Secret::new),
            key_ids: spec.key_ids.clone(),
            effective_key_ids: spec.key_ids.clone(),
            desired_generation: i64::from(!spec.key_ids.is_empty()),
            applied_generation: 0,
            latest_operation: None,
            latest_operation_state: None,
            latest_operation_request_id: None,
            latest_operation_error: None,
            created_at: now,
        };
        let op = NewOperation {
            account_id: account.id.clone(),
            instance_id: inst.id.clone(),
            action: self.req.action.clone(),
            request_id: self.req.request_id.clone(),
            kind: OpKind::Create {
                user_data: spec.user_data.clone(),
                then_stop: spec.then_stop,
            },
            new_state: None,
            state_before: None,
            created_at: now,
        };
        (inst, op)
    }
}

impl Core {
    /// Create instance records and their create operations; returns the new ids.
    pub async fn launch_instances(
        &self,
        account: &Account,
        spec: LaunchSpec,
        req: &RequestMeta,
    ) -> Result<Vec<String>, DomainError> {
        let launch = self.check_launch(account, &spec, req).await?;
        for _attempt in 0..5 {
            let addresses = self.free_addresses(spec.names.len()).await?;
            let (instances, ops) = launch.records(addresses, self.now());
            match self.insert_launch(&launch, &instances, &ops).await {
                Ok(ids) => {
                    if !ops.is_empty() {
                        self.wake_worker();
                    }
                    return Ok(ids);
                }
                Err(StoreError::Conflict(Conflict::Address | Conflict::Id)) => continue,
                Err(e) => return Err(store_err(e)),
            }
        }
        Err(DomainError::internal(
            "could not allocate instance ids and addresses",
        ))
    }

    /// The checks before anything is written, in this order: the image, no key pairs on
    /// Windows, the host's capacity (Linux), the key pairs, the quota; then the password's
    /// hash.
    async fn check_launch<'a>(
        &self,
        account: &'a Account,
        spec: &'a LaunchSpec,
        req: &'a RequestMeta,
    ) -> Result<Launch<'a>, DomainError> {
        let image = self.image(spec.namespace, &spec.image_id)?;
        if image.os == OsType::Windows && !spec.key_ids.is_empty() {
            return Err(DomainError::InstanceNotLinux {
                id: spec.image_id.clone(),
            });
        }
        if image.os == OsType::Linux {
            self.check_capacity(spec.namespace, &spec.instance_type)?;
        }
        let keys = if spec.key_ids.is_empty() {
            Vec::new()
        } else {
            self.get_key_pairs(account, spec.namespace, &spec.key_ids)
                .await?
        };
        let existing = self.count_instances(account, spec.namespace).await?;
        if existing + spec.names.len() > INSTANCE_QUOTA {
            return Err(DomainError::InstanceQuotaExceeded {
                limit: INSTANCE_QUOTA,
            });
        }
        let password_hash = spec.password.as_deref().map(hash_password).transpose()?;
        Ok(Launch {
            account,
            spec,
            req,
            image,
            keys,
            password_hash,
        })
    }

    /// Inserts one attempt's records with the launch's change event (once per client token
    /// when there is one); returns the instances' ids.
    async fn insert_launch(
        &self,
        launch: &Launch<'_>,
        instances: &[Instance],
        ops: &[NewOperation],
    ) -> Result<Vec<String>, StoreError> {
        let mut resources: Vec<AuditResource> = instances
            .iter()
            .map(|i| AuditResource::instance(&i.id))
            .collect();
        resources.extend(
            launch
                .keys
                .iter()
                .map(|k| AuditResource::key_pair(&k.id, &k.name)),
        );
        let event = self.change_event(launch.req, launch.account, resources, ops.len());
        match &launch.spec.client_token {
            Some(token) => {
                self.store()
                    .insert_instances_once(instances, ops, token, event.as_ref())
                    .await
            }
            None => self
                .store()
                .insert_instances(instances, ops, event.as_ref())
                .await
                .map(|()| instances.iter().map(|i| i.id.clone()).collect()),
        }
    }
}
