//! Message heads: the request head written, the response head parsed
//! (httparse), and the response's framing and keep-alive read off it
//! (RFC 9112 §6, §9.3).

use std::mem::MaybeUninit;

use bytes::{Buf, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode, Version};
use smallvec::SmallVec;

use crate::Error;
use crate::client::Outgoing;

/// A response head larger than this is refused.
pub(crate) const MAX_HEAD_BYTES: usize = 64 * 1024;
const MAX_HEADERS: usize = 128;

/// Appends `request`'s head to `out`: its headers (less those it omits),
/// then its already encoded extra lines. `Content-Length` comes from the
/// body; the caller's own `Content-Length`, `Transfer-Encoding` and
/// `Connection` are not sent (this client frames the body and owns the
/// connection), nor `Expect`: the body follows the head at once, and a
/// `100 Continue` arriving mid-upload would read as an early answer.
/// Without a `Host` header, the authority is sent as `Host`.
pub(crate) fn encode_request(out: &mut Vec<u8>, request: &Outgoing<'_>) {
    let Outgoing {
        method,
        authority,
        target,
        headers,
        omit,
        body,
        extra_fields,
    } = request;
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_str().as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    if !headers.contains_key(header::HOST) || omit(&header::HOST) {
        line(out, b"host", authority.as_str().as_bytes());
    }
    for (name, value) in *headers {
        if name == header::CONTENT_LENGTH
            || name == header::TRANSFER_ENCODING
            || name == header::CONNECTION
            || name == header::EXPECT
            || omit(name)
        {
            continue;
        }
        line(out, name.as_str().as_bytes(), value.as_bytes());
    }
    out.extend_from_slice(extra_fields);
    // As Go's client does: an empty POST/PUT/PATCH still says its length,
    // which servers that insist on one (411) accept.
    if !body.is_empty() || matches!(**method, Method::POST | Method::PUT | Method::PATCH) {
        line(
            out,
            b"content-length",
            itoa::Buffer::new().format(body.len()).as_bytes(),
        );
    }
    out.extend_from_slice(b"\r\n");
}

fn line(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// How the response body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    Empty,
    Length(u64),
    Chunked,
    UntilClose,
}

#[derive(Debug)]
pub(crate) struct ResponseHead {
    pub parts: http::response::Parts,
    pub framing: Framing,
    /// The connection may carry another request after this response.
    pub keep_alive: bool,
}

/// Parses the response head at the start of `buf`, skipping interim (1xx)
/// responses. `Ok(None)`: more bytes are needed. On success the head's bytes
/// are taken off `buf`; header values share them without copying.
pub(crate) fn parse_response(
    buf: &mut BytesMut,
    head_request: bool,
) -> Result<Option<ResponseHead>, Error> {
    let config = httparse::ParserConfig::default();
    loop {
        // Uninitialised: zeroing 128 headers would cost more than parsing.
        let mut raw = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut []);
        let len = match config.parse_response_with_uninit_headers(&mut response, buf, &mut raw) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD_BYTES => {
                return Err(Error::Protocol("response head too large"));
            }
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(httparse::Error::TooManyHeaders) => {
                return Err(Error::Protocol("too many response headers"));
            }
            Err(_) => return Err(Error::Protocol("malformed response head")),
        };
        let code = response.code.unwrap_or_default();
        let status =
            StatusCode::from_u16(code).map_err(|_| Error::Protocol("invalid status code"))?;
        if status == StatusCode::SWITCHING_PROTOCOLS {
            return Err(Error::Protocol("unexpected 101 Switching Protocols"));
        }
        if status.is_informational() {
            buf.advance(len);
            continue;
        }
        let version = if response.version == Some(0) {
            Version::HTTP_10
        } else {
            Version::HTTP_11
        };
        // Where each name and value sits, so that the values can share the
        // head's bytes once they are split off the buffer.
        let base = buf.as_ptr() as usize;
        let at: SmallVec<[_; 16]> = response
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.as_ptr() as usize - base,
                    h.name.len(),
                    h.value.as_ptr() as usize - base,
                    h.value.len(),
                )
            })
            .collect();
        let head = buf.split_to(len).freeze();
        let mut headers = HeaderMap::with_capacity(at.len());
        let mut fields = Fields::default();
        for &(name_at, name_len, value_at, value_len) in &at {
            let name = HeaderName::from_bytes(&head[name_at..name_at + name_len])
                .map_err(|_| Error::Protocol("invalid header name"))?;
            let raw = &head[value_at..value_at + value_len];
            if !fields.note(&name, raw) {
                continue;
            }
            let value = HeaderValue::from_maybe_shared(head.slice(value_at..value_at + value_len))
                .map_err(|_| Error::Protocol("invalid header value"))?;
            headers.append(name, value);
        }
        for name in &fields.listed {
            headers.remove(name);
        }
        if fields.transfer_encoding.is_some() {
            // The decoded body's length is not what it says.
            headers.remove(header::CONTENT_LENGTH);
        }
        let (framing, delimited) = fields.framing(status, head_request)?;
        let keep_alive = delimited && fields.persistent(version);
        let (mut parts, ()) = http::Response::new(()).into_parts();
        parts.status = status;
        parts.version = version;
        parts.headers = headers;
        return Ok(Some(ResponseHead {
            parts,
            framing,
            keep_alive,
        }));
    }
}

