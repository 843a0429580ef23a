//! What every dialect shares: the raw request, request ids, the rate limiter, parameter
//! decoding and the server loop.

pub mod params;
pub mod ratelimit;
pub mod request;
pub mod server;
#[cfg(test)]
pub mod testing;
