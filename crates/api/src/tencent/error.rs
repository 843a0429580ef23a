//! Tencent API 3.0 errors: the protocol errors every product answers alike, plus a product's
//! own refusals and the domain's. Each product ([`ProductCodes`]) maps them to its exact code
//! strings, the domain's by an exhaustive `match`; so each product has an error type of its own
//! (`TcError<CvmRefusal>`, `TcError<LighthouseRefusal>`, ...).

use crate::common::params::ParamError;
use keyplane_core::{DomainError, NameProblem};

/// Everything a Tencent API 3.0 request can fail with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TcError<R = Unrouted> {
    /// The signature does not match, or the auth material is malformed.
    SignatureFailure(String),
    /// The signed timestamp is outside the accepted window.
    SignatureExpire(String),
    /// No account has this SecretId.
    SecretIdNotFound(String),
    /// A temporary-credential token was sent; this server issues none.
    TokenFailure,
    /// A required parameter is missing.
    MissingParameter(String),
    /// At least one of several optional parameters must be given.
    MissingAtLeastOne(String),
    /// A parameter the action does not take.
    UnknownParameter(String),
    /// A parameter of the wrong type or shape.
    InvalidParameter(String),
    /// The action does not exist in this product and version.
    InvalidAction(String),
    /// The product (service) is unknown.
    NoSuchProduct(String),
    /// The version is unknown for the product.
    NoSuchVersion(String),
    /// The region is not one this server serves.
    UnsupportedRegion(String),
    /// Over the per-account, per-action rate.
    RequestLimitExceeded(String),
    /// The body is larger than accepted.
    RequestSizeLimitExceeded(usize),
    /// A wire rule of the product refused the request.
    Refusal(R),
    /// A domain rule refused the request.
    Domain(DomainError),
}

/// A product's own refusals and codes.
pub trait ProductCodes {
    /// The product's code for [`TcError::MissingAtLeastOne`].
    const MISSING_AT_LEAST_ONE: &'static str;

    /// The wire code of one of the product's own refusals.
    fn code(&self) -> &'static str;

    /// Its human message.
    fn message(&self) -> String;

    /// The product's code for a domain error.
    fn domain_code(e: &DomainError) -> &'static str;

    /// The product's message for a domain error (see [`domain_message`]).
    fn domain_message(e: &DomainError) -> String {
        domain_message(e)
    }
}

/// The refusals of a request not routed to a product yet (refused while it is read and
/// authenticated): none of a product's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unrouted {}

impl TcError<Unrouted> {
    /// The same error, answered as product `R`'s.
    pub fn routed<R>(self) -> TcError<R> {
        match self {
            TcError::SignatureFailure(m) => TcError::SignatureFailure(m),
            TcError::SignatureExpire(m) => TcError::SignatureExpire(m),
            TcError::SecretIdNotFound(m) => TcError::SecretIdNotFound(m),
            TcError::TokenFailure => TcError::TokenFailure,
            TcError::MissingParameter(m) => TcError::MissingParameter(m),
            TcError::MissingAtLeastOne(m) => TcError::MissingAtLeastOne(m),
            TcError::UnknownParameter(m) => TcError::UnknownParameter(m),
            TcError::InvalidParameter(m) => TcError::InvalidParameter(m),
            TcError::InvalidAction(m) => TcError::InvalidAction(m),
            TcError::NoSuchProduct(m) => TcError::NoSuchProduct(m),
            TcError::NoSuchVersion(m) => TcError::NoSuchVersion(m),
            TcError::UnsupportedRegion(m) => TcError::UnsupportedRegion(m),
            TcError::RequestLimitExceeded(m) => TcError::RequestLimitExceeded(m),
            TcError::RequestSizeLimitExceeded(n) => TcError::RequestSizeLimitExceeded(n),
            TcError::Refusal(never) => match never {},
            TcError::Domain(e) => TcError::Domain(e),
        }
    }
}

impl<R: ProductCodes> From<R> for TcError<R> {
    fn from(e: R) -> Self {
        TcError::Refusal(e)
    }
}

impl<R> From<DomainError> for TcError<R> {
    fn from(e: DomainError) -> Self {
        TcError::Domain(e)
    }
}

impl<R> From<ParamError> for TcError<R> {
    fn from(e: ParamError) -> Self {
        match e {
            ParamError::Missing(p) => TcError::MissingParameter(p),
            ParamError::Unknown(p) => TcError::UnknownParameter(p),
            ParamError::Invalid { param, reason } => {
                TcError::InvalidParameter(format!("The parameter `{param}` is invalid: {reason}."))
            }
        }
    }
}

impl<R> TcError<R> {
    /// What went wrong inside, when the request failed rather than was refused.
    pub fn internal(&self) -> Option<&str> {
        match self {
            TcError::Domain(e) => crate::common::serve::internal_detail(e),
            _ => None,
        }
    }
}

