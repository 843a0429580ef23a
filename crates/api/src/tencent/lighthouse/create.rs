//! CreateInstances: checks every documented rule of the request, then creates the instance
//! records and their create operations (PENDING, LatestOperation `CreateInstances`
//! OPERATING). A Debian blueprint becomes a real sandbox OpenSSH server.

use super::catalog::{bundle, is_blueprint_id, platform_type, runs, SandboxBundle};
use super::dto::{CreateInstancesRequest, InstanceChargePrepaid, LoginConfiguration};
use super::error::LighthouseRefusal;
use super::keypairs::tags_of;
use super::{check_zone, Ctx, NS};
use crate::common::params::decode;
use crate::tencent::lighthouse::error::LighthouseError;
use crate::tencent::wire::conflict;
use crate::tencent::wire::{invalid, required};
use keyplane_core::compute::{LaunchSpec, INSTANCE_QUOTA};
use keyplane_core::ids::{is_well_formed, new_id};
use keyplane_core::instance::{Image, OsType};
use keyplane_core::DomainError;
use serde_json::{json, Value};

/// Instances per call, as documented.
const MAX_COUNT: i64 = 30;
/// Key pairs bound at creation, as documented.
const MAX_KEYS: usize = 5;
/// The special characters the password rule counts.
const PASSWORD_SPECIALS: &str = "()`~!@#$%^&*-+=_/{}[]:;'<>,.?";
/// Purchase periods, in months.
const PERIODS: &[i64] = &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 24, 36, 48, 60];
const RENEW_FLAGS: &[&str] = &[
    "NOTIFY_AND_AUTO_RENEW",
    "NOTIFY_AND_MANUAL_RENEW",
    "DISABLE_NOTIFY_AND_MANUAL_RENEW",
];

/// The documented password rule: LINUX_UNIX 8-30 characters, WINDOWS 12-30 (and not holding
/// the user name), no spaces, not starting with `/`, at least three of lower case, upper
/// case, digits and the special characters.
pub fn check_password(password: &str, os: OsType) -> Result<(), DomainError> {
    let refuse = |reason: String| Err(DomainError::InvalidPassword { reason });
    let min = if os == OsType::Windows { 12 } else { 8 };
    let len = password.chars().count();
    if !(min..=30).contains(&len) {
        return refuse(format!("it must be {min} to 30 characters long"));
    }
    if password.starts_with('/') {
        return refuse("it must not start with `/`".into());
    }
    if let Some(c) = password
        .chars()
        .find(|c| !c.is_ascii_alphanumeric() && !PASSWORD_SPECIALS.contains(*c))
    {
        return refuse(format!("the character `{c}` is not allowed"));
    }
    if os == OsType::Windows && password.to_lowercase().contains("administrator") {
        return refuse("it must not contain the user name".into());
    }
    let classes = [
        password.chars().any(|c| c.is_ascii_lowercase()),
        password.chars().any(|c| c.is_ascii_uppercase()),
        password.chars().any(|c| c.is_ascii_digit()),
        password.chars().any(|c| PASSWORD_SPECIALS.contains(c)),
    ];
    if classes.into_iter().filter(|b| *b).count() < 3 {
        return refuse(format!(
            "it must mix at least three of lower-case letters, upper-case letters, digits and {PASSWORD_SPECIALS}"
        ));
    }
    Ok(())
}

fn check_prepaid(p: Option<InstanceChargePrepaid>) -> Result<(), LighthouseError> {
    let p = required(p, "InstanceChargePrepaid")?;
    let period = required(p.period, "InstanceChargePrepaid.Period")?;
    if !PERIODS.contains(&period) {
        return Err(LighthouseRefusal::OutOfRange {
            param: "InstanceChargePrepaid.Period".into(),
            range: "1-12, 24, 36, 48 or 60 months".into(),
        }
        .into());
    }
    match p.renew_flag.as_deref() {
        Some(f) if !RENEW_FLAGS.contains(&f) => Err(invalid(
            "InstanceChargePrepaid.RenewFlag",
            format!("`{f}` is not one of {}", RENEW_FLAGS.join(", ")),
        )),
        _ => Ok(()),
    }
}

