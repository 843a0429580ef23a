//! What the audit trail learns of a request while it is served: who sent it from where, and,
//! when it is refused, the resources it named. Changes are recorded by the core with the
//! change; a dialect records a refusal through [`Trail::refused`] once it knows the code.
//!
//! A refusal changed nothing, so its answer does not wait for its event to be on disk: the
//! event goes to the node's [`RefusalLog`], which gathers refusals for at most 50 ms and
//! writes each batch in one transaction, and which lookups on the node flush first (so a
//! refusal is in the answer of any lookup made after it).

use super::request::RawRequest;
use keyplane_core::account::Account;
use keyplane_core::audit::AuditEvent;
use keyplane_core::audit::AuditResource;
use keyplane_core::{Core, RequestMeta};
use serde_json::Value;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, Notify};

/// At most this many refusals are written in one transaction.
const BATCH: usize = 512;
/// How long refusals gather before they are written: under a stream of refusals that is one
/// commit (one fsync) per this period rather than one per burst. A flush writes at once.
const GATHER: std::time::Duration = std::time::Duration::from_millis(50);

enum Entry {
    Event(Box<AuditEvent>),
    Flushed(oneshot::Sender<()>),
}

/// Refusals on their way to the store, written in batches by a task of their own.
#[derive(Debug, Clone)]
pub struct RefusalLog {
    queue: mpsc::UnboundedSender<Entry>,
    /// Cuts the gathering short: a flush waits.
    flush_now: Arc<Notify>,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Entry")
    }
}

impl RefusalLog {
    /// Start the writer task over `core` (on the current tokio runtime).
    pub fn start(core: Core) -> RefusalLog {
        let (queue, mut entries) = mpsc::unbounded_channel::<Entry>();
        let flush_now = Arc::new(Notify::new());
        let flushing = flush_now.clone();
        tokio::spawn(async move {
            while let Some(first) = entries.recv().await {
                let deadline = tokio::time::Instant::now() + GATHER;
                // Room for a whole batch at once: growing to it copied the batch nine times.
                let (mut batch, mut waiting) = (Vec::with_capacity(BATCH), Vec::new());
                let mut next = Some(first);
                loop {
                    while let Some(entry) = next.take() {
                        match entry {
                            Entry::Event(e) => batch.push(*e),
                            Entry::Flushed(done) => waiting.push(done),
                        }
                        if batch.len() >= BATCH {
                            break;
                        }
                        next = entries.try_recv().ok();
                    }
                    let full = batch.len() >= BATCH;
                    if full || !waiting.is_empty() || tokio::time::Instant::now() >= deadline {
                        break;
                    }
                    // Why sleep rather than wait on the queue: refusals queued meanwhile then
                    // wake nothing (one wake-up per refusal, at tens of thousands a second,
                    // cost more than writing them). A flush cuts the sleep short.
                    tokio::select! {
                        _ = tokio::time::sleep_until(deadline) => {}
                        _ = flushing.notified() => {}
                    }
                    next = entries.try_recv().ok();
                }
                let events = batch.len();
                if let Err(e) = core.record_events(batch).await {
                    tracing::warn!(error = %e, events, "cannot record refusals in the audit trail");
                }
                for done in waiting {
                    let _ = done.send(());
                }
            }
        });
        RefusalLog { queue, flush_now }
    }

    /// Queue a refusal's event.
    pub fn push(&self, event: AuditEvent) {
        let _ = self.queue.send(Entry::Event(Box::new(event)));
    }

    /// Wait until every refusal queued before this call is written (or failed to be).
    pub async fn flush(&self) {
        let (done, written) = oneshot::channel();
        if self.queue.send(Entry::Flushed(done)).is_ok() {
            self.flush_now.notify_one();
            let _ = written.await;
        }
    }
}

/// At most this many resources are taken from a refused request.
const MAX_RESOURCES: usize = 100;
/// Longer values are not resource ids.
const MAX_VALUE: usize = 128;

/// One request's caller, as the audit trail records it.
#[derive(Debug, Clone)]
pub struct Trail {
    /// Who and how; handed to the core with each change.
    pub meta: RequestMeta,
    /// The account, once the request is authenticated.
    pub account_id: Option<String>,
}

impl Trail {
    /// The trail of a request in `dialect` answered with `request_id`.
    pub fn new(dialect: &str, request_id: &str, raw: &RawRequest) -> Trail {
        Trail {
            meta: RequestMeta {
                dialect: dialect.to_string(),
                request_id: request_id.to_string(),
                source_ip: raw
                    .peer
                    .map(|p| p.ip().to_canonical().to_string())
                    .unwrap_or_default(),
                ..RequestMeta::default()
            },
            account_id: None,
        }
    }

