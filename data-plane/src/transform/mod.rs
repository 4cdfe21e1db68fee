//! Mapping templates on the non-proxy integrations (reference §5.1, §5.2):
//! which request template a request uses (by `Content-Type`, with
//! `passthroughBehavior`), which response template an answer uses (by
//! `Accept`), and rendering either through `apigw-vtl` with the AWS input
//! built from the request.
//!
//! Templates parse once, when a stage compiles. A template that does not
//! parse makes its route answer 500 `API_CONFIGURATION_ERROR` (logged with
//! the parse error) rather than refusing the snapshot: AWS stores most bad
//! templates without complaint and fails the call, and one API's template
//! must not block every other API's configuration on the node
//! ([`first_parse_error`] finds it before the integration compiles).
//!
//! A template that fails to render answers 500 `{"message": "Internal server
//! error"}` (`API_CONFIGURATION_ERROR`), with the reason logged.

use std::sync::Arc;

use ::http::HeaderMap;
use ::http::header::{ACCEPT, CONTENT_TYPE, HeaderValue};
use apigw_proto::gateway_response::ResponseType;
use apigw_vtl::aws::{AwsInput, Overrides, Rendered, render};
use apigw_vtl::{Limits, Template};
use serde_json::{Map, Value, json};

use crate::gateway_response::{GatewayError, string_map};
use crate::integration::mapping::RequestView;

/// `passthroughBehavior`: what a request whose content type has no template gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Passthrough {
    #[default]
    WhenNoMatch,
    WhenNoTemplates,
    Never,
}

impl Passthrough {
    pub fn parse(value: Option<&Value>) -> Result<Self, String> {
        match value.and_then(Value::as_str) {
            None | Some("WHEN_NO_MATCH") => Ok(Self::WhenNoMatch),
            Some("WHEN_NO_TEMPLATES") => Ok(Self::WhenNoTemplates),
            Some("NEVER") => Ok(Self::Never),
            Some(other) => Err(format!("invalid passthroughBehavior {other:?}")),
        }
    }
}

/// A parsed template with the content type it is registered for.
#[derive(Debug, Clone)]
pub struct Keyed {
    /// Lower-case media type, no parameters.
    pub content_type: Box<str>,
    pub header: HeaderValue,
    pub template: Arc<Template>,
}

/// Parses a `requestTemplates` / `responseTemplates` map. An empty template
/// is absent (AWS treats `""` as no template).
fn parse_map(value: Option<&Value>) -> Result<Vec<Keyed>, String> {
    let mut out = Vec::new();
    for (ct, source) in string_map(value)? {
        let header =
            HeaderValue::from_str(ct).map_err(|_| format!("invalid content type {ct:?}"))?;
        let template = Template::parse(source)
            .map_err(|e| format!("mapping template for {ct} does not parse: {e}"))?;
        out.push(Keyed {
            content_type: media_type(ct).into(),
            header,
            template: Arc::new(template),
        });
    }
    Ok(out)
}

/// The first template of `integration` (request or any integration
/// response) that does not parse, as a message for the log.
pub fn first_parse_error(integration: &Value) -> Option<String> {
    if let Err(e) = parse_map(integration.get("requestTemplates")) {
        return Some(e);
    }
    let responses = integration.get("integrationResponses")?.as_object()?;
    responses.iter().find_map(|(key, r)| {
        parse_map(r.get("responseTemplates"))
            .err()
            .map(|e| format!("integration response {key}: {e}"))
    })
}

