//! A connection's byte stream as hyper reads it, with one change: a request line too long for
//! hyper (its URI type holds at most 64 KiB, and a longer one gets a bodiless `414` in no
//! dialect) is rewritten to a short placeholder target, and the real target is kept in the
//! connection's [`LongTargets`] for the request to take back. The request is then served like
//! any other, marked oversized, so its dialect answers with its own size error; the connection
//! stays usable for the requests after it.
//!
//! A request starts with the connection's first byte, and again at the first byte read after
//! the server wrote (an answer; not a `100 Continue`). Only bytes that look like a request line
//! (`METHOD /...`) are rewritten, so a body read after an early answer passes untouched.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The longest request line passed through as it is.
pub const MAX_LINE: usize = 60 * 1024;
/// The most of a long request line that is kept (the rest is dropped).
pub const MAX_KEPT: usize = 2 * 1024 * 1024;
/// Path prefix of the placeholder target.
pub const PLACEHOLDER: &str = "/__keyplane/long-request-line/";

/// The real targets of the rewritten request lines of one connection, by placeholder number.
#[derive(Debug, Default)]
pub struct LongTargets {
    next: AtomicU64,
    targets: Mutex<HashMap<u64, String>>,
}

impl LongTargets {
    fn put(&self, target: String) -> u64 {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut t) = self.targets.lock() {
            t.insert(n, target);
        }
        n
    }

    /// The real target behind a placeholder path, taken out (once).
    pub fn take(&self, path: &str) -> Option<String> {
        let n: u64 = path.strip_prefix(PLACEHOLDER)?.parse().ok()?;
        self.targets.lock().ok()?.remove(&n)
    }
}

/// Where the reader is in the request it reads.
#[derive(Debug, PartialEq, Eq)]
enum Phase {
    /// At a request's first byte: collecting its request line.
    Line,
    /// Dropping the rest of a request line longer than [`MAX_KEPT`].
    Dropping,
    /// Inside a request: bytes pass through.
    Through,
}

/// The stream wrapper.
pub struct Sniff<S> {
    inner: S,
    phase: Phase,
    /// Bytes read and not yet handed on: a request line being collected (in [`Phase::Line`]),
    /// or what is ready (a finished line, its rewrite, and what followed it).
    pending: Vec<u8>,
    targets: Arc<LongTargets>,
}

impl<S> Sniff<S> {
    /// Wrap `inner`; rewritten targets go to `targets`.
    pub fn new(inner: S, targets: Arc<LongTargets>) -> Sniff<S> {
        Sniff {
            inner,
            phase: Phase::Line,
            pending: Vec::new(),
            targets,
        }
    }
}

/// Whether `bytes` (a request's first bytes) can be a request line: `TOKEN SP /` or
/// `TOKEN SP *`; `None` while too few bytes tell.
fn looks_like_request_line(bytes: &[u8]) -> Option<bool> {
    match bytes.iter().position(|&b| b == b' ') {
        Some(0) => Some(false),
        Some(i) if bytes[..i].iter().all(u8::is_ascii_uppercase) => {
            bytes.get(i + 1).map(|&b| b == b'/' || b == b'*')
        }
        Some(_) => Some(false),
        None if bytes.len() > 16 || !bytes.iter().all(u8::is_ascii_uppercase) => Some(false),
        None => None,
    }
}

/// `METHOD <placeholder> VERSION` for a long `line` (without its CRLF); its target is kept.
fn rewrite(line: &[u8], targets: &LongTargets) -> Vec<u8> {
    let text = String::from_utf8_lossy(line);
    let (method, rest) = text.split_once(' ').unwrap_or(("GET", ""));
    let (target, version) = match rest.rsplit_once(' ') {
        Some((t, v)) if v.starts_with("HTTP/") => (t, v),
        _ => (rest, "HTTP/1.1"),
    };
    let n = targets.put(target.to_string());
    format!("{method} {PLACEHOLDER}{n} {version}").into_bytes()
}

