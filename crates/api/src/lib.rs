//! Keyplane's HTTP API: one server that speaks the providers' own dialects over one domain
//! core.
//!
//! - [`tencent`]: Tencent Cloud API 3.0 (TC3-HMAC-SHA256 and v1 HmacSHA1/HmacSHA256): CVM,
//!   Lighthouse and CloudAudit.
//! - [`tencent_legacy`]: the legacy CVM v2 API at `/v2/index.php` (`{code, message, codeDesc}`).
//! - [`aliyun_rpc`]: Alibaba Cloud ECS 2014-05-26 and ActionTrail 2020-07-06 (RPC HMAC-SHA1 and
//!   ACS3-HMAC-SHA256).
//! - [`agent_api`]: what guest agents fetch and report.
//! - [`console`]: the web console at `/console/`.
//!
//! [`run`] is the one start seam: the caller binds the listener and owns shutdown;
//! [`run_tls`] serves the same router over HTTPS.
#![forbid(unsafe_code)]

pub mod agent_api;
pub mod aliyun_rpc;
pub mod common;
pub mod console;
pub mod metadata;
pub mod tencent;
pub mod tencent_legacy;

pub use common::server::{metrics_router, router, run, ApiConfig, AppState};
pub use common::tls::run_tls;
