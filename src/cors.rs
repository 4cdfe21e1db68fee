//! `apigw cors enable`: CORS for a REST API resource the way the AWS console
//! writes it, through the management API (SigV4-signed, so it works against
//! any control plane the caller can reach, remote or local, with the tenant's
//! own keys and the API's own validation — never around them).
//!
//! It writes: an `OPTIONS` method (no auth) with a MOCK integration whose
//! 200 response maps `Access-Control-Allow-{Origin,Methods,Headers}`
//! (and `-Credentials`); `Access-Control-Allow-Origin` on the 200 response of
//! every other non-proxy method of the resource; and the same header on the
//! `DEFAULT_4XX`/`DEFAULT_5XX` gateway responses so browsers can read errors.

use std::collections::BTreeMap;
use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

/// The console's default allowed headers.
pub const DEFAULT_HEADERS: &str =
    "Content-Type,X-Amz-Date,Authorization,X-Api-Key,X-Amz-Security-Token";

#[derive(Debug, thiserror::Error)]
pub enum CorsError {
    #[error("invalid option: {0}")]
    Invalid(String),
    #[error("the management API is unreachable at {endpoint}: {reason}")]
    Unreachable { endpoint: String, reason: String },
    #[error("{operation} failed: HTTP {status} {code}: {message}")]
    Api {
        operation: String,
        status: u16,
        code: String,
        message: String,
    },
    #[error("signing failed: {0}")]
    Signing(String),
    #[error("no resource {0} in the API")]
    NoResource(String),
}

/// What to enable, as the CLI takes it.
#[derive(Debug, Clone)]
pub struct CorsSettings {
    pub endpoint: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub api_id: String,
    /// A path (`/pets`) or a resource id.
    pub resource: String,
    /// `*` or explicit origins (`https://app.example.com`).
    pub origins: Vec<String>,
    /// Methods for `Access-Control-Allow-Methods`; default: the resource's plus OPTIONS.
    pub methods: Option<Vec<String>>,
    pub headers: String,
    pub allow_credentials: bool,
    /// Also decorate the DEFAULT_4XX / DEFAULT_5XX gateway responses.
    pub gateway_responses: bool,
}

/// What was written, printed by the CLI.
#[derive(Debug, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CorsReport {
    pub resource_id: String,
    pub path: String,
    pub allow_methods: String,
    pub decorated_methods: Vec<String>,
    /// Proxy integrations answer CORS headers themselves (as on AWS).
    pub skipped_proxy_methods: Vec<String>,
    pub gateway_responses: Vec<String>,
}

impl CorsSettings {
    fn check(&self) -> Result<(), CorsError> {
        if self.origins.is_empty() {
            return Err(CorsError::Invalid(
                "--origins needs at least one origin".into(),
            ));
        }
        if self.origins.len() > 1 && self.origins.iter().any(|o| o == "*") {
            return Err(CorsError::Invalid(
                "'*' cannot be combined with other origins".into(),
            ));
        }
        if self.allow_credentials && self.origins.iter().any(|o| o == "*") {
            return Err(CorsError::Invalid(
                "browsers refuse credentials with Access-Control-Allow-Origin '*': name the origins".into(),
            ));
        }
        for o in &self.origins {
            if o != "*"
                && (o.contains('\'') || !(o.starts_with("http://") || o.starts_with("https://")))
            {
                return Err(CorsError::Invalid(format!(
                    "origin '{o}' must be '*' or scheme://host[:port]"
                )));
            }
        }
        if !self.endpoint.starts_with("http://") {
            return Err(CorsError::Invalid(format!(
                "endpoint '{}' must be an http:// URL of the management API",
                self.endpoint
            )));
        }
        Ok(())
    }

    /// The static `Access-Control-Allow-Origin` value: the origin itself when
    /// there is one; with several, the first, overridden per request by the
    /// response template below.
    fn origin_literal(&self) -> String {
        format!("'{}'", self.origins[0])
    }

    /// With several origins one static header cannot fit them all: this
    /// template prefix echoes the request's Origin when it is on the list.
    fn origin_override(&self) -> Option<String> {
        if self.origins.len() < 2 {
            return None;
        }
        let list = self
            .origins
            .iter()
            .map(|o| format!("\"{o}\""))
            .collect::<Vec<_>>()
            .join(", ");
        Some(format!(
            "#set($origin = $input.params().header.get('Origin'))\n\
             #if(\"$!origin\" == \"\")#set($origin = $input.params().header.get('origin'))#end\n\
             #set($allowed = [{list}])\n\
             #if($allowed.contains($origin))#set($context.responseOverride.header.Access-Control-Allow-Origin = $origin)#end\n"
        ))
    }

