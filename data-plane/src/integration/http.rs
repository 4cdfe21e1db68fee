//! `HTTP_PROXY` and `HTTP` integrations: one backend call through the shared
//! pooled client, bounded by `timeoutInMillis` until response headers.
//!
//! - Proxy: the caller's method (for `ANY`), query, headers (minus hop-by-hop
//!   and Host, plus `X-Forwarded-*`) and body go to the backend; its status,
//!   headers (minus hop-by-hop) and streamed body come back.
//! - Non-proxy: the backend request is built from `requestParameters` and
//!   the request template (its `requestOverride` applied last), after
//!   `contentHandling`; the answer is the integration response selected by
//!   the backend status, rendered through its response template.
//!
//! Failures: timeout → 504 `INTEGRATION_TIMEOUT`; connect failure, reset or
//! any other transport error → `INTEGRATION_FAILURE` (504 `Internal server
//! error`, its default status per reference §2.1); `https` backends are
//! not supported yet (500 `API_CONFIGURATION_ERROR`).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ::http::header::{self, HeaderValue};
use ::http::uri::{Authority, Scheme};
use ::http::{HeaderMap, HeaderName, Method, Response, Uri};
use apigw_proto::gateway_response::ResponseType;
use http_body_util::{BodyExt, Limited};
use percent_encoding::{AsciiSet, CONTROLS, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;

use super::mapping::{RequestView, ResponseView, Side, ValueSource, header_name};
use super::{Call, Forwarded, Integration, IntegrationResponses, StageEnv, timeout};
use crate::binary::{BinaryMediaTypes, ContentHandling};
use crate::body::Body;
use crate::gateway_response::{GatewayError, string_map};
use crate::transform::{Inputs, RequestPlan, RequestTemplates};

/// The keep-alive backend client (one per proxy worker): the call runs in
/// the request's own task (`apigw-http1-client`).
pub type BackendClient = apigw_http1_client::Client;
use apigw_http1_client::{Outgoing, ResponseBody, Target};

/// Largest backend body we buffer (for `integration.response.body`).
const MAX_BUFFERED_RESPONSE: usize = 10 * 1024 * 1024;

/// The pooled keep-alive client HTTP integrations share (one per proxy worker).
pub fn backend_client() -> BackendClient {
    BackendClient::new()
}

/// Characters escaped when a parameter value enters a URI path. `/` stays, so
/// a greedy `{proxy}` value keeps its segments.
const PATH_VALUE: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'|')
    .add(b'\\')
    .add(b'^');

/// Everything but unreserved characters, for query names and values.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

#[derive(Debug, Clone, PartialEq, Eq)]
enum UriPart {
    Text(Box<str>),
    Param(Box<str>),
}

/// The integration `uri` with stage variables already substituted and the
/// `{name}` placeholders left to fill per request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UriTemplate(Vec<UriPart>);

impl UriTemplate {
    /// Substitutes `${stageVariables.x}` (unknown ones become empty) and
    /// splits `{name}` placeholders out. Unbalanced braces are an error.
    pub fn parse(uri: &str, stage_variables: &BTreeMap<String, String>) -> Result<Self, String> {
        let mut expanded = String::with_capacity(uri.len());
        let mut rest = uri;
        while let Some(at) = rest.find("${") {
            expanded.push_str(&rest[..at]);
            let end = rest[at..]
                .find('}')
                .ok_or_else(|| format!("unclosed ${{ in uri {uri:?}"))?;
            let name = &rest[at + 2..at + end];
            let var = name
                .strip_prefix("stageVariables.")
                .ok_or_else(|| format!("unsupported variable ${{{name}}} in uri"))?;
            expanded.push_str(stage_variables.get(var).map_or("", String::as_str));
            rest = &rest[at + end + 1..];
        }
        expanded.push_str(rest);

        let mut parts = Vec::new();
        let mut rest = expanded.as_str();
        while let Some(open) = rest.find(['{', '}']) {
            let unbalanced = || format!("unbalanced braces in uri {uri:?}");
            if rest.as_bytes()[open] == b'}' {
                return Err(unbalanced());
            }
            let close = rest[open..]
                .find('}')
                .map(|i| open + i)
                .ok_or_else(unbalanced)?;
            let raw = &rest[open + 1..close];
            let name = raw.strip_suffix('+').unwrap_or(raw);
            if name.is_empty() || name.contains(['{', '/']) {
                return Err(format!("invalid placeholder {{{raw}}} in uri {uri:?}"));
            }
            if open > 0 {
                parts.push(UriPart::Text(rest[..open].into()));
            }
            parts.push(UriPart::Param(name.into()));
            rest = &rest[close + 1..];
        }
        if !rest.is_empty() {
            parts.push(UriPart::Text(rest.into()));
        }
        Ok(Self(parts))
    }

