//! Checking a parsed [`SignedRequest`] against the secret of its access key.

use std::time::SystemTime;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::request::Parts;
use subtle::ConstantTimeEq;

use crate::SigV4Error;
use crate::canonical::{
    STREAMING_PAYLOAD, Settings, UNSIGNED_PAYLOAD, canonical_request, format_amz_date, sha256_hex,
    string_to_sign,
};
use crate::chunked::decode_chunked;
use crate::parse::{AuthForm, PayloadKind, SignedRequest};

/// The SigV4 signing key for a request date, region and service
/// (`kSigning` in the AWS documentation), derived by `aws-sigv4`.
pub fn signing_key(
    secret: &str,
    timestamp: &DateTime<Utc>,
    region: &str,
    service: &str,
) -> Vec<u8> {
    let key = aws_sigv4::sign::v4::generate_signing_key(
        secret,
        SystemTime::from(*timestamp),
        region,
        service,
    );
    key.as_ref().to_vec()
}

/// Verifies `req` (from [`crate::parse`] on the same `parts`) with `secret`,
/// canonicalising as the AWS SDKs do for `req.service`
/// ([`Settings::for_service`]). See [`verify_with`].
pub fn verify(
    req: &SignedRequest,
    parts: &Parts,
    body: &[u8],
    secret: &str,
    now: DateTime<Utc>,
    max_skew: chrono::Duration,
) -> Result<Bytes, SigV4Error> {
    let settings = Settings::for_service(&req.service);
    verify_with(req, parts, body, secret, now, max_skew, &settings)
}

/// Verifies `req` with `secret` and explicit canonicalisation `settings`.
///
/// `body` is the body as received. Returns the payload to use: the body as is,
/// or for `STREAMING-AWS4-HMAC-SHA256-PAYLOAD` the decoded data once every chunk
/// signature has been verified.
///
/// Checks, in order: the credential scope date is the request date; `host` is
/// signed; the request time is within `max_skew` of `now` (for a presigned
/// URL: not later than `now + max_skew`, and not past `X-Amz-Expires`); the
/// signature; then the body against `x-amz-content-sha256` or the chunk
/// signatures.
///
/// A presigned URL without `x-amz-content-sha256` is accepted if it was signed
/// over either `UNSIGNED-PAYLOAD` (the S3 convention, and the SDKs' presigners)
/// or the SHA-256 of the body (botocore's generic presigner and the AWS test
/// suite). Either way the client's signature covers what it chose to cover.
pub fn verify_with(
    req: &SignedRequest,
    parts: &Parts,
    body: &[u8],
    secret: &str,
    now: DateTime<Utc>,
    max_skew: chrono::Duration,
    settings: &Settings,
) -> Result<Bytes, SigV4Error> {
    let request_day = req.timestamp.format("%Y%m%d").to_string();
    if req.date != request_day {
        return Err(SigV4Error::InvalidDate(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date \
             from HTTP: '{}' != '{request_day}', from '{}'.",
            req.date,
            format_amz_date(&req.timestamp)
        )));
    }
    if !req.signed_headers.iter().any(|name| name == "host") {
        return Err(SigV4Error::Incomplete(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.".to_owned(),
        ));
    }
    check_time(req, now, max_skew)?;

    let scope = req.scope();
    let key = signing_key(secret, &req.timestamp, &req.region, &req.service);
    let signature_over = |payload_hash: &str| -> Result<(bool, String, String), SigV4Error> {
        let creq = canonical_request(parts, &req.signed_headers, payload_hash, req.form, settings)?;
        let sts = string_to_sign(&req.timestamp, &scope, &creq);
        let expected = aws_sigv4::sign::v4::calculate_signature(&key, sts.as_bytes());
        let matches = bool::from(expected.as_bytes().ct_eq(req.signature.as_bytes()));
        Ok((matches, creq, sts))
    };

    let payload_hash = match &req.payload {
        PayloadKind::Hash(hash) => hash.clone(),
        PayloadKind::Unsigned => UNSIGNED_PAYLOAD.to_owned(),
        PayloadKind::Streaming => STREAMING_PAYLOAD.to_owned(),
        PayloadKind::Computed => sha256_hex(body),
    };
    let (matches, canonical_request, string_to_sign) = signature_over(&payload_hash)?;
    if !matches {
        let presigned_default = req.form == AuthForm::Query
            && req.payload == PayloadKind::Unsigned
            && !parts.headers.contains_key("x-amz-content-sha256");
        if !(presigned_default && signature_over(&sha256_hex(body))?.0) {
            return Err(SigV4Error::SignatureMismatch {
                canonical_request,
                string_to_sign,
            });
        }
    }

    match &req.payload {
        PayloadKind::Hash(hash) => {
            if !hash.eq_ignore_ascii_case(&sha256_hex(body)) {
                return Err(SigV4Error::PayloadHashMismatch);
            }
            Ok(Bytes::copy_from_slice(body))
        }
        PayloadKind::Streaming => {
            let decoded = decode_chunked(body, &key, &req.timestamp, &scope, &req.signature)?;
            check_decoded_length(parts, decoded.len())?;
            Ok(Bytes::from(decoded))
        }
        PayloadKind::Unsigned | PayloadKind::Computed => Ok(Bytes::copy_from_slice(body)),
    }
}

