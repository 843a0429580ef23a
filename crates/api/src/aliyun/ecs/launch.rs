//! DescribeImages, RunInstances and CreateInstance: the sandbox images and the instances made
//! from them (a real OpenSSH server for the Linux image, a record for the Windows one).

use super::{decode_params, invalid, key_pair_by_name, page, Ctx, NS};
use crate::aliyun::ecs::dto::{image_out, DescribeImagesRequest, LaunchRequest};
use crate::aliyun::error::{AliError, EcsRefusal};
use keyplane_core::compute::LaunchSpec;
use keyplane_core::instance::OsType;
use keyplane_core::DomainError;
use serde_json::{json, Value};
use std::time::Duration;

/// When the sandbox images were "published" (shown as their CreationTime).
const IMAGE_TIME: i64 = 1_704_067_200;
/// The special characters the ECS password rule counts.
const PASSWORD_SPECIALS: &str = "()`~!@#$%^&*-_+=|{}[]:;'<>,.?/";
/// How long CreateInstance waits for the new instance to be laid out and stopped.
const CREATE_SETTLE: Duration = Duration::from_secs(60);

/// DescribeImages.
pub async fn describe_images(
    ctx: &Ctx<'_>,
    params: &[(String, String)],
) -> Result<Value, AliError> {
    let req: DescribeImagesRequest = decode_params(params)?;
    let (offset, limit, number, size) = page(req.page_number, req.page_size, 100)?;
    if req.dry_run == Some(true) {
        return Err(EcsRefusal::DryRun.into());
    }
    let ids: Option<Vec<&str>> = req
        .image_id
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(|s| s.split(',').map(str::trim).collect());
    let some = |v: &Option<String>| v.as_deref().filter(|s| !s.is_empty()).map(str::to_string);
    let matching: Vec<Value> = ctx
        .core
        .images(NS)
        .iter()
        .filter(|i| ids.as_ref().is_none_or(|ids| ids.contains(&i.id.as_str())))
        .filter(|i| some(&req.image_name).is_none_or(|n| i.name.contains(&n)))
        .filter(|i| some(&req.os_type).is_none_or(|o| o.eq_ignore_ascii_case(i.os.as_str())))
        .filter(|_| some(&req.image_owner_alias).is_none_or(|a| a == "system"))
        .filter(|_| some(&req.architecture).is_none_or(|a| a == "x86_64"))
        .filter(|_| some(&req.status).is_none_or(|s| s == "Available" || s == "ALL"))
        .map(|i| image_out(i, IMAGE_TIME))
        .collect();
    let page_items: Vec<Value> = matching.iter().skip(offset).take(limit).cloned().collect();
    Ok(json!({
        "RegionId": req.region_id,
        "TotalCount": matching.len(),
        "PageNumber": number,
        "PageSize": size,
        "Images": { "Image": page_items },
    }))
}

/// `UserData`: base64 of at most 32 KiB, as ECS takes it (kept encoded for the operation).
fn check_user_data(data: Option<&str>) -> Result<Option<String>, AliError> {
    use base64::Engine;
    let Some(data) = data.filter(|d| !d.is_empty()) else {
        return Ok(None);
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .map_err(|_| EcsRefusal::UserDataFormat)?;
    if bytes.len() > 32 * 1024 {
        return Err(EcsRefusal::UserDataSize(bytes.len()).into());
    }
    Ok(Some(data.trim().to_string()))
}

/// ECS's password rule: 8 to 30 characters mixing at least three of upper case, lower case,
/// digits and specials; nothing else; a Windows password must not start with `/`.
pub fn check_password(password: &str, os: OsType) -> Result<(), DomainError> {
    let refuse = |reason: &str| {
        Err(DomainError::InvalidPassword {
            reason: reason.to_string(),
        })
    };
    if !(8..=30).contains(&password.chars().count()) {
        return refuse("it must be 8 to 30 characters long");
    }
    if os == OsType::Windows && password.starts_with('/') {
        return refuse("a Windows password must not start with `/`");
    }
    if password
        .chars()
        .any(|c| !c.is_ascii_alphanumeric() && !PASSWORD_SPECIALS.contains(c))
    {
        return refuse("it may hold only letters, digits and ()`~!@#$%^&*-_+=|{}[]:;'<>,.?/");
    }
    let classes = [
        password.chars().any(|c| c.is_ascii_uppercase()),
        password.chars().any(|c| c.is_ascii_lowercase()),
        password.chars().any(|c| c.is_ascii_digit()),
        password.chars().any(|c| PASSWORD_SPECIALS.contains(c)),
    ];
    if classes.iter().filter(|b| **b).count() < 3 {
        return refuse("it must mix at least three of upper case, lower case, digits and specials");
    }
    Ok(())
}

pub(crate) fn check_name(name: &str) -> Result<(), AliError> {
    let bad = |why: &str| Err(EcsRefusal::InstanceName(format!("`{name}` {why}")).into());
    let len = name.chars().count();
    if !(2..=128).contains(&len) {
        return bad("must be 2 to 128 characters long");
    }
    if name.starts_with("http://") || name.starts_with("https://") {
        return bad("must not start with http:// or https://");
    }
    if !name.chars().next().is_some_and(char::is_alphabetic) {
        return bad("must start with a letter");
    }
    if !name
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | ':' | '[' | ']' | ','))
    {
        return bad("may hold only letters, digits, '.', '_', '-' and ':'");
    }
    Ok(())
}

