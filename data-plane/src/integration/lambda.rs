//! Lambda integrations: `AWS_PROXY` and `AWS` whose uri is
//! `arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{functionArn}/invocations`.
//!
//! - [`LambdaClient`]: Lambda's `Invoke` API (reference §4.4) on a
//!   configurable endpoint (AWS by default, per account if set), SigV4-signed
//!   with `aws-sigv4` (service `lambda`, the function's region), over one
//!   pooled keep-alive client (HTTP and HTTPS).
//! - [`LambdaIntegration`]: compiled once per route when a stage loads (URI,
//!   function ARN, endpoint, stage variables all resolved then), called per
//!   request within `timeoutInMillis`.
//!
//! Answers (reference §2.4, decisions.md): the function's proxy answer; a
//! function error or a malformed answer → 502 `{"message": "Internal server
//! error"}`; Lambda refusing the call (missing function, throttling, bad
//! key) or being unreachable → 500 with the same body; the integration
//! timeout → 504 `INTEGRATION_TIMEOUT`. A function of another account than
//! the API's is never called (500, like AWS's permission failure).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use ::http::header::{self, HeaderValue};
use ::http::{HeaderMap, HeaderName, Method, Request, Response, StatusCode, Uri};
use apigw_proto::gateway_response::ResponseType;
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;

use super::mapping::{RequestView, Side, ValueSource, header_name};
use super::proxy_event::{self, BinaryMediaTypes, ProxyRequest};
use super::{Call, Integration, IntegrationResponses, StageEnv, timeout};
use crate::binary::ContentHandling;
use crate::body::{self, Body};
use crate::gateway_response::{GatewayError, X_AMZN_ERROR_TYPE, string_map};
use crate::transform::{Inputs, RequestPlan, RequestTemplates};

/// Where and as whom the data plane calls Lambda's Invoke API.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LambdaSettings {
    /// Endpoint for every account not in `endpoints_by_account`, e.g.
    /// `http://127.0.0.1:8081`. `None`: AWS, `https://lambda.{region}.amazonaws.com`.
    pub default_endpoint: Option<String>,
    /// Account id → endpoint, for tenants whose functions live elsewhere.
    pub endpoints_by_account: BTreeMap<String, String>,
    /// `None`: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and
    /// `AWS_SESSION_TOKEN` from the environment, read when the client is built.
    pub credentials: Option<LambdaCredentials>,
}

/// The key Invoke requests are signed with.
#[derive(Clone, PartialEq, Eq)]
pub struct LambdaCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for LambdaCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LambdaCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl LambdaCredentials {
    /// The standard `AWS_*` variables, if both key parts are set.
    pub fn from_env() -> Option<Self> {
        let var = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
        Some(Self {
            access_key_id: var("AWS_ACCESS_KEY_ID")?,
            secret_access_key: var("AWS_SECRET_ACCESS_KEY")?,
            session_token: var("AWS_SESSION_TOKEN"),
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LambdaConfigError {
    #[error("invalid Lambda endpoint {endpoint:?}: {reason}")]
    Endpoint { endpoint: String, reason: String },
}

/// Why an Invoke call produced no function answer.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("no credentials to sign Invoke requests with")]
    NoCredentials,
    #[error("could not sign the Invoke request: {0}")]
    Signing(String),
    #[error("Lambda unreachable: {0}")]
    Transport(String),
    #[error("Lambda answered {status} {error_type}: {message}")]
    Service {
        status: StatusCode,
        error_type: String,
        message: String,
    },
}

/// Lambda's answer to one Invoke call that reached the function.
#[derive(Debug, Clone)]
pub struct Invoked {
    pub status: StatusCode,
    /// `X-Amz-Function-Error` (`Unhandled`, `Handled`): the function failed
    /// and `body` is its `{"errorMessage", "errorType", …}`.
    pub function_error: Option<String>,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// A parsed `arn:{partition}:lambda:{region}:{account}:function:{name}[:{qualifier}]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionArn {
    pub partition: String,
    pub region: String,
    pub account: String,
    pub name: String,
    pub qualifier: Option<String>,
}

impl FunctionArn {
    pub fn parse(arn: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("invalid function ARN {arn:?}: {why}");
        let parts: Vec<&str> = arn.split(':').collect();
        let [
            prefix,
            partition,
            service,
            region,
            account,
            kind,
            name,
            rest @ ..,
        ] = parts.as_slice()
        else {
            return Err(bad(
                "expected arn:aws:lambda:{region}:{account}:function:{name}",
            ));
        };
        if *prefix != "arn" || *service != "lambda" || *kind != "function" {
            return Err(bad(
                "expected arn:aws:lambda:{region}:{account}:function:{name}",
            ));
        }
        if partition.is_empty()
            || !partition
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'-')
        {
            return Err(bad("bad partition"));
        }
        if region.is_empty()
            || !region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(bad("bad region"));
        }
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("the account is not 12 digits"));
        }
        let name_ok = |s: &str, extra: &[u8]| {
            !s.is_empty()
                && s.len() <= 128
                && s.bytes().all(|b| {
                    b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || extra.contains(&b)
                })
        };
        if !name_ok(name, b"") || name.len() > 64 {
            return Err(bad("bad function name"));
        }
        let qualifier = match rest {
            [] => None,
            [q] if name_ok(q, b"$") => Some((*q).to_string()),
            _ => return Err(bad("bad qualifier")),
        };
        Ok(Self {
            partition: (*partition).to_string(),
            region: (*region).to_string(),
            account: (*account).to_string(),
            name: (*name).to_string(),
            qualifier,
        })
    }
}

