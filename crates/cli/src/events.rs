//! `keyplane events`: the audit trail for a person at a terminal, newest first, on the
//! server's database (safe while it runs).

use crate::account::{open, DataDirArg};
use crate::read::{table, utc, Output};
use anyhow::{Context, Result};
use clap::Args;
use keyplane_core::audit::{AuditAttribute, AuditEvent, AuditQuery};
use serde_json::{json, Value};

/// Flags of `keyplane events`.
#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Only this account's events [default: every account's, and refusals of no account].
    #[arg(long)]
    account: Option<String>,
    /// Only events this recent: a number with s, m, h or d (`30m`, `2h`, `7d`).
    #[arg(long, value_parser = parse_age)]
    since: Option<i64>,
    /// Only this action (`AssociateInstancesKeyPairs`, `AttachKeyPair`, ...).
    #[arg(long)]
    action: Option<String>,
    /// Only events naming this resource (an instance or key pair id, or an ECS key pair name).
    #[arg(long)]
    resource: Option<String>,
    /// Only the event of this request id.
    #[arg(long)]
    request_id: Option<String>,
    /// Only requests signed with this SecretId or AccessKeyId.
    #[arg(long)]
    credential: Option<String>,
    /// Only requests from this address.
    #[arg(long)]
    source: Option<String>,
    /// Only refused requests.
    #[arg(long, conflicts_with = "accepted")]
    refused: bool,
    /// Only accepted requests.
    #[arg(long)]
    accepted: bool,
    /// At most this many events (the newest).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    limit: u32,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Table)]
    output: Output,
    #[command(flatten)]
    data: DataDirArg,
}

/// `30m`, `2h`, `7d` as seconds.
fn parse_age(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let (digits, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = digits
        .parse()
        .map_err(|_| format!("`{s}` is not an age such as 30m, 2h or 7d"))?;
    let per = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" | "" => 86_400,
        _ => return Err(format!("`{s}`: the unit must be s, m, h or d")),
    };
    n.checked_mul(per)
        .ok_or_else(|| format!("`{s}` is too long ago"))
}

/// An event for scripts: every recorded field.
pub fn event_json(e: &AuditEvent) -> Value {
    let r = &e.request;
    json!({
        "event_id": e.event_id,
        "time": e.at,
        "account_id": e.account_id,
        "dialect": r.dialect,
        "action": r.action,
        "request_id": r.request_id,
        "credential_id": r.credential_id,
        "source_ip": r.source_ip,
        "region": r.region,
        "read_only": e.read_only,
        "resources": e.resources.iter().map(|x| json!({
            "kind": x.kind, "id": x.id, "name": x.name,
        })).collect::<Vec<_>>(),
        "outcome": e.outcome().label(),
        "error_code": e.error_code,
        "error_message": e.error_message,
        "operations": { "total": e.ops_total, "pending": e.ops_pending, "failed": e.ops_failed },
        "operation_error": e.op_error,
    })
}

fn row(e: &AuditEvent, with_account: bool) -> Vec<String> {
    let r = &e.request;
    let resources: Vec<&str> = e.resources.iter().map(|x| x.id.as_str()).collect();
    let outcome = match (&e.op_error, e.outcome().label()) {
        (Some(why), "FAILED") => format!("FAILED ({why})"),
        (_, label) => label.to_string(),
    };
    let mut cells = vec![utc(e.at)];
    if with_account {
        cells.push(e.account_id.clone().unwrap_or_else(|| "-".into()));
    }
    cells.extend([
        r.dialect.clone(),
        r.action.clone(),
        outcome,
        if resources.is_empty() {
            "-".into()
        } else {
            resources.join(",")
        },
        r.credential_id.clone(),
        r.source_ip.clone(),
        r.request_id.clone(),
    ]);
    cells
}

/// `keyplane events`.
pub fn run(args: EventsArgs) -> Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let core = open(args.data).await?;
        let account_id = match &args.account {
            Some(name) => Some(
                core.account_by_name(name)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?
                    .with_context(|| format!("no account named `{name}`"))?
                    .id,
            ),
            None => None,
        };
        let mut attributes = Vec::new();
        let pairs = [
            (args.action, AuditAttribute::EventName as fn(String) -> AuditAttribute),
            (args.resource, AuditAttribute::ResourceName),
            (args.request_id, AuditAttribute::RequestId),
            (args.credential, AuditAttribute::CredentialId),
            (args.source, AuditAttribute::SourceIp),
        ];
        for (value, attr) in pairs {
            if let Some(v) = value {
                attributes.push(attr(v));
            }
        }
        if args.refused || args.accepted {
            attributes.push(AuditAttribute::Refused(args.refused));
        }
        let start = match args.since {
            Some(age) => core.now().saturating_sub(age),
            None => 0,
        };
        let query = AuditQuery {
            account_id: account_id.clone(),
            start,
            attributes,
            limit: args.limit as usize,
            ..AuditQuery::default()
        };
        let page = core
            .lookup_events(&query)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        match args.output {
            Output::Json => println!(
                "{}",
                Value::Array(page.events.iter().map(event_json).collect())
            ),
            Output::Table => {
                let with_account = account_id.is_none();
                let mut heads = vec!["TIME"];
                if with_account {
                    heads.push("ACCOUNT");
                }
                heads.extend([
                    "DIALECT",
                    "ACTION",
                    "OUTCOME",
                    "RESOURCES",
                    "CREDENTIAL",
                    "SOURCE",
                    "REQUEST ID",
                ]);
                let rows: Vec<Vec<String>> =
                    page.events.iter().map(|e| row(e, with_account)).collect();
                print!("{}", table(&heads, &rows));
                if page.more {
                    eprintln!(
                        "keyplane: {} of {} matching events shown (newest first; --limit shows more)",
                        page.events.len(),
                        page.total
                    );
                }
            }
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_take_units() {
        assert_eq!(parse_age("30m"), Ok(1800));
        assert_eq!(parse_age("2h"), Ok(7200));
        assert_eq!(parse_age("7d"), Ok(604_800));
        assert_eq!(parse_age("3"), Ok(259_200));
        assert!(parse_age("5y").is_err());
        assert!(parse_age("h").is_err());
    }
}
