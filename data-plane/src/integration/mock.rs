//! `MOCK` integrations: no backend. The request template (for
//! `application/json`, or the only one) names the status as JSON
//! `{"statusCode": N}`; the integration response selected by that status
//! gives the method status, literal header mappings and a literal body.
//! Templates are literal text until VTL lands, so all of this is settled at
//! load; per request only `$context`-style header mappings are resolved.

use std::collections::BTreeMap;

use ::http::header::{CONTENT_TYPE, HeaderValue};
use ::http::{HeaderMap, Response};
use apigw_proto::gateway_response::ResponseType;
use serde_json::Value;

use super::mapping::RequestView;
use super::{IntegrationResponses, MethodAnswer, preferred_template};
use crate::body::{self, Body};
use crate::gateway_response::{GatewayError, string_map};

#[derive(Debug)]
pub struct MockIntegration {
    /// The status the request template asks for (selection input).
    status: u16,
    /// `None`: no integration response matches and none is default.
    answer: Option<MethodAnswer>,
}

impl MockIntegration {
    pub fn compile(
        integration: &Value,
        stage_variables: &BTreeMap<String, String>,
    ) -> Result<Self, String> {
        let templates = string_map(integration.get("requestTemplates"))?;
        let status = match preferred_template(&templates) {
            None => 200,
            Some((_, text)) => requested_status(text).unwrap_or_else(|| {
                tracing::warn!(
                    template = %text,
                    "MOCK request template is not literal JSON with a statusCode; using 200"
                );
                200
            }),
        };
        let responses = IntegrationResponses::compile(integration, stage_variables)?;
        let answer = responses.select(&status.to_string()).cloned();
        Ok(Self { status, answer })
    }

    pub(super) fn invoke(&self, view: &RequestView<'_>) -> Result<Response<Body>, GatewayError> {
        let Some(answer) = &self.answer else {
            tracing::warn!(
                api_id = view.context.api_id,
                stage = view.context.stage,
                resource = view.context.resource_path,
                mock_status = self.status,
                "Execution failed due to configuration error: No match for output mapping and no default output mapping configured"
            );
            return Err(GatewayError::new(ResponseType::ApiConfigurationError));
        };
        let mut headers = HeaderMap::new();
        let body = match &answer.template {
            Some((content_type, text)) => {
                headers.insert(CONTENT_TYPE, content_type.clone());
                body::full(text.clone())
            }
            None => {
                headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                body::empty()
            }
        };
        answer.apply_headers(&mut headers, view, None);
        let mut response = Response::new(body);
        *response.status_mut() = answer.status;
        *response.headers_mut() = headers;
        Ok(response)
    }
}

/// `{"statusCode": 404}` or `{"statusCode": "404"}` → 404.
fn requested_status(template: &str) -> Option<u16> {
    let value: Value = serde_json::from_str(template).ok()?;
    match value.get("statusCode")? {
        Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn status_comes_from_the_request_template() {
        assert_eq!(requested_status(r#"{"statusCode": 404}"#), Some(404));
        assert_eq!(requested_status(r#"{"statusCode": "201"}"#), Some(201));
        assert_eq!(requested_status("#if(1) {} #end"), None);
        let mock = MockIntegration::compile(
            &json!({
                "requestTemplates": {"text/plain": "{\"statusCode\": 404}"},
                "integrationResponses": {
                    "200": {"statusCode": "200"},
                    "404": {"statusCode": "404", "selectionPattern": "404",
                            "responseTemplates": {"application/json": "{\"missing\":true}"}}
                }
            }),
            &BTreeMap::new(),
        )
        .unwrap();
        assert_eq!(mock.status, 404);
        let answer = mock.answer.unwrap();
        assert_eq!(answer.status.as_u16(), 404);
        assert_eq!(answer.template.unwrap().1.as_ref(), b"{\"missing\":true}");
    }
}