impl std::fmt::Display for FunctionArn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "arn:{}:lambda:{}:{}:function:{}",
            self.partition, self.region, self.account, self.name
        )?;
        if let Some(q) = &self.qualifier {
            write!(f, ":{q}")?;
        }
        Ok(())
    }
}

/// What an integration uri addresses, once stage variables are substituted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AwsUri {
    /// `…:lambda:path/2015-03-31/functions/{functionArn}/invocations`.
    Lambda(FunctionArn),
    /// Another AWS service (`…:s3:path/…`, `…:sqs:action/…`): not served yet.
    OtherService(String),
}

impl AwsUri {
    pub fn parse(uri: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("invalid AWS integration uri {uri:?}: {why}");
        let mut parts = uri.splitn(6, ':');
        let (
            Some("arn"),
            Some(_partition),
            Some("apigateway"),
            Some(_region),
            Some(service),
            Some(rest),
        ) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        )
        else {
            return Err(bad(
                "expected arn:aws:apigateway:{region}:{service}:{path|action}/…",
            ));
        };
        if service != "lambda" {
            return Ok(Self::OtherService(service.to_string()));
        }
        let function = rest
            .strip_prefix("path/2015-03-31/functions/")
            .and_then(|r| r.strip_suffix("/invocations"))
            .ok_or_else(|| bad("expected path/2015-03-31/functions/{functionArn}/invocations"))?;
        FunctionArn::parse(function).map(Self::Lambda)
    }
}

