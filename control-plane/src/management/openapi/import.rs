//! OpenAPI 3.0 / Swagger 2.0 with `x-amazon-apigateway-*` extensions → the
//! parts of a REST API, then merged into (or replacing) an API's aggregate.
//!
//! Reading never touches the store: the whole document is checked first and
//! every error is reported with its location, so a bad document changes nothing.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::document::{self, Dialect, Problem, join};
use crate::error::ApiError;
use crate::management::{gateway_responses, ids, integrations, methods, models, resources};
use crate::model::{
    Authorizer, GatewayResponse, Integration, IntegrationResponse, Method, MethodResponse, Model,
    RequestValidator, Resource, RestApiDoc, Tags, TlsConfig,
};

/// Where an imported schema's `$ref`s point once it is a model, as on AWS.
pub fn model_url(api_id: &str, name: &str) -> String {
    format!("https://apigateway.amazonaws.com/restapis/{api_id}/models/{name}")
}

const OPERATIONS: [(&str, &str); 7] = [
    ("get", "GET"),
    ("put", "PUT"),
    ("post", "POST"),
    ("delete", "DELETE"),
    ("options", "OPTIONS"),
    ("head", "HEAD"),
    ("patch", "PATCH"),
];
const ANY_METHOD: &str = "x-amazon-apigateway-any-method";

/// Query parameters of ImportRestApi / PutRestApi that shape the import.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// `basepath=prepend` puts the document's base path in front of every path.
    pub prepend_base_path: bool,
    /// `ignore=documentation`.
    pub ignore_documentation: bool,
}

/// Everything read from a document, names not yet bound to ids: methods
/// refer to validators and authorizers by name until [`apply`].
#[derive(Debug, Clone, Default)]
pub struct Imported {
    pub title: Option<String>,
    pub description: Option<String>,
    pub version: Option<String>,
    pub binary_media_types: Option<Vec<String>>,
    pub minimum_compression_size: Option<i64>,
    pub api_key_source: Option<String>,
    pub policy: Option<String>,
    pub disable_execute_api_endpoint: Option<bool>,
    pub vpc_endpoint_ids: Option<Vec<String>>,
    pub tags: Tags,
    /// Path → HTTP method → method (validator/authorizer ids hold names).
    pub paths: BTreeMap<String, BTreeMap<String, Method>>,
    pub models: BTreeMap<String, Model>,
    pub validators: BTreeMap<String, RequestValidator>,
    pub gateway_responses: BTreeMap<String, GatewayResponse>,
    pub authorizers: BTreeMap<String, Authorizer>,
    pub warnings: Vec<Problem>,
}

/// Reads a whole document; every error found is returned, not just the first.
pub fn read(body: &[u8], api_id: &str, options: &ImportOptions) -> Result<Imported, Vec<Problem>> {
    let root = document::parse(body).map_err(|p| vec![p])?;
    let dialect = document::dialect(&root).map_err(|p| vec![p])?;
    let mut reader = Reader {
        root: &root,
        dialect,
        api_id,
        out: Imported::default(),
        errors: Vec::new(),
    };
    reader.read_all(options);
    if reader.errors.is_empty() {
        Ok(reader.out)
    } else {
        Err(reader.errors)
    }
}

struct Reader<'a> {
    root: &'a Value,
    dialect: Dialect,
    api_id: &'a str,
    out: Imported,
    errors: Vec<Problem>,
}

fn str_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Alphanumerics only, as model names must be.
fn model_name(raw: &str) -> String {
    raw.chars().filter(char::is_ascii_alphanumeric).collect()
}

impl<'a> Reader<'a> {
    fn error(&mut self, at: impl Into<String>, message: impl Into<String>) {
        self.errors.push(Problem::new(at, message));
    }

    fn warn(&mut self, at: impl Into<String>, message: impl Into<String>) {
        self.out.warnings.push(Problem::new(at, message));
    }

    fn resolve(&mut self, value: &'a Value, at: &str) -> Option<&'a Value> {
        match document::resolve(self.root, value, at) {
            Ok(v) => Some(v),
            Err(p) => {
                self.errors.push(p);
                None
            }
        }
    }

    /// A map of strings at `key` (e.g. `requestParameters`), or an error.
    fn string_map(&mut self, obj: &Value, key: &str, at: &str) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        match obj.get(key) {
            None | Some(Value::Null) => {}
            Some(Value::Object(m)) => {
                for (k, v) in m {
                    match str_of(v) {
                        Some(s) => {
                            out.insert(k.clone(), s);
                        }
                        None => self.error(join(&join(at, key), k), "must be a string"),
                    }
                }
            }
            Some(_) => self.error(join(at, key), "must be an object of strings"),
        }
        out
    }

    fn read_all(&mut self, options: &ImportOptions) {
        let root = self.root;
        let info = root.get("info").unwrap_or(&Value::Null);
        self.out.title = info
            .get("title")
            .and_then(str_of)
            .filter(|t| !t.trim().is_empty());
        if self.out.title.is_none() {
            self.error(
                "info.title",
                "a title is required: it becomes the API's name",
            );
        }
        self.out.description = info.get("description").and_then(str_of);
        self.out.version = info.get("version").and_then(str_of);
        self.read_root_extensions(options);
        self.read_models();
        self.read_authorizers();
        let base_path = if options.prepend_base_path {
            self.base_path()
        } else {
            String::new()
        };
        self.read_paths(&base_path);
    }

    fn base_path(&self) -> String {
        let raw = match self.dialect {
            Dialect::Swagger2 => self
                .root
                .get("basePath")
                .and_then(Value::as_str)
                .map(str::to_owned),
            Dialect::Oas30 => self.root.pointer("/servers/0").and_then(|s| {
                s.pointer("/variables/basePath/default")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .or_else(|| {
                        let url = s.get("url")?.as_str()?;
                        let without_scheme = url.split_once("://").map_or(url, |(_, r)| r);
                        without_scheme
                            .find('/')
                            .map(|i| without_scheme[i..].to_owned())
                    })
            }),
        };
        raw.map(|p| format!("/{}", p.trim_matches('/')))
            .filter(|p| p.len() > 1)
            .unwrap_or_default()
    }

