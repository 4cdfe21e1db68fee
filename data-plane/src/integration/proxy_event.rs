//! Lambda proxy payloads (reference §3): the event a function receives and
//! the answer it returns, in payload format 1.0 (REST APIs, HTTP APIs on 1.0)
//! and 2.0 (HTTP APIs).
//!
//! Both events are built from a [`ProxyRequest`], a neutral view of the
//! request that any API type can fill; both answers parse into a
//! [`ProxyAnswer`] or a [`Malformed`] naming what was wrong (for the log: the
//! caller only ever sees AWS's generic 502/500).

use std::borrow::Cow;
use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{HeaderMap, HeaderName, StatusCode};
use percent_encoding::percent_decode_str;
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use serde_json::Value;

use super::mapping::RequestContext;

/// A request as a proxy event sees it, whatever the API type.
#[derive(Debug, Clone)]
pub struct ProxyRequest<'a> {
    pub method: &'a str,
    /// Header names and values in the order received (names as the
    /// `http` crate keeps them: lower case), plus any the gateway adds.
    pub headers: Vec<(&'a str, Cow<'a, str>)>,
    /// The path after the stage, as received (`/pets/1`; `/` at least).
    pub path: &'a str,
    /// The raw query string, without `?`.
    pub raw_query: Option<&'a str>,
    /// Decoded path parameters, in path order.
    pub path_parameters: Vec<(&'a str, &'a str)>,
    pub stage_variables: &'a BTreeMap<String, String>,
    pub body: &'a [u8],
    /// The body is binary (per the API's `binaryMediaTypes`): sent base64.
    pub body_is_binary: bool,
    /// `$context`: ids, stage, account, resource, source IP, request time.
    pub context: &'a RequestContext<'a>,
    /// Authorizer output, when an authorizer ran (stringified values for REST).
    pub authorizer: Option<&'a serde_json::Map<String, Value>>,
}

impl ProxyRequest<'_> {
    fn user_agent(&self) -> Option<&str> {
        self.headers
            .iter()
            .rev()
            .find(|(n, _)| n.eq_ignore_ascii_case("user-agent"))
            .map(|(_, v)| v.as_ref())
    }

    /// `/{stage}{path}`: `requestContext.path` of a REST event.
    fn stage_path(&self) -> String {
        let mut p = String::with_capacity(self.context.stage.len() + self.path.len() + 1);
        p.push('/');
        p.push_str(self.context.stage);
        if self.path != "/" {
            p.push_str(self.path);
        } else {
            p.push('/');
        }
        p
    }

    fn body(&self) -> Option<Cow<'_, str>> {
        if self.body.is_empty() {
            None
        } else if self.body_is_binary {
            Some(Cow::Owned(BASE64.encode(self.body)))
        } else {
            Some(String::from_utf8_lossy(self.body))
        }
    }
}

/// `requestTime`: `dd/MMM/yyyy:HH:mm:ss +0000`.
pub fn request_time(epoch_ms: u64) -> String {
    let ms = i64::try_from(epoch_ms).unwrap_or(0);
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%d/%b/%Y:%H:%M:%S +0000")
        .to_string()
}

/// `domainPrefix`: the first label of the host name.
fn domain_prefix(domain: &str) -> &str {
    domain.split('.').next().unwrap_or(domain)
}

/// Query parameters in order, percent-decoded. `+` stays `+`: API Gateway
/// decodes `%XX` only.
fn query_pairs(raw: Option<&str>) -> Vec<(Cow<'_, str>, Cow<'_, str>)> {
    let decode = |s| percent_decode_str(s).decode_utf8_lossy();
    raw.unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// Serialises `(key, value)` pairs as a JSON object, or `null` when empty.
struct Pairs<K, V>(Vec<(K, V)>);

impl<K: AsRef<str>, V: Serialize> Serialize for Pairs<K, V> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0.is_empty() {
            return s.serialize_none();
        }
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k.as_ref(), v)?;
        }
        map.end()
    }
}

/// Groups `pairs` by key (first-seen order), keeping every value.
fn group<K: AsRef<str> + PartialEq, V: AsRef<str>>(pairs: &[(K, V)]) -> Vec<(&str, Vec<&str>)> {
    let mut out: Vec<(&str, Vec<&str>)> = Vec::new();
    for (k, v) in pairs {
        match out.iter_mut().find(|(n, _)| *n == k.as_ref()) {
            Some((_, values)) => values.push(v.as_ref()),
            None => out.push((k.as_ref(), vec![v.as_ref()])),
        }
    }
    out
}

fn last_values<'p>(grouped: &[(&'p str, Vec<&'p str>)]) -> Vec<(&'p str, &'p str)> {
    grouped
        .iter()
        .map(|(k, vs)| (*k, *vs.last().expect("a group has a value")))
        .collect()
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct IdentityV1<'a> {
    access_key: Option<&'a str>,
    account_id: Option<&'a str>,
    /// Present for methods that require an API key, as on AWS.
    #[serde(skip_serializing_if = "Option::is_none")]
    api_key: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    api_key_id: Option<&'a str>,
    caller: Option<&'a str>,
    cognito_authentication_provider: Option<&'a str>,
    cognito_authentication_type: Option<&'a str>,
    cognito_identity_id: Option<&'a str>,
    cognito_identity_pool_id: Option<&'a str>,
    principal_org_id: Option<&'a str>,
    source_ip: &'a str,
    user: Option<&'a str>,
    user_agent: Option<&'a str>,
    user_arn: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RequestContextV1<'a> {
    account_id: &'a str,
    api_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    authorizer: Option<&'a serde_json::Map<String, Value>>,
    deployment_id: &'a str,
    domain_name: &'a str,
    domain_prefix: &'a str,
    extended_request_id: &'a str,
    http_method: &'a str,
    identity: IdentityV1<'a>,
    path: String,
    protocol: &'a str,
    request_id: &'a str,
    request_time: String,
    request_time_epoch: u64,
    resource_id: &'a str,
    resource_path: &'a str,
    stage: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EventV1<'a> {
    resource: &'a str,
    path: &'a str,
    http_method: &'a str,
    headers: Pairs<&'a str, &'a str>,
    multi_value_headers: Pairs<&'a str, Vec<&'a str>>,
    query_string_parameters: Pairs<&'a str, &'a str>,
    multi_value_query_string_parameters: Pairs<&'a str, Vec<&'a str>>,
    path_parameters: Pairs<&'a str, &'a str>,
    stage_variables: Pairs<&'a str, &'a str>,
    request_context: RequestContextV1<'a>,
    body: Option<Cow<'a, str>>,
    is_base64_encoded: bool,
}

