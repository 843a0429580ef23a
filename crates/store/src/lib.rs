//! Keyplane storage back ends behind [`keyplane_core::store::Store`].
//!
//! - [`sqlite::SqliteStore`]: the embedded default, one file in the data directory (WAL).
//!
//! [`suite`] is the one scenario suite every back end must pass.
#![forbid(unsafe_code)]

pub mod sqlite;
mod sqlite_instances;
pub mod suite;

pub use sqlite::SqliteStore;
