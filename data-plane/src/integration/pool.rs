//! The backend client: keep-alive HTTP/1.1 connections (hyper's
//! `client::conn::http1`), pooled per backend authority.
//!
//! Leaner than hyper-util's general-purpose pool on the hot path: a
//! connection goes back to the pool when the response body has been read to
//! its end (no task spawned per request to watch for it), and a pooled
//! connection that turns out to be closed is replaced transparently when the
//! request was not sent on it.

use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderValue, Request, Response, Uri, header};
use http_body_util::Full;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Idle connections kept per backend authority; more are closed when returned.
const MAX_IDLE_PER_AUTHORITY: usize = 256;

type Sender = SendRequest<Full<Bytes>>;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("backend uri {0:?} is not an absolute http URL")]
    InvalidUri(String),
    #[error("cannot connect to {authority}: {source}")]
    Connect {
        authority: String,
        source: std::io::Error,
    },
    #[error("backend connection failed: {0}")]
    Http(#[from] hyper::Error),
}

impl ClientError {
    /// The backend could not be reached at all (no request was sent).
    pub fn is_connect(&self) -> bool {
        matches!(self, Self::Connect { .. })
    }
}

/// A cheap handle to the shared pool.
#[derive(Clone, Default)]
pub struct BackendClient {
    pool: Arc<Pool>,
}

impl std::fmt::Debug for BackendClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackendClient").finish_non_exhaustive()
    }
}

/// Idle connections by backend authority. A gateway calls few distinct
/// backends per worker: a short list scanned by equality beats hashing.
#[derive(Debug, Default)]
struct Pool {
    idle: Mutex<Vec<(Authority, Vec<Sender>)>>,
}

impl Pool {
    fn checkout(&self, authority: &Authority) -> Option<Sender> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let (_, senders) = idle.iter_mut().find(|(a, _)| a == authority)?;
        // Most recently used first: the warmest connection, and stale ones
        // sink to the bottom where the backend closes them.
        while let Some(sender) = senders.pop() {
            if !sender.is_closed() {
                return Some(sender);
            }
        }
        None
    }

    fn put(&self, authority: Authority, sender: Sender) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let at = match idle.iter().position(|(a, _)| *a == authority) {
            Some(at) => at,
            None => {
                idle.push((authority, Vec::new()));
                idle.len() - 1
            }
        };
        let senders = &mut idle[at].1;
        senders.retain(|s| !s.is_closed());
        if senders.len() < MAX_IDLE_PER_AUTHORITY {
            senders.push(sender);
        }
    }
}

impl BackendClient {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sends `request` (an absolute `http://` URI) on a pooled connection,
    /// or a new one. The response body returns the connection when read.
    pub async fn request(
        &self,
        mut request: Request<Full<Bytes>>,
    ) -> Result<Response<PooledBody>, ClientError> {
        let uri = request.uri();
        let authority = match (uri.scheme(), uri.authority()) {
            (Some(s), Some(a)) if *s == Scheme::HTTP => a.clone(),
            _ => return Err(ClientError::InvalidUri(uri.to_string())),
        };
        // HTTP/1.1 to an origin server: the request line carries the path only.
        let origin_form = uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        if !request.headers().contains_key(header::HOST)
            && let Ok(host) = HeaderValue::from_str(authority.as_str())
        {
            request.headers_mut().insert(header::HOST, host);
        }
        *request.uri_mut() = Uri::from(origin_form);

        let mut request = request;
        while let Some(mut sender) = self.pool.checkout(&authority) {
            if sender.ready().await.is_err() {
                continue;
            }
            match sender.try_send_request(request).await {
                Ok(response) => return Ok(self.pooled(response, authority, sender)),
                Err(mut failed) => match failed.take_message() {
                    // Never written: the connection was closing; try another.
                    Some(unsent) => request = unsent,
                    None => return Err(failed.into_error().into()),
                },
            }
        }
        let mut sender = self.connect(&authority).await?;
        sender.ready().await?;
        let response = sender.send_request(request).await?;
        Ok(self.pooled(response, authority, sender))
    }