/// The payload format 1.0 event (reference §3.1) as JSON bytes.
pub fn event_v1(request: &ProxyRequest<'_>) -> Vec<u8> {
    let c = request.context;
    let headers = group(&request.headers);
    let query = query_pairs(request.raw_query);
    let query = group(&query);
    let body = request.body();
    let event = EventV1 {
        resource: c.resource_path,
        path: request.path,
        http_method: request.method,
        headers: Pairs(last_values(&headers)),
        multi_value_headers: Pairs(headers.clone()),
        query_string_parameters: Pairs(last_values(&query)),
        multi_value_query_string_parameters: Pairs(query.clone()),
        path_parameters: Pairs(request.path_parameters.clone()),
        stage_variables: Pairs(
            request
                .stage_variables
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect(),
        ),
        request_context: RequestContextV1 {
            account_id: c.account_id,
            api_id: c.api_id,
            authorizer: request.authorizer,
            deployment_id: c.deployment_id,
            domain_name: c.domain_name,
            domain_prefix: domain_prefix(c.domain_name),
            extended_request_id: c.extended_request_id,
            http_method: request.method,
            identity: IdentityV1 {
                access_key: c.principal.map(|p| p.access_key_id.as_str()),
                account_id: c.principal.map(|p| p.account_id.as_str()),
                api_key: c.api_key,
                api_key_id: c.api_key_id,
                caller: c.principal.map(|p| p.unique_id.as_str()),
                cognito_authentication_provider: None,
                cognito_authentication_type: None,
                cognito_identity_id: None,
                cognito_identity_pool_id: None,
                principal_org_id: None,
                source_ip: c.source_ip,
                user: c.principal.map(|p| p.unique_id.as_str()),
                user_agent: request.user_agent(),
                user_arn: c.principal.map(|p| p.arn.as_str()),
            },
            path: request.stage_path(),
            protocol: c.protocol,
            request_id: c.request_id,
            request_time: request_time(c.request_time_epoch),
            request_time_epoch: c.request_time_epoch,
            resource_id: c.resource_id,
            resource_path: c.resource_path,
            stage: c.stage,
        },
        is_base64_encoded: request.body_is_binary && body.is_some(),
        body,
    };
    serde_json::to_vec(&event).expect("an event always serialises")
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct HttpV2<'a> {
    method: &'a str,
    path: &'a str,
    protocol: &'a str,
    source_ip: &'a str,
    user_agent: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RequestContextV2<'a> {
    account_id: &'a str,
    api_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    authorizer: Option<&'a serde_json::Map<String, Value>>,
    domain_name: &'a str,
    domain_prefix: &'a str,
    http: HttpV2<'a>,
    request_id: &'a str,
    route_key: &'a str,
    stage: &'a str,
    time: String,
    time_epoch: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EventV2<'a> {
    version: &'static str,
    route_key: &'a str,
    raw_path: &'a str,
    raw_query_string: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    cookies: Vec<&'a str>,
    headers: Pairs<&'a str, String>,
    #[serde(skip_serializing_if = "is_empty_pairs")]
    query_string_parameters: Pairs<Cow<'a, str>, String>,
    #[serde(skip_serializing_if = "is_empty_pairs")]
    path_parameters: Pairs<&'a str, &'a str>,
    #[serde(skip_serializing_if = "is_empty_pairs")]
    stage_variables: Pairs<&'a str, &'a str>,
    request_context: RequestContextV2<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<Cow<'a, str>>,
    is_base64_encoded: bool,
}

fn is_empty_pairs<K, V>(p: &Pairs<K, V>) -> bool {
    p.0.is_empty()
}

/// What a 2.0 event needs beyond a [`ProxyRequest`]: HTTP APIs address
/// routes by key and may serve a `$default` stage.
#[derive(Debug, Clone, Copy)]
pub struct RouteV2<'a> {
    /// `GET /pets/{id}` or `$default`.
    pub route_key: &'a str,
    /// The path as received, with the stage prefix unless the stage is `$default`.
    pub raw_path: &'a str,
}

