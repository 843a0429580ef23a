//! Products, versions and actions of the Tencent API 3.0 dialect.

use crate::common::actions;

/// A Tencent product served by this dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Product {
    /// CVM, Version 2017-03-12.
    Cvm,
    /// Lighthouse, Version 2020-03-24.
    Lighthouse,
    /// CloudAudit, Version 2019-03-19.
    CloudAudit,
}

impl Product {
    /// The product a TC3 request addresses, from the service label of its credential scope
    /// and its `X-TC-Version`: the scope decides when it names a product served here, the
    /// version otherwise.
    pub fn resolve(service: &str, version: &str) -> Result<Product, super::error::TcError> {
        use super::error::TcError;
        // Why: the cloud derives the product from the host name (cvm.tencentcloudapi.com) and
        // expects the scope to name that product. Here one endpoint serves every product, and
        // clients derive the label from whatever endpoint they were given (the Node.js SDK
        // signs the first label of the host: `127` for 127.0.0.1, `localhost:8787` for
        // localhost:8787), so a label that names no product served here defers to the version.
        let by_scope = match service {
            "cvm" => Some(Product::Cvm),
            "lighthouse" => Some(Product::Lighthouse),
            "cloudaudit" => Some(Product::CloudAudit),
            _ => None,
        };
        let by_version = Product::from_version(version).ok();
        match (by_scope, by_version) {
            (Some(p), Some(v)) if p == v => Ok(p),
            (Some(p), Some(v)) => Err(TcError::SignatureFailure(format!(
                "The credential scope names service `{}`, but Version {version} is {}'s; sign with the service of the product you call.",
                p.service(),
                v.service()
            ))),
            (Some(p), None) => Err(TcError::NoSuchVersion(format!(
                "The version `{version}` of product `{}` does not exist; use {}.",
                p.service(),
                p.version()
            ))),
            (None, Some(v)) => Ok(v),
            (None, None) => Err(TcError::NoSuchProduct(format!(
                "Neither the credential scope service `{service}` nor Version `{version}` names a product served by this endpoint (cvm 2017-03-12, lighthouse 2020-03-24, cloudaudit 2019-03-19)."
            ))),
        }
    }

    /// The product a v1-signed request addresses, from its `Version` (v1 requests name no service).
    pub fn from_version(version: &str) -> Result<Product, super::error::TcError> {
        match version {
            "2017-03-12" => Ok(Product::Cvm),
            "2020-03-24" => Ok(Product::Lighthouse),
            "2019-03-19" => Ok(Product::CloudAudit),
            v => Err(super::error::TcError::NoSuchVersion(format!(
                "The version `{v}` does not exist."
            ))),
        }
    }

    /// The product's API version.
    pub fn version(self) -> &'static str {
        match self {
            Product::Cvm => "2017-03-12",
            Product::Lighthouse => "2020-03-24",
            Product::CloudAudit => "2019-03-19",
        }
    }

    /// The product's service name (`cvm`, `lighthouse`, `cloudaudit`).
    pub fn service(self) -> &'static str {
        match self {
            Product::Cvm => "cvm",
            Product::Lighthouse => "lighthouse",
            Product::CloudAudit => "cloudaudit",
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
        ResetInstancesPassword,
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
        ResetInstancesPassword,
    }
);

actions!(
    /// CloudAudit 2019-03-19 actions served.
    CloudAuditAction { LookUpEvents }
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
            "ResetInstancesPassword",
        ] {
            assert_eq!(CvmAction::parse(a).unwrap().name(), a);
        }
        assert!(CvmAction::parse("describekeypairs").is_none());
        assert_eq!(Product::resolve("cvm", "2017-03-12").unwrap(), Product::Cvm);
        assert!(Product::resolve("cvm", "2020-01-01").is_err());
        assert_eq!(Product::resolve("127", "2017-03-12").unwrap(), Product::Cvm);
        assert_eq!(
            Product::resolve("localhost:8787", "2020-03-24").unwrap(),
            Product::Lighthouse
        );
        let code = |r: Result<Product, super::super::error::TcError>| {
            r.unwrap_err()
                .routed::<crate::tencent::cvm::error::CvmRefusal>()
                .code()
        };
        assert_eq!(code(Product::resolve("cbs", "2017-03-17")), "NoSuchProduct");
        assert_eq!(code(Product::resolve("cvm", "2099-01-01")), "NoSuchVersion");
        assert_eq!(
            code(Product::resolve("cvm", "2020-03-24")),
            "AuthFailure.SignatureFailure"
        );
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
        assert_eq!(
            Product::resolve("cloudaudit", "2019-03-19").unwrap(),
            Product::CloudAudit
        );
        assert_eq!(
            Product::resolve("127", "2019-03-19").unwrap(),
            Product::CloudAudit
        );
        assert!(Product::resolve("cloudaudit", "2017-03-12").is_err());
        assert_eq!(
            CloudAuditAction::parse("LookUpEvents").unwrap().name(),
            "LookUpEvents"
        );
        assert!(CloudAuditAction::parse("LookupEvents").is_none());
    }
}
