//! The VPCs of a [`SandboxHost`]'s instances: one network namespace per VPC, set up on the
//! first start of one of its instances and taken apart at shutdown.

use std::path::Path;
use std::sync::Arc;

use super::{MetadataService, SandboxHost};
use crate::error::Result;
use crate::layout::Meta;
use crate::net;

impl SandboxHost {
    /// Links the started instance (init `pid1`) to its VPC, setting the VPC up unless this
    /// process already did; returns the metadata service, if any, with the listeners made for
    /// it inside the instance's network.
    pub(super) async fn attach_to_vpc(
        &self,
        meta: &Meta,
        pid1: u32,
    ) -> Result<(Option<Arc<dyn MetadataService>>, Vec<std::net::TcpListener>)> {
        let id = &meta.id;
        let vpc = net::vpc_netns_name(self.layout.root(), &vpc_key(meta));
        let known = self.ensure_vpc(&vpc, false).await?;
        let service = self
            .metadata
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let link = format!("kp{}", meta.slot);
        let metadata = service.is_some();
        let listeners = match net::attach(pid1, &vpc, &link, meta.address, metadata).await {
            // A VPC namespace known from before may have been taken apart meanwhile.
            Err(e) if known => {
                tracing::debug!(instance = %id, "linking to the VPC failed ({e}); setting it up again");
                self.ensure_vpc(&vpc, true).await?;
                net::attach(pid1, &vpc, &link, meta.address, metadata).await?
            }
            other => other?,
        };
        Ok((service, listeners))
    }

    /// Sets the VPC namespace `vpc` up unless this process already did (or `check`); returns
    /// whether it was known.
    async fn ensure_vpc(&self, vpc: &str, check: bool) -> Result<bool> {
        let mut ready = self.net_lock.lock().await;
        if !check && ready.contains(vpc) && Path::new("/run/netns").join(vpc).exists() {
            return Ok(true);
        }
        ready.remove(vpc);
        net::ensure_vpc(vpc).await?;
        ready.insert(vpc.to_owned());
        Ok(false)
    }

    /// Takes VPC `vpc` (a [`vpc_key`]) apart once none of the instances is in it.
    pub(super) async fn remove_vpc_if_unused(&self, vpc: &str) -> Result<()> {
        if !self.layout.list_meta()?.iter().any(|m| vpc_key(m) == vpc) {
            let name = net::vpc_netns_name(self.layout.root(), vpc);
            let mut ready = self.net_lock.lock().await;
            ready.remove(&name);
            net::remove_vpc(&name).await;
        }
        Ok(())
    }

    /// Takes apart the VPC namespaces of every instance (at shutdown).
    pub(super) async fn remove_vpcs(&self) {
        // Every start sets its VPC up again: none is left behind on the host meanwhile (nor
        // for good, should this sandbox directory be deleted).
        let vpcs: std::collections::BTreeSet<String> = match self.layout.list_meta() {
            Ok(metas) => metas.iter().map(|m| self.vpc_netns_of(m)).collect(),
            Err(e) => {
                tracing::warn!("cannot list the instances at shutdown: {e}");
                return;
            }
        };
        let mut ready = self.net_lock.lock().await;
        for vpc in vpcs {
            ready.remove(&vpc);
            net::remove_vpc(&vpc).await;
        }
    }

    /// The name of the network namespace holding instance `id`'s VPC, `/run/netns/<name>`
    /// while one of its instances runs (or has run since the host started).
    pub fn vpc_netns(&self, id: &str) -> Result<String> {
        Ok(self.vpc_netns_of(&self.meta(id)?))
    }

    fn vpc_netns_of(&self, meta: &Meta) -> String {
        net::vpc_netns_name(self.layout.root(), &vpc_key(meta))
    }
}

/// The VPC an instance is in; one of an earlier version (none recorded) gets one of its own.
pub(super) fn vpc_key(meta: &Meta) -> String {
    if meta.vpc.is_empty() {
        format!("instance/{}", meta.id)
    } else {
        meta.vpc.clone()
    }
}
