//! Instances and their operations: what a launch is held to (image, capacity, quota,
//! addresses; the launch itself is in `launch`), describe, and the generic submission of
//! asynchronous operations that every dialect's start/stop/bind calls go through.

use crate::account::Account;
use crate::audit::{AuditResource, RequestMeta};
use crate::error::DomainError;
use crate::instance::{Image, Instance, InstanceState, NewOperation, OpKind};
use crate::keypair::Namespace;
use crate::service::Core;
use crate::store::{Conflict, StoreError};
use std::collections::HashSet;
use std::net::Ipv4Addr;

/// How many instances one account may hold per namespace.
pub const INSTANCE_QUOTA: usize = 200;

/// First and last address handed to instances: 127.1.0.1 ..= 127.1.255.254 (127.0.0.1 is the
/// host's own).
pub const ADDRESS_RANGE: (Ipv4Addr, Ipv4Addr) =
    (Ipv4Addr::new(127, 1, 0, 1), Ipv4Addr::new(127, 1, 255, 254));

/// The most CPUs and memory one sandbox instance of this host can get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostCapacity {
    /// CPUs (the host's online CPUs).
    pub cpus: u32,
    /// Memory in MiB (the host's physical memory).
    pub memory_mib: u64,
}

impl HostCapacity {
    /// What this machine has: its online CPUs and its physical memory (`MemTotal`).
    pub fn of_this_host() -> HostCapacity {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
        let memory_mib = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                m.lines()
                    .find_map(|l| l.strip_prefix("MemTotal:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            })
            .map_or(u64::MAX, |kib| kib / 1024);
        HostCapacity { cpus, memory_mib }
    }
}

/// What RunInstances (and its siblings) asks for.
#[derive(Clone)]
pub struct LaunchSpec {
    /// Namespace.
    pub namespace: Namespace,
    /// Region.
    pub region: String,
    /// Zone.
    pub zone: String,
    /// Image.
    pub image_id: String,
    /// Names, one per instance (the dialect expands patterns).
    pub names: Vec<String>,
    /// Host names, one per instance (already checked by the dialect); empty: each instance's
    /// id.
    pub host_names: Vec<String>,
    /// Login password, already checked against the dialect's complexity rule.
    pub password: Option<String>,
    /// Key pairs to bind at creation.
    pub key_ids: Vec<String>,
    /// Instance type label.
    pub instance_type: String,
    /// SSH port each sandbox listens on.
    pub ssh_port: u16,
    /// Idempotency token: a repeated launch with the same token returns the first one's
    /// instances instead of creating more.
    pub client_token: Option<String>,
    /// User data (base64, checked by the dialect), run once at each instance's first boot.
    pub user_data: Option<String>,
    /// Whether each instance is stopped once created (booted once, which lays out its SSH
    /// state, then stopped), in the same operation: ECS CreateInstance.
    pub then_stop: bool,
}

impl std::fmt::Debug for LaunchSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LaunchSpec")
            .field("namespace", &self.namespace)
            .field("image_id", &self.image_id)
            .field("names", &self.names)
            .field("password", &self.password.as_ref().map(|_| "[REDACTED]"))
            .field("key_ids", &self.key_ids)
            .finish()
    }
}

/// SHA-512 crypt hash of a password, as `/etc/shadow` holds it.
pub fn hash_password(password: &str) -> Result<String, DomainError> {
    sha_crypt::sha512_simple(password, &sha_crypt::Sha512Params::default())
        .map_err(|e| DomainError::internal(format!("password hashing failed: {e:?}")))
}

pub(crate) fn store_err(e: StoreError) -> DomainError {
    DomainError::internal(e)
}

/// How many candidate addresses one store query checks.
const ADDRESS_CHUNK: u32 = 512;

/// The candidate addresses of the chunk starting at `from`, in order; `None` past the range's
/// end.
fn address_chunk(from: u32) -> Option<Vec<String>> {
    let last = u32::from(ADDRESS_RANGE.1);
    (from <= last).then(|| {
        (from..=last.min(from.saturating_add(ADDRESS_CHUNK - 1)))
            .map(|a| Ipv4Addr::from(a).to_string())
            .collect()
    })
}

