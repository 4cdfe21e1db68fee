//! One keep-alive connection to a backend: the socket and what has been
//! read from it but not yet consumed.

use std::task::{Context, Poll, Waker};

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::Error;
use crate::head::{ResponseHead, parse_response};

/// Room made before a read: starts small (most answers are small) and
/// doubles while reads fill it, so large bodies take few system calls.
const FIRST_READ: usize = 8 * 1024;
const MAX_READ: usize = 256 * 1024;

#[derive(Debug)]
pub(crate) struct Conn {
    pub stream: TcpStream,
    pub buf: BytesMut,
    read_size: usize,
}

impl Conn {
    pub async fn connect(host: &str, port: u16) -> std::io::Result<Self> {
        let stream = TcpStream::connect((host, port)).await?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            buf: BytesMut::new(),
            read_size: FIRST_READ,
        })
    }

    /// Whether an idle connection can carry a request: the backend has not
    /// closed it or sent anything unasked. Costs no system call unless the
    /// runtime saw the socket become readable.
    pub fn is_usable(&mut self) -> bool {
        if !self.buf.is_empty() {
            return false;
        }
        let mut cx = Context::from_waker(Waker::noop());
        match self.stream.poll_read_ready(&mut cx) {
            Poll::Pending => true,
            Poll::Ready(Err(_)) => false,
            // Readable while idle: an end, an error or stray bytes, unless
            // the readiness was stale.
            Poll::Ready(Ok(())) => {
                let mut probe = [0u8; 1];
                matches!(
                    self.stream.try_read(&mut probe),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock
                )
            }
        }
    }

    pub fn reserve(&mut self) {
        if self.buf.capacity() - self.buf.len() < self.read_size / 2 {
            self.buf.reserve(self.read_size);
        }
    }

    /// Back to small reads for the next response (the connection goes idle).
    pub fn rest(&mut self) {
        self.read_size = FIRST_READ;
    }

    /// After a read of `n` bytes.
    pub fn note_read(&mut self, n: usize) {
        if n >= self.read_size && self.read_size < MAX_READ {
            self.read_size *= 2;
        }
    }

    /// Sends the request. `Ok(false)`: the backend began to answer before
    /// `body` was all sent (it turned the request down without reading it);
    /// the rest is not sent, and the connection cannot carry another request.
    pub async fn write(&mut self, head: &[u8], body: &[u8]) -> std::io::Result<bool> {
        self.stream.write_all(head).await?;
        let mut sent = 0;
        while sent < body.len() {
            tokio::select! {
                biased;
                readable = self.stream.readable() => {
                    readable?;
                    return Ok(false);
                }
                writable = self.stream.writable() => {
                    writable?;
                    match self.stream.try_write(&body[sent..]) {
                        Ok(n) => sent += n,
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        Ok(true)
    }

    /// Reads until a whole response head is in. `Error::Closed`: the backend
    /// closed the connection before sending a byte of it.
    pub async fn read_head(&mut self, head_request: bool) -> Result<ResponseHead, Error> {
        loop {
            if !self.buf.is_empty()
                && let Some(head) = parse_response(&mut self.buf, head_request)?
            {
                return Ok(head);
            }
            self.reserve();
            let n = self.stream.read_buf(&mut self.buf).await?;
            self.note_read(n);
            if n == 0 {
                return Err(if self.buf.is_empty() {
                    Error::Closed
                } else {
                    Error::Protocol("backend closed the connection mid-head")
                });
            }
        }
    }
}
