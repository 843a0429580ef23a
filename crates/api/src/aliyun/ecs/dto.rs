//! Wire structures of the ECS dialect: the documented request fields of each action (field
//! names as the SDK models spell them) and the answer shapes.
//!
//! Like ECS, undeclared parameters are ignored rather than refused (the RPC gateway drops
//! what an API does not define), so the request structs do not deny unknown fields; every
//! declared field is type-checked.

// A request structure accepts every field the vendor documents, so that an SDK request
// carrying one is not refused as unknown; the sandbox acts on some of them only. Each
// structure with fields nobody reads says so with its own `#[expect(dead_code)]`, so that
// anything else in this module that falls out of use is still reported.

use crate::common::params::{lenient_bool, lenient_i64};
use keyplane_core::instance::{Image, Instance, InstanceState, OsType};
use keyplane_core::keypair::KeyPair;
use serde::Deserialize;
use serde_json::{json, Value};

/// `Tag.N.Key` / `Tag.N.Value`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TagIn {
    /// Key.
    #[serde(default)]
    pub key: Option<String>,
    /// Value.
    #[serde(default)]
    pub value: Option<String>,
}

/// CreateKeyPair and ImportKeyPair (`PublicKeyBody` only on import).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
#[expect(
    dead_code,
    reason = "every documented field is accepted; the sandbox reads only some"
)]
pub struct NewKeyPairRequest {
    /// Region.
    pub region_id: String,
    /// Name.
    pub key_pair_name: String,
    /// Public key (ImportKeyPair).
    #[serde(default)]
    pub public_key_body: Option<String>,
    /// Resource group (accepted; resource groups are not modelled).
    #[serde(default)]
    pub resource_group_id: Option<String>,
    /// Tags.
    #[serde(default)]
    pub tag: Vec<TagIn>,
}

/// DescribeKeyPairs.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeKeyPairsRequest {
    /// Region.
    pub region_id: String,
    /// Name, `*` matching any run of characters.
    #[serde(default)]
    pub key_pair_name: Option<String>,
    /// MD5 fingerprint (with or without colons).
    #[serde(default)]
    pub key_pair_finger_print: Option<String>,
    /// Page (from 1).
    #[serde(default, deserialize_with = "lenient_i64")]
    pub page_number: Option<i64>,
    /// Page size (1 to 50, default 10).
    #[serde(default, deserialize_with = "lenient_i64")]
    pub page_size: Option<i64>,
    /// Include `PublicKey` in the answer.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub include_public_key: Option<bool>,
    /// Resource group (accepted; nothing belongs to one, so it matches nothing).
    #[serde(default)]
    pub resource_group_id: Option<String>,
    /// Tags that must all match.
    #[serde(default)]
    pub tag: Vec<TagIn>,
}

/// DeleteKeyPairs.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteKeyPairsRequest {
    /// Region.
    pub region_id: String,
    /// JSON array of names.
    pub key_pair_names: String,
}

/// AttachKeyPair and DetachKeyPair.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BindKeyPairRequest {
    /// Region.
    pub region_id: String,
    /// The key pair.
    pub key_pair_name: String,
    /// JSON array of at most 50 instance ids.
    pub instance_ids: String,
}

/// DescribeImages.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeImagesRequest {
    /// Region.
    pub region_id: String,
    /// Image ids, comma-separated.
    #[serde(default)]
    pub image_id: Option<String>,
    /// Name, fuzzy.
    #[serde(default)]
    pub image_name: Option<String>,
    /// `linux` or `windows`.
    #[serde(default, rename = "OSType")]
    pub os_type: Option<String>,
    /// `system`, `self`, `others`, `marketplace`.
    #[serde(default)]
    pub image_owner_alias: Option<String>,
    /// `x86_64`, `i386`, `arm64`.
    #[serde(default)]
    pub architecture: Option<String>,
    /// Image status filter.
    #[serde(default)]
    pub status: Option<String>,
    /// Page (from 1).
    #[serde(default, deserialize_with = "lenient_i64")]
    pub page_number: Option<i64>,
    /// Page size (1 to 100, default 10).
    #[serde(default, deserialize_with = "lenient_i64")]
    pub page_size: Option<i64>,
    /// Dry run.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub dry_run: Option<bool>,
}

