//! Lambda authorizers (reference §7.2): TOKEN and REQUEST events, the
//! function's policy answer, and a per-authorizer cache of answers keyed by
//! the identity-source values for `authorizerResultTtlInSeconds`.
//!
//! Outcomes as AWS: a missing/empty identity source or a token failing
//! `identityValidationExpression` → 401 without calling; the function failing
//! with exactly `Unauthorized` → 401; a malformed answer, another function
//! error or Lambda refusing the call → 500 `AUTHORIZER_CONFIGURATION_ERROR`;
//! Lambda unreachable or timing out → 500 `AUTHORIZER_FAILURE`. The cached
//! answer's policy is evaluated against each request's method ARN afresh.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use apigw_proto::gateway_response::ResponseType;
use bytes::Bytes;
use http::HeaderName;
use moka::sync::Cache;
use regex::Regex;
use serde_json::{Map, Value};

use super::AuthRequest;
use super::policy::Policy;
use crate::gateway_response::GatewayError;
use crate::integration::lambda::{
    AwsUri, FunctionArn, InvokeError, InvokeTarget, substitute_stage_variables,
};
use crate::integration::proxy_event::{self, ProxyRequest};
use crate::integration::{LambdaClient, Services};

/// How long AWS lets an authorizer run.
const AUTHORIZER_TIMEOUT: Duration = Duration::from_secs(10);
/// Cached answers per authorizer, at most.
const CACHE_CAPACITY: u64 = 10_000;

/// A function's answer, parsed once (and cached as such).
#[derive(Debug)]
pub struct Answer {
    pub principal_id: String,
    pub policy: Policy,
    /// `principalId` plus the `context` values, stringified (decisions.md).
    pub context: Map<String, Value>,
    pub usage_identifier_key: Option<String>,
}

#[derive(Debug)]
enum Source {
    Header(HeaderName),
    Query(String),
    StageVariable(String),
    Context(String),
}

#[derive(Debug)]
enum Kind {
    Token {
        header: HeaderName,
        validation: Option<Regex>,
    },
    Request {
        sources: Vec<Source>,
    },
}

pub struct LambdaAuthorizer {
    kind: Kind,
    /// `Err`: the authorizer cannot be called (bad uri, another account's
    /// function, no Lambda client): every request answers 500.
    invoker: Result<(Arc<LambdaClient>, InvokeTarget), String>,
    cache: Option<Cache<String, Arc<Answer>>>,
}

impl std::fmt::Debug for LambdaAuthorizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LambdaAuthorizer")
            .field("kind", &self.kind)
            .field("invoker", &self.invoker.as_ref().map(|(_, t)| &t.function))
            .field("cached", &self.cache.is_some())
            .finish()
    }
}

fn header(name: &str) -> Result<HeaderName, String> {
    HeaderName::from_bytes(name.as_bytes()).map_err(|_| format!("invalid header name {name:?}"))
}

