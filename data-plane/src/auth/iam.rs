//! SigV4 verification of `execute-api` callers with *derived* signing keys
//! (`kSigning` for a date, the node's region and `execute-api`), so a node
//! never needs a caller's secret (docs/architecture.md, "Principals and IAM
//! callers"). The building block for AWS_IAM methods; the control plane does
//! not stream signing keys to nodes yet, so nothing calls it on the request
//! path.
//!
//! Answers are AWS's (reference §7.1): no signature → `Missing Authentication
//! Token`; an unknown key → `The security token included in the request is
//! invalid.`; a bad signature → the signature-mismatch message; outside the
//! 5-minute window → `Signature expired: …`.

use apigw_proto::gateway_response::ResponseType;
use apigw_sigv4::{
    AuthForm, PayloadKind, STREAMING_PAYLOAD, Settings, SigV4Error, SignedRequest,
    UNSIGNED_PAYLOAD, canonical_request, format_amz_date, sha256_hex, string_to_sign,
};
use chrono::{DateTime, Duration, Utc};
use http::request::Parts;
use subtle::ConstantTimeEq;

use crate::gateway_response::GatewayError;

/// AWS's clock skew allowance for `execute-api`.
pub const MAX_SKEW_MINUTES: i64 = 5;
pub const SERVICE: &str = "execute-api";

/// Who signed a verified request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signer {
    pub access_key_id: String,
}

fn denied(message: impl Into<String>) -> GatewayError {
    GatewayError::with_message(ResponseType::AccessDenied, message)
}

/// Verifies a request signed for `execute-api` in `region`: [`precheck`],
/// then [`Prechecked::finish`] over the body.
pub fn verify(
    parts: &Parts,
    body: &[u8],
    region: &str,
    now: DateTime<Utc>,
    signing_key: impl Fn(&str, &str) -> Option<[u8; 32]>,
) -> Result<Signer, GatewayError> {
    precheck(parts, region, now, signing_key)?.finish(parts, body)
}

/// A signature whose form, scope, time and key passed; only the body is
/// left to check.
#[derive(Debug)]
pub struct Prechecked {
    req: SignedRequest,
    key: [u8; 32],
}

/// Everything a signature can be judged on before the body arrives: its
/// form, scope, time, and a known key. Run first on AWS_IAM routes, so a
/// caller without a usable signature never gets a body read. `signing_key`
/// finds the derived key of an access key for a scope date (`yyyymmdd`);
/// `None` means the key is unknown (or has no key for that date).
pub fn precheck(
    parts: &Parts,
    region: &str,
    now: DateTime<Utc>,
    signing_key: impl Fn(&str, &str) -> Option<[u8; 32]>,
) -> Result<Prechecked, GatewayError> {
    let req = match apigw_sigv4::parse(parts) {
        Ok(r) => r,
        Err(SigV4Error::MissingAuthentication) => {
            return Err(GatewayError::new(ResponseType::MissingAuthenticationToken));
        }
        Err(e) => return Err(denied(e.to_string())),
    };
    if req.service != SERVICE {
        return Err(denied(format!(
            "Credential should be scoped to correct service: '{SERVICE}'."
        )));
    }
    if req.region != region {
        return Err(denied(format!(
            "Credential should be scoped to a valid region, not '{}'.",
            req.region
        )));
    }
    if req.date != req.timestamp.format("%Y%m%d").to_string() {
        return Err(denied(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP.",
        ));
    }
    if !req.signed_headers.iter().any(|h| h == "host") {
        return Err(denied(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
        ));
    }
    check_time(&req, now)?;
    let key = signing_key(&req.access_key_id, &req.date)
        .ok_or_else(|| denied("The security token included in the request is invalid."))?;
    Ok(Prechecked { req, key })
}

