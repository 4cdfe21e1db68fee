//! A REST API → OpenAPI 3.0.1 or Swagger 2.0, optionally with the
//! `x-amazon-apigateway-*` extensions, shaped so that importing it again
//! gives the same resources, methods and integrations.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::import::model_url;
use crate::model::{Integration, Method, RestApiDoc};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Swagger2,
    Oas30,
}

/// Which extensions to include (GetExport's `extensions` parameter).
#[derive(Debug, Clone, Copy, Default)]
pub struct Extensions {
    pub integrations: bool,
    pub authorizers: bool,
    /// Request validators (part of `apigateway`, or asked for alone).
    pub validators: bool,
    pub apigateway: bool,
}

impl Extensions {
    /// `integrations`, `authorizers`, `validators`, `apigateway` (all of
    /// them), `postman` (a plain document here), comma-separated.
    pub fn parse(raw: Option<&str>) -> Result<Self, String> {
        let mut out = Self::default();
        for item in raw
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            match item {
                "integrations" => out.integrations = true,
                "authorizers" => out.authorizers = true,
                "validators" => out.validators = true,
                "apigateway" => {
                    out.integrations = true;
                    out.authorizers = true;
                    out.validators = true;
                    out.apigateway = true;
                }
                "postman" => {}
                other => {
                    return Err(format!(
                        "Invalid extensions value '{other}': expected integrations, authorizers, validators, apigateway or postman"
                    ));
                }
            }
        }
        Ok(out)
    }
}

/// Where the exported document says the API lives.
pub struct Target<'a> {
    pub region: &'a str,
    pub stage: &'a str,
}

pub fn export(doc: &RestApiDoc, format: Format, ext: Extensions, target: &Target) -> Value {
    let api = &doc.api;
    let mut root = Map::new();
    let mut info = Map::new();
    if let Some(d) = &api.description {
        info.insert("description".into(), json!(d));
    }
    info.insert(
        "version".into(),
        json!(
            api.version
                .clone()
                .unwrap_or_else(|| iso_date(api.created_date))
        ),
    );
    info.insert("title".into(), json!(api.name));
    let host = format!("{}.execute-api.{}.amazonaws.com", api.id, target.region);
    match format {
        Format::Swagger2 => {
            root.insert("swagger".into(), json!("2.0"));
            root.insert("info".into(), Value::Object(info));
            root.insert("host".into(), json!(host));
            root.insert("basePath".into(), json!(format!("/{}", target.stage)));
            root.insert("schemes".into(), json!(["https"]));
        }
        Format::Oas30 => {
            root.insert("openapi".into(), json!("3.0.1"));
            root.insert("info".into(), Value::Object(info));
            let mut server = json!({
                "url": format!("https://{host}/{{basePath}}"),
                "variables": {"basePath": {"default": target.stage}},
            });
            if ext.apigateway
                && let Some(e) = endpoint_extension(doc)
            {
                server["x-amazon-apigateway-endpoint-configuration"] = e;
            }
            root.insert("servers".into(), json!([server]));
        }
    }

    let mut writer = Writer {
        doc,
        format,
        ext,
        schemes: Map::new(),
    };
    let mut paths = Map::new();
    let mut by_path: BTreeMap<String, &crate::model::Resource> = BTreeMap::new();
    for resource in doc.resources.values() {
        by_path.insert(doc.path_of(&resource.id), resource);
    }
    for (path, resource) in &by_path {
        if resource.resource_methods.is_empty() {
            continue;
        }
        let mut item = Map::new();
        for (http, method) in &resource.resource_methods {
            let key = if http == "ANY" {
                "x-amazon-apigateway-any-method".to_owned()
            } else {
                http.to_ascii_lowercase()
            };
            item.insert(key, writer.operation(path, method));
        }
        paths.insert(path.clone(), Value::Object(item));
    }
    root.insert("paths".into(), Value::Object(paths));

    let schemas = writer.schemas();
    match format {
        Format::Swagger2 => {
            if !writer.schemes.is_empty() {
                root.insert(
                    "securityDefinitions".into(),
                    Value::Object(writer.schemes.clone()),
                );
            }
            if !schemas.is_empty() {
                root.insert("definitions".into(), Value::Object(schemas));
            }
        }
        Format::Oas30 => {
            let mut components = Map::new();
            if !schemas.is_empty() {
                components.insert("schemas".into(), Value::Object(schemas));
            }
            if !writer.schemes.is_empty() {
                components.insert(
                    "securitySchemes".into(),
                    Value::Object(writer.schemes.clone()),
                );
            }
            root.insert("components".into(), Value::Object(components));
        }
    }
    if ext.apigateway {
        root_extensions(doc, format, &mut root);
    }
    if ext.validators {
        validator_extensions(doc, &mut root);
    }
    Value::Object(root)
}

