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
    /// A known caller that may not call this operation.
    #[error("{0}")]
    AccessDenied(String),
    #[error("{0}")]
    UnknownOperation(String),
    #[error("internal error: {0}")]
    Internal(String),
    /// An error of the `lambda` service, in its own shape (see [`LambdaError`]).
    #[error("{0}")]
    Lambda(LambdaError),
}

/// The `lambda` service's error shape: `x-amzn-ErrorType: <Code>` and
/// `{"Type": "User", "message": …}` (`Message` where botocore's model spells
/// it so, e.g. `ResourceNotFoundException`), plus `Reason` on throttling.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct LambdaError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// `TooManyRequestsException`'s `Reason`.
    pub reason: Option<&'static str>,
}

impl LambdaError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            reason: None,
        }
    }

    fn respond(self) -> Response {
        let key = match self.code {
            "ResourceNotFoundException" | "ServiceException" | "AccessDeniedException" => "Message",
            _ => "message",
        };
        let kind = if self.status.is_server_error() {
            "Service"
        } else {
            "User"
        };
        let mut body = serde_json::json!({ "Type": kind, key: self.message });
        if let Some(reason) = self.reason {
            body["Reason"] = reason.into();
        }
        let mut response = (self.status, body.to_string()).into_response();
        let headers = response.headers_mut();
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        headers.insert("x-amzn-errortype", HeaderValue::from_static(self.code));
        if self.status == StatusCode::TOO_MANY_REQUESTS {
            headers.insert("retry-after", HeaderValue::from_static("1"));
        }
        response
    }
}

impl From<LambdaError> for ApiError {
    fn from(e: LambdaError) -> Self {
        Self::Lambda(e)
    }
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
            Self::AccessDenied(_) => (StatusCode::FORBIDDEN, "AccessDeniedException"),
            Self::UnknownOperation(_) => (StatusCode::NOT_FOUND, "UnknownOperationException"),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "InternalFailure"),
            Self::Lambda(e) => (e.status, e.code),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Self::Lambda(e) = self {
            return e.respond();
        }
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
