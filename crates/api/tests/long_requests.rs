//! Requests whose request line is longer than hyper can hold (its URI type stops at 64 KiB),
//! over a real connection: each is answered in its own dialect's envelope with its size error,
//! not with a bodiless 414, and the server goes on serving, on the same connection too.

use keyplane_api::{ApiConfig, AppState};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

mod support;

struct Answer {
    status: u16,
    headers: String,
    body: Value,
}

/// Send `head` on a fresh connection and read the answer until the server closes.
async fn exchange(addr: std::net::SocketAddr, head: &str) -> Answer {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(std::time::Duration::from_secs(30), s.read_to_end(&mut out))
        .await
        .expect("the server answers and closes")
        .unwrap();
    let text = String::from_utf8(out).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("a whole response");
    Answer {
        status: head[9..12].parse().unwrap(),
        headers: head.to_ascii_lowercase(),
        body: serde_json::from_str(body).unwrap_or(Value::Null),
    }
}

/// Read one answer (head and a Content-Length body) from a kept-alive connection.
async fn read_one(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut byte = [0u8; 1];
    while !out.ends_with(b"\r\n\r\n") {
        assert_eq!(
            s.read(&mut byte).await.unwrap(),
            1,
            "the connection stays open"
        );
        out.push(byte[0]);
    }
    let head = String::from_utf8(out.clone()).unwrap().to_ascii_lowercase();
    let length: usize = head
        .split("content-length: ")
        .nth(1)
        .and_then(|v| v.split("\r\n").next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    s.read_exact(&mut body).await.unwrap();
    out.extend_from_slice(&body);
    String::from_utf8(out).unwrap()
}

fn get(target: &str, headers: &str) -> String {
    format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}Connection: close\r\n\r\n")
}

#[tokio::test]
async fn a_long_request_line_gets_its_dialects_size_error() {
    let t = support::server(
        support::account("long", "AKIDlong", "secret"),
        1_800_000_000,
        0,
    )
    .await;
    let state = AppState::new(t.core.clone(), ApiConfig::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(keyplane_api::run(state, listener, async move {
        let _ = stopped.await;
    }));
    let pad = "A".repeat(200 * 1024);

    // Tencent API 3.0, by its Version, by its headers (Lighthouse), and by default.
    for (target, headers) in [
        (
            format!("/?Action=DescribeKeyPairs&Version=2017-03-12&X={pad}"),
            "",
        ),
        (
            format!("/?X={pad}"),
            "X-TC-Action: DescribeInstances\r\nX-TC-Version: 2020-03-24\r\n",
        ),
        (format!("/?X={pad}"), ""),
    ] {
        let a = exchange(addr, &get(&target, headers)).await;
        assert_eq!(a.status, 200, "{}", a.headers);
        assert!(
            a.headers.contains("content-type: application/json\r\n"),
            "{}",
            a.headers
        );
        assert_eq!(
            a.body["Response"]["Error"]["Code"],
            "RequestSizeLimitExceeded"
        );
        assert!(a.body["Response"]["RequestId"].is_string());
    }
    // The legacy v2 API, by its path.
    let a = exchange(
        addr,
        &get(&format!("/v2/index.php?Action=BindInstanceKey&X={pad}"), ""),
    )
    .await;
    assert_eq!(a.status, 200);
    assert_eq!(a.body["codeDesc"], "InvalidParameter", "{}", a.body);
    assert!(a.body["code"].as_i64().unwrap() > 0);
    // ECS, by its signature parameters and by its Version.
    for target in [
        format!("/?AccessKeyId=LTAIx&SignatureNonce=1&X={pad}"),
        format!("/?Action=DescribeKeyPairs&Version=2014-05-26&X={pad}"),
    ] {
        let a = exchange(addr, &get(&target, "")).await;
        assert_eq!(a.status, 400, "{}", a.headers);
        assert_eq!(a.body["Code"], "InvalidParameter", "{}", a.body);
        assert!(a.body["HostId"].is_string() && a.body["Recommend"].is_string());
    }
    // The server goes on, on a kept-alive connection too (clients pool connections): an
    // ordinary request, the long one, then an ordinary one again, each answered in turn.
    let mut s = TcpStream::connect(addr).await.unwrap();
    let long = format!("/?Action=DescribeKeyPairs&Version=2014-05-26&X={pad}");
    for (target, status) in [
        ("/healthz", "200"),
        (long.as_str(), "400"),
        ("/healthz", "200"),
    ] {
        let req = format!("GET {target} HTTP/1.1\r\nHost: h\r\n\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let answer = read_one(&mut s).await;
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}")),
            "{answer}"
        );
        if status == "400" {
            assert!(answer.contains("\"Code\":\"InvalidParameter\""), "{answer}");
        }
    }

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}
