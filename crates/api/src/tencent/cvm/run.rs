//! RunInstances: checks every documented rule of the request, then creates the instance
//! records and their create operations (PENDING, LatestOperation `RunInstances` OPERATING).

use super::images::is_image_id;
use super::instances::MAX_IDS;
use super::Ctx;
use crate::common::params::decode;
use crate::tencent::cvm::dto::{
    parse_instance_type, LaunchTemplate, LoginSettings, RunInstancesRequest,
};
use crate::tencent::cvm::error::{CvmError, CvmRefusal};
use crate::tencent::wire::{invalid, required, zone_of_region};
use base64::Engine;
use keyplane_core::compute::{LaunchSpec, INSTANCE_QUOTA};
use keyplane_core::ids::is_well_formed;
use keyplane_core::instance::{Image, OsType};
use keyplane_core::keypair::Namespace;
use keyplane_core::DomainError;
use serde_json::{json, Value};

const NS: Namespace = Namespace::Cvm;
/// Instances per call, as documented (`[1, 500]`); the account quota applies too.
const MAX_COUNT: i64 = 500;
/// The type used when none is given.
const DEFAULT_INSTANCE_TYPE: &str = "S5.MEDIUM2";
/// The documented default display name ("Unnamed").
const DEFAULT_NAME: &str = "未命名";
/// The special characters the password rule counts.
const PASSWORD_SPECIALS: &str = "()`~!@#$%^&*-+=|{}[]:;',.?/";

/// The zone must be `<region>-<n>` of the request's region.
fn check_zone(zone: &str, region: &str) -> Result<(), CvmError> {
    if zone_of_region(zone, region) {
        Ok(())
    } else {
        Err(CvmRefusal::ZoneMismatchRegion {
            zone: zone.into(),
            region: region.into(),
        }
        .into())
    }
}

/// The password rule: Linux 8-30 characters of at least two classes, Windows 12-30 of at
/// least three (lower case, upper case, digits, specials); nothing else; not starting with `/`.
pub fn check_password(password: &str, os: OsType) -> Result<(), DomainError> {
    let (min, classes_needed) = match os {
        OsType::Linux => (8, 2),
        OsType::Windows => (12, 3),
    };
    let refuse = |reason: String| Err(DomainError::InvalidPassword { reason });
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
    let classes = [
        password.chars().any(|c| c.is_ascii_lowercase()),
        password.chars().any(|c| c.is_ascii_uppercase()),
        password.chars().any(|c| c.is_ascii_digit()),
        password.chars().any(|c| PASSWORD_SPECIALS.contains(c)),
    ]
    .into_iter()
    .filter(|b| *b)
    .count();
    if classes < classes_needed {
        return refuse(format!(
            "it must mix at least {classes_needed} of lower-case letters, upper-case letters, digits and {PASSWORD_SPECIALS}"
        ));
    }
    Ok(())
}

/// Expand `{R:x}` / `{R:x,F:y}` in `template` for `count` instances; without a pattern, more
/// than one instance get the suffixes 1..=n.
fn expand(template: &str, count: usize, param: &str) -> Result<Vec<String>, CvmError> {
    let Some(start) = template.find("{R:") else {
        return Ok(if count == 1 {
            vec![template.to_string()]
        } else {
            (1..=count).map(|i| format!("{template}{i}")).collect()
        });
    };
    let bad = |why: &str| {
        invalid(
            param,
            format!("the pattern must be {{R:x}} or {{R:x,F:y}}: {why}"),
        )
    };
    let end = template[start..]
        .find('}')
        .map(|e| start + e)
        .ok_or_else(|| bad("it is not closed"))?;
    let inner = &template[start + 3..end];
    let (first, width) = match inner.split_once(",F:") {
        Some((x, y)) => (x, y.parse::<usize>().map_err(|_| bad("y is not a number"))?),
        None => (inner, 0),
    };
    if width > 8 {
        return Err(bad("y must be between 0 and 8"));
    }
    let first: u64 = first.parse().map_err(|_| bad("x is not a number"))?;
    let (head, tail) = (&template[..start], &template[end + 1..]);
    Ok((0..count as u64)
        .map(|i| format!("{head}{:0width$}{tail}", first + i))
        .collect())
}

/// The display names, one per instance.
fn names(name: Option<&str>, count: usize) -> Result<Vec<String>, CvmError> {
    let Some(name) = name else {
        return Ok(vec![DEFAULT_NAME.to_string(); count]);
    };
    let len = name.chars().count();
    if len > 128 {
        return Err(CvmRefusal::InstanceNameTooLong(len).into());
    }
    if name.is_empty() {
        return Err(invalid("InstanceName", "must not be empty"));
    }
    expand(name, count, "InstanceName")
}

