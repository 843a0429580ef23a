//! The RunInstances request, with every field of the SDK model (tencentcloud-sdk-python-cvm
//! 3.1.178), so that a documented field is never `UnknownParameter` and an undocumented one
//! always is. Structures whose meaning the sandbox has no equivalent for (disks, networks,
//! billing, placement groups, ...) are accepted and ignored; their doc comments say so.

// A request structure accepts every field the vendor documents, so that an SDK request
// carrying one is not refused as unknown; the sandbox acts on some of them only. Each
// structure with fields nobody reads says so with its own `#[expect(dead_code)]`, so that
// anything else in this module that falls out of use is still reported.

use super::TagSpecification;
use crate::common::params::{lenient_bool, lenient_i64};
use serde::Deserialize;

/// RunInstances request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
#[expect(
    dead_code,
    reason = "every documented field is accepted; the sandbox reads only some"
)]
pub struct RunInstancesRequest {
    /// `POSTPAID_BY_HOUR` (default). The other documented modes are refused.
    pub instance_charge_type: Option<String>,
    /// Prepaid period: accepted and ignored (prepaid billing is refused anyway).
    pub instance_charge_prepaid: Option<InstanceChargePrepaid>,
    /// Zone (required) and project (only 0).
    pub placement: Option<Placement>,
    /// Instance type label, e.g. `S5.MEDIUM4`; CPU and memory are read from it.
    pub instance_type: Option<String>,
    /// Image (required): `img-kpdeb12x` (Debian sandbox) or `img-kpwin22x` (Windows record).
    pub image_id: Option<String>,
    /// Accepted and ignored: the sandbox has no block devices.
    pub system_disk: Option<SystemDisk>,
    /// Accepted and ignored: the sandbox has no block devices.
    pub data_disks: Option<Vec<DataDisk>>,
    /// Accepted and ignored: instances get a loopback address of the Keyplane host.
    pub virtual_private_cloud: Option<VirtualPrivateCloud>,
    /// Accepted and ignored: no public addresses are handed out.
    pub internet_accessible: Option<InternetAccessible>,
    /// How many instances, 1..=500 (default 1); the account quota applies too.
    #[serde(default, deserialize_with = "lenient_i64")]
    pub instance_count: Option<i64>,
    /// Checked against InstanceCount; every instance is created or none.
    #[serde(default, deserialize_with = "lenient_i64")]
    pub min_count: Option<i64>,
    /// Display name, with `{R:x}` / `{R:x,F:y}` patterns.
    pub instance_name: Option<String>,
    /// Password and/or key pairs.
    pub login_settings: Option<LoginSettings>,
    /// Accepted and ignored: the sandbox has no security groups.
    pub security_group_ids: Option<Vec<String>>,
    /// Accepted and ignored: no monitoring or security agents.
    pub enhanced_service: Option<EnhancedService>,
    /// Idempotency token, at most 64 characters: a repeated call returns the first one's instances.
    pub client_token: Option<String>,
    /// Host name, checked against the documented rule.
    pub host_name: Option<String>,
    /// Accepted and ignored: no scheduled termination.
    pub action_timer: Option<ActionTimer>,
    /// Accepted and ignored: no placement groups.
    pub disaster_recover_group_ids: Option<Vec<String>>,
    /// Accepted and ignored: instances carry no tags here.
    pub tag_specification: Option<Vec<TagSpecification>>,
    /// Accepted and ignored: no spot market.
    pub instance_market_options: Option<InstanceMarketOptionsRequest>,
    /// Base64, at most 16 KiB decoded; checked, then ignored (no cloud-init in the sandbox).
    pub user_data: Option<String>,
    /// Accepted and ignored.
    pub metadata: Option<Metadata>,
    /// Validate only: every check runs, then `DryRunOperation`.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub dry_run: Option<bool>,
    /// Accepted and ignored.
    pub cpu_topology: Option<CpuTopology>,
    /// Accepted and ignored: no CAM roles.
    pub cam_role_name: Option<String>,
    /// Accepted and ignored.
    pub hpc_cluster_id: Option<String>,
    /// No launch templates exist here: any template is `LaunchTemplateNotFound`.
    pub launch_template: Option<LaunchTemplate>,
    /// Accepted and ignored.
    pub dedicated_cluster_id: Option<String>,
    /// Accepted and ignored.
    pub chc_ids: Option<Vec<String>>,
    /// Accepted and ignored.
    #[serde(default, deserialize_with = "lenient_i64")]
    pub partition_number: Option<i64>,
    /// Accepted and ignored: termination protection is not kept.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub disable_api_termination: Option<bool>,
    /// Accepted and ignored.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub enable_jumbo_frame: Option<bool>,
    /// Accepted and ignored.
    pub network_interfaces: Option<Vec<NetworkInterfaces>>,
}

