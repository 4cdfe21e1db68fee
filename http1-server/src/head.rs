//! Request heads parsed (httparse) and response heads written, for the
//! requests this crate serves itself; anything else is left in the buffer
//! for the full server (lib.rs).

use std::mem::MaybeUninit;

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode, Uri, Version};
use smallvec::SmallVec;

/// hyper's default: a head with more fields goes to hyper (which refuses it).
const MAX_HEADERS: usize = 100;
/// hyper answers 414 above this; such a head goes to hyper.
const MAX_URI_LEN: usize = u16::MAX as usize - 1;

/// What the bytes at the start of the buffer are.
// The request is the common case: boxing it would cost an allocation each.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum Parsed {
    /// Not a whole head yet.
    Partial,
    /// A head this crate does not serve (or a malformed one): the full
    /// server reads it from the start.
    HandOff,
    Request(RequestHead),
}

#[derive(Debug)]
pub(crate) struct RequestHead {
    pub parts: http::request::Parts,
    /// `Content-Length` (0 without one).
    pub body_len: usize,
    /// The caller asked to close the connection after this exchange.
    pub close: bool,
}

/// Parses the request head at the start of `buf`. Served here: HTTP/1.1
/// requests other than `CONNECT`, framed by `Content-Length` (up to
/// `max_body` bytes) or bodiless, without `Expect` or `Upgrade`. On
/// success the head's bytes are taken off `buf` and the field values share
/// them without copying (as hyper's do); otherwise `buf` is unchanged.
pub(crate) fn parse_request(buf: &mut BytesMut, max_body: usize) -> Parsed {
    // Uninitialised: zeroing 100 fields would cost more than parsing them.
    let mut raw = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut []);
    let len = match httparse::ParserConfig::default().parse_request_with_uninit_headers(
        &mut request,
        buf,
        &mut raw,
    ) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(_) => return Parsed::HandOff,
    };
    let (Some(method), Some(path), Some(1)) = (request.method, request.path, request.version)
    else {
        return Parsed::HandOff;
    };
    let Ok(method) = Method::from_bytes(method.as_bytes()) else {
        return Parsed::HandOff;
    };
    if method == Method::CONNECT || path.len() > MAX_URI_LEN {
        return Parsed::HandOff;
    }
    let base = buf.as_ptr() as usize;
    let path_at = path.as_ptr() as usize - base;
    let path_len = path.len();
    let mut fields: SmallVec<[(HeaderName, usize, usize); 16]> = SmallVec::new();
    let mut body_len: Option<u64> = None;
    let mut close = false;
    for field in request.headers.iter() {
        let Ok(name) = HeaderName::from_bytes(field.name.as_bytes()) else {
            return Parsed::HandOff;
        };
        match name {
            header::TRANSFER_ENCODING | header::EXPECT | header::UPGRADE => {
                return Parsed::HandOff;
            }
            header::CONTENT_LENGTH => match parse_decimal(field.value) {
                Some(n) if body_len.is_none_or(|seen| seen == n) => body_len = Some(n),
                _ => return Parsed::HandOff,
            },
            header::CONNECTION => close |= has_token(field.value, b"close"),
            _ => {}
        }
        fields.push((
            name,
            field.value.as_ptr() as usize - base,
            field.value.len(),
        ));
    }
    let body_len = match body_len.map(usize::try_from) {
        None => 0,
        Some(Ok(n)) if n <= max_body => n,
        Some(_) => return Parsed::HandOff,
    };
    let head = buf.split_to(len).freeze();
    let Ok(uri) = Uri::from_maybe_shared(head.slice(path_at..path_at + path_len)) else {
        // Rare: put the head back for hyper, which answers 400.
        restore(buf, &head);
        return Parsed::HandOff;
    };
    let mut headers = HeaderMap::with_capacity(fields.len());
    // Drained in place: moving the inline array into an iterator would copy it whole.
    for (name, at, len) in fields.drain(..) {
        // httparse allowed only what a field value may hold (visible ASCII,
        // space, tab, obs-text), which HeaderValue accepts too.
        let Ok(value) = HeaderValue::from_maybe_shared(head.slice(at..at + len)) else {
            restore(buf, &head);
            return Parsed::HandOff;
        };
        headers.append(name, value);
    }
    let (mut parts, ()) = http::Request::new(()).into_parts();
    parts.method = method;
    parts.uri = uri;
    parts.version = Version::HTTP_11;
    parts.headers = headers;
    Parsed::Request(RequestHead {
        parts,
        body_len,
        close,
    })
}

