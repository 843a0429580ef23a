//! Wire structures of the CVM instance and image actions.

// A request structure accepts every field the vendor documents, so that an SDK request
// carrying one is not refused as unknown; the sandbox acts on some of them only. Each
// structure with fields nobody reads says so with its own `#[expect(dead_code)]`, so that
// anything else in this module that falls out of use is still reported.

use super::{iso8601, Filter, Tag};
use crate::common::params::{lenient_bool, lenient_i64};
use keyplane_core::instance::{Image, Instance, InstanceState, OsType};
use serde::{Deserialize, Serialize};

/// DescribeImages request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct DescribeImagesRequest {
    /// Only these images.
    pub image_ids: Option<Vec<String>>,
    /// Filters (not together with ImageIds).
    pub filters: Option<Vec<Filter>>,
    /// Offset (default 0).
    #[serde(default, deserialize_with = "lenient_i64")]
    pub offset: Option<i64>,
    /// Limit (default 20, at most 100).
    #[serde(default, deserialize_with = "lenient_i64")]
    pub limit: Option<i64>,
    /// Images usable with this type: every type takes every sandbox image.
    pub instance_type: Option<String>,
}

/// DescribeInstances request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct DescribeInstancesRequest {
    /// Only these instances (at most 100).
    pub instance_ids: Option<Vec<String>>,
    /// Filters (not together with InstanceIds).
    pub filters: Option<Vec<Filter>>,
    /// Offset (default 0).
    #[serde(default, deserialize_with = "lenient_i64")]
    pub offset: Option<i64>,
    /// Limit (default 20, at most 100).
    #[serde(default, deserialize_with = "lenient_i64")]
    pub limit: Option<i64>,
}

/// DescribeInstancesStatus request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct DescribeInstancesStatusRequest {
    /// Only these instances (at most 100).
    pub instance_ids: Option<Vec<String>>,
    /// Offset (default 0).
    #[serde(default, deserialize_with = "lenient_i64")]
    pub offset: Option<i64>,
    /// Limit (default 20, at most 100).
    #[serde(default, deserialize_with = "lenient_i64")]
    pub limit: Option<i64>,
}

/// StartInstances request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct StartInstancesRequest {
    /// At most 100.
    pub instance_ids: Vec<String>,
}

/// StopInstances request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct StopInstancesRequest {
    /// At most 100.
    pub instance_ids: Vec<String>,
    /// Deprecated: soft first, then hard (= `StopType` `SOFT_FIRST`); not with StopType.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub force_stop: Option<bool>,
    /// `SOFT` (default), `HARD` or `SOFT_FIRST`.
    pub stop_type: Option<String>,
    /// `KEEP_CHARGING` (default) or `STOP_CHARGING`: checked, then ignored (nothing is billed).
    pub stopped_mode: Option<String>,
}

/// RebootInstances request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct RebootInstancesRequest {
    /// At most 100.
    pub instance_ids: Vec<String>,
    /// Deprecated: soft first, then hard; not with StopType.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub force_reboot: Option<bool>,
    /// `SOFT` (default), `HARD` or `SOFT_FIRST`.
    pub stop_type: Option<String>,
}

/// TerminateInstances request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
#[expect(
    dead_code,
    reason = "every documented field is accepted; the sandbox reads only some"
)]
pub struct TerminateInstancesRequest {
    /// At most 100.
    pub instance_ids: Vec<String>,
    /// Accepted and ignored: instances have no elastic addresses.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub release_address: Option<bool>,
    /// Accepted and ignored: instances have no data disks.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub release_prepaid_data_disks: Option<bool>,
}

/// AssociateInstancesKeyPairs and DisassociateInstancesKeyPairs request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct InstancesKeyPairsRequest {
    /// At most 100.
    pub instance_ids: Vec<String>,
    /// At most 100.
    pub key_ids: Vec<String>,
    /// Stop a running instance first (default false: only stopped instances).
    #[serde(default, deserialize_with = "lenient_bool")]
    pub force_stop: Option<bool>,
}

pub use keyplane_core::compute::parse_instance_type;

