//! One caller's connection: reads request heads and bodies, writes answers.

use std::pin::pin;

use bytes::{Bytes, BytesMut};
use http::Method;
use http_body::Body;
use http_body_util::BodyExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::date;
use crate::head::{BodyLength, Framing, Parsed, encode_response, parse_request};

/// Room made before a read (hyper's first read is as large).
const READ_SIZE: usize = 8 * 1024;
/// Body data smaller than this is copied after the head, so that a small
/// answer leaves in one write.
const COPY_LIMIT: usize = 16 * 1024;
/// An answer buffer grown past this is not kept for the next answer.
const KEEP_OUT: usize = 64 * 1024;

/// What [`Connection`] serves itself.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// A head not complete within this many bytes goes to the full server.
    pub max_head: usize,
    /// A request declaring a larger body goes to the full server.
    pub max_body: usize,
}

/// What the connection holds next.
// The request is the common case: boxing it would cost an allocation each.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Next {
    /// A request head; read its body with [`Connection::body`], then answer
    /// with [`Connection::respond`].
    Request(http::request::Parts),
    /// A request this crate does not serve (or a malformed one) begins
    /// here: hand the connection, with [`Connection::into_parts`], to a
    /// full server.
    HandOff,
    /// The caller closed the connection (or it failed) between requests.
    Closed,
}

/// The exchange in progress.
#[derive(Debug, Default)]
struct Exchange {
    body_len: usize,
    head_request: bool,
    close: bool,
}

#[derive(Debug)]
pub struct Connection<IO> {
    io: IO,
    buf: BytesMut,
    out: Vec<u8>,
    limits: Limits,
    exchange: Exchange,
}

impl<IO: AsyncRead + AsyncWrite + Unpin> Connection<IO> {
    pub fn new(io: IO, limits: Limits) -> Self {
        Self {
            io,
            buf: BytesMut::new(),
            out: Vec::new(),
            limits,
            exchange: Exchange::default(),
        }
    }

    /// Waits for the next request head (pipelined ones are already here).
    pub async fn next_request(&mut self) -> Next {
        loop {
            if !self.buf.is_empty() {
                match parse_request(&mut self.buf, self.limits.max_body) {
                    Parsed::Request(head) => {
                        self.exchange = Exchange {
                            body_len: head.body_len,
                            head_request: head.parts.method == Method::HEAD,
                            close: head.close,
                        };
                        return Next::Request(head.parts);
                    }
                    Parsed::HandOff => return Next::HandOff,
                    Parsed::Partial if self.buf.len() >= self.limits.max_head => {
                        return Next::HandOff;
                    }
                    Parsed::Partial => {}
                }
            }
            match self.read().await {
                Ok(0) | Err(_) => return Next::Closed,
                Ok(_) => {}
            }
        }
    }