    /// `http://{authority}` split off a template whose first part fixes it
    /// and whose path then begins: the authority and the path's template.
    fn split_origin(&self) -> Option<(Authority, UriTemplate)> {
        let Some(UriPart::Text(first)) = self.0.first() else {
            return None;
        };
        let rest = first.strip_prefix("http://")?;
        let end = rest.find(['/', '?', '#'])?;
        if rest.as_bytes()[end] != b'/' {
            return None;
        }
        let authority = Authority::try_from(&rest[..end]).ok()?;
        let mut parts = self.0.clone();
        parts[0] = UriPart::Text(rest[end..].into());
        Some((authority, Self(parts)))
    }

    fn sample(&self) -> String {
        self.0
            .iter()
            .map(|p| match p {
                UriPart::Text(t) => t.as_ref(),
                UriPart::Param(_) => "x",
            })
            .collect()
    }
}

/// Where a `requestParameters` entry writes.
#[derive(Debug, Clone)]
struct RequestMappings {
    path: Vec<(Box<str>, ValueSource)>,
    query: Vec<(Box<str>, ValueSource)>,
    header: Vec<(HeaderName, ValueSource)>,
}

#[derive(Debug)]
pub struct HttpIntegration {
    proxy: bool,
    /// `None` for `ANY`: the caller's method.
    method: Option<Method>,
    /// The whole `uri`, or only its path and query when `origin` is known.
    uri: UriTemplate,
    /// The backend's authority when the template fixes it (`http://host:port/…`
    /// with no placeholder before the path): parsed once, not per request.
    origin: Option<Authority>,
    timeout: Duration,
    mappings: RequestMappings,
    responses: IntegrationResponses,
    /// Non-proxy: request templates, `contentHandling` and what they read.
    requests: RequestTemplates,
    content_handling: ContentHandling,
    binary: BinaryMediaTypes,
    stage_variables: BTreeMap<String, String>,
}

/// A non-proxy backend request's body and `requestOverride`s.
#[derive(Debug, Default)]
struct Prepared {
    body: bytes::Bytes,
    overrides: apigw_vtl::aws::Overrides,
}

impl HttpIntegration {
    pub fn compile(
        integration: &Value,
        proxy: bool,
        env: &StageEnv<'_>,
    ) -> Result<Integration, String> {
        let stage_variables = env.stage_variables;
        let method = match integration.get("httpMethod").and_then(Value::as_str) {
            None | Some("ANY") => None,
            Some(m) => Some(
                Method::from_bytes(m.as_bytes())
                    .map_err(|_| format!("invalid integration httpMethod {m:?}"))?,
            ),
        };
        let raw_uri = integration
            .get("uri")
            .and_then(Value::as_str)
            .ok_or("HTTP integration without a uri")?;
        let uri = UriTemplate::parse(raw_uri, stage_variables)?;
        let mut mappings = RequestMappings {
            path: Vec::new(),
            query: Vec::new(),
            header: Vec::new(),
        };
        for (target, expr) in string_map(integration.get("requestParameters"))? {
            let source = ValueSource::parse(expr, Side::IntegrationRequest, stage_variables)?;
            let rest = target
                .strip_prefix("integration.request.")
                .ok_or_else(|| format!("invalid request parameter {target:?}"))?;
            match rest.split_once('.') {
                Some(("path", name)) if !name.is_empty() => {
                    mappings.path.push((name.into(), source))
                }
                Some(("querystring", name)) if !name.is_empty() => {
                    mappings.query.push((name.into(), source))
                }
                Some(("header", name)) => mappings.header.push((header_name(name)?, source)),
                _ => return Err(format!("invalid request parameter {target:?}")),
            }
        }
        let timeout = timeout(integration)?;
        let (responses, requests) = if proxy {
            (IntegrationResponses::default(), RequestTemplates::default())
        } else {
            (
                IntegrationResponses::compile(integration, stage_variables)?,
                RequestTemplates::compile(integration)?,
            )
        };
        let content_handling = ContentHandling::parse(integration.get("contentHandling"))?;
        // A URI that cannot work (a missing stage variable, https) breaks this
        // route only, not the whole configuration.
        let sample = uri.sample();
        match Uri::try_from(sample.as_str()) {
            Ok(u) if u.scheme() == Some(&Scheme::HTTP) && u.authority().is_some() => {}
            Ok(u) if u.scheme() == Some(&Scheme::HTTPS) => {
                return Ok(Integration::unavailable(&format!(
                    "https backends are not supported yet ({raw_uri})"
                )));
            }
            _ => {
                return Ok(Integration::unavailable(&format!(
                    "integration uri {raw_uri:?} is not an absolute http URL for this stage"
                )));
            }
        }
        let (origin, uri) = match uri.split_origin() {
            Some((authority, path)) => (Some(authority), path),
            None => (None, uri),
        };
        Ok(Integration::Http(Self {
            proxy,
            method,
            uri,
            origin,
            timeout,
            mappings,
            responses,
            requests,
            content_handling,
            binary: BinaryMediaTypes::new(env.binary_media_types),
            stage_variables: stage_variables.clone(),
        }))
    }

