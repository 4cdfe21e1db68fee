//! Verification of AWS Signature Version 4 requests, as a server sees them.
//!
//! Two steps, because the secret depends on who is asking:
//!
//! 1. [`parse`] reads the `Authorization` header (or presigned `X-Amz-*` query
//!    parameters) into a [`SignedRequest`], whose `access_key_id` names the secret.
//! 2. [`verify`] recomputes the signature from the request as received and
//!    returns the body to use (decoded, for aws-chunked streaming uploads).
//!
//! Canonicalisation follows the AWS SDKs: for services other than S3 the path
//! received on the wire is normalised and percent-encoded once more ("double
//! encoding"); S3 uses it encoded once ([`Settings::for_service`]). The key
//! derivation and HMACs come from the `aws-sigv4` crate; signatures are compared
//! in constant time. The building blocks ([`canonical_request`],
//! [`string_to_sign`], [`chunk_string_to_sign`], ...) are public so that tests
//! and error reports can show the intermediate strings.
//!
//! ```
//! # use apigw_sigv4::{parse, verify, SigV4Error};
//! # fn check(parts: &http::request::Parts, body: &[u8]) -> Result<(), SigV4Error> {
//! let signed = parse(parts)?;
//! let secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"; // looked up by signed.access_key_id
//! let payload = verify(&signed, parts, body, secret, chrono::Utc::now(), chrono::Duration::minutes(15))?;
//! # let _ = payload; Ok(()) }
//! ```

mod canonical;
mod chunked;
mod error;
mod parse;
mod verify;

pub use canonical::{
    ALGORITHM, STREAMING_PAYLOAD, Settings, UNSIGNED_PAYLOAD, UriEncoding, canonical_headers,
    canonical_query, canonical_request, canonical_uri, format_amz_date, scope, sha256_hex,
    string_to_sign,
};
pub use chunked::{chunk_string_to_sign, decode_chunked};
pub use error::SigV4Error;
pub use parse::{AuthForm, PayloadKind, SignedRequest, parse};
pub use verify::{signing_key, verify, verify_with};