/// The payload format 2.0 event (reference §3.2) as JSON bytes: header
/// names lower case with repeated values joined by `,`, the `cookie` header
/// moved to `cookies`, repeated query parameters joined by `,`, and fields
/// that would be empty left out.
pub fn event_v2(request: &ProxyRequest<'_>, route: RouteV2<'_>) -> Vec<u8> {
    let c = request.context;
    let mut cookies = Vec::new();
    let mut headers: Vec<(&str, String)> = Vec::new();
    for (name, value) in &request.headers {
        if name.eq_ignore_ascii_case("cookie") {
            cookies.extend(value.split(';').map(str::trim).filter(|c| !c.is_empty()));
            continue;
        }
        match headers
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            Some((_, joined)) => {
                joined.push(',');
                joined.push_str(value);
            }
            None => headers.push((name, value.to_string())),
        }
    }
    let mut query: Vec<(Cow<str>, String)> = Vec::new();
    for (k, v) in query_pairs(request.raw_query) {
        match query.iter_mut().find(|(n, _)| *n == k) {
            Some((_, joined)) => {
                joined.push(',');
                joined.push_str(&v);
            }
            None => query.push((k, v.into_owned())),
        }
    }
    let body = request.body();
    let event = EventV2 {
        version: "2.0",
        route_key: route.route_key,
        raw_path: route.raw_path,
        raw_query_string: request.raw_query.unwrap_or(""),
        cookies,
        headers: Pairs(headers),
        query_string_parameters: Pairs(query),
        path_parameters: Pairs(request.path_parameters.clone()),
        stage_variables: Pairs(
            request
                .stage_variables
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect(),
        ),
        request_context: RequestContextV2 {
            account_id: c.account_id,
            api_id: c.api_id,
            authorizer: request.authorizer,
            domain_name: c.domain_name,
            domain_prefix: domain_prefix(c.domain_name),
            http: HttpV2 {
                method: request.method,
                path: route.raw_path,
                protocol: c.protocol,
                source_ip: c.source_ip,
                user_agent: request.user_agent().unwrap_or(""),
            },
            request_id: c.request_id,
            route_key: route.route_key,
            stage: c.stage,
            time: request_time(c.request_time_epoch),
            time_epoch: c.request_time_epoch,
        },
        is_base64_encoded: request.body_is_binary && body.is_some(),
        body,
    };
    serde_json::to_vec(&event).expect("an event always serialises")
}

/// A function's proxy answer, ready to send.
#[derive(Debug, Clone, PartialEq)]
pub struct ProxyAnswer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// Why a function's answer is not a valid proxy response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    #[error("the function's answer is not JSON: {0}")]
    NotJson(String),
    #[error("the function's answer is not a JSON object")]
    NotAnObject,
    #[error("unexpected field {0:?} in the function's answer")]
    UnknownField(String),
    #[error("invalid statusCode {0}")]
    StatusCode(String),
    #[error("invalid {field}: {reason}")]
    Headers { field: &'static str, reason: String },
    #[error("body is not a string")]
    Body,
    #[error("isBase64Encoded is not a boolean")]
    Base64Flag,
    #[error("body is not valid base64")]
    Base64Body,
    #[error("cookies is not a list of strings")]
    Cookies,
}

/// Headers a function may not set: the gateway frames the answer itself.
fn framing_header(name: &HeaderName) -> bool {
    name == header::CONTENT_LENGTH
        || name == header::TRANSFER_ENCODING
        || name == header::CONNECTION
        || name.as_str() == "keep-alive"
}

fn status_code(value: &Value) -> Result<StatusCode, Malformed> {
    let bad = || Malformed::StatusCode(value.to_string());
    let n = match value {
        Value::Number(n) => n.as_u64().ok_or_else(bad)?,
        Value::String(s) => s.trim().parse::<u64>().map_err(|_| bad())?,
        _ => return Err(bad()),
    };
    u16::try_from(n)
        .ok()
        .filter(|n| (100..=599).contains(n))
        .and_then(|n| StatusCode::from_u16(n).ok())
        .ok_or_else(bad)
}

/// A header value as a function may give it: a string, or a number or
/// boolean stringified. `None` for `null`.
fn header_text(field: &'static str, value: &Value) -> Result<Option<String>, Malformed> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        Value::Bool(b) => Ok(Some(b.to_string())),
        Value::Number(n) => Ok(Some(n.to_string())),
        other => Err(Malformed::Headers {
            field,
            reason: format!("value {other} is not a string"),
        }),
    }
}

fn header_pair(
    field: &'static str,
    name: &str,
    value: &str,
) -> Result<(HeaderName, HeaderValue), Malformed> {
    let bad = |what: &str| Malformed::Headers {
        field,
        reason: format!("invalid header {what} {name:?}"),
    };
    let n = HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad("name"))?;
    let v = HeaderValue::from_str(value).map_err(|_| bad("value for"))?;
    Ok((n, v))
}

fn object<'v>(
    field: &'static str,
    value: Option<&'v Value>,
) -> Result<Option<&'v serde_json::Map<String, Value>>, Malformed> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(other) => Err(Malformed::Headers {
            field,
            reason: format!("{other} is not an object"),
        }),
    }
}

fn base64_flag(value: Option<&Value>) -> Result<bool, Malformed> {
    match value {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(Malformed::Base64Flag),
    }
}

fn body_text(value: Option<&Value>) -> Result<&str, Malformed> {
    match value {
        None | Some(Value::Null) => Ok(""),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(Malformed::Body),
    }
}

fn decode_body(text: &str) -> Result<Bytes, Malformed> {
    BASE64
        .decode(text.trim())
        .map(Bytes::from)
        .map_err(|_| Malformed::Base64Body)
}

