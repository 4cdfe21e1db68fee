//! Integrations: what a matched route calls, by `methodIntegration.type`,
//! compiled from AWS's `Method` JSON when a stage loads.
//!
//! - `HTTP_PROXY` and `HTTP` ([`http`]): a backend call through the shared
//!   pooled client, within `timeoutInMillis`.
//! - `MOCK` ([`mock`]): an answer built from the integration responses.
//! - `AWS_PROXY` and `AWS` with a Lambda function ([`lambda`]): an Invoke
//!   call; the event and answer formats are in [`proxy_event`]. Other AWS
//!   services: not yet — 500 `API_CONFIGURATION_ERROR`.
//!
//! Integration responses (the `HTTP` and `MOCK` way back) are selected by
//! `selectionPattern`, a regex over the status code matched in full,
//! compiled here; the one without a pattern is the default. Mapping
//! templates (request and response) render through [`crate::transform`].

pub mod http;
pub mod lambda;
pub mod mapping;
pub mod mock;
pub mod proxy_event;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use ::http::header::HeaderValue;
use ::http::{HeaderMap, HeaderName, Method, Response, StatusCode};
use apigw_proto::gateway_response::ResponseType;
use bytes::Bytes;
use regex::Regex;
use serde_json::Value;
use tokio::time::Sleep;

use crate::binary::ContentHandling;
use crate::body::Body;
use crate::gateway_response::{GatewayError, parse_status, string_map};
use crate::transform::{self, Inputs, ResponseTemplates};
use mapping::{RequestView, ResponseView, Side, ValueSource};

pub use self::http::{BackendClient, HttpIntegration, backend_client};
pub use lambda::{LambdaClient, LambdaCredentials, LambdaIntegration, LambdaSettings};
pub use mock::MockIntegration;

/// AWS's default (and, for REST, maximum) integration timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(29_000);

/// A route's integration, ready to call.
#[derive(Debug)]
pub enum Integration {
    Http(HttpIntegration),
    Mock(MockIntegration),
    Lambda(Box<LambdaIntegration>),
    /// Valid configuration we cannot serve (yet): every call answers 500
    /// `API_CONFIGURATION_ERROR` and logs `reason`.
    Unavailable {
        reason: Box<str>,
    },
}

/// One request, as an integration sees it.
#[derive(Debug)]
pub struct Call<'a> {
    pub view: &'a RequestView<'a>,
    pub method: &'a Method,
    pub headers: &'a HeaderMap,
    pub body: Bytes,
    pub client: &'a BackendClient,
    /// The caller's end of the connection, for `X-Forwarded-*`.
    pub caller: &'a Forwarded,
    /// The connection's timer for `timeoutInMillis`.
    pub timer: &'a CallTimer,
}

/// A connection's timer for its integration calls, re-armed for each call:
/// tokio moves a registered timer to a later deadline with one atomic
/// update, where `tokio::time::timeout` per call would insert an entry into
/// the timer wheel and remove it again. Calls that overlap (HTTP/2 streams)
/// make their own timer.
///
/// Between calls the timer stays armed at the last call's deadline; when
/// that passes it wakes the connection's task once, for nothing.
#[derive(Debug, Default)]
pub struct CallTimer(Mutex<Option<Pin<Box<Sleep>>>>);

impl CallTimer {
    /// `call`'s output, or `None` once `limit` has passed since `started`
    /// (as `tokio::time::timeout(limit, call)` would, called at `started`:
    /// `call` is polled before the timer). The caller's clock reading is
    /// reused: it times the call too.
    pub fn within<F: Future>(
        &self,
        started: std::time::Instant,
        limit: Duration,
        call: F,
    ) -> Within<'_, F> {
        let deadline = tokio::time::Instant::from_std(started) + limit;
        let sleep = match self.0.lock().ok().and_then(|mut slot| slot.take()) {
            Some(mut sleep) => {
                sleep.as_mut().reset(deadline);
                sleep
            }
            None => Box::pin(tokio::time::sleep_until(deadline)),
        };
        Within {
            call,
            lease: TimerLease {
                slot: &self.0,
                sleep: Some(sleep),
            },
        }
    }
}

