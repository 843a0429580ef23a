//! Test support: the captured requests of the official clients.

use std::path::PathBuf;

/// One captured HTTP request.
#[derive(Debug, Clone)]
pub struct Capture {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Capture {
    /// The first header of this (case-insensitive) name.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    }

    /// Replace a header's value.
    pub fn set_header(&mut self, name: &str, value: &str) {
        for (n, v) in &mut self.headers {
            if n.eq_ignore_ascii_case(name) {
                *v = value.to_string();
            }
        }
    }

    /// Form-decoded query and (form) body parameters.
    pub fn params(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = form_urlencoded::parse(self.query.as_bytes())
            .into_owned()
            .collect();
        let form = self
            .header("content-type")
            .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
        if form {
            out.extend(form_urlencoded::parse(&self.body).into_owned());
        }
        out
    }
}

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/captures")
}

/// Names of all captures (without `.raw`).
pub fn capture_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir())
        .expect("captures directory")
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(".raw").map(str::to_string)
        })
        .collect();
    names.sort();
    names
}

/// Parse `<name>.raw`: request line, CRLF headers, blank line, body.
pub fn load_capture(name: &str) -> Capture {
    let bytes = std::fs::read(dir().join(format!("{name}.raw"))).expect("capture file");
    let split = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("header end");
    let head = String::from_utf8(bytes[..split].to_vec()).expect("utf-8 head");
    let body = bytes[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().unwrap().split(' ');
    let method = request_line.next().unwrap().to_string();
    let target = request_line.next().unwrap();
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let headers = lines
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap();
            (n.to_string(), v.trim_start().to_string())
        })
        .collect();
    Capture {
        method,
        path: path.to_string(),
        query: query.to_string(),
        headers,
        body,
    }
}
