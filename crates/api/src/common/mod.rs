//! What every dialect shares: the raw request, request ids, the rate limiter, parameter
//! decoding and the server loop.

/// Declare a dialect's actions once: an enum with `parse` (the wire name, case-sensitive as
/// the services are) and `name`.
macro_rules! actions {
    ($(#[$m:meta])* $name:ident { $($variant:ident),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name { $(#[allow(missing_docs)] $variant),* }
        impl $name {
            /// Every wire action name, in declaration order.
            pub const NAMES: &'static [&'static str] = &[$(stringify!($variant)),*];
            /// Parse the wire action name (case-sensitive, as the service is).
            pub fn parse(s: &str) -> Option<Self> {
                match s { $(stringify!($variant) => Some(Self::$variant),)* _ => None }
            }
            /// The wire action name.
            pub fn name(self) -> &'static str {
                match self { $(Self::$variant => stringify!($variant)),* }
            }
        }
    };
}
pub(crate) use actions;

pub mod answer;
pub mod audit;
pub mod audit_lookup;
pub mod certs;
pub mod digest;
pub mod envelope;
pub mod listener;
pub mod params;
pub mod ratelimit;
pub mod request;
pub mod serve;
pub mod server;
pub mod sniff;
#[cfg(test)]
pub mod testing;
pub mod times;
pub mod tls;
