//! The SQLite store's reader connections: a fixed set of read-only connections on the
//! database file, each lent out under a permit for one read transaction.

use crate::sqlite::backend;
use keyplane_core::store::StoreResult;
use rusqlite::{Connection, OpenFlags};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Read-only connections a file-backed store reads on (WAL lets them read while the writer
/// writes, and each other).
pub(crate) const READERS: usize = 4;

/// Idle reader connections; a permit is held for each one taken.
pub(crate) struct Readers {
    pub(crate) idle: Mutex<Vec<Connection>>,
    pub(crate) permits: Arc<tokio::sync::Semaphore>,
}

impl Readers {
    pub(crate) fn open(path: &Path) -> StoreResult<Readers> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        let mut idle = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            let conn = Connection::open_with_flags(path, flags).map_err(backend)?;
            conn.busy_timeout(std::time::Duration::from_secs(10))
                .map_err(backend)?;
            conn.set_prepared_statement_cache_capacity(128);
            crate::sqlite_query::register_functions(&conn)?;
            idle.push(conn);
        }
        Ok(Readers {
            idle: Mutex::new(idle),
            permits: Arc::new(tokio::sync::Semaphore::new(READERS)),
        })
    }
}

/// A reader connection taken from the idle ones under a permit, given back (with the permit)
/// when dropped, also when the read panics.
pub(crate) struct Lease<'a> {
    readers: &'a Readers,
    conn: Option<Connection>,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl<'a> Lease<'a> {
    pub(crate) fn take(
        readers: &'a Readers,
        permit: tokio::sync::OwnedSemaphorePermit,
    ) -> StoreResult<Lease<'a>> {
        let conn = readers
            .idle
            .lock()
            .map_err(|_| backend("reader pool poisoned"))?
            .pop()
            .ok_or_else(|| backend("no idle reader under a permit"))?;
        Ok(Lease {
            readers,
            conn: Some(conn),
            _permit: permit,
        })
    }

    /// Run `f` in one read transaction: its statements see one snapshot (a page and its
    /// count agree), and the WAL read lock is taken and released once, not per statement
    /// (each costs a pair of `fcntl` calls on the shared-memory file).
    pub(crate) fn run<T>(self, f: impl FnOnce(&Connection) -> StoreResult<T>) -> StoreResult<T> {
        use crate::sqlite_cached::Cached;
        let Some(conn) = &self.conn else {
            return Err(backend("reader lease without a connection"));
        };
        if conn.is_autocommit() {
            conn.step("BEGIN").map_err(backend)?;
        }
        let result = f(conn);
        // Ending a read transaction cannot lose anything; it only fails when a statement of
        // `f` is still running, which `f` returning rules out.
        if !conn.is_autocommit() {
            conn.step("COMMIT").map_err(backend)?;
        }
        result
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        // A read that panicked left its transaction open: a connection going back idle must
        // not hold on to an old snapshot.
        if !conn.is_autocommit() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        if let (true, Ok(mut idle)) = (conn.is_autocommit(), self.readers.idle.lock()) {
            idle.push(conn);
        }
    }
}
