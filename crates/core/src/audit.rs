//! The audit trail: one event per request that changed something or was refused.
//!
//! A change's event is written by the store in the same transaction as the change, so an
//! acknowledged change always has its event and a failed write leaves neither. A request
//! that starts asynchronous operations records how many; each operation's end is counted on
//! its request's event in the same transaction that finishes it, so the event shows the
//! operations' final state once they settle. A refused request (bad credentials, a broken
//! rule) changes nothing and is recorded on its own.
//!
//! An event never holds a secret: the caller is named by its SecretId or AccessKeyId, and
//! the request's parameters are not kept, only the resources it named.

use crate::account::Account;
use crate::error::DomainError;
use crate::service::Core;

/// Who made a request and how: what an audit event records of its caller. Built by the
/// dialect once the request's action is known.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestMeta {
    /// The wire dialect (`cvm`, `cvm-v2`, `lighthouse`, `ecs`, `agent`, ...).
    pub dialect: String,
    /// The action as the request named it.
    pub action: String,
    /// The request id the answer carries.
    pub request_id: String,
    /// The SecretId or AccessKeyId the request was signed with (empty when it named none).
    pub credential_id: String,
    /// The address the request came from.
    pub source_ip: String,
    /// The region the request addressed (empty when it named none).
    pub region: String,
}

/// A resource an event names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditResource {
    /// `instance` or `keypair`.
    pub kind: String,
    /// Its id (an ECS key pair, which has no id on the wire, is named by its name).
    pub id: String,
    /// Its name, or the id when it has none.
    pub name: String,
}

impl AuditResource {
    /// An instance.
    pub fn instance(id: &str) -> AuditResource {
        AuditResource {
            kind: "instance".into(),
            id: id.into(),
            name: id.into(),
        }
    }

    /// A key pair.
    pub fn key_pair(id: &str, name: &str) -> AuditResource {
        AuditResource {
            kind: "keypair".into(),
            id: id.into(),
            name: name.into(),
        }
    }
}

/// What became of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Refused with the dialect's error code.
    Refused(String),
    /// Done, or all its operations succeeded.
    Success,
    /// Some of its operations are still running.
    Operating,
    /// An operation it started failed.
    Failed,
}

impl Outcome {
    /// `SUCCESS`, `OPERATING`, `FAILED`, or the refusal's error code.
    pub fn label(&self) -> &str {
        match self {
            Outcome::Refused(code) => code,
            Outcome::Success => "SUCCESS",
            Outcome::Operating => "OPERATING",
            Outcome::Failed => "FAILED",
        }
    }
}

/// One recorded request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// Position in the trail, assigned by the store (0 before it is stored); later events
    /// have larger ones.
    pub seq: i64,
    /// Public id of the event.
    pub event_id: String,
    /// The account the request acted for; `None` when its credential named no account.
    pub account_id: Option<String>,
    /// When it was received (unix seconds).
    pub at: i64,
    /// Who and how.
    pub request: RequestMeta,
    /// Whether the action only reads.
    pub read_only: bool,
    /// The resources it named.
    pub resources: Vec<AuditResource>,
    /// The dialect's error code, when refused.
    pub error_code: Option<String>,
    /// The refusal's message (never a secret: messages name parameters, not their values).
    pub error_message: Option<String>,
    /// How many asynchronous operations it started.
    pub ops_total: u32,
    /// How many of those have not ended yet.
    pub ops_pending: u32,
    /// How many of those failed.
    pub ops_failed: u32,
    /// The first failed operation's error.
    pub op_error: Option<String>,
}

impl AuditEvent {
    /// What became of the request.
    pub fn outcome(&self) -> Outcome {
        if let Some(code) = &self.error_code {
            Outcome::Refused(code.clone())
        } else if self.ops_pending > 0 {
            Outcome::Operating
        } else if self.ops_failed > 0 {
            Outcome::Failed
        } else {
            Outcome::Success
        }
    }
}