/// Replaces `${stageVariables.x}` with the variable (empty when undefined,
/// as AWS does; the ARN check then refuses the result).
pub fn substitute_stage_variables(
    text: &str,
    vars: &BTreeMap<String, String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("${") {
        out.push_str(&rest[..at]);
        let end = rest[at..]
            .find('}')
            .ok_or_else(|| format!("unclosed ${{ in {text:?}"))?;
        let name = &rest[at + 2..at + end];
        let var = name
            .strip_prefix("stageVariables.")
            .ok_or_else(|| format!("unsupported variable ${{{name}}} in {text:?}"))?;
        out.push_str(vars.get(var).map_or("", String::as_str));
        rest = &rest[at + end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Everything but unreserved characters: a URI label (the function ARN).
const LABEL: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Largest Invoke answer read (Lambda's own cap is 6 MB).
const MAX_INVOKE_RESPONSE: usize = 10 * 1024 * 1024;

type HttpsClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// One Invoke request target, resolved at compile time.
#[derive(Debug, Clone)]
pub struct InvokeTarget {
    pub function: FunctionArn,
    /// `{endpoint}/2015-03-31/functions/{urlencoded ARN}/invocations`.
    pub uri: Uri,
    host: HeaderValue,
}

/// Lambda's Invoke API: one per node, shared by every Lambda integration.
pub struct LambdaClient {
    http: HttpsClient,
    default_endpoint: Option<Box<str>>,
    endpoints_by_account: BTreeMap<String, Box<str>>,
    credentials: Option<Credentials>,
}

impl std::fmt::Debug for LambdaClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LambdaClient")
            .field("default_endpoint", &self.default_endpoint)
            .field("endpoints_by_account", &self.endpoints_by_account)
            .field(
                "access_key_id",
                &self.credentials.as_ref().map(|c| c.access_key_id()),
            )
            .finish()
    }
}

fn endpoint(raw: &str) -> Result<Box<str>, LambdaConfigError> {
    let bad = |reason: &str| LambdaConfigError::Endpoint {
        endpoint: raw.to_string(),
        reason: reason.to_string(),
    };
    let uri: Uri = raw.parse().map_err(|_| bad("not a URL"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err(bad("the scheme must be http or https")),
    }
    if uri.authority().is_none() || uri.query().is_some() {
        return Err(bad("expected scheme://host[:port][/path]"));
    }
    Ok(raw.trim_end_matches('/').into())
}

impl LambdaClient {
    pub fn new(settings: &LambdaSettings) -> Result<Self, LambdaConfigError> {
        let default_endpoint = settings
            .default_endpoint
            .as_deref()
            .map(endpoint)
            .transpose()?;
        let endpoints_by_account = settings
            .endpoints_by_account
            .iter()
            .map(|(account, url)| Ok((account.clone(), endpoint(url)?)))
            .collect::<Result<_, LambdaConfigError>>()?;
        let credentials = settings
            .credentials
            .clone()
            .or_else(LambdaCredentials::from_env)
            .map(|c| {
                Credentials::new(
                    c.access_key_id,
                    c.secret_access_key,
                    c.session_token,
                    None,
                    "apigw",
                )
            });
        // ring explicitly: no process-wide default provider is assumed.
        let tls = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
            .map_err(|e| LambdaConfigError::Endpoint {
                endpoint: "(TLS)".into(),
                reason: e.to_string(),
            })?
            .https_or_http()
            .enable_http1()
            .wrap_connector({
                let mut http = HttpConnector::new();
                http.set_nodelay(true);
                http.enforce_http(false);
                http
            });
        let http = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .build(tls);
        Ok(Self {
            http,
            default_endpoint,
            endpoints_by_account,
            credentials,
        })
    }

    /// The endpoint that serves `function`: its account's, else the
    /// configured default, else AWS's in the function's region.
    pub fn endpoint_for(&self, function: &FunctionArn) -> Cow<'_, str> {
        match self
            .endpoints_by_account
            .get(&function.account)
            .or(self.default_endpoint.as_ref())
        {
            Some(e) => Cow::Borrowed(e),
            None => {
                let domain = if function.partition == "aws-cn" {
                    "amazonaws.com.cn"
                } else {
                    "amazonaws.com"
                };
                Cow::Owned(format!("https://lambda.{}.{domain}", function.region))
            }
        }
    }

    pub fn target(&self, function: FunctionArn) -> Result<InvokeTarget, String> {
        let arn = function.to_string();
        let uri = format!(
            "{}/2015-03-31/functions/{}/invocations",
            self.endpoint_for(&function),
            utf8_percent_encode(&arn, LABEL)
        );
        let uri: Uri = uri
            .parse()
            .map_err(|e| format!("invalid Invoke URL {uri:?}: {e}"))?;
        let host = uri
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
            .ok_or_else(|| format!("Invoke URL {uri} has no host"))?;
        Ok(InvokeTarget {
            function,
            uri,
            host,
        })
    }

    /// The signed `POST …/invocations` request, as of `now`.
    pub fn signed_request(
        &self,
        target: &InvokeTarget,
        payload: Bytes,
        extra_headers: &[(HeaderName, HeaderValue)],
        now: SystemTime,
    ) -> Result<Request<Full<Bytes>>, InvokeError> {
        let credentials = self
            .credentials
            .as_ref()
            .ok_or(InvokeError::NoCredentials)?;
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(target.uri.clone())
            .body(Full::new(Bytes::new()))
            .map_err(|e| InvokeError::Signing(e.to_string()))?;
        let headers = request.headers_mut();
        headers.insert(header::HOST, target.host.clone());
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        for (name, value) in extra_headers {
            headers.insert(name.clone(), value.clone());
        }
        let identity = credentials.clone().into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(&target.function.region)
            .name("lambda")
            .time(now)
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| InvokeError::Signing(e.to_string()))?
            .into();
        let uri = target.uri.to_string();
        let signable = SignableRequest::new(
            "POST",
            uri.as_str(),
            request
                .headers()
                .iter()
                .filter_map(|(n, v)| Some((n.as_str(), v.to_str().ok()?))),
            SignableBody::Bytes(&payload),
        )
        .map_err(|e| InvokeError::Signing(e.to_string()))?;
        let (instructions, _signature) = sign(signable, &params)
            .map_err(|e| InvokeError::Signing(e.to_string()))?
            .into_parts();
        instructions.apply_to_request_http1x(&mut request);
        *request.body_mut() = Full::new(payload);
        Ok(request)
    }

    /// Invokes `target` with `payload`; the whole exchange (answer body
    /// included) is bounded by `timeout`.
    pub async fn invoke(
        &self,
        target: &InvokeTarget,
        payload: Bytes,
        extra_headers: &[(HeaderName, HeaderValue)],
        timeout: Duration,
    ) -> Result<Invoked, InvokeError> {
        let request = self.signed_request(target, payload, extra_headers, SystemTime::now())?;
        let exchange = async {
            let response = self
                .http
                .request(request)
                .await
                .map_err(|e| InvokeError::Transport(error_chain(&e)))?;
            let (parts, incoming) = response.into_parts();
            let body = Limited::new(incoming, MAX_INVOKE_RESPONSE)
                .collect()
                .await
                .map_err(|e| InvokeError::Transport(format!("reading the answer: {e}")))?
                .to_bytes();
            Ok::<_, InvokeError>((parts, body))
        };
        let (parts, body) = tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| InvokeError::Timeout(timeout))??;
        if !parts.status.is_success() {
            return Err(service_error(parts.status, &parts.headers, &body));
        }
        let function_error = parts
            .headers
            .get("x-amz-function-error")
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        Ok(Invoked {
            status: parts.status,
            function_error,
            headers: parts.headers,
            body,
        })
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// Lambda's error answer: `x-amzn-ErrorType` and `{"Type"/"message"}`.
fn service_error(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> InvokeError {
    let json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let text = |keys: &[&str]| {
        keys.iter()
            .find_map(|k| json.get(*k).and_then(Value::as_str))
            .map(str::to_string)
    };
    let error_type = headers
        .get(X_AMZN_ERROR_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(':').next().unwrap_or(v).to_string())
        .or_else(|| text(&["__type", "Type", "code"]))
        .unwrap_or_else(|| "Unknown".into());
    let message = text(&["message", "Message", "errorMessage"])
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned());
    InvokeError::Service {
        status,
        error_type,
        message,
    }
}

/// AWS's answer when a Lambda integration fails: `{"message": "Internal
/// server error"}` (with that space, as recorded) and
/// `InternalServerErrorException`; 502 for the function's fault, 500 for
/// the invocation's.
pub fn internal_error(status: StatusCode) -> Response<Body> {
    let mut response = Response::new(body::full(r#"{"message": "Internal server error"}"#));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(
        X_AMZN_ERROR_TYPE,
        HeaderValue::from_static("InternalServerErrorException"),
    );
    response
}

/// Request headers API Gateway does not pass to a proxy event (hop-by-hop
/// and framing).
fn dropped_header(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "content-length"
            | "content-md5"
            | "expect"
            | "max-forwards"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
    )
}

/// The path after the stage: `context.path` is the raw request path of
/// either invoke-URL form (`/{stage}/…` on the API's host, or
/// `/restapis/{api}/{stage}/_user_request_/…`).
pub(crate) fn path_after_stage<'p>(path: &'p str, api_id: &str, stage: &str) -> &'p str {
    let rest = path
        .strip_prefix("/restapis/")
        .and_then(|r| r.strip_prefix(api_id))
        .and_then(|r| r.strip_prefix('/'))
        .and_then(|r| r.strip_prefix(stage))
        .and_then(|r| r.strip_prefix("/_user_request_"))
        .or_else(|| {
            path.strip_prefix('/')
                .and_then(|r| r.strip_prefix(stage))
                .filter(|r| r.is_empty() || r.starts_with('/'))
        })
        .unwrap_or(path);
    if rest.is_empty() { "/" } else { rest }
}

