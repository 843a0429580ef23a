//! Actions and regions of the legacy v2 dialect.

use super::error::LegacyError;

/// The legacy CVM actions served at `/v2/index.php`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegacyAction {
    /// Bind one key to instances, replacing the keys bound before (seed 000).
    BindInstanceKey,
    /// Unbind one key from instances (seed 003).
    UnBindInstanceKey,
    /// List key pairs (`keyIds.n`, `keyName`, `projectId`, `offset`, `limit`).
    DescribeKeyPairs,
    /// Reset root's password (`instanceIds.n`, `password`, `hardPowerOffFlag`).
    ResetInstancePassword,
}

const ACTIONS: [LegacyAction; 4] = [
    LegacyAction::BindInstanceKey,
    LegacyAction::UnBindInstanceKey,
    LegacyAction::DescribeKeyPairs,
    LegacyAction::ResetInstancePassword,
];

impl LegacyAction {
    /// Parse the `Action` parameter.
    // Why: Tencent's own UnBindInstanceKey page (seed 003) spells its example
    // `Action=unBindInstanceKey` while the title says `UnBindInstanceKey`; a client written
    // from either must work, so legacy action names match case-insensitively here (API 3.0
    // stays case-sensitive, as the service is).
    pub fn parse(s: &str) -> Option<LegacyAction> {
        ACTIONS
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(s))
    }

    /// The canonical wire name (recorded as the instance's latest operation).
    pub fn name(self) -> &'static str {
        match self {
            LegacyAction::BindInstanceKey => "BindInstanceKey",
            LegacyAction::UnBindInstanceKey => "UnBindInstanceKey",
            LegacyAction::DescribeKeyPairs => "DescribeKeyPairs",
            LegacyAction::ResetInstancePassword => "ResetInstancePassword",
        }
    }
}

/// The short region names of the legacy common parameters (`Region=gz`, …).
pub const SHORT_REGIONS: &[&str] = &[
    "bj", "gz", "sh", "hk", "ca", "sg", "usw", "cd", "de", "kr", "shjr", "szjr", "gzopen",
];

/// Check the `Region` common parameter: a legacy short name, or an API 3.0 region name (the
/// legacy signature page's own example signs `Region=ap-guangzhou`).
pub fn check_region(region: Option<String>) -> Result<String, LegacyError> {
    let region = region
        .filter(|r| !r.is_empty())
        .ok_or_else(|| LegacyError::MissingParameter("Region".into()))?;
    let known = SHORT_REGIONS.contains(&region.as_str())
        || crate::tencent::router::REGIONS.contains(&region.as_str());
    if known {
        Ok(region)
    } else {
        Err(LegacyError::UnsupportedRegion(region))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_match_case_insensitively() {
        assert_eq!(
            LegacyAction::parse("unBindInstanceKey"),
            Some(LegacyAction::UnBindInstanceKey)
        );
        assert_eq!(
            LegacyAction::parse("BindInstanceKey"),
            Some(LegacyAction::BindInstanceKey)
        );
        assert_eq!(
            LegacyAction::parse("describekeypairs").map(LegacyAction::name),
            Some("DescribeKeyPairs")
        );
        assert_eq!(LegacyAction::parse("RunInstances"), None);
    }

    #[test]
    fn regions() {
        assert_eq!(check_region(Some("gz".into())).unwrap(), "gz");
        assert!(check_region(Some("ap-guangzhou".into())).is_ok());
        assert_eq!(
            check_region(None),
            Err(LegacyError::MissingParameter("Region".into()))
        );
        assert!(matches!(
            check_region(Some("mars".into())),
            Err(LegacyError::UnsupportedRegion(_))
        ));
    }
}