/// One condition a lookup filters on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditAttribute {
    /// The action.
    EventName(String),
    /// The event's id.
    EventId(String),
    /// A resource's id.
    ResourceId(String),
    /// A resource's name or id.
    ResourceName(String),
    /// A resource kind (`instance`, `keypair`).
    ResourceType(String),
    /// The request id.
    RequestId(String),
    /// The SecretId or AccessKeyId.
    CredentialId(String),
    /// The source address.
    SourceIp(String),
    /// Read-only (`true`) or changing (`false`) requests.
    ReadOnly(bool),
    /// The refusal's error code.
    ErrorCode(String),
    /// Refused (`true`) or accepted (`false`) requests.
    Refused(bool),
    /// Requests in any of these dialects (`cvm`, `legacy`, `lighthouse`, `ecs`, `agent`, ...);
    /// none when empty.
    Dialects(Vec<String>),
}

/// A lookup in the trail: events in a time range matching every attribute, newest first
/// (oldest first when `ascending`), paged after a cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditQuery {
    /// Only this account's events; `None`: every account's (for the operator's CLI).
    pub account_id: Option<String>,
    /// Earliest time, inclusive (unix seconds).
    pub start: i64,
    /// Latest time, inclusive (unix seconds).
    pub end: i64,
    /// Conditions, all of which must hold.
    pub attributes: Vec<AuditAttribute>,
    /// At most this many events.
    pub limit: usize,
    /// Continue after the event at this position (in the query's order).
    pub after_seq: Option<i64>,
    /// Oldest first.
    pub ascending: bool,
}

impl Default for AuditQuery {
    fn default() -> AuditQuery {
        AuditQuery {
            account_id: None,
            start: 0,
            end: i64::MAX,
            attributes: Vec::new(),
            limit: 50,
            after_seq: None,
            ascending: false,
        }
    }
}

/// A page of events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditPage {
    /// The events, in the query's order.
    pub events: Vec<AuditEvent>,
    /// Whether more events match after the last one.
    pub more: bool,
    /// How many events match in all.
    pub total: u64,
}

/// How long and how many events are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Events older than this many seconds are deleted.
    pub max_age_secs: i64,
    /// Only the newest this many events are kept.
    pub max_events: u64,
}

impl Default for Retention {
    fn default() -> Retention {
        Retention {
            max_age_secs: 90 * 24 * 3600,
            max_events: 1_000_000,
        }
    }
}

/// A public event id: 32 random hexadecimal digits in the 8-4-4-4-12 shape.
fn new_event_id() -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bits = rand::random::<u128>();
    let mut id = [b'-'; 36];
    let mut at = 0;
    for i in 0..32 {
        if matches!(i, 8 | 12 | 16 | 20) {
            at += 1;
        }
        id[at] = HEX[((bits >> (124 - 4 * i)) & 0xf) as usize];
        at += 1;
    }
    // Every byte is an ASCII hex digit or '-': the check cannot fail (and is cheaper than the
    // lossy conversion's).
    String::from_utf8(id.to_vec()).unwrap_or_default()
}

impl Core {
    /// Whether requests are recorded.
    pub fn auditing(&self) -> bool {
        self.audit_enabled()
    }

    /// An event of `req` naming `resources`: no account, no operations, no refusal yet.
    pub(crate) fn bare_event(&self, req: RequestMeta, resources: Vec<AuditResource>) -> AuditEvent {
        AuditEvent {
            seq: 0,
            event_id: new_event_id(),
            account_id: None,
            at: self.now(),
            request: req,
            read_only: false,
            resources,
            error_code: None,
            error_message: None,
            ops_total: 0,
            ops_pending: 0,
            ops_failed: 0,
            op_error: None,
        }
    }

    /// The event for a change `req` made for `account` on `resources`, starting `ops`
    /// operations; `None` when auditing is off. The store writes it with the change.
    pub(crate) fn change_event(
        &self,
        req: &RequestMeta,
        account: &Account,
        resources: Vec<AuditResource>,
        ops: usize,
    ) -> Option<AuditEvent> {
        if !self.audit_enabled() {
            return None;
        }
        let ops = u32::try_from(ops).unwrap_or(u32::MAX);
        Some(AuditEvent {
            account_id: Some(account.id.clone()),
            ops_total: ops,
            ops_pending: ops,
            ..self.bare_event(req.clone(), resources)
        })
    }

