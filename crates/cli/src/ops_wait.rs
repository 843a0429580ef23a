//! `keyplane ops wait`: a progress bar until a batch of operations settles.

use crate::read::{check_known, instance_row, instances_by_id, table, INSTANCE_HEADS};
use anyhow::{bail, Result};
use indicatif::{ProgressBar, ProgressStyle};
use keyplane_core::account::Account;
use keyplane_core::instance::{Instance, OpState};
use keyplane_core::Core;
use std::time::{Duration, Instant};

/// How often the database is read while waiting.
const POLL: Duration = Duration::from_millis(250);

/// Whether the instance's latest operation is over (or it is gone: terminated).
fn settled(i: &Option<Instance>) -> bool {
    i.as_ref().is_none_or(|i| !i.is_busy())
}

/// Wait until every instance in `ids` has no operation in progress, or `timeout` passes.
pub async fn wait(core: &Core, a: &Account, ids: &[String], timeout: Duration) -> Result<()> {
    let first = instances_by_id(core, a, ids).await?;
    check_known(ids, &first, &a.name)?;
    let bar = ProgressBar::new(ids.len() as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} settled {msg}",
        )
        .expect("a valid template"),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    let deadline = Instant::now() + timeout;
    let last = loop {
        let now = instances_by_id(core, a, ids).await?;
        let done = now.iter().filter(|i| settled(i)).count();
        bar.set_position(done as u64);
        let busy: Vec<String> = now
            .iter()
            .flatten()
            .filter(|i| i.is_busy())
            .map(|i| format!("{} {}", i.id, i.latest_operation.as_deref().unwrap_or("")))
            .collect();
        bar.set_message(busy.join(", "));
        if done == ids.len() {
            break now;
        }
        if Instant::now() >= deadline {
            bar.abandon();
            bail!(
                "{} of {} operation(s) still in progress after {} s: {}",
                ids.len() - done,
                ids.len(),
                timeout.as_secs(),
                busy.join(", ")
            );
        }
        tokio::time::sleep(POLL).await;
    };
    bar.finish_and_clear();
    report(ids, &last)
}

/// Print how each operation ended; an error if any FAILED.
fn report(ids: &[String], last: &[Option<Instance>]) -> Result<()> {
    let rows: Vec<Vec<String>> = ids
        .iter()
        .zip(last)
        .map(|(id, i)| match i {
            Some(i) => instance_row(i),
            None => vec![
                id.clone(),
                "-".into(),
                "-".into(),
                "terminated (gone)".into(),
            ],
        })
        .collect();
    print!("{}", table(INSTANCE_HEADS, &rows));
    let failed: Vec<&str> = last
        .iter()
        .flatten()
        .filter(|i| i.latest_operation_state == Some(OpState::Failed))
        .map(|i| i.id.as_str())
        .collect();
    if !failed.is_empty() {
        bail!("the latest operation FAILED on {}", failed.join(", "));
    }
    Ok(())
}