    fn read_root_extensions(&mut self, options: &ImportOptions) {
        let root = self.root;
        if let Some(v) = root.get("x-amazon-apigateway-api-key-source") {
            match v.as_str() {
                Some(s) if crate::management::rest_apis::API_KEY_SOURCES.contains(&s) => {
                    self.out.api_key_source = Some(s.to_owned())
                }
                _ => self.error(
                    "x-amazon-apigateway-api-key-source",
                    format!("must be HEADER or AUTHORIZER, not {v}"),
                ),
            }
        }
        if let Some(v) = root.get("x-amazon-apigateway-binary-media-types") {
            match v
                .as_array()
                .map(|a| a.iter().map(str_of).collect::<Option<Vec<_>>>())
            {
                Some(Some(types)) => self.out.binary_media_types = Some(types),
                _ => self.error(
                    "x-amazon-apigateway-binary-media-types",
                    "must be an array of media types",
                ),
            }
        }
        if let Some(v) = root.get("x-amazon-apigateway-minimum-compression-size") {
            match v.as_i64() {
                Some(n) if crate::management::rest_apis::check_compression_size(n).is_ok() => {
                    self.out.minimum_compression_size = Some(n)
                }
                _ => self.error(
                    "x-amazon-apigateway-minimum-compression-size",
                    format!("must be an integer from 0 to 10485760, not {v}"),
                ),
            }
        }
        if let Some(v) = root.get("x-amazon-apigateway-policy") {
            self.out.policy = Some(match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            });
        }
        let endpoint =
            match self.dialect {
                Dialect::Swagger2 => root
                    .get("x-amazon-apigateway-endpoint-configuration")
                    .map(|v| (v, "x-amazon-apigateway-endpoint-configuration".to_owned())),
                Dialect::Oas30 => {
                    root.get("servers")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .enumerate()
                        .find_map(|(i, s)| {
                            s.get("x-amazon-apigateway-endpoint-configuration").map(|v| {
                        (v, format!("servers[{i}].x-amazon-apigateway-endpoint-configuration"))
                    })
                        })
                }
            };
        if let Some((v, at)) = endpoint {
            if let Some(d) = v.get("disableExecuteApiEndpoint") {
                match d.as_bool() {
                    Some(b) => self.out.disable_execute_api_endpoint = Some(b),
                    None => self.error(join(&at, "disableExecuteApiEndpoint"), "must be a boolean"),
                }
            }
            if let Some(ids) = v.get("vpcEndpointIds") {
                match ids
                    .as_array()
                    .map(|a| a.iter().map(str_of).collect::<Option<Vec<_>>>())
                {
                    Some(Some(ids)) => self.out.vpc_endpoint_ids = Some(ids),
                    _ => self.error(join(&at, "vpcEndpointIds"), "must be an array of strings"),
                }
            }
        }
        // Validators first: the root-level default names one.
        if let Some(v) = root.get("x-amazon-apigateway-request-validators") {
            match v.as_object() {
                Some(m) => {
                    for (name, spec) in m {
                        let at = join("x-amazon-apigateway-request-validators", name);
                        let flag = |key: &str| spec.get(key).and_then(Value::as_bool);
                        for key in ["validateRequestBody", "validateRequestParameters"] {
                            if spec.get(key).is_some_and(|v| !v.is_boolean()) {
                                self.error(join(&at, key), "must be a boolean");
                            }
                        }
                        self.out.validators.insert(
                            name.clone(),
                            RequestValidator {
                                id: String::new(),
                                name: Some(name.clone()),
                                validate_request_body: flag("validateRequestBody").unwrap_or(false),
                                validate_request_parameters: flag("validateRequestParameters")
                                    .unwrap_or(false),
                            },
                        );
                    }
                }
                None => self.error(
                    "x-amazon-apigateway-request-validators",
                    "must be an object of named validators",
                ),
            }
        }
        if let Some(v) = root.get("x-amazon-apigateway-gateway-responses") {
            self.read_gateway_responses(v);
        }
        if let Some(tags) = root.get("tags").and_then(Value::as_array) {
            for (i, tag) in tags.iter().enumerate() {
                if let (Some(name), Some(value)) = (
                    tag.get("name").and_then(str_of),
                    tag.get("x-amazon-apigateway-tag-value").and_then(str_of),
                ) {
                    self.out.tags.insert(name, value);
                } else if tag.get("x-amazon-apigateway-tag-value").is_some() {
                    self.error(format!("tags[{i}]"), "a tag with a value needs a name");
                }
            }
            if let Err(e) = crate::management::rest_apis::check_tags(&self.out.tags) {
                self.error("tags", e.to_string());
            }
        }
        if root.get("x-amazon-apigateway-documentation").is_some() && !options.ignore_documentation
        {
            self.warn(
                "x-amazon-apigateway-documentation",
                "documentation parts are not stored by this gateway and were skipped \
                 (import with ignore=documentation to silence this)",
            );
        }
        if root.get("x-amazon-apigateway-cors").is_some() {
            self.warn(
                "x-amazon-apigateway-cors",
                "CORS configuration applies to HTTP APIs only; for a REST API add OPTIONS methods",
            );
        }
    }

    fn read_gateway_responses(&mut self, v: &'a Value) {
        let Some(m) = v.as_object() else {
            self.error("x-amazon-apigateway-gateway-responses", "must be an object");
            return;
        };
        for (kind, spec) in m {
            let at = join("x-amazon-apigateway-gateway-responses", kind);
            if !gateway_responses::AWS_ENUM_ORDER.contains(&kind.as_str()) {
                self.error(
                    &at,
                    format!(
                        "unknown gateway response type; expected one of {}",
                        gateway_responses::AWS_ENUM_ORDER.join(", ")
                    ),
                );
                continue;
            }
            let status_code = spec.get("statusCode").and_then(str_of);
            if let Some(code) = &status_code
                && let Err(e) = methods::status_code(code)
            {
                self.error(join(&at, "statusCode"), e.to_string());
            }
            let response_parameters = self.string_map(spec, "responseParameters", &at);
            for (k, v) in &response_parameters {
                if let Err(e) = gateway_responses::check_parameter(k, v) {
                    self.error(join(&join(&at, "responseParameters"), k), e.to_string());
                }
            }
            let response_templates = self.string_map(spec, "responseTemplates", &at);
            self.out.gateway_responses.insert(
                kind.clone(),
                GatewayResponse {
                    response_type: kind.clone(),
                    status_code,
                    response_parameters,
                    response_templates,
                    default_response: false,
                },
            );
        }
    }

    fn schemas(&self) -> (Option<&'a Map<String, Value>>, &'static str) {
        match self.dialect {
            Dialect::Swagger2 => (
                self.root.get("definitions").and_then(Value::as_object),
                "definitions",
            ),
            Dialect::Oas30 => (
                self.root
                    .pointer("/components/schemas")
                    .and_then(Value::as_object),
                "components.schemas",
            ),
        }
    }

    fn read_models(&mut self) {
        let (Some(schemas), at) = self.schemas() else {
            return;
        };
        for (name, schema) in schemas {
            let clean = model_name(name);
            let here = join(at, name);
            if clean.is_empty() {
                self.error(here, "a model name needs at least one letter or digit");
                continue;
            }
            if clean != *name {
                self.warn(
                    &here,
                    format!("model name '{name}' became '{clean}' (models are alphanumeric)"),
                );
            }
            if let Some(model) = self.model_from(schema, &clean, &here) {
                self.out.models.insert(clean, model);
            }
        }
    }

    /// A model from a schema, its local `$ref`s rewritten to model URLs.
    fn model_from(&mut self, schema: &'a Value, name: &str, at: &str) -> Option<Model> {
        if !schema.is_object() {
            self.error(at, "a schema must be an object");
            return None;
        }
        let mut converted = schema.clone();
        self.rewrite_refs(&mut converted, at);
        if converted.as_object().is_some_and(Map::is_empty) {
            converted = serde_json::json!({"type": "object"});
        }
        if let Value::Object(m) = &mut converted {
            m.entry("title")
                .or_insert_with(|| Value::String(name.to_owned()));
        }
        Some(Model {
            id: String::new(),
            name: name.to_owned(),
            description: schema.get("description").and_then(str_of),
            schema: Some(serde_json::to_string_pretty(&converted).unwrap_or_default()),
            content_type: "application/json".into(),
        })
    }

    fn rewrite_refs(&mut self, value: &mut Value, at: &str) {
        match value {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    let r = r.clone();
                    let (_, prefix) = self.schemas();
                    let local = format!("#/{}/", prefix.replace('.', "/"));
                    match r.strip_prefix(&local) {
                        Some(target) if document::lookup(self.root, &r).is_ok() => {
                            m.insert(
                                "$ref".into(),
                                Value::String(model_url(self.api_id, &model_name(target))),
                            );
                        }
                        _ => self.error(
                            join(at, "$ref"),
                            format!(
                                "'{r}' does not name a schema under #/{}",
                                prefix.replace('.', "/")
                            ),
                        ),
                    }
                }
                for (k, v) in m.iter_mut() {
                    if k != "$ref" {
                        self.rewrite_refs(v, &join(at, k));
                    }
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter_mut().enumerate() {
                    self.rewrite_refs(v, &format!("{at}[{i}]"));
                }
            }
            _ => {}
        }
    }

    /// The model a request/response schema stands for: a named schema's
    /// model, or a new model for an inline one.
    fn schema_model(&mut self, schema: &'a Value, inline_name: &str, at: &str) -> Option<String> {
        if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
            let (_, prefix) = self.schemas();
            let local = format!("#/{}/", prefix.replace('.', "/"));
            return match r.strip_prefix(&local) {
                Some(target) if document::lookup(self.root, r).is_ok() => Some(model_name(target)),
                _ => {
                    self.error(
                        join(at, "$ref"),
                        format!(
                            "'{r}' does not name a schema under #/{}",
                            prefix.replace('.', "/")
                        ),
                    );
                    None
                }
            };
        }
        let name = model_name(inline_name);
        let model = self.model_from(schema, &name, at)?;
        self.out.models.insert(name.clone(), model);
        Some(name)
    }

    fn security_schemes(&self) -> Option<&'a Map<String, Value>> {
        match self.dialect {
            Dialect::Swagger2 => self.root.get("securityDefinitions"),
            Dialect::Oas30 => self.root.pointer("/components/securitySchemes"),
        }
        .and_then(Value::as_object)
    }

    fn schemes_at(&self) -> &'static str {
        match self.dialect {
            Dialect::Swagger2 => "securityDefinitions",
            Dialect::Oas30 => "components.securitySchemes",
        }
    }

    fn read_authorizers(&mut self) {
        let Some(schemes) = self.security_schemes() else {
            return;
        };
        let base = self.schemes_at();
        for (name, scheme) in schemes {
            let at = join(base, name);
            let Some(spec) = scheme.get("x-amazon-apigateway-authorizer") else {
                continue;
            };
            let at = join(&at, "x-amazon-apigateway-authorizer");
            let kind = spec.get("type").and_then(Value::as_str).unwrap_or("token");
            let authorizer_type = match kind.to_ascii_lowercase().as_str() {
                "token" => "TOKEN",
                "request" => "REQUEST",
                "cognito_user_pools" => "COGNITO_USER_POOLS",
                "jwt" => {
                    self.warn(&at, "JWT authorizers apply to HTTP APIs only; skipped");
                    continue;
                }
                _ => {
                    self.error(
                        join(&at, "type"),
                        format!("unknown authorizer type '{kind}': expected token, request or cognito_user_pools"),
                    );
                    continue;
                }
            };
            let provider_arns = spec
                .get("providerARNs")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(str_of).collect())
                .unwrap_or_default();
            let header = scheme.get("name").and_then(Value::as_str);
            let identity_source = spec.get("identitySource").and_then(str_of).or_else(|| {
                (authorizer_type != "REQUEST")
                    .then(|| header.map(|h| format!("method.request.header.{h}")))
                    .flatten()
            });
            if authorizer_type != "COGNITO_USER_POOLS" && spec.get("authorizerUri").is_none() {
                self.error(
                    join(&at, "authorizerUri"),
                    "a Lambda authorizer needs an authorizerUri",
                );
            }
            let ttl = spec.get("authorizerResultTtlInSeconds").map(|v| v.as_i64());
            if let Some(None) = ttl {
                self.error(
                    join(&at, "authorizerResultTtlInSeconds"),
                    "must be an integer",
                );
            }
            self.out.authorizers.insert(
                name.clone(),
                Authorizer {
                    id: String::new(),
                    name: name.clone(),
                    authorizer_type: authorizer_type.into(),
                    provider_arns,
                    auth_type: scheme.get("x-amazon-apigateway-authtype").and_then(str_of),
                    authorizer_uri: spec.get("authorizerUri").and_then(str_of),
                    authorizer_credentials: spec.get("authorizerCredentials").and_then(str_of),
                    identity_source,
                    identity_validation_expression: spec
                        .get("identityValidationExpression")
                        .and_then(str_of),
                    authorizer_result_ttl_in_seconds: Some(ttl.flatten().unwrap_or(300)),
                },
            );
        }
    }

    fn read_paths(&mut self, base_path: &str) {
        let root = self.root;
        let Some(paths) = root.get("paths") else {
            self.warn("paths", "the document has no paths");
            return;
        };
        let Some(paths) = paths.as_object() else {
            self.error("paths", "must be an object of paths");
            return;
        };
        let mut seen: BTreeMap<String, String> = BTreeMap::new();
        for (raw_path, item) in paths {
            let at = join("paths", raw_path);
            if raw_path.starts_with("x-") {
                continue;
            }
            if !raw_path.starts_with('/') {
                self.error(&at, "a path must start with '/'");
                continue;
            }
            let path = format!("{base_path}{}", raw_path.trim_end_matches('/'));
            let path = if path.is_empty() {
                "/".to_owned()
            } else {
                path
            };
            if let Some(other) = seen.insert(path.clone(), raw_path.clone()) {
                self.error(
                    &at,
                    format!("conflicts with path '{other}': both are {path}"),
                );
                continue;
            }
            if !self.check_path(&path, &at) {
                continue;
            }
            let Some(item) = self.resolve(item, &at) else {
                continue;
            };
            let shared_params = item.get("parameters");
            let mut methods = BTreeMap::new();
            let mut ops: Vec<(&str, &str)> = OPERATIONS.to_vec();
            ops.push((ANY_METHOD, "ANY"));
            for (key, http) in ops {
                let Some(op) = item.get(key) else {
                    continue;
                };
                let op_at = join(&at, key);
                if let Some(method) = self.read_operation(op, shared_params, &path, http, &op_at) {
                    methods.insert(http.to_owned(), method);
                }
            }
            if item.get("trace").is_some() {
                self.warn(
                    join(&at, "trace"),
                    "TRACE is not an API Gateway method; skipped",
                );
            }
            self.out.paths.insert(path, methods);
        }
        self.check_tree();
    }

    /// Each segment is a valid path part; variables are whole segments.
    fn check_path(&mut self, path: &str, at: &str) -> bool {
        let mut ok = true;
        let segments: Vec<&str> = path.split('/').skip(1).filter(|s| !s.is_empty()).collect();
        for (i, segment) in segments.iter().enumerate() {
            if let Err(e) = resources::check_path_part(segment) {
                self.error(at, e.to_string());
                ok = false;
            } else if resources::is_greedy(segment) && i + 1 != segments.len() {
                self.error(
                    at,
                    format!("the greedy variable {segment} must be the last segment"),
                );
                ok = false;
            }
        }
        if path.contains("//") {
            self.error(at, "a path must not contain empty segments");
            ok = false;
        }
        ok
    }

    /// Siblings may have at most one variable part (`/a/{id}` and `/a/{name}` conflict).
    fn check_tree(&mut self) {
        let mut variables: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for path in self.out.paths.keys() {
            let mut parent = String::new();
            for segment in path.split('/').filter(|s| !s.is_empty()) {
                if resources::is_variable(segment) {
                    variables
                        .entry(parent.clone())
                        .or_default()
                        .insert(segment.to_owned());
                }
                parent = format!("{parent}/{segment}");
            }
        }
        for (parent, vars) in variables {
            if vars.len() > 1 {
                let parent = if parent.is_empty() {
                    "/".into()
                } else {
                    parent
                };
                let listed: Vec<_> = vars.into_iter().collect();
                self.error(
                    "paths",
                    format!(
                        "conflicting paths: under {parent} the variables {} would be siblings; \
                         only one variable path part is allowed per level",
                        listed.join(" and ")
                    ),
                );
            }
        }
    }

    fn read_operation(
        &mut self,
        op: &'a Value,
        shared_params: Option<&'a Value>,
        path: &str,
        http: &str,
        at: &str,
    ) -> Option<Method> {
        let op = self.resolve(op, at)?;
        if !op.is_object() {
            self.error(at, "an operation must be an object");
            return None;
        }
        let mut method = Method {
            http_method: http.to_owned(),
            authorization_type: "NONE".into(),
            operation_name: op.get("operationId").and_then(str_of),
            ..Default::default()
        };
        let base_name = format!(
            "{}{}",
            http.to_ascii_lowercase(),
            path.replace(['{', '}', '+'], "")
        );
        self.read_parameters(&mut method, shared_params, op, &base_name, at);
        if self.dialect == Dialect::Oas30
            && let Some(body) = op.get("requestBody")
        {
            let body_at = join(at, "requestBody");
            if let Some(body) = self.resolve(body, &body_at)
                && let Some(content) = body.get("content").and_then(Value::as_object)
            {
                for (media_type, media) in content {
                    if let Some(schema) = media.get("schema") {
                        let schema_at =
                            join(&join(&join(&body_at, "content"), media_type), "schema");
                        if let Some(name) =
                            self.schema_model(schema, &format!("{base_name}Request"), &schema_at)
                        {
                            method.request_models.insert(media_type.clone(), name);
                        }
                    }
                }
            }
        }
        self.read_responses(&mut method, op, &base_name, at);
        self.read_security(&mut method, op, at);
        if let Some(v) = op
            .get("x-amazon-apigateway-request-validator")
            .or_else(|| self.root.get("x-amazon-apigateway-request-validator"))
        {
            match v.as_str() {
                Some(name) if self.out.validators.contains_key(name) => {
                    method.request_validator_id = Some(name.to_owned())
                }
                _ => self.error(
                    join(at, "x-amazon-apigateway-request-validator"),
                    format!(
                        "{v} is not one of the validators in x-amazon-apigateway-request-validators"
                    ),
                ),
            }
        }
        match op.get("x-amazon-apigateway-integration") {
            Some(spec) => {
                let spec_at = join(at, "x-amazon-apigateway-integration");
                if let Some(spec) = self.resolve(spec, &spec_at) {
                    method.method_integration = self.read_integration(spec, &spec_at);
                }
            }
            None => self.warn(
                at,
                "no x-amazon-apigateway-integration: the method is imported without an integration",
            ),
        }
        Some(method)
    }

    fn read_parameters(
        &mut self,
        method: &mut Method,
        shared: Option<&'a Value>,
        op: &'a Value,
        base_name: &str,
        at: &str,
    ) {
        let consumes: Vec<String> = op
            .get("consumes")
            .or_else(|| self.root.get("consumes"))
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(str_of).collect())
            .filter(|v: &Vec<String>| !v.is_empty())
            .unwrap_or_else(|| vec!["application/json".into()]);
        let lists = [
            (shared, at.rsplit_once('.').map_or(at, |(p, _)| p)),
            (op.get("parameters"), at),
        ];
        for (list, owner) in lists {
            let Some(list) = list else { continue };
            let list_at = join(owner, "parameters");
            let Some(items) = list.as_array() else {
                self.error(list_at, "must be an array");
                continue;
            };
            for (i, param) in items.iter().enumerate() {
                let p_at = format!("{list_at}[{i}]");
                let Some(param) = self.resolve(param, &p_at) else {
                    continue;
                };
                let name = param.get("name").and_then(str_of).unwrap_or_default();
                let location = param.get("in").and_then(Value::as_str).unwrap_or_default();
                let required = param
                    .get("required")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                let kind = match location {
                    "path" => "path",
                    "query" => "querystring",
                    "header" => "header",
                    "body" if self.dialect == Dialect::Swagger2 => {
                        if let Some(schema) = param.get("schema") {
                            let schema_at = join(&p_at, "schema");
                            if let Some(model) = self.schema_model(
                                schema,
                                &format!("{base_name}Request"),
                                &schema_at,
                            ) {
                                for media_type in &consumes {
                                    method
                                        .request_models
                                        .insert(media_type.clone(), model.clone());
                                }
                            }
                        }
                        continue;
                    }
                    "cookie" | "formData" => {
                        self.warn(&p_at, format!("'{location}' parameters are not request parameters in API Gateway; skipped"));
                        continue;
                    }
                    other => {
                        self.error(
                            join(&p_at, "in"),
                            format!("unknown parameter location '{other}'"),
                        );
                        continue;
                    }
                };
                if name.is_empty() {
                    self.error(join(&p_at, "name"), "a parameter needs a name");
                    continue;
                }
                method.request_parameters.insert(
                    format!("method.request.{kind}.{name}"),
                    required || kind == "path",
                );
            }
        }
    }

    fn read_responses(&mut self, method: &mut Method, op: &'a Value, base_name: &str, at: &str) {
        let Some(responses) = op.get("responses") else {
            return;
        };
        let r_at = join(at, "responses");
        let Some(responses) = responses.as_object() else {
            self.error(r_at, "must be an object of status codes");
            return;
        };
        let produces: Vec<String> = op
            .get("produces")
            .or_else(|| self.root.get("produces"))
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(str_of).collect())
            .filter(|v: &Vec<String>| !v.is_empty())
            .unwrap_or_else(|| vec!["application/json".into()]);
        for (code, response) in responses {
            let at = join(&r_at, code);
            // `default` describes other statuses; API Gateway declares only concrete ones.
            if code.starts_with("x-") || code == "default" {
                continue;
            }
            if methods::status_code(code).is_err() {
                self.warn(
                    &at,
                    format!("'{code}' is not a status code API Gateway can declare; skipped"),
                );
                continue;
            }
            let Some(response) = self.resolve(response, &at) else {
                continue;
            };
            let mut out = MethodResponse {
                status_code: code.clone(),
                ..Default::default()
            };
            if let Some(headers) = response.get("headers").and_then(Value::as_object) {
                for name in headers.keys() {
                    out.response_parameters
                        .insert(format!("method.response.header.{name}"), false);
                }
            }
            let inline = format!("{base_name}Response{code}");
            match self.dialect {
                Dialect::Swagger2 => {
                    if let Some(schema) = response.get("schema")
                        && let Some(model) =
                            self.schema_model(schema, &inline, &join(&at, "schema"))
                    {
                        for media_type in &produces {
                            out.response_models
                                .insert(media_type.clone(), model.clone());
                        }
                    }
                }
                Dialect::Oas30 => {
                    if let Some(content) = response.get("content").and_then(Value::as_object) {
                        for (media_type, media) in content {
                            if let Some(schema) = media.get("schema") {
                                let s_at = join(&join(&join(&at, "content"), media_type), "schema");
                                if let Some(model) = self.schema_model(schema, &inline, &s_at) {
                                    out.response_models.insert(media_type.clone(), model);
                                }
                            }
                        }
                    }
                }
            }
            method.method_responses.insert(code.clone(), out);
        }
    }

    fn read_security(&mut self, method: &mut Method, op: &'a Value, at: &str) {
        if let Some(security) = op.get("security") {
            let s_at = join(at, "security");
            let Some(requirements) = security.as_array() else {
                self.error(s_at, "must be an array of security requirements");
                return;
            };
            let schemes = self.security_schemes();
            for (i, requirement) in requirements.iter().enumerate() {
                let Some(requirement) = requirement.as_object() else {
                    self.error(format!("{s_at}[{i}]"), "must be an object");
                    continue;
                };
                for (name, scopes) in requirement {
                    let Some(scheme) = schemes.and_then(|s| s.get(name)) else {
                        // AWS's own samples name undeclared schemes; it ignores them.
                        self.warn(
                            format!("{s_at}[{i}].{name}"),
                            format!(
                                "security scheme '{name}' is not defined in {}; ignored",
                                self.schemes_at()
                            ),
                        );
                        continue;
                    };
                    let authtype = scheme
                        .get("x-amazon-apigateway-authtype")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_ascii_lowercase();
                    if let Some(authorizer) = self.out.authorizers.get(name) {
                        method.authorization_type =
                            if authorizer.authorizer_type == "COGNITO_USER_POOLS" {
                                "COGNITO_USER_POOLS".into()
                            } else {
                                "CUSTOM".into()
                            };
                        method.authorizer_id = Some(name.clone());
                        if let Some(scopes) = scopes.as_array() {
                            method.authorization_scopes =
                                scopes.iter().filter_map(str_of).collect();
                        }
                    } else if authtype == "awssigv4" {
                        method.authorization_type = "AWS_IAM".into();
                    } else if scheme.get("type").and_then(Value::as_str) == Some("apiKey")
                        && scheme.get("in").and_then(Value::as_str) == Some("header")
                        && scheme
                            .get("name")
                            .and_then(Value::as_str)
                            .is_some_and(|n| n.eq_ignore_ascii_case("x-api-key"))
                    {
                        method.api_key_required = true;
                    }
                }
            }
        }
        if let Some(auth) = op.get("x-amazon-apigateway-auth") {
            match auth
                .get("type")
                .and_then(Value::as_str)
                .map(str::to_ascii_uppercase)
                .as_deref()
            {
                Some("NONE") => method.authorization_type = "NONE".into(),
                Some("AWS_IAM") => method.authorization_type = "AWS_IAM".into(),
                _ => self.error(
                    join(&join(at, "x-amazon-apigateway-auth"), "type"),
                    "must be NONE or AWS_IAM",
                ),
            }
        }
    }

    fn read_integration(&mut self, spec: &'a Value, at: &str) -> Option<Integration> {
        if !spec.is_object() {
            self.error(at, "must be an object");
            return None;
        }
        let errors_before = self.errors.len();
        let raw_type = spec.get("type").and_then(Value::as_str).unwrap_or_default();
        let integration_type = raw_type.to_ascii_uppercase();
        if !integrations::TYPES.contains(&integration_type.as_str()) {
            self.error(
                join(at, "type"),
                format!(
                    "unknown integration type '{raw_type}': expected one of aws, aws_proxy, http, http_proxy, mock"
                ),
            );
            return None;
        }
        let http_method = match spec.get("httpMethod").and_then(str_of) {
            Some(m) => match methods::http_method(&m) {
                Ok(m) => Some(m),
                Err(_) => {
                    self.error(join(at, "httpMethod"), format!("invalid HTTP method '{m}'"));
                    None
                }
            },
            None if integration_type == "MOCK" => None,
            None => {
                self.error(
                    join(at, "httpMethod"),
                    format!("required for type {raw_type}"),
                );
                None
            }
        };
        let uri = spec.get("uri").and_then(str_of);
        if let Err(e) = integrations::check_uri(&integration_type, uri.as_deref()) {
            self.error(join(at, "uri"), e.to_string());
        }
        let timeout = match spec.get("timeoutInMillis") {
            None => integrations::MAX_TIMEOUT_MS,
            Some(v) => match v
                .as_i64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            {
                Some(ms) => {
                    if let Err(e) = integrations::check_timeout(ms) {
                        self.error(join(at, "timeoutInMillis"), e.to_string());
                    }
                    ms
                }
                None => {
                    self.error(join(at, "timeoutInMillis"), "must be an integer");
                    integrations::MAX_TIMEOUT_MS
                }
            },
        };
        let passthrough = spec
            .get("passthroughBehavior")
            .and_then(Value::as_str)
            .unwrap_or("when_no_match")
            .to_ascii_uppercase();
        if !integrations::PASSTHROUGH.contains(&passthrough.as_str()) {
            self.error(
                join(at, "passthroughBehavior"),
                "must be when_no_match, when_no_templates or never",
            );
        }
        let content_handling = spec.get("contentHandling").and_then(str_of);
        if let Some(c) = &content_handling
            && !integrations::CONTENT_HANDLING.contains(&c.as_str())
        {
            self.error(
                join(at, "contentHandling"),
                "must be CONVERT_TO_BINARY or CONVERT_TO_TEXT",
            );
        }
        let connection_type = spec
            .get("connectionType")
            .and_then(str_of)
            .unwrap_or_else(|| "INTERNET".into());
        if !integrations::CONNECTION_TYPES.contains(&connection_type.as_str()) {
            self.error(join(at, "connectionType"), "must be INTERNET or VPC_LINK");
        }
        let request_parameters = self.string_map(spec, "requestParameters", at);
        for (k, v) in &request_parameters {
            if let Err(e) = integrations::check_request_mapping(k, v) {
                self.error(join(&join(at, "requestParameters"), k), e.to_string());
            }
        }
        let request_templates = self.string_map(spec, "requestTemplates", at);
        let cache_key_parameters = match spec.get("cacheKeyParameters") {
            None => Vec::new(),
            Some(v) => match v
                .as_array()
                .map(|a| a.iter().map(str_of).collect::<Option<Vec<_>>>())
            {
                Some(Some(list)) => list,
                _ => {
                    self.error(
                        join(at, "cacheKeyParameters"),
                        "must be an array of strings",
                    );
                    Vec::new()
                }
            },
        };
        let tls_config = spec.get("tlsConfig").map(|t| TlsConfig {
            insecure_skip_verification: t
                .get("insecureSkipVerification")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        });
        let mut integration_responses = BTreeMap::new();
        if let Some(responses) = spec.get("responses") {
            let r_at = join(at, "responses");
            match responses.as_object() {
                None => self.error(&r_at, "must be an object keyed by selection pattern"),
                Some(m) => {
                    for (pattern, response) in m {
                        let p_at = join(&r_at, pattern);
                        if let Some(r) = self.read_integration_response(pattern, response, &p_at) {
                            if integration_responses.contains_key(&r.status_code) {
                                self.error(
                                    &p_at,
                                    format!(
                                        "another response already maps to status {}",
                                        r.status_code
                                    ),
                                );
                            }
                            integration_responses.insert(r.status_code.clone(), r);
                        }
                    }
                }
            }
        }
        if self.errors.len() != errors_before {
            return None;
        }
        Some(Integration {
            integration_type,
            http_method,
            uri,
            connection_type,
            connection_id: spec.get("connectionId").and_then(str_of),
            credentials: spec.get("credentials").and_then(str_of),
            request_parameters,
            request_templates,
            passthrough_behavior: passthrough,
            content_handling,
            timeout_in_millis: timeout,
            cache_namespace: spec
                .get("cacheNamespace")
                .and_then(str_of)
                .unwrap_or_default(),
            cache_key_parameters,
            integration_responses,
            tls_config,
            response_transfer_mode: spec.get("responseTransferMode").and_then(str_of),
        })
    }

    fn read_integration_response(
        &mut self,
        pattern: &str,
        response: &'a Value,
        at: &str,
    ) -> Option<IntegrationResponse> {
        let Some(status) = response.get("statusCode").and_then(str_of) else {
            self.error(join(at, "statusCode"), "required");
            return None;
        };
        if let Err(e) = methods::status_code(&status) {
            self.error(join(at, "statusCode"), e.to_string());
            return None;
        }
        let selection_pattern = (pattern != "default").then(|| pattern.to_owned());
        if let Some(p) = &selection_pattern
            && let Err(e) = integrations::check_selection_pattern(p)
        {
            self.error(at, e.to_string());
        }
        let response_parameters = self.string_map(response, "responseParameters", at);
        for (k, v) in &response_parameters {
            if let Err(e) = integrations::check_response_mapping(k, v) {
                self.error(join(&join(at, "responseParameters"), k), e.to_string());
            }
        }
        let response_templates = self.string_map(response, "responseTemplates", at);
        let content_handling = response.get("contentHandling").and_then(str_of);
        Some(IntegrationResponse {
            status_code: status,
            selection_pattern,
            response_parameters,
            response_templates,
            content_handling,
        })
    }
}