    /// The backend body for a non-proxy call: `contentHandling`, then the
    /// request template (or passthrough, or 415).
    fn prepare(&self, call: &Call<'_>) -> Result<Prepared, GatewayError> {
        let converted = crate::binary::convert(
            call.body.clone(),
            self.binary.request_is_binary(call.headers),
            self.content_handling,
        )?;
        if !converted.templatable {
            return Ok(Prepared {
                body: converted.body,
                ..Prepared::default()
            });
        }
        match self.requests.plan(call.headers)? {
            RequestPlan::PassThrough => Ok(Prepared {
                body: converted.body,
                ..Prepared::default()
            }),
            RequestPlan::Transform(t) => {
                let rendered = self
                    .inputs(call.view)
                    .render(&t.template, &converted.body)?;
                Ok(Prepared {
                    body: bytes::Bytes::from(rendered.body),
                    overrides: rendered.overrides,
                })
            }
        }
    }

    fn inputs<'v>(&'v self, view: &'v RequestView<'v>) -> Inputs<'v> {
        Inputs {
            view,
            stage_variables: &self.stage_variables,
        }
    }

    pub(super) async fn invoke(
        &self,
        call: Call<'_>,
        integration_latency: &mut Option<Duration>,
    ) -> Result<Response<Body>, GatewayError> {
        let view = call.view;
        let prepared = if self.proxy {
            Prepared {
                body: call.body.clone(),
                ..Prepared::default()
            }
        } else {
            self.prepare(&call)?
        };
        let destination = self.destination(view, &prepared.overrides)?;
        let target = Target::new(&destination.target)
            .ok_or_else(|| GatewayError::new(ResponseType::ApiConfigurationError))?;
        let method = self.method.as_ref().unwrap_or(call.method);
        let mut headers = HeaderMap::new();
        let mut forwarded = Cow::Borrowed(&[][..]);
        if self.proxy {
            forwarded = forwarded_lines(call.headers, call.caller);
        } else {
            if let Some(ct) = call.headers.get(header::CONTENT_TYPE) {
                headers.insert(header::CONTENT_TYPE, ct.clone());
            }
            if let Ok(ua) =
                HeaderValue::from_str(&format!("AmazonAPIGateway_{}", view.context.api_id))
            {
                headers.insert(header::USER_AGENT, ua);
            }
            for (name, source) in &self.mappings.header {
                if let Some(value) = source.resolve(view, None)
                    && let Ok(value) = HeaderValue::from_str(&value)
                {
                    headers.insert(name.clone(), value);
                }
            }
            for (name, value) in &prepared.overrides.request_headers {
                if let (Ok(name), Ok(value)) = (
                    HeaderName::from_bytes(name.as_bytes()),
                    HeaderValue::from_str(value),
                ) {
                    headers.insert(name, value);
                }
            }
        }

        // A proxy sends its caller's fields (less the hop-by-hop ones) from
        // the caller's own map; other calls, the map made above.
        let proxy_omits = self.proxy.then(|| proxy_omits(call.headers));
        let (headers_out, omit): (&HeaderMap, &(dyn Fn(&HeaderName) -> bool + Sync)) =
            match &proxy_omits {
                Some(omits) => (call.headers, omits),
                None => (&headers, &|_| false),
            };
        let started = Instant::now();
        let outgoing = Outgoing {
            method,
            authority: &destination.authority,
            target,
            headers: headers_out,
            omit,
            body: prepared.body,
            extra_fields: &forwarded,
        };
        let outcome = call
            .timer
            .within(started, self.timeout, call.client.send(outgoing))
            .await;
        *integration_latency = Some(started.elapsed());
        let response = match outcome {
            None => return Err(GatewayError::new(ResponseType::IntegrationTimeout)),
            Some(Err(e)) => {
                tracing::warn!(
                    api_id = view.context.api_id,
                    stage = view.context.stage,
                    resource = view.context.resource_path,
                    error = %e,
                    connect = e.is_connect(),
                    "integration call failed"
                );
                return Err(GatewayError::new(ResponseType::IntegrationFailure));
            }
            Some(Ok(response)) => response,
        };
        if self.proxy {
            let (mut parts, incoming) = response.into_parts();
            strip_proxy_fields(&mut parts.headers);
            return Ok(Response::from_parts(parts, Body::from(incoming)));
        }
        self.answer(response, view).await
    }

    /// The method response for a non-proxy backend answer.
    async fn answer(
        &self,
        response: Response<ResponseBody>,
        view: &RequestView<'_>,
    ) -> Result<Response<Body>, GatewayError> {
        let status = response.status();
        let Some(answer) = self.responses.select(status.as_str()) else {
            tracing::warn!(
                api_id = view.context.api_id,
                stage = view.context.stage,
                resource = view.context.resource_path,
                backend_status = status.as_u16(),
                "Execution failed due to configuration error: No match for output mapping and no default output mapping configured"
            );
            return Err(GatewayError::new(ResponseType::ApiConfigurationError));
        };
        let (parts, incoming) = response.into_parts();
        if answer.needs_body {
            let bytes = Limited::new(incoming, MAX_BUFFERED_RESPONSE)
                .collect()
                .await
                .map_err(|_| GatewayError::new(ResponseType::IntegrationFailure))?
                .to_bytes();
            return answer.finish(
                &self.inputs(view),
                &parts.headers,
                bytes,
                parts.headers.get(header::CONTENT_TYPE).cloned(),
            );
        }
        let mut headers = HeaderMap::new();
        if let Some(ct) = parts.headers.get(header::CONTENT_TYPE) {
            headers.insert(header::CONTENT_TYPE, ct.clone());
        }
        let body = {
            let backend = ResponseView {
                headers: &parts.headers,
                body: None,
            };
            answer.apply_headers(&mut headers, view, Some(&backend));
            Body::from(incoming)
        };
        let mut out = Response::new(body);
        *out.status_mut() = answer.status;
        *out.headers_mut() = headers;
        Ok(out)
    }

    /// Where this request goes: placeholders filled, query merged.
    fn destination(
        &self,
        view: &RequestView<'_>,
        overrides: &apigw_vtl::aws::Overrides,
    ) -> Result<Destination<'_>, GatewayError> {
        let overridden = |list: &[(String, String)], name: &str| {
            list.iter()
                .rev()
                .find(|(n, _)| n == name)
                .map(|(_, v)| Cow::Owned(v.clone()))
        };
        let mut uri = String::with_capacity(128);
        for part in &self.uri.0 {
            match part {
                UriPart::Text(t) => uri.push_str(t),
                UriPart::Param(name) => {
                    let mapped = overridden(&overrides.request_path, name).or_else(|| {
                        self.mappings
                            .path
                            .iter()
                            .find(|(n, _)| n == name)
                            .and_then(|(_, source)| source.resolve(view, None))
                    });
                    let value = match mapped {
                        Some(v) => Some(v),
                        None if self.proxy => view.path(name).map(Cow::Borrowed),
                        None => None,
                    };
                    if let Some(value) = value {
                        uri.extend(utf8_percent_encode(&value, PATH_VALUE));
                    }
                }
            }
        }
        let mut extra = String::new();
        if self.proxy {
            if let Some(q) = view.raw_query.filter(|q| !q.is_empty()) {
                extra.push_str(q);
            }
        } else {
            let mapped = self
                .mappings
                .query
                .iter()
                .filter(|(name, _)| overridden(&overrides.request_querystring, name).is_none())
                .filter_map(|(name, source)| {
                    Some((Cow::Borrowed(&**name), source.resolve(view, None)?))
                });
            let overriding = overrides
                .request_querystring
                .iter()
                .map(|(n, v)| (Cow::Borrowed(n.as_str()), Cow::Borrowed(v.as_str())));
            for (name, value) in mapped.chain(overriding) {
                {
                    if !extra.is_empty() {
                        extra.push('&');
                    }
                    extra.extend(utf8_percent_encode(&name, QUERY_VALUE));
                    extra.push('=');
                    extra.extend(utf8_percent_encode(&value, QUERY_VALUE));
                }
            }
        }
        if !extra.is_empty() {
            match uri.split_once('?') {
                Some((_, own)) if !own.is_empty() => uri.push('&'),
                Some(_) => {}
                None => uri.push('?'),
            }
            uri.push_str(&extra);
        }
        let destination = match &self.origin {
            Some(authority) => Destination::under(authority, uri),
            None => Destination::parse(&uri),
        };
        destination.ok_or_else(|| GatewayError::new(ResponseType::ApiConfigurationError))
    }
}

