//! Building blocks of the signature: canonical request and string to sign.
//!
//! These follow the AWS SigV4 specification as the AWS SDKs implement it. The
//! verifier recomputes them from the request as received, so every step works
//! on the wire form (an already percent-encoded path and query).

use chrono::{DateTime, Utc};
use http::request::Parts;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode, utf8_percent_encode};
use sha2::{Digest, Sha256};

use crate::SigV4Error;
use crate::parse::AuthForm;

/// The only signing algorithm we accept.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// Payload hash literal for a body the client chose not to sign.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// Payload hash literal for an aws-chunked body with per-chunk signatures.
pub const STREAMING_PAYLOAD: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";

/// RFC 3986 unreserved characters stay as they are; everything else is encoded.
const STRICT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');
/// Same, but keeping `/` so that a path keeps its segments.
const STRICT_PATH: &AsciiSet = &STRICT.remove(b'/');

/// How the path of the canonical request is derived from the path on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UriEncoding {
    /// Encode the received (already encoded) path once more, so `%3A` becomes
    /// `%253A`. What the SDKs do for every service except S3.
    Double,
    /// Use the received path encoded exactly once: each segment is decoded and
    /// re-encoded strictly, so lenient wire forms still canonicalise the way
    /// the client's signer saw them. What the SDKs do for S3.
    Single,
}

/// Per-service canonicalisation choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Path encoding, see [`UriEncoding`].
    pub uri_encoding: UriEncoding,
    /// Remove `.`/`..` segments and empty segments (`//`) from the path first.
    pub normalize_path: bool,
    /// Presigned form only: `X-Amz-Security-Token` was appended after signing,
    /// so it is not part of the canonical query (some services, e.g. IoT).
    pub omit_session_token: bool,
}

impl Default for Settings {
    /// The rules for non-S3 services (API Gateway, Lambda, execute-api, ...).
    fn default() -> Self {
        Settings {
            uri_encoding: UriEncoding::Double,
            normalize_path: true,
            omit_session_token: false,
        }
    }
}

impl Settings {
    /// The rules the AWS SDKs apply when signing for `service`: S3 and its
    /// variants encode the path once and do not normalise it; all other services
    /// use [`Settings::default`].
    pub fn for_service(service: &str) -> Self {
        match service {
            "s3" | "s3-object-lambda" | "s3-outposts" | "s3express" => Settings {
                uri_encoding: UriEncoding::Single,
                normalize_path: false,
                omit_session_token: false,
            },
            _ => Settings::default(),
        }
    }
}

/// Lowercase hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// A timestamp in the ISO 8601 basic form SigV4 uses: `20150830T123600Z`.
pub fn format_amz_date(timestamp: &DateTime<Utc>) -> String {
    timestamp.format("%Y%m%dT%H%M%SZ").to_string()
}

/// The canonical URI for a path as received on the wire (see [`Settings`]).
/// An empty path becomes `/`.
pub fn canonical_uri(path: &str, settings: &Settings) -> String {
    let path = if settings.normalize_path {
        normalize_path(path)
    } else if path.is_empty() {
        "/".to_owned()
    } else {
        path.to_owned()
    };
    match settings.uri_encoding {
        UriEncoding::Double => utf8_percent_encode(&path, STRICT_PATH).to_string(),
        UriEncoding::Single => path
            .split('/')
            .map(|segment| encode_bytes(&percent_decode(segment.as_bytes()).collect::<Vec<_>>()))
            .collect::<Vec<_>>()
            .join("/"),
    }
}

/// RFC 3986 section 5.2.4 "remove dot segments", and also drop empty segments
/// because AWS services collapse `//`. Mirrors the AWS SDKs: a trailing slash
/// (or a trailing `.`/`..` segment) keeps the result ending in `/`.
fn normalize_path(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    let mut out = String::with_capacity(path.len() + 1);
    out.push('/');
    out.push_str(&segments.join("/"));
    let trailing_slash = ["/", "/.", "/./", "/..", "/../"]
        .iter()
        .any(|end| path.ends_with(end));
    if trailing_slash && !out.ends_with('/') {
        out.push('/');
    }
    out
}