/// `InstanceChargePrepaid`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
#[expect(
    dead_code,
    reason = "every documented field is accepted; the sandbox reads only some"
)]
pub struct InstanceChargePrepaid {
    /// Months.
    #[serde(default, deserialize_with = "lenient_i64")]
    pub period: Option<i64>,
    /// Renewal flag.
    pub renew_flag: Option<String>,
}

/// `Placement` (as a request field).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
#[expect(
    dead_code,
    reason = "every documented field is accepted; the sandbox reads only some"
)]
pub struct Placement {
    /// Zone, `<region>-<n>`.
    pub zone: Option<String>,
    /// Project; only the default project 0 exists.
    #[serde(default, deserialize_with = "lenient_i64")]
    pub project_id: Option<i64>,
    /// Ignored.
    pub host_ids: Option<Vec<String>>,
    /// Ignored (an answer-only field).
    pub host_id: Option<String>,
    /// Ignored.
    pub dedicated_resource_pack_tenancy: Option<String>,
    /// Ignored.
    pub dedicated_resource_pack_ids: Option<Vec<String>>,
    /// Ignored (an answer-only field).
    pub rack_id: Option<String>,
}

/// `SystemDisk` (ignored).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
#[expect(
    dead_code,
    reason = "every documented field is accepted; the sandbox reads only some"
)]
pub struct SystemDisk {
    /// Disk type.
    pub disk_type: Option<String>,
    /// Disk id.
    pub disk_id: Option<String>,
    /// GiB.
    #[serde(default, deserialize_with = "lenient_i64")]
    pub disk_size: Option<i64>,
    /// CDC id.
    pub cdc_id: Option<String>,
    /// Disk name.
    pub disk_name: Option<String>,
    /// Encryption.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub encrypt: Option<bool>,
    /// KMS key.
    pub kms_key_id: Option<String>,
}

/// `DataDisk` (ignored).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
#[expect(
    dead_code,
    reason = "every documented field is accepted; the sandbox reads only some"
)]
pub struct DataDisk {
    /// GiB.
    #[serde(default, deserialize_with = "lenient_i64")]
    pub disk_size: Option<i64>,
    /// Disk type.
    pub disk_type: Option<String>,
    /// Disk id.
    pub disk_id: Option<String>,
    /// Released with the instance.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub delete_with_instance: Option<bool>,
    /// Snapshot to create from.
    pub snapshot_id: Option<String>,
    /// Encryption.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub encrypt: Option<bool>,
    /// KMS key.
    pub kms_key_id: Option<String>,
    /// MB/s.
    #[serde(default, deserialize_with = "lenient_i64")]
    pub throughput_performance: Option<i64>,
    /// CDC id.
    pub cdc_id: Option<String>,
    /// Burst performance.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub burst_performance: Option<bool>,
    /// Disk name.
    pub disk_name: Option<String>,
}

/// `VirtualPrivateCloud` (ignored).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
#[expect(
    dead_code,
    reason = "every documented field is accepted; the sandbox reads only some"
)]
pub struct VirtualPrivateCloud {
    /// VPC.
    pub vpc_id: Option<String>,
    /// Subnet.
    pub subnet_id: Option<String>,
    /// Gateway role.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub as_vpc_gateway: Option<bool>,
    /// Addresses.
    pub private_ip_addresses: Option<Vec<String>>,
    /// IPv6 count.
    #[serde(default, deserialize_with = "lenient_i64")]
    pub ipv6_address_count: Option<i64>,
}

/// `InternetAccessible` (ignored).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
#[expect(
    dead_code,
    reason = "every documented field is accepted; the sandbox reads only some"
)]
pub struct InternetAccessible {
    /// Network billing.
    pub internet_charge_type: Option<String>,
    /// Mbps.
    #[serde(default, deserialize_with = "lenient_i64")]
    pub internet_max_bandwidth_out: Option<i64>,
    /// Public address wanted.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub public_ip_assigned: Option<bool>,
    /// Bandwidth package.
    pub bandwidth_package_id: Option<String>,
    /// ISP.
    pub internet_service_provider: Option<String>,
    /// IPv4 address type.
    #[serde(rename = "IPv4AddressType")]
    pub ipv4_address_type: Option<String>,
    /// IPv6 address type.
    #[serde(rename = "IPv6AddressType")]
    pub ipv6_address_type: Option<String>,
    /// Anti-DDoS package.
    #[serde(rename = "AntiDDoSPackageId")]
    pub anti_ddos_package_id: Option<String>,
}

/// `LoginSettings`. Its Debug output never shows the password.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct LoginSettings {
    /// Root (Linux) or Administrator (Windows) password.
    pub password: Option<String>,
    /// Key pairs to bind at creation (Linux only).
    pub key_ids: Option<Vec<String>>,
    /// Keep the image's login settings (custom images only; none exist here).
    #[serde(default, deserialize_with = "lenient_bool")]
    pub keep_image_login: Option<bool>,
}

impl std::fmt::Debug for LoginSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginSettings")
            .field("password", &self.password.as_ref().map(|_| "[REDACTED]"))
            .field("key_ids", &self.key_ids)
            .field("keep_image_login", &self.keep_image_login)
            .finish()
    }
}