impl<S> Sniff<S> {
    /// Take in `got`, bytes of a request line being collected (or dropped).
    fn take_in(&mut self, got: &[u8]) {
        if self.phase == Phase::Dropping {
            if let Some(i) = got.windows(2).position(|w| w == b"\r\n") {
                // The rewritten line already ended with its CRLF.
                self.pending.extend_from_slice(&got[i + 2..]);
                self.phase = Phase::Through;
            }
            return;
        }
        let searched = self.pending.len().saturating_sub(1);
        self.pending.extend_from_slice(got);
        if looks_like_request_line(&self.pending) == Some(false) {
            self.phase = Phase::Through;
            return;
        }
        let end = self.pending[searched..]
            .windows(2)
            .position(|w| w == b"\r\n")
            .map(|i| i + searched);
        match end {
            Some(end) if end <= MAX_LINE => self.phase = Phase::Through,
            Some(end) => {
                let mut out = rewrite(&self.pending[..end], &self.targets);
                out.extend_from_slice(&self.pending[end..]);
                self.pending = out;
                self.phase = Phase::Through;
            }
            None if self.pending.len() > MAX_KEPT => {
                let mut out = rewrite(&self.pending, &self.targets);
                out.extend_from_slice(b"\r\n");
                self.pending = out;
                self.phase = Phase::Dropping;
            }
            None => {}
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Sniff<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        loop {
            if this.phase != Phase::Line && !this.pending.is_empty() {
                let n = this.pending.len().min(buf.remaining());
                buf.put_slice(&this.pending[..n]);
                this.pending.drain(..n);
                return Poll::Ready(Ok(()));
            }
            if this.phase == Phase::Through {
                return Pin::new(&mut this.inner).poll_read(cx, buf);
            }
            let mut chunk = [0u8; 16 * 1024];
            let mut rb = ReadBuf::new(&mut chunk);
            match Pin::new(&mut this.inner).poll_read(cx, &mut rb) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                // The end: hand on what there is, then the end itself.
                Poll::Ready(Ok(())) if rb.filled().is_empty() => this.phase = Phase::Through,
                Poll::Ready(Ok(())) => this.take_in(rb.filled()),
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Sniff<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        // An answer is being written: what is read next begins the next request.
        if self.phase == Phase::Through
            && self.pending.is_empty()
            && !data.starts_with(b"HTTP/1.1 100 ")
        {
            self.phase = Phase::Line;
        }
        Pin::new(&mut self.inner).poll_write(cx, data)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn through(input: &[u8]) -> (Vec<u8>, Arc<LongTargets>) {
        let (mut client, server) = tokio::io::duplex(1 << 16);
        let targets = Arc::new(LongTargets::default());
        let mut sniff = Sniff::new(server, targets.clone());
        let input = input.to_vec();
        let writer = tokio::spawn(async move {
            client.write_all(&input).await.unwrap();
            client.shutdown().await.unwrap();
            client
        });
        let mut out = Vec::new();
        sniff.read_to_end(&mut out).await.unwrap();
        drop(writer.await.unwrap());
        (out, targets)
    }

    #[tokio::test]
    async fn short_lines_and_bodies_pass_untouched() {
        let req = b"POST /x?a=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc";
        assert_eq!(through(req).await.0, req.to_vec());
        let body = format!("{{\"a\":\"{}\"}}", "x".repeat(100_000));
        assert_eq!(through(body.as_bytes()).await.0, body.into_bytes());
    }

    #[tokio::test]
    async fn a_long_request_line_is_rewritten_and_kept() {
        let target = format!("/?Version=2014-05-26&X={}", "A".repeat(200_000));
        let req = format!("GET {target} HTTP/1.1\r\nHost: h\r\n\r\n");
        let (out, targets) = through(req.as_bytes()).await;
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            format!("GET {PLACEHOLDER}0 HTTP/1.1\r\nHost: h\r\n\r\n")
        );
        assert_eq!(targets.take(&format!("{PLACEHOLDER}0")), Some(target));
        assert_eq!(targets.take(&format!("{PLACEHOLDER}0")), None, "once");
    }

    #[tokio::test]
    async fn a_line_past_what_is_kept_is_cut() {
        let req = format!(
            "GET /?X={} HTTP/1.1\r\nHost: h\r\n\r\n",
            "B".repeat(MAX_KEPT + 50_000)
        );
        let (out, targets) = through(req.as_bytes()).await;
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            format!("GET {PLACEHOLDER}0 HTTP/1.1\r\nHost: h\r\n\r\n")
        );
        let kept = targets.take(&format!("{PLACEHOLDER}0")).unwrap();
        assert!(
            kept.starts_with("/?X=BBB") && kept.len() <= MAX_KEPT + 16_384,
            "{}",
            kept.len()
        );
    }
}