/// The blueprint and bundle, and that the bundle runs the blueprint.
fn catalog(
    ctx: &Ctx<'_>,
    req: &CreateInstancesRequest,
) -> Result<(Image, SandboxBundle), LighthouseError> {
    if !is_blueprint_id(&req.blueprint_id) {
        return Err(DomainError::ImageIdMalformed {
            id: req.blueprint_id.clone(),
        }
        .into());
    }
    let image = ctx.core.image(NS, &req.blueprint_id)?;
    let b = *bundle(&req.bundle_id)
        .ok_or_else(|| LighthouseRefusal::BundleNotFound(req.bundle_id.clone()))?;
    if !runs(&b, image.os) {
        return Err(LighthouseRefusal::BundleNotForPlatform {
            bundle: b.id.into(),
            platform: platform_type(image.os),
        }
        .into());
    }
    Ok((image, b))
}

/// The zone: the first given (each must be of the region), else one of the region.
fn zone(zones: Option<Vec<String>>, region: &str) -> Result<String, LighthouseError> {
    let zones = zones.unwrap_or_default();
    for z in &zones {
        check_zone(z, region)?;
    }
    // Why: the service spreads instances over the zones given (or picks one at random);
    // here every instance of a call goes to the first zone given, or zone 3 of the region.
    Ok(zones
        .into_iter()
        .next()
        .unwrap_or_else(|| format!("{region}-3")))
}

fn name(name: Option<String>, image: &Image) -> Result<String, LighthouseError> {
    let Some(name) = name else {
        // Like the service's default: the system name and a random suffix.
        let title = if image.os == OsType::Windows {
            "Windows"
        } else {
            "Debian"
        };
        return Ok(new_id(&format!("{title}-"), 4));
    };
    let len = name.chars().count();
    if len == 0 {
        return Err(invalid("InstanceName", "must not be empty"));
    }
    if len > 60 {
        return Err(LighthouseRefusal::InstanceNameTooLong(len).into());
    }
    Ok(name)
}

/// The password and key pairs to launch with.
async fn login(
    ctx: &Ctx<'_>,
    settings: Option<LoginConfiguration>,
    image: &Image,
) -> Result<(Option<String>, Vec<String>), LighthouseError> {
    // Why: without LoginConfiguration (or with AutoGeneratePassword YES) the service sets a
    // password the user never sees; here the instance gets none: log in by binding a key.
    let Some(s) = settings else {
        return Ok((None, vec![]));
    };
    let keys = s.key_ids.unwrap_or_default();
    match (s.auto_generate_password.as_deref(), &s.password) {
        (Some("YES"), Some(_)) => return Err(conflict("AutoGeneratePassword", "Password")),
        (Some("NO"), None) if keys.is_empty() => {
            return Err(LighthouseError::MissingParameter(
                "LoginConfiguration.Password".into(),
            ))
        }
        (None | Some("YES") | Some("NO"), _) => {}
        (Some(other), _) => {
            return Err(invalid(
                "LoginConfiguration.AutoGeneratePassword",
                format!("`{other}` is not one of YES, NO"),
            ))
        }
    }
    if s.password.is_some() && !keys.is_empty() {
        return Err(conflict("Password", "KeyIds"));
    }
    // Why: accepted on LINUX_UNIX too, although the product lists
    // InstanceLinuxUnixCreatingNotSupportPassword: the field documents the LINUX_UNIX rule,
    // and a password is what lets a sandbox be reached before any key is bound.
    if let Some(p) = &s.password {
        check_password(p, image.os)?;
    }
    if !keys.is_empty() {
        ctx.core
            .check_key_ids(NS, "LoginConfiguration.KeyIds", &keys, MAX_KEYS)?;
        if image.os == OsType::Windows {
            return Err(LighthouseRefusal::WindowsNotSupportKeyPair(image.id.clone()).into());
        }
        ctx.core.get_key_pairs(ctx.account, NS, &keys).await?;
    }
    Ok((s.password, keys))
}

