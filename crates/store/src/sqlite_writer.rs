//! Group commit on SQLite: one writer thread owns the write connection and runs every write
//! that has arrived meanwhile inside one transaction, each write under a savepoint of its own,
//! then commits once (one fsync with synchronous=FULL) and only then answers them. A write
//! that fails rolls back to its savepoint and leaves the others of its group alone; a failed
//! commit fails the whole group. So an acknowledged write is as durable as before, and
//! concurrent writes share one fsync.
//!
//! A [`Chore`] (upkeep the writes leave for later, such as indexing the audit trail by account)
//! rides along at the end of a group at most once per its period: it shares that group's
//! commit, so it costs no fsync of its own. When the writes stop before it came due, it runs
//! once the period is over in a transaction of its own, so that the next write after a burst
//! does not wait behind the burst's upkeep; a store idle since the chore last ran runs none.

use crate::sqlite::backend;
use crate::sqlite_audit::Deferred;
use crate::sqlite_cached::Cached;
use keyplane_core::store::{StoreError, StoreResult};
use rusqlite::Connection;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// At most this many writes share one transaction.
const MAX_GROUP: usize = 256;

/// Hands a write's result to its caller once its group's fate is known: `None` when the group
/// committed (the write's own result stands), `Some(error)` when it did not.
type Deliver = Box<dyn FnOnce(Option<StoreError>) + Send>;

/// A write's body: runs on the connection, says whether it succeeded and how to answer.
type Body = Box<dyn FnOnce(&mut Connection) -> (bool, Deliver) + Send>;

/// One write.
struct Job {
    /// Runs outside any group transaction (it manages its own, or runs what a transaction
    /// cannot hold, such as a checkpoint).
    solo: bool,
    run: Body,
}

/// Upkeep run inside a group transaction, under a savepoint of its own, once `every` has passed
/// since it last ran. A failure undoes only the chore's work (it is logged and tried again in a
/// later group).
#[derive(Clone, Copy)]
pub(crate) struct Chore {
    /// How long at least between two runs.
    pub every: Duration,
    /// The work.
    pub run: fn(&Connection) -> StoreResult<()>,
}

/// A chore, when it last ran, and whether a group committed since.
struct Due {
    chore: Chore,
    last: Instant,
    owed: bool,
}

impl Due {
    /// Run the chore inside the open transaction on `conn` if it is due. Returns false when
    /// SQLite rolled that whole transaction back meanwhile (an I/O error, say).
    fn run_if_due(&mut self, conn: &mut Connection) -> bool {
        if conn.is_autocommit() || self.last.elapsed() < self.chore.every {
            return true;
        }
        self.last = Instant::now();
        self.owed = false;
        if conn.step("SAVEPOINT chore").is_err() {
            return !conn.is_autocommit();
        }
        let ran = catch_unwind(AssertUnwindSafe(|| (self.chore.run)(conn)));
        if conn.is_autocommit() {
            return false;
        }
        match ran {
            Ok(Ok(())) => {
                let _ = conn.step("RELEASE chore");
            }
            failed => {
                if let Ok(Err(e)) = failed {
                    tracing::warn!(error = %e, "SQLite upkeep failed; it is tried again later");
                }
                let _ = conn
                    .step("ROLLBACK TO chore")
                    .and_then(|()| conn.step("RELEASE chore"));
            }
        }
        !conn.is_autocommit()
    }
}

/// The writer thread and the queue to it; dropping it lets the thread finish the queue, close
/// the connection and end, and waits for that.
pub(crate) struct Writer {
    queue: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    /// Start the writer thread on `conn`, with `chore` riding along its groups.
    pub(crate) fn start(conn: Connection, chore: Option<Chore>) -> StoreResult<Writer> {
        let (queue, jobs) = mpsc::channel();
        let due = chore.map(|chore| Due {
            chore,
            last: Instant::now(),
            owed: false,
        });
        let thread = std::thread::Builder::new()
            .name("keyplane-sqlite-writer".into())
            .spawn(move || writer_loop(conn, jobs, due))
            .map_err(backend)?;
        Ok(Writer {
            queue: Some(queue),
            thread: Some(thread),
        })
    }