impl LambdaAuthorizer {
    /// Compiles an `Authorizer` (AWS's JSON shape) of type TOKEN or REQUEST.
    /// An `Err` is a snapshot to refuse; problems only calling the function
    /// are kept and answered per request.
    pub fn compile(
        authorizer: &Value,
        stage_variables: &BTreeMap<String, String>,
        account_id: &str,
        services: &Services,
    ) -> Result<Self, String> {
        let text = |k: &str| authorizer.get(k).and_then(Value::as_str);
        let source = text("identitySource").unwrap_or("").trim();
        let kind = match text("type") {
            Some("TOKEN") => {
                let name = source
                    .strip_prefix("method.request.header.")
                    .ok_or_else(|| format!("TOKEN identity source {source:?} is not a header"))?;
                let validation =
                    match text("identityValidationExpression").filter(|e| !e.is_empty()) {
                        // AWS matches the whole token.
                        Some(e) => Some(
                            Regex::new(&format!("^(?:{e})$"))
                                .map_err(|err| format!("identityValidationExpression: {err}"))?,
                        ),
                        None => None,
                    };
                Kind::Token {
                    header: header(name)?,
                    validation,
                }
            }
            Some("REQUEST") => {
                let mut sources = Vec::new();
                for part in source.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                    sources.push(
                        if let Some(h) = part.strip_prefix("method.request.header.") {
                            Source::Header(header(h)?)
                        } else if let Some(q) = part.strip_prefix("method.request.querystring.") {
                            Source::Query(q.to_owned())
                        } else if let Some(v) = part.strip_prefix("stageVariables.") {
                            Source::StageVariable(v.to_owned())
                        } else if let Some(c) = part.strip_prefix("context.") {
                            Source::Context(c.to_owned())
                        } else {
                            return Err(format!("unsupported identity source {part:?}"));
                        },
                    );
                }
                Kind::Request { sources }
            }
            other => return Err(format!("not a Lambda authorizer type: {other:?}")),
        };
        let ttl = authorizer
            .get("authorizerResultTtlInSeconds")
            .and_then(Value::as_i64)
            .unwrap_or(300)
            .clamp(0, 3600);
        // REQUEST authorizers without sources cannot be keyed: never cached.
        let keyed = !matches!(&kind, Kind::Request { sources } if sources.is_empty());
        let cache = (ttl > 0 && keyed).then(|| {
            Cache::builder()
                .max_capacity(CACHE_CAPACITY)
                .time_to_live(Duration::from_secs(ttl as u64))
                .build()
        });
        let invoker = invoker(text("authorizerUri"), stage_variables, account_id, services);
        Ok(Self {
            kind,
            invoker,
            cache,
        })
    }

    /// The caller's identity-source values (TOKEN: the token), or 401.
    pub fn identity(&self, req: &AuthRequest<'_>) -> Result<Vec<String>, GatewayError> {
        let unauthorized = || GatewayError::new(ResponseType::Unauthorized);
        match &self.kind {
            Kind::Token { header, validation } => {
                let token = req
                    .view
                    .headers
                    .get(header)
                    .and_then(|v| v.to_str().ok())
                    .filter(|t| !t.is_empty())
                    .ok_or_else(unauthorized)?;
                if validation.as_ref().is_some_and(|r| !r.is_match(token)) {
                    return Err(unauthorized());
                }
                Ok(vec![token.to_owned()])
            }
            Kind::Request { sources } => sources
                .iter()
                .map(|s| {
                    let value: Option<Cow<'_, str>> = match s {
                        Source::Header(h) => req
                            .view
                            .headers
                            .get(h)
                            .and_then(|v| v.to_str().ok())
                            .map(Cow::Borrowed),
                        Source::Query(q) => req.view.query(q),
                        Source::StageVariable(v) => req
                            .stage_variables
                            .get(v)
                            .map(|s| Cow::Borrowed(s.as_str())),
                        Source::Context(c) => match req.context_overrides.and_then(|o| o.get(c)) {
                            Some(v) => Some(Cow::Borrowed(v.as_str())),
                            None => req
                                .view
                                .context(crate::integration::mapping::ContextVar::parse(c)),
                        },
                    };
                    value
                        .filter(|v| !v.is_empty())
                        .map(Cow::into_owned)
                        .ok_or_else(unauthorized)
                })
                .collect(),
        }
    }

    /// The event the function is called with (reference §7.2).
    pub fn event(&self, req: &AuthRequest<'_>, identity: &[String]) -> Value {
        match &self.kind {
            Kind::Token { .. } => serde_json::json!({
                "type": "TOKEN",
                "authorizationToken": identity.first().cloned().unwrap_or_default(),
                "methodArn": req.method_arn,
            }),
            Kind::Request { .. } => request_event(req),
        }
    }

    /// The function's answer for this request: from the cache, or by
    /// calling it. The caller checks the answer's policy.
    pub async fn answer(&self, req: &AuthRequest<'_>) -> Result<Arc<Answer>, GatewayError> {
        let identity = self.identity(req)?;
        // NUL cannot occur in header values or decoded-and-checked sources' keys.
        let key = identity.join("\0");
        if let Some(cache) = &self.cache
            && let Some(hit) = cache.get(&key)
        {
            return Ok(hit);
        }
        let (client, target) = self.invoker.as_ref().map_err(|why| {
            tracing::warn!(api_id = req.view.context.api_id, error = %why, "authorizer unusable");
            GatewayError::new(ResponseType::AuthorizerConfigurationError)
        })?;
        let event = self.event(req, &identity);
        let payload = Bytes::from(serde_json::to_vec(&event).unwrap_or_default());
        let started = Instant::now();
        let invoked = client
            .invoke(target, payload, &[], AUTHORIZER_TIMEOUT)
            .await
            .map_err(|e| {
                tracing::warn!(api_id = req.view.context.api_id, function = %target.function, error = %e, "authorizer invocation failed");
                GatewayError::new(match e {
                    InvokeError::Timeout(_) | InvokeError::Transport(_) => ResponseType::AuthorizerFailure,
                    _ => ResponseType::AuthorizerConfigurationError,
                })
            })?;
        let answer = judge(invoked.function_error.is_some(), &invoked.body, started.elapsed())
            .map_err(|refusal| {
                if refusal.kind != ResponseType::Unauthorized {
                    tracing::warn!(api_id = req.view.context.api_id, function = %target.function, error = %refusal.why, "authorizer answer refused");
                }
                GatewayError::new(refusal.kind)
            })?;
        let answer = Arc::new(answer);
        if let Some(cache) = &self.cache {
            cache.insert(key, answer.clone());
        }
        Ok(answer)
    }
}

