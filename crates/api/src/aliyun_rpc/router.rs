//! Actions and regions of the ECS 2014-05-26 dialect.

use crate::common::actions;

/// The one version served.
pub const VERSION: &str = "2014-05-26";

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
    }
}