pin_project_lite::pin_project! {
    /// [`CallTimer::within`]'s future. A struct rather than an `async fn`:
    /// the call's future (a whole request) is moved once less.
    pub struct Within<'a, F> {
        #[pin]
        call: F,
        lease: TimerLease<'a>,
    }
}

impl<F: Future> Future for Within<'_, F> {
    type Output = Option<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(output) = this.call.poll(cx) {
            return Poll::Ready(Some(output));
        }
        match this.lease.sleep.as_mut().map(|s| s.as_mut().poll(cx)) {
            Some(Poll::Ready(())) => Poll::Ready(None),
            _ => Poll::Pending,
        }
    }
}

/// A [`CallTimer`]'s timer while a call uses it; given back however the
/// call ends (a dropped request too).
struct TimerLease<'a> {
    slot: &'a Mutex<Option<Pin<Box<Sleep>>>>,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl Drop for TimerLease<'_> {
    fn drop(&mut self) {
        if let Ok(mut slot) = self.slot.lock()
            && slot.is_none()
        {
            *slot = self.sleep.take();
        }
    }
}

/// The caller's end of a connection, formatted once per connection for the
/// `X-Forwarded-*` headers integrations add.
#[derive(Debug, Clone)]
pub struct Forwarded {
    /// The caller's IP address.
    pub ip: Box<str>,
    /// The port the caller connected to.
    pub local_port: u16,
    /// `X-Forwarded-For`, `-Proto` and `-Port` for a backend, encoded as
    /// header lines (the For line first).
    pub lines: Box<[u8]>,
    /// Where the For line ends in `lines`.
    pub for_line_end: usize,
}

impl Forwarded {
    pub fn new(ip: &str, local_port: u16) -> Self {
        let for_line = format!("x-forwarded-for: {ip}\r\n");
        let lines =
            format!("{for_line}x-forwarded-proto: http\r\nx-forwarded-port: {local_port}\r\n");
        Self {
            ip: ip.into(),
            local_port,
            lines: lines.into_bytes().into(),
            for_line_end: for_line.len(),
        }
    }
}

/// Clients a node shares between the integrations it compiles.
#[derive(Debug, Clone, Default)]
pub struct Services {
    /// `None`: Lambda integrations answer 500 (a node built without one).
    pub lambda: Option<Arc<LambdaClient>>,
    /// Region and trusted headers for method authorization.
    pub auth: crate::auth::AuthSettings,
}

/// What an integration compiles against besides its method: the stage's
/// snapshot and the node's clients.
#[derive(Debug, Clone, Copy)]
pub struct StageEnv<'a> {
    pub stage_variables: &'a BTreeMap<String, String>,
    /// The API's account: the only one whose functions it may invoke.
    pub account_id: &'a str,
    pub binary_media_types: &'a [String],
    pub services: &'a Services,
}

impl Integration {
    /// Compiles `route.method` (AWS's `Method` JSON) for a stage whose
    /// variables are `stage_variables`, with no account and no clients
    /// (Lambda integrations are then unavailable). See [`Self::compile_in`].
    pub fn compile(
        method: &Value,
        stage_variables: &BTreeMap<String, String>,
    ) -> Result<Self, String> {
        Self::compile_in(
            method,
            &StageEnv {
                stage_variables,
                account_id: "",
                binary_media_types: &[],
                services: &Services::default(),
            },
        )
    }

