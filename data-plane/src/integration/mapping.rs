//! REST parameter mapping expressions (reference §5.3): the right-hand sides
//! of `requestParameters`, `responseParameters` and gateway-response
//! parameters, parsed once at load and resolved per request against a view of
//! the request (and, on the way back, of the backend's response).
//!
//! Stage variables are known when a stage compiles, so `stageVariables.x`
//! becomes a literal then. Expressions AWS accepts but we cannot evaluate yet
//! (body JSONPath, multi-value forms) compile to [`ValueSource::Unsupported`]
//! and resolve to nothing: one API using them must not block every other
//! API's configuration on the node.

use std::borrow::Cow;
use std::collections::BTreeMap;

use http::{HeaderMap, HeaderName};
use percent_encoding::percent_decode_str;

use crate::routing::PathParameters;

/// `$context` variables a mapping may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContextVar {
    RequestId,
    ExtendedRequestId,
    Stage,
    ApiId,
    AccountId,
    DeploymentId,
    ResourceId,
    ResourcePath,
    HttpMethod,
    Path,
    Protocol,
    DomainName,
    SourceIp,
    UserAgent,
    RequestTimeEpoch,
    /// `identity.accessKey`, `identity.accountId`, `identity.caller`,
    /// `identity.user`, `identity.userArn`: an AWS_IAM caller's.
    IdentityAccessKey,
    IdentityAccountId,
    IdentityCaller,
    IdentityUser,
    IdentityUserArn,
    /// A name we do not provide (yet): resolves to nothing.
    Other,
}

impl ContextVar {
    pub fn parse(name: &str) -> Self {
        use ContextVar::*;
        match name {
            "requestId" => RequestId,
            "extendedRequestId" => ExtendedRequestId,
            "stage" => Stage,
            "apiId" => ApiId,
            "accountId" => AccountId,
            "deploymentId" => DeploymentId,
            "resourceId" => ResourceId,
            "resourcePath" => ResourcePath,
            "httpMethod" => HttpMethod,
            "path" => Path,
            "protocol" => Protocol,
            "domainName" => DomainName,
            "identity.sourceIp" => SourceIp,
            "identity.userAgent" => UserAgent,
            "requestTimeEpoch" => RequestTimeEpoch,
            "identity.accessKey" => IdentityAccessKey,
            "identity.accountId" => IdentityAccountId,
            "identity.caller" => IdentityCaller,
            "identity.user" => IdentityUser,
            "identity.userArn" => IdentityUserArn,
            _ => Other,
        }
    }
}

/// The per-request values behind `$context`, borrowed from the request and
/// the runtime. Fields a request has not reached yet (no route) are empty.
#[derive(Debug, Clone, Default)]
pub struct RequestContext<'a> {
    pub request_id: &'a str,
    pub extended_request_id: &'a str,
    pub api_id: &'a str,
    pub stage: &'a str,
    pub account_id: &'a str,
    pub deployment_id: &'a str,
    pub resource_id: &'a str,
    pub resource_path: &'a str,
    pub http_method: &'a str,
    pub path: &'a str,
    pub protocol: &'a str,
    pub domain_name: &'a str,
    pub source_ip: &'a str,
    pub request_time_epoch: u64,
    /// An authorizer's output (`principalId` and context, stringified).
    pub authorizer: Option<&'a serde_json::Map<String, serde_json::Value>>,
    /// A Lambda authorizer's `usageIdentifierKey`, for API key source AUTHORIZER.
    pub usage_identifier_key: Option<&'a str>,
    /// The API key a key-required method admitted (`identity.apiKey`, `identity.apiKeyId`).
    pub api_key: Option<&'a str>,
    pub api_key_id: Option<&'a str>,
    /// The verified caller of an AWS_IAM method.
    pub principal: Option<&'a crate::auth::principals::Principal>,
}

/// What mappings may read of the caller's request.
#[derive(Debug, Clone)]
pub struct RequestView<'a> {
    pub headers: &'a HeaderMap,
    /// The raw query string, without `?`.
    pub raw_query: Option<&'a str>,
    pub path_parameters: Option<&'a PathParameters<'a>>,
    pub context: RequestContext<'a>,
}