    fn preflight_template(&self) -> String {
        format!("{}{{}}", self.origin_override().unwrap_or_default())
    }
}

struct Api {
    client: Client<HttpConnector, Full<Bytes>>,
    settings: CorsSettings,
}

impl Api {
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(StatusCode, Value), CorsError> {
        let payload = body.map(|b| b.to_string()).unwrap_or_default();
        let uri = format!("{}{}", self.settings.endpoint.trim_end_matches('/'), path);
        let parsed: hyper::Uri = uri
            .parse()
            .map_err(|e| CorsError::Invalid(format!("bad URL {uri}: {e}")))?;
        let host = parsed
            .authority()
            .map(|a| a.to_string())
            .ok_or_else(|| CorsError::Invalid(format!("no host in {uri}")))?;
        let mut request = Request::builder()
            .method(method.clone())
            .uri(parsed)
            .header("host", host)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::new()))
            .map_err(|e| CorsError::Signing(e.to_string()))?;
        let identity = Credentials::new(
            &self.settings.access_key_id,
            &self.settings.secret_access_key,
            None,
            None,
            "apigw-cli",
        )
        .into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.settings.region)
            .name("apigateway")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| CorsError::Signing(e.to_string()))?
            .into();
        let signable = SignableRequest::new(
            method.as_str(),
            uri.as_str(),
            request
                .headers()
                .iter()
                .filter_map(|(n, v)| Some((n.as_str(), v.to_str().ok()?))),
            SignableBody::Bytes(payload.as_bytes()),
        )
        .map_err(|e| CorsError::Signing(e.to_string()))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| CorsError::Signing(e.to_string()))?
            .into_parts();
        instructions.apply_to_request_http1x(&mut request);
        *request.body_mut() = Full::new(Bytes::from(payload));
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| CorsError::Unreachable {
                endpoint: self.settings.endpoint.clone(),
                reason: e.to_string(),
            })?;
        let status = response.status();
        let code = response
            .headers()
            .get("x-amzn-errortype")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| CorsError::Unreachable {
                endpoint: self.settings.endpoint.clone(),
                reason: e.to_string(),
            })?
            .to_bytes();
        let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if status.is_success() || status == StatusCode::NOT_FOUND {
            return Ok((status, value));
        }
        Err(CorsError::Api {
            operation: format!("{method} {path}"),
            status: status.as_u16(),
            code,
            message: value["message"].as_str().unwrap_or_default().to_owned(),
        })
    }

    async fn ok(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, CorsError> {
        let label = format!("{method} {path}");
        match self.call(method, path, body).await? {
            (StatusCode::NOT_FOUND, v) => Err(CorsError::Api {
                operation: label,
                status: 404,
                code: "NotFoundException".into(),
                message: v["message"].as_str().unwrap_or_default().to_owned(),
            }),
            (_, v) => Ok(v),
        }
    }
}

fn header_param(name: &str) -> String {
    format!("method.response.header.{name}")
}