    /// Run `f` on the write connection: with `solo` alone, else in the next group.
    pub(crate) async fn run<T, F>(&self, solo: bool, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let run: Body = Box::new(move |c: &mut Connection| {
            let result = f(c);
            let ok = result.is_ok();
            let deliver: Deliver = Box::new(move |group_failed| {
                let _ = answer.send(match group_failed {
                    Some(e) => Err(e),
                    None => result,
                });
            });
            (ok, deliver)
        });
        self.queue
            .as_ref()
            .ok_or_else(|| backend("the SQLite writer has stopped"))?
            .send(Job { solo, run })
            .map_err(|_| backend("the SQLite writer has stopped"))?;
        answered
            .await
            .map_err(|_| backend("the SQLite write was abandoned"))?
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        drop(self.queue.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn writer_loop(mut conn: Connection, jobs: mpsc::Receiver<Job>, mut due: Option<Due>) {
    loop {
        let owed = due.as_ref().filter(|d| d.owed);
        let first = match owed.map(|d| d.chore.every.saturating_sub(d.last.elapsed())) {
            Some(wait) => match jobs.recv_timeout(wait) {
                Ok(job) => job,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if let Some(due) = due.as_mut() {
                        run_idle(&mut conn, due);
                    }
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            },
            None => match jobs.recv() {
                Ok(job) => job,
                Err(_) => break,
            },
        };
        let mut group = Vec::new();
        let mut next = Some(first);
        while let Some(job) = next.take() {
            if job.solo {
                commit_group(&mut conn, std::mem::take(&mut group), due.as_mut());
                run_alone(&mut conn, job);
            } else {
                group.push(job);
            }
            if group.len() < MAX_GROUP {
                next = jobs.try_recv().ok();
            }
        }
        commit_group(&mut conn, group, due.as_mut());
    }
}

/// Run the chore the groups left owed, in a transaction of its own (the writer is idle).
fn run_idle(conn: &mut Connection, due: &mut Due) {
    if conn.step("BEGIN IMMEDIATE").is_err() {
        // Tried again once the period is over again.
        due.last = Instant::now();
        return;
    }
    due.run_if_due(conn);
    if !conn.is_autocommit() {
        if let Err(e) = conn.step("COMMIT") {
            let _ = conn.step("ROLLBACK");
            due.owed = true;
            tracing::warn!(error = %e, "SQLite upkeep failed; it is tried again later");
        }
    }
}

/// Run a job, catching a panic (its caller then sees the write abandoned).
fn attempt(conn: &mut Connection, job: Job) -> Option<(bool, Deliver)> {
    catch_unwind(AssertUnwindSafe(|| (job.run)(conn))).ok()
}

fn run_alone(conn: &mut Connection, job: Job) {
    if let Some((_, deliver)) = attempt(conn, job) {
        deliver(None);
    }
}

/// The answers of a group's writes that ran, each with whether the write succeeded.
type Done = Vec<(bool, Deliver)>;

/// What a write that succeeded answers when its group's transaction was rolled back.
const ROLLED_BACK: &str = "the group transaction was rolled back";

/// Answer the writes of `done`: those that succeeded fail with `why`, the others keep their
/// own errors.
fn fail_all(done: Done, why: &str) {
    for (ok, deliver) in done {
        deliver(ok.then(|| backend(why.to_string())));
    }
}

fn commit_group(conn: &mut Connection, group: Vec<Job>, due: Option<&mut Due>) {
    if group.is_empty() {
        return;
    }
    if conn.step("BEGIN IMMEDIATE").is_err() {
        // No group transaction: each write runs as its own.
        for job in group {
            run_alone(conn, job);
        }
        return;
    }
    // The group's audit events, written after its writes (see [`Deferred`]).
    let mut events = Some(Deferred::open());
    let done = run_group(conn, group, &mut events);
    if let Some(events) = events.filter(|_| !conn.is_autocommit()) {
        if let Err(e) = events.write(conn) {
            // The changes cannot go without their events: the whole group fails.
            let _ = conn.step("ROLLBACK");
            return fail_all(done, &e.to_string());
        }
    }
    if let Some(due) = due {
        due.owed = true;
        if !due.run_if_due(conn) {
            return fail_all(done, ROLLED_BACK);
        }
    }
    let failure = if conn.is_autocommit() {
        None
    } else {
        match conn.step("COMMIT") {
            Ok(()) => None,
            Err(e) => {
                let _ = conn.step("ROLLBACK");
                Some(e.to_string())
            }
        }
    };
    match failure {
        Some(why) => fail_all(done, &why),
        None => done.into_iter().for_each(|(_, deliver)| deliver(None)),
    }
}

/// Run a group's writes in the open transaction, each under a savepoint of its own: a write
/// that fails rolls back to its savepoint (and drops its audit events from `events`). When
/// SQLite rolls the whole transaction back meanwhile, the writes before are answered at once
/// and the next write begins a new one (or, when it cannot, runs alone, and so do its events).
fn run_group(conn: &mut Connection, group: Vec<Job>, events: &mut Option<Deferred>) -> Done {
    let mut done = Done::with_capacity(group.len());
    for job in group {
        if conn.is_autocommit() && conn.step("BEGIN IMMEDIATE").is_err() {
            *events = None;
            run_alone(conn, job);
            continue;
        }
        if let Err(e) = conn.step("SAVEPOINT job") {
            let _ = attempt(conn, job).map(|(_, d)| d(Some(backend(e))));
            continue;
        }
        let mark = events.as_ref().map_or(0, Deferred::mark);
        let outcome = attempt(conn, job);
        let ok = outcome.as_ref().is_some_and(|(ok, _)| *ok);
        if conn.is_autocommit() {
            // SQLite rolled the whole transaction back (an I/O error, say): the writes before
            // this one are gone with it, and their events.
            fail_all(std::mem::take(&mut done), ROLLED_BACK);
            if let Some(events) = events {
                events.truncate(0);
            }
        } else if ok {
            let _ = conn.step("RELEASE job");
        } else {
            if let Some(events) = events {
                events.truncate(mark);
            }
            let _ = conn
                .step("ROLLBACK TO job")
                .and_then(|()| conn.step("RELEASE job"));
        }
        if let Some((ok, deliver)) = outcome {
            if conn.is_autocommit() && ok {
                deliver(Some(backend(ROLLED_BACK)));
            } else {
                done.push((ok, deliver));
            }
        }
    }
    done
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes a row, then fails: its row must not stay.
    fn failing_chore(c: &Connection) -> StoreResult<()> {
        c.step("INSERT INTO t (n) VALUES (-1)").map_err(backend)?;
        Err(backend("the chore failed"))
    }

    fn counting_chore(c: &Connection) -> StoreResult<()> {
        c.step("UPDATE runs SET n = n + 1").map_err(backend)
    }

    fn writer(chore: fn(&Connection) -> StoreResult<()>) -> Writer {
        writer_every(chore, Duration::ZERO)
    }

    fn writer_every(chore: fn(&Connection) -> StoreResult<()>, every: Duration) -> Writer {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch("CREATE TABLE t (n INTEGER); CREATE TABLE runs (n INTEGER); INSERT INTO runs VALUES (0);")
            .unwrap();
        let chore = Chore { every, run: chore };
        Writer::start(c, Some(chore)).unwrap()
    }

    async fn count(w: &Writer, sql: &'static str) -> i64 {
        w.run(true, move |c| c.row(sql, [], |r| r.get(0)).map_err(backend))
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_failed_chore_leaves_its_group_alone() {
        let w = writer(failing_chore);
        for n in 0..3 {
            w.run(false, move |c| {
                c.step(&format!("INSERT INTO t (n) VALUES ({n})"))
                    .map_err(backend)
            })
            .await
            .unwrap();
        }
        assert_eq!(count(&w, "SELECT COUNT(*) FROM t").await, 3);
        assert_eq!(count(&w, "SELECT COUNT(*) FROM t WHERE n < 0").await, 0);
    }

    #[tokio::test]
    async fn chores_ride_along_groups_only() {
        let w = writer(counting_chore);
        assert_eq!(count(&w, "SELECT n FROM runs").await, 0);
        w.run(false, |c| {
            c.step("INSERT INTO t (n) VALUES (1)").map_err(backend)
        })
        .await
        .unwrap();
        assert_eq!(count(&w, "SELECT n FROM runs").await, 1);
        // Nothing was written since: an idle writer runs none.
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(count(&w, "SELECT n FROM runs").await, 1);
    }

    /// Writes that stop before the chore came due leave it to run once its period is over,
    /// once.
    #[tokio::test]
    async fn a_chore_left_owed_runs_when_the_writes_stop() {
        let w = writer_every(counting_chore, Duration::from_millis(300));
        w.run(false, |c| {
            c.step("INSERT INTO t (n) VALUES (1)").map_err(backend)
        })
        .await
        .unwrap();
        assert_eq!(count(&w, "SELECT n FROM runs").await, 0, "not due yet");
        let deadline = Instant::now() + Duration::from_secs(10);
        while count(&w, "SELECT n FROM runs").await == 0 {
            assert!(Instant::now() < deadline, "the owed chore never ran");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert_eq!(count(&w, "SELECT n FROM runs").await, 1, "and only once");
    }
}