/// A backend request's authority and request target (path and query).
#[derive(Debug, PartialEq, Eq)]
struct Destination<'a> {
    authority: Cow<'a, Authority>,
    target: String,
}

impl<'a> Destination<'a> {
    /// `target` (beginning with `/`) under a fixed origin, without parsing
    /// the authority again or building a `Uri`.
    fn under(authority: &'a Authority, mut target: String) -> Option<Self> {
        // `Uri`'s own length limit on the whole string.
        const MAX_URI_LEN: usize = u16::MAX as usize - 1;
        if "http://".len() + authority.as_str().len() + target.len() > MAX_URI_LEN {
            return None;
        }
        // A fragment in the template's text is dropped, as `Uri` does. (The
        // client's `Target` checks that nothing ends or splits the line.)
        if let Some(fragment) = target.bytes().position(|b| b == b'#') {
            target.truncate(fragment);
        }
        Some(Self {
            authority: Cow::Borrowed(authority),
            target,
        })
    }

    /// A whole `http://` URL (its authority came from a placeholder).
    fn parse(uri: &str) -> Option<Self> {
        let uri = Uri::try_from(uri).ok()?;
        if uri.scheme() != Some(&Scheme::HTTP) {
            return None;
        }
        Some(Self {
            authority: Cow::Owned(uri.authority()?.clone()),
            target: uri
                .path_and_query()
                .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned()),
        })
    }
}

