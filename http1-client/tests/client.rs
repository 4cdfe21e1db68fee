//! The client against real sockets: small scripted backends that answer
//! each request head with a canned response.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use apigw_http1_client::{Client, Error};
use bytes::Bytes;
use http::{Method, Request};
use http_body::Body as _;
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the scripted backend does after each answer.
#[derive(Clone, Copy, PartialEq)]
enum After {
    KeepOpen,
    Close,
    /// Answers as soon as it has the head, reads nothing more (the body
    /// stays unread), and holds the connection open for 30 s.
    Stall,
}

/// One request as the backend saw it: the head and the body.
type Seen = Arc<std::sync::Mutex<Vec<(String, Vec<u8>)>>>;

/// A backend that reads each request (head, then `content-length` bytes),
/// answers with `answer(request_head)` written in `pieces` writes 5 ms
/// apart, and counts its connections.
async fn backend(
    after: After,
    pieces: usize,
    answer: fn(&str) -> String,
) -> (String, Arc<AtomicUsize>, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let seen: Seen = Arc::default();
    let (count, log) = (accepted.clone(), seen.clone());
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(serve(stream, after, pieces, answer, log.clone()));
        }
    });
    (format!("http://{addr}"), accepted, seen)
}

async fn serve(
    mut stream: TcpStream,
    after: After,
    pieces: usize,
    answer: fn(&str) -> String,
    seen: Seen,
) {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let end = loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break end + 4;
            }
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8(buf[..end].to_vec()).unwrap();
        if after == After::Stall {
            let _ = stream.write_all(answer(&head).as_bytes()).await;
            tokio::time::sleep(Duration::from_secs(30)).await;
            return;
        }
        let length = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .map_or(0, |v| v.trim().parse::<usize>().unwrap());
        while buf.len() < end + length {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body = buf[end..end + length].to_vec();
        buf.drain(..end + length);
        let response = answer(&head);
        seen.lock().unwrap().push((head, body));
        let bytes = response.as_bytes();
        let step = bytes.len().div_ceil(pieces.max(1));
        for piece in bytes.chunks(step.max(1)) {
            if stream.write_all(piece).await.is_err() {
                return;
            }
            if pieces > 1 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        if after == After::Close {
            return;
        }
    }
}

fn ok(_: &str) -> String {
    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".into()
}

fn request(method: Method, url: &str, body: impl Into<Bytes>) -> Request<Bytes> {
    Request::builder()
        .method(method)
        .uri(url)
        .body(body.into())
        .unwrap()
}