fn iso_date(epoch: i64) -> String {
    chrono::DateTime::from_timestamp(epoch, 0)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

fn endpoint_extension(doc: &RestApiDoc) -> Option<Value> {
    let api = &doc.api;
    let mut e = Map::new();
    if api.disable_execute_api_endpoint {
        e.insert("disableExecuteApiEndpoint".into(), json!(true));
    }
    if let Some(ids) = &api.endpoint_configuration.vpc_endpoint_ids {
        e.insert("vpcEndpointIds".into(), json!(ids));
    }
    (!e.is_empty()).then_some(Value::Object(e))
}

fn root_extensions(doc: &RestApiDoc, format: Format, root: &mut Map<String, Value>) {
    let api = &doc.api;
    root.insert(
        "x-amazon-apigateway-api-key-source".into(),
        json!(api.api_key_source),
    );
    if !api.binary_media_types.is_empty() {
        root.insert(
            "x-amazon-apigateway-binary-media-types".into(),
            json!(api.binary_media_types),
        );
    }
    if let Some(size) = api.minimum_compression_size {
        root.insert(
            "x-amazon-apigateway-minimum-compression-size".into(),
            json!(size),
        );
    }
    if let Some(policy) = &api.policy {
        let value = serde_json::from_str(policy).unwrap_or_else(|_| json!(policy));
        root.insert("x-amazon-apigateway-policy".into(), value);
    }
    if format == Format::Swagger2
        && let Some(e) = endpoint_extension(doc)
    {
        root.insert("x-amazon-apigateway-endpoint-configuration".into(), e);
    }
    gateway_response_extensions(doc, root);
}

fn validator_extensions(doc: &RestApiDoc, root: &mut Map<String, Value>) {
    if !doc.request_validators.is_empty() {
        let validators: Map<String, Value> = doc
            .request_validators
            .values()
            .map(|v| {
                (
                    v.name.clone().unwrap_or_else(|| v.id.clone()),
                    json!({
                        "validateRequestBody": v.validate_request_body,
                        "validateRequestParameters": v.validate_request_parameters,
                    }),
                )
            })
            .collect();
        root.insert(
            "x-amazon-apigateway-request-validators".into(),
            Value::Object(validators),
        );
    }
}

fn gateway_response_extensions(doc: &RestApiDoc, root: &mut Map<String, Value>) {
    if !doc.gateway_responses.is_empty() {
        let responses: Map<String, Value> = doc
            .gateway_responses
            .values()
            .map(|r| {
                let mut m = Map::new();
                if let Some(s) = &r.status_code {
                    m.insert("statusCode".into(), json!(s));
                }
                if !r.response_parameters.is_empty() {
                    m.insert("responseParameters".into(), json!(r.response_parameters));
                }
                if !r.response_templates.is_empty() {
                    m.insert("responseTemplates".into(), json!(r.response_templates));
                }
                (r.response_type.clone(), Value::Object(m))
            })
            .collect();
        root.insert(
            "x-amazon-apigateway-gateway-responses".into(),
            Value::Object(responses),
        );
    }
}

struct Writer<'a> {
    doc: &'a RestApiDoc,
    format: Format,
    ext: Extensions,
    schemes: Map<String, Value>,
}