/// Hop-by-hop headers (RFC 9110 §7.6.1) never cross the proxy.
fn is_hop_by_hop(name: &HeaderName) -> bool {
    name == header::CONNECTION
        || name == header::TE
        || name == header::TRAILER
        || name == header::TRANSFER_ENCODING
        || name == header::UPGRADE
        || name == header::PROXY_AUTHENTICATE
        || name == header::PROXY_AUTHORIZATION
        || name.as_str() == "keep-alive"
        || name.as_str().starts_with("proxy-")
}

/// Headers named in `Connection` are hop-by-hop too. `close` and
/// `keep-alive` (the usual values) are skipped: nothing to add, no allocation.
fn connection_listed(headers: &HeaderMap) -> Vec<HeaderName> {
    let usual =
        |n: &[u8]| n.eq_ignore_ascii_case(b"close") || n.eq_ignore_ascii_case(b"keep-alive");
    let mut listed = Vec::new();
    for value in headers.get_all(header::CONNECTION) {
        // Only visible ASCII (as `to_str` accepts), so ASCII trimming is all there is.
        if usual(value.as_bytes()) || value.to_str().is_err() {
            continue;
        }
        for name in value.as_bytes().split(|&b| b == b',') {
            let name = name.trim_ascii();
            if usual(name) {
                continue;
            }
            if let Ok(name) = HeaderName::from_bytes(name) {
                listed.push(name);
            }
        }
    }
    listed
}