/// Why a function's reply gives no answer: what the caller gets, and why (for the log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub kind: ResponseType,
    pub why: String,
}

/// The function's reply judged as AWS does: an error whose message is
/// exactly `Unauthorized` → 401; any other error or a malformed answer →
/// 500 `AUTHORIZER_CONFIGURATION_ERROR`.
pub fn judge(function_error: bool, body: &[u8], latency: Duration) -> Result<Answer, Refusal> {
    if function_error {
        let message = serde_json::from_slice::<Value>(body).ok().and_then(|v| {
            v.get("errorMessage")
                .and_then(Value::as_str)
                .map(str::to_owned)
        });
        return Err(if message.as_deref() == Some("Unauthorized") {
            Refusal {
                kind: ResponseType::Unauthorized,
                why: "the function answered Unauthorized".into(),
            }
        } else {
            Refusal {
                kind: ResponseType::AuthorizerConfigurationError,
                why: format!(
                    "the function failed: {}",
                    message.as_deref().unwrap_or("(no errorMessage)")
                ),
            }
        });
    }
    parse_answer(body, latency).map_err(|why| Refusal {
        kind: ResponseType::AuthorizerConfigurationError,
        why: format!("malformed answer: {why}"),
    })
}

/// The Lambda function an authorizer calls: its `authorizerUri` with stage
/// variables substituted, which must name a function of `account_id`.
pub fn function_of(
    uri: Option<&str>,
    stage_variables: &BTreeMap<String, String>,
    account_id: &str,
) -> Result<FunctionArn, String> {
    let uri = uri.ok_or("the authorizer has no authorizerUri")?;
    let function =
        match substitute_stage_variables(uri, stage_variables).and_then(|u| AwsUri::parse(&u))? {
            AwsUri::Lambda(f) => f,
            AwsUri::OtherService(s) => return Err(format!("authorizer uri names {s}, not Lambda")),
        };
    // As for integrations: an API only ever calls its own account's functions.
    if function.account != account_id {
        return Err(format!(
            "Invalid permissions on Lambda function: {function} is not in the API's account {account_id}"
        ));
    }
    Ok(function)
}

fn invoker(
    uri: Option<&str>,
    stage_variables: &BTreeMap<String, String>,
    account_id: &str,
    services: &Services,
) -> Result<(Arc<LambdaClient>, InvokeTarget), String> {
    let function = function_of(uri, stage_variables, account_id)?;
    let client = services
        .lambda
        .clone()
        .ok_or("this node has no Lambda client")?;
    let target = client.target(function)?;
    Ok((client, target))
}

/// The REQUEST event: the REST proxy event's request parts (no body), with
/// `type` and `methodArn` (reference §7.2).
fn request_event(req: &AuthRequest<'_>) -> Value {
    let headers = req
        .view
        .headers
        .iter()
        .filter_map(|(n, v)| Some((n.as_str(), Cow::Borrowed(v.to_str().ok()?))))
        .collect();
    let proxy = ProxyRequest {
        method: req.view.context.http_method,
        headers,
        path: req.path_after_stage,
        raw_query: req.view.raw_query,
        path_parameters: req
            .view
            .path_parameters
            .map(|p| p.iter().collect())
            .unwrap_or_default(),
        stage_variables: req.stage_variables,
        body: &[],
        body_is_binary: false,
        context: &req.view.context,
        authorizer: None,
    };
    let mut event: Value = serde_json::from_slice(&proxy_event::event_v1(&proxy))
        .unwrap_or_else(|_| Value::Object(Map::new()));
    if let Some(map) = event.as_object_mut() {
        map.remove("body");
        map.remove("isBase64Encoded");
        map.insert("type".into(), Value::String("REQUEST".into()));
        map.insert("methodArn".into(), Value::String(req.method_arn.to_owned()));
    }
    event
}