impl Prechecked {
    /// Checks the signature over the request and its whole `body`.
    pub fn finish(self, parts: &Parts, body: &[u8]) -> Result<Signer, GatewayError> {
        let Prechecked { req, key } = self;
        let payload_hash = match &req.payload {
            PayloadKind::Hash(h) => {
                if !h.eq_ignore_ascii_case(&sha256_hex(body)) {
                    return Err(GatewayError::new(ResponseType::InvalidSignature));
                }
                h.clone()
            }
            PayloadKind::Unsigned => UNSIGNED_PAYLOAD.to_owned(),
            // Chunked uploads are an S3 matter: execute-api signs whole bodies.
            PayloadKind::Streaming => STREAMING_PAYLOAD.to_owned(),
            PayloadKind::Computed => sha256_hex(body),
        };
        let settings = Settings::for_service(SERVICE);
        let matches = |hash: &str| -> bool {
            canonical_request(parts, &req.signed_headers, hash, req.form, &settings)
                .map(|creq| {
                    let sts = string_to_sign(&req.timestamp, &req.scope(), &creq);
                    let expected = aws_sigv4::sign::v4::calculate_signature(key, sts.as_bytes());
                    bool::from(expected.as_bytes().ct_eq(req.signature.as_bytes()))
                })
                .unwrap_or(false)
        };
        // A presigned URL may have been signed over the body's hash instead.
        let ok = matches(&payload_hash)
            || (req.form == AuthForm::Query
                && req.payload == PayloadKind::Unsigned
                && matches(&sha256_hex(body)));
        if !ok || req.payload == PayloadKind::Streaming {
            return Err(GatewayError::new(ResponseType::InvalidSignature));
        }
        Ok(Signer {
            access_key_id: req.access_key_id,
        })
    }
}

fn check_time(req: &SignedRequest, now: DateTime<Utc>) -> Result<(), GatewayError> {
    let skew = Duration::minutes(MAX_SKEW_MINUTES);
    let (ts, now_s) = (format_amz_date(&req.timestamp), format_amz_date(&now));
    let expired = |m: String| GatewayError::with_message(ResponseType::ExpiredToken, m);
    let latest = now
        .checked_add_signed(skew)
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    if req.timestamp > latest {
        return Err(expired(format!(
            "Signature not yet current: {ts} is still later than {} ({now_s} + {MAX_SKEW_MINUTES} min.)",
            format_amz_date(&latest)
        )));
    }
    match (req.form, req.expires) {
        (AuthForm::Query, Some(expires)) => {
            let deadline = req
                .timestamp
                .checked_add_signed(expires)
                .unwrap_or(DateTime::<Utc>::MAX_UTC);
            if now > deadline {
                return Err(expired(format!(
                    "Signature expired: {ts} is now earlier than {now_s}"
                )));
            }
        }
        _ => {
            let earliest = now
                .checked_sub_signed(skew)
                .unwrap_or(DateTime::<Utc>::MIN_UTC);
            if req.timestamp < earliest {
                return Err(expired(format!(
                    "Signature expired: {ts} is now earlier than {} ({now_s} - {MAX_SKEW_MINUTES} min.)",
                    format_amz_date(&earliest)
                )));
            }
        }
    }
    Ok(())
}

/// The derived key a control plane would stream for `(secret, date, region)`.
pub fn derive_key(secret: &str, at: DateTime<Utc>, region: &str) -> [u8; 32] {
    let key = apigw_sigv4::signing_key(secret, &at, region, SERVICE);
    let mut out = [0u8; 32];
    out.copy_from_slice(&key[..32]);
    out
}

/// Requests signed by the AWS SDK's own signer, for tests here and in `auth`.
#[cfg(test)]
pub(crate) mod testing {
    use std::time::SystemTime;

    use aws_credential_types::Credentials;
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    use chrono::{DateTime, Utc};
    use http::request::Parts;

    pub const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

    /// A request signed as an SDK would sign it, at `at`.
    pub fn signed(method: &str, uri: &str, body: &[u8], at: DateTime<Utc>, service: &str) -> Parts {
        signed_by(("AKIDEXAMPLE", SECRET), method, uri, body, at, service)
    }

