//! Response bodies: the framing decoder (sans I/O) and the body type that
//! reads the rest of a response from its connection.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};

use crate::Error;
use crate::conn::Conn;
use crate::head::Framing;
use crate::pool::Home;

/// A chunk-size or trailer line longer than this is refused.
const MAX_LINE: usize = 4096;
/// Trailer fields are read and dropped; this many at most.
const MAX_TRAILERS: usize = 64;

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Decoded {
    Data(Bytes),
    /// The buffer holds no more of the body; read more.
    NeedMore,
    Done,
}

#[derive(Debug)]
enum State {
    Length(u64),
    UntilClose,
    ChunkSize,
    ChunkData(u64),
    ChunkEnd,
    Trailers(usize),
    Done,
}

/// Takes a body's bytes off the connection's buffer as they arrive.
#[derive(Debug)]
pub(crate) struct Decoder {
    state: State,
}

impl Decoder {
    pub fn new(framing: Framing) -> Self {
        let state = match framing {
            Framing::Empty | Framing::Length(0) => State::Done,
            Framing::Length(n) => State::Length(n),
            Framing::Chunked => State::ChunkSize,
            Framing::UntilClose => State::UntilClose,
        };
        Self { state }
    }

    /// The next piece of the body from `buf`. `eof`: the backend closed its
    /// end, so `buf` holds all that will ever come.
    pub fn decode(&mut self, buf: &mut BytesMut, eof: bool) -> Result<Decoded, Error> {
        const TRUNCATED: Error = Error::Protocol("backend closed the connection mid-body");
        loop {
            match &mut self.state {
                State::Done => return Ok(Decoded::Done),
                State::Length(left) | State::ChunkData(left) => {
                    if buf.is_empty() {
                        return if eof {
                            Err(TRUNCATED)
                        } else {
                            Ok(Decoded::NeedMore)
                        };
                    }
                    let n = usize::try_from(*left).unwrap_or(usize::MAX).min(buf.len());
                    *left -= n as u64;
                    if *left == 0 {
                        self.state = match self.state {
                            State::Length(_) => State::Done,
                            _ => State::ChunkEnd,
                        };
                    }
                    return Ok(Decoded::Data(buf.split_to(n).freeze()));
                }
                State::UntilClose => {
                    if !buf.is_empty() {
                        return Ok(Decoded::Data(buf.split().freeze()));
                    }
                    if eof {
                        self.state = State::Done;
                        return Ok(Decoded::Done);
                    }
                    return Ok(Decoded::NeedMore);
                }
                State::ChunkSize => {
                    let Some(line) = take_line(buf, eof)? else {
                        return Ok(Decoded::NeedMore);
                    };
                    let size = chunk_size(&line)?;
                    self.state = if size == 0 {
                        State::Trailers(0)
                    } else {
                        State::ChunkData(size)
                    };
                }
                State::ChunkEnd => {
                    if buf.len() < 2 {
                        if eof {
                            return Err(TRUNCATED);
                        }
                        return Ok(Decoded::NeedMore);
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err(Error::Protocol("chunk not followed by CRLF"));
                    }
                    buf.advance(2);
                    self.state = State::ChunkSize;
                }
                State::Trailers(seen) => {
                    let seen = *seen;
                    let Some(line) = take_line(buf, eof)? else {
                        return Ok(Decoded::NeedMore);
                    };
                    if line.is_empty() {
                        self.state = State::Done;
                    } else if seen + 1 >= MAX_TRAILERS {
                        return Err(Error::Protocol("too many trailer fields"));
                    } else {
                        self.state = State::Trailers(seen + 1);
                    }
                }
            }
        }
    }

    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    fn size_hint(&self) -> SizeHint {
        match self.state {
            State::Done => SizeHint::with_exact(0),
            State::Length(n) => SizeHint::with_exact(n),
            _ => SizeHint::default(),
        }
    }
}

/// One CRLF-terminated line off the front of `buf`, without its ending.
fn take_line(buf: &mut BytesMut, eof: bool) -> Result<Option<BytesMut>, Error> {
    let Some(lf) = buf.iter().take(MAX_LINE + 1).position(|&b| b == b'\n') else {
        if buf.len() > MAX_LINE {
            return Err(Error::Protocol("chunk line too long"));
        }
        if eof {
            return Err(Error::Protocol("backend closed the connection mid-body"));
        }
        return Ok(None);
    };
    let mut line = buf.split_to(lf + 1);
    line.truncate(lf);
    if line.last() == Some(&b'\r') {
        line.truncate(lf - 1);
    }
    Ok(Some(line))
}

/// `1a3f;name=value` → 0x1a3f. Extensions are ignored.
fn chunk_size(line: &[u8]) -> Result<u64, Error> {
    const BAD: Error = Error::Protocol("invalid chunk size");
    let digits = line.split(|&b| b == b';').next().unwrap_or_default();
    let digits = digits.trim_ascii();
    if digits.is_empty() || digits.len() > 15 {
        return Err(BAD);
    }
    digits.iter().try_fold(0u64, |n, &d| {
        let v = char::from(d).to_digit(16).ok_or(BAD)?;
        Ok(n * 16 + u64::from(v))
    })
}

