//! DescribeImages: the sandbox image catalog (a Debian image that is a real OpenSSH sandbox,
//! and a Windows image that is a record the Windows rules act on).

use super::Ctx;
use crate::common::params::decode;
use crate::tencent::cvm::dto::{parse_instance_type, DescribeImagesRequest, Filter, ImageOut};
use crate::tencent::cvm::error::{CvmError, CvmRefusal};
use crate::tencent::wire::{check_filters, filter_page, invalid, page};
use keyplane_core::ids::is_well_formed;
use keyplane_core::instance::Image;
use keyplane_core::keypair::Namespace;
use keyplane_core::DomainError;
use serde_json::{json, Value};

const IMAGE_TYPES: &[&str] = &["PUBLIC_IMAGE", "PRIVATE_IMAGE", "SHARED_IMAGE"];

/// Whether an image id has the CVM shape (`img-` and 8 lower-case letters or digits).
pub fn is_image_id(id: &str) -> bool {
    is_well_formed(id, "img-", 8)
}

fn contains_ci(haystack: &str, needles: &[String]) -> bool {
    let h = haystack.to_lowercase();
    needles.iter().any(|n| h.contains(&n.to_lowercase()))
}

/// Whether `image` passes `f`; unknown filter names are refused.
fn matches(f: &Filter, image: &Image) -> Result<bool, CvmError> {
    Ok(match f.name.as_str() {
        "image-id" => f.values.contains(&image.id),
        "image-type" => {
            if let Some(bad) = f.values.iter().find(|v| !IMAGE_TYPES.contains(&v.as_str())) {
                return Err(invalid(
                    "Filters.image-type",
                    format!("`{bad}` is not one of {}", IMAGE_TYPES.join(", ")),
                ));
            }
            f.values.iter().any(|v| v == "PUBLIC_IMAGE")
        }
        // Both are documented as fuzzy matches.
        "image-name" => contains_ci(&image.name, &f.values),
        "platform" => contains_ci(&image.platform, &f.values),
        // Official images carry no tags and belong to no image family.
        "tag-key" | "tag-value" | "image-family" => false,
        name if name.starts_with("tag:") && name.len() > 4 => false,
        name => {
            return Err(CvmError::Domain(DomainError::UnknownFilter {
                name: name.into(),
            }));
        }
    })
}

/// DescribeImages.
pub async fn describe(ctx: &Ctx<'_>, params: Value) -> Result<Value, CvmError> {
    let req: DescribeImagesRequest = decode(params)?;
    let ids = req.image_ids.filter(|v| !v.is_empty());
    let filters = req.filters.filter(|v| !v.is_empty());
    if ids.is_some() && filters.is_some() {
        return Err(CvmRefusal::ImageIdsWithFilters.into());
    }
    if let Some(ids) = &ids {
        if ids.len() > 100 {
            return Err(CvmError::Domain(DomainError::TooManyValues {
                param: "ImageIds".into(),
                max: 100,
                given: ids.len(),
            }));
        }
        if let Some(bad) = ids.iter().find(|id| !is_image_id(id)) {
            return Err(CvmError::Domain(DomainError::ImageIdMalformed {
                id: bad.clone(),
            }));
        }
    }
    let filters = filters.unwrap_or_default();
    check_filters(&filters, 5)?;
    if let Some(t) = &req.instance_type {
        // Every instance type takes every sandbox image; only the shape is checked.
        if parse_instance_type(t).is_none() {
            return Err(CvmRefusal::InstanceTypeMalformed(t.clone()).into());
        }
    }
    let (offset, limit) = page(req.offset, req.limit)?;
    let images = ctx.core.images(Namespace::Cvm);
    let (total, matching) = filter_page(images, offset, limit, |image| {
        let mut keep = ids.as_ref().is_none_or(|ids| ids.contains(&image.id));
        for f in &filters {
            keep &= matches(f, image)?;
        }
        Ok::<_, CvmError>(keep)
    })?;
    let set: Vec<ImageOut> = matching.into_iter().map(ImageOut::from_domain).collect();
    Ok(json!({ "ImageSet": set, "TotalCount": total }))
}