    /// The request is authenticated: `account` signed `action` with `credential_id`.
    pub fn signed(
        &mut self,
        account: &Account,
        credential_id: &str,
        action: &str,
        region: Option<&str>,
    ) {
        self.account_id = Some(account.id.clone());
        self.meta.credential_id = credential_id.to_string();
        self.meta.action = action.to_string();
        self.meta.region = region.unwrap_or_default().to_string();
    }

    /// Record the refusal of the request: `code` and `message` as answered. `action` and
    /// `credential_id` are what the request claimed, for a request refused before it was
    /// authenticated. The event goes to the node's [`RefusalLog`]; the answer does not wait
    /// for the disk.
    pub async fn refused(
        mut self,
        state: &crate::common::server::AppState,
        raw: &RawRequest,
        action: Option<&str>,
        credential_id: Option<&str>,
        code: &str,
        message: &str,
    ) {
        let core = &state.core;
        if !core.auditing() {
            return;
        }
        if self.meta.action.is_empty() {
            self.meta.action = truncate(action.unwrap_or_default()).to_string();
        }
        if self.meta.credential_id.is_empty() {
            self.meta.credential_id = truncate(credential_id.unwrap_or_default()).to_string();
        }
        let read_only = is_read_only(&self.meta.action);
        let (resources, secrets) = scan(raw);
        let message = scrub(code, message, &secrets);
        let event = core
            .refusal_event(
                self.meta,
                self.account_id.as_deref(),
                read_only,
                resources,
                code,
                &message,
            )
            .await;
        if let Some(e) = event {
            state.refusals.push(e);
        }
    }
}

fn truncate(s: &str) -> &str {
    match s.char_indices().nth(MAX_VALUE) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Whether an action only reads (the providers' naming: Describe*, Get*, List*, Lookup*,
/// Inquire*).
pub fn is_read_only(action: &str) -> bool {
    ["Describe", "Get", "List", "LookUp", "Lookup", "Inquire"]
        .iter()
        .any(|p| action.starts_with(p))
}

/// What a parameter holds, by its name without a `.N` suffix: a resource of some kind, a
/// secret (passwords, user data), or neither.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Holds {
    Resource(&'static str),
    Secret,
}

fn kind_of(param: &str) -> Option<Holds> {
    let base = param.split('.').next().unwrap_or(param);
    let is = |names: &[&str]| names.iter().any(|n| base.eq_ignore_ascii_case(n));
    if is(&["instanceids", "instanceid"]) {
        Some(Holds::Resource("instance"))
    } else if is(&["keyids", "keyid", "keyname", "keypairname", "keypairnames"]) {
        Some(Holds::Resource("keypair"))
    } else if is(&["userdata", "signature"])
        || base
            .as_bytes()
            .windows(8)
            .any(|w| w.eq_ignore_ascii_case(b"password"))
    {
        Some(Holds::Secret)
    } else {
        None
    }
}

/// A refusal's message as recorded: signature refusals (whose messages may show the string
/// that was signed, every parameter included) are recorded without their details, and any
/// secret the request carried is masked wherever a message repeats it.
fn scrub(code: &str, message: &str, secrets: &[String]) -> String {
    if code.contains("Signature") {
        return "The request signature could not be verified.".to_string();
    }
    let mut out = message.to_string();
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        out = out.replace(secret.as_str(), "***");
        let encoded: String = form_urlencoded::byte_serialize(secret.as_bytes()).collect();
        out = out.replace(&encoded, "***");
    }
    out
}

fn push(out: &mut Vec<AuditResource>, kind: &str, value: &str) {
    let value = value.trim();
    if value.is_empty() || value.len() > MAX_VALUE || out.len() >= MAX_RESOURCES {
        return;
    }
    if out.iter().any(|r| r.kind == kind && r.id == value) {
        return;
    }
    out.push(AuditResource {
        kind: kind.to_string(),
        id: value.to_string(),
        name: value.to_string(),
    });
}

/// The values of a JSON value naming resources of `kind`: a string, an array of strings, or
/// (ECS's `KeyPairNames`, `InstanceIds`) a string holding a JSON array.
fn push_value(out: &mut Vec<AuditResource>, kind: &str, v: &Value) {
    match v {
        Value::String(s) if s.trim_start().starts_with('[') => {
            if let Ok(Value::Array(items)) = serde_json::from_str::<Value>(s) {
                for item in &items {
                    push_value(out, kind, item);
                }
            }
        }
        Value::String(s) => push(out, kind, s),
        Value::Array(items) => {
            for item in items {
                if let Value::String(s) = item {
                    push(out, kind, s);
                }
            }
        }
        _ => {}
    }
}

/// What a request's parameters name and hide, gathered from a walk.
#[derive(Default)]
struct Found {
    resources: Vec<AuditResource>,
    secrets: Vec<String>,
}

impl Found {
    /// A parameter that `holds` what [`kind_of`] said holds `v`.
    fn take(&mut self, holds: Holds, v: Value) {
        match holds {
            Holds::Resource(kind) => push_value(&mut self.resources, kind, &v),
            Holds::Secret => {
                if let Value::String(s) = v {
                    self.secrets.push(s);
                }
            }
        }
    }
}

/// A JSON body's members, walked to depth 2 as they are read: the values of resource and
/// secret parameters are taken, objects are walked into, everything else is skipped unread
/// (a refused ImportKeyPair's public key is not copied, say).
struct Members<'f> {
    found: &'f mut Found,
    depth: usize,
}