/// `Root=1-{epoch hex}-{96 random bits}`: the `X-Amzn-Trace-Id` API
/// Gateway adds for Lambda calls.
fn trace_id(epoch_ms: u64) -> String {
    let random: u128 = rand::random();
    format!(
        "Root=1-{:08x}-{:024x}",
        epoch_ms / 1000,
        random & ((1u128 << 96) - 1)
    )
}

/// A Lambda integration, compiled.
#[derive(Debug)]
pub struct LambdaIntegration {
    proxy: bool,
    client: Arc<LambdaClient>,
    target: InvokeTarget,
    timeout: Duration,
    /// Proxy events carry them; resolved per stage, so kept per route.
    stage_variables: BTreeMap<String, String>,
    binary: BinaryMediaTypes,
    /// Non-proxy: `integration.request.header.*` mappings, sent to Invoke
    /// (`X-Amz-Invocation-Type: 'Event'` makes the call asynchronous).
    invoke_headers: Vec<(HeaderName, ValueSource)>,
    responses: IntegrationResponses,
    /// Non-proxy: the request templates and `contentHandling` that build the event.
    requests: RequestTemplates,
    content_handling: ContentHandling,
}

impl LambdaIntegration {
    /// Compiles an `AWS` or `AWS_PROXY` integration. A uri that cannot work
    /// for this stage (an unset stage variable, another account's function,
    /// a service other than Lambda) breaks this route only.
    pub fn compile(
        integration: &Value,
        proxy: bool,
        env: &StageEnv<'_>,
    ) -> Result<Integration, String> {
        let kind = if proxy { "AWS_PROXY" } else { "AWS" };
        let raw = integration
            .get("uri")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{kind} integration without a uri"))?;
        let timeout = timeout(integration)?;
        let (responses, requests) = if proxy {
            (IntegrationResponses::default(), RequestTemplates::default())
        } else {
            (
                IntegrationResponses::compile(integration, env.stage_variables)?,
                RequestTemplates::compile(integration)?,
            )
        };
        let content_handling = ContentHandling::parse(integration.get("contentHandling"))?;
        let mut invoke_headers = Vec::new();
        for (target, expr) in string_map(integration.get("requestParameters"))? {
            let source = ValueSource::parse(expr, Side::IntegrationRequest, env.stage_variables)?;
            if let Some(name) = target.strip_prefix("integration.request.header.") {
                invoke_headers.push((header_name(name)?, source));
            }
        }
        let unavailable = |why: String| Ok(Integration::unavailable(&why));
        let uri = match substitute_stage_variables(raw, env.stage_variables)
            .and_then(|u| AwsUri::parse(&u))
        {
            Ok(AwsUri::Lambda(function)) => function,
            Ok(AwsUri::OtherService(service)) => {
                return unavailable(format!(
                    "{kind} integrations with {service} are not supported yet"
                ));
            }
            Err(e) => return unavailable(e),
        };
        match integration.get("httpMethod").and_then(Value::as_str) {
            None | Some("POST") => {}
            Some(other) => {
                return unavailable(format!(
                    "Lambda integrations must use httpMethod POST, not {other}"
                ));
            }
        }
        if uri.account != env.account_id {
            return unavailable(format!(
                "Invalid permissions on Lambda function: {uri} is not in the API's account {}",
                env.account_id
            ));
        }
        let Some(client) = env.services.lambda.clone() else {
            return unavailable("this node has no Lambda client".into());
        };
        let target = match client.target(uri) {
            Ok(t) => t,
            Err(e) => return unavailable(e),
        };
        Ok(Integration::Lambda(Box::new(Self {
            proxy,
            client,
            target,
            timeout,
            stage_variables: env.stage_variables.clone(),
            binary: BinaryMediaTypes::new(env.binary_media_types),
            invoke_headers,
            responses,
            requests,
            content_handling,
        })))
    }

