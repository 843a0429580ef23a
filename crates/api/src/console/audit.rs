//! The console's audit trail: the filters a person sets in the page's form (also sent by the
//! live script, so the table it refreshes stays filtered), and the events as table cells.

use super::view::{Cell, Table};
use keyplane_core::audit::{AuditAttribute, AuditEvent, AuditQuery, Outcome};
use keyplane_core::console::{parse_utc, utc};

/// How many events the console shows (the newest that match).
pub const SHOWN: usize = 50;

/// The audit filters of the page's form, as given (empty: no filter).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Action (EventName).
    pub action: String,
    /// Resource id or name.
    pub resource: String,
    /// Request id.
    pub request_id: String,
    /// `refused`, `accepted` or empty.
    pub outcome: String,
    /// Earliest time, `YYYY-MM-DDThh:mm` UTC.
    pub from: String,
    /// Latest time, `YYYY-MM-DDThh:mm` UTC.
    pub to: String,
}

impl AuditFilter {
    /// The filters in a query string's parameters (unknown ones are ignored).
    pub fn from_params(params: &[(String, String)]) -> AuditFilter {
        let mut f = AuditFilter::default();
        for (k, v) in params {
            let v = v.trim().chars().take(128).collect::<String>();
            match k.as_str() {
                "action" => f.action = v,
                "resource" => f.resource = v,
                "request" => f.request_id = v,
                "outcome" if v == "refused" || v == "accepted" => f.outcome = v,
                "from" => f.from = v,
                "to" => f.to = v,
                _ => {}
            }
        }
        f
    }

    /// The lookup of `account_id`'s newest events these filters select.
    pub fn query(&self, account_id: &str) -> AuditQuery {
        let mut attributes = Vec::new();
        let text = [
            (
                &self.action,
                AuditAttribute::EventName as fn(String) -> AuditAttribute,
            ),
            (&self.resource, AuditAttribute::ResourceName),
            (&self.request_id, AuditAttribute::RequestId),
        ];
        for (value, attr) in text {
            if !value.is_empty() {
                attributes.push(attr(value.clone()));
            }
        }
        match self.outcome.as_str() {
            "refused" => attributes.push(AuditAttribute::Refused(true)),
            "accepted" => attributes.push(AuditAttribute::Refused(false)),
            _ => {}
        }
        AuditQuery {
            account_id: Some(account_id.to_string()),
            start: parse_utc(&self.from).unwrap_or(0),
            end: parse_utc(&self.to).map_or(i64::MAX, |t| t + 59),
            attributes,
            limit: SHOWN,
            ..AuditQuery::default()
        }
    }

    /// Why a time filter cannot be read, if one cannot.
    pub fn problem(&self) -> Option<String> {
        [("From", &self.from), ("To", &self.to)]
            .into_iter()
            .find(|(_, v)| !v.is_empty() && parse_utc(v).is_none())
            .map(|(name, v)| format!("{name} `{v}` is not a time such as 2026-12-01T15:30 (UTC)."))
    }
}

fn cell(text: impl Into<String>) -> Cell {
    Cell {
        text: text.into(),
        class: None,
    }
}

fn outcome(e: &AuditEvent) -> Cell {
    let (text, class) = match e.outcome() {
        Outcome::Refused(code) => match &e.error_message {
            Some(m) if !m.is_empty() => (format!("{code}: {m}"), "op op-failed"),
            _ => (code, "op op-failed"),
        },
        Outcome::Operating => ("OPERATING".to_string(), "op op-operating"),
        Outcome::Failed => (
            match &e.op_error {
                Some(why) => format!("FAILED: {why}"),
                None => "FAILED".into(),
            },
            "op op-failed",
        ),
        Outcome::Success => ("SUCCESS".to_string(), "op op-success"),
    };
    Cell {
        text,
        class: Some(class.into()),
    }
}

fn resources(e: &AuditEvent) -> String {
    if e.resources.is_empty() {
        return "—".into();
    }
    e.resources
        .iter()
        .map(|r| {
            if r.name == r.id {
                r.id.clone()
            } else {
                format!("{} ({})", r.name, r.id)
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The events as a table.
pub fn table(events: &[AuditEvent]) -> Table {
    Table {
        heads: &[
            "Time",
            "Action",
            "Dialect",
            "Outcome",
            "Resources",
            "Credential",
            "Source",
            "Request id",
        ],
        empty: "No events match.",
        rows: events
            .iter()
            .map(|e| {
                vec![
                    cell(utc(e.at)),
                    cell(&e.request.action),
                    cell(&e.request.dialect),
                    outcome(e),
                    cell(resources(e)),
                    cell(&e.request.credential_id),
                    cell(&e.request.source_ip),
                    cell(&e.request.request_id),
                ]
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn filters_become_one_accounts_lookup() {
        let f = AuditFilter::from_params(&params(&[
            ("action", "AttachKeyPair"),
            ("resource", " i-1 "),
            ("outcome", "refused"),
            ("from", "1970-01-01T00:01"),
            ("to", "1970-01-01T00:02"),
            ("other", "x"),
        ]));
        let q = f.query("100001");
        assert_eq!(q.account_id.as_deref(), Some("100001"));
        assert_eq!((q.start, q.end), (60, 179));
        assert_eq!(
            q.attributes,
            vec![
                AuditAttribute::EventName("AttachKeyPair".into()),
                AuditAttribute::ResourceName("i-1".into()),
                AuditAttribute::Refused(true),
            ]
        );
        assert_eq!(f.problem(), None);
        let bad = AuditFilter::from_params(&params(&[("from", "soon"), ("outcome", "maybe")]));
        assert!(bad.problem().unwrap().contains("soon"));
        assert_eq!(bad.outcome, "");
        assert_eq!(AuditFilter::default().query("1").attributes, vec![]);
    }
}
