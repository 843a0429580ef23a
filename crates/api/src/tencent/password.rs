//! The password rule of Tencent's ResetInstancesPassword, shared by CVM, Lighthouse and the
//! legacy v2 API: the password's shape, and the one user whose password the sandbox sets.

use super::error::TcError;
use super::wire::invalid;
use keyplane_core::instance::{Instance, OsType};
use keyplane_core::DomainError;

/// The special characters the reset rule counts (both SDKs' ResetInstancesPassword docs).
const RESET_SPECIALS: &str = "()`~!@#$%^&*-+=_|{}[]:;'<>,.?/";
/// `UserName` is at most this long.
pub const MAX_USER_NAME: usize = 64;

/// The reset rule of CVM and Lighthouse: Linux 8-30 characters, Windows 12-30 and not holding
/// the user name; not starting with `/`; only letters, digits and the specials; at least three
/// of lower case, upper case, digits and specials. A batch holding a Windows instance takes the
/// Windows rule.
pub fn check_reset_password(password: &str, windows: bool, user: &str) -> Result<(), DomainError> {
    let refuse = |reason: String| Err(DomainError::InvalidPassword { reason });
    let min = if windows { 12 } else { 8 };
    if !(min..=30).contains(&password.chars().count()) {
        return refuse(format!("it must be {min} to 30 characters long"));
    }
    if password.starts_with('/') {
        return refuse("it must not start with `/`".into());
    }
    if password
        .chars()
        .any(|c| !c.is_ascii_alphanumeric() && !RESET_SPECIALS.contains(c))
    {
        return refuse(format!(
            "it may hold only letters, digits and {RESET_SPECIALS}"
        ));
    }
    if windows && password.to_lowercase().contains(&user.to_lowercase()) {
        return refuse("a Windows password must not contain the user name".into());
    }
    let classes = [
        password.chars().any(|c| c.is_ascii_lowercase()),
        password.chars().any(|c| c.is_ascii_uppercase()),
        password.chars().any(|c| c.is_ascii_digit()),
        password.chars().any(|c| RESET_SPECIALS.contains(c)),
    ];
    if classes.into_iter().filter(|b| *b).count() < 3 {
        return refuse(format!(
            "it must mix at least three of lower-case letters, upper-case letters, digits and {RESET_SPECIALS}"
        ));
    }
    Ok(())
}

/// The administrator account a reset changes on `os` (as both products document it).
pub fn admin_user(os: OsType) -> &'static str {
    match os {
        OsType::Linux => "root",
        OsType::Windows => "Administrator",
    }
}

/// Check `UserName` against the instances: the administrator is the only account whose
/// password the sandbox sets. Returns the name the Windows rule compares with.
// Why: the clouds reset any named account; a sandbox instance's boot sets root's password
// only, so another name is refused rather than silently resetting root's.
pub fn check_user_name(user: Option<&str>, instances: &[Instance]) -> Result<String, DomainError> {
    let windows = instances.iter().any(|i| i.os == OsType::Windows);
    let default = admin_user(if windows {
        OsType::Windows
    } else {
        OsType::Linux
    });
    let Some(user) = user else {
        return Ok(default.to_string());
    };
    if let Some(inst) = instances.iter().find(|i| admin_user(i.os) != user) {
        return Err(DomainError::InvalidParameterValue {
            param: "UserName".into(),
            reason: format!(
                "only the administrator `{}` of `{}` can have its password reset here, not `{user}`",
                admin_user(inst.os),
                inst.id
            ),
        });
    }
    Ok(user.to_string())
}

/// The reset of `instances` to `password` for `user` (when named): the user must be their
/// administrator ([`check_user_name`]), and the password pass the reset rule
/// ([`check_reset_password`]), Windows' when any of them runs Windows.
pub fn check_reset(
    password: &str,
    user: Option<&str>,
    instances: &[Instance],
) -> Result<(), DomainError> {
    let user = check_user_name(user, instances)?;
    let windows = instances.iter().any(|i| i.os == OsType::Windows);
    check_reset_password(password, windows, &user)
}

/// A `UserName`, when given, is 1 to [`MAX_USER_NAME`] characters; `too_long` makes the
/// product's own error for a longer one (given its length).
pub(crate) fn check_user_name_shape<R>(
    user: Option<&str>,
    too_long: impl FnOnce(usize) -> TcError<R>,
) -> Result<(), TcError<R>> {
    let Some(user) = user else {
        return Ok(());
    };
    let len = user.chars().count();
    if len > MAX_USER_NAME {
        return Err(too_long(len));
    }
    if user.is_empty() {
        return Err(invalid("UserName", "must not be empty"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reset_rule_wants_three_classes() {
        assert!(check_reset_password("Kp-Passw0rd", false, "root").is_ok());
        assert!(check_reset_password("abcdEF12", false, "root").is_ok());
        assert!(check_reset_password("abcdefgh", false, "root").is_err());
        // Two classes pass RunInstances' Linux rule but not the reset's.
        assert!(check_reset_password("abcd1234", false, "root").is_err());
        assert!(check_reset_password("Ab1!", false, "root").is_err());
        assert!(check_reset_password("/bcdEF12x", false, "root").is_err());
        assert!(check_reset_password("Ab1 cdefgh", false, "root").is_err());
        assert!(check_reset_password("Ab1|cdefgh", false, "root").is_ok());
        assert!(check_reset_password("Ab1-cdefghijklmnopqrstuvwxyz12345", false, "root").is_err());
        // Windows: 12 at least, without the user name.
        assert!(check_reset_password("abcdEF12", true, "Administrator").is_err());
        assert!(check_reset_password("abcdEF12-xyz", true, "Administrator").is_ok());
        assert!(check_reset_password("xAdministrator1", true, "Administrator").is_err());
    }
}