fn check_time(
    req: &SignedRequest,
    now: DateTime<Utc>,
    max_skew: chrono::Duration,
) -> Result<(), SigV4Error> {
    let minutes = max_skew.num_minutes();
    let expired = |message: String| SigV4Error::Expired {
        request_time: format_amz_date(&req.timestamp),
        now: format_amz_date(&now),
        message,
    };
    let (ts, now_s) = (format_amz_date(&req.timestamp), format_amz_date(&now));

    // Saturating at chrono's limits keeps absurd inputs from panicking.
    let latest = now
        .checked_add_signed(max_skew)
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    if req.timestamp > latest {
        return Err(expired(format!(
            "Signature not yet current: {ts} is still later than {} ({now_s} + {minutes} min.)",
            format_amz_date(&latest)
        )));
    }
    match req.form {
        AuthForm::Header => {
            let earliest = now
                .checked_sub_signed(max_skew)
                .unwrap_or(DateTime::<Utc>::MIN_UTC);
            if req.timestamp < earliest {
                return Err(expired(format!(
                    "Signature expired: {ts} is now earlier than {} ({now_s} - {minutes} min.)",
                    format_amz_date(&earliest)
                )));
            }
        }
        AuthForm::Query => {
            let expires = req.expires.ok_or_else(|| {
                SigV4Error::Incomplete("A presigned request requires 'X-Amz-Expires'.".to_owned())
            })?;
            let deadline = req
                .timestamp
                .checked_add_signed(expires)
                .unwrap_or(DateTime::<Utc>::MAX_UTC);
            if now > deadline {
                return Err(expired(format!(
                    "Request has expired: X-Amz-Date {ts} plus X-Amz-Expires {} seconds is \
                     earlier than {now_s}.",
                    expires.num_seconds()
                )));
            }
        }
    }
    Ok(())
}

/// S3 clients announce the decoded size; a mismatch means a truncated or padded body.
fn check_decoded_length(parts: &Parts, decoded: usize) -> Result<(), SigV4Error> {
    let Some(value) = parts.headers.get("x-amz-decoded-content-length") else {
        return Ok(());
    };
    let announced = value.to_str().ok().and_then(|v| v.parse::<u64>().ok());
    if announced != u64::try_from(decoded).ok() {
        return Err(SigV4Error::MalformedChunk(format!(
            "x-amz-decoded-content-length does not match the {decoded} bytes in the chunks"
        )));
    }
    Ok(())
}
