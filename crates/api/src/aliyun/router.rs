//! Products, versions, actions and regions of the Alibaba Cloud RPC dialect: ECS 2014-05-26
//! and ActionTrail 2020-07-06.

use super::auth::all_params;
use crate::common::actions;
use crate::common::request::RawRequest;

/// The ECS version served.
pub const VERSION: &str = "2014-05-26";
/// The ActionTrail version served.
pub const ACTIONTRAIL_VERSION: &str = "2020-07-06";

/// An Alibaba Cloud product served by this dialect, told apart by its `Version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Product {
    /// ECS, Version 2014-05-26.
    Ecs,
    /// ActionTrail, Version 2020-07-06.
    ActionTrail,
}

impl Product {
    /// The product of a version, if one is served.
    pub fn from_version(version: &str) -> Option<Product> {
        match version {
            VERSION => Some(Product::Ecs),
            ACTIONTRAIL_VERSION => Some(Product::ActionTrail),
            _ => None,
        }
    }

    /// The product a request claims by its `Version` parameter or `x-acs-version` header,
    /// before anything is verified (ECS when it names none served here).
    pub fn claimed(raw: &RawRequest) -> Product {
        let version = all_params(raw)
            .into_iter()
            .find(|(k, _)| k == "Version")
            .map(|(_, v)| v)
            .or_else(|| raw.header("x-acs-version"));
        version
            .as_deref()
            .and_then(Product::from_version)
            .unwrap_or(Product::Ecs)
    }

    /// The dialect its requests are recorded and measured under (`ecs`, `actiontrail`).
    pub fn dialect(self) -> &'static str {
        match self {
            Product::Ecs => "ecs",
            Product::ActionTrail => "actiontrail",
        }
    }

    /// Its name in the request log's spans (`aliyun-ecs`, `aliyun-actiontrail`).
    pub fn span_name(self) -> &'static str {
        match self {
            Product::Ecs => "aliyun-ecs",
            Product::ActionTrail => "aliyun-actiontrail",
        }
    }

    /// The host its error answers name (`HostId`).
    pub fn host(self) -> &'static str {
        match self {
            Product::Ecs => "ecs.aliyuncs.com",
            Product::ActionTrail => "actiontrail.aliyuncs.com",
        }
    }

    /// The served action of this product named `action`, or `other`.
    pub fn action_name(self, action: &str) -> &'static str {
        match self {
            Product::Ecs => EcsAction::parse(action).map_or("other", EcsAction::name),
            Product::ActionTrail => {
                ActionTrailAction::parse(action).map_or("other", ActionTrailAction::name)
            }
        }
    }
}

actions!(
    /// ActionTrail 2020-07-06 actions served.
    ActionTrailAction { LookupEvents }
);

actions!(
    /// ECS 2014-05-26 actions served.
    EcsAction {
        CreateKeyPair,
        ImportKeyPair,
        DescribeKeyPairs,
        DeleteKeyPairs,
        AttachKeyPair,
        DetachKeyPair,
        DescribeImages,
        RunInstances,
        CreateInstance,
        DescribeInstances,
        StartInstance,
        StopInstance,
        RebootInstance,
        DeleteInstance,
        ModifyInstanceAttribute,
    }
);

impl EcsAction {
    /// Whether the action addresses one instance by id and takes no `RegionId` of its own
    /// (the instance's region applies).
    pub fn is_instance_action(self) -> bool {
        matches!(
            self,
            EcsAction::StartInstance
                | EcsAction::StopInstance
                | EcsAction::RebootInstance
                | EcsAction::DeleteInstance
                | EcsAction::ModifyInstanceAttribute
        )
    }
}

/// Alibaba Cloud regions accepted in `RegionId`.
pub const REGIONS: &[&str] = &[
    "cn-qingdao",
    "cn-beijing",
    "cn-zhangjiakou",
    "cn-huhehaote",
    "cn-wulanchabu",
    "cn-hangzhou",
    "cn-shanghai",
    "cn-nanjing",
    "cn-fuzhou",
    "cn-wuhan-lr",
    "cn-shenzhen",
    "cn-heyuan",
    "cn-guangzhou",
    "cn-chengdu",
    "cn-hongkong",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-southeast-1",
    "ap-southeast-3",
    "ap-southeast-5",
    "ap-southeast-6",
    "ap-southeast-7",
    "us-east-1",
    "us-west-1",
    "na-south-1",
    "eu-west-1",
    "eu-central-1",
    "me-east-1",
    "me-central-1",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_round_trip() {
        for a in [
            "CreateKeyPair",
            "ImportKeyPair",
            "DescribeKeyPairs",
            "DeleteKeyPairs",
            "AttachKeyPair",
            "DetachKeyPair",
            "DescribeImages",
            "RunInstances",
            "CreateInstance",
            "DescribeInstances",
            "StartInstance",
            "StopInstance",
            "RebootInstance",
            "DeleteInstance",
        ] {
            assert_eq!(EcsAction::parse(a).unwrap().name(), a);
        }
        assert!(EcsAction::parse("attachkeypair").is_none());
        assert!(EcsAction::StartInstance.is_instance_action());
        assert!(!EcsAction::AttachKeyPair.is_instance_action());
        assert!(REGIONS.contains(&"cn-hangzhou"));
        assert_eq!(Product::from_version("2014-05-26"), Some(Product::Ecs));
        assert_eq!(
            Product::from_version("2020-07-06"),
            Some(Product::ActionTrail)
        );
        assert_eq!(Product::from_version("2017-12-04"), None);
        assert_eq!(
            Product::ActionTrail.action_name("LookupEvents"),
            "LookupEvents"
        );
        assert_eq!(Product::ActionTrail.action_name("LookUpEvents"), "other");
        assert_eq!(Product::Ecs.action_name("LookupEvents"), "other");
    }
}
