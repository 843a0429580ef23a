//! The request as it arrived: method, raw path and query, raw header strings, body bytes.
//! Signatures are computed over these exact bytes, so nothing here normalises anything.

use axum::http::HeaderMap;

/// How much of an oversized body is kept to classify the request.
pub const HEAD_BYTES: usize = 64 * 1024;

/// A request as received, before any dialect has looked at it.
#[derive(Debug, Clone)]
pub struct RawRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path, as received (`/`).
    pub path: String,
    /// The raw query string without `?`, as received (never decoded or re-encoded).
    pub query: String,
    /// The headers.
    pub headers: HeaderMap,
    /// The body bytes.
    pub body: Vec<u8>,
    /// When the body was oversized: its first bytes (up to [`HEAD_BYTES`]), only to tell which
    /// dialect the request is in; never authenticated or acted on.
    pub head: Vec<u8>,
    /// The peer address, for logs.
    pub peer: Option<std::net::SocketAddr>,
    /// Set (to the limit) when the body, or the request line, was larger than accepted; `body`
    /// is then empty and the dialect answers with its own size error.
    pub oversized: Option<usize>,
}

impl RawRequest {
    /// A header's raw value as a string (first occurrence), if present and valid UTF-8.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| std::str::from_utf8(v.as_bytes()).ok())
            .map(str::to_string)
    }

    /// The media type of the body, lower-case, without parameters (borrowed from the header
    /// when it is lower-case already, as the clients send it).
    pub fn media_type(&self) -> std::borrow::Cow<'_, str> {
        let value = self
            .headers
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| std::str::from_utf8(v.as_bytes()).ok())
            .unwrap_or_default();
        let media = value.split(';').next().unwrap_or_default().trim();
        if media.bytes().any(|b| b.is_ascii_uppercase()) {
            std::borrow::Cow::Owned(media.to_ascii_lowercase())
        } else {
            std::borrow::Cow::Borrowed(media)
        }
    }

    /// Form-decoded query parameters, in order.
    pub fn query_params(&self) -> Vec<(String, String)> {
        form_urlencoded::parse(self.query.as_bytes())
            .into_owned()
            .collect()
    }

    /// Form-decoded body parameters when the body is `application/x-www-form-urlencoded`.
    pub fn form_params(&self) -> Vec<(String, String)> {
        if self.media_type() == "application/x-www-form-urlencoded" {
            form_urlencoded::parse(&self.body).into_owned().collect()
        } else {
            Vec::new()
        }
    }
}

/// The refusal message for a request larger than `limit` bytes.
pub fn too_large_message(limit: usize) -> String {
    format!("The request exceeds the limit of {limit} bytes.")
}

/// A fresh request id, shaped like the providers' (a UUID).
pub fn new_request_id() -> String {
    // Time-ordered (version 7): the audit trail's request-id index then grows at its end, so
    // the events of concurrent requests share its pages instead of each writing a page of
    // its own.
    uuid::Uuid::now_v7().to_string()
}
