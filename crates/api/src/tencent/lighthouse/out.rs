//! Lighthouse 2020-03-24 answers: `KeyPair` and `Instance` as the SDK models them.

use super::catalog::{bundle, platform, platform_type};
use crate::tencent::wire::{iso8601, Tag};
use keyplane_core::instance::Instance;
use keyplane_core::keypair::KeyPair;
use keyplane_core::query::instance_uuid;
use serde::Serialize;

/// The login user keys are bound for: the sandbox image's only user.
pub const LOGIN_USER: &str = "root";

/// `AssociatedInstanceInfo`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AssociatedInstanceOut {
    /// Instance.
    pub instance_id: String,
    /// The user the key is bound for.
    pub username: &'static str,
}

/// `KeyPair` as answered.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyPairOut {
    /// `lhkp-xxxxxxxx`.
    pub key_id: String,
    /// Name.
    pub key_name: String,
    /// OpenSSH public key.
    pub public_key: String,
    /// Bound instances.
    pub associated_instance_ids: Vec<String>,
    /// Bound instances with the user.
    pub associated_instance_set: Vec<AssociatedInstanceOut>,
    /// `YYYY-MM-DDThh:mm:ssZ`.
    pub created_time: String,
    /// Only in the CreateKeyPair answer; `null` elsewhere.
    pub private_key: Option<String>,
    /// Tags.
    pub tags: Vec<Tag>,
}

impl KeyPairOut {
    /// The wire form of a stored key pair.
    pub fn from_domain(kp: KeyPair, private_key: Option<String>) -> KeyPairOut {
        KeyPairOut {
            key_id: kp.id,
            key_name: kp.name,
            public_key: kp.public_key,
            associated_instance_set: kp
                .associated_instance_ids
                .iter()
                .map(|id| AssociatedInstanceOut {
                    instance_id: id.clone(),
                    username: LOGIN_USER,
                })
                .collect(),
            associated_instance_ids: kp.associated_instance_ids,
            created_time: iso8601(kp.created_at),
            private_key,
            tags: kp
                .tags
                .into_iter()
                .map(|(key, value)| Tag { key, value })
                .collect(),
        }
    }
}

/// `SystemDisk` as answered.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SystemDiskOut {
    /// `CLOUD_SSD`.
    pub disk_type: &'static str,
    /// GiB, from the bundle.
    pub disk_size: i64,
    /// `lhdisk-` and the instance id's suffix.
    pub disk_id: String,
}

/// `InternetAccessible` as answered.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct InternetAccessibleOut {
    /// `FLOW_PACKAGE`.
    pub internet_charge_type: &'static str,
    /// Mbps, from the bundle.
    pub internet_max_bandwidth_out: i64,
    /// No public address.
    pub public_ip_assigned: bool,
}

/// `LoginSettings` as answered.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct LoginSettingsOut {
    /// Bound key pairs (`[]` when none).
    pub key_ids: Vec<String>,
}

/// `SupportIpv6Detail` as answered.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SupportIpv6DetailOut {
    /// No IPv6.
    pub is_support: bool,
    /// `REGION_NOT_SUPPORT`.
    pub detail: &'static str,
    /// Why.
    pub message: &'static str,
}