/// Refuse what the sandbox cannot do, and check what it accepts without keeping.
fn extras(req: &CreateInstancesRequest, count: i64) -> Result<(), LighthouseError> {
    if req.containers.as_ref().is_some_and(|c| !c.is_empty()) {
        return Err(LighthouseRefusal::DockerUnavailable.into());
    }
    if req.init_command.is_some() {
        return Err(LighthouseRefusal::TatAgentUnavailable.into());
    }
    if let Some(id) = &req.firewall_template_id {
        if !is_well_formed(id, "lhft-", 8) {
            return Err(LighthouseRefusal::FirewallTemplateIdMalformed(id.clone()).into());
        }
        return Err(LighthouseRefusal::FirewallTemplateNotFound(id.clone()).into());
    }
    if let Some(token) = &req.client_token {
        let len = token.chars().count();
        if len > 64 {
            return Err(LighthouseRefusal::ClientTokenTooLong(len).into());
        }
    }
    if count > 1 && (req.domain_name.is_some() || req.subdomain.is_some()) {
        return Err(conflict("DomainName", "InstanceCount"));
    }
    tags_of(req.tags.clone().unwrap_or_default())?;
    Ok(())
}

/// CreateInstances. With DryRun the answer carries only the RequestId, as documented.
pub async fn create(ctx: &Ctx<'_>, params: Value) -> Result<Value, LighthouseError> {
    let mut req: CreateInstancesRequest = decode(params)?;
    check_prepaid(req.instance_charge_prepaid.take())?;
    let (image, bundle) = catalog(ctx, &req)?;
    let count = req.instance_count.unwrap_or(1);
    if !(1..=MAX_COUNT).contains(&count) {
        return Err(LighthouseRefusal::OutOfRange {
            param: "InstanceCount".into(),
            range: format!("1 to {MAX_COUNT}"),
        }
        .into());
    }
    let zone = zone(req.zones.take(), ctx.region())?;
    let name = name(req.instance_name.take(), &image)?;
    extras(&req, count)?;
    let (password, key_ids) = login(ctx, req.login_configuration.take(), &image).await?;
    let existing = ctx.core.count_instances(ctx.account, NS).await?;
    if existing + count as usize > INSTANCE_QUOTA {
        return Err(LighthouseError::Domain(
            DomainError::InstanceQuotaExceeded {
                limit: INSTANCE_QUOTA,
            },
        ));
    }
    if req.dry_run == Some(true) {
        return Ok(json!({}));
    }
    let spec = LaunchSpec {
        user_data: None,
        then_stop: false,
        namespace: NS,
        region: ctx.region().to_string(),
        zone,
        image_id: image.id,
        names: vec![name; count as usize],
        host_names: Vec::new(),
        password,
        key_ids,
        instance_type: bundle.id.to_string(),
        ssh_port: ctx.core.ssh_port(),
        client_token: req.client_token.clone().filter(|t| !t.is_empty()),
    };
    let ids = ctx
        .core
        .launch_instances(ctx.account, spec, ctx.req)
        .await?;
    Ok(json!({ "InstanceIdSet": ids }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_follow_the_lighthouse_rule() {
        for ok in ["Kp-Passw0rd!", "Passw0rd", "abc_DEF1", "a1-b2-c3-D"] {
            assert!(check_password(ok, OsType::Linux).is_ok(), "{ok}");
        }
        for bad in [
            "Pa1-",
            "password1",
            "PASSWORD-",
            "/Passw0rd",
            "Pass word1",
            "Passw0rd|x",
            &"aB1".repeat(11),
        ] {
            assert!(check_password(bad, OsType::Linux).is_err(), "{bad}");
        }
        assert!(check_password("Passw0rd", OsType::Windows).is_err());
        assert!(check_password("Passw0rd!abc", OsType::Windows).is_ok());
        assert!(check_password("Administrator1!", OsType::Windows).is_err());
    }
}