/// Size in GiB of a sandbox image (what its system disk answers).
pub fn image_size(os: OsType) -> i64 {
    match os {
        OsType::Linux => 20,
        OsType::Windows => 50,
    }
}

/// When the sandbox images were published (they are the same for every account).
const IMAGE_CREATED_AT: i64 = 1_686_355_200; // 2023-06-10T00:00:00Z, Debian 12's release.

/// `Image` as answered.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageOut {
    /// `img-xxxxxxxx`.
    pub image_id: String,
    /// OS name: tells Linux from Windows, as Platform does.
    pub os_name: String,
    /// Always `PUBLIC_IMAGE`.
    pub image_type: &'static str,
    /// Publication time.
    pub created_time: String,
    /// Name.
    pub image_name: String,
    /// Description.
    pub image_description: String,
    /// GiB.
    pub image_size: i64,
    /// Always `x86_64`.
    pub architecture: &'static str,
    /// Always `NORMAL`.
    pub image_state: &'static str,
    /// `Debian` or `Windows`.
    pub platform: String,
    /// Empty for official images.
    pub image_creator: &'static str,
    /// Always `OFFICIAL`.
    pub image_source: &'static str,
    /// Null: not being copied.
    pub sync_percent: Option<i64>,
    /// Whether UserData runs at first boot: on the Linux image (the sandbox's init runs it,
    /// as cloud-init does, logging to /var/log/cloud-init-output.log).
    pub is_support_cloudinit: bool,
    /// No snapshots.
    pub snapshot_set: Vec<serde_json::Value>,
    /// No tags.
    pub tags: Vec<Tag>,
    /// `TencentCloud`.
    pub license_type: &'static str,
    /// Empty.
    pub image_family: &'static str,
    /// Not deprecated.
    pub image_deprecated: bool,
    /// Empty.
    pub cdc_cache_status: &'static str,
}

impl ImageOut {
    /// The wire form of a sandbox image.
    pub fn from_domain(image: Image) -> ImageOut {
        ImageOut {
            image_id: image.id,
            os_name: image.os_name,
            image_type: "PUBLIC_IMAGE",
            created_time: iso8601(IMAGE_CREATED_AT),
            image_name: image.name,
            image_description: image.description,
            image_size: image.size_gib,
            architecture: "x86_64",
            image_state: "NORMAL",
            platform: image.platform,
            image_creator: "",
            image_source: "OFFICIAL",
            sync_percent: None,
            is_support_cloudinit: image.os == OsType::Linux,
            snapshot_set: vec![],
            tags: vec![],
            license_type: "TencentCloud",
            image_family: "",
            image_deprecated: false,
            cdc_cache_status: "",
        }
    }
}

/// `Placement` as answered.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PlacementOut {
    /// Zone.
    pub zone: String,
    /// Always the default project 0.
    pub project_id: i64,
    /// No dedicated hosts.
    pub host_id: Option<String>,
}

/// `SystemDisk` as answered: a nominal disk the size of the image.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SystemDiskOut {
    /// `CLOUD_PREMIUM`.
    pub disk_type: &'static str,
    /// `disk-` and the instance id's suffix.
    pub disk_id: String,
    /// GiB.
    pub disk_size: i64,
}

/// `InternetAccessible` as answered: no public bandwidth.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct InternetAccessibleOut {
    /// `TRAFFIC_POSTPAID_BY_HOUR`.
    pub internet_charge_type: &'static str,
    /// 0 Mbps.
    pub internet_max_bandwidth_out: i64,
    /// No public address.
    pub public_ip_assigned: bool,
}

/// `LoginSettings` as answered: only the bound keys.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct LoginSettingsOut {
    /// Never answered.
    pub password: Option<String>,
    /// Bound key pairs; null when none.
    pub key_ids: Option<Vec<String>>,
    /// Never answered.
    pub keep_image_login: Option<String>,
}

/// The DescribeInstances answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeInstancesOut {
    /// Matches before paging.
    pub total_count: usize,
    /// The page.
    pub instance_set: Vec<InstanceOut>,
}

