//! The client: a call on a pooled connection, or a new one.

use std::io::ErrorKind;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderMap, HeaderName, Method, Request, Response};

use crate::Error;
use crate::body::{Decoded, Decoder, Reading, ResponseBody};
use crate::conn::Conn;
use crate::head::{ResponseHead, encode_request};
use crate::pool::{Home, Pool};

/// Bodies up to this size go out in the same write as the head.
const INLINE_BODY: usize = 16 * 1024;

/// A request target: a path and query beginning with `/` (or `*`), with
/// nothing that would end or split the request line — no space, control
/// character or DEL. Checked once, where it is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target<'a>(&'a str);

impl<'a> Target<'a> {
    pub fn new(target: &'a str) -> Option<Self> {
        let clean = (target.starts_with('/') || target == "*")
            && target.bytes().all(|b| b > b' ' && b != 0x7f);
        clean.then_some(Self(target))
    }

    pub fn as_str(&self) -> &'a str {
        self.0
    }
}

/// One request for [`Client::send`].
pub struct Outgoing<'a> {
    pub method: &'a Method,
    /// The backend's `host[:port]`; connections are pooled by it.
    pub authority: &'a Authority,
    pub target: Target<'a>,
    pub headers: &'a HeaderMap,
    /// Fields of `headers` not to send, beside those this client never
    /// sends: a proxy passes its caller's headers as they are and names
    /// the hop-by-hop ones here, instead of copying the rest into a new map.
    pub omit: &'a (dyn Fn(&HeaderName) -> bool + Sync),
    pub body: Bytes,
    /// Lines already encoded (`name: value\r\n` each), written after
    /// `headers`: for fields a caller sends on every request and can encode once.
    pub extra_fields: &'a [u8],
}

impl std::fmt::Debug for Outgoing<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outgoing")
            .field("method", self.method)
            .field("authority", self.authority)
            .field("target", &self.target.as_str())
            .field("headers", self.headers)
            .field("body", &self.body.len())
            .finish_non_exhaustive()
    }
}

/// A cheap handle to a pool of keep-alive connections. Each proxy worker
/// has its own, so its connections stay on its thread.
#[derive(Clone, Default)]
pub struct Client {
    pool: Arc<Pool>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").finish_non_exhaustive()
    }
}

impl Client {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sends `request` (an absolute `http://` URI; the request line carries
    /// its path and query) and returns the response once its head is in.
    ///
    /// A pooled connection that fails before answering is replaced: always
    /// when the request could not be written, and for idempotent methods
    /// also when the backend closed it instead of answering (a keep-alive
    /// connection closed just as the request went out).
    pub async fn request(&self, request: Request<Bytes>) -> Result<Response<ResponseBody>, Error> {
        let (parts, body) = request.into_parts();
        let authority = (parts.uri.scheme() == Some(&Scheme::HTTP))
            .then(|| parts.uri.authority())
            .flatten();
        let target = Target::new(parts.uri.path_and_query().map_or("/", PathAndQuery::as_str));
        let (Some(authority), Some(target)) = (authority, target) else {
            return Err(Error::InvalidUri(parts.uri.to_string()));
        };
        self.send(Outgoing {
            method: &parts.method,
            authority,
            target,
            headers: &parts.headers,
            omit: &|_| false,
            body,
            extra_fields: b"",
        })
        .await
    }

    /// [`Client::request`] for a request already taken apart: no URI to
    /// build and parse on the way (a gateway has the backend's authority
    /// parsed once, and its target assembled from validated pieces).
    pub async fn send(&self, outgoing: Outgoing<'_>) -> Result<Response<ResponseBody>, Error> {
        let body = &outgoing.body;
        let inline = body.len() <= INLINE_BODY;
        let mut head = Vec::with_capacity(256 + if inline { body.len() } else { 0 });
        encode_request(&mut head, &outgoing);
        let rest: &[u8] = if inline {
            head.extend_from_slice(body);
            &[]
        } else {
            body
        };
        let (method, authority) = (outgoing.method, outgoing.authority);
        let head_request = *method == Method::HEAD;
        let idempotent = matches!(
            *method,
            Method::GET
                | Method::HEAD
                | Method::OPTIONS
                | Method::TRACE
                | Method::PUT
                | Method::DELETE
        );

        let slot = self.pool.slot(authority);
        while let Some(mut conn) = self.pool.checkout(slot) {
            let Ok(whole) = conn.write(&head, rest).await else {
                continue;
            };
            match conn.read_head(head_request).await {
                Ok(response) => return self.respond(conn, response, whole, slot),
                Err(Error::Closed) if idempotent => continue,
                Err(Error::Io(e)) if idempotent && closed_under_us(e.kind()) => continue,
                Err(e) => return Err(e),
            }
        }
        let host = authority.host().trim_matches(['[', ']']);
        let port = authority.port_u16().unwrap_or(80);
        let mut conn = Conn::connect(host, port)
            .await
            .map_err(|source| Error::Connect {
                authority: authority.to_string(),
                source,
            })?;
        let whole = conn.write(&head, rest).await?;
        let response = conn.read_head(head_request).await?;
        self.respond(conn, response, whole, slot)
    }

    /// The response with its body: whole when it came with the head (the
    /// connection goes straight back to the pool), else read as it comes.
    /// `sent_whole`: the request went out whole (else the connection ends
    /// with this response).
    fn respond(
        &self,
        mut conn: Conn,
        head: ResponseHead,
        sent_whole: bool,
        slot: usize,
    ) -> Result<Response<ResponseBody>, Error> {
        let ResponseHead {
            parts,
            framing,
            keep_alive,
        } = head;
        let keep_alive = keep_alive && sent_whole;
        let home = Home::new(&self.pool, slot);
        let mut decoder = Decoder::new(framing);
        let mut first: Option<Bytes> = None;
        loop {
            match decoder.decode(&mut conn.buf, false)? {
                Decoded::Data(bytes) => {
                    first = Some(match first {
                        None => bytes,
                        // Several chunks in one read: one piece.
                        Some(before) => {
                            let mut joined = BytesMut::with_capacity(before.len() + bytes.len());
                            joined.extend_from_slice(&before);
                            joined.extend_from_slice(&bytes);
                            joined.freeze()
                        }
                    });
                }
                Decoded::Done => {
                    if keep_alive {
                        home.put(conn);
                    }
                    return Ok(Response::from_parts(parts, ResponseBody::whole(first)));
                }
                Decoded::NeedMore => break,
            }
        }
        let body = ResponseBody::reading(Reading {
            conn,
            decoder,
            keep_alive,
            home,
            first,
            eof: false,
        });
        Ok(Response::from_parts(parts, body))
    }
}

fn closed_under_us(kind: ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted | ErrorKind::BrokenPipe
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_never_end_or_split_the_request_line() {
        for good in ["/", "/a/b?c=d&e=%20", "*", "/\u{e9}"] {
            assert_eq!(Target::new(good).map(|t| t.as_str()), Some(good));
        }
        for bad in [
            "/a b",
            "/a\r\nx: y",
            "/a\tb",
            "/\u{7f}",
            "a",
            "",
            "http://h/",
        ] {
            assert_eq!(Target::new(bad), None, "{bad:?}");
        }
    }
}