    async fn connect(&self, authority: &Authority) -> Result<Sender, ClientError> {
        let port = authority.port_u16().unwrap_or(80);
        let connect_error = |source| ClientError::Connect {
            authority: authority.to_string(),
            source,
        };
        let stream = TcpStream::connect((authority.host().trim_matches(['[', ']']), port))
            .await
            .map_err(connect_error)?;
        stream.set_nodelay(true).map_err(connect_error)?;
        let (sender, connection) = http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "backend connection closed with an error");
            }
        });
        Ok(sender)
    }

    fn pooled(
        &self,
        response: Response<Incoming>,
        authority: Authority,
        sender: Sender,
    ) -> Response<PooledBody> {
        let (parts, body) = response.into_parts();
        let mut pooled = PooledBody {
            body,
            owner: Some(Owner {
                pool: Arc::downgrade(&self.pool),
                authority,
                sender,
            }),
        };
        if pooled.body.is_end_stream() {
            pooled.release();
        }
        Response::from_parts(parts, pooled)
    }
}

#[derive(Debug)]
struct Owner {
    pool: Weak<Pool>,
    authority: Authority,
    sender: Sender,
}

/// A backend response body that returns its connection to the pool once
/// read to the end. Dropped early, the connection is closed instead.
#[derive(Debug)]
pub struct PooledBody {
    body: Incoming,
    owner: Option<Owner>,
}

impl PooledBody {
    fn release(&mut self) {
        if let Some(owner) = self.owner.take()
            && let Some(pool) = owner.pool.upgrade()
        {
            pool.put(owner.authority, owner.sender);
        }
    }
}

impl Body for PooledBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => self.release(),
            Poll::Ready(Some(Ok(_))) if self.body.is_end_stream() => self.release(),
            Poll::Ready(Some(Err(_))) => self.owner = None,
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// When the test backend closes a connection.
    #[derive(Clone, Copy, PartialEq)]
    enum Close {
        Never,
        /// After each answer, which says `Connection: close`.
        Announced,
        /// After each answer, without saying so.
        Silently,
    }

    /// A keep-alive backend that answers every request with `ok` and counts
    /// the connections it accepted.
    async fn backend(close: Close) -> (String, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            loop {
                let (mut stream, _) = listener.accept().await.unwrap();
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let mut seen = Vec::new();
                    loop {
                        let n = match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        seen.extend_from_slice(&buf[..n]);
                        while let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                            seen.drain(..end + 4);
                            let header = if close == Close::Announced {
                                "Connection: close\r\n"
                            } else {
                                ""
                            };
                            let answer =
                                format!("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n{header}\r\nok");
                            if stream.write_all(answer.as_bytes()).await.is_err() {
                                return;
                            }
                            if close != Close::Never {
                                return;
                            }
                        }
                    }
                });
            }
        });
        (format!("http://{addr}/x"), accepted)
    }

    async fn get(client: &BackendClient, url: &str) -> String {
        let request = Request::get(url).body(Full::new(Bytes::new())).unwrap();
        let response = client.request(request).await.unwrap();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(body.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn reuses_a_connection_once_the_body_is_read() {
        let (url, accepted) = backend(Close::Never).await;
        let client = BackendClient::new();
        for _ in 0..5 {
            assert_eq!(get(&client, &url).await, "ok");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn replaces_connections_the_backend_closed() {
        for close in [Close::Announced, Close::Silently] {
            let (url, accepted) = backend(close).await;
            let client = BackendClient::new();
            for _ in 0..3 {
                assert_eq!(get(&client, &url).await, "ok");
                // Let the connection task see the close.
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            assert_eq!(accepted.load(Ordering::SeqCst), 3);
        }
    }

    #[tokio::test]
    async fn an_unread_body_does_not_return_its_connection() {
        let (url, accepted) = backend(Close::Never).await;
        let client = BackendClient::new();
        let request = Request::get(url.as_str())
            .body(Full::new(Bytes::new()))
            .unwrap();
        // Content-Length 2 but never read: the connection must not be reused.
        drop(client.request(request).await.unwrap());
        assert_eq!(get(&client, &url).await, "ok");
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn unreachable_backends_are_connect_errors() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let request = Request::get(format!("http://{addr}/"))
            .body(Full::new(Bytes::new()))
            .unwrap();
        let error = BackendClient::new().request(request).await.unwrap_err();
        assert!(error.is_connect(), "{error}");
    }

    #[tokio::test]
    async fn only_absolute_http_uris_are_accepted() {
        let request = Request::get("https://example.com/")
            .body(Full::new(Bytes::new()))
            .unwrap();
        let error = BackendClient::new().request(request).await.unwrap_err();
        assert!(matches!(error, ClientError::InvalidUri(_)), "{error}");
    }
}