/// The backend client already left out the hop-by-hop fields of an answer
/// (`apigw-http1-client`); what `is_hop_by_hop` adds to them, `Proxy-*`, goes
/// here. Rare: a vector only when there are some.
fn strip_proxy_fields(headers: &mut HeaderMap) {
    let proxy: Vec<HeaderName> = headers
        .keys()
        .filter(|n| n.as_str().starts_with("proxy-"))
        .cloned()
        .collect();
    for name in proxy {
        headers.remove(name);
    }
}

/// Which of the caller's fields an HTTP_PROXY call leaves out: hop-by-hop
/// ones (and what `Connection` names), `Host` (the backend's own goes out),
/// `Content-Length` (the client frames the body), and the `X-Forwarded-*`
/// the gateway sets itself ([`forwarded_lines`]).
/// The caller's map is sent as it is with these omitted: no copy.
fn proxy_omits(from: &HeaderMap) -> impl Fn(&HeaderName) -> bool + Sync + use<> {
    let listed = connection_listed(from);
    move |name| {
        is_hop_by_hop(name)
            || name == header::HOST
            || name == header::CONTENT_LENGTH
            || is_forwarded(name)
            || listed.contains(name)
    }
}

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// The `X-Forwarded-*` fields the gateway sets itself ([`forwarded_lines`]).
fn is_forwarded(name: &HeaderName) -> bool {
    matches!(
        name.as_str().strip_prefix("x-forwarded-"),
        Some("for" | "proto" | "port")
    )
}

