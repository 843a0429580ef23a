//! DescribeBlueprints and DescribeBundles: the sandbox catalog. Two blueprints (a Debian
//! image that is a real OpenSSH sandbox, and a Windows image that is a record the Windows
//! rules act on) and a few bundles; nothing is billed, so every price is 0.

use super::dto::{DescribeBlueprintsRequest, DescribeBundlesRequest};
use super::{check_zone, Ctx, NS};
use crate::common::params::decode;
use crate::tencent::lighthouse::error::LighthouseError;
use crate::tencent::wire::{check_filters, filter_page, ids_or_filters, invalid, page};
use crate::tencent::wire::{iso8601, Filter, Tag};
use keyplane_core::ids::is_well_formed;
use keyplane_core::instance::{Image, OsType};
use keyplane_core::DomainError;
use serde::Serialize;
use serde_json::{json, Value};

/// When the sandbox blueprints were published: Debian 12's release, 2023-06-10T00:00:00Z.
const BLUEPRINT_CREATED_AT: i64 = 1_686_355_200;

/// A bundle (instance plan) of the sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SandboxBundle {
    /// `bundle_kp_...`.
    pub id: &'static str,
    /// Cores.
    pub cpu: i64,
    /// GiB.
    pub memory: i64,
    /// System disk, GiB.
    pub disk: i64,
    /// Monthly traffic, GiB.
    pub traffic: i64,
    /// Peak bandwidth, Mbps.
    pub bandwidth: i64,
    /// Runs Windows blueprints.
    pub windows: bool,
    /// `STARTER_BUNDLE` or `GENERAL_BUNDLE`.
    pub kind: &'static str,
    /// The type's description.
    pub kind_description: &'static str,
}

/// The sandbox bundles. Every one runs Linux; the larger ones run Windows records too.
pub const BUNDLES: &[SandboxBundle] = &[
    SandboxBundle {
        id: "bundle_kp_starter_01",
        cpu: 1,
        memory: 1,
        disk: 20,
        traffic: 200,
        bandwidth: 3,
        windows: false,
        kind: "STARTER_BUNDLE",
        kind_description: "入门型套餐",
    },
    SandboxBundle {
        id: "bundle_kp_gen_02",
        cpu: 2,
        memory: 2,
        disk: 50,
        traffic: 300,
        bandwidth: 4,
        windows: true,
        kind: "GENERAL_BUNDLE",
        kind_description: "通用型套餐",
    },
    SandboxBundle {
        id: "bundle_kp_gen_04",
        cpu: 2,
        memory: 4,
        disk: 80,
        traffic: 500,
        bandwidth: 5,
        windows: true,
        kind: "GENERAL_BUNDLE",
        kind_description: "通用型套餐",
    },
];

const BUNDLE_TYPES: &[&str] = &[
    "GENERAL_BUNDLE",
    "STORAGE_BUNDLE",
    "ENTERPRISE_BUNDLE",
    "EXCLUSIVE_BUNDLE",
    "BEFAST_BUNDLE",
    "STARTER_BUNDLE",
    "CAREFREE_BUNDLE",
    "RAZOR_SPEED_BUNDLE",
];
const BLUEPRINT_TYPES: &[&str] = &["APP_OS", "PURE_OS", "DOCKER", "PRIVATE", "SHARED"];
const PLATFORM_TYPES: &[&str] = &["LINUX_UNIX", "WINDOWS"];

/// The bundle with this id.
pub fn bundle(id: &str) -> Option<&'static SandboxBundle> {
    BUNDLES.iter().find(|b| b.id == id)
}

/// `LINUX_UNIX` or `WINDOWS`.
pub fn platform_type(os: OsType) -> &'static str {
    match os {
        OsType::Linux => "LINUX_UNIX",
        OsType::Windows => "WINDOWS",
    }
}

/// The blueprint platform (`DEBIAN`, `WINDOWS`).
pub fn platform(os: OsType) -> &'static str {
    match os {
        OsType::Linux => "DEBIAN",
        OsType::Windows => "WINDOWS",
    }
}

/// Memory (GiB) and system disk (GiB) a blueprint needs.
fn requirements(os: OsType) -> (i64, i64) {
    match os {
        OsType::Linux => (1, 20),
        OsType::Windows => (2, 40),
    }
}

/// Whether a blueprint id has the Lighthouse shape (`lhbp-` and 8 lower-case letters or digits).
pub fn is_blueprint_id(id: &str) -> bool {
    is_well_formed(id, "lhbp-", 8)
}

