//! A small HTTP/1.1 load generator: each connection sends pre-serialized requests back to back
//! (keep-alive, no pipelining) and records each call's latency. Responses are read by their
//! `Content-Length`; a response holding an error envelope counts as an error.

use anyhow::{bail, Context, Result};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long a phase runs.
#[derive(Debug, Clone, Copy)]
pub enum Until {
    /// For this long, cycling through the requests.
    Elapsed(Duration),
    /// Until every request was sent once.
    Exhausted,
}

/// What a phase measured.
#[derive(Debug, Clone)]
pub struct Stats {
    /// Completed calls.
    pub calls: usize,
    /// Wall time of the phase.
    pub wall: Duration,
    /// Latency percentiles in microseconds: p50, p99.
    pub p50_us: f64,
    /// p99.
    pub p99_us: f64,
    /// Calls whose answer was an error envelope, and the first such answer.
    pub errors: usize,
    /// The first error answer, if any.
    pub first_error: Option<String>,
}

impl Stats {
    /// Calls per second.
    pub fn rate(&self) -> f64 {
        self.calls as f64 / self.wall.as_secs_f64()
    }
}

/// Run `conns` connections against `addr` sending `requests` (raw HTTP/1.1 bytes).
pub async fn run(
    addr: SocketAddr,
    requests: Arc<Vec<Vec<u8>>>,
    conns: usize,
    until: Until,
) -> Result<Stats> {
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let deadline = match until {
        Until::Elapsed(d) => Some(start + d),
        Until::Exhausted => None,
    };
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let (requests, next) = (requests.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            connection(addr, &requests, &next, deadline).await
        }));
    }
    let mut lat = Vec::new();
    let (mut errors, mut first_error) = (0, None);
    for t in tasks {
        let (l, e, first) = t.await??;
        lat.extend(l);
        errors += e;
        first_error = first_error.or(first);
    }
    let wall = start.elapsed();
    if lat.is_empty() {
        bail!("no call completed");
    }
    lat.sort_unstable();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)] as f64;
    Ok(Stats {
        calls: lat.len(),
        wall,
        p50_us: pct(0.50),
        p99_us: pct(0.99),
        errors,
        first_error,
    })
}

/// Send `requests` one after another on one keep-alive connection to `addr`; returns each
/// call's latency, in order. An error envelope in any answer fails the run.
pub async fn one_by_one(addr: SocketAddr, requests: &[Vec<u8>]) -> Result<Vec<Duration>> {
    let mut stream = TcpStream::connect(addr).await.context("connecting")?;
    stream.set_nodelay(true)?;
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut lat = Vec::with_capacity(requests.len());
    for request in requests {
        let t = Instant::now();
        stream.write_all(request).await?;
        let body = read_response(&mut stream, &mut buf).await?;
        lat.push(t.elapsed());
        if is_error(&body) {
            bail!("an error answer: {}", String::from_utf8_lossy(&body));
        }
    }
    Ok(lat)
}

type ConnResult = (Vec<u32>, usize, Option<String>);

async fn connection(
    addr: SocketAddr,
    requests: &[Vec<u8>],
    next: &AtomicUsize,
    deadline: Option<Instant>,
) -> Result<ConnResult> {
    let mut stream = TcpStream::connect(addr).await.context("connecting")?;
    stream.set_nodelay(true)?;
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut lat = Vec::new();
    let (mut errors, mut first_error) = (0, None);
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let request = match deadline {
            Some(d) if Instant::now() >= d => break,
            Some(_) => &requests[i % requests.len()],
            None if i >= requests.len() => break,
            None => &requests[i],
        };
        let t = Instant::now();
        stream.write_all(request).await?;
        let body = read_response(&mut stream, &mut buf).await?;
        lat.push(t.elapsed().as_micros().min(u32::MAX as u128) as u32);
        if is_error(&body) {
            errors += 1;
            if first_error.is_none() {
                first_error = Some(String::from_utf8_lossy(&body).into_owned());
            }
        }
    }
    Ok((lat, errors, first_error))
}

fn is_error(body: &[u8]) -> bool {
    body.windows(8).any(|w| w == b"\"Error\":")
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Read one response; returns its body.
async fn read_response(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<Vec<u8>> {
    buf.clear();
    let mut chunk = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(p) = find(buf, b"\r\n\r\n") {
            break p + 4;
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            bail!("the server closed the connection");
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .context("a response without Content-Length")?
        .trim()
        .parse()?;
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            bail!("the server closed the connection mid-body");
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(buf[head_end..head_end + length].to_vec())
}
