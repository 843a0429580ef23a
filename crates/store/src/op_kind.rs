//! How an operation's kind is stored, the same on both back ends: one JSON object in the
//! `kind` column, tagged by `type`, with the kind's fields under their own names. Rows written
//! before a field existed read back with that field's default (see [`Stored`]).

use keyplane_core::account::Secret;
use keyplane_core::instance::OpKind;
use serde::{Deserialize, Serialize};

/// [`OpKind`] as stored. A flag or a list missing from a row reads as `false` or empty; a
/// `bind` without `restart` was recorded before the flag existed, when it restarted what it
/// stopped.
#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Stored {
    Create {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user_data: Option<String>,
        /// Left out when false, so a create that does not stop is stored as it always was.
        #[serde(default, skip_serializing_if = "is_false")]
        then_stop: bool,
    },
    Start,
    Stop {
        #[serde(default)]
        force: bool,
    },
    Reboot {
        #[serde(default)]
        force: bool,
    },
    Terminate,
    Bind {
        #[serde(default)]
        add: Vec<String>,
        #[serde(default)]
        remove: Vec<String>,
        #[serde(default)]
        replace: bool,
        #[serde(default)]
        deferred: bool,
        #[serde(default = "restarted")]
        restart: bool,
    },
    ResetPassword {
        /// A crypt hash, never a password: what the instance's /etc/shadow will hold.
        password_hash: String,
        #[serde(default)]
        deferred: bool,
        #[serde(default)]
        restart: bool,
    },
}

fn is_false(b: &bool) -> bool {
    !b
}

/// What a `bind` recorded before `restart` existed did.
fn restarted() -> bool {
    true
}

/// Encode an operation kind for the `kind` column.
pub(crate) fn encode(kind: &OpKind) -> String {
    let stored = match kind.clone() {
        OpKind::Create {
            user_data,
            then_stop,
        } => Stored::Create {
            user_data,
            then_stop,
        },
        OpKind::Start => Stored::Start,
        OpKind::Stop { force } => Stored::Stop { force },
        OpKind::Reboot { force } => Stored::Reboot { force },
        OpKind::Terminate => Stored::Terminate,
        OpKind::Bind {
            add,
            remove,
            replace,
            deferred,
            restart,
        } => Stored::Bind {
            add,
            remove,
            replace,
            deferred,
            restart,
        },
        OpKind::ResetPassword {
            password_hash,
            deferred,
            restart,
        } => Stored::ResetPassword {
            password_hash: password_hash.expose().to_string(),
            deferred,
            restart,
        },
    };
    serde_json::to_string(&stored).expect("an operation kind encodes")
}

/// Decode a stored operation kind; `None` for one this version does not know.
pub(crate) fn decode(text: &str) -> Option<OpKind> {
    Some(match serde_json::from_str(text).ok()? {
        Stored::Create {
            user_data,
            then_stop,
        } => OpKind::Create {
            user_data,
            then_stop,
        },
        Stored::Start => OpKind::Start,
        Stored::Stop { force } => OpKind::Stop { force },
        Stored::Reboot { force } => OpKind::Reboot { force },
        Stored::Terminate => OpKind::Terminate,
        Stored::Bind {
            add,
            remove,
            replace,
            deferred,
            restart,
        } => OpKind::Bind {
            add,
            remove,
            replace,
            deferred,
            restart,
        },
        Stored::ResetPassword {
            password_hash,
            deferred,
            restart,
        } => OpKind::ResetPassword {
            password_hash: Secret::new(password_hash),
            deferred,
            restart,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bind(restart: bool) -> OpKind {
        OpKind::Bind {
            add: vec!["skey-aaaaaaaa".into()],
            remove: vec!["skey-bbbbbbbb".into()],
            replace: false,
            deferred: true,
            restart,
        }
    }

    /// Rows as the store wrote them before the codec was derived (keys in alphabetical
    /// order), which existing databases hold: each reads back as the kind it was.
    #[test]
    fn rows_already_written_read_back() {
        let rows = [
            (
                r#"{"type":"create"}"#,
                OpKind::Create {
                    user_data: None,
                    then_stop: false,
                },
            ),
            (
                r#"{"type":"create","user_data":"IyEvYmluL3NoCg=="}"#,
                OpKind::Create {
                    user_data: Some("IyEvYmluL3NoCg==".into()),
                    then_stop: false,
                },
            ),
            (r#"{"type":"start"}"#, OpKind::Start),
            (
                r#"{"force":true,"type":"stop"}"#,
                OpKind::Stop { force: true },
            ),
            (
                r#"{"force":false,"type":"reboot"}"#,
                OpKind::Reboot { force: false },
            ),
            (r#"{"type":"terminate"}"#, OpKind::Terminate),
            (
                r#"{"add":["skey-aaaaaaaa"],"deferred":true,"remove":["skey-bbbbbbbb"],"replace":false,"restart":false,"type":"bind"}"#,
                bind(false),
            ),
            (
                r#"{"deferred":true,"password_hash":"$6$salt$hash","restart":false,"type":"reset_password"}"#,
                OpKind::ResetPassword {
                    password_hash: Secret::new("$6$salt$hash"),
                    deferred: true,
                    restart: false,
                },
            ),
        ];
        for (row, kind) in rows {
            assert_eq!(decode(row), Some(kind.clone()), "{row}");
            assert_eq!(decode(&encode(&kind)), Some(kind), "{row}");
        }
    }

    /// A create that stops the instance says so; one that does not is stored as before the
    /// flag existed, so older nodes still read it.
    #[test]
    fn create_kinds_round_trip() {
        let plain = OpKind::Create {
            user_data: None,
            then_stop: false,
        };
        assert_eq!(encode(&plain), r#"{"type":"create"}"#);
        let stopped = OpKind::Create {
            user_data: None,
            then_stop: true,
        };
        assert_eq!(encode(&stopped), r#"{"type":"create","then_stop":true}"#);
        assert_eq!(decode(&encode(&stopped)), Some(stopped));
    }

    #[test]
    fn bind_kinds_round_trip_and_old_rows_restart() {
        for restart in [true, false] {
            let kind = OpKind::Bind {
                add: vec!["lhkp-aaaaaaaa".into()],
                remove: vec![],
                replace: true,
                deferred: false,
                restart,
            };
            assert_eq!(decode(&encode(&kind)), Some(kind));
        }
        let old = r#"{"type":"bind","add":["skey-aaaaaaaa"],"remove":[],"replace":true,"deferred":false}"#;
        assert!(matches!(
            decode(old),
            Some(OpKind::Bind { restart: true, .. })
        ));
    }

    #[test]
    fn reset_kinds_round_trip_and_need_a_hash() {
        for (deferred, restart) in [(false, true), (false, false), (true, false)] {
            let kind = OpKind::ResetPassword {
                password_hash: Secret::new("$6$salt$hash"),
                deferred,
                restart,
            };
            assert_eq!(decode(&encode(&kind)), Some(kind));
        }
        assert_eq!(decode(r#"{"type":"reset_password"}"#), None);
    }

    #[test]
    fn unknown_kinds_are_not_read() {
        for row in [r#"{"type":"resize"}"#, r#"{"force":true}"#, "", "[]"] {
            assert_eq!(decode(row), None, "{row}");
        }
    }
}