/// A member's name, borrowed from the body unless it has escapes.
struct Name<'de>(std::borrow::Cow<'de, str>);

impl<'de> serde::Deserialize<'de> for Name<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Name<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a member name")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Name<'de>, E> {
                Ok(Name(std::borrow::Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Name<'de>, E> {
                Ok(Name(std::borrow::Cow::Owned(s.to_string())))
            }
        }
        d.deserialize_str(V)
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for Members<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Members<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(Name(name)) = map.next_key::<Name<'de>>()? {
            match kind_of(&name) {
                Some(holds) => {
                    let v: Value = map.next_value()?;
                    self.found.take(holds, v);
                }
                None if self.depth < 2 => map.next_value_seed(Members {
                    found: &mut *self.found,
                    depth: self.depth + 1,
                })?,
                None => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(())
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
}

/// The instances and key pairs a request names in its parameters (query, form or JSON body),
/// and the secrets it carries, read leniently: a refused request may be malformed (what a
/// malformed body named before the fault is kept).
fn scan(raw: &RawRequest) -> (Vec<AuditResource>, Vec<String>) {
    use serde::de::DeserializeSeed;
    let mut found = Found::default();
    let media = raw.media_type();
    if media == "application/json" {
        let mut body = serde_json::Deserializer::from_slice(&raw.body);
        let _ = Members {
            found: &mut found,
            depth: 0,
        }
        .deserialize(&mut body);
    }
    let form = (media == "application/x-www-form-urlencoded").then_some(&raw.body[..]);
    let pairs = form_urlencoded::parse(raw.query.as_bytes())
        .chain(form_urlencoded::parse(form.unwrap_or_default()));
    for (k, v) in pairs {
        if let Some(holds) = kind_of(&k) {
            found.take(holds, Value::String(v.into_owned()));
        }
    }
    (found.resources, found.secrets)
}