/// `Instance` as answered by DescribeInstances.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct InstanceOut {
    /// `lhins-xxxxxxxx`.
    pub instance_id: String,
    /// The bundle it was created with.
    pub bundle_id: String,
    /// The blueprint it was created from.
    pub blueprint_id: String,
    /// Cores, from the bundle.
    #[serde(rename = "CPU")]
    pub cpu: i64,
    /// GiB, from the bundle.
    pub memory: i64,
    /// Name.
    pub instance_name: String,
    /// `PREPAID`, the only Lighthouse mode.
    pub instance_charge_type: &'static str,
    /// Nominal system disk.
    pub system_disk: SystemDiskOut,
    /// The instance's own address (where its SSH server listens).
    pub private_addresses: Vec<String>,
    /// None.
    pub public_addresses: Option<Vec<String>>,
    /// Bandwidth from the bundle; no public address.
    pub internet_accessible: InternetAccessibleOut,
    /// Why: null, as is ExpiredTime: nothing is billed, so no renewal setting or expiry is
    /// kept (the request's InstanceChargePrepaid is checked, then dropped).
    pub renew_flag: Option<String>,
    /// Bound keys.
    pub login_settings: LoginSettingsOut,
    /// Lifecycle state.
    pub instance_state: &'static str,
    /// Stable per instance.
    pub uuid: String,
    /// Latest operation (wire action name).
    pub latest_operation: Option<String>,
    /// `OPERATING`, `SUCCESS` or `FAILED`.
    pub latest_operation_state: Option<&'static str>,
    /// RequestId of the call that started it.
    pub latest_operation_request_id: Option<String>,
    /// Not kept: null, as the field allows.
    pub latest_operation_started_time: Option<String>,
    /// Never isolated.
    pub isolated_time: Option<String>,
    /// Creation time.
    pub created_time: String,
    /// Not kept (see RenewFlag).
    pub expired_time: Option<String>,
    /// `LINUX_UNIX` or `WINDOWS`.
    pub platform_type: &'static str,
    /// `DEBIAN` or `WINDOWS`.
    pub platform: String,
    /// OS name.
    pub os_name: String,
    /// Zone.
    pub zone: String,
    /// None kept.
    pub tags: Vec<Tag>,
    /// `NORMAL`.
    pub instance_restrict_state: &'static str,
    /// No IPv6.
    pub support_ipv6_detail: SupportIpv6DetailOut,
    /// None.
    pub public_ipv6_addresses: Vec<String>,
    /// No InitCommand ran.
    pub init_invocation_id: Option<String>,
    /// No violation.
    pub instance_violation_detail: Option<serde_json::Value>,
}

impl InstanceOut {
    /// The wire form of an instance.
    pub fn from_domain(i: Instance) -> InstanceOut {
        let b = bundle(&i.instance_type);
        let suffix = i.id.trim_start_matches("lhins-").to_string();
        InstanceOut {
            uuid: instance_uuid(&i.id),
            instance_id: i.id,
            cpu: b.map_or(1, |b| b.cpu),
            memory: b.map_or(1, |b| b.memory),
            system_disk: SystemDiskOut {
                disk_type: "CLOUD_SSD",
                disk_size: b.map_or(20, |b| b.disk),
                disk_id: format!("lhdisk-{suffix}"),
            },
            internet_accessible: InternetAccessibleOut {
                internet_charge_type: "FLOW_PACKAGE",
                internet_max_bandwidth_out: b.map_or(0, |b| b.bandwidth),
                public_ip_assigned: false,
            },
            bundle_id: i.instance_type,
            blueprint_id: i.image_id,
            instance_name: i.name,
            instance_charge_type: "PREPAID",
            private_addresses: vec![i.private_ip],
            public_addresses: None,
            renew_flag: None,
            login_settings: LoginSettingsOut { key_ids: i.key_ids },
            instance_state: i.state.as_str(),
            latest_operation: i.latest_operation,
            latest_operation_state: i.latest_operation_state.map(|s| s.as_str()),
            latest_operation_request_id: i.latest_operation_request_id,
            latest_operation_started_time: None,
            isolated_time: None,
            created_time: iso8601(i.created_at),
            expired_time: None,
            platform_type: platform_type(i.os),
            platform: platform(i.os).to_string(),
            os_name: i.os_name,
            zone: i.zone,
            tags: vec![],
            instance_restrict_state: "NORMAL",
            support_ipv6_detail: SupportIpv6DetailOut {
                is_support: false,
                detail: "REGION_NOT_SUPPORT",
                message: "Sandbox instances have no IPv6 addresses.",
            },
            public_ipv6_addresses: vec![],
            init_invocation_id: None,
            instance_violation_detail: None,
        }
    }
}
