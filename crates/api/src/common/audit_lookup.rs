//! What the two audit lookup dialects (CloudAudit `LookUpEvents`, ActionTrail `LookupEvents`)
//! share: the page token that carries a lookup's cursor and binds it to the query it continues,
//! the conditions a lookup attribute turns into, the wire forms of an event's time, and the
//! lookup itself.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use keyplane_core::audit::{AuditAttribute, AuditPage, AuditQuery};
use keyplane_core::{Core, DomainError};
use sha2::{Digest, Sha256};

/// What one lookup attribute asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// Events meeting this attribute.
    Attr(AuditAttribute),
    /// Every event (the attribute holds for all of the caller's events).
    Always,
    /// No event (the attribute holds for none of them).
    Never,
}

/// The attributes of `conditions`, or `None` when one of them holds for no event.
pub fn attributes(conditions: Vec<Condition>) -> Option<Vec<AuditAttribute>> {
    let mut out = Vec::new();
    for c in conditions {
        match c {
            Condition::Attr(a) => out.push(a),
            Condition::Always => {}
            Condition::Never => return None,
        }
    }
    Some(out)
}

/// Why a NextToken was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    /// Not a token this server issued.
    Malformed,
    /// Issued for another query (other conditions, order, account or time range).
    OtherQuery,
}

/// The cursor of a paged lookup, as the opaque NextToken the answer carries: where the last
/// page ended, the time range it was asked for (so defaulted times stay fixed while paging),
/// and a fingerprint of the rest of the query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageToken {
    /// The last event answered.
    pub after_seq: i64,
    /// The query's earliest time.
    pub start: i64,
    /// The query's latest time.
    pub end: i64,
    fingerprint: String,
}

/// What a continued query must keep: its account, conditions and order.
fn fingerprint(q: &AuditQuery) -> String {
    let text = format!("{:?}|{:?}|{}", q.account_id, q.attributes, q.ascending);
    let digest = Sha256::digest(text.as_bytes());
    hex::encode(&digest[..12])
}

impl PageToken {
    /// The token continuing `q` after the event at `last_seq`.
    pub fn after(q: &AuditQuery, last_seq: i64) -> String {
        let text = format!("kp1.{last_seq}.{}.{}.{}", q.start, q.end, fingerprint(q));
        URL_SAFE_NO_PAD.encode(text)
    }

    /// Read a token.
    pub fn parse(token: &str) -> Result<PageToken, TokenError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(token.trim())
            .map_err(|_| TokenError::Malformed)?;
        let text = String::from_utf8(bytes).map_err(|_| TokenError::Malformed)?;
        let parts: Vec<&str> = text.split('.').collect();
        let number = |s: &str| s.parse::<i64>().map_err(|_| TokenError::Malformed);
        match parts[..] {
            ["kp1", seq, start, end, fp] if fp.len() == 24 => Ok(PageToken {
                after_seq: number(seq)?,
                start: number(start)?,
                end: number(end)?,
                fingerprint: fp.to_string(),
            }),
            _ => Err(TokenError::Malformed),
        }
    }

    /// Whether the token was issued for `q` (whose cursor it then sets).
    pub fn continues(&self, q: &AuditQuery) -> bool {
        self.start == q.start && self.end == q.end && self.fingerprint == fingerprint(q)
    }
}

/// Look `q` up, continuing after `token` when one is given (it must have been issued for
/// `q`): the page, and the token of the next page when there is one.
pub async fn look_up(
    core: &Core,
    mut q: AuditQuery,
    token: Option<&PageToken>,
) -> Result<(AuditPage, Option<String>), LookupError> {
    if let Some(t) = token {
        if !t.continues(&q) {
            return Err(LookupError::Token(TokenError::OtherQuery));
        }
        q.after_seq = Some(t.after_seq);
    }
    let page = core.lookup_events(&q).await.map_err(LookupError::Domain)?;
    let next = match page.events.last() {
        Some(last) if page.more => Some(PageToken::after(&q, last.seq)),
        _ => None,
    };
    Ok((page, next))
}

