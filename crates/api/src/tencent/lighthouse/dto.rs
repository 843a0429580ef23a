//! Lighthouse 2020-03-24 request structures, every documented field declared (field names
//! exactly as the SDK models); unknown fields are refused with `UnknownParameter`.

// A request structure accepts every field the vendor documents, so that an SDK request
// carrying one is not refused as unknown; the sandbox acts on some of them only. Each
// structure with fields nobody reads says so with its own `#[expect(dead_code)]`, so that
// anything else in this module that falls out of use is still reported.

use crate::common::params::{lenient_bool, lenient_i64};
use crate::tencent::wire::{Filter, Tag};
use serde::Deserialize;

/// CreateKeyPair request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct CreateKeyPairRequest {
    /// Digits, letters and underscore, at most 25 characters.
    pub key_name: String,
    /// At most 10.
    #[serde(default)]
    pub tags: Vec<Tag>,
}

/// ImportKeyPair request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct ImportKeyPairRequest {
    /// Digits, letters and underscore, at most 25 characters.
    pub key_name: String,
    /// OpenSSH public key line.
    pub public_key: String,
    /// At most 10.
    #[serde(default)]
    pub tags: Vec<Tag>,
}

/// DescribeKeyPairs request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct DescribeKeyPairsRequest {
    /// Only these (at most 100; not with Filters).
    pub key_ids: Option<Vec<String>>,
    /// Offset (default 0).
    #[serde(default, deserialize_with = "lenient_i64")]
    pub offset: Option<i64>,
    /// Limit (default 20, at most 100).
    #[serde(default, deserialize_with = "lenient_i64")]
    pub limit: Option<i64>,
    /// `key-id`, `key-name` (fuzzy), `tag-key`, `tag-value`, `tag:<key>`.
    pub filters: Option<Vec<Filter>>,
}

/// DeleteKeyPairs request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct DeleteKeyPairsRequest {
    /// At most 10.
    pub key_ids: Vec<String>,
}

/// AssociateInstancesKeyPairs request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct AssociateInstancesKeyPairsRequest {
    /// At most 100.
    pub key_ids: Vec<String>,
    /// At most 100.
    pub instance_ids: Vec<String>,
    /// `OFFLINE` (the documented shut-down-then-bind, and the default) or `ONLINE`.
    pub associate_type: Option<String>,
    /// The user to bind for (`ONLINE` only); the sandbox image has only `root`.
    pub username: Option<String>,
}

/// DisassociateInstancesKeyPairs request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct DisassociateInstancesKeyPairsRequest {
    /// At most 100.
    pub key_ids: Vec<String>,
    /// At most 100.
    pub instance_ids: Vec<String>,
    /// `OFFLINE` (the default) or `ONLINE`.
    pub disassociate_type: Option<String>,
    /// The user the keys were bound for (`ONLINE` only).
    pub username: Option<String>,
}

/// DescribeBlueprints request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct DescribeBlueprintsRequest {
    /// Only these (at most 100; not with Filters).
    pub blueprint_ids: Option<Vec<String>>,
    /// Offset (default 0).
    #[serde(default, deserialize_with = "lenient_i64")]
    pub offset: Option<i64>,
    /// Limit (default 20, at most 100).
    #[serde(default, deserialize_with = "lenient_i64")]
    pub limit: Option<i64>,
    /// `blueprint-id`, `blueprint-type`, `platform-type`, `blueprint-name`,
    /// `blueprint-state`, `scene-id`, `tag-key`, `tag-value`, `tag:<key>`.
    pub filters: Option<Vec<Filter>>,
}

/// DescribeBundles request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct DescribeBundlesRequest {
    /// Only these (at most 100; not with Filters).
    pub bundle_ids: Option<Vec<String>>,
    /// Offset (default 0).
    #[serde(default, deserialize_with = "lenient_i64")]
    pub offset: Option<i64>,
    /// Limit (default 20, at most 100).
    #[serde(default, deserialize_with = "lenient_i64")]
    pub limit: Option<i64>,
    /// `bundle-id`, `support-platform-type`, `bundle-type`, `bundle-state`.
    pub filters: Option<Vec<Filter>>,
    /// Zones of the region: every sandbox bundle is sold in every zone; checked, then ignored.
    pub zones: Option<Vec<String>>,
    /// Only bundles that can run this blueprint.
    pub blueprint_id: Option<String>,
}

/// `InstanceChargePrepaid`: required by CreateInstances, checked, then not kept (nothing is
/// billed, so instances have no expiry).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct InstanceChargePrepaid {
    /// Months: 1-12, 24, 36, 48 or 60.
    #[serde(default, deserialize_with = "lenient_i64")]
    pub period: Option<i64>,
    /// `NOTIFY_AND_AUTO_RENEW`, `NOTIFY_AND_MANUAL_RENEW` (default) or
    /// `DISABLE_NOTIFY_AND_MANUAL_RENEW`.
    pub renew_flag: Option<String>,
}

/// `LoginConfiguration`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct LoginConfiguration {
    /// `YES` (no Password) or `NO` (Password given).
    pub auto_generate_password: Option<String>,
    /// The login password (not with KeyIds).
    pub password: Option<String>,
    /// At most 5 key pairs to bind at creation (not with Password; not on Windows).
    pub key_ids: Option<Vec<String>>,
}