/// The instances and key pairs a request names in its parameters.
#[cfg(test)]
fn resources_named(raw: &RawRequest) -> Vec<AuditResource> {
    scan(raw).0
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderMap, HeaderValue};

    fn raw(query: &str, content_type: &str, body: &str) -> RawRequest {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_str(content_type).unwrap());
        RawRequest {
            method: "POST".into(),
            path: "/".into(),
            query: query.into(),
            headers,
            body: body.as_bytes().to_vec(),
            head: Vec::new(),
            peer: Some("127.0.0.9:5000".parse().unwrap()),
            oversized: None,
        }
    }

    #[test]
    fn resources_are_found_in_every_parameter_shape() {
        let r = raw(
            "",
            "application/json",
            r#"{"InstanceIds":["ins-1","ins-2"],"LoginSettings":{"KeyIds":["skey-1"]},"KeyIds":"x"}"#,
        );
        let found: Vec<_> = resources_named(&r)
            .into_iter()
            .map(|r| (r.kind, r.id))
            .collect();
        assert!(found.contains(&("instance".into(), "ins-1".into())));
        assert!(found.contains(&("instance".into(), "ins-2".into())));
        assert!(found.contains(&("keypair".into(), "skey-1".into())));
        let legacy = raw("instanceIds.1=ins-3&keyId=skey-2&Nonce=1", "", "");
        assert_eq!(resources_named(&legacy).len(), 2);
        let ecs = raw(
            "",
            "application/x-www-form-urlencoded",
            "KeyPairNames=%5B%22a%22%2C%22b%22%5D&InstanceId=i-1",
        );
        let names: Vec<_> = resources_named(&ecs).into_iter().map(|r| r.id).collect();
        assert_eq!(names, vec!["a", "b", "i-1"]);
        // CVM's and Lighthouse's CreateKeyPair and ImportKeyPair name the key `KeyName`.
        let import = raw(
            "",
            "application/json",
            r#"{"KeyName":"mine","ProjectId":0,"PublicKey":"ssh-ed25519 AAAA"}"#,
        );
        let named: Vec<_> = resources_named(&import)
            .into_iter()
            .map(|r| (r.kind, r.id))
            .collect();
        assert_eq!(named, vec![("keypair".to_string(), "mine".to_string())]);
        assert!(resources_named(&raw("", "application/json", "{not json")).is_empty());
    }

    #[test]
    fn a_json_body_is_walked_two_objects_deep_as_it_is_read() {
        let ids = |body: &str| -> Vec<String> {
            resources_named(&raw("", "application/json", body))
                .into_iter()
                .map(|r| r.id)
                .collect()
        };
        assert_eq!(
            ids(
                r#"{"A":{"B":{"KeyIds":["two-deep"],"C":{"KeyIds":["too-deep"]}}},"N":[{"InstanceId":"in-a-list"}],"PublicKey":"ssh-ed25519 AAAA"}"#
            ),
            vec!["two-deep"]
        );
        assert_eq!(
            ids(r#"{"Instance\u0049ds":["escaped-name"]}"#),
            vec!["escaped-name"]
        );
        assert_eq!(
            ids(r#"{"InstanceIds":["before-the-fault"],"KeyIds":[1,"#),
            vec!["before-the-fault"]
        );
        assert!(ids("[1, 2]").is_empty());
    }

    #[test]
    fn secrets_never_reach_a_recorded_message() {
        let r = raw("Password=Hunter%2B2x&InstanceId=i-1", "", "");
        let (_, secrets) = scan(&r);
        assert_eq!(secrets, vec!["Hunter+2x"]);
        let m = scrub(
            "InvalidPassword",
            "`Hunter+2x` is weak (Hunter%2B2x)",
            &secrets,
        );
        assert_eq!(m, "`***` is weak (***)");
        let sts = scrub("SignatureDoesNotMatch", "POST&%2F&Password%3DHunter", &[]);
        assert!(!sts.contains("Hunter"));
        let json = raw(
            "",
            "application/json",
            r#"{"LoginSettings":{"Password":"Pw-1234567"},"InstanceIds":["ins-1"]}"#,
        );
        assert_eq!(scan(&json).1, vec!["Pw-1234567"]);
    }

    #[test]
    fn read_only_actions_are_recognised() {
        assert!(is_read_only("DescribeKeyPairs"));
        assert!(is_read_only("LookUpEvents"));
        assert!(!is_read_only("AssociateInstancesKeyPairs"));
    }

    fn refusal(n: usize) -> AuditEvent {
        AuditEvent {
            seq: 0,
            event_id: format!("ev-{n}"),
            account_id: None,
            at: 1_700_000_000,
            request: RequestMeta {
                dialect: "cvm".into(),
                action: "ImportKeyPair".into(),
                request_id: format!("r-{n}"),
                ..RequestMeta::default()
            },
            read_only: false,
            resources: vec![],
            error_code: Some("AuthFailure.SignatureFailure".into()),
            error_message: Some("no".into()),
            ops_total: 0,
            ops_pending: 0,
            ops_failed: 0,
            op_error: None,
        }
    }

    async fn recorded(core: &Core) -> u64 {
        let q = keyplane_core::audit::AuditQuery {
            limit: 1,
            ..Default::default()
        };
        core.lookup_events(&q).await.unwrap().total
    }

    /// Refusals are written without a flush once their gathering window ends, more than a
    /// batch of them in several transactions, and a flush writes what was queued before it.
    #[tokio::test]
    async fn refusals_are_written_in_batches_with_or_without_a_flush() {
        let store = keyplane_store::SqliteStore::in_memory().unwrap();
        let core = Core::new(
            std::sync::Arc::new(store),
            std::sync::Arc::new(keyplane_core::service::SystemClock),
        );
        let log = RefusalLog::start(core.clone());
        log.push(refusal(0));
        log.push(refusal(1));
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        while recorded(&core).await < 2 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "refusals were never written without a flush"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        for n in 2..2 + 2 * BATCH + 3 {
            log.push(refusal(n));
        }
        log.flush().await;
        assert_eq!(recorded(&core).await, 2 * BATCH as u64 + 5);
    }

    #[test]
    fn the_source_is_the_peer_address() {
        let t = Trail::new("cvm", "r-1", &raw("", "", ""));
        assert_eq!(t.meta.source_ip, "127.0.0.9");
        assert_eq!(t.meta.request_id, "r-1");
    }
}