// Compared as names, not as strings: a standard name (most fields) then
// differs at once, without its text being looked up.
const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// What a response head says about its framing and its connection, read
/// while its fields are collected.
#[derive(Debug, Default)]
struct Fields {
    /// Whether the last transfer coding is `chunked`, once one was named.
    transfer_encoding: Option<bool>,
    content_length: Option<Result<u64, &'static str>>,
    close: bool,
    keep_alive: bool,
    /// Further fields that `Connection` makes hop-by-hop.
    listed: Vec<HeaderName>,
}

impl Fields {
    /// Notes `name: value`; false for fields that describe this hop only
    /// (RFC 9110 §7.6.1), which the response does not carry on: framing
    /// and the connection are this client's business.
    fn note(&mut self, name: &HeaderName, value: &[u8]) -> bool {
        if name == header::TRANSFER_ENCODING {
            let last = value.rsplit(|&b| b == b',').next().map(<[u8]>::trim_ascii);
            self.transfer_encoding = Some(last.is_some_and(|c| c.eq_ignore_ascii_case(b"chunked")));
            return false;
        }
        if name == header::CONTENT_LENGTH {
            if let Some(Err(_)) = self.content_length {
                return true;
            }
            for part in value.split(|&b| b == b',') {
                let length = match parse_decimal(part.trim_ascii()) {
                    None => Err("invalid Content-Length"),
                    Some(n) if matches!(self.content_length, Some(Ok(seen)) if seen != n) => {
                        Err("conflicting Content-Length values")
                    }
                    Some(n) => Ok(n),
                };
                let failed = length.is_err();
                self.content_length = Some(length);
                if failed {
                    break;
                }
            }
            return true;
        }
        if name == header::CONNECTION {
            for token in value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
                if token.eq_ignore_ascii_case(b"close") {
                    self.close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                    self.keep_alive = true;
                } else if let Ok(listed) = HeaderName::from_bytes(token) {
                    self.listed.push(listed);
                }
            }
            return false;
        }
        !(name == header::TE
            || name == header::TRAILER
            || name == header::UPGRADE
            || name == KEEP_ALIVE
            || name == PROXY_CONNECTION)
    }

    /// The body's framing, and whether the connection can outlive it.
    fn framing(&self, status: StatusCode, head_request: bool) -> Result<(Framing, bool), Error> {
        if head_request || status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED {
            return Ok((Framing::Empty, true));
        }
        if let Some(chunked) = self.transfer_encoding {
            // With a Content-Length beside it, the message was meant for some
            // other parser: read it, then do not trust the connection again.
            let trusted = chunked && self.content_length.is_none();
            return Ok(if chunked {
                (Framing::Chunked, trusted)
            } else {
                (Framing::UntilClose, false)
            });
        }
        Ok(match self.content_length {
            Some(Err(e)) => return Err(Error::Protocol(e)),
            Some(Ok(0)) => (Framing::Empty, true),
            Some(Ok(n)) => (Framing::Length(n), true),
            None => (Framing::UntilClose, false),
        })
    }

    fn persistent(&self, version: Version) -> bool {
        if version == Version::HTTP_10 {
            self.keep_alive
        } else {
            !self.close
        }
    }
}