/// How a document is combined with an existing API (PutRestApi's `mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A new API (ImportRestApi).
    Import,
    /// Everything not in the document is removed.
    Overwrite,
    /// Methods in the document replace same-named ones; the rest stays.
    Merge,
}

/// Writes an imported document into `doc`. Resource, validator and
/// authorizer ids are kept for things that already exist under the same
/// path or name, so stages' method settings keep pointing at them.
pub fn apply(doc: &mut RestApiDoc, imported: Imported, mode: Mode) -> Result<(), ApiError> {
    let api = &mut doc.api;
    if let Some(title) = imported.title {
        api.name = title;
    }
    if mode != Mode::Merge || imported.description.is_some() {
        api.description = imported.description;
    }
    if mode != Mode::Merge || imported.version.is_some() {
        api.version = imported.version;
    }
    if let Some(types) = imported.binary_media_types {
        api.binary_media_types = types;
    } else if mode == Mode::Overwrite {
        api.binary_media_types.clear();
    }
    if imported.minimum_compression_size.is_some() || mode == Mode::Overwrite {
        api.minimum_compression_size = imported.minimum_compression_size;
    }
    if let Some(source) = imported.api_key_source {
        api.api_key_source = source;
    }
    if imported.policy.is_some() || mode == Mode::Overwrite {
        api.policy = imported.policy;
    }
    if let Some(disable) = imported.disable_execute_api_endpoint {
        api.disable_execute_api_endpoint = disable;
    }
    if let Some(ids) = imported.vpc_endpoint_ids {
        api.endpoint_configuration.vpc_endpoint_ids = Some(ids);
    }
    if mode == Mode::Import {
        api.tags = imported.tags;
    }

    // Models: the defaults stay unless the document redefines them.
    if mode == Mode::Overwrite {
        let defaults: BTreeSet<&str> = ["Empty", "Error"].into();
        doc.models
            .retain(|name, _| defaults.contains(name.as_str()));
    }
    for (name, mut model) in imported.models {
        model.id = doc
            .models
            .get(&name)
            .map(|m| m.id.clone())
            .unwrap_or_else(ids::short);
        if let Err(e) = models::check_name(&name) {
            return Err(ApiError::bad_request(e.to_string()));
        }
        doc.models.insert(name, model);
    }

    let validator_ids = bind_by_name(
        &mut doc.request_validators,
        imported.validators,
        mode,
        |v| v.name.clone().unwrap_or_default(),
        |v, id| v.id = id,
    );
    let authorizer_ids = bind_by_name(
        &mut doc.authorizers,
        imported.authorizers,
        mode,
        |a| a.name.clone(),
        |a, id| a.id = id,
    );

    if mode == Mode::Overwrite {
        doc.gateway_responses.clear();
    }
    doc.gateway_responses.extend(imported.gateway_responses);

    let root_id = doc.api.root_resource_id.clone();
    if mode == Mode::Overwrite {
        // Keep the resources the document still has (with their ids), drop the rest.
        let wanted: BTreeSet<String> = imported.paths.keys().flat_map(|p| prefixes(p)).collect();
        let keep: Vec<String> = doc
            .resources
            .keys()
            .filter(|id| wanted.contains(&doc.path_of(id)) || **id == root_id)
            .cloned()
            .collect();
        doc.resources.retain(|id, _| keep.contains(id));
        for resource in doc.resources.values_mut() {
            resource.resource_methods.clear();
        }
    }
    for (path, methods) in imported.paths {
        let resource_id = ensure_path(doc, &root_id, &path)?;
        let resource = doc
            .resources
            .get_mut(&resource_id)
            .ok_or_else(|| ApiError::Internal("resource vanished during import".into()))?;
        for (http, mut method) in methods {
            method.request_validator_id = method
                .request_validator_id
                .and_then(|name| validator_ids.get(&name).cloned());
            method.authorizer_id = method
                .authorizer_id
                .and_then(|name| authorizer_ids.get(&name).cloned());
            if let Some(integration) = method.method_integration.as_mut()
                && integration.cache_namespace.is_empty()
            {
                integration.cache_namespace = resource_id.clone();
            }
            resource.resource_methods.insert(http, method);
        }
    }
    Ok(())
}