    pub fn function(&self) -> &FunctionArn {
        &self.target.function
    }

    pub(super) async fn invoke(
        &self,
        call: Call<'_>,
        integration_latency: &mut Option<Duration>,
    ) -> Result<Response<Body>, GatewayError> {
        let view = call.view;
        let trace = trace_id(view.context.request_time_epoch);
        let (payload, extra) = if self.proxy {
            (Bytes::from(self.event_v1(&call, &trace)), Vec::new())
        } else {
            let (payload, overridden) = self.payload(&call)?;
            let payload = if payload.is_empty() {
                Bytes::from_static(b"{}")
            } else {
                payload
            };
            let mut extra = Vec::new();
            for (name, source) in &self.invoke_headers {
                if let Some(value) = source.resolve(view, None)
                    && let Ok(value) = HeaderValue::from_str(&value)
                {
                    extra.push((name.clone(), value));
                }
            }
            // `$context.requestOverride.header.x` goes to Invoke like a mapped header.
            for (name, value) in overridden {
                if let (Ok(name), Ok(value)) = (
                    HeaderName::from_bytes(name.as_bytes()),
                    HeaderValue::from_str(&value),
                ) {
                    extra.retain(|(n, _)| *n != name);
                    extra.push((name, value));
                }
            }
            (payload, extra)
        };
        let started = Instant::now();
        let outcome = self
            .client
            .invoke(&self.target, payload, &extra, self.timeout)
            .await;
        *integration_latency = Some(started.elapsed());
        let log = |what: &str, error: &dyn std::fmt::Display| {
            tracing::warn!(
                api_id = view.context.api_id,
                stage = view.context.stage,
                resource = view.context.resource_path,
                request_id = view.context.request_id,
                function = %self.target.function,
                error = %error,
                "{what}"
            );
        };
        let invoked = match outcome {
            Ok(invoked) => invoked,
            Err(InvokeError::Timeout(_)) => {
                return Err(GatewayError::new(ResponseType::IntegrationTimeout));
            }
            Err(e) => {
                log("Lambda invocation failed", &e);
                return Ok(internal_error(StatusCode::INTERNAL_SERVER_ERROR));
            }
        };
        let mut response = if self.proxy {
            if let Some(kind) = &invoked.function_error {
                let message =
                    String::from_utf8_lossy(&invoked.body[..invoked.body.len().min(1024)]);
                log("Lambda function error", &format_args!("{kind}: {message}"));
                return Ok(internal_error(StatusCode::BAD_GATEWAY));
            }
            let decode = self.binary.accepts_binary(call.headers);
            match proxy_event::parse_v1(&invoked.body, decode) {
                Ok(answer) => {
                    let mut response = Response::new(body::full(answer.body));
                    *response.status_mut() = answer.status;
                    *response.headers_mut() = answer.headers;
                    response
                }
                Err(malformed) => {
                    log("Malformed Lambda proxy response", &malformed);
                    return Ok(internal_error(StatusCode::BAD_GATEWAY));
                }
            }
        } else {
            self.answer(&invoked, view)?
        };
        if let Ok(v) = HeaderValue::from_str(&trace) {
            response
                .headers_mut()
                .insert(HeaderName::from_static("x-amzn-trace-id"), v);
        }
        Ok(response)
    }

