//! Connection timeouts and the bounded shutdown, seen from raw sockets: clients that
//! send half a request, idle on a keep-alive connection, or trickle a body.

use std::time::{Duration, Instant};

use casapay::ApiConfig;
use casapay::api::rate_limit::RateLimitConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{DEMO_KEY, TestApp};

/// Generous: what a loaded machine may add to a timer before a test calls it late.
const MARGIN: Duration = Duration::from_secs(2);

fn config(header_read: Duration, idle: Duration, request: Duration, grace: Duration) -> ApiConfig {
    ApiConfig {
        rate_limits: RateLimitConfig::OFF,
        header_read_timeout: header_read,
        idle_timeout: idle,
        request_timeout: request,
        shutdown_grace: grace,
        ..ApiConfig::default()
    }
}

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.base.trim_start_matches("http://")).await.expect("connect")
}

/// Reads until the server closes the connection (end of stream or reset); what it
/// sent before, and when it closed. Panics if it is still open at `deadline`.
async fn read_until_closed(stream: &mut TcpStream, deadline: Instant) -> (Vec<u8>, Instant) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline.into(), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (got, Instant::now()),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => panic!("the connection is still open; it sent {:?}", String::from_utf8_lossy(&got)),
        }
    }
}

/// Reads one response (status line, headers, a `Content-Length` body) from a
/// connection that stays open; returns its status and its head.
async fn read_response(stream: &mut TcpStream, deadline: Instant) -> (u16, String) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().expect("content-length"));
            if got.len() >= end + 4 + length {
                let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("status line");
                return (status, head);
            }
        }
        match tokio::time::timeout_at(deadline.into(), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => panic!("closed before a whole response: {:?}", String::from_utf8_lossy(&got)),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => panic!("no whole response in time: {:?}", String::from_utf8_lossy(&got)),
        }
    }
}

const HEALTH: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: casapay\r\n\r\n";

/// A form body for creating a customer, padded so that a byte at a time takes long.
const SLOW_BODY: &str = "name=Trickle&score=80&metadata[note]=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

fn customer_post_head(idempotency_key: Option<&str>) -> String {
    let key = idempotency_key.map(|k| format!("Idempotency-Key: {k}\r\n")).unwrap_or_default();
    format!(
        "POST /v1/customers HTTP/1.1\r\nHost: casapay\r\nAuthorization: Bearer {DEMO_KEY}\r\n{key}\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
        SLOW_BODY.len()
    )
}

/// Sends `body` a byte every 50 ms until done or the server stops reading.
fn trickle(mut writer: tokio::net::tcp::OwnedWriteHalf, body: &'static [u8]) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        for b in body {
            if writer.write_all(std::slice::from_ref(b)).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Keep the write side open: the server decides when the connection ends.
        std::future::pending::<()>().await;
    })
}

#[tokio::test]
async fn half_a_request_line_is_closed_after_the_header_timeout() {
    let header = Duration::from_millis(400);
    let app = TestApp::start_with(config(header, Duration::from_secs(30), Duration::from_secs(30), MARGIN)).await;

    // Each lower bound is taken before what starts the server's timer.
    let mut half = connect(&app).await;
    let sent = Instant::now();
    half.write_all(b"GET /v1/custo").await.unwrap();
    let (got, closed) = read_until_closed(&mut half, sent + header + MARGIN).await;
    assert!(closed - sent >= header - Duration::from_millis(50), "closed after {:?}", closed - sent);
    assert!(got.is_empty(), "nothing is answered to half a request: {:?}", String::from_utf8_lossy(&got));

    // A connection that sends nothing at all gets the same time for its first request.
    let opened = Instant::now();
    let mut silent = connect(&app).await;
    let (_, closed) = read_until_closed(&mut silent, opened + header + MARGIN).await;
    assert!(closed - opened >= header - Duration::from_millis(50));

    // Headers sent whole in time are served as usual.
    let mut whole = connect(&app).await;
    whole.write_all(HEALTH).await.unwrap();
    assert_eq!(read_response(&mut whole, Instant::now() + MARGIN).await.0, 200);
}

/// The idle timeout, not the (shorter) header timeout, applies between requests.
#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let header = Duration::from_millis(200);
    let idle = Duration::from_millis(900);
    let app = TestApp::start_with(config(header, idle, Duration::from_secs(30), MARGIN)).await;

    let mut conn = connect(&app).await;
    conn.write_all(HEALTH).await.unwrap();
    let (status, head) = read_response(&mut conn, Instant::now() + MARGIN).await;
    assert_eq!(status, 200);
    assert!(!head.contains("connection: close"), "kept alive: {head}");
    // The same connection serves another request.
    let asked = Instant::now();
    conn.write_all(HEALTH).await.unwrap();
    assert_eq!(read_response(&mut conn, Instant::now() + MARGIN).await.0, 200);

    let (got, closed) = read_until_closed(&mut conn, asked + idle + MARGIN).await;
    assert!(got.is_empty());
    // The server's idle timer started once the answer was ready, after `asked`.
    let waited = closed - asked;
    // Over the header timeout too: hyper's own header timer, which starts as soon as a
    // connection waits, would have closed it after 200 ms.
    assert!(waited >= idle - Duration::from_millis(50), "closed after {waited:?}, before the idle timeout");
}