fn restore(buf: &mut BytesMut, head: &Bytes) {
    let mut whole = BytesMut::with_capacity(head.len() + buf.len());
    whole.extend_from_slice(head);
    whole.extend_from_slice(buf);
    *buf = whole;
}

/// Whether a comma-separated field value names `token` (any case).
fn has_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

fn parse_decimal(digits: &[u8]) -> Option<u64> {
    let digits = digits.trim_ascii();
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| {
        d.is_ascii_digit().then(|| n * 10 + u64::from(d - b'0'))
    })
}

/// How much body a response has, as its `http_body::Body` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyLength {
    Known(u64),
    Unknown,
}

/// How the response body goes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body is sent (HEAD, 204, 304), whatever the response holds.
    Omitted,
    Length(u64),
    Chunked,
}

/// The response head as hyper's server writes it (lower-case names; a
/// `Date` unless the response has one; `Content-Length` from the body,
/// or chunked when its length is unknown; no length for 204 and 304, nor
/// an implicit zero for HEAD). `Transfer-Encoding` and `Trailer` are the
/// framing's business and not copied. `extra_fields`, already encoded,
/// follow the answer's own. Returns the framing and whether the connection
/// closes after this response.
pub(crate) fn encode_response(
    out: &mut Vec<u8>,
    head: &http::response::Parts,
    body: BodyLength,
    head_request: bool,
    close: bool,
    extra_fields: &[u8],
    date: &[u8],
) -> (Framing, bool) {
    let status = head.status;
    if status.is_informational() {
        // A final answer cannot be 1xx; hyper answers 500 and closes.
        out.extend_from_slice(b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\n");
        line(out, b"date", date);
        out.extend_from_slice(b"connection: close\r\n\r\n");
        return (Framing::Omitted, true);
    }
    if status == StatusCode::OK {
        out.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
    } else {
        out.extend_from_slice(b"HTTP/1.1 ");
        out.extend_from_slice(status.as_str().as_bytes());
        out.push(b' ');
        out.extend_from_slice(status.canonical_reason().unwrap_or("<none>").as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    let mut wrote_date = false;
    let mut says_close = false;
    let mut declared: Option<&HeaderValue> = None;
    for (name, value) in &head.headers {
        match *name {
            header::CONTENT_LENGTH => {
                declared.get_or_insert(value);
                continue;
            }
            header::TRANSFER_ENCODING | header::TRAILER => continue,
            header::CONNECTION => says_close |= has_token(value.as_bytes(), b"close"),
            header::DATE => wrote_date = true,
            _ => {}
        }
        line(out, name.as_str().as_bytes(), value.as_bytes());
    }
    out.extend_from_slice(extra_fields);
    if close && !says_close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    let bodiless_status = matches!(status, StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED);
    let framing = match body {
        _ if bodiless_status => Framing::Omitted,
        // A HEAD answer passed on from a backend keeps the length it declared.
        BodyLength::Known(0) if head_request => {
            if let Some(value) = declared {
                line(out, b"content-length", value.as_bytes());
            }
            Framing::Omitted
        }
        BodyLength::Known(n) => {
            line(
                out,
                b"content-length",
                itoa::Buffer::new().format(n).as_bytes(),
            );
            if head_request {
                Framing::Omitted
            } else {
                Framing::Length(n)
            }
        }
        BodyLength::Unknown if head_request => Framing::Omitted,
        BodyLength::Unknown => {
            out.extend_from_slice(b"transfer-encoding: chunked\r\n");
            Framing::Chunked
        }
    };
    if !wrote_date {
        line(out, b"date", date);
    }
    out.extend_from_slice(b"\r\n");
    (framing, close || says_close)
}

fn line(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    const DATE: &[u8] = b"Tue, 08 Dec 2026 03:00:00 GMT";

    fn parse(text: &str) -> (Parsed, BytesMut) {
        let mut buf = BytesMut::from(text);
        (parse_request(&mut buf, 1024), buf)
    }

    fn request(text: &str) -> (RequestHead, BytesMut) {
        match parse(text) {
            (Parsed::Request(head), rest) => (head, rest),
            (other, _) => panic!("not served here: {other:?}"),
        }
    }

    fn handed_off(text: &str) -> bool {
        let (parsed, rest) = parse(text);
        assert_eq!(
            rest,
            text.as_bytes(),
            "a handed-off head stays in the buffer"
        );
        matches!(parsed, Parsed::HandOff)
    }

    #[test]
    fn a_simple_request_is_parsed_and_taken_off_the_buffer() {
        let (head, rest) = request(
            "GET /a/b?c=d HTTP/1.1\r\nHost: example.com\r\nX-Multi: 1\r\nx-multi: 2\r\n\r\nGET /next",
        );
        assert_eq!(head.parts.method, Method::GET);
        assert_eq!(head.parts.uri.path(), "/a/b");
        assert_eq!(head.parts.uri.query(), Some("c=d"));
        assert_eq!(head.parts.version, Version::HTTP_11);
        assert_eq!(head.parts.headers["host"], "example.com");
        let multi: Vec<_> = head.parts.headers.get_all("x-multi").iter().collect();
        assert_eq!(multi, ["1", "2"]);
        assert_eq!(head.body_len, 0);
        assert!(!head.close);
        assert_eq!(&rest[..], b"GET /next");
    }

    #[test]
    fn content_length_and_close_are_read() {
        let (head, rest) = request(
            "POST / HTTP/1.1\r\nContent-Length: 5\r\nConnection: keep-alive, Close\r\n\r\nhello",
        );
        assert_eq!(head.body_len, 5);
        assert!(head.close);
        assert_eq!(&rest[..], b"hello");
        let (head, _) =
            request("POST / HTTP/1.1\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\n");
        assert_eq!(head.body_len, 5, "repeated equal lengths are one length");
    }

    #[test]
    fn absolute_form_targets_keep_their_authority() {
        let (head, _) = request("GET http://h.example/p HTTP/1.1\r\n\r\n");
        assert_eq!(
            head.parts.uri.authority().map(|a| a.as_str()),
            Some("h.example")
        );
        assert_eq!(head.parts.uri.path(), "/p");
    }

    #[test]
    fn a_partial_head_waits_for_more() {
        let (parsed, rest) = parse("GET / HTTP/1.1\r\nHost: a\r\n");
        assert!(matches!(parsed, Parsed::Partial));
        assert_eq!(rest.len(), 25);
    }

    #[test]
    fn other_requests_are_handed_off_untouched() {
        assert!(handed_off("GET / HTTP/1.0\r\n\r\n"));
        assert!(handed_off("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"));
        assert!(handed_off("CONNECT h:443 HTTP/1.1\r\n\r\n"));
        assert!(handed_off(
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        ));
        assert!(handed_off(
            "POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n"
        ));
        assert!(handed_off(
            "GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n"
        ));
        assert!(handed_off(
            "POST / HTTP/1.1\r\nContent-Length: 1025\r\n\r\n"
        ));
        assert!(handed_off(
            "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"
        ));
        assert!(handed_off("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n"));
        assert!(handed_off("GET /a b HTTP/1.1\r\n\r\n"));
        assert!(handed_off("GET / HTTP/1.1\r\nBad Name: x\r\n\r\n"));
        let many: String = (0..101).map(|i| format!("x-{i}: v\r\n")).collect();
        assert!(handed_off(&format!("GET / HTTP/1.1\r\n{many}\r\n")));
    }

    #[test]
    fn an_unparsable_target_is_put_back_for_hyper() {
        // httparse takes it; Uri does not.
        assert!(handed_off(
            "GET http://[::1/ HTTP/1.1\r\nHost: a\r\n\r\nnext"
        ));
    }

    fn response(status: u16, headers: &[(&str, &str)]) -> http::response::Parts {
        let mut builder = http::Response::builder().status(status);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap().into_parts().0
    }

    fn encode(
        head: &http::response::Parts,
        body: BodyLength,
        head_request: bool,
        close: bool,
    ) -> (String, Framing, bool) {
        let mut out = Vec::new();
        let (framing, closes) =
            encode_response(&mut out, head, body, head_request, close, b"", DATE);
        (String::from_utf8(out).unwrap(), framing, closes)
    }

    #[test]
    fn a_response_head_is_written_as_hyper_writes_it() {
        let head = response(
            200,
            &[("content-type", "text/plain"), ("x-a", "1"), ("x-a", "2")],
        );
        let (text, framing, closes) = encode(&head, BodyLength::Known(2), false, false);
        assert_eq!(
            text,
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nx-a: 1\r\nx-a: 2\r\n\
             content-length: 2\r\ndate: Tue, 08 Dec 2026 03:00:00 GMT\r\n\r\n"
        );
        assert_eq!(framing, Framing::Length(2));
        assert!(!closes);
        let (text, ..) = encode(&response(404, &[]), BodyLength::Known(0), false, false);
        assert_eq!(
            text,
            "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\ndate: Tue, 08 Dec 2026 03:00:00 GMT\r\n\r\n"
        );
        let (text, ..) = encode(&response(599, &[]), BodyLength::Known(0), false, false);
        assert!(text.starts_with("HTTP/1.1 599 <none>\r\n"), "{text}");
    }

    #[test]
    fn the_body_decides_the_length_and_framing_fields_are_not_copied() {
        let head = response(
            200,
            &[
                ("content-length", "99"),
                ("transfer-encoding", "gzip"),
                ("trailer", "x"),
            ],
        );
        let (text, framing, _) = encode(&head, BodyLength::Known(3), false, false);
        assert_eq!(
            text,
            "HTTP/1.1 200 OK\r\ncontent-length: 3\r\ndate: Tue, 08 Dec 2026 03:00:00 GMT\r\n\r\n"
        );
        assert_eq!(framing, Framing::Length(3));
        let (text, framing, _) = encode(&head, BodyLength::Unknown, false, false);
        assert!(text.contains("transfer-encoding: chunked\r\n"), "{text}");
        assert!(!text.contains("content-length"), "{text}");
        assert_eq!(framing, Framing::Chunked);
    }

    #[test]
    fn head_204_and_304_answers_carry_no_body() {
        let passed_on = response(200, &[("content-length", "1234")]);
        let (text, framing, _) = encode(&passed_on, BodyLength::Known(0), true, false);
        assert!(text.contains("content-length: 1234\r\n"), "{text}");
        assert_eq!(framing, Framing::Omitted);
        let (text, framing, _) = encode(&response(200, &[]), BodyLength::Known(7), true, false);
        assert!(text.contains("content-length: 7\r\n"), "{text}");
        assert_eq!(framing, Framing::Omitted);
        let (text, framing, _) = encode(&response(200, &[]), BodyLength::Known(0), true, false);
        assert!(
            !text.contains("content-length"),
            "no implicit zero for HEAD: {text}"
        );
        assert_eq!(framing, Framing::Omitted);
        for status in [204, 304] {
            let (text, framing, _) =
                encode(&response(status, &[]), BodyLength::Known(5), false, false);
            assert!(!text.contains("content-length"), "{text}");
            assert_eq!(framing, Framing::Omitted);
        }
    }

    #[test]
    fn close_is_said_once_and_decides_the_connection() {
        let (text, _, closes) = encode(&response(200, &[]), BodyLength::Known(0), false, true);
        assert!(text.contains("connection: close\r\n"), "{text}");
        assert!(closes);
        let own = response(200, &[("connection", "close")]);
        let (text, _, closes) = encode(&own, BodyLength::Known(0), false, true);
        assert_eq!(text.matches("connection: close").count(), 1, "{text}");
        assert!(closes);
        let (_, _, closes) = encode(&own, BodyLength::Known(0), false, false);
        assert!(closes, "the response's own close is honoured");
    }

    #[test]
    fn extra_fields_follow_the_answers_own() {
        let mut out = Vec::new();
        let head = response(200, &[("x-a", "1")]);
        encode_response(
            &mut out,
            &head,
            BodyLength::Known(0),
            false,
            false,
            b"x-id: 7\r\n",
            DATE,
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 200 OK\r\nx-a: 1\r\nx-id: 7\r\ncontent-length: 0\r\n\
             date: Tue, 08 Dec 2026 03:00:00 GMT\r\n\r\n"
        );
    }

    #[test]
    fn an_own_date_is_kept_and_1xx_becomes_500() {
        let dated = response(200, &[("date", "Mon, 01 Jan 2024 00:00:00 GMT")]);
        let (text, ..) = encode(&dated, BodyLength::Known(0), false, false);
        assert_eq!(text.matches("date: ").count(), 1, "{text}");
        assert!(text.contains("date: Mon, 01 Jan 2024"), "{text}");
        let (text, framing, closes) =
            encode(&response(103, &[]), BodyLength::Known(0), false, false);
        assert!(
            text.starts_with("HTTP/1.1 500 Internal Server Error\r\n"),
            "{text}"
        );
        assert_eq!(framing, Framing::Omitted);
        assert!(closes);
    }
}