impl<'a> RequestView<'a> {
    pub fn header(&self, name: &HeaderName) -> Option<&'a str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The first value of query parameter `name`, decoded.
    pub fn query(&self, name: &str) -> Option<Cow<'a, str>> {
        self.raw_query?
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
            .find(|(k, _)| form_decode(k) == name)
            .map(|(_, v)| form_decode(v))
    }

    /// Every query parameter, decoded, in order (repeats kept).
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        self.raw_query
            .unwrap_or("")
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
            .map(|(k, v)| (form_decode(k).into_owned(), form_decode(v).into_owned()))
            .collect()
    }

    pub fn path(&self, name: &str) -> Option<&'a str> {
        self.path_parameters?.get(name)
    }

    /// `$context.authorizer.<path>`: a value of the authorizer's output,
    /// walking objects by dotted keys (`claims.email`); scalars as text.
    pub fn authorizer(&self, path: &str) -> Option<Cow<'a, str>> {
        let mut keys = path.split('.');
        let mut value = self.context.authorizer?.get(keys.next()?)?;
        for key in keys {
            value = value.get(key)?;
        }
        match value {
            serde_json::Value::String(s) => Some(Cow::Borrowed(s.as_str())),
            serde_json::Value::Null => None,
            other => Some(Cow::Owned(other.to_string())),
        }
    }

    pub fn context(&self, var: ContextVar) -> Option<Cow<'a, str>> {
        let c = &self.context;
        let s = match var {
            ContextVar::RequestId => c.request_id,
            ContextVar::ExtendedRequestId => c.extended_request_id,
            ContextVar::Stage => c.stage,
            ContextVar::ApiId => c.api_id,
            ContextVar::AccountId => c.account_id,
            ContextVar::DeploymentId => c.deployment_id,
            ContextVar::ResourceId => c.resource_id,
            ContextVar::ResourcePath => c.resource_path,
            ContextVar::HttpMethod => c.http_method,
            ContextVar::Path => c.path,
            ContextVar::Protocol => c.protocol,
            ContextVar::DomainName => c.domain_name,
            ContextVar::SourceIp => c.source_ip,
            ContextVar::UserAgent => {
                return self
                    .headers
                    .get(http::header::USER_AGENT)
                    .and_then(|v| v.to_str().ok())
                    .map(Cow::Borrowed);
            }
            ContextVar::RequestTimeEpoch => {
                return Some(Cow::Owned(c.request_time_epoch.to_string()));
            }
            ContextVar::IdentityAccessKey => &c.principal?.access_key_id,
            ContextVar::IdentityAccountId => &c.principal?.account_id,
            ContextVar::IdentityCaller | ContextVar::IdentityUser => &c.principal?.unique_id,
            ContextVar::IdentityUserArn => &c.principal?.arn,
            ContextVar::Other => return None,
        };
        Some(Cow::Borrowed(s))
    }
}

/// Decodes `application/x-www-form-urlencoded` text (`+` is a space).
fn form_decode(s: &str) -> Cow<'_, str> {
    if !s.contains(['+', '%']) {
        return Cow::Borrowed(s);
    }
    let spaced = s.replace('+', " ");
    Cow::Owned(percent_decode_str(&spaced).decode_utf8_lossy().into_owned())
}

/// What response mappings may read of the backend's answer.
#[derive(Debug, Clone, Copy)]
pub struct ResponseView<'a> {
    pub headers: &'a HeaderMap,
    /// Present when a selected mapping asked for it.
    pub body: Option<&'a [u8]>,
}

/// Where a mapping expression may be used; each allows different sources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// `integration.request.*` ← `method.request.*`.
    IntegrationRequest,
    /// `method.response.header.*` ← `integration.response.*`.
    IntegrationResponse,
    /// `gatewayresponse.header.*` ← `method.request.*`.
    GatewayResponse,
}