/// The media type of a `Content-Type`/`Accept` value: no parameters, lower case.
pub fn media_type(value: &str) -> String {
    value
        .split([';', ','])
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// What the request side does with a request's body.
#[derive(Debug)]
pub enum RequestPlan<'t> {
    /// Render this template.
    Transform(&'t Keyed),
    /// Send the body unchanged.
    PassThrough,
}

/// `requestTemplates` and `passthroughBehavior`, compiled.
#[derive(Debug, Clone, Default)]
pub struct RequestTemplates {
    templates: Vec<Keyed>,
    passthrough: Passthrough,
}

impl RequestTemplates {
    pub fn compile(integration: &Value) -> Result<Self, String> {
        Ok(Self {
            templates: parse_map(integration.get("requestTemplates"))?,
            passthrough: Passthrough::parse(integration.get("passthroughBehavior"))?,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.templates.is_empty()
    }

    /// The template for `headers`' `Content-Type` (absent: `application/json`),
    /// else passthrough, else 415 `UNSUPPORTED_MEDIA_TYPE`.
    pub fn plan(&self, headers: &HeaderMap) -> Result<RequestPlan<'_>, GatewayError> {
        let ct = headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(media_type)
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| "application/json".to_owned());
        if let Some(t) = self.templates.iter().find(|t| *t.content_type == *ct) {
            return Ok(RequestPlan::Transform(t));
        }
        match (self.passthrough, self.templates.is_empty()) {
            (Passthrough::WhenNoMatch, _) | (Passthrough::WhenNoTemplates, true) => {
                Ok(RequestPlan::PassThrough)
            }
            _ => Err(GatewayError::new(ResponseType::UnsupportedMediaType)),
        }
    }

    /// The template a MOCK integration renders: the request's, else
    /// `application/json`'s, else the first.
    pub fn for_mock(&self, headers: &HeaderMap) -> Result<Option<&Keyed>, GatewayError> {
        match self.plan(headers)? {
            RequestPlan::Transform(t) => Ok(Some(t)),
            RequestPlan::PassThrough => Ok(None),
        }
    }
}

/// One integration response's `responseTemplates`.
#[derive(Debug, Clone, Default)]
pub struct ResponseTemplates(Vec<Keyed>);

impl ResponseTemplates {
    pub fn compile(response: &Value) -> Result<Self, String> {
        parse_map(response.get("responseTemplates")).map(Self)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The template for the first media type of `Accept` (absent:
    /// `application/json`), else `application/json`'s, else the first.
    pub fn select(&self, request_headers: &HeaderMap) -> Option<&Keyed> {
        let accept = request_headers
            .get(ACCEPT)
            .and_then(|v| v.to_str().ok())
            .map(media_type)
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| "application/json".to_owned());
        self.0
            .iter()
            .find(|t| *t.content_type == *accept)
            .or_else(|| {
                self.0
                    .iter()
                    .find(|t| &*t.content_type == "application/json")
            })
            .or_else(|| self.0.first())
    }
}

/// The values behind `$input`, `$context` and `$stageVariables` for one render.
pub struct Inputs<'a> {
    pub view: &'a RequestView<'a>,
    pub stage_variables: &'a std::collections::BTreeMap<String, String>,
}

impl Inputs<'_> {
    /// The AWS input with `body` as `$input.body` (the request's on the way
    /// in, the integration's on the way back).
    pub fn aws(&self, body: &[u8]) -> AwsInput {
        let view = self.view;
        AwsInput {
            body: String::from_utf8_lossy(body).into_owned(),
            path_params: view
                .path_parameters
                .map(|p| {
                    p.iter()
                        .map(|(k, v)| (k.to_owned(), v.to_owned()))
                        .collect()
                })
                .unwrap_or_default(),
            query: view.query_pairs(),
            headers: view
                .headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            context: context_json(view),
            stage_variables: self
                .stage_variables
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }

    /// Renders `template` over `body`; a failure is logged and becomes AWS's 500.
    pub fn render(&self, template: &Template, body: &[u8]) -> Result<Rendered, GatewayError> {
        render(template, &self.aws(body), &Limits::default()).map_err(|e| {
            let c = &self.view.context;
            tracing::warn!(
                api_id = c.api_id,
                stage = c.stage,
                resource = c.resource_path,
                request_id = c.request_id,
                error = %e,
                "Execution failed: mapping template failed to render"
            );
            GatewayError::new(ResponseType::ApiConfigurationError)
        })
    }
}

/// `$context` for a template: what the request view knows (reference §5.1).
pub fn context_json(view: &RequestView<'_>) -> Value {
    let c = &view.context;
    let user_agent = view
        .headers
        .get(::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok());
    let mut authorizer = Map::new();
    if let Some(a) = c.authorizer {
        for (k, v) in a {
            authorizer.insert(k.clone(), v.clone());
        }
    }
    let epoch = c.request_time_epoch;
    let request_time = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(epoch as i64)
        .map(|t| t.format("%d/%b/%Y:%H:%M:%S +0000").to_string());
    json!({
        "accountId": c.account_id,
        "apiId": c.api_id,
        "authorizer": authorizer,
        "deploymentId": c.deployment_id,
        "domainName": c.domain_name,
        "domainPrefix": c.domain_name.split('.').next().unwrap_or(""),
        "extendedRequestId": c.extended_request_id,
        "httpMethod": c.http_method,
        "identity": {
            "sourceIp": c.source_ip,
            "userAgent": user_agent,
            "apiKey": c.api_key.or(c.usage_identifier_key),
            "apiKeyId": c.api_key_id,
            "accessKey": c.principal.map(|p| &p.access_key_id),
            "accountId": c.principal.map(|p| &p.account_id),
            "caller": c.principal.map(|p| &p.unique_id),
            "user": c.principal.map(|p| &p.unique_id),
            "userArn": c.principal.map(|p| &p.arn),
        },
        "path": c.path,
        "protocol": c.protocol,
        "requestId": c.request_id,
        "requestTime": request_time,
        "requestTimeEpoch": epoch,
        "resourceId": c.resource_id,
        "resourcePath": c.resource_path,
        "stage": c.stage,
    })
}

/// Applies `$context.responseOverride.*` to a method response.
pub fn apply_response_overrides(
    overrides: &Overrides,
    status: &mut ::http::StatusCode,
    headers: &mut HeaderMap,
) {
    if let Some(s) = overrides
        .status
        .and_then(|s| ::http::StatusCode::from_u16(s).ok())
    {
        *status = s;
    }
    for (name, value) in &overrides.response_headers {
        if let (Ok(name), Ok(value)) = (
            ::http::HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.insert(name, value);
        }
    }
}

#[cfg(test)]
mod tests;
