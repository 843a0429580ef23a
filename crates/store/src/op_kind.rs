//! How an operation's kind is stored, the same on both back ends: one JSON object in the
//! `kind` column, tagged by `type`, with the kind's fields under their own names, and beside
//! them `before`, the state the instance was in when the operation was recorded. Rows written
//! before a field existed read back with that field's default (see [`Stored`], [`Row`]).

use keyplane_core::account::Secret;
use keyplane_core::instance::{InstanceState, OpKind};
use serde::{Deserialize, Serialize};

/// The `kind` column: the kind, and the instance's state before the operation (`None` for a
/// launch, and in rows written before it was kept; a state this version does not know reads
/// as `None` too, since it only guides where a failed operation comes to rest).
#[derive(Serialize, Deserialize)]
struct Row {
    #[serde(flatten)]
    kind: Stored,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    before: Option<String>,
}

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

/// Encode an operation kind, and the state its instance was in before, for the `kind`
/// column.
pub(crate) fn encode(kind: &OpKind, before: Option<InstanceState>) -> String {
    let row = Row {
        kind: stored(kind),
        before: before.map(|s| s.as_str().to_string()),
    };
    serde_json::to_string(&row).expect("an operation kind encodes")
}

fn stored(kind: &OpKind) -> Stored {
    match kind.clone() {
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
    }
}

/// Decode a stored operation kind and the state before it; `None` for a kind this version
/// does not know.
pub(crate) fn decode(text: &str) -> Option<(OpKind, Option<InstanceState>)> {
    let row: Row = serde_json::from_str(text).ok()?;
    let before = row.before.as_deref().and_then(InstanceState::parse);
    Some((kind(row.kind), before))
}

fn kind(stored: Stored) -> OpKind {
    match stored {
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kind a row holds, whatever state it says the instance was in before.
    fn kind_of(text: &str) -> Option<OpKind> {
        decode(text).map(|(kind, _)| kind)
    }

    /// A kind encoded without a state before (a launch's).
    fn enc(kind: &OpKind) -> String {
        encode(kind, None)
    }

    /// The state before an operation is kept beside its kind; rows written before it was kept,
    /// and states this version does not know, read as `None`.
    #[test]
    fn the_state_before_is_kept_beside_the_kind() {
        let row = encode(&OpKind::Terminate, Some(InstanceState::Running));
        assert_eq!(row, r#"{"type":"terminate","before":"RUNNING"}"#);
        assert_eq!(
            decode(&row),
            Some((OpKind::Terminate, Some(InstanceState::Running)))
        );
        let stop = OpKind::Stop { force: true };
        let row = encode(&stop, Some(InstanceState::LaunchFailed));
        assert_eq!(
            decode(&row),
            Some((stop.clone(), Some(InstanceState::LaunchFailed)))
        );
        assert_eq!(
            decode(r#"{"type":"terminate"}"#),
            Some((OpKind::Terminate, None))
        );
        assert_eq!(
            decode(r#"{"type":"terminate","before":"HIBERNATED"}"#),
            Some((OpKind::Terminate, None))
        );
        // Without a type there is no kind, whatever else the row says.
        assert_eq!(decode(r#"{"before":"RUNNING"}"#), None);
    }

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
            assert_eq!(kind_of(row), Some(kind.clone()), "{row}");
            assert_eq!(kind_of(&enc(&kind)), Some(kind), "{row}");
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
        assert_eq!(enc(&plain), r#"{"type":"create"}"#);
        let stopped = OpKind::Create {
            user_data: None,
            then_stop: true,
        };
        assert_eq!(enc(&stopped), r#"{"type":"create","then_stop":true}"#);
        assert_eq!(kind_of(&enc(&stopped)), Some(stopped));
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
            assert_eq!(kind_of(&enc(&kind)), Some(kind));
        }
        let old = r#"{"type":"bind","add":["skey-aaaaaaaa"],"remove":[],"replace":true,"deferred":false}"#;
        assert!(matches!(
            kind_of(old),
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
            assert_eq!(kind_of(&enc(&kind)), Some(kind));
        }
        assert_eq!(kind_of(r#"{"type":"reset_password"}"#), None);
    }

    #[test]
    fn unknown_kinds_are_not_read() {
        for row in [r#"{"type":"resize"}"#, r#"{"force":true}"#, "", "[]"] {
            assert_eq!(kind_of(row), None, "{row}");
        }
    }
}