impl Core {
    /// The image with this id in the namespace.
    pub fn image(&self, ns: Namespace, id: &str) -> Result<Image, DomainError> {
        self.images(ns)
            .into_iter()
            .find(|i| i.id == id)
            .ok_or_else(|| DomainError::ImageNotFound { id: id.into() })
    }

    /// Check instance ids for shape, duplicates and count.
    pub fn check_instance_ids(
        &self,
        ns: Namespace,
        param: &str,
        ids: &[String],
        max: usize,
    ) -> Result<(), DomainError> {
        if ids.len() > max {
            return Err(DomainError::TooManyValues {
                param: param.into(),
                max,
                given: ids.len(),
            });
        }
        let mut seen = HashSet::new();
        for id in ids {
            if !ns.is_instance_id(id) {
                return Err(DomainError::InstanceIdMalformed { id: id.clone() });
            }
            if !seen.insert(id.as_str()) {
                return Err(DomainError::DuplicateValue {
                    param: param.into(),
                    value: id.clone(),
                });
            }
        }
        Ok(())
    }

    /// Refuses an instance type the host cannot give (more CPUs or memory than it has).
    pub fn check_capacity(&self, ns: Namespace, instance_type: &str) -> Result<(), DomainError> {
        let Some(cap) = self.host_capacity() else {
            return Ok(());
        };
        let (cpus, memory_mib) = instance_resources(ns, instance_type);
        if cpus > cap.cpus || memory_mib > cap.memory_mib {
            return Err(DomainError::InstanceTypeUnavailable {
                instance_type: instance_type.into(),
                cpus,
                memory_mib,
                max_cpus: cap.cpus,
                max_memory_mib: cap.memory_mib,
            });
        }
        Ok(())
    }

    /// The lowest `n` free instance addresses, checked a chunk at a time on the store's
    /// address index.
    pub(crate) async fn free_addresses(&self, n: usize) -> Result<Vec<String>, DomainError> {
        let mut out = Vec::with_capacity(n);
        let mut from = u32::from(ADDRESS_RANGE.0);
        while out.len() < n {
            let Some(candidates) = address_chunk(from) else {
                return Err(DomainError::internal("no free instance address left"));
            };
            from += ADDRESS_CHUNK;
            let taken: HashSet<String> = self
                .store()
                .taken_addresses(&candidates)
                .await
                .map_err(store_err)?
                .into_iter()
                .collect();
            out.extend(
                candidates
                    .into_iter()
                    .filter(|a| !taken.contains(a))
                    .take(n - out.len()),
            );
        }
        Ok(out)
    }

    /// How many instances the account holds in a namespace.
    pub async fn count_instances(
        &self,
        account: &Account,
        ns: Namespace,
    ) -> Result<usize, DomainError> {
        self.store()
            .count_instances(&account.id, ns)
            .await
            .map_err(store_err)
    }

    /// The account's instances of a namespace, optionally only `ids` (in their order of
    /// creation); unknown ids are left out.
    pub async fn list_instances(
        &self,
        account: &Account,
        ns: Namespace,
    ) -> Result<Vec<Instance>, DomainError> {
        self.store()
            .list_instances(&account.id, ns)
            .await
            .map_err(store_err)
    }

    /// The instances with these ids; the first unknown one is `InstanceNotFound`.
    pub async fn get_instances(
        &self,
        account: &Account,
        ns: Namespace,
        ids: &[String],
    ) -> Result<Vec<Instance>, DomainError> {
        let found = self.instances_by_ids(account, ns, ids).await?;
        ids.iter()
            .map(|id| {
                found
                    .iter()
                    .find(|i| &i.id == id)
                    .cloned()
                    .ok_or_else(|| DomainError::InstanceNotFound { id: id.clone() })
            })
            .collect()
    }

    /// The instances with these ids, all in `region` when one is given: the first unknown one
    /// is `InstanceNotFound`, then the first of another region `InstanceNotInRegion`.
    pub async fn get_instances_in(
        &self,
        account: &Account,
        ns: Namespace,
        ids: &[String],
        region: Option<&str>,
    ) -> Result<Vec<Instance>, DomainError> {
        let found = self.get_instances(account, ns, ids).await?;
        for inst in &found {
            inst.check_region(region)?;
        }
        Ok(found)
    }

