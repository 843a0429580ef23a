//! Products, versions and actions of the Tencent API 3.0 dialect.

use crate::common::actions;

/// A Tencent product served by this dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Product {
    /// CVM, Version 2017-03-12.
    Cvm,
    /// Lighthouse, Version 2020-03-24.
    Lighthouse,
}

impl Product {
    /// The product for a TC3 credential-scope service and an `X-TC-Version`.
    pub fn resolve(service: &str, version: &str) -> Result<Product, super::error::TcError> {
        use super::error::TcError;
        match (service, version) {
            ("cvm", "2017-03-12") => Ok(Product::Cvm),
            ("lighthouse", "2020-03-24") => Ok(Product::Lighthouse),
            ("cvm", v) => Err(TcError::NoSuchVersion(format!(
                "The version `{v}` of product `cvm` does not exist; use 2017-03-12."
            ))),
            ("lighthouse", v) => Err(TcError::NoSuchVersion(format!(
                "The version `{v}` of product `lighthouse` does not exist; use 2020-03-24."
            ))),
            (s, _) => Err(TcError::NoSuchProduct(format!(
                "The product `{s}` is not served by this endpoint."
            ))),
        }
    }

    /// The product a v1-signed request addresses, from its `Version` (v1 requests name no service).
    pub fn from_version(version: &str) -> Result<Product, super::error::TcError> {
        match version {
            "2017-03-12" => Ok(Product::Cvm),
            "2020-03-24" => Ok(Product::Lighthouse),
            v => Err(super::error::TcError::NoSuchVersion(format!(
                "The version `{v}` does not exist."
            ))),
        }
    }

    /// The product's service name (`cvm`, `lighthouse`).
    pub fn service(self) -> &'static str {
        match self {
            Product::Cvm => "cvm",
            Product::Lighthouse => "lighthouse",
        }
    }
}

actions!(
    /// CVM 2017-03-12 actions served.
    CvmAction {
        CreateKeyPair,
        ImportKeyPair,
        DescribeKeyPairs,
        DeleteKeyPairs,
        ModifyKeyPairAttribute,
        AssociateInstancesKeyPairs,
        DisassociateInstancesKeyPairs,
        DescribeImages,
        RunInstances,
        DescribeInstances,
        DescribeInstancesStatus,
        StartInstances,
        StopInstances,
        RebootInstances,
        TerminateInstances,
    }
);

actions!(
    /// Lighthouse 2020-03-24 actions served.
    LighthouseAction {
        DescribeBlueprints,
        DescribeBundles,
        CreateInstances,
        DescribeInstances,
        StartInstances,
        StopInstances,
        RebootInstances,
        TerminateInstances,
        CreateKeyPair,
        ImportKeyPair,
        DescribeKeyPairs,
        DeleteKeyPairs,
        AssociateInstancesKeyPairs,
        DisassociateInstancesKeyPairs,
    }
);

/// Tencent Cloud regions accepted in `X-TC-Region` / `Region`.
pub const REGIONS: &[&str] = &[
    "ap-bangkok",
    "ap-beijing",
    "ap-chengdu",
    "ap-chongqing",
    "ap-guangzhou",
    "ap-hongkong",
    "ap-jakarta",
    "ap-mumbai",
    "ap-nanjing",
    "ap-seoul",
    "ap-shanghai",
    "ap-shanghai-fsi",
    "ap-shenzhen-fsi",
    "ap-singapore",
    "ap-tokyo",
    "eu-frankfurt",
    "na-ashburn",
    "na-siliconvalley",
    "sa-saopaulo",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_round_trip() {
        for a in [
            "CreateKeyPair",
            "DescribeKeyPairs",
            "ModifyKeyPairAttribute",
            "AssociateInstancesKeyPairs",
            "DisassociateInstancesKeyPairs",
            "DescribeImages",
            "RunInstances",
            "DescribeInstances",
            "DescribeInstancesStatus",
            "StartInstances",
            "StopInstances",
            "RebootInstances",
            "TerminateInstances",
        ] {
            assert_eq!(CvmAction::parse(a).unwrap().name(), a);
        }
        assert!(CvmAction::parse("describekeypairs").is_none());
        assert_eq!(Product::resolve("cvm", "2017-03-12").unwrap(), Product::Cvm);
        assert!(Product::resolve("cvm", "2020-01-01").is_err());
        assert!(Product::resolve("cbs", "2017-03-12").is_err());
        assert_eq!(
            Product::resolve("lighthouse", "2020-03-24").unwrap(),
            Product::Lighthouse
        );
        assert!(Product::resolve("lighthouse", "2017-03-12").is_err());
        assert!(Product::resolve("cvm", "2020-03-24").is_err());
        assert_eq!(
            Product::from_version("2020-03-24").unwrap(),
            Product::Lighthouse
        );
        assert_eq!(
            LighthouseAction::parse("AssociateInstancesKeyPairs")
                .unwrap()
                .name(),
            "AssociateInstancesKeyPairs"
        );
        assert!(LighthouseAction::parse("ModifyKeyPairAttribute").is_none());
    }
}