/// Every ancestor path of `/a/b/c`: `/a`, `/a/b`, `/a/b/c` (and `/`).
fn prefixes(path: &str) -> Vec<String> {
    let mut out = vec!["/".to_owned()];
    let mut current = String::new();
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        current = format!("{current}/{segment}");
        out.push(current.clone());
    }
    out
}

/// The id of the resource at `path`, creating the missing ones on the way.
fn ensure_path(doc: &mut RestApiDoc, root_id: &str, path: &str) -> Result<String, ApiError> {
    let mut current = root_id.to_owned();
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        let existing = doc
            .children_of(&current)
            .find(|r| r.path_part.as_deref() == Some(segment))
            .map(|r| r.id.clone());
        current = match existing {
            Some(id) => id,
            None => {
                if let Some(parent) = doc.resources.get(&current)
                    && parent
                        .path_part
                        .as_deref()
                        .is_some_and(resources::is_greedy)
                {
                    return Err(ApiError::bad_request(format!(
                        "Invalid OpenAPI input. Unable to create resource at path '{path}': a greedy path variable cannot have children"
                    )));
                }
                if resources::is_variable(segment)
                    && let Some(sibling) = doc
                        .children_of(&current)
                        .filter_map(|r| r.path_part.as_deref())
                        .find(|p| resources::is_variable(p))
                {
                    return Err(ApiError::bad_request(format!(
                        "Invalid OpenAPI input. Unable to create resource at path '{path}': a sibling ({sibling}) already has a variable path part -- only one is allowed"
                    )));
                }
                let id = ids::resource();
                doc.resources.insert(
                    id.clone(),
                    Resource {
                        id: id.clone(),
                        parent_id: Some(current.clone()),
                        path_part: Some(segment.to_owned()),
                        resource_methods: BTreeMap::new(),
                    },
                );
                id
            }
        };
    }
    Ok(current)
}