    /// Rename one of the account's instances (the dialect has checked the name).
    pub async fn rename_instance(
        &self,
        account: &Account,
        ns: Namespace,
        id: &str,
        name: &str,
        req: &RequestMeta,
    ) -> Result<(), DomainError> {
        self.get_instances(account, ns, &[id.to_string()]).await?;
        let event = self.change_event(req, account, vec![AuditResource::instance(id)], 0);
        match self
            .store()
            .set_instance_name(id, name, event.as_ref())
            .await
        {
            Ok(()) => Ok(()),
            Err(StoreError::NotFound(id)) => Err(DomainError::InstanceNotFound { id }),
            Err(e) => Err(store_err(e)),
        }
    }

    /// The account's instances of a namespace with these ids, oldest first; unknown ids are
    /// left out.
    pub async fn instances_by_ids(
        &self,
        account: &Account,
        ns: Namespace,
        ids: &[String],
    ) -> Result<Vec<Instance>, DomainError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        self.store()
            .instances_by_ids(&account.id, ns, ids)
            .await
            .map_err(store_err)
    }

    /// Submit one operation per instance, all or none. `plan` applies the dialect's rule to
    /// each instance and returns the operation and the state the instance enters now.
    pub async fn submit<F>(
        &self,
        account: &Account,
        ns: Namespace,
        ids: &[String],
        req: &RequestMeta,
        plan: F,
    ) -> Result<(), DomainError>
    where
        F: Fn(&Instance) -> Result<(OpKind, Option<InstanceState>), DomainError>,
    {
        self.submit_naming(account, ns, ids, req, Vec::new(), plan)
            .await
    }

    /// [`Core::submit`], with the audit event also naming `also` (the key pairs of a bind).
    pub(crate) async fn submit_naming<F>(
        &self,
        account: &Account,
        ns: Namespace,
        ids: &[String],
        req: &RequestMeta,
        also: Vec<AuditResource>,
        plan: F,
    ) -> Result<(), DomainError>
    where
        F: Fn(&Instance) -> Result<(OpKind, Option<InstanceState>), DomainError>,
    {
        let instances = self.get_instances(account, ns, ids).await?;
        let now = self.now();
        let mut ops = Vec::with_capacity(instances.len());
        for inst in &instances {
            let (kind, new_state) = plan(inst)?;
            ops.push(NewOperation {
                account_id: account.id.clone(),
                instance_id: inst.id.clone(),
                action: req.action.clone(),
                request_id: req.request_id.clone(),
                kind,
                new_state,
                state_before: Some(inst.state),
                created_at: now,
            });
        }
        let mut resources: Vec<AuditResource> = instances
            .iter()
            .map(|i| AuditResource::instance(&i.id))
            .collect();
        resources.extend(also);
        let event = self.change_event(req, account, resources, ops.len());
        match self.store().submit_operations(&ops, event.as_ref()).await {
            Ok(()) => {
                self.wake_worker();
                Ok(())
            }
            Err(StoreError::Conflict(Conflict::InstanceBusy)) => {
                // Another request got in between our check and the write.
                let busy = self.get_instances(account, ns, ids).await?;
                Err(busy.iter().find(|i| i.is_busy()).map_or_else(
                    || DomainError::InstanceBusy {
                        id: ids.first().cloned().unwrap_or_default(),
                        state: InstanceState::Running,
                        operation: "another".into(),
                    },
                    Instance::busy_error,
                ))
            }
            Err(StoreError::NotFound(id)) => Err(DomainError::InstanceNotFound { id }),
            Err(e) => Err(store_err(e)),
        }
    }
}