    /// Compiles `route.method` for the stage `env` describes. An `Err` is a
    /// snapshot we must refuse.
    pub fn compile_in(method: &Value, env: &StageEnv<'_>) -> Result<Self, String> {
        let stage_variables = env.stage_variables;
        let Some(integration) = method.get("methodIntegration").filter(|v| !v.is_null()) else {
            return Ok(Self::unavailable("the method has no integration"));
        };
        let kind = integration
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("");
        // A template that does not parse breaks this route only (see crate::transform).
        if !kind.ends_with("_PROXY")
            && let Some(reason) = crate::transform::first_parse_error(integration)
        {
            tracing::warn!(%reason, "mapping template refused; the route answers 500");
            return Ok(Self::unavailable(&reason));
        }
        match kind {
            "HTTP_PROXY" => HttpIntegration::compile(integration, true, env),
            "HTTP" => HttpIntegration::compile(integration, false, env),
            "MOCK" => MockIntegration::compile(integration, stage_variables).map(Self::Mock),
            "AWS_PROXY" => LambdaIntegration::compile(integration, true, env),
            "AWS" => LambdaIntegration::compile(integration, false, env),
            other => Err(format!("unknown integration type {other:?}")),
        }
    }

    pub(crate) fn unavailable(reason: &str) -> Self {
        Self::Unavailable {
            reason: reason.into(),
        }
    }

    /// The integration's answer, or the gateway error to answer instead.
    /// `integration_latency` receives the time spent in the backend call.
    pub async fn invoke(
        &self,
        call: Call<'_>,
        integration_latency: &mut Option<Duration>,
    ) -> Result<Response<Body>, GatewayError> {
        match self {
            Self::Http(http) => http.invoke(call, integration_latency).await,
            Self::Mock(mock) => mock.invoke(call.view, &call.body),
            Self::Lambda(lambda) => lambda.invoke(call, integration_latency).await,
            Self::Unavailable { reason } => {
                tracing::warn!(
                    api_id = call.view.context.api_id,
                    stage = call.view.context.stage,
                    resource = call.view.context.resource_path,
                    %reason,
                    "integration unavailable"
                );
                Err(GatewayError::new(ResponseType::ApiConfigurationError))
            }
        }
    }
}

/// A method response an integration response selects: status, header
/// mappings, response templates and `contentHandling`.
#[derive(Debug, Clone)]
pub struct MethodAnswer {
    pub status: StatusCode,
    pub headers: Vec<(HeaderName, ValueSource)>,
    /// Whether a header mapping or a template reads the integration's body.
    pub needs_body: bool,
    pub templates: ResponseTemplates,
    pub content_handling: ContentHandling,
}

impl MethodAnswer {
    /// Sets the mapped headers on `out`.
    pub fn apply_headers(
        &self,
        out: &mut HeaderMap,
        request: &RequestView<'_>,
        response: Option<&ResponseView<'_>>,
    ) {
        for (name, source) in &self.headers {
            if let Some(value) = source.resolve(request, response)
                && let Ok(value) = HeaderValue::from_str(&value)
            {
                out.insert(name.clone(), value);
            }
        }
    }

    /// The method response for an integration's buffered answer `body`
    /// (whose headers are `backend`'s): `contentHandling`, header mappings,
    /// then the response template for the caller's `Accept` with its
    /// `responseOverride`. No template: the body passes through, with
    /// `content_type` (the integration's) if any.
    pub fn finish(
        &self,
        inputs: &Inputs<'_>,
        backend_headers: &HeaderMap,
        body: Bytes,
        content_type: Option<HeaderValue>,
    ) -> Result<Response<Body>, GatewayError> {
        let view = inputs.view;
        let mut headers = HeaderMap::new();
        if let Some(ct) = content_type {
            headers.insert(::http::header::CONTENT_TYPE, ct);
        }
        let backend = ResponseView {
            headers: backend_headers,
            body: Some(&body),
        };
        self.apply_headers(&mut headers, view, Some(&backend));
        let mut status = self.status;
        let template = match self.content_handling {
            ContentHandling::ConvertToBinary => None,
            _ => self.templates.select(view.headers),
        };
        let body = crate::binary::convert_response(body, self.content_handling)?;
        let body = match template {
            None => body,
            Some(t) => {
                let rendered = inputs.render(&t.template, &body)?;
                headers.insert(::http::header::CONTENT_TYPE, t.header.clone());
                transform::apply_response_overrides(&rendered.overrides, &mut status, &mut headers);
                Bytes::from(rendered.body)
            }
        };
        let mut response = Response::new(crate::body::full(body));
        *response.status_mut() = status;
        *response.headers_mut() = headers;
        Ok(response)
    }
}

