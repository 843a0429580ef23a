//! Keyplane storage back ends behind [`keyplane_core::store::Store`].
//!
//! - [`sqlite::SqliteStore`]: the embedded default, one file in the data directory (WAL).
//! - [`postgres::PostgresStore`]: PostgreSQL, for several API nodes sharing one database.
//!
//! [`suite`] is the one scenario suite every back end must pass ([`sealing_suite`] is its
//! last part); [`suite_credentials::two_nodes`] runs two domain services on two handles of
//! one database.
#![forbid(unsafe_code)]

mod audit_sql;
mod key_pair_counts;
mod op_kind;
pub mod postgres;
mod postgres_audit;
mod postgres_console;
mod postgres_instances;
mod postgres_query;
mod postgres_schema;
mod query_sql;
mod rows;
pub mod sealing_suite;
mod sql;
pub mod sqlite;
mod sqlite_audit;
mod sqlite_audit_index;
mod sqlite_cached;
mod sqlite_console;
mod sqlite_instances;
mod sqlite_query;
mod sqlite_readers;
mod sqlite_writer;
mod stored;
pub mod suite;
mod suite_attributes;
mod suite_audit;
mod suite_console;
pub mod suite_credentials;
mod suite_queries;
#[cfg(test)]
mod suite_workflow;

#[cfg(test)]
mod postgres_tests;

pub use postgres::{redact_database_url, PostgresStore};
pub use sqlite::SqliteStore;

/// The indexes of the pushed-down reads, the same statements on both back ends: key pairs by
/// name whatever the region, pages in (created_at, id) order without a sort, instances the same.
pub(crate) const READ_INDEXES: &str = r#"
CREATE INDEX key_pairs_by_name ON key_pairs(account_id, namespace, name);
DROP INDEX key_pairs_by_account;
CREATE INDEX key_pairs_by_account ON key_pairs(account_id, namespace, created_at, id);
DROP INDEX instances_by_account;
CREATE INDEX instances_by_account ON instances(account_id, namespace, created_at, id);
"#;

/// Where a store reports how long its calls take: the first sink it is given.
#[derive(Clone, Default)]
pub(crate) struct Latency(
    std::sync::Arc<std::sync::OnceLock<std::sync::Arc<dyn keyplane_core::store::LatencySink>>>,
);

impl Latency {
    /// Report to `sink` from now on, unless a sink was given before.
    pub(crate) fn report_to(&self, sink: std::sync::Arc<dyn keyplane_core::store::LatencySink>) {
        let _ = self.0.set(sink);
    }

    /// Time a call of `kind` on `backend` until the timer is dropped.
    pub(crate) fn timer(
        &self,
        backend: &'static str,
        kind: keyplane_core::store::CallKind,
    ) -> CallTimer {
        CallTimer {
            sink: self.0.get().cloned(),
            backend,
            kind,
            started: std::time::Instant::now(),
        }
    }
}

/// A store call being timed (see [`Latency::timer`]).
pub(crate) struct CallTimer {
    sink: Option<std::sync::Arc<dyn keyplane_core::store::LatencySink>>,
    backend: &'static str,
    kind: keyplane_core::store::CallKind,
    started: std::time::Instant,
}

impl Drop for CallTimer {
    fn drop(&mut self) {
        if let Some(sink) = &self.sink {
            sink.observe(
                self.backend,
                self.kind,
                self.started.elapsed().as_secs_f64(),
            );
        }
    }
}
