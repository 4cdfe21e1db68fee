//! The connection over an in-memory pipe, and the hand-off to hyper.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use apigw_http1_server::{Connection, Limits, Next, Rewound};
use bytes::Bytes;
use http::{Method, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Full};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

const LIMITS: Limits = Limits {
    max_head: 4096,
    max_body: 1024,
};

/// A body of several frames, and what it says of its length.
struct Frames(VecDeque<Bytes>, SizeHint);

impl Body for Frames {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.0.pop_front().map(|b| Ok(Frame::data(b))))
    }

    fn size_hint(&self) -> SizeHint {
        self.1
    }
}

fn pipe() -> (Connection<DuplexStream>, DuplexStream) {
    let (server, client) = tokio::io::duplex(64 * 1024);
    (Connection::new(server, LIMITS), client)
}

/// A connection whose caller has sent one `GET /`, its head already read.
async fn with_a_request() -> (Connection<DuplexStream>, DuplexStream) {
    let (mut conn, mut client) = pipe();
    client.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    let _ = request(conn.next_request().await);
    (conn, client)
}

fn text(body: &'static str) -> Response<Full<Bytes>> {
    Response::new(Full::new(Bytes::from_static(body.as_bytes())))
}

/// What the caller has received so far, with the Date field's value masked.
async fn received(client: &mut DuplexStream, until: &str) -> String {
    let mut all = Vec::new();
    let mut chunk = [0u8; 4096];
    while !String::from_utf8_lossy(&all).contains(until) {
        let n = client.read(&mut chunk).await.unwrap();
        assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&all));
        all.extend_from_slice(&chunk[..n]);
    }
    mask_date(&String::from_utf8(all).unwrap())
}