/// CPU cores and memory (GiB) of a CVM instance type such as `S5.MEDIUM4` or `SA2.2XLARGE16`;
/// `None` when the label does not have that shape.
pub fn parse_instance_type(t: &str) -> Option<(i64, i64)> {
    let (family, size) = t.split_once('.')?;
    let mut fc = family.chars();
    if !fc.next()?.is_ascii_uppercase() || !fc.all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    let digits_at = size.rfind(|c: char| !c.is_ascii_digit())? + 1;
    let (class, memory) = size.split_at(digits_at);
    let memory: i64 = memory.parse().ok().filter(|m| *m > 0)?;
    let cpu = match class {
        "SMALL" => 1,
        "MEDIUM" => 2,
        "LARGE" => 4,
        _ => {
            let n: i64 = class.strip_suffix("XLARGE")?.parse().ok()?;
            if n < 2 {
                return None;
            }
            4 * n
        }
    };
    Some((cpu, memory))
}

/// CPU cores and memory (MiB) a sandbox instance gets, by its namespace and type: what
/// DescribeInstances reports for it (CVM types by their label, Lighthouse bundles by the
/// catalog, ECS instances as the ECS dialect reports them).
pub fn instance_resources(ns: Namespace, instance_type: &str) -> (u32, u64) {
    match ns {
        Namespace::Cvm => parse_instance_type(instance_type)
            .map(|(cpu, gib)| (cpu as u32, gib as u64 * 1024))
            .unwrap_or((1, 1024)),
        Namespace::Lighthouse => match instance_type {
            "bundle_kp_gen_02" => (2, 2048),
            "bundle_kp_gen_04" => (2, 4096),
            _ => (1, 1024),
        },
        Namespace::Ecs => parse_ecs_instance_type(instance_type).unwrap_or((2, 4096)),
    }
}

/// CPUs and memory (MiB) of an ECS instance type such as `ecs.g5.large` (2 vCPUs, 8 GiB) or
/// `ecs.c6.4xlarge` (16 vCPUs, 32 GiB): the size gives the vCPUs (`small` 1, `large` 2,
/// `xlarge` 4, `Nxlarge` 4N), the family's letter the memory per vCPU (`c` compute 2 GiB, `g`
/// general 4 GiB, `r` memory 8 GiB, others 4 GiB); `None` when the label has another shape.
pub fn parse_ecs_instance_type(t: &str) -> Option<(u32, u64)> {
    let mut parts = t.split('.');
    let (Some("ecs"), Some(family), Some(size), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let cpus: u32 = match size {
        "small" => 1,
        "medium" => 1,
        "large" => 2,
        "xlarge" => 4,
        _ => {
            let n: u32 = size.strip_suffix("xlarge")?.parse().ok()?;
            if n < 2 {
                return None;
            }
            n.checked_mul(4)?
        }
    };
    let per_cpu_gib: u64 = match family.trim_start_matches("hf").chars().next()? {
        'c' => 2,
        'r' => 8,
        _ => 4,
    };
    let memory_mib = if size == "small" {
        1024
    } else {
        u64::from(cpus) * per_cpu_gib * 1024
    };
    Some((cpus, memory_mib))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_chunks_cover_the_range_once() {
        let first = address_chunk(u32::from(ADDRESS_RANGE.0)).unwrap();
        assert_eq!(first[0], "127.1.0.1");
        assert_eq!(first.len(), ADDRESS_CHUNK as usize);
        let last = u32::from(ADDRESS_RANGE.1);
        assert_eq!(address_chunk(last).unwrap(), vec!["127.1.255.254"]);
        assert!(address_chunk(last + 1).is_none());
    }

    #[test]
    fn ecs_types_give_cpus_and_memory() {
        assert_eq!(parse_ecs_instance_type("ecs.g5.large"), Some((2, 8192)));
        assert_eq!(parse_ecs_instance_type("ecs.c6.4xlarge"), Some((16, 32768)));
        assert_eq!(parse_ecs_instance_type("ecs.r7.xlarge"), Some((4, 32768)));
        assert_eq!(
            parse_ecs_instance_type("ecs.t5-lc1m1.small"),
            Some((1, 1024))
        );
        assert_eq!(parse_ecs_instance_type("ecs.g5.1xlarge"), None);
        assert_eq!(parse_ecs_instance_type("g5.large"), None);
    }

    #[test]
    fn passwords_hash_as_shadow_wants() {
        let h = hash_password("Passw0rd!").unwrap();
        assert!(h.starts_with("$6$"));
        assert!(sha_crypt::sha512_check("Passw0rd!", &h).is_ok());
    }
}
