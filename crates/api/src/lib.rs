//! Keyplane's HTTP API: one server that speaks the providers' own dialects over one domain
//! core.
//!
//! - [`tencent_v3`]: Tencent Cloud API 3.0 (TC3-HMAC-SHA256 and v1 HmacSHA1/HmacSHA256).
//!
//! [`run`] is the one start seam: the caller binds the listener and owns shutdown.
#![forbid(unsafe_code)]

pub mod common;
pub mod tencent_v3;

pub use common::server::{router, run, ApiConfig, AppState};