fn mask_date(text: &str) -> String {
    text.split("\r\n")
        .map(|l| {
            if l.starts_with("date: ") {
                "date: *"
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\r\n")
}

fn request(next: Next) -> http::request::Parts {
    match next {
        Next::Request(parts) => parts,
        other => panic!("expected a request, got {other:?}"),
    }
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order_on_one_connection() {
    let (mut conn, mut client) = pipe();
    client
        .write_all(b"GET /one HTTP/1.1\r\nHost: a\r\n\r\nPOST /two HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello")
        .await
        .unwrap();
    let first = request(conn.next_request().await);
    assert_eq!(first.uri.path(), "/one");
    assert_eq!(conn.body().await.unwrap(), "");
    assert!(conn.respond(text("1"), false, b"").await.unwrap());
    let second = request(conn.next_request().await);
    assert_eq!((second.method, second.uri.path()), (Method::POST, "/two"));
    assert_eq!(conn.body().await.unwrap(), "hello");
    assert!(conn.respond(text("22"), false, b"").await.unwrap());
    assert_eq!(
        received(&mut client, "\r\n\r\n22").await,
        "HTTP/1.1 200 OK\r\ncontent-length: 1\r\ndate: *\r\n\r\n1\
         HTTP/1.1 200 OK\r\ncontent-length: 2\r\ndate: *\r\n\r\n22"
    );
    drop(client);
    assert!(matches!(conn.next_request().await, Next::Closed));
}

#[tokio::test]
async fn a_body_arriving_in_pieces_is_read_whole() {
    let (mut conn, mut client) = pipe();
    client
        .write_all(b"PUT / HTTP/1.1\r\nContent-Length: 10\r\n\r\n01234")
        .await
        .unwrap();
    let _ = request(conn.next_request().await);
    let reading = tokio::spawn(async move { (conn.body().await, conn) });
    tokio::task::yield_now().await;
    client.write_all(b"56789").await.unwrap();
    let (body, _) = reading.await.unwrap();
    assert_eq!(body.unwrap(), "0123456789");
}

#[tokio::test]
async fn an_unread_body_is_skipped_before_the_next_request() {
    let (mut conn, mut client) = pipe();
    client
        .write_all(b"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET /after HTTP/1.1\r\n\r\n")
        .await
        .unwrap();
    let _ = request(conn.next_request().await);
    assert!(conn.respond(text("no"), false, b"").await.unwrap());
    assert_eq!(request(conn.next_request().await).uri.path(), "/after");
}

#[tokio::test]
async fn a_body_of_unknown_length_is_chunked() {
    let (mut conn, mut client) = with_a_request().await;
    let body = Frames(
        VecDeque::from([
            Bytes::from_static(b"hello"),
            Bytes::new(),
            Bytes::from(vec![b'x'; 20]),
        ]),
        SizeHint::default(),
    );
    let mut response = Response::new(body);
    *response.status_mut() = StatusCode::CREATED;
    assert!(conn.respond(response, false, b"").await.unwrap());
    assert_eq!(
        received(&mut client, "0\r\n\r\n").await,
        format!(
            "HTTP/1.1 201 Created\r\ntransfer-encoding: chunked\r\ndate: *\r\n\r\n\
             5\r\nhello\r\n14\r\n{}\r\n0\r\n\r\n",
            "x".repeat(20)
        )
    );
}

#[tokio::test]
async fn a_large_body_is_written_whole() {
    let (mut conn, mut client) = with_a_request().await;
    let big = Bytes::from(vec![b'z'; 100_000]);
    let writing = tokio::spawn(async move {
        conn.respond(Response::new(Full::new(big)), false, b"")
            .await
            .unwrap()
    });
    let mut all = Vec::new();
    let head_end = loop {
        let mut chunk = [0u8; 8192];
        let n = client.read(&mut chunk).await.unwrap();
        all.extend_from_slice(&chunk[..n]);
        if let Some(at) = all.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    while all.len() < head_end + 100_000 {
        let mut chunk = [0u8; 8192];
        let n = client.read(&mut chunk).await.unwrap();
        assert!(n > 0);
        all.extend_from_slice(&chunk[..n]);
    }
    assert!(writing.await.unwrap());
    assert!(String::from_utf8_lossy(&all[..head_end]).contains("content-length: 100000\r\n"));
    assert_eq!(all.len(), head_end + 100_000);
    assert!(all[head_end..].iter().all(|&b| b == b'z'));
}

#[tokio::test]
async fn close_asked_or_imposed_ends_the_connection() {
    let (mut conn, mut client) = pipe();
    client
        .write_all(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let _ = request(conn.next_request().await);
    assert!(!conn.respond(text("bye"), false, b"").await.unwrap());
    assert!(
        received(&mut client, "bye")
            .await
            .contains("connection: close\r\n")
    );

    let (mut conn, mut client) = with_a_request().await;
    assert!(!conn.respond(text("bye"), true, b"").await.unwrap());
    assert!(
        received(&mut client, "bye")
            .await
            .contains("connection: close\r\n")
    );
}

#[tokio::test]
async fn a_body_shorter_than_declared_ends_the_connection() {
    let short = Frames(VecDeque::new(), SizeHint::with_exact(10));
    let (mut conn, mut client) = with_a_request().await;
    assert!(
        !conn
            .respond(Response::new(short), false, b"")
            .await
            .unwrap()
    );
    assert!(
        received(&mut client, "\r\n\r\n")
            .await
            .contains("content-length: 10\r\n")
    );
}

#[tokio::test]
async fn requests_it_does_not_serve_are_handed_off_with_every_byte() {
    for head in [
        "GET / HTTP/1.0\r\n\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        "GARBAGE\r\n\r\n",
    ] {
        let (mut conn, mut client) = pipe();
        client.write_all(head.as_bytes()).await.unwrap();
        assert!(matches!(conn.next_request().await, Next::HandOff), "{head}");
        let (_, rest) = conn.into_parts();
        assert_eq!(rest, head.as_bytes());
    }
    // A head that never ends within the limit.
    let (mut conn, mut client) = pipe();
    let long = format!("GET / HTTP/1.1\r\nX-Long: {}", "a".repeat(5000));
    client.write_all(long.as_bytes()).await.unwrap();
    assert!(matches!(conn.next_request().await, Next::HandOff));
    assert_eq!(conn.into_parts().1.len(), long.len());
}

/// Serves a connection as the data plane does: lean until a hand-off, then
/// hyper with the bytes already read.
async fn serve(server: DuplexStream) {
    let mut conn = Connection::new(server, LIMITS);
    loop {
        match conn.next_request().await {
            Next::Request(parts) => {
                let body = conn.body().await.unwrap();
                let answer = format!("lean {} {}", parts.uri.path(), body.len());
                if !conn.respond(text_owned(answer), false, b"").await.unwrap() {
                    return;
                }
            }
            Next::Closed => return,
            Next::HandOff => break,
        }
    }
    let (io, read) = conn.into_parts();
    let service =
        hyper::service::service_fn(|request: http::Request<hyper::body::Incoming>| async move {
            let path = request.uri().path().to_owned();
            let body = request.into_body().collect().await?.to_bytes();
            Ok::<_, hyper::Error>(text_owned(format!("hyper {path} {}", body.len())))
        });
    hyper::server::conn::http1::Builder::new()
        .serve_connection(
            hyper_util::rt::TokioIo::new(Rewound::new(io, read)),
            service,
        )
        .await
        .unwrap();
}

fn text_owned(body: String) -> Response<Full<Bytes>> {
    Response::new(Full::new(Bytes::from(body)))
}

#[tokio::test]
async fn hyper_takes_over_mid_connection_and_keeps_it() {
    let (server, mut client) = tokio::io::duplex(64 * 1024);
    let served = tokio::spawn(serve(server));
    client
        .write_all(
            b"GET /first HTTP/1.1\r\n\r\n\
              POST /second HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n\
              GET /third HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi",
        )
        .await
        .unwrap();
    let all = received(&mut client, "hyper /third 2").await;
    assert!(all.contains("\r\n\r\nlean /first 0"), "{all}");
    assert!(all.contains("\r\n\r\nhyper /second 3"), "{all}");
    drop(client);
    served.await.unwrap();
}
