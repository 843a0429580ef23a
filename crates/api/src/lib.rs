//! Keyplane's HTTP API: one server that speaks the providers' own dialects over one domain
//! core.
//!
//! - `tencent`: Tencent Cloud API 3.0 (TC3-HMAC-SHA256 and v1 HmacSHA1/HmacSHA256), one wire
//!   layer with CVM, Lighthouse and CloudAudit beside each other, and beside them the legacy
//!   CVM v2 API at `/v2/index.php` (`{code, message, codeDesc}`), a dialect of its own.
//! - `aliyun`: Alibaba Cloud RPC (HMAC-SHA1 and ACS3-HMAC-SHA256), one wire layer with ECS
//!   2014-05-26 and ActionTrail 2020-07-06 beside each other.
//! - `agent_api`: what guest agents fetch and report.
//! - `console`: the web console at `/console/`.
//!
//! Every dialect is served by one path (`common::serve`): a `Dialect` parses, authenticates,
//! dispatches and renders; the serve function owns the span, access log, metric, size limit
//! and audit trail.
//!
//! [`run`] is the one start seam: the caller binds the listener and owns shutdown;
//! [`run_tls`] serves the same router over HTTPS. The modules are private: this crate exports
//! only the server, its TLS set-up, and the pure signature functions and served catalog that
//! clients and tests sign and enumerate with.
#![forbid(unsafe_code)]

mod agent_api;
mod aliyun;
mod common;
mod console;
mod metadata;
mod tencent;

pub use common::server::{metrics_router, router, run, ApiConfig, AppState, ServedOverTls};
pub use common::tls::{config_from_pem_files, run_tls, TlsListener};
pub use metadata::router as metadata_router;

/// The server's own certificate authority and the identity it issues itself.
pub mod certs {
    pub use crate::common::certs::{ca_path, issue_server_identity, server_names, ServerFiles};
}

/// The signature schemes as pure functions: what a client signs and the server verifies.
pub mod signature {
    pub use crate::common::digest::{sha256_hex, signatures_match};

    /// Tencent Cloud: TC3-HMAC-SHA256 and v1 HmacSHA1/HmacSHA256.
    pub mod tencent {
        pub use crate::tencent::signature::*;
    }
    /// Alibaba Cloud: RPC HMAC-SHA1 and ACS3-HMAC-SHA256.
    pub mod aliyun {
        pub use crate::aliyun::signature::*;
    }
}

/// What each dialect serves: its actions and regions.
pub mod served {
    pub use crate::aliyun::router::{ActionTrailAction, EcsAction, REGIONS as ALIYUN_REGIONS};
    pub use crate::tencent::router::{CloudAuditAction, CvmAction, LighthouseAction};
}