/// `EnhancedService` (ignored).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
#[expect(
    dead_code,
    reason = "every documented field is accepted; the sandbox reads only some"
)]
pub struct EnhancedService {
    /// Cloud security agent.
    pub security_service: Option<ServiceEnabled>,
    /// Cloud monitor agent.
    pub monitor_service: Option<ServiceEnabled>,
    /// Automation (TAT) agent.
    pub automation_service: Option<ServiceEnabled>,
}

/// `RunSecurityServiceEnabled` / `RunMonitorServiceEnabled` / `RunAutomationServiceEnabled`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
#[expect(
    dead_code,
    reason = "every documented field is accepted; the sandbox reads only some"
)]
pub struct ServiceEnabled {
    /// Enabled.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub enabled: Option<bool>,
}

/// `ActionTimer` (ignored).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
#[expect(
    dead_code,
    reason = "every documented field is accepted; the sandbox reads only some"
)]
pub struct ActionTimer {
    /// Timer action.
    pub timer_action: Option<String>,
    /// When.
    pub action_time: Option<String>,
    /// Extras.
    pub externals: Option<Externals>,
    /// Timer id.
    pub action_timer_id: Option<String>,
    /// Status.
    pub status: Option<String>,
    /// Instance.
    pub instance_id: Option<String>,
}

/// `Externals` (ignored).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
#[expect(
    dead_code,
    reason = "every documented field is accepted; the sandbox reads only some"
)]
pub struct Externals {
    /// Release the EIP.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub release_address: Option<bool>,
    /// Networks not supported.
    pub unsupport_networks: Option<Vec<String>>,
    /// Storage block.
    pub storage_block_attr: Option<StorageBlock>,
}

/// `StorageBlock` (ignored).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
#[expect(
    dead_code,
    reason = "every documented field is accepted; the sandbox reads only some"
)]
pub struct StorageBlock {
    /// Type.
    pub r#type: Option<String>,
    /// Minimum size.
    #[serde(default, deserialize_with = "lenient_i64")]
    pub min_size: Option<i64>,
    /// Maximum size.
    #[serde(default, deserialize_with = "lenient_i64")]
    pub max_size: Option<i64>,
}

/// `InstanceMarketOptionsRequest` (ignored).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
#[expect(
    dead_code,
    reason = "every documented field is accepted; the sandbox reads only some"
)]
pub struct InstanceMarketOptionsRequest {
    /// Spot options.
    pub spot_options: Option<SpotMarketOptions>,
    /// Market type.
    pub market_type: Option<String>,
}

/// `SpotMarketOptions` (ignored).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
#[expect(
    dead_code,
    reason = "every documented field is accepted; the sandbox reads only some"
)]
pub struct SpotMarketOptions {
    /// Bid.
    pub max_price: Option<String>,
    /// Spot request type.
    pub spot_instance_type: Option<String>,
}

/// `Metadata` (ignored).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
#[expect(
    dead_code,
    reason = "every documented field is accepted; the sandbox reads only some"
)]
pub struct Metadata {
    /// Items.
    pub items: Option<Vec<MetadataItem>>,
}

/// `MetadataItem` (ignored).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
#[expect(
    dead_code,
    reason = "every documented field is accepted; the sandbox reads only some"
)]
pub struct MetadataItem {
    /// Key.
    pub key: Option<String>,
    /// Value.
    pub value: Option<String>,
}

/// `CpuTopology` (ignored).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
#[expect(
    dead_code,
    reason = "every documented field is accepted; the sandbox reads only some"
)]
pub struct CpuTopology {
    /// Cores.
    #[serde(default, deserialize_with = "lenient_i64")]
    pub core_count: Option<i64>,
    /// Threads per core.
    #[serde(default, deserialize_with = "lenient_i64")]
    pub thread_per_core: Option<i64>,
}

/// `LaunchTemplate`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
#[expect(
    dead_code,
    reason = "every documented field is accepted; the sandbox reads only some"
)]
pub struct LaunchTemplate {
    /// `lt-xxxxxxxx`.
    pub launch_template_id: Option<String>,
    /// Version.
    #[serde(default, deserialize_with = "lenient_i64")]
    pub launch_template_version: Option<i64>,
}

/// `NetworkInterfaces` (ignored).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
#[expect(
    dead_code,
    reason = "every documented field is accepted; the sandbox reads only some"
)]
pub struct NetworkInterfaces {
    /// Interface type.
    pub interface_type: Option<String>,
    /// VPC.
    pub vpc_id: Option<String>,
    /// Subnet.
    pub subnet_id: Option<String>,
    /// Address count.
    #[serde(default, deserialize_with = "lenient_i64")]
    pub private_ipv4_address_count: Option<i64>,
    /// ENI id.
    pub network_interface_id: Option<String>,
    /// Security groups.
    pub security_group_ids: Option<Vec<String>>,
    /// Released with the instance.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub delete_with_instance: Option<bool>,
}