/// Why a lookup failed.
#[derive(Debug)]
pub enum LookupError {
    /// The token does not continue this query.
    Token(TokenError),
    /// The store failed.
    Domain(DomainError),
}

fn utc(ts: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(ts).unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

/// `YYYY-MM-DD HH:MM:SS` in UTC (CloudAudit's EventTime).
// Why: CloudAudit's console shows China Standard Time and its API does not name a zone; this
// server's times are all UTC (as its console's and read commands' are).
pub fn spaced_utc(ts: i64) -> String {
    civil(ts, ' ', "")
}

/// `YYYY-MM-DDThh:mm:ssZ` (ActionTrail's times).
pub fn iso_utc(ts: i64) -> String {
    civil(ts, 'T', "Z")
}

/// The UTC date and time of `ts`, the two parted by `between`, followed by `zone`.
fn civil(ts: i64, between: char, zone: &str) -> String {
    let t = utc(ts);
    format!(
        "{:04}-{:02}-{:02}{between}{:02}:{:02}:{:02}{zone}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Unix seconds of a `YYYY-MM-DDThh:mm:ssZ` time, exactly that shape.
pub fn parse_iso_utc(s: &str) -> Option<i64> {
    let format =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    let t = time::PrimitiveDateTime::parse(s, &format).ok()?;
    Some(t.assume_utc().unix_timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query() -> AuditQuery {
        AuditQuery {
            account_id: Some("100000000001".into()),
            start: 10,
            end: 20,
            attributes: vec![AuditAttribute::EventName("CreateKeyPair".into())],
            ..AuditQuery::default()
        }
    }

    #[test]
    fn tokens_continue_only_their_query() {
        let q = query();
        let t = PageToken::parse(&PageToken::after(&q, 42)).unwrap();
        assert_eq!((t.after_seq, t.start, t.end), (42, 10, 20));
        assert!(t.continues(&q));
        let mut other = query();
        other.attributes.push(AuditAttribute::ReadOnly(false));
        assert!(!t.continues(&other));
        let mut theirs = query();
        theirs.account_id = Some("100000000002".into());
        assert!(!t.continues(&theirs));
        let mut later = query();
        later.end = 21;
        assert!(!t.continues(&later));
        let mut up = query();
        up.ascending = true;
        assert!(!t.continues(&up));
        let mut bigger = query();
        bigger.limit = 7;
        assert!(
            t.continues(&bigger),
            "the page size may change between pages"
        );
    }

    #[test]
    fn foreign_tokens_are_malformed() {
        for bad in [
            "",
            "x",
            "a2Ax",
            "%%%",
            &URL_SAFE_NO_PAD.encode("kp1.x.1.2.abc"),
        ] {
            assert_eq!(PageToken::parse(bad), Err(TokenError::Malformed), "{bad}");
        }
    }

    #[test]
    fn conditions_combine() {
        let name = AuditAttribute::EventName("X".into());
        assert_eq!(
            attributes(vec![Condition::Always, Condition::Attr(name.clone())]),
            Some(vec![name.clone()])
        );
        assert_eq!(
            attributes(vec![Condition::Attr(name), Condition::Never]),
            None
        );
    }

    #[test]
    fn times_in_both_shapes() {
        assert_eq!(spaced_utc(1_700_000_000), "2023-11-14 22:13:20");
        assert_eq!(iso_utc(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(parse_iso_utc("2023-11-14T22:13:20Z"), Some(1_700_000_000));
        for bad in [
            "2023-11-14 22:13:20",
            "2023-11-14T22:13:20",
            "2023-11-14T22:13:20+08:00",
            "2023-13-14T22:13:20Z",
            "1700000000",
        ] {
            assert_eq!(parse_iso_utc(bad), None, "{bad}");
        }
    }
}
