//! Gateway responses: every error the data plane answers is a
//! [`GatewayError`] (a response type and a message), turned into AWS's answer
//! in one place — the type's default status, `{"message": …}` body and
//! `x-amzn-ErrorType` — unless the API customised that type (or a
//! DEFAULT_4XX/DEFAULT_5XX fallback), in which case the override compiled at
//! load supplies status, headers and template (reference §2.1, §2.6).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use apigw_vtl::aws::AwsInput;

use apigw_proto::gateway_response::ResponseType;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{HeaderName, Response, StatusCode};
use serde_json::Value;

use crate::body::{self, Body};
use crate::integration::mapping::{RequestView, Side, ValueSource};

pub const X_AMZN_ERROR_TYPE: HeaderName = HeaderName::from_static("x-amzn-errortype");

/// An error answered as a gateway response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", kind.as_str())]
pub struct GatewayError {
    pub kind: ResponseType,
    pub message: String,
    /// `$context.error.validationErrorString`: what request validation found.
    pub validation_error: Option<String>,
}

impl GatewayError {
    /// An error with the type's default message.
    pub fn new(kind: ResponseType) -> Self {
        Self {
            kind,
            message: default_message(kind).to_owned(),
            validation_error: None,
        }
    }

    pub fn with_message(kind: ResponseType, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            validation_error: None,
        }
    }

    /// AWS's answer, with no customisation (no API known, or none customised).
    pub fn to_default_response(&self) -> Response<Body> {
        GatewayResponses::default().render(self, None)
    }
}

/// The answer for a request that names no API or stage we serve: 403
/// `{"message":"Forbidden"}`, `ForbiddenException` (decisions.md). No API,
/// so no customisation applies.
pub fn forbidden() -> Response<Body> {
    let mut response = Response::new(body::full(r#"{"message":"Forbidden"}"#));
    *response.status_mut() = StatusCode::FORBIDDEN;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(
        X_AMZN_ERROR_TYPE,
        HeaderValue::from_static("ForbiddenException"),
    );
    response
}

/// The message AWS gives each type by default (`$context.error.message`).
pub fn default_message(kind: ResponseType) -> &'static str {
    use ResponseType::*;
    match kind {
        AccessDenied => "User is not authorized to access this resource",
        ApiConfigurationError | AuthorizerConfigurationError | AuthorizerFailure => {
            "Internal server error"
        }
        IntegrationFailure | Default5xx => "Internal server error",
        BadRequestParameters => "Missing required request parameters",
        BadRequestBody => "Invalid request body",
        Default4xx => "Bad Request",
        ExpiredToken => "Signature expired",
        IntegrationTimeout => "Endpoint request timed out",
        InvalidApiKey | WafFiltered => "Forbidden",
        InvalidSignature => {
            "The request signature we calculated does not match the signature you provided. \
             Check your AWS Secret Access Key and signing method. \
             Consult the service documentation for details."
        }
        MissingAuthenticationToken => "Missing Authentication Token",
        QuotaExceeded => "Limit Exceeded",
        RequestTooLarge => "Request Too Long",
        ResourceNotFound => "Not Found",
        Throttled => "Too Many Requests",
        Unauthorized => "Unauthorized",
        UnsupportedMediaType => "Unsupported Media Type",
    }
}

/// `x-amzn-ErrorType` per type (reference §2.1; our pick where AWS varies).
pub fn error_type(kind: ResponseType) -> &'static str {
    use ResponseType::*;
    match kind {
        AccessDenied => "AccessDeniedException",
        ApiConfigurationError | IntegrationFailure | IntegrationTimeout | Default5xx => {
            "InternalServerErrorException"
        }
        AuthorizerConfigurationError => "AuthorizerConfigurationException",
        AuthorizerFailure => "AuthorizerFailureException",
        BadRequestParameters | BadRequestBody | UnsupportedMediaType | Default4xx => {
            "BadRequestException"
        }
        ExpiredToken | InvalidSignature => "InvalidSignatureException",
        InvalidApiKey => "ForbiddenException",
        MissingAuthenticationToken => "MissingAuthenticationTokenException",
        QuotaExceeded => "LimitExceededException",
        RequestTooLarge => "RequestTooLargeException",
        ResourceNotFound => "ResourceNotFoundException",
        Throttled => "TooManyRequestsException",
        Unauthorized => "UnauthorizedException",
        WafFiltered => "WafFilteredException",
    }
}

/// One customised gateway response, compiled.
#[derive(Debug, Clone)]
struct Override {
    status: Option<StatusCode>,
    headers: Vec<(HeaderName, ValueSource)>,
    /// (content type, template); empty = AWS's default template.
    templates: Vec<(HeaderValue, Template)>,
}