    /// The event of a refused request: `code` and `message` as the dialect answered, the
    /// resources it named, and the account when known (otherwise the account whose credential
    /// it named, if any); `None` when auditing is off. Record it with
    /// [`Core::record_events`]: a refusal changes nothing, so its event is written on its own.
    pub async fn refusal_event(
        &self,
        req: RequestMeta,
        account_id: Option<&str>,
        read_only: bool,
        resources: Vec<AuditResource>,
        code: &str,
        message: &str,
    ) -> Option<AuditEvent> {
        if !self.audit_enabled() {
            return None;
        }
        let account_id = match account_id {
            Some(id) => Some(id.to_string()),
            None => self.account_of_credential(&req.credential_id).await,
        };
        Some(AuditEvent {
            account_id,
            read_only,
            error_code: Some(code.to_string()),
            error_message: Some(message.to_string()),
            ..self.bare_event(req, resources)
        })
    }

    /// Record events of refused requests, in one transaction.
    pub async fn record_events(&self, events: Vec<AuditEvent>) -> Result<(), DomainError> {
        if events.is_empty() {
            return Ok(());
        }
        self.store()
            .record_events(events)
            .await
            .map_err(DomainError::internal)
    }

    /// Record a refused request now (see [`Core::refusal_event`]). A failure to record is
    /// returned for the caller to log; the refusal's answer does not depend on it.
    pub async fn record_refusal(
        &self,
        req: &RequestMeta,
        account_id: Option<&str>,
        read_only: bool,
        resources: Vec<AuditResource>,
        code: &str,
        message: &str,
    ) -> Result<(), DomainError> {
        let event = self
            .refusal_event(req.clone(), account_id, read_only, resources, code, message)
            .await;
        match event {
            Some(e) => self.record_events(vec![e]).await,
            None => Ok(()),
        }
    }

    /// The account a SecretId or AccessKeyId belongs to, if any.
    async fn account_of_credential(&self, credential_id: &str) -> Option<String> {
        if credential_id.is_empty() {
            return None;
        }
        let store = self.store();
        let by_secret = store.account_by_secret_id(credential_id).await;
        if let Ok(Some(a)) = by_secret {
            return Some(a.id);
        }
        match store.account_by_access_key_id(credential_id).await {
            Ok(Some(a)) => Some(a.id),
            _ => None,
        }
    }

    /// Look events up.
    pub async fn lookup_events(&self, query: &AuditQuery) -> Result<AuditPage, DomainError> {
        self.store()
            .query_events(query)
            .await
            .map_err(DomainError::internal)
    }

    /// Delete what `retention` no longer keeps; returns how many events went.
    pub async fn prune_events(&self, retention: Retention) -> Result<u64, DomainError> {
        let before = self.now().saturating_sub(retention.max_age_secs);
        self.store()
            .prune_events(before, retention.max_events)
            .await
            .map_err(DomainError::internal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_are_uuid_shaped() {
        let id = new_event_id();
        assert_eq!(id.len(), 36);
        assert_eq!(id.matches('-').count(), 4);
        let dashes: Vec<usize> = id.match_indices('-').map(|(i, _)| i).collect();
        assert_eq!(dashes, vec![8, 13, 18, 23]);
        assert!(id.bytes().all(|b| b == b'-' || b.is_ascii_hexdigit()));
        assert_ne!(id, new_event_id());
    }

    #[test]
    fn outcomes_follow_the_operations() {
        let mut e = AuditEvent {
            seq: 1,
            event_id: String::new(),
            account_id: None,
            at: 0,
            request: RequestMeta::default(),
            read_only: false,
            resources: vec![],
            error_code: None,
            error_message: None,
            ops_total: 2,
            ops_pending: 1,
            ops_failed: 0,
            op_error: None,
        };
        assert_eq!(e.outcome(), Outcome::Operating);
        e.ops_pending = 0;
        assert_eq!(e.outcome().label(), "SUCCESS");
        e.ops_failed = 1;
        assert_eq!(e.outcome(), Outcome::Failed);
        e.error_code = Some("InvalidParameter".into());
        assert_eq!(e.outcome().label(), "InvalidParameter");
    }
}