/// `integrationResponses`, compiled.
#[derive(Debug, Clone, Default)]
pub struct IntegrationResponses {
    patterned: Vec<(Regex, MethodAnswer)>,
    default: Option<MethodAnswer>,
}

impl IntegrationResponses {
    pub fn compile(
        integration: &Value,
        stage_variables: &BTreeMap<String, String>,
    ) -> Result<Self, String> {
        let mut compiled = Self::default();
        let Some(responses) = integration
            .get("integrationResponses")
            .filter(|v| !v.is_null())
        else {
            return Ok(compiled);
        };
        let responses = responses
            .as_object()
            .ok_or("integrationResponses is not an object")?;
        for (key, response) in responses {
            let at = |e: String| format!("integration response {key}: {e}");
            let status = parse_status(
                response
                    .get("statusCode")
                    .unwrap_or(&Value::String(key.clone())),
            )
            .map_err(at)?;
            let mut headers = Vec::new();
            for (target, expr) in string_map(response.get("responseParameters")).map_err(at)? {
                let name = target
                    .strip_prefix("method.response.header.")
                    .ok_or_else(|| at(format!("invalid response parameter {target:?}")))?;
                let source = ValueSource::parse(expr, Side::IntegrationResponse, stage_variables)
                    .map_err(at)?;
                headers.push((mapping::header_name(name).map_err(at)?, source));
            }
            let templates = ResponseTemplates::compile(response).map_err(at)?;
            let content_handling =
                ContentHandling::parse(response.get("contentHandling")).map_err(at)?;
            let answer = MethodAnswer {
                status,
                needs_body: !templates.is_empty()
                    || content_handling != ContentHandling::Passthrough
                    || headers.iter().any(|(_, s)| s.needs_response_body()),
                headers,
                templates,
                content_handling,
            };
            match response.get("selectionPattern").and_then(Value::as_str) {
                Some(pattern) if !pattern.is_empty() => {
                    let regex = Regex::new(&format!("^(?:{pattern})$"))
                        .map_err(|e| at(format!("invalid selectionPattern: {e}")))?;
                    compiled.patterned.push((regex, answer));
                }
                _ => {
                    if compiled.default.is_none() {
                        compiled.default = Some(answer);
                    }
                }
            }
        }
        Ok(compiled)
    }

    /// The response whose pattern matches `selector` in full, else the default.
    pub fn select(&self, selector: &str) -> Option<&MethodAnswer> {
        self.patterned
            .iter()
            .find(|(regex, _)| regex.is_match(selector))
            .map(|(_, answer)| answer)
            .or(self.default.as_ref())
    }
}