/// A parsed right-hand side of a parameter mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueSource {
    Literal(Box<str>),
    /// A stage variable the stage does not define.
    Absent,
    MethodPath(Box<str>),
    MethodQuery(Box<str>),
    MethodHeader(HeaderName),
    Context(ContextVar),
    /// `context.authorizer.<key>[.<key>…]` (e.g. `principalId`, `claims.email`).
    Authorizer(Box<str>),
    IntegrationHeader(HeaderName),
    IntegrationBody,
    /// `integration.response.body.<JSONPath>`: dotted names and `[n]` indexes.
    IntegrationBodyPath(Box<[PathStep]>),
    /// Valid for AWS, not evaluated by us yet.
    Unsupported(Box<str>),
}

impl ValueSource {
    /// Parses `expr` for `side`; `stage_variables` resolves `stageVariables.x` now.
    pub fn parse(
        expr: &str,
        side: Side,
        stage_variables: &BTreeMap<String, String>,
    ) -> Result<Self, String> {
        let bad = || format!("invalid mapping expression {expr:?}");
        if let Some(quoted) = expr.strip_prefix('\'') {
            return quoted
                .strip_suffix('\'')
                .map(|s| ValueSource::Literal(s.into()))
                .ok_or_else(bad);
        }
        if let Some(name) = expr.strip_prefix("stageVariables.") {
            return Ok(match stage_variables.get(name) {
                Some(v) => ValueSource::Literal(v.as_str().into()),
                None => ValueSource::Absent,
            });
        }
        if let Some(path) = expr.strip_prefix("context.authorizer.") {
            return non_empty(path)
                .map(|p| ValueSource::Authorizer(p.into()))
                .ok_or_else(bad);
        }
        if let Some(name) = expr.strip_prefix("context.") {
            return non_empty(name)
                .map(|n| ValueSource::Context(ContextVar::parse(n)))
                .ok_or_else(bad);
        }
        let unsupported = || Ok(ValueSource::Unsupported(expr.into()));
        if let Some(rest) = expr.strip_prefix("method.request.") {
            if side == Side::IntegrationResponse {
                return Err(bad());
            }
            let (location, name) = rest.split_once('.').unwrap_or((rest, ""));
            return match (location, non_empty(name)) {
                ("path", Some(n)) => Ok(ValueSource::MethodPath(n.into())),
                ("querystring", Some(n)) => Ok(ValueSource::MethodQuery(n.into())),
                ("header", Some(n)) => Ok(ValueSource::MethodHeader(header_name(n)?)),
                ("multivaluequerystring" | "multivalueheader", Some(_)) => unsupported(),
                ("body", _) if side == Side::IntegrationRequest => unsupported(),
                _ => Err(bad()),
            };
        }
        if let Some(rest) = expr.strip_prefix("integration.response.") {
            if side != Side::IntegrationResponse {
                return Err(bad());
            }
            if rest == "body" {
                return Ok(ValueSource::IntegrationBody);
            }
            if let Some(path) = rest.strip_prefix("body.") {
                return match parse_json_path(path) {
                    Some(steps) => Ok(ValueSource::IntegrationBodyPath(steps.into())),
                    None => unsupported(),
                };
            }
            let (location, name) = rest.split_once('.').unwrap_or((rest, ""));
            return match (location, non_empty(name)) {
                ("header", Some(n)) => Ok(ValueSource::IntegrationHeader(header_name(n)?)),
                ("multivalueheader" | "body", Some(_)) => unsupported(),
                _ => Err(bad()),
            };
        }
        Err(bad())
    }

    pub fn needs_response_body(&self) -> bool {
        matches!(
            self,
            ValueSource::IntegrationBody | ValueSource::IntegrationBodyPath(_)
        )
    }