/// The `X-Forwarded-*` lines for the backend: the connection's own, unless
/// the caller sent an `X-Forwarded-For`, which the caller's address extends.
fn forwarded_lines<'c>(from: &HeaderMap, caller: &'c Forwarded) -> Cow<'c, [u8]> {
    match from
        .get(&X_FORWARDED_FOR)
        .map(|v| v.as_bytes().trim_ascii())
    {
        Some(earlier) if !earlier.is_empty() => {
            let rest = &caller.lines[caller.for_line_end..];
            let mut lines = Vec::with_capacity(earlier.len() + caller.lines.len() + 2);
            lines.extend_from_slice(b"x-forwarded-for: ");
            lines.extend_from_slice(earlier);
            lines.extend_from_slice(b", ");
            lines.extend_from_slice(caller.ip.as_bytes());
            lines.extend_from_slice(b"\r\n");
            lines.extend_from_slice(rest);
            Cow::Owned(lines)
        }
        _ => Cow::Borrowed(&caller.lines),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_templates_expand_stage_variables_and_split_placeholders() {
        let vars = BTreeMap::from([("host".to_string(), "backend:8080".to_string())]);
        let t = UriTemplate::parse(
            "http://${stageVariables.host}/pets/{id}/{proxy+}?a=1",
            &vars,
        )
        .unwrap();
        assert_eq!(
            t.0,
            vec![
                UriPart::Text("http://backend:8080/pets/".into()),
                UriPart::Param("id".into()),
                UriPart::Text("/".into()),
                UriPart::Param("proxy".into()),
                UriPart::Text("?a=1".into()),
            ]
        );
        assert_eq!(t.sample(), "http://backend:8080/pets/x/x?a=1");
        for bad in [
            "http://h/{",
            "http://h/}",
            "http://h/{}",
            "http://${nope.x}/",
            "http://${stageVariables.h",
        ] {
            assert!(UriTemplate::parse(bad, &vars).is_err(), "{bad}");
        }
    }

    #[test]
    fn hop_by_hop_and_connection_listed_headers_are_dropped() {
        let mut from = HeaderMap::new();
        for (n, v) in [
            ("connection", "keep-alive, x-secret"),
            ("keep-alive", "timeout=5"),
            ("x-secret", "1"),
            ("proxy-authorization", "basic"),
            ("te", "trailers"),
            ("host", "caller"),
            ("content-length", "3"),
            ("x-kept", "yes"),
            ("accept", "a"),
        ] {
            from.append(n, v.parse().unwrap());
        }
        from.append("x-kept", "twice".parse().unwrap());
        assert_eq!(sent(&from), ["x-kept: yes", "x-kept: twice", "accept: a"]);
    }

    #[test]
    fn a_fixed_origin_is_parsed_once_and_gives_the_same_uris() {
        let vars = BTreeMap::new();
        for (template, expect) in [
            ("http://127.0.0.1:8080/{proxy}", Some("127.0.0.1:8080")),
            ("http://u:p@backend/pets/{id}?a=1", Some("u:p@backend")),
            ("http://backend/", Some("backend")),
            ("http://backend", None),
            ("http://backend?x=1", None),
            ("http://{host}/x", None),
            ("http://back{x}end/", None),
            ("HTTP://backend/", None),
        ] {
            let t = UriTemplate::parse(template, &vars).unwrap();
            let split = t.split_origin();
            assert_eq!(
                split.as_ref().map(|(a, _)| a.as_str()),
                expect,
                "{template}"
            );
            if let Some((authority, path)) = split {
                let full = t.sample();
                let built = Destination::under(&authority, path.sample()).unwrap();
                assert_eq!(
                    Some(&built),
                    Destination::parse(&full).as_ref(),
                    "{template}"
                );
                assert_eq!(format!("http://{}{}", built.authority, built.target), full);
            }
        }
        let authority = Authority::from_static("backend:80");
        // What would end or split the request line never leaves (the
        // call's `Target` refuses it).
        for bad in ["/a b", "/a\r\nx: y", "/\u{7f}", "a", ""] {
            let destination = Destination::under(&authority, bad.into()).unwrap();
            assert_eq!(Target::new(&destination.target), None, "{bad:?}");
        }
        assert_eq!(
            Destination::under(&authority, "/a?b=1#c".into()).map(|d| d.target),
            Some("/a?b=1".to_owned())
        );
        assert!(Destination::under(&authority, format!("/{}", "a".repeat(70_000))).is_none());
        assert_eq!(Destination::parse("https://backend/x"), None);
        assert_eq!(
            Destination::parse("http://backend:81").map(|d| d.target),
            Some("/".to_owned())
        );
    }

    #[test]
    fn proxy_fields_leave_backend_answers() {
        // The rest of the hop-by-hop set never gets here: the backend client
        // drops it (apigw-http1-client's head tests).
        let mut headers = HeaderMap::new();
        for (n, v) in [
            ("content-type", "text/plain"),
            ("proxy-authenticate", "Basic"),
            ("proxy-foo", "2"),
            ("x-kept", "yes"),
        ] {
            headers.append(n, v.parse().unwrap());
        }
        headers.append("x-kept", "twice".parse().unwrap());
        strip_proxy_fields(&mut headers);
        let mut names: Vec<_> = headers.keys().map(|k| k.as_str()).collect();
        names.sort_unstable();
        assert_eq!(names, ["content-type", "x-kept"]);
        assert_eq!(headers.get_all("x-kept").iter().count(), 2);
    }

    #[test]
    fn forwarded_lines_name_the_caller() {
        let caller = Forwarded::new("10.1.2.3", 8080);
        let own =
            "x-forwarded-for: 10.1.2.3\r\nx-forwarded-proto: http\r\nx-forwarded-port: 8080\r\n";
        let mut from = HeaderMap::new();
        assert_eq!(&*forwarded_lines(&from, &caller), own.as_bytes());
        from.insert("x-forwarded-for", HeaderValue::from_static(" "));
        assert_eq!(&*forwarded_lines(&from, &caller), own.as_bytes());
        from.insert("x-forwarded-for", HeaderValue::from_static("192.0.2.1"));
        assert_eq!(
            &*forwarded_lines(&from, &caller),
            "x-forwarded-for: 192.0.2.1, 10.1.2.3\r\nx-forwarded-proto: http\r\nx-forwarded-port: 8080\r\n".as_bytes()
        );
        // The caller's own X-Forwarded-* never reach the backend beside ours.
        from.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        from.insert("x-forwarded-port", HeaderValue::from_static("1"));
        from.insert("x-forwarded-host", HeaderValue::from_static("kept"));
        assert_eq!(sent(&from), ["x-forwarded-host: kept"]);
    }

    /// The caller's fields an HTTP_PROXY call passes on, in order.
    fn sent(from: &HeaderMap) -> Vec<String> {
        let omit = proxy_omits(from);
        from.iter()
            .filter(|(name, _)| !omit(name))
            .map(|(name, value)| format!("{name}: {}", value.to_str().unwrap()))
            .collect()
    }
}