impl Writer<'_> {
    fn model_ref(&self, name: &str) -> Value {
        match self.format {
            Format::Swagger2 => json!({"$ref": format!("#/definitions/{name}")}),
            Format::Oas30 => json!({"$ref": format!("#/components/schemas/{name}")}),
        }
    }

    fn string_schema(&self, mut param: Map<String, Value>) -> Value {
        match self.format {
            Format::Swagger2 => {
                param.insert("type".into(), json!("string"));
            }
            Format::Oas30 => {
                param.insert("schema".into(), json!({"type": "string"}));
            }
        }
        Value::Object(param)
    }

    fn operation(&mut self, path: &str, method: &Method) -> Value {
        let mut op = Map::new();
        if let Some(name) = &method.operation_name {
            op.insert("operationId".into(), json!(name));
        }
        // Every template variable must be declared for the document to validate.
        let mut params: BTreeMap<(String, String), bool> = BTreeMap::new();
        for segment in path.split('/') {
            if let Some(var) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                params.insert(("path".into(), var.trim_end_matches('+').to_owned()), true);
            }
        }
        for (key, required) in &method.request_parameters {
            let Some((location, name)) = key
                .strip_prefix("method.request.")
                .and_then(|r| r.split_once('.'))
            else {
                continue;
            };
            let location = match location {
                "path" => "path",
                "querystring" | "multivaluequerystring" => "query",
                "header" | "multivalueheader" => "header",
                _ => continue,
            };
            if location == "path" {
                continue;
            }
            params.insert((location.into(), name.into()), *required);
        }
        let mut parameters: Vec<Value> = params
            .into_iter()
            .map(|((location, name), required)| {
                let mut p = Map::new();
                p.insert("name".into(), json!(name));
                p.insert("in".into(), json!(location));
                p.insert("required".into(), json!(required));
                self.string_schema(p)
            })
            .collect();
        let json_models: BTreeMap<&String, &String> = method
            .request_models
            .iter()
            .filter(|(_, m)| self.exportable(m))
            .collect();
        match self.format {
            Format::Swagger2 => {
                if let Some((_, model)) = json_models.iter().next() {
                    op.insert(
                        "consumes".into(),
                        json!(json_models.keys().collect::<Vec<_>>()),
                    );
                    parameters.push(json!({
                        "in": "body", "name": model, "required": true, "schema": self.model_ref(model),
                    }));
                }
                let produces: Vec<&String> = method
                    .method_responses
                    .values()
                    .flat_map(|r| r.response_models.keys())
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect();
                if !produces.is_empty() {
                    op.insert("produces".into(), json!(produces));
                }
            }
            Format::Oas30 => {
                if !json_models.is_empty() {
                    let content: Map<String, Value> = json_models
                        .iter()
                        .map(|(mt, m)| ((*mt).clone(), json!({"schema": self.model_ref(m)})))
                        .collect();
                    op.insert(
                        "requestBody".into(),
                        json!({"content": content, "required": true}),
                    );
                }
            }
        }
        if !parameters.is_empty() {
            op.insert("parameters".into(), Value::Array(parameters));
        }

        let mut responses = Map::new();
        for (code, response) in &method.method_responses {
            let mut r = Map::new();
            r.insert("description".into(), json!(format!("{code} response")));
            let headers: Map<String, Value> = response
                .response_parameters
                .keys()
                .filter_map(|k| k.strip_prefix("method.response.header."))
                .map(|h| {
                    let schema = match self.format {
                        Format::Swagger2 => json!({"type": "string"}),
                        Format::Oas30 => json!({"schema": {"type": "string"}}),
                    };
                    (h.to_owned(), schema)
                })
                .collect();
            if !headers.is_empty() {
                r.insert("headers".into(), Value::Object(headers));
            }
            let models: Vec<(&String, &String)> = response
                .response_models
                .iter()
                .filter(|(_, m)| self.exportable(m))
                .collect();
            match self.format {
                Format::Swagger2 => {
                    if let Some((_, m)) = models.first() {
                        r.insert("schema".into(), self.model_ref(m));
                    }
                }
                Format::Oas30 => {
                    if !models.is_empty() {
                        let content: Map<String, Value> = models
                            .iter()
                            .map(|(mt, m)| ((*mt).clone(), json!({"schema": self.model_ref(m)})))
                            .collect();
                        r.insert("content".into(), Value::Object(content));
                    }
                }
            }
            responses.insert(code.clone(), Value::Object(r));
        }
        if responses.is_empty() {
            // Both specifications require at least one response.
            responses.insert("default".into(), json!({"description": "Default response"}));
        }
        op.insert("responses".into(), Value::Object(responses));

        let mut security = Vec::new();
        match method.authorization_type.as_str() {
            "AWS_IAM" => {
                self.schemes.insert(
                    "sigv4".into(),
                    json!({"type": "apiKey", "name": "Authorization", "in": "header",
                           "x-amazon-apigateway-authtype": "awsSigv4"}),
                );
                security.push(json!({"sigv4": []}));
            }
            "CUSTOM" | "COGNITO_USER_POOLS" => {
                if let Some(a) = method
                    .authorizer_id
                    .as_ref()
                    .and_then(|id| self.doc.authorizers.get(id))
                {
                    if self.ext.authorizers {
                        self.schemes.insert(a.name.clone(), authorizer_scheme(a));
                    } else {
                        self.schemes.entry(a.name.clone()).or_insert_with(
                            || json!({"type": "apiKey", "name": "Authorization", "in": "header"}),
                        );
                    }
                    security.push(json!({ a.name.clone(): method.authorization_scopes }));
                }
            }
            _ => {}
        }
        if method.api_key_required {
            self.schemes.insert(
                "api_key".into(),
                json!({"type": "apiKey", "name": "x-api-key", "in": "header"}),
            );
            security.push(json!({"api_key": []}));
        }
        if !security.is_empty() {
            // One requirement object: all schemes apply together.
            let merged: Map<String, Value> = security
                .into_iter()
                .filter_map(|s| s.as_object().cloned())
                .flatten()
                .collect();
            op.insert("security".into(), json!([merged]));
        }
        if self.ext.validators
            && let Some(v) = method
                .request_validator_id
                .as_ref()
                .and_then(|id| self.doc.request_validators.get(id))
        {
            op.insert(
                "x-amazon-apigateway-request-validator".into(),
                json!(v.name.clone().unwrap_or_else(|| v.id.clone())),
            );
        }
        if self.ext.integrations
            && let Some(i) = &method.method_integration
        {
            op.insert("x-amazon-apigateway-integration".into(), integration(i));
        }
        Value::Object(op)
    }

    fn exportable(&self, model: &str) -> bool {
        self.doc
            .models
            .get(model)
            .is_some_and(|m| m.content_type.contains("json"))
    }

    /// Models as schemas, model URLs turned back into local references.
    fn schemas(&self) -> Map<String, Value> {
        let prefix = model_url(&self.doc.api.id, "");
        let local = match self.format {
            Format::Swagger2 => "#/definitions/",
            Format::Oas30 => "#/components/schemas/",
        };
        self.doc
            .models
            .values()
            .filter(|m| m.content_type.contains("json"))
            .filter_map(|m| {
                let mut schema: Value = serde_json::from_str(m.schema.as_deref()?).ok()?;
                localise(&mut schema, &prefix, local);
                if let Value::Object(o) = &mut schema {
                    o.remove("$schema");
                    o.remove("id");
                }
                Some((m.name.clone(), schema))
            })
            .collect()
    }
}