/// Whether `b` can run blueprints of `os`.
pub fn runs(b: &SandboxBundle, os: OsType) -> bool {
    let (memory, disk) = requirements(os);
    (os == OsType::Linux || b.windows) && b.memory >= memory && b.disk >= disk
}

/// `Blueprint` as answered.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct BlueprintOut {
    blueprint_id: String,
    display_title: &'static str,
    display_version: &'static str,
    description: String,
    os_name: String,
    platform: &'static str,
    platform_type: &'static str,
    blueprint_type: &'static str,
    image_url: &'static str,
    required_system_disk_size: i64,
    blueprint_state: &'static str,
    created_time: String,
    blueprint_name: String,
    /// No automation agent runs in the sandbox.
    support_automation_tools: bool,
    required_memory_size: i64,
    image_id: Option<String>,
    community_url: &'static str,
    guide_url: &'static str,
    scene_id_set: Vec<String>,
    docker_version: Option<String>,
    blueprint_shared: bool,
    tags: Vec<Tag>,
}

fn blueprint_out(image: Image) -> BlueprintOut {
    let (memory, disk) = requirements(image.os);
    let (title, version) = match image.os {
        OsType::Linux => ("Debian", "12 64bit"),
        OsType::Windows => ("Windows Server", "2022 DataCenter 64bit"),
    };
    BlueprintOut {
        blueprint_id: image.id,
        display_title: title,
        display_version: version,
        description: image.description,
        os_name: image.os_name,
        platform: platform(image.os),
        platform_type: platform_type(image.os),
        blueprint_type: "PURE_OS",
        image_url: "",
        required_system_disk_size: disk,
        blueprint_state: "NORMAL",
        created_time: iso8601(BLUEPRINT_CREATED_AT),
        blueprint_name: image.name,
        support_automation_tools: false,
        required_memory_size: memory,
        image_id: None,
        community_url: "",
        guide_url: "",
        scene_id_set: vec![],
        docker_version: None,
        blueprint_shared: false,
        tags: vec![],
    }
}

/// Refuse values outside `allowed` for a filter.
fn check_values(f: &Filter, allowed: &[&str]) -> Result<(), LighthouseError> {
    match f.values.iter().find(|v| !allowed.contains(&v.as_str())) {
        Some(bad) => Err(invalid(
            &format!("Filters.{}", f.name),
            format!("`{bad}` is not one of {}", allowed.join(", ")),
        )),
        None => Ok(()),
    }
}

fn blueprint_matches(f: &Filter, image: &Image) -> Result<bool, LighthouseError> {
    let any = |s: &str| f.values.iter().any(|v| v == s);
    Ok(match f.name.as_str() {
        "blueprint-id" => any(&image.id),
        "blueprint-type" => {
            check_values(f, BLUEPRINT_TYPES)?;
            any("PURE_OS")
        }
        "platform-type" => {
            check_values(f, PLATFORM_TYPES)?;
            any(platform_type(image.os))
        }
        "blueprint-name" => any(&image.name),
        "blueprint-state" => any("NORMAL"),
        // Public sandbox blueprints belong to no scene and carry no tags.
        "scene-id" | "tag-key" | "tag-value" => false,
        name if name.starts_with("tag:") && name.len() > 4 => false,
        name => {
            return Err(LighthouseError::Domain(DomainError::UnknownFilter {
                name: name.into(),
            }))
        }
    })
}

/// At most 100 catalog ids in one call.
fn check_count(param: &str, ids: &[String]) -> Result<(), LighthouseError> {
    if ids.len() > 100 {
        return Err(LighthouseError::Domain(DomainError::TooManyValues {
            param: param.into(),
            max: 100,
            given: ids.len(),
        }));
    }
    Ok(())
}

/// DescribeBlueprints.
pub async fn describe_blueprints(ctx: &Ctx<'_>, params: Value) -> Result<Value, LighthouseError> {
    let req: DescribeBlueprintsRequest = decode(params)?;
    let (ids, filters) = ids_or_filters(req.blueprint_ids, "BlueprintIds", req.filters)?;
    if let Some(ids) = &ids {
        check_count("BlueprintIds", ids)?;
        if let Some(bad) = ids.iter().find(|id| !is_blueprint_id(id)) {
            return Err(DomainError::ImageIdMalformed { id: bad.clone() }.into());
        }
    }
    check_filters(&filters, 100)?;
    let (offset, limit) = page(req.offset, req.limit)?;
    let (total, set) = filter_page(ctx.core.images(NS), offset, limit, |image| {
        let mut keep = ids.as_ref().is_none_or(|ids| ids.contains(&image.id));
        for f in &filters {
            keep &= blueprint_matches(f, image)?;
        }
        Ok::<_, LighthouseError>(keep)
    })?;
    let set: Vec<BlueprintOut> = set.into_iter().map(blueprint_out).collect();
    Ok(json!({ "TotalCount": total, "BlueprintSet": set }))
}