/// Names for `count` instances: `name[begin,digits]` numbers them from `begin`, zero-padded
/// to `digits`; without the pattern every instance gets the name. No name: the instance id.
fn names(name: Option<&str>, count: usize) -> Result<Vec<String>, AliError> {
    let Some(name) = name.filter(|n| !n.is_empty()) else {
        return Ok(vec![String::new(); count]);
    };
    check_name(name)?;
    let pattern = name.rfind('[').and_then(|open| {
        let close = open + name[open..].find(']')?;
        let (begin, digits) = name[open + 1..close].split_once(',')?;
        Some((
            open,
            close,
            begin.parse::<u64>().ok()?,
            digits.parse::<usize>().ok()?,
        ))
    });
    Ok(match pattern {
        Some((open, close, begin, digits)) if digits <= 6 => (0..count as u64)
            .map(|i| {
                format!(
                    "{}{:0digits$}{}",
                    &name[..open],
                    begin + i,
                    &name[close + 1..]
                )
            })
            .collect(),
        _ => vec![name.to_string(); count],
    })
}

pub(crate) fn check_host_name(host: &str) -> Result<(), AliError> {
    let ok = (2..=64).contains(&host.len())
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        && !host.starts_with(['.', '-'])
        && !host.ends_with(['.', '-'])
        && !host.contains("..")
        && !host.contains("--");
    if ok {
        Ok(())
    } else {
        Err(EcsRefusal::HostName(format!(
            "`{host}` must be 2 to 64 letters, digits, '.' or '-', not starting or ending with '.' or '-'"
        ))
        .into())
    }
}

/// A description: 2 to 256 characters, not starting with `http://` or `https://`.
pub(crate) fn check_description(d: &str) -> Result<(), AliError> {
    if !(2..=256).contains(&d.chars().count())
        || d.starts_with("http://")
        || d.starts_with("https://")
    {
        return Err(EcsRefusal::Description(
            "2 to 256 characters, not starting with http:// or https://".into(),
        )
        .into());
    }
    Ok(())
}

/// How a launch leaves its instances: RunInstances starts them, CreateInstance leaves them
/// stopped (booted once, which lays out their SSH state, then stopped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LeftAs {
    Running,
    Stopped,
}

/// Everything RunInstances and CreateInstance check, in one place; the launch spec of `count`
/// instances, left as `left`.
async fn plan(
    ctx: &Ctx<'_>,
    req: &LaunchRequest,
    count: usize,
    left: LeftAs,
) -> Result<LaunchSpec, AliError> {
    let image_id = req
        .image_id
        .clone()
        .filter(|i| !i.is_empty())
        .ok_or_else(|| AliError::MissingParameter("ImageId".into()))?;
    let image = ctx.core.image(NS, &image_id)?;
    let instance_type = instance_type(req)?;
    let zone = zone(req)?;
    check_options(req)?;
    let password = password(req, image.os)?;
    // The key pair name is ignored for Windows images, as documented.
    let key_ids = match req.key_pair_name.as_deref().filter(|k| !k.is_empty()) {
        Some(name) if image.os == OsType::Linux => {
            vec![key_pair_by_name(ctx, &req.region_id, name).await?.id]
        }
        _ => Vec::new(),
    };
    Ok(LaunchSpec {
        namespace: NS,
        region: req.region_id.clone(),
        zone,
        image_id,
        names: names(req.instance_name.as_deref(), count)?,
        host_names: match req.host_name.as_deref().filter(|h| !h.is_empty()) {
            Some(h) => vec![h.to_string(); count],
            None => Vec::new(),
        },
        password,
        key_ids,
        instance_type,
        ssh_port: ctx.core.ssh_port(),
        client_token: req.client_token.clone().filter(|t| !t.is_empty()),
        user_data: check_user_data(req.user_data.as_deref())?,
        then_stop: left == LeftAs::Stopped,
    })
}

/// `InstanceType`, required, shaped like `ecs.g6.large`.
fn instance_type(req: &LaunchRequest) -> Result<String, AliError> {
    let instance_type = req
        .instance_type
        .clone()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| AliError::MissingParameter("InstanceType".into()))?;
    let parts: Vec<&str> = instance_type.split('.').collect();
    let part_ok =
        |p: &&str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if parts.len() != 3 || parts[0] != "ecs" || !parts.iter().all(part_ok) {
        return Err(EcsRefusal::InstanceType(instance_type).into());
    }
    Ok(instance_type)
}