/// `Instance` as answered by DescribeInstances.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct InstanceOut {
    /// Zone and project.
    pub placement: PlacementOut,
    /// `ins-xxxxxxxx`.
    pub instance_id: String,
    /// Type label.
    pub instance_type: String,
    /// Cores, read from the type.
    #[serde(rename = "CPU")]
    pub cpu: i64,
    /// GiB, read from the type.
    pub memory: i64,
    /// `NORMAL`.
    pub restrict_state: &'static str,
    /// Name.
    pub instance_name: String,
    /// `POSTPAID_BY_HOUR`.
    pub instance_charge_type: &'static str,
    /// Nominal system disk.
    pub system_disk: SystemDiskOut,
    /// None.
    pub data_disks: Option<Vec<serde_json::Value>>,
    /// The instance's own address.
    pub private_ip_addresses: Vec<String>,
    /// None.
    pub public_ip_addresses: Option<Vec<String>>,
    /// No public bandwidth.
    pub internet_accessible: InternetAccessibleOut,
    /// No VPC.
    pub virtual_private_cloud: Option<serde_json::Value>,
    /// Image.
    pub image_id: String,
    /// Null for pay-as-you-go.
    pub renew_flag: Option<String>,
    /// Creation time.
    pub created_time: String,
    /// Null for pay-as-you-go.
    pub expired_time: Option<String>,
    /// OS name.
    pub os_name: String,
    /// None.
    pub security_group_ids: Vec<String>,
    /// Bound keys.
    pub login_settings: LoginSettingsOut,
    /// Lifecycle state.
    pub instance_state: &'static str,
    /// None.
    pub tags: Vec<Tag>,
    /// `NOT_APPLICABLE` unless stopped (`KEEP_CHARGING`).
    pub stop_charging_mode: &'static str,
    /// Stable per instance.
    pub uuid: String,
    /// Latest operation (wire action name).
    pub latest_operation: Option<String>,
    /// `OPERATING`, `SUCCESS` or `FAILED`.
    pub latest_operation_state: Option<&'static str>,
    /// RequestId of the call that started it.
    pub latest_operation_request_id: Option<String>,
    /// Empty.
    pub disaster_recover_group_id: &'static str,
    /// None.
    #[serde(rename = "IPv6Addresses")]
    pub ipv6_addresses: Option<Vec<String>>,
    /// Empty.
    pub cam_role_name: &'static str,
    /// Empty.
    pub hpc_cluster_id: &'static str,
    /// None.
    pub rdma_ip_addresses: Option<Vec<String>>,
    /// Empty.
    pub dedicated_cluster_id: &'static str,
    /// `NOTISOLATED`.
    pub isolated_source: &'static str,
    /// None.
    pub disaster_recover_group_ids: Vec<String>,
    /// No GPU.
    #[serde(rename = "GPUInfo")]
    pub gpu_info: Option<serde_json::Value>,
    /// `TencentCloud`.
    pub license_type: &'static str,
    /// Termination protection is not kept.
    pub disable_api_termination: bool,
    /// The instance id (host names given at creation are not kept).
    pub host_name: String,
    /// `root` (Linux) or `Administrator` (Windows).
    pub default_login_user: &'static str,
    /// The SSH port (Linux) or 3389 (Windows).
    pub default_login_port: i64,
    /// Why the latest operation failed.
    pub latest_operation_error_msg: Option<String>,
    /// Off.
    pub enable_jumbo_frame: bool,
    /// None.
    pub metadata: Option<serde_json::Value>,
    /// None.
    #[serde(rename = "PublicIPv6Addresses")]
    pub public_ipv6_addresses: Option<Vec<String>>,
    /// Not reported.
    pub cpu_topology: Option<serde_json::Value>,
    /// Not in a partition placement group.
    pub partition_number: i64,
}

/// A stable UUID for an instance, derived from its id (the one the `uuid` filter matches).
pub use keyplane_core::query::instance_uuid;