    /// The value, or `None` when the source has none for this request.
    pub fn resolve<'v>(
        &'v self,
        request: &RequestView<'v>,
        response: Option<&ResponseView<'v>>,
    ) -> Option<Cow<'v, str>> {
        match self {
            ValueSource::Literal(s) => Some(Cow::Borrowed(s)),
            ValueSource::Absent | ValueSource::Unsupported(_) => None,
            ValueSource::MethodPath(n) => request.path(n).map(Cow::Borrowed),
            ValueSource::MethodQuery(n) => request.query(n),
            ValueSource::MethodHeader(n) => request.header(n).map(Cow::Borrowed),
            ValueSource::Context(var) => request.context(*var),
            ValueSource::Authorizer(path) => request.authorizer(path),
            ValueSource::IntegrationHeader(n) => response?
                .headers
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(Cow::Borrowed),
            ValueSource::IntegrationBody => response?.body.map(String::from_utf8_lossy),
            ValueSource::IntegrationBodyPath(steps) => {
                let body: serde_json::Value = serde_json::from_slice(response?.body?).ok()?;
                let found = walk(&body, steps)?;
                Some(Cow::Owned(match found {
                    serde_json::Value::String(s) => s.clone(),
                    serde_json::Value::Null => return None,
                    other => other.to_string(),
                }))
            }
        }
    }
}

/// One step of a simple JSONPath: a member name or an array index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathStep {
    Name(Box<str>),
    Index(usize),
}

/// `a.b[0].c`, `$.a.b`, `['a-b']`: names and indexes only (what response
/// parameter mappings use); anything else is `None`.
pub fn parse_json_path(path: &str) -> Option<Vec<PathStep>> {
    let path = path.strip_prefix('$').unwrap_or(path);
    let mut steps = Vec::new();
    let mut rest = path;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("['") {
            let end = r.find("']")?;
            steps.push(PathStep::Name(r[..end].into()));
            rest = &r[end + 2..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']')?;
            steps.push(PathStep::Index(r[..end].trim().parse().ok()?));
            rest = &r[end + 1..];
        } else {
            let r = rest.strip_prefix('.').unwrap_or(rest);
            let end = r.find(['.', '[']).unwrap_or(r.len());
            let name = &r[..end];
            if name.is_empty() || name.contains(['*', '?', '(', ')', '\'', ' ']) {
                return None;
            }
            steps.push(PathStep::Name(name.into()));
            rest = &r[end..];
        }
    }
    Some(steps)
}

fn walk<'v>(value: &'v serde_json::Value, steps: &[PathStep]) -> Option<&'v serde_json::Value> {
    steps.iter().try_fold(value, |v, step| match step {
        PathStep::Name(n) => v.get(n.as_ref()),
        PathStep::Index(i) => v.get(*i),
    })
}

