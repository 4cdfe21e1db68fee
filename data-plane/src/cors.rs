//! HTTP API (v2) `CorsConfiguration` as a compiled step: it answers CORS
//! preflights itself (even without an OPTIONS route) and decorates every
//! other response, replacing whatever CORS headers the backend sent — what
//! API Gateway does for HTTP APIs. REST APIs have no such engine (their CORS
//! is ordinary OPTIONS methods and mapped headers).
//!
//! Compiled once per stage from the snapshot; the request path does set
//! lookups and header writes only.

use std::collections::HashSet;

use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE,
    ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD, HeaderMap, HeaderValue, ORIGIN,
    VARY,
};
use http::{Method, StatusCode};
use serde::{Deserialize, Serialize};

/// AWS's `Cors` shape (apigatewayv2 `CorsConfiguration`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CorsConfiguration {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_credentials: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_headers: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_methods: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_origins: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expose_headers: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CorsConfigError {
    #[error("allow-credentials is not supported if 'allow-origin' is *")]
    CredentialsWithAnyOrigin,
    #[error("maxAge must be between -1 and 86400 seconds, not {0}")]
    MaxAge(i64),
    #[error("invalid CORS value '{0}': not a valid header value")]
    InvalidValue(String),
}

/// `*`, or a list (exact values, lowercased where comparison is case-insensitive).
#[derive(Debug, Clone)]
enum Allowed {
    Any,
    List(HashSet<String>),
}

#[derive(Debug, Clone)]
struct OriginRule {
    /// `https://*.example.com` → scheme `https://`, suffix `.example.com`.
    wildcard: Option<(String, String)>,
    exact: String,
}

#[derive(Debug, Clone)]
pub struct CompiledCors {
    any_origin: bool,
    origins: Vec<OriginRule>,
    methods: Allowed,
    methods_value: Option<HeaderValue>,
    headers: Allowed,
    headers_value: Option<HeaderValue>,
    expose: Option<HeaderValue>,
    max_age: Option<HeaderValue>,
    credentials: bool,
}

/// The preflight answer: a status and headers (the body is empty).
#[derive(Debug, Clone)]
pub struct Preflight {
    pub status: StatusCode,
    pub headers: HeaderMap,
}

fn joined(items: &[String]) -> Result<Option<HeaderValue>, CorsConfigError> {
    if items.is_empty() {
        return Ok(None);
    }
    let s = items.join(",");
    HeaderValue::from_str(&s)
        .map(Some)
        .map_err(|_| CorsConfigError::InvalidValue(s))
}

fn allowed(items: &[String], case_insensitive: bool) -> Allowed {
    if items.iter().any(|i| i.trim() == "*") {
        return Allowed::Any;
    }
    Allowed::List(
        items
            .iter()
            .map(|i| {
                let i = i.trim();
                if case_insensitive {
                    i.to_ascii_lowercase()
                } else {
                    i.to_owned()
                }
            })
            .collect(),
    )
}

impl CompiledCors {
    pub fn compile(config: &CorsConfiguration) -> Result<Self, CorsConfigError> {
        let any_origin = config.allow_origins.iter().any(|o| o.trim() == "*");
        let credentials = config.allow_credentials.unwrap_or(false);
        if credentials && any_origin {
            return Err(CorsConfigError::CredentialsWithAnyOrigin);
        }
        if let Some(age) = config.max_age
            && !(-1..=86_400).contains(&age)
        {
            return Err(CorsConfigError::MaxAge(age));
        }
        let origins = config
            .allow_origins
            .iter()
            .filter(|o| o.trim() != "*")
            .map(|o| {
                let exact = o.trim().trim_end_matches('/').to_ascii_lowercase();
                let wildcard = exact
                    .split_once("://*.")
                    .map(|(scheme, rest)| (format!("{scheme}://"), format!(".{rest}")));
                OriginRule { wildcard, exact }
            })
            .collect();
        let methods = allowed(&config.allow_methods, true);
        let headers = allowed(&config.allow_headers, true);
        Ok(Self {
            any_origin,
            origins,
            methods_value: match methods {
                Allowed::Any => None,
                Allowed::List(_) => joined(&config.allow_methods)?,
            },
            methods,
            headers_value: match headers {
                Allowed::Any => None,
                Allowed::List(_) => joined(&config.allow_headers)?,
            },
            headers,
            expose: joined(&config.expose_headers)?,
            max_age: config
                .max_age
                .map(|a| HeaderValue::from_str(&a.to_string()))
                .transpose()
                .map_err(|_| CorsConfigError::InvalidValue("maxAge".into()))?,
            credentials,
        })
    }

