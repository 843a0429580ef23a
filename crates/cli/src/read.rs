//! Read commands for a person at a terminal: `keyplane instances`, `keyplane keys` and
//! `keyplane ops wait`, on the server's database (safe while it runs).

use crate::account::{open, DataDirArg};
use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use keyplane_core::account::Account;
use keyplane_core::instance::{Instance, OpState};
use keyplane_core::keypair::KeyPair;
use keyplane_core::Core;
use serde_json::{json, Value};
use std::time::Duration;

/// How to print.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Aligned columns, for people.
    #[default]
    Table,
    /// One JSON array, for scripts.
    Json,
}

/// The account and how to print.
#[derive(Debug, Args)]
pub struct ReadArgs {
    /// The account whose resources are shown.
    #[arg(long)]
    account: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Table)]
    output: Output,
    #[command(flatten)]
    data: DataDirArg,
}

/// `keyplane ops ...`.
#[derive(Debug, Subcommand)]
pub enum OpsCommand {
    /// Wait, with a progress bar, until the latest operation of each given instance has
    /// settled (SUCCESS or FAILED), then print them. Give the instance ids a call returned or
    /// named: RunInstances' InstanceIdSet, the InstanceIds of a bind, stop or reset. Exits
    /// non-zero if any operation FAILED or the timeout passed.
    Wait {
        /// Instance ids (`ins-…`, `lhins-…`, `i-…`).
        #[arg(required = true)]
        instance_ids: Vec<String>,
        /// The account the instances belong to.
        #[arg(long)]
        account: String,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 600)]
        timeout: u64,
        #[command(flatten)]
        data: DataDirArg,
    },
}

pub use keyplane_core::console::utc;

async fn account(core: &Core, name: &str) -> Result<Account> {
    core.account_by_name(name)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .with_context(|| format!("no account named `{name}`"))
}

fn dash(v: Option<&str>) -> String {
    v.unwrap_or("-").to_string()
}

fn instance_json(i: &Instance) -> Value {
    json!({
        "id": i.id, "name": i.name, "namespace": i.namespace.as_str(), "region": i.region,
        "zone": i.zone, "state": i.state.as_str(), "host": i.host.as_str(),
        "private_ip": i.private_ip, "ssh_port": i.ssh_port, "os": i.os.as_str(),
        "os_name": i.os_name, "instance_type": i.instance_type, "image_id": i.image_id,
        "key_ids": i.key_ids, "latest_operation": i.latest_operation,
        "latest_operation_state": i.latest_operation_state.map(OpState::as_str),
        "latest_operation_request_id": i.latest_operation_request_id,
        "latest_operation_error": i.latest_operation_error, "created_at": i.created_at,
    })
}

fn key_json(k: &KeyPair) -> Value {
    json!({
        "id": k.id, "name": k.name, "namespace": k.namespace.as_str(), "region": k.region,
        "fingerprint_sha256": k.fingerprint_sha256, "fingerprint_md5": k.fingerprint_md5,
        "public_key": k.public_key, "instance_ids": k.associated_instance_ids,
        "created_at": k.created_at,
    })
}

/// Rows under heads, each column as wide as its widest cell.
pub fn table(heads: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = heads.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        padded.join("  ").trim_end().to_string() + "\n"
    };
    let mut out = line(heads.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

pub(crate) fn instance_row(i: &Instance) -> Vec<String> {
    let op_state = match (i.latest_operation_state, &i.latest_operation_error) {
        (Some(OpState::Failed), Some(why)) => format!("FAILED ({why})"),
        (s, _) => dash(s.map(OpState::as_str)),
    };
    vec![
        i.id.clone(),
        i.name.clone(),
        i.namespace.as_str().into(),
        i.state.as_str().into(),
        format!("{}:{}", i.private_ip, i.ssh_port),
        if i.key_ids.is_empty() {
            "-".into()
        } else {
            i.key_ids.join(",")
        },
        dash(i.latest_operation.as_deref()),
        op_state,
    ]
}

pub(crate) const INSTANCE_HEADS: &[&str] = &[
    "ID",
    "NAME",
    "NS",
    "STATE",
    "ADDRESS",
    "KEYS",
    "LATEST OP",
    "OP STATE",
];

fn print(output: Output, heads: &[&str], rows: Vec<Vec<String>>, json: Vec<Value>) {
    match output {
        Output::Json => println!("{}", Value::Array(json)),
        Output::Table => print!("{}", table(heads, &rows)),
    }
}

/// `keyplane instances`.
pub fn instances(args: ReadArgs) -> Result<()> {
    runtime()?.block_on(async {
        let core = open(args.data).await?;
        let a = account(&core, &args.account).await?;
        let all = core
            .account_instances(&a.id)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let rows = all.iter().map(instance_row).collect();
        print(
            args.output,
            INSTANCE_HEADS,
            rows,
            all.iter().map(instance_json).collect(),
        );
        Ok(())
    })
}

/// `keyplane keys`.
pub fn keys(args: ReadArgs) -> Result<()> {
    runtime()?.block_on(async {
        let core = open(args.data).await?;
        let a = account(&core, &args.account).await?;
        let all = core
            .account_key_pairs(&a.id)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let rows = all
            .iter()
            .map(|k| {
                vec![
                    k.id.clone(),
                    k.name.clone(),
                    k.namespace.as_str().into(),
                    k.fingerprint_sha256.clone(),
                    if k.associated_instance_ids.is_empty() {
                        "-".into()
                    } else {
                        k.associated_instance_ids.join(",")
                    },
                ]
            })
            .collect();
        let heads = ["ID", "NAME", "NS", "FINGERPRINT", "BOUND TO"];
        print(
            args.output,
            &heads,
            rows,
            all.iter().map(key_json).collect(),
        );
        Ok(())
    })
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Runtime::new().context("cannot start the async runtime")
}

/// Run an ops command.
pub fn ops(cmd: OpsCommand) -> Result<()> {
    match cmd {
        OpsCommand::Wait {
            instance_ids,
            account: name,
            timeout,
            data,
        } => runtime()?.block_on(async {
            let core = open(data).await?;
            let a = account(&core, &name).await?;
            crate::ops_wait::wait(&core, &a, &instance_ids, Duration::from_secs(timeout)).await
        }),
    }
}

/// The account's instances with these ids, in their order (`None`: the account has no such
/// instance, or no longer: terminated).
pub(crate) async fn instances_by_id(
    core: &Core,
    a: &Account,
    ids: &[String],
) -> Result<Vec<Option<Instance>>> {
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let found = core
            .find_instance(id)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .filter(|i| i.account_id == a.id);
        out.push(found);
    }
    Ok(out)
}

/// Fail when an id was never the account's.
pub(crate) fn check_known(ids: &[String], found: &[Option<Instance>], account: &str) -> Result<()> {
    if let Some((id, _)) = ids.iter().zip(found).find(|(_, f)| f.is_none()) {
        bail!("account `{account}` has no instance `{id}`");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_civil_utc() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_709_251_199), "2024-02-29 23:59:59 UTC");
    }

    #[test]
    fn tables_align_columns() {
        let t = table(
            &["ID", "NAME"],
            &[
                vec!["ins-1".into(), "a".into()],
                vec!["i".into(), "bb".into()],
            ],
        );
        assert_eq!(t, "ID     NAME\nins-1  a\ni      bb\n");
    }
}