/// `ContainerEnv`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
#[expect(
    dead_code,
    reason = "every documented field is accepted; the sandbox reads only some"
)]
pub struct ContainerEnv {
    /// Variable name.
    pub key: String,
    /// Value.
    pub value: String,
}

/// `DockerContainerPublishPort`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
#[expect(
    dead_code,
    reason = "every documented field is accepted; the sandbox reads only some"
)]
pub struct DockerContainerPublishPort {
    /// Host port.
    #[serde(default, deserialize_with = "lenient_i64")]
    pub host_port: Option<i64>,
    /// Container port.
    #[serde(default, deserialize_with = "lenient_i64")]
    pub container_port: Option<i64>,
    /// Host address.
    pub ip: Option<String>,
    /// `tcp` or `udp`.
    pub protocol: Option<String>,
}

/// `DockerContainerVolume`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
#[expect(
    dead_code,
    reason = "every documented field is accepted; the sandbox reads only some"
)]
pub struct DockerContainerVolume {
    /// Path in the container.
    pub container_path: String,
    /// Path on the host.
    pub host_path: Option<String>,
}

/// `DockerContainerConfiguration`: declared so requests decode; any container is refused
/// (sandbox instances run no Docker).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
#[expect(
    dead_code,
    reason = "every documented field is accepted; the sandbox reads only some"
)]
pub struct DockerContainerConfiguration {
    /// Image.
    pub container_image: String,
    /// Name.
    pub container_name: Option<String>,
    /// Environment.
    pub envs: Option<Vec<ContainerEnv>>,
    /// Published ports.
    pub publish_ports: Option<Vec<DockerContainerPublishPort>>,
    /// Volumes.
    pub volumes: Option<Vec<DockerContainerVolume>>,
    /// Command.
    pub command: Option<String>,
    /// `no`, `on-failure`, `on-failure:N` or `always`.
    pub restart_policy: Option<String>,
}

/// `Command` (a TAT command run after creation): declared so requests decode; refused
/// (sandbox instances run no automation agent).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
#[expect(
    dead_code,
    reason = "every documented field is accepted; the sandbox reads only some"
)]
pub struct Command {
    /// Base64 command text.
    pub content: String,
    /// Seconds (default 60).
    #[serde(default, deserialize_with = "lenient_i64")]
    pub timeout: Option<i64>,
    /// Working directory.
    pub working_directory: Option<String>,
    /// User to run as.
    pub username: Option<String>,
}

/// CreateInstances request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
#[expect(
    dead_code,
    reason = "every documented field is accepted; the sandbox reads only some"
)]
pub struct CreateInstancesRequest {
    /// A sandbox bundle (DescribeBundles).
    pub bundle_id: String,
    /// A sandbox blueprint (DescribeBlueprints).
    pub blueprint_id: String,
    /// Required; checked, then not kept.
    pub instance_charge_prepaid: Option<InstanceChargePrepaid>,
    /// Display name (at most 60 characters).
    pub instance_name: Option<String>,
    /// 1-30 (default 1).
    #[serde(default, deserialize_with = "lenient_i64")]
    pub instance_count: Option<i64>,
    /// Zones of the region; the first is used (default: a zone of the region).
    pub zones: Option<Vec<String>>,
    /// Check only: the answer carries only the RequestId.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub dry_run: Option<bool>,
    /// Idempotency token, at most 64 characters: a repeated call returns the first one's instances.
    pub client_token: Option<String>,
    /// Password or key pairs.
    pub login_configuration: Option<LoginConfiguration>,
    /// Refused when not empty: no Docker in the sandbox.
    pub containers: Option<Vec<DockerContainerConfiguration>>,
    /// Vouchers: meaningless here (nothing is billed); accepted and ignored.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub auto_voucher: Option<bool>,
    /// Firewall template: none exist, so any well-formed id is not found.
    pub firewall_template_id: Option<String>,
    /// At most 10; accepted and not kept (instances carry no tags here).
    pub tags: Option<Vec<Tag>>,
    /// Refused: no automation agent in the sandbox.
    pub init_command: Option<Command>,
    /// Domain: accepted (one instance only, as documented) and ignored: no DNS here.
    pub domain_name: Option<String>,
    /// Subdomain: as DomainName.
    pub subdomain: Option<String>,
}

/// DescribeInstances request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct DescribeInstancesRequest {
    /// Only these (at most 100; not with Filters).
    pub instance_ids: Option<Vec<String>>,
    /// `instance-name`, `private-ip-address`, `public-ip-address`, `zone`, `instance-state`,
    /// `tag-key`, `tag-value`, `tag:<key>`, `bundle-id`.
    pub filters: Option<Vec<Filter>>,
    /// Offset (default 0).
    #[serde(default, deserialize_with = "lenient_i64")]
    pub offset: Option<i64>,
    /// Limit (default 20, at most 100).
    #[serde(default, deserialize_with = "lenient_i64")]
    pub limit: Option<i64>,
    /// `EXPIRED_TIME`.
    pub order_field: Option<String>,
    /// `ASC` (default) or `DESC`; needs OrderField.
    pub order: Option<String>,
}

/// StartInstances and TerminateInstances request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct InstanceIdsRequest {
    /// At most 100.
    pub instance_ids: Vec<String>,
}

/// StopInstances and RebootInstances request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct StopInstancesRequest {
    /// At most 100.
    pub instance_ids: Vec<String>,
    /// `SOFT`, `HARD` or `SOFT_FIRST` (default).
    pub stop_type: Option<String>,
}