/// Digits only: `str::parse` would also take a leading `+`.
fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| {
        d.is_ascii_digit().then(|| n * 10 + u64::from(d - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use http::uri::Authority;

    use super::*;
    use crate::client::Target;

    /// The head of `method /a/b?c=d` to `backend:8080` with `headers`.
    fn encoded(method: Method, headers: &[(&str, &str)], body_len: usize) -> String {
        let mut map = HeaderMap::new();
        for (n, v) in headers {
            map.append(
                HeaderName::from_bytes(n.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        written(&method, &map, &|_| false, b"", body_len)
    }

    fn written(
        method: &Method,
        headers: &HeaderMap,
        omit: &(dyn Fn(&HeaderName) -> bool + Sync),
        extra_fields: &[u8],
        body_len: usize,
    ) -> String {
        let mut out = Vec::new();
        encode_request(
            &mut out,
            &Outgoing {
                method,
                authority: &Authority::from_static("backend:8080"),
                target: Target::new("/a/b?c=d").unwrap(),
                headers,
                omit,
                body: Bytes::from(vec![b'x'; body_len]),
                extra_fields,
            },
        );
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn request_heads_carry_host_length_and_the_callers_headers() {
        assert_eq!(
            encoded(
                Method::GET,
                &[("accept", "*/*"), ("x-a", "1"), ("x-a", "2")],
                0
            ),
            "GET /a/b?c=d HTTP/1.1\r\nhost: backend:8080\r\naccept: */*\r\nx-a: 1\r\nx-a: 2\r\n\r\n"
        );
        assert_eq!(
            encoded(Method::POST, &[("host", "api.example.com")], 12345),
            "POST /a/b?c=d HTTP/1.1\r\nhost: api.example.com\r\ncontent-length: 12345\r\n\r\n"
        );
    }

    #[test]
    fn omitted_fields_stay_out_and_an_omitted_host_is_replaced() {
        let mut map = HeaderMap::new();
        map.insert(header::HOST, HeaderValue::from_static("caller.example"));
        map.append("x-a", HeaderValue::from_static("1"));
        map.append("x-hop", HeaderValue::from_static("2"));
        let omit = |name: &HeaderName| name == header::HOST || name.as_str() == "x-hop";
        assert_eq!(
            written(&Method::GET, &map, &omit, b"", 0),
            "GET /a/b?c=d HTTP/1.1\r\nhost: backend:8080\r\nx-a: 1\r\n\r\n"
        );
    }

    #[test]
    fn extra_lines_follow_the_headers() {
        let mut map = HeaderMap::new();
        map.insert("x-a", HeaderValue::from_static("1"));
        assert_eq!(
            written(&Method::GET, &map, &|_| false, b"x-b: 2\r\n", 0),
            "GET /a/b?c=d HTTP/1.1\r\nhost: backend:8080\r\nx-a: 1\r\nx-b: 2\r\n\r\n"
        );
    }

    #[test]
    fn empty_bodies_say_their_length_only_where_a_body_is_expected() {
        assert!(encoded(Method::PUT, &[], 0).contains("content-length: 0\r\n"));
        assert!(encoded(Method::PATCH, &[], 0).contains("content-length: 0\r\n"));
        assert!(!encoded(Method::DELETE, &[], 0).contains("content-length"));
        assert!(!encoded(Method::HEAD, &[], 0).contains("content-length"));
    }

    #[test]
    fn the_callers_framing_connection_and_expect_headers_are_not_sent() {
        let head = encoded(
            Method::POST,
            &[
                ("content-length", "999"),
                ("transfer-encoding", "chunked"),
                ("connection", "close"),
                ("expect", "100-continue"),
            ],
            3,
        );
        assert_eq!(
            head,
            "POST /a/b?c=d HTTP/1.1\r\nhost: backend:8080\r\ncontent-length: 3\r\n\r\n"
        );
    }

    fn parse(text: &str, head_request: bool) -> Result<Option<(ResponseHead, String)>, Error> {
        let mut buf = BytesMut::from(text);
        Ok(parse_response(&mut buf, head_request)?
            .map(|h| (h, String::from_utf8(buf.to_vec()).unwrap())))
    }

    #[test]
    fn response_heads_parse_into_status_version_headers_and_framing() {
        let (head, rest) = parse(
            "HTTP/1.1 201 Created\r\nContent-Type: text/plain\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 5\r\n\r\nhello",
            false,
        )
        .unwrap()
        .unwrap();
        assert_eq!(head.parts.status, StatusCode::CREATED);
        assert_eq!(head.parts.version, Version::HTTP_11);
        assert_eq!(head.parts.headers["content-type"], "text/plain");
        assert_eq!(head.parts.headers.get_all("set-cookie").iter().count(), 2);
        assert_eq!(head.framing, Framing::Length(5));
        assert!(head.keep_alive);
        assert_eq!(rest, "hello");
    }

    #[test]
    fn a_partial_head_asks_for_more_and_a_huge_one_is_refused() {
        assert!(
            parse("HTTP/1.1 200 OK\r\nContent-Le", false)
                .unwrap()
                .is_none()
        );
        let huge = format!("HTTP/1.1 200 OK\r\nx-big: {}", "a".repeat(MAX_HEAD_BYTES));
        assert!(matches!(parse(&huge, false), Err(Error::Protocol(_))));
        assert!(matches!(
            parse("HTTX/1.1 200 OK\r\n\r\n", false),
            Err(Error::Protocol(_))
        ));
    }

    #[test]
    fn interim_responses_are_skipped_and_101_is_refused() {
        let (head, rest) = parse(
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
            false,
        )
        .unwrap()
        .unwrap();
        assert_eq!(head.parts.status, StatusCode::OK);
        assert!(!head.parts.headers.contains_key("link"));
        assert_eq!(rest, "ok");
        assert!(matches!(
            parse("HTTP/1.1 101 Switching Protocols\r\n\r\n", false),
            Err(Error::Protocol(_))
        ));
    }

    fn framing_of(head: &str, head_request: bool) -> (Framing, bool) {
        let (h, _) = parse(head, head_request).unwrap().unwrap();
        (h.framing, h.keep_alive)
    }

    #[test]
    fn framing_follows_rfc_9112() {
        use Framing::*;
        let cases = [
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n",
                false,
                (Length(7), true),
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
                false,
                (Empty, true),
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 7, 7\r\n\r\n",
                false,
                (Length(7), true),
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n",
                true,
                (Empty, true),
            ),
            (
                "HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n",
                false,
                (Empty, true),
            ),
            ("HTTP/1.1 304 Not Modified\r\n\r\n", false, (Empty, true)),
            (
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                false,
                (Chunked, true),
            ),
            (
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n",
                false,
                (Chunked, true),
            ),
            (
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
                false,
                (Chunked, false),
            ),
            (
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
                false,
                (UntilClose, false),
            ),
            ("HTTP/1.1 200 OK\r\n\r\n", false, (UntilClose, false)),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n",
                false,
                (Length(2), false),
            ),
            (
                "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n",
                false,
                (Length(2), false),
            ),
            (
                "HTTP/1.0 200 OK\r\nContent-Length: 2\r\nConnection: Keep-Alive\r\n\r\n",
                false,
                (Length(2), true),
            ),
        ];
        for (head, head_request, want) in cases {
            assert_eq!(framing_of(head, head_request), want, "{head:?}");
        }
    }

    #[test]
    fn hop_by_hop_fields_are_not_carried_on() {
        let (head, _) = parse(
            "HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\nTrailer: x-t\r\nUpgrade: h2c\r\nTransfer-Encoding: chunked\r\nContent-Length: 9\r\nX-End: 2\r\nSet-Cookie: a=1\r\n\r\n",
            false,
        )
        .unwrap()
        .unwrap();
        let mut names: Vec<_> = head.parts.headers.keys().map(|n| n.as_str()).collect();
        names.sort_unstable();
        assert_eq!(names, ["set-cookie", "x-end"]);
        assert_eq!(head.framing, Framing::Chunked);
        assert!(!head.keep_alive, "chunked beside Content-Length");
    }

    #[test]
    fn bad_or_conflicting_lengths_are_refused() {
        for head in [
            "HTTP/1.1 200 OK\r\nContent-Length: 7, 8\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 7\r\nContent-Length: 8\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 0x10\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n",
        ] {
            assert!(
                matches!(parse(head, false), Err(Error::Protocol(_))),
                "{head:?}"
            );
        }
    }
}