fn bundle_out(b: &SandboxBundle) -> Value {
    // Why: every price is 0: nothing is billed in the sandbox.
    json!({
        "BundleId": b.id,
        "Memory": b.memory,
        "SystemDiskType": "CLOUD_SSD",
        "SystemDiskSize": b.disk,
        "MonthlyTraffic": b.traffic,
        "SupportLinuxUnixPlatform": true,
        "SupportWindowsPlatform": b.windows,
        "Price": {"InstancePrice": {
            "OriginalBundlePrice": 0.0, "OriginalPrice": 0.0, "Discount": 100.0,
            "DiscountPrice": 0.0, "Currency": "CNY", "DetailPrices": [],
        }},
        "CPU": b.cpu,
        "InternetMaxBandwidthOut": b.bandwidth,
        "InternetChargeType": "FLOW_PACKAGE",
        "BundleSalesState": "AVAILABLE",
        "BundleType": b.kind,
        "BundleTypeDescription": b.kind_description,
        "BundleDisplayLabel": "NORMAL",
        "TrafficUnlimited": false,
    })
}

fn bundle_matches(f: &Filter, b: &SandboxBundle) -> Result<bool, LighthouseError> {
    let any = |s: &str| f.values.iter().any(|v| v == s);
    Ok(match f.name.as_str() {
        "bundle-id" => any(b.id),
        "support-platform-type" => {
            check_values(f, PLATFORM_TYPES)?;
            any("LINUX_UNIX") || (b.windows && any("WINDOWS"))
        }
        "bundle-type" => {
            check_values(f, BUNDLE_TYPES)?;
            any(b.kind)
        }
        "bundle-state" => {
            check_values(f, &["ONLINE", "OFFLINE"])?;
            any("ONLINE")
        }
        name => {
            return Err(LighthouseError::Domain(DomainError::UnknownFilter {
                name: name.into(),
            }))
        }
    })
}

/// DescribeBundles.
pub async fn describe_bundles(ctx: &Ctx<'_>, params: Value) -> Result<Value, LighthouseError> {
    let req: DescribeBundlesRequest = decode(params)?;
    let (ids, filters) = ids_or_filters(req.bundle_ids, "BundleIds", req.filters)?;
    if let Some(ids) = &ids {
        check_count("BundleIds", ids)?;
    }
    for zone in req.zones.iter().flatten() {
        check_zone(zone, ctx.region())?;
    }
    let os = match &req.blueprint_id {
        Some(id) if !is_blueprint_id(id) => {
            return Err(DomainError::ImageIdMalformed { id: id.clone() }.into())
        }
        Some(id) => Some(ctx.core.image(NS, id)?.os),
        None => None,
    };
    check_filters(&filters, 5)?;
    let (offset, limit) = page(req.offset, req.limit)?;
    let (total, set) = filter_page(BUNDLES.iter(), offset, limit, |b| {
        let mut keep = ids.as_ref().is_none_or(|ids| ids.iter().any(|i| i == b.id))
            && os.is_none_or(|os| runs(b, os));
        for f in &filters {
            keep &= bundle_matches(f, b)?;
        }
        Ok::<_, LighthouseError>(keep)
    })?;
    let set: Vec<Value> = set.into_iter().map(bundle_out).collect();
    Ok(json!({ "BundleSet": set, "TotalCount": total }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundles_run_what_they_say() {
        let starter = bundle("bundle_kp_starter_01").unwrap();
        assert!(runs(starter, OsType::Linux));
        assert!(!runs(starter, OsType::Windows));
        assert!(BUNDLES.iter().all(|b| runs(b, OsType::Linux)));
        for b in BUNDLES.iter().filter(|b| b.windows) {
            assert!(runs(b, OsType::Windows), "{}", b.id);
        }
        assert!(keyplane_core::instance::images(NS)
            .iter()
            .all(|i| is_blueprint_id(&i.id)));
    }
}