fn default_content_type(headers: &mut HeaderMap) {
    if !headers.contains_key(header::CONTENT_TYPE) {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
}

fn parse_json(payload: &[u8]) -> Result<Value, Malformed> {
    serde_json::from_slice(payload).map_err(|e| Malformed::NotJson(e.to_string()))
}

/// Parses a payload format 1.0 answer (reference §3.3): exactly the fields
/// `statusCode` (default 200; a number or numeric string), `headers`,
/// `multiValueHeaders` (their values first, then `headers` values not among
/// them), `body` and `isBase64Encoded`; anything else is [`Malformed`].
/// A base64 body is decoded only when `decode_base64` (the caller's `Accept`
/// matched a binary media type); otherwise it passes verbatim, as on AWS.
pub fn parse_v1(payload: &[u8], decode_base64: bool) -> Result<ProxyAnswer, Malformed> {
    let value = parse_json(payload)?;
    let Value::Object(answer) = &value else {
        return Err(Malformed::NotAnObject);
    };
    if let Some(unknown) = answer.keys().find(|k| {
        !matches!(
            k.as_str(),
            "statusCode" | "headers" | "multiValueHeaders" | "body" | "isBase64Encoded"
        )
    }) {
        return Err(Malformed::UnknownField(unknown.clone()));
    }
    let status = match answer.get("statusCode") {
        None | Some(Value::Null) => StatusCode::OK,
        Some(v) => status_code(v)?,
    };
    let mut headers = HeaderMap::new();
    if let Some(multi) = object("multiValueHeaders", answer.get("multiValueHeaders"))? {
        for (name, values) in multi {
            let values = match values {
                Value::Null => continue,
                Value::Array(values) => values,
                other => {
                    return Err(Malformed::Headers {
                        field: "multiValueHeaders",
                        reason: format!("{name}: {other} is not a list"),
                    });
                }
            };
            for value in values {
                if let Some(text) = header_text("multiValueHeaders", value)? {
                    let (n, v) = header_pair("multiValueHeaders", name, &text)?;
                    if !framing_header(&n) {
                        headers.append(n, v);
                    }
                }
            }
        }
    }
    if let Some(single) = object("headers", answer.get("headers"))? {
        for (name, value) in single {
            if let Some(text) = header_text("headers", value)? {
                let (n, v) = header_pair("headers", name, &text)?;
                let duplicate = headers.get_all(&n).iter().any(|existing| existing == v);
                if !framing_header(&n) && !duplicate {
                    headers.append(n, v);
                }
            }
        }
    }
    default_content_type(&mut headers);
    let text = body_text(answer.get("body"))?;
    let body = if base64_flag(answer.get("isBase64Encoded"))? && decode_base64 {
        decode_body(text)?
    } else {
        Bytes::copy_from_slice(text.as_bytes())
    };
    Ok(ProxyAnswer {
        status,
        headers,
        body,
    })
}

/// Parses a payload format 2.0 answer (reference §3.3): an object with
/// `statusCode` is a structured answer (`cookies` become `Set-Cookie`
/// headers, a base64 body is decoded); any other JSON is the body of a 200
/// `application/json` answer (a JSON string: its text). Only invalid JSON
/// or an invalid structured answer is [`Malformed`].
pub fn parse_v2(payload: &[u8]) -> Result<ProxyAnswer, Malformed> {
    let value = parse_json(payload)?;
    let structured = match &value {
        Value::Object(answer) if answer.contains_key("statusCode") => answer,
        Value::String(s) => return Ok(inferred(Bytes::copy_from_slice(s.as_bytes()))),
        _ => return Ok(inferred(Bytes::copy_from_slice(payload))),
    };
    let status = status_code(&structured["statusCode"])?;
    let mut headers = HeaderMap::new();
    if let Some(single) = object("headers", structured.get("headers"))? {
        for (name, value) in single {
            if let Some(text) = header_text("headers", value)? {
                let (n, v) = header_pair("headers", name, &text)?;
                if !framing_header(&n) {
                    headers.append(n, v);
                }
            }
        }
    }
    match structured.get("cookies") {
        None | Some(Value::Null) => {}
        Some(Value::Array(cookies)) => {
            for cookie in cookies {
                let cookie = cookie.as_str().ok_or(Malformed::Cookies)?;
                let v = HeaderValue::from_str(cookie).map_err(|_| Malformed::Cookies)?;
                headers.append(header::SET_COOKIE, v);
            }
        }
        Some(_) => return Err(Malformed::Cookies),
    }
    default_content_type(&mut headers);
    let text = body_text(structured.get("body"))?;
    let body = if base64_flag(structured.get("isBase64Encoded"))? {
        decode_body(text)?
    } else {
        Bytes::copy_from_slice(text.as_bytes())
    };
    Ok(ProxyAnswer {
        status,
        headers,
        body,
    })
}

fn inferred(body: Bytes) -> ProxyAnswer {
    let mut headers = HeaderMap::new();
    default_content_type(&mut headers);
    ProxyAnswer {
        status: StatusCode::OK,
        headers,
        body,
    }
}

/// An API's `binaryMediaTypes`, matched against `Content-Type` (request
/// bodies) and `Accept` (base64 answers). `type/*` and `*/*` are wildcards.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BinaryMediaTypes(Box<[Box<str>]>);

impl BinaryMediaTypes {
    pub fn new(types: &[String]) -> Self {
        Self(
            types
                .iter()
                .map(|t| t.trim().to_ascii_lowercase().into_boxed_str())
                .filter(|t| !t.is_empty())
                .collect(),
        )
    }

    /// Whether the media type `media` (parameters allowed) is binary.
    pub fn matches(&self, media: &str) -> bool {
        let media = media.split(';').next().unwrap_or("").trim();
        if media.is_empty() {
            return false;
        }
        let media = media.to_ascii_lowercase();
        let major = media.split('/').next().unwrap_or("");
        self.0.iter().any(|t| {
            t.as_ref() == "*/*"
                || t.as_ref() == media
                || t.strip_suffix("/*").is_some_and(|m| m == major)
        })
    }

    /// Whether a request with these headers carries a binary body.
    pub fn request_is_binary(&self, headers: &HeaderMap) -> bool {
        !self.0.is_empty()
            && headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|ct| self.matches(ct))
    }

    /// Whether the caller accepts a binary answer (any `Accept` media range
    /// is a binary media type).
    pub fn accepts_binary(&self, headers: &HeaderMap) -> bool {
        !self.0.is_empty()
            && headers
                .get_all(header::ACCEPT)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .any(|range| self.matches(range))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn context() -> RequestContext<'static> {
        RequestContext {
            request_id: "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            extended_request_id: "TWegAcC4EowCHnA=",
            api_id: "gy415nuibc",
            stage: "testStage",
            account_id: "123456789012",
            deployment_id: "wz1b2c",
            resource_id: "roq9wj",
            resource_path: "/{proxy+}",
            http_method: "POST",
            path: "/testStage/hello/world",
            protocol: "HTTP/1.1",
            domain_name: "gy415nuibc.execute-api.us-east-1.amazonaws.com",
            source_ip: "192.168.196.186",
            request_time_epoch: 1_589_522_469_693,
            ..Default::default()
        }
    }

    fn request<'a>(
        ctx: &'a RequestContext<'a>,
        vars: &'a BTreeMap<String, String>,
        body: &'a [u8],
    ) -> ProxyRequest<'a> {
        ProxyRequest {
            method: "POST",
            headers: vec![
                ("accept", "*/*".into()),
                ("content-type", "application/json".into()),
                ("user-agent", "PostmanRuntime/2.4.5".into()),
                ("x-multi", "one".into()),
                ("x-multi", "two".into()),
                ("cookie", "a=1; b=2".into()),
            ],
            path: "/hello/world",
            raw_query: Some("name=me&category=electronics&category=books&sp=a%20b+c&flag"),
            path_parameters: vec![("proxy", "hello/world")],
            stage_variables: vars,
            body,
            body_is_binary: false,
            context: ctx,
            authorizer: None,
        }
    }

    #[test]
    fn request_time_is_aws_format() {
        assert_eq!(
            request_time(1_589_522_469_693),
            "15/May/2020:06:01:09 +0000"
        );
        assert_eq!(request_time(0), "01/Jan/1970:00:00:00 +0000");
    }

    #[test]
    fn event_v1_has_every_field_of_the_reference() {
        let ctx = context();
        let vars = BTreeMap::from([("fn".to_string(), "echo".to_string())]);
        let event: Value =
            serde_json::from_slice(&event_v1(&request(&ctx, &vars, b"{\"a\": 1}"))).unwrap();
        assert_eq!(
            event,
            json!({
                "resource": "/{proxy+}",
                "path": "/hello/world",
                "httpMethod": "POST",
                "headers": {"accept": "*/*", "content-type": "application/json",
                            "user-agent": "PostmanRuntime/2.4.5", "x-multi": "two",
                            "cookie": "a=1; b=2"},
                "multiValueHeaders": {"accept": ["*/*"], "content-type": ["application/json"],
                                      "user-agent": ["PostmanRuntime/2.4.5"], "x-multi": ["one", "two"],
                                      "cookie": ["a=1; b=2"]},
                "queryStringParameters": {"name": "me", "category": "books", "sp": "a b+c", "flag": ""},
                "multiValueQueryStringParameters": {"name": ["me"], "category": ["electronics", "books"],
                                                    "sp": ["a b+c"], "flag": [""]},
                "pathParameters": {"proxy": "hello/world"},
                "stageVariables": {"fn": "echo"},
                "requestContext": {
                    "accountId": "123456789012", "apiId": "gy415nuibc", "deploymentId": "wz1b2c",
                    "domainName": "gy415nuibc.execute-api.us-east-1.amazonaws.com",
                    "domainPrefix": "gy415nuibc", "extendedRequestId": "TWegAcC4EowCHnA=",
                    "httpMethod": "POST",
                    "identity": {"accessKey": null, "accountId": null, "caller": null,
                                 "cognitoAuthenticationProvider": null, "cognitoAuthenticationType": null,
                                 "cognitoIdentityId": null, "cognitoIdentityPoolId": null,
                                 "principalOrgId": null, "sourceIp": "192.168.196.186", "user": null,
                                 "userAgent": "PostmanRuntime/2.4.5", "userArn": null},
                    "path": "/testStage/hello/world", "protocol": "HTTP/1.1",
                    "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
                    "requestTime": "15/May/2020:06:01:09 +0000", "requestTimeEpoch": 1_589_522_469_693u64,
                    "resourceId": "roq9wj", "resourcePath": "/{proxy+}", "stage": "testStage"
                },
                "body": "{\"a\": 1}",
                "isBase64Encoded": false
            })
        );
    }

    #[test]
    fn event_v1_nulls_what_is_absent_and_base64_encodes_binary() {
        let ctx = context();
        let vars = BTreeMap::new();
        let mut req = request(&ctx, &vars, b"");
        req.headers.clear();
        req.raw_query = None;
        req.path_parameters.clear();
        req.path = "/";
        let event: Value = serde_json::from_slice(&event_v1(&req)).unwrap();
        for field in [
            "headers",
            "multiValueHeaders",
            "queryStringParameters",
            "multiValueQueryStringParameters",
            "pathParameters",
            "stageVariables",
            "body",
        ] {
            assert_eq!(event[field], Value::Null, "{field}");
        }
        assert_eq!(
            event["requestContext"]["identity"]["userAgent"],
            Value::Null
        );
        assert_eq!(event["requestContext"]["path"], "/testStage/");
        assert_eq!(event["isBase64Encoded"], false);

        let mut req = request(&ctx, &vars, &[0xff, 0x00, 0x10]);
        req.body_is_binary = true;
        let event: Value = serde_json::from_slice(&event_v1(&req)).unwrap();
        assert_eq!(event["body"], "/wAQ");
        assert_eq!(event["isBase64Encoded"], true);
    }

    #[test]
    fn event_v1_carries_an_authorizer_when_one_ran() {
        let ctx = context();
        let vars = BTreeMap::new();
        let authorizer = json!({"principalId": "admin", "clientId": "1"});
        let mut req = request(&ctx, &vars, b"");
        req.authorizer = authorizer.as_object();
        let event: Value = serde_json::from_slice(&event_v1(&req)).unwrap();
        assert_eq!(event["requestContext"]["authorizer"], authorizer);
        req.authorizer = None;
        let event: Value = serde_json::from_slice(&event_v1(&req)).unwrap();
        assert!(event["requestContext"].get("authorizer").is_none());
    }

    #[test]
    fn event_v1_names_an_iam_caller() {
        let principal = crate::auth::principals::Principal::compile(
            json!({
                "accessKeyId": "AKIAB", "accountId": "222222222222",
                "arn": "arn:aws:iam::222222222222:user/bob", "uniqueId": "AIDABOB", "admin": true,
            })
            .to_string()
            .as_bytes(),
        )
        .unwrap();
        let mut ctx = context();
        ctx.principal = Some(&principal);
        let vars = BTreeMap::new();
        let event: Value = serde_json::from_slice(&event_v1(&request(&ctx, &vars, b""))).unwrap();
        let identity = &event["requestContext"]["identity"];
        assert_eq!(identity["accessKey"], "AKIAB");
        assert_eq!(identity["accountId"], "222222222222");
        assert_eq!(identity["caller"], "AIDABOB");
        assert_eq!(identity["user"], "AIDABOB");
        assert_eq!(identity["userArn"], "arn:aws:iam::222222222222:user/bob");
    }

    #[test]
    fn event_v2_joins_repeats_and_moves_cookies() {
        let mut ctx = context();
        ctx.stage = "$default";
        let vars = BTreeMap::new();
        let req = request(&ctx, &vars, b"hi");
        let event: Value = serde_json::from_slice(&event_v2(
            &req,
            RouteV2 {
                route_key: "POST /hello/{proxy+}",
                raw_path: "/hello/world",
            },
        ))
        .unwrap();
        assert_eq!(
            event,
            json!({
                "version": "2.0",
                "routeKey": "POST /hello/{proxy+}",
                "rawPath": "/hello/world",
                "rawQueryString": "name=me&category=electronics&category=books&sp=a%20b+c&flag",
                "cookies": ["a=1", "b=2"],
                "headers": {"accept": "*/*", "content-type": "application/json",
                            "user-agent": "PostmanRuntime/2.4.5", "x-multi": "one,two"},
                "queryStringParameters": {"name": "me", "category": "electronics,books",
                                          "sp": "a b+c", "flag": ""},
                "pathParameters": {"proxy": "hello/world"},
                "requestContext": {
                    "accountId": "123456789012", "apiId": "gy415nuibc",
                    "domainName": "gy415nuibc.execute-api.us-east-1.amazonaws.com",
                    "domainPrefix": "gy415nuibc",
                    "http": {"method": "POST", "path": "/hello/world", "protocol": "HTTP/1.1",
                             "sourceIp": "192.168.196.186", "userAgent": "PostmanRuntime/2.4.5"},
                    "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
                    "routeKey": "POST /hello/{proxy+}", "stage": "$default",
                    "time": "15/May/2020:06:01:09 +0000", "timeEpoch": 1_589_522_469_693u64
                },
                "body": "hi",
                "isBase64Encoded": false
            })
        );
        let mut bare = request(&ctx, &vars, b"");
        bare.headers.clear();
        bare.raw_query = None;
        bare.path_parameters.clear();
        let event: Value = serde_json::from_slice(&event_v2(
            &bare,
            RouteV2 {
                route_key: "$default",
                raw_path: "/",
            },
        ))
        .unwrap();
        for absent in [
            "cookies",
            "queryStringParameters",
            "pathParameters",
            "stageVariables",
            "body",
        ] {
            assert!(event.get(absent).is_none(), "{absent}");
        }
        assert_eq!(event["rawQueryString"], "");
    }

    fn v1(answer: Value) -> Result<ProxyAnswer, Malformed> {
        parse_v1(answer.to_string().as_bytes(), false)
    }

    fn header_values(answer: &ProxyAnswer, name: &str) -> Vec<String> {
        answer
            .headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect()
    }

    /// Reference §3.3 / §16.2, row by row.
    #[test]
    fn parse_v1_follows_the_recorded_table() {
        let a = v1(json!({"statusCode": 200})).unwrap();
        assert_eq!(a.status, 200);
        assert!(a.body.is_empty());
        assert_eq!(header_values(&a, "content-type"), ["application/json"]);

        let a = v1(json!({"headers": {"test-header": "value"}})).unwrap();
        assert_eq!(a.status, 200);
        assert_eq!(header_values(&a, "test-header"), ["value"]);

        assert_eq!(v1(json!({"statusCode": "201"})).unwrap().status, 201);

        let a = v1(json!({"statusCode": 200, "headers": {"header-bool": true, "n": 5}})).unwrap();
        assert_eq!(header_values(&a, "header-bool"), ["true"]);
        assert_eq!(header_values(&a, "n"), ["5"]);

        assert_eq!(
            v1(json!({"statusCode": 200, "headers": null}))
                .unwrap()
                .status,
            200
        );

        let a = v1(
            json!({"statusCode": 200, "multiValueHeaders": {"test-multi": ["value1", "value2"]}}),
        )
        .unwrap();
        assert_eq!(header_values(&a, "test-multi"), ["value1", "value2"]);

        let a = v1(json!({"statusCode": 200,
            "headers": {"test-multi": "value-solo", "same": "x"},
            "multiValueHeaders": {"tesT-Multi": ["value-multi"], "same": ["x"]}}))
        .unwrap();
        assert_eq!(
            header_values(&a, "test-multi"),
            ["value-multi", "value-solo"]
        );
        assert_eq!(header_values(&a, "same"), ["x"]);

        let a = v1(json!({"statusCode": 200, "body": "dGVzdC1kYXRh", "isBase64Encoded": true}))
            .unwrap();
        assert_eq!(a.body.as_ref(), b"dGVzdC1kYXRh");
        let a = parse_v1(
            br#"{"statusCode": 200, "body": "dGVzdC1kYXRh", "isBase64Encoded": true}"#,
            true,
        )
        .unwrap();
        assert_eq!(a.body.as_ref(), b"test-data");

        let a = v1(json!({"statusCode": 404, "body": "nope",
            "headers": {"Content-Type": "text/plain", "Content-Length": "99"}}))
        .unwrap();
        assert_eq!(a.status, 404);
        assert_eq!(a.body.as_ref(), b"nope");
        assert_eq!(header_values(&a, "content-type"), ["text/plain"]);
        assert!(a.headers.get("content-length").is_none());
    }

    #[test]
    fn parse_v1_refuses_every_malformed_answer() {
        use Malformed::*;
        type Check = fn(&Malformed) -> bool;
        let cases: Vec<(&[u8], Check)> = vec![
            (b"not json", |e| matches!(e, NotJson(_))),
            (b"", |e| matches!(e, NotJson(_))),
            (br#""justAString""#, |e| *e == NotAnObject),
            (b"[1, 2]", |e| *e == NotAnObject),
            (b"42", |e| *e == NotAnObject),
            (b"null", |e| *e == NotAnObject),
            (br#"{"statusCode": 200, "wrongValue": "x"}"#, |e| {
                *e == UnknownField("wrongValue".into())
            }),
            (br#"{"statusCode": "test"}"#, |e| matches!(e, StatusCode(_))),
            (br#"{"statusCode": 99}"#, |e| matches!(e, StatusCode(_))),
            (br#"{"statusCode": 600}"#, |e| matches!(e, StatusCode(_))),
            (br#"{"statusCode": 200.5}"#, |e| matches!(e, StatusCode(_))),
            (br#"{"statusCode": true}"#, |e| matches!(e, StatusCode(_))),
            (
                br#"{"statusCode": 200, "multiValueHeaders": {"a": "b"}}"#,
                |e| {
                    matches!(
                        e,
                        Headers {
                            field: "multiValueHeaders",
                            ..
                        }
                    )
                },
            ),
            (br#"{"statusCode": 200, "multiValueHeaders": ["a"]}"#, |e| {
                matches!(
                    e,
                    Headers {
                        field: "multiValueHeaders",
                        ..
                    }
                )
            }),
            (br#"{"statusCode": 200, "headers": {"a": {"b": 1}}}"#, |e| {
                matches!(
                    e,
                    Headers {
                        field: "headers",
                        ..
                    }
                )
            }),
            (br#"{"statusCode": 200, "headers": "a: b"}"#, |e| {
                matches!(
                    e,
                    Headers {
                        field: "headers",
                        ..
                    }
                )
            }),
            (
                br#"{"statusCode": 200, "headers": {"bad name": "x"}}"#,
                |e| {
                    matches!(
                        e,
                        Headers {
                            field: "headers",
                            ..
                        }
                    )
                },
            ),
            (
                br#"{"statusCode": 200, "headers": {"a": "line\nbreak"}}"#,
                |e| {
                    matches!(
                        e,
                        Headers {
                            field: "headers",
                            ..
                        }
                    )
                },
            ),
            (br#"{"statusCode": 200, "body": {"a": 1}}"#, |e| *e == Body),
            (br#"{"statusCode": 200, "body": 5}"#, |e| *e == Body),
            (br#"{"statusCode": 200, "isBase64Encoded": "yes"}"#, |e| {
                *e == Base64Flag
            }),
        ];
        for (payload, expected) in cases {
            let err = parse_v1(payload, false).unwrap_err();
            assert!(
                expected(&err),
                "{}: {err:?}",
                String::from_utf8_lossy(payload)
            );
        }
        assert_eq!(
            parse_v1(
                br#"{"statusCode": 200, "body": "%%%", "isBase64Encoded": true}"#,
                true
            ),
            Err(Malformed::Base64Body)
        );
    }

    #[test]
    fn parse_v2_infers_and_sets_cookies() {
        let a = parse_v2(br#""Hello from Lambda!""#).unwrap();
        assert_eq!(a.status, 200);
        assert_eq!(a.body.as_ref(), b"Hello from Lambda!");
        assert_eq!(header_values(&a, "content-type"), ["application/json"]);

        let raw = br#"{ "message": "Hello from Lambda!" }"#;
        let a = parse_v2(raw).unwrap();
        assert_eq!((a.status.as_u16(), a.body.as_ref()), (200, &raw[..]));
        assert_eq!(parse_v2(b"[1,2]").unwrap().body.as_ref(), b"[1,2]");
        assert_eq!(parse_v2(b"12").unwrap().body.as_ref(), b"12");

        let a = parse_v2(
            br#"{"statusCode": 201, "cookies": ["a=1; Path=/", "b=2"],
                 "headers": {"x-a": "1", "content-type": "text/plain"},
                 "body": "aGk=", "isBase64Encoded": true, "extra": 1}"#,
        )
        .unwrap();
        assert_eq!(a.status, 201);
        assert_eq!(header_values(&a, "set-cookie"), ["a=1; Path=/", "b=2"]);
        assert_eq!(header_values(&a, "content-type"), ["text/plain"]);
        assert_eq!(a.body.as_ref(), b"hi");
    }

    #[test]
    fn parse_v2_refuses_invalid_answers() {
        for payload in [
            &b"{not json"[..],
            br#"{"statusCode": "x"}"#,
            br#"{"statusCode": 200, "cookies": "a=1"}"#,
            br#"{"statusCode": 200, "cookies": [1]}"#,
            br#"{"statusCode": 200, "headers": []}"#,
            br#"{"statusCode": 200, "body": []}"#,
            br#"{"statusCode": 200, "body": "***", "isBase64Encoded": true}"#,
        ] {
            assert!(
                parse_v2(payload).is_err(),
                "{}",
                String::from_utf8_lossy(payload)
            );
        }
    }

    /// What real functions parse our events with: the `aws_lambda_events` types.
    #[test]
    fn events_deserialise_into_the_upstream_types() {
        use aws_lambda_events::apigw::{ApiGatewayProxyRequest, ApiGatewayV2httpRequest};
        let ctx = context();
        let vars = BTreeMap::from([("fn".to_string(), "echo".to_string())]);
        let req = request(&ctx, &vars, b"{\"a\": 1}");
        let v1: ApiGatewayProxyRequest = serde_json::from_slice(&event_v1(&req)).unwrap();
        assert_eq!(v1.resource.as_deref(), Some("/{proxy+}"));
        assert_eq!(v1.path.as_deref(), Some("/hello/world"));
        assert_eq!(v1.http_method, http::Method::POST);
        assert_eq!(v1.headers.get("x-multi").unwrap(), "two");
        let multi: Vec<_> = v1.multi_value_headers.get_all("x-multi").iter().collect();
        assert_eq!(multi, ["one", "two"]);
        assert_eq!(v1.query_string_parameters.first("category"), Some("books"));
        assert_eq!(
            v1.multi_value_query_string_parameters.all("category"),
            Some(vec!["electronics", "books"])
        );
        assert_eq!(
            v1.path_parameters.get("proxy").map(String::as_str),
            Some("hello/world")
        );
        assert_eq!(
            v1.stage_variables.get("fn").map(String::as_str),
            Some("echo")
        );
        assert_eq!(v1.body.as_deref(), Some("{\"a\": 1}"));
        assert!(!v1.is_base64_encoded);
        let rc = &v1.request_context;
        assert_eq!(rc.account_id.as_deref(), Some("123456789012"));
        assert_eq!(rc.resource_id.as_deref(), Some("roq9wj"));
        assert_eq!(rc.stage.as_deref(), Some("testStage"));
        assert_eq!(
            rc.request_id.as_deref(),
            Some("c6af9ac6-7b61-11e6-9a41-93e8deadbeef")
        );
        assert_eq!(
            rc.request_time.as_deref(),
            Some("15/May/2020:06:01:09 +0000")
        );
        assert_eq!(rc.request_time_epoch, 1_589_522_469_693);
        assert_eq!(rc.path.as_deref(), Some("/testStage/hello/world"));
        assert_eq!(rc.identity.source_ip.as_deref(), Some("192.168.196.186"));
        assert_eq!(
            rc.identity.user_agent.as_deref(),
            Some("PostmanRuntime/2.4.5")
        );
        assert_eq!(rc.domain_prefix.as_deref(), Some("gy415nuibc"));

        let v2: ApiGatewayV2httpRequest = serde_json::from_slice(&event_v2(
            &req,
            RouteV2 {
                route_key: "POST /hello/{proxy+}",
                raw_path: "/testStage/hello/world",
            },
        ))
        .unwrap();
        assert_eq!(v2.version.as_deref(), Some("2.0"));
        assert_eq!(v2.route_key.as_deref(), Some("POST /hello/{proxy+}"));
        assert_eq!(v2.raw_path.as_deref(), Some("/testStage/hello/world"));
        assert_eq!(v2.cookies, Some(vec!["a=1".to_string(), "b=2".to_string()]));
        assert_eq!(v2.headers.get("x-multi").unwrap(), "one,two");
        // The upstream type splits 2.0's comma-joined values again.
        assert_eq!(
            v2.query_string_parameters.all("category"),
            Some(vec!["electronics", "books"])
        );
        assert_eq!(v2.request_context.http.method, http::Method::POST);
        assert_eq!(
            v2.request_context.http.source_ip.as_deref(),
            Some("192.168.196.186")
        );
        assert_eq!(v2.request_context.time_epoch, 1_589_522_469_693);
        assert_eq!(v2.body.as_deref(), Some("{\"a\": 1}"));
    }

    #[test]
    fn binary_media_types_match_with_wildcards() {
        let types = BinaryMediaTypes::new(&["image/png".into(), "application/*".into()]);
        assert!(types.matches("image/png"));
        assert!(types.matches("IMAGE/PNG; q=1"));
        assert!(types.matches("application/octet-stream"));
        assert!(!types.matches("image/jpeg"));
        assert!(!types.matches(""));
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static("text/html, image/png;q=0.9"),
        );
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        assert!(types.accepts_binary(&headers));
        assert!(!types.request_is_binary(&headers));
        assert!(BinaryMediaTypes::new(&["*/*".into()]).request_is_binary(&headers));
        assert!(!BinaryMediaTypes::default().accepts_binary(&headers));
    }
}