fn localise(v: &mut Value, prefix: &str, local: &str) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get_mut("$ref")
                && let Some(name) = r.strip_prefix(prefix)
            {
                *r = format!("{local}{name}");
            }
            for (k, child) in m.iter_mut() {
                if k != "$ref" {
                    localise(child, prefix, local);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| localise(i, prefix, local)),
        _ => {}
    }
}

fn authorizer_scheme(a: &crate::model::Authorizer) -> Value {
    let header = a
        .identity_source
        .as_deref()
        .and_then(|s| s.strip_prefix("method.request.header."))
        .filter(|h| !h.contains(','))
        .unwrap_or("Authorization");
    let mut spec = Map::new();
    spec.insert("type".into(), json!(a.authorizer_type.to_ascii_lowercase()));
    if let Some(v) = &a.authorizer_uri {
        spec.insert("authorizerUri".into(), json!(v));
    }
    if let Some(v) = &a.authorizer_credentials {
        spec.insert("authorizerCredentials".into(), json!(v));
    }
    if let Some(v) = &a.identity_source {
        spec.insert("identitySource".into(), json!(v));
    }
    if let Some(v) = &a.identity_validation_expression {
        spec.insert("identityValidationExpression".into(), json!(v));
    }
    if let Some(v) = a.authorizer_result_ttl_in_seconds {
        spec.insert("authorizerResultTtlInSeconds".into(), json!(v));
    }
    if !a.provider_arns.is_empty() {
        spec.insert("providerARNs".into(), json!(a.provider_arns));
    }
    let authtype = a.auth_type.clone().unwrap_or_else(|| {
        if a.authorizer_type == "COGNITO_USER_POOLS" {
            "cognito_user_pools".into()
        } else {
            "custom".into()
        }
    });
    json!({
        "type": "apiKey", "name": header, "in": "header",
        "x-amazon-apigateway-authtype": authtype,
        "x-amazon-apigateway-authorizer": spec,
    })
}

