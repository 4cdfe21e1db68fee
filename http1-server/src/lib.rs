//! A lean HTTP/1.1 server connection for the gateway's common requests.
//!
//! hyper's server is general: its dispatcher, its body channel and its
//! head encoder cost more per request than the proxy's own routing and
//! backend call (docs/benchmarks.md). This crate serves the requests that
//! make up nearly all gateway traffic — HTTP/1.1, bodiless or with a small
//! `Content-Length` body, no `Expect`, no `Upgrade` — and writes answers
//! the way hyper does. On the first request it does not serve (HTTP/1.0,
//! HTTP/2's preface, chunked or large bodies, upgrades, anything malformed
//! or too large) it stops, and the caller hands the connection, with every
//! byte already read, to a full server ([`Rewound`]), which then keeps it.
//! So refusals (400, 414, 431) stay hyper's.
//!
//! Answers: status line and lower-case fields as the handler gave them, a
//! `Date` unless present, `Content-Length` from the body's exact size or
//! chunked framing when unknown, none for HEAD/204/304 bodies, and
//! `Connection: close` when the connection ends after it.

mod conn;
mod date;
mod head;
mod rewound;

pub use conn::{Connection, Limits, Next};
pub use rewound::Rewound;
