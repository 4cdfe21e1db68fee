//! Why a request failed SigV4 verification.
//!
//! Messages follow the wording AWS services use, so that SDKs and people who
//! know AWS recognise them.

/// Why a request failed SigV4 parsing or verification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigV4Error {
    /// Neither an `Authorization` header nor an `X-Amz-Algorithm` query parameter.
    #[error("Missing Authentication Token")]
    MissingAuthentication,

    /// The signature information is present but malformed or incomplete
    /// (AWS: `IncompleteSignatureException`).
    #[error("{0}")]
    Incomplete(String),

    /// An algorithm other than `AWS4-HMAC-SHA256`.
    #[error("Unsupported AWS 'algorithm': '{0}'; only 'AWS4-HMAC-SHA256' is accepted")]
    UnsupportedAlgorithm(String),

    /// The request date is unparseable, or disagrees with the credential scope.
    #[error("{0}")]
    InvalidDate(String),

    /// The request time is outside the allowed window, or a presigned URL is past
    /// its `X-Amz-Expires`. Times are in `yyyymmddThhmmssZ` form.
    #[error("{message}")]
    Expired {
        request_time: String,
        now: String,
        message: String,
    },

    /// The signature (of the request, or of one aws-chunked chunk) is not the one
    /// we computed. Carries what we signed, as AWS reports it, so that clients can
    /// find their canonicalisation bug. For a chunk, `canonical_request` is empty
    /// and `string_to_sign` is the chunk's.
    #[error(
        "The request signature we calculated does not match the signature you provided. \
         Check your AWS Secret Access Key and signing method. Consult the service \
         documentation for details.\n\nThe Canonical String for this request should have \
         been\n'{canonical_request}'\n\nThe String-to-Sign should have been\n'{string_to_sign}'\n"
    )]
    SignatureMismatch {
        canonical_request: String,
        string_to_sign: String,
    },

    /// `x-amz-content-sha256` does not describe the received body: either it is a
    /// hash that differs from the body's SHA-256, or a value we do not support.
    #[error("The provided 'x-amz-content-sha256' header does not match what was computed.")]
    PayloadHashMismatch,

    /// The `STREAMING-AWS4-HMAC-SHA256-PAYLOAD` body is not well-formed aws-chunked encoding.
    #[error("Malformed aws-chunked body: {0}")]
    MalformedChunk(String),
}

impl SigV4Error {
    /// The AWS error type name for this error, as sent in `x-amzn-ErrorType` /
    /// `__type` by AWS JSON and REST-JSON services.
    pub fn error_code(&self) -> &'static str {
        match self {
            SigV4Error::MissingAuthentication => "MissingAuthenticationTokenException",
            SigV4Error::Incomplete(_) | SigV4Error::UnsupportedAlgorithm(_) => {
                "IncompleteSignatureException"
            }
            SigV4Error::InvalidDate(_)
            | SigV4Error::Expired { .. }
            | SigV4Error::SignatureMismatch { .. }
            | SigV4Error::PayloadHashMismatch
            | SigV4Error::MalformedChunk(_) => "InvalidSignatureException",
        }
    }
}