/// `ZoneId`, a zone of the request's region (its zone `a` by default).
fn zone(req: &LaunchRequest) -> Result<String, AliError> {
    let Some(z) = req.zone_id.as_deref().filter(|z| !z.is_empty()) else {
        return Ok(format!("{}-a", req.region_id));
    };
    let ok = z
        .strip_prefix(&format!("{}-", req.region_id))
        .is_some_and(|s| s.len() == 1 && s.as_bytes()[0].is_ascii_lowercase());
    if !ok {
        return Err(EcsRefusal::ZoneNotFound(z.to_string()).into());
    }
    Ok(z.to_string())
}

/// The options that only need checking: charge type, client token, host name, description,
/// bandwidth and tags.
fn check_options(req: &LaunchRequest) -> Result<(), AliError> {
    match req.instance_charge_type.as_deref() {
        None | Some("") | Some("PostPaid") => {}
        Some(other) => return Err(EcsRefusal::ChargeType(other.to_string()).into()),
    }
    if let Some(t) = &req.client_token {
        if t.len() > 64 || !t.is_ascii() {
            return Err(invalid("ClientToken", "at most 64 ASCII characters"));
        }
    }
    if let Some(h) = req.host_name.as_deref().filter(|h| !h.is_empty()) {
        check_host_name(h)?;
    }
    if let Some(d) = req.description.as_deref().filter(|d| !d.is_empty()) {
        check_description(d)?;
    }
    if let Some(n) = req.internet_max_bandwidth_out {
        if !(0..=100).contains(&n) {
            return Err(invalid(
                "InternetMaxBandwidthOut",
                "it must be between 0 and 100",
            ));
        }
    }
    super::tags(&req.tag)?;
    Ok(())
}

/// `Password`, when given: the image's platform's rule, and not with `PasswordInherit`.
fn password(req: &LaunchRequest, os: OsType) -> Result<Option<String>, AliError> {
    let password = req.password.clone().filter(|p| !p.is_empty());
    if let Some(p) = &password {
        check_password(p, os)?;
    }
    if password.is_some() && req.password_inherit == Some(true) {
        return Err(invalid(
            "Password",
            "it must be empty when PasswordInherit is true",
        ));
    }
    Ok(password)
}

/// RunInstances: `Amount` instances (1 to 100), created and started.
pub async fn run(ctx: &Ctx<'_>, params: &[(String, String)]) -> Result<Value, AliError> {
    let req: LaunchRequest = decode_params(params)?;
    let amount = req.amount.unwrap_or(1);
    if !(1..=100).contains(&amount) {
        return Err(invalid("Amount", "it must be between 1 and 100"));
    }
    if let Some(min) = req.min_amount {
        if !(1..=amount).contains(&min) {
            return Err(invalid("MinAmount", "it must be between 1 and Amount"));
        }
    }
    let spec = plan(ctx, &req, amount as usize, LeftAs::Running).await?;
    if req.dry_run == Some(true) {
        return Err(EcsRefusal::DryRun.into());
    }
    let ids = ctx
        .core
        .launch_instances(ctx.account, spec, ctx.req)
        .await?;
    Ok(json!({ "InstanceIdSets": { "InstanceIdSet": ids } }))
}

/// CreateInstance: one instance, left Stopped as ECS leaves it (StartInstance starts it).
pub async fn create(ctx: &Ctx<'_>, params: &[(String, String)]) -> Result<Value, AliError> {
    let req: LaunchRequest = decode_params(params)?;
    let spec = plan(ctx, &req, 1, LeftAs::Stopped).await?;
    if req.dry_run == Some(true) {
        return Err(EcsRefusal::DryRun.into());
    }
    let id = ctx
        .core
        .launch_instances(ctx.account, spec, ctx.req)
        .await?
        .remove(0);
    // Why: the sandbox is laid out by booting it once (that is how its SSH state is first
    // applied), then stopped, in the one create operation; the answer waits for it so
    // DescribeInstances never shows a CreateInstance instance Running. Past the bound the
    // operation still goes on, durably. A failed launch reads as Stopped, as before.
    let _ = ctx
        .core
        .await_operation(&id, &ctx.req.request_id, CREATE_SETTLE)
        .await;
    Ok(json!({ "InstanceId": id }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords() {
        assert!(check_password("Kp-Passw0rd!", OsType::Linux).is_ok());
        assert!(check_password("abcdefgh", OsType::Linux).is_err());
        assert!(check_password("abcdEFGH", OsType::Linux).is_err());
        assert!(check_password("abcdEF12", OsType::Linux).is_ok());
        assert!(check_password("/bcdEF12", OsType::Windows).is_err());
        assert!(check_password("Ab1 cdefg", OsType::Linux).is_err());
        assert!(check_password("Ab1!", OsType::Linux).is_err());
    }

    #[test]
    fn batch_names() {
        assert_eq!(
            names(Some("web[1,3]"), 2).unwrap(),
            vec!["web001", "web002"]
        );
        assert_eq!(names(Some("web"), 2).unwrap(), vec!["web", "web"]);
        assert_eq!(names(None, 1).unwrap(), vec![""]);
        assert!(names(Some("1web"), 1).is_err());
        assert!(names(Some("w"), 1).is_err());
    }
}
