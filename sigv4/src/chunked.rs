//! The aws-chunked body of `STREAMING-AWS4-HMAC-SHA256-PAYLOAD` requests:
//!
//! ```text
//! <hex size>;chunk-signature=<sig>\r\n<data>\r\n ... 0;chunk-signature=<sig>\r\n\r\n
//! ```
//!
//! Each chunk's signature chains from the previous one, starting from the
//! request's own ("seed") signature, so chunks can be neither altered,
//! reordered, dropped nor appended.

use chrono::{DateTime, Utc};
use subtle::ConstantTimeEq;

use crate::SigV4Error;
use crate::canonical::{format_amz_date, sha256_hex};

/// SHA-256 of the empty string: the (unused) "chunk headers" hash in the chunk string to sign.
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const SIGNATURE_PREFIX: &[u8] = b"chunk-signature=";
/// A chunk header is at most 16 hex digits, the prefix and a 64-digit signature;
/// anything longer is garbage, and we stop looking for its CRLF.
const MAX_HEADER_LINE: usize = 16 + 1 + SIGNATURE_PREFIX.len() + 64;

/// The string to sign for one chunk:
/// `AWS4-HMAC-SHA256-PAYLOAD\n<amz date>\n<scope>\n<previous signature>\n<sha256("")>\n<sha256(data)>`.
pub fn chunk_string_to_sign(
    timestamp: &DateTime<Utc>,
    scope: &str,
    previous_signature: &str,
    chunk_data: &[u8],
) -> String {
    format!(
        "AWS4-HMAC-SHA256-PAYLOAD\n{}\n{scope}\n{previous_signature}\n{EMPTY_SHA256}\n{}",
        format_amz_date(timestamp),
        sha256_hex(chunk_data)
    )
}

/// Decodes an aws-chunked `body`, verifying every chunk signature in turn from
/// `seed_signature` with `signing_key` (see [`crate::signing_key`]).
///
/// Any malformed input gives [`SigV4Error::MalformedChunk`]; a wrong chunk
/// signature gives [`SigV4Error::SignatureMismatch`] with an empty canonical
/// request and that chunk's string to sign. The output is never larger than
/// `body`.
pub fn decode_chunked(
    body: &[u8],
    signing_key: &[u8],
    timestamp: &DateTime<Utc>,
    scope: &str,
    seed_signature: &str,
) -> Result<Vec<u8>, SigV4Error> {
    let mut out = Vec::new();
    let mut previous = seed_signature.to_owned();
    let mut rest = body;
    loop {
        if rest.is_empty() {
            return Err(malformed(
                "the body ends before the final zero-length chunk",
            ));
        }
        let (size, signature, after_header) = chunk_header(rest)?;
        if size > after_header.len() {
            return Err(malformed("a chunk is longer than the rest of the body"));
        }
        let (data, after_data) = after_header.split_at(size);
        rest = after_data
            .strip_prefix(b"\r\n")
            .ok_or_else(|| malformed("chunk data is not followed by CRLF"))?;

        let string_to_sign = chunk_string_to_sign(timestamp, scope, &previous, data);
        let expected =
            aws_sigv4::sign::v4::calculate_signature(signing_key, string_to_sign.as_bytes());
        if !bool::from(expected.as_bytes().ct_eq(signature)) {
            return Err(SigV4Error::SignatureMismatch {
                canonical_request: String::new(),
                string_to_sign,
            });
        }
        out.extend_from_slice(data);
        if size == 0 {
            if !rest.is_empty() {
                return Err(malformed("data follows the final zero-length chunk"));
            }
            return Ok(out);
        }
        previous = expected;
    }
}

/// Splits `<hex size>;chunk-signature=<64 hex>\r\n` off the front of `input`.
fn chunk_header(input: &[u8]) -> Result<(usize, &[u8], &[u8]), SigV4Error> {
    let window = &input[..input.len().min(MAX_HEADER_LINE + 2)];
    let line_end = window
        .windows(2)
        .position(|w| w == b"\r\n")
        .ok_or_else(|| malformed("a chunk header is not terminated by CRLF"))?;
    let (line, rest) = (&input[..line_end], &input[line_end + 2..]);

    let semicolon = line
        .iter()
        .position(|&b| b == b';')
        .ok_or_else(|| malformed("a chunk header has no chunk-signature"))?;
    let (size_hex, extension) = (&line[..semicolon], &line[semicolon + 1..]);
    if size_hex.is_empty() || size_hex.len() > 16 || !size_hex.iter().all(u8::is_ascii_hexdigit) {
        return Err(malformed("a chunk size is not a hexadecimal number"));
    }
    let size = size_hex
        .iter()
        .try_fold(0usize, |acc, &digit| {
            let value = (digit as char).to_digit(16)? as usize;
            acc.checked_mul(16)?.checked_add(value)
        })
        .ok_or_else(|| malformed("a chunk size is too large"))?;

    let signature = extension
        .strip_prefix(SIGNATURE_PREFIX)
        .filter(|sig| {
            sig.len() == 64
                && sig
                    .iter()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
        })
        .ok_or_else(|| malformed("a chunk-signature is not 64 lowercase hexadecimal digits"))?;
    Ok((size, signature, rest))
}

fn malformed(message: &str) -> SigV4Error {
    SigV4Error::MalformedChunk(message.to_owned())
}