    /// The body of the request [`Self::next_request`] returned (whole: it is
    /// at most [`Limits::max_body`]). `None`: the caller went away first.
    pub async fn body(&mut self) -> Option<Bytes> {
        let len = std::mem::take(&mut self.exchange.body_len);
        while self.buf.len() < len {
            match self.read().await {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
        Some(self.buf.split_to(len).freeze())
    }

    /// Writes the answer to the current request, streaming its body; `close`
    /// ends the connection after it whatever the caller asked;
    /// `extra_fields` (encoded `name: value\r\n` lines) follow the answer's
    /// own fields — a caller's per-request fields without a header-map entry
    /// each. `Ok(true)`: the connection can carry another request.
    pub async fn respond<B>(
        &mut self,
        response: http::Response<B>,
        close: bool,
        extra_fields: &[u8],
    ) -> std::io::Result<bool>
    where
        B: Body<Data = Bytes>,
        B::Error: std::fmt::Display,
    {
        let exchange = std::mem::take(&mut self.exchange);
        // A body left unread must not be read as the next request.
        let mut close = close;
        if exchange.body_len > 0 {
            if self.buf.len() >= exchange.body_len {
                bytes::Buf::advance(&mut self.buf, exchange.body_len);
            } else {
                close = true;
            }
        }
        let (head, body) = response.into_parts();
        let length = match body.size_hint().exact() {
            _ if body.is_end_stream() => BodyLength::Known(0),
            Some(n) => BodyLength::Known(n),
            None => BodyLength::Unknown,
        };
        self.out.clear();
        let (framing, closes) = date::with_now(|now| {
            encode_response(
                &mut self.out,
                &head,
                length,
                exchange.head_request,
                close || exchange.close,
                extra_fields,
                now,
            )
        });
        drop(head);
        let complete = match framing {
            Framing::Omitted => true,
            Framing::Length(len) => self.send_body(body, Some(len)).await?,
            Framing::Chunked => self.send_body(body, None).await?,
        };
        if !self.out.is_empty() {
            self.io.write_all(&self.out).await?;
        }
        if self.out.capacity() > KEEP_OUT {
            self.out = Vec::new();
        }
        Ok(complete && !closes)
    }

    /// Sends `body` after the head in `out`: exactly `len` bytes, or chunked
    /// when `len` is `None`. Small data is copied into `out`, larger data
    /// written as it comes. `Ok(false)`: the body was shorter than its
    /// declared length (the caller can only be told by a close).
    async fn send_body<B>(&mut self, body: B, len: Option<u64>) -> std::io::Result<bool>
    where
        B: Body<Data = Bytes>,
        B::Error: std::fmt::Display,
    {
        let mut body = pin!(body);
        let mut sent: u64 = 0;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| std::io::Error::other(format!("response body: {e}")))?;
            let Ok(mut data) = frame.into_data() else {
                continue; // trailers: not sent (hyper sends them only when declared)
            };
            if data.is_empty() {
                continue;
            }
            if let Some(len) = len {
                let room = usize::try_from(len - sent).unwrap_or(usize::MAX);
                if data.len() > room {
                    // More than declared: what fits goes, then the connection ends.
                    data.truncate(room);
                    self.put(&data).await?;
                    return Ok(false);
                }
            } else {
                let mut size = [0u8; 18];
                let hex = hex_len(data.len(), &mut size);
                self.out.extend_from_slice(hex);
                self.out.extend_from_slice(b"\r\n");
            }
            sent += data.len() as u64;
            self.put(&data).await?;
            if len.is_none() {
                self.out.extend_from_slice(b"\r\n");
            }
        }
        match len {
            Some(len) => Ok(sent == len),
            None => {
                self.out.extend_from_slice(b"0\r\n\r\n");
                Ok(true)
            }
        }
    }

    /// Queues `data` behind what `out` holds, or writes both when large.
    async fn put(&mut self, data: &[u8]) -> std::io::Result<()> {
        if self.out.len() + data.len() <= COPY_LIMIT {
            self.out.extend_from_slice(data);
            return Ok(());
        }
        if !self.out.is_empty() {
            self.io.write_all(&self.out).await?;
            self.out.clear();
        }
        self.io.write_all(data).await
    }

    async fn read(&mut self) -> std::io::Result<usize> {
        if self.buf.capacity() - self.buf.len() < READ_SIZE / 2 {
            self.buf.reserve(READ_SIZE);
        }
        self.io.read_buf(&mut self.buf).await
    }

    /// The connection and the bytes read from it but not yet served: a full
    /// server takes over from there (see [`crate::Rewound`]).
    pub fn into_parts(self) -> (IO, BytesMut) {
        (self.io, self.buf)
    }
}

/// `n` in hexadecimal, as a chunk size line starts.
fn hex_len(mut n: usize, out: &mut [u8; 18]) -> &[u8] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut at = out.len();
    loop {
        at -= 1;
        out[at] = DIGITS[n & 15];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    &out[at..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_sizes_are_lower_case_hex() {
        let mut buf = [0u8; 18];
        assert_eq!(hex_len(0, &mut buf), b"0");
        assert_eq!(hex_len(255, &mut buf), b"ff");
        assert_eq!(hex_len(0x1000, &mut buf), b"1000");
        assert_eq!(hex_len(usize::MAX, &mut buf), b"ffffffffffffffff");
    }
}