fn integration(i: &Integration) -> Value {
    let mut m = Map::new();
    m.insert(
        "type".into(),
        json!(i.integration_type.to_ascii_lowercase()),
    );
    if let Some(v) = &i.http_method {
        m.insert("httpMethod".into(), json!(v));
    }
    if let Some(v) = &i.uri {
        m.insert("uri".into(), json!(v));
    }
    if let Some(v) = &i.credentials {
        m.insert("credentials".into(), json!(v));
    }
    if !i.request_parameters.is_empty() {
        m.insert("requestParameters".into(), json!(i.request_parameters));
    }
    if !i.request_templates.is_empty() {
        m.insert("requestTemplates".into(), json!(i.request_templates));
    }
    m.insert(
        "passthroughBehavior".into(),
        json!(i.passthrough_behavior.to_ascii_lowercase()),
    );
    if let Some(v) = &i.content_handling {
        m.insert("contentHandling".into(), json!(v));
    }
    m.insert("timeoutInMillis".into(), json!(i.timeout_in_millis));
    if !i.cache_namespace.is_empty() {
        m.insert("cacheNamespace".into(), json!(i.cache_namespace));
    }
    if !i.cache_key_parameters.is_empty() {
        m.insert("cacheKeyParameters".into(), json!(i.cache_key_parameters));
    }
    if i.connection_type != "INTERNET" {
        m.insert("connectionType".into(), json!(i.connection_type));
    }
    if let Some(v) = &i.connection_id {
        m.insert("connectionId".into(), json!(v));
    }
    if let Some(t) = &i.tls_config {
        m.insert(
            "tlsConfig".into(),
            json!({"insecureSkipVerification": t.insecure_skip_verification}),
        );
    }
    if !i.integration_responses.is_empty() {
        let responses: Map<String, Value> = i
            .integration_responses
            .values()
            .map(|r| {
                let mut out = Map::new();
                out.insert("statusCode".into(), json!(r.status_code));
                if !r.response_parameters.is_empty() {
                    out.insert("responseParameters".into(), json!(r.response_parameters));
                }
                if !r.response_templates.is_empty() {
                    out.insert("responseTemplates".into(), json!(r.response_templates));
                }
                if let Some(c) = &r.content_handling {
                    out.insert("contentHandling".into(), json!(c));
                }
                let key = r
                    .selection_pattern
                    .clone()
                    .filter(|p| !p.is_empty())
                    .unwrap_or_else(|| "default".into());
                (key, Value::Object(out))
            })
            .collect();
        m.insert("responses".into(), Value::Object(responses));
    }
    Value::Object(m)
}

/// Block-style YAML in which every string is double-quoted (JSON escapes are
/// valid YAML), so no YAML 1.1 reader mistakes a version for a date or
/// `on` for a boolean.
pub fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(m) if !m.is_empty() => yaml_block(value, 0, &mut out),
        Value::Array(a) if !a.is_empty() => yaml_block(value, 0, &mut out),
        scalar => {
            out.push_str(&yaml_scalar(scalar));
            out.push('\n');
        }
    }
    out
}

fn yaml_scalar(v: &Value) -> String {
    match v {
        Value::Object(_) => "{}".into(),
        Value::Array(_) => "[]".into(),
        other => other.to_string(),
    }
}

fn is_block(v: &Value) -> bool {
    match v {
        Value::Object(m) => !m.is_empty(),
        Value::Array(a) => !a.is_empty(),
        _ => false,
    }
}

