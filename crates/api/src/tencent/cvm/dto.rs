//! Wire structures of CVM 2017-03-12 (field names exactly as the SDK models).

pub mod instances;
pub mod run;

pub use instances::*;
pub use run::*;

pub use crate::tencent::wire::{iso8601, Filter, Tag};

use crate::common::params::lenient_i64;
use keyplane_core::keypair::KeyPair;
use serde::{Deserialize, Serialize};

/// `TagSpecification`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct TagSpecification {
    /// Must be `keypair` for key-pair calls.
    pub resource_type: String,
    /// Tags to attach.
    #[serde(default)]
    pub tags: Vec<Tag>,
}

/// CreateKeyPair request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct CreateKeyPairRequest {
    /// Name.
    pub key_name: String,
    /// Project (required by the service; 0 is the default project).
    #[serde(default, deserialize_with = "lenient_i64")]
    pub project_id: Option<i64>,
    /// Tags.
    #[serde(default)]
    pub tag_specification: Vec<TagSpecification>,
}

/// ImportKeyPair request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct ImportKeyPairRequest {
    /// Name.
    pub key_name: String,
    /// Project (required by the service; 0 is the default project).
    #[serde(default, deserialize_with = "lenient_i64")]
    pub project_id: Option<i64>,
    /// OpenSSH public key.
    pub public_key: String,
    /// Tags.
    #[serde(default)]
    pub tag_specification: Vec<TagSpecification>,
}

/// DescribeKeyPairs request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct DescribeKeyPairsRequest {
    /// Only these ids.
    #[serde(default)]
    pub key_ids: Option<Vec<String>>,
    /// Filters.
    #[serde(default)]
    pub filters: Option<Vec<Filter>>,
    /// Offset (default 0).
    #[serde(default, deserialize_with = "lenient_i64")]
    pub offset: Option<i64>,
    /// Limit (default 20, at most 100).
    #[serde(default, deserialize_with = "lenient_i64")]
    pub limit: Option<i64>,
}

/// DeleteKeyPairs request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct DeleteKeyPairsRequest {
    /// Ids to delete (at most 100).
    pub key_ids: Vec<String>,
}

/// ModifyKeyPairAttribute request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct ModifyKeyPairAttributeRequest {
    /// The key pair.
    pub key_id: String,
    /// New name.
    #[serde(default)]
    pub key_name: Option<String>,
    /// New description (at most 60 characters).
    #[serde(default)]
    pub description: Option<String>,
}

/// `KeyPair` as answered.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyPairOut {
    /// Id.
    pub key_id: String,
    /// Name.
    pub key_name: String,
    /// Project.
    pub project_id: i64,
    /// Description.
    pub description: String,
    /// Public key.
    pub public_key: String,
    /// Private key: only in the CreateKeyPair answer, `null` elsewhere.
    pub private_key: Option<String>,
    /// Bound instances.
    pub associated_instance_ids: Vec<String>,
    /// `YYYY-MM-DDThh:mm:ssZ`.
    pub created_time: String,
    /// Tags.
    pub tags: Vec<Tag>,
}

/// The DescribeKeyPairs answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeKeyPairsOut {
    /// Matches before paging.
    pub total_count: usize,
    /// The page.
    pub key_pair_set: Vec<KeyPairOut>,
}

impl KeyPairOut {
    /// The wire form of a stored key pair.
    pub fn from_domain(kp: KeyPair, private_key: Option<String>) -> KeyPairOut {
        KeyPairOut {
            key_id: kp.id,
            key_name: kp.name,
            project_id: kp.project_id,
            description: kp.description,
            public_key: kp.public_key,
            private_key,
            associated_instance_ids: kp.associated_instance_ids,
            created_time: iso8601(kp.created_at),
            tags: kp
                .tags
                .into_iter()
                .map(|(key, value)| Tag { key, value })
                .collect(),
        }
    }
}