async fn call(client: &Client, method: Method, url: &str) -> (u16, String) {
    let response = client.request(request(method, url, "")).await.unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn reuses_a_connection_once_the_body_is_read() {
    let (url, accepted, seen) = backend(After::KeepOpen, 1, ok).await;
    let client = Client::new();
    for _ in 0..5 {
        assert_eq!(
            call(&client, Method::GET, &format!("{url}/x?a=1")).await,
            (200, "ok".into())
        );
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
    let seen = seen.lock().unwrap();
    let host = url.trim_start_matches("http://");
    assert_eq!(
        seen[0].0,
        format!("GET /x?a=1 HTTP/1.1\r\nhost: {host}\r\n\r\n")
    );
}

#[tokio::test]
async fn replaces_connections_the_backend_closed() {
    fn announced(_: &str) -> String {
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok".into()
    }
    for (after, answer) in [
        (After::Close, announced as fn(&str) -> String),
        (After::Close, ok),
    ] {
        let (url, accepted, _) = backend(after, 1, answer).await;
        let client = Client::new();
        for _ in 0..3 {
            assert_eq!(call(&client, Method::GET, &url).await, (200, "ok".into()));
            // Let the runtime see the close.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 3);
    }
}

#[tokio::test]
async fn a_post_on_a_connection_closed_before_answering_is_not_resent() {
    // The backend reads each request and closes without answering: a
    // non-idempotent call must fail rather than be sent twice.
    fn nothing(_: &str) -> String {
        String::new()
    }
    let (url, _, seen) = backend(After::Close, 1, nothing).await;
    let client = Client::new();
    let error = client
        .request(request(Method::POST, &url, "once"))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Closed), "{error}");
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn an_unread_body_does_not_return_its_connection() {
    fn slow(_: &str) -> String {
        format!(
            "HTTP/1.1 200 OK\r\nContent-Length: 4000\r\n\r\n{}",
            "a".repeat(4000)
        )
    }
    let (url, accepted, _) = backend(After::KeepOpen, 4, slow).await;
    let client = Client::new();
    // The head arrives before the rest of the body; dropped unread, the
    // connection must not be reused.
    let response = client
        .request(request(Method::GET, &url, ""))
        .await
        .unwrap();
    // Part of the body came with the head: the hint still covers all of it.
    assert_eq!(response.body().size_hint().exact(), Some(4000));
    drop(response);
    let (status, body) = call(&client, Method::GET, &url).await;
    assert_eq!((status, body.len()), (200, 4000));
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
    // Read to its end, it is.
    let (_, body) = call(&client, Method::GET, &url).await;
    assert_eq!(body.len(), 4000);
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn chunked_bodies_stream_across_reads_and_keep_the_connection() {
    fn chunked(_: &str) -> String {
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n7\r\n, wor\r\n\r\n2;x=y\r\nld\r\n0\r\nx-t: 1\r\n\r\n".into()
    }
    let (url, accepted, _) = backend(After::KeepOpen, 9, chunked).await;
    let client = Client::new();
    for _ in 0..3 {
        let response = client
            .request(request(Method::GET, &url, ""))
            .await
            .unwrap();
        assert!(!response.headers().contains_key("content-length"));
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"hello, wor\r\nld");
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn bodies_until_close_end_with_the_connection() {
    fn unframed(_: &str) -> String {
        "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end".into()
    }
    let (url, accepted, _) = backend(After::Close, 3, unframed).await;
    let client = Client::new();
    for _ in 0..2 {
        assert_eq!(
            call(&client, Method::GET, &url).await,
            (200, "until the end".into())
        );
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_body_cut_short_is_an_error() {
    fn short(_: &str) -> String {
        "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nonly".into()
    }
    let (url, _, _) = backend(After::Close, 2, short).await;
    let response = Client::new()
        .request(request(Method::GET, &url, ""))
        .await
        .unwrap();
    let error = response.into_body().collect().await.unwrap_err();
    assert!(matches!(error, Error::Protocol(_)), "{error}");
}

#[tokio::test]
async fn head_answers_have_no_body_and_keep_the_connection() {
    fn head(_: &str) -> String {
        "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n".into()
    }
    let (url, accepted, _) = backend(After::KeepOpen, 1, head).await;
    let client = Client::new();
    for _ in 0..2 {
        let response = client
            .request(request(Method::HEAD, &url, ""))
            .await
            .unwrap();
        assert_eq!(response.headers()["content-length"], "1234");
        assert!(
            response
                .into_body()
                .collect()
                .await
                .unwrap()
                .to_bytes()
                .is_empty()
        );
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn request_bodies_small_and_large_arrive_whole() {
    let (url, _, seen) = backend(After::KeepOpen, 1, ok).await;
    let client = Client::new();
    let large = vec![b'x'; 200 * 1024];
    for body in [b"small".to_vec(), large.clone(), Vec::new()] {
        let response = client
            .request(request(Method::POST, &url, body))
            .await
            .unwrap();
        response.into_body().collect().await.unwrap();
    }
    let seen = seen.lock().unwrap();
    assert_eq!(seen[0].1, b"small");
    assert!(seen[0].0.contains("content-length: 5\r\n"));
    assert_eq!(seen[1].1, large);
    assert!(seen[2].0.contains("content-length: 0\r\n"));
}

#[tokio::test]
async fn malformed_answers_are_protocol_errors() {
    fn garbage(_: &str) -> String {
        "SMTP ready\r\n\r\n".into()
    }
    let (url, _, _) = backend(After::Close, 1, garbage).await;
    let error = Client::new()
        .request(request(Method::GET, &url, ""))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Protocol(_)), "{error}");
}

#[tokio::test]
async fn unreachable_backends_are_connect_errors() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let error = Client::new()
        .request(request(Method::GET, &format!("http://{addr}/"), ""))
        .await
        .unwrap_err();
    assert!(error.is_connect(), "{error}");
}

#[tokio::test]
async fn only_absolute_http_uris_are_accepted() {
    for uri in ["https://example.com/", "/relative"] {
        let error = Client::new()
            .request(request(Method::GET, uri, ""))
            .await
            .unwrap_err();
        assert!(matches!(error, Error::InvalidUri(_)), "{error}");
    }
}

#[tokio::test]
async fn an_answer_before_the_body_is_sent_stops_the_upload() {
    // A backend that turns a large upload down as soon as it has the head,
    // and reads no more: the client must stop writing and take the answer
    // rather than wait for socket buffers that never drain.
    fn refuse(_: &str) -> String {
        "HTTP/1.1 413 Payload Too Large\r\nContent-Length: 4\r\n\r\nnope".into()
    }
    let (url, accepted, _) = backend(After::Stall, 1, refuse).await;
    let client = Client::new();
    let upload = vec![b'x'; 64 * 1024 * 1024];
    let response = tokio::time::timeout(
        Duration::from_secs(10),
        client.request(request(Method::POST, &url, upload)),
    )
    .await
    .expect("the client kept writing instead of reading the answer")
    .unwrap();
    assert_eq!(response.status(), 413);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"nope");
    // Half an upload is left on that connection: it is not reused.
    let response = client
        .request(request(Method::GET, &url, ""))
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}