/// RunInstances and CreateInstance (`Amount`/`MinAmount` only on RunInstances).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
#[expect(
    dead_code,
    reason = "every documented field is accepted; the sandbox reads only some"
)]
pub struct LaunchRequest {
    /// Region.
    pub region_id: String,
    /// Image.
    #[serde(default)]
    pub image_id: Option<String>,
    /// Instance type (`ecs.g7.large`).
    #[serde(default)]
    pub instance_type: Option<String>,
    /// Zone.
    #[serde(default)]
    pub zone_id: Option<String>,
    /// Display name (`name[begin,digits]` numbers a batch).
    #[serde(default)]
    pub instance_name: Option<String>,
    /// Host name.
    #[serde(default)]
    pub host_name: Option<String>,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
    /// Login password.
    #[serde(default)]
    pub password: Option<String>,
    /// Use the image's preset password.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub password_inherit: Option<bool>,
    /// Key pair to bind (ignored for Windows images, as documented).
    #[serde(default)]
    pub key_pair_name: Option<String>,
    /// User data, base64 (at most 32 KiB before encoding), run at the first boot.
    #[serde(default)]
    pub user_data: Option<String>,
    /// Instances to create (RunInstances; 1 to 100).
    #[serde(default, deserialize_with = "lenient_i64")]
    pub amount: Option<i64>,
    /// Fewest acceptable (RunInstances).
    #[serde(default, deserialize_with = "lenient_i64")]
    pub min_amount: Option<i64>,
    /// `PostPaid` (default) or `PrePaid`.
    #[serde(default)]
    pub instance_charge_type: Option<String>,
    /// Idempotence token (at most 64 ASCII characters).
    #[serde(default)]
    pub client_token: Option<String>,
    /// Dry run.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub dry_run: Option<bool>,
    /// Tags.
    #[serde(default)]
    pub tag: Vec<TagIn>,
    /// Security group (accepted; not modelled).
    #[serde(default)]
    pub security_group_id: Option<String>,
    /// vSwitch (accepted; not modelled).
    #[serde(default, rename = "VSwitchId")]
    pub v_switch_id: Option<String>,
    /// Outbound bandwidth (accepted; 0 to 100).
    #[serde(default, deserialize_with = "lenient_i64")]
    pub internet_max_bandwidth_out: Option<i64>,
}

/// DescribeInstances.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeInstancesRequest {
    /// Region.
    pub region_id: String,
    /// JSON array of at most 100 ids.
    #[serde(default)]
    pub instance_ids: Option<String>,
    /// Name, `*` wildcards.
    #[serde(default)]
    pub instance_name: Option<String>,
    /// `Pending`, `Running`, `Starting`, `Stopping`, `Stopped`.
    #[serde(default)]
    pub status: Option<String>,
    /// Zone.
    #[serde(default)]
    pub zone_id: Option<String>,
    /// Image.
    #[serde(default)]
    pub image_id: Option<String>,
    /// Bound key pair.
    #[serde(default)]
    pub key_pair_name: Option<String>,
    /// Instance type.
    #[serde(default)]
    pub instance_type: Option<String>,
    /// JSON array of private addresses.
    #[serde(default)]
    pub private_ip_addresses: Option<String>,
    /// Page (from 1).
    #[serde(default, deserialize_with = "lenient_i64")]
    pub page_number: Option<i64>,
    /// Page size (1 to 100, default 10).
    #[serde(default, deserialize_with = "lenient_i64")]
    pub page_size: Option<i64>,
    /// Dry run.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub dry_run: Option<bool>,
}

/// StartInstance, StopInstance, RebootInstance and DeleteInstance.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct InstanceRequest {
    /// The instance.
    pub instance_id: String,
    /// Region (sent by aliyun-python-sdk-core; the instance's region must match it).
    #[serde(default)]
    pub region_id: Option<String>,
    /// Hard stop (StopInstance, RebootInstance, DeleteInstance with Force).
    #[serde(default, deserialize_with = "lenient_bool")]
    pub force_stop: Option<bool>,
    /// Release a running instance (DeleteInstance).
    #[serde(default, deserialize_with = "lenient_bool")]
    pub force: Option<bool>,
    /// Dry run.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub dry_run: Option<bool>,
    /// `KeepCharging` / `StopCharging` (StopInstance).
    #[serde(default)]
    pub stopped_mode: Option<String>,
}

/// `aa:bb:...`: the RFC 4716 MD5 fingerprint format ECS answers in, from lower-case hex.
pub fn fingerprint(md5_hex: &str) -> String {
    md5_hex
        .as_bytes()
        .chunks(2)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(":")
}

/// ECS times: UTC to the minute, `2024-01-01T00:00Z`.
pub fn minute_time(ts: i64) -> String {
    crate::common::times::TimeFormat::ISO_MINUTES.format(ts)
}

/// ECS's word for an instance state.
pub fn status_name(state: InstanceState) -> &'static str {
    match state {
        InstanceState::Pending => "Pending",
        InstanceState::Running => "Running",
        InstanceState::Starting => "Starting",
        InstanceState::Stopping => "Stopping",
        InstanceState::Stopped => "Stopped",
        // Why: ECS has no failed-launch state; an instance whose sandbox could not start is
        // reported as stopped (starting it again retries).
        InstanceState::LaunchFailed => "Stopped",
        // A reboot is a stop then a start; release stops first.
        InstanceState::Rebooting => "Starting",
        InstanceState::Terminating => "Stopping",
    }
}

fn tags_out(tags: &[(String, String)]) -> Value {
    let list: Vec<Value> = tags
        .iter()
        .map(|(k, v)| json!({ "TagKey": k, "TagValue": v }))
        .collect();
    json!({ "Tag": list })
}