fn non_empty(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

pub fn header_name(name: &str) -> Result<HeaderName, String> {
    HeaderName::from_bytes(name.as_bytes()).map_err(|_| format!("invalid header name {name:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> BTreeMap<String, String> {
        BTreeMap::from([("host".to_string(), "backend:80".to_string())])
    }

    fn parse(expr: &str, side: Side) -> Result<ValueSource, String> {
        ValueSource::parse(expr, side, &vars())
    }

    #[test]
    fn parses_every_source() {
        use ValueSource::*;
        let req = Side::IntegrationRequest;
        assert_eq!(parse("'a b'", req), Ok(Literal("a b".into())));
        assert_eq!(parse("''", req), Ok(Literal("".into())));
        assert_eq!(
            parse("stageVariables.host", req),
            Ok(Literal("backend:80".into()))
        );
        assert_eq!(parse("stageVariables.nope", req), Ok(Absent));
        assert_eq!(
            parse("method.request.path.id", req),
            Ok(MethodPath("id".into()))
        );
        assert_eq!(
            parse("method.request.querystring.q", req),
            Ok(MethodQuery("q".into()))
        );
        assert_eq!(
            parse("method.request.header.X-Api", req),
            Ok(MethodHeader(HeaderName::from_static("x-api")))
        );
        assert_eq!(
            parse("context.requestId", req),
            Ok(Context(ContextVar::RequestId))
        );
        assert!(matches!(
            parse("method.request.body.a.b", req),
            Ok(Unsupported(_))
        ));
        assert_eq!(
            parse("integration.response.body", Side::IntegrationResponse),
            Ok(IntegrationBody)
        );
        assert_eq!(
            parse(
                "integration.response.body.a.b[1]",
                Side::IntegrationResponse
            ),
            Ok(IntegrationBodyPath(
                vec![
                    PathStep::Name("a".into()),
                    PathStep::Name("b".into()),
                    PathStep::Index(1)
                ]
                .into()
            ))
        );
        assert_eq!(
            parse(
                "integration.response.header.Etag",
                Side::IntegrationResponse
            ),
            Ok(IntegrationHeader(HeaderName::from_static("etag")))
        );
    }

    #[test]
    fn rejects_malformed_or_misplaced_expressions() {
        for (expr, side) in [
            ("'unterminated", Side::IntegrationRequest),
            ("method.request.path.", Side::IntegrationRequest),
            ("method.request.cookie.x", Side::IntegrationRequest),
            ("integration.response.header.x", Side::IntegrationRequest),
            ("method.request.header.x", Side::IntegrationResponse),
            ("method.request.header.bad name", Side::GatewayResponse),
            ("true", Side::IntegrationRequest),
            ("context.", Side::IntegrationRequest),
        ] {
            assert!(parse(expr, side).is_err(), "{expr}");
        }
    }

    #[test]
    fn resolves_against_a_request() {
        let mut headers = HeaderMap::new();
        headers.insert("x-api", "v1".parse().unwrap());
        let view = RequestView {
            headers: &headers,
            raw_query: Some("a=1&q=hello+w%6Frld&q=second&flag"),
            path_parameters: None,
            context: RequestContext {
                request_id: "rid",
                ..Default::default()
            },
        };
        let get = |expr: &str| {
            parse(expr, Side::IntegrationRequest)
                .unwrap()
                .resolve(&view, None)
                .map(|v| v.into_owned())
        };
        assert_eq!(
            get("method.request.querystring.q").as_deref(),
            Some("hello world")
        );
        assert_eq!(get("method.request.querystring.flag").as_deref(), Some(""));
        assert_eq!(get("method.request.querystring.zz"), None);
        assert_eq!(get("method.request.header.X-API").as_deref(), Some("v1"));
        assert_eq!(get("method.request.path.id"), None);
        assert_eq!(get("context.requestId").as_deref(), Some("rid"));
        assert_eq!(get("context.somethingNew"), None);
    }

    #[test]
    fn resolves_response_body_paths() {
        let headers = HeaderMap::new();
        let view = RequestView {
            headers: &headers,
            raw_query: Some("a=1&b=x+y&a=2"),
            path_parameters: None,
            context: RequestContext::default(),
        };
        assert_eq!(
            view.query_pairs(),
            vec![
                ("a".to_string(), "1".to_string()),
                ("b".to_string(), "x y".to_string()),
                ("a".to_string(), "2".to_string())
            ]
        );
        let body = br#"{"pet": {"name": "Rex", "tags": ["a", "b"], "age": 3, "meta": {"k": 1}}, "x-y": "dash"}"#;
        let backend = ResponseView {
            headers: &headers,
            body: Some(body),
        };
        let get = |expr: &str| {
            parse(expr, Side::IntegrationResponse)
                .unwrap()
                .resolve(&view, Some(&backend))
                .map(|v| v.into_owned())
        };
        assert_eq!(
            get("integration.response.body.pet.name").as_deref(),
            Some("Rex")
        );
        assert_eq!(
            get("integration.response.body.$.pet.tags[1]").as_deref(),
            Some("b")
        );
        assert_eq!(
            get("integration.response.body.pet.age").as_deref(),
            Some("3")
        );
        assert_eq!(
            get("integration.response.body.pet.meta").as_deref(),
            Some(r#"{"k":1}"#)
        );
        assert_eq!(
            get("integration.response.body.$['x-y']").as_deref(),
            Some("dash")
        );
        assert_eq!(get("integration.response.body.pet.missing"), None);
        assert!(matches!(
            parse(
                "integration.response.body.pets[*].name",
                Side::IntegrationResponse
            ),
            Ok(ValueSource::Unsupported(_))
        ));
    }
}