/// A gateway-response template, rendered by the VTL engine like mapping
/// templates, with `$context.error.*` added to `$context`. One that does not
/// parse (logged at load) or fails to render answers the default body: an
/// error answer cannot itself fail.
#[derive(Debug, Clone)]
struct Template {
    vtl: Option<Arc<apigw_vtl::Template>>,
    stage_variables: Arc<[(String, String)]>,
}

impl Template {
    fn parse(source: &str, stage_variables: Arc<[(String, String)]>) -> Self {
        let vtl = match apigw_vtl::Template::parse(source) {
            Ok(t) => Some(Arc::new(t)),
            Err(e) => {
                tracing::warn!(error = %e, "gateway response template does not parse; the default body is used");
                None
            }
        };
        Self {
            vtl,
            stage_variables,
        }
    }

    fn render(&self, error: &GatewayError, request: Option<&RequestView<'_>>) -> Option<String> {
        let vtl = self.vtl.as_ref()?;
        let mut context = request.map_or_else(
            || Value::Object(Default::default()),
            crate::transform::context_json,
        );
        if let Value::Object(map) = &mut context {
            map.insert(
                "error".into(),
                serde_json::json!({
                    "message": error.message,
                    "messageString": json_quote(&error.message),
                    "responseType": error.kind.as_str(),
                    "validationErrorString": error.validation_error,
                }),
            );
        }
        let input = AwsInput {
            headers: request
                .map(|r| {
                    r.headers
                        .iter()
                        .map(|(k, v)| {
                            (
                                k.as_str().to_owned(),
                                String::from_utf8_lossy(v.as_bytes()).into_owned(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default(),
            query: request.map(RequestView::query_pairs).unwrap_or_default(),
            path_params: request
                .and_then(|r| r.path_parameters)
                .map(|p| {
                    p.iter()
                        .map(|(k, v)| (k.to_owned(), v.to_owned()))
                        .collect()
                })
                .unwrap_or_default(),
            context,
            stage_variables: self.stage_variables.to_vec(),
            body: String::new(),
        };
        match apigw_vtl::aws::render(vtl, &input, &apigw_vtl::Limits::default()) {
            Ok(rendered) => Some(rendered.body),
            Err(e) => {
                tracing::warn!(error = %e, "gateway response template failed to render; the default body is used");
                None
            }
        }
    }
}

fn json_quote(s: &str) -> String {
    Value::String(s.to_owned()).to_string()
}

/// An API's customised gateway responses, compiled for one stage.
#[derive(Debug, Clone, Default)]
pub struct GatewayResponses {
    overrides: HashMap<ResponseType, Override>,
}

impl GatewayResponses {
    /// Compiles `deployment.gateway_responses` (AWS's GatewayResponse JSON by type name).
    pub fn compile(
        responses: &BTreeMap<String, Value>,
        stage_variables: &BTreeMap<String, String>,
    ) -> Result<Self, String> {
        let mut overrides = HashMap::new();
        let vars: Arc<[(String, String)]> = stage_variables
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (name, value) in responses {
            let kind = ResponseType::parse(name)
                .ok_or_else(|| format!("unknown gateway response type {name:?}"))?;
            let at = |e: String| format!("gateway response {name}: {e}");
            let status = match value.get("statusCode") {
                None | Some(Value::Null) => None,
                Some(v) => Some(parse_status(v).map_err(at)?),
            };
            let mut headers = Vec::new();
            for (key, expr) in string_map(value.get("responseParameters")).map_err(at)? {
                // Path and query-string targets are meaningless on a response.
                let Some(header) = key.strip_prefix("gatewayresponse.header.") else {
                    if key.starts_with("gatewayresponse.") {
                        continue;
                    }
                    return Err(at(format!("invalid response parameter {key:?}")));
                };
                let source =
                    ValueSource::parse(expr, Side::GatewayResponse, stage_variables).map_err(at)?;
                let header = crate::integration::mapping::header_name(header).map_err(at)?;
                headers.push((header, source));
            }
            let mut templates = Vec::new();
            for (content_type, source) in string_map(value.get("responseTemplates")).map_err(at)? {
                let content_type = HeaderValue::from_str(content_type)
                    .map_err(|_| at(format!("invalid content type {content_type:?}")))?;
                templates.push((content_type, Template::parse(source, vars.clone())));
            }
            overrides.insert(
                kind,
                Override {
                    status,
                    headers,
                    templates,
                },
            );
        }
        Ok(Self { overrides })
    }

    /// The answer for `error`. `request` feeds header mappings and
    /// `$context` (absent before routing reached an API).
    pub fn render(
        &self,
        error: &GatewayError,
        request: Option<&RequestView<'_>>,
    ) -> Response<Body> {
        let kind = error.kind;
        let builtin = kind.default_status().unwrap_or(match kind {
            ResponseType::Default4xx => 400,
            _ => 500,
        });
        // REQUEST_TOO_LARGE cannot be customised (reference §1.1).
        let custom = if kind == ResponseType::RequestTooLarge {
            None
        } else {
            self.overrides.get(&kind).or_else(|| {
                let fallback = if builtin < 500 {
                    ResponseType::Default4xx
                } else {
                    ResponseType::Default5xx
                };
                self.overrides.get(&fallback)
            })
        };
        let status = custom.and_then(|c| c.status).unwrap_or_else(|| {
            StatusCode::from_u16(builtin).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
        });
        let rendered = custom
            .and_then(|c| pick_template(&c.templates, request))
            .and_then(|(ct, t)| Some((ct.clone(), t.render(error, request)?)));
        let (content_type, body) = match rendered {
            Some(answer) => answer,
            None => (
                HeaderValue::from_static("application/json"),
                format!("{{\"message\":{}}}", json_quote(&error.message)),
            ),
        };
        let mut response = Response::new(body::full(body));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, content_type);
        headers.insert(
            X_AMZN_ERROR_TYPE,
            HeaderValue::from_static(error_type(kind)),
        );
        if let (Some(custom), Some(request)) = (custom, request) {
            for (name, source) in &custom.headers {
                if let Some(value) = source.resolve(request, None)
                    && let Ok(value) = HeaderValue::from_str(&value)
                {
                    headers.insert(name.clone(), value);
                }
            }
        } else if let Some(custom) = custom {
            for (name, source) in &custom.headers {
                if let ValueSource::Literal(v) = source
                    && let Ok(value) = HeaderValue::from_str(v)
                {
                    headers.insert(name.clone(), value);
                }
            }
        }
        response
    }
}

/// The template for the caller's `Accept` (first media type), else
/// `application/json`, else the first defined (reference §5.2).
fn pick_template<'t>(
    templates: &'t [(HeaderValue, Template)],
    request: Option<&RequestView<'_>>,
) -> Option<&'t (HeaderValue, Template)> {
    let accept = request
        .and_then(|r| r.headers.get(http::header::ACCEPT))
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(|v| v.split(';').next().unwrap_or(v).trim());
    let by = |wanted: &str| {
        templates
            .iter()
            .find(|(ct, _)| ct.as_bytes().eq_ignore_ascii_case(wanted.as_bytes()))
    };
    accept
        .and_then(by)
        .or_else(|| by("application/json"))
        .or_else(|| templates.first())
}

pub(crate) fn parse_status(value: &Value) -> Result<StatusCode, String> {
    let code = match value {
        Value::String(s) => s.parse::<u16>().ok(),
        Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
        _ => None,
    };
    code.and_then(|c| StatusCode::from_u16(c).ok())
        .filter(|s| (100..600).contains(&s.as_u16()))
        .ok_or_else(|| format!("invalid status code {value}"))
}

/// A JSON object of strings as pairs; absent or null is empty.
pub(crate) fn string_map(value: Option<&Value>) -> Result<Vec<(&str, &str)>, String> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.as_str(), s.as_str())),
                other => Err(format!("{k}: expected a string, found {other}")),
            })
            .collect(),
        Some(other) => Err(format!("expected an object, found {other}")),
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderMap;
    use http_body_util::BodyExt;
    use serde_json::json;

    use super::*;
    use crate::integration::mapping::RequestContext;

    async fn parts(response: Response<Body>) -> (u16, HeaderMap, String) {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, headers, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn defaults_follow_aws() {
        let (status, headers, body) = parts(
            GatewayError::new(ResponseType::MissingAuthenticationToken).to_default_response(),
        )
        .await;
        assert_eq!(status, 403);
        assert_eq!(body, r#"{"message":"Missing Authentication Token"}"#);
        assert_eq!(
            headers["x-amzn-errortype"],
            "MissingAuthenticationTokenException"
        );
        assert_eq!(headers["content-type"], "application/json");
        let (status, headers, body) =
            parts(GatewayError::new(ResponseType::IntegrationTimeout).to_default_response()).await;
        assert_eq!(
            (status, body.as_str()),
            (504, r#"{"message":"Endpoint request timed out"}"#)
        );
        assert_eq!(headers["x-amzn-errortype"], "InternalServerErrorException");
        let quoted = GatewayError::with_message(ResponseType::BadRequestBody, "bad \"x\"");
        assert_eq!(
            parts(quoted.to_default_response()).await.2,
            r#"{"message":"bad \"x\""}"#
        );
    }

    #[test]
    fn templates_render_through_the_engine() {
        let vars: Arc<[(String, String)]> = Arc::new([("env".to_string(), "prod".to_string())]);
        let t = Template::parse(
            r##"{"m":$context.error.messageString,"raw":"$context.error.message.","t":"$context.error.responseType","id":"${context.requestId}","env":"$stageVariables.env","keep":"$ 5"#if($context.error.validationErrorString == ""),"v":"none"#end}"##,
            vars.clone(),
        );
        let headers = HeaderMap::new();
        let view = RequestView {
            headers: &headers,
            raw_query: None,
            path_parameters: None,
            context: RequestContext {
                request_id: "r-1",
                ..Default::default()
            },
        };
        let error = GatewayError::new(ResponseType::Throttled);
        assert_eq!(
            t.render(&error, Some(&view)).as_deref(),
            Some(
                r#"{"m":"Too Many Requests","raw":"Too Many Requests.","t":"THROTTLED","id":"r-1","env":"prod","keep":"$ 5","v":"none"}"#
            )
        );
        let mut invalid = GatewayError::new(ResponseType::BadRequestBody);
        invalid.validation_error = Some("[bad \"type\"]".into());
        let t = Template::parse(
            r#"{"message": $context.error.messageString, "detail": "$util.escapeJavaScript($context.error.validationErrorString)"}"#,
            vars.clone(),
        );
        assert_eq!(
            t.render(&invalid, None).as_deref(),
            Some(r#"{"message": "Invalid request body", "detail": "[bad \"type\"]"}"#)
        );
        // A template that does not parse, or fails to render, gives the default body.
        assert_eq!(
            Template::parse("#if(", vars.clone()).render(&invalid, None),
            None
        );
        assert_eq!(
            Template::parse("$context.error.message.substring(99)", vars).render(&invalid, None),
            None
        );
    }

    #[tokio::test]
    async fn overrides_and_the_default_4xx_fallback() {
        let responses = BTreeMap::from([
            (
                "MISSING_AUTHENTICATION_TOKEN".to_string(),
                json!({
                    "statusCode": "404",
                    "responseParameters": {
                        "gatewayresponse.header.x-q": "method.request.querystring.q",
                        "gatewayresponse.header.x-lit": "'a.b.c'"
                    },
                    "responseTemplates": {"application/json": "{\"err\":$context.error.messageString}"}
                }),
            ),
            (
                "DEFAULT_4XX".to_string(),
                json!({"statusCode": "418", "responseTemplates": {"text/plain": "teapot: $context.error.message"}}),
            ),
        ]);
        let compiled = GatewayResponses::compile(&responses, &BTreeMap::new()).unwrap();
        let headers = HeaderMap::new();
        let view = RequestView {
            headers: &headers,
            raw_query: Some("q=42"),
            path_parameters: None,
            context: RequestContext::default(),
        };
        let (status, headers, body) = parts(compiled.render(
            &GatewayError::new(ResponseType::MissingAuthenticationToken),
            Some(&view),
        ))
        .await;
        assert_eq!(
            (status, body.as_str()),
            (404, r#"{"err":"Missing Authentication Token"}"#)
        );
        assert_eq!(headers["x-q"], "42");
        assert_eq!(headers["x-lit"], "a.b.c");
        let (status, headers, body) =
            parts(compiled.render(&GatewayError::new(ResponseType::Throttled), Some(&view))).await;
        assert_eq!((status, body.as_str()), (418, "teapot: Too Many Requests"));
        assert_eq!(headers["content-type"], "text/plain");
        // 5xx types are untouched by DEFAULT_4XX; REQUEST_TOO_LARGE cannot be customised.
        assert_eq!(
            parts(compiled.render(&GatewayError::new(ResponseType::IntegrationTimeout), None))
                .await
                .0,
            504
        );
        assert_eq!(
            parts(compiled.render(&GatewayError::new(ResponseType::RequestTooLarge), None))
                .await
                .0,
            413
        );
    }

    #[test]
    fn bad_overrides_fail_to_compile() {
        for bad in [
            json!({"NOT_A_TYPE": {}}),
            json!({"THROTTLED": {"statusCode": "abc"}}),
            json!({"THROTTLED": {"responseParameters": {"gatewayresponse.header.x": "bogus.source"}}}),
            json!({"THROTTLED": {"responseTemplates": "nope"}}),
        ] {
            let map: BTreeMap<String, Value> = serde_json::from_value(bad.clone()).unwrap();
            assert!(
                GatewayResponses::compile(&map, &BTreeMap::new()).is_err(),
                "{bad}"
            );
        }
    }
}