/// The canonical query string for a raw (wire) query: each name and value is
/// decoded (`+` counts as a space, as in the Rust and Go SDKs) and re-encoded
/// strictly, then the pairs are sorted by encoded name, then encoded value.
/// The presigned form leaves out `X-Amz-Signature` (and `X-Amz-Security-Token`
/// when [`Settings::omit_session_token`] is set).
pub fn canonical_query(query: &str, form: AuthForm, settings: &Settings) -> String {
    let mut pairs: Vec<(String, String)> = query_pairs(query)
        .filter(|(name, _)| {
            form != AuthForm::Query
                || !(name.as_slice() == b"X-Amz-Signature"
                    || (settings.omit_session_token && name.as_slice() == b"X-Amz-Security-Token"))
        })
        .map(|(name, value)| (encode_bytes(&name), encode_bytes(&value)))
        .collect();
    pairs.sort();
    let mut out = String::with_capacity(query.len() + 16);
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(name);
        out.push('=');
        out.push_str(value);
    }
    out
}

/// Decoded `(name, value)` pairs of a raw query string; empty pieces are skipped
/// and a piece without `=` has an empty value.
pub(crate) fn query_pairs(query: &str) -> impl Iterator<Item = (Vec<u8>, Vec<u8>)> + '_ {
    query.split('&').filter(|p| !p.is_empty()).map(|piece| {
        let (name, value) = piece.split_once('=').unwrap_or((piece, ""));
        (decode_query_component(name), decode_query_component(value))
    })
}

fn decode_query_component(raw: &str) -> Vec<u8> {
    // '+' must become a space before percent-decoding, so that %2B stays a '+'.
    let plus_as_space: Vec<u8> = raw
        .bytes()
        .map(|b| if b == b'+' { b' ' } else { b })
        .collect();
    percent_decode(&plus_as_space).collect()
}

fn encode_bytes(bytes: &[u8]) -> String {
    percent_encoding::percent_encode(bytes, STRICT).to_string()
}

/// The canonical headers block: one `name:value\n` line per signed header, in
/// the order given. Values are trimmed, runs of spaces collapse to one, and
/// repeated headers are joined with `,` in received order. `host` falls back
/// to the URI authority, which is where HTTP/2 carries it.
pub fn canonical_headers(parts: &Parts, signed_headers: &[String]) -> Result<String, SigV4Error> {
    let mut out = String::new();
    for name in signed_headers {
        out.push_str(name);
        out.push(':');
        let mut values = parts.headers.get_all(name.as_str()).iter().peekable();
        if values.peek().is_none() {
            match (name.as_str(), parts.uri.authority()) {
                ("host", Some(authority)) => out.push_str(authority.as_str()),
                _ => {
                    return Err(SigV4Error::Incomplete(format!(
                        "Header '{name}' is listed in SignedHeaders but is not present in the request."
                    )));
                }
            }
        }
        for (i, value) in values.enumerate() {
            let value = std::str::from_utf8(value.as_bytes()).map_err(|_| {
                SigV4Error::Incomplete(format!(
                    "The value of signed header '{name}' is not valid UTF-8."
                ))
            })?;
            if i > 0 {
                out.push(',');
            }
            push_trimmed(&mut out, value);
        }
        out.push('\n');
    }
    Ok(out)
}

/// Appends `value` without leading/trailing spaces and with each run of spaces
/// collapsed to one (spaces only, as the AWS documentation and SDKs specify).
fn push_trimmed(out: &mut String, value: &str) {
    let mut words = value.split(' ').filter(|w| !w.is_empty());
    if let Some(first) = words.next() {
        out.push_str(first);
        for word in words {
            out.push(' ');
            out.push_str(word);
        }
    }
}

