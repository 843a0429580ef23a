//! Keyplane's domain core: accounts, key pairs, and the rules every API dialect shares.
//!
//! This crate knows neither HTTP nor SQL. Dialects translate wire requests into the calls
//! of [`service::Core`]; storage back ends implement [`store::Store`].
#![forbid(unsafe_code)]

pub mod account;
pub mod agent;
pub mod audit;
pub mod binding;
pub mod compute;
pub mod console;
pub mod credentials;
pub mod error;
pub mod ids;
pub mod instance;
pub mod keypair;
mod launch;
pub mod metrics;
mod nonces;
pub mod operations;
pub mod password;
pub mod query;
pub mod registration;
pub mod sealing;
pub mod service;
pub mod store;
pub mod workflow;

pub use audit::RequestMeta;
pub use error::{DomainError, NameProblem};
pub use service::Core;