    fn origin_allowed(&self, origin: &str) -> bool {
        if self.any_origin {
            return true;
        }
        let origin = origin.to_ascii_lowercase();
        self.origins.iter().any(|rule| match &rule.wildcard {
            Some((scheme, suffix)) => origin
                .strip_prefix(scheme.as_str())
                .is_some_and(|host| host.len() > suffix.len() && host.ends_with(suffix.as_str())),
            None => rule.exact == origin,
        })
    }

    /// `*` when any origin may read and no credentials are involved; else the origin itself.
    fn allow_origin_value(&self, origin: &HeaderValue) -> HeaderValue {
        if self.any_origin && !self.credentials {
            HeaderValue::from_static("*")
        } else {
            origin.clone()
        }
    }

    fn common(&self, origin: &HeaderValue, out: &mut HeaderMap) {
        out.insert(ACCESS_CONTROL_ALLOW_ORIGIN, self.allow_origin_value(origin));
        if self.credentials {
            out.insert(
                ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
        if !self.any_origin || self.credentials {
            out.append(VARY, HeaderValue::from_static("Origin"));
        }
    }

    /// A CORS preflight (OPTIONS with Origin and Access-Control-Request-Method)
    /// is answered here; anything else returns `None` and goes to routing.
    /// A preflight that is not allowed still gets 204, without the Allow
    /// headers, so the browser refuses the actual request.
    pub fn preflight(&self, method: &Method, headers: &HeaderMap) -> Option<Preflight> {
        if method != Method::OPTIONS {
            return None;
        }
        let origin = headers.get(ORIGIN)?;
        let requested = headers.get(ACCESS_CONTROL_REQUEST_METHOD)?;
        let mut out = HeaderMap::new();
        let refused = Preflight {
            status: StatusCode::NO_CONTENT,
            headers: HeaderMap::new(),
        };
        let Ok(origin_str) = origin.to_str() else {
            return Some(refused);
        };
        if !self.origin_allowed(origin_str) {
            return Some(refused);
        }
        let requested_method = requested
            .to_str()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        let method_ok = match &self.methods {
            Allowed::Any => true,
            Allowed::List(list) => list.contains(&requested_method),
        };
        let requested_headers: Vec<String> = headers
            .get_all(ACCESS_CONTROL_REQUEST_HEADERS)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|h| h.trim().to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .collect();
        let headers_ok = match &self.headers {
            Allowed::Any => true,
            Allowed::List(list) => requested_headers.iter().all(|h| list.contains(h)),
        };
        if !method_ok || !headers_ok {
            return Some(refused);
        }
        self.common(origin, &mut out);
        out.insert(
            ACCESS_CONTROL_ALLOW_METHODS,
            self.methods_value
                .clone()
                .unwrap_or_else(|| requested.clone()),
        );
        let echoed = headers.get(ACCESS_CONTROL_REQUEST_HEADERS).cloned();
        if let Some(v) = self.headers_value.clone().or(echoed) {
            out.insert(ACCESS_CONTROL_ALLOW_HEADERS, v);
        }
        if let Some(age) = &self.max_age {
            out.insert(ACCESS_CONTROL_MAX_AGE, age.clone());
        }
        Some(Preflight {
            status: StatusCode::NO_CONTENT,
            headers: out,
        })
    }

    /// Decorates the response to an actual (non-preflight) request: the
    /// backend's CORS headers are dropped, ours added when the origin may read.
    pub fn decorate(&self, request: &HeaderMap, response: &mut HeaderMap) {
        for name in [
            ACCESS_CONTROL_ALLOW_ORIGIN,
            ACCESS_CONTROL_ALLOW_CREDENTIALS,
            ACCESS_CONTROL_EXPOSE_HEADERS,
            ACCESS_CONTROL_ALLOW_METHODS,
            ACCESS_CONTROL_ALLOW_HEADERS,
            ACCESS_CONTROL_MAX_AGE,
        ] {
            response.remove(name);
        }
        let Some(origin) = request.get(ORIGIN) else {
            return;
        };
        if !origin.to_str().is_ok_and(|o| self.origin_allowed(o)) {
            return;
        }
        self.common(origin, response);
        if let Some(expose) = &self.expose {
            response.insert(ACCESS_CONTROL_EXPOSE_HEADERS, expose.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(origins: &[&str]) -> CorsConfiguration {
        CorsConfiguration {
            allow_origins: origins.iter().map(|s| s.to_string()).collect(),
            allow_methods: vec!["GET".into(), "PUT".into()],
            allow_headers: vec!["Content-Type".into(), "X-Custom".into()],
            expose_headers: vec!["X-Request-Id".into()],
            max_age: Some(600),
            allow_credentials: None,
        }
    }

    fn request(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn preflight_for(cors: &CompiledCors, origin: &str, method: &str, headers: &str) -> Preflight {
        let mut pairs = vec![
            ("origin", origin),
            ("access-control-request-method", method),
        ];
        if !headers.is_empty() {
            pairs.push(("access-control-request-headers", headers));
        }
        cors.preflight(&Method::OPTIONS, &request(&pairs))
            .expect("a preflight")
    }

    #[test]
    fn preflights_are_answered_for_allowed_origins_methods_and_headers() {
        let cors = CompiledCors::compile(&config(&["https://app.example.com"])).unwrap();
        let p = preflight_for(
            &cors,
            "https://app.example.com",
            "PUT",
            "content-type, x-custom",
        );
        assert_eq!(p.status, StatusCode::NO_CONTENT);
        assert_eq!(
            p.headers[ACCESS_CONTROL_ALLOW_ORIGIN],
            "https://app.example.com"
        );
        assert_eq!(p.headers[ACCESS_CONTROL_ALLOW_METHODS], "GET,PUT");
        assert_eq!(
            p.headers[ACCESS_CONTROL_ALLOW_HEADERS],
            "Content-Type,X-Custom"
        );
        assert_eq!(p.headers[ACCESS_CONTROL_MAX_AGE], "600");
        assert_eq!(p.headers[VARY], "Origin");
        assert!(!p.headers.contains_key(ACCESS_CONTROL_ALLOW_CREDENTIALS));
    }

    #[test]
    fn refused_preflights_carry_no_allow_headers() {
        let cors = CompiledCors::compile(&config(&["https://app.example.com"])).unwrap();
        for (origin, method, headers) in [
            ("https://evil.example.com", "GET", ""),
            ("https://app.example.com", "DELETE", ""),
            ("https://app.example.com", "PUT", "x-other"),
        ] {
            let p = preflight_for(&cors, origin, method, headers);
            assert_eq!(p.status, StatusCode::NO_CONTENT);
            assert!(
                p.headers.is_empty(),
                "{origin} {method} {headers}: {:?}",
                p.headers
            );
        }
    }

    #[test]
    fn only_preflights_are_answered() {
        let cors = CompiledCors::compile(&config(&["*"])).unwrap();
        let plain_options = request(&[("origin", "https://a.example")]);
        assert!(cors.preflight(&Method::OPTIONS, &plain_options).is_none());
        let get = request(&[
            ("origin", "https://a.example"),
            ("access-control-request-method", "GET"),
        ]);
        assert!(cors.preflight(&Method::GET, &get).is_none());
    }

    #[test]
    fn wildcards_echo_what_was_asked() {
        let cors = CompiledCors::compile(&CorsConfiguration {
            allow_origins: vec!["*".into()],
            allow_methods: vec!["*".into()],
            allow_headers: vec!["*".into()],
            ..Default::default()
        })
        .unwrap();
        let p = preflight_for(&cors, "https://x.example", "PATCH", "x-anything");
        assert_eq!(p.headers[ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        assert_eq!(p.headers[ACCESS_CONTROL_ALLOW_METHODS], "PATCH");
        assert_eq!(p.headers[ACCESS_CONTROL_ALLOW_HEADERS], "x-anything");
        assert!(!p.headers.contains_key(VARY));
    }

    #[test]
    fn subdomain_wildcards_and_case() {
        let cors = CompiledCors::compile(&config(&[
            "https://*.example.com",
            "HTTP://Local.Test:8080",
        ]))
        .unwrap();
        assert!(cors.origin_allowed("https://a.example.com"));
        assert!(cors.origin_allowed("https://a.b.example.com"));
        assert!(!cors.origin_allowed("https://example.com"));
        assert!(!cors.origin_allowed("http://a.example.com"));
        assert!(!cors.origin_allowed("https://a.example.com.evil.test"));
        assert!(cors.origin_allowed("http://local.test:8080"));
    }

    #[test]
    fn responses_are_decorated_and_backend_cors_headers_replaced() {
        let mut cfg = config(&["https://app.example.com"]);
        cfg.allow_credentials = Some(true);
        let cors = CompiledCors::compile(&cfg).unwrap();
        let mut response = request(&[
            ("access-control-allow-origin", "*"),
            ("access-control-allow-methods", "DELETE"),
            ("content-type", "application/json"),
        ]);
        cors.decorate(
            &request(&[("origin", "https://app.example.com")]),
            &mut response,
        );
        assert_eq!(
            response[ACCESS_CONTROL_ALLOW_ORIGIN],
            "https://app.example.com"
        );
        assert_eq!(response[ACCESS_CONTROL_ALLOW_CREDENTIALS], "true");
        assert_eq!(response[ACCESS_CONTROL_EXPOSE_HEADERS], "X-Request-Id");
        assert!(!response.contains_key(ACCESS_CONTROL_ALLOW_METHODS));
        assert_eq!(response["content-type"], "application/json");

        let mut response = request(&[("access-control-allow-origin", "*")]);
        cors.decorate(
            &request(&[("origin", "https://evil.example.com")]),
            &mut response,
        );
        assert!(response.is_empty(), "{response:?}");
        let mut response = HeaderMap::new();
        cors.decorate(&HeaderMap::new(), &mut response);
        assert!(response.is_empty());
    }

    #[test]
    fn configurations_aws_refuses() {
        let mut cfg = config(&["*"]);
        cfg.allow_credentials = Some(true);
        assert_eq!(
            CompiledCors::compile(&cfg).unwrap_err().to_string(),
            "allow-credentials is not supported if 'allow-origin' is *"
        );
        let mut cfg = config(&["https://a.example"]);
        cfg.max_age = Some(86_401);
        assert_eq!(
            CompiledCors::compile(&cfg).unwrap_err(),
            CorsConfigError::MaxAge(86_401)
        );
        cfg.max_age = Some(-1);
        assert!(CompiledCors::compile(&cfg).is_ok());
        let parsed: CorsConfiguration = serde_json::from_str(
            r#"{"allowOrigins":["https://a.example"],"allowCredentials":true,"maxAge":300,"exposeHeaders":["x"]}"#,
        )
        .unwrap();
        assert_eq!(parsed.max_age, Some(300));
        assert!(CompiledCors::compile(&parsed).is_ok());
    }
}