/// `{principalId, policyDocument, context?, usageIdentifierKey?}`.
pub fn parse_answer(body: &[u8], latency: Duration) -> Result<Answer, String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let map = value.as_object().ok_or("the answer is not a JSON object")?;
    let principal_id = match map.get("principalId") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => return Err("principalId is missing or not a string".into()),
    };
    let policy = Policy::from_value(
        map.get("policyDocument")
            .ok_or("policyDocument is missing")?,
    )
    .map_err(|e| format!("policyDocument: {e}"))?;
    let mut context = Map::new();
    context.insert("principalId".into(), Value::String(principal_id.clone()));
    match map.get("context") {
        None | Some(Value::Null) => {}
        Some(Value::Object(values)) => {
            for (k, v) in values {
                let text = match v {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    Value::Null => continue,
                    // AWS refuses nested context values.
                    _ => {
                        return Err(format!(
                            "context value {k:?} is not a string, number or boolean"
                        ));
                    }
                };
                context.insert(k.clone(), Value::String(text));
            }
        }
        Some(_) => return Err("context is not an object".into()),
    }
    context.insert(
        "integrationLatency".into(),
        Value::from(u64::try_from(latency.as_millis()).unwrap_or(u64::MAX)),
    );
    let usage_identifier_key = match map.get("usageIdentifierKey") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err("usageIdentifierKey is not a string".into()),
    };
    Ok(Answer {
        principal_id,
        policy,
        context,
        usage_identifier_key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_parse_and_stringify_context() {
        let body = br#"{"principalId":"u1","policyDocument":{"Version":"2012-10-17","Statement":[{"Action":"execute-api:Invoke","Effect":"Allow","Resource":"*"}]},"context":{"s":"v","n":1,"b":true,"z":null},"usageIdentifierKey":"k"}"#;
        let a = parse_answer(body, Duration::from_millis(3)).unwrap();
        assert_eq!(a.principal_id, "u1");
        assert_eq!(a.context["principalId"], "u1");
        assert_eq!(a.context["n"], "1");
        assert_eq!(a.context["b"], "true");
        assert!(!a.context.contains_key("z"));
        assert_eq!(a.usage_identifier_key.as_deref(), Some("k"));
        for bad in [
            &br#"{"policyDocument":{"Statement":[]}}"#[..],
            br#"{"principalId":"u"}"#,
            br#"{"principalId":"u","policyDocument":{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]},"context":{"o":{"x":1}}}"#,
            br#"{"principalId":"u","policyDocument":"nope"}"#,
            br#"[]"#,
            b"not json",
        ] {
            assert!(parse_answer(bad, Duration::ZERO).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn compiles_sources_and_refuses_bad_ones() {
        let services = Services::default();
        let vars = BTreeMap::new();
        let token = serde_json::json!({"type": "TOKEN", "identitySource": "method.request.header.Authorization",
            "authorizerUri": "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:123456789012:function:a/invocations",
            "identityValidationExpression": "Bearer .+", "authorizerResultTtlInSeconds": 0});
        let a = LambdaAuthorizer::compile(&token, &vars, "123456789012", &services).unwrap();
        assert!(a.cache.is_none());
        // No Lambda client on this node: kept, answered per request.
        assert!(a.invoker.is_err());
        let bad =
            serde_json::json!({"type": "TOKEN", "identitySource": "method.request.querystring.t"});
        assert!(LambdaAuthorizer::compile(&bad, &vars, "1", &services).is_err());
        let req = serde_json::json!({"type": "REQUEST", "identitySource": "method.request.header.A, method.request.querystring.q, stageVariables.s, context.sourceIp"});
        let r = LambdaAuthorizer::compile(&req, &vars, "1", &services).unwrap();
        assert!(matches!(&r.kind, Kind::Request { sources } if sources.len() == 4));
        assert!(r.cache.is_some());
    }
}