impl InstanceOut {
    /// The wire form of an instance.
    pub fn from_domain(i: Instance) -> InstanceOut {
        let (cpu, memory) = parse_instance_type(&i.instance_type).unwrap_or((1, 1));
        let suffix = i.id.trim_start_matches("ins-").to_string();
        let windows = i.os == OsType::Windows;
        InstanceOut {
            placement: PlacementOut {
                zone: i.zone,
                project_id: 0,
                host_id: None,
            },
            uuid: instance_uuid(&i.id),
            host_name: i.host_name.clone(),
            instance_id: i.id,
            instance_type: i.instance_type,
            cpu,
            memory,
            restrict_state: "NORMAL",
            instance_name: i.name,
            instance_charge_type: "POSTPAID_BY_HOUR",
            system_disk: SystemDiskOut {
                disk_type: "CLOUD_PREMIUM",
                disk_id: format!("disk-{suffix}"),
                disk_size: image_size(i.os),
            },
            data_disks: None,
            private_ip_addresses: vec![i.private_ip],
            public_ip_addresses: None,
            internet_accessible: InternetAccessibleOut {
                internet_charge_type: "TRAFFIC_POSTPAID_BY_HOUR",
                internet_max_bandwidth_out: 0,
                public_ip_assigned: false,
            },
            virtual_private_cloud: None,
            image_id: i.image_id,
            renew_flag: None,
            created_time: iso8601(i.created_at),
            expired_time: None,
            os_name: i.os_name,
            security_group_ids: vec![],
            login_settings: LoginSettingsOut {
                password: None,
                key_ids: (!i.key_ids.is_empty()).then_some(i.key_ids),
                keep_image_login: None,
            },
            instance_state: i.state.as_str(),
            tags: vec![],
            stop_charging_mode: if i.state == InstanceState::Stopped {
                "KEEP_CHARGING"
            } else {
                "NOT_APPLICABLE"
            },
            latest_operation: i.latest_operation,
            latest_operation_state: i.latest_operation_state.map(|s| s.as_str()),
            latest_operation_request_id: i.latest_operation_request_id,
            disaster_recover_group_id: "",
            ipv6_addresses: None,
            cam_role_name: "",
            hpc_cluster_id: "",
            rdma_ip_addresses: None,
            dedicated_cluster_id: "",
            isolated_source: "NOTISOLATED",
            disaster_recover_group_ids: vec![],
            gpu_info: None,
            license_type: "TencentCloud",
            disable_api_termination: false,
            default_login_user: if windows { "Administrator" } else { "root" },
            default_login_port: if windows { 3389 } else { i64::from(i.ssh_port) },
            latest_operation_error_msg: i.latest_operation_error,
            enable_jumbo_frame: false,
            metadata: None,
            public_ipv6_addresses: None,
            cpu_topology: None,
            partition_number: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_types_give_cpu_and_memory() {
        assert_eq!(parse_instance_type("S5.SMALL1"), Some((1, 1)));
        assert_eq!(parse_instance_type("S5.MEDIUM4"), Some((2, 4)));
        assert_eq!(parse_instance_type("SA2.LARGE8"), Some((4, 8)));
        assert_eq!(parse_instance_type("S5se.2XLARGE16"), Some((8, 16)));
        assert_eq!(parse_instance_type("BMS5.24XLARGE384"), Some((96, 384)));
        for bad in [
            "S5",
            "s5.SMALL1",
            "S5.SMALL",
            "S5.HUGE4",
            "S5.1XLARGE8",
            ".SMALL1",
            "S5.SMALL0",
        ] {
            assert_eq!(parse_instance_type(bad), None, "{bad}");
        }
    }

    #[test]
    fn uuids_are_stable_and_shaped() {
        let a = instance_uuid("ins-abcdefgh");
        assert_eq!(a, instance_uuid("ins-abcdefgh"));
        assert_ne!(a, instance_uuid("ins-abcdefgi"));
        let parsed = uuid::Uuid::parse_str(&a).unwrap();
        assert_eq!(parsed.to_string(), a);
        assert_eq!(parsed.get_version(), Some(uuid::Version::Random));
        assert_eq!(parsed.get_variant(), uuid::Variant::RFC4122);
        // The same value as the uuid crate makes of the same bytes.
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(b"keyplane-instance-uuid:ins-abcdefgh");
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        assert_eq!(
            uuid::Builder::from_random_bytes(bytes)
                .into_uuid()
                .to_string(),
            a
        );
    }
}
