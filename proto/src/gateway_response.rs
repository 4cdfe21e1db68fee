//! AWS's gateway response types for REST APIs, with their default status
//! codes, messages and `x-amzn-ErrorType`: the management API lists them as
//! defaults, the data plane answers with them.

/// Every REST gateway response type AWS defines, in AWS's listing order.
pub const ALL: [ResponseType; 21] = [
    ResponseType::AccessDenied,
    ResponseType::ApiConfigurationError,
    ResponseType::AuthorizerConfigurationError,
    ResponseType::AuthorizerFailure,
    ResponseType::BadRequestParameters,
    ResponseType::BadRequestBody,
    ResponseType::Default4xx,
    ResponseType::Default5xx,
    ResponseType::ExpiredToken,
    ResponseType::IntegrationFailure,
    ResponseType::IntegrationTimeout,
    ResponseType::InvalidApiKey,
    ResponseType::InvalidSignature,
    ResponseType::MissingAuthenticationToken,
    ResponseType::QuotaExceeded,
    ResponseType::RequestTooLarge,
    ResponseType::ResourceNotFound,
    ResponseType::Throttled,
    ResponseType::Unauthorized,
    ResponseType::UnsupportedMediaType,
    ResponseType::WafFiltered,
];

/// The default template AWS gives every gateway response.
pub const DEFAULT_TEMPLATE: &str = "{\"message\":$context.error.messageString}";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResponseType {
    AccessDenied,
    ApiConfigurationError,
    AuthorizerConfigurationError,
    AuthorizerFailure,
    BadRequestParameters,
    BadRequestBody,
    Default4xx,
    Default5xx,
    ExpiredToken,
    IntegrationFailure,
    IntegrationTimeout,
    InvalidApiKey,
    InvalidSignature,
    MissingAuthenticationToken,
    QuotaExceeded,
    RequestTooLarge,
    ResourceNotFound,
    Throttled,
    Unauthorized,
    UnsupportedMediaType,
    WafFiltered,
}

impl ResponseType {
    /// The wire name, e.g. `MISSING_AUTHENTICATION_TOKEN`.
    pub fn as_str(self) -> &'static str {
        use ResponseType::*;
        match self {
            AccessDenied => "ACCESS_DENIED",
            ApiConfigurationError => "API_CONFIGURATION_ERROR",
            AuthorizerConfigurationError => "AUTHORIZER_CONFIGURATION_ERROR",
            AuthorizerFailure => "AUTHORIZER_FAILURE",
            BadRequestParameters => "BAD_REQUEST_PARAMETERS",
            BadRequestBody => "BAD_REQUEST_BODY",
            Default4xx => "DEFAULT_4XX",
            Default5xx => "DEFAULT_5XX",
            ExpiredToken => "EXPIRED_TOKEN",
            IntegrationFailure => "INTEGRATION_FAILURE",
            IntegrationTimeout => "INTEGRATION_TIMEOUT",
            InvalidApiKey => "INVALID_API_KEY",
            InvalidSignature => "INVALID_SIGNATURE",
            MissingAuthenticationToken => "MISSING_AUTHENTICATION_TOKEN",
            QuotaExceeded => "QUOTA_EXCEEDED",
            RequestTooLarge => "REQUEST_TOO_LARGE",
            ResourceNotFound => "RESOURCE_NOT_FOUND",
            Throttled => "THROTTLED",
            Unauthorized => "UNAUTHORIZED",
            UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            WafFiltered => "WAF_FILTERED",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// AWS's default status code; `None` for the DEFAULT_4XX/5XX fallbacks.
    pub fn default_status(self) -> Option<u16> {
        use ResponseType::*;
        Some(match self {
            AccessDenied
            | ExpiredToken
            | InvalidApiKey
            | InvalidSignature
            | MissingAuthenticationToken
            | WafFiltered => 403,
            ApiConfigurationError | AuthorizerConfigurationError | AuthorizerFailure => 500,
            BadRequestParameters | BadRequestBody => 400,
            IntegrationFailure | IntegrationTimeout => 504,
            QuotaExceeded | Throttled => 429,
            RequestTooLarge => 413,
            ResourceNotFound => 404,
            Unauthorized => 401,
            UnsupportedMediaType => 415,
            Default4xx | Default5xx => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        let mut names: Vec<_> = ALL.iter().map(|t| t.as_str()).collect();
        for t in ALL {
            assert_eq!(ResponseType::parse(t.as_str()), Some(t));
        }
        names.sort();
        names.dedup();
        assert_eq!(names.len(), 21);
        assert_eq!(ResponseType::parse("NOPE"), None);
    }

    #[test]
    fn fallbacks_have_no_status() {
        assert_eq!(ResponseType::Default4xx.default_status(), None);
        assert_eq!(
            ResponseType::MissingAuthenticationToken.default_status(),
            Some(403)
        );
        assert_eq!(ResponseType::Throttled.default_status(), Some(429));
    }
}