    fn inputs<'v>(&'v self, view: &'v RequestView<'v>) -> Inputs<'v> {
        Inputs {
            view,
            stage_variables: &self.stage_variables,
        }
    }

    /// Non-proxy: the Invoke payload, from `contentHandling` and the
    /// request template (or the body passed through, or 415), with the
    /// template's `requestOverride` headers.
    fn payload(&self, call: &Call<'_>) -> Result<(Bytes, Vec<(String, String)>), GatewayError> {
        let converted = crate::binary::convert(
            call.body.clone(),
            self.binary.request_is_binary(call.headers),
            self.content_handling,
        )?;
        if !converted.templatable {
            return Ok((converted.body, Vec::new()));
        }
        match self.requests.plan(call.headers)? {
            RequestPlan::PassThrough => Ok((converted.body, Vec::new())),
            RequestPlan::Transform(t) => {
                let rendered = self
                    .inputs(call.view)
                    .render(&t.template, &converted.body)?;
                Ok((
                    Bytes::from(rendered.body),
                    rendered.overrides.request_headers,
                ))
            }
        }
    }

    /// The payload format 1.0 event for this call.
    fn event_v1(&self, call: &Call<'_>, trace: &str) -> Vec<u8> {
        let c = &call.view.context;
        let mut headers: Vec<(&str, Cow<str>)> = call
            .headers
            .iter()
            .filter(|(n, _)| !dropped_header(n))
            .filter(|(n, _)| {
                !n.as_str().starts_with("x-forwarded-") && n.as_str() != "x-amzn-trace-id"
            })
            .map(|(n, v)| (n.as_str(), String::from_utf8_lossy(v.as_bytes())))
            .collect();
        let forwarded_for = match call
            .headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
        {
            Some(earlier) => Cow::Owned(format!("{earlier}, {}", call.caller.ip)),
            None => Cow::Borrowed(&*call.caller.ip),
        };
        headers.push(("x-amzn-trace-id", Cow::Borrowed(trace)));
        headers.push(("x-forwarded-for", forwarded_for));
        headers.push((
            "x-forwarded-port",
            Cow::Owned(call.caller.local_port.to_string()),
        ));
        headers.push(("x-forwarded-proto", Cow::Borrowed("http")));
        let request = ProxyRequest {
            method: call.method.as_str(),
            headers,
            path: path_after_stage(c.path, c.api_id, c.stage),
            raw_query: call.view.raw_query,
            path_parameters: call
                .view
                .path_parameters
                .map(|p| p.iter().collect())
                .unwrap_or_default(),
            stage_variables: &self.stage_variables,
            body: &call.body,
            body_is_binary: self.binary.request_is_binary(call.headers),
            context: c,
            authorizer: c.authorizer,
        };
        proxy_event::event_v1(&request)
    }

    /// Non-proxy (reference §4.2): a function error's `errorMessage`
    /// selects the integration response; success takes the response whose
    /// pattern matches the empty string (`.*`) or the default.
    fn answer(
        &self,
        invoked: &Invoked,
        view: &RequestView<'_>,
    ) -> Result<Response<Body>, GatewayError> {
        let selector = match &invoked.function_error {
            Some(_) => serde_json::from_slice::<Value>(&invoked.body)
                .ok()
                .and_then(|v| {
                    v.get("errorMessage")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                })
                .unwrap_or_default(),
            None => String::new(),
        };
        let Some(answer) = self.responses.select(&selector) else {
            tracing::warn!(
                api_id = view.context.api_id,
                stage = view.context.stage,
                resource = view.context.resource_path,
                function = %self.target.function,
                error_message = selector,
                "Execution failed due to configuration error: No match for output mapping and no default output mapping configured"
            );
            return Err(GatewayError::new(ResponseType::ApiConfigurationError));
        };
        answer.finish(
            &self.inputs(view),
            &invoked.headers,
            invoked.body.clone(),
            Some(HeaderValue::from_static("application/json")),
        )
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::integration::Services;

    const ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:echo";

    #[test]
    fn parses_function_arns() {
        let f = FunctionArn::parse(ARN).unwrap();
        assert_eq!(
            (
                f.partition.as_str(),
                f.region.as_str(),
                f.account.as_str(),
                f.name.as_str()
            ),
            ("aws", "us-east-1", "123456789012", "echo")
        );
        assert_eq!(f.qualifier, None);
        assert_eq!(f.to_string(), ARN);
        let q = FunctionArn::parse(&format!("{ARN}:$LATEST")).unwrap();
        assert_eq!(q.qualifier.as_deref(), Some("$LATEST"));
        assert_eq!(q.to_string(), format!("{ARN}:$LATEST"));
        for bad in [
            "",
            "echo",
            "arn:aws:lambda:us-east-1:123456789012:function:",
            "arn:aws:lambda:us-east-1:12345:function:echo",
            "arn:aws:s3:us-east-1:123456789012:function:echo",
            "arn:aws:lambda:us-east-1:123456789012:layer:echo",
            "arn:aws:lambda:US-EAST-1:123456789012:function:echo",
            "arn:aws:lambda:us-east-1:123456789012:function:ec ho",
            "arn:aws:lambda:us-east-1:123456789012:function:echo:v1:extra",
            "arn:aws:lambda:us-east-1:123456789012:function:echo:",
        ] {
            assert!(FunctionArn::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn parses_integration_uris() {
        let uri = format!(
            "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/{ARN}/invocations"
        );
        assert_eq!(
            AwsUri::parse(&uri),
            Ok(AwsUri::Lambda(FunctionArn::parse(ARN).unwrap()))
        );
        assert_eq!(
            AwsUri::parse("arn:aws:apigateway:us-west-2:s3:path/bucket/key"),
            Ok(AwsUri::OtherService("s3".into()))
        );
        for bad in [
            "http://example.com/",
            "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/echo/invocations",
            &format!("arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/{ARN}"),
            &format!("arn:aws:apigateway:us-east-1:lambda:action/{ARN}"),
        ] {
            assert!(AwsUri::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn substitutes_stage_variables() {
        let vars = BTreeMap::from([("fn".to_string(), "echo".to_string())]);
        assert_eq!(
            substitute_stage_variables("function:${stageVariables.fn}/x", &vars).unwrap(),
            "function:echo/x"
        );
        assert_eq!(
            substitute_stage_variables("function:${stageVariables.nope}", &vars).unwrap(),
            "function:"
        );
        assert!(substitute_stage_variables("${context.x}", &vars).is_err());
        assert!(substitute_stage_variables("${stageVariables.fn", &vars).is_err());
    }

    #[test]
    fn finds_the_path_after_the_stage() {
        for (path, expected) in [
            ("/restapis/abc/prod/_user_request_/pets/1", "/pets/1"),
            ("/restapis/abc/prod/_user_request_", "/"),
            ("/restapis/abc/prod/_user_request_/", "/"),
            ("/prod/pets", "/pets"),
            ("/prod", "/"),
            ("/production/x", "/production/x"),
        ] {
            assert_eq!(path_after_stage(path, "abc", "prod"), expected, "{path}");
        }
    }

    #[test]
    fn trace_ids_look_like_aws() {
        let id = trace_id(1_589_522_469_693);
        assert!(id.starts_with("Root=1-5ebe3025-"), "{id}");
        assert_eq!(id.len(), "Root=1-5ebe3025-".len() + 24);
    }

    fn settings(endpoint: Option<&str>) -> LambdaSettings {
        LambdaSettings {
            default_endpoint: endpoint.map(str::to_string),
            endpoints_by_account: BTreeMap::from([(
                "210987654321".to_string(),
                "http://other:9000/".to_string(),
            )]),
            credentials: Some(LambdaCredentials {
                access_key_id: "AKIDEXAMPLE".into(),
                secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
                session_token: None,
            }),
        }
    }

    #[tokio::test]
    async fn resolves_endpoints_per_account_then_default_then_aws() {
        let client = LambdaClient::new(&settings(Some("http://127.0.0.1:8081"))).unwrap();
        let target = client.target(FunctionArn::parse(ARN).unwrap()).unwrap();
        assert_eq!(
            target.uri.to_string(),
            "http://127.0.0.1:8081/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Aecho/invocations"
        );
        let other = FunctionArn::parse("arn:aws:lambda:eu-west-1:210987654321:function:f").unwrap();
        assert!(
            client
                .target(other.clone())
                .unwrap()
                .uri
                .to_string()
                .starts_with("http://other:9000/2015-03-31/functions/")
        );
        let aws = LambdaClient::new(&settings(None)).unwrap();
        assert_eq!(
            aws.endpoint_for(&FunctionArn::parse(ARN).unwrap()),
            "https://lambda.us-east-1.amazonaws.com"
        );
        assert_eq!(aws.endpoint_for(&other), "http://other:9000");
        for bad in ["ftp://x", "not a url", "http://h/?q=1"] {
            assert!(LambdaClient::new(&settings(Some(bad))).is_err(), "{bad}");
        }
    }

    /// The Invoke request verifies with the control plane's own SigV4
    /// verifier, as the function host will check it.
    #[tokio::test]
    async fn invoke_requests_verify_with_our_sigv4_verifier() {
        let client = LambdaClient::new(&settings(Some("http://127.0.0.1:8081"))).unwrap();
        let target = client
            .target(FunctionArn::parse(&format!("{ARN}:live")).unwrap())
            .unwrap();
        let now = SystemTime::now();
        let payload = Bytes::from_static(br#"{"hello": "world"}"#);
        let request = client
            .signed_request(
                &target,
                payload.clone(),
                &[(
                    HeaderName::from_static("x-amz-invocation-type"),
                    HeaderValue::from_static("Event"),
                )],
                now,
            )
            .unwrap();
        let (mut parts, body) = request.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        assert_eq!(body, payload);
        // As the server sees it: origin-form target.
        parts.uri = parts
            .uri
            .path_and_query()
            .unwrap()
            .as_str()
            .parse()
            .unwrap();
        let signed = apigw_sigv4::parse(&parts).unwrap();
        assert_eq!(signed.access_key_id, "AKIDEXAMPLE");
        assert_eq!(signed.service, "lambda");
        assert_eq!(signed.region, "us-east-1");
        assert!(signed.signed_headers.iter().any(|h| h == "host"));
        assert!(
            signed
                .signed_headers
                .iter()
                .any(|h| h == "x-amz-invocation-type")
        );
        let verify = |secret: &str, body: &[u8]| {
            apigw_sigv4::verify(
                &signed,
                &parts,
                body,
                secret,
                chrono::DateTime::<chrono::Utc>::from(now),
                chrono::Duration::minutes(5),
            )
        };
        verify("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", &body).unwrap();
        assert!(verify("another secret", &body).is_err());
        assert!(verify("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", b"{}").is_err());

        let unsigned = LambdaClient {
            credentials: None,
            ..LambdaClient::new(&settings(Some("http://127.0.0.1:8081"))).unwrap()
        };
        assert!(matches!(
            unsigned.signed_request(&target, payload, &[], now),
            Err(InvokeError::NoCredentials)
        ));
    }

    fn env<'a>(vars: &'a BTreeMap<String, String>, services: &'a Services) -> StageEnv<'a> {
        StageEnv {
            stage_variables: vars,
            account_id: "123456789012",
            binary_media_types: &[],
            services,
        }
    }

    fn lambda_method(uri: &str) -> Value {
        json!({"methodIntegration": {"type": "AWS_PROXY", "httpMethod": "POST", "uri": uri}})
    }

    #[tokio::test]
    async fn compiles_only_functions_of_the_apis_account() {
        let services = Services {
            lambda: Some(Arc::new(
                LambdaClient::new(&settings(Some("http://127.0.0.1:8081"))).unwrap(),
            )),
            auth: Default::default(),
        };
        let vars = BTreeMap::from([("fn".to_string(), "echo".to_string())]);
        let uri = |function: &str| {
            format!(
                "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/{function}/invocations"
            )
        };
        let compiled = Integration::compile_in(
            &lambda_method(&uri(
                "arn:aws:lambda:us-east-1:123456789012:function:${stageVariables.fn}",
            )),
            &env(&vars, &services),
        )
        .unwrap();
        let Integration::Lambda(lambda) = compiled else {
            panic!("not a Lambda integration: {compiled:?}");
        };
        assert_eq!(lambda.function().name, "echo");
        for unavailable in [
            lambda_method(&uri("arn:aws:lambda:us-east-1:210987654321:function:echo")),
            lambda_method(&uri(
                "arn:aws:lambda:us-east-1:123456789012:function:${stageVariables.missing}",
            )),
            lambda_method("arn:aws:apigateway:us-east-1:s3:path/b/k"),
            json!({"methodIntegration": {"type": "AWS", "httpMethod": "GET", "uri": uri(ARN)}}),
        ] {
            assert!(
                matches!(
                    Integration::compile_in(&unavailable, &env(&vars, &services)),
                    Ok(Integration::Unavailable { .. })
                ),
                "{unavailable}"
            );
        }
        // Without a client (a node built without one) the route is unavailable, not refused.
        assert!(matches!(
            Integration::compile_in(&lambda_method(&uri(ARN)), &env(&vars, &Services::default())),
            Ok(Integration::Unavailable { .. })
        ));
        assert!(
            Integration::compile_in(
                &json!({"methodIntegration": {"type": "AWS", "uri": uri(ARN),
                "integrationResponses": {"400": {"statusCode": "400", "selectionPattern": "("}}}}),
                &env(&vars, &services),
            )
            .is_err()
        );
    }
}
