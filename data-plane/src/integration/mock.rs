//! `MOCK` integrations: no backend. The request template (chosen by
//! `Content-Type` like any request template, §5.2) renders per request and
//! names the status as JSON `{"statusCode": N}`; the integration response
//! selected by that status gives the method status, header mappings and the
//! response template. A mock has no payload, so response templates see an
//! empty body (`$input.body` is `{}`), and without one the answer is empty.

use std::collections::BTreeMap;

use ::http::header::HeaderValue;
use ::http::{HeaderMap, Response};
use apigw_proto::gateway_response::ResponseType;
use bytes::Bytes;
use serde_json::Value;

use super::mapping::RequestView;
use super::{IntegrationResponses, MethodAnswer};
use crate::body::Body;
use crate::gateway_response::GatewayError;
use crate::transform::{Inputs, RequestTemplates};

#[derive(Debug)]
pub struct MockIntegration {
    requests: RequestTemplates,
    responses: IntegrationResponses,
    stage_variables: BTreeMap<String, String>,
}

impl MockIntegration {
    pub fn compile(
        integration: &Value,
        stage_variables: &BTreeMap<String, String>,
    ) -> Result<Self, String> {
        Ok(Self {
            requests: RequestTemplates::compile(integration)?,
            responses: IntegrationResponses::compile(integration, stage_variables)?,
            stage_variables: stage_variables.clone(),
        })
    }

    pub(super) fn invoke(
        &self,
        view: &RequestView<'_>,
        body: &[u8],
    ) -> Result<Response<Body>, GatewayError> {
        let inputs = Inputs {
            view,
            stage_variables: &self.stage_variables,
        };
        let status = match self.requests.for_mock(view.headers)? {
            None => 200,
            Some(t) => {
                let rendered = inputs.render(&t.template, body)?;
                requested_status(&rendered.body).unwrap_or_else(|| {
                    tracing::warn!(
                        api_id = view.context.api_id,
                        resource = view.context.resource_path,
                        output = %rendered.body,
                        "MOCK request template output has no statusCode; using 200"
                    );
                    200
                })
            }
        };
        let Some(answer) = self.answer(status) else {
            tracing::warn!(
                api_id = view.context.api_id,
                stage = view.context.stage,
                resource = view.context.resource_path,
                mock_status = status,
                "Execution failed due to configuration error: No match for output mapping and no default output mapping configured"
            );
            return Err(GatewayError::new(ResponseType::ApiConfigurationError));
        };
        answer.finish(
            &inputs,
            &HeaderMap::new(),
            Bytes::new(),
            Some(HeaderValue::from_static("application/json")),
        )
    }

    fn answer(&self, status: u16) -> Option<&MethodAnswer> {
        self.responses.select(&status.to_string())
    }
}

/// `{"statusCode": 404}` or `{"statusCode": "404"}` → 404.
fn requested_status(output: &str) -> Option<u16> {
    let value: Value = serde_json::from_str(output).ok()?;
    match value.get("statusCode")? {
        Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::integration::mapping::RequestContext;

    async fn call(
        mock: &MockIntegration,
        headers: &HeaderMap,
        query: &str,
    ) -> (u16, HeaderMap, String) {
        use http_body_util::BodyExt;
        let view = RequestView {
            headers,
            raw_query: Some(query),
            path_parameters: None,
            context: RequestContext {
                request_id: "rid-1",
                ..Default::default()
            },
        };
        let response = mock.invoke(&view, b"").map_err(|e| e.kind).unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, headers, String::from_utf8(body.to_vec()).unwrap())
    }

    #[test]
    fn status_comes_from_the_rendered_request_template() {
        assert_eq!(requested_status(r#"{"statusCode": 404}"#), Some(404));
        assert_eq!(requested_status(r#"{"statusCode": "201"}"#), Some(201));
        assert_eq!(requested_status("#if(1) {} #end"), None);
    }

    #[tokio::test]
    async fn templates_select_and_render() {
        let mock = MockIntegration::compile(
            &json!({
                "requestTemplates": {"application/json":
                    "#if($input.params('missing') == 'yes'){\"statusCode\": 404}#else{\"statusCode\": 200}#end"},
                "integrationResponses": {
                    "200": {"statusCode": "200", "responseTemplates": {
                        "application/json": "{\"id\": \"$context.requestId\", \"q\": \"$input.params('q')\"}",
                        "text/plain": "q=$input.params('q')"}},
                    "404": {"statusCode": "404", "selectionPattern": "404",
                            "responseTemplates": {"application/json":
                                "#set($context.responseOverride.status = 410)#set($context.responseOverride.header.X-Why = \"gone\"){\"missing\":true}"}}
                }
            }),
            &BTreeMap::new(),
        )
        .unwrap();
        let mut headers = HeaderMap::new();
        let (status, h, body) = call(&mock, &headers, "q=a+b").await;
        assert_eq!(
            (status, body.as_str()),
            (200, r#"{"id": "rid-1", "q": "a b"}"#)
        );
        assert_eq!(h["content-type"], "application/json");
        headers.insert("accept", HeaderValue::from_static("text/plain"));
        let (_, h, body) = call(&mock, &headers, "q=x").await;
        assert_eq!(
            (body.as_str(), &h["content-type"]),
            ("q=x", &HeaderValue::from_static("text/plain"))
        );
        let (status, h, body) = call(&mock, &HeaderMap::new(), "missing=yes").await;
        assert_eq!((status, body.as_str()), (410, r#"{"missing":true}"#));
        assert_eq!(h["x-why"], "gone");
    }

    #[test]
    fn never_refuses_unmapped_content_types() {
        let mock = MockIntegration::compile(
            &json!({
                "passthroughBehavior": "NEVER",
                "requestTemplates": {"application/json": "{\"statusCode\": 200}"},
                "integrationResponses": {"200": {"statusCode": "200"}}
            }),
            &BTreeMap::new(),
        )
        .unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("text/xml"));
        let view = RequestView {
            headers: &headers,
            raw_query: None,
            path_parameters: None,
            context: RequestContext::default(),
        };
        assert_eq!(
            mock.invoke(&view, b"<a/>").unwrap_err().kind,
            ResponseType::UnsupportedMediaType
        );
    }
}
