//! A lean HTTP/1.1 client for the gateway's backend calls.
//!
//! hyper's client drives each connection from a task of its own and hands
//! every request and response across a channel; on a gateway whose whole
//! work is one backend call per request, that hand-off and the second HTTP
//! state machine cost more than the rest of the request (bench/README.md).
//! Here the call runs inside the caller's future: it writes the request head
//! and body, reads and parses the response head (httparse), and returns a
//! body that reads the rest from the same connection. A connection returns
//! to its pool once its body has been read to the end; a body dropped early
//! closes it.
//!
//! A response comes without the fields that describe only this hop
//! (`Connection` and what it names, `Keep-Alive`, `Transfer-Encoding`,
//! `TE`, `Trailer`, `Upgrade`, `Proxy-Connection`; RFC 9110 §7.6.1), and
//! without `Content-Length` when it was chunked: framing and the connection
//! are this client's business, and a proxy must not pass them on.
//!
//! Scope: `http://` origins, HTTP/1.1 (HTTP/1.0 answers understood),
//! request bodies given whole, response bodies framed by `Content-Length`,
//! `Transfer-Encoding: chunked` or the connection's end. No TLS, no upgrades,
//! no pipelining.

mod body;
mod client;
mod conn;
mod head;
mod pool;

pub use body::ResponseBody;
pub use client::{Client, Outgoing, Target};

/// Why a backend call failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("backend uri {0:?} is not an absolute http URL")]
    InvalidUri(String),
    #[error("cannot connect to {authority}: {source}")]
    Connect {
        authority: String,
        source: std::io::Error,
    },
    #[error("backend connection failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("backend closed the connection before answering")]
    Closed,
    #[error("invalid backend response: {0}")]
    Protocol(&'static str),
}

impl Error {
    /// The backend could not be reached at all (no request was sent).
    pub fn is_connect(&self) -> bool {
        matches!(self, Self::Connect { .. })
    }
}
