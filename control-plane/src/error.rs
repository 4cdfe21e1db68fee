//! The management API's errors and the one place where they become AWS's
//! error shape: a status, `x-amzn-ErrorType: <Code>` and `{"message": …}`.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    TooManyRequests(String),
    #[error("{0}")]
    LimitExceeded(String),
    #[error("{0}")]
    Unauthorized(String),
    /// A member violates the operation's model (enum, range, pattern).
    #[error("{0}")]
    Validation(String),
    /// The body is not JSON of the shape the operation takes.
    #[error("{0}")]
    Serialization(String),
    #[error("Request Entity Too Large")]
    PayloadTooLarge,
    #[error("Missing Authentication Token")]
    MissingAuthenticationToken,
    #[error("{0}")]
    IncompleteSignature(String),
    #[error("{0}")]
    InvalidSignature(String),
    #[error("The security token included in the request is invalid.")]
    UnrecognizedClient,
    #[error("{0}")]
    UnknownOperation(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::BadRequest(message.into())
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::NotFound(message.into())
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::Conflict(message.into())
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "BadRequestException"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "NotFoundException"),
            Self::Conflict(_) => (StatusCode::CONFLICT, "ConflictException"),
            Self::TooManyRequests(_) => (StatusCode::TOO_MANY_REQUESTS, "TooManyRequestsException"),
            Self::LimitExceeded(_) => (StatusCode::TOO_MANY_REQUESTS, "LimitExceededException"),
            Self::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "UnauthorizedException"),
            Self::Validation(_) => (StatusCode::BAD_REQUEST, "ValidationException"),
            Self::Serialization(_) => (StatusCode::BAD_REQUEST, "SerializationException"),
            Self::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "PayloadTooLargeException"),
            Self::MissingAuthenticationToken => {
                (StatusCode::FORBIDDEN, "MissingAuthenticationTokenException")
            }
            Self::IncompleteSignature(_) => {
                (StatusCode::BAD_REQUEST, "IncompleteSignatureException")
            }
            Self::InvalidSignature(_) => (StatusCode::FORBIDDEN, "InvalidSignatureException"),
            Self::UnrecognizedClient => (StatusCode::FORBIDDEN, "UnrecognizedClientException"),
            Self::UnknownOperation(_) => (StatusCode::NOT_FOUND, "UnknownOperationException"),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "InternalFailure"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let message = match &self {
            Self::Internal(detail) => {
                tracing::error!(%detail, "management call failed");
                "An internal error occurred".to_owned()
            }
            other => other.to_string(),
        };
        let body = serde_json::json!({ "message": message }).to_string();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        headers.insert("x-amzn-errortype", HeaderValue::from_static(code));
        if matches!(self, Self::TooManyRequests(_) | Self::LimitExceeded(_)) {
            headers.insert("retry-after", HeaderValue::from_static("1"));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::ConcurrentModification => Self::Conflict(
                "Unable to complete operation due to concurrent modification. Please try again later."
                    .into(),
            ),
            other => Self::Internal(other.to_string()),
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