/// The documented host name rule, checked on every expanded name.
fn check_host_name(template: &str, os: OsType, count: usize) -> Result<(), CvmError> {
    for h in expand(template, count, "HostName")? {
        let bad = |why: &str| Err(CvmRefusal::HostNameIllegal(format!("`{h}` {why}")).into());
        let len = h.chars().count();
        let max = if os == OsType::Windows { 15 } else { 60 };
        if !(2..=max).contains(&len) {
            return bad(&format!("must be 2 to {max} characters long"));
        }
        if !h
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        {
            return bad("may contain only letters, digits, `-` and `.`");
        }
        let edge = |c: char| c == '-' || c == '.';
        if h.starts_with(edge) || h.ends_with(edge) {
            return bad("must not start or end with `-` or `.`");
        }
        if h.as_bytes()
            .windows(2)
            .any(|w| edge(w[0] as char) && edge(w[1] as char))
        {
            return bad("must not hold `-` or `.` twice in a row");
        }
        if os == OsType::Windows && (h.contains('.') || h.chars().all(|c| c.is_ascii_digit())) {
            return bad("must not contain `.` or be all digits on Windows");
        }
    }
    Ok(())
}

fn check_charge_type(t: Option<&str>) -> Result<(), CvmError> {
    match t {
        None | Some("POSTPAID_BY_HOUR") => Ok(()),
        // Why: refused rather than accepted, because DescribeInstances could only ever
        // answer POSTPAID_BY_HOUR; nothing is billed in the sandbox.
        Some(t @ ("PREPAID" | "SPOTPAID" | "CDHPAID" | "CDCPAID" | "UNDERWRITE")) => {
            Err(CvmRefusal::ChargeTypeUnsupported(t.into()).into())
        }
        Some(other) => Err(invalid(
            "InstanceChargeType",
            format!("`{other}` is not a charge type"),
        )),
    }
}

fn check_launch_template(t: &LaunchTemplate) -> Result<(), CvmError> {
    let id = required(
        t.launch_template_id.clone(),
        "LaunchTemplate.LaunchTemplateId",
    )?;
    if !is_well_formed(&id, "lt-", 8) {
        return Err(CvmRefusal::LaunchTemplateIdMalformed(id).into());
    }
    Err(CvmRefusal::LaunchTemplateNotFound(id).into())
}

/// InstanceCount (default 1) within the documented range, and MinCount not above it.
fn instance_count(count: Option<i64>, min: Option<i64>) -> Result<i64, CvmError> {
    let count = count.unwrap_or(1);
    if !(1..=MAX_COUNT).contains(&count) {
        return Err(invalid(
            "InstanceCount",
            format!("must be between 1 and {MAX_COUNT}"),
        ));
    }
    if let Some(min) = min {
        if min < 1 {
            return Err(invalid("MinCount", "must be a positive integer"));
        }
        if min > count {
            return Err(CvmRefusal::MinCountInvalid { min, count }.into());
        }
    }
    Ok(count)
}

fn check_client_token(token: &str) -> Result<(), CvmError> {
    let len = token.chars().count();
    if len > 64 {
        return Err(CvmRefusal::ClientTokenTooLong(len).into());
    }
    Ok(())
}

fn check_user_data(data: &str) -> Result<(), CvmError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data)
        .map_err(|_| CvmRefusal::UserDataInvalid)?;
    if bytes.len() > 16 * 1024 {
        return Err(CvmRefusal::UserDataTooLarge(bytes.len()).into());
    }
    Ok(())
}

/// The password and key pairs to launch with.
async fn login(
    ctx: &Ctx<'_>,
    settings: Option<LoginSettings>,
    image: &Image,
) -> Result<(Option<String>, Vec<String>), CvmError> {
    let Some(s) = settings else {
        // Why: the service would mail a random password; nobody could use one here, so the
        // instance gets none (log in by binding a key pair).
        return Ok((None, vec![]));
    };
    let keys = s.key_ids.unwrap_or_default();
    if s.keep_image_login == Some(true) {
        if s.password.is_some() || !keys.is_empty() {
            return Err(CvmRefusal::LoginConflict(
                "KeepImageLogin cannot be given with Password or KeyIds".into(),
            )
            .into());
        }
        return Err(invalid(
            "LoginSettings.KeepImageLogin",
            "only custom, shared or imported images keep their login; these images are public",
        ));
    }
    if let Some(p) = &s.password {
        check_password(p, image.os)?;
    }
    // Why: KeyIds together with Password is accepted (the password stays set, and key
    // binding turns password login off), although the field doc says they exclude each other.
    if !keys.is_empty() {
        ctx.core
            .check_key_ids(NS, "LoginSettings.KeyIds", &keys, MAX_IDS)?;
        if image.os == OsType::Windows {
            return Err(CvmError::Domain(DomainError::InstanceNotLinux {
                id: image.id.clone(),
            }));
        }
        ctx.core.get_key_pairs(ctx.account, NS, &keys).await?;
    }
    Ok((s.password, keys))
}