/// A backend response's body. When the whole body came with the head it is
/// already here and the connection is back in its pool; otherwise it is read
/// from the connection, which returns to the pool once the body is complete
/// (dropped before that, the connection is closed).
#[derive(Debug)]
pub struct ResponseBody {
    state: BodyState,
}

#[derive(Debug)]
enum BodyState {
    Whole(Option<Bytes>),
    Reading(Box<Reading>),
}

#[derive(Debug)]
pub(crate) struct Reading {
    pub conn: Conn,
    pub decoder: Decoder,
    pub keep_alive: bool,
    pub home: Home,
    /// Data decoded before the body was handed out.
    pub first: Option<Bytes>,
    pub eof: bool,
}

impl ResponseBody {
    pub(crate) fn whole(bytes: Option<Bytes>) -> Self {
        Self {
            state: BodyState::Whole(bytes.filter(|b| !b.is_empty())),
        }
    }

    pub(crate) fn reading(reading: Reading) -> Self {
        Self {
            state: BodyState::Reading(Box::new(reading)),
        }
    }
}

impl Reading {
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Bytes>, Error>> {
        if let Some(first) = self.first.take() {
            return Poll::Ready(Ok(Some(first)));
        }
        loop {
            match self.decoder.decode(&mut self.conn.buf, self.eof)? {
                Decoded::Data(bytes) if bytes.is_empty() => {}
                Decoded::Data(bytes) => return Poll::Ready(Ok(Some(bytes))),
                Decoded::Done => return Poll::Ready(Ok(None)),
                Decoded::NeedMore => {
                    self.conn.reserve();
                    let read = ready!(tokio_util::io::poll_read_buf(
                        Pin::new(&mut self.conn.stream),
                        cx,
                        &mut self.conn.buf,
                    ))?;
                    self.conn.note_read(read);
                    if read == 0 {
                        self.eof = true;
                    }
                }
            }
        }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let reading = match &mut self.state {
            BodyState::Whole(bytes) => {
                return Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b))));
            }
            BodyState::Reading(reading) => reading,
        };
        match ready!(reading.poll_next(cx)) {
            Ok(Some(bytes)) => {
                if reading.decoder.is_done() {
                    self.finish();
                }
                Poll::Ready(Some(Ok(Frame::data(bytes))))
            }
            Ok(None) => {
                self.finish();
                Poll::Ready(None)
            }
            Err(e) => {
                // The connection's state is unknown: it is closed, not reused.
                self.state = BodyState::Whole(None);
                Poll::Ready(Some(Err(e)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.state {
            BodyState::Whole(bytes) => bytes.is_none(),
            BodyState::Reading(reading) => reading.first.is_none() && reading.decoder.is_done(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.state {
            BodyState::Whole(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
            BodyState::Reading(reading) => {
                let rest = reading.decoder.size_hint();
                let Some(first) = &reading.first else {
                    return rest;
                };
                let extra = first.len() as u64;
                // Upper bound first: `set_lower` refuses a value above it.
                let mut hint = SizeHint::new();
                if let Some(upper) = rest.upper() {
                    hint.set_upper(upper + extra);
                }
                hint.set_lower(rest.lower() + extra);
                hint
            }
        }
    }
}

impl ResponseBody {
    /// The body is complete: its connection goes home if it may be reused.
    fn finish(&mut self) {
        if let BodyState::Reading(reading) =
            std::mem::replace(&mut self.state, BodyState::Whole(None))
        {
            let Reading {
                conn,
                keep_alive,
                home,
                ..
            } = *reading;
            if keep_alive {
                home.put(conn);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `wire` to a decoder `step` bytes at a time; the body and
    /// whether it ended.
    fn decode_in_steps(framing: Framing, wire: &[u8], step: usize) -> Result<Vec<u8>, Error> {
        let mut decoder = Decoder::new(framing);
        let mut buf = BytesMut::new();
        let mut body = Vec::new();
        let mut fed = 0;
        loop {
            match decoder.decode(&mut buf, fed == wire.len())? {
                Decoded::Data(bytes) => body.extend_from_slice(&bytes),
                Decoded::Done => return Ok(body),
                Decoded::NeedMore => {
                    let next = (fed + step).min(wire.len());
                    buf.extend_from_slice(&wire[fed..next]);
                    fed = next;
                }
            }
        }
    }

    const CHUNKED: &[u8] =
        b"5\r\nhello\r\n1;ext=\"x\"\r\n \r\nA \r\n0123456789\r\n0\r\nx-trailer: 1\r\n\r\n";

    #[test]
    fn chunked_bodies_decode_whatever_the_read_sizes() {
        for step in [1, 2, 3, 7, 64, CHUNKED.len()] {
            assert_eq!(
                decode_in_steps(Framing::Chunked, CHUNKED, step).unwrap(),
                b"hello 0123456789",
                "step {step}"
            );
        }
    }

    #[test]
    fn chunked_decoding_stops_at_the_last_chunk() {
        let mut buf = BytesMut::from(&b"2\r\nok\r\n0\r\n\r\nHTTP/1.1 200 OK\r\n"[..]);
        let mut decoder = Decoder::new(Framing::Chunked);
        assert_eq!(
            decoder.decode(&mut buf, false).unwrap(),
            Decoded::Data(Bytes::from_static(b"ok"))
        );
        assert_eq!(decoder.decode(&mut buf, false).unwrap(), Decoded::Done);
        assert_eq!(&buf[..], b"HTTP/1.1 200 OK\r\n");
    }

    #[test]
    fn malformed_or_truncated_chunks_are_errors() {
        for wire in [
            &b"zz\r\nhello\r\n0\r\n\r\n"[..],
            b"5\r\nhelloXX0\r\n\r\n",
            b"\r\n",
            b"ffffffffffffffffff\r\n",
            b"5\r\nhel",
            b"5\r\nhello\r\n0\r\n",
        ] {
            assert!(
                matches!(
                    decode_in_steps(Framing::Chunked, wire, 3),
                    Err(Error::Protocol(_))
                ),
                "{wire:?}"
            );
        }
        let long = [b'1'; MAX_LINE + 10];
        assert!(decode_in_steps(Framing::Chunked, &long, 100).is_err());
    }

    #[test]
    fn length_and_until_close_bodies() {
        assert_eq!(
            decode_in_steps(Framing::Length(5), b"hello", 2).unwrap(),
            b"hello"
        );
        assert!(matches!(
            decode_in_steps(Framing::Length(6), b"hello", 2),
            Err(Error::Protocol(_))
        ));
        assert_eq!(
            decode_in_steps(Framing::UntilClose, b"all of it", 4).unwrap(),
            b"all of it"
        );
        assert_eq!(decode_in_steps(Framing::Empty, b"", 4).unwrap(), b"");
    }

    /// Hostile or broken backends: random bytes after plausible heads, fed
    /// in random steps, never panic the parser or the decoder.
    #[test]
    fn random_answers_never_panic() {
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        const HEADS: [&[u8]; 4] = [
            b"HTTP/1.1 200 OK\r\n",
            b"HTTP/1.0 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n",
            b"HTTP/1.1 304 Not Modified\r\n",
            b"HTTP/1.0 200 OK\r\n",
        ];
        const FIELDS: [&[u8]; 6] = [
            b"Transfer-Encoding: chunked\r\n",
            b"Transfer-Encoding: gzip\r\n",
            b"Content-Length: 5\r\n",
            b"Content-Length: 999999999999\r\n",
            b"Connection: close, x-y\r\n",
            b"X-A: \x80\t b\r\n",
        ];
        const BODY: [&[u8]; 6] = [
            b"5\r\nhello\r\n",
            b"fffffffffffffff\r\n",
            b"0\r\n\r\n",
            b";;\r\n\n\r",
            b"3;x\r\nabc\r\n0\r\nt: 1\r\n",
            b"\x00\xff ",
        ];
        let mut decoded = 0;
        for _ in 0..3_000 {
            let mut wire = HEADS[(next() % 4) as usize].to_vec();
            for _ in 0..(next() % 4) {
                wire.extend_from_slice(FIELDS[(next() % 6) as usize]);
            }
            wire.extend_from_slice(b"\r\n");
            for _ in 0..(next() % 6) {
                if next() % 4 == 0 {
                    let len = (next() % 16) as usize;
                    wire.extend((0..len).map(|_| next() as u8));
                } else {
                    wire.extend_from_slice(BODY[(next() % 6) as usize]);
                }
            }
            let head_request = next() % 5 == 0;
            let mut buf = BytesMut::from(&wire[..]);
            let framing = match crate::head::parse_response(&mut buf, head_request) {
                Ok(Some(head)) => head.framing,
                Ok(None) | Err(_) => continue,
            };
            let step = 1 + (next() % 7) as usize;
            let rest = buf.to_vec();
            let _ = decode_in_steps(framing, &rest, step);
            decoded += 1;
        }
        // Not vacuous: many inputs got past the head to a body.
        assert!(decoded > 100, "{decoded}");
    }

    #[test]
    fn a_length_body_leaves_what_follows_it() {
        let mut buf = BytesMut::from(&b"okEXTRA"[..]);
        let mut decoder = Decoder::new(Framing::Length(2));
        assert_eq!(
            decoder.decode(&mut buf, false).unwrap(),
            Decoded::Data(Bytes::from_static(b"ok"))
        );
        assert!(decoder.is_done());
        assert_eq!(&buf[..], b"EXTRA");
    }
}