/// Stores named things under ids (reusing the id of a same-named existing
/// one) and returns name → id.
fn bind_by_name<T>(
    existing: &mut BTreeMap<String, T>,
    incoming: BTreeMap<String, T>,
    mode: Mode,
    name_of: impl Fn(&T) -> String,
    set_id: impl Fn(&mut T, String),
) -> BTreeMap<String, String> {
    let old: BTreeMap<String, String> = existing
        .iter()
        .map(|(id, t)| (name_of(t), id.clone()))
        .collect();
    if mode == Mode::Overwrite {
        existing.clear();
    }
    let mut bound = if mode == Mode::Overwrite {
        BTreeMap::new()
    } else {
        old.clone()
    };
    for (name, mut item) in incoming {
        let id = old.get(&name).cloned().unwrap_or_else(ids::short);
        set_id(&mut item, id.clone());
        existing.insert(id.clone(), item);
        bound.insert(name, id);
    }
    bound
}

/// The message of a failed import, every problem on its own line.
pub fn errors_message(problems: &[Problem]) -> String {
    let mut out = String::from("Invalid OpenAPI input. Errors found during import:");
    for p in problems {
        out.push_str(&format!("\n\t{p}"));
    }
    out
}

/// Warnings as AWS lists them in `RestApi.warnings`.
pub fn warning_lines(problems: &[Problem]) -> Vec<String> {
    problems.iter().map(ToString::to_string).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::RestApi;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/openapi");

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!("{FIXTURES}/{name}")).unwrap()
    }

    fn new_doc() -> RestApiDoc {
        let mut doc = RestApiDoc {
            api: RestApi {
                id: "abc1234567".into(),
                root_resource_id: "root".into(),
                api_key_source: "HEADER".into(),
                ..Default::default()
            },
            models: models::default_models(),
            ..Default::default()
        };
        doc.resources.insert(
            "root".into(),
            Resource {
                id: "root".into(),
                ..Default::default()
            },
        );
        doc
    }

    fn imported(body: &[u8]) -> RestApiDoc {
        let read = read(body, "abc1234567", &ImportOptions::default()).unwrap();
        let mut doc = new_doc();
        apply(&mut doc, read, Mode::Import).unwrap();
        doc
    }

    fn method<'a>(doc: &'a RestApiDoc, path: &str, http: &str) -> &'a Method {
        let id = doc
            .resources
            .keys()
            .find(|id| doc.path_of(id) == path)
            .unwrap_or_else(|| panic!("no resource {path}"));
        &doc.resources[id].resource_methods[http]
    }

    fn problems(body: &str) -> Vec<Problem> {
        read(body.as_bytes(), "abc1234567", &ImportOptions::default()).unwrap_err()
    }

    #[test]
    fn petstore_becomes_resources_methods_and_models() {
        let doc = imported(&fixture("petstore.json"));
        assert_eq!(doc.api.name, "PetStore");
        let paths: BTreeSet<String> = doc.resources.keys().map(|id| doc.path_of(id)).collect();
        assert_eq!(
            paths,
            BTreeSet::from(["/".into(), "/pets".into(), "/pets/{petId}".into()])
        );
        let get_pet = method(&doc, "/pets/{petId}", "GET");
        assert_eq!(get_pet.operation_name.as_deref(), Some("GetPet"));
        assert_eq!(
            get_pet.request_parameters.get("method.request.path.petId"),
            Some(&true)
        );
        let i = get_pet.method_integration.as_ref().unwrap();
        assert_eq!(i.integration_type, "HTTP");
        assert_eq!(i.http_method.as_deref(), Some("GET"));
        assert_eq!(i.passthrough_behavior, "WHEN_NO_MATCH");
        assert_eq!(
            i.request_parameters["integration.request.path.petId"],
            "method.request.path.petId"
        );
        assert_eq!(
            i.integration_responses["200"].response_parameters["method.response.header.Access-Control-Allow-Origin"],
            "'*'"
        );
        let options = method(&doc, "/pets", "OPTIONS")
            .method_integration
            .as_ref()
            .unwrap();
        assert_eq!(options.integration_type, "MOCK");
        let post = method(&doc, "/pets", "POST");
        assert_eq!(post.request_models["application/json"], "NewPet");
        assert_eq!(
            post.method_responses["200"].response_models["application/json"],
            "NewPetResponse"
        );
        let pets = doc.models["Pets"].schema.as_deref().unwrap();
        assert!(
            pets.contains("https://apigateway.amazonaws.com/restapis/abc1234567/models/Pet"),
            "{pets}"
        );
        assert!(doc.models.contains_key("Error"), "default models stay");
    }

    #[test]
    fn validators_are_bound_by_name() {
        let doc = imported(&fixture("awsdocs-lambda-calc.json"));
        assert_eq!(doc.request_validators.len(), 2);
        let get = method(&doc, "/calc", "GET");
        let v = &doc.request_validators[get.request_validator_id.as_ref().unwrap()];
        assert_eq!(
            v.name.as_deref(),
            Some("Validate query string parameters and headers")
        );
        assert!(v.validate_request_parameters && !v.validate_request_body);
        let i = get.method_integration.as_ref().unwrap();
        assert_eq!(i.integration_type, "AWS");
        assert_eq!(
            i.credentials.as_deref(),
            Some("arn:aws:iam::123456789012:role/apigAwsProxyRole")
        );
        // Inherited root-level validator.
        let doc = imported(&fixture("awsdocs-request-validators.json"));
        let get = method(&doc, "/validation", "GET");
        let v = &doc.request_validators[get.request_validator_id.as_ref().unwrap()];
        assert_eq!(v.name.as_deref(), Some("params-only"));
        let post = method(&doc, "/validation", "POST");
        let i = post.method_integration.as_ref().unwrap();
        assert_eq!(
            i.integration_responses["200"].selection_pattern.as_deref(),
            Some("2\\d{2}")
        );
        assert_eq!(i.integration_responses["400"].selection_pattern, None);
    }

    #[test]
    fn oas30_yaml_with_refs_and_api_keys() {
        let doc = imported(&fixture("airnode-apigateway.yaml"));
        assert_eq!(doc.api.minimum_compression_size, Some(2_097_152));
        let post = method(&doc, "/test/{endpointId}", "POST");
        assert!(post.api_key_required);
        assert!(post.request_parameters["method.request.path.endpointId"]);
        assert_eq!(
            post.request_models["application/json"],
            "TestEndpointRequest"
        );
        assert_eq!(
            post.method_integration.as_ref().unwrap().integration_type,
            "AWS_PROXY"
        );
    }

    #[test]
    fn malformed_documents_are_refused_with_locations() {
        let p = problems(
            "swagger: '2.0'\ninfo: {title: t}\npaths:\n  /a:\n    get:\n      x-amazon-apigateway-integration: {type: carrier_pigeon}\n",
        );
        assert_eq!(
            p[0].location,
            "paths./a.get.x-amazon-apigateway-integration.type"
        );
        assert!(p[0].message.contains("carrier_pigeon"));
        let p = problems(
            "swagger: '2.0'\ninfo: {title: t}\npaths:\n  /a:\n    post:\n      parameters:\n        - {in: body, name: b, schema: {$ref: '#/definitions/Nope'}}\n",
        );
        assert!(p[0].location.ends_with("schema.$ref"), "{p:?}");
        let p =
            problems("swagger: '2.0'\ninfo: {title: t}\npaths:\n  /a/{id}: {}\n  /a/{name}: {}\n");
        assert!(p[0].message.contains("conflicting paths"), "{p:?}");
        let p = problems("swagger: '2.0'\ninfo: {title: t}\npaths:\n  /a: {}\n  /a/: {}\n");
        assert!(p[0].message.contains("conflicts with path"), "{p:?}");
        let p = problems(
            "swagger: '2.0'\ninfo: {title: t}\npaths:\n  /a:\n    get:\n      x-amazon-apigateway-integration: {type: http, httpMethod: GET, uri: 'not a url'}\n",
        );
        assert_eq!(
            p[0].location,
            "paths./a.get.x-amazon-apigateway-integration.uri"
        );
        let p = problems("openapi: 3.0.0\npaths: {}\n");
        assert_eq!(p[0].location, "info.title");
    }

    #[test]
    fn overwrite_replaces_and_merge_keeps() {
        let mut doc = imported(&fixture("petstore.json"));
        let pets_id = doc
            .resources
            .keys()
            .find(|id| doc.path_of(id) == "/pets")
            .unwrap()
            .clone();
        let small = br#"{"swagger":"2.0","info":{"title":"Small"},"paths":{"/pets":{"get":{"x-amazon-apigateway-integration":{"type":"mock","requestTemplates":{"application/json":"{\"statusCode\": 200}"}}}},"/new":{"put":{}}}}"#;
        let merged = read(small, "abc1234567", &ImportOptions::default()).unwrap();
        let mut merge_doc = doc.clone();
        apply(&mut merge_doc, merged, Mode::Merge).unwrap();
        assert_eq!(
            method(&merge_doc, "/pets", "GET")
                .method_integration
                .as_ref()
                .unwrap()
                .integration_type,
            "MOCK"
        );
        assert!(
            merge_doc.resources[&pets_id]
                .resource_methods
                .contains_key("POST"),
            "merge keeps others"
        );
        assert!(
            merge_doc
                .resources
                .values()
                .any(|r| r.path_part.as_deref() == Some("{petId}"))
        );
        let over = read(small, "abc1234567", &ImportOptions::default()).unwrap();
        apply(&mut doc, over, Mode::Overwrite).unwrap();
        let paths: BTreeSet<String> = doc.resources.keys().map(|id| doc.path_of(id)).collect();
        assert_eq!(
            paths,
            BTreeSet::from(["/".into(), "/pets".into(), "/new".into()])
        );
        assert!(
            doc.resources.contains_key(&pets_id),
            "ids of kept paths survive"
        );
        assert_eq!(doc.resources[&pets_id].resource_methods.len(), 1);
        assert!(!doc.models.contains_key("Pet"));
        assert_eq!(doc.api.name, "Small");
    }

    #[test]
    fn extensions_reach_the_api() {
        let body = br#"{
          "openapi": "3.0.1",
          "info": {"title": "Ext", "version": "2"},
          "servers": [{"url": "https://x/{basePath}", "variables": {"basePath": {"default": "v1"}},
                       "x-amazon-apigateway-endpoint-configuration": {"disableExecuteApiEndpoint": true}}],
          "tags": [{"name": "team", "x-amazon-apigateway-tag-value": "gw"}],
          "x-amazon-apigateway-api-key-source": "AUTHORIZER",
          "x-amazon-apigateway-binary-media-types": ["image/png"],
          "x-amazon-apigateway-policy": {"Version": "2012-10-17", "Statement": []},
          "x-amazon-apigateway-gateway-responses": {
            "DEFAULT_4XX": {"responseParameters": {"gatewayresponse.header.Access-Control-Allow-Origin": "'*'"}}
          },
          "components": {"securitySchemes": {
            "lambda": {"type": "apiKey", "name": "Authorization", "in": "header",
                       "x-amazon-apigateway-authtype": "custom",
                       "x-amazon-apigateway-authorizer": {"type": "token", "authorizerUri": "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:1:function:a/invocations", "authorizerResultTtlInSeconds": 60}},
            "iam": {"type": "apiKey", "name": "Authorization", "in": "header", "x-amazon-apigateway-authtype": "awsSigv4"}
          }},
          "paths": {
            "/a": {"x-amazon-apigateway-any-method": {"security": [{"lambda": []}],
              "x-amazon-apigateway-integration": {"type": "http_proxy", "httpMethod": "ANY", "uri": "http://example.com/{proxy}", "timeoutInMillis": 5000, "cacheKeyParameters": ["method.request.path.proxy"], "tlsConfig": {"insecureSkipVerification": true}}}},
            "/b": {"get": {"security": [{"iam": []}], "x-amazon-apigateway-integration": {"type": "mock"}}}
          }
        }"#;
        let doc = imported(body);
        assert_eq!(doc.api.api_key_source, "AUTHORIZER");
        assert_eq!(doc.api.binary_media_types, vec!["image/png".to_owned()]);
        assert!(doc.api.disable_execute_api_endpoint);
        assert_eq!(doc.api.tags["team"], "gw");
        assert!(doc.api.policy.as_deref().unwrap().contains("2012-10-17"));
        assert!(doc.gateway_responses.contains_key("DEFAULT_4XX"));
        let any = method(&doc, "/a", "ANY");
        assert_eq!(any.authorization_type, "CUSTOM");
        let authorizer = &doc.authorizers[any.authorizer_id.as_ref().unwrap()];
        assert_eq!(authorizer.authorizer_type, "TOKEN");
        assert_eq!(
            authorizer.identity_source.as_deref(),
            Some("method.request.header.Authorization")
        );
        let i = any.method_integration.as_ref().unwrap();
        assert_eq!(
            (i.timeout_in_millis, i.cache_key_parameters.len()),
            (5000, 1)
        );
        assert!(i.tls_config.as_ref().unwrap().insecure_skip_verification);
        assert_eq!(method(&doc, "/b", "GET").authorization_type, "AWS_IAM");
        // basepath=prepend
        let read = read(
            body,
            "abc1234567",
            &ImportOptions {
                prepend_base_path: true,
                ..Default::default()
            },
        )
        .unwrap();
        assert!(read.paths.contains_key("/v1/a"), "{:?}", read.paths.keys());
    }
}