fn yaml_block(v: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                out.push_str(&pad);
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                if is_block(child) {
                    out.push('\n');
                    yaml_block(child, indent + 2, out);
                } else {
                    out.push(' ');
                    out.push_str(&yaml_scalar(child));
                    out.push('\n');
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                out.push_str(&pad);
                out.push('-');
                if is_block(item) {
                    out.push('\n');
                    yaml_block(item, indent + 2, out);
                } else {
                    out.push(' ');
                    out.push_str(&yaml_scalar(item));
                    out.push('\n');
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::management::openapi::import::{self, ImportOptions, Mode};
    use crate::model::{Resource, RestApi};

    fn imported(body: &[u8]) -> RestApiDoc {
        let mut doc = RestApiDoc {
            api: RestApi {
                id: "abc1234567".into(),
                name: "x".into(),
                root_resource_id: "root".into(),
                api_key_source: "HEADER".into(),
                ..Default::default()
            },
            ..Default::default()
        };
        doc.resources.insert(
            "root".into(),
            Resource {
                id: "root".into(),
                ..Default::default()
            },
        );
        let read = import::read(body, "abc1234567", &ImportOptions::default()).unwrap();
        import::apply(&mut doc, read, Mode::Import).unwrap();
        doc
    }

    const FIXTURE: &str =
        include_str!("../../../../tests/fixtures/openapi/awsdocs-lambda-calc.json");
    const TARGET: Target = Target {
        region: "eu-west-1",
        stage: "v1",
    };

    #[test]
    fn extensions_choose_what_is_written() {
        assert!(Extensions::parse(Some("wsdl")).is_err());
        let doc = imported(FIXTURE.as_bytes());
        let plain = export(&doc, Format::Oas30, Extensions::default(), &TARGET).to_string();
        assert!(!plain.contains("x-amazon-apigateway"), "{plain}");
        let only_validators = Extensions::parse(Some("validators")).unwrap();
        let v = export(&doc, Format::Swagger2, only_validators, &TARGET);
        assert!(v["x-amazon-apigateway-request-validators"]["Validate body"].is_object());
        assert!(
            v["paths"]["/calc"]["get"]
                .get("x-amazon-apigateway-integration")
                .is_none()
        );
        let all = Extensions::parse(Some("apigateway")).unwrap();
        let v = export(&doc, Format::Swagger2, all, &TARGET);
        assert_eq!(v["basePath"], "/v1");
        assert_eq!(v["host"], "abc1234567.execute-api.eu-west-1.amazonaws.com");
        let i = &v["paths"]["/calc"]["get"]["x-amazon-apigateway-integration"];
        assert_eq!(i["type"], "aws");
        assert_eq!(i["passthroughBehavior"], "when_no_match");
        // Model URLs become local references again.
        assert_eq!(
            v["definitions"]["Result"]["properties"]["input"]["$ref"],
            "#/definitions/Input"
        );
    }

    #[test]
    fn an_export_reimports_to_the_same_methods() {
        let doc = imported(FIXTURE.as_bytes());
        for format in [Format::Oas30, Format::Swagger2] {
            let all = Extensions::parse(Some("apigateway")).unwrap();
            let text = to_yaml(&export(&doc, format, all, &TARGET));
            let again = imported(text.as_bytes());
            let methods = |d: &RestApiDoc| -> Vec<(String, String, Option<Integration>)> {
                let mut out: Vec<_> = d
                    .resources
                    .values()
                    .flat_map(|r| {
                        r.resource_methods.iter().map(|(h, m)| {
                            let mut i = m.method_integration.clone();
                            if let Some(i) = i.as_mut() {
                                i.cache_namespace.clear();
                            }
                            (d.path_of(&r.id), h.clone(), i)
                        })
                    })
                    .collect();
                out.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
                out
            };
            assert_eq!(methods(&again), methods(&doc), "{format:?}");
        }
    }

    #[test]
    fn yaml_reads_back_as_the_same_value() {
        let v = json!({
            "info": {"version": "2017-04-20T04:08:08Z", "title": "on"},
            "list": [1, "two", {"a": [], "b": {}}, [true, null]],
            "text": "line\n\"quoted\" #not a comment: x",
            "empty": {}
        });
        let yaml = to_yaml(&v);
        let back: serde_norway::Value = serde_norway::from_str(&yaml).unwrap();
        let back: Value = serde_json::to_value(back).unwrap();
        assert_eq!(back, v, "{yaml}");
    }
}