    /// The same, with the key pair `(id, secret)`.
    pub fn signed_by(
        (id, secret): (&str, &str),
        method: &str,
        uri: &str,
        body: &[u8],
        at: DateTime<Utc>,
        service: &str,
    ) -> Parts {
        let identity = Credentials::new(id, secret, None, None, "t").into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region("us-east-1")
            .name(service)
            .time(SystemTime::from(at))
            .settings(SigningSettings::default())
            .build()
            .unwrap()
            .into();
        let mut request = http::Request::builder()
            .method(method)
            .uri(uri)
            .header("host", "abc.execute-api.localhost")
            .body(())
            .unwrap();
        let signable = SignableRequest::new(
            method,
            uri,
            request
                .headers()
                .iter()
                .map(|(n, v)| (n.as_str(), v.to_str().unwrap())),
            SignableBody::Bytes(body),
        )
        .unwrap();
        let (instructions, _) = sign(signable, &params).unwrap().into_parts();
        instructions.apply_to_request_http1x(&mut request);
        request.into_parts().0
    }
}

#[cfg(test)]
mod tests {
    use super::testing::signed;
    use super::*;

    use super::testing::SECRET;

    fn keys(at: DateTime<Utc>) -> impl Fn(&str, &str) -> Option<[u8; 32]> {
        move |id: &str, date: &str| {
            (id == "AKIDEXAMPLE" && date == at.format("%Y%m%d").to_string())
                .then(|| derive_key(SECRET, at, "us-east-1"))
        }
    }

    #[test]
    fn accepts_sdk_signatures_with_derived_keys() {
        let now = Utc::now();
        let parts = signed(
            "POST",
            "http://abc.execute-api.localhost/prod/pets/a%20b?x=1&y=",
            b"{\"a\":1}",
            now,
            SERVICE,
        );
        let signer = verify(&parts, b"{\"a\":1}", "us-east-1", now, keys(now)).unwrap();
        assert_eq!(signer.access_key_id, "AKIDEXAMPLE");
    }

    #[test]
    fn refuses_as_aws_does() {
        let now = Utc::now();
        let parts = signed(
            "GET",
            "http://abc.execute-api.localhost/prod/pets",
            b"",
            now,
            SERVICE,
        );
        // Tampered body, tampered path.
        let e = verify(&parts, b"x", "us-east-1", now, keys(now)).unwrap_err();
        assert_eq!(e.kind, ResponseType::InvalidSignature);
        let mut moved = parts.clone();
        moved.uri = "http://abc.execute-api.localhost/prod/admin"
            .parse()
            .unwrap();
        assert_eq!(
            verify(&moved, b"", "us-east-1", now, keys(now))
                .unwrap_err()
                .kind,
            ResponseType::InvalidSignature
        );
        // Unknown key.
        let e = verify(&parts, b"", "us-east-1", now, |_: &str, _: &str| None).unwrap_err();
        assert_eq!(
            e.message,
            "The security token included in the request is invalid."
        );
        // Outside the window.
        let late = now + Duration::minutes(6);
        let e = verify(&parts, b"", "us-east-1", late, keys(now)).unwrap_err();
        assert_eq!(e.kind, ResponseType::ExpiredToken);
        assert!(
            e.message.starts_with("Signature expired: "),
            "{}",
            e.message
        );
        // Wrong service or region scope.
        let other = signed(
            "GET",
            "http://abc.execute-api.localhost/prod/pets",
            b"",
            now,
            "lambda",
        );
        assert!(
            verify(&other, b"", "us-east-1", now, keys(now))
                .unwrap_err()
                .message
                .contains("execute-api")
        );
        assert!(verify(&parts, b"", "eu-west-1", now, keys(now)).is_err());
        // Unsigned.
        let bare = http::Request::get("http://abc/prod")
            .body(())
            .unwrap()
            .into_parts()
            .0;
        assert_eq!(
            verify(&bare, b"", "us-east-1", now, keys(now))
                .unwrap_err()
                .kind,
            ResponseType::MissingAuthenticationToken
        );
    }
}