/// Reading the body counts against the request timeout on every route, the
/// idempotency layer's reading of it included; the key is not left held.
#[tokio::test]
async fn a_trickling_body_is_answered_503_at_the_request_timeout() {
    let request = Duration::from_millis(600);
    let app = TestApp::start_with(config(Duration::from_secs(30), Duration::from_secs(30), request, MARGIN)).await;

    for key in [Some("trickle-1"), None] {
        let conn = connect(&app).await;
        let (mut reader, mut writer) = conn.into_split();
        let started = Instant::now();
        writer.write_all(customer_post_head(key).as_bytes()).await.unwrap();
        let sender = trickle(writer, SLOW_BODY.as_bytes());
        // SLOW_BODY takes over 4 s a byte at a time.
        let deadline = started + request + MARGIN;
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
            match tokio::time::timeout_at(deadline.into(), reader.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
                Err(_) => panic!("no answer by the request timeout (key {key:?})"),
            }
        }
        sender.abort();
        let text = String::from_utf8_lossy(&got);
        assert!(text.starts_with("HTTP/1.1 503"), "key {key:?}: {text:?}");
        assert!(started.elapsed() >= request - Duration::from_millis(50));
    }

    // The key was never taken: the same request sent whole now succeeds.
    let r = app
        .client
        .post(app.url("/v1/customers"))
        .bearer_auth(DEMO_KEY)
        .header("idempotency-key", "trickle-1")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(SLOW_BODY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// Reads up to the end of a response head (`\r\n\r\n`).
async fn read_head(reader: &mut (impl AsyncReadExt + Unpin), deadline: Instant) -> String {
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        match tokio::time::timeout_at(deadline.into(), reader.read(&mut byte)).await {
            Ok(Ok(1)) => got.push(byte[0]),
            Ok(_) => panic!("closed before a whole head: {:?}", String::from_utf8_lossy(&got)),
            Err(_) => panic!("no whole head in time: {:?}", String::from_utf8_lossy(&got)),
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// A customer POST whose handler is reading its body: `Expect: 100-continue` makes
/// the server say so (hyper sends `100 Continue` when the body is first read).
async fn post_in_flight(
    app: &TestApp,
    key: Option<&str>,
) -> (tokio::net::tcp::OwnedReadHalf, tokio::net::tcp::OwnedWriteHalf) {
    let (mut reader, mut writer) = connect(app).await.into_split();
    let head = customer_post_head(key).replace("\r\n\r\n", "\r\nExpect: 100-continue\r\n\r\n");
    writer.write_all(head.as_bytes()).await.unwrap();
    let continued = read_head(&mut reader, Instant::now() + MARGIN).await;
    assert!(continued.starts_with("HTTP/1.1 100"), "{continued:?}");
    (reader, writer)
}

/// On shutdown: idle connections close at once, a request in flight is answered,
/// and clients that never finish are cut off when the grace period ends.
#[tokio::test]
async fn shutdown_finishes_requests_in_flight_then_closes_the_rest_within_the_grace_period() {
    let grace = Duration::from_millis(1500);
    let long = Duration::from_secs(30);
    let mut app = TestApp::start_with(config(long, long, long, grace)).await;

    let mut idle = connect(&app).await;
    idle.write_all(HEALTH).await.unwrap();
    assert_eq!(read_response(&mut idle, Instant::now() + MARGIN).await.0, 200);
    let mut half = connect(&app).await;
    half.write_all(b"POST /v1/customers HTTP/1.1\r\nHost: casa").await.unwrap();
    // In flight, with a body that never ends.
    let (mut trickling, trickle_writer) = post_in_flight(&app, Some("trickle-forever")).await;
    let trickler = trickle(trickle_writer, b"name=");
    // In flight, with a body that ends during the grace period.
    let (mut finishing, mut finishing_writer) = post_in_flight(&app, None).await;

    let stop_started = Instant::now();
    let stop = app.stop();
    tokio::pin!(stop);
    tokio::select! {
        _ = &mut stop => panic!("stopped before the idle connection was closed"),
        (got, _) = read_until_closed(&mut idle, stop_started + grace) => assert!(got.is_empty()),
    }
    tokio::select! {
        _ = &mut stop => panic!("stopped before the request in flight was answered"),
        answered = async {
            finishing_writer.write_all(SLOW_BODY.as_bytes()).await.unwrap();
            let mut got = Vec::new();
            let _ = tokio::time::timeout(grace, finishing.read_to_end(&mut got)).await;
            String::from_utf8_lossy(&got).into_owned()
        } => {
            assert!(answered.starts_with("HTTP/1.1 200"), "{answered:?}");
            assert!(answered.to_ascii_lowercase().contains("connection: close"), "{answered:?}");
        }
    }
    tokio::time::timeout(grace + MARGIN, &mut stop).await.expect("the server stops within the grace period");
    let stopped = stop_started.elapsed();
    assert!(stopped >= grace - Duration::from_millis(50), "the trickling client had the grace period: {stopped:?}");
    trickler.abort();
    read_until_closed(&mut half, Instant::now() + MARGIN).await;
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(MARGIN, trickling.read_to_end(&mut rest)).await.expect("trickling one closed");
    if let Ok(n) = closed {
        assert_eq!(n, 0, "cut off without an answer: {:?}", String::from_utf8_lossy(&rest));
    }
}