/// A key pair as DescribeKeyPairs answers it.
pub fn key_pair_out(kp: &KeyPair, include_public_key: bool) -> Value {
    let mut v = json!({
        "KeyPairName": kp.name,
        "KeyPairFingerPrint": fingerprint(&kp.fingerprint_md5),
        "CreationTime": minute_time(kp.created_at),
        "ResourceGroupId": "",
        "Tags": tags_out(&kp.tags),
    });
    if include_public_key {
        v["PublicKey"] = Value::String(kp.public_key.clone());
    }
    v
}

/// An image as DescribeImages answers it.
pub fn image_out(img: &Image, created_at: i64) -> Value {
    let os_type = match img.os {
        OsType::Linux => "linux",
        OsType::Windows => "windows",
    };
    json!({
        "ImageId": img.id,
        "ImageName": img.name,
        "ImageFamily": "",
        "ImageVersion": "1",
        "Description": img.description,
        "OSType": os_type,
        "OSName": img.os_name,
        "OSNameEn": img.os_name,
        "Platform": img.platform,
        "Architecture": "x86_64",
        "BootMode": "BIOS",
        "Status": "Available",
        "Usage": "instance",
        "ImageOwnerAlias": "system",
        "IsPublic": true,
        "IsSelfShared": "",
        "IsCopied": false,
        "IsSubscribed": false,
        "IsSupportCloudinit": true,
        "IsSupportIoOptimized": true,
        "Progress": "100%",
        "Size": img.size_gib,
        "CreationTime": minute_time(created_at),
        "ProductCode": "",
        "Tags": { "Tag": [] },
        "DiskDeviceMappings": { "DiskDeviceMapping": [] },
    })
}

/// An instance as DescribeInstances answers it; `key_name` is the bound key pair's name.
pub fn instance_out(inst: &Instance, key_name: &str) -> Value {
    let os_type = match inst.os {
        OsType::Linux => "linux",
        OsType::Windows => "windows",
    };
    let name = if inst.name.is_empty() {
        inst.id.as_str()
    } else {
        inst.name.as_str()
    };
    let family = inst
        .instance_type
        .rsplit_once('.')
        .map(|(f, _)| f)
        .unwrap_or("");
    let (cpus, memory_mib) =
        keyplane_core::compute::instance_resources(inst.namespace, &inst.instance_type);
    json!({
        "InstanceId": inst.id,
        "InstanceName": name,
        "HostName": inst.host_name,
        "Description": "",
        "RegionId": inst.region,
        "ZoneId": inst.zone,
        "ImageId": inst.image_id,
        "InstanceType": inst.instance_type,
        "InstanceTypeFamily": family,
        "Cpu": cpus,
        "Memory": memory_mib,
        "Status": status_name(inst.state),
        "OSType": os_type,
        "OSName": inst.os_name,
        "OSNameEn": inst.os_name,
        "KeyPairName": key_name,
        "CreationTime": minute_time(inst.created_at),
        "StartTime": minute_time(inst.created_at),
        "ExpiredTime": "2099-12-31T15:59Z",
        "InstanceChargeType": "PostPaid",
        "InternetChargeType": "PayByTraffic",
        "InternetMaxBandwidthIn": 0,
        "InternetMaxBandwidthOut": 0,
        "InstanceNetworkType": "vpc",
        "IoOptimized": true,
        "DeletionProtection": false,
        "StoppedMode": "Not-applicable",
        "SerialNumber": inst.id,
        "VpcAttributes": {
            "PrivateIpAddress": { "IpAddress": [inst.private_ip] },
            "VpcId": "",
            "VSwitchId": "",
            "NatIpAddress": "",
        },
        "InnerIpAddress": { "IpAddress": [] },
        "PublicIpAddress": { "IpAddress": [] },
        "SecurityGroupIds": { "SecurityGroupId": [] },
        "OperationLocks": { "LockReason": [] },
        "Tags": { "Tag": [] },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyplane_core::query::wildcard_match;

    #[test]
    fn fingerprints_and_times_look_like_ecs() {
        assert_eq!(
            fingerprint("89f0ba62ac6d154213ea5ca62a079dfc"),
            "89:f0:ba:62:ac:6d:15:42:13:ea:5c:a6:2a:07:9d:fc"
        );
        assert_eq!(minute_time(1704067200), "2024-01-01T00:00Z");
    }

    #[test]
    fn wildcards() {
        assert!(wildcard_match("SshKey", "SshKey"));
        assert!(!wildcard_match("SshKey", "SshKey1"));
        assert!(wildcard_match("*SshKey", "mySshKey"));
        assert!(wildcard_match("SshKey*", "SshKey"));
        assert!(wildcard_match("*SshKey*", "aSshKeyb"));
        assert!(wildcard_match("a*b*c", "a-b-c"));
        assert!(!wildcard_match("a*b*c", "a-c-b"));
        assert!(!wildcard_match("ab*ba", "aba"));
        assert!(wildcard_match("*", "anything"));
    }
}
