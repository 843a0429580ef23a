//! The answer's two formats: JSON (the default; `Format=JSON` in any case) and XML
//! (`Format=XML`: an `<ActionResponse>` document, errors as `<Error>`), with the HTTP status
//! the official clients act on and `x-acs-retry-after` on throttling.

use super::error::AliError;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

/// Milliseconds a throttled client is told to wait.
pub const RETRY_AFTER_MS: &str = "1000";

/// The answer format asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Format {
    /// JSON (also for unknown values).
    #[default]
    Json,
    /// XML.
    Xml,
}

impl Format {
    /// From the `Format` parameter, any case.
    pub fn parse(value: Option<&str>) -> Format {
        match value {
            Some(v) if v.eq_ignore_ascii_case("xml") => Format::Xml,
            _ => Format::Json,
        }
    }
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// Write `value` as the content of element `name`; an array repeats the element once per item
/// (`{"Result":[a,b]}` becomes `<Result>a</Result><Result>b</Result>`), as ECS does.
fn element(out: &mut String, name: &str, value: &Value) {
    match value {
        Value::Array(items) => {
            for item in items {
                element(out, name, item);
            }
        }
        Value::Object(map) => {
            out.push_str(&format!("<{name}>"));
            fields(out, map);
            out.push_str(&format!("</{name}>"));
        }
        Value::Null => out.push_str(&format!("<{name}/>")),
        Value::String(s) => out.push_str(&format!("<{name}>{}</{name}>", escape(s))),
        other => out.push_str(&format!("<{name}>{other}</{name}>")),
    }
}

fn fields(out: &mut String, map: &Map<String, Value>) {
    for (k, v) in map {
        element(out, k, v);
    }
}

/// An XML document whose root element is `root`.
pub fn xml_document(root: &str, body: &Value) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
    element(&mut out, root, body);
    out
}

fn respond(status: StatusCode, content_type: &'static str, body: String) -> Response {
    let mut resp = (status, body).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

/// A successful answer: the fields plus `RequestId`, as JSON or `<{action}Response>`.
pub fn success(action: &str, request_id: &str, fields: Value, format: Format) -> Response {
    let mut body = match fields {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    body.insert("RequestId".into(), Value::String(request_id.into()));
    let body = Value::Object(body);
    match format {
        Format::Json => respond(
            StatusCode::OK,
            "application/json;charset=utf-8",
            body.to_string(),
        ),
        Format::Xml => respond(
            StatusCode::OK,
            "text/xml;charset=utf-8",
            xml_document(&format!("{action}Response"), &body),
        ),
    }
}

/// An error answer in the ECS envelope `{RequestId, HostId, Code, Message, Recommend}`, naming
/// `host` (the product's, e.g. `ecs.aliyuncs.com`) as its host.
pub fn failure(request_id: &str, error: &AliError, format: Format, host: &str) -> Response {
    let (code, status) = error.code();
    let body = json!({
        "RequestId": request_id,
        "HostId": host,
        "Code": code,
        "Message": error.message(),
        "Recommend": format!("https://api.aliyun.com/troubleshoot?q={code}"),
    });
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = match format {
        Format::Json => respond(status, "application/json;charset=utf-8", body.to_string()),
        // The Tea SDK parses an error body as XML only under exactly this content type.
        Format::Xml => respond(
            status,
            "text/xml;charset=utf-8",
            xml_document("Error", &body),
        ),
    };
    if matches!(error, AliError::Throttling(_)) {
        resp.headers_mut().insert(
            "x-acs-retry-after",
            HeaderValue::from_static(RETRY_AFTER_MS),
        );
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_repeats_array_items() {
        let v =
            json!({"Results": {"Result": [{"Code": "200"}, {"Code": "403"}]}, "TotalCount": "2"});
        assert_eq!(
            xml_document("AttachKeyPairResponse", &v),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><AttachKeyPairResponse><Results><Result><Code>200</Code></Result><Result><Code>403</Code></Result></Results><TotalCount>2</TotalCount></AttachKeyPairResponse>"
        );
        assert_eq!(
            xml_document("E", &json!({"M": "a<b & 'c'"})),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><E><M>a&lt;b &amp; &apos;c&apos;</M></E>"
        );
    }

    #[test]
    fn formats_in_any_case() {
        assert_eq!(Format::parse(Some("json")), Format::Json);
        assert_eq!(Format::parse(Some("JSON")), Format::Json);
        assert_eq!(Format::parse(Some("Xml")), Format::Xml);
        assert_eq!(Format::parse(None), Format::Json);
    }
}