impl<R: ProductCodes> TcError<R> {
    /// The wire code, in the product's list.
    pub fn code(&self) -> &'static str {
        match self {
            TcError::SignatureFailure(_) => "AuthFailure.SignatureFailure",
            TcError::SignatureExpire(_) => "AuthFailure.SignatureExpire",
            TcError::SecretIdNotFound(_) => "AuthFailure.SecretIdNotFound",
            TcError::TokenFailure => "AuthFailure.TokenFailure",
            TcError::MissingParameter(_) => "MissingParameter",
            TcError::MissingAtLeastOne(_) => R::MISSING_AT_LEAST_ONE,
            TcError::UnknownParameter(_) => "UnknownParameter",
            TcError::InvalidParameter(_) => "InvalidParameter",
            TcError::InvalidAction(_) => "InvalidAction",
            TcError::NoSuchProduct(_) => "NoSuchProduct",
            TcError::NoSuchVersion(_) => "NoSuchVersion",
            TcError::UnsupportedRegion(_) => "UnsupportedRegion",
            TcError::RequestLimitExceeded(_) => "RequestLimitExceeded",
            TcError::RequestSizeLimitExceeded(_) => "RequestSizeLimitExceeded",
            TcError::Refusal(e) => e.code(),
            TcError::Domain(e) => R::domain_code(e),
        }
    }

    /// The human message.
    pub fn message(&self) -> String {
        match self {
            TcError::SignatureFailure(m) | TcError::SignatureExpire(m) => m.clone(),
            TcError::SecretIdNotFound(id) => format!("The SecretId `{id}` is not found."),
            TcError::TokenFailure => {
                "Temporary credentials (X-TC-Token) are not issued by this server; sign with a permanent SecretId/SecretKey."
                    .into()
            }
            TcError::MissingParameter(p) => {
                format!("The request is missing a required parameter `{p}`.")
            }
            TcError::MissingAtLeastOne(p) => format!("At least one of {p} must be given."),
            TcError::UnknownParameter(p) => format!("The parameter `{p}` is not recognized."),
            TcError::InvalidParameter(m) => m.clone(),
            TcError::InvalidAction(m) | TcError::NoSuchProduct(m) | TcError::NoSuchVersion(m) => {
                m.clone()
            }
            TcError::UnsupportedRegion(r) => format!("The region `{r}` is not supported."),
            TcError::RequestLimitExceeded(a) => format!(
                "Your current request times ({a}) exceed the limit of this API for the account; retry later."
            ),
            TcError::RequestSizeLimitExceeded(n) => {
                format!("The request exceeds the limit of {n} bytes.")
            }
            TcError::Refusal(e) => e.message(),
            TcError::Domain(e) => R::domain_message(e),
        }
    }
}

/// The message of a domain error, as every Tencent product words it.
pub(crate) fn domain_message(e: &DomainError) -> String {
    match e {
        DomainError::KeyPairNameInvalid { name, problem } => match problem {
            NameProblem::Empty => "The key pair name must not be empty.".into(),
            NameProblem::TooShort { min } => {
                format!("The key pair name `{name}` is shorter than {min} characters.")
            }
            NameProblem::TooLong { max } => {
                format!("The key pair name `{name}` is longer than {max} characters.")
            }
            NameProblem::IllegalChar => format!(
                "The key pair name `{name}` may contain only letters, digits and underscores."
            ),
        },
        DomainError::Internal(_) => "An internal error occurred; retry later.".into(),
        other => {
            let mut s = other.to_string();
            if let Some(first) = s.get(..1) {
                let upper = first.to_uppercase();
                s.replace_range(..1, &upper);
            }
            s.push('.');
            s
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The vendor's codes of a product: its own list `own` and the common list.
    pub(crate) fn known_codes(own: &str) -> Vec<String> {
        let mut out = Vec::new();
        for text in [
            include_str!("../../data/tencent_common_error_codes.txt"),
            own,
        ] {
            out.extend(
                text.lines()
                    .filter(|l| !l.starts_with('#') && !l.is_empty())
                    .map(str::to_string),
            );
        }
        out
    }

    /// One of every domain error (every instance state too).
    pub(crate) fn every_domain_error() -> Vec<DomainError> {
        DomainError::examples()
    }

    /// One of every protocol error.
    pub(crate) fn every_protocol_error<R>() -> Vec<TcError<R>> {
        let s = String::from("x");
        vec![
            TcError::SignatureFailure(s.clone()),
            TcError::SignatureExpire(s.clone()),
            TcError::SecretIdNotFound(s.clone()),
            TcError::TokenFailure,
            TcError::MissingParameter(s.clone()),
            TcError::MissingAtLeastOne(s.clone()),
            TcError::UnknownParameter(s.clone()),
            TcError::InvalidParameter(s.clone()),
            TcError::InvalidAction(s.clone()),
            TcError::NoSuchProduct(s.clone()),
            TcError::NoSuchVersion(s.clone()),
            TcError::UnsupportedRegion(s.clone()),
            TcError::RequestLimitExceeded(s.clone()),
            TcError::RequestSizeLimitExceeded(1),
        ]
    }
}