/// The canonical request for a received request:
///
/// ```text
/// METHOD\nCANONICAL_URI\nCANONICAL_QUERY\nCANONICAL_HEADERS\nSIGNED_HEADERS\nPAYLOAD_HASH
/// ```
///
/// `signed_headers` are lowercase names in the order the client listed them;
/// `payload_hash` is the last line as is (a hex digest or a literal such as
/// [`UNSIGNED_PAYLOAD`]).
pub fn canonical_request(
    parts: &Parts,
    signed_headers: &[String],
    payload_hash: &str,
    form: AuthForm,
    settings: &Settings,
) -> Result<String, SigV4Error> {
    let uri = canonical_uri(parts.uri.path(), settings);
    let query = canonical_query(parts.uri.query().unwrap_or(""), form, settings);
    let headers = canonical_headers(parts, signed_headers)?;
    Ok(format!(
        "{method}\n{uri}\n{query}\n{headers}\n{signed}\n{payload_hash}",
        method = parts.method.as_str(),
        signed = signed_headers.join(";"),
    ))
}

/// The credential scope `yyyymmdd/region/service/aws4_request`.
pub fn scope(date: &str, region: &str, service: &str) -> String {
    format!("{date}/{region}/{service}/aws4_request")
}

/// The string to sign:
/// `AWS4-HMAC-SHA256\n<amz date>\n<scope>\n<hex sha256 of canonical request>`.
pub fn string_to_sign(timestamp: &DateTime<Utc>, scope: &str, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{}\n{scope}\n{}",
        format_amz_date(timestamp),
        sha256_hex(canonical_request.as_bytes())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn double() -> Settings {
        Settings::default()
    }

    #[test]
    fn double_encodes_the_wire_path() {
        assert_eq!(
            canonical_uri(
                "/tags/arn%3Aaws%3Aapigateway%3Aus-east-1%3A%3A%2Frestapis%2Fabc",
                &double()
            ),
            "/tags/arn%253Aaws%253Aapigateway%253Aus-east-1%253A%253A%252Frestapis%252Fabc"
        );
        assert_eq!(canonical_uri("", &double()), "/");
        assert_eq!(canonical_uri("/a//b/./c/../d/", &double()), "/a/b/d/");
        assert_eq!(canonical_uri("/a/b/..", &double()), "/a/");
        assert_eq!(canonical_uri("/../..", &double()), "/");
    }

    #[test]
    fn single_encoding_re_encodes_each_segment_once() {
        let s3 = Settings::for_service("s3");
        assert_eq!(canonical_uri("/a b/c%3Ad:e", &s3), "/a%20b/c%3Ad%3Ae");
        assert_eq!(canonical_uri("/a%2Fb//./", &s3), "/a%2Fb//./");
        assert_eq!(canonical_uri("", &s3), "/");
    }

    #[test]
    fn query_is_decoded_reencoded_and_sorted() {
        let q = "b=2&a=z&a=y&c&%7e=%41+x&d=%2B&&";
        assert_eq!(
            canonical_query(q, AuthForm::Header, &double()),
            "a=y&a=z&b=2&c=&d=%2B&~=A%20x"
        );
        let presigned = "X-Amz-Signature=abc&X-Amz-Security-Token=t&x=1";
        assert_eq!(
            canonical_query(presigned, AuthForm::Query, &double()),
            "X-Amz-Security-Token=t&x=1"
        );
        let omit = Settings {
            omit_session_token: true,
            ..double()
        };
        assert_eq!(canonical_query(presigned, AuthForm::Query, &omit), "x=1");
        // In the header form X-Amz-Signature is an ordinary parameter.
        assert_eq!(
            canonical_query(presigned, AuthForm::Header, &double()),
            "X-Amz-Security-Token=t&X-Amz-Signature=abc&x=1"
        );
    }

    #[test]
    fn header_values_are_trimmed_and_joined() {
        let (parts, ()) = http::Request::builder()
            .uri("https://example.com/")
            .header("x-a", "  a   b  c ")
            .header("x-b", "2")
            .header("x-b", " 1")
            .body(())
            .unwrap()
            .into_parts();
        let names = ["host", "x-a", "x-b"].map(String::from);
        assert_eq!(
            canonical_headers(&parts, &names).unwrap(),
            "host:example.com\nx-a:a b c\nx-b:2,1\n"
        );
        let missing = ["x-c".to_owned()];
        assert!(matches!(
            canonical_headers(&parts, &missing),
            Err(SigV4Error::Incomplete(_))
        ));
    }
}