/// `timeoutInMillis`, default 29 s.
fn timeout(integration: &Value) -> Result<Duration, String> {
    match integration.get("timeoutInMillis") {
        None | Some(Value::Null) => Ok(DEFAULT_TIMEOUT),
        Some(v) => v
            .as_u64()
            .filter(|ms| *ms > 0)
            .map(Duration::from_millis)
            .ok_or_else(|| format!("invalid timeoutInMillis {v}")),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[tokio::test]
    async fn a_reused_call_timer_keeps_each_calls_own_deadline() {
        let timer = CallTimer::default();
        // A quick call leaves the timer armed 30 s out...
        assert_eq!(
            timer
                .within(std::time::Instant::now(), Duration::from_secs(30), async {
                    7
                })
                .await,
            Some(7)
        );
        // ...and a later call with a shorter limit still times out on time.
        let started = std::time::Instant::now();
        let slow = tokio::time::sleep(Duration::from_secs(5));
        assert_eq!(
            timer
                .within(std::time::Instant::now(), Duration::from_millis(50), slow)
                .await,
            None
        );
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(50), "{waited:?}");
        assert!(waited < Duration::from_secs(2), "{waited:?}");
        // A timer that fired serves the next call, which gets its full limit.
        let answer = async {
            tokio::time::sleep(Duration::from_millis(80)).await;
            "ok"
        };
        assert_eq!(
            timer
                .within(std::time::Instant::now(), Duration::from_secs(5), answer)
                .await,
            Some("ok")
        );
        // Overlapping calls (HTTP/2 streams) each have a timer.
        let (a, b) = tokio::join!(
            timer.within(
                std::time::Instant::now(),
                Duration::from_millis(40),
                std::future::pending::<()>()
            ),
            timer.within(std::time::Instant::now(), Duration::from_secs(5), async {
                1
            }),
        );
        assert_eq!((a, b), (None, Some(1)));
    }

    #[test]
    fn selection_is_a_full_match_with_a_default() {
        let integration = json!({"integrationResponses": {
            "200": {"statusCode": "200"},
            "400": {"statusCode": "400", "selectionPattern": "4\\d{2}"},
            "502": {"statusCode": "502", "selectionPattern": "5.*|2"}
        }});
        let responses = IntegrationResponses::compile(&integration, &BTreeMap::new()).unwrap();
        let status = |s: &str| responses.select(s).map(|a| a.status.as_u16());
        assert_eq!(status("404"), Some(400));
        assert_eq!(status("4000"), Some(200));
        assert_eq!(status("503"), Some(502));
        assert_eq!(status("201"), Some(200));
        let none = IntegrationResponses::compile(
            &json!({"integrationResponses": {"400": {"statusCode": "400", "selectionPattern": "4.."}}}),
            &BTreeMap::new(),
        )
        .unwrap();
        assert!(none.select("200").is_none());
    }

    #[test]
    fn refuses_what_it_cannot_compile() {
        let vars = BTreeMap::new();
        for bad in [
            json!({"methodIntegration": {"type": "SOAP"}}),
            json!({"methodIntegration": {"type": "MOCK", "integrationResponses": {"200": {"statusCode": "200", "selectionPattern": "("}}}}),
            json!({"methodIntegration": {"type": "MOCK", "integrationResponses": {"x": {"statusCode": "abc"}}}}),
            json!({"methodIntegration": {"type": "HTTP_PROXY", "httpMethod": "GET", "uri": "http://h/{unclosed"}}),
            json!({"methodIntegration": {"type": "HTTP", "httpMethod": "GET", "uri": "http://h/", "requestParameters": {"integration.request.header.x": "nope"}}}),
            json!({"methodIntegration": {"type": "HTTP", "httpMethod": "GET", "uri": "http://h/", "timeoutInMillis": -1}}),
            json!({"methodIntegration": {"type": "HTTP", "httpMethod": "GET", "uri": "http://h/", "passthroughBehavior": "ALWAYS"}}),
            json!({"methodIntegration": {"type": "HTTP", "httpMethod": "GET", "uri": "http://h/", "contentHandling": "CONVERT"}}),
        ] {
            assert!(Integration::compile(&bad, &vars).is_err(), "{bad}");
        }
        for unavailable in [
            json!({}),
            json!({"methodIntegration": {"type": "AWS_PROXY", "uri": "arn:..."}}),
            json!({"methodIntegration": {"type": "HTTP_PROXY", "httpMethod": "GET", "uri": "https://secure/"}}),
            json!({"methodIntegration": {"type": "HTTP_PROXY", "httpMethod": "GET", "uri": "http://${stageVariables.missing}/x"}}),
            // A mapping template that does not parse breaks its route only.
            json!({"methodIntegration": {"type": "HTTP", "httpMethod": "GET", "uri": "http://h/", "requestTemplates": {"application/json": "#if($x)"}}}),
            json!({"methodIntegration": {"type": "MOCK", "integrationResponses": {"200": {"statusCode": "200", "responseTemplates": {"application/json": "#foreach($a in)#end"}}}}}),
        ] {
            assert!(
                matches!(
                    Integration::compile(&unavailable, &vars),
                    Ok(Integration::Unavailable { .. })
                ),
                "{unavailable}"
            );
        }
    }
}