/// Enables CORS on one resource; every write is one management call.
pub async fn enable(settings: CorsSettings) -> Result<CorsReport, CorsError> {
    settings.check()?;
    let api = Api {
        client: Client::builder(TokioExecutor::new()).build_http(),
        settings: settings.clone(),
    };
    let base = format!("/restapis/{}", settings.api_id);
    let resources = api
        .ok(
            Method::GET,
            &format!("{base}/resources?limit=500&embed=methods"),
            None,
        )
        .await?;
    let resource = resources["item"]
        .as_array()
        .or_else(|| resources["items"].as_array())
        .into_iter()
        .flatten()
        .find(|r| r["path"] == settings.resource.as_str() || r["id"] == settings.resource.as_str())
        .cloned()
        .ok_or_else(|| CorsError::NoResource(settings.resource.clone()))?;
    let rid = resource["id"].as_str().unwrap_or_default().to_owned();
    let path = resource["path"].as_str().unwrap_or_default().to_owned();
    let existing: BTreeMap<String, Value> = resource["resourceMethods"]
        .as_object()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    let allow_methods = match &settings.methods {
        Some(m) => m
            .iter()
            .map(|m| m.to_ascii_uppercase())
            .collect::<Vec<_>>()
            .join(","),
        None => {
            let mut m: Vec<String> = existing
                .keys()
                .filter(|k| *k != "OPTIONS")
                .cloned()
                .collect();
            if m.iter().any(|k| k == "ANY") {
                m = ["DELETE", "GET", "HEAD", "PATCH", "POST", "PUT"]
                    .map(String::from)
                    .to_vec();
            }
            m.push("OPTIONS".into());
            m.join(",")
        }
    };
    let origin = settings.origin_literal();
    let mut report = CorsReport {
        resource_id: rid.clone(),
        path,
        allow_methods: allow_methods.clone(),
        ..Default::default()
    };

    // 1. The preflight: OPTIONS → MOCK 200 with the Allow-* headers.
    let method_path = format!("{base}/resources/{rid}/methods/OPTIONS");
    if existing.contains_key("OPTIONS") {
        api.ok(Method::DELETE, &method_path, None).await?;
    }
    api.ok(
        Method::PUT,
        &method_path,
        Some(json!({"authorizationType": "NONE"})),
    )
    .await?;
    let mut names = vec![
        "Access-Control-Allow-Headers",
        "Access-Control-Allow-Methods",
        "Access-Control-Allow-Origin",
    ];
    if settings.allow_credentials {
        names.push("Access-Control-Allow-Credentials");
    }
    if settings.origins.len() > 1 {
        names.push("Vary");
    }
    let declared: BTreeMap<String, bool> = names.iter().map(|n| (header_param(n), false)).collect();
    api.ok(
        Method::PUT,
        &format!("{method_path}/responses/200"),
        Some(json!({"responseParameters": declared, "responseModels": {"application/json": "Empty"}})),
    )
    .await?;
    api.ok(
        Method::PUT,
        &format!("{method_path}/integration"),
        Some(json!({
            "type": "MOCK",
            "requestTemplates": {"application/json": "{\"statusCode\": 200}"},
            "passthroughBehavior": "WHEN_NO_MATCH",
        })),
    )
    .await?;
    let mut mapped = BTreeMap::from([
        (
            header_param("Access-Control-Allow-Headers"),
            format!("'{}'", settings.headers),
        ),
        (
            header_param("Access-Control-Allow-Methods"),
            format!("'{allow_methods}'"),
        ),
        (header_param("Access-Control-Allow-Origin"), origin.clone()),
    ]);
    if settings.allow_credentials {
        mapped.insert(
            header_param("Access-Control-Allow-Credentials"),
            "'true'".into(),
        );
    }
    if settings.origins.len() > 1 {
        mapped.insert(header_param("Vary"), "'Origin'".into());
    }
    api.ok(
        Method::PUT,
        &format!("{method_path}/integration/responses/200"),
        Some(json!({
            "responseParameters": mapped,
            "responseTemplates": {"application/json": settings.preflight_template()},
        })),
    )
    .await?;

    // 2. The actual responses of the other methods carry Allow-Origin.
    for (http, method) in &existing {
        if http == "OPTIONS" {
            continue;
        }
        let label = format!("{http} {}", report.path);
        let integration = &method["methodIntegration"];
        let kind = integration["type"].as_str().unwrap_or_default();
        if kind.ends_with("_PROXY") || kind.is_empty() {
            report.skipped_proxy_methods.push(label);
            continue;
        }
        let mpath = format!("{base}/resources/{rid}/methods/{http}");
        let mut extra = vec![("Access-Control-Allow-Origin", origin.clone())];
        if settings.allow_credentials {
            extra.push(("Access-Control-Allow-Credentials", "'true'".into()));
        }
        // Method response 200 declares the headers (kept: its other parameters and models).
        let current = &method["methodResponses"]["200"];
        let mut params: BTreeMap<String, Value> = current["responseParameters"]
            .as_object()
            .map(|m| m.clone().into_iter().collect())
            .unwrap_or_default();
        for (name, _) in &extra {
            params.insert(header_param(name), json!(false));
        }
        let mut body = json!({"responseParameters": params});
        if let Some(models) = current.get("responseModels") {
            body["responseModels"] = models.clone();
        }
        api.ok(Method::PUT, &format!("{mpath}/responses/200"), Some(body))
            .await?;
        // The integration response for 200 maps them (kept: its pattern and templates).
        let ir = &integration["integrationResponses"]["200"];
        let mut ir_params: BTreeMap<String, Value> = ir["responseParameters"]
            .as_object()
            .map(|m| m.clone().into_iter().collect())
            .unwrap_or_default();
        for (name, value) in &extra {
            ir_params.insert(header_param(name), json!(value));
        }
        let mut ir_body = json!({"responseParameters": ir_params});
        for key in ["selectionPattern", "responseTemplates", "contentHandling"] {
            if let Some(v) = ir.get(key).filter(|v| !v.is_null()) {
                ir_body[key] = v.clone();
            }
        }
        if let Some(prefix) = settings.origin_override() {
            // The override runs before the method's own template (or the passed-through body).
            let mut templates: BTreeMap<String, Value> = ir["responseTemplates"]
                .as_object()
                .map(|m| m.clone().into_iter().collect())
                .unwrap_or_default();
            if templates.is_empty() {
                templates.insert("application/json".into(), json!("$input.body"));
            }
            for template in templates.values_mut() {
                let own = template.as_str().unwrap_or_default();
                if !own.starts_with(&prefix) {
                    *template = json!(format!("{prefix}{own}"));
                }
            }
            ir_body["responseTemplates"] = json!(templates);
        }
        api.ok(
            Method::PUT,
            &format!("{mpath}/integration/responses/200"),
            Some(ir_body),
        )
        .await?;
        report.decorated_methods.push(label);
    }

    // 3. Errors API Gateway itself answers carry Allow-Origin too.
    if settings.gateway_responses {
        for kind in ["DEFAULT_4XX", "DEFAULT_5XX"] {
            let gpath = format!("{base}/gatewayresponses/{kind}");
            let current = api.ok(Method::GET, &gpath, None).await?;
            let mut params: BTreeMap<String, Value> = if current["defaultResponse"] == json!(false)
            {
                current["responseParameters"]
                    .as_object()
                    .map(|m| m.clone().into_iter().collect())
                    .unwrap_or_default()
            } else {
                BTreeMap::new()
            };
            params.insert(
                "gatewayresponse.header.Access-Control-Allow-Origin".into(),
                json!(origin),
            );
            params.insert(
                "gatewayresponse.header.Access-Control-Allow-Headers".into(),
                json!(format!("'{}'", settings.headers)),
            );
            if settings.allow_credentials {
                params.insert(
                    "gatewayresponse.header.Access-Control-Allow-Credentials".into(),
                    json!("'true'"),
                );
            }
            let mut body = json!({"responseParameters": params});
            if current["defaultResponse"] == json!(false) {
                for key in ["statusCode", "responseTemplates"] {
                    if let Some(v) = current.get(key).filter(|v| !v.is_null()) {
                        body[key] = v.clone();
                    }
                }
            }
            api.ok(Method::PUT, &gpath, Some(body)).await?;
            report.gateway_responses.push(kind.into());
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(origins: &[&str], credentials: bool) -> CorsSettings {
        CorsSettings {
            endpoint: "http://127.0.0.1:1".into(),
            region: "us-east-1".into(),
            access_key_id: "a".into(),
            secret_access_key: "b".into(),
            api_id: "x".into(),
            resource: "/".into(),
            origins: origins.iter().map(|s| s.to_string()).collect(),
            methods: None,
            headers: DEFAULT_HEADERS.into(),
            allow_credentials: credentials,
            gateway_responses: true,
        }
    }

    #[test]
    fn refuses_what_browsers_refuse() {
        assert!(settings(&["*"], false).check().is_ok());
        assert!(settings(&["https://a.example"], true).check().is_ok());
        assert!(settings(&["*"], true).check().is_err());
        assert!(
            settings(&["*", "https://a.example"], false)
                .check()
                .is_err()
        );
        assert!(settings(&["a.example"], false).check().is_err());
        assert!(settings(&[], false).check().is_err());
    }

    #[test]
    fn several_origins_are_echoed_by_the_template() {
        assert_eq!(
            settings(&["https://a.example"], false).preflight_template(),
            "{}"
        );
        let t = settings(&["https://a.example", "https://b.example"], false).preflight_template();
        assert!(
            t.contains("[\"https://a.example\", \"https://b.example\"]"),
            "{t}"
        );
        assert!(
            t.contains("responseOverride.header.Access-Control-Allow-Origin"),
            "{t}"
        );
    }

    #[tokio::test]
    async fn an_unreachable_endpoint_is_reported() {
        let e = enable(settings(&["*"], false)).await.unwrap_err();
        assert!(matches!(e, CorsError::Unreachable { .. }), "{e}");
    }
}
