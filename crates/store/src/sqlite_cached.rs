//! Statements run through the connection's statement cache. Preparing a statement costs more
//! than running it: `Connection::execute` and `Connection::query_row` prepare theirs anew on
//! every call, which on the single writer connection took about 8% of the server's CPU in a
//! run of durable imports. Every statement of the SQLite store goes through [`Cached`].

use rusqlite::{Connection, Params, Row};

/// [`Connection::execute`], [`Connection::query_row`] and `execute_batch` of one statement,
/// each on a cached prepared statement.
pub(crate) trait Cached {
    /// Run `sql` with `params`; the number of rows it changed.
    fn exec<P: Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize>;
    /// The first row of `sql` with `params`, mapped by `f`.
    fn row<T, P, F>(&self, sql: &str, params: P, f: F) -> rusqlite::Result<T>
    where
        P: Params,
        F: FnOnce(&Row<'_>) -> rusqlite::Result<T>;
    /// Run `sql`, a statement without parameters (BEGIN, SAVEPOINT, RELEASE, COMMIT, ...).
    fn step(&self, sql: &str) -> rusqlite::Result<()>;
}

impl Cached for Connection {
    fn exec<P: Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }

    fn row<T, P, F>(&self, sql: &str, params: P, f: F) -> rusqlite::Result<T>
    where
        P: Params,
        F: FnOnce(&Row<'_>) -> rusqlite::Result<T>,
    {
        self.prepare_cached(sql)?.query_row(params, f)
    }

    fn step(&self, sql: &str) -> rusqlite::Result<()> {
        self.prepare_cached(sql)?.execute([]).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::Cached;
    use rusqlite::{params, Connection};

    #[test]
    fn statements_run_as_written() {
        let c = Connection::open_in_memory().unwrap();
        c.step("CREATE TABLE t (n INTEGER)").unwrap();
        for n in 0..3 {
            c.step("BEGIN IMMEDIATE").unwrap();
            c.step("SAVEPOINT job").unwrap();
            assert_eq!(
                c.exec("INSERT INTO t (n) VALUES (?1)", params![n]).unwrap(),
                1
            );
            c.step("RELEASE job").unwrap();
            c.step("COMMIT").unwrap();
        }
        let sum: i64 = c
            .row("SELECT sum(n) FROM t WHERE n >= ?1", params![0], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(sum, 3);
        // A failed step leaves the connection usable.
        c.step("BEGIN IMMEDIATE").unwrap();
        assert!(c.step("BEGIN IMMEDIATE").is_err());
        c.step("ROLLBACK").unwrap();
        assert!(c.is_autocommit());
    }
}