/// RunInstances.
pub async fn run(ctx: &Ctx<'_>, params: Value) -> Result<Value, CvmError> {
    let req: RunInstancesRequest = decode(params)?;
    if let Some(t) = &req.launch_template {
        check_launch_template(t)?;
    }
    let placement = required(req.placement, "Placement")?;
    let zone = required(placement.zone, "Placement.Zone")?;
    check_zone(&zone, ctx.region)?;
    // Why: instances keep no project; only the default project 0 exists here.
    match placement.project_id {
        None | Some(0) => {}
        Some(p) => return Err(CvmRefusal::ProjectNotFound(p).into()),
    }
    let image_id = required(req.image_id, "ImageId")?;
    if !is_image_id(&image_id) {
        return Err(CvmError::Domain(DomainError::ImageIdMalformed {
            id: image_id,
        }));
    }
    let image = ctx.core.image(NS, &image_id)?;
    check_charge_type(req.instance_charge_type.as_deref())?;
    let instance_type = req
        .instance_type
        .unwrap_or_else(|| DEFAULT_INSTANCE_TYPE.to_string());
    if parse_instance_type(&instance_type).is_none() {
        return Err(CvmRefusal::InstanceTypeMalformed(instance_type).into());
    }
    let count = instance_count(req.instance_count, req.min_count)?;
    let names = names(req.instance_name.as_deref(), count as usize)?;
    let host_names = match &req.host_name {
        Some(h) => {
            check_host_name(h, image.os, count as usize)?;
            expand(h, count as usize, "HostName")?
        }
        None => Vec::new(),
    };
    if let Some(token) = &req.client_token {
        check_client_token(token)?;
    }
    if let Some(data) = &req.user_data {
        check_user_data(data)?;
    }
    let (password, key_ids) = login(ctx, req.login_settings, &image).await?;
    let existing = ctx.core.count_instances(ctx.account, NS).await?;
    if existing + names.len() > INSTANCE_QUOTA {
        return Err(CvmError::Domain(DomainError::InstanceQuotaExceeded {
            limit: INSTANCE_QUOTA,
        }));
    }
    if req.dry_run == Some(true) {
        return Err(CvmRefusal::DryRun.into());
    }
    let spec = LaunchSpec {
        namespace: NS,
        region: ctx.region.to_string(),
        zone,
        image_id,
        names,
        host_names,
        password,
        key_ids,
        instance_type,
        ssh_port: ctx.core.ssh_port(),
        user_data: req.user_data.clone(),
        then_stop: false,
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
    fn passwords_follow_the_documented_rule() {
        for ok in ["Passw0rd", "password1", "pass-word", "ABCDEFG1", "a1234567"] {
            assert!(check_password(ok, OsType::Linux).is_ok(), "{ok}");
        }
        for bad in [
            "Pa1",
            "password",
            "12345678",
            "/Passw0rd",
            "Pass word1",
            &"a1".repeat(16),
        ] {
            assert!(check_password(bad, OsType::Linux).is_err(), "{bad}");
        }
        assert!(check_password("Passw0rd", OsType::Windows).is_err());
        assert!(check_password("Passw0rd!abc", OsType::Windows).is_ok());
        assert!(check_password("password1234", OsType::Windows).is_err());
    }

    #[test]
    fn name_patterns_expand_as_documented() {
        assert_eq!(expand("server_{R:3}", 1, "n").unwrap(), vec!["server_3"]);
        assert_eq!(
            expand("server_{R:3}", 2, "n").unwrap(),
            vec!["server_3", "server_4"]
        );
        assert_eq!(
            expand("server_{R:3,F:3}", 2, "n").unwrap(),
            vec!["server_003", "server_004"]
        );
        assert_eq!(
            expand("app_{R:99,F:2}", 2, "n").unwrap(),
            vec!["app_99", "app_100"]
        );
        assert_eq!(expand("web", 2, "n").unwrap(), vec!["web1", "web2"]);
        assert_eq!(expand("web", 1, "n").unwrap(), vec!["web"]);
        for bad in ["a{R:x}", "a{R:1,F:9}", "a{R:1", "a{R:1,F:z}"] {
            assert!(expand(bad, 2, "n").is_err(), "{bad}");
        }
    }

    #[test]
    fn zones_belong_to_the_region() {
        assert!(check_zone("ap-guangzhou-3", "ap-guangzhou").is_ok());
        assert!(check_zone("ap-shanghai-fsi-1", "ap-shanghai-fsi").is_ok());
        for bad in [
            "ap-beijing-3",
            "ap-guangzhou",
            "ap-guangzhou-0",
            "ap-guangzhou-33",
            "ap-guangzhou-x",
        ] {
            assert!(check_zone(bad, "ap-guangzhou").is_err(), "{bad}");
        }
    }

    #[test]
    fn host_names_follow_the_documented_rule() {
        assert!(check_host_name("web-1.example", OsType::Linux, 1).is_ok());
        assert!(check_host_name("web{R:1}", OsType::Linux, 3).is_ok());
        for bad in ["a", "-web", "web.", "we..b", "we_b", &"a".repeat(61)] {
            assert!(check_host_name(bad, OsType::Linux, 1).is_err(), "{bad}");
        }
        assert!(check_host_name("web.x", OsType::Windows, 1).is_err());
        assert!(check_host_name("12345", OsType::Windows, 1).is_err());
        assert!(check_host_name("win-01", OsType::Windows, 1).is_ok());
    }
}
